//! `baseline-server`: a hand-written tonic server for `bench.Echo`.
//!
//! This is the yardstick the switchboard-generated server is measured
//! against, so it is deliberately shaped like what `tonic-build` emits
//! (a handler trait, a generic `EchoServer<T>` that is a
//! `tower::Service<http::Request<Body>>` + `NamedService`, boxed futures,
//! `tonic::server::Grpc` with the prost codec), only written by hand.
//!
//! Run: `cargo run --release -p bench --bin baseline-server -- --grpc-port 50051`

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use bench::{EchoMsg, SERVICE_NAME, UNARY_PATH};
use clap::Parser;
use tonic::body::Body;
use tonic::codegen::BoxFuture;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

/// Server-side handler trait, as `tonic-build` would generate for `service Echo`.
#[tonic::async_trait]
trait Echo: Send + Sync + 'static {
    async fn unary(&self, request: Request<EchoMsg>) -> Result<Response<EchoMsg>, Status>;
}

/// The application: echo the request message back unchanged.
struct EchoImpl;

#[tonic::async_trait]
impl Echo for EchoImpl {
    async fn unary(&self, request: Request<EchoMsg>) -> Result<Response<EchoMsg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Routing service for `bench.Echo`.
struct EchoServer<T> {
    inner: Arc<T>,
}

impl<T> EchoServer<T> {
    fn new(inner: T) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

// Manual impl: `#[derive(Clone)]` would needlessly require `T: Clone`.
impl<T> Clone for EchoServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> NamedService for EchoServer<T> {
    const NAME: &'static str = SERVICE_NAME;
}

/// Adapts the `Echo::unary` handler to tonic's `UnaryService`.
struct UnarySvc<T>(Arc<T>);

impl<T: Echo> UnaryService<EchoMsg> for UnarySvc<T> {
    type Response = EchoMsg;
    type Future = BoxFuture<Response<EchoMsg>, Status>;

    fn call(&mut self, request: Request<EchoMsg>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        Box::pin(async move { inner.unary(request).await })
    }
}

impl<T: Echo> tower::Service<http::Request<Body>> for EchoServer<T> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match req.uri().path() {
            UNARY_PATH => {
                let inner = Arc::clone(&self.inner);
                Box::pin(async move {
                    let mut grpc = Grpc::new(tonic_prost::ProstCodec::default());
                    Ok(grpc.unary(UnarySvc(inner), req).await)
                })
            }
            _ => Box::pin(async move {
                // gRPC reports unknown methods in the trailers-only form with HTTP 200.
                Ok(Status::new(Code::Unimplemented, "").into_http())
            }),
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "baseline-server",
    about = "Hand-written tonic server for bench.Echo"
)]
struct Args {
    /// Port to serve gRPC on (binds 127.0.0.1).
    #[arg(long)]
    grpc_port: u16,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.grpc_port));
    eprintln!("baseline-server: serving {SERVICE_NAME} on {addr}");
    tonic::transport::Server::builder()
        .add_service(EchoServer::new(EchoImpl))
        .serve(addr)
        .await?;
    Ok(())
}
