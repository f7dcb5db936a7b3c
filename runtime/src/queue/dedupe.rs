//! The idempotency window: message ids seen recently, so a redelivered request or event (same
//! message id) is not executed twice. A duplicate of a finished request gets the first reply
//! again; a duplicate of one still running waits for it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::wire::Envelope;

/// What [`Dedupe::begin`] found.
pub(crate) enum Begin {
    /// First time: run it, then call `finish` or `forget`.
    Fresh,
    /// Already done; the reply frames, if they were kept.
    Done(Option<Arc<Vec<Envelope>>>),
    /// Running right now: wait for the change, then ask again.
    Running(watch::Receiver<()>),
}

enum Entry {
    Running(watch::Sender<()>),
    Done(Option<Arc<Vec<Envelope>>>),
}

pub(crate) struct Dedupe {
    window: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    order: VecDeque<(Instant, String)>,
}

impl Dedupe {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Dedupe { window, capacity, state: Mutex::default() }
    }

    pub fn enabled(&self) -> bool {
        !self.window.is_zero() && self.capacity > 0
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
            Some(Entry::Running(tx)) => Begin::Running(tx.subscribe()),
            None => {
                let (tx, _) = watch::channel(());
                state.entries.insert(id.to_owned(), Entry::Running(tx));
                state.order.push_back((now, id.to_owned()));
                Begin::Fresh
            }
        }
    }

    /// Marks `id` done; duplicates get `frames` (when kept) from now on.
    pub fn finish(&self, id: &str, frames: Option<Arc<Vec<Envelope>>>) {
        let mut state = self.state.lock().unwrap();
        // Replacing the entry drops the sender, which wakes the waiters.
        state.entries.insert(id.to_owned(), Entry::Done(frames));
    }

    /// Forgets `id` (the attempt failed; a redelivery should run again).
    pub fn forget(&self, id: &str) {
        self.state.lock().unwrap().entries.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_see_the_first_outcome() {
        let d = Dedupe::new(Duration::from_secs(60), 10);
        assert!(matches!(d.begin("a"), Begin::Fresh));
        let Begin::Running(mut rx) = d.begin("a") else { panic!("running") };
        let frames = Arc::new(vec![Envelope::default()]);
        d.finish("a", Some(frames));
        rx.changed().await.unwrap_err(); // sender dropped: wake up
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
