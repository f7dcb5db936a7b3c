//! The idempotency window: keys seen recently, so a redelivered or retried call with the same
//! key is not executed twice. A duplicate of a finished call gets the first reply again; a
//! duplicate of one still running waits for it.
//!
//! ONE window for every transport: the queue server keys it by message id (the caller's
//! idempotency key, or one the client made for the call's attempts), the gRPC and REST servers by
//! the method and the caller's `idempotency-key` ([`http`]). What a transport keeps of a reply is
//! its own (`R`: queue frames, an HTTP response); how long and how much is kept, who waits and
//! what is forgotten are decided here.
//!
//! A run holds its id through a [`Running`] guard. The guard is released by dropping it, so a
//! handler that panics, a call future that is dropped (server shutdown, an aborted task) and an
//! early return all free the id: a redelivery then runs again instead of waiting forever. Only
//! [`Running::finish`] records the id as done.
//!
//! The window is bounded three ways: by age (`window`), by the number of finished ids kept
//! (`capacity`) and by the bytes they hold (`max_bytes`: the kept reply frames plus a per-entry
//! overhead). Past either bound the oldest finished entries go first; running ones are never
//! evicted (they are bounded by the server's prefetch).
//!
//! Where the window keeps its keys is pluggable ([`DedupeStore`]): in this process by default
//! (the window above; [`InProcessStore`] is the same window behind the trait), or in a store the
//! replicas of a service share, so that a message redelivered to another replica is answered
//! from the first run instead of running again: [`RedisStore`] (feature `redis`, any broker) and
//! [`NatsKvStore`] (feature `nats`, a JetStream key-value bucket). Queue servers take one with
//! `QueueServer::dedupe_store`; what a shared store guarantees, and what it does not, is
//! described on [`DedupeStore`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use tonic::{Code, Status};

#[cfg(any(feature = "grpc", feature = "rest"))]
pub(crate) mod http;
mod store;
#[cfg(feature = "nats")]
mod nats_kv;
#[cfg(feature = "redis")]
mod redis;

pub use store::{Answer, ClaimId, Claimed, DedupeStore, InProcessStore, StoreError};
#[cfg_attr(not(feature = "queue"), allow(unused_imports))]
pub(crate) use store::{max_reply, KeyClaim, KeyWindow, Run, Shared, DEFAULT_LEASE};
#[cfg(feature = "nats")]
pub use nats_kv::NatsKvStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

/// A reply a transport keeps for duplicates: its approximate size in memory, which the window's
/// byte budget counts.
pub(crate) trait Kept: Send + Sync + 'static {
    /// Bytes held (bodies, headers, bookkeeping), an estimate.
    fn kept_size(&self) -> usize;
}

/// Whether a call that ended with `status` is remembered for its key, so that duplicates get the
/// same answer without running again. Not remembered: answers that say the work was not done
/// and a retry may succeed — the handler went away (CANCELLED, DEADLINE_EXCEEDED), the server
/// was busy or down (RESOURCE_EXHAUSTED, UNAVAILABLE), or the handler panicked. A retry of those
/// runs the handler again. Every other answer, successes and failures alike, is final for the
/// key.
pub(crate) fn remembered(status: &Status) -> bool {
    match status.code() {
        Code::Cancelled | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Unavailable => false,
        _ => !crate::call::is_panicked(status),
    }
}

/// Bytes a finished entry costs besides its id and its kept frames (map slot, queue slot,
/// allocation headers): an estimate, so that ids without kept frames still count.
const ENTRY_OVERHEAD: usize = 96;

/// The largest reply kept for duplicates (frames, bodies and headers); a bigger one is not kept
/// and its duplicates are answered ABORTED.
pub(crate) const MAX_KEPT_REPLY: usize = 256 * 1024;

/// What [`Dedupe::begin`] found.
pub(crate) enum Begin<'a, R: Kept> {
    /// First time (or the earlier run was released): run it, holding the guard.
    Fresh(Running<'a, R>),
    /// Already done; the reply, if it was kept.
    Done(Option<Arc<R>>),
    /// Running right now: wait for [`Dedupe::wait_while_running`], then ask again.
    Busy,
}

/// What [`Dedupe::claim`] found.
pub(crate) enum Claim<'a, R: Kept> {
    /// Run it; the guard releases the id when dropped unless [`Running::finish`] is called.
    Fresh(Running<'a, R>),
    /// Already done; the reply, if it was kept.
    Done(Option<Arc<R>>),
}

enum Entry<R> {
    Running,
    /// Finished: kept until `expires`.
    Done { frames: Option<Arc<R>>, cost: usize, expires: Instant },
}

/// The window (see the module's documentation), keeping replies of type `R`.
pub(crate) struct Dedupe<R> {
    window: Duration,
    capacity: usize,
    max_bytes: usize,
    state: Mutex<State<R>>,
    /// Wakes duplicates waiting for a running id (any id: duplicates are rare, so a spurious
    /// wake-up costs less than a channel per message).
    changed: Notify,
}

struct State<R> {
    entries: HashMap<Arc<str>, Entry<R>>,
    /// Finished ids, oldest first, with the time they expire. Every `Entry::Done` is here
    /// exactly once (as the slot with its `expires`); running ids are not.
    done: VecDeque<(Instant, Arc<str>)>,
    /// Sum of the finished entries' costs.
    bytes: usize,
}

impl<R> Default for State<R> {
    fn default() -> Self {
        State { entries: HashMap::new(), done: VecDeque::new(), bytes: 0 }
    }
}

impl<R: Kept> Dedupe<R> {
    pub fn new(window: Duration, capacity: usize, max_bytes: usize) -> Self {
        Dedupe { window, capacity, max_bytes, state: Mutex::default(), changed: Notify::new() }
    }

    pub fn enabled(&self) -> bool {
        !self.window.is_zero() && self.capacity > 0
    }

    /// The most bytes of reply frames worth keeping for one id.
    pub fn max_reply_bytes(&self) -> usize {
        MAX_KEPT_REPLY.min(self.max_bytes)
    }

    /// The state, even after a panic elsewhere while it was locked (the guard's `Drop` runs
    /// during unwinding and must not panic again).
    fn state(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `id` for a run, or returns the kept reply frames of a finished run. Waits while
    /// another run of `id` is in progress.
    pub async fn claim(&self, id: &str) -> Claim<'_, R> {
        loop {
            match self.begin(id) {
                Begin::Fresh(running) => return Claim::Fresh(running),
                Begin::Busy => self.wait_while_running(id).await,
                Begin::Done(frames) => return Claim::Done(frames),
            }
        }
    }

    /// Completes once `id` is no longer running (call `begin` again then).
    pub async fn wait_while_running(&self, id: &str) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the check, so a finish in between is not missed.
            changed.as_mut().enable();
            if !matches!(self.state().entries.get(id), Some(Entry::Running)) {
                return;
            }
            changed.await;
        }
    }

    pub fn begin(&self, id: &str) -> Begin<'_, R> {
        let mut state = self.state();
        let now = Instant::now();
        self.evict(&mut state, now);
        let stale = match state.entries.get(id) {
            Some(Entry::Done { frames, expires, .. }) if now < *expires => return Begin::Done(frames.clone()),
            Some(Entry::Running) => return Begin::Busy,
            // Expired behind an entry that expires later (answers kept for different times, an
            // `InProcessStore` shared by servers with different windows): gone, though its slot
            // waits for its turn in `done`.
            Some(Entry::Done { cost, .. }) => *cost,
            None => 0,
        };
        state.bytes -= stale;
        // One allocation for the id, shared by the map, the guard and later the done queue.
        let id: Arc<str> = Arc::from(id);
        state.entries.insert(id.clone(), Entry::Running);
        Begin::Fresh(Running { dedupe: self, id: Some(id) })
    }

    /// Drops finished entries past the window, over the capacity or over the byte budget,
    /// oldest first.
    fn evict(&self, state: &mut State<R>, now: Instant) {
        while let Some((at, _)) = state.done.front() {
            let expired = now >= *at;
            if !expired && state.done.len() <= self.capacity && state.bytes <= self.max_bytes {
                break;
            }
            let (at, key) = state.done.pop_front().expect("front exists");
            // Only the entry this slot was made for (the id may have run again since).
            if let Some(Entry::Done { cost, expires, .. }) = state.entries.get(&key) {
                if *expires == at {
                    state.bytes -= cost;
                    state.entries.remove(&key);
                }
            }
        }
    }

    /// Records `id` as done with `frames` (a guard's `finish`), for the window.
    fn finish(&self, id: Arc<str>, frames: Option<Arc<R>>) {
        self.finish_for(id, frames, self.window);
    }

    /// Records `id` as done with `frames`, kept for `keep`.
    fn finish_for(&self, id: Arc<str>, frames: Option<Arc<R>>, keep: Duration) {
        let kept = frames.filter(|f| f.kept_size() <= self.max_reply_bytes());
        let cost = ENTRY_OVERHEAD + id.len() + kept.as_deref().map_or(0, Kept::kept_size);
        let now = Instant::now();
        // (A century stands for "for ever": `Instant` cannot hold `Duration::MAX` from now.)
        let expires = now.checked_add(keep).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(now);
        let mut state = self.state();
        state.done.push_back((expires, id.clone()));
        state.bytes += cost;
        if let Some(Entry::Done { cost: old, .. }) = state.entries.insert(id, Entry::Done { frames: kept, cost, expires }) {
            // Not reachable through the guards (a done id is never claimed again), but keep the
            // byte count honest if it ever is.
            state.bytes -= old;
        }
        self.evict(&mut state, now);
        drop(state);
        self.changed.notify_waiters();
    }

    /// Forgets a running `id` (its run failed or went away; a redelivery should run again).
    fn release(&self, id: &str) {
        let mut state = self.state();
        if matches!(state.entries.get(id), Some(Entry::Running)) {
            state.entries.remove(id);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.state().bytes
    }
}

/// Holds a message id while its handler runs. Dropping it releases the id (a redelivery will
/// run again); [`Running::finish`] records the outcome for duplicates instead.
pub(crate) struct Running<'a, R: Kept> {
    dedupe: &'a Dedupe<R>,
    id: Option<Arc<str>>,
}

impl<R: Kept> Running<'_, R> {
    /// The run finished: duplicates get `frames` (when kept) for the rest of the window.
    pub fn finish(mut self, frames: Option<Arc<R>>) {
        if let Some(id) = self.id.take() {
            self.dedupe.finish(id, frames);
        }
    }

    /// Lets go of the guard without releasing the id: it stays running until `finish_for` or
    /// `release` names it ([`InProcessStore`], whose callers hold claims, not guards).
    fn detach(mut self) {
        self.id = None;
    }
}

impl<R: Kept> Drop for Running<'_, R> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.dedupe.release(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept reply of `len` bytes.
    struct Frames(usize);

    impl Kept for Frames {
        fn kept_size(&self) -> usize {
            self.0
        }
    }

    type Dedupe = super::Dedupe<Frames>;
    type Running<'a> = super::Running<'a, Frames>;

    fn frames_size(f: &Frames) -> usize {
        f.0
    }

    fn fresh<'a>(d: &'a Dedupe, id: &str) -> Running<'a> {
        match d.begin(id) {
            Begin::Fresh(r) => r,
            Begin::Done(_) => panic!("{id} is done"),
            Begin::Busy => panic!("{id} is running"),
        }
    }

    fn frames(body: usize) -> Option<Arc<Frames>> {
        Some(Arc::new(Frames(body + 64)))
    }

    #[tokio::test]
    async fn duplicates_see_the_first_outcome() {
        let d = Arc::new(Dedupe::new(Duration::from_secs(60), 10, 1 << 20));
        let run = fresh(&d, "a");
        assert!(matches!(d.begin("a"), Begin::Busy));
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { matches!(d.claim("a").await, Claim::Done(Some(f)) if f.0 > 64) }
        });
        tokio::task::yield_now().await;
        run.finish(frames(3));
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap());
        assert!(matches!(d.begin("a"), Begin::Done(Some(f)) if f.0 > 64));
    }

    #[tokio::test]
    async fn a_dropped_holder_releases_its_id_to_the_waiting_duplicate() {
        let d = Arc::new(Dedupe::new(Duration::from_secs(60), 10, 1 << 20));
        let run = fresh(&d, "a");
        // A duplicate arrives while the first run holds the id: it waits...
        let waiter = tokio::spawn({
            let d = d.clone();
            async move {
                match d.claim("a").await {
                    // ...and, once the first run is gone, runs it itself.
                    Claim::Fresh(run) => {
                        run.finish(None);
                        true
                    }
                    Claim::Done(_) => false,
                }
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(run); // an early return, say
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap(), "the duplicate ran");
        assert!(matches!(d.begin("a"), Begin::Done(None)));
    }

    #[tokio::test]
    async fn a_panicking_holder_releases_its_id() {
        let d = Arc::new(Dedupe::new(Duration::from_secs(60), 10, 1 << 20));
        // A task that panics while it holds the id.
        let task = tokio::spawn({
            let d = d.clone();
            async move {
                let _run = match d.claim("p").await {
                    Claim::Fresh(r) => r,
                    Claim::Done(_) => unreachable!(),
                };
                tokio::task::yield_now().await;
                panic!("the handler panicked");
            }
        });
        assert!(task.await.unwrap_err().is_panic());
        let claim = tokio::time::timeout(Duration::from_secs(5), d.claim("p")).await.expect("not left running");
        assert!(matches!(claim, Claim::Fresh(_)));

        // The same on this thread, through catch_unwind (the state lock is not poisoned for good).
        let d = Dedupe::new(Duration::from_secs(60), 10, 1 << 20);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _run = fresh(&d, "q");
            panic!("boom");
        }));
        assert!(result.is_err());
        assert!(matches!(d.begin("q"), Begin::Fresh(_)));
    }

    #[tokio::test]
    async fn an_aborted_holder_releases_its_id() {
        let d = Arc::new(Dedupe::new(Duration::from_secs(60), 10, 1 << 20));
        let (held_tx, held_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let d = d.clone();
            async move {
                let _run = match d.claim("c").await {
                    Claim::Fresh(r) => r,
                    Claim::Done(_) => unreachable!(),
                };
                held_tx.send(()).unwrap();
                std::future::pending::<()>().await;
            }
        });
        held_rx.await.unwrap();
        assert!(matches!(d.begin("c"), Begin::Busy));
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let claim = tokio::time::timeout(Duration::from_secs(5), d.claim("c")).await.expect("not left running");
        assert!(matches!(claim, Claim::Fresh(_)));
    }

    #[test]
    fn window_and_capacity_expire_done_entries() {
        let d = Dedupe::new(Duration::from_secs(60), 2, usize::MAX);
        for id in ["a", "b", "c", "d"] {
            fresh(&d, id).finish(None);
        }
        assert!(matches!(d.begin("a"), Begin::Fresh(_)), "evicted by capacity");
        assert!(matches!(d.begin("d"), Begin::Done(None)), "the newest stays");
        let d = Dedupe::new(Duration::from_millis(1), 100, usize::MAX);
        fresh(&d, "x").finish(None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(d.begin("x"), Begin::Fresh(_)), "expired by the window");
    }

    #[test]
    fn the_byte_budget_evicts_the_oldest_finished_entries_first() {
        let one = ENTRY_OVERHEAD + 2 + frames_size(&frames(10_000).unwrap());
        // Room for three finished entries of ~10 KB, not four.
        let d = Dedupe::new(Duration::from_secs(60), 1_000, 3 * one + one / 2);
        // "r0" starts first but finishes last: running entries are never evicted, and age counts
        // from the finish.
        let r0 = fresh(&d, "r0");
        for id in ["a1", "a2", "a3"] {
            fresh(&d, id).finish(frames(10_000));
        }
        assert_eq!(d.bytes(), 3 * one);
        for id in ["a1", "a2", "a3"] {
            assert!(matches!(d.begin(id), Begin::Done(Some(_))), "{id} kept");
        }
        assert!(matches!(d.begin("r0"), Begin::Busy));
        r0.finish(frames(10_000));
        assert!(matches!(d.begin("a1"), Begin::Fresh(_)), "the oldest finished entry went first");
        for id in ["a2", "a3", "r0"] {
            assert!(matches!(d.begin(id), Begin::Done(Some(_))), "{id} kept");
        }
        assert_eq!(d.bytes(), 3 * one, "the budget is kept");

        // Many small entries: bounded by bytes long before the capacity.
        let d = Dedupe::new(Duration::from_secs(60), 1_000_000, 100 * (ENTRY_OVERHEAD + 8));
        for i in 0..10_000 {
            fresh(&d, &format!("id-{i:04}")).finish(None);
        }
        assert!(d.bytes() <= 100 * (ENTRY_OVERHEAD + 8));
        assert!(matches!(d.begin("id-9999"), Begin::Done(None)));
        assert!(matches!(d.begin("id-0000"), Begin::Fresh(_)));
    }

    #[test]
    fn a_reply_larger_than_the_budget_is_not_kept() {
        let d = Dedupe::new(Duration::from_secs(60), 10, 4096);
        assert_eq!(d.max_reply_bytes(), 4096);
        fresh(&d, "big").finish(frames(10_000));
        assert!(matches!(d.begin("big"), Begin::Done(None)), "remembered as done, without its reply");
        assert!(d.bytes() < 4096);
    }
}
