//! The route table: every HTTP binding of every service, compiled once at startup.
//!
//! Two indexes: google.api.http bindings in a list, most specific first (proto services have
//! few), and OpenAPI operations in an [`ApiTrie`] (an API can have a thousand and more), looked
//! up by segment.

use std::sync::Arc;

use super::api_path::{ApiTrie, Captures, TrieLookup};
use super::template::{PathTemplate, Segment, TemplateError};
use crate::api::document::{ApiService, OpState};
use crate::{HttpRule, MethodDescriptor, ServiceDescriptor};

/// One OpenAPI operation.
pub struct ApiRoute {
    /// Index of the service in the router.
    pub service: usize,
    /// Index of the method in its descriptor.
    pub method_index: usize,
    /// The method.
    pub method: &'static MethodDescriptor,
    /// The operation's prepared state.
    pub(crate) state: Arc<OpState>,
}

impl std::fmt::Debug for ApiRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRoute").field("operation", &self.state.op.id).finish()
    }
}

/// One binding of one method.
#[derive(Debug)]
pub struct Route {
    /// Index of the service in the router.
    pub service: usize,
    /// Index of the method in its descriptor.
    pub method_index: usize,
    /// The method.
    pub method: &'static MethodDescriptor,
    /// HTTP method to match.
    pub http_method: http::Method,
    /// The compiled path template.
    pub template: PathTemplate,
    /// Body field: `""`, `"*"` or a field path.
    pub body: &'static str,
    /// Response field sent as the body, `""` for the whole response.
    pub response_body: &'static str,
}

/// The result of looking up a request.
pub enum Lookup<'a> {
    /// A binding matched; its path variables (field path, value).
    Found(&'a Route, Vec<(&'a str, String)>),
    /// An OpenAPI operation matched; its path variables' byte ranges in the path.
    FoundApi(&'a ApiRoute, Captures),
    /// The path matches bindings, none with this HTTP method.
    MethodNotAllowed(Vec<http::Method>),
    /// Nothing matches the path.
    NotFound,
}

/// All routes, most specific first.
#[derive(Debug, Default)]
pub struct Routes {
    routes: Vec<Route>,
    api: ApiTrie,
    api_routes: Vec<ApiRoute>,
}

/// The binding of a method that has none declared: `POST /<package>.<Service>/<Method>`, the
/// whole request message as the JSON body.
pub fn default_rule(method: &'static MethodDescriptor) -> HttpRule {
    HttpRule { method: "POST", path: method.grpc_path, body: "*", response_body: "" }
}

/// The rules a method is reachable by over REST: its declared ones or the default.
pub fn rules(method: &'static MethodDescriptor) -> Vec<HttpRule> {
    if method.http.is_empty() {
        vec![default_rule(method)]
    } else {
        method.http.to_vec()
    }
}

impl Routes {
    /// Adds every binding of `service` (its index is `index`).
    pub(crate) fn add(
        &mut self,
        index: usize,
        service: &'static ServiceDescriptor,
        api: Option<&ApiService>,
    ) -> Result<(), TemplateError> {
        for (method_index, method) in service.methods.iter().enumerate() {
            if let Some(op) = method.operation {
                let state = api.and_then(|a| a.ops.get(method_index)).and_then(Option::clone).ok_or_else(|| TemplateError {
                    template: op.path.to_owned(),
                    message: format!("operation `{}` was not prepared", op.id),
                })?;
                let http_method = http::Method::from_bytes(op.method.as_bytes()).map_err(|_| TemplateError {
                    template: op.path.to_owned(),
                    message: format!("`{}` is not an HTTP method", op.method),
                })?;
                let route = self.api_routes.len();
                if let Err(other) = self.api.insert(&state.template, http_method, route) {
                    return Err(TemplateError {
                        template: op.path.to_owned(),
                        message: format!(
                            "{} {} serves both `{}` and `{}`",
                            op.method, op.path, self.api_routes[other].state.op.id, op.id
                        ),
                    });
                }
                self.api_routes.push(ApiRoute { service: index, method_index, method, state });
                continue;
            }
            for rule in rules(method) {
                let template = PathTemplate::parse(rule.path)?;
                let http_method = http::Method::from_bytes(rule.method.as_bytes()).map_err(|_| TemplateError {
                    template: rule.path.to_owned(),
                    message: format!("`{}` is not an HTTP method", rule.method),
                })?;
                if let Some(other) = self.routes.iter().find(|r| r.http_method == http_method && r.template == template) {
                    return Err(TemplateError {
                        template: rule.path.to_owned(),
                        message: format!(
                            "{} {} binds both `{}` and `{}`",
                            rule.method, rule.path, other.method.grpc_path, method.grpc_path
                        ),
                    });
                }
                self.routes.push(Route {
                    service: index,
                    method_index,
                    method,
                    http_method,
                    template,
                    body: rule.body,
                    response_body: rule.response_body,
                });
            }
        }
        // More literal segments first; a verb is more specific than none; declaration order else.
        self.routes.sort_by_key(|r| {
            (std::cmp::Reverse(r.template.literal_count()), r.template.verb.is_none())
        });
        Ok(())
    }

    /// Paths of the bindings that are literal only (no variables, wildcards or verb), each once.
    pub fn literal_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for route in &self.routes {
            let t = &route.template;
            if t.verb.is_some() || !t.segments.iter().all(|s| matches!(s, Segment::Literal(_))) {
                continue;
            }
            let path: String = t.segments.iter().map(|s| match s {
                Segment::Literal(l) => format!("/{l}"),
                _ => String::new(),
            }).collect();
            if !out.contains(&path) {
                out.push(path);
            }
        }
        for path in self.api.literal_paths() {
            if !out.contains(&path) {
                out.push(path);
            }
        }
        out
    }

    /// Finds the binding for a request. `HEAD` falls back to the `GET` binding (the server sends
    /// its headers without the body), as HTTP requires of general-purpose servers.
    pub fn lookup(&self, method: &http::Method, path: &str) -> Lookup<'_> {
        match self.lookup_exact(method, path) {
            Lookup::MethodNotAllowed(allowed) if *method == http::Method::HEAD && allowed.contains(&http::Method::GET) => {
                self.lookup_exact(&http::Method::GET, path)
            }
            other => other,
        }
    }

    fn lookup_exact(&self, method: &http::Method, path: &str) -> Lookup<'_> {
        let mut allowed = Vec::new();
        if !self.api.is_empty() {
            match self.api.lookup(method, path) {
                TrieLookup::Found(route, vars) => return Lookup::FoundApi(&self.api_routes[route], vars),
                TrieLookup::MethodNotAllowed(methods) => allowed = methods,
                TrieLookup::NotFound => {}
            }
        }
        for route in &self.routes {
            if route.http_method != *method && !allowed.is_empty() && allowed.contains(&route.http_method) {
                continue;
            }
            if let Some(vars) = route.template.matches(path) {
                if route.http_method == *method {
                    return Lookup::Found(route, vars);
                }
                allowed.push(route.http_method.clone());
            }
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            Lookup::MethodNotAllowed(allowed)
        }
    }
}

#[cfg(test)]
mod scale {
    //! The route table over a real, large API: `SWITCHBOARD_OPENAPI_SCALE=<path to GitHub's
    //! api.github.com.json> cargo test --release -p switchboard --lib scale -- --ignored --nocapture`.
    use super::*;
    use crate::api::{Location, Operation, Param, ParamShape, Scalar, Style};
    use crate::{CallShape, Idempotency};

    fn leak<T>(v: Vec<T>) -> &'static [T] {
        Box::leak(v.into_boxed_slice())
    }

    #[test]
    #[ignore]
    fn every_github_operation_routes() {
        let Ok(path) = std::env::var("SWITCHBOARD_OPENAPI_SCALE") else { return };
        let text: &'static str = Box::leak(std::fs::read_to_string(path).unwrap().into_boxed_str());
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut methods = Vec::new();
        let mut samples = Vec::new();
        for (p, item) in doc["paths"].as_object().unwrap() {
            for (verb, _) in item.as_object().unwrap() {
                if !["get", "put", "post", "delete", "patch"].contains(&verb.as_str()) {
                    continue;
                }
                let p: &'static str = Box::leak(p.clone().into_boxed_str());
                let names: Vec<&'static str> = p.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
                let params = leak(
                    names
                        .iter()
                        .map(|n| Param { name: n, field: n, location: Location::Path, style: Style::Simple, explode: false, required: true, shape: ParamShape::Scalar(Scalar::String) })
                        .collect(),
                );
                let method: &'static str = Box::leak(verb.to_uppercase().into_boxed_str());
                let op: &'static Operation = Box::leak(Box::new(Operation { id: p, method, path: p, params, body: None, responses: &[], security: &[] }));
                methods.push(MethodDescriptor {
                    name: "m", rust_name: "m", grpc_path: "/x/m", shape: CallShape::Unary, idempotency: Idempotency::Unknown,
                    deprecated: false, http: &[], operation: Some(op), event: false,
                });
                let mut sample = p.to_owned();
                for n in &names {
                    sample = sample.replace(&format!("{{{n}}}"), "v1.2");
                }
                samples.push((http::Method::from_bytes(method.as_bytes()).unwrap(), sample, methods.len() - 1));
            }
        }
        let service: &'static ServiceDescriptor = Box::leak(Box::new(ServiceDescriptor {
            package: "", name: "GitHub", full_name: "GitHub", methods: leak(methods), openapi: Some(text),
        }));
        let start = std::time::Instant::now();
        let api = ApiService::build(service).unwrap().unwrap();
        let built = start.elapsed();
        let mut routes = Routes::default();
        routes.add(0, service, Some(&api)).unwrap();
        eprintln!("{} operations; document parsed and schemas compiled in {built:?}, routes in {:?}", samples.len(), start.elapsed() - built);
        let start = std::time::Instant::now();
        let mut wrong = 0;
        for _ in 0..20 {
            for (method, path, index) in &samples {
                match routes.lookup(method, path) {
                    Lookup::FoundApi(route, _) if route.method_index == *index => {}
                    Lookup::FoundApi(route, _) => {
                        // A literal route may win over the sample's variables (e.g. `/x/{v}` vs `/x/latest`).
                        wrong += usize::from(service.methods[route.method_index].operation.unwrap().path == service.methods[*index].operation.unwrap().path);
                    }
                    _ => panic!("{method} {path} not found"),
                }
            }
        }
        eprintln!("{:?} per lookup", start.elapsed() / (20 * samples.len() as u32));
        assert_eq!(wrong, 0);
    }
}
