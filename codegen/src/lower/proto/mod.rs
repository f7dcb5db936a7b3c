//! Protobuf descriptors → IR: services and their bindings here, message and enum definitions in
//! `types`, comments and positions in `source`.

pub mod keys;
mod openapiv2;
pub mod policy;
mod source;
mod types;

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ServiceDescriptor, Value,
};
use prost_types::method_options::IdempotencyLevel;
use switchboard_path::{Segment, Template};

use crate::error::Location;
use source::SourceInfo;

use crate::ir::{Api, Bindings, CallShape, HttpRule, Idempotency, Method, Package, Service, TypeRef};

/// Packages whose types come from `prost-types` instead of being generated.
pub const WELL_KNOWN_PACKAGE: &str = "google.protobuf";

/// A `google.api.http` binding the generated server could not serve as written: it is left out,
/// the rest is generated. `location` is the method's `google.api.http` option (or the method),
/// in the file as the pool names it (relative to its include directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where: the option, else the method.
    pub location: Location,
    /// What was left out, and why.
    pub message: String,
}

/// `google.api.http`'s field number on `MethodOptions`, and `HttpRule.additional_bindings`'s
/// (source paths of the option and of each additional binding).
const HTTP_EXTENSION: i32 = 72_295_728;
const ADDITIONAL_BINDINGS: i32 = 11;

/// Lowers every file of `pool` except the well-known types. An HTTP binding the REST router
/// could not serve (a template it cannot parse, a field that does not exist, a route another
/// binding of the service already matches) is left out with a [`Warning`]; the method keeps its
/// other bindings (or, with none left, the default `POST /<package>.<Service>/<Method>`).
pub fn lower(pool: &DescriptorPool) -> (Api, Vec<Warning>) {
    let http_ext = pool.get_extension_by_name("google.api.http");
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    let mut proto_files = Vec::new();
    let (mut messages, mut enums) = (Vec::new(), Vec::new());
    let mut warnings = Vec::new();
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
            let mut bindings = service_bindings(&service, service_index, http_ext.as_ref(), &comments, &mut warnings);
            let mut methods = Vec::new();
            for (method_index, m) in service.methods().enumerate() {
                let source_path = [6, service_index, 2, method_index as i32];
                let mdp = m.method_descriptor_proto();
                let options = mdp.options.clone().unwrap_or_default();
                let http = std::mem::take(&mut bindings[method_index]);
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
                        key: None,
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
                policy: None,
            });
        }
    }
    for p in packages.values_mut() {
        p.type_names.sort();
    }
    let openapiv2 = openapiv2::read(pool);
    (Api { packages: packages.into_values().collect(), proto_files, messages, enums, openapiv2 }, warnings)
}

/// The route the REST router files a binding under (`Routes::insert` in the runtime): the HTTP
/// method as the generated descriptor carries it (verbs upper case, custom kinds as written),
/// the template's segments and its verb. Two bindings with one key clash.
type RouteKey = (String, Vec<Segment>, Option<String>);

fn route_key(rule: &HttpRule) -> Option<RouteKey> {
    let template = Template::parse_http(&rule.path).ok()?;
    Some((served_method(rule), template.segments, template.verb.map(str::to_owned)))
}

/// The HTTP method as the generated descriptor (and so the router) carries it.
fn served_method(rule: &HttpRule) -> String {
    if rule.custom { rule.method.clone() } else { rule.method.to_ascii_uppercase() }
}

/// A binding being checked: the rule, where it is written, and which route it takes.
struct Binding {
    rule: HttpRule,
    location: Location,
    key: RouteKey,
    /// `additional_bindings[i]: ` for an additional binding, else empty.
    which: String,
}

/// Every method's HTTP bindings as the generated service serves them, by method index. The
/// router registers a service's routes in method order, each method's declared bindings (or,
/// with none, the default `POST /<package>.<Service>/<Method>`), and refuses the service if one
/// does not parse or two would match the same requests with the same HTTP method. So that the
/// generated service always registers, a binding it would refuse is left out here with a warning
/// (the later of two clashing ones; a default route is never the one left out).
fn service_bindings(
    service: &ServiceDescriptor,
    service_index: i32,
    http_ext: Option<&ExtensionDescriptor>,
    comments: &SourceInfo,
    warnings: &mut Vec<Warning>,
) -> Vec<Vec<HttpRule>> {
    let file = service.parent_file();
    let file = file.name();
    let methods: Vec<MethodDescriptor> = service.methods().collect();
    // (method index, location, problem) of each binding left out.
    let mut skipped: Vec<(usize, Location, String)> = Vec::new();
    let mut checked: Vec<Vec<Binding>> = Vec::new();
    for (method_index, m) in methods.iter().enumerate() {
        let method_path = [6, service_index, 2, method_index as i32];
        let option_path = [6, service_index, 2, method_index as i32, 4, HTTP_EXTENSION];
        let rules = http_ext
            .filter(|ext| m.options().has_extension(ext))
            .map(|ext| http_rules(&m.options().get_extension(ext)))
            .unwrap_or_default();
        let mut kept = Vec::new();
        for (i, rule) in rules.into_iter().enumerate() {
            // Parsers record where the option is, not where each binding inside it is: an
            // additional binding is named by its index.
            let mut path = option_path.to_vec();
            let mut which = String::new();
            if i > 0 {
                path.extend([ADDITIONAL_BINDINGS, i as i32 - 1]);
                which = format!("additional_bindings[{}]: ", i - 1);
            }
            let location = comments
                .find(file, &path)
                .or_else(|| comments.find(file, &option_path))
                .unwrap_or_else(|| comments.location(file, &method_path));
            match check_http_rule(&rule, &m.input(), &m.output()) {
                Ok(key) => kept.push(Binding { rule, location, key, which }),
                Err(problem) => skipped.push((method_index, location, format!("{which}{problem}"))),
            }
        }
        checked.push(kept);
    }
    let default_rule = |m: &MethodDescriptor| HttpRule {
        method: "post".into(),
        custom: false,
        path: format!("/{}/{}", service.full_name(), m.name()),
        body: "*".into(),
        response_body: String::new(),
    };
    let route = |rule: &HttpRule| format!("`{} {}`", served_method(rule), rule.path);
    // Methods served at their default route: those without a valid binding, and those whose
    // bindings all clash (found below; their default route may clash with a binding of an
    // earlier method, which is then left out in the next round: at most one round per method).
    let mut defaulted: Vec<bool> = checked.iter().map(Vec::is_empty).collect();
    let (out, clashes) = loop {
        // Routes taken so far: default routes first (they cannot be left out), then each
        // binding in the router's order; the value names the route and the method taking it.
        let mut taken: HashMap<RouteKey, String> = HashMap::new();
        for (m, _) in methods.iter().zip(&defaulted).filter(|(_, d)| **d) {
            let rule = default_rule(m);
            taken.extend(route_key(&rule).map(|key| (key, format!("{} (its default route) of {}", route(&rule), m.full_name()))));
        }
        let mut out: Vec<Vec<HttpRule>> = Vec::new();
        let mut clashes: Vec<(usize, Location, String)> = Vec::new();
        for ((method_index, m), kept) in methods.iter().enumerate().zip(&checked) {
            let mut served = Vec::new();
            for binding in kept {
                if let Some(owner) = taken.get(&binding.key) {
                    let problem = format!("{}{} matches the same requests as {owner}", binding.which, route(&binding.rule));
                    clashes.push((method_index, binding.location.clone(), problem));
                    continue;
                }
                taken.insert(binding.key.clone(), format!("{} of {}", route(&binding.rule), m.full_name()));
                served.push(binding.rule.clone());
            }
            out.push(served);
        }
        let newly: Vec<usize> = (0..methods.len()).filter(|&i| out[i].is_empty() && !defaulted[i]).collect();
        if newly.is_empty() {
            break (out, clashes);
        }
        for i in newly {
            defaulted[i] = true;
        }
    };
    skipped.extend(clashes);
    skipped.sort_by_key(|(_, location, _)| (location.line, location.column));
    for (method_index, location, problem) in skipped {
        let m = &methods[method_index];
        let fallback = if out[method_index].is_empty() {
            format!("with no binding left, REST serves it at its default route {}", route(&default_rule(m)))
        } else {
            "it keeps its other bindings".to_owned()
        };
        warnings.push(Warning {
            location,
            message: format!(
                "method {}: google.api.http: {problem}; binding skipped (the method is still generated and served over gRPC; {fallback})",
                m.full_name()
            ),
        });
    }
    out
}

/// The checks a REST transport relies on: an HTTP method, a path template the runtime's parser
/// (crate `switchboard-path`) accepts, path variables and body fields that exist; the route the
/// binding takes. Field paths may be
/// dotted (`payload.input_value`), as grpc-gateway accepts: every segment but the last must be
/// a singular message field.
fn check_http_rule(rule: &HttpRule, input: &MessageDescriptor, output: &MessageDescriptor) -> Result<RouteKey, String> {
    if rule.method.is_empty() {
        return Err("custom binding without a `kind` (HTTP method)".into());
    }
    // An HTTP method is a token (RFC 9110): what the router's `http::Method` accepts.
    if !rule.method.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return Err(format!("custom kind {:?} is not an HTTP method (letters, digits and !#$%&'*+-.^_`|~ only)", rule.method));
    }
    if !rule.path.starts_with('/') {
        return Err(format!("path template {:?} must start with `/`", rule.path));
    }
    let template = Template::parse_http(&rule.path).map_err(|e| e.to_string())?;
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
    Ok((served_method(rule), template.segments, template.verb.map(str::to_owned)))
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

