//! Operations → [`Operation`] tables plus a request struct and a response enum each.

use serde_json::Value;

use super::schema::{percent_decode, Lowerer};
use super::{doc_lines, escape, follow_refs, one_line, Selection, Warning};
use crate::ident;
use crate::ir::model::{Body, Field, Model, ModelKind, Operation, Param, ResponseVariant, SecurityScheme, Type};

/// The schema of content that gives none: anything.
static ANY: Value = Value::Bool(true);

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Whether a path item key is an operation (not `parameters`, `summary`, ...).
pub(crate) fn is_method(key: &str) -> bool {
    METHODS.contains(&key)
}

/// Request media types switchboard reads and writes, most preferred first.
const PREFERRED: [&str; 5] =
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data", "application/octet-stream", "text/plain"];

pub(crate) struct Lowered {
    pub operations: Vec<Operation>,
    pub schemes: Vec<SecurityScheme>,
    pub warnings: Vec<Warning>,
}

pub(crate) fn lower_all<'a>(doc: &'a Value, schemas: &mut Lowerer<'a>, selection: &Selection) -> Lowered {
    let mut out = Lowered { operations: Vec::new(), schemes: Vec::new(), warnings: Vec::new() };
    let (schemes, mut warnings) = security_schemes(doc);
    out.warnings.append(&mut warnings);
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else { return out };
    let mut ids: std::collections::HashSet<String> = Default::default();
    for (path, item) in paths {
        let item_pointer = format!("/paths/{}", escape(path));
        let item = match item.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| doc.pointer(&percent_decode(p))) {
                Some(v) => v,
                None => {
                    out.warnings.push(Warning { pointer: item_pointer.clone(), message: format!("path item $ref {r:?} points at nothing; skipped") });
                    continue;
                }
            },
            None => item,
        };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let pointer = format!("{item_pointer}/{method}");
            let id = match op.get("operationId").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => format!("{method}_{}", path.replace(['{', '}'], "")),
            };
            let tags: Vec<String> =
                op.get("tags").and_then(Value::as_array).map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default();
            if !selection.keeps(&id, &tags) {
                continue;
            }
            // Unique ids (a document may repeat one, or spell two alike): suffix, until both
            // Rust names made from it (the trait method, the operation constant) are new.
            let mut unique = id.clone();
            let mut n = 2;
            loop {
                let (snake, constant) = (ident::snake(&unique), ident::constant(&unique));
                if !ids.contains(&snake) && !ids.contains(&constant) {
                    ids.insert(snake);
                    ids.insert(constant);
                    break;
                }
                unique = format!("{id}{n}");
                n += 1;
            }
            let mut ctx = OpContext { doc, schemas, warnings: &mut out.warnings, pointer: &pointer, id: &unique };
            let operation = ctx.operation(path, method, item, op, &tags, &schemes);
            out.operations.push(operation);
        }
    }
    // Keep only schemes some operation uses.
    out.schemes = schemes.into_iter().filter(|s| out.operations.iter().any(|o| o.security.iter().flatten().any(|n| n == &s.name))).collect();
    out
}

struct OpContext<'a, 'b, 'c> {
    doc: &'a Value,
    schemas: &'b mut Lowerer<'a>,
    warnings: &'c mut Vec<Warning>,
    pointer: &'c str,
    id: &'c str,
}

impl<'a> OpContext<'a, '_, '_> {
    fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        self.warnings.push(Warning { pointer: pointer.to_owned(), message: message.into() });
    }

    /// Follows a `$ref` to a component (parameters, request bodies, responses, headers).
    fn deref(&mut self, value: &'a Value, pointer: &str) -> Option<(&'a Value, String)> {
        let mut current = value;
        let mut at = pointer.to_owned();
        for _ in 0..16 {
            match current.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let Some(local) = r.strip_prefix('#') else {
                        self.warn(&at, format!("$ref {r:?} is not local; skipped"));
                        return None;
                    };
                    let local = percent_decode(local);
                    match self.doc.pointer(&local) {
                        Some(v) => {
                            current = v;
                            at = local;
                        }
                        None => {
                            self.warn(&at, format!("$ref {r:?} points at nothing; skipped"));
                            return None;
                        }
                    }
                }
                None => return Some((current, at)),
            }
        }
        self.warn(pointer, "$ref chain too long; skipped");
        None
    }

    fn operation(&mut self, path: &str, method: &str, item: &'a Value, op: &'a Value, tags: &[String], schemes: &[SecurityScheme]) -> Operation {
        let pointer = self.pointer.to_owned();
        let id = self.id.to_owned();
        let mut docs = Vec::new();
        if let Some(s) = op.get("summary").and_then(Value::as_str) {
            docs.extend(doc_lines(s));
        }
        if let Some(d) = op.get("description").and_then(Value::as_str) {
            if !docs.is_empty() {
                docs.push(String::new());
            }
            docs.extend(doc_lines(d));
        }
        // Path-item parameters, overridden by operation parameters with the same name and place.
        let mut raw: Vec<(&'a Value, String)> = Vec::new();
        let item_ptr = pointer.rsplit_once('/').map(|(a, _)| a.to_owned()).unwrap_or_default();
        for (source, base) in [(item.get("parameters"), format!("{item_ptr}/parameters")), (op.get("parameters"), format!("{pointer}/parameters"))] {
            let Some(Value::Array(list)) = source else { continue };
            for (i, p) in list.iter().enumerate() {
                let Some((p, at)) = self.deref(p, &format!("{base}/{i}")) else { continue };
                let key = |v: &Value| (v.get("name").and_then(Value::as_str).map(str::to_owned), v.get("in").and_then(Value::as_str).map(str::to_owned));
                raw.retain(|(q, _)| key(q) != key(p));
                raw.push((p, at));
            }
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut params = Vec::new();
        for (p, at) in raw {
            let (Some(name), Some(location)) = (p.get("name").and_then(Value::as_str), p.get("in").and_then(Value::as_str)) else {
                self.warn(&at, "parameter without `name` or `in`; skipped");
                continue;
            };
            if !matches!(location, "path" | "query" | "header" | "cookie") {
                self.warn(&at, format!("parameter location {location:?} is not one of path, query, header, cookie; skipped"));
                continue;
            }
            if location == "header" && matches!(name.to_ascii_lowercase().as_str(), "accept" | "content-type" | "authorization") {
                // OpenAPI says these header parameters are ignored.
                continue;
            }
            let required = location == "path" || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let style = p.get("style").and_then(Value::as_str).unwrap_or(match location {
                "query" | "cookie" => "form",
                _ => "simple",
            });
            let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(style == "form");
            let (schema, schema_at) = match p.get("schema") {
                Some(s) => (s, format!("{at}/schema")),
                None => match p.get("content").and_then(Value::as_object).and_then(|c| c.iter().next()) {
                    Some((media, c)) => (c.get("schema").unwrap_or(&ANY), format!("{at}/content/{}/schema", escape(media))),
                    None => (&ANY, at.clone()),
                },
            };
            let mut field_key = name.to_owned();
            if fields.iter().any(|f| f.name == field_key) {
                field_key = format!("{name}_{location}");
            }
            let mut field = self.schemas.field(&field_key, &schema, &schema_at, &format!("{id}_{name}"), required);
            field.docs = p.get("description").and_then(Value::as_str).map(doc_lines).unwrap_or_default();
            field.deprecated = p.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
            let shape = self.param_shape(&schema);
            params.push(Param { name: name.to_owned(), field: field_key, location: location.into(), style: style.into(), explode, required, shape });
            fields.push(field);
        }
        let body = self.body(op, &pointer, &id, &mut fields);
        let request = self.schemas.claim_operation_type(&format!("{id}_request"));
        self.schemas.push_operation_model(Model {
            name: request.clone(),
            pointer: pointer.clone(),
            docs: vec![format!("Parameters and body of `{}`.", one_line(&id))],
            deprecated: false,
            kind: ModelKind::Request { fields },
        });
        let variants = self.responses(op, &pointer, &id);
        let response = self.schemas.claim_operation_type(&format!("{id}_response"));
        self.schemas.push_operation_model(Model {
            name: response.clone(),
            pointer: format!("{pointer}/responses"),
            docs: vec![format!("Responses of `{}`.", one_line(&id))],
            deprecated: false,
            kind: ModelKind::Response { variants },
        });
        let security = self.security(op, schemes, &pointer);
        let event = match op.get("x-switchboard-event") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.warn(&format!("{pointer}/x-switchboard-event"), "expected `true` or `false`; the operation is not an event");
                false
            }
        };
        Operation {
            id,
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            pointer,
            docs,
            deprecated: op.get("deprecated").and_then(Value::as_bool).unwrap_or(false),
            tags: tags.to_vec(),
            params,
            body,
            request,
            response,
            security,
            event,
            key: None,
        }
    }

    /// How to read a parameter's text: from its schema (references followed).
    fn param_shape(&mut self, schema: &Value) -> String {
        let resolved = self.resolve(schema);
        let scalar = |v: &Value| -> &'static str {
            let t = match v.get("type") {
                Some(Value::String(t)) => t.as_str(),
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string"),
                _ => "string",
            };
            match t {
                "integer" => "integer",
                "number" => "number",
                "boolean" => "boolean",
                "object" => "object",
                "array" => "array",
                _ => "string",
            }
        };
        match scalar(resolved) {
            "array" => {
                let items = resolved.get("items").map_or(&Value::Null, |i| self.resolve(i));
                match scalar(items) {
                    "array" | "object" => "array:string".into(),
                    s => format!("array:{s}"),
                }
            }
            s => s.into(),
        }
    }

    /// The schema a parameter's text is read by: references followed, and a single-part
    /// allOf / nullable oneOf looked through.
    fn resolve<'v>(&self, schema: &'v Value) -> &'v Value
    where
        'a: 'v,
    {
        let mut current = schema;
        // A loop with a bound: `allOf: [{$ref: itself}]` must not spin.
        'outer: for _ in 0..16 {
            let Some(next) = follow_refs(self.doc, current) else { return &Value::Null };
            current = next;
            for key in ["allOf", "oneOf", "anyOf"] {
                if let Some(Value::Array(parts)) = current.get(key) {
                    let live: Vec<&Value> = parts.iter().filter(|p| p.get("type").and_then(Value::as_str) != Some("null")).collect();
                    if live.len() == 1 {
                        current = live[0];
                        continue 'outer;
                    }
                }
            }
            return current;
        }
        &Value::Null
    }

    fn body(&mut self, op: &'a Value, pointer: &str, id: &str, fields: &mut Vec<Field>) -> Option<Body> {
        let rb = op.get("requestBody")?;
        let (rb, at) = self.deref(rb, &format!("{pointer}/requestBody"))?;
        let content = rb.get("content").and_then(Value::as_object)?;
        if content.is_empty() {
            return None;
        }
        let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
        let mut medias: Vec<(usize, &String)> = content.keys().map(|m| (media_rank(m), m)).collect();
        medias.sort_by_key(|(rank, _)| *rank);
        let (_, chosen) = medias[0];
        let chosen = chosen.clone();
        let schema = content[&chosen].get("schema").unwrap_or(&ANY);
        let schema_at = format!("{at}/content/{}/schema", escape(&chosen));
        let kind = media_kind(&chosen);
        let mut field_key = "body".to_owned();
        while fields.iter().any(|f| f.name == field_key) {
            field_key.push('_');
        }
        let mut field = match kind {
            MediaKind::Structured => self.schemas.field(&field_key, &schema, &schema_at, &format!("{id}_body"), required),
            MediaKind::Binary => plain_field(&field_key, Type::Binary, required),
            MediaKind::Text => plain_field(&field_key, Type::String, required),
        };
        field.docs = rb.get("description").and_then(Value::as_str).map(doc_lines).unwrap_or_default();
        // Other media types are accepted when they carry the same kind of value.
        let content: Vec<String> = medias
            .iter()
            .map(|(_, m)| (*m).clone())
            .filter(|m| *m == chosen || (media_kind(m) == kind && (kind != MediaKind::Structured || content[m].get("schema") == content[&chosen].get("schema"))))
            .collect();
        fields.push(field);
        Some(Body { field: field_key, required, content })
    }

    fn responses(&mut self, op: &'a Value, pointer: &str, id: &str) -> Vec<ResponseVariant> {
        let mut out = Vec::new();
        let Some(Value::Object(responses)) = op.get("responses") else {
            self.warn(pointer, "operation without responses; its answer is typed as any JSON value");
            return vec![ResponseVariant { status: "default".into(), body: Some(Type::Json), content: Some("application/json".into()), docs: vec![] }];
        };
        for (status, response) in responses {
            let at = format!("{pointer}/responses/{}", escape(status));
            let status_ok = status == "default"
                || (status.len() == 3 && status.chars().all(|c| c.is_ascii_digit()))
                || (status.len() == 3 && status.as_bytes()[0].is_ascii_digit() && status[1..].eq_ignore_ascii_case("xx"));
            if !status_ok {
                self.warn(&at, format!("response status {status:?} is not a code, a range like 4XX, or default; skipped"));
                continue;
            }
            let Some((response, rat)) = self.deref(response, &at) else { continue };
            let docs: Vec<String> = response.get("description").and_then(Value::as_str).map(doc_lines).unwrap_or_default();
            let (body, content) = match response.get("content").and_then(Value::as_object) {
                Some(c) if !c.is_empty() => {
                    let mut medias: Vec<(usize, &String)> = c.keys().map(|m| (response_rank(m), m)).collect();
                    medias.sort_by_key(|(r, _)| *r);
                    let media = medias[0].1.clone();
                    let ty = match media_kind(&media) {
                        MediaKind::Structured if is_json(&media) || media == "*/*" => {
                            let schema = c[&media].get("schema").unwrap_or(&ANY);
                            let status_name = status.to_ascii_uppercase();
                            self.schemas.lower(&schema, &format!("{rat}/content/{}/schema", escape(&media)), &format!("{id}_response_{status_name}")).ty
                        }
                        MediaKind::Text | MediaKind::Structured => Type::String,
                        MediaKind::Binary => Type::Binary,
                    };
                    (Some(ty), Some(media))
                }
                _ => (None, None),
            };
            out.push(ResponseVariant { status: status.to_ascii_uppercase().replace("DEFAULT", "default"), body, content, docs });
        }
        if out.is_empty() {
            out.push(ResponseVariant { status: "default".into(), body: Some(Type::Json), content: Some("application/json".into()), docs: vec![] });
        }
        out
    }

    fn security(&mut self, op: &Value, schemes: &[SecurityScheme], pointer: &str) -> Vec<Vec<String>> {
        let requirements = op.get("security").or_else(|| self.doc.get("security"));
        let Some(Value::Array(reqs)) = requirements else { return vec![] };
        let mut out = Vec::new();
        let mut anonymous = false;
        for r in reqs {
            let Some(obj) = r.as_object() else { continue };
            if obj.is_empty() {
                anonymous = true;
                continue;
            }
            let names: Vec<String> = obj.keys().cloned().collect();
            if names.iter().all(|n| schemes.iter().any(|s| &s.name == n)) {
                out.push(names);
            } else {
                self.warn(pointer, format!("security requirement {:?} uses a scheme switchboard does not handle; ignored", names));
            }
        }
        // `{}` among the alternatives: anonymous access allowed, so nothing is enforced.
        if anonymous { vec![] } else { out }
    }
}

fn plain_field(name: &str, ty: Type, required: bool) -> Field {
    Field { name: name.into(), ty, required, nullable: false, default: None, docs: vec![], read_only: false, write_only: false, deprecated: false, boxed: false }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaKind {
    /// JSON, form or multipart: a schema-typed value.
    Structured,
    /// Raw bytes.
    Binary,
    /// Text.
    Text,
}

fn is_json(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    m == "application/json" || m.ends_with("+json")
}

fn media_kind(media: &str) -> MediaKind {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if is_json(&m) || m == "application/x-www-form-urlencoded" || m == "multipart/form-data" || m == "*/*" {
        MediaKind::Structured
    } else if m.starts_with("text/") || m.ends_with("+xml") || m == "application/xml" {
        MediaKind::Text
    } else {
        MediaKind::Binary
    }
}

fn media_rank(media: &str) -> usize {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    PREFERRED.iter().position(|p| *p == m).unwrap_or(if is_json(&m) { 0 } else { PREFERRED.len() })
}

fn response_rank(media: &str) -> usize {
    if is_json(media) { 0 } else if media == "*/*" { 1 } else { 2 }
}

fn security_schemes(doc: &Value) -> (Vec<SecurityScheme>, Vec<Warning>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let Some(Value::Object(schemes)) = doc.pointer("/components/securitySchemes") else { return (out, warnings) };
    for (name, s) in schemes {
        let at = format!("/components/securitySchemes/{}", escape(name));
        let s = match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')).and_then(|p| doc.pointer(p)) {
            Some(v) => v,
            None => s,
        };
        let kind = s.get("type").and_then(Value::as_str).unwrap_or("");
        let scheme = match kind {
            "http" => match s.get("scheme").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
                Some("bearer") => Some(("bearer", "", "")),
                Some("basic") => Some(("basic", "", "")),
                other => {
                    warnings.push(Warning { pointer: at.clone(), message: format!("HTTP auth scheme {other:?} is not handled (bearer and basic are); operations needing only it are open") });
                    None
                }
            },
            "oauth2" | "openIdConnect" => Some(("bearer", "", "")),
            "apiKey" => {
                let location = s.get("in").and_then(Value::as_str).unwrap_or("header");
                let param = s.get("name").and_then(Value::as_str).unwrap_or("");
                if param.is_empty() || !matches!(location, "header" | "query" | "cookie") {
                    warnings.push(Warning { pointer: at.clone(), message: "apiKey scheme needs `name` and `in` (header, query or cookie); ignored".into() });
                    None
                } else {
                    Some(("apiKey", location, param))
                }
            }
            other => {
                warnings.push(Warning { pointer: at.clone(), message: format!("security scheme type {other:?} is not handled; ignored") });
                None
            }
        };
        if let Some((kind, location, param)) = scheme {
            out.push(SecurityScheme { name: name.clone(), kind: kind.into(), location: location.into(), param: param.into() });
        }
    }
    (out, warnings)
}
