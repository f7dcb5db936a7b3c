//! What the REST server prepares once per OpenAPI service: the base path, and for each operation
//! its path template and compiled parameter and body schemas.
//!
//! The service's document (`ServiceDescriptor::openapi`) is parsed once, when the service is
//! added to a router. Each operation is found by method and path under `paths`; its parameters
//! are matched by name and location (operation level first, then path-item level, following
//! `$ref`s), and the schema of each is compiled, as is the request body schema of each media
//! type. A part of the document that cannot be found or compiled is not validated (the request
//! is still decoded and typed by serde); nothing here fails the server.

use std::sync::Arc;

use serde_json::Value;

use http::HeaderValue;

use super::media::{classify, concrete, Media};
use super::validate::{Direction, SchemaId, SchemaSet};
use super::{Location, Operation, Scalar};
use crate::rest::template::{Template, TemplateError};
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
    schemas: Option<Arc<SchemaSet>>,
    /// Per parameter of `op.params`: its compiled schema.
    params: Box<[Option<SchemaId>]>,
    /// Per media type of `op.body.content`: its compiled schema.
    bodies: Box<[Option<SchemaId>]>,
    /// `op.security`, ready to read.
    pub(crate) security: Box<[Box<[super::security::Prepared]>]>,
    /// Per entry of `op.responses`: how its body is encoded and the `Content-Type` to send
    /// (`None`: no content).
    pub(crate) responses: Box<[Option<(Media, HeaderValue)>]>,
}

impl ApiService {
    /// Prepares the operations of `descriptor`; `None` when it has none.
    pub(crate) fn build(descriptor: &'static ServiceDescriptor) -> Result<Option<Self>, TemplateError> {
        if !descriptor.has_operations() {
            return Ok(None);
        }
        let doc: Option<Value> = descriptor.openapi.and_then(|text| serde_json::from_str(text).ok());
        let base_path = doc.as_ref().map(base_path).unwrap_or_default();
        let mut set = doc.as_ref().map(SchemaSet::new);
        let mut pending = Vec::new();
        for method in descriptor.methods {
            let Some(op) = method.operation else {
                pending.push(None);
                continue;
            };
            let template = Template::parse_openapi(&base_path, op.path)?;
            let (params, bodies) = match (&doc, &mut set) {
                (Some(doc), Some(set)) => compile(doc, set, op),
                _ => (vec![None; op.params.len()], vec![None; op.body.map_or(0, |b| b.content.len())]),
            };
            pending.push(Some((op, template, params, bodies)));
        }
        let schemas = set.map(Arc::new);
        let ops = pending
            .into_iter()
            .map(|p| {
                p.map(|(op, template, params, bodies)| {
                    Arc::new(OpState {
                        op,
                        template,
                        served_path: format!("{base_path}{}", op.path),
                        realm: descriptor.name,
                        schemas: schemas.clone(),
                        params: params.into(),
                        bodies: bodies.into(),
                        security: super::security::prepare(op),
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
                    })
                })
            })
            .collect();
        Ok(Some(ApiService { ops }))
    }
}

impl OpState {
    /// Checks the decoded parameters against their schemas: ``query parameter `limit`: must be
    /// at most 100``.
    /// Object parameters (read as strings) are first retyped by their schema's properties.
    pub(crate) fn validate_params(&self, fields: &mut super::params::Fields) -> Result<(), String> {
        let Some(set) = &self.schemas else { return Ok(()) };
        for (param, id) in self.op.params.iter().zip(self.params.iter()) {
            let (Some(id), Some(value)) = (id, fields.get_mut(param.field)) else { continue };
            if param.shape == super::ParamShape::Object {
                super::params::coerce_object(param, value, |k| set.property_shape(*id, k)).map_err(|e| e.to_string())?;
            }
            let value = &*value;
            if let Err(e) = set.validate(*id, value, Direction::Request) {
                let at = if e.pointer.is_empty() { String::new() } else { format!(" at {}", e.pointer) };
                return Err(format!("{} `{}`{at}: {}", noun(param.location), param.name, e.message));
            }
        }
        Ok(())
    }

    /// Checks a request body of media type `op.body.content[index]`: ``request body at
    /// /tags/0: must be a string``.
    pub(crate) fn validate_body(&self, index: usize, value: &Value) -> Result<(), String> {
        let (Some(set), Some(Some(id))) = (&self.schemas, self.bodies.get(index)) else { return Ok(()) };
        set.validate(*id, value, Direction::Request).map_err(|e| {
            if e.pointer.is_empty() {
                format!("request body: {}", e.message)
            } else {
                format!("request body at {}: {}", e.pointer, e.message)
            }
        })
    }

    /// The type of property `name` of a form or multipart body of media type
    /// `op.body.content[index]`: its scalar type and whether it is an array.
    pub(crate) fn property_shape(&self, index: usize, name: &str) -> Option<(Scalar, bool)> {
        let (Some(set), Some(Some(id))) = (&self.schemas, self.bodies.get(index)) else { return None };
        set.property_shape(*id, name)
    }
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

/// `~` and `/` escaped for a JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

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

fn compile(doc: &Value, set: &mut SchemaSet, op: &'static Operation) -> (Vec<Option<SchemaId>>, Vec<Option<SchemaId>>) {
    let item = format!("/paths/{}", escape(op.path));
    let operation = format!("{item}/{}", op.method.to_ascii_lowercase());
    let found = doc.pointer(&operation).is_some();
    let params = op
        .params
        .iter()
        .map(|param| {
            if !found {
                return None;
            }
            let pointer = [&operation, &item].into_iter().find_map(|base| param_schema(doc, base, param.name, param.location))?;
            set.compile(&pointer).ok()
        })
        .collect();
    let bodies = match op.body {
        Some(body) if found => {
            let resolved = resolve(doc, format!("{operation}/requestBody"));
            body.content
                .iter()
                .map(|mt| {
                    let (pointer, value) = resolved.as_ref()?;
                    value.get("content")?.get(*mt)?.get("schema")?;
                    set.compile(&format!("{pointer}/content/{}/schema", escape(mt))).ok()
                })
                .collect()
        }
        Some(body) => vec![None; body.content.len()],
        None => Vec::new(),
    };
    (params, bodies)
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
        if param.get("schema").is_some() {
            return Some(format!("{pointer}/schema"));
        }
        let (mt, media) = param.get("content")?.as_object()?.iter().next()?;
        media.get("schema")?;
        return Some(format!("{pointer}/content/{}/schema", escape(mt)));
    }
    None
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
