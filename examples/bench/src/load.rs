//! `bench-load`: a closed-loop gRPC load generator for `bench.Echo/Unary`.
//!
//! Keeps `--concurrency` unary calls in flight, spread round-robin over
//! `--connections` HTTP/2 channels, for `--warmup` seconds (not counted) and
//! then `--seconds` seconds (measured). A request counts toward the result if
//! it *completes* inside the measured window. Prints one JSON line on stdout:
//! `{"requests":N,"errors":E,"seconds":S,"rps":R,"p50_us":..,"p99_us":..}`.
//!
//! Run: `bench-load --addr http://127.0.0.1:50051 --seconds 10`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bench::{EchoMsg, UNARY_PATH};
use clap::Parser;
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::client::Grpc;
use tonic::transport::{Channel, Endpoint};

/// How long after the end of the window an in-flight call may still take
/// before it is abandoned (it is not counted either way).
const GRACE: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    name = "bench-load",
    about = "gRPC unary load generator for bench.Echo"
)]
struct Args {
    /// Server address, e.g. http://127.0.0.1:50051
    #[arg(long)]
    addr: String,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up before the measured window, in seconds (not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Number of requests kept in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Number of HTTP/2 connections (channels); requests are spread round-robin.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Size of EchoMsg.body in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Tokio worker threads for the load generator (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// What one worker saw inside the measured window.
#[derive(Default)]
struct Stats {
    /// Latency of each successful call, in microseconds.
    latencies_us: Vec<u32>,
    errors: u64,
}

fn main() {
    let args = Args::parse();
    if args.concurrency == 0 || args.connections == 0 || args.threads == 0 {
        eprintln!("bench-load: --concurrency, --connections and --threads must be at least 1");
        std::process::exit(2);
    }
    if !(args.seconds > 0.0 && args.warmup >= 0.0) {
        eprintln!("bench-load: --seconds must be > 0 and --warmup >= 0");
        std::process::exit(2);
    }

    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("build tokio runtime");

    match runtime.block_on(run(&args)) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("bench-load: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: &Args) -> Result<String, Box<dyn std::error::Error>> {
    let endpoint = Endpoint::from_shared(args.addr.clone())?.tcp_nodelay(true);
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        // Each `connect` opens its own HTTP/2 connection.
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect to {}: {e:?}", args.addr))?;
        clients.push(Grpc::new(channel));
    }
    let clients: Arc<[Grpc<Channel>]> = clients.into();

    let body = vec![0xA5u8; args.payload];
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(args.warmup);
    let window_end = window_start + Duration::from_secs_f64(args.seconds);

    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let clients = Arc::clone(&clients);
            let next = Arc::clone(&next);
            let body = body.clone();
            tokio::spawn(worker(clients, next, body, window_start, window_end))
        })
        .collect();

    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0u64;
    for w in workers {
        let stats = w.await?;
        latencies.extend_from_slice(&stats.latencies_us);
        errors += stats.errors;
    }

    let seconds = (window_end - window_start).as_secs_f64();
    let requests = latencies.len();
    latencies.sort_unstable();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    Ok(format!(
        "{{\"requests\":{requests},\"errors\":{errors},\"seconds\":{seconds},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{}}}",
        requests as f64 / seconds,
        json_opt(p50),
        json_opt(p99),
    ))
}

/// One closed-loop caller: issue a request, wait for it, repeat.
async fn worker(
    clients: Arc<[Grpc<Channel>]>,
    next: Arc<AtomicUsize>,
    body: Vec<u8>,
    window_start: Instant,
    window_end: Instant,
) -> Stats {
    // Own clones: a `Channel` hands out readiness per handle.
    let mut clients: Vec<Grpc<Channel>> = clients.to_vec();
    let path = PathAndQuery::from_static(UNARY_PATH);
    let deadline = window_end + GRACE;
    let mut stats = Stats::default();

    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed) % clients.len();
        let client = &mut clients[i];
        let call = async {
            client
                .ready()
                .await
                .map_err(|e| tonic::Status::unknown(format!("channel not ready: {e}")))?;
            let codec = tonic_prost::ProstCodec::<EchoMsg, EchoMsg>::default();
            let request = tonic::Request::new(EchoMsg { body: body.clone() });
            client.unary(request, path.clone(), codec).await
        };
        let outcome = tokio::time::timeout_at(deadline, call).await;
        let done = Instant::now();
        if done < window_start || done >= window_end {
            if outcome.is_err() {
                break; // deadline passed: stop this worker
            }
            continue;
        }
        match outcome {
            Ok(Ok(resp)) if resp.get_ref().body.len() == body.len() => {
                let us = (done - sent).as_micros();
                stats
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            // Wrong echo, gRPC error, or timeout: all count as errors.
            _ => stats.errors += 1,
        }
    }
    stats
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn json_opt(v: Option<u32>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}
