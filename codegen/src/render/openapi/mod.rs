//! OpenAPI 3.1 documents for services, from the IR: each method's HTTP bindings
//! (`google.api.http`, or the default `POST /<package>.<Service>/<Method>`) become operations,
//! and the messages they use become JSON Schemas in the proto3 JSON mapping.
//!
//! Modules: `template` turns path templates into OpenAPI paths (multi-segment variables
//! expanded), `paths` builds operations (parameters, request bodies, responses), `schemas` builds
//! `components.schemas`.
//!
//! ```no_run
//! # fn demo(api: &switchboard_codegen::ir::Api) {
//! let service = &api.packages[0].services[0];
//! let document = switchboard_codegen::openapi::service_document(api, service);
//! println!("{}", serde_json::to_string_pretty(&document).unwrap());
//! # }
//! ```

mod paths;
mod schemas;
mod template;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::ir::{Api, Service};

pub use schemas::Index;

/// The OpenAPI version written.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// The OpenAPI document of one service (what a REST server for it would serve at
/// `/openapi.json`).
pub fn service_document(api: &Api, service: &Service) -> Value {
    document(api, &[service])
}

/// The OpenAPI document of several services (in the order given; tags in that order too).
/// Types come from `api`, which must be the IR the services were lowered into.
pub fn document(api: &Api, services: &[&Service]) -> Value {
    indexed_document(&Index::new(api), services)
}

/// [`document`] with the types looked up in `index` (built once for many documents).
pub fn indexed_document(index: &Index<'_>, services: &[&Service]) -> Value {
    let api = index.api;
    let mut schemas = schemas::Schemas::new(index);
    let mut paths = paths::Paths::default();
    let tags = tag_names(api, services);
    for (service, tag) in services.iter().zip(&tags) {
        for method in &service.methods {
            let docs = api.openapiv2.methods.get(&format!("{}.{}", full_name(service), method.name));
            paths.add_method(&mut schemas, service, tag, method, docs);
        }
    }
    let mut tag_objects: Vec<Value> = services
        .iter()
        .zip(&tags)
        .map(|(s, tag)| {
            let mut t = json!({"name": tag});
            let given = api.openapiv2.services.get(&full_name(s)).map_or("", |d| d.description.as_str());
            let docs = if given.is_empty() { s.docs.join("\n") } else { given.to_owned() };
            schemas::describe(&mut t, &docs, false);
            t
        })
        .collect();
    // Tags that only `openapiv2_operation` annotations name, in the order first used.
    for item in paths.items.values() {
        for op in item.values() {
            for t in op.get("tags").and_then(Value::as_array).into_iter().flatten() {
                if !tag_objects.iter().any(|o| o["name"] == *t) {
                    tag_objects.push(json!({"name": t}));
                }
            }
        }
    }
    let mut doc = Map::new();
    doc.insert("openapi".into(), json!(OPENAPI_VERSION));
    doc.insert("info".into(), info(api, services));
    doc.insert("tags".into(), Value::Array(tag_objects));
    let path_items: Map<String, Value> = paths.items.into_iter().map(|(k, v)| (k, Value::Object(v))).collect();
    doc.insert("paths".into(), Value::Object(path_items));
    if !paths.skipped.is_empty() {
        doc.insert("x-switchboard-skipped-bindings".into(), Value::Array(paths.skipped));
    }
    doc.insert("components".into(), json!({"schemas": schemas.finish()}));
    Value::Object(doc)
}

/// Tag per service: the name its `openapiv2_tag` gives, else its name, or its full name where two
/// services share a name.
fn tag_names(api: &Api, services: &[&Service]) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for s in services {
        *count.entry(s.name.as_str()).or_default() += 1;
    }
    services
        .iter()
        .map(|s| match api.openapiv2.services.get(&full_name(s)).filter(|d| !d.title.is_empty()) {
            Some(given) => given.title.clone(),
            None if count[s.name.as_str()] > 1 && !s.package.is_empty() => format!("{}.{}", s.package, s.name),
            None => s.name.clone(),
        })
        .collect()
}

fn full_name(s: &Service) -> String {
    if s.package.is_empty() { s.name.clone() } else { format!("{}.{}", s.package, s.name) }
}

/// Title: the service's full name, or the packages of several; version: the package's version
/// segment (`v1`, `v2beta1`) when there is exactly one, else `0.0.0`. What the services' files
/// say in grpc-gateway's `openapiv2_swagger` `info` replaces these (when they all say the same).
fn info(api: &Api, services: &[&Service]) -> Value {
    let mut packages: Vec<&str> = services.iter().map(|s| s.package.as_str()).collect();
    packages.dedup();
    packages.sort_unstable();
    packages.dedup();
    let title = match services {
        [one] => full_name(one),
        [] => "API".to_owned(),
        _ if packages.iter().all(|p| p.is_empty()) => services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        _ => packages.join(", "),
    };
    let version = match packages.as_slice() {
        [one] => one.rsplit('.').next().filter(|v| is_version(v)).unwrap_or("0.0.0"),
        _ => "0.0.0",
    };
    let mut info = json!({"title": title, "version": version});
    if let [one] = services {
        schemas::describe(&mut info, &one.docs.join("\n"), false);
    }
    let mut given = services.iter().filter_map(|s| api.openapiv2.files.get(&s.file));
    if let Some(first) = given.next() {
        if given.all(|other| other == first) {
            for (key, value) in [("title", &first.title), ("version", &first.version), ("description", &first.description)] {
                if !value.is_empty() {
                    info[key] = Value::String(value.clone());
                }
            }
        }
    }
    info
}

/// `v1`, `v1beta2`, `v2alpha`.
fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else { return false };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && rest[digits..].chars().all(|c| c.is_ascii_alphanumeric())
}
