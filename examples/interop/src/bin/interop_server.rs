//! `interop-server --port N [--rest-port M] [--amqp URL] [--nats URL] [--queue URL]...`: serves
//! grpc.testing.TestService on 127.0.0.1:N over gRPC (and on M over REST + JSON, and through each
//! broker given: docs/queue-protocol.md) until killed.

use std::time::Duration;

use clap::Parser;
use switchboard::queue::Broker;

#[derive(Parser)]
#[command(about = "gRPC interop test server (grpc.testing.TestService) on switchboard, optionally also over REST and message brokers")]
struct Args {
    /// gRPC port (127.0.0.1); 0 picks a free one.
    #[arg(long, alias = "server_port", default_value_t = 10000)]
    port: u16,
    /// Also serve TestService over REST (JSON) on this port, e.g.
    /// `curl -d '{"responseSize": 5}' localhost:M/grpc.testing.TestService/UnaryCall`.
    #[arg(long)]
    rest_port: Option<u16>,
    /// Also serve TestService through RabbitMQ, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[arg(long, value_name = "URL")]
    amqp: Option<String>,
    /// Also serve TestService through NATS, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Also serve TestService through the broker at this URL (`amqp://`, `nats://`); repeatable.
    #[arg(long, value_name = "URL")]
    queue: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move { interop::server::serve(listener).await.map_err(|e| format!("gRPC: {e}")) });
    if let Some(port) = args.rest_port {
        let rest = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("REST listening on {}", rest.local_addr()?);
        tasks.spawn(async move { interop::server::serve_rest(rest).await.map_err(|e| format!("REST: {e}")) });
    }
    let urls = args.amqp.into_iter().chain(args.nats).chain(args.queue);
    for url in urls {
        let broker = Broker::connect(&url).await?;
        let name = broker.url();
        let serving = broker.clone();
        tasks.spawn(async move {
            interop::queue::serve(&serving).await.map_err(|s| format!("queue {}: {s}", serving.url()))
        });
        wait_until_served(&broker).await?;
        println!("queue: serving grpc.testing.TestService through {name}");
    }
    // Runs until killed; a transport that stops is an error.
    match tasks.join_next().await {
        Some(Ok(Ok(()))) => Err("a transport stopped serving".into()),
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(e)) => Err(e.into()),
        None => Ok(()),
    }
}

/// Calls the server just started through the broker until it answers, so the "serving" line
/// means callers are served (the broker's consumers are in place).
async fn wait_until_served(broker: &Broker) -> Result<(), String> {
    let client = interop::testing::TestServiceQueueClient::new(broker).timeout(Duration::from_secs(2));
    let mut last = None;
    for _ in 0..100 {
        match client.unary_call(interop::testing::SimpleRequest::default()).await {
            Ok(_) => return Ok(()),
            Err(status) => last = Some(status),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("serving through {} did not start: {last:?}", broker.url()))
}
