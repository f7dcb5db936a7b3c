//! Run: cargo run -p fleet
//!
//! Three replica processes of this program on 127.0.0.1, .2 and .3 (one port), a client that
//! balances across them (round robin over the replicas whose health says SERVING, retries on
//! UNAVAILABLE: the policy in `fleet::SERVICE_CONFIG`), 16 callers over gRPC and REST, and a
//! rolling restart: each replica in turn gets SIGTERM, drains (NOT_SERVING, 300 ms, stop) and
//! starts again. It prints the calls each replica answered and the failed calls: 0.
//!
//! `fleet replica <name> <address>` runs one replica.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet::{EchoClient, EchoRestClient, Ping, ReplicaProcess, SERVICE_CONFIG};
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
    // One free port, used on the three loopback addresses.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut replicas = Vec::new();
    for i in 1..=3 {
        replicas.push(ReplicaProcess::start(&program, &format!("replica-{i}"), &format!("127.0.0.{i}:{port}")).await?);
    }
    let target = format!("static:///{}", replicas.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(","));
    let config = ServiceConfig::from_json(SERVICE_CONFIG)?;
    let fleet = Fleet::builder(&target).service_config(&config).keepalive(Duration::from_secs(1), Duration::from_secs(1)).build()?;
    let policy = || PolicyLayer::new(Policies::new().runtime(config.clone()));
    let grpc = EchoClient::new(fleet.grpc()).layer(policy());
    let rest = EchoRestClient::with_client(RestClient::fleet(fleet.clone())).layer(policy());
    println!("client: {target}, round robin over the replicas that say SERVING");

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
        println!("rolling restart: SIGTERM to {}", replica.name);
        replica.signal("TERM")?;
        replica.wait().await?;
        *replica = ReplicaProcess::start(&program, &replica.name, &replica.address).await?;
        println!("{} is back", replica.name);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await?;
    }
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
