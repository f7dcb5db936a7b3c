//! Protobuf descriptors → IR: services and their bindings here, message and enum definitions in
//! `types`, comments and positions in `source`.

mod openapiv2;
mod source;
mod types;

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use prost_types::method_options::IdempotencyLevel;

use crate::error::Error;
use source::SourceInfo;

use crate::ir::{Api, Bindings, CallShape, HttpRule, Idempotency, Method, Package, Service, TypeRef};

/// Packages whose types come from `prost-types` instead of being generated.
pub const WELL_KNOWN_PACKAGE: &str = "google.protobuf";

/// Lowers every file of `pool` except the well-known types. Errors (an HTTP binding that cannot
/// work, say) name the file as the pool knows it (relative to its include directory).
pub fn lower(pool: &DescriptorPool) -> Result<Api, Error> {
    let http_ext = pool.get_extension_by_name("google.api.http");
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    let mut proto_files = Vec::new();
    let (mut messages, mut enums) = (Vec::new(), Vec::new());
    for file in pool.files() {
        proto_files.push(file.file_descriptor_proto().clone());
        let comments = SourceInfo::of(&file);
        types::lower_file(&file, &comments, &mut messages, &mut enums);
        if file.package_name() == WELL_KNOWN_PACKAGE {
            continue;
        }
        let package = packages.entry(file.package_name().to_owned()).or_insert_with(|| Package {
            name: file.package_name().to_owned(),
            ..Package::default()
        });
        package.files.push(file.name().to_owned());
        package.type_names.extend(file.messages().map(|m| m.name().to_owned()));
        package.type_names.extend(file.enums().map(|e| e.name().to_owned()));
        for (service_index, service) in file.services().enumerate() {
            let service_index = service_index as i32;
            let sdp = service.service_descriptor_proto();
            let mut methods = Vec::new();
            // This service's bindings so far (method, rule), for clashes.
            let mut bound: Vec<(String, HttpRule)> = Vec::new();
            for (method_index, m) in service.methods().enumerate() {
                let source_path = [6, service_index, 2, method_index as i32];
                let mdp = m.method_descriptor_proto();
                let options = mdp.options.clone().unwrap_or_default();
                let http = http_ext
                    .as_ref()
                    .filter(|ext| m.options().has_extension(ext))
                    .map(|ext| http_rules(&m.options().get_extension(ext)))
                    .unwrap_or_default();
                for rule in &http {
                    check_http_rule(rule, &m.input(), &m.output()).map_err(|message| Error::Spec {
                        location: comments.location(file.name(), &source_path),
                        message: format!("method {}: google.api.http: {message}", m.full_name()),
                    })?;
                    if let Some((other, prev)) = bound.iter().find(|(_, prev)| same_route(prev, rule)) {
                        return Err(Error::Spec {
                            location: comments.location(file.name(), &source_path),
                            message: format!(
                                "method {}: google.api.http: `{} {}` matches the same requests as `{} {}` of {other}",
                                m.full_name(), rule.method.to_uppercase(), rule.path, prev.method.to_uppercase(), prev.path
                            ),
                        });
                    }
                    bound.push((m.full_name().to_owned(), rule.clone()));
                }
                methods.push(Method {
                    name: m.name().to_owned(),
                    docs: comments.get(&source_path),
                    shape: match (m.is_client_streaming(), m.is_server_streaming()) {
                        (false, false) => CallShape::Unary,
                        (false, true) => CallShape::ServerStreaming,
                        (true, false) => CallShape::ClientStreaming,
                        (true, true) => CallShape::BidiStreaming,
                    },
                    input: type_ref(&m.input()),
                    output: type_ref(&m.output()),
                    deprecated: options.deprecated(),
                    idempotency: match options.idempotency_level() {
                        IdempotencyLevel::NoSideEffects => Idempotency::NoSideEffects,
                        IdempotencyLevel::Idempotent => Idempotency::Idempotent,
                        IdempotencyLevel::IdempotencyUnknown => Idempotency::Unknown,
                    },
                    bindings: Bindings {
                        http,
                        queue: None,
                        operation: None,
                        event: !m.is_client_streaming()
                            && !m.is_server_streaming()
                            && m.output().full_name() == "google.protobuf.Empty",
                    },
                });
            }
            package.services.push(Service {
                package: file.package_name().to_owned(),
                file: file.name().to_owned(),
                name: service.name().to_owned(),
                docs: comments.get(&[6, service_index]),
                deprecated: sdp.options.as_ref().is_some_and(|o| o.deprecated()),
                methods,
            });
        }
    }
    for p in packages.values_mut() {
        p.type_names.sort();
    }
    let openapiv2 = openapiv2::read(pool);
    Ok(Api { packages: packages.into_values().collect(), proto_files, messages, enums, openapiv2 })
}

/// The checks a REST transport relies on: a verb, a path template the runtime's parser (crate
/// `switchboard-path`) accepts, path variables and body fields that exist. Field paths may be
/// dotted (`payload.input_value`), as grpc-gateway accepts: every segment but the last must be
/// a singular message field.
fn check_http_rule(rule: &HttpRule, input: &MessageDescriptor, output: &MessageDescriptor) -> Result<(), String> {
    if rule.method.is_empty() {
        return Err("custom binding without a `kind` (HTTP method)".into());
    }
    if !rule.path.starts_with('/') {
        return Err(format!("path template {:?} must start with `/`", rule.path));
    }
    let template = switchboard_path::Template::parse_http(&rule.path).map_err(|e| e.to_string())?;
    for variable in &template.variables {
        let field = field_path(input, variable.name, "path variable")?;
        if field.is_list() || field.is_map() || matches!(field.kind(), Kind::Message(_)) && !is_scalar_message(&field) {
            return Err(format!(
                "path variable {:?}: field `{}` of {} is not a single scalar value",
                variable.name,
                field.name(),
                field.parent_message().full_name()
            ));
        }
    }
    if !rule.body.is_empty() && rule.body != "*" {
        field_path(input, &rule.body, "body")?;
    }
    if !rule.response_body.is_empty() {
        field_path(output, &rule.response_body, "response_body")?;
    }
    Ok(())
}

/// Well-known message types whose JSON form is one string or number (a path variable can set
/// them): wrappers, `Timestamp`, `Duration`, `FieldMask`.
fn is_scalar_message(field: &FieldDescriptor) -> bool {
    let Kind::Message(m) = field.kind() else { return false };
    let name = m.full_name();
    name.strip_prefix("google.protobuf.").is_some_and(|n| {
        n.ends_with("Value") && n != "Value" && n != "ListValue" || matches!(n, "Timestamp" | "Duration" | "FieldMask")
    })
}

/// The field at a dotted path of field names, starting at `message`; the error (about the `what`
/// of the binding) names the segment that is wrong.
fn field_path(message: &MessageDescriptor, path: &str, what: &str) -> Result<FieldDescriptor, String> {
    let mut current = message.clone();
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Some(field) = current.get_field_by_name(segment) else {
            if segment == path {
                return Err(format!("{what} {path:?} is not a field of {}", current.full_name()));
            }
            return Err(format!("{what} {path:?}: `{segment}` is not a field of {}", current.full_name()));
        };
        let Some(next) = segments.peek() else { return Ok(field) };
        match field.kind() {
            Kind::Message(m) if !field.is_list() && !field.is_map() => current = m,
            _ => {
                return Err(format!(
                    "{what} {path:?}: `{segment}` (field of {}) is not a singular message field, so it has no field `{next}`",
                    current.full_name()
                ))
            }
        }
    }
    Err(format!("{what} {path:?} is empty"))
}

/// Whether two (checked) bindings match the same requests with the same HTTP method, as the
/// router decides it: same method, same segments, same verb.
fn same_route(a: &HttpRule, b: &HttpRule) -> bool {
    use switchboard_path::Template;
    match (Template::parse_http(&a.path), Template::parse_http(&b.path)) {
        (Ok(x), Ok(y)) => a.method.eq_ignore_ascii_case(&b.method) && x.segments == y.segments && x.verb == y.verb,
        _ => false,
    }
}

fn type_ref(m: &MessageDescriptor) -> TypeRef {
    types::type_ref(m.package_name(), m.parent_message(), m.name())
}

/// Reads a `google.api.HttpRule` and its `additional_bindings` (one level, as the spec says).
fn http_rules(value: &Value) -> Vec<HttpRule> {
    let Value::Message(rule) = value else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(r) = http_rule(rule) {
        out.push(r);
    }
    if let Some(Value::List(extra)) = rule.get_field_by_name("additional_bindings").as_deref() {
        out.extend(extra.iter().filter_map(|v| match v {
            Value::Message(m) => http_rule(m),
            _ => None,
        }));
    }
    out
}

fn http_rule(rule: &DynamicMessage) -> Option<HttpRule> {
    let string = |m: &DynamicMessage, name: &str| match m.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let body = string(rule, "body");
    let response_body = string(rule, "response_body");
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            let path = string(rule, verb);
            return Some(HttpRule { method: verb.into(), custom: false, path, body, response_body });
        }
    }
    if rule.has_field_by_name("custom") {
        if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref() {
            let (method, path) = (string(custom, "kind"), string(custom, "path"));
            return Some(HttpRule { method, custom: true, path, body, response_body });
        }
    }
    None
}

