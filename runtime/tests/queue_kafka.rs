//! The queue suite on Kafka, and Kafka's own cases (per-key order across partitions with
//! competing consumers, non-blocking retries, bounded shutdown).
//!
//! - `SWITCHBOARD_KAFKA_URL` (e.g. `kafka://127.0.0.1:9092`): the suite runs against that
//!   cluster. Without it, against librdkafka's in-process mock cluster
//!   (`switchboard::queue::kafka_mock_cluster`: the real Kafka protocol on loopback), so it runs
//!   everywhere the `kafka` feature builds.
//!
//! Every case of the shared suites applies to Kafka; only `unserved_is_unavailable` is skipped on
//! the mock cluster (see its test). The tests share one cluster and fixed service names, so
//! they take turns (`BROKER`); entries are named per run, so leftovers in a shared cluster's
//! topics do not count.
#![cfg(feature = "kafka")]

#[path = "queue/suite.rs"]
mod suite;
#[path = "queue/cancel.rs"]
mod cancel;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use suite::{Empty, Entry};
use switchboard::queue::{Broker, KafkaOptions, PartitionKey};
use switchboard::{Request, Response, Status};
use switchboard_test_support::ready::{eventually, retry_until};

/// One test at a time against the shared cluster.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster: `SWITCHBOARD_KAFKA_URL`, or a mock cluster of 3 brokers started once.
fn kafka_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("SWITCHBOARD_KAFKA_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => switchboard::queue::kafka_mock_cluster(3).expect("the mock Kafka cluster"),
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_kafka() {
    let _turn = BROKER.lock().await;
    suite::run_all(&kafka_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_calls_are_cancelled_on_kafka() {
    let _turn = BROKER.lock().await;
    cancel::run_all(&kafka_url()).await;
    cancel::queued_and_cancelled_is_not_run(&kafka_url()).await;
}

/// Nobody serves the service: the call fails at once with UNAVAILABLE (the client describes its
/// request group: Empty). Not on the mock cluster, which cannot describe groups (a call there
/// waits for its deadline); on a real broker (tansu in CI) it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_calls_fail_fast_on_kafka() {
    let _turn = BROKER.lock().await;
    if std::env::var("SWITCHBOARD_KAFKA_URL").is_ok_and(|u| !u.is_empty()) {
        suite::unserved_is_unavailable(&kafka_url()).await;
    } else {
        eprintln!("skipped: the mock cluster cannot tell whether a service has servers (no ListGroups)");
    }
}

#[tokio::test]
async fn unreachable_clusters_and_bad_urls_are_connect_errors() {
    let err = Broker::connect("kafka://127.0.0.1:1").await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let err = Broker::connect("kafka://127.0.0.1:1?bogus=1").await.unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_topics_that_do_not_exist_are_named() {
    let _turn = BROKER.lock().await;
    let broker = Broker::connect(&format!("{}?create_topics=false", kafka_url())).await.expect("connect");
    let client = AbsentQueueClient::new(&broker);
    let err = client.publish_nothing(Empty {}).await.unwrap_err();
    assert_eq!(err.code(), switchboard::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("`sb.event.test.kafka.v1.Absent.Nothing`"), "{err:?}");
    broker.close().await;
}

/// A service whose topics nobody creates.
#[switchboard::service(package = "test.kafka.v1", rest = false)]
pub trait Absent {
    #[rpc(event)]
    async fn nothing(&self, req: Request<Empty>) -> Result<Response<Empty>, Status>;
}

// ---- Kafka's own cases ----------------------------------------------------------------------

#[switchboard::service(package = "test.kafka.v1", rest = false)]
pub trait Orders {
    /// Succeeds, unless the entry's `fail_code` is set: then fails every attempt.
    #[rpc(event)]
    async fn place(&self, req: Request<Entry>) -> Result<Response<Empty>, Status>;
}

/// What the handlers saw: per key, the entry ids in handling order; when each id was handled.
#[derive(Default)]
struct Seen {
    by_key: Mutex<HashMap<String, Vec<i64>>>,
    handled_at: Mutex<HashMap<String, Instant>>,
    attempts: Mutex<HashMap<String, u32>>,
    /// When each entry's first attempt started.
    first_attempt: Mutex<HashMap<String, Instant>>,
    /// Which server handled each entry.
    by_server: Mutex<HashMap<usize, usize>>,
}

#[derive(Clone)]
struct OrdersImpl {
    seen: Arc<Seen>,
    server: usize,
    /// Entries of other tests (left in the topics of a shared cluster) are acked unseen.
    prefix: String,
}

impl Orders for OrdersImpl {
    async fn place(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        let key = req.metadata().get("sb-key").map(|k| k.to_str().unwrap().to_owned()).unwrap_or_default();
        let entry = req.into_inner();
        if !entry.id.starts_with(&self.prefix) {
            return Ok(Response::new(Empty {}));
        }
        *self.seen.attempts.lock().unwrap().entry(entry.id.clone()).or_default() += 1;
        self.seen.first_attempt.lock().unwrap().entry(entry.id.clone()).or_insert_with(Instant::now);
        if entry.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(entry.sleep_ms.into())).await;
        }
        if entry.fail_code != 0 {
            return Err(Status::internal(format!("cannot place {}", entry.id)));
        }
        self.seen.by_key.lock().unwrap().entry(key).or_default().push(entry.amount);
        self.seen.handled_at.lock().unwrap().insert(entry.id.clone(), Instant::now());
        *self.seen.by_server.lock().unwrap().entry(self.server).or_default() += 1;
        Ok(Response::new(Empty {}))
    }
}

fn keyed(id: String, key: &str, amount: i64) -> Request<Entry> {
    let mut req = Request::new(Entry { id, amount, ..Default::default() });
    req.extensions_mut().insert(PartitionKey::new(key));
    req
}

/// Starts an `Orders` server on a connection of its own; returns the connection and the task.
/// Each test's servers join a consumer group of their own (`KafkaOptions::group`), so that no
/// test depends on the state an earlier run left in a shared cluster's group (tansu, after many
/// runs against one instance, was seen leaving `sb.event.test.kafka.v1.Orders` in a state where
/// no member got partitions). A new group reads the topics from their beginning: earlier runs'
/// entries are acked unseen (the prefix).
async fn orders_server(url: &str, prefix: &str, seen: &Arc<Seen>, server: usize) -> (Broker, tokio::task::JoinHandle<Result<(), Status>>) {
    let group = format!("sb.event.test.kafka.v1.Orders.{prefix}");
    let broker = Broker::connect_kafka(url, KafkaOptions::new().group(group)).await.expect("connect");
    let queue_server = OrdersQueueServer::new(OrdersImpl { seen: seen.clone(), server, prefix: prefix.to_owned() })
        .max_attempts(3)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(50))
        .prefetch(16);
    let b = broker.clone();
    (broker, tokio::spawn(async move { queue_server.serve(&b).await }))
}

/// 600 events over 12 keys (6 partitions), two competing consumers: every event handled once,
/// and per key in publish order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_keep_their_order_across_partitions_and_competing_consumers() {
    let _turn = BROKER.lock().await;
    let url = kafka_url();
    let prefix = format!("{}-{:x}-", std::process::id(), fastrand::u32(..));
    let seen = Arc::new(Seen::default());
    let (first, first_task) = orders_server(&url, &prefix, &seen, 1).await;
    let (second, second_task) = orders_server(&url, &prefix, &seen, 2).await;
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = OrdersQueueClient::new(&publisher);
    const KEYS: usize = 12;
    const PER_KEY: i64 = 50;
    let run = &prefix;
    // Published key by key in order (each publish returns once the broker has it), the keys
    // side by side.
    let publishers = (0..KEYS).map(|k| {
        let client = client.clone();
        async move {
            for i in 0..PER_KEY {
                client.publish_place(keyed(format!("{run}o-{k}-{i}"), &format!("key-{run}-{k}"), i)).await.expect("publish");
            }
        }
    });
    futures_util::future::join_all(publishers).await;
    eventually("every event handled", Duration::from_secs(60), || {
        seen.by_key.lock().unwrap().values().map(Vec::len).sum::<usize>() >= KEYS * PER_KEY as usize
    })
    .await;
    let by_key = seen.by_key.lock().unwrap().clone();
    for k in 0..KEYS {
        let got = &by_key[&format!("key-{run}-{k}")];
        assert_eq!(*got, (0..PER_KEY).collect::<Vec<_>>(), "key {k} out of order or duplicated");
    }
    let by_server = seen.by_server.lock().unwrap().clone();
    println!("handled per server: {by_server:?}");
    let started = Instant::now();
    for broker in [&first, &second, &publisher] {
        broker.close().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), first_task).await.expect("the first server stops");
    let _ = tokio::time::timeout(Duration::from_secs(5), second_task).await.expect("the second server stops");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
}

/// An event that fails every attempt does not hold up the events behind it on its partition:
/// they are handled within 100 ms of it failing the first time, while it goes through the retry
/// topic; after its third attempt it is in the dead-letter topic with its origin and error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_do_not_block_the_partition_and_end_in_the_dead_letters() {
    let _turn = BROKER.lock().await;
    let url = kafka_url();
    let prefix = format!("{}-{:x}-", std::process::id(), fastrand::u32(..));
    let seen = Arc::new(Seen::default());
    let (server, task) = orders_server(&url, &prefix, &seen, 1).await;
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = OrdersQueueClient::new(&publisher);
    // Drains leftovers of earlier runs against a shared cluster.
    let _ = publisher.dead_letters("test.kafka.v1.Orders", "Place", 1000).await.expect("dead letters");
    let run = &prefix;
    let key = format!("same-{run}");
    // One key: one partition. The poison first, then five that succeed.
    let mut poison = keyed(format!("{run}poison"), &key, -1);
    poison.get_mut().fail_code = 13;
    client.publish_place(poison).await.expect("publish");
    for i in 0..5 {
        client.publish_place(keyed(format!("{run}after-{i}"), &key, i)).await.expect("publish");
    }
    let published = Instant::now();
    eventually("the events behind the poison handled", Duration::from_secs(30), || {
        seen.handled_at.lock().unwrap().len() >= 5
    })
    .await;
    let last = seen.handled_at.lock().unwrap().values().max().copied().unwrap();
    let failed = seen.first_attempt.lock().unwrap()[&format!("{run}poison")];
    // From when they could go at the earliest: the poison's first attempt, or their publish if
    // the server had taken the poison before they were all published.
    let delay = last.duration_since(failed.max(published));
    println!("five events behind a failing one handled {delay:?} after its first attempt (or their publish)");
    assert_eq!(seen.by_key.lock().unwrap()[&key], [0, 1, 2, 3, 4]);
    // The poison's first attempt failed before they ran (same partition, in order); they did not
    // wait for its retries (backoff 20 ms, then 40 ms, each through the retry topic).
    let dead = retry_until("the poison in the dead letters", Duration::from_secs(30), || async {
        let dead = publisher.dead_letters("test.kafka.v1.Orders", "Place", 10).await.expect("dead letters");
        if dead.is_empty() { Err("none yet") } else { Ok(dead) }
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(d.header("sb-status"), Some("13"));
    assert_eq!(d.header("sb-status-message"), Some(format!("cannot place {run}poison").as_str()));
    assert_eq!(d.header("sb-attempt"), Some("3"));
    assert_eq!(d.header("sb-origin-topic"), Some("sb.event.test.kafka.v1.Orders.Place"));
    assert!(d.header("sb-origin-partition").is_some_and(|p| p.parse::<i32>().is_ok()), "{d:?}");
    assert!(d.header("sb-origin-offset").is_some_and(|o| o.parse::<i64>().is_ok()), "{d:?}");
    assert_eq!(d.header("sb-key"), Some(key.as_str()));
    assert_eq!(d.header("ce_type"), Some("test.kafka.v1.Orders.Place"));
    assert_eq!(seen.attempts.lock().unwrap()[&format!("{run}poison")], 3);
    // The five behind it were not delayed by its retries.
    assert!(delay < Duration::from_millis(100), "the events behind the poison waited {delay:?}");
    // Taken: not read again.
    assert!(publisher.dead_letters("test.kafka.v1.Orders", "Place", 10).await.unwrap().is_empty());
    let started = Instant::now();
    server.close().await;
    publisher.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await.expect("the server stops");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
}

/// A server with a handler still running closes in under 5 s (its consumer leaves the group
/// within the bound, the record goes back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_with_a_handler_running() {
    let _turn = BROKER.lock().await;
    let url = kafka_url();
    let prefix = format!("{}-{:x}-", std::process::id(), fastrand::u32(..));
    let seen = Arc::new(Seen::default());
    let (server, task) = orders_server(&url, &prefix, &seen, 1).await;
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = OrdersQueueClient::new(&publisher);
    let run = &prefix;
    let mut slow = keyed(format!("{run}slow"), "slow", 0);
    slow.get_mut().sleep_ms = 60_000;
    client.publish_place(slow).await.expect("publish");
    eventually("the slow handler to start", Duration::from_secs(30), || {
        seen.attempts.lock().unwrap().contains_key(&format!("{run}slow"))
    })
    .await;
    let started = Instant::now();
    server.close().await;
    task.abort();
    let _ = task.await;
    publisher.close().await;
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
}

/// A Python peer written from docs/queue-protocol.md, "Kafka" (`kafka_peer.py`: confluent-kafka
/// and kafka-python) publishes an event this server handles, calls `Echo` through a reply topic
/// of its own, reads an event switchboard published (with its CloudEvents headers) and reads the
/// dead-letter topic. Against `SWITCHBOARD_KAFKA_URL` only (the mock cluster has no CreateTopics
/// for the peer's reply topic); without the Python packages it skips (under `CI=true` it fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_peer_interoperates_from_the_protocol_doc() {
    let Some(url) = std::env::var("SWITCHBOARD_KAFKA_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: SWITCHBOARD_KAFKA_URL is not set");
        return;
    };
    let modules = std::process::Command::new("python3").args(["-c", "import confluent_kafka, kafka"]).status();
    if !modules.is_ok_and(|s| s.success()) {
        switchboard_test_support::ci::skip_or_fail("python3 with confluent-kafka and kafka-python is not installed");
        return;
    }
    let _turn = BROKER.lock().await;
    let broker = Broker::connect(&url).await.expect("connect");
    let book = suite::Impl::default();
    let server = suite::serve(&broker, book.clone()).await;
    let client = suite::LedgerQueueClient::new(&broker);
    let run = format!("{}-{:x}", std::process::id(), fastrand::u32(..));
    client.publish_record(Entry { id: format!("rs-{run}"), ..Default::default() }).await.expect("publish");
    client.publish_poison(Entry { id: format!("rs-poison-{run}"), ..Default::default() }).await.expect("publish");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_peer.py");
    let (u, r) = (url.clone(), run.clone());
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("python3").args([script, &u, &r]).output())
        .await
        .unwrap()
        .expect("run python3");
    println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the Python peer failed");
    let py = format!("py-{run}");
    eventually("the Python peer's event handled", Duration::from_secs(20), || book.0.recorded.lock().unwrap().contains(&py)).await;
    // Takes this run's dead letter, so that the suite's count of them stays its own.
    let poison = format!("rs-poison-{run}");
    let taken = Arc::new(Mutex::new(Vec::new()));
    retry_until("this run's dead letter taken", Duration::from_secs(20), || {
        let (broker, poison, taken) = (broker.clone(), poison.clone(), taken.clone());
        async move {
            let dead = broker.dead_letters("test.queue.v1.Ledger", "Poison", 1000).await.expect("dead letters");
            let mut taken = taken.lock().unwrap();
            taken.extend(dead);
            let ours = taken.iter().any(|d| d.body.as_ref().windows(poison.len()).any(|w| w == poison.as_bytes()));
            if ours { Ok(()) } else { Err("not yet") }
        }
    })
    .await;
    server.abort();
    let _ = server.await;
    broker.close().await;
}

// ---- reply-topic leases ---------------------------------------------------------------------

/// Leases short enough for a test: 2 s, renewed every 667 ms; servers sweep every 500 ms.
fn short_leases() -> KafkaOptions {
    KafkaOptions::new().reply_lease(Duration::from_secs(2)).reply_sweep(Duration::from_millis(500))
}

/// The `sb.reply.*` topics the cluster lists (what `kafka-topics --list` shows), but the lease
/// topic.
async fn reply_topics(url: &str) -> std::collections::HashSet<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let servers = url.trim_start_matches("kafka://").split('?').next().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", servers).create().expect("a metadata client");
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).expect("the cluster's metadata");
        metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && t.name().starts_with("sb.reply.") && t.name() != "sb.reply.leases")
            .map(|t| t.name().to_owned())
            .collect()
    })
    .await
    .unwrap()
}

/// The one topic in `after` and not in `before`.
fn the_new_one(before: &std::collections::HashSet<String>, after: &std::collections::HashSet<String>) -> String {
    let new: Vec<&String> = after.difference(before).collect();
    assert_eq!(new.len(), 1, "expected one new reply topic, found {new:?}");
    new[0].clone()
}

/// Lease records read: key, value (`None`: a tombstone), when read.
type LeaseRecords = Arc<Mutex<Vec<(String, Option<String>, Instant)>>>;

/// The records of `sb.reply.leases` as a peer reads them (key, value, when read), from a
/// consumer of the topic's every partition on a thread of its own, from the beginning, until the
/// returned [`Reading`] is stopped.
fn read_leases(url: &str) -> (LeaseRecords, Reading) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let servers = url.trim_start_matches("kafka://").split('?').next().unwrap().to_owned();
    let read = LeaseRecords::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (out, stopped) = (read.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", servers)
            .set("group.id", format!("lease-reader-{:x}", fastrand::u64(..)))
            .set("enable.auto.commit", "false")
            .create()
            .expect("a lease reader");
        let metadata = consumer.fetch_metadata(Some("sb.reply.leases"), Duration::from_secs(10)).expect("the lease topic's metadata");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            tpl.add_partition_offset("sb.reply.leases", p.id(), rdkafka::Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).expect("assign the lease topic");
        while !stopped.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let value = m.payload().map(|v| String::from_utf8_lossy(v).into_owned());
                out.lock().unwrap().push((key, value, Instant::now()));
            }
        }
        consumer.unassign().expect("unassign");
        drop(consumer);
    });
    (read, Reading { stop, thread })
}

/// The lease reader of [`read_leases`].
struct Reading {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Reading {
    /// Stops the reader and waits for its thread (a librdkafka client still running when the
    /// test process exits can crash it).
    async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join()).await.unwrap().expect("the lease reader");
    }
}

/// A child process, killed (SIGKILL) when dropped: also when the test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Leases of `topic` (not tombstones) read after `after`.
fn leases_of(read: &Mutex<Vec<(String, Option<String>, Instant)>>, topic: &str, after: Instant) -> usize {
    read.lock().unwrap().iter().filter(|(k, v, at)| k == topic && v.is_some() && *at > after).count()
}

/// Started as a child process by `reply_topics_of_crashed_clients_are_deleted` (with
/// `SB_KAFKA_REPLY_CHILD` set to the cluster's URL): calls `Echo` once, says `sb-child: called`, and waits
/// to be killed. Without the variable, nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_lease_child_process() {
    let Some(url) = std::env::var("SB_KAFKA_REPLY_CHILD").ok().filter(|u| !u.is_empty()) else { return };
    let broker = Broker::connect_kafka(&url, short_leases()).await.expect("connect");
    let client = suite::LedgerQueueClient::new(&broker);
    client.echo(Entry { id: "from-the-child".into(), ..Default::default() }).await.expect("echo");
    println!("sb-child: called");
    std::future::pending::<()>().await;
}

/// A client that made a call and then crashed (a child process, SIGKILLed: it neither closed nor
/// ended its lease) leaves its reply topic; a request server deletes it once its lease runs out,
/// while a live client's reply topic (its lease renewed) stays and its calls go on working. The
/// lease records in `sb.reply.leases` are as docs/queue-protocol.md says. On the mock cluster
/// (no DeleteTopics, and a cluster only this process can make topics on) the crash is a client
/// dropped without close, and the test checks the leases only: the dropped client's stop, the
/// live one's go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_topics_of_crashed_clients_are_deleted() {
    let _turn = BROKER.lock().await;
    let url = kafka_url();
    let real = std::env::var("SWITCHBOARD_KAFKA_URL").is_ok_and(|u| !u.is_empty());
    let lease = Duration::from_secs(2);
    let server_conn = Broker::connect_kafka(&url, short_leases()).await.expect("connect");
    let server = suite::serve(&server_conn, suite::Impl::default()).await;
    let before = reply_topics(&url).await;

    // The client that will crash.
    let mut child = None;
    let mut dropped = None;
    if real {
        let mut process = KillOnDrop(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["reply_lease_child_process", "--exact", "--nocapture", "--test-threads=1"])
                .env("SB_KAFKA_REPLY_CHILD", &url)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start the child process"),
        );
        let stdout = process.0.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let called = std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.ends_with("sb-child: called"));
            let _ = tx.send(called);
        });
        let called = tokio::time::timeout(Duration::from_secs(30), rx).await;
        assert!(matches!(called, Ok(Ok(true))), "the child process did not make its call: {called:?}");
        child = Some(process);
    } else {
        let broker = Broker::connect_kafka(&url, short_leases()).await.expect("connect");
        suite::LedgerQueueClient::new(&broker).echo(Entry { id: "to-drop".into(), ..Default::default() }).await.expect("echo");
        dropped = Some(broker);
    }
    let with_crashed = reply_topics(&url).await;
    let crashed = the_new_one(&before, &with_crashed);

    // The client that lives on.
    let live_conn = Broker::connect_kafka(&url, short_leases()).await.expect("connect");
    let live = suite::LedgerQueueClient::new(&live_conn);
    live.echo(Entry { id: "live-1".into(), ..Default::default() }).await.expect("echo");
    let live_topic = the_new_one(&with_crashed, &reply_topics(&url).await);
    let (leases, reading) = read_leases(&url);
    eventually("both clients' leases read", Duration::from_secs(20), || {
        let read = leases.lock().unwrap();
        [&crashed, &live_topic].iter().all(|t| read.iter().any(|(k, v, _)| k == *t && v.as_deref() == Some("2000")))
    })
    .await;

    // The crash.
    match child.as_mut() {
        Some(KillOnDrop(process)) => {
            process.kill().expect("SIGKILL the child");
            let _ = process.wait();
        }
        None => drop(dropped.take()),
    }
    let crashed_at = Instant::now();
    // Renewals in flight at the crash have landed once the live client has renewed twice since.
    eventually("two renewals of the live lease", Duration::from_secs(20), || leases_of(&leases, &live_topic, crashed_at) >= 2).await;
    let settled = Instant::now();
    if real {
        retry_until("the crashed client's reply topic deleted", Duration::from_secs(30), || {
            let url = url.clone();
            let crashed = crashed.clone();
            async move { if reply_topics(&url).await.contains(&crashed) { Err("still listed") } else { Ok(()) } }
        })
        .await;
        let took = crashed_at.elapsed();
        println!("the crashed client's reply topic went {took:?} after the crash (lease {lease:?}, sweeps every 500 ms)");
        // Its last renewal was at most a third of the lease before the crash; the sweep after the
        // lease ran out is at most 500 ms later (and takes a probe, a metadata request and the
        // deletion).
        assert!(took >= lease / 2, "deleted {took:?} after the crash, before its lease ran out");
        assert!(took < lease + Duration::from_secs(4), "deleted only {took:?} after the crash");
        // The server ended the deleted topic's lease, for compaction to drop the key.
        eventually("the deleted topic's tombstone read", Duration::from_secs(20), || {
            leases.lock().unwrap().iter().any(|(k, v, _)| *k == crashed && v.is_none())
        })
        .await;
    }
    // A further lease later the live client's lease is still renewed and its topic still there.
    eventually("three more renewals of the live lease", Duration::from_secs(20), || {
        leases_of(&leases, &live_topic, settled) >= 3 && settled.elapsed() > lease
    })
    .await;
    assert_eq!(leases_of(&leases, &crashed, settled), 0, "the crashed client's lease was renewed after the crash");
    assert!(reply_topics(&url).await.contains(&live_topic), "the live client's reply topic was deleted");
    let echoed = live.echo(Entry { id: "live-2".into(), ..Default::default() }).await.expect("the live client's call after the sweeps");
    assert_eq!(echoed.into_inner().id, "live-2");

    // A clean close ends the lease (a tombstone) and deletes the topic at once.
    live_conn.close().await;
    if real {
        assert!(!reply_topics(&url).await.contains(&live_topic), "closed, and its reply topic is still there");
    }
    eventually("the closed client's tombstone read", Duration::from_secs(20), || {
        leases.lock().unwrap().iter().any(|(k, v, _)| *k == live_topic && v.is_none())
    })
    .await;
    reading.stop().await;
    server.abort();
    let _ = server.await;
    server_conn.close().await;
}

// ---- the consumer-lag gauge -----------------------------------------------------------------

/// The gauges set through the `metrics` facade in this test process: (name, labels) → value (an
/// f64's bits). The recorder is installed on first use.
type Gauges = Arc<Mutex<HashMap<(String, Vec<(String, String)>), Arc<std::sync::atomic::AtomicU64>>>>;

struct GaugeRecorder(Gauges);

impl metrics::Recorder for GaugeRecorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        metrics::Gauge::from_arc(self.0.lock().unwrap().entry((key.name().to_owned(), labels)).or_default().clone())
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

fn gauges() -> &'static Gauges {
    static GAUGES: OnceLock<Gauges> = OnceLock::new();
    GAUGES.get_or_init(|| {
        let gauges = Gauges::default();
        metrics::set_global_recorder(GaugeRecorder(gauges.clone())).expect("the test's recorder is the only one");
        gauges
    })
}

/// The `switchboard.queue.kafka.consumer.lag` gauges of `group` on `topic`, by partition.
fn lag_of(group: &str, topic: &str) -> HashMap<String, f64> {
    let gauges = gauges().lock().unwrap();
    gauges
        .iter()
        .filter(|((name, _), _)| name == "switchboard.queue.kafka.consumer.lag")
        .filter_map(|((_, labels), value)| {
            let label = |k: &str| labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            (label("messaging.consumer.group.name") == Some(group) && label("messaging.destination.name") == Some(topic)).then(|| {
                let partition = label("messaging.destination.partition.id").unwrap_or("?").to_owned();
                (partition, f64::from_bits(value.load(std::sync::atomic::Ordering::Relaxed)))
            })
        })
        .collect()
}

#[switchboard::service(package = "test.kafka.v1", rest = false)]
pub trait Lagging {
    /// Waits until the test opens the gate.
    #[rpc(event)]
    async fn hold(&self, req: Request<Entry>) -> Result<Response<Empty>, Status>;
}

#[derive(Clone)]
struct LaggingImpl {
    /// Entries of other runs (left in a shared cluster's topic) are acked at once.
    prefix: String,
    gate: tokio::sync::watch::Receiver<bool>,
    started: Arc<std::sync::atomic::AtomicUsize>,
    handled: Arc<std::sync::atomic::AtomicUsize>,
}

impl Lagging for LaggingImpl {
    async fn hold(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        if !req.get_ref().id.starts_with(&self.prefix) {
            return Ok(Response::new(Empty {}));
        }
        self.started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.gate.clone().wait_for(|open| *open).await;
        self.handled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Response::new(Empty {}))
    }
}

/// `switchboard.queue.kafka.consumer.lag` (librdkafka's statistics, every 5 s): with the
/// handler held on the first of 20 events published on one key, the new group's gauge for that
/// partition of the event topic shows them waiting (nothing committed there yet: counted from the
/// partition's start); once the handler goes on, every partition's gauge comes down to 0. Labels
/// as emitted: group, topic, partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_lag_gauge_follows_the_backlog() {
    use std::sync::atomic::Ordering::SeqCst;
    let _turn = BROKER.lock().await;
    let url = kafka_url();
    let _ = gauges();
    let run = format!("{}-{:x}-", std::process::id(), fastrand::u32(..));
    let group = format!("sb.event.test.kafka.v1.Lagging.{run}");
    let topic = "sb.event.test.kafka.v1.Lagging.Hold";
    let (open, gate) = tokio::sync::watch::channel(false);
    let lagging = LaggingImpl { prefix: run.clone(), gate, started: Arc::default(), handled: Arc::default() };
    let server_conn = Broker::connect_kafka(&url, KafkaOptions::new().group(group.clone())).await.expect("connect");
    // Events of other partitions (earlier runs') go on while the held one waits.
    let server = LaggingQueueServer::new(lagging.clone()).prefetch(16);
    let serving = server_conn.clone();
    let task = tokio::spawn(async move { server.serve(&serving).await });
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = LaggingQueueClient::new(&publisher);
    const N: usize = 20;
    let key = format!("lag-{run}");
    for i in 0..N {
        let mut req = Request::new(Entry { id: format!("{run}{i}"), ..Default::default() });
        req.extensions_mut().insert(PartitionKey::new(key.clone()));
        client.publish_hold(req).await.expect("publish");
    }
    eventually("the handler holding the first event", Duration::from_secs(30), || lagging.started.load(SeqCst) >= 1).await;
    // One key: one partition behind, by the N events at least (the group's first commit there
    // may be yet to come: then by what earlier runs left there too, in a shared cluster; their
    // events on other partitions are handled at once, and their lag goes once committed).
    let waiting = retry_until("the held partition's lag reported", Duration::from_secs(30), || {
        let lag = lag_of(&group, topic);
        let behind: Vec<f64> = lag.values().copied().filter(|v| *v > 0.0).collect();
        async move { if behind.len() == 1 && behind[0] >= N as f64 { Ok(lag) } else { Err(format!("lag gauges: {lag:?}")) } }
    })
    .await;
    println!("lag with the handler held: {waiting:?}");
    assert_eq!(lagging.handled.load(SeqCst), 0);
    open.send(true).expect("open the gate");
    eventually("every event handled", Duration::from_secs(30), || lagging.handled.load(SeqCst) >= N).await;
    retry_until("the lag back to 0", Duration::from_secs(30), || {
        let lag = lag_of(&group, topic);
        async move { if !lag.is_empty() && lag.values().all(|v| *v == 0.0) { Ok(()) } else { Err(format!("lag gauges: {lag:?}")) } }
    })
    .await;
    task.abort();
    let _ = task.await;
    server_conn.close().await;
    publisher.close().await;
}
