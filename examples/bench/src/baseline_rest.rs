//! `baseline-rest-server`: a hand-written axum server for the REST binding of
//! `bench.Echo/Unary`.
//!
//! This is the yardstick for the REST side of the switchboard-generated
//! server: what a competent axum user would write for the same exchange,
//! `POST /bench.Echo/Unary` with the request message as JSON in the canonical
//! proto3 mapping (`bytes` as standard base64 with padding):
//!
//! ```text
//! POST /bench.Echo/Unary        content-type: application/json
//! {"body":"<base64>"}       →   200 application/json  {"body":"<base64>"}
//! ```
//!
//! A serde struct, `axum::Json` in and out, `Router::new().route(..)` and
//! `axum::serve` with default settings.
//!
//! Run: `cargo run --release -p bench --bin baseline-rest-server -- --rest-port 8080`

use std::net::{Ipv4Addr, SocketAddr};

use axum::routing::post;
use axum::{Json, Router};
use bench::UNARY_PATH;
use clap::Parser;
use serde::{Deserialize, Serialize};

/// `bench.EchoMsg` in its proto3 JSON form.
#[derive(Serialize, Deserialize)]
struct EchoMsg {
    /// proto3 JSON: a missing field is the default (empty bytes).
    #[serde(default, with = "base64_bytes")]
    body: Vec<u8>,
}

/// `bytes` fields as standard base64 with padding (what proto3 JSON emits).
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// The handler: echo the request message back unchanged.
async fn unary(Json(msg): Json<EchoMsg>) -> Json<EchoMsg> {
    Json(msg)
}

#[derive(Parser, Debug)]
#[command(
    name = "baseline-rest-server",
    about = "Hand-written axum server for POST /bench.Echo/Unary (JSON)"
)]
struct Args {
    /// Port to serve REST (HTTP/1.1) on (binds 127.0.0.1).
    #[arg(long)]
    rest_port: u16,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.rest_port));
    let app = Router::new().route(UNARY_PATH, post(unary));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("baseline-rest-server: serving POST {UNARY_PATH} on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
