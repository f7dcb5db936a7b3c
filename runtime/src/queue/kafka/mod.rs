//! The Kafka backend (`kafka://host:9092[,host:9092…]`; feature `kafka`), on rdkafka (a bundled
//! librdkafka). docs/queue-protocol.md, "Kafka", is the wire contract; in short:
//!
//! ```text
//! event     publisher ──produce sb.event.<service>.<method> (key: sb-key, else message-id;
//!           acks=all, idempotent; returns on the broker's ack)──▶ Kafka
//!           ──▶ consumer group sb.event.<service>: per partition one record at a time, in order;
//!           partitions in parallel ──▶ QueueServer
//!           handler Ok → offset stored (committed every 5 s, on revoke, on shutdown)
//! retry     handler Err → produce to sb.retry.<service> (sb-attempt + 1, sb-due, sb-origin-*),
//!           then the offset is stored: later records of the partition go on at once. The server
//!           consumes sb.retry.<service> in group sb.event.<service>.retry (fetch wait 200 ms)
//!           and holds each of its partitions (paused) until its first record is due.
//! dead      last attempt, or a record that cannot be decoded → produce to sb.dlq.<service>.<method>
//!           with sb-status / sb-status-message / sb-attempt / sb-origin-topic / -partition /
//!           -offset; `Broker::dead_letters` reads them in group sb.dlq-reader.<service>.<method>
//! request   client ──produce sb.rpc.<service> (sb-method, sb-reply-to: <its reply topic>,
//!           sb-correlation-id, sb-deadline)──▶ group sb.rpc.<service> (any order, prefetch)
//! reply     server ──produce <reply topic> (sb-correlation-id, sb-seq, sb-status on the last)──▶
//!           the client's listener (no group, every partition); reply topic sb.reply.<random>,
//!           1 partition, created at the connection's first call, deleted on close
//! lease     client ──produce sb.reply.leases (key: its reply topic, value: lease ms; renewed every
//!           third of it; null on close)──▶ every request server (no group), which deletes the
//!           sb.reply.* topics whose lease ran out (leases.rs)
//! cancel    client ──produce sb.cancel.<service> (sb-cancel)──▶ every server (no group)
//! ```
//!
//! Every consumer runs on a thread of its own that owns its librdkafka handle and polls it
//! (`consumer.rs`, `listener.rs`); closing the connection stops them and closes each consumer
//! explicitly, bounded in time, so shutdown never blocks the async runtime in a drop.

mod consumer;
mod handout;
mod leases;
mod listener;
mod options;
mod records;
mod topics;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use rdkafka::admin::AdminClient;
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use tokio::sync::{mpsc, OnceCell};
use tonic::Status;

pub use options::{KafkaOptions, KafkaScram, KafkaTls};

use super::backend::{Acker, Backend, Cancels, ConsumerSpec, Deliveries, Delivery, Replies};
use super::wire::{self, Envelope, Str};
use consumer::{Order, Record, Settler};
use listener::Listener;
use topics::Topics;

/// How long `publish` (and moving a record to the retry or dead-letter topic) waits for the
/// broker's acknowledgement, and librdkafka's `message.timeout.ms`.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the retry topic's consumer lets the broker hold a fetch while the topic has no
/// records (`fetch.wait.max.ms`; the event consumer's is 10 ms). A retry runs at its due time or
/// up to this much later. `KafkaOptions::config("fetch.wait.max.ms", …)` sets both.
const RETRY_FETCH_WAIT_MS: &str = "200";
/// How long a server found by a group look-up is taken to be there.
const SERVED_FOR: Duration = Duration::from_secs(5);

/// One connection to a Kafka cluster.
pub(crate) struct KafkaBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// `bootstrap.servers`, `client.id` and the caller's properties: the base of every client.
    base: ClientConfig,
    options: KafkaOptions,
    producer: FutureProducer,
    topics: Topics,
    replies: Arc<Replies>,
    /// This connection's reply topic, once it has made a call.
    reply_topic: OnceCell<String>,
    /// The lease on the reply topic, and the request servers' sweep of expired ones.
    leases: leases::Leases,
    /// Group consumers running (stopped on close).
    consumers: Mutex<Vec<consumer::Handle>>,
    /// Listeners running (stopped on close).
    listeners: Mutex<Vec<Listener>>,
    /// Services a request-group look-up found served, and when.
    served: Mutex<HashMap<String, Instant>>,
    served_check: tokio::sync::Mutex<()>,
}

pub(crate) async fn connect(url: &str, replies: Arc<Replies>, options: KafkaOptions) -> Result<KafkaBackend, String> {
    let (servers, options) = options.parse_url(url)?;
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &servers).set("client.id", "switchboard");
    // TLS and SASL (options.rs), before the caller's own properties.
    for (key, value) in options.security()? {
        base.set(key, value);
    }
    let apply = |config: &mut ClientConfig| {
        for (key, value) in &options.config {
            config.set(key, value);
        }
    };
    let mut producer_config = base.clone();
    producer_config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string());
    apply(&mut producer_config);
    let producer: FutureProducer = producer_config.create().map_err(|e| format!("creating the Kafka producer: {e}"))?;
    let mut admin_config = base.clone();
    apply(&mut admin_config);
    let admin: AdminClient<DefaultClientContext> = admin_config.create().map_err(|e| format!("creating the Kafka admin client: {e}"))?;
    apply(&mut base);
    let mock = mocks().lock().unwrap().get(&servers).cloned();
    let topics = Topics::new(admin, options.partitions, options.replication, options.create_topics, mock);
    // The cluster answers, or the connection fails now (as the other brokers' connects do).
    probe(&base, &servers).await?;
    Ok(KafkaBackend {
        inner: Arc::new(Inner {
            base,
            options,
            producer,
            topics,
            replies,
            reply_topic: OnceCell::new(),
            leases: leases::Leases::default(),
            consumers: Mutex::default(),
            listeners: Mutex::default(),
            served: Mutex::default(),
            served_check: tokio::sync::Mutex::const_new(()),
        }),
    })
}

/// How long `connect` waits for a broker to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches the cluster's metadata with a client of its own whose context hears what librdkafka
/// reports on the way: a failed TLS handshake or SASL authentication (librdkafka retries those
/// and only logs them) fails the connection at once and says so; a broker that does not answer
/// fails it after `CONNECT_TIMEOUT`, with the last problem librdkafka reported.
async fn probe(config: &ClientConfig, servers: &str) -> Result<(), String> {
    let heard = Arc::new(Heard::default());
    // librdkafka's log level follows the `log` crate's (off without a logger): the probe hears
    // connection failures whatever the application logs.
    let mut config = config.clone();
    config.set_log_level(RDKafkaLogLevel::Info);
    let client: BaseProducer<Hearing> =
        config.create_with_context(Hearing(heard.clone())).map_err(|e| format!("creating the Kafka client: {e}"))?;
    let listening = heard.clone();
    let fetched = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(Duration::from_millis(200));
            let fetched = client.client().fetch_metadata(None, step).map(drop);
            // Serves the log lines and errors queued meanwhile (the context hears them).
            client.poll(Duration::ZERO);
            match fetched {
                Ok(()) => return Ok(()),
                Err(e) if left <= step || listening.failed() => return Err(e),
                Err(_) => {}
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let Err(e) = fetched else { return Ok(()) };
    Err(match heard.take() {
        Some((Some(Failure::Auth), why)) => format!("authentication failed at the Kafka broker {servers}: {why}"),
        Some((Some(Failure::Tls), why)) => format!("the TLS handshake with the Kafka broker {servers} failed: {why}"),
        Some((None, why)) => format!("no Kafka broker of {servers} answered: {e} (last: {why})"),
        None => format!("no Kafka broker of {servers} answered: {e}"),
    })
}

/// Why a connection cannot succeed however long it tries.
#[derive(Clone, Copy)]
enum Failure {
    Auth,
    Tls,
}

/// What librdkafka reported while `probe` waited: the first failure, else the last problem.
#[derive(Default)]
struct Heard(Mutex<Option<(Option<Failure>, String)>>);

impl Heard {
    fn hear(&self, message: &str) {
        let lower = message.to_ascii_lowercase();
        let failure = if ["sasl authentication error", "authentication failed", "unsupported sasl mechanism"].iter().any(|s| lower.contains(s)) {
            Some(Failure::Auth)
        } else if ["ssl handshake failed", "certificate verify failed"].iter().any(|s| lower.contains(s)) {
            Some(Failure::Tls)
        } else {
            None
        };
        let mut heard = self.0.lock().unwrap();
        // A failure is kept; "N/N brokers are down" says less than what came before it.
        let keep = match &*heard {
            Some((Some(_), _)) => true,
            Some(_) => failure.is_none() && lower.contains("brokers are down"),
            None => false,
        };
        if !keep {
            *heard = Some((failure, message.trim().to_owned()));
        }
    }

    fn failed(&self) -> bool {
        matches!(*self.0.lock().unwrap(), Some((Some(_), _)))
    }

    fn take(&self) -> Option<(Option<Failure>, String)> {
        self.0.lock().unwrap().take()
    }
}

/// The probe's context: librdkafka's warnings and errors go to [`Heard`], and on to the log as
/// with the other clients.
struct Hearing(Arc<Heard>);

impl ClientContext for Hearing {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Warnings and errors, and every connection failure ("FAIL": librdkafka logs some at
        // info level, such as a plaintext client's at a TLS listener).
        if fac == "FAIL"
            || matches!(
                level,
                RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning
            )
        {
            self.0.hear(log_message);
        }
        DefaultClientContext.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.hear(reason);
        DefaultClientContext.error(error, reason);
    }
}

impl ProducerContext for Hearing {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// A produce error as a status.
fn produce_error(topic: &str, err: &KafkaError) -> Status {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => Status::resource_exhausted(format!("producing to {topic}: {err}")),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Status::failed_precondition(format!("the Kafka topic `{topic}` does not exist: {err}"))
        }
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => Status::permission_denied(format!("producing to {topic}: {err}")),
        _ => Status::unavailable(format!("producing to {topic}: {err}")),
    }
}

impl Inner {
    /// Produces one record and waits for the broker's acknowledgement.
    async fn produce(&self, topic: &str, key: Option<&[u8]>, env: &Envelope) -> Result<(), Status> {
        let headers = records::to_headers(env);
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(&env.body[..]).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        match self.producer.send(record, DELIVERY_TIMEOUT).await {
            Ok(_) => Ok(()),
            Err((err, _)) => Err(produce_error(topic, &err)),
        }
    }

    /// Queues one record without waiting for its acknowledgement (reply frames and cancel
    /// frames: the idempotent producer keeps their order per partition).
    fn enqueue(&self, topic: &str, env: &Envelope) -> Result<(), Status> {
        let headers = records::to_headers(env);
        let record = FutureRecord::<[u8], [u8]>::to(topic).payload(&env.body[..]).headers(headers);
        match self.producer.send_result(record) {
            // The delivery report is not waited for.
            Ok(_delivery) => Ok(()),
            Err((err, _)) => Err(produce_error(topic, &err)),
        }
    }

    /// A consumer configuration: the base, then switchboard's settings, then the caller's.
    fn consumer_config(&self, group: Option<&str>, store_on_poll: bool) -> ClientConfig {
        let mut config = self.base.clone();
        config
            .set("enable.auto.commit", if group.is_some() { "true" } else { "false" })
            .set("enable.auto.offset.store", if store_on_poll { "true" } else { "false" })
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("allow.auto.create.topics", "false");
        if let Some(group) = group {
            let session = self.options.session_timeout.as_millis().max(1);
            config
                .set("group.id", group)
                .set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", session.to_string())
                .set("heartbeat.interval.ms", (session / 3).clamp(1, 3000).to_string())
                // The consumer-lag gauge (consumer.rs) comes from these statistics.
                .set("statistics.interval.ms", "5000");
            if let Some(id) = &self.options.group_instance_id {
                config.set("group.instance.id", id);
            }
        }
        for (key, value) in &self.options.config {
            config.set(key, value);
        }
        config
    }

    /// This connection's reply topic and its listener, made at the first call.
    async fn reply_topic(&self) -> Result<&str, Status> {
        let topic = self
            .reply_topic
            .get_or_try_init(|| async {
                let topic = records::checked_topic(format!("sb.reply.{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)))?;
                // Leased before it exists, so that no server sweeps it away as a crashed client's.
                self.leases.hold(&self.topics, &self.producer, &self.options, &topic).await?;
                self.topics.ensure_with(&[&topic], Some(1)).await?;
                let replies = self.replies.clone();
                let listener = listener::listen(&self.consumer_config(None, false), &topic, Offset::Beginning, move |env| {
                    if let Some(env) = env.filter(|e| e.correlation_id.is_some()) {
                        replies.deliver(env);
                    }
                    true
                })
                .await?;
                self.listeners.lock().unwrap().push(listener);
                Ok::<_, Status>(topic)
            })
            .await?;
        Ok(topic)
    }

    /// Whether some server consumes `service`'s requests: a look-up of its request group,
    /// remembered for a few seconds when it finds members. A cluster that cannot tell is taken
    /// to mean yes (the call then waits for its deadline).
    async fn served(&self, service: &str) -> Result<(), Status> {
        if self.topics.is_mock() {
            // The mock broker cannot list groups.
            return Ok(());
        }
        let fresh = |served: &HashMap<String, Instant>| served.get(service).is_some_and(|at| at.elapsed() < SERVED_FOR);
        if fresh(&self.served.lock().unwrap()) {
            return Ok(());
        }
        let _one_at_a_time = self.served_check.lock().await;
        if fresh(&self.served.lock().unwrap()) {
            return Ok(());
        }
        let admin = self.topics.admin();
        let group = records::request_group(service);
        let looked = tokio::task::spawn_blocking(move || {
            let groups = admin.inner().fetch_group_list(Some(&group), Duration::from_secs(5))?;
            // Served: members, or a state other than "Empty"/"Dead" (some brokers, tansu among
            // them, list no members). No answer for the group: cannot tell.
            let found = groups.groups().iter().find(|g| g.name() == group);
            Ok::<_, KafkaError>(found.map(|g| !g.members().is_empty() || !matches!(g.state(), "Empty" | "Dead" | "")))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        match looked {
            Ok(Some(false)) => Err(crate::client::not_delivered(Status::unavailable(format!(
                "no server consumes `{service}`: its Kafka consumer group {} is empty",
                records::request_group(service)
            )))),
            Ok(Some(true) | None) | Err(_) => {
                self.served.lock().unwrap().insert(service.to_owned(), Instant::now());
                Ok(())
            }
        }
    }

    fn event_group(&self, service: &str) -> String {
        self.options.group.clone().unwrap_or_else(|| records::event_group(service))
    }
}

/// Deliveries an unbounded channel receives (the consumer loop bounds what it hands out).
fn deliveries(rx: mpsc::UnboundedReceiver<Delivery>) -> Deliveries {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|d| (d, rx)) }))
}

impl Backend for KafkaBackend {
    fn request<'a>(&'a self, service: &'a str, _method: &'a str, mut env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            inner.served(service).await?;
            let topic = records::request_topic(service)?;
            inner.topics.ensure(&[&topic]).await?;
            env.reply_to = Some(inner.reply_topic().await?.to_owned());
            inner.produce(&topic, None, &env).await
        })
    }

    fn publish<'a>(&'a self, service: &'a str, method: &'a str, mut env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            let topic = records::event_topic(service, method)?;
            inner.topics.ensure(&[&topic]).await?;
            records::push_cloudevents(&mut env, service, method);
            let key = records::key_of(&env);
            inner.produce(&topic, key.as_deref().map(str::as_bytes), &env).await
        })
    }

    fn reply<'a>(&'a self, reply_to: &'a str, mut env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            env.reply_to = None;
            records::checked_topic(reply_to.to_owned())?;
            self.inner.enqueue(reply_to, &env)
        })
    }

    fn serve_requests(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            let topic = records::request_topic(spec.service)?;
            inner.topics.ensure(&[&topic]).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let make: consumer::Make<Delivery> = Box::new(move |record: Record, settler: Settler| Delivery {
                attempt: 1,
                redelivered: false,
                env: record.env,
                acker: Box::new(RequestAcker { settler: Some(settler) }),
            });
            let config = inner.consumer_config(Some(&records::request_group(spec.service)), true);
            let handle = consumer::start(&config, &[topic], Order::None, usize::from(spec.prefetch), make, tx)?;
            inner.consumers.lock().unwrap().push(handle);
            // Request servers delete the reply topics of clients that went away (leases.rs);
            // serving goes on without it when the lease topic cannot be read.
            match inner.leases.watch(&inner.consumer_config(None, false), &inner.topics, &inner.producer, &inner.options).await {
                Ok(Some(watch)) => inner.listeners.lock().unwrap().push(watch),
                Ok(None) => {}
                Err(status) => tracing::warn!(error = %status.message(), "not sweeping expired reply topics"),
            }
            Ok(deliveries(rx))
        })
    }

    fn serve_events(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            let service = spec.service;
            let retry = records::retry_topic(service)?;
            let mut topics = Vec::new();
            let mut all = vec![retry.clone()];
            for method in &spec.methods {
                topics.push(records::event_topic(service, method)?);
                all.push(records::event_topic(service, method)?);
                all.push(records::dead_letter_topic(service, method)?);
            }
            let names: Vec<&str> = all.iter().map(String::as_str).collect();
            inner.topics.ensure(&names).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let make = || -> consumer::Make<Delivery> {
                let (shared, methods) = (self.inner.clone(), spec.methods.clone());
                Box::new(move |record: Record, settler: Settler| event_delivery(&shared, service, &methods, record, settler))
            };
            let group = inner.event_group(service);
            let config = inner.consumer_config(Some(&group), false);
            let events = consumer::start(&config, &topics, Order::PerPartition, usize::from(spec.prefetch), make(), tx.clone())?;
            // The retry topic has a consumer (and group) of its own that waits longer for records
            // when there are none: it is empty most of the time, and a fetch of every one of its
            // partitions every 10 ms (the event consumer's wait) costs the broker as much as the
            // events' own fetches. A retry is due a backoff after its failure anyway.
            let mut config = inner.consumer_config(Some(&records::retry_group(&group)), false);
            if !inner.options.config.iter().any(|(key, _)| key == "fetch.wait.max.ms") {
                config.set("fetch.wait.max.ms", RETRY_FETCH_WAIT_MS);
            }
            let retries = match consumer::start(&config, &[retry], Order::PerPartition, usize::from(spec.prefetch), make(), tx) {
                Ok(handle) => handle,
                Err(status) => {
                    // Not serving half a service: the event consumer leaves again.
                    let _ = events.cmd.send(consumer::Cmd::Stop);
                    return Err(status);
                }
            };
            inner.consumers.lock().unwrap().extend([events, retries]);
            Ok(deliveries(rx))
        })
    }

    fn cancel<'a>(&'a self, service: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let topic = records::cancel_topic(service)?;
            // No cancel topic: no server has listened for cancels, nobody to tell.
            if self.inner.topics.ensure_with(&[&topic], Some(1)).await.is_err() {
                return Ok(());
            }
            self.inner.enqueue(&topic, &env)
        })
    }

    fn serve_cancels(&self, service: &'static str) -> BoxFuture<'_, Result<Cancels, Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            let topic = records::cancel_topic(service)?;
            inner.topics.ensure_with(&[&topic], Some(1)).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let listener = listener::listen(&inner.consumer_config(None, false), &topic, Offset::End, move |env| match env {
                Some(env) => tx.send(env).is_ok(),
                None => !tx.is_closed(),
            })
            .await?;
            inner.listeners.lock().unwrap().push(listener);
            let frames = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|env| (env, rx)) });
            Ok(Box::pin(frames) as Cancels)
        })
    }

    fn take_dead_letters<'a>(&'a self, service: &'a str, method: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Envelope>, Status>> {
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let topic = records::dead_letter_topic(service, method)?;
            let group = records::dead_letter_group(service, method);
            let config = self.inner.consumer_config(None, false);
            tokio::task::spawn_blocking(move || listener::take(&config, &topic, &group, max))
                .await
                .map_err(|e| Status::internal(format!("reading dead letters: {e}")))?
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let inner = &self.inner;
            // The reply topic's lease is no longer renewed.
            inner.leases.release();
            self.flush().await;
            let consumers = std::mem::take(&mut *inner.consumers.lock().unwrap());
            let listeners = std::mem::take(&mut *inner.listeners.lock().unwrap());
            let mut done = Vec::new();
            for handle in consumers {
                let _ = handle.cmd.send(consumer::Cmd::Stop);
                done.push(handle.done);
            }
            for listener in listeners {
                listener.stop.store(true, Ordering::Release);
                done.push(listener.done);
            }
            // Each consumer drains (1.5 s at most) and closes (1.5 s at most) on its own thread;
            // with the flush (0.5 s) and the reply topic's deletion (1 s), close stays under 5 s.
            let _ = tokio::time::timeout(Duration::from_millis(3200), futures_util::future::join_all(done)).await;
            if let Some(topic) = inner.reply_topic.get() {
                // Its listener has stopped: the lease ends (a server may delete the topic as soon as
                // it reads that, 1 s at most) as the topic goes.
                tokio::join!(inner.leases.end(&inner.producer, topic), inner.topics.delete(topic));
            }
        })
    }
}

impl Drop for KafkaBackend {
    fn drop(&mut self) {
        // Dropped without `close`: the consumer and listener threads stop on their own (their
        // consumers closed there, bounded), without waiting here. The reply topic's lease is no
        // longer renewed: a request server deletes the topic once the lease runs out.
        self.inner.leases.release();
        for handle in self.inner.consumers.lock().unwrap().iter() {
            let _ = handle.cmd.send(consumer::Cmd::Stop);
        }
        for listener in self.inner.listeners.lock().unwrap().iter() {
            listener.stop.store(true, Ordering::Release);
        }
    }
}

/// A record of an event or retry topic as a delivery.
fn event_delivery(inner: &Arc<Inner>, service: &'static str, methods: &[&'static str], record: Record, settler: Settler) -> Delivery {
    let Record { topic, partition, offset, key, mut env, .. } = record;
    // The topic's last part names the method (`sb.event.<service>.<method>`); a retried record
    // carries it in `sb-method`.
    let method: Str = match env.header(wire::METHOD) {
        Some(m) => methods.iter().find(|k| **k == m).map_or_else(|| Cow::Owned(m.to_owned()), |k| Cow::Borrowed(*k)),
        None if topic.starts_with("sb.event.") => {
            let m = topic.rsplit('.').next().unwrap_or_default();
            let m: Str = methods.iter().find(|k| **k == m).map_or_else(|| Cow::Owned(m.to_owned()), |k| Cow::Borrowed(*k));
            env.push(wire::METHOD, m.clone());
            m
        }
        None => Cow::Borrowed("unknown"),
    };
    let attempt = env.attempt();
    // The copy a retry or dead letter is made from; the `sb-origin-*` headers (not metadata: the
    // handler does not see them) are added to it only when it moves.
    let origin = env.header(records::ORIGIN_TOPIC).is_none().then_some((topic, partition, offset));
    // The handler's copy leaves out what it never reads (the CloudEvents attributes are not call
    // metadata): fewer owned strings to copy per event. The acker keeps the record whole.
    let handed = Envelope {
        headers: env.headers.iter().filter(|(k, _)| !wire::is_cloudevents_attribute(k)).cloned().collect(),
        body: env.body.clone(),
        reply_to: None,
        correlation_id: None,
    };
    Delivery {
        attempt,
        redelivered: attempt > 1,
        acker: Box::new(EventAcker { inner: inner.clone(), settler: Some(settler), env, origin, key, service, method }),
        env: handed,
    }
}

/// Settles a request: frees its place under the prefetch (its offset was stored when taken).
struct RequestAcker {
    settler: Option<Settler>,
}

impl Acker for RequestAcker {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Status>> {
        if let Some(s) = self.settler.take() {
            s.settle();
        }
        Box::pin(std::future::ready(Ok(())))
    }
    fn retry(self: Box<Self>, _delay: Duration, _next_attempt: u32) -> BoxFuture<'static, Result<(), Status>> {
        self.ack()
    }
    fn dead_letter(self: Box<Self>, _extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        self.ack()
    }
}

/// Settles an event: stores its offset, after moving it to the retry or dead-letter topic when
/// it failed. Dropped unsettled, its partition is consumed again from it.
struct EventAcker {
    inner: Arc<Inner>,
    settler: Option<Settler>,
    env: Envelope,
    /// Where it was first consumed, unless its headers say so already (a retried event).
    origin: Option<(Arc<str>, i32, i64)>,
    key: Option<Vec<u8>>,
    service: &'static str,
    method: Str,
}

impl EventAcker {
    /// Produces the event to `topic` with `extra` headers, then settles it; rewinds if the
    /// broker did not take it.
    fn move_to(mut self: Box<Self>, topic: Result<String, Status>, extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        let settler = self.settler.take();
        let mut env = std::mem::take(&mut self.env);
        if let Some((topic, partition, offset)) = self.origin.take() {
            env.push(records::ORIGIN_TOPIC, topic.to_string());
            env.push(records::ORIGIN_PARTITION, partition.to_string());
            env.push(records::ORIGIN_OFFSET, offset.to_string());
        }
        Box::pin(async move {
            let Some(settler) = settler else { return Ok(()) };
            for (name, value) in extra {
                env.set(&name, value);
            }
            let moved = match topic {
                Ok(topic) => self.inner.produce(&topic, self.key.as_deref(), &env).await,
                Err(status) => Err(status),
            };
            match moved {
                Ok(()) => {
                    settler.settle();
                    Ok(())
                }
                Err(status) => {
                    // Not moved: consumed again rather than lost.
                    settler.rewind();
                    Err(status)
                }
            }
        })
    }
}

impl Acker for EventAcker {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Status>> {
        if let Some(s) = self.settler.take() {
            s.settle();
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn retry(self: Box<Self>, delay: Duration, next_attempt: u32) -> BoxFuture<'static, Result<(), Status>> {
        let topic = records::retry_topic(self.service);
        let extra = vec![
            (wire::ATTEMPT.to_owned(), next_attempt.to_string()),
            (records::DUE.to_owned(), records::due_in(delay)),
            (wire::METHOD.to_owned(), self.method.to_string()),
        ];
        self.move_to(topic, extra)
    }

    fn dead_letter(mut self: Box<Self>, extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        self.env.headers.retain(|(k, _)| k != records::DUE);
        let topic = records::dead_letter_topic(self.service, &self.method);
        self.move_to(topic, extra)
    }
}

impl KafkaBackend {
    /// Flushes the producer (bounded) so records queued without waiting (replies, cancels)
    /// leave before the connection goes.
    pub(crate) async fn flush(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.producer.flush(Duration::from_millis(500))).await;
    }
}

/// A topic for a mock cluster to create: name, partitions, and where to answer.
type MockCreate = (String, i32, std::sync::mpsc::Sender<Result<(), String>>);

/// Mock clusters started by [`mock_cluster`], by bootstrap servers: their thread creates
/// topics through librdkafka's mock API (the mock broker has no CreateTopics, DeleteTopics,
/// ListGroups or DescribeGroups).
fn mocks() -> &'static Mutex<HashMap<String, std::sync::mpsc::Sender<MockCreate>>> {
    static MOCKS: std::sync::OnceLock<Mutex<HashMap<String, std::sync::mpsc::Sender<MockCreate>>>> = std::sync::OnceLock::new();
    MOCKS.get_or_init(Default::default)
}

/// Starts librdkafka's in-process mock cluster with `brokers` brokers (real Kafka protocol on
/// loopback; for tests) and returns its `kafka://` URL. It runs until the process exits.
/// Connections to it create topics through the mock's own API, and cannot tell whether a
/// service has servers (calls to an unserved service wait for their deadline instead of
/// failing at once).
pub fn mock_cluster(brokers: i32) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (create_tx, create_rx) = std::sync::mpsc::channel::<MockCreate>();
    std::thread::Builder::new()
        .name("sb-kafka-mock".into())
        .spawn(move || match rdkafka::mocking::MockCluster::new(brokers) {
            Ok(cluster) => {
                let _ = tx.send(Ok(cluster.bootstrap_servers()));
                // The cluster lives as long as this thread, which lives as long as the process.
                while let Ok((topic, partitions, answer)) = create_rx.recv() {
                    let _ = answer.send(cluster.create_topic(&topic, partitions, 1).map_err(|e| e.to_string()));
                }
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(format!("starting the mock Kafka cluster: {e}")));
            }
        })
        .map_err(|e| e.to_string())?;
    let servers = rx.recv().map_err(|e| e.to_string())??;
    mocks().lock().unwrap().insert(servers.clone(), create_tx);
    Ok(format!("kafka://{servers}"))
}
