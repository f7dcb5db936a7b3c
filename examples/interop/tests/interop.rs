//! The interop server in-process on loopback: every standard case through the Rust client, a
//! few server behaviours the cases do not reach, and (when grpcio is installed) grpc's reference
//! Python client.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use interop::client::{self, CASES};
use interop::testing::{
    BoolValue, EchoStatus, Payload, ResponseParameters, SimpleRequest, StreamingOutputCallRequest,
    TestServiceClient,
};
use switchboard::{Code, CompressionEncoding, Request};

/// Starts the server on 127.0.0.1:0 and returns its address.
async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(interop::server::serve(listener));
    addr.to_string()
}

async fn connect(addr: &str) -> TestServiceClient {
    TestServiceClient::connect(format!("http://{addr}")).await.unwrap()
}

macro_rules! cases {
    ($($case:ident)*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let addr = start().await;
                if let Err(reason) = client::run(stringify!($case), &addr).await {
                    panic!("{}: {reason}", stringify!($case));
                }
            }
        )*

        #[test]
        fn every_case_has_a_test() {
            assert_eq!(CASES, [$(stringify!($case)),*]);
        }
    };
}

cases! {
    empty_unary large_unary client_streaming server_streaming ping_pong empty_stream
    custom_metadata status_code_and_message special_status_message unimplemented_method
    unimplemented_service cancel_after_begin cancel_after_first_response timeout_on_sleeping_server
}

#[tokio::test]
async fn unknown_case_fails() {
    let addr = start().await;
    assert!(client::run("no_such_case", &addr).await.is_err());
}

fn stream_req(sizes: &[i32], interval_us: i32) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes.iter().map(|&size| ResponseParameters { size, interval_us, ..Default::default() }).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn half_duplex_answers_after_the_requests_end() {
    let mut client = connect(&start().await).await;
    let reqs = futures_util::stream::iter([stream_req(&[3, 5], 0), stream_req(&[7], 0)]);
    let mut out = client.half_duplex_call(reqs).await.unwrap().into_inner();
    let mut sizes = Vec::new();
    while let Some(m) = out.message().await.unwrap() {
        sizes.push(m.payload.unwrap().body.len());
    }
    assert_eq!(sizes, [3, 5, 7]);
}

#[tokio::test]
async fn streaming_output_honours_intervals_and_status() {
    let mut client = connect(&start().await).await;
    let started = Instant::now();
    let mut out = client.streaming_output_call(stream_req(&[1, 2, 3], 50_000)).await.unwrap().into_inner();
    let mut n = 0;
    while out.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());

    let req = StreamingOutputCallRequest {
        response_status: Some(EchoStatus { code: Code::Aborted as i32, message: "nope".into() }),
        ..stream_req(&[1], 0)
    };
    let err = match client.streaming_output_call(req).await {
        Err(s) => s,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!((err.code(), err.message()), (Code::Aborted, "nope"));
}

#[tokio::test]
async fn cacheable_unary_and_gzip_both_ways() {
    let mut client = connect(&start().await)
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let req = SimpleRequest {
        response_size: 100_000,
        payload: Some(Payload { body: vec![0; 100_000], ..Default::default() }),
        expect_compressed: Some(BoolValue { value: true }),
        ..Default::default()
    };
    let resp = client.cacheable_unary_call(req.clone()).await.unwrap();
    assert!(resp.metadata().get("cache-control").is_some());
    assert_eq!(resp.into_inner().payload.unwrap().body.len(), 100_000);

    // Expecting compression on an uncompressed call is rejected.
    let mut plain = connect(&start().await).await;
    let err = plain.unary_call(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

/// The server itself ends a stream at the call's deadline, even after the response headers
/// went out (the client here does not enforce its deadline on the stream).
#[tokio::test]
async fn server_ends_streaming_call_at_its_deadline() {
    let mut client = connect(&start().await).await;
    let (_tx, rx) = tokio::sync::mpsc::channel::<StreamingOutputCallRequest>(1);
    let input = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut req = Request::new(input);
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let mut out = client.full_duplex_call(req).await?.into_inner();
        while out.message().await?.is_some() {}
        Ok::<_, switchboard::Status>(())
    })
    .await
    .expect("the server never ended the call");
    let err = outcome.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
}

/// grpc's reference Python client (grpcio) against this server, if it is available here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_python_client() {
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/grpc_interop_client.py");
    if !tool.exists() {
        // ../shared is not part of the repository (absent on a fresh clone): optional, even in CI.
        switchboard_test_support::ci::print_skip(format_args!("{} not found (the reference client lives outside the repository)", tool.display()));
        return;
    }
    let has_grpcio = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_grpcio {
        switchboard_test_support::ci::skip_or_fail("python3 with grpcio and grpcio-tools not available (pip install grpcio grpcio-tools)");
        return;
    }
    let addr = start().await;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").arg(&tool).arg(&addr).output().expect("run python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("14 passed, 0 failed"),
        "reference client failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
