//! `bench-server`: `bench.Echo` served from switchboard-generated code (build.rs → trait →
//! `#[switchboard::service]` → `EchoServer` for gRPC, `EchoRestServer` for REST). The handler
//! returns the request unchanged.
//!
//! `--grpc-port N` serves gRPC (tonic transport), `--rest-port M` serves the REST binding
//! (`POST /bench.Echo/Unary`, proto3 JSON) with `axum::serve`, the same way the hand-written
//! `baseline-rest-server` is served. Give either or both.
//!
//! Run: `cargo run --release -p bench --bin bench-server -- --grpc-port 50051 --rest-port 8080`

use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use switchboard::grpc::transport::Server;
use switchboard::{Request, Response, Status};

mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::bench::{Echo, EchoMsg, EchoRestServer, EchoServer};

struct EchoImpl;

impl Echo for EchoImpl {
    async fn unary(&self, request: Request<EchoMsg>) -> Result<Response<EchoMsg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serve `bench.Echo` from generated code over gRPC and/or REST.
#[derive(Parser)]
struct Args {
    /// Port to serve gRPC on (127.0.0.1).
    #[arg(long, required_unless_present = "rest_port")]
    grpc_port: Option<u16>,
    /// Port to serve REST (HTTP/1.1 + JSON) on (127.0.0.1).
    #[arg(long)]
    rest_port: Option<u16>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serve_grpc(port: u16) -> Result<(), BoxError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    println!("bench-server (switchboard) gRPC listening on {addr}");
    Server::builder()
        .add_service(EchoServer::new(EchoImpl))
        .serve(addr)
        .await?;
    Ok(())
}

async fn serve_rest(port: u16) -> Result<(), BoxError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bench-server (switchboard) REST listening on http://{addr}");
    axum::serve(listener, EchoRestServer::new(EchoImpl).into_router()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    match (args.grpc_port, args.rest_port) {
        (Some(grpc), Some(rest)) => {
            tokio::try_join!(serve_grpc(grpc), serve_rest(rest))?;
        }
        (Some(grpc), None) => serve_grpc(grpc).await?,
        (None, Some(rest)) => serve_rest(rest).await?,
        (None, None) => unreachable!("clap requires --grpc-port or --rest-port"),
    }
    Ok(())
}
