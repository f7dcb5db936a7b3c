//! The operation contract, prepared once per OpenAPI service for every transport that serves it:
//! the base path, and for each operation its path template, its prepared security schemes, its
//! compiled parameter and body schemas and how its responses go on the wire. The REST server and
//! the queue server both build an [`ApiService`] and check each request against it.
//!
//! The service's document (`ServiceDescriptor::openapi`) is parsed once, when the service is
//! added to a router or a queue server starts, and dropped again once every operation's schemas are compiled: the server
//! keeps the compiled validators (and the document's text, which it serves at `/openapi.json`),
//! not a parsed copy of the document. Each operation is found by method and path under `paths`;
//! its parameters are matched by name and location (operation level first, then path-item
//! level, following `$ref`s), and the schema of each is compiled, as is the request body schema
//! of each media type.
//!
//! Fail closed: an operation whose schemas cannot be found or compiled is not served
//! unvalidated. It answers 501 `UNIMPLEMENTED` naming the reason (see [`OpState::unavailable`]);
//! the rest of the service is served as usual.

// REST reads the HTTP parts (path template, parameters as text), queues the JSON form.
#![cfg_attr(not(all(feature = "rest", feature = "queue")), allow(dead_code, unused_imports))]

use std::sync::Arc;

use serde_json::Value;

use http::HeaderValue;

use crate::api::media::{classify, concrete, Media};
use crate::api::response::{self, Captured};
use tonic::Status;
use crate::api::validate::{self, Compiled, Dialect};
use crate::api::{Location, Operation, Scalar};
use switchboard_path::{Template, TemplateError};
use crate::ServiceDescriptor;

/// One OpenAPI service, prepared.
pub(crate) struct ApiService {
    /// Per method index: the operation's state (`None` for methods without one).
    pub(crate) ops: Vec<Option<Arc<OpState>>>,
}

/// One operation, prepared.
pub(crate) struct OpState {
    pub(crate) op: &'static Operation,
    /// The path template (under the base path).
    pub(crate) template: Template<'static>,
    /// The path as served: the base path and the operation's path.
    pub(crate) served_path: String,
    /// Realm of `WWW-Authenticate: Basic` challenges (the service name).
    pub(crate) realm: &'static str,
    /// Why the operation is not served (its schemas could not be compiled): it answers 501
    /// `UNIMPLEMENTED` with this reason. `None` when it is served.
    pub(crate) unavailable: Option<Box<str>>,
    /// Per parameter of `op.params`: its compiled schema.
    params: Box<[Option<Compiled>]>,
    /// Per media type of `op.body.content`: its compiled schema (`None`: the document gives
    /// that media type no schema, so any content is accepted).
    bodies: Box<[Option<Compiled>]>,
    /// `op.security`, ready to read.
    pub(crate) security: Box<[Box<[crate::api::security::Prepared]>]>,
    /// Per entry of `op.responses`: how its body is encoded and the `Content-Type` to send
    /// (`None`: no content).
    pub(crate) responses: Box<[Option<(Media, HeaderValue)>]>,
}

/// An operation's compiled schemas: per parameter, per body media type.
type Schemas = (Vec<Option<Compiled>>, Vec<Option<Compiled>>);

impl ApiService {
    /// Prepares the operations of `descriptor`; `None` when it has none.
    pub(crate) fn build(descriptor: &'static ServiceDescriptor) -> Result<Option<Self>, TemplateError> {
        if !descriptor.has_operations() {
            return Ok(None);
        }
        // The schema bundle switchboard-codegen wrote when there is one (each schema already
        // cut out and transformed); else the document, cut here.
        let source: Result<Source, String> = match (descriptor.schemas, descriptor.openapi) {
            (Some(text), _) => serde_json::from_str(text)
                .map_err(|e| format!("the service's schema bundle is not JSON: {e}"))
                .and_then(Source::bundle),
            (None, Some(text)) => serde_json::from_str(text)
                .map(Source::Document)
                .map_err(|e| format!("the service's OpenAPI document is not JSON: {e}")),
            (None, None) => Err("the service has no OpenAPI document to validate requests against".to_owned()),
        };
        let base_path = source.as_ref().map(Source::base_path).unwrap_or_default();
        let mut ops = Vec::with_capacity(descriptor.methods.len());
        for method in descriptor.methods {
            let Some(op) = method.operation else {
                ops.push(None);
                continue;
            };
            let template = Template::parse_openapi(&base_path, op.path)?;
            let (unavailable, (params, bodies)) = match source.as_ref().map_err(Clone::clone).and_then(|source| source.compile(op)) {
                Ok(schemas) => (None, schemas),
                Err(reason) => (Some(format!("`{}` is not served: {reason}", op.id).into_boxed_str()), (Vec::new(), Vec::new())),
            };
            ops.push(Some(Arc::new(OpState {
                op,
                template,
                served_path: format!("{base_path}{}", op.path),
                realm: descriptor.name,
                unavailable,
                params: params.into(),
                bodies: bodies.into(),
                security: crate::api::security::prepare(op),
                responses: op
                    .responses
                    .iter()
                    .map(|r| {
                        let mt = r.content?;
                        let ct = HeaderValue::from_str(concrete(mt))
                            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                        Some((classify(mt), ct))
                    })
                    .collect(),
            })));
        }
        // The parsed document or bundle is dropped here: only the compiled schemas stay.
        Ok(Some(ApiService { ops }))
    }
}

impl OpState {
    #[cfg(feature = "rest")]
    /// (HTTP) Checks the decoded parameters against their schemas: ``query parameter `limit`: must be
    /// at most 100``.
    /// Object parameters (read as strings) are first retyped by their schema's properties.
    pub(crate) fn validate_params(&self, fields: &mut crate::api::params::Fields) -> Result<(), String> {
        for (param, schema) in self.op.params.iter().zip(self.params.iter()) {
            let (Some(schema), Some(value)) = (schema, fields.get_mut(param.field)) else { continue };
            if param.shape == crate::api::ParamShape::Object {
                crate::api::params::coerce_object(param, value, |k| schema.property_shape(k)).map_err(|e| e.to_string())?;
            }
            let value = &*value;
            if let Err(e) = schema.validate(value) {
                let at = if e.pointer.is_empty() { String::new() } else { format!(" at {}", e.pointer) };
                return Err(format!("{} `{}`{at}: {}", noun(param.location), param.name, e.message));
            }
        }
        Ok(())
    }

    /// Checks a request body of media type `op.body.content[index]`: ``request body at
    /// /tags/0: must be a string``.
    pub(crate) fn validate_body(&self, index: usize, value: &Value) -> Result<(), String> {
        let Some(Some(schema)) = self.bodies.get(index) else { return Ok(()) };
        schema.validate(value).map_err(|e| {
            if e.pointer.is_empty() {
                format!("request body: {}", e.message)
            } else {
                format!("request body at {}: {}", e.pointer, e.message)
            }
        })
    }

    #[cfg(feature = "queue")]
    /// Checks a request that arrived as its request struct's JSON object (the queue transport):
    /// each parameter's entry against its schema, and the body entry against the schema of the
    /// first documented media type. Errors name the JSON pointer in that object:
    /// ``request body at /body/tags/0: must be a string``.
    pub(crate) fn validate_message(&self, message: &Value) -> Result<(), Status> {
        let empty = serde_json::Map::new();
        let fields = match message {
            Value::Object(fields) => fields,
            Value::Null => &empty,
            _ => return Err(Status::invalid_argument(format!("`{}`: the request must be a JSON object", self.op.id))),
        };
        for (i, param) in self.op.params.iter().enumerate() {
            let at = format!("/{}", escape(param.field));
            match fields.get(param.field).filter(|v| !v.is_null()) {
                None if param.required => {
                    return Err(Status::invalid_argument(format!(
                        "{} `{}` (at {at}) is required",
                        noun(param.location),
                        param.name
                    )))
                }
                None => {}
                Some(value) => {
                    if let Some(Some(schema)) = self.params.get(i) {
                        if let Err(e) = schema.validate(value) {
                            return Err(Status::invalid_argument(format!(
                                "{} `{}` at {at}{}: {}",
                                noun(param.location),
                                param.name,
                                e.pointer,
                                e.message
                            )));
                        }
                    }
                }
            }
        }
        if let Some(spec) = self.op.body {
            let at = format!("/{}", escape(spec.field));
            match fields.get(spec.field).filter(|v| !v.is_null()) {
                None if spec.required => {
                    return Err(Status::invalid_argument(format!("the request body (at {at}) is required")));
                }
                None => {}
                Some(value) => {
                    if let Some(Some(schema)) = self.bodies.first() {
                        if let Err(e) = schema.validate(value) {
                            return Err(Status::invalid_argument(format!("request body at {at}{}: {}", e.pointer, e.message)));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[cfg(feature = "rest")]
    /// The type of property `name` of a form or multipart body of media type
    /// `op.body.content[index]`: its scalar type and whether it is an array.
    pub(crate) fn property_shape(&self, index: usize, name: &str) -> Option<(Scalar, bool)> {
        self.bodies.get(index)?.as_ref()?.property_shape(name)
    }
}

/// What a handler answered, ready for the wire: the HTTP status, the `Content-Type` (`None`
/// without content) and the body. The same on every transport: REST sends it as the HTTP
/// response, the queue transport as a reply frame (`sb-http-status`, `content-type`, body; see
/// docs/queue-protocol.md).
pub(crate) type Answer<'a> = (u16, Option<&'a HeaderValue>, bytes::Bytes);

impl OpState {
    /// The status, media type and body of the variant the handler chose.
    pub(crate) fn answer(&self, captured: Result<Captured, response::Error>) -> Result<Answer<'_>, Status> {
        let captured = captured.map_err(|e| Status::internal(format!("`{}`: {e}", self.op.id)))?;
        let Some(spec) = self.op.responses.get(captured.index) else {
            return Err(Status::internal("the response variant has no documented response"));
        };
        let status = match (captured.status, spec.status.parse::<u16>()) {
            (Some(s), _) | (None, Ok(s)) => s,
            (None, Err(_)) => 500,
        };
        if !(200..=999).contains(&status) {
            return Err(Status::internal(format!("`{}` answered the status {status}", self.op.id)));
        }
        let kind = self.responses.get(captured.index).and_then(|r| r.as_ref());
        Ok(match (captured.body, kind) {
            (response::Body::None, _) | (_, None) => (status, None, bytes::Bytes::new()),
            (body, Some((media, ct))) => (status, Some(ct), bytes::Bytes::from(response::body_bytes(body, *media))),
        })
    }
}

/// Where an operation's schemas come from.
enum Source {
    /// The OpenAPI document: each schema is cut out of it and transformed here.
    Document(Value),
    /// A schema bundle ([`schema_bundle`]): each schema ready to compile.
    Bundle { dialect: Dialect, bundle: Value },
}

impl Source {
    fn bundle(bundle: Value) -> Result<Self, String> {
        if bundle.get("format").and_then(Value::as_u64) != Some(BUNDLE_FORMAT) {
            return Err(format!("the service's schema bundle is not in format {BUNDLE_FORMAT}: regenerate the code with this switchboard"));
        }
        if let Some(reason) = bundle.get("error").and_then(Value::as_str) {
            return Err(reason.to_owned());
        }
        let dialect = match bundle.get("dialect").and_then(Value::as_str) {
            Some("3.0") => Dialect::V30,
            _ => Dialect::V31,
        };
        Ok(Source::Bundle { dialect, bundle })
    }

    fn base_path(&self) -> String {
        match self {
            Source::Document(doc) => base_path(doc),
            Source::Bundle { bundle, .. } => bundle.get("base_path").and_then(Value::as_str).unwrap_or_default().to_owned(),
        }
    }

    fn compile(&self, op: &'static Operation) -> Result<Schemas, String> {
        match self {
            Source::Document(doc) => compile(doc, op),
            Source::Bundle { dialect, bundle } => compile_bundled(bundle, *dialect, op),
        }
    }
}

/// An operation the server will not serve: `(METHOD, path, reason)`.
pub type Unservable = (String, String, String);

/// Version of the schema bundle's format.
const BUNDLE_FORMAT: u64 = 2;

/// The HTTP methods of a path item.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// A bundle's key for a parameter: `"<in> <name>"`, header names in lower case.
fn param_key(location: &str, name: &str) -> String {
    if location == "header" {
        format!("header {}", name.to_ascii_lowercase())
    } else {
        format!("{location} {name}")
    }
}

fn location_name(location: Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
        Location::Cookie => "cookie",
    }
}

/// The schema bundle of an OpenAPI document (as JSON text), which switchboard-codegen writes
/// beside the generated code so that a server compiles each parameter and request body schema
/// without parsing the document: for every operation (`"GET /pets/{petId}"`), each parameter's
/// and each request body media type's schema, transformed for the validator and checked to
/// compile (or the reason it does not), and the definitions they reach through `$ref`, once
/// each under `defs` (a document's schemas refer to the same components again and again).
/// Also returns the operations with a schema that cannot be compiled, `(METHOD, path,
/// reason)`: the server answers those with 501 `UNIMPLEMENTED`.
///
/// A document that cannot be read (nested deeper than the JSON parser goes) still gets a
/// bundle, saying why: every operation then answers 501 with that reason. The error is the
/// reason, with that bundle's text.
pub fn schema_bundle(document: &str) -> Result<(String, Vec<Unservable>), (String, String)> {
    match serde_json::from_str(document) {
        Ok(doc) => Ok(schema_bundle_of(&doc)),
        Err(e) => {
            let reason = format!("the document is not JSON: {e}");
            Err((reason.clone(), serde_json::json!({ "format": BUNDLE_FORMAT, "error": reason }).to_string()))
        }
    }
}

/// [`schema_bundle`] of a document already parsed.
pub fn schema_bundle_of(doc: &Value) -> (String, Vec<Unservable>) {
    let dialect = Dialect::of(doc);
    let mut found: Vec<(&str, &str)> = Vec::new();
    if let Some(Value::Object(paths)) = doc.get("paths") {
        for (path, item) in paths {
            found.extend(METHODS.iter().filter(|m| item.get(**m).is_some()).map(|m| (path.as_str(), *m)));
        }
    }
    let mut builder = validate::BundleBuilder::new(doc, dialect);
    let planned: Vec<Vec<Slot>> = found
        .iter()
        .map(|(path, method)| {
            let item_pointer = format!("/paths/{}", escape(path));
            plan_operation(doc, &mut builder, &item_pointer, &format!("{item_pointer}/{method}"))
        })
        .collect();
    let (defs, mut entries) = builder.finish();
    let mut operations = serde_json::Map::new();
    let mut unservable = Vec::new();
    for ((path, method), slots) in found.iter().zip(planned) {
        let mut first_error = None;
        let (mut params, mut bodies) = (serde_json::Map::new(), serde_json::Map::new());
        for slot in slots {
            let failed = |e: &dyn std::fmt::Display| format!("{} cannot be compiled: {e}", slot.what);
            let value = match slot.entry {
                Ok(Some(i)) => match std::mem::replace(&mut entries[i], Ok(Value::Null)) {
                    Ok(entry) => Ok(entry),
                    Err(e) => Err(failed(&e)),
                },
                Ok(None) => Ok(Value::Null), // a media type without a schema: any content
                Err(e) => Err(failed(&e)),
            };
            let value = value.unwrap_or_else(|reason| {
                first_error.get_or_insert_with(|| reason.clone());
                validate::object([("error", Value::String(reason))])
            });
            if slot.body { bodies.insert(slot.key, value) } else { params.insert(slot.key, value) };
        }
        if let Some(reason) = first_error {
            unservable.push((method.to_ascii_uppercase(), (*path).to_owned(), reason));
        }
        let entry = validate::object([("params", Value::Object(params)), ("bodies", Value::Object(bodies))]);
        operations.insert(format!("{} {path}", method.to_ascii_uppercase()), entry);
    }
    let bundle = validate::object([
        ("format", Value::from(BUNDLE_FORMAT)),
        ("dialect", Value::from(if dialect == Dialect::V30 { "3.0" } else { "3.1" })),
        ("base_path", Value::String(base_path(doc))),
        ("defs", Value::Array(defs)),
        ("operations", Value::Object(operations)),
    ]);
    // Plain JSON values with string keys: writing them cannot fail.
    let text = serde_json::to_string(&bundle).unwrap_or_default();
    (text, unservable)
}

/// One parameter or body media type of an operation, planned into a bundle.
struct Slot {
    /// A body media type (else a parameter).
    body: bool,
    /// The parameter's key ([`param_key`]) or the media type.
    key: String,
    /// Its entry in the bundle builder (`None`: a media type without a schema), or why it
    /// cannot be transformed.
    entry: Result<Option<usize>, validate::SchemaError>,
    /// What it is, for messages: ``the schema of query parameter `q` ``.
    what: String,
}

/// The schemas of one operation (`operation`, in path item `item`), added to `builder`.
fn plan_operation(doc: &Value, builder: &mut validate::BundleBuilder<'_>, item: &str, operation: &str) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::new();
    // Operation-level parameters first: they override the path item's.
    for base in [operation, item] {
        let list = format!("{base}/parameters");
        let count = doc.pointer(&list).and_then(Value::as_array).map_or(0, Vec::len);
        for i in 0..count {
            let Some((pointer, param)) = resolve(doc, format!("{list}/{i}")) else { continue };
            let (Some(name), Some(location)) = (param.get("name").and_then(Value::as_str), param.get("in").and_then(Value::as_str)) else {
                continue;
            };
            let key = param_key(location, name);
            if slots.iter().any(|s| !s.body && s.key == key) {
                continue;
            }
            let Some(schema) = schema_of(&pointer, param) else { continue };
            let entry = builder.add(&schema).map(Some);
            slots.push(Slot { body: false, key, entry, what: format!("the schema of {location} parameter `{name}`") });
        }
    }
    if let Some((pointer, body)) = resolve(doc, format!("{operation}/requestBody")) {
        for (mt, media) in body.get("content").and_then(Value::as_object).into_iter().flatten() {
            let entry = if media.get("schema").is_some() {
                builder.add(&format!("{pointer}/content/{}/schema", escape(mt))).map(Some)
            } else {
                Ok(None)
            };
            slots.push(Slot { body: true, key: mt.clone(), entry, what: format!("the `{mt}` request body schema") });
        }
    }
    slots
}

/// Compiles the parameter and body schemas of `op` from a schema bundle; the reason when one
/// cannot be.
fn compile_bundled(bundle: &Value, dialect: Dialect, op: &'static Operation) -> Result<Schemas, String> {
    let entry = bundle
        .get("operations")
        .and_then(|ops| ops.get(format!("{} {}", op.method, op.path)))
        .ok_or_else(|| format!("the document has no `{} {}` operation", op.method, op.path))?;
    let defs: &[Value] = bundle.get("defs").and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let compile = |entry: &Value| -> Result<Compiled, String> {
        if let Some(reason) = entry.get("error").and_then(Value::as_str) {
            return Err(reason.to_owned());
        }
        validate::compile_entry(entry, defs, dialect).map_err(|e| e.to_string())
    };
    let mut params = Vec::with_capacity(op.params.len());
    for param in op.params {
        let found = entry
            .get("params")
            .and_then(|p| p.get(param_key(location_name(param.location), param.name)))
            .ok_or_else(|| format!("the document has no schema for {} `{}`", noun(param.location), param.name))?;
        params.push(Some(compile(found)?));
    }
    let mut bodies = Vec::new();
    if let Some(body) = op.body {
        for mt in body.content {
            match entry.get("bodies").and_then(|b| b.get(*mt)) {
                None => return Err(format!("the document's request body has no `{mt}` content")),
                Some(Value::Null) => bodies.push(None),
                Some(found) => bodies.push(Some(compile(found)?)),
            }
        }
    }
    Ok((params, bodies))
}

fn noun(location: Location) -> &'static str {
    match location {
        Location::Path => "path parameter",
        Location::Query => "query parameter",
        Location::Header => "header",
        Location::Cookie => "cookie",
    }
}

/// The path of `servers[0].url` (`/v1` from `https://api.example.com/v1/`), server variables
/// replaced by their defaults; empty when there is none.
pub(crate) fn base_path(doc: &Value) -> String {
    let Some(server) = doc.pointer("/servers/0") else { return String::new() };
    let Some(url) = server.get("url").and_then(Value::as_str) else { return String::new() };
    let mut url = url.to_owned();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, var) in vars {
            if let Some(default) = var.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
        None if url.starts_with('/') => url,
        None => return String::new(),
    };
    let path = path.trim_end_matches('/');
    if path.contains(['{', '}']) {
        return String::new();
    }
    path.to_owned()
}

use validate::escape_token as escape;

/// Follows `$ref`s (local ones) from the value at `pointer`; returns the final pointer and value.
fn resolve(doc: &Value, mut pointer: String) -> Option<(String, &Value)> {
    let mut value = doc.pointer(&pointer)?;
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else { return Some((pointer, value)) };
        let fragment = reference.strip_prefix('#')?;
        pointer = percent_encoding::percent_decode_str(fragment).decode_utf8().ok()?.into_owned();
        value = doc.pointer(&pointer)?;
    }
    None
}

/// Compiles the parameter and body schemas of `op`; the reason when one cannot be.
fn compile(doc: &Value, op: &'static Operation) -> Result<Schemas, String> {
    let dialect = Dialect::of(doc);
    let item = format!("/paths/{}", escape(op.path));
    let method = op.method.to_ascii_lowercase();
    let operation = format!("{item}/{method}");
    if doc.pointer(&operation).is_none() {
        return Err(format!("the document has no `{} {}` operation", op.method, op.path));
    }
    let mut params = Vec::with_capacity(op.params.len());
    for param in op.params {
        let pointer = [&operation, &item]
            .into_iter()
            .find_map(|base| param_schema(doc, base, param.name, param.location))
            .ok_or_else(|| format!("the document has no schema for {} `{}`", noun(param.location), param.name))?;
        let compiled = validate::compile(doc, dialect, &pointer)
            .map_err(|e| format!("the schema of {} `{}` cannot be compiled: {e}", noun(param.location), param.name))?;
        params.push(Some(compiled));
    }
    let mut bodies = Vec::new();
    if let Some(body) = op.body {
        let (pointer, value) = resolve(doc, format!("{operation}/requestBody"))
            .ok_or_else(|| "the document describes no request body for it".to_owned())?;
        for mt in body.content {
            let media = value
                .get("content")
                .and_then(|c| c.get(*mt))
                .ok_or_else(|| format!("the document's request body has no `{mt}` content"))?;
            if media.get("schema").is_none() {
                bodies.push(None); // no schema: any content of this type
                continue;
            }
            let compiled = validate::compile(doc, dialect, &format!("{pointer}/content/{}/schema", escape(mt)))
                .map_err(|e| format!("the `{mt}` request body schema cannot be compiled: {e}"))?;
            bodies.push(Some(compiled));
        }
    }
    Ok((params, bodies))
}

/// The pointer to the schema of parameter `name` in `location` among `{base}/parameters`.
fn param_schema(doc: &Value, base: &str, name: &str, location: Location) -> Option<String> {
    let list = format!("{base}/parameters");
    let count = doc.pointer(&list)?.as_array()?.len();
    let wanted = match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
        Location::Cookie => "cookie",
    };
    for i in 0..count {
        let Some((pointer, param)) = resolve(doc, format!("{list}/{i}")) else { continue };
        let same_name = match (param.get("name").and_then(Value::as_str), location) {
            (Some(n), Location::Header) => n.eq_ignore_ascii_case(name),
            (Some(n), _) => n == name,
            (None, _) => false,
        };
        if !same_name || param.get("in").and_then(Value::as_str) != Some(wanted) {
            continue;
        }
        return schema_of(&pointer, param);
    }
    None
}

/// The pointer to the schema of the parameter object at `pointer`: its `schema`, else the
/// schema of its (first) `content` media type.
fn schema_of(pointer: &str, param: &Value) -> Option<String> {
    if param.get("schema").is_some() {
        return Some(format!("{pointer}/schema"));
    }
    let (mt, media) = param.get("content")?.as_object()?.iter().next()?;
    media.get("schema")?;
    Some(format!("{pointer}/content/{}/schema", escape(mt)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_paths_come_from_the_first_server() {
        let doc = |url: &str| json!({"servers": [{"url": url, "variables": {"v": {"default": "v2"}}}]});
        assert_eq!(base_path(&doc("https://api.example.com/v1/")), "/v1");
        assert_eq!(base_path(&doc("https://api.example.com")), "");
        assert_eq!(base_path(&doc("/api/{v}")), "/api/v2");
        assert_eq!(base_path(&doc("http://x/{other}")), "");
        assert_eq!(base_path(&json!({})), "");
    }

    #[test]
    fn a_schema_bundle_validates_as_the_document_does() {
        use crate::api::{Param, ParamShape, RequestBody};
        let doc = json!({
            "openapi": "3.0.3",
            "servers": [{"url": "https://example.com/api/"}],
            "paths": {"/pets/{id}": {
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "put": {
                    "parameters": [{"name": "X-Trace", "in": "header", "schema": {"type": "string", "pattern": "^t-[0-9]+$"}}],
                    "requestBody": {"content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}},
                        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Pet"}},
                        "text/plain": {}
                    }},
                    "responses": {"204": {"description": "done"}}
                },
                "post": {"parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "pattern": "(unclosed"}}], "responses": {}}
            }},
            "components": {
                "parameters": {"Id": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int32", "minimum": 1}}},
                "schemas": {"Pet": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1, "nullable": true},
                    "age": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}}
                }}}
            }
        });
        const PARAMS: &[Param] = &[Param::path("id", ParamShape::INTEGER), Param::header("X-Trace", ParamShape::STRING)];
        const CONTENT: &[&str] = &["application/json", "application/x-www-form-urlencoded", "text/plain"];
        static OP: Operation = Operation::new("putPet", "PUT", "/pets/{id}").params(PARAMS).body(RequestBody::new("body", true, CONTENT));
        static BAD: Operation = Operation::new("postPet", "POST", "/pets/{id}").params(&[Param::query("q", ParamShape::STRING)]);
        let (text, unservable) = schema_bundle(&doc.to_string()).unwrap();
        assert_eq!(unservable.len(), 1, "{unservable:?}");
        assert_eq!((unservable[0].0.as_str(), unservable[0].1.as_str()), ("POST", "/pets/{id}"));
        let bundled = Source::bundle(serde_json::from_str(&text).unwrap()).unwrap();
        let document = Source::Document(doc);
        assert_eq!(bundled.base_path(), "/api");
        assert_eq!(document.base_path(), "/api");
        let (bp, bb) = bundled.compile(&OP).unwrap();
        let (dp, db) = document.compile(&OP).unwrap();
        assert_eq!((bp.len(), bb.len(), bb[2].is_none()), (2, 3, true));
        for value in [json!(0), json!(1), json!(2147483648_i64), json!("1")] {
            let (b, d) = (bp[0].as_ref().unwrap().validate(&value), dp[0].as_ref().unwrap().validate(&value));
            assert_eq!(b, d, "id = {value}");
        }
        for value in [json!("t-1"), json!("x")] {
            assert_eq!(bp[1].as_ref().unwrap().validate(&value), dp[1].as_ref().unwrap().validate(&value), "trace = {value}");
        }
        for value in [json!({"name": "a"}), json!({"name": null}), json!({"name": ""}), json!({"age": 1}), json!({"name": "a", "tags": [1]})] {
            let (b, d) = (bb[0].as_ref().unwrap().validate(&value), db[0].as_ref().unwrap().validate(&value));
            assert_eq!(b, d, "body = {value}");
        }
        assert!(bb[0].as_ref().unwrap().validate(&json!({"name": "a"})).is_ok());
        assert_eq!(bb[1].as_ref().unwrap().property_shape("tags"), Some((Scalar::String, true)));
        assert_eq!(bb[1].as_ref().unwrap().property_shape("age"), db[1].as_ref().unwrap().property_shape("age"));
        // The operation whose schema does not compile is not served, by either source.
        assert!(bundled.compile(&BAD).unwrap_err().contains("query parameter `q`"));
        assert!(document.compile(&BAD).is_err());
    }

    #[test]
    fn a_bundle_holds_each_definition_once_and_a_broken_one_fails_every_schema_reaching_it() {
        let body = |name: &str| json!({"requestBody": {"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}, "responses": {}});
        let doc = json!({
            "openapi": "3.1.0",
            "paths": {
                "/a": {"post": body("Pet"), "put": body("Pet")},
                "/b": {"post": body("Owner"), "put": body("Broken")},
                "/c": {"post": body("Tag")}
            },
            "components": {"schemas": {
                "Tag": {"type": "object", "properties": {"name": {"type": "string"}}},
                "Pet": {"type": "object", "properties": {"tag": {"$ref": "#/components/schemas/Tag"}, "owner": {"$ref": "#/components/schemas/Owner"}}},
                "Owner": {"type": "object", "properties": {"pets": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}},
                "Broken": {"type": "object", "properties": {"tag": {"$ref": "#/components/schemas/Tag"}, "x": {"$ref": "#/components/schemas/Missing"}}}
            }}
        });
        let (text, unservable) = schema_bundle(&doc.to_string()).unwrap();
        let bundle: Value = serde_json::from_str(&text).unwrap();
        // Tag, Pet, Owner and Broken: once each, however many operations reach them.
        assert_eq!(bundle["defs"].as_array().unwrap().len(), 4, "{text}");
        assert_eq!(unservable.len(), 1, "{unservable:?}");
        assert_eq!((unservable[0].0.as_str(), unservable[0].1.as_str()), ("PUT", "/b"));
        assert!(unservable[0].2.contains("Missing"), "{unservable:?}");
        let bundled = Source::bundle(bundle).unwrap();
        const JSON: &[&str] = &["application/json"];
        static PET: Operation = Operation::new("putPet", "PUT", "/a").body(crate::api::RequestBody::new("body", true, JSON));
        static OWNER: Operation = Operation::new("postOwner", "POST", "/b").body(crate::api::RequestBody::new("body", true, JSON));
        static BROKEN: Operation = Operation::new("putBroken", "PUT", "/b").body(crate::api::RequestBody::new("body", true, JSON));
        let (_, pet) = bundled.compile(&PET).unwrap();
        let pet = pet[0].as_ref().unwrap();
        assert!(pet.validate(&json!({"tag": {"name": "a"}, "owner": {"pets": [{"tag": {"name": "b"}}]}})).is_ok());
        // The recursion through Owner reaches the nested Tag: a number there is refused.
        assert!(pet.validate(&json!({"owner": {"pets": [{"tag": {"name": 1}}]}})).is_err());
        let (_, owner) = bundled.compile(&OWNER).unwrap();
        assert!(owner[0].as_ref().unwrap().validate(&json!({"pets": [{"tag": {"name": 2}}]})).is_err());
        assert!(bundled.compile(&BROKEN).unwrap_err().contains("Missing"));
    }

    #[test]
    fn a_document_too_deep_to_read_gets_a_bundle_saying_so() {
        let deep = format!("{{\"openapi\": \"3.1.0\", \"x-deep\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        let (reason, text) = schema_bundle(&deep).unwrap_err();
        assert!(reason.contains("recursion limit"), "{reason}");
        let error = Source::bundle(serde_json::from_str(&text).unwrap()).err().unwrap();
        assert_eq!(error, reason);
    }

    #[test]
    fn refs_are_followed_to_parameter_schemas() {
        let doc = json!({
            "paths": {"/pets/{id}": {
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "get": {"parameters": [{"name": "X-Trace", "in": "header", "content": {"text/plain": {"schema": {"type": "string"}}}}]}
            }},
            "components": {"parameters": {"Id": {"name": "id", "in": "path", "schema": {"type": "integer"}}}}
        });
        let op = "/paths/~1pets~1{id}/get";
        let item = "/paths/~1pets~1{id}";
        assert_eq!(param_schema(&doc, op, "id", Location::Path), None);
        assert_eq!(param_schema(&doc, item, "id", Location::Path).as_deref(), Some("/components/parameters/Id/schema"));
        assert_eq!(
            param_schema(&doc, op, "x-trace", Location::Header).as_deref(),
            Some("/paths/~1pets~1{id}/get/parameters/0/content/text~1plain/schema")
        );
    }
}
