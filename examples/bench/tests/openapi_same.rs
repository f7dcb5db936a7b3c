//! Run: `cargo test -p bench --test openapi_same`
//!
//! The two servers of the OpenAPI benchmark do the same work: for valid ids they answer the same
//! bytes (status, content type, body), and both refuse what the document refuses (`petId` below
//! 1, not an integer, past int64) with a `400`.

use std::net::SocketAddr;

use bytes::Bytes;
use switchboard_test_support::http::Http;

async fn spawn<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    addr
}

/// `GET path` on a fresh HTTP/1.1 connection: (status, content type, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String, Bytes) {
    let answer = Http::new(addr).get(path).send().await;
    let content_type = answer.header("content-type").unwrap_or_default().to_owned();
    (answer.status, content_type, answer.body)
}

#[tokio::test]
async fn generated_and_baseline_answer_alike() {
    let generated = spawn(bench::pets::generated::serve).await;
    let baseline = spawn(bench::pets::baseline::serve).await;

    for id in [1_i64, 7, 100, 123_456, i64::MAX] {
        let path = format!("{}/{id}", bench::PETS_PATH);
        let ours = get(generated, &path).await;
        let theirs = get(baseline, &path).await;
        assert_eq!(ours.0, 200, "{path}: {ours:?}");
        assert_eq!(ours.1, "application/json");
        assert_eq!(ours, theirs, "{path}");
        let pet: serde_json::Value = serde_json::from_slice(&ours.2).unwrap();
        assert_eq!(pet["id"], id);
        assert_eq!(pet["name"], bench::pets::NAME);
    }
    assert_eq!(
        get(generated, "/v1/pets/7").await.2,
        r#"{"name":"Rex","status":"available","category":{"id":2,"name":"dogs"},"tags":["dog","good-boy"],"weight_kg":12.5,"id":7,"created_at":"2023-11-14T22:13:20Z"}"#
    );

    for bad in ["0", "-3", "abc", "1.5", "9223372036854775808"] {
        let path = format!("{}/{bad}", bench::PETS_PATH);
        assert_eq!(get(generated, &path).await.0, 400, "generated {path}");
        assert_eq!(get(baseline, &path).await.0, 400, "baseline {path}");
    }
}
