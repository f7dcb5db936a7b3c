//! Rendering: IR → Rust source text (unformatted). Services go through askama templates in
//! `templates/`; message types through prost-build. Every rendered piece is parsed with syn so
//! that a template bug is reported against the template that produced it.

mod messages;
mod tree;

use askama::Template;

use crate::error::Error;
use crate::ident;
use crate::ir::{CallShape, Idempotency, Method, Package, Service};

pub use messages::messages;
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

/// Renders every service of `package` as declarative `#[switchboard::service]` traits.
pub fn services(package: &Package) -> Result<String, Error> {
    let mut out = String::new();
    for service in &package.services {
        let view = service_view(package, service);
        let text = view.render().map_err(|e| Error::Render {
            template: "service.rs.txt",
            subject: format!("service {}", service.name),
            message: e.to_string(),
        })?;
        check_parses("service.rs.txt", &service.name, &text)?;
        out.push_str(&text);
        out.push('\n');
    }
    Ok(out)
}

/// Parses rendered code so that a bad template is named in the error.
pub(crate) fn check_parses(template: &'static str, subject: &str, text: &str) -> Result<(), Error> {
    syn::parse_file(text).map(drop).map_err(|e| Error::Render {
        template,
        subject: subject.to_owned(),
        message: e.to_string(),
    })
}

/// The trait's Rust name: the service name, suffixed with `Service` while it would collide with a
/// type of the package or with the `<Trait>Server` / `<Trait>Client` the macro adds.
fn trait_ident(package: &Package, service: &Service) -> String {
    let taken = |name: &str| {
        package.type_names.iter().any(|t| {
            let t = ident::upper_camel(t);
            t == name || t == format!("{name}Server") || t == format!("{name}Client")
        })
    };
    let mut name = ident::upper_camel(&service.name);
    while taken(&name) {
        name.push_str("Service");
    }
    name
}

fn service_view(package: &Package, service: &Service) -> ServiceView {
    ServiceView {
        docs: doc_lines(&service.docs),
        deprecated: service.deprecated,
        package: format!("{:?}", service.package),
        name: format!("{:?}", service.name),
        trait_ident: trait_ident(package, service),
        methods: service.methods.iter().map(|m| method_view(&package.name, m)).collect(),
    }
}

fn method_view(package: &str, m: &Method) -> MethodView {
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
        ident: ident::snake(&m.name),
        request,
        response,
    }
}

/// Spec comments → rustdoc lines that never become doctests: fences are marked `text` and
/// indentation (which Markdown would read as a code block) is dropped outside fences.
fn doc_lines(lines: &[String]) -> Vec<String> {
    let mut in_fence = false;
    lines
        .iter()
        .map(|line| {
            let trimmed = line.trim_start();
            if let Some(lang) = trimmed.strip_prefix("```") {
                in_fence = !in_fence;
                return if in_fence { format!("```text{}", if lang.is_empty() { "" } else { "," }) + lang } else { "```".into() };
            }
            if in_fence { line.clone() } else { trimmed.to_owned() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_never_become_doctests() {
        let lines: Vec<String> = ["Example:", "", "    let x = 1;", "```", "code", "```", "```js", "x()", "```"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            doc_lines(&lines),
            ["Example:", "", "let x = 1;", "```text", "code", "```", "```text,js", "x()", "```"]
        );
    }
}
