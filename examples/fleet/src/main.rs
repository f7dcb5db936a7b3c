//! Run: cargo run -p fleet
//!
//! Three replica processes of this program on 127.0.0.1, .2 and .3 (one port), registered in
//! DNS: the supervisor (this process) serves the zone `fleet.test.` itself, on UDP 127.0.0.1 at
//! a free port (hickory-server, `fleet::DnsRegistry`), with one A record of `echo.fleet.test`
//! (TTL 1 s) per replica that serves, like a Kubernetes headless service. A client finds them
//! through that name server, `dns://127.0.0.1:<dns port>/echo.fleet.test:<port>` (switchboard's
//! DNS resolver, looking the name up again as the TTL runs out, at most every 500 ms), and
//! balances across them: round robin over the replicas whose health says SERVING, retries on
//! UNAVAILABLE (the policy in `fleet::SERVICE_CONFIG`), 16 callers over gRPC and REST. Then a
//! rolling restart: each replica in turn leaves DNS, gets SIGTERM a deregistration delay later
//! (the TTL and the client's re-resolution), drains (NOT_SERVING, 300 ms, stop), starts again
//! and is registered again once it listens. It prints the registry's changes, the endpoints the
//! client resolves, the calls each replica answered and the failed calls: 0 (it exits non-zero
//! otherwise).
//!
//! `fleet replica <name> <address>` runs one replica.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet::{DnsRegistry, EchoClient, EchoRestClient, Ping, ReplicaProcess, SERVICE_CONFIG};
use switchboard::fleet::Fleet;
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::rest::RestClient;
use switchboard::Request;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("replica") {
        let (Some(name), Some(address)) = (args.get(1), args.get(2)) else {
            return Err("usage: fleet replica <name> <address>".into());
        };
        return fleet::serve_replica(name, address, Duration::from_millis(300)).await;
    }
    let failed = demo().await?;
    if failed > 0 {
        return Err(format!("{failed} calls failed").into());
    }
    Ok(())
}

/// The demo; the number of failed calls.
async fn demo() -> Result<usize, Box<dyn std::error::Error>> {
    let program = std::env::current_exe()?;
    let registry = DnsRegistry::start("echo.fleet.test").await?;
    println!("dns: zone fleet.test. served on udp {} (in this process), A records of {} with TTL {} s", registry.address(), registry.name(), fleet::dns::TTL);
    // One free port, used on the three loopback addresses.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut replicas = Vec::new();
    for i in 1..=3 {
        let replica = ReplicaProcess::start(&program, &format!("replica-{i}"), &format!("127.0.0.{i}:{port}")).await?;
        registered(&registry, &replica).await?;
        replicas.push(replica);
    }
    let target = registry.target(port);
    let config = ServiceConfig::from_json(SERVICE_CONFIG)?;
    let fleet = Fleet::builder(&target)
        .service_config(&config)
        .keepalive(Duration::from_secs(1), Duration::from_secs(1))
        // Looked up again when the TTL (1 s) runs out, or when an endpoint cannot be reached,
        // but at most every 500 ms.
        .refresh(Duration::from_secs(30), Duration::from_millis(500))
        .build()?;
    fleet.ready().await?;
    let policy = || PolicyLayer::new(Policies::new().runtime(config.clone()));
    let grpc = EchoClient::new(fleet.grpc()).layer(policy());
    let rest = EchoRestClient::with_client(RestClient::fleet(fleet.clone())).layer(policy());
    println!("client: {target}, round robin over the replicas that say SERVING");
    // What the client resolved, printed whenever it changes.
    let watching = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let now: Vec<String> = fleet.addresses().iter().map(|a| a.authority()).collect();
                if now != seen {
                    println!("client: endpoints from DNS: {}", now.join(", "));
                    seen = now;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let answered: Arc<Mutex<std::collections::BTreeMap<String, usize>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let (grpc, rest, stop, calls, answered, failures) =
                (grpc.clone(), rest.clone(), stop.clone(), calls.clone(), answered.clone(), failures.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    let ping = Request::new(Ping { text: "hi".into() });
                    let answer = match i % 2 {
                        0 => grpc.clone().echo(ping).await,
                        _ => rest.clone().echo(ping).await,
                    };
                    match answer {
                        Ok(pong) => *answered.lock().unwrap().entry(pong.into_inner().replica).or_default() += 1,
                        Err(e) => failures.lock().unwrap().push(format!("{}: {}", e.code(), e.message())),
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    for replica in replicas.iter_mut() {
        let ip = ip(replica)?;
        let left = registry.deregister(ip).await;
        println!("dns: - {} A {ip} ({} stops) -> {}", registry.name(), replica.name, list(&left));
        // The deregistration delay (a Kubernetes preStop sleep, a load balancer's draining):
        // clients hold the last answer for its TTL, then ask again.
        tokio::time::sleep(DEREGISTRATION_DELAY).await;
        println!("rolling restart: SIGTERM to {}", replica.name);
        replica.signal("TERM")?;
        replica.wait().await?;
        *replica = ReplicaProcess::start(&program, &replica.name, &replica.address).await?;
        println!("{} is back", replica.name);
        registered(&registry, replica).await?;
        tokio::time::sleep(DEREGISTRATION_DELAY).await;
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await?;
    }
    watching.abort();
    let failures = failures.lock().unwrap();
    println!("{} calls; answered per replica: {:?}; failed: {}", calls.load(Ordering::Relaxed), answered.lock().unwrap(), failures.len());
    for f in failures.iter().take(5) {
        println!("  failed: {f}");
    }
    for replica in replicas.iter_mut() {
        replica.signal("TERM")?;
        replica.wait().await?;
    }
    Ok(failures.len())
}

/// How long a replica stays up after its A record is removed: the TTL, and half a second for
/// the client to ask again.
const DEREGISTRATION_DELAY: Duration = Duration::from_millis(fleet::dns::TTL as u64 * 1_000 + 500);

/// Registers a replica that listens (ReplicaProcess::start waited for it) and prints the change.
async fn registered(registry: &DnsRegistry, replica: &ReplicaProcess) -> Result<(), Box<dyn std::error::Error>> {
    let ip = ip(replica)?;
    let now = registry.register(ip).await;
    println!("dns: + {} A {ip} ({} serves) -> {}", registry.name(), replica.name, list(&now));
    Ok(())
}

/// A replica's IPv4 address.
fn ip(replica: &ReplicaProcess) -> Result<std::net::Ipv4Addr, Box<dyn std::error::Error>> {
    match replica.address.parse::<std::net::SocketAddr>()?.ip() {
        std::net::IpAddr::V4(ip) => Ok(ip),
        other => Err(format!("{}: {other} is not IPv4 (the zone has A records only)", replica.name).into()),
    }
}

fn list(ips: &[std::net::Ipv4Addr]) -> String {
    ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")
}
