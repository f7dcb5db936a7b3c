//! Rendering: IR → Rust source text (unformatted). Services go through askama templates in
//! `templates/`; message types through prost-build. Every rendered piece is parsed with syn so
//! that a template bug is reported against the template that produced it.

mod messages;
pub mod models;
pub mod openapi;
mod tree;

use std::collections::HashSet;

use askama::Template;

use crate::error::Error;
use crate::ident;
use crate::ir::{CallShape, Idempotency, Method, Package, Policy, Service};

pub use messages::{descriptor_file, messages, ProtoJson};
pub use tree::module_tree;

#[derive(Template)]
#[template(path = "service.rs.txt", escape = "none")]
struct ServiceView {
    docs: Vec<String>,
    deprecated: bool,
    /// Rust string literal.
    package: String,
    /// Rust string literal.
    name: String,
    trait_ident: String,
    /// Name of the constant holding the service's OpenAPI document.
    openapi_const: String,
    /// The file holding the document (compact JSON, beside the package's `.rs` file), as a Rust
    /// string literal.
    document_file: String,
    /// The default policy's constant, file (a Rust string literal) and where it comes from.
    policy: Option<(String, String, String)>,
    methods: Vec<MethodView>,
}

struct MethodView {
    docs: Vec<String>,
    deprecated: bool,
    rpc_args: String,
    ident: String,
    request: String,
    response: String,
}

/// Renders every service of `package` as declarative `#[switchboard::service]` traits, each with
/// its OpenAPI document (types looked up in `index`, the run's [`openapi::Index`]) for the REST
/// server to serve, and its default policy if its spec gives one. Returns the code and the
/// documents and policies, as `(file name, compact JSON)`: the code reads each from its file
/// beside the package's `.rs` file with `include_str!`.
pub fn services(index: &openapi::Index<'_>, package: &Package) -> Result<(String, Vec<(String, String)>), Error> {
    let mut out = String::new();
    let mut documents = Vec::new();
    for (service, trait_ident) in package.services.iter().zip(trait_idents(package)) {
        let document = serde_json::to_string(&openapi::indexed_document(index, &[service])).map_err(|e| Error::Render {
            template: "service.rs.txt",
            subject: format!("service {}", service.name),
            message: format!("OpenAPI document: {e}"),
        })?;
        let file = service_document_file(&package.name, &trait_ident);
        let policy = match &service.policy {
            None => None,
            Some(policy) => {
                let full = if service.package.is_empty() { service.name.clone() } else { format!("{}.{}", service.package, service.name) };
                let json = policy_json(policy, &full, &|i| service.methods[i].name.clone()).map_err(|e| Error::Render {
                    template: "service.rs.txt",
                    subject: format!("service {}", service.name),
                    message: format!("default policy: {e}"),
                })?;
                Some((service_policy_file(&package.name, &trait_ident), json))
            }
        };
        let mut view = service_view(package, service, trait_ident, &file);
        if let (Some((file, _)), Some(policy)) = (&policy, &service.policy) {
            view.policy = Some((format!("{}_POLICY", ident::shouty(&view.trait_ident)), format!("{file:?}"), policy_source(policy)));
        }
        let text = view.render().map_err(|e| Error::Render {
            template: "service.rs.txt",
            subject: format!("service {}", service.name),
            message: e.to_string(),
        })?;
        check_parses("service.rs.txt", &service.name, &text)?;
        out.push_str(&text);
        out.push('\n');
        documents.push((file, document));
        documents.extend(policy);
    }
    Ok((out, documents))
}

/// The file holding the default policy of the service whose trait is `trait_ident`, beside the
/// package's `.rs` file: `<package>.<Trait>.policy.json` (`_.<Trait>.policy.json` without a
/// package).
pub fn service_policy_file(package: &str, trait_ident: &str) -> String {
    let package = if package.is_empty() { "_" } else { package };
    format!("{package}.{trait_ident}.policy.json")
}

/// A service's default policy as gRPC service config JSON (compact): a file's config as
/// written, or entries naming the service `full` and its methods (by index) by `wire` name.
pub(crate) fn policy_json(policy: &Policy, full: &str, wire: &dyn Fn(usize) -> String) -> Result<String, serde_json::Error> {
    use serde_json::{Map, Value};
    match policy {
        Policy::File { config, .. } => serde_json::to_string(config),
        Policy::Entries { top, entries } => {
            let name = |method: Option<String>| {
                let mut n = Map::new();
                n.insert("service".into(), Value::String(full.to_owned()));
                if let Some(method) = method {
                    n.insert("method".into(), Value::String(method));
                }
                Value::Object(n)
            };
            let method_config: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let names = match &e.methods {
                        None => vec![name(None)],
                        Some(methods) => methods.iter().map(|&i| name(Some(wire(i)))).collect(),
                    };
                    let mut entry = Map::new();
                    entry.insert("name".into(), Value::Array(names));
                    entry.extend(e.fields.clone());
                    Value::Object(entry)
                })
                .collect();
            let mut config = Map::new();
            if !method_config.is_empty() {
                config.insert("methodConfig".into(), Value::Array(method_config));
            }
            config.extend(top.clone());
            serde_json::to_string(&Value::Object(config))
        }
    }
}

/// Where a default policy comes from, as the generated docs say it.
pub(crate) fn policy_source(policy: &Policy) -> String {
    match policy {
        Policy::File { name, .. } => format!("`{name}`"),
        Policy::Entries { .. } => "its document's `x-switchboard-policy`".into(),
    }
}

/// The file holding the OpenAPI document of the service whose trait is `trait_ident`, beside
/// the package's `.rs` file: `<package>.<Trait>.openapi.json` (`_.<Trait>.openapi.json` without
/// a package). Trait names are unique within a package, and an OpenAPI module's own
/// `<module>.openapi.json` never has a second dot.
pub fn service_document_file(package: &str, trait_ident: &str) -> String {
    let package = if package.is_empty() { "_" } else { package };
    format!("{package}.{trait_ident}.openapi.json")
}

/// Parses rendered code so that a bad template is named in the error.
pub(crate) fn check_parses(template: &'static str, subject: &str, text: &str) -> Result<(), Error> {
    syn::parse_file(text).map(drop).map_err(|e| Error::Render {
        template,
        subject: subject.to_owned(),
        message: e.to_string(),
    })
}

/// Rust names of a package's service traits, in declaration order: the service name, suffixed
/// with `Service` while it would collide with a type of the package, with an earlier trait, or
/// with the items the macro adds for either (`switchboard_names::ITEM_SUFFIXES`).
fn trait_idents(package: &Package) -> Vec<String> {
    let mut taken: Vec<String> = package.type_names.iter().map(|t| ident::upper_camel(t)).collect();
    let mut out = Vec::new();
    for service in &package.services {
        let mut name = ident::upper_camel(&service.name);
        while switchboard_names::trait_clashes(&name, &taken) {
            name.push_str("Service");
        }
        taken.extend(switchboard_names::added_items(&name));
        out.push(name);
    }
    out
}

fn service_view(package: &Package, service: &Service, trait_ident: String, document_file: &str) -> ServiceView {
    let mut used = HashSet::new();
    ServiceView {
        openapi_const: format!("{}_OPENAPI", ident::shouty(&trait_ident)),
        document_file: format!("{document_file:?}"),
        policy: None,
        docs: doc_lines(&service.docs),
        deprecated: service.deprecated,
        package: format!("{:?}", service.package),
        name: format!("{:?}", service.name),
        trait_ident,
        methods: service.methods.iter().map(|m| method_view(&package.name, m, &mut used)).collect(),
    }
}

/// A method's Rust name, unique within its trait and on the client (`GetFoo` and `getFoo` both
/// snake-case to `get_foo`; the second becomes `get_foo_`).
fn method_ident(name: &str, used: &mut HashSet<String>) -> String {
    let client = |i: &str| switchboard_names::client_method(i).into_owned();
    let mut candidate = ident::snake(name);
    while used.contains(&candidate) || used.contains(&client(&candidate)) {
        candidate.push('_');
    }
    used.insert(client(&candidate));
    used.insert(candidate.clone());
    candidate
}

fn method_view(package: &str, m: &Method, used: &mut HashSet<String>) -> MethodView {
    let input = ident::type_path(package, &m.input);
    let output = ident::type_path(package, &m.output);
    let (request, response) = match m.shape {
        CallShape::Unary => (input, output),
        CallShape::ServerStreaming => (input, format!("::switchboard::Streaming<{output}>")),
        CallShape::ClientStreaming => (format!("::switchboard::Streaming<{input}>"), output),
        CallShape::BidiStreaming => {
            (format!("::switchboard::Streaming<{input}>"), format!("::switchboard::Streaming<{output}>"))
        }
    };
    let mut args = vec![format!("name = {:?}", m.name)];
    match m.idempotency {
        Idempotency::Unknown => {}
        Idempotency::Idempotent => args.push("idempotent".into()),
        Idempotency::NoSideEffects => args.push("no_side_effects".into()),
    }
    if m.bindings.event {
        args.push("event".into());
    }
    if let Some(key) = &m.bindings.key {
        args.push(format!("key = {:?}", ident::message_field(key)));
    }
    for rule in &m.bindings.http {
        let mut parts = if rule.custom {
            vec![format!("custom = {:?}", rule.method), format!("path = {:?}", rule.path)]
        } else {
            vec![format!("{} = {:?}", rule.method, rule.path)]
        };
        if !rule.body.is_empty() {
            parts.push(format!("body = {:?}", rule.body));
        }
        if !rule.response_body.is_empty() {
            parts.push(format!("response_body = {:?}", rule.response_body));
        }
        args.push(format!("http({})", parts.join(", ")));
    }
    MethodView {
        docs: doc_lines(&m.docs),
        deprecated: m.deprecated,
        rpc_args: args.join(", "),
        ident: method_ident(&m.name, used),
        request,
        response,
    }
}

/// Spec comments → rustdoc lines that never become doctests: fences are marked `text` and
/// indentation (which Markdown would read as a code block) is dropped outside fences.
fn doc_lines(lines: &[String]) -> Vec<String> {
    // The fence that opened the current code block (``` or ~~~, three or more), if any.
    let mut fence: Option<String> = None;
    lines
        .iter()
        .map(|line| {
            let trimmed = line.trim_start();
            let marker: String = trimmed.chars().take_while(|&c| c == '`' || c == '~').collect();
            let is_fence = marker.len() >= 3 && marker.chars().all(|c| c == marker.chars().next().unwrap_or('`'));
            match &fence {
                None if is_fence => {
                    let lang = trimmed[marker.len()..].trim();
                    fence = Some(marker.clone());
                    if lang.is_empty() { format!("{marker}text") } else { format!("{marker}text,{lang}") }
                }
                Some(open) if is_fence && marker.starts_with(open.as_str()) && trimmed[marker.len()..].trim().is_empty() => {
                    fence = None;
                    marker
                }
                Some(_) => line.clone(),
                None => trimmed.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_never_become_doctests() {
        let lines: Vec<String> =
            ["Example:", "", "    let x = 1;", "```", "code", "```", "```js", "x()", "```", "~~~", "y()", "~~~", "````", "```", "````"]
                .map(String::from)
                .to_vec();
        assert_eq!(
            doc_lines(&lines),
            ["Example:", "", "let x = 1;", "```text", "code", "```", "```text,js", "x()", "```", "~~~text", "y()", "~~~", "````text", "```", "````"]
        );
    }

    #[test]
    fn colliding_names_get_suffixes() {
        use crate::ir::{Package, Service};
        let service = |name: &str| Service { package: "p".into(), file: "p.proto".into(), name: name.into(), docs: vec![], deprecated: false, methods: vec![], policy: None };
        let package = Package {
            name: "p".into(),
            files: vec![],
            type_names: vec!["Store".into()],
            services: vec![service("Store"), service("StoreService"), service("Foo"), service("FooClient")],
            models: None,
        };
        assert_eq!(trait_idents(&package), ["StoreService", "StoreServiceService", "Foo", "FooClientService"]);
        let mut used = HashSet::new();
        let names: Vec<String> = ["GetFoo", "getFoo", "New", "NewRpc"].iter().map(|n| method_ident(n, &mut used)).collect();
        assert_eq!(names, ["get_foo", "get_foo_", "new", "new_rpc_"]);
    }
}
