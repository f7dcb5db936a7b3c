//! Cancellation over queues, as one case run against every broker (`queue_memory.rs`,
//! `queue_amqp.rs`, `queue_nats.rs`): a caller that gives up on a request sends a cancel frame
//! (docs/queue-protocol.md, "Cancel"), and the server running it drops the handler, whose
//! `Cancellation` fires. Hedged copies carry message ids of their own; the losing copy is
//! cancelled once the winner has answered.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::queue::{Broker, MessageId};
use switchboard::{Request, RequestExt, Response, Status, Streaming};
use switchboard_test_support::ready::{eventually, retry_until};

/// How soon after its caller gave up a request's handler must see its cancellation.
pub const WITHIN: Duration = Duration::from_millis(50);

#[derive(Clone, PartialEq, switchboard::prost::Message)]
#[prost(prost_path = "::switchboard::prost")]
pub struct Ask {
    #[prost(string, tag = "1")]
    pub id: String,
    /// The first request for this id hangs until it is cancelled; later ones answer at once.
    #[prost(bool, tag = "2")]
    pub hang_first: bool,
    /// Every request for this id hangs until it is cancelled.
    #[prost(bool, tag = "3")]
    pub hang: bool,
}

#[switchboard::service(package = "test.queue.cancel.v1", rest = false)]
pub trait Stall {
    #[rpc(idempotent)]
    async fn look(&self, req: Request<Ask>) -> Result<Response<Ask>, Status>;
    /// One message, then nothing until the caller goes away.
    #[rpc(idempotent)]
    async fn ticks(&self, req: Request<Ask>) -> Result<Response<Streaming<Ask>>, Status>;
}

/// The readiness probe's id (not recorded).
const PROBE: &str = "probe";

/// What the handlers saw, by request id.
#[derive(Default)]
pub struct Log {
    /// Each request that reached a handler: its message id.
    pub arrivals: Mutex<HashMap<String, Vec<Option<String>>>>,
    /// When a handler's `Cancellation` fired.
    pub cancelled: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Log {
    /// Records an arrival; whether it is the first for `id`.
    fn arrive(&self, id: &str, message_id: Option<String>) -> bool {
        let mut arrivals = self.arrivals.lock().unwrap();
        let seen = arrivals.entry(id.to_owned()).or_default();
        seen.push(message_id);
        seen.len() == 1
    }

    /// Records when the call's cancellation fires (a task of its own: the handler's future is
    /// dropped then).
    fn watch(self: &Arc<Self>, id: &str, cancellation: switchboard::Cancellation) {
        let (log, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            cancellation.cancelled().await;
            log.cancelled.lock().unwrap().entry(id).or_default().push(Instant::now());
        });
    }

    fn arrivals(&self, id: &str) -> Vec<Option<String>> {
        self.arrivals.lock().unwrap().get(id).cloned().unwrap_or_default()
    }

    /// Waits until the handler of `id` saw its cancellation, and returns when.
    async fn until_cancelled(&self, id: &str) -> Instant {
        eventually(&format!("the handler of {id} to see its cancellation"), Duration::from_secs(5), || {
            self.cancelled.lock().unwrap().contains_key(id)
        })
        .await;
        self.cancelled.lock().unwrap()[id][0]
    }
}

#[derive(Clone, Default)]
pub struct Handler(pub Arc<Log>);

impl Stall for Handler {
    async fn look(&self, req: Request<Ask>) -> Result<Response<Ask>, Status> {
        let message_id = req.extensions().get::<MessageId>().map(|id| id.0.clone());
        let cancellation = req.cancellation();
        let ask = req.into_inner();
        if ask.id == PROBE {
            return Ok(Response::new(ask));
        }
        let first = self.0.arrive(&ask.id, message_id);
        self.0.watch(&ask.id, cancellation);
        if ask.hang || (ask.hang_first && first) {
            std::future::pending::<()>().await;
        }
        Ok(Response::new(ask))
    }

    async fn ticks(&self, req: Request<Ask>) -> Result<Response<Streaming<Ask>>, Status> {
        let message_id = req.extensions().get::<MessageId>().map(|id| id.0.clone());
        self.0.watch(&req.get_ref().id, req.cancellation());
        let ask = req.into_inner();
        self.0.arrive(&ask.id, message_id);
        let rest = futures_util::stream::pending();
        Ok(Response::new(Streaming::new(switchboard::stream::iter(vec![Ok(ask)]).chain(rest))))
    }
}

/// Asserts that `cancelled` came at most [`WITHIN`] after `gave_up`.
fn soon_after(what: &str, gave_up: Instant, cancelled: Instant) {
    let after = cancelled.saturating_duration_since(gave_up);
    assert!(after <= WITHIN, "{what}: the handler saw its cancellation {after:?} after the caller gave up");
}

/// Every case on one broker URL.
pub async fn run_all(url: &str) {
    let broker = Broker::connect(url).await.expect("connect");
    let log = Arc::new(Log::default());
    let server = StallQueueServer::new(Handler(log.clone()));
    let serving = broker.clone();
    let server = tokio::spawn(async move { server.serve(&serving).await.expect("serve") });
    let plain = StallQueueClient::new(&broker).timeout(Duration::from_secs(10));
    retry_until("a Stall server to answer", Duration::from_secs(30), || plain.look(Ask { id: PROBE.into(), ..Default::default() })).await;

    // Hedged: the first copy hangs, the second answers at once. The call succeeds, the copies
    // carried different message ids, and the hung copy is cancelled soon after the answer.
    let config = ServiceConfig::from_json(
        r#"{"methodConfig":[{"name":[{"service":"test.queue.cancel.v1.Stall"}],"hedgingPolicy":{"maxAttempts":2,"hedgingDelay":"0.02s"}}]}"#,
    )
    .expect("service config");
    let hedged = StallQueueClient::new(&broker).timeout(Duration::from_secs(10)).layer(PolicyLayer::new(Policies::new().runtime(config)));
    let answer = hedged.look(Ask { id: "hedged".into(), hang_first: true, ..Default::default() }).await.expect("hedged call");
    let answered = Instant::now();
    assert_eq!(answer.get_ref().id, "hedged");
    soon_after("the losing hedged copy", answered, log.until_cancelled("hedged").await);
    let ids = log.arrivals("hedged");
    assert_eq!(ids.len(), 2, "both copies ran: {ids:?}");
    assert!(ids.iter().all(Option::is_some), "a hedged copy without a message id: {ids:?}");
    assert_ne!(ids[0], ids[1], "the copies shared a message id");

    // With an idempotency key: the first copy carries the key, the second the key with `.h2`.
    let mut keyed = Request::new(Ask { id: "hedged-keyed".into(), hang_first: true, ..Default::default() });
    keyed.metadata_mut().insert("idempotency-key", "key-7".parse().unwrap());
    hedged.look(keyed).await.expect("keyed hedged call");
    let answered = Instant::now();
    soon_after("the losing keyed copy", answered, log.until_cancelled("hedged-keyed").await);
    assert_eq!(log.arrivals("hedged-keyed"), [Some("key-7".to_owned()), Some("key-7.h2".to_owned())]);
    // The cancelled copy's key was released, not remembered: the call again runs again (and the
    // first arrival for the id is over, so it answers).
    let mut again = Request::new(Ask { id: "hedged-keyed".into(), hang_first: true, ..Default::default() });
    again.metadata_mut().insert("idempotency-key", "key-7".parse().unwrap());
    plain.look(again).await.expect("the key again");
    assert_eq!(log.arrivals("hedged-keyed").len(), 3, "a cancelled run was remembered by the dedupe window");

    // A plain call whose caller stops waiting (the future is dropped) is cancelled on the server.
    let dropped = tokio::time::timeout(Duration::from_millis(100), plain.look(Ask { id: "dropped".into(), hang: true, ..Default::default() })).await;
    let gave_up = Instant::now();
    assert!(dropped.is_err(), "the hanging call answered");
    soon_after("a dropped call", gave_up, log.until_cancelled("dropped").await);
    assert_eq!(log.arrivals("dropped").len(), 1);

    // A call whose deadline passes: stopped on the server too (by the cancel frame, or by the
    // server's own clock, as the deadline travels with the request).
    let mut short = Request::new(Ask { id: "deadline".into(), hang: true, ..Default::default() });
    short.set_timeout(Duration::from_millis(100));
    let err = StallQueueClient::new(&broker).look(short).await.unwrap_err();
    let gave_up = Instant::now();
    assert_eq!(err.code(), switchboard::Code::DeadlineExceeded, "{err:?}");
    soon_after("a call past its deadline", gave_up, log.until_cancelled("deadline").await);

    // A reply stream dropped before its end stops the server's stream.
    let mut ticks = plain.ticks(Ask { id: "stream".into(), ..Default::default() }).await.expect("ticks").into_inner();
    assert_eq!(ticks.message().await.expect("first tick").expect("a message").id, "stream");
    drop(ticks);
    let gave_up = Instant::now();
    soon_after("a dropped reply stream", gave_up, log.until_cancelled("stream").await);

    // Answered calls send no cancel: nothing fired for the probe's id or for a call that ended.
    plain.look(Ask { id: "answered".into(), ..Default::default() }).await.expect("plain call");
    plain.look(Ask { id: "answered".into(), ..Default::default() }).await.expect("plain call");
    assert!(!log.cancelled.lock().unwrap().contains_key("answered"), "an answered call was cancelled");

    server.abort();
    let _ = server.await;
    broker.close().await;
}

/// A request cancelled while it still waits in the queue (the server's one slot is busy) is
/// not run when the server gets to it.
pub async fn queued_and_cancelled_is_not_run(url: &str) {
    let broker = Broker::connect(url).await.expect("connect");
    let log = Arc::new(Log::default());
    let server = StallQueueServer::new(Handler(log.clone())).prefetch(1);
    let serving = broker.clone();
    let server = tokio::spawn(async move { server.serve(&serving).await.expect("serve") });
    let client = StallQueueClient::new(&broker).timeout(Duration::from_secs(10));
    retry_until("a Stall server to answer", Duration::from_secs(30), || client.look(Ask { id: PROBE.into(), ..Default::default() })).await;

    // The one slot: a call that hangs.
    let busy = tokio::spawn({
        let client = client.clone();
        async move { client.look(Ask { id: "busy".into(), hang: true, ..Default::default() }).await }
    });
    eventually("the busy call to start", Duration::from_secs(5), || !log.arrivals("busy").is_empty()).await;
    // Queued behind it, and given up on there.
    let queued = tokio::time::timeout(Duration::from_millis(100), client.look(Ask { id: "queued".into(), ..Default::default() })).await;
    assert!(queued.is_err(), "the queued call was answered while the slot was busy");
    // Free the slot: the busy call's caller goes away too.
    busy.abort();
    let _ = busy.await;
    log.until_cancelled("busy").await;
    // The slot takes the queue in order: once a call sent after `queued` is answered, the
    // server has dealt with `queued`.
    client.look(Ask { id: "after".into(), ..Default::default() }).await.expect("a call after");
    assert!(log.arrivals("queued").is_empty(), "a request cancelled in the queue ran");

    server.abort();
    let _ = server.await;
    broker.close().await;
}
