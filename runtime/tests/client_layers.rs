//! The client call path (`switchboard::client`), written once and run against every client:
//! gRPC and REST on loopback, the embedded broker, and RabbitMQ / NATS when
//! `SWITCHBOARD_AMQP_URL` / `SWITCHBOARD_NATS_URL` are set (the project's env-or-skip rule,
//! `switchboard_test_support::broker`). Built like the conformance suite (`conformance.rs`): one
//! service, one server per transport for the whole process, an adapter over the generated
//! clients ([`Caller`]) and cases written against it.
//!
//! Cases: a layer sees each call's method, deadline and metadata (and the reply's metadata);
//! a retrying layer re-sends after UNAVAILABLE and the server sees the same request (and the same
//! idempotency key) twice, for unary and server-streaming calls; per-call options (timeout,
//! metadata, idempotency key) reach the server; a layer cannot re-send a request stream
//! (FAILED_PRECONDITION; UNIMPLEMENTED on queues, which carry no request streams); the call's
//! deadline holds across a layer's attempts; the policy document (`switchboard::policy`) retries
//! alike on every transport; and on the embedded broker a re-sent request keeps its message id
//! (the server's dedupe window answers it without running the handler again).
//!
//! Test names read `<transport>::<case>`: `cargo test -p switchboard --test client_layers grpc::`.
#![cfg(all(feature = "grpc", feature = "rest", feature = "queue"))]

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use switchboard::client::{Call, CallOptions, Layer, Next, Outcome, TransportKind};
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::{Channel, Server};
use switchboard::queue::Broker;
use switchboard::{Code, Request, RequestExt, Response, Status, Streaming};
use switchboard_test_support::broker::url_for_feature;
use switchboard_test_support::server::{in_background, unique_id as call_id};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// The service: records what each attempt looked like from the server's side.

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Msg {
    /// Unique per call: what the server records under.
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub text: String,
    /// The first `fail_times` attempts of this id fail with UNAVAILABLE.
    #[prost(uint32, tag = "3")]
    pub fail_times: u32,
}

#[switchboard::service(package = "test.layers.v1")]
pub trait Layered {
    /// Records the attempt; answers the message, with response metadata `x-attempt: <n>`.
    async fn record(&self, req: Request<Msg>) -> Result<Response<Msg>, Status>;
    /// Records the attempt; answers the message twice, as a stream.
    async fn record_stream(&self, req: Request<Msg>) -> Result<Response<Streaming<Msg>>, Status>;
    /// Joins the texts of a request stream.
    async fn gather(&self, req: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status>;
}

/// One attempt as the handler saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub message: Msg,
    pub tenant: Option<String>,
    pub idempotency_key: Option<String>,
    pub deadline: Option<Duration>,
    /// `grpc-previous-rpc-attempts`, as a retry carries it.
    pub previous_attempts: Option<String>,
}

static SEEN: LazyLock<Mutex<HashMap<String, Vec<Seen>>>> = LazyLock::new(Default::default);

fn seen(id: &str) -> Vec<Seen> {
    SEEN.lock().unwrap().get(id).cloned().unwrap_or_default()
}

/// Records `req`; the attempt's number (from 1), or UNAVAILABLE for one of the first `fail_times`.
fn note(req: &Request<Msg>) -> Result<usize, Status> {
    let md = req.metadata();
    let text = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let entry = Seen {
        message: req.get_ref().clone(),
        tenant: text("x-tenant"),
        idempotency_key: text("idempotency-key"),
        deadline: req.deadline().map(|d| d.remaining()),
        previous_attempts: text("grpc-previous-rpc-attempts"),
    };
    assert_eq!(req.attempt() as usize, 1 + entry.previous_attempts.as_deref().map_or(0, |p| p.parse().unwrap()));
    let mut all = SEEN.lock().unwrap();
    let attempts = all.entry(req.get_ref().id.clone()).or_default();
    attempts.push(entry);
    let n = attempts.len();
    if n <= req.get_ref().fail_times as usize {
        return Err(Status::unavailable(format!("attempt {n} fails on purpose")));
    }
    Ok(n)
}

pub struct Impl;

/// A `hang` request arrived.
static HUNG: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// When each `hang` request saw its cancellation.
static CANCELLED: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Default::default);
static CANCELLED_NOTE: tokio::sync::Notify = tokio::sync::Notify::const_new();

impl Layered for Impl {
    async fn record(&self, req: Request<Msg>) -> Result<Response<Msg>, Status> {
        let n = note(&req)?;
        // `relay:<transport>`: after 100 ms, call `record` over that transport (the next hop of
        // a chain), with no timeout of its own.
        if let Some(target) = req.get_ref().text.strip_prefix("relay:") {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let hop = Msg { id: format!("{}-hop", req.get_ref().id), ..Default::default() };
            relay_client(target).await.record(Request::new(hop)).await?;
        }
        // `relay-hang:<transport>`: call the next hop with a request that hangs there.
        if let Some(target) = req.get_ref().text.strip_prefix("relay-hang:") {
            let hop = Msg { id: format!("{}-hop", req.get_ref().id), text: "hang".into(), ..Default::default() };
            relay_client(target).await.record(Request::new(hop)).await?;
        }
        // `hang`: wait until the call is cancelled, and record when that was.
        if req.get_ref().text == "hang" {
            // The server drops a cancelled handler: a watcher sees its cancellation fire.
            let cancellation = req.cancellation();
            let id = req.get_ref().id.clone();
            tokio::spawn(async move {
                cancellation.cancelled().await;
                CANCELLED.lock().unwrap().insert(id, Instant::now());
                CANCELLED_NOTE.notify_waiters();
            });
            HUNG.notify_waiters();
            std::future::pending::<()>().await;
        }
        let mut answer = req.into_inner();
        // `pad:<n>`: answer a text of n bytes.
        if let Some(n) = answer.text.strip_prefix("pad:").and_then(|n| n.parse().ok()) {
            answer.text = "x".repeat(n);
        }
        let mut resp = Response::new(answer);
        resp.metadata_mut().insert("x-attempt", n.to_string().parse().unwrap());
        Ok(resp)
    }

    async fn record_stream(&self, req: Request<Msg>) -> Result<Response<Streaming<Msg>>, Status> {
        note(&req)?;
        let m = req.into_inner();
        Ok(Response::new(Streaming::iter([m.clone(), m])))
    }

    async fn gather(&self, req: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        let mut stream = req.into_inner();
        let mut out = Msg::default();
        while let Some(m) = stream.message().await? {
            out.id = m.id;
            out.text.push_str(&m.text);
        }
        Ok(Response::new(out))
    }
}

// ---------------------------------------------------------------------------------------------
// The transports: one server each, and an adapter over the three generated clients.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Grpc,
    Rest,
    Memory,
    Amqp,
    Nats,
}

/// The calls a case makes, whatever the client.
pub trait Caller: Send + Sync {
    fn record(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>>;
    fn record_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>>;
    fn gather(&self, req: Request<Vec<Msg>>) -> BoxFuture<'_, Result<Response<Msg>, Status>>;
}

fn stream_of(req: Request<Vec<Msg>>) -> Request<futures_util::stream::Iter<std::vec::IntoIter<Msg>>> {
    req.map(futures_util::stream::iter)
}

impl Caller for LayeredClient<Channel> {
    fn record(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut c = self.clone();
        Box::pin(async move { LayeredClient::record(&mut c, req).await })
    }
    fn record_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        let mut c = self.clone();
        Box::pin(async move { LayeredClient::record_stream(&mut c, req).await })
    }
    fn gather(&self, req: Request<Vec<Msg>>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut c = self.clone();
        Box::pin(async move { LayeredClient::gather(&mut c, stream_of(req)).await })
    }
}

impl Caller for LayeredRestClient {
    fn record(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut c = self.clone();
        Box::pin(async move { LayeredRestClient::record(&mut c, req).await })
    }
    fn record_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        let mut c = self.clone();
        Box::pin(async move { LayeredRestClient::record_stream(&mut c, req).await })
    }
    fn gather(&self, req: Request<Vec<Msg>>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut c = self.clone();
        Box::pin(async move { LayeredRestClient::gather(&mut c, stream_of(req)).await })
    }
}

impl Caller for LayeredQueueClient {
    fn record(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        Box::pin(LayeredQueueClient::record(self, req))
    }
    fn record_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        Box::pin(LayeredQueueClient::record_stream(self, req))
    }
    fn gather(&self, req: Request<Vec<Msg>>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        Box::pin(LayeredQueueClient::gather(self, stream_of(req)))
    }
}

/// One transport, ready to call.
pub struct Transport {
    pub name: &'static str,
    pub kind: Kind,
    address: String,
    channel: Option<Channel>,
    broker: Option<Broker>,
}

impl Transport {
    /// A client of this transport with `layers` installed (the first is the outermost).
    pub fn client(&self, layers: &[Arc<dyn Layer>]) -> Box<dyn Caller> {
        match self.kind {
            Kind::Grpc => {
                let mut c = LayeredClient::new(self.channel.clone().expect("a channel"));
                for l in layers {
                    c = c.layer(l.clone());
                }
                Box::new(c)
            }
            Kind::Rest => {
                let mut c = LayeredRestClient::new(&self.address).expect("REST client");
                for l in layers {
                    c = c.layer(l.clone());
                }
                Box::new(c)
            }
            Kind::Memory | Kind::Amqp | Kind::Nats => {
                let mut c = LayeredQueueClient::new(self.broker.as_ref().expect("a broker")).timeout(Duration::from_secs(10));
                for l in layers {
                    c = c.layer(l.clone());
                }
                Box::new(c)
            }
        }
    }

    pub fn is_queue(&self) -> bool {
        matches!(self.kind, Kind::Memory | Kind::Amqp | Kind::Nats)
    }
}

pub async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Transport) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(t) = connect(kind).await {
        case(t).await;
    }
}

async fn connect(kind: Kind) -> Option<Transport> {
    let url = match kind {
        Kind::Grpc | Kind::Rest => None,
        Kind::Memory => Some("memory://client-layers".to_owned()),
        Kind::Amqp => Some(url_for_feature("SWITCHBOARD_AMQP_URL", cfg!(feature = "amqp"), "amqp")?),
        Kind::Nats => Some(url_for_feature("SWITCHBOARD_NATS_URL", cfg!(feature = "nats"), "nats")?),
    };
    let address = server(kind, url);
    let name = match kind {
        Kind::Grpc => "grpc",
        Kind::Rest => "rest",
        Kind::Memory => "memory",
        Kind::Amqp => "amqp",
        Kind::Nats => "nats",
    };
    let mut t = Transport { name, kind, address: address.clone(), channel: None, broker: None };
    match kind {
        Kind::Grpc => t.channel = Some(Channel::from_shared(address).unwrap().connect().await.expect("connect to the gRPC server")),
        Kind::Rest => {}
        _ => t.broker = Some(Broker::connect(&address).await.unwrap_or_else(|e| panic!("connect to {address}: {e}"))),
    }
    Some(t)
}

/// The address of `kind`'s server, started on first use on a thread of its own. Every server
/// keeps its default dedupe window (the queue servers one of 60 s): a keyed call that was answered
/// is answered again from its first run, while attempts the server failed with UNAVAILABLE reach
/// the handler again.
fn server(kind: Kind, broker_url: Option<String>) -> String {
    static SERVERS: [OnceLock<Result<String, String>>; 5] = [const { OnceLock::new() }; 5];
    let ready = SERVERS[kind as usize].get_or_init(move || match kind {
        Kind::Grpc => in_background("layers-grpc", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = ready.send(Ok(format!("http://{}", listener.local_addr().unwrap())));
            let server = Server::builder().add_service(LayeredServer::new(Impl));
            server.serve_with_incoming(TcpIncoming::from(listener)).await.expect("gRPC server");
        }),
        Kind::Rest => in_background("layers-rest", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = ready.send(Ok(format!("http://{}", listener.local_addr().unwrap())));
            LayeredRestServer::new(Impl).serve(listener).await.expect("REST server");
        }),
        _ => {
            let url = broker_url.expect("a broker URL");
            in_background("layers-queue", |ready| serve_queue(url, ready, Duration::from_secs(60)))
        }
    });
    ready.clone().unwrap_or_else(|e| panic!("the {kind:?} server did not start: {e}"))
}

/// Serves `Impl` on the broker at `url` with the given dedupe window; ready once a call is
/// answered.
async fn serve_queue(url: String, ready: std::sync::mpsc::Sender<Result<String, String>>, dedupe: Duration) {
    let broker = match Broker::connect(&url).await {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(format!("connect to {url}: {e}")));
            return;
        }
    };
    let server = LayeredQueueServer::new(Impl).dedupe_window(dedupe);
    let b = broker.clone();
    let serving = tokio::spawn(async move { server.serve(&b).await });
    let client = LayeredQueueClient::new(&broker).timeout(Duration::from_secs(10));
    let mut outcome = Err("no answer".to_owned());
    for _ in 0..500 {
        match client.record(Msg { id: call_id("ready"), ..Default::default() }).await {
            Ok(_) => {
                outcome = Ok(url.clone());
                break;
            }
            Err(s) if s.code() == Code::Unavailable && !serving.is_finished() => {
                outcome = Err(format!("{s:?}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(s) => {
                outcome = Err(format!("{s:?}"));
                break;
            }
        }
    }
    let _ = ready.send(outcome);
    let _ = serving.await;
}

/// A client of the named transport's server (started already), for a handler's next hop.
async fn relay_client(target: &str) -> Box<dyn Caller> {
    match target {
        "grpc" => Box::new(LayeredClient::new(Channel::from_shared(server(Kind::Grpc, None)).unwrap().connect().await.expect("connect"))),
        "rest" => Box::new(LayeredRestClient::new(&server(Kind::Rest, None)).expect("REST client")),
        "memory" => {
            let broker = Broker::connect(&server(Kind::Memory, Some("memory://client-layers".into()))).await.expect("broker");
            Box::new(LayeredQueueClient::new(&broker))
        }
        other => panic!("no relay to {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Test-only layers.

/// What a [`Recorder`] saw of one call.
#[derive(Clone, Debug)]
pub struct Observed {
    pub service: &'static str,
    pub method: &'static str,
    pub transport: TransportKind,
    pub deadline: Option<Duration>,
    pub tenant: Option<String>,
    pub idempotency_key: Option<String>,
    /// The outcome: the reply's `x-attempt` metadata, or the error code.
    pub outcome: Result<Option<String>, Code>,
}

/// Records every call it sees, and its outcome.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Observed>>);

impl Recorder {
    fn calls(&self) -> Vec<Observed> {
        self.0.lock().unwrap().clone()
    }
}

impl Layer for Recorder {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let text = |k: &str| call.metadata().get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut observed = Observed {
                service: call.service().full_name,
                method: call.method().name,
                transport: call.transport(),
                deadline: call.timeout(),
                tenant: text("x-tenant"),
                idempotency_key: call.idempotency_key().map(str::to_owned),
                outcome: Ok(None),
            };
            let outcome = next.run(call).await;
            observed.outcome = match &outcome {
                Ok(reply) => Ok(reply.metadata().get("x-attempt").and_then(|v| v.to_str().ok()).map(str::to_owned)),
                Err(status) => Err(status.code()),
            };
            self.0.lock().unwrap().push(observed);
            outcome
        })
    }
}

/// Re-sends a call that failed with UNAVAILABLE (after `backoff`), up to `max` attempts in all,
/// counting the attempts it makes.
pub struct RetryUnavailable {
    pub max: u32,
    pub backoff: Duration,
    pub attempts: AtomicU32,
}

impl RetryUnavailable {
    fn new(max: u32, backoff: Duration) -> Self {
        RetryUnavailable { max, backoff, attempts: AtomicU32::new(0) }
    }
}

impl Layer for RetryUnavailable {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                self.attempts.fetch_add(1, Ordering::SeqCst);
                match next.run(call.clone()).await {
                    Err(s) if s.code() == Code::Unavailable && attempt < self.max && call.can_resend() => {
                        attempt += 1;
                        tokio::time::sleep(self.backoff).await;
                    }
                    outcome => return outcome,
                }
            }
        })
    }
}

/// Sends every call twice, one attempt after the other, and answers the second outcome.
pub struct SendTwice;

impl Layer for SendTwice {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let first = next.run(call.clone()).await;
            let second = next.run(call).await;
            match (first, second) {
                // The first attempt's own error (e.g. UNIMPLEMENTED on queues) is what counts.
                (Err(first), _) => Err(first),
                (Ok(_), second) => second,
            }
        })
    }
}

fn layers(list: Vec<Arc<dyn Layer>>) -> Vec<Arc<dyn Layer>> {
    list
}

fn msg(id: &str) -> Msg {
    Msg { id: id.to_owned(), text: format!("text of {id}"), fail_times: 0 }
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// (a) A layer sees each call's service, method, transport, deadline and metadata, and the
/// reply's metadata; a call without a timeout has the client's default (none on gRPC and REST,
/// 10 s as set on the queue clients here).
pub async fn a_layer_sees_method_deadline_and_metadata(t: Transport) {
    let recorder = Arc::new(Recorder::default());
    let client = t.client(&layers(vec![recorder.clone()]));
    let id = call_id("sees");
    let options = CallOptions::new().timeout(Duration::from_secs(3)).metadata("x-tenant", "blue");
    let resp = client.record(options.request(msg(&id))).await.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    assert_eq!(resp.get_ref().id, id);
    let stream = client.record_stream(Request::new(msg(&format!("{id}-s")))).await.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    assert_eq!(stream.into_inner().collect::<Vec<_>>().await.len(), 2, "{}", t.name);

    let calls = recorder.calls();
    assert_eq!(calls.len(), 2, "{}: {calls:?}", t.name);
    let (unary, streaming) = (&calls[0], &calls[1]);
    assert_eq!((unary.service, unary.method), ("test.layers.v1.Layered", "Record"), "{}", t.name);
    assert_eq!(streaming.method, "RecordStream", "{}", t.name);
    let expected = match t.kind {
        Kind::Grpc => TransportKind::Grpc,
        Kind::Rest => TransportKind::Rest,
        _ => TransportKind::Queue,
    };
    assert_eq!(unary.transport, expected);
    let left = unary.deadline.unwrap_or_else(|| panic!("{}: the layer saw no deadline", t.name));
    assert!(left <= Duration::from_secs(3) && left > Duration::from_secs(2), "{}: {left:?} left of 3 s", t.name);
    assert_eq!(unary.tenant.as_deref(), Some("blue"), "{}", t.name);
    assert_eq!(unary.idempotency_key, None, "{}", t.name);
    assert_eq!(unary.outcome, Ok(Some("1".to_owned())), "{}: the layer sees the reply's metadata", t.name);
    match t.is_queue() {
        true => assert!(streaming.deadline.is_some_and(|d| d <= Duration::from_secs(10)), "{}: {:?}", t.name, streaming.deadline),
        false => assert_eq!(streaming.deadline, None, "{}", t.name),
    }
    assert_eq!(streaming.tenant, None, "{}", t.name);
}

/// (b) A retrying layer re-sends a call the server failed with UNAVAILABLE; the retry succeeds,
/// and the server saw the same request — message, metadata and idempotency key — on both
/// attempts. For unary and server-streaming calls.
pub async fn a_retrying_layer_resends_the_same_request(t: Transport) {
    let retry = Arc::new(RetryUnavailable::new(3, Duration::from_millis(5)));
    let recorder = Arc::new(Recorder::default());
    let client = t.client(&layers(vec![recorder.clone(), retry.clone()]));
    let id = call_id("retry");
    let sent = Msg { fail_times: 1, ..msg(&id) };
    let options = CallOptions::new().metadata("x-tenant", "green").idempotency_key(format!("key-{id}"));
    let resp = client.record(options.request(sent.clone())).await.unwrap_or_else(|e| panic!("{}: the retry failed: {e:?}", t.name));
    assert_eq!(resp.get_ref(), &sent, "{}", t.name);
    assert_eq!(resp.metadata().get("x-attempt").unwrap(), "2", "{}", t.name);
    assert_eq!(retry.attempts.load(Ordering::SeqCst), 2, "{}", t.name);

    let attempts = seen(&id);
    assert_eq!(attempts.len(), 2, "{}: the server saw {attempts:?}", t.name);
    for a in &attempts {
        assert_eq!(a.message, sent, "{}: the same request body on every attempt", t.name);
        assert_eq!(a.tenant.as_deref(), Some("green"), "{}", t.name);
        assert_eq!(a.idempotency_key.as_deref(), Some(format!("key-{id}").as_str()), "{}: the same idempotency key", t.name);
    }
    // The outer layer saw one call, and its final outcome.
    let calls = recorder.calls();
    assert_eq!(calls.len(), 1, "{}", t.name);
    assert_eq!(calls[0].outcome, Ok(Some("2".to_owned())), "{}", t.name);

    // A response stream: its first attempt fails before the stream starts.
    let id = call_id("retry-stream");
    let sent = Msg { fail_times: 1, ..msg(&id) };
    let stream = client.record_stream(Request::new(sent.clone())).await.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    let got: Vec<Msg> = stream.into_inner().map(|m| m.expect("a message")).collect().await;
    assert_eq!(got, vec![sent.clone(), sent.clone()], "{}", t.name);
    let attempts = seen(&id);
    assert_eq!(attempts.len(), 2, "{}", t.name);
    assert!(attempts.iter().all(|a| a.message == sent), "{}", t.name);
}

/// (c) Per-call options reach the server: the timeout (as the handler's deadline), metadata and
/// the idempotency key.
pub async fn per_call_options_reach_the_server(t: Transport) {
    let client = t.client(&[]);
    let id = call_id("options");
    let options = CallOptions::new()
        .timeout(Duration::from_millis(1500))
        .metadata("x-tenant", "red")
        .idempotency_key(format!("key-{id}"));
    client.record(options.request(msg(&id))).await.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    let attempts = seen(&id);
    assert_eq!(attempts.len(), 1, "{}", t.name);
    let a = &attempts[0];
    let left = a.deadline.unwrap_or_else(|| panic!("{}: the handler saw no deadline", t.name));
    assert!(left <= Duration::from_millis(1500) && left > Duration::from_millis(500), "{}: {left:?} left of 1.5 s", t.name);
    assert_eq!(a.tenant.as_deref(), Some("red"), "{}", t.name);
    assert_eq!(a.idempotency_key.as_deref(), Some(format!("key-{id}").as_str()), "{}", t.name);
}

/// A request stream is sent once: a layer's second attempt fails with FAILED_PRECONDITION saying
/// why (queues carry no request streams: the first attempt is already UNIMPLEMENTED).
pub async fn a_request_stream_cannot_be_resent(t: Transport) {
    let recorder = Arc::new(Recorder::default());
    let client = t.client(&layers(vec![recorder.clone(), Arc::new(SendTwice)]));
    let id = call_id("gather");
    let err = client.gather(Request::new(vec![msg(&id), msg(&id)])).await.expect_err("a re-sent request stream succeeded");
    if t.is_queue() {
        assert_eq!(err.code(), Code::Unimplemented, "{}: {err:?}", t.name);
    } else {
        assert_eq!(err.code(), Code::FailedPrecondition, "{}: {err:?}", t.name);
        assert!(err.message().contains("`Gather` streams its requests, which cannot be sent again"), "{}: {err:?}", t.name);
    }
    assert_eq!(recorder.calls()[0].method, "Gather", "{}", t.name);

    // Sent once, the stream goes through.
    let client = t.client(&layers(vec![recorder.clone()]));
    let result = client.gather(Request::new(vec![Msg { text: "a".into(), ..msg(&id) }, Msg { text: "b".into(), ..msg(&id) }])).await;
    match t.is_queue() {
        true => assert_eq!(result.unwrap_err().code(), Code::Unimplemented),
        false => assert_eq!(result.unwrap_or_else(|e| panic!("{}: {e:?}", t.name)).get_ref().text, "ab"),
    }
}

/// The call's deadline holds across a layer's attempts and waits: a layer that keeps retrying
/// is cut off at the deadline with DEADLINE_EXCEEDED.
pub async fn the_deadline_holds_across_attempts(t: Transport) {
    let retry = Arc::new(RetryUnavailable::new(u32::MAX, Duration::from_millis(20)));
    let client = t.client(&layers(vec![retry.clone()]));
    let id = call_id("deadline");
    let mut req = Request::new(Msg { fail_times: u32::MAX, ..msg(&id) });
    req.set_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let err = client.record(req).await.expect_err("a call that always fails succeeded");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}: {err:?}", t.name);
    assert!(started.elapsed() < Duration::from_secs(3), "{}: ended after {:?}", t.name, started.elapsed());
    assert!(retry.attempts.load(Ordering::SeqCst) >= 2, "{}: the layer retried", t.name);
    // Every attempt carried the time left, not the original 400 ms.
    let attempts = seen(&id);
    assert!(attempts.len() >= 2, "{}", t.name);
    let last = attempts.last().unwrap().deadline.expect("a deadline");
    assert!(last < Duration::from_millis(400), "{}: the last attempt had {last:?} left", t.name);
}

/// The policy document drives the same retries on every transport (`switchboard::policy`):
/// a keyed call the server fails twice with UNAVAILABLE is sent three times, each retry saying
/// how many attempts went before it; without a key (the method declares no idempotency) it is
/// sent once; and a `timeout` (here from a config given on the call) ends a call that keeps
/// failing with DEADLINE_EXCEEDED, waits included.
pub async fn the_policy_document_retries_alike_everywhere(t: Transport) {
    use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "test.layers.v1.Layered", "method": "Record"}], "timeout": "5s",
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.02s", "maxBackoff": "0.05s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap();
    let policy: Arc<dyn Layer> = Arc::new(PolicyLayer::new(Policies::new().runtime(config)));
    let client = t.client(&[policy]);

    let id = call_id("policy");
    let sent = Msg { fail_times: 2, ..msg(&id) };
    let resp = client.record(CallOptions::new().idempotency_key(format!("key-{id}")).request(sent.clone())).await;
    let resp = resp.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    assert_eq!(resp.metadata().get("x-attempt").unwrap(), "3", "{}", t.name);
    let previous: Vec<Option<String>> = seen(&id).into_iter().map(|a| a.previous_attempts).collect();
    assert_eq!(previous, [None, Some("1".into()), Some("2".into())], "{}", t.name);

    let id = call_id("policy-unkeyed");
    let err = client.record(Request::new(Msg { fail_times: 2, ..msg(&id) })).await.expect_err("a failing call succeeded");
    assert_eq!(err.code(), Code::Unavailable, "{}: {err:?}", t.name);
    assert_eq!(seen(&id).len(), 1, "{}: a call that is not safe to repeat is sent once", t.name);

    // A config given on the call comes first: here one whose backoff outlasts its timeout.
    let slow = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{}], "timeout": "0.6s",
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap();
    let slow = slow.method_config("any", "Any").unwrap().clone();
    let id = call_id("policy-timeout");
    let started = Instant::now();
    let req = CallOptions::new().idempotency_key(format!("key-{id}")).extension(slow).request(Msg { fail_times: u32::MAX, ..msg(&id) });
    let err = client.record(req).await.expect_err("a call that always fails succeeded");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}: {err:?}", t.name);
    assert!(started.elapsed() < Duration::from_secs(3), "{}: ended after {:?}", t.name, started.elapsed());
    let attempts = seen(&id);
    assert!((2..=3).contains(&attempts.len()), "{}: {} attempts", t.name, attempts.len());
    let first = attempts[0].deadline.unwrap_or_else(|| panic!("{}: the method timeout did not travel", t.name));
    assert!(first <= Duration::from_millis(600), "{}: the first attempt had {first:?} left", t.name);
}

/// Deadlines travel down a chain: a call with 300 ms reaches a handler that works 100 ms and then
/// calls the next hop (over gRPC, REST or the embedded broker) without a timeout of its own; the
/// next hop's handler sees the deadline it inherited, at most 200 ms away.
pub async fn the_deadline_travels_down_a_chain(t: Transport) {
    let next_hops: &[(&str, Kind)] = match t.kind {
        Kind::Grpc => &[("rest", Kind::Rest), ("memory", Kind::Memory)],
        Kind::Rest => &[("grpc", Kind::Grpc), ("memory", Kind::Memory)],
        _ => &[("grpc", Kind::Grpc), ("rest", Kind::Rest)],
    };
    for (name, kind) in next_hops {
        // The next hop's server runs before the handler needs it.
        let _ = server(*kind, (*kind == Kind::Memory).then(|| "memory://client-layers".to_owned()));
        let client = t.client(&[]);
        let id = call_id("chain");
        let mut req = Request::new(Msg { text: format!("relay:{name}"), ..msg(&id) });
        req.set_timeout(Duration::from_millis(300));
        client.record(req).await.unwrap_or_else(|e| panic!("{} → {name}: {e:?}", t.name));
        let hop = seen(&format!("{id}-hop"));
        assert_eq!(hop.len(), 1, "{} → {name}", t.name);
        let left = hop[0].deadline.unwrap_or_else(|| panic!("{} → {name}: the next hop saw no deadline", t.name));
        assert!(left <= Duration::from_millis(200), "{} → {name}: the next hop had {left:?} left of 300 ms - 100 ms", t.name);
    }
}

/// Cancellation travels down a chain as deadlines do: the caller of a handler that is waiting on
/// its own call to the next hop (gRPC, REST or the embedded broker) goes away, and the next hop's
/// handler sees its call cancelled.
pub async fn cancellation_travels_down_a_chain(t: Transport) {
    let next_hops: &[(&str, Kind)] = match t.kind {
        Kind::Grpc => &[("rest", Kind::Rest), ("memory", Kind::Memory)],
        Kind::Rest => &[("grpc", Kind::Grpc), ("memory", Kind::Memory)],
        _ => &[("grpc", Kind::Grpc), ("rest", Kind::Rest)],
    };
    for (name, kind) in next_hops {
        let _ = server(*kind, (*kind == Kind::Memory).then(|| "memory://client-layers".to_owned()));
        let id = call_id("cancel-chain");
        let hop = format!("{id}-hop");
        let hung = HUNG.notified();
        let mut hung = std::pin::pin!(hung);
        hung.as_mut().enable();
        let client = t.client(&[]);
        let call = tokio::spawn({
            let msg = Msg { text: format!("relay-hang:{name}"), ..msg(&id) };
            async move { client.record(Request::new(msg)).await }
        });
        // Wait (woken by the handler) until the next hop's handler is hanging.
        tokio::time::timeout(Duration::from_secs(10), async {
            while seen(&hop).is_empty() {
                hung.as_mut().await;
                hung.set(HUNG.notified());
                hung.as_mut().enable();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} → {name}: the next hop never ran", t.name));
        let cancelled = CANCELLED_NOTE.notified();
        let mut cancelled = std::pin::pin!(cancelled);
        cancelled.as_mut().enable();
        call.abort();
        let gone = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !CANCELLED.lock().unwrap().contains_key(&hop) {
                cancelled.as_mut().await;
                cancelled.set(CANCELLED_NOTE.notified());
                cancelled.as_mut().enable();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} → {name}: the next hop's handler was not cancelled when the caller went away", t.name));
        let after = CANCELLED.lock().unwrap()[&hop].saturating_duration_since(gone);
        assert!(after < Duration::from_millis(500), "{} → {name}: cancelled {after:?} after the caller went away", t.name);
    }
}

/// The circuit breaker of the policy document trips alike on every transport: after 4 failures
/// in a window of 4, a call fails at once with UNAVAILABLE and the server never sees it.
pub async fn the_breaker_trips_alike_everywhere(t: Transport) {
    use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "test.layers.v1.Layered"}], "x-switchboard": {"circuitBreaker": {
            "slidingWindowSize": 4, "minimumNumberOfCalls": 4, "failureRateThreshold": 50, "waitDurationInOpenState": "30s"}}}]}"#,
    )
    .unwrap();
    let client = t.client(&[Arc::new(PolicyLayer::new(Policies::new().runtime(config)))]);
    for _ in 0..4 {
        let id = call_id("breaker");
        let err = client.record(Request::new(Msg { fail_times: u32::MAX, ..msg(&id) })).await.expect_err("failed on purpose");
        assert!(err.message().contains("fails on purpose"), "{}: {err:?}", t.name);
        assert_eq!(seen(&id).len(), 1, "{}", t.name);
    }
    let id = call_id("breaker-open");
    let started = Instant::now();
    let err = client.record(Request::new(msg(&id))).await.expect_err("the breaker let a call through");
    assert_eq!(err.code(), Code::Unavailable, "{}: {err:?}", t.name);
    assert!(err.message().starts_with("circuit breaker open"), "{}: {err:?}", t.name);
    assert!(started.elapsed() < Duration::from_millis(50), "{}: took {:?}", t.name, started.elapsed());
    assert!(seen(&id).is_empty(), "{}: the server saw a call the breaker turned away", t.name);
}

/// Fails the first reply it sees with UNAVAILABLE, as if the answer had been lost on the way
/// back after the server ran the call.
#[derive(Default)]
pub struct LoseFirstReply {
    lost: std::sync::atomic::AtomicBool,
}

impl Layer for LoseFirstReply {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let outcome = next.run(call).await;
            if outcome.is_ok() && !self.lost.swap(true, Ordering::SeqCst) {
                return Err(Status::unavailable("the reply was lost"));
            }
            outcome
        })
    }
}

/// A keyed call runs once on every transport, however often it is sent: the server keeps the
/// answer for the key (one dedupe window on the call path of the gRPC, REST and queue servers).
/// - sent twice in a row, the second attempt gets the first run's answer;
/// - a non-idempotent method whose reply is lost: with a key the policy retries it and the
///   handler still runs once; without one it is never sent again.
pub async fn a_keyed_call_runs_once(t: Transport) {
    use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
    let client = t.client(&[Arc::new(SendTwice)]);
    let id = call_id("keyed");
    let resp = client.record(CallOptions::new().idempotency_key(format!("key-{id}")).request(msg(&id))).await;
    let resp = resp.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    assert_eq!(resp.metadata().get("x-attempt").unwrap(), "1", "{}: the second attempt got the first run's answer", t.name);
    assert_eq!(seen(&id).len(), 1, "{}: the handler ran once for two attempts with one key", t.name);

    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "test.layers.v1.Layered"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.02s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap();
    let policy: Arc<dyn Layer> = Arc::new(PolicyLayer::new(Policies::new().runtime(config)));
    let client = t.client(&[policy.clone(), Arc::new(LoseFirstReply::default())]);
    let id = call_id("keyed-lost");
    let resp = client.record(CallOptions::new().idempotency_key(format!("key-{id}")).request(msg(&id))).await;
    let resp = resp.unwrap_or_else(|e| panic!("{}: the keyed retry failed: {e:?}", t.name));
    assert_eq!(resp.metadata().get("x-attempt").unwrap(), "1", "{}: the retry was answered from the first run", t.name);
    assert_eq!(seen(&id).len(), 1, "{}: a keyed, retried call ran once", t.name);

    let client = t.client(&[policy, Arc::new(LoseFirstReply::default())]);
    let id = call_id("unkeyed-lost");
    let err = client.record(Request::new(msg(&id))).await.expect_err("the lost reply came back");
    assert_eq!(err.message(), "the reply was lost", "{}: {err:?}", t.name);
    assert_eq!(seen(&id).len(), 1, "{}: a non-idempotent call without a key is never sent again", t.name);
}

/// `maxRequestMessageBytes` and `maxResponseMessageBytes` hold alike everywhere: a request over
/// the limit is not sent (RESOURCE_EXHAUSTED, the server sees nothing), an answer over it fails
/// the call (RESOURCE_EXHAUSTED, after the server ran it), and calls within both go through.
pub async fn message_size_limits_hold(t: Transport) {
    use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "test.layers.v1.Layered"}], "maxRequestMessageBytes": 300, "maxResponseMessageBytes": 300}]}"#,
    )
    .unwrap();
    let client = t.client(&[Arc::new(PolicyLayer::new(Policies::new().runtime(config)))]);
    let id = call_id("too-big-request");
    let err = client.record(Request::new(Msg { text: "y".repeat(1_000), ..msg(&id) })).await.expect_err("an oversized request went out");
    assert_eq!(err.code(), Code::ResourceExhausted, "{}: {err:?}", t.name);
    assert!(err.message().starts_with("trying to send message larger than max"), "{}: {err:?}", t.name);
    assert!(seen(&id).is_empty(), "{}: the server saw an oversized request", t.name);

    let id = call_id("too-big-answer");
    let err = client.record(Request::new(Msg { text: "pad:1000".into(), ..msg(&id) })).await.expect_err("an oversized answer was taken");
    assert_eq!(err.code(), Code::ResourceExhausted, "{}: {err:?}", t.name);
    assert_eq!(seen(&id).len(), 1, "{}", t.name);

    let id = call_id("small-answer");
    let resp = client.record(Request::new(Msg { text: "pad:10".into(), ..msg(&id) })).await.unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    assert_eq!(resp.get_ref().text, "x".repeat(10), "{}", t.name);
}

/// One `#[tokio::test]` per case, for one transport.
macro_rules! cases {
    ($kind:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            crate::run($kind, crate::$case).await
        }
    )*};
}

macro_rules! every_transport {
    ($kind:expr) => {
        cases!($kind;
            a_layer_sees_method_deadline_and_metadata,
            a_retrying_layer_resends_the_same_request,
            per_call_options_reach_the_server,
            a_request_stream_cannot_be_resent,
            the_deadline_holds_across_attempts,
            the_policy_document_retries_alike_everywhere,
            the_deadline_travels_down_a_chain,
            the_breaker_trips_alike_everywhere,
            a_keyed_call_runs_once,
            cancellation_travels_down_a_chain,
            message_size_limits_hold,
        );
    };
}

mod grpc {
    every_transport!(crate::Kind::Grpc);
}

mod rest {
    every_transport!(crate::Kind::Rest);
}

mod memory {
    every_transport!(crate::Kind::Memory);
}

mod amqp {
    every_transport!(crate::Kind::Amqp);
}

mod nats {
    every_transport!(crate::Kind::Nats);
}
