//! Observability (`switchboard::observe`) seen from outside, on real servers: gRPC and REST on
//! loopback and the embedded broker. A `tracing` subscriber of the test's own collects every
//! switchboard span with its fields, a `metrics` recorder of the test's own counts every metric.
//!
//! Cases: a chain gRPC → memory queue → REST is one trace (each server span's parent is the
//! attempt span its caller sent, each hop's call span is a child of the handler's server span);
//! retries under the policy layer get one attempt span each, which the server sees as its
//! parent; the metric counts equal what happened (attempts, calls, retries, handler runs) on
//! every transport.
#![cfg(all(feature = "grpc", feature = "rest", feature = "queue"))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use switchboard::client::CallOptions;
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::{Channel, Server};
use switchboard::observe::{names, TraceContext};
use switchboard::queue::Broker;
use switchboard::{Code, Request, RequestExt, Response, Status};
use switchboard_test_support::server::{in_background, unique_id as id};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// The service: records the trace context each attempt's handler saw, then relays.

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Hop {
    /// What the handler records under.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The transports of the next hops (`grpc`, `rest`, `memory`), first first.
    #[prost(string, repeated, tag = "2")]
    pub route: Vec<String>,
    /// The first `fail_times` attempts of this id fail with UNAVAILABLE.
    #[prost(uint32, tag = "3")]
    pub fail_times: u32,
}

#[switchboard::service(package = "test.observe.v1")]
pub trait Traced {
    async fn hop(&self, req: Request<Hop>) -> Result<Response<Hop>, Status>;
}

/// One handler run: the trace context and attempt number it saw.
#[derive(Clone, Debug)]
struct Seen {
    trace: TraceContext,
    attempt: u32,
}

static SEEN: LazyLock<Mutex<HashMap<String, Vec<Seen>>>> = LazyLock::new(Default::default);

fn seen(id: &str) -> Vec<Seen> {
    SEEN.lock().unwrap().get(id).cloned().unwrap_or_default()
}

struct Impl;

impl Traced for Impl {
    async fn hop(&self, req: Request<Hop>) -> Result<Response<Hop>, Status> {
        let trace = req.trace_context().cloned().expect("a traced caller's trace context");
        let n = {
            let mut all = SEEN.lock().unwrap();
            let runs = all.entry(req.get_ref().id.clone()).or_default();
            runs.push(Seen { trace, attempt: req.attempt() });
            runs.len()
        };
        if n <= req.get_ref().fail_times as usize {
            return Err(Status::unavailable(format!("run {n} fails on purpose")));
        }
        let mut hop = req.into_inner();
        if !hop.route.is_empty() {
            let next = hop.route.remove(0);
            let relayed = Hop { id: format!("{}>{next}", hop.id), route: hop.route.clone(), fail_times: 0 };
            call(&next, &[], Request::new(relayed)).await?;
        }
        Ok(Response::new(hop))
    }
}

// ---------------------------------------------------------------------------------------------
// Servers (one per transport for the whole process) and clients.

const BROKER: &str = "memory://observe";

fn grpc_address() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        in_background("observe-grpc", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = ready.send(Ok(format!("http://{}", listener.local_addr().unwrap())));
            Server::builder().add_service(TracedServer::new(Impl)).serve_with_incoming(TcpIncoming::from(listener)).await.expect("gRPC server");
        })
        .expect("the gRPC server started")
    })
}

fn rest_address() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        in_background("observe-rest", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = ready.send(Ok(format!("http://{}", listener.local_addr().unwrap())));
            TracedRestServer::new(Impl).serve(listener).await.expect("REST server");
        })
        .expect("the REST server started")
    })
}

/// Starts the queue server on the embedded broker once; ready when it has answered a call.
fn queue_started() {
    static STARTED: OnceLock<String> = OnceLock::new();
    STARTED.get_or_init(|| {
        in_background("observe-queue", |ready| async move {
            let broker = Broker::connect(BROKER).await.expect("embedded broker");
            let b = broker.clone();
            let serving = tokio::spawn(async move { TracedQueueServer::new(Impl).serve(&b).await });
            let client = TracedQueueClient::new(&broker);
            for _ in 0..500 {
                match client.hop(Hop { id: "ready".into(), ..Default::default() }).await {
                    Err(s) if s.code() == Code::Unavailable && !serving.is_finished() => tokio::task::yield_now().await,
                    _ => break,
                }
            }
            let _ = ready.send(Ok(String::new()));
            let _ = serving.await;
        })
        .expect("the queue server started")
    });
}

/// Calls `hop` over `transport` with the policy layer `policy` (a service config), if any.
async fn call(transport: &str, policy: &[&str], req: Request<Hop>) -> Result<Response<Hop>, Status> {
    use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
    let layer = policy.first().map(|json| PolicyLayer::new(Policies::new().runtime(ServiceConfig::from_json(json).unwrap())));
    match transport {
        "grpc" => {
            let channel = Channel::from_shared(grpc_address().to_owned()).unwrap().connect().await.expect("connect");
            let mut c = TracedClient::new(channel);
            if let Some(l) = layer {
                c = c.layer(l);
            }
            c.hop(req).await
        }
        "rest" => {
            let mut c = TracedRestClient::new(rest_address()).expect("REST client");
            if let Some(l) = layer {
                c = c.layer(l);
            }
            c.hop(req).await
        }
        "memory" => {
            queue_started();
            let mut c = TracedQueueClient::new(&Broker::connect(BROKER).await.expect("broker"));
            if let Some(l) = layer {
                c = c.layer(l);
            }
            c.hop(req).await
        }
        other => panic!("no transport {other}"),
    }
}

/// One case at a time: the metric counts are process-wide.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// A tracing subscriber that keeps every switchboard span: name, fields, parent.

#[derive(Clone, Debug, Default)]
struct SpanRecord {
    name: &'static str,
    fields: HashMap<&'static str, String>,
    parent: Option<u64>,
}

impl SpanRecord {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Collector {
    spans: Mutex<HashMap<u64, SpanRecord>>,
    next: AtomicU64,
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl tracing::Subscriber for &'static Collector {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "switchboard"
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut record = SpanRecord { name: attrs.metadata().name(), ..Default::default() };
        attrs.record(&mut Fields(&mut record.fields));
        record.parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => STACK.with(|s| s.borrow().last().copied()),
            None => None,
        };
        self.spans.lock().unwrap().insert(id, record);
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        if let Some(r) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut r.fields));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, span: &tracing::span::Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &tracing::span::Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|x| *x == span.into_u64()) {
                s.remove(i);
            }
        });
    }
}

fn collector() -> &'static Collector {
    static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let c: &'static Collector = Box::leak(Box::default());
        tracing::subscriber::set_global_default(c).expect("the test's subscriber is the only one");
        c
    })
}

fn spans() -> HashMap<u64, SpanRecord> {
    collector().spans.lock().unwrap().clone()
}

/// The span whose W3C span id (hex) is `span_id`: exactly one.
fn by_span_id<'a>(spans: &'a HashMap<u64, SpanRecord>, span_id: &str) -> (u64, &'a SpanRecord) {
    let found: Vec<_> = spans.iter().filter(|(_, s)| s.field("span_id") == Some(span_id)).collect();
    assert_eq!(found.len(), 1, "one span with id {span_id}: {found:?}");
    (*found[0].0, found[0].1)
}

fn hex(id: [u8; 8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// A metrics recorder that counts.

#[derive(Default)]
struct Histo(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Histo {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Counting {
    counters: Mutex<HashMap<(String, Labels), Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<(String, Labels), Arc<Histo>>>,
}

fn key_of(key: &metrics::Key) -> (String, Labels) {
    let mut labels: Labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
    labels.sort();
    (key.name().to_owned(), labels)
}

impl metrics::Recorder for Counting {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.counters.lock().unwrap().entry(key_of(key)).or_default().clone())
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.histograms.lock().unwrap().entry(key_of(key)).or_default().clone())
    }
}

fn recorder() -> &'static Counting {
    static RECORDER: OnceLock<&'static Counting> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let r: &'static Counting = Box::leak(Box::default());
        metrics::set_global_recorder(r).expect("the test's recorder is the only one");
        switchboard::observe::record_metrics();
        r
    })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    l.sort();
    l
}

fn counter(name: &str, pairs: &[(&str, &str)]) -> u64 {
    recorder().counters.lock().unwrap().get(&(name.to_owned(), labels(pairs))).map_or(0, |c| c.load(Ordering::Relaxed))
}

fn histogram(name: &str, pairs: &[(&str, &str)]) -> Vec<f64> {
    recorder().histograms.lock().unwrap().get(&(name.to_owned(), labels(pairs))).map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// gRPC → memory queue → REST: the client's call starts a trace (a subscriber records it); every
/// handler sees that trace id, and the span ids chain up from the last server span to the
/// client's call span, alternating server span ← attempt span ← call span, with the in-process
/// (tracing) parents agreeing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_over_grpc_queue_and_rest_is_one_trace() {
    collector();
    let _one = ONE_AT_A_TIME.lock().await;
    let root = id("chain");
    let first = Hop { id: root.clone(), route: vec!["memory".into(), "rest".into()], fail_times: 0 };
    call("grpc", &[], Request::new(first)).await.expect("the chain answers");

    let hops = [seen(&root), seen(&format!("{root}>memory")), seen(&format!("{root}>memory>rest"))];
    for (i, runs) in hops.iter().enumerate() {
        assert_eq!(runs.len(), 1, "hop {i} ran once: {runs:?}");
    }
    let contexts: Vec<&TraceContext> = hops.iter().map(|runs| &runs[0].trace).collect();
    let trace_id = contexts[0].trace_id_hex();
    assert!(contexts.iter().all(|c| c.trace_id_hex() == trace_id), "one trace id: {contexts:?}");

    let spans = spans();
    // From the last server span up to the root, by W3C parent ids.
    let mut names = Vec::new();
    let mut at = contexts[2].span_id_hex();
    loop {
        let (_, span) = by_span_id(&spans, &at);
        assert_eq!(span.field("trace_id"), Some(trace_id.as_str()), "{span:?}");
        names.push(span.name);
        match span.field("parent_span_id") {
            Some(parent) => at = parent.to_owned(),
            None => break,
        }
    }
    let tree = ["rpc.server.call", "rpc.client.attempt", "rpc.client.call"];
    let expected: Vec<&str> = tree.iter().cycle().take(9).copied().collect();
    assert_eq!(names, expected, "server ← attempt ← call, three hops, up to the client's call span");
    // Each handler's context is its server span; its parent is the attempt span its caller sent.
    for c in &contexts {
        let (_, server) = by_span_id(&spans, &c.span_id_hex());
        assert_eq!(server.name, "rpc.server.call");
        let (_, attempt) = by_span_id(&spans, &hex(c.parent_span_id().expect("a remote parent")));
        assert_eq!(attempt.name, "rpc.client.attempt");
    }
    // In process: the relayed calls' call spans are children of the handlers' server spans, and
    // each attempt span a child of its call span.
    for (server, next) in contexts.iter().zip(&contexts[1..]) {
        let (attempt_key, attempt) = by_span_id(&spans, &hex(next.parent_span_id().unwrap()));
        let call_key = attempt.parent.expect("an attempt span has its call span as parent");
        let call = &spans[&call_key];
        assert_eq!(call.name, "rpc.client.call", "{attempt_key}");
        let (server_key, _) = by_span_id(&spans, &server.span_id_hex());
        assert_eq!(call.parent, Some(server_key), "the relayed call was made inside the handler's server span");
    }
    let transports: Vec<_> = contexts.iter().map(|c| by_span_id(&spans, &c.span_id_hex()).1.field("transport").unwrap().to_owned()).collect();
    assert_eq!(transports, ["grpc", "queue", "rest"]);
}

const RETRY: &str = r#"{"methodConfig": [{"name": [{"service": "test.observe.v1.Traced"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.01s", "maxBackoff": "0.02s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;

/// A call the server fails twice is sent three times by the policy layer: three attempt spans
/// under one call span, three distinct span ids, and the server saw each as its parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retry_is_its_own_attempt_span_on_every_transport() {
    collector();
    let _one = ONE_AT_A_TIME.lock().await;
    for transport in ["grpc", "rest", "memory"] {
        let key = id(&format!("retried-{transport}"));
        let req = CallOptions::new().idempotency_key(&key).request(Hop { id: key.clone(), route: vec![], fail_times: 2 });
        call(transport, &[RETRY], req).await.unwrap_or_else(|e| panic!("{transport}: {e:?}"));
        let runs = seen(&key);
        assert_eq!(runs.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3], "{transport}");
        let spans = spans();
        let parents: Vec<String> = runs.iter().map(|r| hex(r.trace.parent_span_id().unwrap())).collect();
        let attempts: Vec<(u64, &SpanRecord)> = parents.iter().map(|p| by_span_id(&spans, p)).collect();
        assert!(attempts.iter().all(|(_, a)| a.name == "rpc.client.attempt"), "{transport}: {attempts:?}");
        let numbers: Vec<_> = attempts.iter().map(|(_, a)| a.field("attempt").unwrap().to_owned()).collect();
        assert_eq!(numbers, ["1", "2", "3"], "{transport}");
        let call = attempts[0].1.parent.expect("a call span");
        assert!(attempts.iter().all(|(_, a)| a.parent == Some(call)), "{transport}: one call span over the attempts");
        let mut distinct = parents.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{transport}: {parents:?}");
        assert!(runs.iter().all(|r| r.trace.trace_id() == runs[0].trace.trace_id()), "{transport}: one trace");
        let codes: Vec<_> = attempts.iter().map(|(_, a)| a.field("rpc.grpc.status_code").unwrap().to_owned()).collect();
        assert_eq!(codes, ["14", "14", "0"], "{transport}: UNAVAILABLE twice, then OK");
        assert_eq!(spans[&call].field("attempts"), Some("3"), "{transport}");
    }
}

/// Counts on every transport: 3 calls, each failed once by the server and retried once, are 6
/// attempts started (3 UNAVAILABLE, 3 OK), 3 calls (OK) with one retry each, and 6 handler runs
/// counted by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_counts_equal_what_happened_on_every_transport() {
    collector();
    recorder();
    // Started before counting: the queue server's readiness calls count too.
    queue_started();
    let _one = ONE_AT_A_TIME.lock().await;
    const METHOD: &str = "test.observe.v1.Traced/Hop";
    for (transport, label) in [("grpc", "grpc"), ("rest", "rest"), ("memory", "queue")] {
        let plain = [(names::METHOD, METHOD), (names::TRANSPORT, label)];
        let status = |code: &'static str| [(names::METHOD, METHOD), (names::TRANSPORT, label), (names::STATUS, code)];
        let server = [(names::METHOD, METHOD), (names::TRANSPORT, label)];
        let before = (
            counter(names::CLIENT_ATTEMPT_STARTED, &plain),
            histogram(names::CLIENT_ATTEMPT_DURATION, &status("UNAVAILABLE")).len(),
            histogram(names::CLIENT_ATTEMPT_DURATION, &status("OK")).len(),
            histogram(names::CLIENT_CALL_DURATION, &status("OK")).len(),
            histogram(names::CLIENT_CALL_RETRIES, &plain).len(),
            counter(names::SERVER_CALL_STARTED, &server),
        );
        let mut runs = 0;
        for _ in 0..3 {
            let key = id(&format!("counted-{transport}"));
            let req = CallOptions::new().idempotency_key(&key).request(Hop { id: key.clone(), route: vec![], fail_times: 1 });
            call(transport, &[RETRY], req).await.unwrap_or_else(|e| panic!("{transport}: {e:?}"));
            runs += seen(&key).len() as u64;
        }
        assert_eq!(runs, 6, "{transport}: each call ran twice");
        assert_eq!(counter(names::CLIENT_ATTEMPT_STARTED, &plain) - before.0, 6, "{transport}: attempts started");
        assert_eq!(histogram(names::CLIENT_ATTEMPT_DURATION, &status("UNAVAILABLE")).len() - before.1, 3, "{transport}");
        assert_eq!(histogram(names::CLIENT_ATTEMPT_DURATION, &status("OK")).len() - before.2, 3, "{transport}");
        assert_eq!(histogram(names::CLIENT_CALL_DURATION, &status("OK")).len() - before.3, 3, "{transport}: calls");
        let retries = histogram(names::CLIENT_CALL_RETRIES, &plain);
        assert_eq!(&retries[before.4..], [1.0, 1.0, 1.0], "{transport}: one retry per call");
        assert_eq!(counter(names::SERVER_CALL_STARTED, &server) - before.5, runs, "{transport}: server calls = handler runs");
        assert!(histogram(names::CLIENT_CALL_HEDGES, &plain).is_empty(), "{transport}: no hedges");
    }
}
