//! Operations: one per HTTP binding of a method (or its default binding), with path and query
//! parameters, request body and responses.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::schemas::{self, Schemas};
use super::template::{self, Expanded};
use crate::ir::{ApiDocs, CallShape, Field, FieldKind, HttpRule, Message, Method, Service};

/// How deep nested message fields are flattened into query parameters (`a.b.c`).
const QUERY_DEPTH: usize = 3;

/// HTTP methods an OpenAPI path item can hold.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The `paths` object being built, with what keeps it consistent: one path string per route
/// (paths differing only in parameter names are one route), one operation per (path, method),
/// unique operation ids.
#[derive(Default)]
pub struct Paths {
    /// Path → path item.
    pub items: BTreeMap<String, Map<String, Value>>,
    /// Route key (parameter names blanked) → the path string first used for it.
    routes: BTreeMap<String, String>,
    operation_ids: BTreeSet<String>,
    /// Bindings with an HTTP method OpenAPI cannot describe.
    pub skipped: Vec<Value>,
}

/// The binding a method without `google.api.http` gets: `POST /<package>.<Service>/<Method>`,
/// the whole request as the body.
pub fn default_binding(service: &Service, method: &Method) -> HttpRule {
    let service_name =
        if service.package.is_empty() { service.name.clone() } else { format!("{}.{}", service.package, service.name) };
    HttpRule {
        method: "post".into(),
        custom: false,
        path: format!("/{service_name}/{}", method.name),
        body: "*".into(),
        response_body: String::new(),
    }
}

impl Paths {
    /// Adds the operations of every binding of `method`; `docs` is its grpc-gateway
    /// `openapiv2_operation` annotation, if any (summary, description, tags, operation id,
    /// deprecation; each replaces what the proto comments and names give).
    pub fn add_method(
        &mut self,
        schemas: &mut Schemas<'_>,
        service: &Service,
        tag: &str,
        method: &Method,
        docs: Option<&ApiDocs>,
    ) {
        let rules = if method.bindings.http.is_empty() {
            vec![default_binding(service, method)]
        } else {
            method.bindings.http.clone()
        };
        for (i, rule) in rules.iter().enumerate() {
            let verb = rule.method.to_ascii_lowercase();
            if !METHODS.contains(&verb.as_str()) {
                self.skipped.push(json!({
                    "operation": format!("{}.{}", service.name, method.name),
                    "method": rule.method,
                    "path": rule.path,
                    "reason": "OpenAPI 3.1 describes only GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH and TRACE",
                }));
                continue;
            }
            let mut expanded = template::expand(&rule.path);
            self.canonical_route(&mut expanded);
            let mut path = expanded.path.clone();
            let mut shared = None;
            if self.items.get(&path).is_some_and(|item| item.contains_key(&verb)) {
                let owner = self.items[&path][&verb]["operationId"].as_str().unwrap_or_default().to_owned();
                path = (2..)
                    .map(|n| format!("{}#{n}", expanded.path))
                    .find(|p| !self.items.get(p).is_some_and(|item| item.contains_key(&verb)))
                    .unwrap_or_default();
                shared = Some(owner);
            }
            let id = self.operation_id(service, method, i, docs.map_or("", |d| d.operation_id.as_str()));
            let mut operation = operation(schemas, service, tag, method, rule, &expanded, id);
            if let Some(docs) = docs {
                annotate(&mut operation, docs);
            }
            if let Some(owner) = shared {
                let suffix = &path[expanded.path.len()..];
                let note = format!(
                    "The route `{} {}` is also bound to `{owner}`, listed first. `{suffix}` only keeps this \
                     entry's key unique (clients do not send URL fragments).",
                    verb.to_uppercase(),
                    expanded.path
                );
                append_description(&mut operation, &note);
            }
            self.items.entry(path).or_default().insert(verb, Value::Object(operation));
        }
    }

    /// Uses the path string already chosen for the same route, renaming parameters to match.
    fn canonical_route(&mut self, expanded: &mut Expanded) {
        let key = expanded.route_key();
        match self.routes.get(&key) {
            Some(canonical) if *canonical != expanded.path => {
                let names = parameter_names(canonical);
                for (p, name) in expanded.params.iter_mut().zip(names) {
                    p.name = name;
                }
                expanded.path = canonical.clone();
            }
            Some(_) => {}
            None => {
                self.routes.insert(key, expanded.path.clone());
            }
        }
    }

    /// `<Service>_<Method>` (or the annotation's `operation_id`), `_<n>` for the n-th binding
    /// (n ≥ 2), made unique.
    fn operation_id(&mut self, service: &Service, method: &Method, binding: usize, given: &str) -> String {
        let suffix = if binding == 0 { String::new() } else { format!("_{}", binding + 1) };
        let plain = if given.is_empty() {
            format!("{}_{}{suffix}", service.name, method.name)
        } else {
            format!("{given}{suffix}")
        };
        let qualified = format!("{}_{}", service.package.replace('.', "_"), plain);
        let mut id = if self.operation_ids.contains(&plain) && !service.package.is_empty() { qualified } else { plain };
        let base = id.clone();
        let mut n = 1;
        while self.operation_ids.contains(&id) {
            n += 1;
            id = format!("{base}_{n}");
        }
        self.operation_ids.insert(id.clone());
        id
    }
}

/// The `{names}` of an OpenAPI path, in order.
fn parameter_names(path: &str) -> Vec<String> {
    path.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(n, _)| n.to_owned())).collect()
}

/// What an `openapiv2_operation` annotation says replaces what comments and names gave.
fn annotate(operation: &mut Map<String, Value>, docs: &ApiDocs) {
    if !docs.summary.is_empty() {
        operation.insert("summary".into(), Value::String(docs.summary.clone()));
    }
    if !docs.description.is_empty() {
        operation.insert("description".into(), Value::String(docs.description.clone()));
    }
    if !docs.tags.is_empty() {
        operation.insert("tags".into(), json!(docs.tags));
    }
    if docs.deprecated {
        operation.insert("deprecated".into(), Value::Bool(true));
    }
}

fn append_description(operation: &mut Map<String, Value>, text: &str) {
    let description = match operation.get("description").and_then(Value::as_str) {
        Some(d) => format!("{d}\n\n{text}"),
        None => text.to_owned(),
    };
    operation.insert("description".into(), Value::String(description));
}

/// First paragraph → summary, the rest → description.
fn summary_and_description(docs: &[String]) -> (Option<String>, Option<String>) {
    let split = docs.iter().position(|l| l.trim().is_empty()).unwrap_or(docs.len());
    let summary = docs[..split].iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    let rest = docs[split..].join("\n").trim().to_owned();
    ((!summary.is_empty()).then_some(summary), (!rest.is_empty()).then_some(rest))
}

fn operation(
    schemas: &mut Schemas<'_>,
    service: &Service,
    tag: &str,
    method: &Method,
    rule: &HttpRule,
    expanded: &Expanded,
    id: String,
) -> Map<String, Value> {
    let mut op = Map::new();
    op.insert("operationId".into(), Value::String(id));
    op.insert("tags".into(), json!([tag]));
    let (summary, description) = summary_and_description(&method.docs);
    if let Some(s) = summary {
        op.insert("summary".into(), Value::String(s));
    }
    if let Some(d) = description {
        op.insert("description".into(), Value::String(d));
    }
    if method.deprecated || service.deprecated {
        op.insert("deprecated".into(), Value::Bool(true));
    }
    let input = schemas.message(&method.input);
    let mut parameters: Vec<Value> = expanded.params.iter().map(|p| path_parameter(schemas, input, p)).collect();
    if rule.body != "*" {
        if let Some(input) = input {
            // Fields the path or the body set are not query parameters (nor is anything under them).
            let mut bound = expanded.bound.clone();
            if !rule.body.is_empty() {
                bound.insert(rule.body.clone());
            }
            let mut query = Query { schemas: &mut *schemas, bound, out: Vec::new() };
            query.collect(input, "", &mut vec![input.type_ref().full_name()]);
            parameters.extend(query.out);
        }
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = request_body(schemas, method, rule, expanded, input) {
        op.insert("requestBody".into(), body);
    }
    op.insert("responses".into(), responses(schemas, method, rule));
    op
}

fn path_parameter(schemas: &mut Schemas<'_>, input: Option<&Message>, p: &template::PathParam) -> Value {
    let field = p.field.as_deref().and_then(|path| resolve(schemas, input, path));
    let mut lines = Vec::new();
    match (&p.field, &p.value) {
        (Some(name), Some(value)) => lines.push(format!(
            "One segment of `{name}`: the server receives `{name}` = `{value}`, with `{{{}}}` replaced by this value.",
            p.name
        )),
        (Some(_), None) => {}
        (None, _) => lines.push("Matches a path segment; sets no field.".to_owned()),
    }
    if p.multi_segment {
        lines.push("May contain `/` (it matches one or more path segments).".to_owned());
    }
    if let Some(f) = field {
        if !f.docs.is_empty() {
            lines.push(f.docs.join("\n"));
        }
    }
    let one_value = |f: &Field| match &f.kind {
        FieldKind::Scalar(_) | FieldKind::Enum(_) => true,
        FieldKind::Message(ty) => schemas::is_scalar_like(&ty.full_name()),
        FieldKind::Map(..) => false,
    };
    let schema = match field {
        Some(f) if p.value.is_none() && !f.repeated && one_value(f) => schemas.parameter(f),
        _ => json!({"type": "string"}),
    };
    let mut param = json!({"name": p.name, "in": "path", "required": true, "schema": schema});
    schemas::describe(&mut param, &lines.join("\n\n"), field.is_some_and(|f| f.deprecated));
    param
}

/// The field at a dotted path of proto names, starting at `message`.
fn resolve<'a>(schemas: &Schemas<'a>, message: Option<&'a Message>, path: &str) -> Option<&'a Field> {
    let mut message = message?;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = message.field(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        let FieldKind::Message(ty) = &field.kind else { return None };
        message = schemas.message(ty)?;
    }
    None
}

/// Query parameters: request fields the path and body leave unset, nested message fields
/// flattened as `a.b`.
struct Query<'s, 'a> {
    schemas: &'s mut Schemas<'a>,
    bound: BTreeSet<String>,
    out: Vec<Value>,
}

impl Query<'_, '_> {
    fn collect(&mut self, message: &Message, prefix: &str, stack: &mut Vec<String>) {
        for f in &message.fields {
            let name = format!("{prefix}{}", f.name);
            if self.bound.contains(&name) {
                continue;
            }
            // A member of a oneof whose other member the path or body sets cannot be sent too.
            let sibling_bound = |g: &Field| g.oneof == f.oneof && g.name != f.name && self.bound.contains(&format!("{prefix}{}", g.name));
            if f.oneof.is_some() && message.fields.iter().any(sibling_bound) {
                continue;
            }
            match &f.kind {
                FieldKind::Map(..) => {}
                FieldKind::Message(ty) if schemas::is_scalar_like(&ty.full_name()) => self.push(&name, f),
                FieldKind::Message(ty) => {
                    let full = ty.full_name();
                    if f.repeated || stack.len() >= QUERY_DEPTH || stack.contains(&full) {
                        continue;
                    }
                    let Some(nested) = self.schemas.message(ty) else { continue };
                    if schemas::well_known(&full).is_some() {
                        continue;
                    }
                    stack.push(full);
                    self.collect(nested, &format!("{name}."), stack);
                    stack.pop();
                }
                FieldKind::Scalar(_) | FieldKind::Enum(_) => self.push(&name, f),
            }
        }
    }

    fn push(&mut self, name: &str, f: &Field) {
        let mut param = json!({"name": name, "in": "query", "schema": self.schemas.parameter(f)});
        if f.repeated {
            param["style"] = json!("form");
            param["explode"] = json!(true);
        }
        schemas::describe(&mut param, &f.docs.join("\n"), f.deprecated);
        self.out.push(param);
    }
}

fn request_body(
    schemas: &mut Schemas<'_>,
    method: &Method,
    rule: &HttpRule,
    expanded: &Expanded,
    input: Option<&Message>,
) -> Option<Value> {
    let schema = match rule.body.as_str() {
        "" => return None,
        "*" => {
            let bound = &expanded.bound;
            let removed: Vec<String> = input
                .map(|m| m.fields.iter().filter(|f| bound.contains(&f.name)).map(|f| f.name.clone()).collect())
                .unwrap_or_default();
            schemas.body_without(&method.input, &removed)
        }
        field => match resolve(schemas, input, field) {
            Some(f) => schemas.field_type(f),
            None => json!({}),
        },
    };
    Some(match method.shape {
        CallShape::ClientStreaming | CallShape::BidiStreaming => json!({
            "description": "A stream of request messages, one JSON object per line.",
            "content": {"application/x-ndjson": {"schema": schema}}
        }),
        CallShape::Unary | CallShape::ServerStreaming => json!({"content": {"application/json": {"schema": schema}}}),
    })
}

fn responses(schemas: &mut Schemas<'_>, method: &Method, rule: &HttpRule) -> Value {
    let output = schemas.message(&method.output);
    let schema = match (rule.response_body.as_str(), output) {
        ("", _) => schemas.message_schema(&method.output),
        (field, Some(m)) => match resolve(schemas, Some(m), field) {
            Some(f) => schemas.field_type(f),
            None => json!({}),
        },
        (_, None) => json!({}),
    };
    let status = schemas.status();
    let ok = if rule.method.eq_ignore_ascii_case("head") {
        json!({"description": "OK (no body)."})
    } else {
        match method.shape {
            CallShape::Unary | CallShape::ClientStreaming => {
                json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
            }
            CallShape::ServerStreaming | CallShape::BidiStreaming => json!({
                "description": "A stream of response messages. As `application/x-ndjson`: one JSON object per \
                    line, `{\"result\": <message>}` for each message or `{\"error\": <status>}` when the call fails \
                    after the stream started. As `text/event-stream`: the same objects, one per `data:` line.",
                "content": {
                    "application/x-ndjson": {"schema": {"oneOf": [
                        {"type": "object", "properties": {"result": schema}, "required": ["result"]},
                        {"type": "object", "properties": {"error": status.clone()}, "required": ["error"]}
                    ]}},
                    "text/event-stream": {"schema": {
                        "type": "string",
                        "description": "Server-sent events; each `data:` line holds one object as in `application/x-ndjson`."
                    }}
                }
            }),
        }
    };
    json!({
        "200": ok,
        "default": {
            "description": "An error: the gRPC status as JSON, with the HTTP status mapped from its code.",
            "content": {"application/json": {"schema": status}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_the_first_paragraph() {
        let docs: Vec<String> = ["Gets a book.", "Fast.", "", "Details here."].map(String::from).to_vec();
        assert_eq!(
            summary_and_description(&docs),
            (Some("Gets a book. Fast.".to_owned()), Some("Details here.".to_owned()))
        );
        assert_eq!(summary_and_description(&[]), (None, None));
    }

    #[test]
    fn parameter_names_in_order() {
        assert_eq!(parameter_names("/v1/shelves/{shelf}/books/{book}:move"), ["shelf", "book"]);
    }
}
