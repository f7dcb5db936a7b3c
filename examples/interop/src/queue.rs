//! TestService over a message broker (docs/queue-protocol.md): the server side is the generated
//! `TestServiceQueueServer` around the same [`TestServiceImpl`](crate::server::TestServiceImpl)
//! gRPC and REST serve; the client side runs the interop cases a queue can carry (unary and
//! server streaming) through the generated `TestServiceQueueClient`.
//!
//! Client and bidi streaming are not carried over queues by design: the server answers them
//! UNIMPLEMENTED and the client fails them locally with UNIMPLEMENTED (the
//! `client_streaming_unimplemented` case checks that).

use std::time::{Duration, Instant};

use switchboard::metadata::{AsciiMetadataValue, BinaryMetadataValue};
use switchboard::queue::Broker;
use switchboard::{Code, Request, Status};

use crate::server::{TestServiceImpl, ECHO_INITIAL, ECHO_TRAILING_BIN};
use crate::testing::{
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, StreamingInputCallRequest,
    StreamingOutputCallRequest, TestServiceQueueClient, TestServiceQueueServer, UnimplementedServiceQueueClient,
};

/// The cases a queue carries, in the order they run.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "server_streaming",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unserved_service",
    "client_streaming_unimplemented",
    "timeout_on_sleeping_server",
];

/// Deadline of every call except the timeout case.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Outcome = Result<(), String>;

/// Serves TestService on `broker` until its connection is closed: unary and server-streaming
/// methods are answered. (TestService has no event methods: its `Empty` is `grpc.testing.Empty`,
/// not `google.protobuf.Empty`.)
pub async fn serve(broker: &Broker) -> Result<(), Status> {
    TestServiceQueueServer::new(TestServiceImpl).serve(broker).await
}

/// Runs one case through `broker`.
pub async fn run(case: &str, broker: &Broker) -> Outcome {
    let client = TestServiceQueueClient::new(broker).timeout(CALL_TIMEOUT);
    let fut = async {
        match case {
            "empty_unary" => empty_unary(&client).await,
            "large_unary" => large_unary(&client).await,
            "server_streaming" => server_streaming(&client).await,
            "empty_stream" => empty_stream(&client).await,
            "custom_metadata" => custom_metadata(&client).await,
            "status_code_and_message" => status_code_and_message(&client).await,
            "special_status_message" => special_status_message(&client).await,
            "unimplemented_method" => unimplemented_method(&client).await,
            "unserved_service" => unserved_service(broker).await,
            "client_streaming_unimplemented" => client_streaming_unimplemented(&client).await,
            "timeout_on_sleeping_server" => timeout_on_sleeping_server(&client).await,
            other => Err(format!("unknown queue test case {other:?} (known: {})", CASES.join(", "))),
        }
    };
    tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| Err(format!("{case} did not finish in time")))
}

// ---- helpers ------------------------------------------------------------------------------

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(what()) }
}

fn fail(what: &str, status: Status) -> String {
    format!("{what}: {:?}: {}", status.code(), status.message())
}

fn payload(n: usize) -> Option<Payload> {
    Some(Payload { r#type: PayloadType::Compressable as i32, body: vec![0; n] })
}

fn check_payload(p: &Option<Payload>, size: usize) -> Outcome {
    let body = p.as_ref().map_or(&[][..], |p| &p.body[..]);
    ensure(body.len() == size, || format!("payload is {} bytes, want {size}", body.len()))?;
    ensure(body.iter().all(|&b| b == 0), || "payload is not all zero bytes".into())
}

fn check_status(status: &Status, code: Code, message: Option<&str>) -> Outcome {
    ensure(status.code() == code, || format!("got {:?} ({:?}), want {code:?}", status.code(), status.message()))?;
    if let Some(m) = message {
        ensure(status.message() == m, || format!("message {:?}, want {m:?}", status.message()))?;
    }
    Ok(())
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_type: PayloadType::Compressable as i32,
        response_size: 314_159,
        payload: payload(271_828),
        ..Default::default()
    }
}

fn streaming_request(sizes: &[i32], interval_us: i32) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_type: PayloadType::Compressable as i32,
        response_parameters: sizes.iter().map(|&size| ResponseParameters { size, interval_us, ..Default::default() }).collect(),
        ..Default::default()
    }
}

// ---- cases --------------------------------------------------------------------------------

async fn empty_unary(client: &TestServiceQueueClient) -> Outcome {
    let resp = client.empty_call(Empty {}).await.map_err(|s| fail("EmptyCall", s))?;
    ensure(resp.into_inner() == Empty {}, || "response is not Empty".into())
}

async fn large_unary(client: &TestServiceQueueClient) -> Outcome {
    let resp = client.unary_call(large_request()).await.map_err(|s| fail("UnaryCall", s))?;
    check_payload(&resp.into_inner().payload, 314_159)
}

async fn server_streaming(client: &TestServiceQueueClient) -> Outcome {
    let sizes = [31_415, 9, 2_653, 58_979];
    let resp = client.streaming_output_call(streaming_request(&sizes, 0)).await.map_err(|s| fail("StreamingOutputCall", s))?;
    let mut stream = resp.into_inner();
    let mut got = Vec::new();
    while let Some(m) = stream.message().await.map_err(|s| fail("StreamingOutputCall stream", s))? {
        check_payload(&m.payload, sizes.get(got.len()).copied().unwrap_or(0) as usize)?;
        got.push(m.payload.map_or(0, |p| p.body.len() as i32));
    }
    ensure(got == sizes, || format!("response sizes {got:?}, want {sizes:?}"))
}

/// A stream of no messages: the end frame alone (`sb-seq: 0`, `sb-status: 0`).
async fn empty_stream(client: &TestServiceQueueClient) -> Outcome {
    let resp = client.streaming_output_call(streaming_request(&[], 0)).await.map_err(|s| fail("StreamingOutputCall", s))?;
    let first = resp.into_inner().message().await.map_err(|s| fail("StreamingOutputCall stream", s))?;
    ensure(first.is_none(), || "got a message on an empty stream".into())
}

/// The initial-metadata value comes back as a header of the reply (success and error); the
/// binary trailing value comes back with an error status. (A successful reply carries the
/// response metadata only: queues have one header block per reply frame and the handler's
/// trailers are not part of it.)
async fn custom_metadata(client: &TestServiceQueueClient) -> Outcome {
    const INITIAL: &str = "test_initial_metadata_value";
    const TRAILING: &[u8] = b"\x0a\x0b\x0a\x0b\x0a\x0b";
    fn with_metadata<T>(message: T) -> Request<T> {
        let mut req = Request::new(message);
        req.metadata_mut().insert(ECHO_INITIAL, AsciiMetadataValue::from_static(INITIAL));
        req.metadata_mut().insert_bin(ECHO_TRAILING_BIN, BinaryMetadataValue::from_bytes(TRAILING));
        req
    }
    let resp = client.unary_call(with_metadata(large_request())).await.map_err(|s| fail("UnaryCall", s))?;
    let initial = resp.metadata().get(ECHO_INITIAL).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ensure(initial.as_deref() == Some(INITIAL), || format!("UnaryCall: {ECHO_INITIAL} = {initial:?}"))?;
    check_payload(&resp.into_inner().payload, 314_159)?;

    let resp = client
        .streaming_output_call(with_metadata(streaming_request(&[314_159], 0)))
        .await
        .map_err(|s| fail("StreamingOutputCall", s))?;
    let initial = resp.metadata().get(ECHO_INITIAL).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ensure(initial.as_deref() == Some(INITIAL), || format!("StreamingOutputCall: {ECHO_INITIAL} = {initial:?}"))?;
    let mut stream = resp.into_inner();
    let mut n = 0;
    while let Some(m) = stream.message().await.map_err(|s| fail("StreamingOutputCall stream", s))? {
        check_payload(&m.payload, 314_159)?;
        n += 1;
    }
    ensure(n == 1, || format!("StreamingOutputCall: {n} responses, want 1"))?;

    let failing = SimpleRequest { response_status: Some(EchoStatus { code: 2, message: "echo".into() }), ..Default::default() };
    let status = client.unary_call(with_metadata(failing)).await.err().ok_or("UnaryCall with a status succeeded")?;
    check_status(&status, Code::Unknown, Some("echo"))?;
    let initial = status.metadata().get(ECHO_INITIAL).and_then(|v| v.to_str().ok());
    ensure(initial == Some(INITIAL), || format!("error: {ECHO_INITIAL} = {initial:?}"))?;
    let trailing = status.metadata().get_bin(ECHO_TRAILING_BIN).and_then(|v| v.to_bytes().ok());
    ensure(trailing.as_deref() == Some(TRAILING), || format!("error: {ECHO_TRAILING_BIN} = {trailing:?}"))
}

async fn status_code_and_message(client: &TestServiceQueueClient) -> Outcome {
    const MSG: &str = "test status message";
    let status = || Some(EchoStatus { code: 2, message: MSG.into() });
    let req = SimpleRequest { response_status: status(), ..Default::default() };
    let err = client.unary_call(req).await.err().ok_or("UnaryCall succeeded; expected Unknown")?;
    check_status(&err, Code::Unknown, Some(MSG)).map_err(|e| format!("UnaryCall: {e}"))?;
    let req = StreamingOutputCallRequest { response_status: status(), ..streaming_request(&[1], 0) };
    let err = match client.streaming_output_call(req).await {
        Err(status) => status,
        Ok(resp) => {
            let mut stream = resp.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return Err("StreamingOutputCall succeeded; expected Unknown".into()),
                    Err(status) => break status,
                }
            }
        }
    };
    check_status(&err, Code::Unknown, Some(MSG)).map_err(|e| format!("StreamingOutputCall: {e}"))
}

async fn special_status_message(client: &TestServiceQueueClient) -> Outcome {
    const MSG: &str = "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1F608}\t\n";
    let req = SimpleRequest { response_status: Some(EchoStatus { code: 2, message: MSG.into() }), ..Default::default() };
    let err = client.unary_call(req).await.err().ok_or("UnaryCall succeeded; expected Unknown")?;
    check_status(&err, Code::Unknown, Some(MSG))
}

async fn unimplemented_method(client: &TestServiceQueueClient) -> Outcome {
    let err = client.unimplemented_call(Empty {}).await.err().ok_or("UnimplementedCall succeeded")?;
    check_status(&err, Code::Unimplemented, None)
}

/// `grpc.testing.UnimplementedService` is served by nobody: over a queue that is UNAVAILABLE,
/// at once (RabbitMQ returns the mandatory publish, NATS reports no responders), not a wait for
/// the deadline.
async fn unserved_service(broker: &Broker) -> Outcome {
    let client = UnimplementedServiceQueueClient::new(broker).timeout(CALL_TIMEOUT);
    let started = Instant::now();
    let err = client.unimplemented_call(Empty {}).await.err().ok_or("a call to an unserved service succeeded")?;
    check_status(&err, Code::Unavailable, None)?;
    let took = started.elapsed();
    ensure(took < Duration::from_secs(5), || format!("UNAVAILABLE took {took:?}: should be at once"))
}

async fn client_streaming_unimplemented(client: &TestServiceQueueClient) -> Outcome {
    let reqs = futures_util::stream::iter([StreamingInputCallRequest { payload: payload(8), ..Default::default() }]);
    let err = client.streaming_input_call(reqs).await.err().ok_or("StreamingInputCall succeeded over a queue")?;
    check_status(&err, Code::Unimplemented, None)?;
    let reqs = futures_util::stream::iter([streaming_request(&[1], 0)]);
    let err = client.full_duplex_call(reqs).await.err().ok_or("FullDuplexCall succeeded over a queue")?;
    check_status(&err, Code::Unimplemented, None)
}

/// A server-streaming call whose one response comes after 2 s, with a 200 ms deadline: the
/// caller gets DEADLINE_EXCEEDED at its deadline, not after the server's 2 s.
async fn timeout_on_sleeping_server(client: &TestServiceQueueClient) -> Outcome {
    let mut req = Request::new(streaming_request(&[1], 2_000_000));
    req.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let result = async {
        let mut stream = client.streaming_output_call(req).await?.into_inner();
        while stream.message().await?.is_some() {}
        Ok::<_, Status>(())
    }
    .await;
    let took = started.elapsed();
    let err = result.err().ok_or("call succeeded; expected DeadlineExceeded")?;
    check_status(&err, Code::DeadlineExceeded, None)?;
    ensure(took < Duration::from_millis(1_500), || format!("DEADLINE_EXCEEDED after {took:?}; the deadline was 200ms"))
}
