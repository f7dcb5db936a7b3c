//! TestService over REST: the exchanges the interop README promises, checked with the generated
//! REST client, raw HTTP and (when python3 is installed) Python's standard-library HTTP client.

use interop::testing::{EchoStatus, SimpleRequest, StreamingOutputCallRequest, ResponseParameters, TestServiceRestClient};
use switchboard::Code;

async fn serve_rest() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(interop::server::serve_rest(listener));
    format!("http://{addr}")
}

#[tokio::test]
async fn rest_client_gets_payloads_statuses_and_streams() {
    let base = serve_rest().await;
    let mut client = TestServiceRestClient::new(&base).unwrap();
    let resp = client.unary_call(SimpleRequest { response_size: 5, ..Default::default() }).await.unwrap();
    assert_eq!(resp.into_inner().payload.unwrap().body, vec![0; 5]);

    let status = EchoStatus { code: 5, message: "gone".into() };
    let err = client.unary_call(SimpleRequest { response_status: Some(status), ..Default::default() }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "gone"));

    let req = StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters { size: 3, ..Default::default() }, ResponseParameters { size: 1, ..Default::default() }],
        ..Default::default()
    };
    let mut stream = client.streaming_output_call(req).await.unwrap().into_inner();
    let mut sizes = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        sizes.push(m.payload.unwrap().body.len());
    }
    assert_eq!(sizes, [3, 1]);

    let err = client.unimplemented_call(interop::testing::Empty {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[tokio::test]
async fn python_standard_library_client() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rest_check.py");
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        switchboard_test_support::ci::skip_or_fail("python3 not found");
        return;
    }
    let base = serve_rest().await;
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("python3").arg(&script).arg(&base).output())
        .await
        .unwrap()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python REST checks failed:\n{text}");
    assert!(text.contains("0 failed"));
}
