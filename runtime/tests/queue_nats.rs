//! The queue suite on NATS (core request-reply, JetStream events), and fault tests.
//!
//! - `SWITCHBOARD_NATS_URL` (e.g. `nats://127.0.0.1:4222`, a nats-server started with `-js`):
//!   without it every test here prints (stderr) why it skipped and passes; under `CI=true` it
//!   fails instead (switchboard-test-support's broker rule).
//! - `SWITCHBOARD_BROKER_CTL`: a script; `"$SWITCHBOARD_BROKER_CTL" restart nats` restarts the
//!   server (same store directory) and returns once it accepts connections. The fault tests need
//!   it besides the URL (same rule).
//!
//! The tests share one server and fixed service names, so they take turns (`BROKER`).
#![cfg(feature = "nats")]

#[path = "queue/suite.rs"]
mod suite;
#[path = "queue/cancel.rs"]
mod cancel;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use suite::{Empty, Entry};
use switchboard::queue::Broker;
use switchboard::{Code, Request, Response, Status};
use switchboard_test_support::broker::{broker_ctl, nats_url};
use switchboard_test_support::ready::{eventually, retry_until};

/// One test at a time against the shared server.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One JetStream API call over a bare NATS connection (the tests have no NATS client of their
/// own): publishes `body` to `subject` and returns the reply's payload.
fn js_api(url: &str, subject: &str, body: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(',').next().unwrap().trim_end_matches('/');
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    let mut connect = String::from(r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true"#);
    if let Some((user, pass)) = auth.and_then(|a| a.split_once(':')) {
        connect.push_str(&format!(r#","user":"{user}","pass":"{pass}""#));
    }
    connect.push('}');
    let stream = std::net::TcpStream::connect(host).expect("connect to the NATS server");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap(); // INFO
    write!(writer, "CONNECT {connect}\r\nSUB _INBOX.sbtest 1\r\nPUB {subject} _INBOX.sbtest {}\r\n{body}\r\n", body.len()).unwrap();
    writer.flush().unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("reply from the NATS server");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("PING") => writer.write_all(b"PONG\r\n").unwrap(),
            Some("-ERR") => panic!("NATS server error: {line}"),
            Some("MSG") | Some("HMSG") => {
                let total: usize = words.last().unwrap().parse().unwrap();
                let mut payload = vec![0; total + 2];
                reader.read_exact(&mut payload).unwrap();
                payload.truncate(total);
                if words[0] == "HMSG" {
                    let header_len: usize = words[words.len() - 2].parse().unwrap();
                    payload.drain(..header_len);
                }
                return String::from_utf8_lossy(&payload).into_owned();
            }
            _ => {}
        }
    }
}

/// Deletes a JetStream stream (leftovers of earlier runs); a missing one is fine.
fn delete_stream(url: &str, name: &str) {
    let reply = js_api(url, &format!("$JS.API.STREAM.DELETE.{name}"), "");
    assert!(reply.contains("\"success\":true") || reply.contains("10059"), "deleting stream {name}: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_nats() {
    let _turn = BROKER.lock().await;
    let Some(url) = nats_url() else { return };
    delete_stream(&url, "SB_test_queue_v1_Ledger");
    suite::run_all(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_calls_are_cancelled_on_nats() {
    let _turn = BROKER.lock().await;
    let Some(url) = nats_url() else { return };
    cancel::run_all(&url).await;
    cancel::queued_and_cancelled_is_not_run(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_calls_fail_fast_on_nats() {
    let _turn = BROKER.lock().await;
    let Some(url) = nats_url() else { return };
    suite::unserved_is_unavailable(&url).await;
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_connect_errors() {
    let err = Broker::connect("nats://127.0.0.1:1").await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let err = Broker::connect("nats://user:secret@127.0.0.1:1").await.unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

// ---- Fault tests ----------------------------------------------------------------------------

#[switchboard::service(package = "test.queue.v1", rest = false)]
pub trait Faults {
    async fn call(&self, req: Request<Entry>) -> Result<Response<Entry>, Status>;
    #[rpc(event)]
    async fn note(&self, req: Request<Entry>) -> Result<Response<Empty>, Status>;
}

const FAULTS_STREAM: &str = "SB_test_queue_v1_Faults";

/// What the handlers ran, by entry id.
#[derive(Default)]
struct Runs {
    calls: Mutex<HashMap<String, u32>>,
    notes: Mutex<HashMap<String, u32>>,
    noted_at: Mutex<Vec<(String, Instant)>>,
}

#[derive(Clone, Default)]
struct FaultsImpl {
    runs: Arc<Runs>,
    /// After noting an event: sleep this long before returning (the ack waits for it).
    linger: Duration,
    /// After noting an event: append its id to this file (for the parent process to see).
    marker: Option<std::path::PathBuf>,
}

impl Faults for FaultsImpl {
    async fn call(&self, req: Request<Entry>) -> Result<Response<Entry>, Status> {
        let entry = req.into_inner();
        *self.runs.calls.lock().unwrap().entry(entry.id.clone()).or_default() += 1;
        Ok(Response::new(entry))
    }

    async fn note(&self, req: Request<Entry>) -> Result<Response<Empty>, Status> {
        let entry = req.into_inner();
        *self.runs.notes.lock().unwrap().entry(entry.id.clone()).or_default() += 1;
        self.runs.noted_at.lock().unwrap().push((entry.id.clone(), Instant::now()));
        if let Some(marker) = &self.marker {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(marker).unwrap();
            writeln!(file, "{}", entry.id).unwrap();
        }
        tokio::time::sleep(self.linger).await;
        Ok(Response::new(Empty {}))
    }
}

/// Returns once a `Faults` server answers a call through `client` (until one consumes, a call
/// fails at once: no responders). `id` must be a key the test's checks expect.
async fn until_faults_served(client: &FaultsQueueClient, id: String) {
    retry_until("a Faults server to answer", Duration::from_secs(30), || client.call(Entry { id: id.clone(), ..Default::default() })).await;
}

/// A number in a JetStream API reply (`"field":123`), 0 if absent.
fn js_number(reply: &str, field: &str) -> u64 {
    reply
        .split(&format!("\"{field}\":"))
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn run_id() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

fn tally(counts: &HashMap<&'static str, usize>) -> String {
    let mut v: Vec<_> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    v.sort();
    v.join(" ")
}

/// The broker restarts while 200 requests and 200 events (each with an idempotency key, retried
/// on failure with the same key) are under way. Every caller finishes; no event confirmed to the
/// publisher is lost; no handler runs twice for one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_traffic() {
    let _turn = BROKER.lock().await;
    let Some(url) = nats_url() else { return };
    let Some(ctl) = broker_ctl() else { return };
    delete_stream(&url, FAULTS_STREAM);
    const N: usize = 200;
    let run = run_id();

    let handler = FaultsImpl::default();
    let runs = handler.runs.clone();
    let server_broker = Broker::connect(&url).await.expect("connect");
    let server = FaultsQueueServer::new(handler).ack_wait(Duration::from_secs(2));
    let b = server_broker.clone();
    let server = tokio::spawn(async move { server.serve(&b).await });

    let client_broker = Broker::connect(&url).await.expect("connect");
    let client = FaultsQueueClient::new(&client_broker).timeout(Duration::from_secs(3));
    until_faults_served(&client, format!("req-{run}-ready")).await;

    let restart = tokio::task::spawn_blocking(move || {
        // Kept sleep: part of the scenario (the restart lands mid-traffic), not readiness.
        std::thread::sleep(Duration::from_millis(800));
        let started = Instant::now();
        let status = std::process::Command::new(&ctl).args(["restart", "nats"]).status().expect("run the broker control script");
        assert!(status.success(), "`{ctl} restart nats` failed: {status}");
        started.elapsed()
    });

    let attempts = AtomicUsize::new(0);
    // The sleeps in here spread the traffic over ~2 s and pace the retries: part of the
    // scenario, not readiness.
    let traffic = (0..N).map(|i| {
        let client = client.clone();
        let attempts = &attempts;
        async move {
            tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
            let key = format!("req-{run}-{i}");
            let mut call = Err(Status::unknown("not tried"));
            for _ in 0..10 {
                attempts.fetch_add(1, Ordering::Relaxed);
                let mut req = Request::new(Entry { id: key.clone(), amount: i as i64, ..Default::default() });
                req.metadata_mut().insert("idempotency-key", key.parse().unwrap());
                call = client.call(req).await.map(|r| r.into_inner().amount);
                if call.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let key = format!("evt-{run}-{i}");
            let mut publish = Err(Status::unknown("not tried"));
            for _ in 0..5 {
                let mut req = Request::new(Entry { id: key.clone(), ..Default::default() });
                req.metadata_mut().insert("idempotency-key", key.parse().unwrap());
                publish = client.publish_note(req).await;
                if publish.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (i, call, publish)
        }
    });
    let outcomes = tokio::time::timeout(Duration::from_secs(120), futures_util::future::join_all(traffic))
        .await
        .expect("a caller hung: not every request and publish finished within 2 minutes");
    let restart_took = restart.await.expect("restart task");

    // Let the confirmed events drain, then give redeliveries (ack_wait 2 s) time to show up.
    let confirmed: Vec<String> =
        outcomes.iter().filter(|(_, _, p)| p.is_ok()).map(|(i, _, _)| format!("evt-{run}-{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let all_noted = {
            let notes = runs.notes.lock().unwrap();
            confirmed.iter().all(|k| notes.contains_key(k))
        };
        if all_noted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Kept sleep: an observation window (2.5 x ack_wait) for redeliveries that would run a
    // handler twice; nothing signals "no duplicate".
    tokio::time::sleep(Duration::from_secs(5)).await;

    let calls = runs.calls.lock().unwrap().clone();
    let notes = runs.notes.lock().unwrap().clone();
    let mut requests: HashMap<&'static str, usize> = HashMap::new();
    let mut events: HashMap<&'static str, usize> = HashMap::new();
    let mut problems = Vec::new();
    let mut failures: HashMap<String, usize> = HashMap::new();
    let allowed = |s: &Status| matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded);
    for (i, call, publish) in &outcomes {
        let key = format!("req-{run}-{i}");
        let ran = calls.get(&key).copied().unwrap_or(0);
        let class = match (call, ran) {
            (_, n) if n > 1 => "duplicated",
            (Ok(amount), 1) if *amount == *i as i64 => "delivered",
            (Err(s), 0) if allowed(s) => "not run (caller told)",
            (Err(s), 1) if allowed(s) => "ran, reply lost (caller told)",
            _ => "unexpected",
        };
        if matches!(class, "duplicated" | "unexpected") {
            problems.push(format!("request {key}: {call:?}, handler ran {ran} times"));
        }
        if let Err(s) = call {
            *failures.entry(format!("request: {:?} {}", s.code(), s.message())).or_default() += 1;
        }
        if let Err(s) = publish {
            *failures.entry(format!("publish: {:?} {}", s.code(), s.message())).or_default() += 1;
        }
        *requests.entry(class).or_default() += 1;

        let key = format!("evt-{run}-{i}");
        let ran = notes.get(&key).copied().unwrap_or(0);
        let class = match (publish, ran) {
            (_, n) if n > 1 => "duplicated",
            (Ok(()), 1) => "delivered",
            (Ok(()), 0) => "lost",
            (Err(s), 1) if allowed(s) => "unconfirmed, handled",
            (Err(s), 0) if allowed(s) => "unconfirmed, not handled (publisher told)",
            _ => "unexpected",
        };
        if matches!(class, "duplicated" | "unexpected" | "lost") {
            problems.push(format!("event {key}: {publish:?}, handler ran {ran} times"));
        }
        *events.entry(class).or_default() += 1;
    }
    let strays = notes.keys().filter(|k| !k.starts_with(&format!("evt-{run}-"))).count()
        + calls.keys().filter(|k| !k.starts_with(&format!("req-{run}-"))).count();
    println!(
        "broker restart ({restart_took:?}) mid-traffic, {N} requests ({} attempts) and {N} events:\n  requests: {}\n  events:   {}\n  handled keys not sent by this run: {strays}",
        attempts.load(Ordering::Relaxed),
        tally(&requests),
        tally(&events)
    );
    for (failure, n) in &failures {
        println!("  last error of {n} caller(s) that gave up: {failure}");
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert_eq!(strays, 0, "handlers ran for keys this run never sent");
    assert!(events.get("delivered").copied().unwrap_or(0) > 0 && requests.get("delivered").copied().unwrap_or(0) > 0);

    // The server kept serving across the restart.
    assert!(!server.is_finished(), "the server stopped: {:?}", server.await);
    let after = client.call(Entry { id: format!("after-{run}"), amount: 1, ..Default::default() }).await;
    assert_eq!(after.expect("a call after the restart").into_inner().amount, 1);
    server_broker.close().await;
    client_broker.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await.expect("the server ends when its broker closes");
}

/// Child process of `a_consumer_killed_before_its_ack_gets_the_event_redelivered`: serves Faults,
/// notes the event in the marker file, then hangs before acking until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_child_hangs_before_ack() {
    let Ok(marker) = std::env::var("SB_NATS_FAULT_CHILD") else { return };
    let url = std::env::var("SWITCHBOARD_NATS_URL").unwrap();
    let broker = Broker::connect(&url).await.expect("connect");
    let handler = FaultsImpl { linger: Duration::from_secs(600), marker: Some(marker.into()), ..Default::default() };
    FaultsQueueServer::new(handler).ack_wait(Duration::from_secs(2)).serve(&broker).await.unwrap();
}

/// (2a) A consumer process handles an event and is killed (SIGKILL) before its ack: JetStream
/// redelivers the event after `ack_wait` to the next server. Across processes this is a second
/// run of the handler (at least once; the dedupe window lives in the server's memory).
/// (2b) Within one server process, a delivery not acked within `ack_wait` (the handler is still
/// running) is redelivered by JetStream, and the dedupe window keeps the handler from running
/// twice: the duplicate waits for the first run and is acked with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_before_its_ack_gets_the_event_redelivered() {
    let _turn = BROKER.lock().await;
    let Some(url) = nats_url() else { return };
    let Some(_ctl) = broker_ctl() else { return };
    let run = run_id();
    let ack_wait = Duration::from_secs(2);

    // (2a) across processes.
    delete_stream(&url, FAULTS_STREAM);
    let publisher = Broker::connect(&url).await.expect("connect");
    let client = FaultsQueueClient::new(&publisher);
    let key = format!("crash-{run}");
    let mut req = Request::new(Entry { id: key.clone(), ..Default::default() });
    req.metadata_mut().insert("idempotency-key", key.parse().unwrap());
    client.publish_note(req).await.expect("publish");

    let marker = std::env::temp_dir().join(format!("sb-nats-fault-{run}.txt"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["fault_child_hangs_before_ack", "--exact", "--nocapture", "--test-threads=1"])
        .env("SB_NATS_FAULT_CHILD", &marker)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the child consumer");
    let mut handled_by_child = None;
    for _ in 0..300 {
        if std::fs::read_to_string(&marker).is_ok_and(|m| m.lines().any(|l| l == key)) {
            handled_by_child = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handled_by_child = handled_by_child.expect("the child consumer never handled the event");
    child.kill().unwrap(); // SIGKILL: no ack, no NAK, the connection just drops
    child.wait().unwrap();
    let _ = std::fs::remove_file(&marker);

    let handler = FaultsImpl::default();
    let runs = handler.runs.clone();
    let server_broker = Broker::connect(&url).await.expect("connect");
    let server = FaultsQueueServer::new(handler).ack_wait(ack_wait);
    let b = server_broker.clone();
    let server = tokio::spawn(async move { server.serve(&b).await });
    let mut redelivered_after = None;
    for _ in 0..300 {
        if let Some((_, at)) = runs.noted_at.lock().unwrap().iter().find(|(k, _)| *k == key) {
            redelivered_after = Some(at.duration_since(handled_by_child));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let redelivered_after = redelivered_after.expect("the event was not redelivered after the consumer died");
    println!("(2a) killed before its ack: redelivered to the next server {redelivered_after:?} after the first handling (ack_wait {ack_wait:?})");
    assert!(redelivered_after >= ack_wait - Duration::from_millis(500), "redelivered before ack_wait: {redelivered_after:?}");
    // Kept sleep: an observation window past ack_wait, in which a second redelivery would show.
    tokio::time::sleep(ack_wait + Duration::from_secs(1)).await;
    assert_eq!(runs.notes.lock().unwrap().get(&key), Some(&1), "the second server ran it more than once");
    server_broker.close().await;
    let _ = server.await;

    // (2b) within one process: the handler outlives ack_wait.
    delete_stream(&url, FAULTS_STREAM);
    let handler = FaultsImpl { linger: ack_wait * 2 + Duration::from_millis(500), ..Default::default() };
    let runs = handler.runs.clone();
    let server_broker = Broker::connect(&url).await.expect("connect");
    let server = FaultsQueueServer::new(handler).ack_wait(ack_wait);
    let b = server_broker.clone();
    let server = tokio::spawn(async move { server.serve(&b).await });
    until_faults_served(&client, format!("ready-{run}")).await;
    let key = format!("slow-{run}");
    let mut req = Request::new(Entry { id: key.clone(), ..Default::default() });
    req.metadata_mut().insert("idempotency-key", key.parse().unwrap());
    client.publish_note(req).await.expect("publish");
    // While the first run lingers past ack_wait, JetStream redelivers it.
    let consumer_info = format!("$JS.API.CONSUMER.INFO.{FAULTS_STREAM}.events");
    let redelivered = retry_until("JetStream to redeliver the unacked event", ack_wait * 2 + Duration::from_secs(5), || {
        let info = js_api(&url, &consumer_info, "");
        std::future::ready(match js_number(&info, "num_redelivered") {
            0 => Err(info),
            n => Ok(n),
        })
    })
    .await;
    println!("(2b) handler slower than ack_wait: JetStream redelivered {redelivered} message(s) while it ran");
    // The first run finishes and acks; the duplicate waited for it and is acked with it.
    let stream_info = format!("$JS.API.STREAM.INFO.{FAULTS_STREAM}");
    eventually("the stream to be empty (every delivery acked)", Duration::from_secs(30), || {
        js_number(&js_api(&url, &stream_info, ""), "messages") == 0
    })
    .await;
    assert_eq!(runs.notes.lock().unwrap().get(&key), Some(&1), "the redelivered event ran the handler again");
    // Everything was acked in the end: the work queue is empty.
    let info = js_api(&url, &format!("$JS.API.STREAM.INFO.{FAULTS_STREAM}"), "");
    assert!(info.contains("\"messages\":0"), "events left in the stream: {info}");
    server_broker.close().await;
    publisher.close().await;
    let _ = server.await;
}
