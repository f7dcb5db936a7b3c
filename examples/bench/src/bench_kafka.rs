//! `bench-kafka` (issue 17): Kafka event throughput and latency, switchboard vs a hand-written
//! rdkafka loop, and request-reply over kafka:// / nats:// / amqp://. `kafka.sh` runs it
//! (BENCHMARKS.md, "Kafka (issue 17)").
//!
//! Roles (`--role`), each one process (the script pins consumer and publisher to separate CPUs):
//! - `sb-consume --url kafka://…`: serves `benchev.Sink` (its event method `Fire`) through the
//!   generated `SinkQueueServer`; after `--count` measured events prints one JSON line.
//! - `sb-publish --url kafka://…`: publishes `--count` events through `SinkQueueClient::publish_fire`,
//!   `--inflight` publishers back to back.
//! - `raw-consume --url kafka://host:port`: the anchor's consumer, a hand-written rdkafka
//!   `StreamConsumer` in a group with the backend's consumer settings (offsets stored after
//!   handling, auto-commit), on topic `--topic` (created with `--partitions`).
//! - `raw-publish`: the anchor's producer, a `FutureProducer` with the backend's producer
//!   settings (acks=all, enable.idempotence=true, linger.ms=1), `--inflight` sends in flight.
//! - `rr-serve --url U` / `rr --url U`: `Sink.Unary` request-reply, `--concurrency` callers.
//!
//! With `--cloudevents` the raw roles carry what a switchboard event carries besides its body:
//! the publisher writes the same eight record headers (`sb-method`, `content-type`, `message-id`,
//! `ce_specversion`, `ce_id`, `ce_source`, `ce_type`, `ce_time`, values of the same shape, the
//! message id as the key) and the consumer reads them (the message id and content type a
//! CloudEvents consumer that dedupes needs); reported as side `raw-ce`.
//!
//! An event's body is `--payload` bytes: the publish time (µs since the Unix epoch, u64 LE), a
//! warm-up flag, filler. Publishers first send warm-up events every 200 ms until the consumer
//! has handled one (it touches `--ready`); then the measured events. Latency: handled time minus
//! publish time; throughput: measured events / (last handled − first publish).

#[path = "queue_baseline_load.rs"]
#[allow(dead_code)]
mod load;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status};
use tokio::sync::Notify;

mod api {
    include!(concat!(env!("OUT_DIR"), "/events/mod.rs"));
}
use api::benchev::{Ev, Sink, SinkQueueClient, SinkQueueServer};

#[derive(Parser, Clone)]
struct Args {
    /// sb-consume | sb-publish | raw-consume | raw-publish | rr-serve | rr
    #[arg(long)]
    role: String,
    /// Broker URL (kafka://host:port for the raw roles too).
    #[arg(long)]
    url: String,
    /// Measured events.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Event / request body size in bytes (at least 9).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Publishes (sends) in flight at once.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// File the consumer creates once it handled a warm-up event.
    #[arg(long, default_value = "/tmp/bench-kafka.ready")]
    ready: String,
    /// The anchor's topic.
    #[arg(long, default_value = "bench.raw")]
    topic: String,
    /// Partitions of the anchor's topic (switchboard's default is 6).
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Server prefetch (sb-consume, rr-serve).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// rr: callers in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// rr: seconds measured.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// rr: warm-up seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Raw roles: write and read switchboard's event headers (CloudEvents binary mode).
    #[arg(long)]
    cloudevents: bool,
}

/// The anchor's name in the results: `raw`, or `raw-ce` with `--cloudevents`.
fn raw_side(args: &Args) -> &'static str {
    if args.cloudevents { "raw-ce" } else { "raw" }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

fn body(payload: usize, warmup: bool) -> Vec<u8> {
    let mut b = vec![0x5a; payload.max(9)];
    b[..8].copy_from_slice(&now_us().to_le_bytes());
    b[8] = u8::from(warmup);
    b
}

/// What the consumer side measured.
struct Stats {
    count: usize,
    ready_file: String,
    ready: AtomicBool,
    seen: AtomicUsize,
    inner: Mutex<Inner>,
    done: Notify,
}

struct Inner {
    latencies: Vec<u32>,
    first_publish: u64,
    first_handled: u64,
    last_handled: u64,
}

impl Stats {
    fn new(args: &Args) -> Arc<Self> {
        let _ = std::fs::remove_file(&args.ready);
        Arc::new(Stats {
            count: args.count,
            ready_file: args.ready.clone(),
            ready: AtomicBool::new(false),
            seen: AtomicUsize::new(0),
            inner: Mutex::new(Inner { latencies: Vec::with_capacity(args.count), first_publish: u64::MAX, first_handled: u64::MAX, last_handled: 0 }),
            done: Notify::new(),
        })
    }

    /// Handles one event body: decode nothing but the timestamp and flag.
    fn handle(&self, b: &[u8]) {
        if b.len() < 9 {
            return;
        }
        let at = now_us();
        let sent = u64::from_le_bytes(b[..8].try_into().unwrap());
        if b[8] == 1 {
            if !self.ready.swap(true, Ordering::Relaxed) {
                let _ = std::fs::write(&self.ready_file, b"ready");
            }
            return;
        }
        {
            let mut i = self.inner.lock().unwrap();
            i.latencies.push(at.saturating_sub(sent).min(u32::MAX as u64) as u32);
            i.first_publish = i.first_publish.min(sent);
            i.first_handled = i.first_handled.min(at);
            i.last_handled = i.last_handled.max(at);
        }
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.count {
            self.done.notify_one();
        }
    }

    fn json(&self, side: &str, payload: usize) -> String {
        let mut i = self.inner.lock().unwrap();
        i.latencies.sort_unstable();
        let n = i.latencies.len();
        let pct = |p: f64| i.latencies[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        let secs = (i.last_handled - i.first_publish) as f64 / 1e6;
        format!(
            "{{\"side\":\"{side}\",\"payload\":{payload},\"events\":{n},\"seconds\":{secs:.3},\"eps\":{:.0},\"p50_us\":{},\"p99_us\":{},\"cpu_s\":{:.2},\"drain_eps\":{:.0}}}",
            n as f64 / secs,
            pct(0.50),
            pct(0.99),
            load::process_cpu_seconds(),
            // From the first handled to the last: the consumer's own rate when the topic was
            // filled before it started (the drain check in BENCHMARKS.md).
            n as f64 / ((i.last_handled - i.first_handled) as f64 / 1e6)
        )
    }
}

struct SinkImpl(Arc<Stats>);

impl Sink for SinkImpl {
    async fn fire(&self, request: Request<Ev>) -> Result<Response<()>, Status> {
        self.0.handle(&request.get_ref().body);
        Ok(Response::new(()))
    }

    async fn unary(&self, request: Request<Ev>) -> Result<Response<Ev>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// The backend's producer settings (runtime/src/queue/kafka/mod.rs, `connect`).
fn producer_config(servers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", servers)
        .set("client.id", "bench-raw")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "30000");
    c
}

/// The backend's consumer settings for an event group (`Inner::consumer_config`).
fn consumer_config(servers: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", servers)
        .set("client.id", "bench-raw")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("allow.auto.create.topics", "false")
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .set("statistics.interval.ms", "5000");
    c
}

fn servers(url: &str) -> String {
    url.trim_start_matches("kafka://").split('?').next().unwrap().trim_end_matches('/').to_owned()
}

/// Creates the anchor's topic with `--partitions` partitions (an existing one is kept) and
/// checks its partition count.
async fn create_topic(servers: &str, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", servers).create()?;
    let topic = NewTopic::new(&args.topic, args.partitions, TopicReplication::Fixed(1));
    for r in admin.create_topics([&topic], &AdminOptions::new()).await? {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(format!("creating {t}: {e}").into()),
        }
    }
    let meta = admin.inner().fetch_metadata(Some(&args.topic), Duration::from_secs(5))?;
    let n = meta.topics().first().map_or(0, |t| t.partitions().len());
    if n != args.partitions as usize {
        return Err(format!("topic {} has {n} partitions, not {}", args.topic, args.partitions).into());
    }
    Ok(())
}

/// Publishes warm-up events until the consumer says it handled one, then `count` measured
/// events with `inflight` publishers; prints the publish side's rate.
async fn publish_loop<F, Fut>(args: &Args, side: &str, publish: F) -> Result<(), Box<dyn std::error::Error>>
where
    F: Fn(Vec<u8>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::path::Path::new(&args.ready).exists() {
        if std::time::Instant::now() > deadline {
            return Err("the consumer never handled a warm-up event".into());
        }
        let p = publish.clone();
        let b = body(args.payload, true);
        tokio::spawn(async move { p(b).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.inflight {
        let (next, errors, publish, count, payload) = (next.clone(), errors.clone(), publish.clone(), args.count, args.payload);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                if let Err(e) = publish(body(payload, false)).await {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("bench-kafka: publish: {e}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"side\":\"{side}-publish\",\"payload\":{},\"events\":{},\"errors\":{},\"seconds\":{secs:.3},\"eps\":{:.0},\"cpu_s\":{:.2}}}",
        args.payload,
        args.count,
        errors.load(Ordering::Relaxed),
        args.count as f64 / secs,
        load::process_cpu_seconds()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    match args.role.as_str() {
        "sb-consume" => {
            let stats = Stats::new(&args);
            let broker = Broker::connect(&args.url).await?;
            // Events only, like the anchor's consumer loop: no request-reply consumers (the
            // rpc group and the cancel listener) beside it.
            let server = SinkQueueServer::new(SinkImpl(stats.clone())).prefetch(args.prefetch).requests(false);
            let b = broker.clone();
            tokio::spawn(async move {
                if let Err(e) = server.serve(&b).await {
                    eprintln!("bench-kafka: serve: {e:?}");
                    std::process::exit(1);
                }
            });
            stats.done.notified().await;
            println!("{}", stats.json("switchboard", args.payload));
            let _ = tokio::time::timeout(Duration::from_secs(10), broker.close()).await;
        }
        "sb-publish" => {
            let broker = Broker::connect(&args.url).await?;
            let client = SinkQueueClient::new(&broker);
            publish_loop(&args, "switchboard", move |body| {
                let client = client.clone();
                async move { client.publish_fire(Ev { body }).await.map_err(|s| format!("{s:?}")) }
            })
            .await?;
            let _ = tokio::time::timeout(Duration::from_secs(10), broker.close()).await;
        }
        "raw-consume" => {
            let stats = Stats::new(&args);
            let servers = servers(&args.url);
            create_topic(&servers, &args).await?;
            let consumer: StreamConsumer = consumer_config(&servers, &format!("{}.group", args.topic)).create()?;
            consumer.subscribe(&[&args.topic])?;
            loop {
                let m = consumer.recv().await?;
                if args.cloudevents {
                    // What a hand-written CloudEvents consumer reads before handling: the id it
                    // dedupes by and the body's content type.
                    let (mut id, mut protobuf) = (None, false);
                    if let Some(headers) = rdkafka::Message::headers(&m) {
                        for h in headers.iter() {
                            match h.key {
                                "message-id" => id = h.value.and_then(|v| std::str::from_utf8(v).ok()),
                                "content-type" => protobuf = h.value == Some(&b"application/protobuf"[..]),
                                _ => {}
                            }
                        }
                    }
                    if id.is_none() || !protobuf {
                        return Err("a record without the message-id or content-type headers".into());
                    }
                }
                stats.handle(rdkafka::Message::payload(&m).unwrap_or_default());
                consumer.store_offset_from_message(&m)?;
                if stats.seen.load(Ordering::Relaxed) >= stats.count {
                    break;
                }
            }
            println!("{}", stats.json(raw_side(&args), args.payload));
            let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
        }
        "raw-publish" => {
            // Both raw roles create the topic before using it (whichever comes first), so that a
            // warm-up record cannot auto-create it with the broker's default partition count.
            create_topic(&servers(&args.url), &args).await?;
            let producer: FutureProducer = producer_config(&servers(&args.url)).create()?;
            let topic: Arc<str> = args.topic.clone().into();
            let seq = Arc::new(AtomicU64::new(0));
            let cloudevents = args.cloudevents;
            let prefix = format!("{:016x}", now_us());
            publish_loop(&args, raw_side(&args), move |body| {
                let (producer, topic, seq, prefix) = (producer.clone(), topic.clone(), seq.clone(), prefix.clone());
                async move {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let key = if cloudevents { format!("{prefix}-{n}") } else { format!("{n:016x}") };
                    let mut record = FutureRecord::to(&topic).key(key.as_bytes()).payload(&body[..]);
                    if cloudevents {
                        let time = switchboard::chrono::Utc::now().to_rfc3339_opts(switchboard::chrono::SecondsFormat::Millis, true);
                        let headers = [
                            ("sb-method", "Fire"),
                            ("content-type", "application/protobuf"),
                            ("message-id", key.as_str()),
                            ("ce_specversion", "1.0"),
                            ("ce_id", key.as_str()),
                            ("ce_source", "/switchboard/benchev.Sink"),
                            ("ce_type", "benchev.Sink.Fire"),
                            ("ce_time", time.as_str()),
                        ]
                        .into_iter()
                        .fold(OwnedHeaders::new_with_capacity(8), |h, (key, value)| h.insert(Header { key, value: Some(value) }));
                        record = record.headers(headers);
                    }
                    producer.send(record, Duration::from_secs(30)).await.map(drop).map_err(|(e, _)| e.to_string())
                }
            })
            .await?;
        }
        "rr-serve" => {
            let broker = Broker::connect(&args.url).await?;
            let stats = Stats::new(&args);
            SinkQueueServer::new(SinkImpl(stats)).prefetch(args.prefetch).events(false).serve(&broker).await?;
        }
        "rr" => {
            let broker = Broker::connect(&args.url).await?;
            let client = SinkQueueClient::new(&broker);
            let b = vec![0x5a; args.payload];
            {
                let client = client.clone().timeout(Duration::from_secs(2));
                let b = b.clone();
                load::wait_for_server(Duration::from_secs(60), || {
                    let (client, body) = (client.clone(), b.clone());
                    async move { client.unary(Ev { body }).await.map(drop) }
                })
                .await?;
            }
            let l = load::Load {
                concurrency: args.concurrency,
                warmup: Duration::from_secs_f64(args.warmup),
                window: Duration::from_secs_f64(args.seconds),
            };
            let report = load::run(&l, move || {
                let (client, body) = (client.clone(), b.clone());
                async move {
                    let len = body.len();
                    matches!(client.unary(Ev { body }).await, Ok(r) if r.get_ref().body.len() == len)
                }
            })
            .await;
            println!("{}", report.json("switchboard", &broker.url(), &l, args.payload));
            let _ = tokio::time::timeout(Duration::from_secs(10), broker.close()).await;
        }
        other => return Err(format!("unknown --role {other}").into()),
    }
    Ok(())
}
