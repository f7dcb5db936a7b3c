//! `queue-bench`: request-reply throughput of `bench.Echo` through a broker, with the generated
//! `EchoQueueClient` (and, for `memory://` or with `--serve`, the generated `EchoQueueServer` in
//! the same process).
//!
//! Each of `--concurrency` callers sends `Unary` calls with a `--payload`-byte body back to
//! back for `--seconds`; the program prints calls per second and latency percentiles.
//!
//! Run:
//! - embedded broker: `cargo run --release -p bench --bin queue-bench -- --url memory://`
//! - RabbitMQ / NATS, against `bench-server --amqp URL` / `--nats URL` running elsewhere:
//!   `queue-bench --url amqp://guest:guest@127.0.0.1:5672/%2f` (add `--serve` to serve in-process)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Broker URL: memory://, amqp://… or nats://…
    #[arg(long, default_value = "memory://bench")]
    url: String,
    /// Serve Echo in this process too (always on for memory://).
    #[arg(long)]
    serve: bool,
    /// Callers in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to measure (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Request body size in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Server prefetch (messages in flight per consumer).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let broker = Broker::connect(&args.url).await?;
    if args.serve || args.url.starts_with("memory:") {
        let server = EchoQueueServer::new(EchoImpl).prefetch(args.prefetch);
        let b = broker.clone();
        tokio::spawn(async move { server.serve(&b).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = EchoQueueClient::new(&broker).timeout(Duration::from_secs(10));
    let body = vec![0x5a; args.payload];
    client.unary(EchoMsg { body: body.clone() }).await?;

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, body, measuring, stop) = (client.clone(), body.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = match client.unary(EchoMsg { body: body.clone() }).await {
                    Ok(r) => r.get_ref().body.len() == body.len(),
                    Err(_) => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(started.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "queue-bench url={} concurrency={} payload={}B: {:.0} calls/s over {:.1}s ({} calls, {} errors), latency p50 {} µs, p99 {} µs",
        broker.url(),
        args.concurrency,
        args.payload,
        all.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        all.len(),
        errors,
        pct(0.50),
        pct(0.99),
    );
    Ok(())
}
