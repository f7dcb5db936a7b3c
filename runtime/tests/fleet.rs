//! Fleets on gRPC and REST: three replicas of one service on 127.0.0.1/.2/.3, each a server on
//! a thread and runtime of its own (killed by dropping that runtime: its listener and every
//! connection close, as when a process dies), and a generated client over a
//! [`Fleet`](switchboard::fleet::Fleet).
//!
//! Cases: load-aware balancing (replicas at 5 / 5 / 50 ms: power of two choices by peak EWMA
//! sends ≤ 10 % to the slow one, round robin 33 ± 2 %; tonic's `balance_list` measured beside
//! them on gRPC); failover (a replica killed under load and restarted: no call fails, it gets
//! traffic again); ejection (a replica that always fails is ejected after a few failures, for
//! the ejection time, doubled the second time); DNS discovery through dnsmasq (TTL 1 s: records
//! added and removed; skipped with a reason when dnsmasq is missing, failed under `CI=true`).
//!
//! Cases run one at a time (one lock): they measure shares of traffic and time on a 2-core box.
#![cfg(all(feature = "grpc", feature = "rest"))]

#[cfg(feature = "tls")]
#[path = "common/certs.rs"]
mod certs;
#[path = "common/replica.rs"]
mod replica;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use replica::{Kind, Replica};
use switchboard::fleet::{Balancing, Ejection, FailurePercentageEjection, Fleet, SuccessRateEjection};
use switchboard::grpc::transport::{Channel, Endpoint, Server};
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::rest::RestClient;
use switchboard::{Request, Response, Status};
use tokio::net::TcpListener;

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Ping {
    /// The replica that answered.
    #[prost(uint32, tag = "1")]
    pub replica: u32,
    /// The request id `write` executions are counted under.
    #[prost(string, tag = "2")]
    pub id: String,
    /// When the call was made (ms after the test's epoch; 0: not said).
    #[prost(uint64, tag = "3")]
    pub sent_ms: u64,
}

#[switchboard::service(package = "test.fleet.v1")]
pub trait Replicated {
    /// Answers with the replica's number. Free of side effects: retried by policy.
    #[rpc(no_side_effects)]
    async fn hit(&self, req: Request<Ping>) -> Result<Response<Ping>, Status>;

    /// The same, with a side effect: never retried unless it never reached a server.
    async fn write(&self, req: Request<Ping>) -> Result<Response<Ping>, Status>;
}

/// What each replica (0, 1, 2) does and saw.
struct Replicas {
    hits: [AtomicUsize; 3],
    delay_ms: [AtomicU64; 3],
    failing: [AtomicBool; 3],
    /// When replica i last handled a call (ms after `epoch`), and the gaps between its calls of
    /// at least 500 ms (start ms, length ms).
    last_ms: [AtomicU64; 3],
    gaps: std::sync::Mutex<Vec<(usize, u64, u64)>>,
    /// The latest `Ping::sent_ms` each replica ran.
    latest_sent: [AtomicU64; 3],
    /// Every (replica, `Ping::sent_ms`) run.
    sent_log: std::sync::Mutex<Vec<(usize, u64)>>,
    epoch: Instant,
}

static REPLICAS: std::sync::LazyLock<Replicas> = std::sync::LazyLock::new(|| Replicas {
    hits: Default::default(),
    delay_ms: Default::default(),
    failing: Default::default(),
    last_ms: Default::default(),
    gaps: Default::default(),
    latest_sent: Default::default(),
    sent_log: Default::default(),
    epoch: Instant::now(),
});

fn reset() {
    for i in 0..3 {
        REPLICAS.hits[i].store(0, Ordering::SeqCst);
        REPLICAS.delay_ms[i].store(0, Ordering::SeqCst);
        REPLICAS.failing[i].store(false, Ordering::SeqCst);
        REPLICAS.last_ms[i].store(0, Ordering::SeqCst);
        REPLICAS.latest_sent[i].store(0, Ordering::SeqCst);
    }
    REPLICAS.gaps.lock().unwrap().clear();
    REPLICAS.sent_log.lock().unwrap().clear();
}

fn hits() -> [usize; 3] {
    std::array::from_fn(|i| REPLICAS.hits[i].load(Ordering::SeqCst))
}

struct Impl {
    replica: usize,
}

impl Replicated for Impl {
    async fn hit(&self, req: Request<Ping>) -> Result<Response<Ping>, Status> {
        let r = self.replica;
        REPLICAS.hits[r].fetch_add(1, Ordering::SeqCst);
        let sent = req.get_ref().sent_ms;
        if sent != 0 {
            REPLICAS.latest_sent[r].fetch_max(sent, Ordering::SeqCst);
            REPLICAS.sent_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((r, sent));
        }
        let now = REPLICAS.epoch.elapsed().as_millis() as u64;
        let last = REPLICAS.last_ms[r].swap(now, Ordering::SeqCst);
        if last != 0 && now - last >= 500 {
            REPLICAS.gaps.lock().unwrap().push((r, last, now - last));
        }
        let delay = REPLICAS.delay_ms[r].load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if REPLICAS.failing[r].load(Ordering::SeqCst) {
            return Err(Status::unavailable(format!("replica {r} fails on purpose")));
        }
        Ok(Response::new(Ping { replica: r as u32, ..Default::default() }))
    }

    async fn write(&self, req: Request<Ping>) -> Result<Response<Ping>, Status> {
        *WRITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(req.get_ref().id.clone()).or_default() += 1;
        self.hit(req).await
    }
}

/// How many times each `write` id ran.
static WRITES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
    std::sync::LazyLock::new(Default::default);

/// Starts replica `replica` on `127.0.0.<replica + 1>:<port>` (any free port when 0).
fn start(kind: Kind, replica: usize, port: u16) -> Replica {
    Replica::start_kind(
        kind,
        format!("replica-{replica}"),
        format!("127.0.0.{}:{port}", replica + 1),
        move || Server::builder().add_service(ReplicatedServer::new(Impl { replica })),
        move || ReplicatedRestServer::new(Impl { replica }).into_rest_router(),
    )
}

/// Starts replica `replica` as a [`switchboard::Server`] (gRPC, REST and the health service on
/// one port, its health statuses kept) that drains for `drain` when stopped gracefully (drain:
/// NOT_SERVING, the drain period, then no new calls, the calls in flight finished).
fn serve(replica: usize, port: u16, drain: Duration) -> Replica {
    let server = switchboard::Server::builder().add_service(ReplicatedServer::new(Impl { replica })).drain(drain);
    let health = server.health();
    let address = format!("127.0.0.{}:{port}", replica + 1);
    let mut started = Replica::start(format!("replica-{replica}"), address, move |listener, stopped| {
        server.serve_with_shutdown(listener, async move {
            let _ = stopped.await;
        })
    });
    started.health = Some(health);
    started
}

fn three(kind: Kind) -> Vec<Replica> {
    (0..3).map(|i| start(kind, i, 0)).collect()
}

fn static_target(replicas: &[Replica]) -> String {
    format!("static:///{}", replicas.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(","))
}

/// A generated client of `kind` over `fleet`, with `policy` (service-config JSON) when given.
#[derive(Clone)]
enum Client {
    Grpc(ReplicatedClient<switchboard::fleet::FleetChannel>),
    Tonic(ReplicatedClient<Channel>),
    Rest(ReplicatedRestClient),
}

impl Client {
    fn new(kind: Kind, fleet: &Fleet, policy: Option<&str>) -> Client {
        let layer = policy.map(|json| PolicyLayer::new(Policies::new().runtime(ServiceConfig::from_json(json).expect("a valid policy"))));
        match kind {
            Kind::Grpc => {
                let mut c = ReplicatedClient::new(fleet.grpc());
                if let Some(layer) = layer {
                    c = c.layer(layer);
                }
                Client::Grpc(c)
            }
            Kind::Rest => {
                let mut c = ReplicatedRestClient::with_client(RestClient::fleet(fleet.clone()));
                if let Some(layer) = layer {
                    c = c.layer(layer);
                }
                Client::Rest(c)
            }
        }
    }

    async fn hit(&self) -> Result<u32, Status> {
        let ping = Ping { sent_ms: REPLICAS.epoch.elapsed().as_millis() as u64, ..Default::default() };
        let answer = match self {
            Client::Grpc(c) => c.clone().hit(Request::new(ping)).await,
            Client::Tonic(c) => c.clone().hit(Request::new(ping)).await,
            Client::Rest(c) => c.clone().hit(Request::new(ping)).await,
        };
        answer.map(|r| r.into_inner().replica)
    }

    /// A call with a side effect, under request id `id`.
    async fn write(&self, id: String) -> Result<u32, Status> {
        let ping = Ping { id, ..Default::default() };
        let answer = match self {
            Client::Grpc(c) => c.clone().write(Request::new(ping)).await,
            Client::Tonic(c) => c.clone().write(Request::new(ping)).await,
            Client::Rest(c) => c.clone().write(Request::new(ping)).await,
        };
        answer.map(|r| r.into_inner().replica)
    }
}

/// `calls` calls, `concurrency` at a time; the answers per replica and the failures.
async fn load(client: &Client, calls: usize, concurrency: usize) -> ([usize; 3], Vec<Status>) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let (mut answered, mut failed) = ([0usize; 3], Vec::new());
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    match client.hit().await {
                        Ok(r) => answered[r as usize] += 1,
                        Err(e) => failed.push(e),
                    }
                }
                (answered, failed)
            })
        })
        .collect();
    let (mut answered, mut failed) = ([0usize; 3], Vec::new());
    for w in workers {
        let (a, f) = w.await.unwrap();
        (0..3).for_each(|i| answered[i] += a[i]);
        failed.extend(f);
    }
    (answered, failed)
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fleet_of(target: &str, balancing: Balancing, ejection: Option<Ejection>) -> Fleet {
    fleet(target, balancing, ejection)
}

fn fleet(target: &str, balancing: Balancing, ejection: Option<Ejection>) -> Fleet {
    let mut builder = Fleet::builder(target);
    builder.balancing(balancing).ejection(ejection).refresh(Duration::from_secs(30), Duration::from_millis(200));
    builder.build().expect("a fleet")
}

/// Replicas at 5 / 5 / 50 ms, 32 callers, 10,000 calls.
async fn load_aware_balancing(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    let replicas = three(kind);
    for (i, ms) in [5, 5, 50].into_iter().enumerate() {
        REPLICAS.delay_ms[i].store(ms, Ordering::SeqCst);
    }
    let target = static_target(&replicas);
    let mut shares = Vec::new();
    for balancing in [Balancing::PeakEwma, Balancing::RoundRobin] {
        let client = Client::new(kind, &fleet(&target, balancing, None), None);
        let (answered, failed) = load(&client, 10_000, 32).await;
        assert!(failed.is_empty(), "{kind:?} {balancing:?}: {} calls failed: {:?}", failed.len(), failed.first());
        let slow = answered[2] as f64 / 10_000.0;
        eprintln!("{kind:?} {balancing:?}: answers per replica {answered:?}, slow share {:.1} %", slow * 100.0);
        shares.push(slow);
    }
    if kind == Kind::Grpc {
        // The baseline: tonic's own balancer over the same endpoints, in the same run.
        let endpoints = replicas.iter().map(|r| Endpoint::from_shared(format!("http://{}", r.address)).unwrap().tcp_nodelay(true));
        let client = Client::Tonic(ReplicatedClient::new(Channel::balance_list(endpoints)));
        let (answered, failed) = load(&client, 10_000, 32).await;
        assert!(failed.is_empty(), "tonic balance_list: {} calls failed", failed.len());
        eprintln!("Grpc tonic balance_list: answers per replica {answered:?}, slow share {:.1} %", answered[2] as f64 / 100.0);
    }
    assert!(shares[0] <= 0.10, "{kind:?}: peak EWMA sent {:.1} % to the slow replica", shares[0] * 100.0);
    assert!((0.31..=0.35).contains(&shares[1]), "{kind:?}: round robin sent {:.1} % to the slow replica", shares[1] * 100.0);
}

/// A replica killed under load and restarted on its port: no call fails (retried on
/// UNAVAILABLE, and calls that never reached it transparently), and it carries traffic again.
async fn failover(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    let mut replicas = three(kind);
    let target = static_target(&replicas);
    let policy = r#"{"methodConfig": [{"name": [{"service": "test.fleet.v1.Replicated"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let client = Client::new(kind, &fleet(&target, Balancing::RoundRobin, None), Some(policy));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    // 64 callers, each at most one call per 32 ms: ~2,000 calls a second.
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (client, stop, calls) = (client.clone(), stop.clone(), calls.clone());
            tokio::spawn(async move {
                let mut failed = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(32));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = client.hit().await {
                        failed.push(e);
                    }
                }
                failed
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep_until((started + Duration::from_secs(3)).into()).await;
    let port = replicas[1].port();
    replicas[1].kill();
    let at_kill = hits();
    tokio::time::sleep_until((started + Duration::from_secs(6)).into()).await;
    assert_eq!(hits()[1], at_kill[1], "{kind:?}: a killed replica answered");
    replicas[1] = start(kind, 1, port);
    // Within 5 s of the restart it carries its share again: measured over the last second.
    tokio::time::sleep_until((started + Duration::from_secs(10)).into()).await;
    let before = hits();
    tokio::time::sleep_until((started + Duration::from_secs(11)).into()).await;
    let after = hits();
    stop.store(true, Ordering::Relaxed);
    let mut failed = Vec::new();
    for w in workers {
        failed.extend(w.await.unwrap());
    }
    let calls = calls.load(Ordering::Relaxed);
    let attempts: usize = hits().iter().sum();
    let last: Vec<usize> = (0..3).map(|i| after[i] - before[i]).collect();
    let share = last[1] as f64 / last.iter().sum::<usize>().max(1) as f64;
    eprintln!("{kind:?}: {calls} calls, {attempts} attempts served, {} failed; restarted replica's share in the last second {:.1} %", failed.len(), share * 100.0);
    assert!(failed.is_empty(), "{kind:?}: {} calls failed, e.g. {:?}", failed.len(), failed.first());
    assert!(attempts as f64 <= 1.2 * calls as f64, "{kind:?}: {attempts} attempts for {calls} calls");
    assert!(share >= 0.20, "{kind:?}: the restarted replica carries {:.1} % of the traffic", share * 100.0);
}

/// The non-idempotent variant: a replica killed while 32 callers make calls with a side effect
/// (20 ms each). Only calls in flight on it when it died may fail, each once (they are not
/// retried); calls that never reached it are sent again at once; no request id runs twice.
async fn failover_with_side_effects(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    let mut replicas = three(kind);
    for i in 0..3 {
        REPLICAS.delay_ms[i].store(20, Ordering::SeqCst);
    }
    let policy = r#"{"methodConfig": [{"name": [{"service": "test.fleet.v1.Replicated"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let client = Client::new(kind, &fleet(&static_target(&replicas), Balancing::RoundRobin, None), Some(policy));
    let prefix = switchboard_test_support::server::unique_id("write");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let (client, stop, prefix) = (client.clone(), stop.clone(), prefix.clone());
            tokio::spawn(async move {
                let (mut calls, mut failed) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let sent = started.elapsed();
                    if let Err(e) = client.write(format!("{prefix}-{w}-{calls}")).await {
                        failed.push((sent, started.elapsed(), e));
                    }
                    calls += 1;
                }
                (calls, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = started.elapsed();
    replicas[1].kill();
    // The kill takes a moment (the replica's runtime cancels its tasks, sockets close).
    let killed_by = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut calls, mut failed) = (0, Vec::new());
    for w in workers {
        let (c, f) = w.await.unwrap();
        calls += c;
        failed.extend(f);
    }
    let writes = WRITES.lock().unwrap();
    let twice: Vec<_> = writes.iter().filter(|(k, n)| k.starts_with(&prefix) && **n > 1).collect();
    eprintln!(
        "{kind:?}: {calls} calls with a side effect, {} failed (the kill from {killed_at:?} to {killed_by:?}; sent at {:?})",
        failed.len(),
        failed.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert!(twice.is_empty(), "{kind:?}: request ids ran twice: {twice:?}");
    assert!(failed.len() <= 32, "{kind:?}: {} calls failed", failed.len());
    // In flight at the kill: sent before it ended, or written within a moment after it onto a
    // connection whose close the client had not read yet (a broken pipe: the call may have been
    // written whole, so it is not sent again).
    for (sent, ended, e) in &failed {
        assert!(
            *sent <= killed_by + Duration::from_millis(50) && *ended >= killed_at,
            "{kind:?}: a call sent at {sent:?}, not in flight at the kill ({killed_at:?} to {killed_by:?}), failed: {e:?}"
        );
        assert_eq!(e.code(), switchboard::Code::Unavailable, "{kind:?}: {e:?}");
    }
}

/// Health-aware balancing and graceful drain: the fleet watches each replica's health; a
/// replica set NOT_SERVING gets no new call 100 ms later, and back SERVING gets calls again; a
/// rolling restart (each replica drained — NOT_SERVING, 300 ms, then stopped — and started
/// again) fails no call, calls with side effects included.
async fn health_and_drain(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    const DRAIN: Duration = Duration::from_millis(300);
    let mut replicas: Vec<Replica> = (0..3).map(|i| serve(i, 0, DRAIN)).collect();
    let mut builder = Fleet::builder(&static_target(&replicas));
    builder.balancing(Balancing::RoundRobin).health_check(Some("")).refresh(Duration::from_secs(30), Duration::from_millis(200));
    let fleet = builder.build().expect("a fleet");
    let client = Client::new(kind, &fleet, None);
    let prefix = switchboard_test_support::server::unique_id("drain");
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (client, stop, prefix) = (client.clone(), stop.clone(), prefix.clone());
            tokio::spawn(async move {
                let (mut calls, mut failed) = (0usize, Vec::new());
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let outcome = match calls % 2 {
                        0 => client.hit().await,
                        _ => client.write(format!("{prefix}-{w}-{calls}")).await,
                    };
                    if let Err(e) = outcome {
                        failed.push(e);
                    }
                    calls += 1;
                }
                (calls, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hits().iter().all(|&n| n > 0), "{kind:?}: every replica serves: {:?}", hits());

    // NOT_SERVING: no new call after 100 ms.
    replicas[0].health.as_ref().unwrap().set_not_serving("");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let at = hits()[0];
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hits()[0], at, "{kind:?}: a NOT_SERVING replica still gets calls 100 ms on");
    replicas[0].health.as_ref().unwrap().set_serving("");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hits()[0] > at, "{kind:?}: back SERVING, the replica gets no calls");

    // A rolling restart, one replica after the other.
    for i in 0..3 {
        let port = replicas[i].address.rsplit_once(':').unwrap().1.parse().unwrap();
        replicas[i].stop();
        replicas[i] = serve(i, port, DRAIN);
        let before = hits()[i];
        switchboard_test_support::ready::eventually("the restarted replica gets calls", Duration::from_secs(5), || hits()[i] > before).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut calls, mut failed) = (0, Vec::new());
    for w in workers {
        let (c, f) = w.await.unwrap();
        calls += c;
        failed.extend(f);
    }
    let writes = WRITES.lock().unwrap();
    let twice: Vec<_> = writes.iter().filter(|(k, n)| k.starts_with(&prefix) && **n > 1).collect();
    eprintln!("{kind:?}: {calls} calls (half with side effects) through a NOT_SERVING flip and a rolling restart: {} failed", failed.len());
    assert!(failed.is_empty(), "{kind:?}: {} calls failed, e.g. {:?}", failed.len(), failed.first());
    assert!(twice.is_empty(), "{kind:?}: request ids ran twice: {twice:?}");
}

/// A frozen replica (its process stopped, its sockets open): with keepalive pings every 500 ms
/// and a 500 ms timeout, no call made from 1.5 s after the freeze (keepalive timeout + 1 s)
/// reaches it, no call fails (those in flight on it are retried when keepalive closes their
/// connection), and once thawed it gets calls again.
async fn frozen_replica(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    let replicas: Vec<Replica> = (0..3).map(|i| serve(i, 0, Duration::ZERO)).collect();
    let mut builder = Fleet::builder(&static_target(&replicas));
    builder
        .balancing(Balancing::RoundRobin)
        .health_check(Some(""))
        .keepalive(Duration::from_millis(500), Duration::from_millis(500))
        .refresh(Duration::from_secs(30), Duration::from_millis(200));
    let policy = r#"{"methodConfig": [{"name": [{"service": "test.fleet.v1.Replicated"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let client = Client::new(kind, &builder.build().expect("a fleet"), Some(policy));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut calls, mut failed) = (0usize, Vec::new());
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Err(e) = client.hit().await {
                        failed.push(e);
                    }
                    calls += 1;
                }
                (calls, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen_at = REPLICAS.epoch.elapsed().as_millis() as u64;
    let thaw = replicas[1].freeze();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let thawed_at = REPLICAS.epoch.elapsed().as_millis() as u64;
    drop(thaw);
    // What it ran once thawed: calls that reached it while it was frozen (their connection closed
    // by keepalive since), and new ones.
    let before = hits()[1];
    switchboard_test_support::ready::eventually("the thawed replica gets calls again", Duration::from_secs(5), || {
        REPLICAS.latest_sent[1].load(Ordering::SeqCst) > thawed_at
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (mut calls, mut failed) = (0, Vec::new());
    for w in workers {
        let (c, f) = w.await.unwrap();
        calls += c;
        failed.extend(f);
    }
    // The calls made while it was frozen that it ran (once thawed): all made before the
    // keepalive found it out.
    let made: Vec<u64> =
        REPLICAS.sent_log.lock().unwrap().iter().filter(|(r, sent)| *r == 1 && (frozen_at..thawed_at).contains(sent)).map(|p| p.1).collect();
    let last = made.iter().max().map(|m| m - frozen_at);
    eprintln!(
        "{kind:?}: {calls} calls, {} failed; frozen from {frozen_at} to {thawed_at} ms: it got {} calls made meanwhile, the last {last:?} ms after the freeze; {} calls after the thaw",
        failed.len(),
        made.len(),
        hits()[1] - before
    );
    assert!(failed.is_empty(), "{kind:?}: {} calls failed, e.g. {:?}", failed.len(), failed.first());
    assert!(last.is_none_or(|ms| ms < 1_500), "{kind:?}: a call made {last:?} ms after the freeze went to the frozen replica");
}

/// One replica of three always fails: ejected after at most 5 + concurrency failures, not
/// called for the ejection time (1 s here), then for twice as long after failing again; callers
/// (retrying on UNAVAILABLE) see ≥ 99.9 % success.
async fn ejection(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    let replicas = three(kind);
    REPLICAS.failing[0].store(true, Ordering::SeqCst);
    let mut ejection = Ejection::default();
    ejection.base_ejection_time = Duration::from_secs(1);
    ejection.max_ejection_percent = 34;
    let policy = r#"{"methodConfig": [{"name": [{"service": "test.fleet.v1.Replicated"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.001s", "maxBackoff": "0.01s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let client = Client::new(kind, &fleet(&static_target(&replicas), Balancing::PeakEwma, Some(ejection)), Some(policy));
    const CONCURRENCY: usize = 8;
    let started = Instant::now();
    let (mut ok, mut failed) = (0usize, 0usize);
    // ~4 s of calls: the first ejection (1 s), its end, the second (2 s).
    while started.elapsed() < Duration::from_millis(4_200) {
        let (answered, f) = load(&client, 400, CONCURRENCY).await;
        ok += answered.iter().sum::<usize>();
        failed += f.len();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gaps: Vec<_> = REPLICAS.gaps.lock().unwrap().iter().filter(|g| g.0 == 0).map(|g| g.2).collect();
    let failing_hits = hits()[0];
    eprintln!("{kind:?}: {ok} calls answered, {failed} failed; the failing replica was called {failing_hits} times, with gaps {gaps:?} ms");
    assert!(ok as f64 / (ok + failed) as f64 >= 0.999, "{kind:?}: {failed} of {} calls failed", ok + failed);
    assert!(gaps.len() >= 2, "{kind:?}: the failing replica was not ejected twice (gaps {gaps:?} ms)");
    // Gaps are between calls' arrivals at the replica: a call the client sent just before it
    // ejected the replica arrives a few milliseconds after, so the gap may fall that much short
    // of the ejection time (seen: 999 ms, 1,999 ms); nothing is sent during it.
    assert!((980..1_500).contains(&gaps[0]), "{kind:?}: the first ejection lasted {} ms", gaps[0]);
    assert!((1_980..2_500).contains(&gaps[1]), "{kind:?}: the second ejection lasted {} ms", gaps[1]);
    // Before each ejection: the 5 failures in a row, and the calls already in flight.
    assert!(failing_hits <= 3 * (5 + CONCURRENCY), "{kind:?}: {failing_hits} calls reached the failing replica");
}

/// dnsmasq serving `echo.fleet.test` from a hosts file (TTL 1 s), reloaded on SIGHUP.
struct Dnsmasq {
    child: std::process::Child,
    port: u16,
    hosts: std::path::PathBuf,
}

impl Dnsmasq {
    /// Starts it with `ips` for the name; `None` (after printing why, or failing under CI=true)
    /// when dnsmasq is not installed.
    async fn start(ips: &[&str], extra: &[String]) -> Option<Dnsmasq> {
        let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].into_iter().find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            switchboard_test_support::ci::skip_or_fail("dnsmasq not found (Debian: apt-get install dnsmasq-base)");
            return None;
        };
        let dir = std::env::temp_dir().join(switchboard_test_support::server::unique_id("fleet-dns"));
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = dir.join("hosts");
        // A free UDP port for it (and TCP: dnsmasq listens on both).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut dns = Dnsmasq { child: std::process::Command::new("true").spawn().unwrap(), port, hosts };
        dns.set(ips);
        dns.child = std::process::Command::new(binary)
            .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1"])
            .args(["--conf-file=/dev/null", "--local-ttl=1", "--user=root", "--log-facility=-"])
            .arg(format!("--port={port}"))
            .args(extra)
            .arg(format!("--addn-hosts={}", dns.hosts.display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        // Ready once it answers the name.
        let resolver = switchboard::fleet::DnsResolver::new(Some(format!("127.0.0.1:{port}").parse().unwrap()), "echo.fleet.test".into(), 1);
        switchboard_test_support::ready::retry_until("dnsmasq answers", Duration::from_secs(10), || {
            switchboard::fleet::Resolver::resolve(&resolver)
        })
        .await;
        Some(dns)
    }

    /// `echo.fleet.test` has these addresses from now on (dnsmasq rereads its hosts on SIGHUP).
    fn set(&mut self, ips: &[&str]) {
        let text: String = ips.iter().map(|ip| format!("{ip} echo.fleet.test\n")).collect();
        std::fs::write(&self.hosts, text).unwrap();
        let _ = std::process::Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// DNS discovery (TTL 1 s): a record added gets traffic within 2 s, a record removed gets none
/// after 2 s, and no call fails meanwhile.
async fn dns_discovery(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    // Three replicas on one port, on 127.0.0.1, .2 and .3.
    let first = start(kind, 0, 0);
    let port = first.port();
    let _replicas = [first, start(kind, 1, port), start(kind, 2, port)];
    // And an SRV record naming the same host and the replicas' port.
    let srv = format!("--srv-host=_echo._tcp.fleet.test,echo.fleet.test,{port}");
    let Some(mut dns) = Dnsmasq::start(&["127.0.0.1", "127.0.0.2"], &[srv]).await else { return };
    let target = format!("dns://127.0.0.1:{}/echo.fleet.test:{port}", dns.port);
    let fleet = fleet(&target, Balancing::RoundRobin, None);
    fleet.ready().await.expect("the name resolves");
    let policy = r#"{"methodConfig": [{"name": [{"service": "test.fleet.v1.Replicated"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let client = Client::new(kind, &fleet, Some(policy));
    let (answered, failed) = load(&client, 300, 4).await;
    assert!(failed.is_empty() && answered[2] == 0 && answered[0] > 0 && answered[1] > 0, "{kind:?}: before: {answered:?} {failed:?}");

    dns.set(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    let added = Instant::now();
    let mut seen = None;
    while added.elapsed() < Duration::from_secs(3) {
        let (answered, failed) = load(&client, 30, 4).await;
        assert!(failed.is_empty(), "{kind:?}: {failed:?}");
        if answered[2] > 0 {
            seen = Some(added.elapsed());
            break;
        }
    }
    let seen = seen.unwrap_or_else(|| panic!("{kind:?}: the added record got no traffic in 3 s"));
    eprintln!("{kind:?}: the added record got traffic after {seen:?}");
    assert!(seen <= Duration::from_secs(2), "{kind:?}: the added record got traffic after {seen:?}");

    dns.set(&["127.0.0.2", "127.0.0.3"]);
    let removed = Instant::now();
    let mut calls = 0;
    while removed.elapsed() < Duration::from_secs(2) {
        let (_, failed) = load(&client, 30, 4).await;
        calls += 30;
        assert!(failed.is_empty(), "{kind:?}: {failed:?}");
    }
    let before = hits();
    let (answered, failed) = load(&client, 300, 4).await;
    let after = hits();
    assert!(failed.is_empty(), "{kind:?}: {failed:?}");
    eprintln!("{kind:?}: {calls} calls in the 2 s after the removal; then {answered:?}");
    assert_eq!(after[0], before[0], "{kind:?}: the removed record still gets traffic 2 s on");
    assert_eq!(fleet.addresses().len(), 2, "{kind:?}: {:?}", fleet.addresses());

    // SRV: the target's port comes from the record (the target URI's is only a default).
    let srv = fleet_of(&format!("dns://127.0.0.1:{}/_echo._tcp.fleet.test", dns.port), Balancing::RoundRobin, None);
    srv.ready().await.expect("the SRV name resolves");
    let mut found = srv.addresses();
    found.sort();
    assert_eq!(found.iter().map(ToString::to_string).collect::<Vec<_>>(), [format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}")]);
    let (answered, failed) = load(&Client::new(kind, &srv, None), 40, 4).await;
    assert!(failed.is_empty() && answered[0] == 0 && answered[1] > 0 && answered[2] > 0, "{kind:?} over SRV: {answered:?} {failed:?}");
}

/// The sweeps of outlier detection (every 500 ms here), each rule on its own: one replica of
/// three always fails; failure-percentage ejection (over 85 % failed) and success-rate ejection
/// (below the mean by more than 1 standard deviation) each eject it for the ejection time (1 s).
async fn ejection_sweeps(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    for rule in ["failure percentage", "success rate"] {
        reset();
        let replicas = three(kind);
        REPLICAS.failing[0].store(true, Ordering::SeqCst);
        let mut ejection = Ejection::default();
        ejection.consecutive_failures = 0;
        ejection.interval = Duration::from_millis(500);
        ejection.base_ejection_time = Duration::from_secs(1);
        ejection.max_ejection_percent = 34;
        if rule == "failure percentage" {
            let mut r = FailurePercentageEjection::default();
            (r.minimum_hosts, r.request_volume) = (3, 20);
            ejection.failure_percentage = Some(r);
        } else {
            let mut r = SuccessRateEjection::default();
            (r.minimum_hosts, r.request_volume, r.stdev_factor) = (3, 20, 1.0);
            ejection.success_rate = Some(r);
        }
        let policy = r#"{"methodConfig": [{"name": [{"service": "test.fleet.v1.Replicated"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.001s", "maxBackoff": "0.01s", "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
        let client = Client::new(kind, &fleet(&static_target(&replicas), Balancing::RoundRobin, Some(ejection)), Some(policy));
        let started = Instant::now();
        let (mut calls, mut failed) = (0, 0);
        while started.elapsed() < Duration::from_millis(2_500) {
            let (_, f) = load(&client, 100, 4).await;
            (calls, failed) = (calls + 100, failed + f.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let gaps: Vec<_> = REPLICAS.gaps.lock().unwrap().iter().filter(|g| g.0 == 0).map(|g| g.2).collect();
        eprintln!("{kind:?} {rule}: the failing replica's gaps {gaps:?} ms; {failed} of {calls} calls failed (all 3 attempts on it before the sweep)");
        // Until the first sweep, round robin sends some calls' three attempts all to it.
        assert!(failed * 100 <= calls * 2, "{kind:?} {rule}: {failed} of {calls} calls failed");
        assert!(gaps.iter().any(|g| (980..1_700).contains(g)), "{kind:?} {rule}: not ejected for 1 s: gaps {gaps:?} ms");
    }
}

/// A fleet over TLS: two replicas on 127.0.0.1 and .2 serving gRPC and REST on one TLS port
/// (a certificate for both addresses, from a CA the test makes), health-checked over TLS too;
/// gRPC and REST clients over the fleet reach both, and a client that does not trust the CA
/// reaches neither.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_fleet() {
    use switchboard::tls::{ClientTls, ServerTls};
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    let ca = certs::Ca::new("test CA");
    let leaf = ca.server(&["127.0.0.1", "127.0.0.2"]);
    let server_tls = ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).expect("a server certificate");
    let mut addresses = Vec::new();
    for replica in 0..2 {
        let tls = server_tls.clone();
        let address = switchboard_test_support::server::in_background(&format!("tls-replica-{replica}"), move |ready| async move {
            let listener = TcpListener::bind(format!("127.0.0.{}:0", replica + 1)).await.unwrap();
            let _ = ready.send(Ok(listener.local_addr().unwrap().to_string()));
            let _ = switchboard::Server::builder().add_service(ReplicatedServer::new(Impl { replica })).serve_tls(listener, tls).await;
        })
        .unwrap();
        addresses.push(address);
    }
    let target = format!("static:///{}", addresses.join(","));
    let mut builder = Fleet::builder(&target);
    builder.balancing(Balancing::RoundRobin).health_check(Some("")).tls(ClientTls::new(ca.pem().as_bytes()).unwrap());
    let fleet = builder.build().unwrap();
    for kind in [Kind::Grpc, Kind::Rest] {
        // Both replicas answer (each once its health watch over TLS said SERVING), no call fails.
        let (mut total, started) = ([0; 3], Instant::now());
        while (total[0] == 0 || total[1] == 0) && started.elapsed() < Duration::from_secs(5) {
            let (answered, failed) = load(&Client::new(kind, &fleet, None), 20, 4).await;
            assert!(failed.is_empty(), "{kind:?} over TLS: {failed:?}");
            (0..3).for_each(|i| total[i] += answered[i]);
        }
        assert!(total[0] > 0 && total[1] > 0 && total[2] == 0, "{kind:?} over TLS: answers per replica {total:?}");
    }
    // Trusting another CA: the health watches fail, no endpoint serves, calls fail fast.
    let other = certs::Ca::new("other CA");
    let mut builder = Fleet::builder(&target);
    builder.tls(ClientTls::new(other.pem().as_bytes()).unwrap());
    let err = Client::new(Kind::Grpc, &builder.build().unwrap(), None).hit().await.expect_err("an untrusted certificate");
    assert!(err.message().contains("UnknownIssuer") || err.message().contains("certificate"), "{err:?}");
}

/// `Server::drain_timeout`: a call that outlives the shutdown does not hold `serve_with_shutdown`
/// longer than the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_the_shutdown() {
    let _turn = ONE_AT_A_TIME.lock().await;
    reset();
    REPLICAS.delay_ms[0].store(10_000, Ordering::SeqCst);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = switchboard::Server::builder()
        .add_service(ReplicatedServer::new(Impl { replica: 0 }))
        .drain_timeout(Duration::from_millis(300));
    let serving = tokio::spawn(server.serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));
    let mut client = ReplicatedClient::new(Channel::from_shared(format!("http://{address}")).unwrap().connect_lazy());
    let call = tokio::spawn(async move { client.hit(Request::new(Ping::default())).await });
    switchboard_test_support::ready::eventually("the slow call runs", Duration::from_secs(5), || hits()[0] == 1).await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), serving).await.expect("serve_with_shutdown returned within 5 s");
    let took = asked.elapsed();
    assert!(served.unwrap().is_ok());
    assert!((Duration::from_millis(300)..Duration::from_millis(1_500)).contains(&took), "serve_with_shutdown returned after {took:?}");
    call.abort();
}

/// etcd discovery has its own test (`tests/etcd.rs`), built only with the `etcd` feature (its
/// client's build needs `protoc`); `.ci/run` runs it. Without the feature, say so.
#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_discovery_runs_with_the_etcd_feature() {
    if !switchboard_test_support::ci::is_ci() {
        switchboard_test_support::ci::print_skip("etcd discovery: `cargo test -p switchboard --features etcd --test etcd` (needs protoc and etcd)");
    }
}

macro_rules! cases {
    ($kind:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn load_aware_balancing() {
            crate::load_aware_balancing($kind).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn failover() {
            crate::failover($kind).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn failover_with_side_effects() {
            crate::failover_with_side_effects($kind).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn health_and_drain() {
            crate::health_and_drain($kind).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn frozen_replica() {
            crate::frozen_replica($kind).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn ejection() {
            crate::ejection($kind).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dns_discovery() {
            crate::dns_discovery($kind).await
        }
    };
}

mod grpc {
    cases!(crate::Kind::Grpc);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ejection_sweeps() {
        crate::ejection_sweeps(crate::Kind::Grpc).await
    }
}

mod rest {
    cases!(crate::Kind::Rest);
}
