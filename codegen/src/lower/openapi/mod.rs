//! OpenAPI document → IR: one package per document holding one service (one method per
//! operation) and the [`Models`] its methods use.
//!
//! Schemas lower in `schema.rs`, operations (parameters, bodies, responses, security) in
//! `operation.rs`. Whatever cannot be typed precisely becomes [`Type::Json`] plus a [`Warning`]
//! naming its JSON pointer; only a document that is not OpenAPI at all is an error.

mod key;
mod operation;
pub mod policy;
mod schema;

use serde_json::Value;

use crate::error::Error;
use crate::ir::model::Models;
use crate::ir::{Bindings, CallShape, Idempotency, Method, Package, Service, TypeRef};

/// Something the generator could not type precisely; the output still works (with a fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// JSON pointer into the document.
    pub pointer: String,
    /// What happened.
    pub message: String,
}

/// Which operations to generate.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep operations carrying one of these tags (all when empty).
    pub tags: Vec<String>,
    /// Keep operations with one of these ids (all when empty).
    pub operations: Vec<String>,
    /// Generate every component schema, not only those the kept operations use.
    pub all_schemas: bool,
}

impl Selection {
    fn keeps(&self, id: &str, tags: &[String]) -> bool {
        (self.tags.is_empty() || tags.iter().any(|t| self.tags.contains(t)))
            && (self.operations.is_empty() || self.operations.iter().any(|o| o == id))
    }
    pub(crate) fn is_all(&self) -> bool {
        self.tags.is_empty() && self.operations.is_empty()
    }
}

/// Lowers one bundled document. `module` is the package (module) name, `file` the spec file
/// name used in docs.
/// `locate` gives the position of a path key in the document's file (for errors).
pub fn lower(
    document: &Value,
    module: &str,
    file: &str,
    selection: &Selection,
    locate: &dyn Fn(&str) -> crate::error::Location,
) -> Result<(Package, Vec<Warning>), Error> {
    let root = document.as_object().ok_or_else(|| Error::SpecFile { file: file.into(), message: "not an object".into() })?;
    if !root.get("paths").is_none_or(Value::is_object) {
        return Err(Error::SpecFile { file: file.into(), message: "/paths: must be an object".into() });
    }
    let mut schemas = schema::Lowerer::new(document);
    schemas.components(selection.all_schemas && selection.is_all());
    schemas.lower_pending();
    let mut operations = operation::lower_all(document, &mut schemas, selection);
    // The runtime's parser (crate `switchboard-path`): an operation whose path it cannot serve
    // is skipped (with a warning), and so is the second of two operations the router could not
    // tell apart (same method, segments, verb).
    // What the router tells requests apart by (method, segments, verb) → the first operation.
    type RouteKey<'p> = (&'p str, Vec<switchboard_path::Segment>, Option<&'p str>);
    let mut parsed: std::collections::HashMap<RouteKey<'_>, usize> = std::collections::HashMap::new();
    let mut skipped: Vec<usize> = Vec::new();
    for (i, op) in operations.operations.iter().enumerate() {
        if op.path.chars().any(char::is_control) {
            operations.warnings.push(Warning {
                pointer: op.pointer.clone(),
                message: format!("path {:?} contains control characters ({}); operation `{}` skipped", op.path, locate(&op.path), op.id),
            });
            skipped.push(i);
            continue;
        }
        let template = match switchboard_path::Template::parse_openapi("", &op.path) {
            Ok(t) => t,
            Err(e) => {
                operations.warnings.push(Warning {
                    pointer: op.pointer.clone(),
                    message: format!("{e} ({}); operation `{}` skipped", locate(&op.path), op.id),
                });
                skipped.push(i);
                continue;
            }
        };
        let key = (op.method.as_str(), template.segments, template.verb);
        if let Some(&j) = parsed.get(&key) {
            let other = &operations.operations[j];
            operations.warnings.push(Warning {
                pointer: op.pointer.clone(),
                message: format!(
                    "`{} {}` matches the same requests as `{} {}` ({}; {}); operation `{}` skipped",
                    op.method,
                    op.path,
                    other.method,
                    other.path,
                    other.pointer,
                    locate(&op.path),
                    op.id
                ),
            });
            skipped.push(i);
            continue;
        }
        parsed.insert(key, i);
    }
    drop(parsed);
    let any_skipped = !skipped.is_empty();
    if any_skipped {
        let skipped: std::collections::HashSet<usize> = skipped.into_iter().collect();
        let mut i = 0;
        operations.operations.retain(|_| {
            i += 1;
            !skipped.contains(&(i - 1))
        });
    }
    schemas.lower_pending();
    schemas.mark_boxes();
    let (types, mut warnings) = schemas.finish();
    warnings.append(&mut operations.warnings);
    let info = root.get("info");
    let title = info.and_then(|i| i.get("title")).and_then(Value::as_str).unwrap_or("Api").to_owned();
    let mut docs = Vec::new();
    if let Some(d) = info.and_then(|i| i.get("description")).and_then(Value::as_str) {
        docs.extend(doc_lines(d));
    }
    let declared = policy::lower(document, &operations.operations, file)?;
    key::lower(document, &mut operations.operations, &types, file)?;
    let methods = operations
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| Method {
            name: op.id.clone(),
            docs: op.docs.clone(),
            shape: CallShape::Unary,
            input: TypeRef { package: module.into(), parents: vec![], name: op.request.clone() },
            output: TypeRef { package: module.into(), parents: vec![], name: op.response.clone() },
            deprecated: op.deprecated,
            // HTTP's semantics, unless `x-switchboard-idempotent` says otherwise.
            idempotency: match (op.method.as_str(), declared.idempotent[i]) {
                (_, Some(false)) => Idempotency::Unknown,
                ("GET" | "HEAD" | "OPTIONS", _) => Idempotency::NoSideEffects,
                ("PUT" | "DELETE", _) | (_, Some(true)) => Idempotency::Idempotent,
                _ => Idempotency::Unknown,
            },
            bindings: Bindings { http: vec![], queue: None, operation: Some(i), event: op.event, key: op.key.clone() },
        })
        .collect();
    let service = Service {
        package: module.into(),
        file: file.into(),
        name: title.clone(),
        docs,
        deprecated: false,
        methods,
        policy: declared.policy,
    };
    if !selection.is_all() && operations.operations.is_empty() {
        warnings.push(Warning {
            pointer: "/paths".into(),
            message: format!(
                "no operation matches the selection (tags {:?}, operations {:?}; an operation must match both when both are given)",
                selection.tags, selection.operations
            ),
        });
    }
    // With a selection (or operations skipped), the served (and validated) document lists only
    // the generated operations.
    let document = if selection.is_all() && !any_skipped {
        serde_json::to_string(document)
    } else {
        serde_json::to_string(&selected(document, &operations.operations))
    }
    .map_err(|e| Error::Config(e.to_string()))?;
    let package = Package {
        name: module.into(),
        files: vec![file.into()],
        type_names: types.iter().map(|t| t.name.clone()).collect(),
        services: vec![service],
        models: Some(Models {
            types,
            operations: operations.operations,
            security_schemes: operations.schemes,
            document,
            bundle: false,
            title,
        }),
    };
    Ok((package, warnings))
}

/// The document with only these operations under `paths` (components stay whole).
fn selected(document: &Value, operations: &[crate::ir::model::Operation]) -> Value {
    let kept: std::collections::HashSet<(&str, String)> =
        operations.iter().map(|o| (o.path.as_str(), o.method.to_ascii_lowercase())).collect();
    let paths: std::collections::HashSet<&str> = operations.iter().map(|o| o.path.as_str()).collect();
    let mut out = document.clone();
    if let Some(Value::Object(items)) = out.get_mut("paths") {
        items.retain(|path, item| {
            if let Value::Object(item) = item {
                item.retain(|method, _| !operation::is_method(method) || kept.contains(&(path.as_str(), method.to_ascii_lowercase())));
            }
            paths.contains(path.as_str())
        });
    }
    out
}

/// What `value` stands for: the value itself, or the end of its chain of local `$ref`s (`None`
/// when a reference is not local, points at nothing, or the chain is too long).
pub(crate) fn follow_refs<'v>(doc: &'v Value, value: &'v Value) -> Option<&'v Value> {
    let mut current = value;
    for _ in 0..16 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(r) => current = doc.pointer(&schema::percent_decode(r.strip_prefix('#')?))?,
            None => return Some(current),
        }
    }
    None
}

/// Like [`follow_refs`], also giving the pointer of what `value` stands for (`at` when it is not
/// a reference).
pub(crate) fn follow_refs_at<'v>(doc: &'v Value, value: &'v Value, at: &str) -> Option<(&'v Value, String)> {
    let mut current = value;
    let mut pointer = at.to_owned();
    for _ in 0..16 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                pointer = schema::percent_decode(r.strip_prefix('#')?);
                current = doc.pointer(&pointer)?;
            }
            None => return Some((current, pointer)),
        }
    }
    None
}

/// Description text as doc comment lines: split at every kind of line break (a lone `\r`
/// included, which Rust does not allow inside a comment), other control characters dropped.
pub(crate) fn doc_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n");
    let mut lines: Vec<String> = text
        .split(['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}'])
        .map(|line| line.chars().filter(|c| *c == '\t' || !c.is_control()).collect())
        .collect();
    // As `str::lines`: a final line break ends the last line, it does not start another.
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// A name (an operation id, say) on one doc comment line.
pub(crate) fn one_line(text: &str) -> String {
    doc_lines(text).join(" ")
}

/// Escapes a JSON pointer segment.
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
