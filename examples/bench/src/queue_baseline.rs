//! `queue-baseline`: hand-written request-reply over RabbitMQ (lapin) and NATS (async-nats),
//! without switchboard: what `queue-bench` + `bench-server --amqp/--nats` are compared with.
//!
//! The broker is picked by the URL's scheme (`amqp://…` or `nats://…`). `--role server` serves
//! an echo of `bench.EchoMsg` (prints `queue-baseline serving on <url>` once consuming) until
//! killed; `--role client` drives it with the load loop `queue-bench` uses (same callers, same
//! warm-up and window, same report); `--role both` does both in one process.
//!
//! - RabbitMQ: [`amqp`] (direct reply-to, manual acks with prefetch, a task per request);
//! - NATS: [`nats`] (`Client::request`, a queue-group subscriber replying in its loop).
//!
//! `--headers` (server and client alike) makes both carry the headers and properties
//! switchboard's protocol puts on requests and replies: the baseline then prices the protocol,
//! and the difference to switchboard is the runtime's own cost.
//!
//! Run (release): `queue-baseline --role server --url nats://127.0.0.1:4222 &` then
//! `queue-baseline --role client --url nats://127.0.0.1:4222 --concurrency 64 --payload 64`.

#[path = "queue_baseline_amqp.rs"]
mod amqp;
#[path = "queue_baseline_load.rs"]
mod load;
#[path = "queue_baseline_nats.rs"]
mod nats;

use std::time::Duration;

use bench::EchoMsg;
use clap::{Parser, ValueEnum};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Serve until killed.
    Server,
    /// Call a server running elsewhere.
    Client,
    /// Serve and call in this process.
    Both,
}

#[derive(Parser)]
struct Args {
    /// Broker URL: amqp://… (RabbitMQ) or nats://… (NATS).
    #[arg(long)]
    url: String,
    /// What this process does.
    #[arg(long, value_enum, default_value = "client")]
    role: Role,
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
    /// RabbitMQ server: prefetch (basic.qos).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Seconds to wait for a server to answer the first call.
    #[arg(long, default_value_t = 30.0)]
    wait: f64,
    /// Print one JSON line instead of a sentence.
    #[arg(long)]
    json: bool,
    /// Carry switchboard's protocol headers on requests and replies (server and client).
    #[arg(long)]
    headers: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Amqp,
    Nats,
}

/// A client of either broker.
#[derive(Clone)]
enum Client {
    Amqp(amqp::Client),
    Nats(nats::Client),
}

impl Client {
    async fn call(&self, request: &EchoMsg) -> Result<EchoMsg, Error> {
        match self {
            Client::Amqp(c) => c.call(request).await,
            Client::Nats(c) => c.call(request).await,
        }
    }
}

async fn serve(kind: Kind, url: String, prefetch: u16, headers: bool) -> Result<(), Error> {
    let ready = || println!("queue-baseline serving on {}", redact(&url));
    match kind {
        Kind::Amqp => amqp::serve(&url, prefetch, headers, ready).await,
        Kind::Nats => nats::serve(&url, headers, ready).await,
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let kind = match args.url.split_once("://").map(|(scheme, _)| scheme) {
        Some("amqp") => Kind::Amqp,
        Some("nats") => Kind::Nats,
        _ => {
            return Err(format!(
                "--url must be amqp://… or nats://… (got {})",
                redact(&args.url)
            )
            .into())
        }
    };
    if args.role == Role::Server {
        return serve(kind, args.url, args.prefetch, args.headers).await;
    }
    if args.role == Role::Both {
        let (url, prefetch, headers) = (args.url.clone(), args.prefetch, args.headers);
        tokio::spawn(async move {
            if let Err(e) = serve(kind, url, prefetch, headers).await {
                eprintln!("queue-baseline: the server failed: {e}");
            }
        });
    }

    let timeout = Duration::from_secs(10);
    let client = match kind {
        Kind::Amqp => Client::Amqp(amqp::Client::connect(&args.url, timeout, args.headers).await?),
        Kind::Nats => Client::Nats(nats::Client::connect(&args.url, timeout, args.headers).await?),
    };
    let request = EchoMsg {
        body: vec![0x5a; args.payload],
    };
    {
        // The first calls: a short timeout each (an AMQP request published before the server
        // declared its queue is dropped, never answered).
        let probe = match kind {
            Kind::Amqp => Client::Amqp(
                amqp::Client::connect(&args.url, Duration::from_secs(1), args.headers).await?,
            ),
            Kind::Nats => Client::Nats(
                nats::Client::connect(&args.url, Duration::from_secs(1), args.headers).await?,
            ),
        };
        load::wait_for_server(Duration::from_secs_f64(args.wait), || {
            let (probe, request) = (probe.clone(), request.clone());
            async move { probe.call(&request).await.map(drop) }
        })
        .await?;
    }

    let load = load::Load {
        concurrency: args.concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        window: Duration::from_secs_f64(args.seconds),
    };
    let client = std::sync::Arc::new(client);
    let report = load::run(&load, move || {
        let (client, request) = (client.clone(), request.clone());
        async move {
            match client.call(&request).await {
                Ok(reply) => reply.body.len() == request.body.len(),
                Err(_) => false,
            }
        }
    })
    .await;
    let url = redact(&args.url);
    let name = match (kind, args.headers) {
        (Kind::Amqp, false) => "lapin",
        (Kind::Amqp, true) => "lapin+headers",
        (Kind::Nats, false) => "async-nats",
        (Kind::Nats, true) => "async-nats+headers",
    };
    if args.json {
        println!("{}", report.json(name, &url, &load, args.payload));
    } else {
        println!(
            "{}",
            report.human(
                &format!("queue-baseline ({name})"),
                &url,
                &load,
                args.payload
            )
        );
    }
    Ok(())
}
