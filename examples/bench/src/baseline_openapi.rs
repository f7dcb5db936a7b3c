//! `baseline-openapi-server`: `GET /v1/pets/{petId}` written by hand with axum 0.8 (see
//! `bench::pets::baseline`), the yardstick for `openapi-server`.
//!
//! Run: `cargo run --release -p bench --bin baseline-openapi-server -- --rest-port 8080`
//!      `curl http://127.0.0.1:8080/v1/pets/7`

use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;

/// Serve GET /v1/pets/{petId} from a hand-written axum handler.
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
    eprintln!("baseline-openapi-server (axum): serving GET /v1/pets/{{petId}} on http://{addr}");
    bench::pets::baseline::serve(listener).await
}
