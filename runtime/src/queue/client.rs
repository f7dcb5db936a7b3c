//! [`QueueClient`]: calls a service through a [`Broker`]. Generated `<Trait>QueueClient`s wrap
//! one and call the generic functions here with the method's descriptor.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

use super::codec::Codec;
use super::backend::{next_id, Waiting};
use super::wire::{self, Envelope};
use super::{Broker, PartitionKey};
use crate::api::security::ClientCredentials;
use crate::client::{self, Call, DefaultTimeout, Exchange, Layer, Layers, TransportKind};
use crate::observe::client::ClientCall;
use crate::{MethodDescriptor, ServiceDescriptor, Streaming};

/// Calls services through a broker. Cheap to clone; clones share the connection.
///
/// Every call has a deadline: the request's own (`Request::set_timeout`) or the client's
/// [`timeout`](QueueClient::timeout) (30 s unless set), so no caller waits forever on a server
/// that went away. The deadline travels in `sb-deadline`; a server drops requests that arrive
/// after it.
///
/// Every call goes through [`client::run`](crate::client): the request message is encoded once,
/// the [`Layer`]s added with [`layer`](QueueClient::layer) see the call and may send it more than
/// once (the same body and the same message id — the idempotency key — each time).
#[derive(Clone, Debug)]
pub struct QueueClient {
    broker: Broker,
    timeout: Duration,
    /// Whether `timeout` was set (then it travels as the deadline of every call).
    timeout_set: bool,
    layers: Layers,
    /// What OpenAPI operations that ask for credentials get (`with_bearer`, …); shared, so that
    /// a clone (one per call is common) costs one count.
    credentials: Option<Arc<ClientCredentials>>,
}

impl QueueClient {
    /// A client on `broker`.
    pub fn new(broker: &Broker) -> Self {
        QueueClient {
            broker: broker.clone(),
            timeout: Duration::from_secs(30),
            timeout_set: false,
            layers: Layers::default(),
            credentials: None,
        }
    }

    /// Deadline for calls whose request sets none. Once set, it travels with every call
    /// (`sb-deadline`) and servers drop requests that arrive after it. Unset, calls still give up
    /// after 30 s, but servers are not told.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.timeout_set = true;
        self
    }

    /// Sends `authorization: Bearer <token>` to OpenAPI operations whose security asks for it
    /// (a request that already carries `authorization` keeps its own).
    ///
    /// ```
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = switchboard::queue::Broker::connect("memory://").await?;
    /// let client = switchboard::queue::QueueClient::new(&broker).with_bearer("t0k3n");
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.credentials_mut().bearer = Some(token.into());
        self
    }

    /// Sends HTTP Basic credentials (`authorization: Basic …`) to OpenAPI operations whose
    /// security asks for them.
    ///
    /// ```
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = switchboard::queue::Broker::connect("memory://").await?;
    /// let client = switchboard::queue::QueueClient::new(&broker).with_basic("ada", "s3cret");
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn with_basic(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials_mut().basic = Some((user.into(), password.into()));
        self
    }

    /// Sends `key` to OpenAPI operations whose API key scheme asks for it: as the metadata entry
    /// named after its header or query parameter, or in `cookie` (docs/queue-protocol.md).
    ///
    /// ```
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = switchboard::queue::Broker::connect("memory://").await?;
    /// let client = switchboard::queue::QueueClient::new(&broker).with_api_key("k-123");
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.credentials_mut().api_key = Some(key.into());
        self
    }

    fn credentials_mut(&mut self) -> &mut ClientCredentials {
        Arc::make_mut(self.credentials.get_or_insert_with(Default::default))
    }

    /// The broker this client calls through.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Runs every call through `layer` (inside the layers added before it). See
    /// [`client::Layer`](crate::client::Layer).
    pub fn layer(mut self, layer: impl Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// The call state of `request` for method `index` of `service`, and its message encoded
    /// once (the body and the headers the codec adds).
    fn prepare<C: Codec<Req>, Req>(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<(Call, Encoded), Status> {
        let (metadata, extensions, message) = request.into_parts();
        let mut headers = Vec::new();
        let body = C::encode(&message, &mut headers)?;
        let mut call = Call::new(service, index, TransportKind::Queue, metadata, extensions, self.default_timeout());
        call.set_request_size(body.len());
        Ok((call, Encoded { body, headers }))
    }

    /// The envelope and deadline of a call sent without layers: what [`Attempt::envelope`] makes
    /// of a [`Call`], made straight from the request (no `Call` built, the message encoded into
    /// the envelope).
    fn direct<C: Codec<Req>, Req>(&self, method: &'static str, request: Request<Req>) -> Result<(Envelope, Instant), Status> {
        let (metadata, extensions, message) = request.into_parts();
        let key = extensions.get::<PartitionKey>().map(|k| k.0.as_str());
        let timing = self.default_timeout().timing(&metadata);
        let deadline = timing.deadline.unwrap_or_else(|| Instant::now() + self.timeout);
        if deadline <= Instant::now() {
            // Passed already (an inherited deadline): nothing is sent.
            return Err(Status::deadline_exceeded("deadline exceeded before the request was sent"));
        }
        let mut env = head(method, &metadata, key, None, timing.sends_deadline.then_some(deadline), 0);
        env.body = C::encode(&message, &mut env.headers)?;
        Ok((env, deadline))
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout { timeout: Some(self.timeout), travels: self.timeout_set }
    }

    /// Request-reply. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn unary<C, Req, Resp>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
        Resp: Send + 'static,
    {
        if self.layers.is_empty() {
            // The runner's work without layers, unboxed: the one attempt, whose wait for the
            // reply ends at the deadline (observed as the runner observes it).
            let method = &desc.methods[index];
            let mut request = request;
            // Observed only when something observes it (metrics, a subscriber, a trace).
            let observed = ClientCall::observes(request.metadata()).then(|| ClientCall::start(desc, index, TransportKind::Queue, request.metadata()));
            let attempt = observed.as_ref().map(|o| o.attempt(request.metadata_mut(), &http::Extensions::new()));
            let fut = async {
                    let (env, deadline) = self.direct::<C, Req>(method.name, request)?;
                    unary_reply::<C, Resp>(self, desc, method, env, deadline, None).await
            };
            return match observed {
                Some(observed) => observed.single(attempt, fut).await,
                None => fut.await,
            };
        }
        let (call, encoded) = self.prepare::<C, Req>(desc, index, request)?;
        let exchange = Attempt { client: self, encoded, event: None, hedged_id: Default::default(), answer: PhantomData::<fn() -> (C, UnaryAnswer<Resp>)> };
        // Boxed: the layered path's state does not widen every call's future.
        Box::pin(client::run(&self.layers, call, exchange)).await
    }

    /// Request, then a stream of reply frames. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn server_streaming<C, Req, Resp>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
        Resp: Send + 'static,
    {
        let (call, encoded) = self.prepare::<C, Req>(desc, index, request)?;
        let exchange = Attempt { client: self, encoded, event: None, hedged_id: Default::default(), answer: PhantomData::<fn() -> (C, StreamAnswer<Resp>)> };
        client::run(&self.layers, call, exchange).await
    }

    /// Calls the OpenAPI operation of method `index`: the request struct as JSON, the reply's
    /// `sb-http-status` and body read into the response enum (docs/queue-protocol.md). (Used by
    /// generated clients.)
    #[doc(hidden)]
    pub async fn operation<Req, Resp>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: serde::Serialize + serde::de::DeserializeOwned + 'static,
        Resp: serde::de::DeserializeOwned + Send + 'static,
    {
        let method = &desc.methods[index];
        let Some(op) = method.operation else {
            return Err(Status::internal(format!("`{}` has no OpenAPI operation", method.name)));
        };
        let mut request = request;
        #[cfg(feature = "openapi")]
        super::operation::put_credentials(op, self.credentials.as_deref().unwrap_or(&ClientCredentials::NONE), request.metadata_mut())?;
        #[cfg(not(feature = "openapi"))]
        let _ = op;
        if self.layers.is_empty() {
            // As in `unary`: the one attempt, unboxed (and observed).
            // Observed only when something observes it (metrics, a subscriber, a trace).
            let observed = ClientCall::observes(request.metadata()).then(|| ClientCall::start(desc, index, TransportKind::Queue, request.metadata()));
            let attempt = observed.as_ref().map(|o| o.attempt(request.metadata_mut(), &http::Extensions::new()));
            let fut = async {
                    let (env, deadline) = self.direct::<super::Json, Req>(method.name, request)?;
                    operation_answer::<Resp>(self, desc, method, env, deadline, None).await
            };
            return match observed {
                Some(observed) => observed.single(attempt, fut).await,
                None => fut.await,
            };
        }
        let (call, encoded) = self.prepare::<super::Json, Req>(desc, index, request)?;
        let exchange = Attempt { client: self, encoded, event: None, hedged_id: Default::default(), answer: PhantomData::<fn() -> OperationAnswer<Resp>> };
        Box::pin(client::run(&self.layers, call, exchange)).await
    }

    /// Publishes an event: returns once the broker holds it. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn publish<C, Req>(&self, desc: &'static ServiceDescriptor, index: usize, request: Request<Req>) -> Result<(), Status>
    where
        C: Codec<Req>,
    {
        let (call, encoded) = self.prepare::<C, Req>(desc, index, request)?;
        // Every event has a message id (the dedupe key of at-least-once delivery): the caller's
        // idempotency key, or one made here, once, for all attempts.
        let id = if call.idempotency_key().is_some() { String::new() } else { next_id() };
        let event = Some(Event { content_type: <C as Codec<Req>>::CONTENT_TYPE, id });
        let exchange = Attempt { client: self, encoded, event, hedged_id: Default::default(), answer: PhantomData::<fn() -> (C, PublishAnswer)> };
        client::run(&self.layers, call, exchange).await.map(Response::into_inner)
    }

    async fn send(
        &self,
        desc: &'static ServiceDescriptor,
        method: &'static str,
        mut env: Envelope,
    ) -> Result<(Waiting<'_>, mpsc::UnboundedReceiver<Result<Envelope, Status>>), Status> {
        let id = next_id();
        let rx = self.broker.replies().register(id.clone());
        let mut slot = Waiting::new(&self.broker, desc.full_name, id.clone());
        env.correlation_id = Some(id);
        self.broker.backend().request(desc.full_name, method, env).await?;
        slot.sent();
        Ok((slot, rx))
    }

    /// A client-streaming call, which queues do not carry: UNIMPLEMENTED, through the layers
    /// like every call. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn client_streaming<S: Send + 'static, Resp: Send + 'static>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<S>,
    ) -> Result<Response<Resp>, Status> {
        let (metadata, extensions, _stream) = request.into_parts();
        let call = Call::new(desc, index, TransportKind::Queue, metadata, extensions, self.default_timeout());
        client::run(&self.layers, call, Unsupported::<Resp>(PhantomData)).await
    }

    /// A bidi-streaming call, which queues do not carry: UNIMPLEMENTED, through the layers like
    /// every call. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn streaming<S: Send + 'static, Resp: Send + 'static>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<S>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        self.client_streaming(desc, index, request).await
    }
}

/// A request message encoded once: what every attempt sends.
struct Encoded {
    body: Bytes,
    /// Headers the codec added, after the metadata.
    headers: Vec<(wire::Str, wire::Str)>,
}

/// What makes a request an event: its stored content type and the message id made for it.
struct Event {
    content_type: &'static str,
    /// Used when the call has no idempotency key.
    id: String,
}

/// One queue call's attempts: the encoded request, and how its answer is read (`A`, with the
/// codec `C`).
struct Attempt<'c, A> {
    client: &'c QueueClient,
    encoded: Encoded,
    event: Option<Event>,
    /// The message id of a hedged call without an idempotency key: made for its first copy,
    /// the base of the others' ([`Attempt::envelope`]).
    hedged_id: std::sync::OnceLock<String>,
    answer: PhantomData<fn() -> A>,
}

impl<A> Attempt<'_, A> {
    /// The envelope of one attempt of `call`, and its deadline: [`head`] (the deadline sent when
    /// the call sends one; never on events, which outlive their publisher), then the codec's
    /// headers and `body`.
    ///
    /// A hedged copy of a request (the policy layer marks them, [`client::HedgedCopy`]) carries
    /// its own message id, so that a server's dedupe window runs the copies apart instead of
    /// making the second wait for the first: the first copy the call's idempotency key (or, without
    /// one, an id made for the call), copy `n` from the second on that id with `.h<n>` appended.
    /// Retries keep their copy's id; an event keeps its one id whatever sent it.
    fn envelope(&self, mut call: Call, body: Bytes) -> (Envelope, Instant) {
        let deadline = call.deadline().unwrap_or_else(|| Instant::now() + self.client.timeout);
        let sent = (self.event.is_none() && call.sends_deadline()).then_some(deadline);
        let hedge = call.extensions().get::<client::HedgedCopy>().map(|h| h.0).filter(|_| self.event.is_none());
        let metadata = std::mem::take(call.metadata_mut());
        let key = call.extensions().get::<PartitionKey>().map(|k| k.0.as_str());
        let mut env = head(call.method().name, &metadata, key, self.event.as_ref(), sent, self.encoded.headers.len());
        if let Some(copy) = hedge {
            let base = match env.header(wire::MESSAGE_ID) {
                Some(key) => key.to_owned(),
                None => self.hedged_id.get_or_init(next_id).clone(),
            };
            env.set(wire::MESSAGE_ID, if copy <= 1 { base } else { format!("{base}.h{copy}") });
        }
        env.headers.extend(self.encoded.headers.iter().cloned());
        env.body = body;
        (env, deadline)
    }
}

/// A request envelope's headers: method, content type (events only), message id (the
/// `idempotency-key` metadata entry; always one for events), the partition key `sb-key` (when
/// the call has one: its [`PartitionKey`]), `deadline` (when given), then the metadata. Room is
/// left for `extra` more headers.
fn head(
    method: &'static str,
    metadata: &MetadataMap,
    partition_key: Option<&str>,
    event: Option<&Event>,
    deadline: Option<Instant>,
    extra: usize,
) -> Envelope {
    let mut env = Envelope::default();
    env.headers.reserve(4 + metadata.len() + extra);
    env.push(wire::METHOD, method);
    // A service has one encoding, so a call leaves `content-type` out (and its replies then do
    // too: they copy the request's). Events carry it: they are stored, and other programs may
    // read them off the queue.
    if let Some(event) = event {
        env.push(wire::CONTENT_TYPE, event.content_type);
    }
    // (`get` parses its key before it looks: most calls send no metadata at all.)
    let key = if metadata.is_empty() { None } else { metadata.get(client::IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()) };
    match (key, event) {
        (Some(key), _) => env.push(wire::MESSAGE_ID, key.to_owned()),
        (None, Some(event)) if !event.id.is_empty() => env.push(wire::MESSAGE_ID, event.id.clone()),
        (None, Some(_)) => env.push(wire::MESSAGE_ID, next_id()),
        (None, None) => {}
    }
    if let Some(partition_key) = partition_key {
        env.push(wire::KEY, partition_key.to_owned());
    }
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        env.push(wire::DEADLINE, wire::encode_deadline(SystemTime::now() + left));
    }
    wire::push_metadata(&mut env, metadata);
    env
}

/// How a queue call reads its answer.
trait ReadAnswer: 'static {
    type Message: Send + 'static;
    fn read<'a>(
        client: &'a QueueClient,
        service: &'static ServiceDescriptor,
        method: &'static MethodDescriptor,
        env: Envelope,
        deadline: Instant,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Response<Self::Message>, Status>>;
    /// Whether `read` ends at the deadline itself (waiting for reply frames does).
    const ENFORCES_DEADLINE: bool = true;
    fn expired() -> Status {
        Status::deadline_exceeded("deadline exceeded waiting for the reply")
    }
}

impl<A: ReadAnswer> Exchange for Attempt<'_, A> {
    type Message = A::Message;

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<A::Message>, Status>> {
        let (service, method) = (call.service(), call.method());
        let limit = client::ResponseLimit::of(&call);
        let (env, deadline) = self.envelope(call, self.encoded.body.clone());
        A::read(self.client, service, method, env, deadline, limit)
    }

    fn send_once<'a>(mut self, call: Call) -> BoxFuture<'a, Result<Response<A::Message>, Status>>
    where
        Self: 'a,
    {
        let (service, method) = (call.service(), call.method());
        let body = std::mem::take(&mut self.encoded.body);
        let limit = client::ResponseLimit::of(&call);
        let (env, deadline) = self.envelope(call, body);
        A::read(self.client, service, method, env, deadline, limit)
    }

    fn enforces_deadline() -> bool {
        A::ENFORCES_DEADLINE
    }

    fn expired() -> Status {
        A::expired()
    }
}

/// Sends a unary request and reads its one reply frame (ends at `deadline`). The broker's
/// future with the reading mapped onto it, not an `async fn` around it: one state machine less
/// on every call.
fn unary_reply<'a, C: Codec<Resp>, Resp>(
    client: &'a QueueClient,
    service: &'static ServiceDescriptor,
    method: &'static MethodDescriptor,
    env: Envelope,
    deadline: Instant,
    limit: Option<usize>,
) -> impl Future<Output = Result<Response<Resp>, Status>> + 'a {
    client.broker.call(service.full_name, method.name, env, deadline).map(move |frame| {
        let frame = frame?;
        if let Some(limit) = limit.filter(|l| frame.body.len() > *l) {
            return Err(client::ResponseLimit::exceeded(Some(frame.body.len()), limit));
        }
        if let Some(status) = wire::status_of(&frame) {
            if status.code() != Code::Ok {
                return Err(status);
            }
        }
        let message = C::decode(&frame.body, &frame).map_err(reply_decode_error)?;
        Ok(Response::from_parts(wire::metadata_of(&frame), message, Default::default()))
    })
}

/// Sends an OpenAPI operation's request and reads its reply into the response enum (ends at
/// `deadline`).
async fn operation_answer<Resp: serde::de::DeserializeOwned>(
    client: &QueueClient,
    service: &'static ServiceDescriptor,
    method: &'static MethodDescriptor,
    env: Envelope,
    deadline: Instant,
    limit: Option<usize>,
) -> Result<Response<Resp>, Status> {
    let Some(op) = method.operation else {
        return Err(Status::internal(format!("`{}` has no OpenAPI operation", method.name)));
    };
    let frame = client.broker.call(service.full_name, method.name, env, deadline).await?;
    if let Some(limit) = limit.filter(|l| frame.body.len() > *l) {
        return Err(client::ResponseLimit::exceeded(Some(frame.body.len()), limit));
    }
    operation_reply(op, frame)
}

/// A unary call: the one reply frame.
struct UnaryAnswer<Resp>(PhantomData<fn() -> Resp>);

/// A server-streaming call: the first frame, then a stream of the others.
struct StreamAnswer<Resp>(PhantomData<fn() -> Resp>);

/// An event: the broker's confirmation.
struct PublishAnswer;

/// An OpenAPI operation: the one reply frame, read into the response enum.
struct OperationAnswer<Resp>(PhantomData<fn() -> Resp>);

impl<Resp> ReadAnswer for OperationAnswer<Resp>
where
    Resp: serde::de::DeserializeOwned + Send + 'static,
{
    type Message = Resp;
    fn read<'a>(
        client: &'a QueueClient,
        service: &'static ServiceDescriptor,
        method: &'static MethodDescriptor,
        env: Envelope,
        deadline: Instant,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Response<Resp>, Status>> {
        Box::pin(operation_answer(client, service, method, env, deadline, limit))
    }
}

impl<C, Resp> ReadAnswer for (C, UnaryAnswer<Resp>)
where
    C: Codec<Resp>,
    Resp: Send + 'static,
{
    type Message = Resp;
    fn read<'a>(
        client: &'a QueueClient,
        service: &'static ServiceDescriptor,
        method: &'static MethodDescriptor,
        env: Envelope,
        deadline: Instant,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Response<Resp>, Status>> {
        Box::pin(unary_reply::<C, Resp>(client, service, method, env, deadline, limit))
    }
}

impl<C, Resp> ReadAnswer for (C, StreamAnswer<Resp>)
where
    C: Codec<Resp>,
    Resp: Send + 'static,
{
    type Message = Streaming<Resp>;
    fn read<'a>(
        client: &'a QueueClient,
        service: &'static ServiceDescriptor,
        method: &'static MethodDescriptor,
        env: Envelope,
        deadline: Instant,
        _limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Response<Streaming<Resp>>, Status>> {
        Box::pin(async move {
            let (mut slot, mut rx) = client.send(service, method.name, env).await?;
            let first = next_frame(&mut rx, deadline).await;
            if first.as_ref().is_err_and(|s| s.code() != Code::DeadlineExceeded) {
                slot.answered(); // the connection was lost: nobody to tell
            }
            let first = first?;
            let metadata: MetadataMap = wire::metadata_of(&first);
            if let Some(status) = wire::status_of(&first) {
                slot.finished();
                // Ended at once: an error, or an empty stream.
                return if status.code() == Code::Ok {
                    Ok(Response::from_parts(metadata, Streaming::empty(), Default::default()))
                } else {
                    Err(status)
                };
            }
            // The stream owns the reply slot from here.
            let (id, armed) = slot.hand_over();
            let broker = client.broker.clone();
            let state = StreamState { rx, deadline, expected: 0, pending: Some(first), done: false, ended: !armed, broker, service: service.full_name, id };
            Ok(Response::from_parts(metadata, reply_stream::<C, Resp>(state), Default::default()))
        })
    }
}

impl<C> ReadAnswer for (C, PublishAnswer)
where
    C: 'static,
{
    type Message = ();
    fn read<'a>(
        client: &'a QueueClient,
        service: &'static ServiceDescriptor,
        method: &'static MethodDescriptor,
        env: Envelope,
        _: Instant,
        _: Option<usize>,
    ) -> BoxFuture<'a, Result<Response<()>, Status>> {
        Box::pin(async move {
            client.broker.backend().publish(service.full_name, method.name, env).await.map(Response::new)
        })
    }
    // The broker's confirmation has no deadline of its own: the runner's timer ends it.
    const ENFORCES_DEADLINE: bool = false;
    fn expired() -> Status {
        Status::deadline_exceeded("the broker did not confirm the event in time")
    }
}

/// A client- or bidi-streaming call on a queue: UNIMPLEMENTED, whichever attempt.
struct Unsupported<T>(PhantomData<fn() -> T>);

impl<T: Send + 'static> Exchange for Unsupported<T> {
    type Message = T;

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<T>, Status>> {
        Box::pin(std::future::ready(Err(unsupported(&call))))
    }

    fn send_once<'a>(self, call: Call) -> BoxFuture<'a, Result<Response<T>, Status>>
    where
        Self: 'a,
    {
        Box::pin(std::future::ready(Err(unsupported(&call))))
    }
}

fn unsupported(call: &Call) -> Status {
    Status::unimplemented(format!(
        "`{}` streams requests, which queues do not carry; call it over gRPC or REST",
        call.method().name
    ))
}

/// The messages of a server-streaming call after its first frame.
fn reply_stream<C: Codec<Resp>, Resp: Send + 'static>(state: StreamState) -> Streaming<Resp> {
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let frame = match st.pending.take() {
            Some(f) => Ok(f),
            None => next_frame(&mut st.rx, st.deadline).await,
        };
        let item = match frame {
            Err(status) => Some(Err(status)),
            Ok(frame) => {
                let seq: Option<u64> = frame.header(wire::SEQ).and_then(|s| s.parse().ok());
                if seq.is_some_and(|s| s != st.expected) {
                    Some(Err(Status::data_loss(format!(
                        "reply frame {} arrived where frame {} was expected",
                        seq.unwrap_or_default(),
                        st.expected
                    ))))
                } else {
                    st.expected += 1;
                    // The server's last frame: it has stopped by itself.
                    st.ended |= frame.header(wire::STATUS).is_some();
                    match wire::status_of(&frame) {
                        Some(status) if status.code() == Code::Ok => None,
                        Some(status) => Some(Err(status)),
                        None => Some(C::decode(&frame.body, &frame).map_err(reply_decode_error)),
                    }
                }
            }
        };
        match item {
            Some(Ok(m)) => Some((Ok(m), st)),
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            None => None,
        }
    });
    Streaming::new(stream)
}

struct StreamState {
    rx: mpsc::UnboundedReceiver<Result<Envelope, Status>>,
    deadline: Instant,
    expected: u64,
    pending: Option<Envelope>,
    done: bool,
    /// The server sent its last frame (or the connection was lost): nothing to cancel.
    ended: bool,
    broker: Broker,
    service: &'static str,
    id: String,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        self.broker.replies().remove(&self.id);
        // Dropped before the server's last frame (the caller stopped reading, the deadline
        // passed, a frame went missing): the server stops sending.
        if !self.ended {
            self.broker.cancel_soon(self.service, std::mem::take(&mut self.id));
        }
    }
}

/// The next reply frame (UNAVAILABLE when the connection was lost, DEADLINE_EXCEEDED at
/// `deadline`).
async fn next_frame(rx: &mut mpsc::UnboundedReceiver<Result<Envelope, Status>>, deadline: Instant) -> Result<Envelope, Status> {
    match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        Ok(Some(frame)) => frame,
        Ok(None) => Err(Status::unavailable("the broker connection was lost")),
        Err(_) => Err(Status::deadline_exceeded("deadline exceeded waiting for the reply")),
    }
}

fn reply_decode_error(status: Status) -> Status {
    Status::internal(format!("the reply could not be decoded: {}", status.message()))
}

#[cfg(feature = "openapi")]
fn operation_reply<Resp: serde::de::DeserializeOwned>(op: &'static crate::api::Operation, frame: Envelope) -> Result<Response<Resp>, Status> {
    super::operation::call(op, frame)
}

#[cfg(not(feature = "openapi"))]
fn operation_reply<Resp>(op: &'static crate::api::Operation, _: Envelope) -> Result<Response<Resp>, Status> {
    Err(Status::unimplemented(format!("`{}`: OpenAPI replies are read only with switchboard's `openapi` feature", op.id)))
}
