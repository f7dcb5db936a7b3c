//! `x-switchboard-policy` and `x-switchboard-idempotent`: an OpenAPI document's default call
//! policy and the operations it declares safe to repeat.
//!
//! `x-switchboard-policy` is a gRPC `methodConfig` entry without its `name` (`timeout`,
//! `waitForReady`, `maxRequestMessageBytes`, `maxResponseMessageBytes`, `retryPolicy` or
//! `hedgingPolicy`, and `x-switchboard` with `circuitBreaker`, `rateLimit`,
//! `concurrencyLimit`), written at three levels, which name what it applies to:
//!
//! - the document root: every operation (an entry naming the service). Only here may it also
//!   carry the client-wide settings of a service config: `retryThrottling`, and `retryBudget`
//!   under `x-switchboard`;
//! - a path item: every operation under the path (an entry naming each of their methods);
//! - an operation: that operation (an entry naming its method).
//!
//! The most specific one applies whole (as gRPC reads entries: they are not merged field by
//! field). They lower into ONE service config for the service; errors name the JSON pointer.
//!
//! `x-switchboard-idempotent` (operations only, `true` or `false`) overrides what the HTTP
//! method says: `true` for a POST that takes an `Idempotency-Key`, say, `false` for a PUT that is
//! not safe to repeat. Idempotent methods are the ones retried and hedged without a key.

use serde_json::{Map, Value};

use super::{escape, follow_refs_at};
use crate::error::Error;
use crate::ir::model::Operation;
use crate::ir::{Policy, PolicyEntry};
use crate::lower::policy::field;

/// The extension holding a policy.
pub const POLICY: &str = "x-switchboard-policy";
/// The extension declaring an operation idempotent (or not).
pub const IDEMPOTENT: &str = "x-switchboard-idempotent";

/// What the extensions say about a document's (kept) operations.
pub struct Lowered {
    /// The service's default policy, if any extension gives one.
    pub policy: Option<Policy>,
    /// Per operation: `x-switchboard-idempotent`, when given.
    pub idempotent: Vec<Option<bool>>,
}

/// Reads the extensions of the document root, of the path items of `operations` and of the
/// operations. `file` names the document in errors.
pub fn lower(doc: &Value, operations: &[Operation], file: &str) -> Result<Lowered, Error> {
    let error = |pointer: &str, message: String| Error::SpecFile { file: file.to_owned(), message: format!("{pointer}: {message}") };
    if doc.get(IDEMPOTENT).is_some() {
        return Err(error(&format!("/{IDEMPOTENT}"), "only an operation can be declared idempotent".into()));
    }
    let mut top = Map::new();
    let mut entries = Vec::new();
    if let Some(ext) = doc.get(POLICY) {
        let (fields, client) = entry(ext, &format!("/{POLICY}"), Scope::Root).map_err(|(p, m)| error(&p, m))?;
        top = client;
        // Only client-wide settings: no entry.
        if !fields.is_empty() || ext.as_object().is_some_and(Map::is_empty) {
            entries.push(PolicyEntry { methods: None, fields });
        }
    }
    // Path items in the order their first operation comes: (pointer, entry fields, methods).
    let mut paths: Vec<(String, Option<Map<String, Value>>, Vec<usize>)> = Vec::new();
    let mut own: Vec<PolicyEntry> = Vec::new();
    let mut idempotent = Vec::with_capacity(operations.len());
    for (i, op) in operations.iter().enumerate() {
        let (item_pointer, method) = op.pointer.rsplit_once('/').unwrap_or((&op.pointer, ""));
        let found = doc.pointer(item_pointer).and_then(|item| follow_refs_at(doc, item, item_pointer));
        let Some((item, item_at)) = found else {
            idempotent.push(None);
            continue;
        };
        if !paths.iter().any(|(p, _, _)| *p == item_at) {
            if item.get(IDEMPOTENT).is_some() {
                return Err(error(&format!("{item_at}/{IDEMPOTENT}"), "only an operation can be declared idempotent, not a path".into()));
            }
            let fields = match item.get(POLICY) {
                Some(ext) => Some(entry(ext, &format!("{item_at}/{POLICY}"), Scope::Path).map_err(|(p, m)| error(&p, m))?.0),
                None => None,
            };
            paths.push((item_at.clone(), fields, Vec::new()));
        }
        let op_at = format!("{item_at}/{method}");
        let value = item.get(method);
        idempotent.push(match value.and_then(|v| v.get(IDEMPOTENT)) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(error(&format!("{op_at}/{IDEMPOTENT}"), format!("expected true or false, found {}", describe(other))));
            }
        });
        match value.and_then(|v| v.get(POLICY)) {
            Some(ext) => {
                let (fields, _) = entry(ext, &format!("{op_at}/{POLICY}"), Scope::Operation).map_err(|(p, m)| error(&p, m))?;
                own.push(PolicyEntry { methods: Some(vec![i]), fields });
            }
            None => {
                if let Some(path) = paths.iter_mut().find(|(p, _, _)| *p == item_at) {
                    path.2.push(i);
                }
            }
        }
    }
    entries.extend(
        paths
            .into_iter()
            .filter_map(|(_, fields, methods)| Some(PolicyEntry { methods: Some(methods), fields: fields? }))
            .filter(|e| e.methods.as_ref().is_some_and(|m| !m.is_empty())),
    );
    entries.extend(own);
    let policy = (!entries.is_empty() || !top.is_empty()).then_some(Policy::Entries { top, entries });
    Ok(Lowered { policy, idempotent })
}

/// Where an extension is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Root,
    Path,
    Operation,
}

impl Scope {
    fn describe(self) -> &'static str {
        match self {
            Scope::Root => "every operation of the document",
            Scope::Path => "every operation under its path",
            Scope::Operation => "its operation",
        }
    }
}

/// One extension at `pointer`: the `methodConfig` entry's fields, and (at the root) the
/// service config's own (`retryThrottling`, `x-switchboard.retryBudget`), checked as the runtime
/// reads them. An error is `(JSON pointer, message)`.
fn entry(ext: &Value, pointer: &str, scope: Scope) -> Result<(Map<String, Value>, Map<String, Value>), (String, String)> {
    let Value::Object(ext) = ext else {
        return Err((pointer.to_owned(), format!("expected an object (a gRPC methodConfig entry without `name`), found {}", describe(ext))));
    };
    let mut fields = ext.clone();
    if let Some((key, _)) = field(ext, "name") {
        return Err((format!("{pointer}/{}", escape(key)), format!("`{POLICY}` names no methods: it applies to {}", scope.describe())));
    }
    let mut top = Map::new();
    if let Some((key, value)) = field(ext, "retryThrottling") {
        if scope != Scope::Root {
            return Err((format!("{pointer}/{}", escape(key)), "applies to the whole client: set it at the document root".into()));
        }
        top.insert(key.to_owned(), value.clone());
        fields.remove(key);
    }
    if let Some(Value::Object(x)) = ext.get("x-switchboard") {
        if let Some((key, value)) = field(x, "retryBudget") {
            if scope != Scope::Root {
                return Err((format!("{pointer}/x-switchboard/{}", escape(key)), "applies to the whole client: set it at the document root".into()));
            }
            let mut budget = Map::new();
            budget.insert(key.to_owned(), value.clone());
            top.insert("x-switchboard".into(), Value::Object(budget));
            let mut rest = x.clone();
            rest.remove(key);
            if rest.is_empty() {
                fields.remove("x-switchboard");
            } else {
                fields.insert("x-switchboard".into(), Value::Object(rest));
            }
        }
    }
    // As the runtime will read it: one entry naming everything, with the client-wide settings.
    let mut named = Map::new();
    named.insert("name".into(), Value::Array(vec![Value::Object(Map::new())]));
    named.extend(fields.clone());
    let mut config = Map::new();
    config.insert("methodConfig".into(), Value::Array(vec![Value::Object(named)]));
    config.extend(top.clone());
    crate::lower::policy::check(&Value::Object(config)).map_err(|p| (to_pointer(pointer, &p.path), p.message))?;
    Ok((fields, top))
}

/// The runtime's JSON path in the config [`entry`] checks (`$.methodConfig[0].retryPolicy`,
/// `$.retryThrottling.maxTokens`) as a pointer into the document, under the extension's.
fn to_pointer(pointer: &str, path: &str) -> String {
    let rest = path.strip_prefix("$.methodConfig[0]").or_else(|| path.strip_prefix('$')).unwrap_or(path);
    let mut out = pointer.to_owned();
    // `.key` and `[index]` steps; keys as the document spells them.
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let step: String = match c {
            '.' => std::iter::from_fn(|| chars.next_if(|c| *c != '.' && *c != '[')).collect(),
            '[' => {
                let index: String = std::iter::from_fn(|| chars.next_if(|c| *c != ']')).collect();
                chars.next();
                index
            }
            _ => continue,
        };
        out.push('/');
        out.push_str(&escape(&step));
    }
    out
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 { format!("{}…", text.chars().take(40).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_paths_become_pointers_under_the_extension() {
        let at = "/paths/~1pets/get/x-switchboard-policy";
        assert_eq!(to_pointer(at, "$.methodConfig[0].retryPolicy.maxAttempts"), format!("{at}/retryPolicy/maxAttempts"));
        assert_eq!(to_pointer(at, "$.methodConfig[0].retryPolicy.retryableStatusCodes[1]"), format!("{at}/retryPolicy/retryableStatusCodes/1"));
        assert_eq!(to_pointer(at, "$.retryThrottling"), format!("{at}/retryThrottling"));
        assert_eq!(to_pointer(at, "$.methodConfig[0]"), at);
        assert_eq!(to_pointer(at, "$"), at);
    }
}
