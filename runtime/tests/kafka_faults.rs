//! Kafka under faults (issue 17's acceptance): 1,000 keyed events over 6 partitions, two
//! competing consumers; one consumer killed mid-run, one broker taken down and brought back, a
//! rebalance forced (a third consumer joins, then leaves). Every event is classified delivered /
//! lost / duplicated / unexpected and the table printed; lost = 0 for acknowledged publishes,
//! per key the events handled once (and never retried) were handled in publish order, every
//! publisher finished, and the last consumer shuts down in under 5 s.
//!
//! - The cluster: librdkafka's in-process mock cluster, 3 brokers, the event, retry and
//!   dead-letter topics made with 6 partitions and replication factor 3, broker 1 leading two of
//!   each topic's partitions and coordinating the consumer group (the mock keeps a partition's
//!   log whatever its leader does: taken down for 2 s, a broker's partitions stall and come back
//!   with every record; the mock does not move leaders). It is started here (not by `switchboard::queue::kafka_mock_cluster`)
//!   for its controls (`broker_down` / `broker_up`). With `SWITCHBOARD_KAFKA_URL` set (tansu in
//!   CI), the same run goes against that broker without the broker outage (tansu cannot take a
//!   broker down, and a restart loses its data), in a consumer group of its own.
//! - "Killed": a consumer is a server on a thread and current-thread runtime of its own
//!   (`common/replica.rs`, as the fleet tests run replicas), dropped without a graceful shutdown.
//!   Its Kafka consumer thread must then close on its own (it does: counted by thread name).
//! - Dedupe: with a store the replicas share (`QueueServer::dedupe_store`; here an in-test store
//!   with leases over a `Mutex<HashMap>`, which is what a shared store gives two replicas in one
//!   process), no event is handled twice: asserted. With each server's own in-process window, a
//!   record handed over between consumers before its offset was committed runs again: those
//!   handovers are counted and reported, not asserted.
//! - Retries: every 40th event fails its first attempt (UNAVAILABLE). The retry design
//!   (docs/queue-protocol.md, "Kafka") moves it to the retry topic and lets its key go on, so a
//!   retried event is handled after later events of its key: retried events are left out of the
//!   order check (and must still be handled).
#![cfg(feature = "kafka")]

#[path = "queue/suite.rs"]
mod suite;
#[path = "common/replica.rs"]
mod replica;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use replica::Replica;
use suite::{Empty, Entry};
use switchboard::dedupe::{Answer, ClaimId, Claimed, DedupeStore, StoreError};
use switchboard::queue::{Broker, PartitionKey};
use switchboard::{Request, Response, Status};
use switchboard_test_support::ready::eventually;

/// The two runs take turns (each has its own mock cluster, but the box is small).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SERVICE: &str = "test.kafka.faults.v1.Orders";
const KEYS: usize = 20;
const PER_KEY: i64 = 50;
const PARTITIONS: i32 = 6;
/// How long the broker stays down: the outage itself, not a wait for readiness.
const OUTAGE: Duration = Duration::from_secs(2);
/// The broker taken down.
const DOWN_BROKER: i32 = 1;
/// Every `FAIL_EVERY`th event fails its first attempt.
const FAIL_EVERY: usize = 40;
/// How long each handling takes.
const WORK_MS: u32 = 10;

#[switchboard::service(package = "test.kafka.faults.v1", rest = false)]
pub trait Orders {
    /// Fails the first `count` attempts of an entry (UNAVAILABLE), then succeeds.
    #[rpc(event)]
    async fn place(&self, req: Request<Entry>) -> Result<Response<Empty>, Status>;
}

/// One successful handling.
struct Handled {
    id: String,
    key: usize,
    seq: i64,
    server: usize,
}

/// What the handlers did, across servers (in handling order: pushed under the lock).
#[derive(Default)]
struct Log {
    handled: Mutex<Vec<Handled>>,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Log {
    fn by(&self, server: usize) -> usize {
        self.handled.lock().unwrap().iter().filter(|h| h.server == server).count()
    }
    fn with_seq_at_least(&self, seq: i64) -> usize {
        self.handled.lock().unwrap().iter().filter(|h| h.seq >= seq).count()
    }
}

#[derive(Clone)]
struct OrdersImpl {
    log: Arc<Log>,
    server: usize,
    /// Entries of other runs (a shared broker's topics) are acked unseen.
    prefix: String,
}

impl Orders for OrdersImpl {
    async fn place(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        let entry = req.into_inner();
        if !entry.id.starts_with(&self.prefix) {
            return Ok(Response::new(Empty {}));
        }
        let attempt = {
            let mut attempts = self.log.attempts.lock().unwrap();
            let a = attempts.entry(entry.id.clone()).or_default();
            *a += 1;
            *a
        };
        if attempt <= entry.count {
            return Err(Status::unavailable(format!("attempt {attempt} of {} fails", entry.id)));
        }
        // Some work: records are in flight when a consumer is killed or loses partitions.
        tokio::time::sleep(Duration::from_millis(entry.sleep_ms.into())).await;
        let key = (entry.amount / 1000) as usize;
        let seq = entry.amount % 1000;
        self.log.handled.lock().unwrap().push(Handled { id: entry.id, key, seq, server: self.server });
        Ok(Response::new(Empty {}))
    }
}

// ---- a shared dedupe store ----------------------------------------------------------------------

/// A store the servers of this process share, with leases (a claim of a server that died lapses),
/// as `RedisStore` and `NatsKvStore` keep them.
#[derive(Default)]
struct LeasedStore {
    keys: Mutex<HashMap<String, Slot>>,
}

enum Slot {
    Held { claim: ClaimId, until: Instant },
    Answered { answer: Answer, until: Instant },
}

fn later(keep: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(keep).unwrap_or(now + Duration::from_secs(86_400))
}

impl DedupeStore for LeasedStore {
    fn claim<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap();
        let claimed = match keys.get(key) {
            Some(Slot::Answered { answer, until }) if *until > now => Claimed::Answered(answer.clone()),
            Some(Slot::Held { claim: holder, until }) if *until > now && holder != claim => Claimed::Running,
            _ => {
                keys.insert(key.to_owned(), Slot::Held { claim: claim.clone(), until: later(lease) });
                Claimed::Won
            }
        };
        Box::pin(std::future::ready(Ok(claimed)))
    }

    fn finish<'a>(&'a self, key: &'a str, claim: &'a ClaimId, answer: Answer, keep: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap();
        let ours = match keys.get(key) {
            Some(Slot::Held { claim: holder, until }) => holder == claim || *until <= now,
            Some(Slot::Answered { until, .. }) => *until <= now,
            None => true,
        };
        if ours {
            keys.insert(key.to_owned(), Slot::Answered { answer, until: later(keep) });
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn refresh<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut keys = self.keys.lock().unwrap();
        let held = match keys.get_mut(key) {
            Some(Slot::Held { claim: holder, until }) if holder == claim => {
                *until = later(lease);
                true
            }
            _ => false,
        };
        Box::pin(std::future::ready(Ok(held)))
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut keys = self.keys.lock().unwrap();
        if matches!(keys.get(key), Some(Slot::Held { claim: holder, .. }) if holder == claim) {
            keys.remove(key);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

// ---- the mock cluster, with its controls ------------------------------------------------------

enum MockCmd {
    Down(i32, std::sync::mpsc::Sender<Result<(), String>>),
    Up(i32, std::sync::mpsc::Sender<Result<(), String>>),
}

/// librdkafka's mock cluster on a thread of its own (its handle is not `Send`), told what to do
/// through a channel. It lives until the process exits.
struct Mock {
    servers: String,
    cmd: Mutex<std::sync::mpsc::Sender<MockCmd>>,
}

impl Mock {
    fn start(brokers: i32, topics: Vec<String>) -> Mock {
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (cmd, cmds) = std::sync::mpsc::channel::<MockCmd>();
        std::thread::Builder::new()
            .name("faults-mock".into())
            .spawn(move || {
                let cluster = rdkafka::mocking::MockCluster::new(brokers).expect("a mock cluster");
                for topic in &topics {
                    cluster.create_topic(topic, PARTITIONS, brokers).expect("a mock topic");
                    // Leaders spread over the brokers (the mock picks them at random): broker 1
                    // leads partitions 0 and 3 of every topic.
                    for partition in 0..PARTITIONS {
                        cluster.partition_leader(topic, partition, Some(partition % brokers + 1)).expect("a partition leader");
                    }
                }
                // Broker 1 also coordinates the event consumers' group: its outage hits their
                // heartbeats and offset commits too.
                cluster
                    .coordinator(rdkafka::mocking::MockCoordinator::Group(format!("sb.event.{SERVICE}")), DOWN_BROKER)
                    .expect("the group's coordinator");
                ready_tx.send(cluster.bootstrap_servers()).unwrap();
                while let Ok(cmd) = cmds.recv() {
                    match cmd {
                        MockCmd::Down(id, done) => drop(done.send(cluster.broker_down(id).map_err(|e| e.to_string()))),
                        MockCmd::Up(id, done) => drop(done.send(cluster.broker_up(id).map_err(|e| e.to_string()))),
                    }
                }
                // Clients of it may still be closing: left to the process rather than destroyed.
                std::mem::forget(cluster);
            })
            .expect("the mock cluster's thread");
        let servers = ready.recv_timeout(Duration::from_secs(10)).expect("the mock cluster starts");
        Mock { servers, cmd: Mutex::new(cmd) }
    }

    fn tell(&self, make: impl FnOnce(std::sync::mpsc::Sender<Result<(), String>>) -> MockCmd) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.cmd.lock().unwrap().send(make(tx)).expect("the mock cluster runs");
        rx.recv_timeout(Duration::from_secs(5)).expect("the mock cluster answers").expect("the mock cluster did it");
    }
}

// ---- consumers ---------------------------------------------------------------------------------

/// An `Orders` server on a thread and runtime of its own, with a connection of its own.
fn consumer(url: &str, name: &str, server: usize, log: &Arc<Log>, prefix: &str, store: Option<Arc<dyn DedupeStore>>) -> Replica {
    let (url, log, prefix) = (url.to_owned(), log.clone(), prefix.to_owned());
    Replica::start(name.to_owned(), "127.0.0.1:0".into(), move |_listener, stopped| async move {
        let broker = Broker::connect(&url).await.expect("connect");
        let mut queue_server = OrdersQueueServer::new(OrdersImpl { log, server, prefix })
            .max_attempts(5)
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .prefetch(16)
            // Events only: no request consumer (nor its topics) on the cluster.
            .requests(false);
        if let Some(store) = store {
            queue_server = queue_server.dedupe_store(store).dedupe_lease(Duration::from_secs(3));
        }
        queue_server
            .serve_with_shutdown(&broker, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        broker.close().await;
    })
}

/// Runs `f` (a replica's kill or stop, which joins its thread) off the async runtime, bounded.
async fn timed(what: &str, limit: Duration, f: impl FnOnce() + Send + 'static) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(limit, tokio::task::spawn_blocking(f))
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .expect(what);
    started.elapsed()
}

/// Kafka consumer threads of this process (the backend names them `sb-kafka-consumer`; Linux
/// keeps 15 bytes of a thread's name).
fn consumer_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end().starts_with("sb-kafka-consum")))
        .count()
}

// ---- the run -----------------------------------------------------------------------------------

/// Which quarter of the run an event's sequence number belongs to: published once the run's
/// phase has reached it.
fn phase_of(seq: i64) -> u8 {
    match seq {
        0..12 => 0,
        12..25 => 1,
        25..38 => 2,
        _ => 3,
    }
}

#[derive(Default)]
struct Published {
    /// Every publish attempted: id → (key, seq).
    attempted: Mutex<HashMap<String, (usize, i64)>>,
    acked: Mutex<HashSet<String>>,
    /// The events whose first attempt fails.
    fail_first: Mutex<HashSet<String>>,
    /// Publishes that took over a second to be acknowledged (the broker outage holds those to
    /// its partitions), and the longest.
    slow: Mutex<(usize, Duration)>,
    failed: Mutex<Vec<(String, String)>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dedupe {
    /// A store both servers share: no event handled twice.
    Shared,
    /// Each server's own window: handovers counted.
    InProcess,
}

async fn run(dedupe: Dedupe) {
    let _turn = TURN.lock().await;
    let started = Instant::now();
    let run = format!("{}-{:x}", std::process::id(), fastrand::u32(..));
    let prefix = format!("{run}-");
    let real = std::env::var("SWITCHBOARD_KAFKA_URL").ok().filter(|u| !u.is_empty());
    let (url, mock) = match &real {
        // A consumer group of this run's own: records of earlier runs are acked unseen.
        Some(url) => (format!("{url}{}group=sb.faults.{run}", if url.contains('?') { '&' } else { '?' }), None),
        None => {
            let topics = vec![format!("sb.event.{SERVICE}.Place"), format!("sb.retry.{SERVICE}"), format!("sb.dlq.{SERVICE}.Place")];
            let mock = Mock::start(3, topics);
            // The topics exist (replication 3): the connections must not create their own.
            (format!("kafka://{}?create_topics=false", mock.servers), Some(mock))
        }
    };
    println!("dedupe: {dedupe:?}; cluster: {}", if real.is_some() { "SWITCHBOARD_KAFKA_URL" } else { "mock, 3 brokers" });
    let log = Arc::new(Log::default());
    let store: Option<Arc<dyn DedupeStore>> = match dedupe {
        Dedupe::Shared => Some(Arc::new(LeasedStore::default())),
        Dedupe::InProcess => None,
    };
    let threads_before = consumer_threads();
    let a = consumer(&url, "consumer-a", 1, &log, &prefix, store.clone());
    let mut b = consumer(&url, "consumer-b", 2, &log, &prefix, store.clone());

    // The publishers: one task per key, publishing its events in order (each publish returns
    // once the broker acknowledged it), a quarter at a time as the run's phase allows.
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = OrdersQueueClient::new(&publisher);
    let published = Arc::new(Published::default());
    let (phase, _) = tokio::sync::watch::channel(0u8);
    let phase = Arc::new(phase);
    let mut publishers = Vec::new();
    for k in 0..KEYS {
        let (client, published, phase, prefix) = (client.clone(), published.clone(), phase.clone(), prefix.clone());
        publishers.push(tokio::spawn(async move {
            let mut gate = phase.subscribe();
            for seq in 0..PER_KEY {
                let quarter = phase_of(seq);
                gate.wait_for(|p| *p >= quarter).await.expect("the phase");
                let id = format!("{prefix}{k}-{seq}");
                let fail_first = (k * PER_KEY as usize + seq as usize) % FAIL_EVERY == 7;
                let entry = Entry { id: id.clone(), amount: k as i64 * 1000 + seq, count: u32::from(fail_first), sleep_ms: WORK_MS, fail_code: 0 };
                if fail_first {
                    published.fail_first.lock().unwrap().insert(id.clone());
                }
                let mut req = Request::new(entry);
                req.extensions_mut().insert(PartitionKey::new(format!("key-{prefix}{k}")));
                published.attempted.lock().unwrap().insert(id.clone(), (k, seq));
                let publishing = Instant::now();
                let outcome = tokio::time::timeout(Duration::from_secs(45), client.publish_place(req)).await;
                let took = publishing.elapsed();
                if took > Duration::from_secs(1) {
                    let mut slow = published.slow.lock().unwrap();
                    *slow = (slow.0 + 1, slow.1.max(took));
                }
                match outcome {
                    Ok(Ok(_)) => drop(published.acked.lock().unwrap().insert(id)),
                    Ok(Err(status)) => published.failed.lock().unwrap().push((id, status.to_string())),
                    Err(_) => published.failed.lock().unwrap().push((id, "no answer in 45 s".into())),
                }
                // The publish rate (the run spans the faults), not a wait for anything.
                tokio::time::sleep(Duration::from_millis(if quarter == 0 { 80 } else { 30 })).await;
            }
        }));
    }

    // Phase 0: both consumers take part.
    eventually("both consumers handling events", Duration::from_secs(60), || log.by(1) > 0 && log.by(2) > 0).await;
    let both_at = started.elapsed();
    let consumers_running = consumer_threads() - threads_before;

    // Phase 1: the second quarter flows; once some of it is handled, consumer A is killed.
    phase.send_replace(1);
    eventually("some of the second quarter handled", Duration::from_secs(60), || log.with_seq_at_least(12) >= 40).await;
    let handled_before_kill = log.by(1);
    let kill_took = timed("killing consumer A", Duration::from_secs(10), move || drop(a)).await;
    let killed_at = Instant::now();
    // Its Kafka consumer closes on its own thread (the runtime that drove it is gone).
    eventually("the killed consumer's Kafka consumer thread to end", Duration::from_secs(10), || {
        consumer_threads() - threads_before < consumers_running
    })
    .await;
    let consumer_closed_after = killed_at.elapsed();

    // Phase 2: a broker goes down while the third quarter is published, and comes back.
    let mut outage = None;
    if let Some(mock) = &mock {
        let down_at = Instant::now();
        mock.tell(|done| MockCmd::Down(DOWN_BROKER, done));
        phase.send_replace(2);
        tokio::time::sleep(OUTAGE).await;
        let acked_while_down = published.acked.lock().unwrap().len();
        mock.tell(|done| MockCmd::Up(DOWN_BROKER, done));
        outage = Some((down_at.elapsed(), acked_while_down));
    } else {
        println!("broker outage: skipped (SWITCHBOARD_KAFKA_URL: a real broker cannot be taken down from here)");
        phase.send_replace(2);
    }

    // Phase 3: a rebalance: a third consumer joins (it must get partitions), then leaves.
    let joined_at = Instant::now();
    let mut c = consumer(&url, "consumer-c", 3, &log, &prefix, store.clone());
    phase.send_replace(3);
    eventually("the third consumer handling events", Duration::from_secs(60), || log.by(3) > 0).await;
    let c_first_after = joined_at.elapsed();
    let c_left_took = timed("consumer C leaving", Duration::from_secs(10), move || c.stop()).await;

    // Every caller finishes.
    let all_published = tokio::time::timeout(Duration::from_secs(90), futures_util::future::join_all(publishers))
        .await
        .expect("every publisher finished within 90 s");
    for p in all_published {
        p.expect("a publisher panicked");
    }
    let acked: HashSet<String> = published.acked.lock().unwrap().clone();
    eventually("every acknowledged event handled", Duration::from_secs(90), || {
        let handled: HashSet<String> = log.handled.lock().unwrap().iter().map(|h| h.id.clone()).collect();
        acked.iter().all(|id| handled.contains(id))
    })
    .await;
    let all_handled_at = started.elapsed();

    // Shutdown: the last consumer and the publisher's connection.
    let shutdown_took = timed("consumer B shutting down", Duration::from_secs(10), move || b.stop()).await;
    let closing = Instant::now();
    publisher.close().await;
    let publisher_closed = closing.elapsed();

    // ---- classification ----
    let attempted = published.attempted.lock().unwrap().clone();
    let failed = published.failed.lock().unwrap().clone();
    let handled = std::mem::take(&mut *log.handled.lock().unwrap());
    let attempts = log.attempts.lock().unwrap().clone();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for h in &handled {
        *times.entry(h.id.as_str()).or_default() += 1;
    }
    let delivered = attempted.keys().filter(|id| times.contains_key(id.as_str())).count();
    let lost: Vec<&String> = acked.iter().filter(|id| !times.contains_key(id.as_str())).collect();
    let duplicated: BTreeMap<&str, usize> = times.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (*id, *n)).collect();
    let extra: usize = duplicated.values().map(|n| n - 1).sum();
    let unexpected: Vec<&&str> = times.keys().filter(|id| !attempted.contains_key(**id)).collect();
    let fail_first = published.fail_first.lock().unwrap().clone();
    let retried_handled = fail_first.iter().filter(|id| times.contains_key(id.as_str()) && attempts[id.as_str()] >= 2).count();
    // Attempts that neither failed on purpose nor ended in a handling: cut off by the kill.
    let all_attempts: u32 = attempts.values().sum();
    let interrupted = all_attempts as usize - handled.len() - fail_first.len();
    // Per key: the events handled once and not retried, in handling order, are in publish order.
    let mut by_key: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for h in &handled {
        if times[h.id.as_str()] == 1 && !fail_first.contains(&h.id) {
            by_key.entry(h.key).or_default().push(h.seq);
        }
    }
    let checked: usize = by_key.values().map(Vec::len).sum();
    let out_of_order: Vec<(usize, Vec<i64>)> =
        by_key.iter().filter(|(_, seqs)| seqs.windows(2).any(|w| w[0] >= w[1])).map(|(k, s)| (*k, s.clone())).collect();
    let per_server: BTreeMap<usize, usize> = handled.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.server).or_default() += 1;
        m
    });

    println!("---- kafka faults, dedupe {dedupe:?} ----");
    println!("published (attempted)              {:>5}", attempted.len());
    println!("  acknowledged                       {:>5}", acked.len());
    let slow = *published.slow.lock().unwrap();
    println!("  acknowledged after > 1 s           {:>5}  (longest {:?})", slow.0, slow.1);
    println!("  publish failed                     {:>5}  {:?}", failed.len(), failed.iter().take(3).collect::<Vec<_>>());
    println!("delivered (handled >= 1)           {:>5}", delivered);
    println!("lost (acknowledged, never handled) {:>5}  {:?}", lost.len(), lost.iter().take(5).collect::<Vec<_>>());
    println!("duplicated (handled > 1)           {:>5}  ({extra} extra handlings{})", duplicated.len(), if dedupe == Dedupe::InProcess { ": handovers" } else { "" });
    println!("unexpected (never published)       {:>5}", unexpected.len());
    println!("retried (failed first, then handled) {:>3} of {}", retried_handled, fail_first.len());
    println!("handler attempts {all_attempts}: {} handlings, {} failed on purpose, {interrupted} cut off (consumer killed)", handled.len(), fail_first.len());
    println!("order: {checked} once-handled events over {} keys checked, {} keys out of order", by_key.len(), out_of_order.len());
    println!("handled per consumer (1 = A killed, 2 = B, 3 = C joined and left): {per_server:?}; A before the kill: {handled_before_kill}");
    println!("Kafka consumer threads of the two servers: {consumers_running}");
    println!(
        "timings: both consuming {both_at:?}; kill {kill_took:?}, its consumer closed {consumer_closed_after:?} after; outage {}; \
         C handling {c_first_after:?} after joining, C left in {c_left_took:?}; all handled {all_handled_at:?}; \
         shutdown of B {shutdown_took:?}, publisher closed {publisher_closed:?}",
        match outage {
            Some((d, acked)) => format!("{d:?} ({acked} acknowledged by then)"),
            None => "skipped".into(),
        },
    );
    if !duplicated.is_empty() {
        println!("duplicated: {:?}", duplicated.iter().take(10).collect::<Vec<_>>());
    }

    assert_eq!(attempted.len(), KEYS * PER_KEY as usize);
    assert!(lost.is_empty(), "acknowledged events never handled: {lost:?}");
    assert!(unexpected.is_empty(), "handled, never published: {unexpected:?}");
    assert!(out_of_order.is_empty(), "keys handled out of publish order: {out_of_order:?}");
    assert_eq!(retried_handled, fail_first.len(), "retried events not handled");
    assert!(!fail_first.is_empty(), "no event was retried");
    if dedupe == Dedupe::Shared {
        assert!(duplicated.is_empty(), "handled twice with the shared dedupe store: {duplicated:?}");
    }
    if mock.is_some() {
        // The outage held the publishes to broker 1's partitions (it leads 2 of 6).
        assert!(slow.0 > 0, "no publish was held up by the broker outage");
    }
    assert!(consumers_running >= 2, "the servers run {consumers_running} Kafka consumer threads");
    assert!(c_left_took < Duration::from_secs(5), "consumer C took {c_left_took:?} to leave");
    assert!(shutdown_took < Duration::from_secs(5), "shutdown took {shutdown_took:?}");
    assert!(publisher_closed < Duration::from_secs(5), "the publisher's connection took {publisher_closed:?} to close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_with_a_shared_dedupe_store_handle_no_event_twice() {
    run(Dedupe::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_with_in_process_windows_count_handovers() {
    run(Dedupe::InProcess).await;
}
