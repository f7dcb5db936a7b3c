//! `grpc.health.v1.Health` as `switchboard::Server` serves it (switchboard::health): a real
//! server on loopback carrying one service, checked over gRPC (the generated `HealthClient` and
//! `health::watch`), over REST (HTTP/1.1 + JSON on the default binding) and with gRPC's own
//! Python stub (grpcio-health-checking; skipped with a reason when it is missing, failing under
//! `CI=true`). Statuses are flipped through the server's `HealthReporter` and by the shutdown
//! signal; watchers must see each flip within 100 ms.
#![cfg(all(feature = "grpc", feature = "rest"))]

use std::time::{Duration, Instant};

use switchboard::health::{self, HealthCheckRequest, HealthClient, HealthListRequest, HealthReporter, HealthServer, ServingStatus};
use switchboard::serde_json::json;
use switchboard::stream::StreamExt as _;
use switchboard::{Code, Request, Response, Status, Streaming};
use switchboard_test_support::http::Http;
use switchboard_test_support::server::in_background;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Ping {
    #[prost(string, tag = "1")]
    pub text: String,
}

/// The one user service the server carries.
#[switchboard::service(package = "test.health.v1")]
pub trait Pinger {
    async fn ping(&self, req: Request<Ping>) -> Result<Response<Ping>, Status>;
}

struct Impl;

impl Pinger for Impl {
    async fn ping(&self, req: Request<Ping>) -> Result<Response<Ping>, Status> {
        Ok(Response::new(req.into_inner()))
    }
}

const SVC: &str = "test.health.v1.Pinger";
/// How soon a watcher must see a flip (the acceptance's bound).
const FLIP: Duration = Duration::from_millis(100);
/// How long a test waits for anything that should come at once.
const SOON: Duration = Duration::from_secs(5);

/// A server on a thread of its own: its address, its reporter, its shutdown signal, and what
/// `serve_with_shutdown` returned once it has.
struct Running {
    addr: String,
    health: HealthReporter,
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<Result<(), String>>,
}

/// `Server::builder()` with Pinger added (and whatever `build` adds), served until stopped.
fn start(build: impl FnOnce(switchboard::Server) -> switchboard::Server + Send + 'static) -> Running {
    in_background("health-server", move |ready| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = build(switchboard::Server::builder().add_service(PingerServer::new(Impl)));
        let health = server.health();
        let (stop, stop_rx) = oneshot::channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let _ = ready.send(Ok(Running { addr, health, stop, stopped }));
        let result = server.serve_with_shutdown(listener, async { let _ = stop_rx.await; }).await;
        let _ = stopped_tx.send(result.map_err(|e| e.to_string()));
    })
    .unwrap()
}

async fn grpc_health(addr: &str) -> HealthClient {
    HealthClient::connect(format!("http://{addr}")).await.unwrap()
}

async fn check(client: &mut HealthClient, service: &str) -> Result<ServingStatus, Status> {
    client.check(HealthCheckRequest::new(service)).await.map(|r| r.into_inner().status())
}

async fn watch(client: &mut HealthClient, service: &str) -> Streaming<health::HealthCheckResponse> {
    client.watch(HealthCheckRequest::new(service)).await.unwrap().into_inner()
}

/// The next status a Watch sends, within `limit`.
async fn next_status(stream: &mut Streaming<health::HealthCheckResponse>, limit: Duration) -> Option<ServingStatus> {
    let message = tokio::time::timeout(limit, stream.message()).await.unwrap_or_else(|_| panic!("no Watch message within {limit:?}"));
    message.unwrap().map(|m| m.status())
}

#[tokio::test]
async fn check_and_list_over_grpc() {
    let server = start(|s| s);
    let mut client = grpc_health(&server.addr).await;
    assert_eq!(check(&mut client, "").await.unwrap(), ServingStatus::Serving);
    assert_eq!(check(&mut client, SVC).await.unwrap(), ServingStatus::Serving);
    let err = check(&mut client, "nope").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    let mut listed: Vec<_> = list.statuses.iter().map(|(k, v)| (k.as_str(), v.status())).collect();
    listed.sort();
    assert_eq!(listed, [("", ServingStatus::Serving), (SVC, ServingStatus::Serving)], "the server and the service it carries");

    server.health.set_not_serving(SVC);
    assert_eq!(check(&mut client, SVC).await.unwrap(), ServingStatus::NotServing);
    assert_eq!(check(&mut client, "").await.unwrap(), ServingStatus::Serving, "the server's own status is its own");
    server.health.clear(SVC);
    assert_eq!(check(&mut client, SVC).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn check_list_and_watch_over_rest() {
    let server = start(|s| s);
    let http = Http::new(&server.addr);
    for service in ["", SVC] {
        let answer = http.post("/grpc.health.v1.Health/Check").json(&json!({ "service": service })).send().await;
        assert_eq!((answer.status, answer.json()), (200, json!({"status": "SERVING"})), "Check({service:?})");
    }
    let answer = http.post("/grpc.health.v1.Health/Check").json(&json!({"service": "nope"})).send().await;
    assert_eq!((answer.status, answer.json()["code"].clone()), (404, json!(5)), "{}", answer.text());
    // No body at all is the empty request: the server's status.
    let answer = http.post("/grpc.health.v1.Health/Check").send().await;
    assert_eq!(answer.json(), json!({"status": "SERVING"}));

    let answer = http.post("/grpc.health.v1.Health/List").json(&json!({})).send().await;
    assert_eq!(answer.json(), json!({"statuses": {"": {"status": "SERVING"}, SVC: {"status": "SERVING"}}}));

    let mut watch = http.post("/grpc.health.v1.Health/Watch").json(&json!({ "service": SVC })).send_streaming().await;
    assert_eq!((watch.status, watch.header("content-type")), (200, Some("application/x-ndjson")));
    let first = watch.next_record(b"\n", SOON).await.unwrap();
    assert_eq!(first, r#"{"result":{"status":"SERVING"}}"#);
    let flipped = Instant::now();
    server.health.set_not_serving(SVC);
    let second = watch.next_record(b"\n", SOON).await.unwrap();
    assert_eq!(second, r#"{"result":{"status":"NOT_SERVING"}}"#);
    assert!(flipped.elapsed() < FLIP, "REST Watch saw NOT_SERVING after {:?}", flipped.elapsed());

    // The application's API document does not grow the health routes.
    let doc = http.get("/openapi.json").send().await.json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().any(|p| p.contains("Pinger")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("grpc.health")), "{paths:?}");
}

#[tokio::test]
async fn watch_sends_the_status_at_once_and_every_change() {
    let server = start(|s| s);
    let mut client = grpc_health(&server.addr).await;
    let mut stream = watch(&mut client, SVC).await;
    assert_eq!(next_status(&mut stream, SOON).await, Some(ServingStatus::Serving));
    for status in [ServingStatus::NotServing, ServingStatus::Serving, ServingStatus::NotServing] {
        let flipped = Instant::now();
        server.health.set_status(SVC, status);
        assert_eq!(next_status(&mut stream, SOON).await, Some(status));
        assert!(flipped.elapsed() < FLIP, "Watch saw {status} after {:?}", flipped.elapsed());
    }
    // Setting the same status again sends nothing; the next change is the next message.
    server.health.set_not_serving(SVC);
    server.health.set_serving(SVC);
    assert_eq!(next_status(&mut stream, SOON).await, Some(ServingStatus::Serving));

    // A service without a status is SERVICE_UNKNOWN, not an error, until it gets one.
    let mut later = watch(&mut client, "test.health.v1.Later").await;
    assert_eq!(next_status(&mut later, SOON).await, Some(ServingStatus::ServiceUnknown));
    server.health.set_serving("test.health.v1.Later");
    assert_eq!(next_status(&mut later, SOON).await, Some(ServingStatus::Serving));
}

/// With a drain period: the signal turns everything NOT_SERVING while the server still serves
/// (calls succeed, Check answers), then Watch calls end and the server stops.
#[tokio::test]
async fn shutdown_signal_turns_every_status_not_serving_before_the_server_stops() {
    let drain = Duration::from_secs(1);
    let mut server = start(move |s| s.drain(drain));
    let mut client = grpc_health(&server.addr).await;
    let mut overall = watch(&mut client, "").await;
    let mut service = watch(&mut client, SVC).await;
    assert_eq!(next_status(&mut overall, SOON).await, Some(ServingStatus::Serving));
    assert_eq!(next_status(&mut service, SOON).await, Some(ServingStatus::Serving));
    let channel = switchboard::grpc::transport::Endpoint::from_shared(format!("http://{}", server.addr)).unwrap().connect_lazy();
    let mut helper = std::pin::pin!(health::watch(channel, SVC));
    assert_eq!(tokio::time::timeout(SOON, helper.next()).await.unwrap(), Some(ServingStatus::Serving));

    let signalled = Instant::now();
    server.stop.send(()).unwrap();
    assert_eq!(next_status(&mut overall, SOON).await, Some(ServingStatus::NotServing));
    assert_eq!(next_status(&mut service, SOON).await, Some(ServingStatus::NotServing));
    assert_eq!(tokio::time::timeout(SOON, helper.next()).await.unwrap(), Some(ServingStatus::NotServing));
    assert!(signalled.elapsed() < FLIP, "watchers saw NOT_SERVING after {:?}", signalled.elapsed());
    assert!(server.stopped.try_recv().is_err(), "the server has not stopped yet");

    // Draining: calls are still served, and health says NOT_SERVING.
    let mut pinger = PingerClient::connect(format!("http://{}", server.addr)).await.unwrap();
    pinger.ping(Ping { text: "still here".into() }).await.unwrap();
    assert_eq!(check(&mut client, "").await.unwrap(), ServingStatus::NotServing);
    let rest = Http::new(&server.addr).post("/grpc.health.v1.Health/Check").json(&json!({ "service": SVC })).send().await;
    assert_eq!(rest.json(), json!({"status": "NOT_SERVING"}));
    server.health.set_serving(SVC);
    assert_eq!(check(&mut client, SVC).await.unwrap(), ServingStatus::NotServing, "shut down for good");

    // Then the Watch calls end cleanly and the server stops.
    assert_eq!(next_status(&mut overall, SOON).await, None);
    assert_eq!(next_status(&mut service, SOON).await, None);
    let result = tokio::time::timeout(SOON, &mut server.stopped).await.expect("the server stops").unwrap();
    result.unwrap();
    assert!(signalled.elapsed() >= drain, "stopped after {:?}, before its drain period", signalled.elapsed());
    // The helper says the endpoint is gone: not SERVING.
    assert_eq!(tokio::time::timeout(SOON, helper.next()).await.unwrap(), Some(ServingStatus::Unknown));
}

/// Without a drain period the server still reports NOT_SERVING before it stops, and open Watch
/// calls do not keep the graceful shutdown waiting.
#[tokio::test]
async fn shutdown_without_drain_ends_watch_calls() {
    let mut server = start(|s| s);
    let mut client = grpc_health(&server.addr).await;
    let mut stream = watch(&mut client, SVC).await;
    assert_eq!(next_status(&mut stream, SOON).await, Some(ServingStatus::Serving));
    let http = Http::new(&server.addr);
    let mut rest = http.post("/grpc.health.v1.Health/Watch").json(&json!({})).send_streaming().await;
    assert_eq!(rest.next_record(b"\n", SOON).await.unwrap(), r#"{"result":{"status":"SERVING"}}"#);

    server.stop.send(()).unwrap();
    assert_eq!(next_status(&mut stream, SOON).await, Some(ServingStatus::NotServing));
    assert_eq!(next_status(&mut stream, SOON).await, None);
    assert_eq!(rest.next_record(b"\n", SOON).await.unwrap(), r#"{"result":{"status":"NOT_SERVING"}}"#);
    assert_eq!(rest.next_record(b"\n", SOON).await, None);
    let result = tokio::time::timeout(SOON, &mut server.stopped).await.expect("the server stops").unwrap();
    result.unwrap();
}

#[tokio::test]
async fn a_status_set_before_the_service_is_added_is_kept() {
    let running = in_background("health-preset", |ready| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = switchboard::Server::builder();
        server.health().set_not_serving(SVC);
        let server = server.add_service(PingerServer::new(Impl));
        let _ = ready.send(Ok(addr));
        server.serve(listener).await.unwrap();
    })
    .unwrap();
    let mut client = grpc_health(&running).await;
    assert_eq!(check(&mut client, SVC).await.unwrap(), ServingStatus::NotServing);
}

/// A server that carries a Health service of the application's own serves that one, on both
/// transports (a second one would clash on REST).
#[tokio::test]
async fn an_application_health_service_is_kept() {
    let own = HealthReporter::new();
    own.set_not_serving("");
    let theirs = own.clone();
    let server = start(move |s| s.add_service(HealthServer::new(theirs)));
    let mut client = grpc_health(&server.addr).await;
    assert_eq!(check(&mut client, "").await.unwrap(), ServingStatus::NotServing);
    assert_eq!(check(&mut client, SVC).await.unwrap_err().code(), Code::NotFound, "the application registers its own");
    let rest = Http::new(&server.addr).post("/grpc.health.v1.Health/Check").json(&json!({})).send().await;
    assert_eq!(rest.json(), json!({"status": "NOT_SERVING"}));
    assert_eq!(server.health.status(SVC), Some(ServingStatus::Serving), "the server's reporter still exists, unserved");
}

/// The parts carry the health service too.
#[tokio::test]
async fn into_parts_serves_health_on_both_halves() {
    let (grpc_addr, rest_addr, health) = in_background("health-parts", |ready| async move {
        let server = switchboard::Server::builder().add_service(PingerServer::new(Impl));
        let health = server.health();
        let (grpc, rest) = server.into_parts();
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (grpc_listener.local_addr().unwrap().to_string(), rest_listener.local_addr().unwrap().to_string());
        let _ = ready.send(Ok((addrs.0, addrs.1, health)));
        let incoming = switchboard::grpc::transport::server::TcpIncoming::from(grpc_listener);
        let grpc = switchboard::grpc::transport::Server::builder().add_routes(grpc).serve_with_incoming(incoming);
        let rest = rest.serve(rest_listener);
        let _ = tokio::join!(grpc, rest);
    })
    .unwrap();
    let mut client = grpc_health(&grpc_addr).await;
    assert_eq!(check(&mut client, SVC).await.unwrap(), ServingStatus::Serving);
    health.set_not_serving(SVC);
    let rest = Http::new(&rest_addr).post("/grpc.health.v1.Health/Check").json(&json!({ "service": SVC })).send().await;
    assert_eq!(rest.json(), json!({"status": "NOT_SERVING"}));
}

/// gRFC A17: a server without the health service is healthy (UNIMPLEMENTED), for good.
#[tokio::test]
async fn watch_helper_takes_unimplemented_as_healthy() {
    let addr = in_background("no-health", |ready| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _ = ready.send(Ok(listener.local_addr().unwrap().to_string()));
        let incoming = switchboard::grpc::transport::server::TcpIncoming::from(listener);
        switchboard::grpc::transport::Server::builder().add_service(PingerServer::new(Impl)).serve_with_incoming(incoming).await.unwrap();
    })
    .unwrap();
    let mut client = grpc_health(&addr).await;
    assert_eq!(check(&mut client, "").await.unwrap_err().code(), Code::Unimplemented);
    let channel = switchboard::grpc::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    let statuses: Vec<_> = tokio::time::timeout(SOON, health::watch(channel, SVC).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(statuses, [ServingStatus::Serving]);
}

/// gRPC's own Python health stub (grpcio-health-checking), as grpc_health_probe-style checks
/// call it: Check, Watch and List, before and after flips.
#[tokio::test]
async fn grpcio_health_stub() {
    let has_stub = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_health.v1.health_pb2_grpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_stub {
        switchboard_test_support::ci::skip_or_fail(
            "python3 with grpcio-health-checking not available (python3 -m pip install grpcio-health-checking)",
        );
        return;
    }
    let server = start(|s| s);
    probe(&server.addr, &["check:=SERVING", &format!("check:{SVC}=SERVING"), "check:nope=NOT_FOUND", &format!("watch:{SVC}=SERVING"),
        "watch:nope=SERVICE_UNKNOWN", "list:=SERVING", &format!("list:{SVC}=SERVING"), "list:grpc.health.v1.Health=ABSENT"])
    .await;
    server.health.set_not_serving(SVC);
    probe(&server.addr, &["check:=SERVING", &format!("check:{SVC}=NOT_SERVING"), &format!("watch:{SVC}=NOT_SERVING"), &format!("list:{SVC}=NOT_SERVING")]).await;
    server.health.shutdown();
    probe(&server.addr, &["check:=NOT_SERVING", &format!("check:{SVC}=NOT_SERVING"), "list:=NOT_SERVING"]).await;
}

/// Runs tests/health_probe.py against `addr` with `checks`; every one must hold.
async fn probe(addr: &str, checks: &[&str]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/health_probe.py");
    let mut command = std::process::Command::new("python3");
    command.arg(&script).arg(addr).args(checks);
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains(", 0 wrong"), "the Python health stub disagreed ({}):\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
}
