//! The group consumer's poll loop: one dedicated thread per consumer, owning its `BaseConsumer`.
//!
//! The thread sleeps on a command channel, woken by librdkafka when its queue turns non-empty
//! (the queue's non-empty callback sends a wake-up), by a settled delivery, by a retry record
//! coming due, or every 100 ms. Each turn it drains librdkafka's queue without blocking (which
//! also serves rebalances, so the consumer never misses `max.poll.interval.ms`), sorts records
//! into per-partition buffers and hands out what may go:
//!
//! - events ([`Order::PerPartition`]): one record at a time per partition, in offset order,
//!   partitions in parallel (at most `prefetch` at once); a record's offset is stored only when
//!   its handler settled it (ack, moved to the retry topic, or dead-lettered), and stored offsets
//!   are committed every auto-commit interval, on revoke, and on shutdown. A record of the retry
//!   topic that is not due yet holds its partition until it is.
//! - requests ([`Order::None`]): up to `prefetch` at once, in any order; offsets are stored as
//!   records are taken (at most once, like core NATS).
//!
//! A partition whose buffer fills up (a slow handler, a retry not due) is paused, not the poll
//! loop, and resumed once it has drained. Shutdown: stop handing out, wait up to 1.5 s for the
//! handlers of records handed out, commit, then `close_queue` and poll until librdkafka says the
//! consumer is closed (at most 1.5 s more) — never librdkafka's blocking close in a drop on the async
//! runtime.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::records;
use super::super::wire::Envelope;

/// The longest the loop sleeps without polling librdkafka.
const IDLE: Duration = Duration::from_millis(100);
/// Most records taken off librdkafka's queue per turn.
const MAX_POLL: usize = 1000;
/// A partition with this many records waiting is paused.
const PAUSE_AT: usize = 64;
/// How long shutdown waits for handlers of records handed out.
const DRAIN: Duration = Duration::from_millis(1500);
/// How long shutdown waits for librdkafka to close the consumer (leave the group).
const CLOSE: Duration = Duration::from_millis(1500);

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
    /// librdkafka's queue has something, or a retry may be due.
    Wake,
    /// A handed-out record is done with; store its offset when `store`.
    Settled { topic: Arc<str>, partition: i32, offset: i64, store: bool },
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
    due: Option<SystemTime>,
}

/// Settles one handed-out record with the loop. Dropped unsettled, it rewinds (events) or
/// releases (requests) the record.
pub(crate) struct Settler {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    cmd: std_mpsc::Sender<Cmd>,
    order: Order,
    done: bool,
}

impl Settler {
    /// Done: its offset may be committed (events).
    pub(crate) fn settle(mut self) {
        self.done = true;
        let store = self.order == Order::PerPartition;
        let _ = self.cmd.send(Cmd::Settled { topic: self.topic.clone(), partition: self.partition, offset: self.offset, store });
    }

    /// Not done: consume it again.
    pub(crate) fn rewind(mut self) {
        self.done = true;
        let _ = self.cmd.send(Cmd::Rewind { topic: self.topic.clone(), partition: self.partition, offset: self.offset });
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (topic, partition, offset) = (self.topic.clone(), self.partition, self.offset);
        let cmd = match self.order {
            Order::PerPartition => Cmd::Rewind { topic, partition, offset },
            Order::None => Cmd::Settled { topic, partition, offset, store: false },
        };
        let _ = self.cmd.send(cmd);
    }
}

/// Gauge, `{message}`: how far a consumer group is behind on a partition it holds (the
/// partition's high watermark less the group's position), from librdkafka's statistics every
/// `statistics.interval.ms` (5 s). Labels: `messaging.consumer.group.name`,
/// `messaging.destination.name` (the topic), `messaging.destination.partition.id`.
pub(crate) const CONSUMER_LAG: &str = "switchboard.queue.kafka.consumer.lag";

/// Partition changes the rebalance callbacks saw, for the loop to apply; the group's name for
/// the lag gauge.
#[derive(Default)]
struct Ctx {
    revoked: Mutex<Vec<(String, i32)>>,
    group: String,
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // -1: not known (a partition this member does not hold); -1 is the internal
                // "unassigned" partition.
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                let labels = [
                    metrics::Label::new("messaging.consumer.group.name", self.group.clone()),
                    metrics::Label::new("messaging.destination.name", topic.clone()),
                    metrics::Label::new("messaging.destination.partition.id", partition.to_string()),
                ];
                let key = metrics::Key::from_parts(CONSUMER_LAG, labels.to_vec());
                metrics::with_recorder(|r| r.register_gauge(&key, &METADATA).set(p.consumer_lag as f64));
            }
        }
    }
}

static METADATA: metrics::Metadata<'static> = metrics::Metadata::new("switchboard", metrics::Level::INFO, Some(module_path!()));

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // What the handlers finished is committed before the partitions go to another member.
            let _ = consumer.commit_consumer_state(CommitMode::Sync);
            let mut revoked = self.revoked.lock().unwrap();
            revoked.extend(tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // A partition this member paused before it lost it starts afresh when it comes back.
            let _ = consumer.resume(tpl);
        }
    }
}

/// A running consumer loop: tell it to stop, and learn when it has.
pub(crate) struct Handle {
    pub cmd: std_mpsc::Sender<Cmd>,
    pub done: oneshot::Receiver<()>,
}

/// Builds a delivery for the server from a record and its settler.
pub(crate) type Make<D> = Box<dyn FnMut(Record, Settler) -> D + Send>;

/// Starts a group consumer on `topics` (subscribed before this returns), handing deliveries
/// made by `make` to `out` until `out` closes or the loop is told to stop.
pub(crate) fn start<D: Send + 'static>(
    config: &ClientConfig,
    topics: &[String],
    order: Order,
    prefetch: usize,
    make: Make<D>,
    out: mpsc::UnboundedSender<D>,
) -> Result<Handle, Status> {
    let (cmd_tx, cmd_rx) = std_mpsc::channel();
    let mut consumer: BaseConsumer<Ctx> =
        config.create_with_context(Ctx { group: config.get("group.id").unwrap_or_default().to_owned(), ..Ctx::default() }).map_err(|e| Status::unavailable(format!("creating a Kafka consumer: {e}")))?;
    let wake = cmd_tx.clone();
    consumer.set_nonempty_callback(move || {
        let _ = wake.send(Cmd::Wake);
    });
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(|e| Status::unavailable(format!("subscribing to {names:?}: {e}")))?;
    let (done_tx, done) = oneshot::channel();
    let looped = Loop {
        consumer,
        cmd: cmd_tx.clone(),
        order,
        prefetch: prefetch.max(1),
        make,
        out,
        parts: HashMap::new(),
        names: HashMap::new(),
        in_flight: 0,
    };
    std::thread::Builder::new()
        .name("sb-kafka-consumer".into())
        .spawn(move || {
            looped.run(cmd_rx);
            let _ = done_tx.send(());
        })
        .map_err(|e| Status::internal(format!("starting the Kafka consumer thread: {e}")))?;
    Ok(Handle { cmd: cmd_tx, done })
}

/// One partition's state.
#[derive(Default)]
struct Part {
    waiting: VecDeque<Record>,
    /// Records handed out and not settled (at most one with [`Order::PerPartition`]).
    busy: usize,
    paused: bool,
    /// Its first record is not due before then.
    due: Option<Instant>,
}

struct Loop<D> {
    consumer: BaseConsumer<Ctx>,
    cmd: std_mpsc::Sender<Cmd>,
    order: Order,
    prefetch: usize,
    make: Make<D>,
    out: mpsc::UnboundedSender<D>,
    parts: HashMap<(Arc<str>, i32), Part>,
    /// Topic names, interned.
    names: HashMap<String, Arc<str>>,
    in_flight: usize,
}

impl<D: Send + 'static> Loop<D> {
    fn run(mut self, rx: std_mpsc::Receiver<Cmd>) {
        let mut stopping: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let wait = self.parts.values().filter_map(|p| p.due).min().map_or(IDLE, |due| due.saturating_duration_since(now).min(IDLE));
            let mut cmds = Vec::new();
            match rx.recv_timeout(wait) {
                Ok(cmd) => cmds.push(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopping = stopping.or(Some(now + DRAIN)),
            }
            cmds.extend(rx.try_iter());
            for cmd in cmds {
                match cmd {
                    Cmd::Wake => {}
                    Cmd::Stop => stopping = stopping.or(Some(Instant::now() + DRAIN)),
                    Cmd::Settled { topic, partition, offset, store } => self.settled(topic, partition, offset, store),
                    Cmd::Rewind { topic, partition, offset } => self.rewind(topic, partition, offset, stopping.is_some()),
                }
            }
            if self.out.is_closed() && stopping.is_none() {
                stopping = Some(Instant::now() + DRAIN);
            }
            if let Some(until) = stopping {
                if self.in_flight == 0 || Instant::now() >= until {
                    break;
                }
            }
            self.poll(stopping.is_some());
            self.apply_revokes();
            if stopping.is_none() {
                self.dispatch();
            }
        }
        self.close();
    }

    fn name(&mut self, topic: &str) -> Arc<str> {
        if let Some(name) = self.names.get(topic) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(topic);
        self.names.insert(topic.to_owned(), name.clone());
        name
    }

    /// Takes what librdkafka has, without blocking.
    fn poll(&mut self, stopping: bool) {
        for _ in 0..MAX_POLL {
            let record = match self.consumer.poll(Duration::ZERO) {
                None => break,
                // Broker and fetch errors are librdkafka's to recover from (it retries); the
                // loop keeps polling.
                Some(Err(_)) => continue,
                Some(Ok(message)) if stopping => {
                    // Not handed out: not stored, so it is consumed again after the restart.
                    drop(message);
                    continue;
                }
                Some(Ok(message)) => {
                    let env = records::envelope_of(&message);
                    let due = records::due_of(&env);
                    let topic = message.topic().to_owned();
                    (topic, message.partition(), message.offset(), message.key().map(<[u8]>::to_vec), env, due)
                }
            };
            let (topic, partition, offset, key, env, due) = record;
            let topic = self.name(&topic);
            let part = self.parts.entry((topic.clone(), partition)).or_default();
            part.waiting.push_back(Record { topic, partition, offset, key, env, due });
        }
    }

    /// Forgets the partitions taken away: their waiting records are another member's now.
    fn apply_revokes(&mut self) {
        let revoked = std::mem::take(&mut *self.consumer.context().revoked.lock().unwrap());
        for (topic, partition) in revoked {
            let topic = self.name(&topic);
            if let Some(part) = self.parts.get_mut(&(topic.clone(), partition)) {
                part.waiting.clear();
                part.due = None;
                part.paused = false;
                if part.busy == 0 {
                    self.parts.remove(&(topic, partition));
                }
            }
        }
    }

    fn settled(&mut self, topic: Arc<str>, partition: i32, offset: i64, store: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(part) = self.parts.get_mut(&(topic.clone(), partition)) {
            part.busy = part.busy.saturating_sub(1);
        }
        if store {
            // Fails when the partition was revoked meanwhile: its next owner handles it again
            // (at least once).
            let _ = self.consumer.store_offset(&topic, partition, offset);
        }
    }

    fn rewind(&mut self, topic: Arc<str>, partition: i32, offset: i64, stopping: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(part) = self.parts.get_mut(&(topic.clone(), partition)) else { return };
        part.busy = part.busy.saturating_sub(1);
        part.waiting.clear();
        part.due = None;
        if !stopping {
            let _ = self.consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(1));
        }
    }

    /// Hands out what may go, pauses full partitions and resumes drained ones.
    fn dispatch(&mut self) {
        let now = SystemTime::now();
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        let mut handed = Vec::new();
        for (tp, part) in self.parts.iter_mut() {
            part.due = None;
            loop {
                if self.in_flight >= self.prefetch || (self.order == Order::PerPartition && part.busy > 0) {
                    break;
                }
                let Some(head) = part.waiting.front() else { break };
                if let Some(due) = head.due.filter(|d| *d > now) {
                    part.due = Some(Instant::now() + due.duration_since(now).unwrap_or_default());
                    break;
                }
                let record = part.waiting.pop_front().expect("a head");
                part.busy += 1;
                self.in_flight += 1;
                handed.push(record);
            }
            // Paused while it has a backlog or waits for a retry to come due.
            let hold = part.waiting.len() >= PAUSE_AT || part.due.is_some();
            if hold && !part.paused {
                part.paused = true;
                pause.push(tp.clone());
            } else if !hold && part.paused && part.waiting.is_empty() {
                part.paused = false;
                resume.push(tp.clone());
            }
        }
        for record in handed {
            let settler = Settler {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                cmd: self.cmd.clone(),
                order: self.order,
                done: false,
            };
            let delivery = (self.make)(record, settler);
            // A closed channel: the delivery (and its settler) is dropped; the loop stops next turn.
            let _ = self.out.send(delivery);
        }
        if !pause.is_empty() {
            let _ = self.consumer.pause(&list(&pause));
        }
        if !resume.is_empty() {
            let _ = self.consumer.resume(&list(&resume));
        }
    }

    /// Commits what was stored and leaves the group, bounded in time.
    fn close(self) {
        let _ = self.consumer.commit_consumer_state(CommitMode::Sync);
        if self.consumer.close_queue().is_ok() {
            let until = Instant::now() + CLOSE;
            while !self.consumer.closed() && Instant::now() < until {
                let _ = self.consumer.poll(Duration::from_millis(50));
            }
        }
        if self.consumer.closed() {
            drop(self.consumer);
        } else {
            // librdkafka did not finish closing in time: its drop would wait for it without
            // bound. The handle is left to the process rather than block this thread forever.
            std::mem::forget(self.consumer);
        }
    }
}

fn list(tps: &[(Arc<str>, i32)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(tps.len());
    for (topic, partition) in tps {
        tpl.add_partition(topic, *partition);
    }
    tpl
}
