//! Kafka under faults (issue 17's acceptance): 1,000 keyed events over 6 partitions, two
//! competing consumers; one consumer killed mid-run (SIGKILL of its process), one broker taken
//! down and brought back, a rebalance forced (a third consumer joins, then leaves). Every event is
//! classified delivered / lost / duplicated / unexpected and the table printed; lost = 0 for
//! acknowledged publishes, per key the events handled once (and never retried) were handled in
//! publish order (and each consumer handled a key's events in publish order), every publisher
//! finished, and the last consumer shuts down in under 5 s.
//!
//! - The cluster: librdkafka's in-process mock cluster, 3 brokers, the event, retry and
//!   dead-letter topics made with 6 partitions and replication factor 3, broker 1 leading two of
//!   each topic's partitions and coordinating the consumer group (the mock keeps a partition's
//!   log whatever its leader does: taken down for 2 s, a broker's partitions stall and come back
//!   with every record; the mock does not move leaders). It is started here (not by `switchboard::queue::kafka_mock_cluster`)
//!   for its controls (`broker_down` / `broker_up`). With `SWITCHBOARD_KAFKA_URL` set (tansu in
//!   CI), the same run goes against that broker without the broker outage (tansu cannot take a
//!   broker down, and a restart loses its data), in a consumer group of its own.
//! - "Killed": consumer A runs in a child process — this test binary again, running only
//!   [`killed_consumer_process`] (which serves only when `SB_KAFKA_FAULTS_CHILD_URL` is set) —
//!   that connects to the cluster over loopback TCP and is SIGKILLed mid-run: no commit, no
//!   LeaveGroup, its connections cut. The group coordinator notices by the session timeout
//!   (`session_timeout_ms=3000` here) and gives its partitions to B; what A handled but did not
//!   commit is delivered again. A reports each attempt and each handling on stdout (`sb-faults …`
//!   lines, written and flushed before its handler returns, so before the answer is stored and
//!   the offset committed); the parent reads them into the same log as its own consumers'.
//! - Dedupe: with a store the consumers share (`QueueServer::dedupe_store`; here an in-test store
//!   with leases held by the parent, which A's process reaches over loopback TCP, as replicas
//!   reach Redis or a NATS KV bucket), an event is handled twice only when A's process died
//!   between its handler's return and the store getting the answer — the at-least-once window no
//!   store closes; every such duplicate is checked to be one (its first handling by A, no answer
//!   from A in the store) and they are counted; any other duplicate fails. With each server's own
//!   in-process window, a record handed over between consumers before its offset was committed
//!   runs again: those handovers are counted and reported, not asserted.
//! - Retries: every 40th event fails its first attempt in a process (UNAVAILABLE). The retry
//!   design (docs/queue-protocol.md, "Kafka") moves it to the retry topic and lets its key go on,
//!   so a retried event is handled after later events of its key: retried events are left out of
//!   the order checks (and must still be handled).
#![cfg(feature = "kafka")]

#[path = "queue/suite.rs"]
mod suite;
#[path = "common/replica.rs"]
mod replica;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use replica::Replica;
use suite::{Empty, Entry};
use switchboard::dedupe::{Answer, ClaimId, Claimed, DedupeStore, StoreError};
use switchboard::queue::{Broker, MessageId, PartitionKey};
use switchboard::{Request, Response, Status};
use switchboard_test_support::ready::eventually;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

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
/// The consumers' session timeout: how long the group takes to notice a killed member.
const SESSION_MS: u64 = 3000;
/// Records each consumer takes at once.
const PREFETCH: u16 = 16;

/// In the child process: the URL its consumer connects with (unset: the test is not a child).
const CHILD_URL: &str = "SB_KAFKA_FAULTS_CHILD_URL";
/// In the child process: the prefix of this run's entry ids.
const CHILD_PREFIX: &str = "SB_KAFKA_FAULTS_CHILD_PREFIX";
/// In the child process: the shared store's `ip:port` (empty: its own in-process window).
const CHILD_STORE: &str = "SB_KAFKA_FAULTS_CHILD_STORE";
/// The test the child process runs.
const CHILD_TEST: &str = "killed_consumer_process";
/// How the child's report lines start.
const LINE: &str = "sb-faults";
/// Consumer A's number in the log (the killed one, in the child process).
const A: usize = 1;

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
    /// The frame's `message-id` (the dedupe key).
    message_id: String,
}

/// What the handlers did, across servers and processes (in the order the parent learnt it: its
/// own servers' handlings as they happen, the child's as its lines are read).
#[derive(Default)]
struct Log {
    handled: Mutex<Vec<Handled>>,
    /// Handler attempts per entry, every consumer's.
    attempts: Mutex<HashMap<String, u32>>,
    /// Attempts that failed on purpose.
    failed: Mutex<usize>,
}

impl Log {
    fn by(&self, server: usize) -> usize {
        self.handled.lock().unwrap().iter().filter(|h| h.server == server).count()
    }
    fn with_seq_at_least(&self, seq: i64) -> usize {
        self.handled.lock().unwrap().iter().filter(|h| h.seq >= seq).count()
    }
    fn attempt(&self, id: &str) {
        *self.attempts.lock().unwrap().entry(id.to_owned()).or_default() += 1;
    }
    fn failed(&self) {
        *self.failed.lock().unwrap() += 1;
    }

    /// One line of the child's stdout (others, the test harness's own, are skipped).
    fn record_line(&self, line: &str, server: usize) {
        let Some(rest) = line.strip_prefix(LINE).and_then(|r| r.strip_prefix(' ')) else { return };
        let fields: Vec<&str> = rest.split(' ').collect();
        match fields.as_slice() {
            ["attempt", id] => self.attempt(id),
            ["failed", _] => self.failed(),
            ["handled", id, key, seq, message_id] => {
                let (Ok(key), Ok(seq)) = (key.parse(), seq.parse()) else { return };
                let h = Handled { id: (*id).to_owned(), key, seq, server, message_id: (*message_id).to_owned() };
                self.handled.lock().unwrap().push(h);
            }
            _ => {}
        }
    }
}

/// Where a handler reports what it did.
#[derive(Clone)]
enum Report {
    /// A server of the parent process: into the log, as server `n`.
    Log(Arc<Log>, usize),
    /// The consumer in the child process: a line on stdout, flushed before the handler goes on.
    Stdout,
}

/// Writes one report line on stdout and flushes it (a parent that went away: the line is lost,
/// and the process ends with its stdin, see [`killed_consumer_process`]).
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{LINE} {line}").and_then(|()| out.flush());
}

impl Report {
    fn attempt(&self, id: &str) {
        match self {
            Report::Log(log, _) => log.attempt(id),
            Report::Stdout => say(format_args!("attempt {id}")),
        }
    }
    fn failed(&self, id: &str) {
        match self {
            Report::Log(log, _) => log.failed(),
            Report::Stdout => say(format_args!("failed {id}")),
        }
    }
    fn handled(&self, id: String, key: usize, seq: i64, message_id: String) {
        match self {
            Report::Log(log, server) => log.handled.lock().unwrap().push(Handled { id, key, seq, server: *server, message_id }),
            Report::Stdout => say(format_args!("handled {id} {key} {seq} {message_id}")),
        }
    }
}

#[derive(Clone)]
struct OrdersImpl {
    report: Report,
    /// Attempts per entry in this process: a process fails the first `count` attempts it sees.
    tries: Arc<Mutex<HashMap<String, u32>>>,
    /// Entries of other runs (a shared broker's topics) are acked unseen.
    prefix: String,
}

impl Orders for OrdersImpl {
    async fn place(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        let message_id = req.extensions().get::<MessageId>().map_or_else(|| "-".to_owned(), |m| m.0.clone());
        let entry = req.into_inner();
        if !entry.id.starts_with(&self.prefix) {
            return Ok(Response::new(Empty {}));
        }
        self.report.attempt(&entry.id);
        let attempt = {
            let mut tries = self.tries.lock().unwrap();
            let a = tries.entry(entry.id.clone()).or_default();
            *a += 1;
            *a
        };
        if attempt <= entry.count {
            self.report.failed(&entry.id);
            return Err(Status::unavailable(format!("attempt {attempt} of {} fails", entry.id)));
        }
        // Some work: records are in flight when a consumer is killed or loses partitions.
        tokio::time::sleep(Duration::from_millis(entry.sleep_ms.into())).await;
        let key = (entry.amount / 1000) as usize;
        let seq = entry.amount % 1000;
        self.report.handled(entry.id, key, seq, message_id);
        Ok(Response::new(Empty {}))
    }
}

/// The queue server every consumer runs.
fn queue_server(handler: OrdersImpl, store: Option<Arc<dyn DedupeStore>>) -> OrdersQueueServer<OrdersImpl> {
    let server = OrdersQueueServer::new(handler)
        .max_attempts(5)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .prefetch(PREFETCH)
        // Events only: no request consumer (nor its topics) on the cluster.
        .requests(false);
    match store {
        Some(store) => server.dedupe_store(store).dedupe_lease(Duration::from_secs(3)),
        None => server,
    }
}

// ---- a shared dedupe store ----------------------------------------------------------------------

/// A store the consumers share, with leases (a claim of a consumer that died lapses), as
/// `RedisStore` and `NatsKvStore` keep them. The parent's servers use it directly, the child's
/// through [`serve_store`] / [`RemoteStore`].
#[derive(Default)]
struct LeasedStore {
    keys: Mutex<HashMap<String, Slot>>,
    /// The keys of claims answered with a stored answer: deliveries that did not run again.
    answered: Mutex<Vec<String>>,
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
            Some(Slot::Answered { answer, until }) if *until > now => {
                self.answered.lock().unwrap().push(key.to_owned());
                Claimed::Answered(answer.clone())
            }
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

// ---- the shared store over loopback TCP, for the child process ---------------------------------
//
// One line per call, one per answer; keys and answers in hex:
//   claim <key> <claim> <lease ms>           → won | running | answered <answer>
//   finish <key> <claim> <answer> <keep ms>  → ok
//   refresh <key> <claim> <lease ms>         → true | false
//   release <key> <claim>                    → ok
// where <answer> is `n` (answered, not kept) or `r<hex>` (the reply); anything else → error …

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn answer_text(answer: &Answer) -> String {
    match answer {
        Answer::Reply(bytes) => format!("r{}", hex(bytes)),
        Answer::NotKept => "n".into(),
    }
}

fn read_answer(text: &str) -> Option<Answer> {
    match text.split_at_checked(1)? {
        ("n", "") => Some(Answer::NotKept),
        ("r", reply) => Some(Answer::Reply(unhex(reply)?.into())),
        _ => None,
    }
}

fn millis(text: Option<&&str>) -> Option<Duration> {
    let ms: u128 = text?.parse().ok()?;
    Some(Duration::from_millis(ms.min(u64::MAX.into()) as u64))
}

/// The store served to the child process.
struct StoreServer {
    address: String,
    /// The keys whose answer came from the child (its `finish` reached the store).
    finished_by_child: Arc<Mutex<HashSet<String>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Serves `store` on a loopback port; every connection is the child's.
async fn serve_store(store: Arc<LeasedStore>) -> StoreServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("the store's port");
    let address = listener.local_addr().expect("the store's address").to_string();
    let finished_by_child = Arc::new(Mutex::new(HashSet::new()));
    let finished = finished_by_child.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (store, finished) = (store.clone(), finished.clone());
            tokio::spawn(async move {
                let _ = conn.set_nodelay(true);
                let (read, mut write) = conn.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                // Ends when the child's connection does (its process killed).
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = store_call(&store, &finished, &line).await;
                    if write.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    StoreServer { address, finished_by_child, accepting }
}

/// Answers one line of the store's protocol.
async fn store_call(store: &LeasedStore, finished: &Mutex<HashSet<String>>, line: &str) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    let key = fields.get(1).and_then(|k| unhex(k)).and_then(|k| String::from_utf8(k).ok());
    let claim = fields.get(2).map(|c| ClaimId::from_stored(*c));
    let (Some(key), Some(claim)) = (key, claim) else { return format!("error: `{line}`") };
    let outcome = match (fields[0], fields.get(3)) {
        ("claim", lease) => match millis(lease) {
            Some(lease) => store.claim(&key, &claim, lease).await.map(|claimed| match claimed {
                Claimed::Won => "won".to_owned(),
                Claimed::Running => "running".to_owned(),
                Claimed::Answered(answer) => format!("answered {}", answer_text(&answer)),
            }),
            None => return format!("error: `{line}`"),
        },
        ("finish", Some(answer)) => match (read_answer(answer), millis(fields.get(4))) {
            (Some(answer), Some(keep)) => {
                let done = store.finish(&key, &claim, answer, keep).await.map(|()| "ok".to_owned());
                finished.lock().unwrap().insert(key);
                done
            }
            _ => return format!("error: `{line}`"),
        },
        ("refresh", lease) => match millis(lease) {
            Some(lease) => store.refresh(&key, &claim, lease).await.map(|held| held.to_string()),
            None => return format!("error: `{line}`"),
        },
        ("release", _) => store.release(&key, &claim).await.map(|()| "ok".to_owned()),
        _ => return format!("error: `{line}`"),
    };
    outcome.unwrap_or_else(|e| format!("error: {e}"))
}

type StoreConn = (tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf);

/// The child's side of the shared store: connections to the parent's [`serve_store`], one per
/// call in flight (a connection goes back to the pool only after a whole call, so a call
/// dropped half-way never leaves an answer for the next one to read).
struct RemoteStore {
    address: String,
    idle: Mutex<Vec<StoreConn>>,
}

impl RemoteStore {
    async fn call(&self, request: String) -> Result<String, StoreError> {
        let idle = self.idle.lock().unwrap().pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => {
                let stream = tokio::net::TcpStream::connect(&self.address)
                    .await
                    .map_err(|e| StoreError::with_source("connecting to the test's shared store", e))?;
                let _ = stream.set_nodelay(true);
                let (read, write) = stream.into_split();
                (tokio::io::BufReader::new(read), write)
            }
        };
        let mut answer = String::new();
        let io = async {
            conn.1.write_all(format!("{request}\n").as_bytes()).await?;
            conn.0.read_line(&mut answer).await
        };
        match io.await {
            Ok(n) if n > 0 => {
                self.idle.lock().unwrap().push(conn);
                let answer = answer.trim_end();
                match answer.strip_prefix("error: ") {
                    Some(error) => Err(StoreError::new(format!("the test's shared store: {error}"))),
                    None => Ok(answer.to_owned()),
                }
            }
            Ok(_) => Err(StoreError::new("the test's shared store closed the connection")),
            Err(e) => Err(StoreError::with_source("the test's shared store", e)),
        }
    }
}

fn unexpected_answer(answer: &str) -> StoreError {
    StoreError::new(format!("the test's shared store answered `{answer}`"))
}

impl DedupeStore for RemoteStore {
    fn claim<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        Box::pin(async move {
            let answer = self.call(format!("claim {} {claim} {}", hex(key.as_bytes()), lease.as_millis())).await?;
            match answer.split_once(' ').unwrap_or((&answer, "")) {
                ("won", "") => Ok(Claimed::Won),
                ("running", "") => Ok(Claimed::Running),
                ("answered", stored) => read_answer(stored).map(Claimed::Answered).ok_or_else(|| unexpected_answer(&answer)),
                _ => Err(unexpected_answer(&answer)),
            }
        })
    }

    fn finish<'a>(&'a self, key: &'a str, claim: &'a ClaimId, answer: Answer, keep: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let request = format!("finish {} {claim} {} {}", hex(key.as_bytes()), answer_text(&answer), keep.as_millis());
            let answer = self.call(request).await?;
            if answer == "ok" { Ok(()) } else { Err(unexpected_answer(&answer)) }
        })
    }

    fn refresh<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let answer = self.call(format!("refresh {} {claim} {}", hex(key.as_bytes()), lease.as_millis())).await?;
            answer.parse().map_err(|_| unexpected_answer(&answer))
        })
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let answer = self.call(format!("release {} {claim}", hex(key.as_bytes()))).await?;
            if answer == "ok" { Ok(()) } else { Err(unexpected_answer(&answer)) }
        })
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
                // Broker 1 also coordinates the event consumers' groups (the events' and the
                // retry topic's): its outage hits their heartbeats and offset commits too.
                for group in [format!("sb.event.{SERVICE}"), format!("sb.event.{SERVICE}.retry")] {
                    cluster.coordinator(rdkafka::mocking::MockCoordinator::Group(group), DOWN_BROKER).expect("the group's coordinator");
                }
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

/// An `Orders` server of this process, on a thread and runtime of its own, with a connection of
/// its own.
fn consumer(url: &str, name: &str, handler: OrdersImpl, store: Option<Arc<dyn DedupeStore>>) -> Replica {
    let url = url.to_owned();
    Replica::start(name.to_owned(), "127.0.0.1:0".into(), move |_listener, stopped| async move {
        let broker = Broker::connect(&url).await.expect("connect");
        queue_server(handler, store)
            .serve_with_shutdown(&broker, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        broker.close().await;
    })
}

/// Not a test of its own: consumer A, which [`run`] starts in a child process (this binary again,
/// `--exact killed_consumer_process`, with `SB_KAFKA_FAULTS_CHILD_URL` set) and SIGKILLs. Run
/// without that variable (any `cargo test`), it returns at once.
#[test]
fn killed_consumer_process() {
    let Ok(url) = std::env::var(CHILD_URL) else { return };
    let prefix = std::env::var(CHILD_PREFIX).unwrap_or_default();
    let store = std::env::var(CHILD_STORE).ok().filter(|s| !s.is_empty());
    // The parent gone (its end of our stdin closed): so is this process. It never ends otherwise:
    // it is killed.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let broker = Broker::connect(&url).await.expect("connect");
        let store = store.map(|address| Arc::new(RemoteStore { address, idle: Mutex::new(Vec::new()) }) as Arc<dyn DedupeStore>);
        let handler = OrdersImpl { report: Report::Stdout, tries: Arc::default(), prefix };
        say(format_args!("serving pid {}", std::process::id()));
        queue_server(handler, store).serve_with_shutdown(&broker, std::future::pending()).await.expect("serve");
    });
}

/// Consumer A: [`killed_consumer_process`] in a child process, its report lines read into the log
/// by a thread. Killed when dropped (a test that fails leaves no consumer behind).
struct ChildConsumer {
    child: Child,
    lines: Option<std::thread::JoinHandle<()>>,
}

impl ChildConsumer {
    fn start(url: &str, prefix: &str, store: Option<&str>, log: &Arc<Log>) -> ChildConsumer {
        let exe = std::env::current_exe().expect("this test binary");
        let mut child = Command::new(exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1", "--quiet"])
            .env(CHILD_URL, url)
            .env(CHILD_PREFIX, prefix)
            .env(CHILD_STORE, store.unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("consumer A's process");
        let stdout = child.stdout.take().expect("its stdout");
        let log = log.clone();
        let lines = std::thread::Builder::new()
            .name("faults-child-out".into())
            .spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    log.record_line(&line, A);
                }
            })
            .expect("a thread reading consumer A's lines");
        ChildConsumer { child, lines: Some(lines) }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL; returns once the process is gone and its last lines are read.
    fn kill(mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL to consumer A");
        let status = self.child.wait().expect("consumer A's exit");
        if let Some(lines) = self.lines.take() {
            lines.join().expect("the thread reading consumer A's lines");
        }
        status
    }
}

impl Drop for ChildConsumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `f` (a replica's stop, which joins its thread) off the async runtime, bounded.
async fn timed(what: &str, limit: Duration, f: impl FnOnce() + Send + 'static) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(limit, tokio::task::spawn_blocking(f))
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .expect(what);
    started.elapsed()
}

/// Kafka consumer threads of a process (the backend names them `sb-kafka-consumer`; Linux keeps
/// 15 bytes of a thread's name).
fn consumer_threads(pid: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end().starts_with("sb-kafka-consum")))
        .count()
}

// ---- the run -----------------------------------------------------------------------------------

/// Which part of the run an event's sequence number belongs to: published once the run's phase
/// has reached it. 0: both consumers; 1: A killed; 2: A's partitions taken over; 3: the broker
/// outage; 4: the rebalance (the longest: published slowly until the consumer that joins has
/// partitions and handles some of them).
fn phase_of(seq: i64) -> u8 {
    match seq {
        ..8 => 0,
        8..16 => 1,
        16..24 => 2,
        24..32 => 3,
        _ => 4,
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
    /// A store both servers share: no event handled twice but in the crash window.
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
    // A short session: the group notices the killed consumer after 3 s (the mock has no
    // minimum; a broker's `group.min.session.timeout.ms` may refuse it).
    let url = format!("{url}{}session_timeout_ms={SESSION_MS}", if url.contains('?') { '&' } else { '?' });
    println!("dedupe: {dedupe:?}; cluster: {}", if real.is_some() { "SWITCHBOARD_KAFKA_URL" } else { "mock, 3 brokers" });
    let log = Arc::new(Log::default());
    let shared = match dedupe {
        Dedupe::Shared => Some(Arc::new(LeasedStore::default())),
        Dedupe::InProcess => None,
    };
    let store: Option<Arc<dyn DedupeStore>> = shared.clone().map(|s| s as Arc<dyn DedupeStore>);
    let store_server = match &shared {
        Some(shared) => Some(serve_store(shared.clone()).await),
        None => None,
    };
    // The parent's consumers fail an entry's first attempt once between them, as one process.
    let tries: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let handler = |server| OrdersImpl { report: Report::Log(log.clone(), server), tries: Arc::clone(&tries), prefix: prefix.clone() };
    let a = ChildConsumer::start(&url, &prefix, store_server.as_ref().map(|s| s.address.as_str()), &log);
    let a_pid = a.pid().to_string();
    let threads_before = consumer_threads("self");
    let mut b = consumer(&url, "consumer-b", handler(2), store.clone());

    // The publishers: one task per key, publishing its events in order (each publish returns
    // once the broker acknowledged it), a part at a time as the run's phase allows.
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = OrdersQueueClient::new(&publisher);
    let published = Arc::new(Published::default());
    let (phase, _) = tokio::sync::watch::channel(0u8);
    let phase = Arc::new(phase);
    // Whether consumer C (phase 4) has handled events: until then, phase 4 is published slowly,
    // so that events keep coming while the group makes room for C.
    let (c_in, _) = tokio::sync::watch::channel(false);
    let c_in = Arc::new(c_in);
    let mut publishers = Vec::new();
    for k in 0..KEYS {
        let (client, published, phase, prefix) = (client.clone(), published.clone(), phase.clone(), prefix.clone());
        let mut c_in = c_in.subscribe();
        publishers.push(tokio::spawn(async move {
            let mut gate = phase.subscribe();
            for seq in 0..PER_KEY {
                let part = phase_of(seq);
                gate.wait_for(|p| *p >= part).await.expect("the phase");
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
                // The publish rate (the run spans the faults), not a wait for anything; in phase
                // 4, one event per key every 600 ms until C takes part (11 s of them at most; tansu
                // lets C in about 7 s after it joins).
                if part == 4 {
                    let c_took_part = tokio::select! {
                        c = c_in.wait_for(|c| *c) => c.is_ok(),
                        _ = tokio::time::sleep(Duration::from_millis(600)) => false,
                    };
                    if c_took_part {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(if part == 0 { 80 } else { 30 })).await;
                }
            }
        }));
    }

    // Phase 0: both consumers take part.
    eventually("both consumers handling events", Duration::from_secs(60), || log.by(A) > 0 && log.by(2) > 0).await;
    let both_at = started.elapsed();
    let consumers_running = consumer_threads("self") - threads_before + consumer_threads(&a_pid);

    // Phase 1: the second part flows; once A has handled some of it, A's process is killed.
    phase.send_replace(1);
    eventually("consumer A handling the second part", Duration::from_secs(60), || {
        log.with_seq_at_least(8) >= 30 && log.handled.lock().unwrap().iter().any(|h| h.server == A && h.seq >= 8)
    })
    .await;
    let a_threads = consumer_threads(&a_pid);
    let killing = Instant::now();
    let a_status = a.kill();
    let kill_took = killing.elapsed();
    let killed_at = Instant::now();
    let handled_before_kill = log.by(A);
    // The keys A held at the kill (the last handling of each before it was A's), and how far
    // it had got with each.
    let (a_keys, seen_at_kill) = {
        let handled = log.handled.lock().unwrap();
        let mut last: BTreeMap<usize, (usize, i64)> = BTreeMap::new();
        for h in handled.iter() {
            last.insert(h.key, (h.server, h.seq));
        }
        let a_keys: BTreeMap<usize, i64> = last.into_iter().filter(|(_, (server, _))| *server == A).map(|(k, (_, seq))| (k, seq)).collect();
        (a_keys, handled.len())
    };

    // Phase 2: the third part flows; the group notices A is gone (session timeout) and gives
    // its partitions to B, which goes on with A's keys.
    phase.send_replace(2);
    eventually("B taking over the killed consumer's keys", Duration::from_secs(SESSION_MS / 1000 + 30), || {
        log.handled.lock().unwrap()[seen_at_kill..].iter().any(|h| h.server != A && a_keys.get(&h.key).is_some_and(|seq| h.seq > *seq))
    })
    .await;
    let taken_over_after = killed_at.elapsed();

    // Phase 3: a broker goes down while the fourth part is published, and comes back.
    let mut outage = None;
    if let Some(mock) = &mock {
        let down_at = Instant::now();
        mock.tell(|done| MockCmd::Down(DOWN_BROKER, done));
        phase.send_replace(3);
        tokio::time::sleep(OUTAGE).await;
        let acked_while_down = published.acked.lock().unwrap().len();
        mock.tell(|done| MockCmd::Up(DOWN_BROKER, done));
        outage = Some((down_at.elapsed(), acked_while_down));
    } else {
        println!("broker outage: skipped (SWITCHBOARD_KAFKA_URL: a real broker cannot be taken down from here)");
        phase.send_replace(3);
    }

    // Phase 4: a rebalance: a third consumer joins (it must get partitions), then leaves.
    let joined_at = Instant::now();
    let mut c = consumer(&url, "consumer-c", handler(3), store.clone());
    phase.send_replace(4);
    eventually("the third consumer handling events", Duration::from_secs(60), || log.by(3) > 0).await;
    c_in.send_replace(true);
    let c_first_after = joined_at.elapsed();
    let c_left_took = timed("consumer C leaving", Duration::from_secs(10), move || c.stop()).await;

    // Every caller finishes.
    let all_published = tokio::time::timeout(Duration::from_secs(90), futures_util::future::join_all(publishers))
        .await
        .expect("every publisher finished within 90 s");
    for p in all_published {
        p.expect("a publisher panicked");
    }
    let published_after_join = joined_at.elapsed();
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
    let failed_on_purpose = *log.failed.lock().unwrap();
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
    // Attempts that neither failed on purpose nor ended in a handling: cut off by the kill (or a
    // handler's future dropped by a consumer losing its partitions).
    let all_attempts: u32 = attempts.values().sum();
    let interrupted = all_attempts as usize - handled.len() - failed_on_purpose;
    // Duplicates by where their first handling was: A (the killed process), a handover of a
    // record A handled whose offset it never committed; with the shared store, A's answer for
    // it must never have reached the store (A died between its handler's return and `finish`).
    let first_by: HashMap<&str, &Handled> = handled.iter().rev().map(|h| (h.id.as_str(), h)).collect();
    // (A store key is `q/<service>/<message id>`.)
    let message_id = |key: &str| key.rsplit('/').next().unwrap_or_default().to_owned();
    let finished_by_a: HashSet<String> =
        store_server.as_ref().map(|s| s.finished_by_child.lock().unwrap().iter().map(|k| message_id(k)).collect()).unwrap_or_default();
    let a_answered = |h: &Handled| finished_by_a.contains(&h.message_id);
    // Deliveries of this run's events that the shared store answered (not run again): records
    // handled but not committed before they moved to another consumer or came back to their
    // own after a rebalance (not counted: other runs' records on a shared broker).
    let run_ids: HashSet<&str> = handled.iter().map(|h| h.message_id.as_str()).collect();
    let answered_again = shared.as_ref().map(|s| s.answered.lock().unwrap().iter().filter(|k| run_ids.contains(message_id(k).as_str())).count());
    let after_a: Vec<&str> = duplicated.keys().filter(|id| first_by[**id].server == A).copied().collect();
    // Every extra handling by (the consumer that handled the event first, the one that handled it again).
    let mut handovers: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for h in &handled {
        let first = first_by[h.id.as_str()];
        if !std::ptr::eq(first, h) {
            *handovers.entry((first.server, h.server)).or_default() += 1;
        }
    }
    let unexplained: Vec<&str> = match dedupe {
        Dedupe::Shared => duplicated.keys().filter(|id| first_by[**id].server != A || a_answered(first_by[**id])).copied().collect(),
        Dedupe::InProcess => Vec::new(),
    };
    // Per key: the events handled once and not retried, in handling order, are in publish order.
    let mut by_key: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    // Per key and consumer: every handling of an event not retried, in publish order.
    let mut by_consumer: BTreeMap<(usize, usize), Vec<i64>> = BTreeMap::new();
    for h in handled.iter().filter(|h| !fail_first.contains(&h.id)) {
        if times[h.id.as_str()] == 1 {
            by_key.entry(h.key).or_default().push(h.seq);
        }
        by_consumer.entry((h.key, h.server)).or_default().push(h.seq);
    }
    let checked: usize = by_key.values().map(Vec::len).sum();
    let out_of_order: Vec<(usize, Vec<i64>)> =
        by_key.iter().filter(|(_, seqs)| seqs.windows(2).any(|w| w[0] >= w[1])).map(|(k, s)| (*k, s.clone())).collect();
    let consumer_out_of_order: Vec<((usize, usize), Vec<i64>)> =
        by_consumer.iter().filter(|(_, seqs)| seqs.windows(2).any(|w| w[0] >= w[1])).map(|(k, s)| (*k, s.clone())).collect();
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
    println!(
        "duplicated (handled > 1)           {:>5}  ({extra} extra handlings; {} first handled by the killed A{})",
        duplicated.len(),
        after_a.len(),
        match dedupe {
            Dedupe::Shared => ", which died before its answer reached the store",
            Dedupe::InProcess => ": handovers",
        }
    );
    println!("  extra handlings by (first consumer, next consumer): {handovers:?}");
    if let Some(n) = answered_again {
        println!("  deliveries answered by the shared store (handled before, not run again): {n}");
    }
    println!("unexpected (never published)       {:>5}", unexpected.len());
    println!("retried (failed first, then handled) {:>3} of {}", retried_handled, fail_first.len());
    println!("handler attempts {all_attempts}: {} handlings, {failed_on_purpose} failed on purpose, {interrupted} cut off", handled.len());
    println!(
        "order: {checked} once-handled events over {} keys checked, {} keys out of order; {} (key, consumer) pairs checked, {} out of order",
        by_key.len(),
        out_of_order.len(),
        by_consumer.len(),
        consumer_out_of_order.len()
    );
    println!("handled per consumer (1 = A killed, 2 = B, 3 = C joined and left): {per_server:?}; A before the kill: {handled_before_kill}");
    println!(
        "kill: A's process (pid {a_pid}, {a_threads} Kafka consumer thread) ended by {a_status} in {kill_took:?}; it held {} of {KEYS} keys; \
         B went on with them {taken_over_after:?} after (session timeout {SESSION_MS} ms); Kafka consumer threads of A and B: {consumers_running}",
        a_keys.len()
    );
    println!(
        "timings: both consuming {both_at:?}; outage {}; C handling {c_first_after:?} after joining (the last publish {published_after_join:?} after), C left in {c_left_took:?}; \
         all handled {all_handled_at:?}; shutdown of B {shutdown_took:?}, publisher closed {publisher_closed:?}",
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
    assert!(consumer_out_of_order.is_empty(), "(key, consumer) handled out of publish order: {consumer_out_of_order:?}");
    assert_eq!(retried_handled, fail_first.len(), "retried events not handled");
    assert!(!fail_first.is_empty(), "no event was retried");
    // A really was killed: SIGKILL, not an exit of its own.
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(a_status.signal(), Some(9), "consumer A's process ended by {a_status}, not SIGKILL");
    }
    assert!(a_threads >= 1, "consumer A's process ran no Kafka consumer thread when killed");
    assert!(!a_keys.is_empty(), "consumer A held no key when killed");
    if dedupe == Dedupe::Shared {
        assert!(unexplained.is_empty(), "handled twice with the shared dedupe store (not in the killed process's crash window): {unexplained:?}");
        assert!(duplicated.len() <= usize::from(PREFETCH), "{} events handled twice: more than A had in flight", duplicated.len());
    }
    if mock.is_some() {
        // The outage held the publishes to broker 1's partitions (it leads 2 of 6).
        assert!(slow.0 > 0, "no publish was held up by the broker outage");
    }
    assert!(consumers_running >= 2, "A and B run {consumers_running} Kafka consumer threads");
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
