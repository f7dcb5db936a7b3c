//! The NATS backend (`nats://host:4222`, `tls://…`; feature `nats`), on async-nats: core NATS
//! for request-reply, JetStream for events.
//!
//! ```text
//! request   client ──PUB sb.rpc.<service>.<method>  reply-to <inbox>.<correlation id>──▶ NATS
//!           servers: queue_subscribe("sb.rpc.<service>.*", group "sb.rpc.<service>")   (one of them gets it)
//! reply     server ──PUB <inbox>.<correlation id> (sb-seq, sb-status on the last frame)──▶ client
//!           the correlation id is the reply subject's last token; a 503 "no responders" there
//!           fails the call. One "<inbox>.*" subscription per (service, method) called. (Not
//!           async-nats's request multiplexer: its reply tokens are its own, and a caller that
//!           gives up must name its request in a cancel frame.)
//! cancel    client ──PUB sb.cancel.<service> (sb-cancel: <correlation id>)──▶ every server
//!           (plain subscription, no queue group); the one running that request stops it
//! event     publisher ──JetStream publish sb.event.<service>.<method>, waits for the PubAck──▶
//!           stream SB_<service> (subjects sb.event.<service>.* and sb.dlq.<service>.*, file
//!           storage, work-queue retention, 2 min duplicate window on Nats-Msg-Id)
//!           ──▶ durable pull consumer "events" (filter sb.event.<service>.*, explicit acks,
//!           ack_wait and max_ack_pending from the server's options) ──▶ QueueServer
//! retry     NAK with a delay; the attempt is JetStream's delivery count
//! dead      publish to sb.dlq.<service>.<method> (PubAck), then ack; `Broker::dead_letters`
//!           reads them through a short-lived consumer filtered on that subject
//! discovery $SRV.PING / $SRV.INFO / $SRV.STATS [.<micro name>[.<id>]] answered per server (NATS
//!           micro, ADR-32; micro.rs), plain subscriptions, for as long as it serves
//! ```
//!
//! Headers: every envelope header travels as a NATS header of the same (lower-case) name, except
//! `message-id`, which travels as `Nats-Msg-Id` so JetStream deduplicates republished events.
//! Received headers come back lower-cased (`nats-msg-id` → `message-id`). A dead letter carries
//! `Nats-Msg-Id: dlq:<message id>` (JetStream deduplicates message ids across the whole stream,
//! and the event itself still holds the plain id); reading it back strips the `dlq:` prefix.
//!
//! Guarantees: requests are core NATS, so at most once: a request or reply in flight when the
//! connection drops is lost (the caller gets UNAVAILABLE, or DEADLINE_EXCEEDED), and a server that
//! dies mid-call does not hand the request to another one (its acks are no-ops). Events are at
//! least once: stored before `publish` returns, removed only when acked; an unacked delivery is
//! redelivered after `ack_wait` (at once when the server drops it unsettled).
//!
//! Consumer settings: all servers of a service share its durable consumer `events`, so
//! `max_ack_pending` (the server's `prefetch`) bounds the unacked events of all of them together,
//! and the server started last sets `ack_wait` and `max_ack_pending` (JetStream updates the
//! consumer on create). Each server also pulls at most `prefetch` messages at a time.
//!
//! TLS: `tls://` URLs (and `nats://` ones to a server that requires TLS) use async-nats's rustls
//! (ring), verifying against the system's root store. With a `ClientTls` (`Broker::connect_tls`,
//! feature `tls`), TLS is required whatever the scheme, and the handshake runs on the
//! `ClientTls`'s rustls configuration (its roots only, its client certificate), the one the gRPC
//! and REST clients use; its server name, if set, is verified instead of the URL's host.
//!
//! Reconnects: async-nats reconnects by itself and renews the core subscriptions; on each
//! disconnect the calls in flight fail with UNAVAILABLE at once, and while disconnected a call
//! fails at once instead of queueing. The JetStream consumer loop re-creates its stream and
//! consumer (with backoff) whenever its message stream fails, feeding the same server.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::{Client, ConnectOptions, Event, HeaderMap, HeaderName, HeaderValue, ServerAddr, StatusCode, Subject};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::backend::{Acker, Backend, Cancels, ConsumerSpec, Deliveries, Delivery, Replies};
use super::wire::{self, Envelope, Str};
use super::ClientTls;

/// Name of each service's durable event consumer (shared by all its servers).
const EVENTS_CONSUMER: &str = "events";
/// Prefix of a dead letter's `Nats-Msg-Id`.
const DLQ_ID_PREFIX: &str = "dlq:";
/// JetStream API calls and PubAcks give up after this.
const JS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `publish` waits for a lost connection to come back before failing.
const RECONNECT_WAIT: Duration = Duration::from_secs(5);
/// JetStream's duplicate window on the streams we create.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// One connection to a NATS server (or cluster).
pub(crate) struct NatsBackend {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    js: jetstream::Context,
    /// Reply routes (for streaming calls).
    routes: ByMethod<Arc<Route>>,
    /// Request subjects.
    subjects: ByMethod<Subject>,
    /// Serializes route creation (one subscription per route).
    route_creation: tokio::sync::Mutex<()>,
    /// Services whose stream this connection has made sure of.
    streams: Mutex<HashMap<String, Arc<jetstream::stream::Stream>>>,
    /// One dead-letter reader at a time (a work-queue stream allows one consumer per subject).
    dead_letters: tokio::sync::Mutex<()>,
    replies: Arc<Replies>,
    shutdown: watch::Sender<bool>,
}

/// Where one method's requests go and where their replies come back.
struct Route {
    /// `sb.rpc.<service>.<method>`.
    subject: Subject,
    /// A fresh inbox; replies arrive on `<inbox>.<correlation id>`.
    inbox: String,
}

pub(crate) async fn connect(url: &str, replies: Arc<Replies>, tls: Option<&ClientTls>) -> Result<NatsBackend, String> {
    let addrs = url
        .split(',')
        .map(|u| u.trim().parse::<ServerAddr>().map_err(|e| format!("invalid NATS URL: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let on_event = replies.clone();
    let options = match tls {
        None => ConnectOptions::new(),
        #[cfg(feature = "tls")]
        Some(tls) => ConnectOptions::new().require_tls(true).tls_client_config(tls_config(tls)?),
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
    };
    let client = options
        .name("switchboard")
        // Come back soon after a broker restart: at once, then 50 ms doubling up to 1 s.
        .reconnect_delay_callback(|attempts| match attempts {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis(50u64 << (n - 2).min(5)).min(Duration::from_secs(1)),
        })
        .event_callback(move |event| {
            let replies = on_event.clone();
            async move {
                if let Event::Disconnected = event {
                    replies.fail_all(&Status::unavailable("the broker connection was lost"));
                }
            }
        })
        .connect(addrs)
        .await
        .map_err(|e| e.to_string())?;
    let js = jetstream::ContextBuilder::new().timeout(JS_TIMEOUT).build(client.clone());
    let (shutdown, _) = watch::channel(false);
    Ok(NatsBackend {
        inner: Arc::new(Inner {
            client,
            js,
            routes: ByMethod::default(),
            subjects: ByMethod::default(),
            route_creation: tokio::sync::Mutex::default(),
            streams: Mutex::default(),
            dead_letters: tokio::sync::Mutex::default(),
            replies,
            shutdown,
        }),
    })
}

/// The rustls configuration of `tls` for async-nats, which verifies the server's certificate
/// against the URL's host: with a server name set, a verifier that checks that name instead.
#[cfg(feature = "tls")]
fn tls_config(tls: &ClientTls) -> Result<rustls::ClientConfig, String> {
    let (config, roots, server_name) = tls.parts();
    let mut config = (**config).clone();
    if let Some(name) = server_name {
        let provider = config.crypto_provider().clone();
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
            .build()
            .map_err(|e| format!("TLS settings: {e}"))?;
        config.dangerous().set_certificate_verifier(Arc::new(VerifyAs { inner, name: name.clone() }));
    }
    Ok(config)
}

/// Verifies server certificates as `inner` does, for `name` whatever name the connection asks.
#[cfg(feature = "tls")]
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl rustls::client::danger::ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Drop for NatsBackend {
    fn drop(&mut self) {
        // Ends the reply routers and consumer loops, which hold clones of the client.
        self.inner.shutdown.send_replace(true);
    }
}

/// Resolves when `shutdown` is set (or its sender is gone).
async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

fn unavailable(what: &str, err: impl Display) -> Status {
    Status::unavailable(format!("{what}: {err}"))
}

fn publish_error(what: &str, err: async_nats::PublishError) -> Status {
    match err.kind() {
        async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
            Status::resource_exhausted(format!("{what}: {err}"))
        }
        async_nats::client::PublishErrorKind::InvalidSubject => Status::invalid_argument(format!("{what}: {err}")),
        _ => unavailable(what, err),
    }
}

/// Whether `token` can stand as one subject token.
fn is_token(token: &str) -> bool {
    !token.is_empty() && !token.contains(|c: char| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

/// Envelope headers as NATS headers (`message-id` → `Nats-Msg-Id`).
fn to_headers(headers: Vec<(Str, Str)>) -> Result<HeaderMap, Status> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if value.contains(['\r', '\n']) {
            return Err(Status::invalid_argument(format!("header `{name}`: NATS header values cannot contain line breaks")));
        }
        let name = match name {
            _ if name == wire::MESSAGE_ID => NATS_MESSAGE_ID,
            // The protocol's own names: no allocation.
            Cow::Borrowed(name) if is_header_name(name) => HeaderName::from_static(name),
            name => HeaderName::try_from(name.as_ref())
                .map_err(|e| Status::invalid_argument(format!("header `{name}` cannot be carried by NATS: {e}")))?,
        };
        map.append(name, HeaderValue::from(value.into_owned()));
    }
    Ok(map)
}

/// Whether NATS takes `name` as a header name as it is.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// The header names of the wire format, to receive them without allocating.
const KNOWN_NAMES: [&str; 10] = [
    wire::METHOD,
    wire::CONTENT_TYPE,
    wire::MESSAGE_ID,
    wire::DEADLINE,
    wire::ATTEMPT,
    wire::STATUS,
    wire::STATUS_MESSAGE,
    wire::STATUS_DETAILS,
    wire::SEQ,
    wire::HTTP_STATUS,
];

/// A received header name, lower-cased (`Nats-Msg-Id` → `message-id`).
fn received_name(name: &str) -> Str {
    if name.eq_ignore_ascii_case("nats-msg-id") {
        return Cow::Borrowed(wire::MESSAGE_ID);
    }
    match KNOWN_NAMES.iter().find(|known| known.eq_ignore_ascii_case(name)) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_ascii_lowercase()),
    }
}

/// A received header value (common ones without allocating).
fn received_value(value: &str) -> Str {
    match value {
        wire::PROTOBUF => Cow::Borrowed(wire::PROTOBUF),
        wire::JSON => Cow::Borrowed(wire::JSON),
        v if (1..=2).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) => wire::number(v.parse().unwrap_or_default()),
        v => Cow::Owned(v.to_owned()),
    }
}

/// A received message as an envelope: headers lower-cased (`nats-msg-id` → `message-id`).
fn envelope_of(headers: Option<&HeaderMap>, body: bytes::Bytes) -> Envelope {
    let mut env = Envelope { body, ..Envelope::default() };
    if let Some(headers) = headers {
        env.headers.reserve(headers.len());
        for (name, values) in headers.iter() {
            let name = received_name(name.as_ref());
            for value in values {
                env.headers.push((name.clone(), received_value(value.as_str())));
            }
        }
    }
    env
}

/// `sb.rpc.<service>.<method>`, if every part of it is a valid subject token.
fn checked_subject(service: &str, method: &str) -> Result<String, Status> {
    let subject = wire::request_subject(service, method);
    if !is_token(method) || service.split('.').any(|t| !is_token(t)) {
        return Err(Status::invalid_argument(format!("`{subject}` is not a valid NATS subject")));
    }
    Ok(subject)
}

/// Values by service, then method (looked up without allocating a key).
struct ByMethod<T>(RwLock<HashMap<String, HashMap<String, T>>>);

impl<T> Default for ByMethod<T> {
    fn default() -> Self {
        ByMethod(RwLock::default())
    }
}

impl<T: Clone> ByMethod<T> {
    fn get(&self, service: &str, method: &str) -> Option<T> {
        self.0.read().unwrap().get(service).and_then(|m| m.get(method)).cloned()
    }

    fn insert(&self, service: &str, method: &str, value: T) {
        self.0.write().unwrap().entry(service.to_owned()).or_default().insert(method.to_owned(), value);
    }
}

impl Inner {
    /// The request subject of `service`/`method`.
    fn subject(&self, service: &str, method: &str) -> Result<Subject, Status> {
        if let Some(subject) = self.subjects.get(service, method) {
            return Ok(subject);
        }
        let subject = Subject::from(checked_subject(service, method)?);
        self.subjects.insert(service, method, subject.clone());
        Ok(subject)
    }

    /// The reply route of `service`/`method`, subscribing its inbox the first time.
    async fn route(&self, service: &str, method: &str) -> Result<Arc<Route>, Status> {
        if let Some(route) = self.routes.get(service, method) {
            return Ok(route);
        }
        let _creating = self.route_creation.lock().await;
        if let Some(route) = self.routes.get(service, method) {
            return Ok(route);
        }
        let subject = self.subject(service, method)?;
        let inbox = self.client.new_inbox();
        let subscriber = self
            .client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| unavailable("subscribing to the reply inbox", e))?;
        tokio::spawn(route_replies(subscriber, subject.to_string(), self.replies.clone(), self.shutdown.subscribe()));
        let route = Arc::new(Route { subject, inbox });
        self.routes.insert(service, method, route.clone());
        Ok(route)
    }

    /// Waits (a little) for a lost connection to come back.
    async fn connected(&self, wait: Duration) -> Result<(), Status> {
        let until = Instant::now() + wait;
        loop {
            if self.client.connection_state() == State::Connected {
                return Ok(());
            }
            if *self.shutdown.borrow() {
                return Err(Status::unavailable("the broker connection was closed"));
            }
            if Instant::now() >= until {
                return Err(Status::unavailable("not connected to the NATS server"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `service`'s stream, created if missing (once per connection, unless it disappears).
    async fn stream(&self, service: &str) -> Result<Arc<jetstream::stream::Stream>, Status> {
        if let Some(stream) = self.streams.lock().unwrap().get(service) {
            return Ok(stream.clone());
        }
        let name = wire::stream_name(service);
        let config = jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![wire::event_address(service, "*"), wire::dead_letter_address(service, "*")],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            storage: jetstream::stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let stream = match self.js.get_or_create_stream(config.clone()).await {
            Ok(stream) => stream,
            // Another process may have created it between our lookup and our create.
            Err(first) => self
                .js
                .get_stream(&name)
                .await
                .map_err(|_| unavailable(&format!("creating the JetStream stream {name} (is JetStream enabled?)"), first))?,
        };
        let stream = Arc::new(stream);
        self.streams.lock().unwrap().insert(service.to_owned(), stream.clone());
        Ok(stream)
    }

    fn forget_stream(&self, service: &str) {
        self.streams.lock().unwrap().remove(service);
    }

    /// The durable event consumer of `spec.service`, created (or updated) as `spec` says.
    async fn events_consumer(&self, spec: &ConsumerSpec) -> Result<jetstream::consumer::PullConsumer, Status> {
        let stream = self.stream(spec.service).await?;
        let config = pull::Config {
            durable_name: Some(EVENTS_CONSUMER.to_owned()),
            filter_subject: wire::event_address(spec.service, "*"),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_ack_pending: i64::from(spec.prefetch.max(1)),
            // Unlimited: the server dead-letters after its own max_attempts.
            max_deliver: -1,
            ..Default::default()
        };
        match stream.create_consumer(config).await {
            Ok(consumer) => Ok(consumer),
            Err(err) => {
                // The stream may have been deleted under us: forget it, so the next try re-creates it.
                self.forget_stream(spec.service);
                // Or the consumer exists with other settings (a server with other options).
                match stream.get_consumer(EVENTS_CONSUMER).await {
                    Ok(consumer) => Ok(consumer),
                    Err(_) => Err(unavailable(
                        &format!("creating the JetStream consumer {EVENTS_CONSUMER} on {}", wire::stream_name(spec.service)),
                        err,
                    )),
                }
            }
        }
    }

    /// Publishes to a stream subject and waits for the PubAck.
    async fn js_publish(&self, service: &str, subject: String, headers: HeaderMap, body: bytes::Bytes) -> Result<(), Status> {
        self.connected(RECONNECT_WAIT).await?;
        self.stream(service).await?;
        let mut retried = false;
        loop {
            let sent = self.js.publish_with_headers(subject.clone(), headers.clone(), body.clone()).await;
            let result = match sent {
                Ok(ack) => tokio::time::timeout(JS_TIMEOUT + Duration::from_secs(1), ack)
                    .await
                    .unwrap_or_else(|_| Err(jetstream::context::PublishError::new(jetstream::context::PublishErrorKind::TimedOut))),
                Err(e) => Err(e),
            };
            return match result {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::StreamNotFound && !retried => {
                    // Deleted since we made sure of it: make it again, once.
                    retried = true;
                    self.forget_stream(service);
                    self.stream(service).await?;
                    continue;
                }
                Err(e) => match e.kind() {
                    jetstream::context::PublishErrorKind::TimedOut => {
                        Err(Status::unavailable(format!("the broker did not acknowledge {subject} in time")))
                    }
                    jetstream::context::PublishErrorKind::StreamNotFound => {
                        Err(Status::unavailable(format!("no JetStream stream takes {subject}")))
                    }
                    jetstream::context::PublishErrorKind::MaxPayloadExceeded => {
                        Err(Status::resource_exhausted(format!("publishing to {subject}: {e}")))
                    }
                    _ => Err(unavailable(&format!("publishing to {subject}"), e)),
                },
            };
        }
    }
}

/// Routes the replies of one method's calls to their callers.
async fn route_replies(
    mut subscriber: async_nats::Subscriber,
    subject: String,
    replies: Arc<Replies>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            biased;
            m = subscriber.next() => m,
            _ = shut_down(&mut shutdown) => break,
        };
        let Some(message) = message else { break };
        let Some(id) = message.subject.rsplit('.').next() else { continue };
        match message.status {
            Some(StatusCode::NO_RESPONDERS) => {
                replies.fail(id, crate::client::not_delivered(Status::unavailable(format!("no server subscribes to {subject}"))));
            }
            None | Some(StatusCode::OK) => {
                let id = id.to_owned();
                let mut env = envelope_of(message.headers.as_ref(), message.payload);
                env.correlation_id = Some(id);
                replies.deliver(env);
            }
            // Other status messages are not replies.
            Some(_) => {}
        }
    }
}

impl NatsBackend {
    /// The connection (NATS micro discovery answers and asks through it).
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Set when the connection is closed.
    pub(crate) fn shutdown(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Sends a request (see [`Backend::request`]): to `sb.rpc.<service>.<method>`, with the reply
    /// subject `<inbox>.<correlation id>` of the method's route.
    pub(crate) async fn send_request(&self, service: &str, method: &str, mut env: Envelope) -> Result<(), Status> {
        let inner = &self.inner;
        // Fail fast rather than queue behind a reconnect.
        if inner.client.connection_state() != State::Connected {
            return Err(Status::unavailable("not connected to the NATS server"));
        }
        let route = inner.route(service, method).await?;
        let reply = match env.correlation_id.as_deref() {
            Some(id) if is_token(id) => {
                let mut subject = String::with_capacity(route.inbox.len() + 1 + id.len());
                subject.push_str(&route.inbox);
                subject.push('.');
                subject.push_str(id);
                subject
            }
            _ => return Err(Status::internal("a request needs a correlation id that is one subject token")),
        };
        // The subject names the method, and the service fixes the encoding: neither needs a
        // header, and a request without headers skips NATS's header block entirely.
        env.headers.retain(|(k, _)| k != wire::METHOD && k != wire::CONTENT_TYPE);
        let sent = if env.headers.is_empty() {
            inner.client.publish_with_reply(route.subject.clone(), reply, env.body).await
        } else {
            let headers = to_headers(std::mem::take(&mut env.headers))?;
            inner.client.publish_with_reply_and_headers(route.subject.clone(), reply, headers, env.body).await
        };
        sent.map_err(|e| publish_error("sending the request", e))
    }

    /// Sends a reply frame (see [`Backend::reply`]).
    pub(crate) async fn send_reply(&self, reply_to: &str, env: Envelope) -> Result<(), Status> {
        // The caller has been failed already (UNAVAILABLE): don't queue behind a reconnect.
        if self.inner.client.connection_state() != State::Connected {
            return Err(Status::unavailable("not connected to the NATS server"));
        }
        let mut env = env;
        // A service has one encoding, so replies leave it out; an OpenAPI reply (it carries
        // `sb-http-status`) keeps its response's media type.
        if !env.headers.iter().any(|(k, _)| k == wire::HTTP_STATUS) {
            env.headers.retain(|(k, _)| k != wire::CONTENT_TYPE);
        }
        let sent = if env.headers.is_empty() {
            self.inner.client.publish(reply_to.to_owned(), env.body).await
        } else {
            let headers = to_headers(env.headers)?;
            self.inner.client.publish_with_headers(reply_to.to_owned(), headers, env.body).await
        };
        sent.map_err(|e| publish_error("sending the reply", e))
    }
}

impl Backend for NatsBackend {
    fn request<'a>(&'a self, service: &'a str, method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(self.send_request(service, method, env))
    }

    fn publish<'a>(&'a self, service: &'a str, method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let headers = to_headers(env.headers)?;
            self.inner.js_publish(service, wire::event_address(service, method), headers, env.body).await
        })
    }

    fn reply<'a>(&'a self, reply_to: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(self.send_reply(reply_to, env))
    }

    fn serve_requests(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            let subscriber = inner
                .client
                .queue_subscribe(wire::request_subject(spec.service, "*"), wire::request_queue(spec.service))
                .await
                .map_err(|e| unavailable(&format!("subscribing to {}", wire::request_subject(spec.service, "*")), e))?;
            let feed = RequestFeed {
                subscriber,
                permits: Arc::new(Semaphore::new(usize::from(spec.prefetch.max(1)))),
                methods: spec.methods,
                shutdown: inner.shutdown.subscribe(),
            };
            Ok(Box::pin(futures_util::stream::unfold(feed, RequestFeed::next)) as Deliveries)
        })
    }

    fn serve_events(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>> {
        Box::pin(async move {
            let inner = self.inner.clone();
            // The first attempt is the caller's: a broker without JetStream fails `serve` at once.
            let consumer = inner.events_consumer(&spec).await?;
            let messages = open_messages(&consumer, &spec).await?;
            let (tx, rx) = mpsc::channel(usize::from(spec.prefetch.max(1)));
            tokio::spawn(feed_events(inner, spec, messages, tx));
            Ok(super::backend::deliveries(rx))
        })
    }

    fn cancel<'a>(&'a self, service: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let client = &self.inner.client;
            if client.connection_state() != State::Connected {
                return Err(Status::unavailable("not connected to the NATS server"));
            }
            let headers = to_headers(env.headers)?;
            client
                .publish_with_headers(wire::cancel_address(service), headers, env.body)
                .await
                .map_err(|e| publish_error("sending the cancel frame", e))
        })
    }

    fn serve_cancels(&self, service: &'static str) -> BoxFuture<'_, Result<Cancels, Status>> {
        Box::pin(async move {
            let inner = &self.inner;
            // No queue group: every server hears every cancel frame.
            let subject = wire::cancel_address(service);
            let subscriber = inner.client.subscribe(subject.clone()).await.map_err(|e| unavailable(&format!("subscribing to {subject}"), e))?;
            let shutdown = inner.shutdown.subscribe();
            let frames = futures_util::stream::unfold((subscriber, shutdown), |(mut subscriber, mut shutdown)| async move {
                let message = tokio::select! {
                    biased;
                    m = subscriber.next() => m?,
                    _ = shut_down(&mut shutdown) => return None,
                };
                let env = envelope_of(message.headers.as_ref(), message.payload);
                Some((env, (subscriber, shutdown)))
            });
            Ok(Box::pin(frames) as Cancels)
        })
    }

    fn take_dead_letters<'a>(&'a self, service: &'a str, method: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<Envelope>, Status>> {
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let inner = &self.inner;
            let _one_at_a_time = inner.dead_letters.lock().await;
            inner.connected(RECONNECT_WAIT).await?;
            let stream = inner.stream(service).await?;
            let subject = wire::dead_letter_address(service, method);
            let name = format!("dlq-{}", inner.client.new_inbox().rsplit('.').next().unwrap_or("reader"));
            let consumer: jetstream::consumer::PullConsumer = stream
                .create_consumer(pull::Config {
                    name: Some(name.clone()),
                    filter_subject: subject.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    inner.forget_stream(service);
                    unavailable(&format!("reading {subject}"), e)
                })?;
            let result = read_dead_letters(&consumer, max).await;
            // Leaves the subject free for the next reader (a work queue takes one per subject).
            let _ = stream.delete_consumer(&name).await;
            result.map_err(|e| unavailable(&format!("reading {subject}"), e))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.shutdown.send_replace(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.client.drain()).await;
        })
    }
}

async fn read_dead_letters(consumer: &jetstream::consumer::PullConsumer, max: usize) -> Result<Vec<Envelope>, String> {
    let mut batch = consumer
        .fetch()
        .max_messages(max)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let mut env = envelope_of(message.headers.as_ref(), message.payload.clone());
        if let Some(slot) = env.headers.iter_mut().find(|(k, _)| k == wire::MESSAGE_ID) {
            if let Some(id) = slot.1.strip_prefix(DLQ_ID_PREFIX) {
                slot.1 = Cow::Owned(id.to_owned());
            }
        }
        message.double_ack().await.map_err(|e| e.to_string())?;
        out.push(env);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// One service's requests, handed out (straight from the subscription, in the server's loop)
/// while fewer than `prefetch` are unsettled. Dropping it unsubscribes: other servers in the
/// queue group take over.
struct RequestFeed {
    subscriber: async_nats::Subscriber,
    permits: Arc<Semaphore>,
    /// The methods served, to name a request's method without allocating.
    methods: Vec<&'static str>,
    shutdown: watch::Receiver<bool>,
}

impl RequestFeed {
    async fn next(mut self) -> Option<(Delivery, RequestFeed)> {
        loop {
            let permit = match self.permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => tokio::select! {
                    biased;
                    p = self.permits.clone().acquire_owned() => p.ok()?,
                    _ = shut_down(&mut self.shutdown) => return None,
                },
            };
            let message = tokio::select! {
                biased;
                m = self.subscriber.next() => m?,
                _ = shut_down(&mut self.shutdown) => return None,
            };
            if message.status.is_some_and(|s| s != StatusCode::OK) {
                continue;
            }
            let mut env = envelope_of(message.headers.as_ref(), message.payload);
            // The subject's last token names the method (`sb.rpc.<service>.<method>`); a
            // `sb-method` header, if sent, says the same.
            if env.header(wire::METHOD).is_none() {
                if let Some(token) = message.subject.rsplit('.').next() {
                    let method = match self.methods.iter().find(|m| **m == token) {
                        Some(m) => Cow::Borrowed(*m),
                        None => Cow::Owned(token.to_owned()),
                    };
                    env.headers.push((Cow::Borrowed(wire::METHOD), method));
                }
            }
            // Replies go to the reply subject, which carries the correlation id itself.
            env.reply_to = message.reply.map(|r| r.as_str().to_owned());
            let attempt = env.attempt();
            let delivery = Delivery { env, attempt, redelivered: false, acker: Box::new(RequestAcker { _permit: permit }) };
            return Some((delivery, self));
        }
    }
}

/// Core NATS has no acks: settling a request only frees its prefetch slot.
struct RequestAcker {
    _permit: OwnedSemaphorePermit,
}

impl Acker for RequestAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), Status>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn retry(self: Box<Self>, _delay: Duration, _next_attempt: u32) -> BoxFuture<'static, Result<(), Status>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn dead_letter(self: Box<Self>, _extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The consumer's message stream, pulling at most `prefetch` at a time.
async fn open_messages(
    consumer: &jetstream::consumer::PullConsumer,
    spec: &ConsumerSpec,
) -> Result<pull::Stream, Status> {
    consumer
        .stream()
        .max_messages_per_batch(usize::from(spec.prefetch.max(1)))
        .expires(Duration::from_secs(30))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| unavailable(&format!("pulling from {}", wire::stream_name(spec.service)), e))
}

/// Feeds a service's events to its server across broker restarts: whenever the message stream
/// fails or ends, re-creates the stream and consumer (with backoff) and goes on, until the server
/// goes away or the connection is closed.
async fn feed_events(inner: Arc<Inner>, spec: ConsumerSpec, first: pull::Stream, tx: mpsc::Sender<Delivery>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut messages = Some(first);
    let mut backoff = Duration::from_millis(100);
    'outer: loop {
        let mut stream = match messages.take() {
            Some(s) => s,
            None => {
                let opened = async {
                    let consumer = inner.events_consumer(&spec).await?;
                    open_messages(&consumer, &spec).await
                };
                let opened = tokio::select! {
                    o = opened => o,
                    _ = tx.closed() => break,
                    _ = shut_down(&mut shutdown) => break,
                };
                match opened {
                    Ok(s) => s,
                    Err(_) => {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = tx.closed() => break,
                            _ = shut_down(&mut shutdown) => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = tx.closed() => break 'outer,
                _ = shut_down(&mut shutdown) => break 'outer,
            };
            let message = match next {
                Some(Ok(message)) => message,
                // Missed heartbeats, a failed pull, a deleted consumer, the end: start over.
                Some(Err(_)) | None => break,
            };
            backoff = Duration::from_millis(100);
            let delivery = event_delivery(&inner, spec.service, message);
            if tx.send(delivery).await.is_err() {
                break 'outer;
            }
        }
    }
}

fn event_delivery(inner: &Arc<Inner>, service: &'static str, message: jetstream::Message) -> Delivery {
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    let method_of_subject = message.subject.rsplit('.').next().unwrap_or_default().to_owned();
    let (message, acker) = message.split();
    let env = envelope_of(message.headers.as_ref(), message.payload);
    let attempt = u32::try_from(delivered.max(1)).unwrap_or(u32::MAX);
    let method = env.header(wire::METHOD).filter(|m| is_token(m)).map_or(method_of_subject, str::to_owned);
    Delivery {
        attempt,
        redelivered: delivered > 1,
        acker: Box::new(EventAcker { inner: inner.clone(), acker: Some(acker), env: env.clone(), service, method }),
        env,
    }
}

/// Settles one JetStream delivery.
struct EventAcker {
    inner: Arc<Inner>,
    acker: Option<jetstream::message::Acker>,
    env: Envelope,
    service: &'static str,
    method: String,
}

impl Acker for EventAcker {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Status>> {
        let acker = self.acker.take();
        Box::pin(async move {
            match acker {
                Some(acker) => acker.double_ack().await.map_err(|e| unavailable("acknowledging the event", e)),
                None => Ok(()),
            }
        })
    }

    fn retry(mut self: Box<Self>, delay: Duration, _next_attempt: u32) -> BoxFuture<'static, Result<(), Status>> {
        // JetStream counts the attempts itself.
        let acker = self.acker.take();
        Box::pin(async move {
            match acker {
                Some(acker) => acker.ack_with(AckKind::Nak(Some(delay))).await.map_err(|e| unavailable("handing the event back", e)),
                None => Ok(()),
            }
        })
    }

    fn dead_letter(mut self: Box<Self>, extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>> {
        let acker = self.acker.take();
        let mut env = std::mem::take(&mut self.env);
        let inner = self.inner.clone();
        let service = self.service;
        let subject = wire::dead_letter_address(service, &self.method);
        Box::pin(async move {
            let Some(acker) = acker else { return Ok(()) };
            for (name, value) in extra {
                env.set(&name, value);
            }
            if let Some(slot) = env.headers.iter_mut().find(|(k, _)| k == wire::MESSAGE_ID) {
                slot.1 = Cow::Owned(format!("{DLQ_ID_PREFIX}{}", slot.1));
            }
            let headers = to_headers(env.headers)?;
            if let Err(status) = inner.js_publish(service, subject, headers, env.body).await {
                // Not dead-lettered: let it come back rather than lose it.
                let _ = acker.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                return Err(status);
            }
            acker.double_ack().await.map_err(|e| unavailable("acknowledging the dead-lettered event", e))
        })
    }
}

impl Drop for EventAcker {
    fn drop(&mut self) {
        // Unsettled: hand it back now rather than after ack_wait.
        if let (Some(acker), Ok(runtime)) = (self.acker.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
}
