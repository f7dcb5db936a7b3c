//! The idempotency window: message ids seen recently, so a redelivered request or event (same
//! message id) is not executed twice. A duplicate of a finished request gets the first reply
//! again; a duplicate of one still running waits for it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::wire::Envelope;

/// What [`Dedupe::begin`] found.
pub(crate) enum Begin {
    /// First time: run it, then call `finish` or `forget`.
    Fresh,
    /// Already done; the reply frames, if they were kept.
    Done(Option<Arc<Vec<Envelope>>>),
    /// Running right now: wait for [`Dedupe::changed`], then ask again.
    Running,
}

enum Entry {
    Running,
    Done(Option<Arc<Vec<Envelope>>>),
}

pub(crate) struct Dedupe {
    window: Duration,
    capacity: usize,
    state: Mutex<State>,
    /// Wakes duplicates waiting for a running id (any id: duplicates are rare, so a spurious
    /// wake-up costs less than a channel per message).
    changed: Notify,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    order: VecDeque<(Instant, String)>,
}

impl Dedupe {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Dedupe { window, capacity, state: Mutex::default(), changed: Notify::new() }
    }

    pub fn enabled(&self) -> bool {
        !self.window.is_zero() && self.capacity > 0
    }

    /// Claims `id` for a run: `None` when it is fresh (run it, then `finish` or `forget`), or the
    /// kept reply frames of a finished run. Waits while another run of `id` is in progress.
    pub async fn claim(&self, id: &str) -> Option<Option<Arc<Vec<Envelope>>>> {
        loop {
            match self.begin(id) {
                Begin::Fresh => return None,
                Begin::Running => self.wait_while_running(id).await,
                Begin::Done(frames) => return Some(frames),
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
            if !matches!(self.state.lock().unwrap().entries.get(id), Some(Entry::Running)) {
                return;
            }
            changed.await;
        }
    }

    pub fn begin(&self, id: &str) -> Begin {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        // Expire: older than the window, or over capacity. Running entries stay.
        while let Some((at, _)) = state.order.front() {
            if now.duration_since(*at) < self.window && state.order.len() <= self.capacity {
                break;
            }
            let (_, key) = state.order.pop_front().unwrap();
            if matches!(state.entries.get(&key), Some(Entry::Done(_))) {
                state.entries.remove(&key);
            }
        }
        match state.entries.get(id) {
            Some(Entry::Done(frames)) => Begin::Done(frames.clone()),
            Some(Entry::Running) => Begin::Running,
            None => {
                state.entries.insert(id.to_owned(), Entry::Running);
                state.order.push_back((now, id.to_owned()));
                Begin::Fresh
            }
        }
    }

    /// Marks `id` done; duplicates get `frames` (when kept) from now on.
    pub fn finish(&self, id: &str, frames: Option<Arc<Vec<Envelope>>>) {
        let mut state = self.state.lock().unwrap();
        let was = state.entries.insert(id.to_owned(), Entry::Done(frames));
        drop(state);
        if matches!(was, Some(Entry::Running)) {
            self.changed.notify_waiters();
        }
    }

    /// Forgets `id` (the attempt failed; a redelivery should run again).
    pub fn forget(&self, id: &str) {
        self.state.lock().unwrap().entries.remove(id);
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_see_the_first_outcome() {
        let d = Dedupe::new(Duration::from_secs(60), 10);
        let d = Arc::new(d);
        assert!(matches!(d.begin("a"), Begin::Fresh));
        assert!(matches!(d.begin("a"), Begin::Running));
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.wait_while_running("a").await }
        });
        tokio::task::yield_now().await;
        let frames = Arc::new(vec![Envelope::default()]);
        d.finish("a", Some(frames));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(matches!(d.begin("a"), Begin::Done(Some(f)) if f.len() == 1));
        d.forget("a");
        assert!(matches!(d.begin("a"), Begin::Fresh));
    }

    #[test]
    fn window_and_capacity_expire_done_entries() {
        let d = Dedupe::new(Duration::from_secs(60), 2);
        for id in ["a", "b", "c", "d"] {
            assert!(matches!(d.begin(id), Begin::Fresh));
            d.finish(id, None);
        }
        assert!(matches!(d.begin("a"), Begin::Fresh), "evicted by capacity");
        let d = Dedupe::new(Duration::from_millis(1), 100);
        assert!(matches!(d.begin("x"), Begin::Fresh));
        d.finish("x", None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(d.begin("x"), Begin::Fresh), "expired by the window");
    }
}
