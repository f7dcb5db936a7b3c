//! The queue transport's behaviour, as one suite run against every broker: the embedded one
//! (`queue_memory.rs`), RabbitMQ (`queue_amqp.rs`) and NATS (`queue_nats.rs`).
//!
//! A code-first `Ledger` service with every shape: unary (metadata, errors with details,
//! deadlines), server streaming (ordered frames, an error after some messages), client streaming
//! (not carried: UNIMPLEMENTED), and two event methods (one that fails its first attempts, one
//! that always fails and ends in the dead-letter queue).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard::queue::Broker;
use switchboard::{Code, Request, RequestExt, Response, Status, Streaming};
use switchboard_test_support::ready::{eventually, retry_until};

#[derive(Clone, PartialEq, switchboard::prost::Message)]
#[prost(prost_path = "::switchboard::prost")]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int64, tag = "2")]
    pub amount: i64,
    /// Milliseconds the handler sleeps first.
    #[prost(uint32, tag = "3")]
    pub sleep_ms: u32,
    /// Fail with this code (0: succeed).
    #[prost(int32, tag = "4")]
    pub fail_code: i32,
    /// Streams: how many messages; events: how many attempts fail first.
    #[prost(uint32, tag = "5")]
    pub count: u32,
}

#[derive(Clone, PartialEq, switchboard::prost::Message)]
#[prost(prost_path = "::switchboard::prost")]
pub struct Empty {}

#[switchboard::service(package = "test.queue.v1", rest = false)]
pub trait Ledger {
    async fn echo(&self, req: Request<Entry>) -> Result<Response<Entry>, Status>;
    async fn count(&self, req: Request<Entry>) -> Result<Response<Streaming<Entry>>, Status>;
    async fn upload(&self, req: Request<Streaming<Entry>>) -> Result<Response<Entry>, Status>;
    #[rpc(event)]
    async fn record(&self, req: Request<Entry>) -> Result<Response<Empty>, Status>;
    #[rpc(event)]
    async fn poison(&self, req: Request<Entry>) -> Result<Response<Empty>, Status>;
}

/// The id of the readiness probe ([`until_serving`]): `echo` answers it without counting it.
pub const PROBE: &str = "ready-probe";

/// Counts what the handler did, by entry id.
#[derive(Default)]
pub struct Book {
    pub echoed: AtomicUsize,
    /// The ids `echo` started on, in order (the probe left out).
    pub started: Mutex<Vec<String>>,
    pub attempts: Mutex<HashMap<String, u32>>,
    pub recorded: Mutex<Vec<String>>,
}

#[derive(Clone, Default)]
pub struct Impl(pub Arc<Book>);

impl Ledger for Impl {
    async fn echo(&self, req: Request<Entry>) -> Result<Response<Entry>, Status> {
        let tenant = req.metadata().get("tenant").map(|v| v.to_str().unwrap().to_owned());
        let has_deadline = req.deadline().is_some();
        let entry = req.into_inner();
        if entry.id == PROBE {
            return Ok(Response::new(entry));
        }
        self.0.started.lock().unwrap().push(entry.id.clone());
        self.0.echoed.fetch_add(1, Ordering::SeqCst);
        if entry.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(entry.sleep_ms.into())).await;
        }
        if entry.fail_code != 0 {
            return Err(Status::with_details(Code::from_i32(entry.fail_code), format!("refused «{}»", entry.id), "details".into()));
        }
        let mut resp = Response::new(entry);
        if let Some(t) = tenant {
            resp.metadata_mut().insert("tenant", t.parse().unwrap());
        }
        resp.metadata_mut().insert("had-deadline", has_deadline.to_string().parse().unwrap());
        let mut trailers = switchboard::metadata::MetadataMap::new();
        trailers.insert("x-checksum", "sum-1".parse().unwrap());
        resp.extensions_mut().insert(switchboard::Trailers(trailers));
        Ok(resp)
    }

    async fn count(&self, req: Request<Entry>) -> Result<Response<Streaming<Entry>>, Status> {
        let entry = req.into_inner();
        let fail = entry.fail_code;
        let items = (0..entry.count).map(move |i| Ok(Entry { id: format!("{i}"), amount: i as i64, ..Default::default() }));
        let tail = (fail != 0).then(|| Err(Status::new(Code::from_i32(fail), "stream failed")));
        Ok(Response::new(Streaming::new(switchboard::stream::iter(items.chain(tail)))))
    }

    async fn upload(&self, _req: Request<Streaming<Entry>>) -> Result<Response<Entry>, Status> {
        Ok(Response::new(Entry::default()))
    }

    async fn record(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        let entry = req.into_inner();
        let attempt = {
            let mut attempts = self.0.attempts.lock().unwrap();
            let a = attempts.entry(entry.id.clone()).or_default();
            *a += 1;
            *a
        };
        if attempt <= entry.count {
            return Err(Status::unavailable(format!("attempt {attempt} of {} fails", entry.id)));
        }
        self.0.recorded.lock().unwrap().push(entry.id);
        Ok(Response::new(Empty {}))
    }

    async fn poison(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        let entry = req.into_inner();
        *self.0.attempts.lock().unwrap().entry(entry.id.clone()).or_default() += 1;
        Err(Status::internal(format!("cannot record {}", entry.id)))
    }
}

/// Starts a server for `impl_` on `broker` and returns its task.
pub async fn serve(broker: &Broker, impl_: Impl) -> tokio::task::JoinHandle<()> {
    let server = LedgerQueueServer::new(impl_)
        .max_attempts(3)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .ack_wait(Duration::from_secs(2));
    let serving = broker.clone();
    let task = tokio::spawn(async move {
        server.serve(&serving).await.expect("serve");
    });
    until_serving(broker).await;
    task
}

/// Returns once a server of `Ledger` answers on `broker`: the probe call succeeds (until a
/// server consumes, a call fails at once with UNAVAILABLE). The server sets up its request and
/// event consumers before it takes its first message, so both are in place then.
pub async fn until_serving(broker: &Broker) {
    let client = LedgerQueueClient::new(broker).timeout(Duration::from_secs(2));
    retry_until("a Ledger server to answer", Duration::from_secs(30), || {
        client.echo(Entry { id: PROBE.into(), ..Default::default() })
    })
    .await;
}

/// Returns once `echo` has started on `id`.
pub async fn until_started(book: &Book, id: &str) {
    eventually(&format!("echo to start on {id}"), Duration::from_secs(10), || book.started.lock().unwrap().iter().any(|s| s == id)).await;
}

/// The whole suite on one broker URL. `url` should be unique to this run where the broker is
/// shared (services are named per test by the caller's package; see `fresh`).
pub async fn run_all(url: &str) {
    let broker = Broker::connect(url).await.expect("connect");
    let book = Impl::default();
    let server = serve(&broker, book.clone()).await;
    let client = LedgerQueueClient::new(&broker).timeout(Duration::from_secs(10));

    // Unary: message, metadata both ways, deadline seen by the handler.
    let mut req = Request::new(Entry { id: "a".into(), amount: 42, ..Default::default() });
    req.metadata_mut().insert("tenant", "blue".parse().unwrap());
    let resp = client.echo(req).await.expect("echo");
    assert_eq!(resp.get_ref().amount, 42);
    assert_eq!(resp.metadata().get("tenant").unwrap(), "blue");
    assert_eq!(resp.metadata().get("had-deadline").unwrap(), "true");
    assert_eq!(resp.metadata().get("x-checksum").unwrap(), "sum-1", "trailers travel with the reply");

    // Errors: code, UTF-8 message and details come back.
    let err = client.echo(Entry { id: "b".into(), fail_code: Code::FailedPrecondition as i32, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "refused «b»");
    assert_eq!(err.details(), b"details");

    // Deadline: the caller gets DEADLINE_EXCEEDED on time.
    let mut slow = Request::new(Entry { id: "slow".into(), sleep_ms: 3000, ..Default::default() });
    slow.set_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = client.echo(slow).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Server streaming: ordered, then OK; or an error after some messages.
    let mut stream = client.count(Entry { count: 50, ..Default::default() }).await.expect("count").into_inner();
    let mut got = Vec::new();
    while let Some(e) = stream.message().await.expect("stream item") {
        got.push(e.amount);
    }
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    let mut stream = client.count(Entry { count: 3, fail_code: Code::Aborted as i32, ..Default::default() }).await.unwrap().into_inner();
    for _ in 0..3 {
        stream.message().await.unwrap().unwrap();
    }
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Aborted);
    let mut empty = client.count(Entry::default()).await.unwrap().into_inner();
    assert!(empty.message().await.unwrap().is_none());

    // Client streaming is not carried over queues.
    let err = client.upload(switchboard::stream::iter(vec![Entry::default()])).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // Idempotency: the same key twice runs the handler once, both callers get the answer.
    let before = book.0.echoed.load(Ordering::SeqCst);
    for _ in 0..2 {
        let mut req = Request::new(Entry { id: "idem".into(), amount: 7, ..Default::default() });
        req.metadata_mut().insert("idempotency-key", "key-1".parse().unwrap());
        assert_eq!(client.echo(req).await.unwrap().get_ref().amount, 7);
    }
    assert_eq!(book.0.echoed.load(Ordering::SeqCst) - before, 1, "a duplicate request ran twice");

    // Concurrency: many callers at once, every reply to its own caller.
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move { client.echo(Entry { id: format!("c{i}"), amount: i, ..Default::default() }).await.map(|r| r.into_inner().amount) }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.expect("concurrent echo"), i as i64);
    }

    // Events: published (confirmed), retried after failures, handled once.
    client.publish_record(Entry { id: "e1".into(), count: 0, ..Default::default() }).await.expect("publish");
    client.publish_record(Entry { id: "e2".into(), count: 2, ..Default::default() }).await.expect("publish");
    eventually("both events recorded", Duration::from_secs(10), || book.0.recorded.lock().unwrap().len() == 2).await;
    assert_eq!(book.0.attempts.lock().unwrap()["e2"], 3, "two failures, then success");

    // Poison: every attempt fails, then it is dead-lettered with the last error.
    client.publish_poison(Entry { id: "p1".into(), ..Default::default() }).await.expect("publish");
    let dead = retry_until("the poison event in the dead-letter queue", Duration::from_secs(10), || async {
        let dead = broker.dead_letters("test.queue.v1.Ledger", "Poison", 10).await.expect("dead letters");
        if dead.is_empty() { Err("none yet") } else { Ok(dead) }
    })
    .await;
    assert_eq!(dead.len(), 1, "one dead letter");
    assert_eq!(dead[0].header("sb-status"), Some("13"));
    assert_eq!(dead[0].header("sb-status-message"), Some("cannot record p1"));
    assert_eq!(book.0.attempts.lock().unwrap()["p1"], 3);

    server.abort();
    let _ = server.await;
    broker.close().await;
}

/// Nobody serves the service: the call fails fast with UNAVAILABLE.
pub async fn unserved_is_unavailable(url: &str) {
    let broker = Broker::connect(url).await.expect("connect");
    let client = LedgerQueueClient::new(&broker).timeout(Duration::from_secs(10));
    let started = std::time::Instant::now();
    let err = client.echo(Entry::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    broker.close().await;
}
