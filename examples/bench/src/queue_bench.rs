//! `queue-bench`: request-reply throughput of `bench.Echo` through a broker, called with the
//! generated `EchoQueueClient`.
//!
//! Each of `--concurrency` callers sends `Unary` calls with a `--payload`-byte body back to
//! back; after `--warmup` seconds the program measures for `--seconds` and prints calls per
//! second and latency percentiles (`--json`: one JSON line, what `queue.sh` reads). The load
//! loop is the one `queue-baseline` (hand-written lapin / async-nats) uses.
//!
//! Who serves:
//! - `memory://…` (the embedded broker lives in this process): the generated `EchoQueueServer`,
//!   in this process;
//! - `amqp://…` / `nats://…`: a `bench-server --amqp URL` / `--nats URL` running elsewhere
//!   (client-only; the first call is retried for `--wait` seconds until a server answers), or
//!   with `--serve`, an `EchoQueueServer` in this process.
//!
//! Run (release builds; RabbitMQ and NATS need `--features amqp,nats`):
//! - embedded broker: `cargo run --release -p bench --bin queue-bench -- --url memory://`
//! - RabbitMQ: `bench-server --amqp URL &` then `queue-bench --url amqp://guest:guest@127.0.0.1:5672/%2f`
//! - NATS: `bench-server --nats nats://127.0.0.1:4222 &` then `queue-bench --url nats://127.0.0.1:4222`

#[path = "queue_baseline_load.rs"]
mod load;

use std::time::Duration;

use clap::Parser;
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status};

mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::bench::{Echo, EchoMsg, EchoQueueClient, EchoQueueServer};

struct EchoImpl;

impl Echo for EchoImpl {
    async fn unary(&self, request: Request<EchoMsg>) -> Result<Response<EchoMsg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

#[derive(Parser)]
struct Args {
    /// Broker URL: memory://…, amqp://… or nats://…
    #[arg(long, default_value = "memory://bench")]
    url: String,
    /// Serve Echo in this process too (always on for memory://).
    #[arg(long)]
    serve: bool,
    /// Callers in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of warm-up before measuring (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Request body size in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Server prefetch (messages in flight per consumer), with --serve or memory://.
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Seconds to wait for a server to answer the first call.
    #[arg(long, default_value_t = 30.0)]
    wait: f64,
    /// Print one JSON line instead of a sentence.
    #[arg(long)]
    json: bool,
    /// Give the client this timeout (`QueueClient::timeout`, seconds), so that every request
    /// carries it as its deadline (`sb-deadline`; RabbitMQ also `expiration`). Without it calls
    /// are plain: they give up after 30 s, and servers are not told.
    #[arg(long)]
    deadline: Option<f64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let broker = Broker::connect(&args.url).await?;
    if args.serve || args.url.starts_with("memory:") {
        let server = EchoQueueServer::new(EchoImpl).prefetch(args.prefetch);
        let b = broker.clone();
        tokio::spawn(async move { server.serve(&b).await });
    }
    let mut client = EchoQueueClient::new(&broker);
    if let Some(secs) = args.deadline {
        client = client.timeout(Duration::from_secs_f64(secs));
    }
    let body = vec![0x5a; args.payload];
    {
        let client = client.clone().timeout(Duration::from_secs(2));
        let body = body.clone();
        load::wait_for_server(Duration::from_secs_f64(args.wait), || {
            let (client, body) = (client.clone(), body.clone());
            async move { client.unary(EchoMsg { body }).await.map(drop) }
        })
        .await?;
    }

    let load = load::Load {
        concurrency: args.concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        window: Duration::from_secs_f64(args.seconds),
    };
    let report = load::run(&load, move || {
        let (client, body) = (client.clone(), body.clone());
        async move {
            let len = body.len();
            match client.unary(EchoMsg { body }).await {
                Ok(r) => r.get_ref().body.len() == len,
                Err(_) => false,
            }
        }
    })
    .await;
    let url = broker.url();
    if args.json {
        println!("{}", report.json("switchboard", &url, &load, args.payload));
    } else {
        println!(
            "{}",
            report.human("queue-bench (switchboard)", &url, &load, args.payload)
        );
    }
    Ok(())
}
