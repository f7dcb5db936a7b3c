//! NATS micro discovery (ADR-32): every queue server on NATS answers `$SRV.PING`, `$SRV.INFO`
//! and `$SRV.STATS` for its service, `switchboard::queue::discover` asks them, and a Python
//! nats-py client finds a service's subject through `$SRV.INFO` and calls it.
//!
//! Needs `SWITCHBOARD_NATS_URL` and the `nats` feature: without them the test prints why it
//! skipped and passes; under `CI=true` it fails instead. The Python part also needs python3 with
//! nats-py (same rule).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use switchboard::queue::Broker;
use switchboard::{Code, Request, Response, Status, Streaming};
use switchboard_test_support::broker::url_for_feature;
use switchboard_test_support::ready::retry_until;

#[switchboard::service(package = "test.micro.v1", grpc = false)]
pub trait Echo {
    async fn echo(&self, req: Request<String>) -> Result<Response<String>, Status>;
    async fn repeat(&self, req: Request<String>) -> Result<Response<Streaming<String>>, Status>;
}

const SERVICE: &str = "test.micro.v1.Echo";
const NAME: &str = "test-micro-v1-Echo";

struct Replica(usize);

impl Echo for Replica {
    async fn echo(&self, req: Request<String>) -> Result<Response<String>, Status> {
        match req.into_inner() {
            text if text == "fail" => Err(Status::invalid_argument("asked to fail")),
            text => Ok(Response::new(format!("{text} (replica {})", self.0))),
        }
    }

    async fn repeat(&self, req: Request<String>) -> Result<Response<Streaming<String>>, Status> {
        let text = req.into_inner();
        Ok(Response::new(Streaming::iter([text.clone(), text])))
    }
}

/// Sends an empty request to `subject` with a reply inbox and returns every answer (as JSON) that
/// comes within `wait`, as a raw NATS client would.
async fn gather(client: &async_nats::Client, subject: &str, wait: Duration) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    client.publish_with_reply(subject.to_owned(), inbox, Default::default()).await.unwrap();
    let until = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout_at(until, answers.next()).await {
        if message.status.is_some() {
            continue; // no responders
        }
        out.push(serde_json::from_slice(&message.payload).expect("a JSON answer"));
    }
    out
}

/// The answers to `subject` that come from this test's service.
async fn ours(client: &async_nats::Client, subject: &str) -> Vec<Value> {
    gather(client, subject, Duration::from_millis(500)).await.into_iter().filter(|a| a["name"] == NAME).collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn ids(answers: &[Value]) -> BTreeSet<String> {
    answers.iter().map(|a| a["id"].as_str().expect("an id").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_answer_ping_info_stats_and_python_calls_through_info() {
    let Some(url) = url_for_feature("SWITCHBOARD_NATS_URL", cfg!(feature = "nats"), "nats") else { return };
    let raw = async_nats::connect(url.as_str()).await.expect("connect a raw NATS client");

    // Three replicas, each on a connection of its own (as three processes would be).
    let mut replicas = Vec::new();
    for i in 0..3 {
        let broker = Broker::connect(&url).await.expect("connect");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = EchoQueueServer::new(Replica(i)).version("1.4.2");
        let b = broker.clone();
        let task = tokio::spawn(async move { server.serve_with_shutdown(&b, async { let _ = stopped.await; }).await });
        replicas.push((broker, stop, task));
    }
    let caller = Broker::connect(&url).await.expect("connect");
    let client = EchoQueueClient::new(&caller).timeout(Duration::from_secs(5));
    retry_until("an Echo replica to answer", Duration::from_secs(30), || client.echo("ready".to_owned())).await;
    retry_until("three replicas to answer $SRV.PING", Duration::from_secs(10), || {
        let raw = &raw;
        async move {
            match ours(raw, &format!("$SRV.PING.{NAME}")).await.len() {
                3 => Ok(()),
                n => Err(n),
            }
        }
    })
    .await;

    // PING: once per replica, distinct ids, the ADR-32 fields.
    let pings = ours(&raw, &format!("$SRV.PING.{NAME}")).await;
    assert_eq!(pings.len(), 3, "{pings:?}");
    let replica_ids = ids(&pings);
    assert_eq!(replica_ids.len(), 3, "ids are not distinct: {pings:?}");
    for p in &pings {
        assert_eq!(p["type"], "io.nats.micro.v1.ping_response", "{p}");
        assert_eq!(p["version"], "1.4.2", "{p}");
        assert_eq!(p["metadata"]["switchboard.service"], SERVICE, "{p}");
    }
    // `$SRV.PING` (every service) includes them; `$SRV.PING.<name>.<id>` reaches one.
    assert_eq!(ids(&ours(&raw, "$SRV.PING").await), replica_ids);
    let one = replica_ids.iter().next().unwrap();
    let single = ours(&raw, &format!("$SRV.PING.{NAME}.{one}")).await;
    assert_eq!(ids(&single), BTreeSet::from([one.clone()]), "{single:?}");
    assert_eq!(single.len(), 1);

    // INFO: one endpoint per method, on the subjects switchboard serves.
    let infos = ours(&raw, &format!("$SRV.INFO.{NAME}")).await;
    assert_eq!(ids(&infos), replica_ids);
    for info in &infos {
        assert_eq!(info["type"], "io.nats.micro.v1.info_response", "{info}");
        assert_eq!(info["metadata"]["switchboard.content_type"], "application/json", "{info}");
        let endpoints: Vec<(&str, &str, &str, &str)> = info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (text(&e["name"]), text(&e["subject"]), text(&e["queue_group"]), text(&e["metadata"]["switchboard.shape"])))
            .collect();
        assert_eq!(
            endpoints,
            [
                ("Echo", "sb.rpc.test.micro.v1.Echo.Echo", "sb.rpc.test.micro.v1.Echo", "unary"),
                ("Repeat", "sb.rpc.test.micro.v1.Echo.Repeat", "sb.rpc.test.micro.v1.Echo", "server_streaming"),
            ],
            "{info}"
        );
    }

    // STATS: the calls made, summed over the replicas (the queue group spreads them).
    for i in 0..6 {
        client.echo(format!("call {i}")).await.expect("a call");
    }
    let failed = client.echo("fail".to_owned()).await.expect_err("a failing call");
    assert_eq!(failed.code(), Code::InvalidArgument);
    let frames: Vec<_> = client.repeat("twice".to_owned()).await.expect("a stream").into_inner().collect().await;
    assert_eq!(frames.len(), 2);
    let stats = ours(&raw, &format!("$SRV.STATS.{NAME}")).await;
    assert_eq!(ids(&stats), replica_ids);
    let mut totals: HashMap<String, (u64, u64, u64)> = HashMap::new();
    let mut last_errors = Vec::new();
    for s in &stats {
        assert_eq!(s["type"], "io.nats.micro.v1.stats_response", "{s}");
        assert!(s["started"].as_str().is_some_and(|t| t.ends_with('Z')), "{s}");
        for e in s["endpoints"].as_array().unwrap() {
            let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("{k} in {e}"));
            let t = totals.entry(e["name"].as_str().unwrap().to_owned()).or_default();
            t.0 += n("num_requests");
            t.1 += n("num_errors");
            t.2 += n("processing_time");
            if n("num_requests") > 0 {
                assert_eq!(n("average_processing_time"), n("processing_time") / n("num_requests"), "{e}");
            }
            if n("num_errors") > 0 {
                last_errors.push(e["last_error"].as_str().unwrap().to_owned());
            }
        }
    }
    println!("STATS over 3 replicas (requests, errors, ns): {totals:?}");
    // The readiness call counts too (the ones before it found no responders, reaching nobody).
    let echo = totals["Echo"];
    assert_eq!(echo.0, 8, "Echo: 6 calls, 1 failure and the readiness call: {echo:?}");
    assert_eq!(echo.1, 1, "one failed call: {totals:?}");
    assert!(echo.2 > 0);
    assert_eq!(last_errors, ["3:asked to fail"]);
    assert_eq!(totals["Repeat"].0, 1);
    assert_eq!(totals["Repeat"].1, 0);

    // discover(): the same replicas, from the library.
    let found = switchboard::queue::discover(&caller, SERVICE, Duration::from_millis(500)).await.expect("discover");
    assert_eq!(found.iter().map(|i| i.id.clone()).collect::<BTreeSet<_>>(), replica_ids);
    assert!(found.iter().all(|i| i.service() == Some(SERVICE) && i.version == "1.4.2" && i.endpoints.len() == 2), "{found:?}");
    assert!(switchboard::queue::discover(&caller, "test.micro.v1.Nobody", Duration::from_secs(5)).await.unwrap().is_empty());

    python_peer(&url).await;

    // One replica stops: it no longer answers, the other two do.
    let (broker, stop, task) = replicas.remove(0);
    drop(stop);
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the replica stopped").unwrap().expect("served");
    let pings = ours(&raw, &format!("$SRV.PING.{NAME}")).await;
    assert_eq!(pings.len(), 2, "{pings:?}");
    assert!(ids(&pings).is_subset(&replica_ids));
    let found = switchboard::queue::discover(&caller, SERVICE, Duration::from_millis(500)).await.unwrap();
    assert_eq!(found.len(), 2);
    broker.close().await;

    for (broker, stop, task) in replicas {
        drop(stop);
        task.await.unwrap().unwrap();
        broker.close().await;
    }
    assert!(ours(&raw, &format!("$SRV.PING.{NAME}")).await.is_empty(), "a stopped replica still answers");
    caller.close().await;
}

/// tests/nats_micro_peer.py: nats-py pings the service, reads an endpoint's subject from
/// `$SRV.INFO`, calls it in the queue protocol's wire format and checks `$SRV.STATS`.
async fn python_peer(url: &str) {
    let has_nats = std::process::Command::new("python3").args(["-c", "import nats, nats.micro"]).output().is_ok_and(|o| o.status.success());
    if !has_nats {
        switchboard_test_support::ci::skip_or_fail("python3 with nats-py not available (python3 -m pip install nats-py)");
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nats_micro_peer.py");
    let mut command = std::process::Command::new("python3");
    command.arg(&script).arg(url).arg(NAME).arg("Echo").arg("hello from python");
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the Python peer failed ({}):\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ping: 3 replicas"), "{stdout}");
    assert!(stdout.contains("info: Echo on sb.rpc.test.micro.v1.Echo.Echo in group sb.rpc.test.micro.v1.Echo (application/json)"), "{stdout}");
    let answer = stdout.lines().find_map(|l| l.strip_prefix("answer: ")).unwrap_or_else(|| panic!("no answer in {stdout}"));
    assert!(answer.starts_with("\"hello from python (replica ") && answer.ends_with(")\""), "{answer}");
    assert!(stdout.contains("stats: parsed"), "{stdout}");
}
