//! `bench-server`: `bench.Echo` served from switchboard-generated code (build.rs → trait →
//! `#[switchboard::service]` → `EchoServer` for gRPC, `EchoRestServer` for REST). The handler
//! returns the request unchanged.
//!
//! `--grpc-port N` serves gRPC (tonic transport), `--rest-port M` serves the REST binding
//! (`POST /bench.Echo/Unary`, proto3 JSON) with `axum::serve`, the same way the hand-written
//! `baseline-rest-server` is served. `--amqp URL` / `--nats URL` serve it through RabbitMQ / NATS
//! with the generated `EchoQueueServer` (request queue `sb.rpc.bench.Echo` / subjects
//! `sb.rpc.bench.Echo.*`; build with `--features amqp,nats`). Give any of them, in any
//! combination: one handler serves them all.
//!
//! Once a broker's server answers (it calls itself once through the broker), the program prints
//! `bench-server (switchboard) serving bench.Echo on <url>`: `queue.sh` waits for that line.
//!
//! Run: `cargo run --release -p bench --bin bench-server -- --grpc-port 50051 --rest-port 8080`
//! or `cargo run --release -p bench --features amqp,nats --bin bench-server -- --nats nats://127.0.0.1:4222`

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Parser};
use switchboard::grpc::transport::Server;
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status};

mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::bench::{Echo, EchoMsg, EchoQueueClient, EchoQueueServer, EchoRestServer, EchoServer};

struct EchoImpl;

impl Echo for EchoImpl {
    async fn unary(&self, request: Request<EchoMsg>) -> Result<Response<EchoMsg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serve `bench.Echo` from generated code over gRPC, REST, RabbitMQ and/or NATS (at least one).
#[derive(Parser)]
#[command(group(ArgGroup::new("transport").required(true).multiple(true).args(["grpc_port", "rest_port", "amqp", "nats"])))]
struct Args {
    /// Port to serve gRPC on (127.0.0.1).
    #[arg(long)]
    grpc_port: Option<u16>,
    /// Port to serve REST (HTTP/1.1 + JSON) on (127.0.0.1).
    #[arg(long)]
    rest_port: Option<u16>,
    /// RabbitMQ URL to serve through, e.g. amqp://guest:guest@127.0.0.1:5672/%2f
    #[arg(long, value_name = "URL")]
    amqp: Option<String>,
    /// NATS URL to serve through, e.g. nats://127.0.0.1:4222
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Queue servers: most requests taken and not yet answered (AMQP prefetch).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serve_grpc(port: u16, handler: Arc<EchoImpl>) -> Result<(), BoxError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    println!("bench-server (switchboard) gRPC listening on {addr}");
    Server::builder()
        .add_service(EchoServer::from_arc(handler))
        .serve(addr)
        .await?;
    Ok(())
}

async fn serve_rest(port: u16, handler: Arc<EchoImpl>) -> Result<(), BoxError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bench-server (switchboard) REST listening on http://{addr}");
    axum::serve(listener, EchoRestServer::from_arc(handler).into_router()).await?;
    Ok(())
}

/// Serves through the broker at `url` until its connection is closed. Says so once the server
/// answers a call made through the broker (its queue or subscription is in place).
async fn serve_queue(url: String, prefetch: u16, handler: Arc<EchoImpl>) -> Result<(), BoxError> {
    let broker = Broker::connect(&url).await?;
    let server = EchoQueueServer::from_arc(handler).prefetch(prefetch);
    let serving = {
        let broker = broker.clone();
        tokio::spawn(async move { server.serve(&broker).await })
    };
    let mut serving = std::pin::pin!(serving);
    let probe = async {
        let client = EchoQueueClient::new(&broker).timeout(Duration::from_secs(2));
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match client.unary(EchoMsg { body: Vec::new() }).await {
                Ok(_) => return Ok(()),
                Err(status) if Instant::now() >= until => return Err(status),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    };
    tokio::select! {
        done = &mut serving => return Ok(done??),
        probed = probe => probed?,
    }
    println!(
        "bench-server (switchboard) serving bench.Echo on {}",
        broker.url()
    );
    serving.await??;
    Ok(())
}

type Serving = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let handler = Arc::new(EchoImpl);
    let mut servers: Vec<Serving> = Vec::new();
    if let Some(port) = args.grpc_port {
        servers.push(Box::pin(serve_grpc(port, handler.clone())));
    }
    if let Some(port) = args.rest_port {
        servers.push(Box::pin(serve_rest(port, handler.clone())));
    }
    for url in [args.amqp, args.nats].into_iter().flatten() {
        servers.push(Box::pin(serve_queue(url, args.prefetch, handler.clone())));
    }
    // clap requires at least one transport.
    futures_util::future::try_join_all(servers).await?;
    Ok(())
}
