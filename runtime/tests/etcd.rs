//! etcd discovery and registration against a real etcd (Debian's `etcd-server`: /usr/bin/etcd)
//! on 127.0.0.1 with free ports and a data directory of its own; skipped with a reason when etcd
//! is not installed, failed under `CI=true`.
//!
//! Cases: three replicas register (`EtcdRegistration`, lease TTL 2 s) under a prefix of their
//! own, and a client over `etcd://127.0.0.1:PORT/<prefix>` spreads calls over all three; a
//! replica killed (server gone, keep-alives stopped without revoking) leaves the fleet within
//! TTL + 1 s, a drained one (deregistered) within 200 ms, a new one joins within 200 ms, and no
//! call fails meanwhile (retried on UNAVAILABLE). Then etcd itself killed and restarted: the
//! fleet keeps its last snapshot and its calls succeed while etcd is gone, the registrations
//! keep their keys, and a replica registered after the restart joins.
//!
//! Replicas are servers on threads and runtimes of their own (killed by dropping the runtime:
//! listener and connections close, as when a process dies; tests/common/replica.rs, shared with
//! tests/fleet.rs). Cases run one at a time (one lock): they measure time on a 2-core box.
#![cfg(all(feature = "grpc", feature = "rest", feature = "etcd"))]

#[path = "common/replica.rs"]
mod replica;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use replica::{Kind, Replica};
use switchboard::fleet::{Address, Balancing, EtcdRegistration, EtcdResolver, Fleet, Resolver};
use switchboard::grpc::transport::Server;
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::rest::RestClient;
use switchboard::{Request, Response, Status};
use switchboard_test_support::ready::{eventually, retry_until};

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Ping {
    /// The replica that answered.
    #[prost(uint32, tag = "1")]
    pub replica: u32,
}

#[switchboard::service(package = "test.etcd.v1")]
pub trait Registered {
    /// Answers with the replica's number. Free of side effects: retried by policy.
    #[rpc(no_side_effects)]
    async fn hit(&self, req: Request<Ping>) -> Result<Response<Ping>, Status>;
}

struct Impl {
    replica: u32,
}

impl Registered for Impl {
    async fn hit(&self, _: Request<Ping>) -> Result<Response<Ping>, Status> {
        Ok(Response::new(Ping { replica: self.replica }))
    }
}

/// Starts replica `replica` on `127.0.0.1:<free port>`.
fn start(kind: Kind, replica: u32) -> Replica {
    Replica::start_kind(
        kind,
        format!("replica-{replica}"),
        "127.0.0.1:0".to_owned(),
        move || Server::builder().add_service(RegisteredServer::new(Impl { replica })),
        move || RegisteredRestServer::new(Impl { replica }).into_rest_router(),
    )
}

/// etcd on 127.0.0.1 (free client and peer ports, a fresh data directory), killed on drop.
struct Etcd {
    binary: PathBuf,
    child: std::process::Child,
    client_port: u16,
    peer_port: u16,
    dir: PathBuf,
}

impl Etcd {
    /// Starts it and waits until it answers a read; `None` (after printing why, or failing under
    /// CI=true) when etcd is not installed.
    async fn start() -> Option<Etcd> {
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].into_iter().map(PathBuf::from).find(|p| p.exists());
        let Some(binary) = binary else {
            switchboard_test_support::ci::skip_or_fail("etcd not found (Debian: apt-get install etcd-server)");
            return None;
        };
        let dir = std::env::temp_dir().join(switchboard_test_support::server::unique_id("etcd"));
        std::fs::create_dir_all(&dir).unwrap();
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (client_port, peer_port) = (free(), free());
        let child = Etcd::spawn(&binary, &dir, client_port, peer_port);
        let etcd = Etcd { binary, child, client_port, peer_port, dir };
        etcd.ready().await;
        Some(etcd)
    }

    fn spawn(binary: &PathBuf, dir: &std::path::Path, client_port: u16, peer_port: u16) -> std::process::Child {
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("etcd.log")).unwrap();
        std::process::Command::new(binary)
            .args(["--name", "test", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}"), "--log-level", "warn"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd")
    }

    /// Waits until it answers a read (a real call: no sleep stands for readiness).
    async fn ready(&self) {
        let resolver = EtcdResolver::new(vec![self.endpoint()], "/ready");
        retry_until("etcd answers", Duration::from_secs(20), || resolver.resolve()).await;
    }

    fn endpoint(&self) -> Address {
        Address { host: "127.0.0.1".into(), port: self.client_port }
    }

    fn endpoints(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Kills it (SIGKILL), keeping its data.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same ports and data, and waits until it answers.
    async fn restart(&mut self) {
        self.child = Etcd::spawn(&self.binary, &self.dir, self.client_port, self.peer_port);
        self.ready().await;
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("etcd's log and data kept in {}", self.dir.display());
        }
    }
}

/// A generated client of `kind` over `fleet`, retrying UNAVAILABLE (a killed replica's calls).
#[derive(Clone)]
enum Client {
    Grpc(RegisteredClient<switchboard::fleet::FleetChannel>),
    Rest(RegisteredRestClient),
}

impl Client {
    fn new(kind: Kind, fleet: &Fleet) -> Client {
        let policy = r#"{"methodConfig": [{"name": [{"service": "test.etcd.v1.Registered"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
        let layer = PolicyLayer::new(Policies::new().runtime(ServiceConfig::from_json(policy).expect("a valid policy")));
        match kind {
            Kind::Grpc => Client::Grpc(RegisteredClient::new(fleet.grpc()).layer(layer)),
            Kind::Rest => Client::Rest(RegisteredRestClient::with_client(RestClient::fleet(fleet.clone())).layer(layer)),
        }
    }

    async fn hit(&self) -> Result<u32, Status> {
        let answer = match self {
            Client::Grpc(c) => c.clone().hit(Request::new(Ping::default())).await,
            Client::Rest(c) => c.clone().hit(Request::new(Ping::default())).await,
        };
        answer.map(|r| r.into_inner().replica)
    }
}

/// Callers making calls until stopped: answers per replica, and the failures.
struct Load {
    answered: Arc<[AtomicUsize; 4]>,
    failed: Arc<Mutex<Vec<Status>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// 8 callers, each at most one call per 5 ms.
    fn start(client: &Client) -> Load {
        let answered: Arc<[AtomicUsize; 4]> = Arc::default();
        let failed = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..8)
            .map(|_| {
                let (client, answered, failed, stop) = (client.clone(), answered.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(5));
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        match client.hit().await {
                            Ok(r) => _ = answered[r as usize].fetch_add(1, Ordering::Relaxed),
                            Err(e) => failed.lock().unwrap().push(e),
                        }
                    }
                })
            })
            .collect();
        Load { answered, failed, stop, workers }
    }

    fn answered(&self) -> [usize; 4] {
        std::array::from_fn(|i| self.answered[i].load(Ordering::Relaxed))
    }

    /// Stops the callers: every failure.
    async fn stop(self) -> Vec<Status> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        let failed = std::mem::take(&mut *self.failed.lock().unwrap());
        failed
    }
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TTL: Duration = Duration::from_secs(2);

fn has(fleet: &Fleet, replica: &Replica) -> bool {
    fleet.addresses().iter().any(|a| a.authority() == replica.address)
}

/// How long until `check` holds (polled every 2 ms), at most `limit`.
async fn time_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

async fn register(etcd: &Etcd, prefix: &str, replica: u32, address: &str, ttl: Duration) -> EtcdRegistration {
    EtcdRegistration::register(&[&etcd.endpoints()], prefix, &format!("replica-{replica}"), address, ttl).await.expect("registered")
}

/// Three replicas registered, calls spread over all three; one killed (its keep-alives stop,
/// its lease is not revoked) leaves the fleet within TTL + 1 s, one drained within 200 ms, a new
/// one joins within 200 ms; no call fails.
async fn discovery(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(etcd) = Etcd::start().await else { return };
    let prefix = format!("/services/{}", switchboard_test_support::server::unique_id("echo"));
    let mut replicas: Vec<Replica> = (0..3).map(|i| start(kind, i)).collect();
    let mut registrations = Vec::new();
    for (i, r) in replicas.iter().enumerate() {
        registrations.push(Some(register(&etcd, &prefix, i as u32, &r.address, TTL).await));
    }
    let ttl = registrations[0].as_ref().unwrap().ttl();
    assert_eq!(ttl, TTL, "etcd granted another TTL");
    assert_eq!(registrations[1].as_ref().unwrap().key(), format!("{prefix}/replica-1"));

    let target = format!("etcd://127.0.0.1:{}{prefix}", etcd.client_port);
    let mut builder = Fleet::builder(&target);
    builder.balancing(Balancing::RoundRobin).ejection(None).refresh(Duration::from_secs(30), Duration::from_millis(200));
    let fleet = builder.build().expect("an etcd target");
    fleet.ready().await.expect("the prefix lists");
    let mut listed: Vec<String> = fleet.addresses().iter().map(Address::authority).collect();
    listed.sort();
    let mut expected: Vec<String> = replicas.iter().map(|r| r.address.clone()).collect();
    expected.sort();
    assert_eq!(listed, expected, "{kind:?}: the fleet lists the three registered replicas");

    let client = Client::new(kind, &fleet);
    let load = Load::start(&client);
    eventually("calls reach all three replicas", Duration::from_secs(5), || load.answered()[..3].iter().all(|&n| n >= 20)).await;

    // Killed: the server goes and the keep-alives stop (the registration dropped, not revoked).
    let killed_at = Instant::now();
    replicas[2].kill();
    drop(registrations[2].take());
    let gone = time_until(ttl + Duration::from_secs(3), || !has(&fleet, &replicas[2])).await;
    let gone = gone.unwrap_or_else(|| panic!("{kind:?}: the killed replica is still listed {:?} after", killed_at.elapsed()));
    eprintln!("{kind:?}: killed replica left the fleet {gone:?} after the kill (lease TTL {ttl:?})");
    assert!(gone <= ttl + Duration::from_secs(1), "{kind:?}: the killed replica left the fleet after {gone:?} (TTL {ttl:?})");
    // Its key went with the lease: the last keep-alive was at most a third of the TTL earlier.
    assert!(gone >= ttl / 2, "{kind:?}: the killed replica left after {gone:?}, before its lease could expire");

    // Drained: deregistered (lease revoked), then stopped.
    let drained_at = Instant::now();
    registrations[1].take().unwrap().deregister().await.expect("deregistered");
    let drained = time_until(Duration::from_secs(2), || !has(&fleet, &replicas[1])).await;
    let drained = drained.map(|_| drained_at.elapsed());
    eprintln!("{kind:?}: drained replica left the fleet {drained:?} after deregister() was called");
    let drained = drained.unwrap_or_else(|| panic!("{kind:?}: the drained replica is still listed 2 s on"));
    assert!(drained <= Duration::from_millis(200), "{kind:?}: the drained replica left after {drained:?}");
    // Still running, it gets no new calls: once the calls sent before it left are answered
    // (8 callers; 20 answers from replica 0 come well after), its count stays put.
    let left = load.answered();
    eventually("calls after the drain", Duration::from_secs(5), || load.answered()[0] >= left[0] + 20).await;
    let before = load.answered();
    eventually("more calls after the drain", Duration::from_secs(5), || load.answered()[0] >= before[0] + 50).await;
    let after = load.answered();
    assert_eq!((after[1], after[2]), (before[1], before[2]), "{kind:?}: a replica that left still answered");
    replicas[1].kill();

    // Joined: a new replica registers and gets traffic.
    let joined = start(kind, 3);
    let joined_at = Instant::now();
    let _registration = register(&etcd, &prefix, 3, &joined.address, TTL).await;
    let seen = time_until(Duration::from_secs(2), || has(&fleet, &joined)).await.map(|_| joined_at.elapsed());
    eprintln!("{kind:?}: new replica joined the fleet {seen:?} after register() was called");
    assert!(seen.is_some_and(|t| t <= Duration::from_millis(200)), "{kind:?}: the new replica joined after {seen:?}");
    eventually("calls reach the new replica", Duration::from_secs(5), || load.answered()[3] >= 20).await;

    let answered = load.answered();
    let failed = load.stop().await;
    eprintln!("{kind:?}: answers per replica {answered:?}, {} failed", failed.len());
    assert!(failed.is_empty(), "{kind:?}: {} calls failed, e.g. {:?}", failed.len(), failed.first());
    assert_eq!(fleet.addresses().len(), 2, "{kind:?}: {:?}", fleet.addresses());
}

/// etcd killed and restarted: the fleet keeps its snapshot (calls go on), the registrations'
/// keys are there again after more than a TTL, and a replica registered after the restart joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(mut etcd) = Etcd::start().await else { return };
    let prefix = format!("/services/{}", switchboard_test_support::server::unique_id("echo"));
    let replicas: Vec<Replica> = (0..3).map(|i| start(Kind::Grpc, i)).collect();
    let _kept = [register(&etcd, &prefix, 0, &replicas[0].address, TTL).await, register(&etcd, &prefix, 1, &replicas[1].address, TTL).await];
    let fleet = Fleet::builder(&format!("etcd://127.0.0.1:{}{prefix}", etcd.client_port)).build().expect("an etcd target");
    fleet.ready().await.expect("the prefix lists");
    assert_eq!(fleet.addresses().len(), 2);
    let load = Load::start(&Client::new(Kind::Grpc, &fleet));

    etcd.kill();
    let down = Instant::now();
    let before = load.answered();
    eventually("calls while etcd is down", Duration::from_secs(5), || load.answered()[..2].iter().sum::<usize>() >= before[..2].iter().sum::<usize>() + 100).await;
    assert_eq!(fleet.addresses().len(), 2, "the fleet kept its last snapshot");
    etcd.restart().await;
    eprintln!("etcd was down {:?}", down.elapsed());

    let late = Instant::now();
    let _late = register(&etcd, &prefix, 2, &replicas[2].address, TTL).await;
    // The watch connects again after its backoff (at most 5 s between tries).
    let seen = time_until(Duration::from_secs(15), || fleet.addresses().len() == 3).await.map(|_| late.elapsed());
    eprintln!("a replica registered after etcd's restart joined the fleet {seen:?} after register() was called");
    assert!(seen.is_some(), "the watch did not come back: {:?}", fleet.addresses());
    eventually("calls reach the late replica", Duration::from_secs(5), || load.answered()[2] >= 20).await;
    // The first two kept their keys (the keep-alives came back) past a TTL after the restart.
    tokio::time::sleep_until((late + TTL + Duration::from_secs(1)).into()).await;
    let resolver = EtcdResolver::new(vec![etcd.endpoint()], &prefix);
    let listed = resolver.resolve().await.expect("etcd answers").addresses;
    assert_eq!(listed.len(), 3, "keys after the restart: {listed:?}");
    assert_eq!(fleet.addresses().len(), 3);

    let failed = load.stop().await;
    assert!(failed.is_empty(), "{} calls failed, e.g. {:?}", failed.len(), failed.first());
}

mod grpc {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn discovery() {
        crate::discovery(crate::Kind::Grpc).await
    }
}

mod rest {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn discovery() {
        crate::discovery(crate::Kind::Rest).await
    }
}
