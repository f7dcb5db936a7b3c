//! Idempotency across replicas (issue 16, item 8): three `idem-replica` processes consume one
//! queue with their dedupe window in a shared store; 200 keyed requests; replicas die between
//! handling and ack (right after the answer was stored, before the reply and the ack) and in the
//! middle of a handler (the key claimed, nothing stored), and are restarted. Every keyed
//! request's handler must have run exactly once (one line per entry in the replicas' shared log,
//! written by the pid that the caller's answer names) and every caller must have its answer.
//!
//! Cases: RabbitMQ + Redis (the killed replica's unacked request is redelivered to another
//! replica, which answers it from the store); NATS + the JetStream key-value store, and NATS +
//! Redis (core NATS requests are at most once: the killed replica's request is lost, and its
//! caller sends it again with the same idempotency key after a 3 s attempt timeout; another
//! replica answers it from the store).
//!
//! Replicas take one message at a time (`--prefetch 1`), so that a kill between handling and ack
//! interrupts no other handler half-way: a replica killed with other handlers past their side
//! effect and before their answer was stored would run those again once their claims lapse,
//! which is the documented limit of a shared store (`switchboard::dedupe::DedupeStore`).
//!
//! Needs `SWITCHBOARD_AMQP_URL`, `SWITCHBOARD_NATS_URL` and `SWITCHBOARD_REDIS_URL`
//! (`eval "$(bash scripts/brokers.sh start)"` starts all three); without them the cases skip
//! and say why, and under `CI=true` they fail.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idempotency::LedgerQueueClient;
use switchboard::client::CallOptions;
use switchboard::queue::Broker;
use switchboard::Code;
use switchboard_test_support::broker::{env_or_skip, AMQP_URL, NATS_URL};
use tokio::process::{Child, Command};

/// Redis, as `scripts/brokers.sh start` exports it.
const REDIS_URL: &str = "SWITCHBOARD_REDIS_URL";
const REQUESTS: usize = 200;
const REPLICAS: usize = 3;
/// Callers at once.
const CONCURRENCY: usize = 20;
/// Claims lapse this long after their replica died.
const LEASE_MS: u64 = 1000;

/// How a replica is told to die.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Death {
    /// Exit right after storing its n-th answer (before replying and acking).
    AfterStore(usize),
    /// Exit in the middle of its n-th handler run (before the side effect).
    InHandler(usize),
    Never,
}

/// The first three replicas' deaths, then each restart's, in order; restarts after these live.
const PLAN: [Death; 9] = [
    Death::AfterStore(7),
    Death::AfterStore(11),
    Death::InHandler(9),
    Death::AfterStore(5),
    Death::AfterStore(9),
    Death::InHandler(6),
    Death::AfterStore(8),
    Death::AfterStore(6),
    Death::AfterStore(10),
];

/// Deaths seen, by kind.
#[derive(Debug, Default, Clone)]
struct Deaths {
    after_store: usize,
    in_handler: usize,
    other: Vec<String>,
}

struct Spawner {
    broker: String,
    store: String,
    name: String,
    log: PathBuf,
    stderr: PathBuf,
}

impl Spawner {
    fn spawn(&self, death: Death) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_idem-replica"));
        cmd.args(["--broker", &self.broker, "--store", &self.store, "--name", &self.name])
            .arg("--log")
            .arg(&self.log)
            .args(["--lease-ms", &LEASE_MS.to_string(), "--prefetch", "1"]);
        match death {
            Death::AfterStore(n) => cmd.args(["--die-after-store", &n.to_string()]),
            Death::InHandler(n) => cmd.args(["--die-in-handler", &n.to_string()]),
            Death::Never => &mut cmd,
        };
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr).expect("replica stderr file");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(stderr)).kill_on_drop(true);
        cmd.spawn().expect("spawn idem-replica")
    }
}

/// Runs the three replicas (restarting the ones that die) while 200 keyed calls are made, then
/// checks the log.
async fn replicas_apply_each_entry_once(broker_url: &str, store: &str, label: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("idem-{label}-{}-{}", std::process::id(), nanos % 1_000_000_000);
    let spawner = Arc::new(Spawner {
        broker: broker_url.to_owned(),
        store: store.to_owned(),
        name: name.clone(),
        log: dir.path().join("applied.log"),
        stderr: dir.path().join("replicas.stderr"),
    });
    let started = Instant::now();

    // The supervisor: restarts a replica that died, with the next death of the plan.
    let stop = Arc::new(AtomicBool::new(false));
    let deaths = Arc::new(Mutex::new(Deaths::default()));
    let supervisor = tokio::spawn({
        let (spawner, stop, deaths) = (spawner.clone(), stop.clone(), deaths.clone());
        async move {
            let mut plan: VecDeque<Death> = PLAN.into_iter().collect();
            let mut replicas: Vec<Child> = (0..REPLICAS).map(|_| spawner.spawn(plan.pop_front().unwrap_or(Death::Never))).collect();
            while !stop.load(Ordering::SeqCst) {
                for slot in replicas.iter_mut() {
                    if let Some(status) = slot.try_wait().expect("try_wait") {
                        {
                            let mut deaths = deaths.lock().unwrap();
                            match status.code() {
                                Some(3) => deaths.after_store += 1,
                                Some(4) => deaths.in_handler += 1,
                                _ => deaths.other.push(status.to_string()),
                            }
                        }
                        *slot = spawner.spawn(plan.pop_front().unwrap_or(Death::Never));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for mut replica in replicas {
                let _ = replica.kill().await;
            }
        }
    });

    let broker = Broker::connect(broker_url).await.expect("connect to the broker");
    let client = LedgerQueueClient::new(&broker);
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let (client, limit) = (client.clone(), limit.clone());
        calls.spawn(async move {
            let _turn = limit.acquire_owned().await.unwrap();
            let entry = format!("entry-{i:03}");
            let began = Instant::now();
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                // The same key on every attempt: an attempt whose replica died is sent again.
                let request = CallOptions::new().idempotency_key(&entry).timeout(Duration::from_secs(3)).request(entry.clone());
                match client.apply(request).await {
                    Ok(answer) => return (entry, answer.into_inner(), attempts),
                    // Its replica died (NATS: the request was lost), or none serves right now.
                    Err(s) if matches!(s.code(), Code::DeadlineExceeded | Code::Unavailable) && began.elapsed() < Duration::from_secs(120) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(s) => panic!("{entry}: {s:?} after {attempts} attempts"),
                }
            }
        });
    }
    let mut answers = HashMap::new();
    let mut resent = 0;
    while let Some(done) = calls.join_next().await {
        let (entry, answer, attempts) = done.expect("a caller panicked");
        resent += usize::from(attempts > 1);
        answers.insert(entry, answer);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    supervisor.await.expect("supervisor");
    let deaths = deaths.lock().unwrap().clone();
    let stderr = std::fs::read_to_string(&spawner.stderr).unwrap_or_default();

    // Every caller has its answer...
    assert_eq!(answers.len(), REQUESTS);
    // ...from the one run of its entry: each entry applied once, by the replica the answer names.
    let applied = applied(&spawner.log);
    let mut twice = Vec::new();
    for (entry, answer) in &answers {
        let runs = applied.get(entry).map(Vec::as_slice).unwrap_or_default();
        match runs {
            [pid] => assert_eq!(answer, &format!("{entry} applied by {pid}"), "{entry}: the answer is not its run's"),
            [] => panic!("{entry} was answered {answer:?} but never applied"),
            many => twice.push(format!("{entry} by {many:?}")),
        }
    }
    assert!(twice.is_empty(), "applied more than once: {twice:?}\nreplicas' stderr:\n{stderr}");
    assert_eq!(applied.len(), REQUESTS, "entries applied that nobody asked for");
    eprintln!(
        "{label}: {REQUESTS} keyed calls answered in {elapsed:.1?}, each applied once; replicas died {} times after storing an \
         answer and {} times in a handler (restarted each time); {resent} calls were sent more than once",
        deaths.after_store, deaths.in_handler
    );
    assert!(deaths.other.is_empty(), "replicas exited otherwise: {:?}\n{stderr}", deaths.other);
    // The kills happened: between handling and ack (several), and in the middle of a handler.
    assert!(deaths.after_store >= 4, "only {} kills between handling and ack\n{stderr}", deaths.after_store);
    assert!(deaths.in_handler >= 1, "no kill in a handler\n{stderr}");
}

/// The replicas' log: entry → the pids that applied it.
fn applied(log: &Path) -> HashMap<String, Vec<String>> {
    let mut applied: HashMap<String, Vec<String>> = HashMap::new();
    for line in std::fs::read_to_string(log).expect("the replicas' log").lines() {
        let (entry, pid) = line.split_once(' ').expect("`<entry> <pid>`");
        applied.entry(entry.to_owned()).or_default().push(pid.to_owned());
    }
    applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_replicas_share_a_redis_window() {
    let Some(amqp) = env_or_skip(AMQP_URL) else { return };
    let Some(redis) = env_or_skip(REDIS_URL) else { return };
    replicas_apply_each_entry_once(&amqp, &redis, "amqp-redis").await;
}

/// Both NATS cases in one test: they serve the same subjects, so they take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_replicas_share_a_key_value_or_redis_window() {
    let Some(nats) = env_or_skip(NATS_URL) else { return };
    replicas_apply_each_entry_once(&nats, &format!("nats-kv:{nats}"), "nats-kv").await;
    let Some(redis) = env_or_skip(REDIS_URL) else { return };
    replicas_apply_each_entry_once(&nats, &redis, "nats-redis").await;
}
