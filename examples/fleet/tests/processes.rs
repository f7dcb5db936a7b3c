//! The fleet with real replica processes (`fleet replica …`): a rolling restart through SIGTERM
//! (the demo: zero failed calls), a replica stopped with SIGSTOP under load (its sockets stay
//! open; keepalive finds it out), and one killed with SIGKILL.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet::{EchoClient, Ping, ReplicaProcess, SERVICE_CONFIG};
use switchboard::fleet::{Fleet, FleetChannel};
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::Request;

const PROGRAM: &str = env!("CARGO_BIN_EXE_fleet");

/// The demo: three replicas registered in the demo's own DNS server, a client that finds them
/// through it (a `dns://` target), 16 callers over gRPC and REST, each replica taken out of DNS,
/// SIGTERM'd (drained), started again and registered again in turn: it exits 0 only when no
/// call failed. The client's endpoints follow the registry: each replica leaves them and comes
/// back, and every replica answered calls.
#[test]
fn rolling_restart_fails_no_call() {
    let out = std::process::Command::new(PROGRAM).output().expect("run the demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the demo failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    let client = text.lines().find(|l| l.starts_with("client: dns://")).unwrap_or_else(|| panic!("no dns:// target: {text}"));
    assert!(client.contains("/echo.fleet.test:"), "{client}");
    let summary = text.lines().find(|l| l.contains("answered per replica:")).unwrap_or_else(|| panic!("no summary: {text}"));
    assert!(summary.ends_with("failed: 0"), "{text}");
    let resolved: Vec<&str> = text.lines().filter(|l| l.starts_with("client: endpoints from DNS:")).collect();
    for i in 1..=3 {
        assert!(text.contains(&format!("replica-{i} is back")), "{text}");
        assert!(text.contains(&format!("dns: - echo.fleet.test A 127.0.0.{i} ")), "{text}");
        assert!(text.contains(&format!("dns: + echo.fleet.test A 127.0.0.{i} ")), "{text}");
        let ip = format!("127.0.0.{i}:");
        assert!(resolved.iter().any(|l| !l.contains(&ip)), "the client never saw {ip} leave DNS: {text}");
        assert!(resolved.last().is_some_and(|l| l.contains(&ip)), "the client did not find {ip} again: {text}");
        let answered: usize = summary
            .split(&format!("\"replica-{i}\": "))
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(answered > 0, "replica-{i} answered no call: {summary}");
    }
}

/// Three replica processes on one port; a health-checked client with 500 ms keepalive pings.
async fn three() -> (Vec<ReplicaProcess>, EchoClient<FleetChannel>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut replicas = Vec::new();
    for i in 1..=3 {
        replicas.push(ReplicaProcess::start(Path::new(PROGRAM), &format!("replica-{i}"), &format!("127.0.0.{i}:{port}")).await.unwrap());
    }
    let target = format!("static:///{}", replicas.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(","));
    let config = ServiceConfig::from_json(SERVICE_CONFIG).unwrap();
    let fleet = Fleet::builder(&target)
        .service_config(&config)
        .keepalive(Duration::from_millis(500), Duration::from_millis(500))
        .refresh(Duration::from_secs(30), Duration::from_millis(200))
        .build()
        .unwrap();
    (replicas, EchoClient::new(fleet.grpc()).layer(PolicyLayer::new(Policies::new().runtime(config))))
}

/// What the callers saw: for each answer, when its call started and which replica answered;
/// the failures.
#[derive(Default)]
struct Seen {
    answers: Vec<(Duration, String)>,
    failed: Vec<String>,
}

/// 16 callers, a call every 5 ms each, until `stop`.
fn callers(client: &EchoClient<FleetChannel>, stop: &Arc<AtomicBool>, seen: &Arc<Mutex<Seen>>, epoch: Instant) -> Vec<tokio::task::JoinHandle<()>> {
    (0..16)
        .map(|_| {
            let (client, stop, seen) = (client.clone(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let started = epoch.elapsed();
                    match client.clone().echo(Request::new(Ping { text: "hi".into() })).await {
                        Ok(pong) => seen.lock().unwrap().answers.push((started, pong.into_inner().replica)),
                        Err(e) => seen.lock().unwrap().failed.push(format!("{}: {}", e.code(), e.message())),
                    }
                }
            })
        })
        .collect()
}

/// SIGSTOP: no call made from keepalive timeout + 1 s after the stop is answered by the stopped
/// replica, no call fails; after SIGCONT it answers calls again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_is_found_out() {
    let (mut replicas, client) = three().await;
    let (stop, seen, epoch) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Seen::default())), Instant::now());
    let callers = callers(&client, &stop, &seen, epoch);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped_at = epoch.elapsed();
    replicas[1].signal("STOP").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let continued_at = epoch.elapsed();
    replicas[1].signal("CONT").unwrap();
    switchboard_test_support::ready::eventually("the continued replica answers calls again", Duration::from_secs(10), || {
        seen.lock().unwrap().answers.iter().any(|(t, r)| *t > continued_at && r == "replica-2")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let late: Vec<_> = seen
        .answers
        .iter()
        .filter(|(t, r)| r == "replica-2" && *t >= stopped_at + Duration::from_millis(1_500) && *t < continued_at)
        .collect();
    let per_replica = seen.answers.iter().fold(BTreeMap::<&str, usize>::new(), |mut m, (_, r)| {
        *m.entry(r).or_default() += 1;
        m
    });
    eprintln!("{} calls answered {per_replica:?}, {} failed; calls made 1.5 s after SIGSTOP answered by it: {}", seen.answers.len(), seen.failed.len(), late.len());
    assert!(seen.failed.is_empty(), "{} calls failed, e.g. {:?}", seen.failed.len(), seen.failed.first());
    assert!(late.is_empty(), "calls made after the stopped replica was found out went to it: {late:?}");
    for r in replicas.iter_mut() {
        r.signal("TERM").unwrap();
        r.wait().await.unwrap();
    }
}

/// SIGKILL under load: no call fails (retried on UNAVAILABLE, or sent again when they never
/// reached it), and the others carry the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_costs_no_call() {
    let (mut replicas, client) = three().await;
    let (stop, seen, epoch) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Seen::default())), Instant::now());
    let callers = callers(&client, &stop, &seen, epoch);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = epoch.elapsed();
    replicas[1].signal("KILL").unwrap();
    replicas[1].wait().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let after: Vec<_> = seen.answers.iter().filter(|(t, r)| *t > killed_at + Duration::from_millis(100) && r == "replica-2").collect();
    eprintln!("{} calls answered, {} failed", seen.answers.len(), seen.failed.len());
    assert!(seen.failed.is_empty(), "{} calls failed, e.g. {:?}", seen.failed.len(), seen.failed.first());
    assert!(after.is_empty(), "a killed replica answered: {after:?}");
    for r in [0, 2] {
        replicas[r].signal("TERM").unwrap();
        replicas[r].wait().await.unwrap();
    }
}
