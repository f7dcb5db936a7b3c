//! The RabbitMQ backend (`amqp://…`, `amqps://…`; feature `amqp`), on lapin.
//!
//! Topology: everything goes through the default exchange, so nothing is bound, except the cancel
//! frames, which every server must hear: they go through `amq.topic` (which every RabbitMQ vhost
//! has, so a publisher needs to declare nothing, and a cancel nobody listens for is dropped).
//!
//! ```text
//! client ── request channel: mandatory, reply_to = amq.rabbitmq.reply-to ──▶ sb.rpc.<service>
//!   ▲  no-ack consumer of amq.rabbitmq.reply-to         (transient, auto-delete, declared by the
//!   │  (RabbitMQ direct reply-to: no reply queue)        servers; competing consumers)
//!   └── reply frames, routing key = the request's reply_to ◀── QueueServer (prefetch, manual ack)
//!
//! client ── cancel frame (sb-cancel: <correlation id>), not mandatory ──▶ amq.topic, routing key
//!   sb.cancel.<service> ──▶ each server's own queue (server-named, exclusive, auto-delete, bound
//!   with that key, consumed without acks): every server hears every cancel frame
//!
//! publisher ── confirm channel: persistent, mandatory ──▶ sb.event.<service>.<method> (durable)
//!   retry:       a copy with sb-attempt = n+1 goes back to the same queue (confirmed), then the
//!                original is acked
//!   dead letter: a copy with the last error in sb-status… goes to sb.dlq.<service>.<method>
//!                (durable, confirmed), then the original is acked
//! ```
//!
//! - **Headers.** `content-type` and `message-id` travel as the AMQP `content_type` and
//!   `message_id` properties; every other header goes into the `headers` table as a long string
//!   (a name given twice keeps its values joined by `, `). Received table values of any type
//!   become strings (integers and booleans spelled out, byte arrays as lossy UTF-8); nested
//!   tables and arrays (`x-death`) are skipped. `reply_to` and `correlation_id` are the
//!   properties of the same name. Header names are lower-cased on the way in.
//! - **Requests** carry an `expiration` equal to the time left before their `sb-deadline`, so the
//!   broker drops requests nobody took in time. The request queue only exists while a server
//!   consumes it, so a request for a service nobody serves comes back as `basic.return`.
//! - **basic.return.** Requests are published mandatory on a channel without publisher confirms
//!   (confirms cost about a sixth of the request-reply throughput). lapin then keeps returned
//!   messages until `Channel::wait_for_confirms` drains them (at once, since no confirm is
//!   pending); a task per connection drains them every 10 ms while requests go out (50 ms
//!   otherwise) and fails each call by the returned message's correlation id with UNAVAILABLE
//!   `no server consumes sb.rpc.<service>`. Event publishes need confirms: they use a pool of
//!   confirm channels with one publish in flight per channel, so a returned event is always its
//!   own publisher's (lapin may attach a returned message to any confirm of a multiple-ack).
//! - **Reconnects.** lapin does not reconnect by itself. A supervisor task watches the connection
//!   (its events, its status, and the consumers' errors); when it drops, every call in flight
//!   fails with UNAVAILABLE, and it reconnects with backoff (100 ms doubling to 5 s). Each server
//!   consumer (a stream the server's loop polls) re-declares its queues and consumes again on
//!   every new connection, so a server only sees a pause. While
//!   disconnected, calls and publishes fail at once with UNAVAILABLE.
//! - **Acks.** A delivery's [`Acker`] keeps its channel open until it is settled; dropping it
//!   unsettled nacks it with requeue. Deliveries on a channel that died are redelivered by the
//!   broker (their acks fail), so the server's dedupe window sees them again.
//! - **Queued, not awaited.** Replies, requests and acks are handed to lapin (which queues
//!   their frames at once) without waiting for its I/O thread to write them; see `queue_now`.
//!   The frames of one channel go out in the order queued, so a reply is on the wire before its
//!   request's ack.
//! - **TLS** (`amqps://`, feature `tls`). Without a `ClientTls`, lapin's own rustls connector
//!   (ring) verifies the broker against the system's root store. With one
//!   (`Broker::connect_tls`), lapin still opens the TCP connection, and the handshake runs on the
//!   `ClientTls`'s rustls configuration (its roots only, its client certificate, its server
//!   name), the one the gRPC and REST clients use; every reconnection does the same.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, BoxStream, StreamExt};
use lapin::message::BasicReturnMessage;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use tokio::sync::{watch, Notify};
use tonic::Status;

use super::backend::{Acker, Backend, Cancels, ConsumerSpec, Deliveries, Delivery, Replies};
use super::wire::{self, Envelope};
use super::ClientTls;

/// The exchange cancel frames go through (routing key `sb.cancel.<service>`).
const CANCEL_EXCHANGE: &str = "amq.topic";
/// RabbitMQ's pseudo-queue for direct reply-to.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// `delivery_mode` of a persistent message.
const PERSISTENT: u8 = 2;
/// Reconnect backoff: first delay, doubling up to the max.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often returned requests are collected: within a second of a request, and otherwise.
const RETURNS_BUSY: Duration = Duration::from_millis(10);
const RETURNS_IDLE: Duration = Duration::from_millis(50);
/// How often the supervisor looks at the connection's status between events.
const HEALTH_CHECK: Duration = Duration::from_millis(250);
/// How long a consumer whose subscription ended (connection still up) waits before consuming again.
const RESUBSCRIBE: Duration = Duration::from_millis(500);
/// Longest wait for the TCP connection and AMQP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle confirm channels kept for event publishes.
const POOL_KEEP: usize = 32;

/// One connection to RabbitMQ, re-established whenever it drops.
pub(crate) struct AmqpBackend {
    shared: Arc<Shared>,
}

struct Shared {
    url: String,
    replies: Arc<Replies>,
    /// The TLS settings of `amqps://` connections (`Broker::connect_tls`), for every reconnection.
    tls: Option<ClientTls>,
    /// The live connection; `None` while reconnecting and once closed.
    current: watch::Sender<Option<Arc<Conn>>>,
    /// Set once by `close` (or when the backend is dropped): stop reconnecting and consuming.
    closed: watch::Sender<bool>,
}

/// One AMQP connection and the channels the backend keeps on it.
struct Conn {
    connection: Connection,
    /// Publishes requests (no confirms) and consumes their replies (direct reply-to).
    rpc: Channel,
    /// Publishes server replies (no confirms).
    out: Mutex<Arc<Channel>>,
    /// Idle confirm-mode channels for events, retries and dead letters: one publish in flight each.
    pool: Mutex<Vec<Channel>>,
    /// Event queues declared on this connection.
    declared: Mutex<HashSet<String>>,
    /// Wakes the supervisor to look at the connection (a consumer saw an error).
    kick: Arc<Notify>,
    /// When the connection was opened, and when (ms after that) a request was last sent: the
    /// returned-request watcher looks more often while requests go out.
    opened: Instant,
    last_request: Arc<AtomicU64>,
}

pub(crate) async fn connect(url: &str, replies: Arc<Replies>, tls: Option<&ClientTls>) -> Result<AmqpBackend, String> {
    let conn = open(url, &replies, tls).await?;
    let shared = Arc::new(Shared {
        url: url.to_owned(),
        replies,
        tls: tls.cloned(),
        current: watch::Sender::new(Some(conn.clone())),
        closed: watch::Sender::new(false),
    });
    tokio::spawn(supervise(shared.clone(), conn));
    Ok(AmqpBackend { shared })
}

/// Connects to the first broker of `urls` (comma-separated: a list of nodes, tried in turn, at
/// the first connection and at every reconnection) that answers, and sets up the request channel.
async fn open(urls: &str, replies: &Arc<Replies>, tls: Option<&ClientTls>) -> Result<Arc<Conn>, String> {
    let mut failures = Vec::new();
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        match open_one(url, replies, tls).await {
            Ok(conn) => return Ok(conn),
            Err(e) => failures.push(match urls.contains(',') {
                true => format!("{}: {e}", super::redact(url)),
                false => e,
            }),
        }
    }
    Err(failures.join("; "))
}

/// Connects to `url` and sets up the request channel (direct reply-to consumer, returned-request
/// watcher).
async fn open_one(url: &str, replies: &Arc<Replies>, tls: Option<&ClientTls>) -> Result<Arc<Conn>, String> {
    let properties = ConnectionProperties::default().with_connection_name("switchboard".into());
    let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connect_to(url, properties, tls)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(format!("no answer from the broker in {CONNECT_TIMEOUT:?}")),
    };
    let setup = async {
        let rpc = connection.create_channel().await?;
        let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let consumer = rpc.basic_consume(DIRECT_REPLY_TO.into(), "".into(), no_ack, FieldTable::default()).await?;
        let out = connection.create_channel().await?;
        Ok::<_, lapin::Error>((rpc, consumer, out))
    };
    let (rpc, consumer, out) = match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
        Ok(Ok(set)) => set,
        Ok(Err(e)) => {
            let _ = connection.close(200, "setup failed".into()).await;
            return Err(format!("setting up the request channel: {e}"));
        }
        Err(_) => return Err("setting up the request channel timed out".into()),
    };
    let kick = Arc::new(Notify::new());
    tokio::spawn(pump_replies(consumer, replies.clone(), kick.clone()));
    let opened = Instant::now();
    let last_request = Arc::new(AtomicU64::new(0));
    tokio::spawn(watch_returns(rpc.clone(), replies.clone(), last_request.clone(), opened));
    Ok(Arc::new(Conn {
        connection,
        rpc,
        out: Mutex::new(Arc::new(out)),
        pool: Mutex::default(),
        declared: Mutex::default(),
        kick,
        opened,
        last_request,
    }))
}

/// Opens the AMQP connection to `url`: lapin's own way (plain TCP, or for `amqps://` its rustls
/// connector with the system's roots), or with a `ClientTls`'s settings.
async fn connect_to(url: &str, properties: ConnectionProperties, tls: Option<&ClientTls>) -> Result<Connection, String> {
    let amqps = url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("amqps://"));
    match tls {
        // lapin without a TLS backend would speak plain AMQP to the TLS port.
        None if amqps && cfg!(not(feature = "tls")) => {
            Err("amqps:// needs TLS, which this build lacks (the `tls` feature of switchboard)".into())
        }
        None => Connection::connect(url, properties).await.map_err(|e| e.to_string()),
        #[cfg(feature = "tls")]
        Some(_) if !amqps => Err("an amqp:// URL names a plaintext listener: TLS settings need an amqps:// URL".into()),
        #[cfg(feature = "tls")]
        Some(tls) => connect_tls(url, properties, tls).await,
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
    }
}

/// An `amqps://` connection with `tls`'s settings: lapin opens the TCP connection, the handshake
/// runs on the `ClientTls`'s rustls configuration (its roots only, its client certificate), and
/// verifies its server name, or else the URL's host.
#[cfg(feature = "tls")]
async fn connect_tls(url: &str, properties: ConnectionProperties, tls: &ClientTls) -> Result<Connection, String> {
    use lapin::tcp::{AMQPUriTcpExt, RustlsConnector, TLSConfig};
    use lapin::uri::{AMQPScheme, AMQPUri};
    use std::sync::atomic::AtomicBool;

    let uri: AMQPUri = url.parse().map_err(|e| format!("invalid AMQP URL: {e}"))?;
    let (config, _, server_name) = tls.parts();
    let name = match server_name {
        Some(name) => name.to_str().into_owned(),
        None => uri.authority.host.trim_start_matches('[').trim_end_matches(']').to_owned(),
    };
    // This connection's own config (the rest is shared), whose certificate resolver notes whether
    // the broker asked for a client certificate: a TLS 1.3 broker gives its verdict on the
    // client's certificate (or its absence) after the handshake, and lapin, writing its protocol
    // header meanwhile, may see the connection reset rather than the alert. The error says so.
    let mut config = (**config).clone();
    let identity = config.client_auth_cert_resolver.has_certs();
    let (asked, handshaken) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    config.client_auth_cert_resolver = Arc::new(NoteAsked { inner: config.client_auth_cert_resolver.clone(), asked: asked.clone() });
    let connector = RustlsConnector::from(config);
    let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
    let done = handshaken.clone();
    let connect = async move |mut uri: AMQPUri, runtime| {
        uri.scheme = AMQPScheme::AMQP;
        let tcp = uri.connect_with_config_async(TLSConfig::default(), &runtime).await?;
        let tls = tcp.into_rustls(&connector, &name).await.map_err(|reason| {
            let what = format!("TLS handshake with {}:{} (server name `{name}`) failed: {reason}", uri.authority.host, uri.authority.port);
            lapin::Error::from(std::io::Error::new(reason.kind(), what))
        })?;
        done.store(true, Ordering::Relaxed);
        Ok(tls)
    };
    Connection::connector(uri, runtime, connect, properties).await.map_err(|e| {
        let verdict = asked.load(Ordering::Relaxed) && handshaken.load(Ordering::Relaxed) && e.is_io_error();
        match (verdict, identity) {
            (false, _) => e.to_string(),
            (true, false) => format!("{e} (the broker asked for a client certificate and this ClientTls has none: see ClientTls::identity)"),
            (true, true) => format!("{e} (the broker asked for a client certificate: it may have refused this one; its log says why)"),
        }
    })
}

/// A connection's client certificate resolver: the `ClientTls`'s, noting that the broker asked.
#[cfg(feature = "tls")]
#[derive(Debug)]
struct NoteAsked {
    inner: Arc<dyn rustls::client::ResolvesClientCert>,
    asked: Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(feature = "tls")]
impl rustls::client::ResolvesClientCert for NoteAsked {
    fn resolve(&self, root_hint_subjects: &[&[u8]], sigschemes: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// Feeds direct reply-to deliveries to the calls waiting for them.
async fn pump_replies(mut consumer: lapin::Consumer, replies: Arc<Replies>, kick: Arc<Notify>) {
    while let Some(item) = consumer.next().await {
        match item {
            Ok(delivery) => replies.deliver(envelope_of(&delivery.properties, Bytes::from(delivery.data))),
            Err(_) => break,
        }
    }
    kick.notify_one();
}

/// Fails the calls whose requests the broker returned as unroutable (nobody consumes the
/// service's queue). The request channel has no publisher confirms (they cost about a sixth of
/// the request-reply throughput), and lapin then keeps returned messages until
/// `wait_for_confirms` drains them (at once, as no confirm is pending): so drain them often.
async fn watch_returns(rpc: Channel, replies: Arc<Replies>, last_request: Arc<AtomicU64>, opened: Instant) {
    while rpc.status().connected() {
        let since = millis_since(opened).saturating_sub(last_request.load(Ordering::Relaxed));
        let pause = if since < 1000 { RETURNS_BUSY } else { RETURNS_IDLE };
        tokio::time::sleep(pause).await;
        let Ok(returned) = rpc.wait_for_confirms().await else { break };
        for message in returned {
            unroutable(&replies, &message);
        }
    }
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A request the broker returned as unroutable: fail the call it belongs to (by the returned
/// message's own correlation id).
fn unroutable(replies: &Replies, returned: &BasicReturnMessage) {
    if let Some(id) = returned.delivery.properties.correlation_id() {
        let status = crate::client::not_delivered(Status::unavailable(format!("no server consumes {}", returned.delivery.routing_key)));
        replies.fail(id.as_str(), status);
    }
}

/// Watches the connection; when it drops, fails the calls in flight and reconnects.
async fn supervise(shared: Arc<Shared>, mut conn: Arc<Conn>) {
    let mut closed = shared.closed.subscribe();
    loop {
        watch_health(&conn, &mut closed).await;
        if *closed.borrow() {
            break;
        }
        shared.current.send_replace(None);
        shared.replies.fail_all(&Status::unavailable("the broker connection was lost"));
        // The connection may be half alive (only the request channel died): end it.
        let old = conn.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), old.connection.close(320, "reconnecting".into())).await;
        });
        let mut delay = BACKOFF_FIRST;
        conn = loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = closed.changed() => {}
            }
            if *closed.borrow() {
                return;
            }
            match open(&shared.url, &shared.replies, shared.tls.as_ref()).await {
                Ok(c) => break c,
                Err(_) => delay = (delay * 2).min(BACKOFF_MAX),
            }
        };
        shared.current.send_replace(Some(conn.clone()));
        if *closed.borrow() {
            break; // closed while connecting
        }
    }
    shared.current.send_replace(None);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.connection.close(200, "closed".into())).await;
}

/// Returns once `conn` is no longer usable or the backend is closed.
async fn watch_health(conn: &Conn, closed: &mut watch::Receiver<bool>) {
    let mut events = Some(conn.connection.events_listener().boxed());
    loop {
        if *closed.borrow() || !conn.healthy() {
            return;
        }
        tokio::select! {
            event = next_event(&mut events) => if event.is_none() { events = None },
            _ = conn.kick.notified() => {}
            _ = tokio::time::sleep(HEALTH_CHECK) => {}
            _ = closed.changed() => {}
        }
    }
}

async fn next_event<T>(events: &mut Option<BoxStream<'static, T>>) -> Option<T> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.rpc.status().connected()
    }

    /// An idle confirm-mode channel, or a new one.
    async fn confirm_channel(&self) -> Result<Channel, Status> {
        loop {
            let idle = self.pool.lock().unwrap().pop();
            match idle {
                Some(ch) if ch.status().connected() => return Ok(ch),
                Some(_) => continue,
                None => break,
            }
        }
        let ch = self.connection.create_channel().await.map_err(|e| broker_error("opening a channel", &e))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| broker_error("enabling publisher confirms", &e))?;
        Ok(ch)
    }

    /// Puts a confirm channel back, if it is still open and the pool is not full.
    fn give_back(&self, ch: Channel) {
        if ch.status().connected() {
            let mut pool = self.pool.lock().unwrap();
            if pool.len() < POOL_KEEP {
                pool.push(ch);
            }
        }
    }

    /// Declares `service`/`method`'s event queue and dead-letter queue, once per connection.
    async fn declare_events(&self, service: &str, method: &str) -> Result<(), Status> {
        let queue = wire::event_address(service, method);
        if self.declared.lock().unwrap().contains(&queue) {
            return Ok(());
        }
        let ch = self.confirm_channel().await?;
        let result = declare_event_queues(&ch, service, method).await;
        self.give_back(ch);
        result?;
        self.declared.lock().unwrap().insert(queue);
        Ok(())
    }

    /// Publishes to `queue` (default exchange, mandatory) and waits for the broker's confirm.
    async fn publish_confirmed(&self, queue: &str, properties: BasicProperties, body: &[u8]) -> Result<(), Status> {
        let key = short(queue, "queue name")?;
        let ch = self.confirm_channel().await?;
        let mandatory = BasicPublishOptions { mandatory: true, immediate: false };
        let result = async {
            let confirm = ch
                .basic_publish("".into(), key, mandatory, body, properties)
                .await
                .map_err(|e| broker_error("publishing the event", &e))?;
            match confirm.await {
                Ok(Confirmation::Ack(None)) => Ok(()),
                Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
                    // The queue is gone (deleted behind our back): declare it again next time.
                    self.declared.lock().unwrap().remove(queue);
                    Err(Status::unavailable(format!(
                        "the broker could not route the message to {queue} ({} {})",
                        returned.reply_code, returned.reply_text
                    )))
                }
                Ok(Confirmation::Nack(None)) => {
                    Err(Status::unavailable(format!("the broker refused the message for {queue} (nack)")))
                }
                Ok(Confirmation::NotRequested) => Err(Status::internal("publisher confirms are off on a confirm channel")),
                Err(e) => Err(broker_error("waiting for the broker's confirm", &e)),
            }
        }
        .await;
        self.give_back(ch);
        result
    }
}

async fn declare_event_queues(ch: &Channel, service: &str, method: &str) -> Result<(), Status> {
    for queue in [wire::event_address(service, method), wire::dead_letter_address(service, method)] {
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        ch.queue_declare(short(&queue, "queue name")?, durable, FieldTable::default())
            .await
            .map_err(|e| broker_error(&format!("declaring queue {queue}"), &e))?;
    }
    Ok(())
}

impl Shared {
    /// The live connection, or UNAVAILABLE at once.
    fn live(&self) -> Result<Arc<Conn>, Status> {
        if *self.closed.borrow() {
            return Err(Status::unavailable("the broker connection was closed"));
        }
        self.current
            .borrow()
            .clone()
            .ok_or_else(|| Status::unavailable("not connected to the broker (reconnecting)"))
    }
}

/// The hot paths, as plain async functions: [`super::Broker`] awaits them in place (lapin's
/// publish future alone is over 1 KiB; boxed per call, it would take malloc's arena lock every
/// time). The [`Backend`] methods box them.
impl AmqpBackend {
    /// Sends a request (see [`Backend::request`]).
    pub(crate) async fn send_request(&self, service: &str, mut env: Envelope) -> Result<(), Status> {
        let conn = self.shared.live()?;
        env.reply_to = Some(DIRECT_REPLY_TO.to_owned());
        let mut properties = properties_of(&env)?;
        if let Some(deadline) = env.deadline() {
            let left = deadline.duration_since(SystemTime::now()).unwrap_or_default().as_millis().max(1);
            properties = properties.with_expiration(left.to_string().into());
        }
        let queue = wire::request_queue(service);
        let mandatory = BasicPublishOptions { mandatory: true, immediate: false };
        let key = short(&queue, "request queue name")?;
        let sent = queue_now(conn.rpc.basic_publish("".into(), key, mandatory, &env.body, properties));
        conn.last_request.store(millis_since(conn.opened), Ordering::Relaxed);
        if let Err(e) = sent {
            conn.kick.notify_one();
            return Err(broker_error("sending the request", &e));
        }
        Ok(())
    }

    /// Sends a reply frame (see [`Backend::reply`]).
    pub(crate) async fn send_reply(&self, reply_to: &str, env: Envelope) -> Result<(), Status> {
        let conn = self.shared.live()?;
        let key = short(reply_to, "reply_to")?;
        let properties = properties_of(&env)?;
        let ch = conn.out.lock().unwrap().clone();
        let options = BasicPublishOptions::default();
        let first = queue_now(ch.basic_publish("".into(), key.clone(), options, &env.body, properties));
        match first {
            Ok(_) => Ok(()),
            Err(e) if !conn.connection.status().connected() => Err(broker_error("sending the reply", &e)),
            Err(_) => {
                // The reply channel alone was closed (a broker-side channel error): open another.
                let fresh = conn.connection.create_channel().await.map_err(|e| broker_error("opening a channel", &e))?;
                *conn.out.lock().unwrap() = Arc::new(fresh.clone());
                queue_now(fresh.basic_publish("".into(), key, BasicPublishOptions::default(), &env.body, properties_of(&env)?))
                    .map_err(|e| broker_error("sending the reply", &e))
            }
        }
    }
}

impl Backend for AmqpBackend {
    fn request<'a>(&'a self, service: &'a str, _method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(self.send_request(service, env))
    }

    fn publish<'a>(&'a self, service: &'a str, method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let conn = self.shared.live()?;
            let properties = properties_of(&env)?.with_delivery_mode(PERSISTENT);
            conn.declare_events(service, method).await?;
            conn.publish_confirmed(&wire::event_address(service, method), properties, &env.body).await
        })
    }

    fn reply<'a>(&'a self, reply_to: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(self.send_reply(reply_to, env))
    }

    fn serve_requests(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        self.serve(Subscription { service: spec.service, methods: spec.methods, prefetch: spec.prefetch, kind: Kind::Requests })
    }

    fn serve_events(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        self.serve(Subscription { service: spec.service, methods: spec.methods, prefetch: spec.prefetch, kind: Kind::Events })
    }

    fn cancel<'a>(&'a self, service: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let conn = self.shared.live()?;
            let properties = properties_of(&env)?;
            let key = short(&wire::cancel_address(service), "routing key")?;
            // On the reply channel (a channel error there costs a channel, not the connection's
            // calls); not mandatory: a cancel nobody listens for is dropped.
            let ch = conn.out.lock().unwrap().clone();
            queue_now(ch.basic_publish(CANCEL_EXCHANGE.into(), key, BasicPublishOptions::default(), &env.body, properties))
                .map_err(|e| broker_error("sending the cancel frame", &e))
        })
    }

    fn serve_cancels(&self, service: &'static str) -> BoxFuture<'_, Result<Cancels, Status>> {
        let subscribed = self.serve(Subscription { service, methods: Vec::new(), prefetch: 64, kind: Kind::Cancels });
        Box::pin(async move { Ok(Box::pin(subscribed.await?.map(|d| d.env)) as Cancels) })
    }

    fn take_dead_letters<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, Status>> {
        Box::pin(async move {
            let conn = self.shared.live()?;
            conn.declare_events(service, method).await?;
            let dlq = wire::dead_letter_address(service, method);
            let key = short(&dlq, "queue name")?;
            let ch = conn.confirm_channel().await?;
            let mut out = Vec::new();
            let result = async {
                while out.len() < max {
                    let got = ch
                        .basic_get(key.clone(), BasicGetOptions { no_ack: false })
                        .await
                        .map_err(|e| broker_error(&format!("reading {dlq}"), &e))?;
                    let Some(mut message) = got else { break };
                    let body = Bytes::from(std::mem::take(&mut message.delivery.data));
                    out.push(envelope_of(&message.delivery.properties, body));
                    settle(message.delivery.acker.ack(BasicAckOptions::default()).await, "acking a dead letter")?;
                }
                Ok::<_, Status>(())
            }
            .await;
            conn.give_back(ch);
            // On an error, the messages not acked yet go back to the queue when the channel closes.
            result.map(|()| out)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.closed.send_replace(true);
            if let Some(conn) = self.shared.current.send_replace(None) {
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.connection.close(200, "closed".into())).await;
            }
        })
    }
}

impl Drop for AmqpBackend {
    fn drop(&mut self) {
        // The supervisor sees this, closes the connection and ends; consumers end too.
        self.shared.closed.send_replace(true);
    }
}

/// What a server consumes: a service's request queue, its event methods' queues, or its cancel
/// frames.
struct Subscription {
    service: &'static str,
    methods: Vec<&'static str>,
    prefetch: u16,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requests,
    Events,
    /// A server-named queue of its own, bound to `amq.topic` with `sb.cancel.<service>`.
    Cancels,
}

impl Subscription {
    /// The queues consumed, with the event method each one carries (cancels: none by name; the
    /// broker names the server's own queue).
    fn queues(&self) -> Vec<(String, Option<&'static str>)> {
        match self.kind {
            Kind::Events => self.methods.iter().map(|m| (wire::event_address(self.service, m), Some(*m))).collect(),
            Kind::Requests => vec![(wire::request_queue(self.service), None)],
            Kind::Cancels => Vec::new(),
        }
    }
}

impl AmqpBackend {
    /// A server's deliveries, across reconnects. Subscribes at once when connected, so a broker
    /// that refuses the subscription (say, a queue declared with other arguments) fails the
    /// server's start; while disconnected, it subscribes when the connection is back.
    fn serve(&self, sub: Subscription) -> BoxFuture<'_, Result<Deliveries, Status>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut feed = Feed {
                current: shared.current.subscribe(),
                closed: shared.closed.subscribe(),
                shared,
                sub,
                session: None,
                pause: false,
            };
            let conn = feed.current.borrow_and_update().clone();
            if let Some(conn) = conn {
                match open_session(&conn, &feed.sub).await {
                    Ok(session) => feed.session = Some((conn, session)),
                    // The broker refused the subscription itself: tell the server.
                    Err(status) if conn.healthy() => return Err(status),
                    Err(_) => {
                        conn.kick.notify_one();
                        feed.pause = true;
                    }
                }
            }
            Ok(Box::pin(stream::unfold(feed, Feed::next)) as Deliveries)
        })
    }
}

/// One server's consumer: the deliveries of its queues, polled by the server's own loop (no
/// task in between), consuming again on a fresh channel whenever the channel or connection
/// fails, until the server drops it or the backend is closed.
struct Feed {
    shared: Arc<Shared>,
    sub: Subscription,
    current: watch::Receiver<Option<Arc<Conn>>>,
    closed: watch::Receiver<bool>,
    /// The consuming session, while there is one.
    session: Option<(Arc<Conn>, Session)>,
    /// Wait a little before consuming again (the last session failed).
    pause: bool,
}

/// One consuming session: a channel with the prefetch, the queues declared, a consumer on each.
struct Session {
    channel: Arc<Channel>,
    deliveries: stream::SelectAll<SessionStream>,
    /// Whether its deliveries are settled (cancel frames are consumed without acks).
    acks: bool,
}

/// A consumer's deliveries with the event method of its queue; `None` when the consumer ends.
type SessionStream = BoxStream<'static, (Option<&'static str>, Option<lapin::Result<lapin::message::Delivery>>)>;

impl Feed {
    async fn next(mut self) -> Option<(Delivery, Feed)> {
        loop {
            if *self.closed.borrow() {
                return None;
            }
            if let Some((conn, session)) = &mut self.session {
                let item = tokio::select! {
                    biased;
                    item = session.deliveries.next() => item,
                    _ = self.closed.changed() => return None,
                };
                if let Some((method, Some(Ok(d)))) = item {
                    let delivery = if session.acks {
                        to_delivery(&self.shared, &session.channel, self.sub.service, method, d)
                    } else {
                        // Consumed without acks: nothing to settle.
                        let env = envelope_of(&d.properties, Bytes::from(d.data));
                        Delivery { env, attempt: 1, redelivered: false, acker: Box::new(AmqpAcker { pending: None }) }
                    };
                    return Some((delivery, self));
                }
                // An error (the channel or connection failed), or a consumer ended (the broker
                // cancelled it): consume everything again on a fresh channel.
                conn.kick.notify_one();
                self.session = None;
                self.pause = true;
                continue;
            }
            if std::mem::take(&mut self.pause) {
                tokio::select! {
                    _ = self.current.changed() => {}
                    _ = tokio::time::sleep(RESUBSCRIBE) => {}
                    _ = self.closed.changed() => {}
                }
                continue;
            }
            let conn = self.current.borrow_and_update().clone();
            let Some(conn) = conn else {
                tokio::select! {
                    _ = self.current.changed() => {}
                    _ = self.closed.changed() => {}
                }
                continue;
            };
            match open_session(&conn, &self.sub).await {
                Ok(session) => self.session = Some((conn, session)),
                Err(_) => {
                    conn.kick.notify_one();
                    self.pause = true;
                }
            }
        }
    }
}

/// Opens a consuming session for `sub` on `conn`.
async fn open_session(conn: &Arc<Conn>, sub: &Subscription) -> Result<Session, Status> {
    let ch = Arc::new(conn.connection.create_channel().await.map_err(|e| broker_error("opening a channel", &e))?);
    ch.basic_qos(sub.prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(|e| broker_error("setting the prefetch", &e))?;
    let mut streams: Vec<SessionStream> = Vec::new();
    if sub.kind == Kind::Cancels {
        let own = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
        let queue = ch.queue_declare("".into(), own, FieldTable::default()).await.map_err(|e| broker_error("declaring a cancel queue", &e))?;
        let key = short(&wire::cancel_address(sub.service), "routing key")?;
        ch.queue_bind(queue.name().clone(), CANCEL_EXCHANGE.into(), key, QueueBindOptions::default(), FieldTable::default())
            .await
            .map_err(|e| broker_error(&format!("binding a cancel queue to {CANCEL_EXCHANGE}"), &e))?;
        let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let consumer = ch
            .basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default())
            .await
            .map_err(|e| broker_error("consuming cancel frames", &e))?;
        let end = stream::once(std::future::ready((None, None)));
        streams.push(consumer.map(move |item| (None, Some(item))).chain(end).boxed());
        return Ok(Session { channel: ch, deliveries: stream::select_all(streams), acks: false });
    }
    for (queue, method) in sub.queues() {
        let key = short(&queue, "queue name")?;
        match method {
            Some(method) => {
                declare_event_queues(&ch, sub.service, method).await?;
                conn.declared.lock().unwrap().insert(queue.clone());
            }
            None => {
                let transient = QueueDeclareOptions { auto_delete: true, ..QueueDeclareOptions::default() };
                ch.queue_declare(key.clone(), transient, FieldTable::default())
                    .await
                    .map_err(|e| broker_error(&format!("declaring queue {queue}"), &e))?;
            }
        }
        let consumer = ch
            .basic_consume(key, "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(|e| broker_error(&format!("consuming {queue}"), &e))?;
        // Each consumer's end shows as a `None` (the broker cancels one whose queue is deleted).
        let end = stream::once(std::future::ready((method, None)));
        streams.push(consumer.map(move |item| (method, Some(item))).chain(end).boxed());
    }
    Ok(Session { channel: ch, deliveries: stream::select_all(streams), acks: true })
}

fn to_delivery(
    shared: &Arc<Shared>,
    ch: &Arc<Channel>,
    service: &'static str,
    method: Option<&'static str>,
    d: lapin::message::Delivery,
) -> Delivery {
    let body = Bytes::from(d.data);
    let env = envelope_of(&d.properties, body.clone());
    let attempt = env.attempt();
    let copy = method.map(|method| EventCopy { shared: shared.clone(), service, method, properties: d.properties, body });
    let pending = Pending { tag: d.delivery_tag, channel: ch.clone(), copy };
    Delivery { env, attempt, redelivered: d.redelivered, acker: Box::new(AmqpAcker { pending: Some(pending) }) }
}

/// Settles one delivery.
struct AmqpAcker {
    pending: Option<Pending>,
}

struct Pending {
    tag: u64,
    /// The delivery's channel (settled on it; kept open until then, as closing it would requeue).
    channel: Arc<Channel>,
    /// For events: what a retry or a dead letter republishes.
    copy: Option<EventCopy>,
}

struct EventCopy {
    shared: Arc<Shared>,
    service: &'static str,
    method: &'static str,
    properties: BasicProperties,
    body: Bytes,
}

impl Pending {
    // Settled on the channel itself, not through `lapin::Acker`: the acker hands each ack to
    // lapin's internal RPC task, which spawns a task to send it. The ack is queued, not waited
    // for (see `queue_now`): a delivery settled on a channel that then fails is delivered again.
    fn ack(&self) -> Result<(), Status> {
        queue_now(self.channel.basic_ack(self.tag, BasicAckOptions::default())).map_err(|e| settle_error("acking", &e))
    }

    fn requeue(&self) -> Result<(), Status> {
        let requeue = BasicNackOptions { multiple: false, requeue: true };
        queue_now(self.channel.basic_nack(self.tag, requeue)).map_err(|e| settle_error("requeueing", &e))
    }
}

impl EventCopy {
    /// Publishes the copy (confirmed) to `queue` with `headers` set.
    async fn publish(&self, dead_letter: bool, headers: &[(String, String)]) -> Result<(), Status> {
        let conn = self.shared.live()?;
        conn.declare_events(self.service, self.method).await?;
        let properties = with_headers(self.properties.clone(), headers)?;
        let queue = if dead_letter {
            wire::dead_letter_address(self.service, self.method)
        } else {
            wire::event_address(self.service, self.method)
        };
        conn.publish_confirmed(&queue, properties, &self.body).await
    }
}

impl Acker for AmqpAcker {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Status>> {
        let pending = self.pending.take();
        Box::pin(async move {
            match pending {
                Some(p) => p.ack(),
                None => Ok(()),
            }
        })
    }

    fn retry(mut self: Box<Self>, delay: Duration, next_attempt: u32) -> BoxFuture<'static, Result<(), Status>> {
        let pending = self.pending.take();
        Box::pin(async move {
            let Some(mut p) = pending else { return Ok(()) };
            let Some(copy) = p.copy.take() else {
                // A request: the broker delivers it again.
                return p.requeue();
            };
            // The original stays unacked (so it is not lost) until its copy is in the queue.
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match copy.publish(false, &[(wire::ATTEMPT.to_owned(), next_attempt.to_string())]).await {
                    Ok(()) => drop(p.ack()),
                    Err(_) => drop(p.requeue()),
                }
            });
            Ok(())
        })
    }

    fn dead_letter(mut self: Box<Self>, extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        let pending = self.pending.take();
        Box::pin(async move {
            let Some(mut p) = pending else { return Ok(()) };
            let Some(copy) = p.copy.take() else { return p.ack() };
            match copy.publish(true, &extra).await {
                Ok(()) => p.ack(),
                Err(status) => {
                    let _ = p.requeue();
                    Err(status)
                }
            }
        })
    }
}

impl Drop for AmqpAcker {
    fn drop(&mut self) {
        // Unsettled: hand it back at once (closing the channel would too, but later).
        if let Some(p) = self.pending.take() {
            let _ = p.requeue();
        }
    }
}

/// Maps an ack's failure: the channel is gone, and the broker delivers the message again.
fn settle_error(what: &str, e: &lapin::Error) -> Status {
    Status::unavailable(format!("{what}: the delivery's channel is closed ({e}); the broker delivers the message again"))
}

/// Polls a lapin publish, ack or nack once, and lets it go. lapin queues the frames on that
/// first poll (before its first await), and the rest of the future only waits for lapin's I/O
/// thread to write them: awaiting that costs a task wake-up per message, and a write that fails
/// later is a lost connection, which the supervisor handles (calls in flight fail with
/// UNAVAILABLE; unsettled deliveries come back). A channel already closed fails at once.
fn queue_now<T>(op: impl std::future::Future<Output = lapin::Result<T>>) -> lapin::Result<()> {
    match op.now_or_never() {
        Some(Err(e)) => Err(e),
        Some(Ok(_)) | None => Ok(()),
    }
}

/// Maps an ack's outcome: `Ok(false)` means the channel is gone (the broker will redeliver).
fn settle(result: lapin::Result<bool>, what: &str) -> Result<(), Status> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Status::unavailable(format!(
            "{what}: the delivery's channel is closed; the broker delivers the message again"
        ))),
        Err(e) => Err(broker_error(what, &e)),
    }
}

/// A lapin error as a status: UNAVAILABLE for connection trouble, something closer for the
/// broker's refusals.
fn broker_error(what: &str, e: &lapin::Error) -> Status {
    let message = format!("{what}: {e}");
    if let ErrorKind::ProtocolError(amqp) = e.kind() {
        match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => return Status::failed_precondition(message),
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => return Status::permission_denied(message),
            _ => {}
        }
    }
    Status::unavailable(message)
}

/// An AMQP short string (at most 255 bytes).
fn short(s: &str, what: &str) -> Result<ShortString, Status> {
    ShortString::try_new(s).map_err(|_| Status::invalid_argument(format!("{what} `{s}` is longer than 255 bytes")))
}

/// The AMQP properties of an envelope (see the module docs for the mapping).
fn properties_of(env: &Envelope) -> Result<BasicProperties, Status> {
    let mut properties = BasicProperties::default();
    let mut content_type = false;
    let mut message_id = false;
    let mut method = false;
    let mut table = FieldTable::default();
    for (name, value) in &env.headers {
        match name.as_ref() {
            // The method rides in the `type` property: no headers table on the hot path.
            wire::METHOD if !method => {
                method = true;
                properties = properties.with_type(short(value, "sb-method")?);
            }
            wire::CONTENT_TYPE if !content_type => {
                content_type = true;
                properties = properties.with_content_type(short(value, "content-type")?);
            }
            wire::MESSAGE_ID if !message_id => {
                message_id = true;
                properties = properties.with_message_id(short(value, "message-id")?);
            }
            wire::CONTENT_TYPE | wire::MESSAGE_ID => {}
            _ => put(&mut table, name, value, true)?,
        }
    }
    if !table.inner().is_empty() {
        properties = properties.with_headers(table);
    }
    if let Some(to) = &env.reply_to {
        properties = properties.with_reply_to(short(to, "reply_to")?);
    }
    if let Some(id) = &env.correlation_id {
        properties = properties.with_correlation_id(short(id, "correlation id")?);
    }
    Ok(properties)
}

/// Sets header `name` in `table`; with `join`, a name already there keeps both values.
fn put(table: &mut FieldTable, name: &str, value: &str, join: bool) -> Result<(), Status> {
    let value = match table.inner().get(name) {
        Some(AMQPValue::LongString(old)) if join => format!("{}, {value}", String::from_utf8_lossy(old.as_bytes())),
        _ => value.to_owned(),
    };
    table.insert(short(name, "header name")?, AMQPValue::LongString(LongString::from(value)));
    Ok(())
}

/// `properties` with `headers` set (replacing same-named ones).
fn with_headers(mut properties: BasicProperties, headers: &[(String, String)]) -> Result<BasicProperties, Status> {
    let mut table = properties.headers().clone().unwrap_or_default();
    for (name, value) in headers {
        match name.as_str() {
            wire::CONTENT_TYPE => properties = properties.with_content_type(short(value, "content-type")?),
            wire::MESSAGE_ID => properties = properties.with_message_id(short(value, "message-id")?),
            _ => put(&mut table, name, value, false)?,
        }
    }
    Ok(properties.with_headers(table))
}

/// The envelope of a received message (see the module docs for the mapping).
fn envelope_of(properties: &BasicProperties, body: Bytes) -> Envelope {
    let table = properties.headers().as_ref();
    let mut headers = Vec::with_capacity(2 + table.map_or(0, |t| t.inner().len()));
    if let Some(ct) = properties.content_type() {
        headers.push((Cow::Borrowed(wire::CONTENT_TYPE), Cow::Owned(ct.as_str().to_owned())));
    }
    if let Some(id) = properties.message_id() {
        headers.push((Cow::Borrowed(wire::MESSAGE_ID), Cow::Owned(id.as_str().to_owned())));
    }
    for (name, value) in table.into_iter().flatten() {
        if let Some(value) = value_string(value) {
            headers.push((header_name(name.as_str()), small_number(value)));
        }
    }
    // The `type` property names the method; an `sb-method` header, if any, wins.
    if let Some(kind) = properties.kind() {
        if !headers.iter().any(|(k, _)| k == wire::METHOD) {
            headers.push((Cow::Borrowed(wire::METHOD), Cow::Owned(kind.as_str().to_owned())));
        }
    }
    Envelope {
        headers,
        body,
        reply_to: properties.reply_to().as_ref().map(|s| s.as_str().to_owned()),
        correlation_id: properties.correlation_id().as_ref().map(|s| s.as_str().to_owned()),
    }
}

/// A received header name, lower-cased; the protocol's own names are borrowed, not allocated.
fn header_name(name: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 8] = [
        wire::METHOD,
        wire::DEADLINE,
        wire::SEQ,
        wire::STATUS,
        wire::STATUS_MESSAGE,
        wire::STATUS_DETAILS,
        wire::ATTEMPT,
        wire::HTTP_STATUS,
    ];
    match KNOWN.iter().find(|k| **k == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_ascii_lowercase()),
    }
}

/// `value`, borrowed when it is a small number (`sb-seq`, `sb-status`, `sb-attempt`).
fn small_number(value: String) -> Cow<'static, str> {
    if value.len() <= 2 {
        if let Ok(n) = value.parse::<u8>() {
            if let Cow::Borrowed(s) = wire::number(u64::from(n)) {
                if s == value {
                    return Cow::Borrowed(s);
                }
            }
        }
    }
    Cow::Owned(value)
}

/// A header-table value as a string; `None` for nested tables and arrays.
fn value_string(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::DecimalValue(d) => decimal(d.value, d.scale),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        AMQPValue::Void => String::new(),
        AMQPValue::FieldArray(_) | AMQPValue::FieldTable(_) => return None,
    })
}

/// `value / 10^scale`, in decimal notation.
fn decimal(value: u32, scale: u8) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, ShortShortUInt};

    #[test]
    fn headers_map_to_properties_and_back() {
        let mut env = Envelope { body: Bytes::from_static(b"x"), ..Envelope::default() };
        env.push(wire::METHOD, "Echo");
        env.push(wire::CONTENT_TYPE, wire::PROTOBUF);
        env.push(wire::MESSAGE_ID, "m-1");
        env.push("tenant", "blue");
        env.push("tenant", "green");
        env.reply_to = Some("amq.rabbitmq.reply-to.abc".into());
        env.correlation_id = Some("c-1".into());
        let p = properties_of(&env).unwrap();
        assert_eq!(p.content_type().as_ref().unwrap().as_str(), wire::PROTOBUF);
        assert_eq!(p.message_id().as_ref().unwrap().as_str(), "m-1");
        let table = p.headers().as_ref().unwrap();
        assert!(!table.contains_key(wire::CONTENT_TYPE) && !table.contains_key(wire::MESSAGE_ID));
        let back = envelope_of(&p, env.body.clone());
        assert_eq!(back.header(wire::CONTENT_TYPE), Some(wire::PROTOBUF));
        assert_eq!(back.header(wire::MESSAGE_ID), Some("m-1"));
        assert_eq!(back.header(wire::METHOD), Some("Echo"));
        assert_eq!(back.header("tenant"), Some("blue, green"));
        assert_eq!(back.reply_to.as_deref(), Some("amq.rabbitmq.reply-to.abc"));
        assert_eq!(back.correlation_id.as_deref(), Some("c-1"));
    }

    #[test]
    fn foreign_header_values_become_strings() {
        let mut table = FieldTable::default();
        table.insert("Count".into(), AMQPValue::LongLongInt(-3));
        table.insert("flag".into(), AMQPValue::Boolean(true));
        table.insert("short".into(), AMQPValue::ShortString("s".into()));
        let price = lapin::types::DecimalValue { scale: 2 as ShortShortUInt, value: 5 };
        table.insert("price".into(), AMQPValue::DecimalValue(price));
        table.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Boolean(true)])));
        let p = BasicProperties::default().with_headers(table);
        let env = envelope_of(&p, Bytes::new());
        assert_eq!(env.header("count"), Some("-3"));
        assert_eq!(env.header("flag"), Some("true"));
        assert_eq!(env.header("short"), Some("s"));
        assert_eq!(env.header("price"), Some("0.05"));
        assert_eq!(env.header("x-death"), None);
    }

    #[test]
    fn long_names_and_ids_are_errors_not_panics() {
        let mut env = Envelope::default();
        env.push(wire::MESSAGE_ID, "k".repeat(300));
        assert_eq!(properties_of(&env).unwrap_err().code(), tonic::Code::InvalidArgument);
        let mut env = Envelope::default();
        env.push("h".repeat(256), "v");
        assert_eq!(properties_of(&env).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn copies_replace_headers() {
        let mut env = Envelope::default();
        env.push(wire::ATTEMPT, "1");
        env.push("tenant", "blue");
        let p = with_headers(properties_of(&env).unwrap(), &[(wire::ATTEMPT.into(), "2".into())]).unwrap();
        let back = envelope_of(&p, Bytes::new());
        assert_eq!(back.header(wire::ATTEMPT), Some("2"));
        assert_eq!(back.header("tenant"), Some("blue"));
        assert_eq!(decimal(12345, 2), "123.45");
        assert_eq!(decimal(7, 0), "7");
        assert!(matches!(small_number("0".into()), Cow::Borrowed("0")));
        assert!(matches!(small_number("05".into()), Cow::Owned(v) if v == "05"));
        assert!(matches!(small_number("+5".into()), Cow::Owned(v) if v == "+5"));
        assert_eq!(header_name("Sb-Seq"), "sb-seq");
    }
}
