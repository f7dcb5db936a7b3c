//! The client call path: the one place where every client call runs, whatever the transport.
//!
//! ```text
//! <Trait>Client / <Trait>RestClient / <Trait>QueueClient ::method(request)
//!   ─▶ the transport encodes the message ONCE into a replayable form
//!        gRPC: prost bytes (sent through a pass-through codec on tonic's client)
//!        REST: HTTP method, URL, body bytes and content type
//!        queue: the envelope body (and any headers the codec adds)
//!      (a request STREAM is taken as it is: it can be sent once)
//!   ─▶ Call: service + method, metadata, extensions, idempotency key (`idempotency-key`
//!      metadata), and the deadline, computed once from the request's timeout
//!      (`Request::set_timeout` → `grpc-timeout`) and the client's default timeout
//!   ─▶ run(): the layers installed on the client, in the order they were added, each seeing the
//!      Call and calling Next::run (once, several times for retries, or not at all) ─▶ the
//!      transport sends ONE attempt from the Call and the encoded request ─▶ Reply (response
//!      metadata; the typed message inside) or Status — all of it under the deadline
//!      (DEADLINE_EXCEEDED once it passes, however many attempts are in flight)
//!   ─▶ the typed Response (a response stream's messages keep arriving under the same deadline)
//! ```
//!
//! The server side has the same shape in `dispatch` and the private `call` module: one place for
//! deadlines, cancellation and panics. Here, one place for what policies need on the way out —
//! deadlines, retries, breakers, hedging are each one [`Layer`], written once for gRPC, REST and
//! queues.
//!
//! # Per-call options
//!
//! [`CallOptions`] sets a call's timeout or deadline, metadata, idempotency key and typed
//! extensions (read by layers) on a [`Request`]:
//!
//! ```
//! use std::time::Duration;
//! use switchboard::client::CallOptions;
//!
//! let options = CallOptions::new()
//!     .timeout(Duration::from_secs(2))
//!     .metadata("x-tenant", "blue")
//!     .idempotency_key("order-42");
//! let request = options.request("hello".to_owned()); // pass it to any generated client method
//! assert_eq!(request.metadata().get("idempotency-key").unwrap(), "order-42");
//! ```
//!
//! # Layers
//!
//! A [`Layer`] sees every call of the client it is installed on (`.layer(l)` on
//! `<Trait>Client`, `<Trait>RestClient`, `<Trait>QueueClient`, and on the engines
//! [`GrpcClient`](crate::grpc::GrpcClient), [`RestClient`](crate::rest::RestClient),
//! [`QueueClient`](crate::queue::QueueClient)):
//!
//! ```
//! use switchboard::client::{Call, Layer, Next, Outcome};
//! use switchboard::Code;
//! use switchboard::client::BoxFuture;
//!
//! /// Sends an UNAVAILABLE call once more.
//! struct RetryOnce;
//!
//! impl Layer for RetryOnce {
//!     fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
//!         Box::pin(async move {
//!             match next.run(call.clone()).await {
//!                 Err(status) if status.code() == Code::Unavailable && call.can_resend() => next.run(call).await,
//!                 outcome => outcome,
//!             }
//!         })
//!     }
//! }
//! ```
//!
//! Install it with `.layer(RetryOnce)` (or `.layer(Arc::new(layer))` to share one instance
//! between clients); the first layer added is the outermost. A request that cannot be encoded
//! (a REST path field missing, say) fails before the layers run: there is nothing to send.

// Without a transport nothing makes calls: the runner and its call state are unused then.
#![cfg_attr(not(any(feature = "grpc", feature = "rest", feature = "queue")), allow(dead_code))]

use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The boxed future [`Layer::call`] and [`Next::run`] return (`futures::future::BoxFuture`).
pub use futures_util::future::BoxFuture;
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use crate::context::parse_grpc_timeout;
use crate::{MethodDescriptor, ServiceDescriptor};

/// The metadata key of a call's idempotency key (the IETF `Idempotency-Key` header). Over
/// queues it is also the request's message id, the key of the server's dedupe window.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The gRPC deadline header (`Request::set_timeout` writes it).
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Whether a call that failed with `status` never reached the server's application, so sending
/// it again cannot run anything twice, whatever the method (gRPC A6's transparent retries): the
/// connection was refused or could not be made; the server refused the HTTP/2 stream
/// (`REFUSED_STREAM`) or had announced GOAWAY before it; NATS had no responders; RabbitMQ returned
/// the message (no queue); the embedded broker had no consumer.
///
/// [`PolicyLayer`](crate::policy::PolicyLayer) sends such a call again at once, once, without
/// counting it as an attempt of the retry policy.
///
/// ```
/// use switchboard::{client, Status};
/// assert!(!client::never_reached(&Status::unavailable("the server is draining")));
/// ```
pub fn never_reached(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<NeverReached>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::ConnectionRefused) {
                return true;
            }
        }
        #[cfg(feature = "grpc")]
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            if h2.reason() == Some(h2::Reason::REFUSED_STREAM) || (h2.is_go_away() && h2.is_remote()) {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// In a call's extensions: the largest response message the transport may accept for it
/// (`maxResponseMessageBytes`, set by the policy layer); a larger one fails the attempt with
/// RESOURCE_EXHAUSTED. gRPC applies it to each message, REST and queues to a unary answer's body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseLimit(pub(crate) usize);

impl ResponseLimit {
    /// The limit a call carries, if any.
    pub(crate) fn of(call: &Call) -> Option<usize> {
        call.extensions().get::<ResponseLimit>().map(|l| l.0)
    }

    /// The error for an answer over `limit` bytes (grpc-go's wording; `size` when it is known).
    #[cfg(any(feature = "rest", feature = "queue"))]
    pub(crate) fn exceeded(size: Option<usize>, limit: usize) -> Status {
        match size {
            Some(size) => Status::resource_exhausted(format!("received message larger than max ({size} vs. {limit})")),
            None => Status::resource_exhausted(format!("received message larger than max (more than {limit} bytes)")),
        }
    }
}

/// In a call's extensions: this attempt is a transparent retry of one that never reached a
/// server (counted apart from retries and hedges).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransparentRetry;

/// In a call's extensions: this attempt is copy `n` (from 1) of a hedged call, set by the policy
/// layer. The queue client gives each copy its own message id (the call's, then `.h<n>` from the
/// second copy on), so that a server's dedupe window runs them apart.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
pub(crate) struct HedgedCopy(pub(crate) u32);

/// The mark [`never_reached`] finds on a status a transport made for a call it could not hand
/// to any server.
#[derive(Debug)]
struct NeverReached;

impl std::fmt::Display for NeverReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call never reached a server")
    }
}

impl std::error::Error for NeverReached {}

/// Marks `status` (an UNAVAILABLE a transport made because no server took the call) for
/// [`never_reached`].
pub(crate) fn not_delivered(mut status: Status) -> Status {
    status.set_source(Arc::new(NeverReached));
    status
}

/// Which transport a call goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// gRPC over HTTP/2 ([`GrpcClient`](crate::grpc::GrpcClient)).
    Grpc,
    /// REST, HTTP/1.1 + JSON ([`RestClient`](crate::rest::RestClient)).
    Rest,
    /// A message broker ([`QueueClient`](crate::queue::QueueClient)).
    Queue,
}

/// Options for one call, written onto its [`Request`]: a timeout or deadline, metadata, an
/// idempotency key, and typed extensions that [`Layer`]s read ([`Call::extensions`]).
///
/// They travel the way a hand-set request does: the timeout as `grpc-timeout`
/// (`Request::set_timeout`), the idempotency key as `idempotency-key` metadata, so a request
/// built either way is the same call on the wire. A shorter timeout the request already has
/// wins; metadata replaces entries with the same key.
///
/// ```
/// use std::time::Duration;
/// use switchboard::client::CallOptions;
/// use switchboard::Request;
///
/// let mut request = Request::new(42u32);
/// CallOptions::new().timeout(Duration::from_millis(250)).apply(&mut request);
/// assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "250000u");
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    metadata: MetadataMap,
    extensions: http::Extensions,
}

impl CallOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the call with DEADLINE_EXCEEDED after `timeout` (from when the options are
    /// applied), and tells the server.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let request = switchboard::client::CallOptions::new().timeout(Duration::from_secs(1)).request(());
    /// assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "1000000u");
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(self.timeout.map_or(timeout, |t| t.min(timeout)));
        self
    }

    /// Fails the call with DEADLINE_EXCEEDED at `deadline` (sent as the time left when the
    /// options are applied).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let at = Instant::now() + Duration::from_secs(5);
    /// let request = switchboard::client::CallOptions::new().deadline(at).request(());
    /// assert!(request.metadata().get("grpc-timeout").is_some());
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// Sends metadata entry `key: value` (a header on gRPC and REST, a message header on queues).
    ///
    /// # Panics
    ///
    /// When `key` is not a valid lower-case ASCII metadata key (or ends in `-bin`), or `value`
    /// holds a control character, as [`MetadataMap::insert`] does; build the entry yourself with
    /// [`metadata_mut`](Self::metadata_mut) to handle that case.
    ///
    /// ```
    /// let request = switchboard::client::CallOptions::new().metadata("x-tenant", "blue").request(());
    /// assert_eq!(request.metadata().get("x-tenant").unwrap(), "blue");
    /// ```
    pub fn metadata(mut self, key: &'static str, value: &str) -> Self {
        let value: MetadataValue<Ascii> = value.parse().unwrap_or_else(|_| panic!("metadata `{key}`: invalid value {value:?}"));
        self.metadata.insert(key, value);
        self
    }

    /// The metadata these options send, to add binary (`-bin`) or computed entries.
    ///
    /// ```
    /// use switchboard::metadata::MetadataValue;
    /// let mut options = switchboard::client::CallOptions::new();
    /// options.metadata_mut().insert_bin("trace-bin", MetadataValue::from_bytes(b"\x01\x02"));
    /// assert!(options.request(()).metadata().get_bin("trace-bin").is_some());
    /// ```
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Sends `key` as the call's idempotency key (`idempotency-key` metadata): the same key on
    /// every attempt of the call, so that a server can recognise a retry. Over queues it is the
    /// request's message id, which the server dedupes on.
    ///
    /// # Panics
    ///
    /// When `key` holds a control character (it would not be a valid header value).
    ///
    /// ```
    /// let request = switchboard::client::CallOptions::new().idempotency_key("order-42").request(());
    /// assert_eq!(request.metadata().get("idempotency-key").unwrap(), "order-42");
    /// ```
    pub fn idempotency_key(self, key: impl AsRef<str>) -> Self {
        self.metadata(IDEMPOTENCY_KEY, key.as_ref())
    }

    /// Sends `key` as the call's partition key (`sb-key` over queues; the other transports do
    /// not send it): messages with one key stay in order on a partitioning broker (Kafka), and
    /// it wins over the key field the method's spec names. A
    /// [`PartitionKey`](crate::queue::PartitionKey) in the request's extensions.
    ///
    /// ```
    /// let request = switchboard::client::CallOptions::new().partition_key("customer-7").request(());
    /// assert_eq!(switchboard::queue::PartitionKey::of(&request), Some("customer-7"));
    /// ```
    #[cfg(feature = "queue")]
    pub fn partition_key(self, key: impl Into<String>) -> Self {
        self.extension(crate::queue::PartitionKey(key.into()))
    }

    /// Puts `value` into the request's extensions, where [`Layer`]s find it
    /// ([`Call::extensions`]); it is not sent.
    ///
    /// ```
    /// #[derive(Clone)]
    /// struct NoRetry;
    /// let request = switchboard::client::CallOptions::new().extension(NoRetry).request(());
    /// assert!(request.extensions().get::<NoRetry>().is_some());
    /// ```
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Writes these options onto `request`.
    ///
    /// ```
    /// let mut request = switchboard::Request::new(());
    /// switchboard::client::CallOptions::new().metadata("x-tenant", "blue").apply(&mut request);
    /// assert_eq!(request.metadata().get("x-tenant").unwrap(), "blue");
    /// ```
    pub fn apply<M>(&self, request: &mut Request<M>) {
        let until_deadline = self.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = match (self.timeout, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(timeout) = timeout {
            let asked = request.metadata().get(GRPC_TIMEOUT).and_then(|v| parse_grpc_timeout(v.as_bytes()));
            if asked.is_none_or(|a| timeout < a) {
                request.set_timeout(timeout);
            }
        }
        for key in self.metadata.keys() {
            match key {
                tonic::metadata::KeyRef::Ascii(key) => {
                    request.metadata_mut().remove(key.as_str());
                    for value in self.metadata.get_all(key.as_str()) {
                        request.metadata_mut().append(key.clone(), value.clone());
                    }
                }
                tonic::metadata::KeyRef::Binary(key) => {
                    request.metadata_mut().remove_bin(key.as_str());
                    for value in self.metadata.get_all_bin(key.as_str()) {
                        request.metadata_mut().append_bin(key.clone(), value.clone());
                    }
                }
            }
        }
        request.extensions_mut().extend(self.extensions.clone());
    }

    /// A request carrying `message` and these options.
    pub fn request<M>(&self, message: M) -> Request<M> {
        let mut request = Request::new(message);
        self.apply(&mut request);
        request
    }
}

/// One outgoing call, as [`Layer`]s see it: which method of which service, through which
/// transport, with what metadata, extensions and deadline. The encoded request is not in it:
/// the transport holds that, and sends it again on every [`Next::run`].
///
/// A layer may change the call before passing it on (add metadata, shorten the deadline, set
/// an idempotency key); each [`Next::run`] takes a `Call` by value, so a layer that sends more
/// than once clones it first (as tower's retry middleware clones a request).
#[derive(Debug, Clone)]
pub struct Call {
    service: &'static ServiceDescriptor,
    method: usize,
    transport: TransportKind,
    metadata: MetadataMap,
    extensions: http::Extensions,
    deadline: Option<Instant>,
    /// Whether the deadline goes to the server (the request asked for it, the client's default
    /// is one that travels, or a layer set it); otherwise it is only enforced here.
    sends_deadline: bool,
    /// Whether the metadata's `grpc-timeout` is still the request's own, sent as it is on a
    /// first attempt (so calls without layers send exactly what they always did).
    timeout_as_asked: bool,
    /// Whether the request can be sent again (false for request streams).
    replayable: bool,
    /// Which attempt this is, from 1 (set by the runner just before the transport sends).
    attempt: u32,
    /// The encoded request message's size, when the transport encoded one (not for streams).
    request_size: Option<usize>,
}

/// A client's default timeout, and whether it travels to the server when a request sets none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DefaultTimeout {
    pub(crate) timeout: Option<Duration>,
    pub(crate) travels: bool,
}

impl DefaultTimeout {
    /// When a call with request `metadata` ends, and what the server hears of it: the shorter
    /// of the request's `grpc-timeout` and this default, from now.
    #[inline]
    pub(crate) fn timing(self, metadata: &MetadataMap) -> Timing {
        // `get` parses its key before it looks: most calls send no metadata at all.
        let asked = if metadata.is_empty() {
            None
        } else {
            metadata.get(GRPC_TIMEOUT).and_then(|v| parse_grpc_timeout(v.as_bytes()))
        };
        let timeout = match (asked, self.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let own = timeout.map(|t| Instant::now() + t);
        // Inside a handler, the call being handled's deadline is the default: the shorter one
        // wins, and an inherited one always travels (the next hop must know it too).
        let inherited = crate::context::inherited_deadline().filter(|i| own.is_none_or(|o| *i < o));
        if let Some(deadline) = inherited {
            return Timing { deadline: Some(deadline), sends_deadline: true, timeout_as_asked: false };
        }
        Timing {
            deadline: own,
            sends_deadline: asked.is_some() || (self.timeout.is_some() && self.travels),
            // The request's own header goes out as it is, unless a shorter default of the
            // client's travels instead.
            timeout_as_asked: asked.is_some() && (timeout == asked || !self.travels),
        }
    }
}

/// A call's deadline as [`DefaultTimeout::timing`] computes it (see [`Call`]'s fields of the same
/// names). Transports that send a call without layers read it instead of building a [`Call`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) deadline: Option<Instant>,
    pub(crate) sends_deadline: bool,
    pub(crate) timeout_as_asked: bool,
}

impl Call {
    /// A call of method `method` (an index into `service.methods`), from its request's metadata
    /// and extensions. The deadline is computed here, once: the shorter of the request's
    /// `grpc-timeout` and the client's default, from now.
    pub(crate) fn new(
        service: &'static ServiceDescriptor,
        method: usize,
        transport: TransportKind,
        metadata: MetadataMap,
        extensions: http::Extensions,
        default: DefaultTimeout,
    ) -> Self {
        let Timing { deadline, sends_deadline, timeout_as_asked } = default.timing(&metadata);
        Call {
            service,
            method,
            transport,
            metadata,
            extensions,
            deadline,
            sends_deadline,
            timeout_as_asked,
            replayable: !service.methods[method].shape.client_streams(),
            attempt: 1,
            request_size: None,
        }
    }

    /// The service called.
    pub fn service(&self) -> &'static ServiceDescriptor {
        self.service
    }

    /// The method called.
    pub fn method(&self) -> &'static MethodDescriptor {
        &self.service.methods[self.method]
    }

    /// The method's index in [`ServiceDescriptor::methods`].
    pub fn method_index(&self) -> usize {
        self.method
    }

    /// The transport the call goes through.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// The request metadata (gRPC and REST headers, queue message headers).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The request metadata, to change for the attempts sent from here on.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// The request's extensions ([`CallOptions::extension`], `Request::extensions_mut`). gRPC
    /// hands them on to the HTTP/2 request (for tower layers under the channel); the other
    /// transports do not send them.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The request's extensions, mutably.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// When the call fails with DEADLINE_EXCEEDED, if it has a deadline: the shorter of the
    /// request's timeout and the client's default timeout, counted from the start of the call.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn timeout(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Sets the deadline of the attempts sent from this `Call` on: each goes to the server with
    /// it (`grpc-timeout`, `sb-deadline`) and fails with DEADLINE_EXCEEDED at it. The call as a
    /// whole still ends at the deadline it started with: a later one set here does not extend it.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        self.sends_deadline = true;
        self.timeout_as_asked = false;
    }

    /// The call's idempotency key: its `idempotency-key` metadata entry.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.metadata.get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok())
    }

    /// Sets the idempotency key (`idempotency-key` metadata) for the attempts sent from here on.
    /// A layer that resends a call sets one before the first attempt, so that every attempt
    /// carries the same key.
    ///
    /// # Errors
    ///
    /// When `key` is not a valid metadata value (it holds a control character).
    pub fn set_idempotency_key(&mut self, key: &str) -> Result<(), Status> {
        let value: MetadataValue<Ascii> =
            key.parse().map_err(|_| Status::invalid_argument(format!("idempotency key {key:?} is not a valid header value")))?;
        self.metadata.insert(IDEMPOTENCY_KEY, value);
        Ok(())
    }

    /// The size in bytes of the request message as the transport encoded it (the gRPC message,
    /// the REST body, the queue envelope's body); `None` for a request stream. Layers limit it
    /// (`maxRequestMessageBytes`).
    pub fn request_size(&self) -> Option<usize> {
        self.request_size
    }

    /// Records the encoded request's size (the transport, once it has encoded it).
    pub(crate) fn set_request_size(&mut self, size: usize) {
        self.request_size = Some(size);
    }

    /// Whether the request can be sent more than once. A request stream (client and bidi
    /// streaming) cannot: a second [`Next::run`] fails with FAILED_PRECONDITION.
    pub fn can_resend(&self) -> bool {
        self.replayable
    }

    /// Whether the deadline travels to the server.
    pub(crate) fn sends_deadline(&self) -> bool {
        self.sends_deadline && self.deadline.is_some()
    }

    /// The metadata to send as HTTP headers (gRPC, REST): with `grpc-timeout` as the time left
    /// when the deadline travels, except on a first attempt that still carries the request's own
    /// value, which goes out unchanged.
    #[cfg(any(feature = "grpc", feature = "rest"))]
    pub(crate) fn header_metadata(&mut self) -> MetadataMap {
        let mut metadata = std::mem::take(&mut self.metadata);
        if self.sends_deadline() && !(self.attempt == 1 && self.timeout_as_asked) {
            if let Some(left) = self.timeout() {
                let value: MetadataValue<Ascii> = grpc_timeout(left).parse().expect("digits and a unit");
                metadata.insert(GRPC_TIMEOUT, value);
            }
        }
        metadata
    }

    /// Takes the metadata and extensions (for the transport's request).
    #[cfg(feature = "grpc")]
    pub(crate) fn take_parts(&mut self) -> (MetadataMap, http::Extensions) {
        let metadata = self.header_metadata();
        (metadata, std::mem::take(&mut self.extensions))
    }
}

/// A `grpc-timeout` value: the most precise unit that fits in 8 digits (as tonic's
/// `Request::set_timeout` writes it).
#[cfg(any(feature = "grpc", feature = "rest"))]
fn grpc_timeout(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let units: [(u128, char); 6] = [
        (d.as_nanos(), 'n'),
        (d.as_micros(), 'u'),
        (d.as_millis(), 'm'),
        (d.as_secs() as u128, 'S'),
        (d.as_secs() as u128 / 60, 'M'),
        (d.as_secs() as u128 / 3600, 'H'),
    ];
    let (value, unit) = units.into_iter().find(|(v, _)| *v <= MAX).unwrap_or((MAX, 'H'));
    format!("{value}{unit}")
}

/// A successful attempt as [`Layer`]s see it: the response metadata (gRPC and REST headers,
/// queue reply headers), with the decoded message (or the response stream) inside, for the
/// caller. A layer returns it (or another attempt's) from [`Layer::call`].
///
/// For a server-streaming call an attempt succeeds once the response has started (headers, or
/// the first queue frame); errors inside the stream reach the caller, not the layers — as in
/// gRPC, where a call whose response has started is committed and is not retried.
pub struct Reply {
    response: Response<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").field("metadata", self.response.metadata()).finish_non_exhaustive()
    }
}

impl Reply {
    fn erase<M: Send + 'static>(response: Response<M>) -> Self {
        Reply { response: response.map(|m| Box::new(m) as Box<dyn Any + Send>) }
    }

    fn downcast<M: Send + 'static>(self) -> Result<Response<M>, Status> {
        let (metadata, message, extensions) = self.response.into_parts();
        match message.downcast::<M>() {
            Ok(message) => Ok(Response::from_parts(metadata, *message, extensions)),
            Err(_) => Err(Status::internal("a client layer returned the reply of another call")),
        }
    }

    /// The response metadata.
    pub fn metadata(&self) -> &MetadataMap {
        self.response.metadata()
    }

    /// The response metadata, mutably (what the caller's `Response::metadata` will hold).
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        self.response.metadata_mut()
    }

    /// The response's extensions.
    pub fn extensions(&self) -> &http::Extensions {
        self.response.extensions()
    }

    /// The response's extensions, mutably.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        self.response.extensions_mut()
    }
}

/// What one attempt, or a whole layered call, comes to: a [`Reply`] or the error [`Status`].
pub type Outcome = Result<Reply, Status>;

/// Something that sees every call of a client and sends it on with [`Next::run`]: once
/// (metadata, logging, metrics), several times (retries, hedging), or not at all (a breaker
/// that is open, a cache).
///
/// Installed with `.layer(l)` on a client; the first layer added is the outermost. `Next::run`
/// re-sends the request the transport encoded once (the same bytes every time; a request stream
/// can be sent once, see [`Call::can_resend`]). The whole call, every attempt and every wait in
/// between, stays under the call's deadline: when it passes, the caller gets DEADLINE_EXCEEDED
/// and the layers' futures are dropped.
///
/// Object safe: clients keep their layers as `Arc<dyn Layer>`. An `Arc<L>` is a layer too, so
/// one instance can serve several clients and be inspected afterwards.
pub trait Layer: Send + Sync + 'static {
    /// Handles `call`, sending it on with `next` (as often as the layer decides).
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome>;
}

impl<L: Layer + ?Sized> Layer for Arc<L> {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        (**self).call(call, next)
    }
}

/// The rest of the call after a layer: the layers installed after it, then the transport.
/// `Copy`: run it as often as the call needs (concurrently too; a gRPC client sends one attempt
/// at a time through its channel, as tonic's `&mut self` client does).
#[derive(Clone, Copy)]
pub struct Next<'a> {
    rest: &'a [Arc<dyn Layer>],
    send: &'a (dyn Fn(Call) -> BoxFuture<'a, Outcome> + Send + Sync),
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next").field("layers", &self.rest.len()).finish_non_exhaustive()
    }
}

impl<'a> Next<'a> {
    /// Sends `call` through the remaining layers and the transport.
    pub fn run(self, call: Call) -> BoxFuture<'a, Outcome> {
        match self.rest.split_first() {
            Some((layer, rest)) => layer.call(call, Next { rest, send: self.send }),
            None => (self.send)(call),
        }
    }
}

/// The layers installed on one client. Empty costs nothing per call; cloning a client shares
/// them.
#[derive(Clone, Default)]
pub(crate) struct Layers(Option<Arc<Vec<Arc<dyn Layer>>>>);

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} layer(s)", self.0.as_ref().map_or(0, |l| l.len()))
    }
}

impl Layers {
    /// Whether none are installed: a client may then await its only attempt itself, unboxed
    /// (what [`run`] would do, minus the box).
    #[cfg(feature = "queue")]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Adds `layer` inside the ones already installed.
    pub(crate) fn push(&mut self, layer: impl Layer) {
        let layers = self.0.get_or_insert_with(Default::default);
        Arc::make_mut(layers).push(Arc::new(layer));
    }
}

/// One transport's way to send an encoded request: what [`run`] calls per attempt.
pub(crate) trait Exchange: Send + Sync {
    /// What a successful attempt decodes to (the message, or a response stream).
    type Message: Send + 'static;

    /// Sends one attempt of `call`, which the runner may ask for again (the encoded request
    /// stays; a request stream is gone after the first).
    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<Self::Message>, Status>>;

    /// Sends the only attempt (no layers): may move the encoded request instead of copying it.
    fn send_once<'a>(self, call: Call) -> BoxFuture<'a, Result<Response<Self::Message>, Status>>
    where
        Self: 'a;

    /// Whether the transport's own attempt already ends at the call's deadline: then a call
    /// without layers gets no second timer from the runner.
    fn enforces_deadline() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// The status of a call whose deadline passed (each transport keeps the message it always
    /// had).
    fn expired() -> Status
    where
        Self: Sized,
    {
        Status::deadline_exceeded("deadline exceeded")
    }
}

/// Runs one call: through `layers` (if any) to `exchange`, all of it under the call's deadline.
/// Every client of every transport calls this; without layers it costs the one boxed future of
/// the transport's attempt. The call and each attempt are observed ([`crate::observe`]: spans,
/// `traceparent`, metrics).
pub(crate) async fn run<E: Exchange>(layers: &Layers, call: Call, exchange: E) -> Result<Response<E::Message>, Status> {
    let Some(stack) = &layers.0 else {
        return once(call, exchange).await;
    };
    let observed = crate::observe::client::ClientCall::start(call.service, call.method, call.transport, &call.metadata);
    let outcome = observed.within(attempts(stack, call, exchange, &observed)).await;
    observed.finish(&outcome);
    outcome
}

/// [`run`] without layers: the one attempt, observed as the call and its attempt at once.
fn once<'a, E: Exchange + 'a>(
    mut call: Call,
    exchange: E,
) -> crate::observe::client::Single<impl std::future::Future<Output = Result<Response<E::Message>, Status>> + 'a> {
    use crate::observe::client::{ClientCall, Single};
    let deadline = call.deadline;
    // A deadline that has already passed (an inherited one, typically) sends nothing.
    let expired = deadline.is_some_and(|d| d <= Instant::now());
    let observed = ClientCall::observes(&call.metadata).then(|| ClientCall::start(call.service, call.method, call.transport, &call.metadata));
    let attempt = observed.as_ref().filter(|_| !expired).map(|o| o.attempt(&mut call.metadata, &call.extensions));
    let sent = (!expired).then(|| exchange.send_once(call));
    let fut = async move {
        let Some(sent) = sent else { return Err(E::expired()) };
        match deadline {
            Some(d) if !E::enforces_deadline() => tokio::time::timeout_at(d.into(), sent).await.unwrap_or_else(|_| Err(E::expired())),
            _ => sent.await,
        }
    };
    match observed {
        Some(observed) => observed.single(attempt, fut),
        None => Single::unobserved(fut),
    }
}

/// [`run`]'s work: the attempts, each observed by `observed`.
async fn attempts<E: Exchange>(
    stack: &[Arc<dyn Layer>],
    call: Call,
    exchange: E,
    observed: &crate::observe::client::ClientCall,
) -> Result<Response<E::Message>, Status> {
    let deadline = call.deadline;
    // A deadline that has already passed (an inherited one, typically) sends nothing.
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return Err(E::expired());
    }
    let attempts = AtomicU32::new(0);
    let exchange = &exchange;
    let send = |mut call: Call| -> BoxFuture<'_, Outcome> {
        call.attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let observe = observed.attempt(&mut call.metadata, &call.extensions);
        // A layer may have shortened this attempt's deadline (`Call::set_deadline`).
        let cut_off = call.deadline.filter(|d| deadline.is_none_or(|whole| *d < whole));
        let attempt = exchange.send(call);
        Box::pin(async move {
            let outcome = observe
                .run(async move {
                    match cut_off {
                        Some(d) => tokio::time::timeout_at(d.into(), attempt).await.unwrap_or_else(|_| Err(E::expired())),
                        None => attempt.await,
                    }
                })
                .await;
            outcome.map(Reply::erase)
        })
    };
    let layered = async {
        let next = Next { rest: stack, send: &send };
        next.run(call).await?.downcast::<E::Message>()
    };
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), layered).await.unwrap_or_else(|_| Err(E::expired())),
        None => layered.await,
    }
}

/// A request stream for an [`Exchange`]: taken by the first attempt; a second one fails.
#[cfg(any(feature = "grpc", feature = "rest"))]
pub(crate) struct Once<S>(std::sync::Mutex<Option<S>>);

#[cfg(any(feature = "grpc", feature = "rest"))]
impl<S> Once<S> {
    pub(crate) fn new(stream: S) -> Self {
        Once(std::sync::Mutex::new(Some(stream)))
    }

    /// The stream, if no attempt has taken it yet.
    pub(crate) fn take(&self, call: &Call) -> Result<S, Status> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| resent_stream(call))
    }

    pub(crate) fn into_inner(self) -> Result<S, Status> {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner()).ok_or_else(|| Status::internal("request stream already taken"))
    }
}

/// The status of a second attempt at a call whose requests are a stream.
#[cfg(any(feature = "grpc", feature = "rest"))]
fn resent_stream(call: &Call) -> Status {
    Status::failed_precondition(format!(
        "`{}` streams its requests, which cannot be sent again: a client layer ran it a second time",
        call.method().name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    #[cfg(any(feature = "grpc", feature = "rest"))]
    fn grpc_timeout_matches_tonic() {
        for d in [Duration::from_millis(250), Duration::from_secs(1), Duration::from_nanos(5), Duration::from_secs(3600 * 200)] {
            let mut r = Request::new(());
            r.set_timeout(d);
            assert_eq!(r.metadata().get(GRPC_TIMEOUT).unwrap().to_str().unwrap(), grpc_timeout(d), "{d:?}");
        }
    }

    use crate::{CallShape, MethodDescriptor};

    static SERVICE: ServiceDescriptor = ServiceDescriptor::new(
        "t",
        "S",
        "t.S",
        &[
            MethodDescriptor::new("Get", "get", "/t.S/Get", CallShape::Unary),
            MethodDescriptor::new("Up", "up", "/t.S/Up", CallShape::ClientStreaming),
        ],
    );

    fn call(timeout: Option<Duration>, default: DefaultTimeout) -> Call {
        let mut r = Request::new(());
        if let Some(t) = timeout {
            r.set_timeout(t);
        }
        let (metadata, extensions, ()) = r.into_parts();
        Call::new(&SERVICE, 0, TransportKind::Grpc, metadata, extensions, default)
    }

    #[test]
    #[cfg(any(feature = "grpc", feature = "rest"))]
    fn the_request_timeout_goes_out_as_it_is_on_a_first_attempt_and_as_time_left_after() {
        let no_default = DefaultTimeout::default();
        let mut c = call(Some(Duration::from_millis(300)), no_default);
        assert!(c.deadline().is_some_and(|d| d <= Instant::now() + Duration::from_millis(300)));
        assert_eq!(c.clone().header_metadata().get(GRPC_TIMEOUT).unwrap(), "300000u");
        c.attempt = 2;
        let left = c.header_metadata().get(GRPC_TIMEOUT).unwrap().to_str().unwrap().to_owned();
        assert_ne!(left, "300000u", "a second attempt sends the time left");
        assert!(parse_grpc_timeout(left.as_bytes()).unwrap() <= Duration::from_millis(300));

        // A default that does not travel (REST's) is enforced, not sent; the request's own is sent.
        let quiet = DefaultTimeout { timeout: Some(Duration::from_millis(100)), travels: false };
        let mut c = call(None, quiet);
        assert!(c.deadline().is_some() && !c.sends_deadline());
        assert!(c.header_metadata().get(GRPC_TIMEOUT).is_none());
        let c = call(Some(Duration::from_secs(5)), quiet);
        assert!(c.deadline().unwrap() <= Instant::now() + Duration::from_millis(100));
        assert_eq!(c.clone().header_metadata().get(GRPC_TIMEOUT).unwrap(), "5000000u");

        // A default that travels (gRPC's) and is shorter replaces the request's.
        let loud = DefaultTimeout { timeout: Some(Duration::from_millis(100)), travels: true };
        let mut c = call(Some(Duration::from_secs(5)), loud);
        let sent = c.header_metadata().get(GRPC_TIMEOUT).unwrap().to_str().unwrap().to_owned();
        assert!(parse_grpc_timeout(sent.as_bytes()).unwrap() <= Duration::from_millis(100), "{sent}");
        let mut c = call(None, loud);
        assert!(c.header_metadata().get(GRPC_TIMEOUT).is_some());
    }

    #[test]
    #[cfg(any(feature = "grpc", feature = "rest"))]
    fn inside_a_handler_its_deadline_is_the_default_and_travels() {
        let handled = Instant::now() + Duration::from_secs(2);
        let none = MetadataMap::new();
        let t = crate::context::handling(Some(handled), || DefaultTimeout::default().timing(&none));
        assert_eq!(t.deadline, Some(handled));
        assert!(t.sends_deadline && !t.timeout_as_asked);
        // A shorter timeout of the call's own wins (and goes out as it was asked).
        let mut r = Request::new(());
        r.set_timeout(Duration::from_millis(100));
        let t = crate::context::handling(Some(handled), || DefaultTimeout::default().timing(r.metadata()));
        assert!(t.deadline.unwrap() < handled && t.timeout_as_asked);
        // A longer one loses to the inherited deadline, which is sent as the time left.
        let mut r = Request::new(());
        r.set_timeout(Duration::from_secs(30));
        let mut c = crate::context::handling(Some(handled), || {
            let (metadata, extensions, ()) = r.into_parts();
            Call::new(&SERVICE, 0, TransportKind::Grpc, metadata, extensions, DefaultTimeout::default())
        });
        assert_eq!(c.deadline(), Some(handled));
        let sent = c.header_metadata().get(GRPC_TIMEOUT).unwrap().to_str().unwrap().to_owned();
        assert!(parse_grpc_timeout(sent.as_bytes()).unwrap() <= Duration::from_secs(2), "{sent}");
        // Outside a handler nothing is inherited.
        assert_eq!(DefaultTimeout::default().timing(&none).deadline, None);
    }

    /// An exchange that must not be asked to send anything.
    struct NeverSend;

    impl Exchange for NeverSend {
        type Message = ();
        fn send(&self, _: Call) -> BoxFuture<'_, Result<Response<()>, Status>> {
            panic!("an attempt was sent")
        }
        fn send_once<'a>(self, _: Call) -> BoxFuture<'a, Result<Response<()>, Status>> {
            panic!("an attempt was sent")
        }
    }

    #[tokio::test]
    async fn an_expired_inherited_deadline_sends_nothing() {
        let passed = Instant::now() - Duration::from_millis(1);
        let call = crate::context::handling(Some(passed), || call(None, DefaultTimeout::default()));
        let err = run(&Layers::default(), call.clone(), NeverSend).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        let mut layers = Layers::default();
        layers.push(Twice);
        assert_eq!(run(&layers, call, NeverSend).await.unwrap_err().code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test]
    async fn a_handler_polled_by_the_call_path_lends_its_deadline() {
        let handled = Instant::now() + Duration::from_secs(5);
        let seen = crate::call::run(Some(handled), &crate::Cancellation::new(), async {
            tokio::task::yield_now().await;
            Ok::<_, Status>(crate::context::inherited_deadline())
        })
        .await
        .unwrap();
        assert_eq!(seen, Some(handled));
        assert_eq!(crate::context::inherited_deadline(), None, "restored after the poll");
    }

    /// An exchange that counts its attempts and answers each with its number as metadata.
    struct Counting(AtomicU32);

    impl Exchange for Counting {
        type Message = u32;
        fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<u32>, Status>> {
            assert_eq!(call.metadata().get("x-layer").unwrap(), "yes");
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok(Response::new(n)) })
        }
        fn send_once<'a>(self, _: Call) -> BoxFuture<'a, Result<Response<u32>, Status>> {
            Box::pin(async { Ok(Response::new(0)) })
        }
    }

    struct Twice;
    impl Layer for Twice {
        fn call<'a>(&'a self, mut call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
            call.metadata_mut().insert("x-layer", "yes".parse().unwrap());
            Box::pin(async move {
                next.run(call.clone()).await?;
                next.run(call).await
            })
        }
    }

    #[tokio::test]
    async fn layers_run_in_order_and_can_send_again() {
        let none = Layers::default();
        let r = run(&none, call(None, DefaultTimeout::default()), Counting(AtomicU32::new(0))).await.unwrap();
        assert_eq!(r.into_inner(), 0, "without layers the only attempt is send_once");

        let mut layers = Layers::default();
        layers.push(Twice);
        let r = run(&layers, call(None, DefaultTimeout::default()), Counting(AtomicU32::new(0))).await.unwrap();
        assert_eq!(r.into_inner(), 2, "the second attempt's reply");
    }

    /// A layer that keeps the first reply it ever saw and answers it to every later call.
    #[derive(Default)]
    struct Stale(Mutex<Option<Reply>>);
    impl Layer for Stale {
        fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                let kept = self.0.lock().unwrap().take();
                match kept {
                    Some(reply) => Ok(reply),
                    None => {
                        let mut call = call;
                        call.metadata_mut().insert("x-layer", "yes".parse().unwrap());
                        let reply = next.run(call).await?;
                        *self.0.lock().unwrap() = Some(reply);
                        Err(Status::unavailable("kept"))
                    }
                }
            })
        }
    }

    #[tokio::test]
    async fn a_reply_of_another_type_is_internal_not_a_panic() {
        let stale = Arc::new(Stale::default());
        let mut layers = Layers::default();
        layers.push(stale.clone());
        let _ = run(&layers, call(None, DefaultTimeout::default()), Counting(AtomicU32::new(0))).await;
        struct Other;
        impl Exchange for Other {
            type Message = String;
            fn send(&self, _: Call) -> BoxFuture<'_, Result<Response<String>, Status>> {
                Box::pin(async { Ok(Response::new(String::new())) })
            }
            fn send_once<'a>(self, _: Call) -> BoxFuture<'a, Result<Response<String>, Status>> {
                Box::pin(async { Ok(Response::new(String::new())) })
            }
        }
        let err = run(&layers, call(None, DefaultTimeout::default()), Other).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
    }

    #[test]
    #[cfg(any(feature = "grpc", feature = "rest"))]
    fn a_request_stream_is_taken_once() {
        let (metadata, extensions, ()) = Request::new(()).into_parts();
        let c = Call::new(&SERVICE, 1, TransportKind::Rest, metadata, extensions, DefaultTimeout::default());
        assert!(!c.can_resend());
        let once = Once::new(7);
        assert_eq!(once.take(&c).unwrap(), 7);
        let err = once.take(&c).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains("`Up` streams its requests, which cannot be sent again"), "{err:?}");
    }

    #[test]
    fn options_keep_the_shorter_timeout_and_replace_metadata() {
        let mut r = Request::new(());
        r.set_timeout(Duration::from_millis(100));
        r.metadata_mut().insert("x-a", "old".parse().unwrap());
        CallOptions::new().timeout(Duration::from_secs(5)).metadata("x-a", "new").idempotency_key("k").apply(&mut r);
        assert_eq!(r.metadata().get(GRPC_TIMEOUT).unwrap(), "100000u");
        assert_eq!(r.metadata().get_all("x-a").iter().count(), 1);
        assert_eq!(r.metadata().get("x-a").unwrap(), "new");
        assert_eq!(r.metadata().get(IDEMPOTENCY_KEY).unwrap(), "k");
    }
}
