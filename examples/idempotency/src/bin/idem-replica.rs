//! One replica: serves `idem.v1.Ledger` on a queue, with its dedupe window in a shared store.
//!
//! ```text
//! idem-replica --broker amqp://…|nats://… --store redis://…|nats-kv:nats://… --name <run>
//!              --log <file> [--lease-ms 1000] [--prefetch 1] [--die-after-store N] [--die-in-handler N]
//! ```
//!
//! - `--name`: the run's name: the Redis key prefix (`<name>:`), or the key-value bucket.
//! - `--log`: each applied entry appends `<entry> <pid>` to this file (the side effect the test
//!   counts).
//! - `--die-after-store N`: exit (code 3) right after the N-th answer this process stores, before
//!   it replies and acks: the message is redelivered (RabbitMQ) or sent again by its caller (NATS
//!   core requests are at most once) to another replica, which finds the stored answer.
//! - `--die-in-handler N`: exit (code 4) inside the N-th handler run, before its side effect: the
//!   key stays claimed until its lease lapses, then the redelivery runs it.
//!
//! - `--prefetch`: messages taken at once (default 1). With more, a replica that dies has other
//!   messages in flight, some of them past their side effect and before their answer was
//!   stored: those run again after their claims lapse (the documented limit of a shared store:
//!   a kill in the middle of a handler), which the test's exactly-once count would see.
//!
//! Prints `ready <pid>` once it serves.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use idempotency::{Ledger, LedgerQueueServer};
use switchboard::dedupe::{Answer, ClaimId, Claimed, DedupeStore, NatsKvStore, RedisStore, StoreError};
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status};

/// What [`DedupeStore`]'s methods return (`futures_util::future::BoxFuture`, spelled out).
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

struct Args {
    broker: String,
    store: String,
    name: String,
    log: String,
    lease: Duration,
    die_after_store: usize,
    die_in_handler: usize,
    prefetch: u16,
}

fn args() -> Args {
    let mut args = Args {
        broker: String::new(),
        store: String::new(),
        name: String::new(),
        log: String::new(),
        lease: Duration::from_secs(1),
        die_after_store: 0,
        die_in_handler: 0,
        prefetch: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--broker" => args.broker = value(),
            "--store" => args.store = value(),
            "--name" => args.name = value(),
            "--log" => args.log = value(),
            "--lease-ms" => args.lease = Duration::from_millis(value().parse().expect("--lease-ms")),
            "--die-after-store" => args.die_after_store = value().parse().expect("--die-after-store"),
            "--die-in-handler" => args.die_in_handler = value().parse().expect("--die-in-handler"),
            "--prefetch" => args.prefetch = value().parse().expect("--prefetch"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!args.broker.is_empty() && !args.store.is_empty() && !args.name.is_empty() && !args.log.is_empty(), "usage: see the source");
    args
}

struct Replica {
    log: String,
    runs: AtomicUsize,
    die_in_handler: usize,
}

impl Ledger for Replica {
    async fn apply(&self, req: Request<String>) -> Result<Response<String>, Status> {
        let entry = req.into_inner();
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        // Some work first, so that the runs of a replica overlap.
        tokio::time::sleep(Duration::from_millis(5)).await;
        if run == self.die_in_handler {
            eprintln!("dying in the handler of {entry}");
            std::process::exit(4);
        }
        // The side effect: one line, one write to a file opened for appending (atomic between
        // processes for a line this short).
        let pid = std::process::id();
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).map_err(|e| Status::internal(e.to_string()))?;
        file.write_all(format!("{entry} {pid}\n").as_bytes()).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(format!("{entry} applied by {pid}")))
    }
}

/// The shared store, dying right after it stored the N-th answer (before the server replies and
/// acks).
struct DieAfterStore {
    inner: Arc<dyn DedupeStore>,
    stored: AtomicUsize,
    after: usize,
}

impl DedupeStore for DieAfterStore {
    fn claim<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        self.inner.claim(key, claim, lease)
    }

    fn finish<'a>(&'a self, key: &'a str, claim: &'a ClaimId, answer: Answer, keep: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.finish(key, claim, answer, keep).await?;
            if self.stored.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
                eprintln!("dying after storing the answer of {key}");
                std::process::exit(3);
            }
            Ok(())
        })
    }

    fn refresh<'a>(&'a self, key: &'a str, claim: &'a ClaimId, lease: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.refresh(key, claim, lease)
    }

    fn release<'a>(&'a self, key: &'a str, claim: &'a ClaimId) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.release(key, claim)
    }

    fn wait<'a>(&'a self, key: &'a str, poll: Duration) -> BoxFuture<'a, ()> {
        self.inner.wait(key, poll)
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let window = Duration::from_secs(300);
    let store: Arc<dyn DedupeStore> = if let Some(url) = args.store.strip_prefix("nats-kv:") {
        Arc::new(NatsKvStore::connect(url, &args.name, window).await.expect("NATS key-value store"))
    } else {
        Arc::new(RedisStore::connect(&args.store).await.expect("Redis store").prefix(format!("{}:", args.name)))
    };
    let store: Arc<dyn DedupeStore> = match args.die_after_store {
        0 => store,
        after => Arc::new(DieAfterStore { inner: store, stored: AtomicUsize::new(0), after }),
    };
    let broker = Broker::connect(&args.broker).await.expect("broker");
    let replica = Replica { log: args.log, runs: AtomicUsize::new(0), die_in_handler: args.die_in_handler };
    let server = LedgerQueueServer::new(replica).prefetch(args.prefetch).dedupe_window(window).dedupe_store(store).dedupe_lease(args.lease);
    println!("ready {}", std::process::id());
    let _ = std::io::stdout().flush();
    server.serve(&broker).await.expect("serve");
}
