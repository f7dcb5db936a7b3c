//! `bench-server`: `bench.Echo` served from switchboard-generated code (build.rs → trait →
//! `#[switchboard::service]` → `EchoServer`). The handler returns the request unchanged.
//!
//! Run: `cargo run --release -p bench --bin bench-server -- --grpc-port 50051`

use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use switchboard::grpc::transport::Server;
use switchboard::{Request, Response, Status};

mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::bench::{Echo, EchoMsg, EchoServer};

struct EchoImpl;

impl Echo for EchoImpl {
    async fn unary(&self, request: Request<EchoMsg>) -> Result<Response<EchoMsg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serve `bench.Echo` from generated code.
#[derive(Parser)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long)]
    grpc_port: u16,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.grpc_port));
    println!("bench-server (switchboard) listening on {addr}");
    Server::builder().add_service(EchoServer::new(EchoImpl)).serve(addr).await?;
    Ok(())
}
