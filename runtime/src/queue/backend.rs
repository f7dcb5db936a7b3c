//! What a broker backend provides. The server loop, the client and the dedupe window are
//! broker-neutral; a backend (memory, AMQP, NATS) only moves [`Envelope`]s and acks.
//!
//! Contract every backend keeps (the tests in `runtime/tests/queue_*.rs` check it):
//! - `request` returns once the request is on its way; the replies arrive through the
//!   [`Replies`] table given at connect, keyed by the envelope's correlation id. When nobody
//!   serves the service and the broker can tell (no queue / no responders), it fails with
//!   UNAVAILABLE at once.
//! - `publish` returns only once the broker holds the event (publisher confirm / PubAck).
//! - `serve_requests` / `serve_events` hand out deliveries until the broker is closed, across
//!   reconnects (the backend re-declares its topology). A delivery whose [`Acker`] is dropped
//!   without an answer goes back to the queue.
//! - When the connection drops, the backend calls [`Replies::fail_all`] so callers in flight
//!   finish with UNAVAILABLE.
//! - `cancel` publishes a cancel frame to every server of the service (nobody listening is not
//!   an error); `serve_cancels` hands a server every cancel frame of its service, across
//!   reconnects where the backend can.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;
use tonic::Status;

pub(crate) use super::ids::next_id;
use super::wire::Envelope;
use super::Broker;

/// One broker connection, as the rest of the queue transport sees it.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Sends a request for `service`/`method`. `env.correlation_id` is set; the backend sets
    /// `env.reply_to` to its reply address.
    fn request<'a>(&'a self, service: &'a str, method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>>;
    /// Publishes an event durably; returns once the broker has it.
    fn publish<'a>(&'a self, service: &'a str, method: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>>;
    /// Sends one reply frame to `reply_to` (correlation id set on `env`).
    fn reply<'a>(&'a self, reply_to: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>>;
    /// Starts consuming `spec.service`'s requests. The server polls the stream in its own loop,
    /// so a backend that can hand out deliveries straight from its subscription (NATS) saves a
    /// task hop per request.
    fn serve_requests(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>>;
    /// Starts consuming the events of `spec.methods` (durable, at-least-once).
    fn serve_events(&self, spec: ConsumerSpec) -> BoxFuture<'_, Result<Deliveries, Status>>;
    /// Publishes a cancel frame (`sb-cancel`, see [`super::wire::cancel_address`]) to every server of
    /// `service`. Best effort: returns once it is on its way; nobody listening is fine.
    fn cancel<'a>(&'a self, service: &'a str, env: Envelope) -> BoxFuture<'a, Result<(), Status>>;
    /// Starts receiving `service`'s cancel frames: every server hears every one.
    fn serve_cancels(&self, service: &'static str) -> BoxFuture<'_, Result<Cancels, Status>>;
    /// Takes up to `max` messages off `service`/`method`'s dead-letter queue (they are removed).
    fn take_dead_letters<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, Status>>;
    /// Closes the connection; consumers end.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// A unary call through the [`Replies`] table: registers a correlation id, sends the request
/// with `send`, and waits until `deadline` for the one reply. Given up on before the reply came
/// (its deadline passed, or this future was dropped: a hedged copy that lost, a caller that went
/// away), it tells the servers to stop running the request ([`Waiting`]).
pub(crate) async fn one_reply<F>(
    broker: &Broker,
    service: &'static str,
    mut env: Envelope,
    deadline: Instant,
    send: impl FnOnce(Envelope) -> F,
) -> Result<Envelope, Status>
where
    F: std::future::Future<Output = Result<(), Status>>,
{
    // The guard keeps the id's counter value, not a third copy of the id: it needs the id only
    // when the call is given up on.
    let seq = super::ids::next_seq();
    let id = super::ids::id_of(seq);
    let rx = broker.replies().register_once(id.clone());
    let mut waiting = Waiting::new(broker, service, String::new());
    waiting.seq = Some(seq);
    env.correlation_id = Some(id);
    send(env).await?;
    waiting.sent();
    let reply = tokio::time::timeout_at(deadline.into(), rx).await;
    match reply {
        Ok(Ok(frame)) => {
            waiting.answered();
            frame
        }
        Ok(Err(_)) => {
            waiting.answered();
            Err(Status::unavailable("the broker connection was lost"))
        }
        // Left armed: the servers are told to stop.
        Err(_) => Err(Status::deadline_exceeded("deadline exceeded waiting for the reply")),
    }
}

/// A server's deliveries, in order; the stream ends when the broker is closed.
pub(crate) type Deliveries = BoxStream<'static, Delivery>;

/// The deliveries a channel receives.
pub(crate) fn deliveries(rx: mpsc::Receiver<Delivery>) -> Deliveries {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|d| (d, rx)) }))
}

/// A server's cancel frames, in order; the stream ends when the broker is closed.
pub(crate) type Cancels = BoxStream<'static, Envelope>;

/// A call's reply slot while its request is out. Dropped, it forgets the slot; dropped after the
/// request was sent and before the call was answered (the caller gave up at its deadline or went
/// away: a hedged copy that lost, a dropped future), it also publishes a cancel frame for the
/// request, from a spawned task, so that the server running it stops
/// ([`Broker::cancel_soon`]). A reply that comes later finds no slot and is dropped.
pub(crate) struct Waiting<'a> {
    broker: &'a Broker,
    service: &'static str,
    /// The request's correlation id (empty when `seq` names it, or once handed over).
    pub id: String,
    /// The counter value the correlation id was made from, when the guard keeps that instead.
    pub seq: Option<u64>,
    /// Sent and not answered yet.
    armed: bool,
    /// Answered: the reply took the slot with it (nothing to forget).
    answered: bool,
}

impl<'a> Waiting<'a> {
    /// The slot of the request with correlation id `id` (registered by the caller), not sent yet.
    pub fn new(broker: &'a Broker, service: &'static str, id: String) -> Self {
        Waiting { broker, service, id, seq: None, armed: false, answered: false }
    }

    /// The request is on its way: from now on, giving up cancels it.
    pub fn sent(&mut self) {
        self.armed = true;
    }

    /// The call was answered (its reply took the slot), or failed for good with every slot
    /// (the connection was lost): nothing to cancel, nothing to forget.
    pub fn answered(&mut self) {
        self.armed = false;
        self.answered = true;
    }

    /// The server has stopped (a stream's last frame came): nothing to cancel, but the slot,
    /// which a stream keeps for all its frames, is forgotten on drop.
    pub fn finished(&mut self) {
        self.armed = false;
    }

    /// Hands the slot over (a reply stream owns it from here): the correlation id, and whether
    /// the request is still out. The slot is not forgotten.
    pub fn hand_over(mut self) -> (String, bool) {
        let armed = std::mem::replace(&mut self.armed, false);
        let id = match self.seq.take() {
            Some(seq) => super::ids::id_of(seq),
            None => std::mem::take(&mut self.id),
        };
        (id, armed)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let id = match self.seq.take() {
            Some(seq) => super::ids::id_of(seq),
            None if self.id.is_empty() => return, // handed over
            None => std::mem::take(&mut self.id),
        };
        self.broker.replies().remove(&id);
        if self.armed {
            self.broker.cancel_soon(self.service, id);
        }
    }
}

/// What a server consumes.
#[cfg_attr(not(feature = "nats"), allow(dead_code))] // `ack_wait` is for brokers that redeliver by timer (JetStream)
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSpec {
    /// Fully-qualified service name.
    pub service: &'static str,
    /// Wire names of the methods served (event methods for `serve_events`).
    pub methods: Vec<&'static str>,
    /// Most deliveries handed out and not yet acked (AMQP prefetch, JetStream max ack pending).
    pub prefetch: u16,
    /// How long the broker waits for an ack before redelivering (JetStream `ack_wait`; AMQP
    /// redelivers when the channel closes instead).
    pub ack_wait: Duration,
}

/// One message handed to a server.
#[cfg_attr(not(any(feature = "amqp", feature = "nats")), allow(dead_code))]
pub(crate) struct Delivery {
    /// The message.
    pub env: Envelope,
    /// Delivery attempt, 1-based: the broker's count (JetStream) or the `sb-attempt` header.
    pub attempt: u32,
    /// Whether the broker says it delivered this message before (informational: the dedupe
    /// window, not this flag, decides whether a message runs again).
    #[allow(dead_code)]
    pub redelivered: bool,
    /// Settles the message.
    pub acker: Box<dyn Acker>,
}

/// Settles one delivery. Dropping it unsettled hands the message back to the broker (at once
/// for the embedded broker, when the channel closes for AMQP, after `ack_wait` for JetStream).
pub(crate) trait Acker: Send + 'static {
    /// Done: the broker forgets the message.
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), Status>>;
    /// Failed: deliver it again after `delay`, as attempt `next_attempt`.
    fn retry(self: Box<Self>, delay: Duration, next_attempt: u32) -> BoxFuture<'static, Result<(), Status>>;
    /// Poison: move it to the dead-letter address with `extra` headers (the last error), then ack.
    fn dead_letter(self: Box<Self>, extra: Vec<(String, String)>) -> BoxFuture<'static, Result<(), Status>>;
}

/// A client's calls in flight, by correlation id; backends feed replies in.
#[derive(Default)]
#[cfg_attr(not(any(feature = "amqp", feature = "nats")), allow(dead_code))]
pub(crate) struct Replies {
    pending: Mutex<HashMap<String, Waiter>>,
}

/// Where a call's replies go: a oneshot for unary calls (cheaper than a channel per call), a
/// channel for streams.
enum Waiter {
    Once(tokio::sync::oneshot::Sender<Result<Envelope, Status>>),
    Stream(mpsc::UnboundedSender<Result<Envelope, Status>>),
}

impl Waiter {
    fn send(self, item: Result<Envelope, Status>) {
        match self {
            Waiter::Once(tx) => drop(tx.send(item)),
            Waiter::Stream(tx) => drop(tx.send(item)),
        }
    }
}

#[cfg_attr(not(any(feature = "amqp", feature = "nats")), allow(dead_code))]
impl Replies {
    /// Registers a call; its replies arrive on the receiver.
    pub fn register(&self, correlation_id: String) -> mpsc::UnboundedReceiver<Result<Envelope, Status>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.lock().unwrap().insert(correlation_id, Waiter::Stream(tx));
        rx
    }

    /// Registers a unary call: one reply.
    pub fn register_once(&self, correlation_id: String) -> tokio::sync::oneshot::Receiver<Result<Envelope, Status>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending.lock().unwrap().insert(correlation_id, Waiter::Once(tx));
        rx
    }

    /// Forgets a call (it ended or its caller went away).
    pub fn remove(&self, correlation_id: &str) {
        self.pending.lock().unwrap().remove(correlation_id);
    }

    /// Routes a reply to its call. Replies for calls no longer waiting (late, after a deadline,
    /// or for a hedged copy that lost) are dropped without a word: nothing to report, nothing kept.
    pub fn deliver(&self, env: Envelope) {
        let Some(id) = env.correlation_id.as_deref() else { return };
        let mut pending = self.pending.lock().unwrap();
        match pending.get(id) {
            Some(Waiter::Stream(tx)) => drop(tx.send(Ok(env))),
            Some(Waiter::Once(_)) => {
                if let Some(w) = pending.remove(id) {
                    drop(pending);
                    w.send(Ok(env));
                }
            }
            None => {}
        }
    }

    /// Fails one call (e.g. the broker returned its request as unroutable).
    pub fn fail(&self, correlation_id: &str, status: Status) {
        if let Some(tx) = self.pending.lock().unwrap().remove(correlation_id) {
            tx.send(Err(status));
        }
    }

    /// Fails every call in flight: the connection their replies would come through is gone.
    pub fn fail_all(&self, status: &Status) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        for (_, tx) in pending {
            tx.send(Err(Status::new(status.code(), status.message())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_for_a_call_given_up_on_is_dropped_and_leaves_nothing_behind() {
        let broker = Broker::memory();
        let replies = broker.replies();
        let rx = replies.register_once("gone".into());
        {
            // Sent, then dropped unanswered (a losing hedged copy): the slot goes.
            let mut waiting = Waiting::new(&broker, "test.Late", "gone".into());
            waiting.sent();
        }
        assert!(rx.await.is_err(), "the slot was dropped");
        let late = Envelope { correlation_id: Some("gone".into()), ..Envelope::default() };
        replies.deliver(late);
        replies.fail("gone", Status::unavailable("returned"));
        assert!(replies.pending.lock().unwrap().is_empty(), "a late reply left an entry");
    }
}
