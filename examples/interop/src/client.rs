//! The interop client: the standard cases of grpc's interop-test-descriptions.md, run through
//! the generated `TestServiceClient` / `UnimplementedServiceClient`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use switchboard::grpc::transport::{Channel, Endpoint};
use switchboard::metadata::{AsciiMetadataValue, BinaryMetadataValue};
use switchboard::{Code, Request, Response, Status, Streaming};

use crate::server::{ECHO_INITIAL, ECHO_TRAILING_BIN};
use crate::testing::{
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, StreamingInputCallRequest,
    StreamingOutputCallRequest, TestServiceClient, UnimplementedServiceClient,
};
use crate::trailers::RecordMetadata;

/// Every case, in the order they run.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
];

/// Deadline on every call except the timeout case (as grpc's clients use): a broken server
/// fails a case instead of hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Outcome = Result<(), String>;

/// Runs one case against the server at `addr` (`host:port` or a URI).
pub async fn run(case: &str, addr: &str) -> Outcome {
    let uri = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
    let endpoint = Endpoint::from_shared(uri.clone()).map_err(|e| format!("bad address {uri}: {e}"))?;
    let channel = endpoint.connect().await.map_err(|e| format!("connecting to {uri}: {e}"))?;
    let client = TestServiceClient::new(channel.clone());
    // The whole case is bounded too (streams are not covered by a call's deadline client-side).
    let case_fut = async {
        match case {
            "empty_unary" => empty_unary(client).await,
            "large_unary" => large_unary(client).await,
            "client_streaming" => client_streaming(client).await,
            "server_streaming" => server_streaming(client).await,
            "ping_pong" => ping_pong(client).await,
            "empty_stream" => empty_stream(client).await,
            "custom_metadata" => custom_metadata(channel).await,
            "status_code_and_message" => status_code_and_message(client).await,
            "special_status_message" => special_status_message(client).await,
            "unimplemented_method" => unimplemented_method(client).await,
            "unimplemented_service" => unimplemented_service(channel).await,
            "cancel_after_begin" => cancel_after_begin(client).await,
            "cancel_after_first_response" => cancel_after_first_response(client).await,
            "timeout_on_sleeping_server" => timeout_on_sleeping_server(client).await,
            other => Err(format!("unknown test case {other:?}")),
        }
    };
    tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(5), case_fut)
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

fn with_timeout<T>(message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.set_timeout(CALL_TIMEOUT);
    req
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_type: PayloadType::Compressable as i32,
        response_size: 314_159,
        payload: payload(271_828),
        ..Default::default()
    }
}

fn streaming_request(response_sizes: &[i32], payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_type: PayloadType::Compressable as i32,
        response_parameters: response_sizes.iter().map(|&size| ResponseParameters { size, ..Default::default() }).collect(),
        payload: if payload_size > 0 { payload(payload_size) } else { None },
        ..Default::default()
    }
}

/// Checks a response payload: `size` zero bytes.
fn check_payload(p: &Option<Payload>, size: usize) -> Outcome {
    let body = p.as_ref().map_or(&[][..], |p| &p.body[..]);
    ensure(body.len() == size, || format!("payload is {} bytes, want {size}", body.len()))?;
    ensure(body.iter().all(|&b| b == 0), || "payload is not all zero bytes".into())
}

/// A request stream fed from a channel: it stays open (pending) until the sender is dropped.
pub struct Feed<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> Feed<T> {
    /// A sender and the stream it feeds.
    pub fn channel(buffer: usize) -> (tokio::sync::mpsc::Sender<T>, Self) {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer);
        (tx, Feed(rx))
    }
}

impl<T> Stream for Feed<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// The next message of a response stream; `Err` on a stream error.
async fn next_message<T>(stream: &mut Streaming<T>, what: &str) -> Result<Option<T>, String> {
    stream.message().await.map_err(|s| fail(what, s))
}

/// Runs `call` and expects it to fail with `code` (and `message`, if given), at the call or
/// while draining the response stream.
async fn expect_status<T, F>(call: F, code: Code, message: Option<&str>) -> Outcome
where
    F: Future<Output = Result<Response<Streaming<T>>, Status>>,
{
    let status = match call.await {
        Err(status) => status,
        Ok(resp) => {
            let mut stream = resp.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return Err(format!("call succeeded; expected {code:?}")),
                    Err(status) => break status,
                }
            }
        }
    };
    check_status(&status, code, message)
}

fn check_status(status: &Status, code: Code, message: Option<&str>) -> Outcome {
    ensure(status.code() == code, || format!("got {:?} ({:?}), want {code:?}", status.code(), status.message()))?;
    if let Some(m) = message {
        ensure(status.message() == m, || format!("message {:?}, want {m:?}", status.message()))?;
    }
    Ok(())
}

/// Wraps a unary result as a one-message stream so [`expect_status`] handles both shapes.
async fn as_stream<T: Send + 'static>(
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<Response<Streaming<T>>, Status> {
    call.await.map(|r| r.map(|m| Streaming::iter([m])))
}

// ---- cases --------------------------------------------------------------------------------

async fn empty_unary(mut client: TestServiceClient) -> Outcome {
    let resp = client.empty_call(with_timeout(Empty {})).await.map_err(|s| fail("EmptyCall", s))?;
    ensure(resp.into_inner() == Empty {}, || "response is not Empty".into())
}

async fn large_unary(mut client: TestServiceClient) -> Outcome {
    let resp = client.unary_call(with_timeout(large_request())).await.map_err(|s| fail("UnaryCall", s))?;
    check_payload(&resp.into_inner().payload, 314_159)
}

async fn client_streaming(mut client: TestServiceClient) -> Outcome {
    let reqs: Vec<_> = [27_182, 8, 1_828, 45_904]
        .into_iter()
        .map(|n| StreamingInputCallRequest { payload: payload(n), ..Default::default() })
        .collect();
    let resp = client
        .streaming_input_call(with_timeout(futures_util::stream::iter(reqs)))
        .await
        .map_err(|s| fail("StreamingInputCall", s))?;
    let got = resp.into_inner().aggregated_payload_size;
    ensure(got == 74_922, || format!("aggregated_payload_size {got}, want 74922"))
}

async fn server_streaming(mut client: TestServiceClient) -> Outcome {
    let sizes = [31_415, 9, 2_653, 58_979];
    let resp = client
        .streaming_output_call(with_timeout(streaming_request(&sizes, 0)))
        .await
        .map_err(|s| fail("StreamingOutputCall", s))?;
    let mut stream = resp.into_inner();
    let mut got = Vec::new();
    while let Some(m) = next_message(&mut stream, "StreamingOutputCall stream").await? {
        check_payload(&m.payload, sizes.get(got.len()).copied().unwrap_or(0) as usize)?;
        got.push(m.payload.map_or(0, |p| p.body.len() as i32));
    }
    ensure(got == sizes, || format!("response sizes {got:?}, want {sizes:?}"))
}

async fn ping_pong(mut client: TestServiceClient) -> Outcome {
    let (tx, feed) = Feed::channel(1);
    let resp = client.full_duplex_call(with_timeout(feed)).await.map_err(|s| fail("FullDuplexCall", s))?;
    let mut stream = resp.into_inner();
    for (resp_size, req_size) in [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)] {
        tx.send(streaming_request(&[resp_size], req_size)).await.map_err(|_| "request stream closed early")?;
        let m = next_message(&mut stream, "FullDuplexCall stream")
            .await?
            .ok_or_else(|| format!("stream ended before the response of size {resp_size}"))?;
        check_payload(&m.payload, resp_size as usize)?;
    }
    drop(tx);
    let extra = next_message(&mut stream, "FullDuplexCall stream end").await?;
    ensure(extra.is_none(), || "unexpected response after the requests ended".into())
}

async fn empty_stream(mut client: TestServiceClient) -> Outcome {
    let resp = client
        .full_duplex_call(with_timeout(futures_util::stream::empty::<StreamingOutputCallRequest>()))
        .await
        .map_err(|s| fail("FullDuplexCall", s))?;
    let first = next_message(&mut resp.into_inner(), "FullDuplexCall stream").await?;
    ensure(first.is_none(), || "got a response on an empty stream".into())
}

/// Initial metadata must come back in the response headers and the binary trailing value in
/// the trailers, for UnaryCall and FullDuplexCall. The channel is wrapped in [`RecordMetadata`]
/// to tell headers from trailers (switchboard merges them for unary calls and does not expose
/// trailers of streams).
async fn custom_metadata(channel: Channel) -> Outcome {
    const INITIAL: &str = "test_initial_metadata_value";
    const TRAILING: &[u8] = b"\x0a\x0b\x0a\x0b\x0a\x0b";
    let recorder = RecordMetadata::new(channel);
    let mut client = TestServiceClient::new(recorder.clone());
    fn with_metadata<T>(mut req: Request<T>) -> Request<T> {
        req.metadata_mut().insert(ECHO_INITIAL, AsciiMetadataValue::from_static(INITIAL));
        req.metadata_mut().insert_bin(ECHO_TRAILING_BIN, BinaryMetadataValue::from_bytes(TRAILING));
        req
    }
    let check = |call: &str| -> Outcome {
        let seen = recorder.recorded();
        let initial = seen.headers.get(ECHO_INITIAL).and_then(|v| v.to_str().ok());
        ensure(initial == Some(INITIAL), || format!("{call}: initial metadata {ECHO_INITIAL} = {initial:?}"))?;
        let trailers = seen.trailers.ok_or_else(|| format!("{call}: response had no trailers"))?;
        let trailing = trailers.get_bin(ECHO_TRAILING_BIN).and_then(|v| v.to_bytes().ok());
        ensure(trailing.as_deref() == Some(TRAILING), || {
            format!("{call}: trailing metadata {ECHO_TRAILING_BIN} = {trailing:?}")
        })
    };

    let resp = client
        .unary_call(with_metadata(with_timeout(large_request())))
        .await
        .map_err(|s| fail("UnaryCall", s))?;
    ensure(resp.metadata().get(ECHO_INITIAL).is_some_and(|v| v == INITIAL), || {
        "UnaryCall: initial metadata missing from the response".into()
    })?;
    check_payload(&resp.into_inner().payload, 314_159)?;
    check("UnaryCall")?;

    let reqs = futures_util::stream::iter([streaming_request(&[314_159], 271_828)]);
    let resp = client
        .full_duplex_call(with_metadata(with_timeout(reqs)))
        .await
        .map_err(|s| fail("FullDuplexCall", s))?;
    ensure(resp.metadata().get(ECHO_INITIAL).is_some_and(|v| v == INITIAL), || {
        "FullDuplexCall: initial metadata missing from the response".into()
    })?;
    let mut stream = resp.into_inner();
    let mut n = 0;
    while let Some(m) = next_message(&mut stream, "FullDuplexCall stream").await? {
        check_payload(&m.payload, 314_159)?;
        n += 1;
    }
    ensure(n == 1, || format!("FullDuplexCall: {n} responses, want 1"))?;
    check("FullDuplexCall")
}

async fn status_code_and_message(mut client: TestServiceClient) -> Outcome {
    const MSG: &str = "test status message";
    let status = || Some(EchoStatus { code: 2, message: MSG.into() });
    let req = SimpleRequest { response_status: status(), ..Default::default() };
    expect_status(as_stream(client.unary_call(with_timeout(req))), Code::Unknown, Some(MSG))
        .await
        .map_err(|e| format!("UnaryCall: {e}"))?;
    let req = StreamingOutputCallRequest { response_status: status(), ..Default::default() };
    let reqs = futures_util::stream::iter([req]);
    expect_status(client.full_duplex_call(with_timeout(reqs)), Code::Unknown, Some(MSG))
        .await
        .map_err(|e| format!("FullDuplexCall: {e}"))
}

async fn special_status_message(mut client: TestServiceClient) -> Outcome {
    const MSG: &str = "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1F608}\t\n";
    let req = SimpleRequest { response_status: Some(EchoStatus { code: 2, message: MSG.into() }), ..Default::default() };
    expect_status(as_stream(client.unary_call(with_timeout(req))), Code::Unknown, Some(MSG)).await
}

async fn unimplemented_method(mut client: TestServiceClient) -> Outcome {
    expect_status(as_stream(client.unimplemented_call(with_timeout(Empty {}))), Code::Unimplemented, None).await
}

async fn unimplemented_service(channel: Channel) -> Outcome {
    let mut client = UnimplementedServiceClient::new(channel);
    expect_status(as_stream(client.unimplemented_call(with_timeout(Empty {}))), Code::Unimplemented, None).await
}

/// A request stream that reports when the transport first pulls from it (the call has begun:
/// headers are out) and when it is dropped (the transport let go of the call).
struct Tracked<S> {
    inner: S,
    polled: Option<tokio::sync::oneshot::Sender<()>>,
    _dropped: tokio::sync::oneshot::Sender<()>,
}

/// Receivers for [`Tracked`]'s two signals.
struct Signals {
    polled: tokio::sync::oneshot::Receiver<()>,
    dropped: tokio::sync::oneshot::Receiver<()>,
}

impl<S> Tracked<S> {
    fn new(inner: S) -> (Self, Signals) {
        let (polled_tx, polled) = tokio::sync::oneshot::channel();
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel();
        (Tracked { inner, polled: Some(polled_tx), _dropped: dropped_tx }, Signals { polled, dropped })
    }
}

impl<S: Stream + Unpin> Stream for Tracked<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if let Some(tx) = self.polled.take() {
            let _ = tx.send(());
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Waits for a [`Tracked`] signal; `Err(what)` after [`TEARDOWN`]. A signal whose sender went
/// away without sending counts as given (the stream was dropped).
async fn signalled(rx: &mut tokio::sync::oneshot::Receiver<()>, what: &str) -> Outcome {
    tokio::time::timeout(TEARDOWN, rx).await.map(drop).map_err(|_| what.to_owned())
}

/// How long a cancelled call may take to let go of its request stream.
const TEARDOWN: Duration = Duration::from_secs(5);

/// Starts StreamingInputCall with a request stream that never yields, cancels it once the call
/// has begun (headers sent, request body being pulled), and asserts the call ended CANCELLED:
/// it had not completed by then (a response or another status fails the case), the
/// cancellation is what ended it, and the transport let go of the request stream (hyper resets
/// the HTTP/2 stream with CANCEL when a call is dropped before its response headers). The
/// channel must still work afterwards.
async fn cancel_after_begin(mut client: TestServiceClient) -> Outcome {
    let (probe, mut signals) = Tracked::new(futures_util::stream::pending::<StreamingInputCallRequest>());
    let mut call_client = client.clone();
    let call = tokio::spawn(async move { call_client.streaming_input_call(with_timeout(probe)).await });
    signalled(&mut signals.polled, "the call never started sending").await?;
    // Cancel: a switchboard (tonic) client cancels a call by dropping it.
    call.abort();
    let status = match call.await {
        Err(e) if e.is_cancelled() => Status::cancelled("cancelled by the client"),
        Err(e) => return Err(format!("call task failed: {e}")),
        Ok(Ok(resp)) => return Err(format!("call succeeded before it was cancelled: {:?}", resp.into_inner())),
        Ok(Err(status)) => status,
    };
    check_status(&status, Code::Cancelled, None)?;
    signalled(&mut signals.dropped, "request stream still held after cancel").await?;
    client.empty_call(with_timeout(Empty {})).await.map_err(|s| fail("EmptyCall after cancel", s))?;
    Ok(())
}

/// FullDuplexCall: one request, one response (checked), then cancel. After response headers a
/// switchboard (tonic/hyper) call is cancelled by dropping both halves: the response stream and
/// the request stream's sender; h2 then resets the stream (CANCEL), since the server has not
/// finished. Asserts the transport let go of the request stream and the channel still works.
async fn cancel_after_first_response(mut client: TestServiceClient) -> Outcome {
    let (tx, feed) = Feed::channel(1);
    let (feed, mut signals) = Tracked::new(feed);
    let resp = client.full_duplex_call(with_timeout(feed)).await.map_err(|s| fail("FullDuplexCall", s))?;
    let mut stream = resp.into_inner();
    tx.send(streaming_request(&[31_415], 27_182)).await.map_err(|_| "request stream closed early")?;
    let m = next_message(&mut stream, "FullDuplexCall stream").await?.ok_or("stream ended before the first response")?;
    check_payload(&m.payload, 31_415)?;
    drop(stream);
    drop(tx);
    signalled(&mut signals.dropped, "request stream still held after cancel").await?;
    client.empty_call(with_timeout(Empty {})).await.map_err(|s| fail("EmptyCall after cancel", s))?;
    Ok(())
}

/// FullDuplexCall with a 1 ms deadline: one request, then the stream stays open; the call must
/// end DEADLINE_EXCEEDED. tonic bounds only the wait for response headers by the deadline, so
/// the client applies it to the rest of the call itself.
async fn timeout_on_sleeping_server(mut client: TestServiceClient) -> Outcome {
    let deadline = Duration::from_millis(1);
    let until = tokio::time::Instant::now() + deadline;
    let (tx, feed) = Feed::channel(1);
    tx.send(streaming_request(&[], 27_182)).await.map_err(|_| "request stream closed early")?;
    let mut req = Request::new(feed);
    req.set_timeout(deadline);
    let call = async {
        let mut stream = client.full_duplex_call(req).await?.into_inner();
        while stream.message().await?.is_some() {}
        Ok::<_, Status>(())
    };
    let status = match tokio::time::timeout_at(until, call).await {
        Err(_) => Status::deadline_exceeded("deadline exceeded (client-side)"),
        Ok(Err(status)) => status,
        Ok(Ok(())) => return Err("call succeeded; expected DeadlineExceeded".into()),
    };
    drop(tx);
    check_status(&status, Code::DeadlineExceeded, None)
}
