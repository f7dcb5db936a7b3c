//! The OpenTelemetry bridge (feature `otel`) seen from an exporter: the process's subscriber is a
//! `tracing_subscriber` registry with `tracing_opentelemetry::layer()` over the SDK's tracer and
//! its in-memory exporter, servers run on loopback (gRPC, REST) and on the embedded broker, and
//! the cases assert on the spans a user's exporter receives: names, kinds, trace ids, parents.
//!
//! Cases: a call retried once is one client call span over two attempt spans, each the parent of
//! one server span (the ids sent in `traceparent` are the exported attempt spans'); a chain
//! gRPC → memory queue → REST is one trace where each server span's parent is the attempt span
//! its caller sent and each relayed call span's parent is the handler's server span.
//!
//! The servers run on threads of their own, so the subscriber is the process's global one; each
//! case picks its spans out of the exporter by its own trace id.
#![cfg(all(feature = "otel", feature = "grpc", feature = "rest", feature = "queue"))]

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use switchboard::client::CallOptions;
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::{Channel, Server};
use switchboard::observe::TraceContext;
use switchboard::queue::Broker;
use switchboard::{Code, Request, RequestExt, Response, Status};
use switchboard_test_support::ready::eventually;
use switchboard_test_support::server::{in_background, unique_id as id};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

// ---------------------------------------------------------------------------------------------
// The service: records the trace context each run of the handler saw, fails on request, relays.

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Hop {
    /// What the handler records under.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The transports of the next hops (`rest`, `memory`), first first.
    #[prost(string, repeated, tag = "2")]
    pub route: Vec<String>,
    /// The first `fail_times` runs of this id fail with UNAVAILABLE.
    #[prost(uint32, tag = "3")]
    pub fail_times: u32,
}

#[switchboard::service(package = "test.otel.v1")]
pub trait Relay {
    async fn hop(&self, req: Request<Hop>) -> Result<Response<Hop>, Status>;
}

/// The trace context (`RequestExt::trace_context`) of each run of the handler, by id.
static SEEN: LazyLock<Mutex<HashMap<String, Vec<TraceContext>>>> = LazyLock::new(Default::default);

fn seen(id: &str) -> Vec<TraceContext> {
    SEEN.lock().unwrap().get(id).cloned().unwrap_or_default()
}

struct Impl;

impl Relay for Impl {
    async fn hop(&self, req: Request<Hop>) -> Result<Response<Hop>, Status> {
        let trace = req.trace_context().cloned().expect("a traced call's trace context");
        let runs = {
            let mut all = SEEN.lock().unwrap();
            let runs = all.entry(req.get_ref().id.clone()).or_default();
            runs.push(trace);
            runs.len()
        };
        if runs <= req.get_ref().fail_times as usize {
            return Err(Status::unavailable(format!("run {runs} fails on purpose")));
        }
        let mut hop = req.into_inner();
        if !hop.route.is_empty() {
            let next = hop.route.remove(0);
            let relayed = Hop { id: format!("{}>{next}", hop.id), route: hop.route.clone(), fail_times: 0 };
            call(&next, None, Request::new(relayed)).await?;
        }
        Ok(Response::new(hop))
    }
}

// ---------------------------------------------------------------------------------------------
// Servers (one per transport for the whole process) and clients.

const BROKER: &str = "memory://otel";

fn grpc_address() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        in_background("otel-grpc", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = ready.send(Ok(format!("http://{}", listener.local_addr().unwrap())));
            Server::builder().add_service(RelayServer::new(Impl)).serve_with_incoming(TcpIncoming::from(listener)).await.expect("gRPC server");
        })
        .expect("the gRPC server started")
    })
}

fn rest_address() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        in_background("otel-rest", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = ready.send(Ok(format!("http://{}", listener.local_addr().unwrap())));
            RelayRestServer::new(Impl).serve(listener).await.expect("REST server");
        })
        .expect("the REST server started")
    })
}

/// Starts the queue server on the embedded broker once; ready when it has answered a call.
fn queue_started() {
    static STARTED: OnceLock<String> = OnceLock::new();
    STARTED.get_or_init(|| {
        in_background("otel-queue", |ready| async move {
            let broker = Broker::connect(BROKER).await.expect("embedded broker");
            let b = broker.clone();
            let serving = tokio::spawn(async move { RelayQueueServer::new(Impl).serve(&b).await });
            let client = RelayQueueClient::new(&broker);
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

/// Calls `hop` over `transport`, through the policy layer of service config `policy` if any.
async fn call(transport: &str, policy: Option<&str>, req: Request<Hop>) -> Result<Response<Hop>, Status> {
    use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
    let layer = policy.map(|json| PolicyLayer::new(Policies::new().runtime(ServiceConfig::from_json(json).unwrap())));
    match transport {
        "grpc" => {
            let channel = Channel::from_shared(grpc_address().to_owned()).unwrap().connect().await.expect("connect");
            let mut c = RelayClient::new(channel);
            if let Some(l) = layer {
                c = c.layer(l);
            }
            c.hop(req).await
        }
        "rest" => {
            let mut c = RelayRestClient::new(rest_address()).expect("REST client");
            if let Some(l) = layer {
                c = c.layer(l);
            }
            c.hop(req).await
        }
        "memory" => {
            queue_started();
            let mut c = RelayQueueClient::new(&Broker::connect(BROKER).await.expect("broker"));
            if let Some(l) = layer {
                c = c.layer(l);
            }
            c.hop(req).await
        }
        other => panic!("no transport {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The process's subscriber: switchboard's spans to OpenTelemetry, exported in memory.

fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let only_switchboard = tracing_subscriber::filter::Targets::new().with_target("switchboard", tracing::Level::INFO);
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("otel-test")).with_filter(only_switchboard);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).expect("the test's subscriber is the only one");
        exporter
    })
}

/// The exported spans of trace `trace_id`, once there are `count` of them (spans are exported
/// when they end, a server span just after its answer went out).
async fn exported(trace_id: [u8; 16], count: usize) -> Vec<SpanData> {
    let of_trace = || -> Vec<SpanData> {
        let all = exporter().get_finished_spans().expect("the exporter's spans");
        all.into_iter().filter(|s| s.span_context.trace_id().to_bytes() == trace_id).collect()
    };
    eventually(&format!("{count} exported spans of the trace"), Duration::from_secs(10), || of_trace().len() >= count).await;
    // Anything more would have ended with the rest.
    tokio::time::sleep(Duration::from_millis(50)).await;
    of_trace()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().into_owned())
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The one exported span whose span id is `id`.
fn by_id(spans: &[SpanData], id: [u8; 8]) -> &SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.span_context.span_id().to_bytes() == id).collect();
    assert_eq!(found.len(), 1, "one exported span with id {:?}: {spans:#?}", SpanId::from_bytes(id));
    found[0]
}

/// What every exported switchboard span says of itself: its `span_id`/`trace_id` fields (the W3C
/// ids switchboard propagates) are its OpenTelemetry ids.
fn assert_fields_are_the_otel_ids(spans: &[SpanData]) {
    for s in spans {
        assert_eq!(attribute(s, "span_id"), Some(s.span_context.span_id().to_string()), "{s:#?}");
        assert_eq!(attribute(s, "trace_id"), Some(s.span_context.trace_id().to_string()), "{s:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The cases.

const RETRY: &str = r#"{"methodConfig": [{"name": [{"service": "test.otel.v1.Relay"}],
    "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.02s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;

/// A gRPC call the server fails once (UNAVAILABLE) is retried once by the policy layer: the
/// exporter gets one client call span (a root), two attempt spans (children of the call span,
/// attempts 1 and 2) and two server spans, whose parents are the two attempt spans in order
/// (remote parents, from `traceparent`), all in one trace; each handler run saw its server span's
/// ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_is_one_call_span_two_attempt_spans_and_two_server_spans() {
    exporter();
    let key = id("retried");
    let req = CallOptions::new().idempotency_key(&key).request(Hop { id: key.clone(), route: vec![], fail_times: 1 });
    call("grpc", Some(RETRY), req).await.expect("the retry succeeds");
    let runs = seen(&key);
    assert_eq!(runs.len(), 2, "the handler ran twice: {runs:?}");
    let spans = exported(runs[0].trace_id(), 5).await;
    assert_eq!(spans.len(), 5, "call + 2 attempts + 2 server calls: {spans:#?}");
    assert_fields_are_the_otel_ids(&spans);

    let calls = named(&spans, "rpc.client.call");
    assert_eq!(calls.len(), 1, "{spans:#?}");
    let call = calls[0];
    assert_eq!(call.span_kind, SpanKind::Client);
    assert_eq!(call.parent_span_id, SpanId::INVALID, "the call made outside any span starts the trace");

    let mut attempts = named(&spans, "rpc.client.attempt");
    attempts.sort_by_key(|a| attribute(a, "attempt"));
    assert_eq!(attempts.iter().map(|a| attribute(a, "attempt").unwrap()).collect::<Vec<_>>(), ["1", "2"]);
    for a in &attempts {
        assert_eq!(a.span_kind, SpanKind::Client);
        assert_eq!(a.parent_span_id, call.span_context.span_id(), "an attempt span's parent is the call span");
        assert!(!a.parent_span_is_remote);
    }
    assert_eq!(attempts.iter().map(|a| attribute(a, "rpc.grpc.status_code").unwrap()).collect::<Vec<_>>(), ["14", "0"]);

    let servers = named(&spans, "rpc.server.call");
    assert_eq!(servers.len(), 2, "{spans:#?}");
    for (i, run) in runs.iter().enumerate() {
        let server = by_id(&spans, run.span_id());
        assert_eq!(server.name, "rpc.server.call", "run {i}'s trace context is its server span");
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_eq!(server.parent_span_id, attempts[i].span_context.span_id(), "run {i}'s server span is a child of attempt {}", i + 1);
        assert!(server.parent_span_is_remote, "the parent came in `traceparent`");
        assert_eq!(run.parent_span_id(), Some(attempts[i].span_context.span_id().to_bytes()), "what the handler saw agrees");
        assert_eq!(attribute(server, "transport").as_deref(), Some("grpc"));
    }
    let trace_id = call.span_context.trace_id();
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace_id), "one trace");
}

/// gRPC → memory queue → REST: handler A (gRPC) calls B over the embedded broker, which calls C
/// over REST. One trace of nine spans: each server span's parent is the attempt span its caller
/// sent, each attempt span's parent its call span, and the relayed call spans' parents are the
/// handlers' server spans (in process, not remote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_over_grpc_queue_and_rest_is_one_exported_trace() {
    exporter();
    let root = id("chain");
    call("grpc", None, Request::new(Hop { id: root.clone(), route: vec!["memory".into(), "rest".into()], fail_times: 0 })).await.expect("the chain answers");
    let hops: Vec<TraceContext> = [root.clone(), format!("{root}>memory"), format!("{root}>memory>rest")]
        .iter()
        .map(|id| {
            let runs = seen(id);
            assert_eq!(runs.len(), 1, "{id} ran once");
            runs[0].clone()
        })
        .collect();
    let spans = exported(hops[0].trace_id(), 9).await;
    assert_eq!(spans.len(), 9, "three hops of call + attempt + server call: {spans:#?}");
    assert_fields_are_the_otel_ids(&spans);
    assert!(hops.iter().all(|h| h.trace_id() == hops[0].trace_id()), "every handler saw the one trace");

    let mut caller: Option<&SpanData> = None;
    for (i, hop) in hops.iter().enumerate() {
        let server = by_id(&spans, hop.span_id());
        assert_eq!((server.name.as_ref(), server.span_kind.clone()), ("rpc.server.call", SpanKind::Server), "hop {i}");
        assert_eq!(attribute(server, "transport").as_deref(), Some(["grpc", "queue", "rest"][i]));
        assert!(server.parent_span_is_remote, "hop {i}: the parent came in `traceparent`");
        let attempt = by_id(&spans, server.parent_span_id.to_bytes());
        assert_eq!((attempt.name.as_ref(), attempt.span_kind.clone()), ("rpc.client.attempt", SpanKind::Client), "hop {i}");
        let call = by_id(&spans, attempt.parent_span_id.to_bytes());
        assert_eq!((call.name.as_ref(), call.span_kind.clone()), ("rpc.client.call", SpanKind::Client), "hop {i}");
        match caller {
            None => assert_eq!(call.parent_span_id, SpanId::INVALID, "the test's call starts the trace"),
            Some(handler) => {
                assert_eq!(call.parent_span_id, handler.span_context.span_id(), "hop {i}: called from inside the previous handler's server span");
                assert!(!call.parent_span_is_remote);
            }
        }
        caller = Some(server);
    }
}
