//! The document served at `/openapi.json`: the services' own OpenAPI 3.1 documents (generated
//! code embeds one per service, derived from the proto), merged; for services without one (a
//! hand-written trait), paths and operations from the descriptor with free-form bodies.
//!
//! A router serving one OpenAPI service (one whose methods serve operations) answers that
//! service's document byte for byte, as the generator embedded it.

use serde_json::{json, Map, Value};

use super::routes::rules;
use super::template::{PathTemplate, Segment};
use crate::ServiceDescriptor;

/// The merged document of `services`, as JSON bytes.
pub fn document(services: &[&'static ServiceDescriptor]) -> Vec<u8> {
    if let [only] = services {
        if let (true, Some(text)) = (only.has_operations(), only.openapi) {
            return text.as_bytes().to_vec();
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": title(services), "version": "0.0.0" },
        "paths": {},
        "components": { "schemas": { "google.rpc.Status": status_schema() } },
    });
    for service in services {
        let part = service
            .openapi
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .unwrap_or_else(|| synthesize(service));
        merge(&mut doc, part);
    }
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
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
            let Ok(template) = PathTemplate::parse(rule.path) else { continue };
            let (path, params) = openapi_path(&template);
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

/// `/v1/{name=shelves/*}` → `/v1/shelves/{name_1}` with parameter names; `**` is one parameter.
fn openapi_path(template: &PathTemplate) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut params = Vec::new();
    for (i, seg) in template.segments.iter().enumerate() {
        out.push('/');
        let var = template.variables.iter().find(|v| (v.start..v.end).contains(&i));
        match (seg, var) {
            (Segment::Literal(l), _) => out.push_str(l),
            (_, Some(v)) if v.end - v.start == 1 => {
                params.push(v.field_path.clone());
                out.push_str(&format!("{{{}}}", v.field_path));
            }
            (_, v) => {
                let base = v.map_or("segment", |v| v.field_path.as_str());
                let name = format!("{base}_{}", params.len() + 1);
                out.push_str(&format!("{{{name}}}"));
                params.push(name);
            }
        }
    }
    if let Some(verb) = &template.verb {
        out.push(':');
        out.push_str(verb);
    }
    (out, params)
}
