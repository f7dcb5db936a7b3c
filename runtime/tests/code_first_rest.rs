//! A hand-written (code-first) trait served over REST: bindings from `#[rpc(http(...))]`, serde
//! types, deadlines from `grpc-timeout`, and the REST client.

use std::time::Duration;

use switchboard::{Code, Request, RequestExt, Response, Status};
use switchboard_test_support::http::Http;

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
    #[prost(uint32, tag = "3")]
    pub sleep_ms: u32,
}

#[switchboard::service(package = "test.kv.v1")]
pub trait Kv {
    /// Reads a key.
    #[rpc(http(get = "/v1/keys/{key}"))]
    async fn get(&self, req: Request<Entry>) -> Result<Response<Entry>, Status>;
    /// Writes a key; the body is the value.
    #[rpc(http(put = "/v1/keys/{key}", body = "value"))]
    async fn put(&self, req: Request<Entry>) -> Result<Response<Entry>, Status>;
    /// Sleeps `sleep_ms`, or until the deadline.
    async fn slow(&self, req: Request<Entry>) -> Result<Response<Entry>, Status>;
}

struct Impl;

impl Kv for Impl {
    async fn get(&self, req: Request<Entry>) -> Result<Response<Entry>, Status> {
        let e = req.into_inner();
        if e.key == "missing" {
            return Err(Status::not_found("no such key"));
        }
        Ok(Response::new(Entry { value: format!("value of {}", e.key), ..e }))
    }
    async fn put(&self, req: Request<Entry>) -> Result<Response<Entry>, Status> {
        Ok(Response::new(req.into_inner()))
    }
    async fn slow(&self, req: Request<Entry>) -> Result<Response<Entry>, Status> {
        let saw_deadline = req.deadline().is_some();
        let ms = req.get_ref().sleep_ms;
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
        Ok(Response::new(Entry { value: format!("deadline seen: {saw_deadline}"), ..req.into_inner() }))
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(KvRestServer::new(Impl).serve(listener));
    format!("http://{addr}")
}

#[tokio::test]
async fn hand_written_bindings_over_rest() {
    let base = serve().await;
    let mut client = KvRestClient::new(&base).unwrap();
    let got = client.get(Entry { key: "a b".into(), ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((got.key.as_str(), got.value.as_str()), ("a b", "value of a b"));
    let put = client.put(Entry { key: "k".into(), value: "v".into(), sleep_ms: 0 }).await.unwrap().into_inner();
    assert_eq!((put.key.as_str(), put.value.as_str()), ("k", "v"));
    let err = client.get(Entry { key: "missing".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "no such key"));
    let err = client.get(Entry::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "an empty path variable is refused before sending");
}

#[tokio::test]
async fn deadlines_reach_the_handler_and_end_slow_calls() {
    let base = serve().await;
    let mut client = KvRestClient::new(&base).unwrap();
    let mut req = Request::new(Entry { sleep_ms: 10, ..Default::default() });
    req.set_timeout(Duration::from_secs(5));
    assert_eq!(client.slow(req).await.unwrap().get_ref().value, "deadline seen: true");

    let mut req = Request::new(Entry { sleep_ms: 5_000, ..Default::default() });
    req.set_timeout(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let err = client.slow(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(3));

    let err = KvRestClient::new(&base)
        .unwrap()
        .timeout(Duration::from_millis(50))
        .slow(Entry { sleep_ms: 5_000, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn unreachable_server_is_unavailable_and_bad_urls_are_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut client = KvRestClient::new(&format!("http://{addr}")).unwrap();
    let err = client.get(Entry { key: "x".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(KvRestClient::new("not a url").is_err());
    assert!(KvRestClient::new("ftp://host").is_err());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_a_json_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = switchboard::rest::RestRouter::new().add(KvRestServer::new(Impl)).max_body_size(1024);
    tokio::spawn(router.serve(listener));
    let put = |body: String| Http::new(addr).put("/v1/keys/k").header("content-type", "application/json").body(body).send();
    let answer = put(format!("\"{}\"", "x".repeat(2000))).await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.header("sb-http-status").is_none(), "the hint is not a response header: {:?}", answer.headers);
    let json = answer.json();
    assert_eq!(json["code"], Code::ResourceExhausted as i32);
    assert_eq!(json["message"], "request body larger than 1024 bytes");
    let answer = put("\"small\"".into()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}
