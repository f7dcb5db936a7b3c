//! The route table: every HTTP binding of every service, compiled once when the service is
//! added, in ONE segment trie whatever spec a route came from.
//!
//! google.api.http rules (`MethodDescriptor::http`, or the default
//! `POST /<package>.<Service>/<Method>`) and OpenAPI operations (`MethodDescriptor::operation`)
//! are parsed by the one parser of `switchboard-path` into a [`Template`] and lowered into one
//! [`Route`]. The trie has one node per literal segment or segment shape, so a lookup costs one
//! step per request segment, whatever the number of routes; nothing is parsed per request.
//!
//! **Precedence** (the same for every route): at each segment, a literal segment beats a
//! pattern with literal text (`{base}...{head}`, more literal text first), which beats a whole
//! variable segment (`*`, `{id}`), which beats `**`. The search backtracks: `GET /pets/mine`
//! prefers a literal `/pets/mine` route, and `DELETE /pets/mine` still reaches `DELETE
//! /pets/{id}` when only `GET` is bound to the literal path.
//!
//! **Verbs**: when the last segment of the request ends in `:<verb>` and some route declares
//! that verb, only routes with that verb are considered (the verb is part of the match; a
//! `…/books/0:move` request never matches the plain `{name=shelves/*/books/*}` of another
//! route). Otherwise the `:` is data, matched like any other character.
//!
//! **404 / 405 / HEAD**: a path no route matches is 404. A path that routes match, none with the
//! request's method, is 405 with `Allow` listing the methods of exactly the routes that match the
//! path under the rules above. `HEAD` without a `HEAD` route is answered by the `GET` route.
//!
//! **Clashes**: two routes with the same method, verb and segment shape (they would match the
//! same requests) are an error at registration naming both ([`RouteError::Clash`]).

use std::fmt;
use std::sync::Arc;

use switchboard_path::{literal_len, match_pieces, split_request_verb, Captures, Piece, Segment, Template, TemplateError};

use crate::api::contract::{ApiService, OpState};
use crate::{HttpRule, MethodDescriptor, ServiceDescriptor};

/// What a route leads to.
pub(crate) enum Target {
    /// A google.api.http binding: the body field (`""`, `"*"` or a field path) and the
    /// response field sent as the body (`""` for the whole response).
    Http { body: &'static str, response_body: &'static str },
    /// An OpenAPI operation and its prepared state.
    Api(Arc<OpState>),
}

/// One route: a method reachable by one HTTP method and path template.
pub(crate) struct Route {
    /// Index of the service in the router.
    pub(crate) service: usize,
    /// Index of the method in its descriptor.
    pub(crate) method_index: usize,
    /// The method.
    pub(crate) method: &'static MethodDescriptor,
    /// HTTP method to match.
    pub(crate) http_method: http::Method,
    /// The compiled path template.
    pub(crate) template: Template<'static>,
    /// Where the call goes.
    pub(crate) target: Target,
    /// How errors name the route.
    name: RouteName,
    /// Whether the ranges the trie walk captures (one per `*`/`{x}` segment and per pattern
    /// variable) are exactly the variables: no anonymous `*`, no variable over several
    /// segments or `**`. Else the template locates its variables after the walk.
    walk_captures: bool,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Route({})", self.name)
    }
}

/// A route as errors name it: HTTP method, path template (as served, under any base path) and
/// the `<service>/<method>` it calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteName {
    /// The HTTP method.
    pub method: Box<str>,
    /// The path template.
    pub template: Box<str>,
    /// The service's full name and the method's name: `library.v1.LibraryService/GetBook`.
    pub target: Box<str>,
}

impl fmt::Display for RouteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.method, self.template, self.target)
    }
}

/// Why a service's routes could not be registered ([`super::RestRouter::try_add`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A path template does not parse. (Templates of generated code and of `#[service]` are
    /// checked when generating and compiling; this is for descriptors built by hand.)
    #[error("{route}: {source}")]
    Template {
        /// The route.
        route: RouteName,
        /// What is wrong with its template.
        #[source]
        source: TemplateError,
    },
    /// A binding's method is not an HTTP method.
    #[error("{route}: not an HTTP method")]
    Method {
        /// The route.
        route: RouteName,
    },
    /// Two routes would match the same requests with the same HTTP method.
    #[error("{first} and {second} match the same requests")]
    Clash {
        /// The route registered first.
        first: RouteName,
        /// The route that clashes with it.
        second: RouteName,
    },
    /// The OpenAPI service's document could not be prepared.
    #[error("service `{service}`: {source}")]
    Document {
        /// The service's full name.
        service: String,
        /// What is wrong.
        #[source]
        source: TemplateError,
    },
}

/// The result of looking up a request.
pub(crate) enum Lookup<'a> {
    /// A route matched; its variables' byte ranges in the request path, in template order.
    Found(&'a Route, Captures),
    /// Routes match the path, none with this HTTP method: their methods.
    MethodNotAllowed(Vec<http::Method>),
    /// Nothing matches the path.
    NotFound,
}

#[derive(Debug, Default)]
struct Node {
    /// Literal children, sorted by text.
    literals: Vec<(Box<str>, usize)>,
    /// Pattern children, most literal text first (declaration order among equals).
    patterns: Vec<(Box<[Piece]>, usize)>,
    /// The whole-segment variable child (`*`, `{x}`).
    any: Option<usize>,
    /// The `**` child.
    rest: Option<usize>,
    /// Routes ending here.
    ends: Vec<End>,
}

#[derive(Debug)]
struct End {
    verb: Option<&'static str>,
    method: http::Method,
    route: usize,
}

/// All routes of a router.
#[derive(Debug)]
pub(crate) struct Routes {
    routes: Vec<Route>,
    nodes: Vec<Node>,
    /// Every verb some route declares.
    verbs: Vec<&'static str>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes { routes: Vec::new(), nodes: vec![Node::default()], verbs: Vec::new() }
    }
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
    /// Adds every route of `service` (its index is `index`). On an error nothing of the service
    /// is added.
    pub(crate) fn add(
        &mut self,
        index: usize,
        service: &'static ServiceDescriptor,
        api: Option<&ApiService>,
    ) -> Result<(), RouteError> {
        let mark = self.routes.len();
        let result = self.add_all(index, service, api);
        if result.is_err() {
            for node in &mut self.nodes {
                node.ends.retain(|e| e.route < mark);
            }
            self.routes.truncate(mark);
            self.verbs = self.routes.iter().filter_map(|r| r.template.verb).collect();
            self.verbs.dedup();
        }
        result
    }

    fn add_all(&mut self, index: usize, service: &'static ServiceDescriptor, api: Option<&ApiService>) -> Result<(), RouteError> {
        for (method_index, method) in service.methods.iter().enumerate() {
            let target_name: Box<str> = format!("{}/{}", service.full_name, method.name).into();
            if let Some(op) = method.operation {
                let state = api.and_then(|a| a.ops.get(method_index)).and_then(Option::clone);
                let name = RouteName {
                    method: op.method.into(),
                    template: state.as_ref().map_or_else(|| op.path.into(), |s| s.served_path.as_str().into()),
                    target: target_name,
                };
                let Some(state) = state else {
                    return Err(RouteError::Template {
                        source: TemplateError { template: op.path.to_owned(), offset: 0, message: format!("operation `{}` was not prepared", op.id) },
                        route: name,
                    });
                };
                let http_method = http::Method::from_bytes(op.method.as_bytes()).map_err(|_| RouteError::Method { route: name.clone() })?;
                let template = state.template.clone();
                self.insert(Route { service: index, method_index, method, http_method, template, target: Target::Api(state), name, walk_captures: false })?;
                continue;
            }
            for rule in rules(method) {
                let name = RouteName { method: rule.method.into(), template: rule.path.into(), target: target_name.clone() };
                let template = match Template::parse_http(rule.path) {
                    Ok(t) => t,
                    Err(source) => return Err(RouteError::Template { route: name, source }),
                };
                let http_method = http::Method::from_bytes(rule.method.as_bytes()).map_err(|_| RouteError::Method { route: name.clone() })?;
                let target = Target::Http { body: rule.body, response_body: rule.response_body };
                self.insert(Route { service: index, method_index, method, http_method, template, target, name, walk_captures: false })?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, mut route: Route) -> Result<(), RouteError> {
        let t = &route.template;
        let captured = t.segments.iter().map(|s| match s {
            Segment::Any => 1,
            Segment::Pattern(p) => p.iter().filter(|p| **p == Piece::Var).count(),
            _ => 0,
        });
        route.walk_captures = !t.segments.contains(&Segment::Rest)
            && t.variables.iter().all(|v| v.partial || v.end == v.start + 1)
            && captured.sum::<usize>() == t.variables.len();
        let mut node = 0;
        for seg in &route.template.segments {
            node = match seg {
                Segment::Literal(text) => match self.nodes[node].literals.binary_search_by(|(t, _)| (**t).cmp(text)) {
                    Ok(i) => self.nodes[node].literals[i].1,
                    Err(i) => {
                        let child = self.push();
                        self.nodes[node].literals.insert(i, (text.clone(), child));
                        child
                    }
                },
                Segment::Pattern(pieces) => match self.nodes[node].patterns.iter().find(|(p, _)| p == pieces) {
                    Some((_, child)) => *child,
                    None => {
                        let child = self.push();
                        let patterns = &mut self.nodes[node].patterns;
                        let len = literal_len(pieces);
                        let at = patterns.iter().position(|(p, _)| literal_len(p) < len).unwrap_or(patterns.len());
                        patterns.insert(at, (pieces.clone(), child));
                        child
                    }
                },
                Segment::Any => match self.nodes[node].any {
                    Some(child) => child,
                    None => {
                        let child = self.push();
                        self.nodes[node].any = Some(child);
                        child
                    }
                },
                Segment::Rest => match self.nodes[node].rest {
                    Some(child) => child,
                    None => {
                        let child = self.push();
                        self.nodes[node].rest = Some(child);
                        child
                    }
                },
            };
        }
        let verb = route.template.verb;
        if let Some(other) = self.nodes[node].ends.iter().find(|e| e.verb == verb && e.method == route.http_method) {
            return Err(RouteError::Clash { first: self.routes[other.route].name.clone(), second: route.name });
        }
        if let Some(v) = verb {
            if !self.verbs.contains(&v) {
                self.verbs.push(v);
            }
        }
        self.nodes[node].ends.push(End { verb, method: route.http_method.clone(), route: self.routes.len() });
        self.routes.push(route);
        Ok(())
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Paths of the routes that match one path only (no variables, wildcards or verb), each
    /// once.
    pub(crate) fn literal_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in self.routes.iter().filter_map(|r| r.template.literal_path()) {
            if !out.contains(&path) {
                out.push(path);
            }
        }
        out
    }

    /// Finds the route for a request (`path` percent-encoded, as in the URI).
    pub(crate) fn lookup(&self, method: &http::Method, path: &str) -> Lookup<'_> {
        let Some(rest) = path.strip_prefix('/') else { return Lookup::NotFound };
        if !self.verbs.is_empty() {
            if let Some((stem, verb)) = split_request_verb(rest) {
                if self.verbs.contains(&verb) {
                    match self.find(method, stem, Some(verb)) {
                        Lookup::NotFound => {}
                        other => return other,
                    }
                }
            }
        }
        self.find(method, rest, None)
    }

    fn find(&self, method: &http::Method, stem: &str, verb: Option<&str>) -> Lookup<'_> {
        let mut caps = Captures::default();
        let mut found = self.walk(0, Some(stem), 1, verb, method, &mut caps, None);
        if found.is_none() && *method == http::Method::HEAD {
            caps.truncate(0);
            found = self.walk(0, Some(stem), 1, verb, &http::Method::GET, &mut caps, None);
        }
        if let Some(index) = found {
            let route = &self.routes[index];
            if !route.walk_captures {
                // The trie matched this template; this only locates its variables.
                caps.truncate(0);
                if !route.template.variables.is_empty() {
                    route.template.match_stem(stem, 1, &mut caps);
                }
            }
            return Lookup::Found(route, caps);
        }
        let mut allowed = Vec::new();
        self.walk(0, Some(stem), 1, verb, method, &mut caps, Some(&mut allowed));
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            Lookup::MethodNotAllowed(allowed)
        }
    }

    /// Matches `rest` (the path still to match, from byte `offset` of the request path; `None`
    /// once every segment is consumed) below `node`, pushing the range of each `*`/`{x}`
    /// segment and pattern variable on the way to `caps`. With `allowed`, records the methods
    /// of every route whose template matches.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        node: usize,
        rest: Option<&str>,
        offset: usize,
        verb: Option<&str>,
        method: &http::Method,
        caps: &mut Captures,
        mut allowed: Option<&mut Vec<http::Method>>,
    ) -> Option<usize> {
        let n = &self.nodes[node];
        let Some(rest) = rest else {
            if let Some(route) = self.ends(node, verb, method, allowed.as_deref_mut()) {
                return Some(route);
            }
            // `**` matches zero segments too.
            return n.rest.and_then(|child| self.walk(child, None, offset, verb, method, caps, allowed));
        };
        let (seg, next) = match rest.as_bytes().iter().position(|&b| b == b'/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let next_offset = offset + seg.len() + 1;
        let literal = if n.literals.len() <= 8 {
            n.literals.iter().find(|(t, _)| t.len() == seg.len() && **t == *seg).map(|(_, c)| *c)
        } else {
            n.literals.binary_search_by(|(t, _)| (**t).cmp(seg)).ok().map(|i| n.literals[i].1)
        };
        if let Some(child) = literal {
            if let Some(route) = self.walk(child, next, next_offset, verb, method, caps, allowed.as_deref_mut()) {
                return Some(route);
            }
        }
        let mark = caps.len();
        for (pieces, child) in &n.patterns {
            if match_pieces(pieces, seg, offset, caps) {
                if let Some(route) = self.walk(*child, next, next_offset, verb, method, caps, allowed.as_deref_mut()) {
                    return Some(route);
                }
            }
            caps.truncate(mark);
        }
        if let Some(child) = n.any.filter(|_| !seg.is_empty()) {
            caps.push(offset..offset + seg.len());
            if let Some(route) = self.walk(child, next, next_offset, verb, method, caps, allowed.as_deref_mut()) {
                return Some(route);
            }
            caps.truncate(mark);
        }
        // `**`: as few segments as let the rest match (usually it is last and takes them all).
        let child = n.rest?;
        let (mut rest, mut offset) = (Some(rest), offset);
        loop {
            if let Some(route) = self.walk(child, rest, offset, verb, method, caps, allowed.as_deref_mut()) {
                return Some(route);
            }
            let r = rest?;
            match r.as_bytes().iter().position(|&b| b == b'/') {
                Some(i) => {
                    rest = Some(&r[i + 1..]);
                    offset += i + 1;
                }
                None => rest = None,
            }
        }
    }

    /// The route ending at `node` for `method` and `verb`; else records the methods of those
    /// with `verb`.
    fn ends(&self, node: usize, verb: Option<&str>, method: &http::Method, allowed: Option<&mut Vec<http::Method>>) -> Option<usize> {
        let ends = &self.nodes[node].ends;
        if let Some(end) = ends.iter().find(|e| e.verb == verb && e.method == *method) {
            return Some(end.route);
        }
        if let Some(allowed) = allowed {
            for end in ends.iter().filter(|e| e.verb == verb) {
                if !allowed.contains(&end.method) {
                    allowed.push(end.method.clone());
                }
            }
        }
        None
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
            package: "", name: "GitHub", full_name: "GitHub", methods: leak(methods), openapi: Some(text), schemas: None, policy: None,
        }));
        let start = std::time::Instant::now();
        let api = ApiService::build(service).unwrap().unwrap();
        let built = start.elapsed();
        let mut routes = Routes::default();
        routes.add(0, service, Some(&api)).unwrap();
        eprintln!("{} operations; document parsed and schemas compiled in {built:?}, routes in {:?}", samples.len(), start.elapsed() - built);
        // With the schema bundle codegen writes beside the document (`switchboard generate`'s
        // `<module>.schemas.json`), the document is not parsed at all.
        if let Ok(bundle) = std::env::var("SWITCHBOARD_OPENAPI_SCALE_SCHEMAS") {
            let bundle: &'static str = Box::leak(std::fs::read_to_string(bundle).unwrap().into_boxed_str());
            let bundled: &'static ServiceDescriptor = Box::leak(Box::new(ServiceDescriptor { schemas: Some(bundle), ..*service }));
            let start = std::time::Instant::now();
            let from_bundle = ApiService::build(bundled).unwrap().unwrap();
            eprintln!("from the schema bundle: schemas compiled in {:?}", start.elapsed());
            let served = |api: &ApiService| api.ops.iter().flatten().filter(|s| s.unavailable.is_none()).count();
            assert_eq!(served(&from_bundle), served(&api));
        }
        let start = std::time::Instant::now();
        let mut wrong = 0;
        for _ in 0..20 {
            for (method, path, index) in &samples {
                match routes.lookup(method, path) {
                    Lookup::Found(route, _) if route.method_index == *index => {}
                    Lookup::Found(route, _) => {
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

#[cfg(test)]
mod tests_support {
    //! Routers from short route lists, for the tests.
    use super::*;
    use crate::api::Operation;
    use crate::{CallShape, Idempotency};
    use http::Method;

    /// A method: `("GET", "/v1/{name}")` is a google.api.http rule; `("api GET", "/pets/{id}")`
    /// an OpenAPI operation.
    pub(super) fn method(name: &'static str, (verb, path): (&'static str, &'static str)) -> MethodDescriptor {
        let (http, operation): (&'static [HttpRule], _) = match verb.strip_prefix("api ") {
            Some(m) => {
                let op: &'static Operation = Box::leak(Box::new(Operation {
                    id: name, method: m, path, params: &[], body: None, responses: &[], security: &[],
                }));
                (&[], Some(op))
            }
            None => (Box::leak(Box::new([HttpRule { method: verb, path, body: "", response_body: "" }])), None),
        };
        MethodDescriptor {
            name, rust_name: name, grpc_path: "/t.S/M", shape: CallShape::Unary, idempotency: Idempotency::Unknown,
            deprecated: false, http, operation, event: false,
        }
    }

    pub(super) fn service(name: &'static str, routes: &[(&'static str, (&'static str, &'static str))]) -> &'static ServiceDescriptor {
        let methods: Vec<_> = routes.iter().map(|(n, r)| method(n, *r)).collect();
        Box::leak(Box::new(ServiceDescriptor {
            package: "t", name, full_name: name, methods: Box::leak(methods.into_boxed_slice()), openapi: None, schemas: None, policy: None,
        }))
    }

    pub(super) fn add(routes: &mut Routes, index: usize, s: &'static ServiceDescriptor) -> Result<(), RouteError> {
        let api = ApiService::build(s).unwrap();
        routes.add(index, s, api.as_ref())
    }

    pub(super) fn router(services: &[&'static ServiceDescriptor]) -> Routes {
        let mut routes = Routes::default();
        for (i, s) in services.iter().enumerate() {
            add(&mut routes, i, s).unwrap();
        }
        routes
    }

    /// `method name` and its variables, or `405 [methods]`, or `404`.
    pub(super) fn resolve(routes: &Routes, m: &str, path: &str) -> String {
        match routes.lookup(&Method::from_bytes(m.as_bytes()).unwrap(), path) {
            Lookup::Found(route, caps) => {
                let vars: Vec<String> = route
                    .template
                    .variables
                    .iter()
                    .zip(caps.iter())
                    .map(|(v, r)| format!("{}={}", v.name, &path[r]))
                    .collect();
                format!("{} {}{}", route.http_method, route.method.name, if vars.is_empty() { String::new() } else { format!(" {}", vars.join(" ")) })
            }
            Lookup::MethodNotAllowed(allowed) => {
                format!("405 {}", allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", "))
            }
            Lookup::NotFound => "404".into(),
        }
    }


    /// examples/library's bindings.
    pub(super) fn library() -> Routes {
        router(&[service("library.v1.LibraryService", &[
            ("ListShelves", ("GET", "/v1/shelves")),
            ("GetShelf", ("GET", "/v1/{name=shelves/*}")),
            ("CreateShelf", ("POST", "/v1/shelves")),
            ("DeleteShelf", ("DELETE", "/v1/{name=shelves/*}")),
            ("ListBooks", ("GET", "/v1/{parent=shelves/*}/books")),
            ("GetBook", ("GET", "/v1/{name=shelves/*/books/*}")),
            ("CreateBook", ("POST", "/v1/{parent=shelves/*}/books")),
            ("UpdateBook", ("PATCH", "/v1/{book.name=shelves/*/books/*}")),
            ("DeleteBook", ("DELETE", "/v1/{name=shelves/*/books/*}")),
            ("MoveBook", ("POST", "/v1/{name=shelves/*/books/*}:move")),
            ("WatchShelf", ("GET", "/v1/{name=shelves/*}:watch")),
        ])])
    }
}

#[cfg(test)]
mod tests {
    //! One router, both specs: precedence, clashes, 404/405/HEAD and verbs.
    use super::tests_support::*;
    use super::*;

    #[test]
    fn one_precedence_rule_for_both_specs_in_both_orders() {
        let proto = service("Proto", &[
            ("Mine", ("GET", "/pets/mine")),
            ("Item", ("GET", "/items/{name}")),
            ("Tail", ("GET", "/files/{path=**}")),
        ]);
        let api = service("Api", &[
            ("Pet", ("api GET", "/pets/{id}")),
            ("Special", ("api GET", "/items/special")),
            ("File", ("api GET", "/files/{name}.{ext}")),
            ("Latest", ("api GET", "/files/latest")),
        ]);
        for order in [[proto, api], [api, proto]] {
            let r = router(&order);
            // Literal beats variable, whichever spec each came from and whichever came first.
            assert_eq!(resolve(&r, "GET", "/pets/mine"), "GET Mine");
            assert_eq!(resolve(&r, "GET", "/pets/7"), "GET Pet id=7");
            assert_eq!(resolve(&r, "GET", "/items/special"), "GET Special");
            assert_eq!(resolve(&r, "GET", "/items/x"), "GET Item name=x");
            // Literal beats a pattern, which beats `**`.
            assert_eq!(resolve(&r, "GET", "/files/latest"), "GET Latest");
            assert_eq!(resolve(&r, "GET", "/files/a.tar.gz"), "GET File name=a ext=tar.gz");
            assert_eq!(resolve(&r, "GET", "/files/readme"), "GET Tail path=readme");
            assert_eq!(resolve(&r, "GET", "/files/a/b.c"), "GET Tail path=a/b.c");
        }
    }

    #[test]
    fn methods_backtrack_to_less_specific_routes() {
        let r = router(&[service("S", &[
            ("Get", ("api GET", "/pets/{id}")),
            ("Mine", ("GET", "/pets/mine")),
            ("Delete", ("DELETE", "/pets/{name}")),
            ("List", ("api GET", "/pets")),
        ])]);
        assert_eq!(resolve(&r, "DELETE", "/pets/mine"), "DELETE Delete name=mine");
        assert_eq!(resolve(&r, "GET", "/pets"), "GET List");
        assert_eq!(resolve(&r, "POST", "/pets/7"), "405 GET, DELETE");
        assert_eq!(resolve(&r, "POST", "/pets/mine"), "405 GET, DELETE");
        assert_eq!(resolve(&r, "GET", "/pets/7/x"), "404");
        assert_eq!(resolve(&r, "GET", "/pets/"), "404", "a variable is never empty");
    }

    #[test]
    fn a_clash_is_an_error_naming_both_routes_and_adds_nothing() {
        let proto = service("t.Proto", &[("Get", ("GET", "/v1/{name=pets/*}")), ("Other", ("GET", "/v1/other"))]);
        let api = service("t.Api", &[("ShowPet", ("api GET", "/v1/pets/{petId}")), ("Fine", ("api GET", "/v1/fine"))]);
        for (first, second) in [(proto, api), (api, proto)] {
            let mut routes = Routes::default();
            add(&mut routes, 0, first).unwrap();
            let err = add(&mut routes, 1, second).unwrap_err();
            let RouteError::Clash { first: a, second: b } = &err else { panic!("{err}") };
            let names = [a.to_string(), b.to_string()];
            assert!(names.contains(&"GET /v1/{name=pets/*} (t.Proto/Get)".to_owned()), "{err}");
            assert!(names.contains(&"GET /v1/pets/{petId} (t.Api/ShowPet)".to_owned()), "{err}");
            assert_eq!(err.to_string(), format!("{} and {} match the same requests", names[0], names[1]));
            // Nothing of the rejected service was added.
            assert_eq!(resolve(&routes, "GET", "/v1/pets/1").split(' ').nth(1), Some(first.methods[0].name));
            assert_eq!(resolve(&routes, "GET", if first.name == "t.Proto" { "/v1/fine" } else { "/v1/other" }), "404");
        }
        // Another method, or another verb, is not a clash.
        router(&[service("S", &[("A", ("GET", "/x/{a}")), ("B", ("api DELETE", "/x/{b}")), ("C", ("GET", "/x/{c}:run"))])]);
        // Nor is a route that only overlaps: precedence decides.
        router(&[service("S", &[("A", ("GET", "/x/{a}")), ("B", ("api GET", "/x/{b}.json"))])]);
    }

    #[test]
    fn bad_templates_are_errors_not_panics() {
        let mut routes = Routes::default();
        let err = add(&mut routes, 0, service("t.S", &[("Bad", ("GET", "/v1/{unclosed"))])).unwrap_err();
        assert!(matches!(err, RouteError::Template { .. }), "{err}");
        assert!(err.to_string().starts_with("GET /v1/{unclosed (t.S/Bad): path template"), "{err}");
        let err = add(&mut routes, 0, service("t.S", &[("Bad", ("GE T", "/v1/x"))])).unwrap_err();
        assert!(matches!(err, RouteError::Method { .. }), "{err}");
    }

    #[test]
    fn allow_lists_only_the_routes_of_the_path() {
        let r = library();
        // The verb is part of the match: these are not the Get/Update/Delete paths.
        assert_eq!(resolve(&r, "OPTIONS", "/v1/shelves/0/books/0:move"), "405 POST");
        assert_eq!(resolve(&r, "GET", "/v1/shelves/0/books/0:move"), "405 POST");
        assert_eq!(resolve(&r, "OPTIONS", "/v1/shelves/0:watch"), "405 GET");
        assert_eq!(resolve(&r, "DELETE", "/v1/shelves/0:watch"), "405 GET");
        assert_eq!(resolve(&r, "OPTIONS", "/v1/shelves/0/books/0"), "405 GET, PATCH, DELETE");
        assert_eq!(resolve(&r, "OPTIONS", "/v1/shelves/0"), "405 GET, DELETE");
        assert_eq!(resolve(&r, "PUT", "/v1/shelves"), "405 GET, POST");
        assert_eq!(resolve(&r, "POST", "/v1/shelves/0/books/0:move"), "POST MoveBook name=shelves/0/books/0");
        assert_eq!(resolve(&r, "GET", "/v1/shelves/0:watch"), "GET WatchShelf name=shelves/0");
        assert_eq!(resolve(&r, "GET", "/v1/shelves/0/books/0"), "GET GetBook name=shelves/0/books/0");
        assert_eq!(resolve(&r, "GET", "/v1/nothing/here"), "404");
    }

    #[test]
    fn verbs_never_match_a_variable_of_another_route() {
        let r = router(&[service("S", &[
            ("Get", ("GET", "/v1/things/{id}")),
            ("Run", ("POST", "/v1/things/{id}:run")),
            ("Cancel", ("api POST", "/v1/things/{id}:cancel")),
        ])]);
        assert_eq!(resolve(&r, "GET", "/v1/things/7:run"), "405 POST");
        assert_eq!(resolve(&r, "GET", "/v1/things/7:cancel"), "405 POST");
        assert_eq!(resolve(&r, "POST", "/v1/things/7:run"), "POST Run id=7");
        assert_eq!(resolve(&r, "POST", "/v1/things/7:cancel"), "POST Cancel id=7");
        // A verb no route declares is data.
        assert_eq!(resolve(&r, "GET", "/v1/things/a:b"), "GET Get id=a:b");
        assert_eq!(resolve(&r, "POST", "/v1/things/7"), "405 GET");
    }

    #[test]
    fn head_is_answered_by_get() {
        let r = router(&[service("S", &[
            ("Get", ("GET", "/a/{x}")),
            ("Head", ("HEAD", "/b")),
            ("GetB", ("GET", "/b")),
            ("Post", ("api POST", "/c")),
        ])]);
        assert_eq!(resolve(&r, "HEAD", "/a/1"), "GET Get x=1");
        assert_eq!(resolve(&r, "HEAD", "/b"), "HEAD Head");
        assert_eq!(resolve(&r, "HEAD", "/c"), "405 POST");
        assert_eq!(resolve(&r, "HEAD", "/d"), "404");
    }

    #[test]
    fn several_variables_in_one_segment_and_many_variables() {
        let r = router(&[service("S", &[
            ("Compare", ("api GET", "/repos/{owner}/{repo}/compare/{base}...{head}")),
            ("Version", ("api GET", "/v{major}.{minor}/x")),
            ("Eight", ("api GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}")),
        ])]);
        assert_eq!(resolve(&r, "GET", "/repos/o/r/compare/v1.0...feature.x"), "GET Compare owner=o repo=r base=v1.0 head=feature.x");
        assert_eq!(resolve(&r, "GET", "/v2.1/x"), "GET Version major=2 minor=1");
        assert_eq!(resolve(&r, "GET", "/repos/o/r/compare/...x"), "404");
        assert_eq!(resolve(&r, "GET", "/1/2/3/4/5/6/7/8"), "GET Eight a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8");
    }

    #[test]
    fn double_star_before_further_segments() {
        // Firestore's ListDocuments binding.
        let r = router(&[service("S", &[
            ("List", ("GET", "/v1/{parent=projects/*/documents/*/**}/{collection_id}")),
            ("Get", ("GET", "/v1/{name=projects/*/documents/*/*/*}")),
        ])]);
        assert_eq!(resolve(&r, "GET", "/v1/projects/p/documents/d/c"), "GET List parent=projects/p/documents/d collection_id=c");
        assert_eq!(resolve(&r, "GET", "/v1/projects/p/documents/d/c/e"), "GET Get name=projects/p/documents/d/c/e");
        assert_eq!(resolve(&r, "GET", "/v1/projects/p/documents/d/c/e/f"), "GET List parent=projects/p/documents/d/c/e collection_id=f");
        assert_eq!(resolve(&r, "POST", "/v1/projects/p/documents/d/c"), "405 GET");
        assert_eq!(resolve(&r, "GET", "/v1/projects/p/documents/d"), "404");
    }

    #[test]
    fn literal_paths_are_those_of_literal_routes() {
        let r = library();
        assert_eq!(r.literal_paths(), vec!["/v1/shelves".to_owned()]);
    }
}

#[cfg(test)]
mod speed {
    //! `cargo test --release -p switchboard --lib routes::speed -- --ignored --nocapture`
    use super::tests_support::*;
    use super::*;

    fn time(routes: &Routes, requests: &[(http::Method, &str)]) -> u128 {
        let start = std::time::Instant::now();
        let mut n = 0;
        for i in 0..1_000_000usize {
            let (m, p) = &requests[i % requests.len()];
            if let Lookup::Found(r, caps) = routes.lookup(m, std::hint::black_box(p)) {
                n += r.method_index + caps.len();
            }
        }
        std::hint::black_box(n);
        start.elapsed().as_nanos() / 1_000_000
    }

    #[test]
    #[ignore]
    fn lookup_speed() {
        let api = router(&[service("Api", &[
            ("A", ("api GET", "/v1/pets")), ("B", ("api GET", "/v1/pets/mine")), ("C", ("api GET", "/v1/pets/{petId}")),
            ("D", ("api GET", "/v1/pets/{petId}/photo")), ("E", ("api GET", "/v1/pets/{petId}/data")),
            ("F", ("api GET", "/v1/pets/{petId}/name")), ("G", ("api GET", "/v1/compare/{base}...{head}")), ("H", ("api GET", "/v1/teapot")),
        ])]);
        let ns = time(&api, &[(http::Method::GET, "/v1/pets/123"), (http::Method::GET, "/v1/pets/45/name")]);
        eprintln!("OpenAPI: {ns} ns/lookup");
        let proto = library();
        let ns = time(&proto, &[(http::Method::GET, "/v1/shelves/1/books/2"), (http::Method::POST, "/v1/shelves/1/books/2:move")]);
        eprintln!("google.api.http (library): {ns} ns/lookup");
        let echo = router(&[service("Echo", &[("Echo", ("POST", "/bench.v1.Echo/Echo")), ("Other", ("POST", "/bench.v1.Echo/Other"))])]);
        let ns = time(&echo, &[(http::Method::POST, "/bench.v1.Echo/Echo")]);
        eprintln!("default binding: {ns} ns/lookup");
    }
}
