//! The REST server: a route table over any number of services, as a tower `Service` and as an
//! axum `Router`.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use tonic::Status;

use super::carry::Rest;
use crate::dispatch::Dispatch;
use crate::api::contract::ApiService;
use super::call::ApiCall;
use crate::api::{Credentials, Operation};
use super::call::{error_response, Call, HttpResponse, DEFAULT_MAX_BODY};
use super::routes::{Lookup, RouteError, Routes, Target};
use super::template::decode_variable;
use super::{openapi, Body};
use crate::ServiceDescriptor;
use crate::dedupe::http::{Framing, Window};
use crate::shed::{self, Limit};

type DispatchFn = Arc<dyn Fn(Call) -> BoxFuture<'static, HttpResponse> + Send + Sync>;
type AuthorizeFn = super::security::Authorize;

/// Serves any number of `#[service]` implementations over REST (HTTP/1.1 or HTTP/2, JSON).
///
/// Routes come from each method's `google.api.http` bindings, or `POST /<package>.<Service>/<Method>`
/// for methods without one. `GET /openapi.json` answers the OpenAPI 3.1 document of the services.
/// OpenAPI operations are routed by their method and path. All routes share one precedence rule:
/// at each segment a literal beats a segment pattern (`{base}...{head}`), which beats a variable,
/// which beats `**`, and a `:verb` is part of the match. Unknown paths answer 404, known paths
/// with another HTTP method 405 with `Allow` listing the methods of the routes that match the
/// path, `HEAD` is answered by the `GET` route, and every error is a JSON body
/// `{"code", "message", "details"}` (see [`super::status`]).
///
/// ```
/// # use switchboard::{Request, Response, Status};
/// #[switchboard::service(package = "hello.v1")]
/// pub trait Greeter {
///     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
/// }
/// # struct Impl;
/// # impl Greeter for Impl {
/// #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
/// #         Ok(Response::new(req.into_inner()))
/// #     }
/// # }
/// let rest = switchboard::rest::RestRouter::new().add(GreeterRestServer::new(Impl));
/// let app: axum::Router = rest.into_router();
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct RestRouter {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    routes: Routes,
    services: Vec<ServiceEntry>,
    max_body: usize,
    openapi: std::sync::OnceLock<Bytes>,
    /// The router's authorization hook, for services without their own.
    authorize: Option<AuthorizeFn>,
    /// Unary calls with an `idempotency-key` run once per key.
    dedupe: Window,
    /// The limit on calls in flight, if one is set.
    shed: Option<Arc<Limit>>,
}

struct ServiceEntry {
    descriptor: &'static ServiceDescriptor,
    dispatch: DispatchFn,
    /// OpenAPI operations, prepared once (shared by every router the service is added to).
    api: Option<Arc<ApiService>>,
    /// The service's own authorization hook (`RestServer::authorize`).
    authorize: Option<AuthorizeFn>,
    /// Whether `/openapi.json` describes it (not the health service a `Server` adds).
    listed: bool,
}

impl Default for RestRouter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RestRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.inner.services.iter().map(|e| e.descriptor.full_name).collect();
        f.debug_struct("RestRouter").field("services", &names).finish()
    }
}

impl RestRouter {
    /// A router with no services.
    pub fn new() -> Self {
        RestRouter { inner: Arc::new(Inner { max_body: DEFAULT_MAX_BODY, ..Default::default() }) }
    }

    /// Adds a service (e.g. `GreeterRestServer::new(handler)`), with the authorization hook
    /// the service was given, if any.
    ///
    /// Routes are matched as [`RestRouter`] describes, whatever spec they come from.
    ///
    /// # Panics
    ///
    /// Where [`RestRouter::try_add`] returns an error: when a route of the service would match
    /// the same requests with the same HTTP method as a route already added (axum's `Router`
    /// panics on overlapping routes the same way), or a hand-built descriptor has a template
    /// that does not parse. The message names both routes. Templates of generated code and of
    /// `#[service]` are checked when generating and compiling.
    #[allow(clippy::should_implement_trait)]
    pub fn add<D: Dispatch<Rest>>(self, service: RestServer<D>) -> Self {
        match self.try_add(service) {
            Ok(router) => router,
            Err(e) => panic!("switchboard: {e}"),
        }
    }

    /// Adds a service as [`RestRouter::add`] does, or says why it cannot be added: a route that
    /// would match the same requests with the same HTTP method as one already added
    /// ([`RouteError::Clash`], naming both as `METHOD template (service/Method)`), or a template
    /// that does not parse. On an error the router is dropped; the error says all there is.
    ///
    /// ```
    /// # use switchboard::{Request, Response, Status};
    /// #[switchboard::service(package = "hello.v1")]
    /// pub trait Greeter {
    ///     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
    /// }
    /// # #[derive(Clone)]
    /// # struct Impl;
    /// # impl Greeter for Impl {
    /// #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
    /// #         Ok(Response::new(req.into_inner()))
    /// #     }
    /// # }
    /// let router = switchboard::rest::RestRouter::new().try_add(GreeterRestServer::new(Impl)).unwrap();
    /// // The same routes again: `POST /hello.v1.Greeter/SayHello` twice.
    /// let err = router.try_add(GreeterRestServer::new(Impl)).unwrap_err();
    /// assert!(matches!(err, switchboard::rest::RouteError::Clash { .. }));
    /// ```
    pub fn try_add<D: Dispatch<Rest>>(self, service: RestServer<D>) -> Result<Self, RouteError> {
        let own = service.router.inner.services.first();
        let api = own.and_then(|e| e.api.clone());
        let authorize = own.and_then(|e| e.authorize.clone());
        self.add_prepared::<D>(service.handler, api, authorize)
    }

    fn add_handler<D: Dispatch<Rest>>(self, handler: Arc<D::Handler>) -> Result<Self, RouteError> {
        let descriptor = D::descriptor();
        let api = ApiService::build(descriptor)
            .map_err(|source| RouteError::Document { service: descriptor.full_name.to_owned(), source })?
            .map(Arc::new);
        self.add_prepared::<D>(handler, api, None)
    }

    fn add_prepared<D: Dispatch<Rest>>(
        mut self,
        handler: Arc<D::Handler>,
        api: Option<Arc<ApiService>>,
        authorize: Option<AuthorizeFn>,
    ) -> Result<Self, RouteError> {
        let inner = Arc::get_mut(&mut self.inner).expect("RestRouter is being built; it has not been cloned");
        let index = inner.services.len();
        let descriptor = D::descriptor();
        inner.routes.add(index, descriptor, api.as_deref())?;
        inner.services.push(ServiceEntry {
            descriptor,
            dispatch: Arc::new(move |call: Call| D::dispatch(&handler, call.method_index, call)),
            api,
            authorize,
            listed: true,
        });
        Ok(self)
    }

    /// Adds a service that `/openapi.json` leaves out (the health service `Server` adds: the
    /// document describes the application's API).
    #[cfg(feature = "grpc")]
    pub(crate) fn add_unlisted<D: Dispatch<Rest>>(self, service: RestServer<D>) -> Self {
        let mut router = self.add(service);
        let inner = Arc::get_mut(&mut router.inner).expect("RestRouter is being built; it has not been cloned");
        if let Some(entry) = inner.services.last_mut() {
            entry.listed = false;
        }
        router
    }

    /// Checks the credentials of every call to an OpenAPI operation that has security
    /// requirements, after the server has found them ([`Credentials`]: the first alternative of
    /// the operation's `security` the request satisfies) and before the request is decoded. An
    /// `Err` answers the call (`Status::unauthenticated` → 401 with `WWW-Authenticate`,
    /// `Status::permission_denied` → 403). A service added with its own hook
    /// ([`RestServer::authorize`]) keeps that one.
    ///
    /// Without a hook, any credentials of the right kind are let through; the handler finds them
    /// in `req.extensions().get::<Credentials>()`. Operations without security skip the hook.
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Operation, &Credentials) -> Result<(), Status> + Send + Sync + 'static,
    {
        Arc::get_mut(&mut self.inner).expect("RestRouter is being built; it has not been cloned").authorize =
            Some(Arc::new(hook));
        self
    }

    /// Largest request body accepted (default 4 MiB); larger ones answer 413 Payload Too Large
    /// (code RESOURCE_EXHAUSTED in the JSON error).
    ///
    /// ```
    /// let router = switchboard::rest::RestRouter::new().max_body_size(64 * 1024);
    /// # let _ = router;
    /// ```
    pub fn max_body_size(mut self, limit: usize) -> Self {
        Arc::get_mut(&mut self.inner).expect("RestRouter is being built; it has not been cloned").max_body = limit;
        self
    }

    /// How long a unary call's `idempotency-key` is remembered (default 5 minutes; zero turns
    /// keyed dedupe off). Within it a call with the same method, key and `Authorization` as an
    /// earlier one does not run again: it gets the earlier answer (status, headers and body), or
    /// waits for it while the first still runs. Answers that say "try again" (503, 429, 504, 499,
    /// a panic's 500) are not remembered, so a retry runs again. Up to `max_bytes` of answers are
    /// kept (default 64 MiB; the oldest go first, and a duplicate of an answer that was not kept
    /// gets 409 ABORTED). The same rules as the gRPC and queue servers'.
    ///
    /// ```
    /// use std::time::Duration;
    /// let router = switchboard::rest::RestRouter::new().dedupe(Duration::from_secs(60), 16 * 1024 * 1024);
    /// # let _ = router;
    /// ```
    pub fn dedupe(mut self, window: std::time::Duration, max_bytes: usize) -> Self {
        Arc::get_mut(&mut self.inner).expect("RestRouter is being built; it has not been cloned").dedupe =
            Window::new(window, 100_000, max_bytes);
        self
    }

    /// Sheds load: past `max_in_flight` calls running at once, a new call is answered 429
    /// (RESOURCE_EXHAUSTED) at once with `Retry-After` (whole seconds, rounded up) and
    /// `grpc-retry-pushback-ms: <pushback>`, which switchboard's retrying clients wait for before
    /// they try again. The same limiter as the gRPC and queue servers'.
    ///
    /// ```
    /// use std::time::Duration;
    /// let router = switchboard::rest::RestRouter::new().shed_load(64, Duration::from_millis(200));
    /// # let _ = router;
    /// ```
    pub fn shed_load(mut self, max_in_flight: usize, pushback: std::time::Duration) -> Self {
        Arc::get_mut(&mut self.inner).expect("RestRouter is being built; it has not been cloned").shed =
            Some(Limit::new(max_in_flight, pushback));
        self
    }

    /// Runs a call through its service's dispatch table (a unary call with an idempotency key
    /// through the dedupe window), under the load limit.
    fn dispatch(&self, service: usize, call: Call) -> BoxFuture<'static, HttpResponse> {
        let permit = match shed::admit(self.inner.shed.as_ref()) {
            Ok(permit) => permit,
            Err(status) => return ready(error_response(&status)),
        };
        let entry = &self.inner.services[service];
        let key = if call.method.shape == crate::CallShape::Unary { self.inner.dedupe.key(call.method.grpc_path, &call.parts.headers) } else { None };
        let answer = match key {
            None => (entry.dispatch)(call),
            Some(key) => Box::pin(self.inner.dedupe.clone().once(key, (entry.dispatch)(call), REST_FRAMING)),
        };
        match permit {
            None => answer,
            Some(permit) => Box::pin(async move {
                let answer = answer.await;
                drop(permit);
                answer
            }),
        }
    }

    /// The descriptors of the services added.
    pub fn services(&self) -> impl Iterator<Item = &'static ServiceDescriptor> + '_ {
        self.inner.services.iter().map(|e| e.descriptor)
    }

    /// An axum `Router` that serves this router for every path, to merge into an application.
    pub fn into_router(self) -> axum::Router {
        // Literal-only paths become axum routes, so axum matches them without capturing the whole
        // path as a wildcard parameter (an allocation and an extension per request); templates
        // and unknown paths still reach this router through the fallback. (Registering OpenAPI
        // templates as axum routes too was measured: slower, as axum then also records the
        // matched path and this router matches again anyway.)
        let mut router = axum::Router::new();
        for path in self.inner.routes.literal_paths() {
            if path.len() > 1 && !path.contains(['{', '}', '*', ':']) {
                router = router.route_service(&path, self.clone());
            }
        }
        router.fallback_service(self)
    }

    /// Serves on `listener` (HTTP/1.1 and HTTP/2 cleartext) until the process ends.
    ///
    /// Requests go straight to this router (no axum `Router` in front: it would only forward
    /// them here, after matching the path once more).
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(nodelay(listener), self.into_make_service()).await
    }

    /// Serves over TLS on `listener` (HTTP/1.1 and HTTP/2, by ALPN) until the process ends, with
    /// `tls`'s certificate, which [`ServerTls::reload`](crate::tls::ServerTls::reload) swaps
    /// while this runs. See [`crate::tls`].
    ///
    /// ```no_run
    /// # async fn run(router: switchboard::rest::RestRouter) -> Result<(), Box<dyn std::error::Error>> {
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?;
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
    /// router.serve_tls(listener, tls).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub async fn serve_tls(self, listener: tokio::net::TcpListener, tls: crate::tls::ServerTls) -> std::io::Result<()> {
        axum::serve(crate::tls::TlsListener::new(listener, tls), self.into_make_service()).await
    }

    /// This router as the connection-level service `axum::serve` (or hyper-util) takes:
    /// `axum::serve(listener, rest.into_make_service())`. Requests reach the router directly,
    /// which is cheaper than going through an axum `Router` ([`RestRouter::into_router`]) when
    /// nothing else is served.
    pub fn into_make_service(self) -> IntoMakeService {
        IntoMakeService(self)
    }

    /// Answers one request.
    pub fn call<B>(&self, request: http::Request<B>) -> BoxFuture<'static, HttpResponse>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let (route, body_field, response_body, vars) = match self.inner.routes.lookup(&parts.method, parts.uri.path()) {
            Lookup::Found(route, caps) => match &route.target {
                Target::Http { body, response_body } => {
                    let path = parts.uri.path();
                    let mut vars = Vec::with_capacity(caps.len());
                    for (var, range) in route.template.variables.iter().zip(caps.iter()) {
                        match decode_variable(&route.template, var, &path[range]) {
                            Some(value) => vars.push((var.name, value)),
                            None => {
                                let status = Status::invalid_argument(format!("path variable `{}` is not UTF-8", var.name));
                                return ready(error_response(&status));
                            }
                        }
                    }
                    (route, *body, *response_body, vars)
                }
                Target::Api(state) => {
                let vars = caps;
                let entry = &self.inner.services[route.service];
                let authorize = if state.op.security.is_empty() {
                    None
                } else {
                    entry.authorize.as_ref().or(self.inner.authorize.as_ref()).cloned()
                };
                let call = Call {
                    vars: Vec::new(),
                    method: route.method,
                    method_index: route.method_index,
                    body_field: "",
                    response_body: "",
                    max_body: self.inner.max_body,
                    parts,
                    body: Body::new(body),
                    api: Some(ApiCall { state: state.clone(), vars, authorize }),
                };
                return self.dispatch(route.service, call);
                }
            },
            Lookup::MethodNotAllowed(allowed) => return ready(method_not_allowed(&parts, &allowed)),
            Lookup::NotFound if parts.uri.path() == "/openapi.json" && parts.method == http::Method::GET => {
                return ready(self.openapi_response());
            }
            Lookup::NotFound => {
                let status = Status::not_found(format!("no method is bound to {} {}", parts.method, parts.uri.path()));
                return ready(error_response(&status));
            }
        };
        let call = Call {
            vars,
            method: route.method,
            method_index: route.method_index,
            body_field,
            response_body,
            max_body: self.inner.max_body,
            parts,
            body: Body::new(body),
            api: None,
        };
        self.dispatch(route.service, call)
    }

    fn openapi_response(&self) -> HttpResponse {
        let doc = self.inner.openapi.get_or_init(|| {
            let descriptors: Vec<_> = self.inner.services.iter().filter(|e| e.listed).map(|e| e.descriptor).collect();
            Bytes::from(openapi::document(&descriptors))
        });
        let mut resp = http::Response::new(Body::from(doc.clone()));
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }
}

/// How REST answers read for the dedupe window: an error's code is in its JSON body.
const REST_FRAMING: Framing<Body> = Framing {
    status_of: |reply| {
        let (status, _, _) = reply.parts();
        if status.is_success() {
            return Status::ok("");
        }
        super::status::status_from_json(&reply.body()).unwrap_or_else(|| Status::new(super::status::code_from_http(status), ""))
    },
    wrap: Body::new,
    error: error_response,
};

/// A [`RestRouter`] as a service that makes one service per connection (a clone of the router),
/// as `axum::serve` takes it. From [`RestRouter::into_make_service`].
#[derive(Clone, Debug)]
pub struct IntoMakeService(RestRouter);

impl<T> tower_service::Service<T> for IntoMakeService {
    type Response = RestRouter;
    type Error = Infallible;
    type Future = std::future::Ready<Result<RestRouter, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: T) -> Self::Future {
        std::future::ready(Ok(self.0.clone()))
    }
}

fn ready(resp: HttpResponse) -> BoxFuture<'static, HttpResponse> {
    Box::pin(std::future::ready(resp))
}

fn method_not_allowed(parts: &http::request::Parts, allowed: &[http::Method]) -> HttpResponse {
    let list: Vec<&str> = allowed.iter().map(http::Method::as_str).collect();
    let status = Status::unimplemented(format!(
        "{} is not allowed on {} (allowed: {})",
        parts.method,
        parts.uri.path(),
        list.join(", ")
    ));
    let mut resp = error_response(&status);
    *resp.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
        resp.headers_mut().insert(ALLOW, v);
    }
    resp
}

impl<B> tower_service::Service<http::Request<B>> for RestRouter
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = futures_util::future::Map<BoxFuture<'static, HttpResponse>, fn(HttpResponse) -> Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        futures_util::FutureExt::map(RestRouter::call(self, request), Ok)
    }
}

/// One `#[service]` implementation served over REST. The macro defines
/// `type <Trait>RestServer<H> = RestServer<...>`; serve it alone (it is a tower `Service` and
/// converts into an axum `Router`) or add several to a [`RestRouter`].
pub struct RestServer<D: Dispatch<Rest>> {
    handler: Arc<D::Handler>,
    router: RestRouter,
    _marker: PhantomData<fn() -> D>,
}

impl<D: Dispatch<Rest>> RestServer<D> {
    /// Serves `handler`.
    pub fn new(handler: D::Handler) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// Serves a shared `handler` (e.g. the one a gRPC server also uses).
    ///
    /// # Panics
    ///
    /// As [`RestRouter::add`], with the error [`RestRouter::try_add`] would return: if two of
    /// the service's own routes would match the same requests with the same HTTP method, or a
    /// template does not parse. `#[service]` and `switchboard generate` reject both when the
    /// service is written, so only hand-built descriptors can get here.
    pub fn from_arc(handler: Arc<D::Handler>) -> Self {
        let router = match RestRouter::new().add_handler::<D>(handler.clone()) {
            Ok(router) => router,
            Err(e) => panic!("switchboard: {e}"),
        };
        RestServer { handler, router, _marker: PhantomData }
    }

    /// Checks the credentials of calls to this service's secured OpenAPI operations (see
    /// [`RestRouter::authorize`]); kept when the service is added to a router.
    ///
    /// # Panics
    ///
    /// If this server has been cloned.
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Operation, &Credentials) -> Result<(), Status> + Send + Sync + 'static,
    {
        let inner = Arc::get_mut(&mut self.router.inner).expect("RestServer is being built; it has not been cloned");
        if let Some(entry) = inner.services.first_mut() {
            entry.authorize = Some(Arc::new(hook));
        }
        self
    }

    /// The service's descriptor.
    pub fn descriptor(&self) -> &'static ServiceDescriptor {
        D::descriptor()
    }

    /// A router serving just this service.
    pub fn into_rest_router(self) -> RestRouter {
        self.router
    }

    /// An axum `Router` serving just this service.
    pub fn into_router(self) -> axum::Router {
        self.into_rest_router().into_router()
    }

    /// Just this service for `axum::serve(listener, server.into_make_service())`, without an
    /// axum `Router` in front (see [`RestRouter::into_make_service`]).
    pub fn into_make_service(self) -> IntoMakeService {
        self.router.into_make_service()
    }

    /// Serves just this service on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.router.serve(listener).await
    }

    /// Serves just this service over TLS on `listener` until the process ends (see
    /// [`RestRouter::serve_tls`]).
    #[cfg(feature = "tls")]
    pub async fn serve_tls(self, listener: tokio::net::TcpListener, tls: crate::tls::ServerTls) -> std::io::Result<()> {
        self.router.serve_tls(listener, tls).await
    }
}

impl<D: Dispatch<Rest>> Clone for RestServer<D> {
    fn clone(&self) -> Self {
        RestServer { handler: self.handler.clone(), router: self.router.clone(), _marker: PhantomData }
    }
}

impl<D: Dispatch<Rest>> fmt::Debug for RestServer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestServer").field("service", &D::descriptor().full_name).finish()
    }
}

impl<D: Dispatch<Rest>, B> tower_service::Service<http::Request<B>> for RestServer<D>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = <RestRouter as tower_service::Service<http::Request<B>>>::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        tower_service::Service::call(&mut self.router, request)
    }
}

/// `listener`, its connections with `TCP_NODELAY` set (as tonic's server sets it; `axum::serve`
/// does not): without it, answers written while an earlier one is unacknowledged wait for the
/// peer's delayed ACK (Nagle's algorithm, up to 40 ms), which concurrent calls on one HTTP/2
/// connection meet all the time.
pub(crate) fn nodelay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}
