//! What the consumer loop and the handlers share: the per-partition buffers of records taken
//! off librdkafka, the count handed out, and the offsets settled but not stored yet.
//!
//! A handler that settles an event hands its partition's next record out itself, on its own
//! thread, when that record may go (nothing else of the partition out, under the prefetch, due):
//! no wake-up of the consumer thread per record. The loop is woken only when it has something
//! to do: a paused partition drained (resume), a retry record not due yet (its timer), a
//! partition waiting for room under the prefetch, a drain at shutdown. Settled offsets are
//! stored by the loop (it owns the consumer) at its next turn, before every commit: on revoke
//! (the rebalance callback) and on shutdown, as well as librdkafka's periodic auto-commit.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::super::wire::Envelope;

/// Whether records of a partition are handled one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// In order per partition, partitions in parallel (events).
    PerPartition,
    /// Any order, up to the prefetch (requests).
    None,
}

/// What the loop is told.
pub(crate) enum Cmd {
    /// librdkafka's queue has something, a retry may be due, a paused partition drained, or
    /// room opened under the prefetch.
    Wake,
    /// A handed-out record was not settled: consume its partition again from it.
    Rewind { topic: Arc<str>, partition: i32, offset: i64 },
    /// Stop consuming (the connection closes).
    Stop,
}

/// One record, owned.
pub(crate) struct Record {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub env: Envelope,
    pub(super) due: Option<SystemTime>,
}

/// Builds a delivery for the server from a record and its settler.
pub(crate) type Make<D> = Box<dyn Fn(Record, Settler) -> D + Send + Sync>;

/// A partition and its topic.
pub(super) type Tp = (Arc<str>, i32);

/// One partition's state.
#[derive(Default)]
pub(super) struct Part {
    pub waiting: VecDeque<Record>,
    /// Records handed out and not settled (at most one with [`Order::PerPartition`]).
    pub busy: usize,
    pub paused: bool,
    /// Its first record is not due before then.
    pub due: Option<Instant>,
}

/// The buffers, under one lock.
#[derive(Default)]
pub(super) struct State {
    pub parts: HashMap<Tp, Part>,
    pub in_flight: usize,
    /// The loop stopped handing out (shutdown): settlers hand nothing out either.
    pub stopping: bool,
    /// A partition had a record to hand out when the prefetch was full.
    pub starved: bool,
}

/// Offsets settled and not stored yet: the highest per partition (records of a partition
/// settle in offset order).
pub(super) type Unstored = Mutex<HashMap<Tp, i64>>;

/// Shared by the loop and every settler of its records.
pub(super) struct Handout<D> {
    pub state: Mutex<State>,
    pub unstored: Arc<Unstored>,
    pub order: Order,
    pub prefetch: usize,
    pub make: Make<D>,
    pub out: mpsc::UnboundedSender<D>,
    pub cmd: std_mpsc::Sender<Cmd>,
}

/// What a settler reports to.
trait Settle: Send + Sync {
    fn settled(self: Arc<Self>, topic: &Arc<str>, partition: i32, offset: i64, store: bool);
    fn rewind(&self, topic: &Arc<str>, partition: i32, offset: i64);
}

impl<D: Send + 'static> Handout<D> {
    /// Makes a delivery of `record` and sends it to the server (a closed channel drops it, and
    /// its settler rewinds or releases it).
    pub(super) fn hand(self: &Arc<Self>, record: Record) {
        let settler = Settler {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            to: self.clone(),
            order: self.order,
            done: false,
        };
        let delivery = (self.make)(record, settler);
        let _ = self.out.send(delivery);
    }
}

impl<D: Send + 'static> Settle for Handout<D> {
    fn settled(self: Arc<Self>, topic: &Arc<str>, partition: i32, offset: i64, store: bool) {
        if store {
            let mut unstored = self.unstored.lock().unwrap();
            let at = unstored.entry((topic.clone(), partition)).or_insert(offset);
            *at = (*at).max(offset);
        }
        let mut next = None;
        let mut wake = false;
        {
            let mut st = self.state.lock().unwrap();
            let state = &mut *st;
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.stopping {
                // The loop waits for the last one.
                wake = state.in_flight == 0;
            } else {
                let room = state.in_flight < self.prefetch;
                if let Some(part) = state.parts.get_mut(&(topic.clone(), partition)) {
                    part.busy = part.busy.saturating_sub(1);
                    if self.order == Order::PerPartition && room && part.busy == 0 {
                        match part.waiting.front() {
                            Some(head) if head.due.is_none_or(|d| d <= SystemTime::now()) => {
                                next = part.waiting.pop_front();
                                part.busy += 1;
                            }
                            // Not due: the loop times it.
                            Some(_) => wake = true,
                            None => {}
                        }
                    }
                    // Drained: the loop resumes it.
                    wake |= part.paused && part.waiting.is_empty();
                }
                if next.is_some() {
                    state.in_flight += 1;
                }
                wake |= state.starved;
            }
        }
        if let Some(record) = next {
            self.hand(record);
        }
        if wake {
            let _ = self.cmd.send(Cmd::Wake);
        }
    }

    fn rewind(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        let _ = self.cmd.send(Cmd::Rewind { topic: topic.clone(), partition, offset });
    }
}

/// Settles one handed-out record. Dropped unsettled, it rewinds (events) or releases
/// (requests) the record.
pub(crate) struct Settler {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    to: Arc<dyn Settle>,
    order: Order,
    done: bool,
}

impl Settler {
    /// Done: its offset may be stored (events).
    pub(crate) fn settle(mut self) {
        self.done = true;
        let store = self.order == Order::PerPartition;
        self.to.clone().settled(&self.topic, self.partition, self.offset, store);
    }

    /// Not done: consume it again.
    pub(crate) fn rewind(mut self) {
        self.done = true;
        self.to.rewind(&self.topic, self.partition, self.offset);
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match self.order {
            Order::PerPartition => self.to.rewind(&self.topic, self.partition, self.offset),
            Order::None => self.to.clone().settled(&self.topic, self.partition, self.offset, false),
        }
    }
}
