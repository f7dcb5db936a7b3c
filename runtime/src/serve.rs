//! [`Server`]: gRPC and REST for the same handlers, on one port or two, with the health
//! service ([`crate::health`]) for every service it carries.

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::header::CONTENT_TYPE;
use tokio::net::TcpListener;

use crate::dispatch::Dispatch;
use crate::grpc::{Grpc, GrpcServer};
use crate::health::{HealthReporter, HealthRestServer, HealthServer, HEALTH_DESCRIPTOR};
use crate::rest::{Body, Rest, RestRouter, RestServer};

/// Serves services over gRPC and REST from the same handlers.
///
/// On one port (HTTP/1.1 and HTTP/2 cleartext), requests whose `content-type` starts with
/// `application/grpc` go to gRPC and everything else to REST; or take the two halves apart with
/// [`Server::into_parts`] and serve them on separate ports.
///
/// It also serves `grpc.health.v1.Health` on both ([`crate::health`]): every service added is
/// `SERVING` under its full name, beside `""` for the server; [`Server::health`] changes them,
/// and [`Server::serve_with_shutdown`] turns them `NOT_SERVING` when its signal fires.
///
/// ```no_run
/// # use switchboard::{Request, Response, Status};
/// # #[switchboard::service(package = "hello.v1")]
/// # pub trait Greeter {
/// #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
/// # }
/// # struct Impl;
/// # impl Greeter for Impl {
/// #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
/// #         Ok(Response::new(req.into_inner()))
/// #     }
/// # }
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// switchboard::Server::builder()
///     .add_service(GreeterServer::new(Impl))
///     .serve(listener)
///     .await
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Server {
    grpc: tonic::service::Routes,
    rest: RestRouter,
    /// The statuses the health service answers with.
    health: HealthReporter,
    /// Whether a `grpc.health.v1.Health` of the application's own was added (over gRPC).
    own_health: bool,
    /// How long to go on serving, `NOT_SERVING`, after the shutdown signal.
    drain: Duration,
    /// How long to wait for the calls in flight after the drain period (`None`: as long as
    /// they take).
    drain_timeout: Option<Duration>,
}

impl Server {
    /// A server with no services.
    pub fn builder() -> Self {
        Self::default()
    }

    /// Adds a service over both gRPC and REST (one handler, shared).
    pub fn add_service<D>(mut self, service: GrpcServer<D>) -> Self
    where
        D: Dispatch<Grpc> + Dispatch<Rest>,
    {
        self.carry(service.descriptor().full_name);
        self.own_health |= service.descriptor().full_name == HEALTH_DESCRIPTOR.full_name;
        let handler = service.handler().clone();
        self.rest = self.rest.add(RestServer::<D>::from_arc(handler));
        self.grpc = self.grpc.add_service(service);
        self
    }

    /// Adds a service over REST only: one declared with `grpc = false` (an OpenAPI service), or
    /// any service whose gRPC side should stay off.
    pub fn add_rest_service<D: Dispatch<Rest>>(mut self, service: RestServer<D>) -> Self {
        self.carry(service.descriptor().full_name);
        self.rest = self.rest.add(service);
        self
    }

    /// Checks credentials of calls to secured OpenAPI operations (see
    /// [`RestRouter::authorize`](crate::rest::RestRouter::authorize)).
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(&crate::api::Operation, &crate::api::Credentials) -> Result<(), crate::Status> + Send + Sync + 'static,
    {
        self.rest = self.rest.authorize(hook);
        self
    }

    /// The health statuses this server reports ([`crate::health`]): a handle to keep, e.g. to
    /// set a service `NOT_SERVING` while it cannot take calls. Statuses set before a service is
    /// added are kept (adding it registers it `SERVING` only when it has none).
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// After the shutdown signal of [`Server::serve_with_shutdown`], go on serving for `period`
    /// with every health status `NOT_SERVING` before refusing new calls (default zero): time for
    /// clients that watch health to move their calls elsewhere, so none of them fails.
    pub fn drain(mut self, period: Duration) -> Self {
        self.drain = period;
        self
    }

    /// After the shutdown signal and the [`drain`](Server::drain) period, wait at most `timeout`
    /// for the calls in flight and the response streams to finish (default: as long as they
    /// take); then [`serve_with_shutdown`](Server::serve_with_shutdown) returns. Calls still
    /// running then are left to the runtime: they end with it, when the process exits (as
    /// grpc-go's `GracefulStop` followed by `Stop` when a timer fires).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(server: switchboard::Server, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    /// server
    ///     .drain(Duration::from_secs(5))
    ///     .drain_timeout(Duration::from_secs(20))
    ///     .serve_with_shutdown(listener, std::future::pending::<()>()) // your shutdown signal
    ///     .await
    /// # }
    /// ```
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// The two halves: a gRPC router (tonic `Routes`) and a REST router, to serve on separate
    /// ports (`tonic::transport::Server::builder().add_routes(grpc)`, `axum::serve(l, rest.into_router())`).
    /// Both serve the health service. To stop, call `shutdown()` on [`Server::health`]'s
    /// reporter, then `close()` (which ends the `Watch` calls), then shut the servers down.
    pub fn into_parts(mut self) -> (tonic::service::Routes, RestRouter) {
        if !self.own_health {
            self.grpc = self.grpc.add_service(HealthServer::new(self.health.clone()));
        }
        if !self.rest.services().any(|s| s.full_name == HEALTH_DESCRIPTOR.full_name) {
            self.rest = self.rest.add_unlisted(HealthRestServer::new(self.health.clone()));
        }
        (self.grpc, self.rest)
    }

    /// Both halves as one axum `Router`, routing by `content-type`.
    pub fn into_router(self) -> axum::Router {
        let (grpc, rest) = self.into_parts();
        axum::Router::new().fallback_service(Multiplexed { grpc: grpc.prepare(), rest })
    }

    /// Serves on `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(crate::rest::nodelay(listener), self.into_router()).await
    }

    /// Serves on `listener` until `signal` completes, then finishes the calls in flight.
    ///
    /// When `signal` completes, every health status turns `NOT_SERVING` first (`Watch` calls
    /// see it at once), the server goes on serving for its [`Server::drain`] period, and then
    /// the `Watch` calls end and the server stops taking calls.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (signal, stopped) = self.stopping(signal);
        let timeout = self.drain_timeout;
        bounded(timeout, stopped, axum::serve(crate::rest::nodelay(listener), self.into_router()).with_graceful_shutdown(signal).into_future()).await
    }

    /// Serves over TLS on `listener` until the process ends: gRPC and REST on one port (ALPN
    /// `h2` and `http/1.1`), with `tls`'s certificate, which [`ServerTls::reload`] swaps while
    /// this runs (keep a clone). A connection whose handshake fails is dropped; the server goes
    /// on. See [`crate::tls`].
    ///
    /// ```no_run
    /// # use switchboard::{Request, Response, Status};
    /// # #[switchboard::service(package = "hello.v1")]
    /// # pub trait Greeter {
    /// #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
    /// # }
    /// # struct Impl;
    /// # impl Greeter for Impl {
    /// #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
    /// #         Ok(Response::new(req.into_inner()))
    /// #     }
    /// # }
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?;
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
    /// switchboard::Server::builder().add_service(GreeterServer::new(Impl)).serve_tls(listener, tls).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`ServerTls::reload`]: crate::tls::ServerTls::reload
    #[cfg(feature = "tls")]
    pub async fn serve_tls(self, listener: TcpListener, tls: crate::tls::ServerTls) -> std::io::Result<()> {
        axum::serve(crate::tls::TlsListener::new(listener, tls), self.into_router()).await
    }

    /// [`serve_tls`](Server::serve_tls) until `signal` completes, then stops as
    /// [`serve_with_shutdown`](Server::serve_with_shutdown) does (health `NOT_SERVING`, the
    /// [`drain`](Server::drain) period, the calls in flight finished).
    #[cfg(feature = "tls")]
    pub async fn serve_tls_with_shutdown(
        self,
        listener: TcpListener,
        tls: crate::tls::ServerTls,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (signal, stopped) = self.stopping(signal);
        let timeout = self.drain_timeout;
        let serving = axum::serve(crate::tls::TlsListener::new(listener, tls), self.into_router()).with_graceful_shutdown(signal);
        bounded(timeout, stopped, serving.into_future()).await
    }

    /// `signal`, then the health service's share of stopping: every status `NOT_SERVING`, the
    /// [`Server::drain`] period, the end of the `Watch` calls. The shutdown signal to hand axum,
    /// and what says it has fired (the [`Server::drain_timeout`] runs from there).
    fn stopping(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> (impl Future<Output = ()> + Send + 'static, tokio::sync::oneshot::Receiver<()>) {
        let (health, drain) = (self.health.clone(), self.drain);
        let (stopped, on_stop) = tokio::sync::oneshot::channel();
        let stopping = async move {
            signal.await;
            health.shutdown();
            if !drain.is_zero() {
                tokio::time::sleep(drain).await;
            }
            health.close();
            let _ = stopped.send(());
        };
        (stopping, on_stop)
    }

    /// Registers a service this server carries with the health service (not the health
    /// service itself).
    fn carry(&self, service: &str) {
        if service != HEALTH_DESCRIPTOR.full_name {
            self.health.register(service);
        }
    }
}

#[derive(Clone)]
struct Multiplexed {
    grpc: tonic::service::Routes,
    rest: RestRouter,
}

impl tower_service::Service<http::Request<Body>> for Multiplexed {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let grpc = request
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if grpc {
            let mut routes = self.grpc.clone();
            Box::pin(async move {
                let response = tower_service::Service::call(&mut routes, request).await?;
                Ok(response.map(Body::new))
            })
        } else {
            self.rest.call(request).map(Ok).boxed()
        }
    }
}

/// `serving` (a graceful shutdown under way once `stopped` fires), cut short `timeout` after
/// that: the [`Server::drain_timeout`].
async fn bounded(
    timeout: Option<Duration>,
    stopped: tokio::sync::oneshot::Receiver<()>,
    serving: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let Some(timeout) = timeout else { return serving.await };
    let cut_off = async move {
        match stopped.await {
            Ok(()) => tokio::time::sleep(timeout).await,
            // The server stopped before its signal: nothing to cut short.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = serving => served,
        () = cut_off => Ok(()),
    }
}
