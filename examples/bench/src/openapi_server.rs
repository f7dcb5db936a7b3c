//! `openapi-server`: `GET /v1/pets/{petId}` from `examples/petstore/petstore.yaml`, served by the
//! switchboard-generated `PetstoreRestServer` with `.serve(listener)` (see `bench::pets`).
//!
//! Run: `cargo run --release -p bench --bin openapi-server -- --rest-port 8080`
//!      `curl http://127.0.0.1:8080/v1/pets/7`

use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;

/// Serve GET /v1/pets/{petId} from switchboard-generated code.
#[derive(Parser)]
struct Args {
    /// Port to serve on (binds 127.0.0.1).
    #[arg(long)]
    rest_port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.rest_port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("openapi-server (switchboard): serving GET /v1/pets/{{petId}} on http://{addr}");
    bench::pets::generated::serve(listener).await
}
