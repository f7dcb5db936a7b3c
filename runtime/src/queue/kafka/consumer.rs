//! The group consumer's poll loop: one dedicated thread per consumer, owning its `BaseConsumer`.
//!
//! The thread sleeps on a command channel, woken by librdkafka when its queue turns non-empty
//! (the queue's non-empty callback sends a wake-up), by a settler that needs it (see
//! [`handout`](super::handout): a handler hands its partition's next record out itself), by a
//! retry record coming due, or every 100 ms. Each turn it drains librdkafka's queue without blocking (which
//! also serves rebalances, so the consumer never misses `max.poll.interval.ms`), sorts records
//! into per-partition buffers and hands out what may go:
//!
//! - events ([`Order::PerPartition`]): one record at a time per partition, in offset order,
//!   partitions in parallel (at most `prefetch` at once); a record's offset is stored only when
//!   its handler settled it (ack, moved to the retry topic, or dead-lettered; the loop stores it
//!   at its next turn, and before every commit of its own), and stored offsets are committed
//!   every auto-commit interval, on revoke, and on shutdown. A record of the retry
//!   topic that is not due yet holds its partition until it is.
//! - requests ([`Order::None`]): up to `prefetch` at once, in any order; offsets are stored as
//!   records are taken (at most once, like core NATS).
//!
//! A partition whose buffer fills up (a slow handler, a retry not due) is paused, not the poll
//! loop, and resumed once it has drained. Shutdown: stop handing out, wait up to 1.5 s for the
//! handlers of records handed out, commit, then `close_queue` and poll until librdkafka says the
//! consumer is closed (at most 1.5 s more) — never librdkafka's blocking close in a drop on the async
//! runtime.

use std::collections::HashMap;
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::handout::{Handout, Part, State, Tp, Unstored};
pub(crate) use super::handout::{Cmd, Make, Order, Record, Settler};
use super::records;

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

/// Gauge, `{message}`: how far a consumer group is behind on a partition it holds (the
/// partition's high watermark less the group's committed offset, or less the partition's first
/// offset while the group has committed none there), from librdkafka's statistics every
/// `statistics.interval.ms` (5 s). Labels: `messaging.consumer.group.name`,
/// `messaging.destination.name` (the topic), `messaging.destination.partition.id`.
pub(crate) const CONSUMER_LAG: &str = "switchboard.queue.kafka.consumer.lag";

/// Partition changes the rebalance callbacks saw, for the loop to apply; the group's name for
/// the lag gauge.
#[derive(Default)]
struct Ctx {
    revoked: Mutex<Vec<(String, i32)>>,
    group: String,
    unstored: Arc<Unstored>,
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // -1 is the internal "unassigned" partition. librdkafka's lag is -1 until the group
                // has committed an offset there: a partition this member holds is then behind from
                // its start (auto.offset.reset=earliest), as a new group stuck on its first record
                // or catching up a backlog is; -1 otherwise (a partition it does not hold).
                let lag = match p.consumer_lag {
                    lag if lag >= 0 => lag,
                    _ if p.desired && p.committed_offset < 0 && p.lo_offset >= 0 && p.hi_offset >= p.lo_offset => p.hi_offset - p.lo_offset,
                    _ => continue,
                };
                if *partition < 0 {
                    continue;
                }
                let labels = [
                    metrics::Label::new("messaging.consumer.group.name", self.group.clone()),
                    metrics::Label::new("messaging.destination.name", topic.clone()),
                    metrics::Label::new("messaging.destination.partition.id", partition.to_string()),
                ];
                let key = metrics::Key::from_parts(CONSUMER_LAG, labels.to_vec());
                metrics::with_recorder(|r| r.register_gauge(&key, &METADATA).set(lag as f64));
            }
        }
    }
}

static METADATA: metrics::Metadata<'static> = metrics::Metadata::new("switchboard", metrics::Level::INFO, Some(module_path!()));

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // What the handlers finished is committed before the partitions go to another member.
            store(consumer, &self.unstored);
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

/// Stores the offsets handlers settled since the last call. One that fails (its partition was
/// revoked meanwhile) leaves the record to the partition's next owner (at least once).
fn store(consumer: &BaseConsumer<Ctx>, unstored: &Unstored) {
    let settled = std::mem::take(&mut *unstored.lock().unwrap());
    for ((topic, partition), offset) in settled {
        let _ = consumer.store_offset(&topic, partition, offset);
    }
}

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
    let unstored = Arc::new(Unstored::default());
    let ctx = Ctx { group: config.get("group.id").unwrap_or_default().to_owned(), unstored: unstored.clone(), ..Ctx::default() };
    let mut consumer: BaseConsumer<Ctx> = config.create_with_context(ctx).map_err(|e| Status::unavailable(format!("creating a Kafka consumer: {e}")))?;
    let wake = cmd_tx.clone();
    consumer.set_nonempty_callback(move || {
        let _ = wake.send(Cmd::Wake);
    });
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(|e| Status::unavailable(format!("subscribing to {names:?}: {e}")))?;
    let (done_tx, done) = oneshot::channel();
    let handout = Arc::new(Handout {
        state: Mutex::new(State::default()),
        unstored,
        order,
        prefetch: prefetch.max(1),
        make,
        out,
        cmd: cmd_tx.clone(),
    });
    let looped = Loop { consumer, handout, names: HashMap::new() };
    std::thread::Builder::new()
        .name("sb-kafka-consumer".into())
        .spawn(move || {
            looped.run(cmd_rx);
            let _ = done_tx.send(());
        })
        .map_err(|e| Status::internal(format!("starting the Kafka consumer thread: {e}")))?;
    Ok(Handle { cmd: cmd_tx, done })
}

struct Loop<D> {
    consumer: BaseConsumer<Ctx>,
    handout: Arc<Handout<D>>,
    /// Topic names, interned.
    names: HashMap<String, Arc<str>>,
}

impl<D: Send + 'static> Loop<D> {
    fn run(mut self, rx: std_mpsc::Receiver<Cmd>) {
        let mut stopping: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let next_due = self.handout.state.lock().unwrap().parts.values().filter_map(|p| p.due).min();
            let wait = next_due.map_or(IDLE, |due| due.saturating_duration_since(now).min(IDLE));
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
                    Cmd::Rewind { topic, partition, offset } => self.rewind(topic, partition, offset, stopping.is_some()),
                }
            }
            if self.handout.out.is_closed() && stopping.is_none() {
                stopping = Some(Instant::now() + DRAIN);
            }
            if let Some(until) = stopping {
                let in_flight = {
                    let mut st = self.handout.state.lock().unwrap();
                    st.stopping = true;
                    st.in_flight
                };
                if in_flight == 0 || Instant::now() >= until {
                    break;
                }
            }
            store(&self.consumer, &self.handout.unstored);
            self.poll(stopping.is_some());
            self.apply_revokes();
            if stopping.is_none() {
                self.dispatch();
            }
        }
        self.close();
    }

    /// Takes what librdkafka has, without blocking.
    fn poll(&mut self, stopping: bool) {
        let mut taken = Vec::new();
        for _ in 0..MAX_POLL {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                // Broker and fetch errors are librdkafka's to recover from (it retries); the
                // loop keeps polling.
                Some(Err(_)) => continue,
                // Not handed out: not stored, so it is consumed again after the restart.
                Some(Ok(_)) if stopping => continue,
                Some(Ok(message)) => message,
            };
            let env = records::envelope_of(&message);
            let due = records::due_of(&env);
            let topic = intern(&mut self.names, message.topic());
            taken.push(Record { topic, partition: message.partition(), offset: message.offset(), key: message.key().map(<[u8]>::to_vec), env, due });
        }
        if taken.is_empty() {
            return;
        }
        let mut st = self.handout.state.lock().unwrap();
        for record in taken {
            let part = st.parts.entry((record.topic.clone(), record.partition)).or_default();
            part.waiting.push_back(record);
        }
    }

    /// Forgets the partitions taken away: their waiting records are another member's now.
    fn apply_revokes(&mut self) {
        let revoked = std::mem::take(&mut *self.consumer.context().revoked.lock().unwrap());
        for (topic, partition) in revoked {
            let topic = intern(&mut self.names, &topic);
            let mut st = self.handout.state.lock().unwrap();
            let tp = (topic, partition);
            if let Some(part) = st.parts.get_mut(&tp) {
                part.waiting.clear();
                part.due = None;
                part.paused = false;
                if part.busy == 0 {
                    st.parts.remove(&tp);
                }
            }
        }
    }

    fn rewind(&mut self, topic: Arc<str>, partition: i32, offset: i64, stopping: bool) {
        {
            let mut st = self.handout.state.lock().unwrap();
            st.in_flight = st.in_flight.saturating_sub(1);
            let Some(part) = st.parts.get_mut(&(topic.clone(), partition)) else { return };
            part.busy = part.busy.saturating_sub(1);
            part.waiting.clear();
            part.due = None;
        }
        if !stopping {
            let _ = self.consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(1));
        }
    }

    /// Hands out what may go, pauses full partitions and resumes drained ones.
    fn dispatch(&mut self) {
        let now = SystemTime::now();
        let order = self.handout.order;
        let prefetch = self.handout.prefetch;
        let mut pause: Vec<Tp> = Vec::new();
        let mut resume: Vec<Tp> = Vec::new();
        let mut handed = Vec::new();
        {
            let mut st = self.handout.state.lock().unwrap();
            let State { parts, in_flight, starved, .. } = &mut *st;
            *starved = false;
            for (tp, part) in parts.iter_mut() {
                part.due = None;
                loop {
                    if order == Order::PerPartition && part.busy > 0 {
                        break;
                    }
                    let Some(head) = part.waiting.front() else { break };
                    if *in_flight >= prefetch {
                        *starved = true;
                        break;
                    }
                    if let Some(due) = head.due.filter(|d| *d > now) {
                        part.due = Some(Instant::now() + due.duration_since(now).unwrap_or_default());
                        break;
                    }
                    let record = part.waiting.pop_front().expect("a head");
                    part.busy += 1;
                    *in_flight += 1;
                    handed.push(record);
                }
                hold(tp, part, &mut pause, &mut resume);
            }
        }
        for record in handed {
            self.handout.hand(record);
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
        store(&self.consumer, &self.handout.unstored);
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

/// A topic name, interned.
fn intern(names: &mut HashMap<String, Arc<str>>, topic: &str) -> Arc<str> {
    if let Some(name) = names.get(topic) {
        return name.clone();
    }
    let name: Arc<str> = Arc::from(topic);
    names.insert(topic.to_owned(), name.clone());
    name
}

/// Pauses a partition while it has a backlog or waits for a retry to come due; resumes it once
/// it has drained.
fn hold(tp: &Tp, part: &mut Part, pause: &mut Vec<Tp>, resume: &mut Vec<Tp>) {
    let hold = part.waiting.len() >= PAUSE_AT || part.due.is_some();
    if hold && !part.paused {
        part.paused = true;
        pause.push(tp.clone());
    } else if !hold && part.paused && part.waiting.is_empty() {
        part.paused = false;
        resume.push(tp.clone());
    }
}

fn list(tps: &[(Arc<str>, i32)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(tps.len());
    for (topic, partition) in tps {
        tpl.add_partition(topic, *partition);
    }
    tpl
}
