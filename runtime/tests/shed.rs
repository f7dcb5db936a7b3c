//! Load shedding on every server (`shed_load(max_in_flight, pushback)`): past the limit a call is
//! answered RESOURCE_EXHAUSTED at once with the pushback hint (`grpc-retry-pushback-ms`; REST also
//! `Retry-After`), the calls in flight are not disturbed, and a client whose policy retries
//! RESOURCE_EXHAUSTED waits for the hint before it tries again. The same case over gRPC, REST and
//! the embedded broker.
#![cfg(all(feature = "grpc", feature = "rest", feature = "queue"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard::client::{BoxFuture, Call, CallOptions, Layer, Next, Outcome};
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::{Channel, Server};
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::queue::Broker;
use switchboard::{Code, Request, Response, Status};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

#[switchboard::service(package = "test.shed.v1")]
pub trait Busy {
    /// Holds until the test releases it; answers the request text.
    async fn hold(&self, req: Request<String>) -> Result<Response<String>, Status>;
    /// Answers at once (readiness).
    async fn ping(&self, req: Request<String>) -> Result<Response<String>, Status>;
}

/// Handlers in flight, and the gate they wait at.
#[derive(Clone)]
struct Impl {
    in_flight: Arc<AtomicUsize>,
    entered: Arc<Notify>,
    open: watch::Receiver<bool>,
    runs: Arc<Mutex<Vec<String>>>,
}

impl Busy for Impl {
    async fn hold(&self, req: Request<String>) -> Result<Response<String>, Status> {
        self.runs.lock().unwrap().push(req.get_ref().clone());
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.entered.notify_waiters();
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(Response::new(req.into_inner()))
    }

    async fn ping(&self, req: Request<String>) -> Result<Response<String>, Status> {
        Ok(Response::new(req.into_inner()))
    }
}

/// One call, whatever the client.
type CallFn = Box<dyn Fn(Request<String>) -> BoxFuture<'static, Result<Response<String>, Status>> + Send + Sync>;

/// Tells the test when an attempt came back RESOURCE_EXHAUSTED.
struct ShedSeen(Arc<Notify>);

impl Layer for ShedSeen {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let outcome = next.run(call).await;
            if matches!(&outcome, Err(s) if s.code() == Code::ResourceExhausted) {
                self.0.notify_one();
            }
            outcome
        })
    }
}

const MAX: usize = 2;
const PUSHBACK: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Grpc,
    Rest,
    Memory,
}

/// Starts `kind`'s server with the load limit; a client maker (with layers).
async fn serve(kind: Kind, imp: Impl) -> Box<dyn Fn(Vec<Arc<dyn Layer>>) -> CallFn> {
    match kind {
        Kind::Grpc => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = format!("http://{}", listener.local_addr().unwrap());
            let service = BusyServer::new(imp).shed_load(MAX, PUSHBACK);
            tokio::spawn(Server::builder().add_service(service).serve_with_incoming(TcpIncoming::from(listener)));
            let channel = Channel::from_shared(address).unwrap().connect().await.unwrap();
            Box::new(move |layers| {
                let mut client = BusyClient::new(channel.clone());
                for l in layers {
                    client = client.layer(l);
                }
                Box::new(move |req| {
                    let mut client = client.clone();
                    Box::pin(async move { client.hold(req).await })
                })
            })
        }
        Kind::Rest => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = format!("http://{}", listener.local_addr().unwrap());
            let router = BusyRestServer::new(imp).into_rest_router().shed_load(MAX, PUSHBACK);
            tokio::spawn(router.serve(listener));
            Box::new(move |layers| {
                let mut client = BusyRestClient::new(&address).unwrap();
                for l in layers {
                    client = client.layer(l);
                }
                Box::new(move |req| {
                    let mut client = client.clone();
                    Box::pin(async move { client.hold(req).await })
                })
            })
        }
        Kind::Memory => {
            let url = format!("memory://shed-{}", std::process::id());
            let broker = Broker::connect(&url).await.unwrap();
            let server = BusyQueueServer::new(imp).prefetch(16).shed_load(MAX, PUSHBACK);
            let b = broker.clone();
            tokio::spawn(async move { server.serve(&b).await });
            // Ready once it answers (before it subscribes, the broker has no one to deliver to).
            let probe = BusyQueueClient::new(&broker).timeout(Duration::from_secs(1));
            let started = Instant::now();
            while let Err(e) = probe.ping(Request::new("ready?".into())).await {
                assert!(started.elapsed() < Duration::from_secs(10) && e.code() == Code::Unavailable, "the queue server did not start: {e:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Box::new(move |layers| {
                let mut client = BusyQueueClient::new(&broker).timeout(Duration::from_secs(10));
                for l in layers {
                    client = client.layer(l);
                }
                Box::new(move |req| {
                    let client = client.clone();
                    Box::pin(async move { client.hold(req).await })
                })
            })
        }
    }
}

/// Waits until `n` handlers are in flight (woken by the handlers, not by a timer).
async fn until_in_flight(imp: &Impl, n: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let entered = imp.entered.notified();
            let mut entered = std::pin::pin!(entered);
            entered.as_mut().enable();
            if imp.in_flight.load(Ordering::SeqCst) >= n {
                return;
            }
            entered.await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} handlers never ran at once"));
}

async fn sheds_with_pushback(kind: Kind) {
    let (open_tx, open) = watch::channel(false);
    let imp = Impl { in_flight: Arc::default(), entered: Arc::default(), open, runs: Arc::default() };
    let client = serve(kind, imp.clone()).await;
    let plain = client(Vec::new());

    let mut holders = Vec::new();
    for i in 0..MAX {
        holders.push(tokio::spawn(plain(Request::new(format!("held-{i}")))));
    }
    until_in_flight(&imp, MAX).await;

    // Full: the next call is shed at once, with the hint.
    let started = Instant::now();
    let err = plain(Request::new("shed".into())).await.expect_err("a call past the limit ran");
    let took = started.elapsed();
    assert_eq!(err.code(), Code::ResourceExhausted, "{kind:?}: {err:?}");
    assert_eq!(err.metadata().get("grpc-retry-pushback-ms").map(|v| v.to_str().unwrap()), Some("300"), "{kind:?}: {err:?}");
    if let Kind::Rest = kind {
        assert_eq!(err.metadata().get("retry-after").map(|v| v.to_str().unwrap()), Some("1"), "{kind:?}: {err:?}");
    }
    assert!(took < Duration::from_millis(250), "{kind:?}: shedding took {took:?}");
    assert!(!imp.runs.lock().unwrap().contains(&"shed".to_owned()), "{kind:?}: the handler ran a shed call");

    // A client whose policy retries RESOURCE_EXHAUSTED waits for the pushback, then gets through
    // (the holders are let go as soon as its first attempt was shed).
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "test.shed.v1.Busy"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                            "backoffMultiplier": 1, "retryableStatusCodes": ["RESOURCE_EXHAUSTED"]}}]}"#,
    )
    .unwrap();
    let shed_seen = Arc::new(Notify::new());
    let retrying = client(vec![Arc::new(PolicyLayer::new(Policies::new().runtime(config))), Arc::new(ShedSeen(shed_seen.clone()))]);
    let started = Instant::now();
    let key = format!("retried-{kind:?}");
    let retried = tokio::spawn(retrying(CallOptions::new().idempotency_key(&key).request("retried".into())));
    tokio::time::timeout(Duration::from_secs(10), shed_seen.notified()).await.expect("the first attempt was not shed");
    open_tx.send(true).unwrap();
    for h in holders {
        h.await.unwrap().unwrap_or_else(|e| panic!("{kind:?}: a call in flight failed: {e:?}"));
    }
    let resp = retried.await.unwrap().unwrap_or_else(|e| panic!("{kind:?}: the retried call failed: {e:?}"));
    assert_eq!(resp.get_ref(), "retried");
    let took = started.elapsed();
    assert!(took >= PUSHBACK - Duration::from_millis(10), "{kind:?}: retried after {took:?}, before the pushback");
    let runs = imp.runs.lock().unwrap();
    assert_eq!(runs.iter().filter(|r| *r == "retried").count(), 1, "{kind:?}: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_sheds_with_pushback() {
    sheds_with_pushback(Kind::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_sheds_with_pushback() {
    sheds_with_pushback(Kind::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_sheds_with_pushback() {
    sheds_with_pushback(Kind::Memory).await;
}
