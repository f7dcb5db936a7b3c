//! The document served at `/openapi.json`: the services' own OpenAPI 3.1 documents (generated
//! code embeds one per service, derived from the proto), merged; for services without one (a
//! hand-written trait), paths and operations from the descriptor with free-form bodies.
//!
//! A router serving one OpenAPI service (one whose methods serve operations) answers that
//! service's document byte for byte, as the generator embedded it. Merged documents keep each
//! service's `servers` and `security` on its own operations (see [`combine`]).

use serde_json::{json, Map, Value};

use super::routes::rules;
use super::template::{Segment, Template};
use crate::ServiceDescriptor;

/// The merged document of `services`, as JSON bytes.
pub fn document(services: &[&'static ServiceDescriptor]) -> Vec<u8> {
    if let [only] = services {
        if let (true, Some(text)) = (only.has_operations(), only.openapi) {
            return text.as_bytes().to_vec();
        }
    }
    let parts = services
        .iter()
        .map(|service| {
            service.openapi.and_then(|text| serde_json::from_str::<Value>(text).ok()).unwrap_or_else(|| synthesize(service))
        })
        .collect();
    serde_json::to_vec_pretty(&combine(&title(services), parts)).unwrap_or_default()
}

/// Operation keys of a path item.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The services' documents as one. A document's `servers` and `security` apply to its own
/// operations only: when every document has the same ones they stay at the top level,
/// otherwise each path item gets its document's `servers` and each operation its document's
/// `security` (unless it has its own), so that no base path or requirement is lost or lent to
/// another service's operations. The documents' `info`, when they all have the same, is the
/// merged document's.
fn combine(title: &str, parts: Vec<Value>) -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": title, "version": "0.0.0" },
        "paths": {},
        "components": { "schemas": { "google.rpc.Status": status_schema() } },
    });
    let shared = |key: &str| {
        let first = parts.first()?.get(key)?;
        parts.iter().all(|p| p.get(key) == Some(first)).then(|| first.clone())
    };
    let (servers, security, info) = (shared("servers"), shared("security"), shared("info"));
    for mut part in parts {
        if servers.is_none() {
            push_down(&mut part, "servers", false);
        }
        if security.is_none() {
            push_down(&mut part, "security", true);
        }
        merge(&mut doc, part);
    }
    // One `info` for all (one service, or services whose proto file describes the API, as
    // grpc-gateway's `openapiv2_swagger` does): kept.
    for (key, value) in [("servers", servers), ("security", security), ("info", info)] {
        if let (Some(value), Some(obj)) = (value, doc.as_object_mut()) {
            obj.insert(key.to_owned(), value);
        }
    }
    doc
}

/// Moves the document-level `key` of `part` onto its path items (or, with `operations`, onto
/// each operation), where they do not say otherwise.
fn push_down(part: &mut Value, key: &str, operations: bool) {
    let Some(value) = part.as_object_mut().and_then(|p| p.remove(key)) else { return };
    let Some(Value::Object(paths)) = part.get_mut("paths") else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        if !operations {
            item.entry(key.to_owned()).or_insert_with(|| value.clone());
            continue;
        }
        for method in METHODS {
            if let Some(Value::Object(op)) = item.get_mut(method) {
                op.entry(key.to_owned()).or_insert_with(|| value.clone());
            }
        }
    }
}

fn title(services: &[&'static ServiceDescriptor]) -> String {
    let names: Vec<&str> = services.iter().map(|s| s.full_name).collect();
    if names.is_empty() { "switchboard".to_owned() } else { names.join(", ") }
}

fn merge(doc: &mut Value, part: Value) {
    let Value::Object(part) = part else { return };
    // Every kind of component (schemas, parameters, responses, securitySchemes, …): an OpenAPI
    // document's `$ref`s point into all of them.
    let kinds: Vec<String> = part
        .get("components")
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    if let (Some(Value::Object(components)), false) = (doc.get_mut("components"), kinds.is_empty()) {
        for kind in &kinds {
            components.entry(kind.clone()).or_insert_with(|| json!({}));
        }
    }
    let sections = [("paths", None), ("tags", None)].into_iter().chain(kinds.iter().map(|k| ("components", Some(k.as_str()))));
    for (section, key) in sections {
        let Some(src) = part.get(section) else { continue };
        let (src, dst) = match key {
            Some(k) => (src.get(k), doc[section].get_mut(k)),
            None => (Some(src), doc.get_mut(section)),
        };
        match (src, dst) {
            (Some(Value::Object(src)), Some(Value::Object(dst))) => {
                for (k, v) in src {
                    dst.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            (Some(Value::Array(src)), Some(Value::Array(dst))) => {
                for v in src {
                    if !dst.contains(v) {
                        dst.push(v.clone());
                    }
                }
            }
            (Some(src), None) => {
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert(section.to_owned(), src.clone());
                }
            }
            _ => {}
        }
    }
}

fn status_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error: the gRPC status code, a message and details (google.rpc.Status).",
        "properties": {
            "code": { "type": "integer", "format": "int32" },
            "message": { "type": "string" },
            "details": { "type": "array", "items": { "type": "object", "properties": { "@type": { "type": "string" } }, "additionalProperties": true } },
        },
    })
}

/// Paths and operations from the descriptor alone.
fn synthesize(service: &'static ServiceDescriptor) -> Value {
    let mut paths = Map::new();
    for method in service.methods {
        if let Some(op) = method.operation {
            let params: Vec<Value> = op
                .params
                .iter()
                .map(|p| {
                    let location = match p.location {
                        crate::api::Location::Path => "path",
                        crate::api::Location::Query => "query",
                        crate::api::Location::Header => "header",
                        crate::api::Location::Cookie => "cookie",
                    };
                    json!({"name": p.name, "in": location, "required": p.required || location == "path"})
                })
                .collect();
            let responses: Map<String, Value> = op
                .responses
                .iter()
                .map(|r| {
                    let mut resp = json!({"description": r.status});
                    if let Some(mt) = r.content {
                        resp["content"] = json!({ mt: {} });
                    }
                    (r.status.to_owned(), resp)
                })
                .collect();
            let mut entry = json!({"operationId": op.id, "parameters": params, "responses": responses});
            if let Some(body) = op.body {
                let content: Map<String, Value> = body.content.iter().map(|mt| ((*mt).to_owned(), json!({}))).collect();
                entry["requestBody"] = json!({"required": body.required, "content": content});
            }
            let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
            item[op.method.to_ascii_lowercase()] = entry;
            continue;
        }
        for (i, rule) in rules(method).into_iter().enumerate() {
            let Ok(template) = Template::parse_http(rule.path) else { continue };
            let (mut path, mut params) = openapi_path(&template);
            // Bindings of one route shape (`{name=shelves/*}` and `{shelf.name=shelves/*}`) are
            // one path item, as the router serves them: the first one's parameter names.
            let shape = blank_params(&path);
            if let Some(same) = paths.keys().find(|k| **k != path && blank_params(k) == shape) {
                params = param_names(same);
                path = same.clone();
            }
            let verb = rule.method.to_ascii_lowercase();
            if !["get", "put", "post", "delete", "patch", "head", "options", "trace"].contains(&verb.as_str()) {
                continue;
            }
            let entry = paths.entry(path).or_insert_with(|| json!({}));
            if entry.get(&verb).is_some() {
                continue;
            }
            let mut op = json!({
                "operationId": if i == 0 { format!("{}_{}", service.name, method.name) } else { format!("{}_{}_{}", service.name, method.name, i) },
                "tags": [service.name],
                "parameters": params.iter().map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}})).collect::<Vec<_>>(),
                "responses": {
                    "200": { "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "default": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/google.rpc.Status" } } } },
                },
            });
            if !rule.body.is_empty() {
                op["requestBody"] = json!({ "content": { "application/json": { "schema": { "type": "object" } } } });
            }
            if method.deprecated {
                op["deprecated"] = json!(true);
            }
            entry[&verb] = op;
        }
    }
    json!({ "paths": paths, "tags": [{ "name": service.name }] })
}

use switchboard_path::blank_params;

/// The `{name}`s of an OpenAPI path, in order.
fn param_names(path: &str) -> Vec<String> {
    path.split('{').skip(1).filter_map(|s| s.split_once('}')).map(|(name, _)| name.to_owned()).collect()
}

/// `/v1/{name=shelves/*}` → `/v1/shelves/{name_1}` with parameter names; `**` is one parameter.
fn openapi_path(template: &Template<'_>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut params = Vec::new();
    for (i, seg) in template.segments.iter().enumerate() {
        out.push('/');
        let var = template.variables.iter().find(|v| (v.start..v.end).contains(&i));
        match (seg, var) {
            (Segment::Literal(l), _) => out.push_str(l),
            (_, Some(v)) if v.end - v.start == 1 => {
                params.push(v.name.to_owned());
                out.push_str(&format!("{{{}}}", v.name));
            }
            (_, v) => {
                let base = v.map_or("segment", |v| v.name);
                let name = format!("{base}_{}", params.len() + 1);
                out.push_str(&format!("{{{name}}}"));
                params.push(name);
            }
        }
    }
    if let Some(verb) = template.verb {
        out.push(':');
        out.push_str(verb);
    }
    (out, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(path: &str, servers: Option<&str>, security: Option<&str>) -> Value {
        let mut doc = json!({ "paths": { path: { "get": {}, "post": { "security": [] } } } });
        if let Some(url) = servers {
            doc["servers"] = json!([{ "url": url }]);
        }
        if let Some(scheme) = security {
            doc["security"] = json!([{ scheme: [] }]);
        }
        doc
    }

    #[test]
    fn servers_and_security_stay_with_their_own_operations() {
        let doc = combine("t", vec![part("/a", Some("https://a.example/v1"), Some("key")), part("/b", None, None)]);
        assert_eq!(doc.get("servers"), None);
        assert_eq!(doc.get("security"), None);
        assert_eq!(doc["paths"]["/a"]["servers"][0]["url"], "https://a.example/v1");
        assert_eq!(doc["paths"]["/a"]["get"]["security"], json!([{ "key": [] }]));
        assert_eq!(doc["paths"]["/a"]["post"]["security"], json!([]), "an operation's own security wins");
        assert_eq!(doc["paths"]["/b"].get("servers"), None);
        assert_eq!(doc["paths"]["/b"]["get"].get("security"), None);
    }

    #[test]
    fn shared_servers_and_security_stay_at_the_top() {
        let same = |path| part(path, Some("https://api.example"), Some("key"));
        let doc = combine("t", vec![same("/a"), same("/b")]);
        assert_eq!(doc["servers"][0]["url"], "https://api.example");
        assert_eq!(doc["security"], json!([{ "key": [] }]));
        assert_eq!(doc["paths"]["/a"].get("servers"), None);
        assert_eq!(doc["paths"]["/b"]["get"].get("security"), None);
    }
}
