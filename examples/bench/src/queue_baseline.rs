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
//! `--protocol` (server and client alike) makes both carry what switchboard's protocol puts on a
//! plain call (RabbitMQ: the method as the `type` property, published `mandatory`; NATS:
//! nothing): the baseline then prices the protocol, and the difference to switchboard is the
//! runtime's own cost. `--add` prices optional parts (a deadline, a message id, …).
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
    /// Carry what switchboard's protocol puts on a plain call (server and client): on RabbitMQ
    /// the method in the `type` property, published `mandatory`; on NATS nothing (a plain call
    /// has no header block). (`content_type` is on events only: `--add content-type,reply-content-type`.)
    #[arg(long)]
    protocol: bool,
    /// Also carry these (comma-separated), to price them: type, mandatory (AMQP: the parts of
    /// --protocol one by one), reply-content-type (AMQP), method-header (`sb-method`), content-type
    /// (also on NATS), message-id, deadline (`sb-deadline`), expiration (AMQP), seq (`sb-seq: 0`
    /// on replies), status (`sb-status: 0` on replies, checked by the client).
    #[arg(long, value_delimiter = ',')]
    add: Vec<String>,
}

/// What requests and replies carry besides the correlation id and reply address
/// (`docs/queue-protocol.md`); all off for the bare baseline.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields {
    /// AMQP: the method in the `type` property.
    pub kind: bool,
    /// `sb-method` header.
    pub method: bool,
    /// `content-type` (AMQP: the `content_type` property) on requests.
    pub content_type: bool,
    /// Message id (AMQP `message_id`, NATS `Nats-Msg-Id`).
    pub message_id: bool,
    /// `sb-deadline` header.
    pub deadline: bool,
    /// AMQP: `expiration` on requests.
    pub expiration: bool,
    /// AMQP: requests published `mandatory`.
    pub mandatory: bool,
    /// `sb-seq: 0` on replies.
    pub seq: bool,
    /// `content-type` on replies.
    pub reply_content_type: bool,
    /// `sb-status: 0` on replies (the client checks it).
    pub status: bool,
}

impl Fields {
    /// What a plain switchboard call carries on `kind`'s broker, plus `add`.
    fn of(kind: Kind, protocol: bool, add: &[String]) -> Result<Fields, Error> {
        let mut f = Fields::default();
        if protocol && kind == Kind::Amqp {
            f.kind = true;
            f.mandatory = true;
        }
        for name in add {
            let slot = match name.as_str() {
                "type" => &mut f.kind,
                "mandatory" => &mut f.mandatory,
                "reply-content-type" => &mut f.reply_content_type,
                "method-header" => &mut f.method,
                "content-type" => &mut f.content_type,
                "message-id" => &mut f.message_id,
                "deadline" => &mut f.deadline,
                "expiration" => &mut f.expiration,
                "seq" => &mut f.seq,
                "status" => &mut f.status,
                other => return Err(format!("--add: unknown field `{other}`").into()),
            };
            *slot = true;
        }
        Ok(f)
    }

    /// Whether requests carry any header (NATS: `request_with_headers`).
    pub fn any_request(&self) -> bool {
        self.method || self.content_type || self.message_id || self.deadline
    }

    /// Whether NATS replies carry any header (`content-type` never does there).
    pub fn any_reply(&self) -> bool {
        self.seq || self.status
    }
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

async fn serve(kind: Kind, url: String, prefetch: u16, headers: Fields) -> Result<(), Error> {
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
    let fields = Fields::of(kind, args.protocol, &args.add)?;
    if args.role == Role::Server {
        return serve(kind, args.url, args.prefetch, fields).await;
    }
    if args.role == Role::Both {
        let (url, prefetch, headers) = (args.url.clone(), args.prefetch, fields);
        tokio::spawn(async move {
            if let Err(e) = serve(kind, url, prefetch, headers).await {
                eprintln!("queue-baseline: the server failed: {e}");
            }
        });
    }

    let timeout = Duration::from_secs(10);
    let client = match kind {
        Kind::Amqp => Client::Amqp(amqp::Client::connect(&args.url, timeout, fields).await?),
        Kind::Nats => Client::Nats(nats::Client::connect(&args.url, timeout, fields).await?),
    };
    let request = EchoMsg {
        body: vec![0x5a; args.payload],
    };
    {
        // The first calls: a short timeout each (an AMQP request published before the server
        // declared its queue is dropped, never answered).
        let probe = match kind {
            Kind::Amqp => Client::Amqp(
                amqp::Client::connect(&args.url, Duration::from_secs(1), fields).await?,
            ),
            Kind::Nats => Client::Nats(
                nats::Client::connect(&args.url, Duration::from_secs(1), fields).await?,
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
    let mut name = String::from(match kind {
        Kind::Amqp => "lapin",
        Kind::Nats => "async-nats",
    });
    if args.protocol {
        name.push_str("+protocol");
    }
    for add in &args.add {
        name.push('+');
        name.push_str(add);
    }
    if args.json {
        println!("{}", report.json(&name, &url, &load, args.payload));
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
