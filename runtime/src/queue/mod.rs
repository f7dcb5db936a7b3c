//! Queue transport: the same service trait served and called through a message broker.
//!
//! ```text
//! client ──request (sb.rpc.<service>, headers: sb-method, sb-deadline, message-id, …)──▶ broker
//!                                                                               │ competing consumers
//!        ◀── reply frames (correlation id, sb-seq, sb-status on the last) ── QueueServer<D>
//! publisher ──event (sb.event.<service>.<method>, confirmed)──▶ durable queue / JetStream stream
//!        ──▶ QueueServer: handler Ok → ack; Err → retry with backoff → dead-letter after N attempts
//! ```
//!
//! The broker is picked by URL at run time ([`Broker::connect`]): `memory://` (an embedded,
//! in-process broker, the default), `amqp://…` (RabbitMQ, feature `amqp`), `nats://…` (NATS with
//! JetStream for events, feature `nats`), `kafka://…` (Kafka, feature `kafka`: events in
//! consumer groups, ordered per partition key, with non-blocking retries through a retry topic
//! and dead-letter topics; request-reply over a request topic and per-client reply topics;
//! [`KafkaOptions`] for partitions, replication, topic creation, static membership);
//! `amqps://` and NATS `tls://` over TLS, with
//! `Broker::connect_tls` (feature `tls`) for a private CA or a client certificate. The wire format
//! is specified in `docs/queue-protocol.md`, so programs in other languages can call and serve
//! switchboard services through the same broker. On NATS, servers also answer NATS micro
//! discovery (ADR-32: `$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`), which [`discover`] and other micro
//! clients ask.
//!
//! What each call shape does over a queue:
//! - unary: request-reply;
//! - server streaming: ordered reply frames, the last one carrying the final status;
//! - client and bidi streaming: not carried over queues (UNIMPLEMENTED); use gRPC or REST;
//! - events: methods marked `#[rpc(event)]` (generated for methods returning
//!   `google.protobuf.Empty` and OpenAPI operations with `x-switchboard-event: true`) can also be
//!   published fire-and-forget with `publish_<method>`; the server handles them at least once.
//!   An event (or request) can carry a partition key, `sb-key` ([`PartitionKey`]): from the
//!   request field its method's spec names, or set per call.

mod backend;
mod call;
mod client;
mod codec;
mod ids;
pub(crate) mod key;
mod memory;
mod methods;
mod micro;
mod operation;
mod server;
pub mod wire;

#[cfg(feature = "amqp")]
mod amqp;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
pub use kafka::{mock_cluster as kafka_mock_cluster, KafkaOptions, KafkaScram, KafkaTls};

use std::sync::Arc;

pub use client::QueueClient;
pub use key::PartitionKey;
pub use codec::{Codec, Json, Proto};
pub use call::{MessageId, Outcome, Queue, QueueCall, QueueDecoder, QueueEncoder, UnaryReply};
pub use server::QueueServer;
pub use micro::{discover, micro_name, InstanceEndpoint, ServiceInstance};

/// How many bytes a [`QueueServer`]'s dedupe window holds by default (64 MiB): the replies kept
/// for duplicate requests and the remembered message ids. Change it with
/// [`QueueServer::dedupe_max_bytes`].
pub const DEFAULT_DEDUPE_MAX_BYTES: usize = 64 * 1024 * 1024;

use backend::{Backend, Replies};
use tonic::Status;

#[cfg(feature = "tls")]
use crate::tls::ClientTls;

/// Stands for `tls::ClientTls` in builds without the `tls` feature: no value of it exists, so
/// those builds connect without one.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum ClientTls {}

/// A connection to a broker, shared by the servers and clients that use it. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

struct BrokerInner {
    url: String,
    backend: Backends,
    replies: Arc<Replies>,
}

/// The backend of a connection. An enum rather than a `Box<dyn Backend>` so that the hot paths
/// (a unary call, a reply) are dispatched statically: their futures live inside the caller's
/// instead of in heap boxes of their own per call (lapin's and async-nats's are over 1 KiB,
/// past glibc malloc's per-thread cache, so each box would take the arena lock, which the
/// worker threads then fight over).
enum Backends {
    Memory(memory::MemoryBackend),
    #[cfg(feature = "amqp")]
    Amqp(amqp::AmqpBackend),
    #[cfg(feature = "nats")]
    Nats(nats::NatsBackend),
    #[cfg(feature = "kafka")]
    Kafka(kafka::KafkaBackend),
}

impl Backends {
    fn get(&self) -> &dyn Backend {
        match self {
            Backends::Memory(b) => b,
            #[cfg(feature = "amqp")]
            Backends::Amqp(b) => b,
            #[cfg(feature = "nats")]
            Backends::Nats(b) => b,
            #[cfg(feature = "kafka")]
            Backends::Kafka(b) => b,
        }
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("url", &redact(&self.inner.url)).finish()
    }
}

/// Why [`Broker::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL's scheme names no backend compiled into this build.
    #[error("unsupported broker URL `{0}`: expected memory://, amqp:// (feature `amqp`), nats:// (feature `nats`) or kafka:// (feature `kafka`)")]
    Unsupported(String),
    /// The broker did not accept the connection.
    #[error("connecting to {url}: {message}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl Broker {
    /// Connects to the broker at `url`:
    ///
    /// - `memory://` or `memory://<name>`: the embedded broker of this process (each name is a
    ///   separate broker; the same name always reaches the same one);
    /// - `amqp://user:pass@host:5672/vhost`: RabbitMQ (feature `amqp`);
    /// - `nats://host:4222`: NATS, with JetStream for events (feature `nats`);
    /// - `kafka://host:9092[,host:9092…][?partitions=6&…]`: Kafka (feature `kafka`; the query
    ///   takes [`KafkaOptions`]' settings, see [`Broker::connect_kafka`]);
    ///   `kafkas://[user:password@]host:9093[?ca=ca.pem&sasl=SCRAM-SHA-256]` with TLS (feature
    ///   `kafka-tls`), `kafka://user:password@host:9092` with SASL PLAIN.
    ///
    /// RabbitMQ and NATS URLs may list several nodes, comma-separated
    /// (`amqp://a:5672/%2f,amqp://b:5672/%2f`, `nats://a:4222,nats://b:4222`): RabbitMQ uses the
    /// first node that answers, at the first connection and at every reconnection; NATS
    /// reconnects to any node of the list (the nodes of one cluster).
    ///
    /// `amqps://` (RabbitMQ over TLS, features `amqp` and `tls`) and NATS `tls://` verify the
    /// broker's certificate against the system's root store; for a private CA or a client
    /// certificate, see `Broker::connect_tls` (feature `tls`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let broker = switchboard::queue::Broker::connect("memory://").await.unwrap();
    /// # let _ = broker; }
    /// ```
    pub async fn connect(url: &str) -> Result<Broker, ConnectError> {
        Self::open(url, None).await
    }

    /// Connects to a RabbitMQ or NATS broker over TLS (feature `tls`), trusting `tls`'s root CAs
    /// (and only them), presenting its client certificate if it has one (for brokers that require
    /// one: mTLS), and verifying its server name instead of the URL's host if it has one.
    ///
    /// - `amqps://user:pass@host:5671/vhost`: RabbitMQ's TLS listener (feature `amqp`); an
    ///   `amqp://` URL is refused (it names a plaintext listener);
    /// - `tls://host:4222` or `nats://host:4222`: NATS (feature `nats`), TLS required either way.
    ///
    /// The error of a failed handshake names its cause (`invalid peer certificate:
    /// UnknownIssuer`, `received fatal alert: CertificateRequired`, ...). Reconnections use the
    /// same settings.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::Broker;
    /// use switchboard::tls::ClientTls;
    /// let tls = ClientTls::new(&std::fs::read("ca.pem")?)?
    ///     .identity(&std::fs::read("client.pem")?, &std::fs::read("client.key")?)?;
    /// let rabbit = Broker::connect_tls("amqps://app:secret@rabbit.internal:5671/%2f", &tls).await?;
    /// let nats = Broker::connect_tls("tls://nats.internal:4222", &tls).await?;
    /// # let _ = (rabbit, nats);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub async fn connect_tls(url: &str, tls: &ClientTls) -> Result<Broker, ConnectError> {
        Self::open(url, Some(tls)).await
    }

    async fn open(url: &str, tls: Option<&ClientTls>) -> Result<Broker, ConnectError> {
        let replies = Arc::new(Replies::default());
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
        let backend = match scheme.as_str() {
            "memory" if tls.is_some() => {
                return Err(ConnectError::Connect { url: redact(url), message: "memory:// brokers take no TLS settings".into() });
            }
            "memory" => Backends::Memory(memory::connect(url, replies.clone())),
            #[cfg(feature = "amqp")]
            "amqp" | "amqps" => Backends::Amqp(amqp::connect(url, replies.clone(), tls).await.map_err(|message| {
                ConnectError::Connect { url: redact(url), message: not_tls_hint(message) }
            })?),
            #[cfg(feature = "nats")]
            "nats" | "tls" => Backends::Nats(nats::connect(url, replies.clone(), tls).await.map_err(|message| {
                ConnectError::Connect { url: redact(url), message: not_tls_hint(message) }
            })?),
            #[cfg(feature = "kafka")]
            "kafka" | "kafkas" if tls.is_some() => {
                return Err(ConnectError::Connect {
                    url: redact(url),
                    message: "kafka:// takes its TLS settings from the URL (kafkas://, ca=, cert=, key=) or KafkaOptions::tls with Broker::connect_kafka (feature `kafka-tls`), not from a ClientTls".into(),
                });
            }
            #[cfg(feature = "kafka")]
            "kafka" | "kafkas" => Backends::Kafka(
                kafka::connect(url, replies.clone(), KafkaOptions::default())
                    .await
                    .map_err(|message| ConnectError::Connect { url: redact(url), message })?,
            ),
            _ => return Err(ConnectError::Unsupported(redact(url))),
        };
        Ok(Broker { inner: Arc::new(BrokerInner { url: url.to_owned(), backend, replies }) })
    }

    /// Connects to a Kafka cluster (feature `kafka`) with `options`; the URL's query, if any,
    /// overrides them. Topics are created on first use (`options.partitions`, default 6, and
    /// `options.replication`, default 1) unless `options.create_topics(false)`; see
    /// docs/queue-protocol.md, "Kafka", for the topics, keys, headers and groups.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions};
    /// let broker = Broker::connect_kafka("kafka://127.0.0.1:9092", KafkaOptions::new().create_topics(false)).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    #[cfg(feature = "kafka")]
    pub async fn connect_kafka(url: &str, options: KafkaOptions) -> Result<Broker, ConnectError> {
        let replies = Arc::new(Replies::default());
        let backend = kafka::connect(url, replies.clone(), options)
            .await
            .map_err(|message| ConnectError::Connect { url: redact(url), message })?;
        Ok(Broker { inner: Arc::new(BrokerInner { url: url.to_owned(), backend: Backends::Kafka(backend), replies }) })
    }

    /// The embedded broker of this process (`memory://`).
    pub fn memory() -> Broker {
        let replies = Arc::new(Replies::default());
        let backend = Backends::Memory(memory::connect("memory://", replies.clone()));
        Broker { inner: Arc::new(BrokerInner { url: "memory://".into(), backend, replies }) }
    }

    /// The URL this broker was reached at (password removed).
    pub fn url(&self) -> String {
        redact(&self.inner.url)
    }

    /// Takes up to `max` messages off the dead-letter queue of `service`'s event `method`
    /// (`sb.dlq.<service>.<method>`): events that failed every attempt or could not be decoded.
    /// Each carries the last error in `sb-status` / `sb-status-message` and the attempts made in
    /// `sb-attempt`. Taken messages are removed from the queue (Kafka keeps them in the topic:
    /// the reader group `sb.dlq-reader.<service>.<method>` commits past the ones taken, and
    /// each also carries `sb-origin-topic`, `sb-origin-partition` and `sb-origin-offset`).
    pub async fn dead_letters(&self, service: &str, method: &str, max: usize) -> Result<Vec<wire::Envelope>, Status> {
        self.backend().take_dead_letters(service, method, max).await
    }

    /// Closes the connection: servers on it stop, calls in flight fail with UNAVAILABLE.
    pub async fn close(&self) {
        self.backend().close().await;
        self.inner.replies.fail_all(&Status::unavailable("the broker connection was closed"));
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.inner.backend.get()
    }

    /// The NATS connection, when this is one (NATS micro discovery needs it).
    #[cfg(feature = "nats")]
    pub(crate) fn nats(&self) -> Option<&nats::NatsBackend> {
        match &self.inner.backend {
            Backends::Nats(nats) => Some(nats),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// A unary call's request, and its one reply frame (waited for until `deadline`; given up
    /// on, the request is cancelled: [`backend::one_reply`]).
    pub(crate) async fn call(
        &self,
        service: &'static str,
        method: &str,
        env: wire::Envelope,
        deadline: std::time::Instant,
    ) -> Result<wire::Envelope, Status> {
        match &self.inner.backend {
            #[cfg(feature = "nats")]
            Backends::Nats(nats) => backend::one_reply(self, service, env, deadline, |env| nats.send_request(service, method, env)).await,
            #[cfg(feature = "amqp")]
            Backends::Amqp(amqp) => backend::one_reply(self, service, env, deadline, |env| amqp.send_request(service, env)).await,
            other => {
                let backend = other.get();
                backend::one_reply(self, service, env, deadline, |env| backend.request(service, method, env)).await
            }
        }
    }

    /// Tells `service`'s servers to stop running the request with `correlation_id` (its caller
    /// gave up on it): a cancel frame, published from a spawned task (best effort; outside a
    /// Tokio runtime nothing is sent).
    pub(crate) fn cancel_soon(&self, service: &'static str, correlation_id: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let broker = self.clone();
        runtime.spawn(async move {
            let mut env = wire::Envelope::default();
            env.push(wire::CANCEL, correlation_id);
            let _ = broker.backend().cancel(service, env).await;
        });
    }

    /// Sends one reply frame to `reply_to` (statically dispatched, like [`Broker::call`]).
    pub(crate) async fn reply(&self, reply_to: &str, env: wire::Envelope) -> Result<(), Status> {
        match &self.inner.backend {
            #[cfg(feature = "nats")]
            Backends::Nats(nats) => nats.send_reply(reply_to, env).await,
            #[cfg(feature = "amqp")]
            Backends::Amqp(amqp) => amqp.send_reply(reply_to, env).await,
            other => other.get().reply(reply_to, env).await,
        }
    }

    pub(crate) fn replies(&self) -> &Replies {
        &self.inner.replies
    }
}

/// `message`, with a hint when it is rustls' words for a peer that answered a TLS client in
/// something else than TLS.
#[cfg(any(feature = "amqp", feature = "nats"))]
fn not_tls_hint(message: String) -> String {
    match message.contains("received corrupt message of type InvalidContentType") {
        true => format!("{message} (the server does not speak TLS on that port?)"),
        false => message,
    }
}

/// `url` without the password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("amqp://guest:secret@127.0.0.1:5672/%2f"), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(super::redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
