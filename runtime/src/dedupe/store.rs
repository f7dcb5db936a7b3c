//! Where the idempotency window keeps its keys: the [`DedupeStore`] trait, the in-process store,
//! and the window a server runs its keyed calls through ([`KeyWindow`]).
//!
//! ```text
//! keyed message ─▶ claim(key, claim id, lease) ─▶ Won      ─▶ run the handler (the lease renewed every lease/3)
//!                                                              ─▶ finish(answer, keep)  ─▶ reply ─▶ ack
//!                                              ─▶ Answered ─▶ reply with the stored answer ─▶ ack
//!                                              ─▶ Running  ─▶ wait(key), claim again
//! ```
//!
//! A run that ends without an answer to keep (a panic, a "try again" status, a dropped future)
//! releases its claim; a run whose process dies leaves it to lapse with its lease.
// The servers' side (`KeyWindow`) is used by the queue server only, for now.
#![cfg_attr(not(feature = "queue"), allow(dead_code))]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tonic::Status;

use super::{Begin, Dedupe, Kept, Running, MAX_KEPT_REPLY};

/// One run's claim on a key: a random id the run holds from its `claim` until its `finish` or
/// `release`, so that a store can tell the run that holds a key from one whose lease lapsed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClaimId(String);

impl ClaimId {
    /// A new random claim id (128 bits, hex).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ClaimId(format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)))
    }

    /// The id as text (ASCII, no spaces): what a store writes down.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A claim id a store read back (`as_str` of one).
    pub fn from_stored(id: impl Into<String>) -> Self {
        ClaimId(id.into())
    }
}

impl fmt::Debug for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimId({})", self.0)
    }
}

impl fmt::Display for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a finished run left for the duplicates of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The answer, as the transport encoded it (for a queue server: the reply frames, their
    /// headers and bodies, the status in the last one). Opaque to the store.
    Reply(Bytes),
    /// The key was answered, but its answer was too large to keep: duplicates are answered
    /// ABORTED instead of running again.
    NotKept,
}

/// What [`DedupeStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is this claim's now: run it, then `finish` or `release` it.
    Won,
    /// Another run holds the key (its lease has not lapsed): [`DedupeStore::wait`], then claim
    /// again.
    Running,
    /// The key was answered within its window: answer the duplicate with this.
    Answered(Answer),
}

/// A store could not be reached or answered something it should not have. A server answers the
/// call UNAVAILABLE (a retry may find the store back); an event is retried.
#[derive(Debug)]
pub struct StoreError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError { message: message.into(), source: None }
    }

    /// An error saying `message`, caused by `source`.
    pub fn with_source(message: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError { message: message.into(), source: Some(source.into()) }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Where an idempotency window keeps its keys: which key is being run (claimed, under a lease),
/// and the answer of each key answered within the window.
///
/// A server with a store runs a keyed call (a queue message with a `message-id`) like this:
/// [`claim`](Self::claim) the key with a fresh [`ClaimId`]; if it is [`Claimed::Won`], run the
/// handler, renewing the claim's lease with [`refresh`](Self::refresh) every third of it, then
/// [`finish`](Self::finish) with the answer (before the reply goes out and before the message is
/// acked), or [`release`](Self::release) when the answer says "try again" (CANCELLED,
/// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE, a panic), so a retry runs again. If it is
/// [`Claimed::Answered`], reply with the stored answer without running the handler; if
/// [`Claimed::Running`], [`wait`](Self::wait) and claim again.
///
/// Shipped: [`InProcessStore`] (one process; what servers use when given no store),
/// [`RedisStore`](super::RedisStore) (feature `redis`) and
/// [`NatsKvStore`](super::NatsKvStore) (feature `nats`), which the replicas of a service share.
///
/// **What a shared store guarantees.** A replica killed after its run stored the answer and before
/// it acked (or replied): the message is redelivered (or the caller retries with the same key) to
/// another replica, which finds the answer, replies with it and acks: the handler ran once. A
/// replica killed while the handler ran (the key claimed, no answer stored): its claim lapses
/// with its lease (the server's `dedupe_lease`, renewed while the handler runs, so a slow handler
/// keeps it), and the redelivery runs the handler again: its side effects may have happened in
/// part, so handlers whose side effects must happen exactly once make them idempotent or
/// transactional themselves. A claim also lapses when its holder cannot renew it for a whole
/// lease (the store unreachable from it, the process frozen): another run may then start while
/// the first still runs. A store that cannot be reached fails the call (UNAVAILABLE), it never
/// runs the handler unguarded.
///
/// Implementations must make `claim` atomic (two claims of a free key: one wins), and `finish`,
/// `refresh` and `release` conditional on the key still holding the caller's claim (a claim that
/// lapsed and was taken over is not theirs to change; `finish` may also store its answer when
/// the key is free). Keys are printable text of a few hundred bytes at most (the server's prefix
/// and the message id); stores encode them as they must.
pub trait DedupeStore: Send + Sync + 'static {
    /// Claims `key` for a run holding `claim`, for `lease` (renewed with `refresh`), unless it is
    /// answered or held by another run. A store without leases (one that lives and dies with
    /// the runs, [`InProcessStore`]) may ignore `lease`.
    fn claim<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>>;

    /// Stores `answer` for `key`, kept for `keep` (the window), if `key` is still held by
    /// `claim` (or free). Duplicates of `key` get it from now on.
    fn finish<'a>(&'a self, key: &'a str, claim: &'a ClaimId, answer: Answer, keep: Duration) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Renews `claim`'s lease on `key` for another `lease`: `Ok(false)` when the key is no longer
    /// held by `claim` (the lease lapsed and another run took it, or it was answered).
    fn refresh<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Frees `key` if `claim` holds it (the run ended without an answer to keep).
    fn release<'a>(&'a self, key: &'a str, claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Completes when `key` may have changed (answered, released, its lease lapsed), or after
    /// `poll` at the latest; the caller claims again then. The default sleeps `poll` (the server
    /// polls with a backoff from 5 ms up to a quarter of the lease); a store that can be told
    /// about changes completes sooner.
    fn wait<'a>(&'a self, key: &'a str, poll: Duration) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(tokio::time::sleep(poll))
    }
}

/// An answer held by the in-process store.
struct Held(Bytes);

impl Kept for Held {
    fn kept_size(&self) -> usize {
        self.0.len() + 32
    }
}

/// The idempotency window of one process behind [`DedupeStore`]: the window servers keep when
/// given no store, for several servers of one process to share (a queue server and the gRPC
/// server of one service, say). Claims have no lease (they end with the process); answers are
/// kept for the `keep` each `finish` asks, bounded by a number of keys and a byte budget (past
/// either, the answers that finished first are forgotten first).
///
/// ```
/// # use std::sync::Arc;
/// # use switchboard::{Request, Response, Status};
/// # #[switchboard::service(package = "hello.v1", grpc = false)]
/// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
/// # struct Impl;
/// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
/// use switchboard::dedupe::InProcessStore;
/// let store = Arc::new(InProcessStore::new(10_000, 16 * 1024 * 1024));
/// let server = GreeterQueueServer::new(Impl).dedupe_store(store);
/// # let _ = server;
/// ```
pub struct InProcessStore {
    window: Dedupe<Held>,
}

impl fmt::Debug for InProcessStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessStore").field("capacity", &self.window.capacity).field("max_bytes", &self.window.max_bytes).finish()
    }
}

impl Default for InProcessStore {
    /// 100,000 keys and 64 MiB of answers, as a queue server's own window.
    fn default() -> Self {
        InProcessStore::new(100_000, 64 * 1024 * 1024)
    }
}

impl InProcessStore {
    /// A store keeping at most `capacity` answered keys and `max_bytes` of answers (an answer
    /// larger than 256 KiB, or than the budget, is remembered as [`Answer::NotKept`]).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        InProcessStore { window: Dedupe::new(Duration::MAX, capacity, max_bytes) }
    }
}

impl DedupeStore for InProcessStore {
    fn claim<'a>(&'a self, key: &'a str, _claim: &'a ClaimId, _lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        let claimed = match self.window.begin(key) {
            Begin::Fresh(running) => {
                running.detach();
                Claimed::Won
            }
            Begin::Busy => Claimed::Running,
            Begin::Done(Some(held)) => Claimed::Answered(Answer::Reply(held.0.clone())),
            Begin::Done(None) => Claimed::Answered(Answer::NotKept),
        };
        Box::pin(std::future::ready(Ok(claimed)))
    }

    fn finish<'a>(&'a self, key: &'a str, _claim: &'a ClaimId, answer: Answer, keep: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        let held = match answer {
            Answer::Reply(bytes) => Some(Arc::new(Held(bytes))),
            Answer::NotKept => None,
        };
        self.window.finish_for(Arc::from(key), held, keep);
        Box::pin(std::future::ready(Ok(())))
    }

    fn refresh<'a>(&'a self, _key: &'a str, _claim: &'a ClaimId, _lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(Ok(true)))
    }

    fn release<'a>(&'a self, key: &'a str, _claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>> {
        self.window.release(key);
        Box::pin(std::future::ready(Ok(())))
    }

    fn wait<'a>(&'a self, key: &'a str, poll: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(poll, self.window.wait_while_running(key)).await;
        })
    }
}

/// A kept answer a shared store can hold: its bytes, and back.
pub(crate) trait Stored: Kept + Sized {
    fn encode(&self) -> Vec<u8>;
    /// `None` when `bytes` are not an answer of this kind (another version wrote them).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// The stored records of [`RedisStore`](super::RedisStore) and
/// [`NatsKvStore`](super::NatsKvStore): one value per key, tagged by its first byte.
///
/// ```text
/// c<lease in ms>:<claim id>   held by a run
/// a<answer bytes>             answered (Answer::Reply)
/// n                           answered, the answer not kept (Answer::NotKept)
/// ```
#[cfg_attr(not(any(feature = "redis", feature = "nats")), allow(dead_code))]
pub(crate) mod record {
    use super::{Answer, ClaimId};
    use bytes::Bytes;
    use std::time::Duration;

    /// A value read back.
    pub enum Record<'a> {
        Claim { id: &'a str, lease: Duration },
        Answer(Answer),
    }

    pub fn claim(id: &ClaimId, lease: Duration) -> Bytes {
        Bytes::from(format!("c{}:{}", lease.as_millis().max(1), id.as_str()))
    }

    pub fn answer(answer: &Answer) -> Bytes {
        match answer {
            Answer::Reply(bytes) => {
                let mut v = Vec::with_capacity(bytes.len() + 1);
                v.push(b'a');
                v.extend_from_slice(bytes);
                v.into()
            }
            Answer::NotKept => Bytes::from_static(b"n"),
        }
    }

    /// `None`: not a record of ours.
    pub fn read(value: &[u8]) -> Option<Record<'_>> {
        match value.split_first()? {
            (b'a', rest) => Some(Record::Answer(Answer::Reply(Bytes::copy_from_slice(rest)))),
            (b'n', []) => Some(Record::Answer(Answer::NotKept)),
            (b'c', rest) => {
                let text = std::str::from_utf8(rest).ok()?;
                let (ms, id) = text.split_once(':')?;
                Some(Record::Claim { id, lease: Duration::from_millis(ms.parse().ok()?) })
            }
            _ => None,
        }
    }
}

/// The window a server runs keyed calls through: its own in-process window (the default: kept
/// replies stay typed, nothing is encoded), or a [`DedupeStore`].
pub(crate) enum KeyWindow<R> {
    Local(Dedupe<R>),
    Shared(Shared),
}

/// A server's view of a store: its keys under `prefix`, answers kept for `keep`, claims under
/// `lease`, answers up to `max_reply` bytes.
pub(crate) struct Shared {
    pub store: Arc<dyn DedupeStore>,
    pub prefix: String,
    pub keep: Duration,
    pub lease: Duration,
    pub max_reply: usize,
}

/// What [`KeyWindow::claim`] found.
pub(crate) enum KeyClaim<'a, R: Kept> {
    /// Run it; dropped without [`Run::finish`], the run releases the key.
    Fresh(Run<'a, R>),
    /// Already answered; the answer, if it was kept.
    Done(Option<Arc<R>>),
}

/// A run holding its key.
pub(crate) enum Run<'a, R: Kept> {
    Local(Running<'a, R>),
    Shared(SharedRun),
}

/// A run's claim on a store's key: renewed by a task while held; released (from a spawned task)
/// when dropped unfinished.
pub(crate) struct SharedRun {
    store: Arc<dyn DedupeStore>,
    key: String,
    claim: ClaimId,
    keep: Duration,
    max_reply: usize,
    keepalive: Option<tokio::task::AbortHandle>,
    settled: bool,
}

impl<R: Stored> KeyWindow<R> {
    pub fn enabled(&self) -> bool {
        match self {
            KeyWindow::Local(d) => d.enabled(),
            KeyWindow::Shared(s) => !s.keep.is_zero(),
        }
    }

    /// The most bytes of answer worth keeping for one key.
    pub fn max_reply_bytes(&self) -> usize {
        match self {
            KeyWindow::Local(d) => d.max_reply_bytes(),
            KeyWindow::Shared(s) => s.max_reply,
        }
    }

    /// Claims `id` for a run, or returns the kept answer of a finished run; waits while another
    /// run holds it. Fails (UNAVAILABLE) only when the store cannot be reached.
    pub async fn claim(&self, id: &str) -> Result<KeyClaim<'_, R>, Status> {
        let shared = match self {
            KeyWindow::Local(d) => {
                return Ok(match d.claim(id).await {
                    super::Claim::Fresh(running) => KeyClaim::Fresh(Run::Local(running)),
                    super::Claim::Done(frames) => KeyClaim::Done(frames),
                });
            }
            KeyWindow::Shared(s) => s,
        };
        let key = format!("{}{id}", shared.prefix);
        let claim = ClaimId::new();
        let unavailable = |e: StoreError| Status::unavailable(format!("the idempotency store could not be reached: {e}"));
        let max_poll = (shared.lease / 4).clamp(Duration::from_millis(5), Duration::from_millis(200));
        let mut poll = Duration::from_millis(5).min(max_poll);
        loop {
            match shared.store.claim(&key, &claim, shared.lease).await.map_err(unavailable)? {
                Claimed::Won => {
                    let keepalive = tokio::spawn(keep_alive(shared.store.clone(), key.clone(), claim.clone(), shared.lease));
                    return Ok(KeyClaim::Fresh(Run::Shared(SharedRun {
                        store: shared.store.clone(),
                        key,
                        claim,
                        keep: shared.keep,
                        max_reply: shared.max_reply,
                        keepalive: Some(keepalive.abort_handle()),
                        settled: false,
                    })));
                }
                // An answer this build cannot read stands as one too large to keep: never run again.
                Claimed::Answered(Answer::Reply(bytes)) => return Ok(KeyClaim::Done(R::decode(&bytes).map(Arc::new))),
                Claimed::Answered(Answer::NotKept) => return Ok(KeyClaim::Done(None)),
                Claimed::Running => {
                    shared.store.wait(&key, poll).await;
                    poll = (poll * 2).min(max_poll);
                }
            }
        }
    }
}

/// Renews a claim's lease every third of it while the run lasts (the task is aborted then).
async fn keep_alive(store: Arc<dyn DedupeStore>, key: String, claim: ClaimId, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(1));
    loop {
        tokio::time::sleep(every).await;
        match store.refresh(&key, &claim, lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(key, "dedupe: the claim's lease lapsed while its handler ran; another run may have started");
                return;
            }
            Err(error) => tracing::warn!(key, %error, "dedupe: renewing the claim's lease failed; trying again"),
        }
    }
}

impl<R: Stored> Run<'_, R> {
    /// The run finished: duplicates get `frames` (when kept) for the rest of the window. With a
    /// store, returns once the store has the answer (or failed to take it: the claim then lapses
    /// with its lease).
    pub async fn finish(self, frames: Option<Arc<R>>) {
        match self {
            Run::Local(running) => running.finish(frames),
            Run::Shared(mut run) => {
                let answer = match frames.map(|f| f.encode()) {
                    Some(bytes) if bytes.len() <= run.max_reply => Answer::Reply(bytes.into()),
                    _ => Answer::NotKept,
                };
                run.stop_keepalive();
                run.settled = true;
                if let Err(error) = run.store.finish(&run.key, &run.claim, answer, run.keep).await {
                    tracing::warn!(key = run.key, %error, "dedupe: storing the answer failed; the key's claim lapses with its lease");
                }
            }
        }
    }
}

impl SharedRun {
    fn stop_keepalive(&mut self) {
        if let Some(task) = self.keepalive.take() {
            task.abort();
        }
    }
}

impl Drop for SharedRun {
    fn drop(&mut self) {
        self.stop_keepalive();
        if self.settled {
            return;
        }
        // Outside a runtime (shutting down), the claim lapses with its lease instead.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, key, claim) = (self.store.clone(), std::mem::take(&mut self.key), self.claim.clone());
        runtime.spawn(async move {
            if let Err(error) = store.release(&key, &claim).await {
                tracing::warn!(key, %error, "dedupe: releasing the claim failed; it lapses with its lease");
            }
        });
    }
}

/// Claims seen held by another run, by key: the revision seen and since when, for stores that
/// tell a lapsed lease by seeing a claim unchanged for a whole lease (no clocks compared).
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
#[derive(Default)]
pub(crate) struct Observed {
    seen: Mutex<HashMap<String, (u64, Instant)>>,
}

#[cfg_attr(not(feature = "nats"), allow(dead_code))]
impl Observed {
    /// Most keys remembered; past it, those seen longest ago are dropped (seeing them again
    /// starts their wait anew).
    const MAX: usize = 4096;

    /// Whether `key`'s claim at `revision` has been seen unchanged for `lease`.
    pub fn lapsed(&self, key: &str, revision: u64, lease: Duration) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((rev, since)) = seen.get(key) {
            if *rev == revision {
                return now.duration_since(*since) >= lease;
            }
        }
        if seen.len() >= Self::MAX {
            let mut ages: Vec<Instant> = seen.values().map(|(_, at)| *at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            seen.retain(|_, (_, at)| *at > cut);
        }
        seen.insert(key.to_owned(), (revision, now));
        false
    }

    /// Forgets `key` (claimed or answered).
    pub fn forget(&self, key: &str) {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// Queue reply frames as bytes: version 1, then per frame its headers and body (correlation ids
/// and reply addresses are the duplicate's own).
///
/// ```text
/// 0x01  u32 frames  { u32 headers { u32 len, name, u32 len, value }  u32 len, body }
/// ```
#[cfg(feature = "queue")]
impl Stored for Vec<crate::queue::wire::Envelope> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.kept_size());
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        out.push(1);
        out.extend_from_slice(&(self.len() as u32).to_be_bytes());
        for frame in self {
            out.extend_from_slice(&(frame.headers.len() as u32).to_be_bytes());
            for (name, value) in &frame.headers {
                put(&mut out, name.as_bytes());
                put(&mut out, value.as_bytes());
            }
            put(&mut out, &frame.body);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        struct Reader<'a>(&'a [u8]);
        impl<'a> Reader<'a> {
            fn u32(&mut self) -> Option<usize> {
                let (n, rest) = self.0.split_first_chunk::<4>()?;
                self.0 = rest;
                Some(u32::from_be_bytes(*n) as usize)
            }
            fn bytes(&mut self) -> Option<&'a [u8]> {
                let len = self.u32()?;
                if len > self.0.len() {
                    return None;
                }
                let (b, rest) = self.0.split_at(len);
                self.0 = rest;
                Some(b)
            }
            fn text(&mut self) -> Option<String> {
                std::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
            }
        }
        let (&1, rest) = bytes.split_first()? else { return None };
        let mut r = Reader(rest);
        let frames = r.u32()?;
        let mut out = Vec::with_capacity(frames.min(1024));
        for _ in 0..frames {
            let mut frame = crate::queue::wire::Envelope::default();
            let headers = r.u32()?;
            frame.headers.reserve(headers.min(256));
            for _ in 0..headers {
                let name = r.text()?;
                let value = r.text()?;
                frame.headers.push((name.into(), value.into()));
            }
            frame.body = Bytes::copy_from_slice(r.bytes()?);
            out.push(frame);
        }
        r.0.is_empty().then_some(out)
    }
}

/// The default a server's claims are held for, renewed every third of it while the handler runs.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The most bytes of answer a store keeps for one key, with a server's byte budget `max_bytes`.
pub(crate) fn max_reply(max_bytes: usize) -> usize {
    MAX_KEPT_REPLY.min(max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_process_store_claims_once_and_keeps_answers_for_their_time() {
        let store = InProcessStore::new(100, 1 << 20);
        let (a, b) = (ClaimId::new(), ClaimId::new());
        let lease = Duration::from_secs(1);
        assert_eq!(store.claim("k", &a, lease).await.unwrap(), Claimed::Won);
        assert_eq!(store.claim("k", &b, lease).await.unwrap(), Claimed::Running);
        store.finish("k", &a, Answer::Reply(Bytes::from_static(b"yes")), Duration::from_millis(30)).await.unwrap();
        assert_eq!(store.claim("k", &b, lease).await.unwrap(), Claimed::Answered(Answer::Reply(Bytes::from_static(b"yes"))));
        // A longer-kept answer in front does not keep a shorter one behind it alive.
        assert_eq!(store.claim("long", &a, lease).await.unwrap(), Claimed::Won);
        store.finish("long", &a, Answer::NotKept, Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.claim("short", &a, lease).await.unwrap(), Claimed::Won);
        store.finish("short", &a, Answer::NotKept, Duration::from_millis(30)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.claim("k", &b, lease).await.unwrap(), Claimed::Won, "expired");
        assert_eq!(store.claim("short", &b, lease).await.unwrap(), Claimed::Won, "expired behind a longer one");
        assert_eq!(store.claim("long", &b, lease).await.unwrap(), Claimed::Answered(Answer::NotKept));
        // Released: claimable again; a waiter is woken.
        let waiter = store.wait("short", Duration::from_secs(5));
        store.release("short", &b).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("woken");
        assert_eq!(store.claim("short", &a, lease).await.unwrap(), Claimed::Won);
    }

    #[cfg(feature = "queue")]
    #[tokio::test]
    async fn a_shared_window_answers_duplicates_from_the_store_and_releases_dropped_runs() {
        use crate::queue::wire::Envelope;
        let store: Arc<dyn DedupeStore> = Arc::new(InProcessStore::default());
        let window = |prefix: &str| {
            KeyWindow::<Vec<Envelope>>::Shared(Shared {
                store: store.clone(),
                prefix: prefix.into(),
                keep: Duration::from_secs(60),
                lease: Duration::from_secs(1),
                max_reply: 1024,
            })
        };
        // Two servers (replicas) sharing the store.
        let (one, two) = (window("svc/"), window("svc/"));
        let KeyClaim::Fresh(run) = one.claim("m-1").await.unwrap() else { panic!("not fresh") };
        let mut frame = Envelope::default();
        frame.push("sb-status", "5");
        frame.push("x-meta", "ü");
        frame.body = Bytes::from_static(b"body");
        run.finish(Some(Arc::new(vec![frame.clone(), Envelope::default()]))).await;
        let KeyClaim::Done(Some(kept)) = two.claim("m-1").await.unwrap() else { panic!("not answered") };
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].header("sb-status"), kept[0].header("x-meta"), &kept[0].body[..]), (Some("5"), Some("ü"), &b"body"[..]));
        // Another prefix (another service): another key.
        assert!(matches!(window("other/").claim("m-1").await.unwrap(), KeyClaim::Fresh(_)));
        // Dropped unfinished: released, so the next claim runs.
        let KeyClaim::Fresh(run) = one.claim("m-2").await.unwrap() else { panic!("not fresh") };
        drop(run);
        let claimed = tokio::time::timeout(Duration::from_secs(2), two.claim("m-2")).await.expect("released");
        assert!(matches!(claimed.unwrap(), KeyClaim::Fresh(_)));
        // Too large to keep: answered, not kept.
        let KeyClaim::Fresh(run) = one.claim("m-3").await.unwrap() else { panic!("not fresh") };
        frame.body = Bytes::from(vec![0u8; 2048]);
        run.finish(Some(Arc::new(vec![frame]))).await;
        assert!(matches!(two.claim("m-3").await.unwrap(), KeyClaim::Done(None)));
        assert!(<Vec<Envelope> as Stored>::decode(b"\x01\x00\x00\x00\x01\x00").is_none(), "truncated");
    }
}
