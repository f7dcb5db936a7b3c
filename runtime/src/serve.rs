//! [`Server`]: gRPC and REST for the same handlers, on one port or two.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::header::CONTENT_TYPE;
use tokio::net::TcpListener;

use crate::dispatch::Dispatch;
use crate::grpc::{Grpc, GrpcServer};
use crate::rest::{Body, Rest, RestRouter, RestServer};

/// Serves services over gRPC and REST from the same handlers.
///
/// On one port (HTTP/1.1 and HTTP/2 cleartext), requests whose `content-type` starts with
/// `application/grpc` go to gRPC and everything else to REST; or take the two halves apart with
/// [`Server::into_parts`] and serve them on separate ports.
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
        let handler = service.handler().clone();
        self.rest = self.rest.add(RestServer::<D>::from_arc(handler));
        self.grpc = self.grpc.add_service(service);
        self
    }

    /// Adds a service over REST only: one declared with `grpc = false` (an OpenAPI service), or
    /// any service whose gRPC side should stay off.
    pub fn add_rest_service<D: Dispatch<Rest>>(mut self, service: RestServer<D>) -> Self {
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

    /// The two halves: a gRPC router (tonic `Routes`) and a REST router, to serve on separate
    /// ports (`tonic::transport::Server::builder().add_routes(grpc)`, `axum::serve(l, rest.into_router())`).
    pub fn into_parts(self) -> (tonic::service::Routes, RestRouter) {
        (self.grpc, self.rest)
    }

    /// Both halves as one axum `Router`, routing by `content-type`.
    pub fn into_router(self) -> axum::Router {
        axum::Router::new().fallback_service(Multiplexed { grpc: self.grpc.prepare(), rest: self.rest })
    }

    /// Serves on `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.into_router()).await
    }

    /// Serves on `listener` until `signal` completes, then finishes the calls in flight.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.into_router()).with_graceful_shutdown(signal).await
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
