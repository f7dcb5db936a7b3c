//! The interop server: `grpc.testing.TestService` as grpc's interop-test-descriptions.md
//! describes it (server side). `UnimplementedService` is deliberately not served.

use std::future::Future;

use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::Server;
use switchboard::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataMap};
use switchboard::{
    Code, CompressionEncoding, Deadline, Request, RequestExt, Response, Status, StreamSender, Streaming,
};
use tokio::net::TcpListener;

use crate::testing::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse, TestService, TestServiceRestServer, TestServiceServer,
};

/// Header echoed back in the initial metadata.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Binary header echoed back in the trailing metadata.
pub const ECHO_TRAILING_BIN: &str = "x-grpc-test-echo-trailing-bin";

/// The interop `TestService`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestServiceImpl;

/// The server as it is served: gzip accepted, and used for responses when the client accepts it.
pub fn service() -> TestServiceServer<TestServiceImpl> {
    TestServiceServer::new(TestServiceImpl)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
}

/// Serves `TestService` (only) on `listener` until the listener fails.
pub async fn serve(listener: TcpListener) -> Result<(), switchboard::grpc::transport::Error> {
    Server::builder()
        .add_service(service())
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
}

/// Serves `TestService` over REST on `listener`: proto3 JSON at the default bindings,
/// `POST /grpc.testing.TestService/<Method>` (server streaming answers NDJSON or SSE).
pub async fn serve_rest(listener: TcpListener) -> std::io::Result<()> {
    TestServiceRestServer::new(TestServiceImpl).serve(listener).await
}

/// The metadata the client asked to have echoed.
#[derive(Debug, Clone, Default)]
struct Echo {
    initial: Option<AsciiMetadataValue>,
    trailing: Option<BinaryMetadataValue>,
}

impl Echo {
    fn of(md: &MetadataMap) -> Self {
        Echo { initial: md.get(ECHO_INITIAL).cloned(), trailing: md.get_bin(ECHO_TRAILING_BIN).cloned() }
    }

    /// A successful response: the initial value in its headers, the trailing one in its trailers.
    fn respond<T>(&self, message: T) -> Response<T> {
        let mut resp = Response::new(message);
        if let Some(v) = &self.initial {
            resp.metadata_mut().insert(ECHO_INITIAL, v.clone());
        }
        if let Some(v) = &self.trailing {
            let mut trailers = MetadataMap::new();
            trailers.insert_bin(ECHO_TRAILING_BIN, v.clone());
            resp.extensions_mut().insert(switchboard::Trailers(trailers));
        }
        resp
    }

    /// A call that fails before its response starts (a trailers-only response): both values go
    /// with the status.
    fn fail(&self, mut status: Status) -> Status {
        if let Some(v) = &self.initial {
            status.metadata_mut().insert(ECHO_INITIAL, v.clone());
        }
        if let Some(v) = &self.trailing {
            status.metadata_mut().insert_bin(ECHO_TRAILING_BIN, v.clone());
        }
        status
    }
}

/// The status a request asks for, if any (`code == 0` means none).
fn requested_status(status: &Option<EchoStatus>) -> Option<Status> {
    status.as_ref().filter(|s| s.code != 0).map(|s| Status::new(Code::from_i32(s.code), s.message.clone()))
}

/// A payload of `size` zero bytes.
fn payload(size: i32) -> Result<Payload, Status> {
    let len = usize::try_from(size).map_err(|_| Status::invalid_argument(format!("negative payload size {size}")))?;
    Ok(Payload { r#type: PayloadType::Compressable as i32, body: vec![0; len] })
}

/// `expect_compressed`: the server cannot see the per-message compressed flag (tonic decodes it
/// away), so it checks the call's `grpc-encoding` instead: a request that expects compression on
/// a call that declares none is rejected with `INVALID_ARGUMENT`.
fn check_compressed(md: &MetadataMap, expect: Option<BoolValue>) -> Result<(), Status> {
    if expect.is_some_and(|b| b.value) {
        let encoding = md.get("grpc-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity");
        if encoding == "identity" {
            return Err(Status::invalid_argument("expected a compressed request, got an uncompressed one"));
        }
    }
    Ok(())
}

fn unary(req: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
    let echo = Echo::of(req.metadata());
    check_compressed(req.metadata(), req.get_ref().expect_compressed).map_err(|s| echo.fail(s))?;
    let r = req.into_inner();
    if let Some(status) = requested_status(&r.response_status) {
        return Err(echo.fail(status));
    }
    let body = payload(r.response_size).map_err(|s| echo.fail(s))?;
    let mut resp = echo.respond(SimpleResponse { payload: Some(body), ..Default::default() });
    if r.response_compressed.is_some_and(|b| !b.value) {
        resp.disable_compression();
    }
    Ok(resp)
}

/// Sends one response per parameter set, each after its `interval_us`. `Ok(false)` if the
/// caller went away.
async fn send_responses(
    tx: &StreamSender<StreamingOutputCallResponse>,
    params: &[ResponseParameters],
) -> Result<bool, Status> {
    for p in params {
        if p.interval_us > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(p.interval_us as u64)).await;
        }
        let msg = StreamingOutputCallResponse { payload: Some(payload(p.size)?) };
        if tx.send(Ok(msg)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A response stream fed by `produce`, which runs in its own task until it finishes, fails (its
/// status ends the stream), the call's deadline passes (`DEADLINE_EXCEEDED`; the runtime only
/// bounds a call until its response headers), or the caller goes away.
fn spawn_stream<T, F, Fut>(req_deadline: Option<Deadline>, cancel: switchboard::Cancellation, produce: F) -> Streaming<T>
where
    T: Send + 'static,
    F: FnOnce(StreamSender<T>) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let (tx, out) = Streaming::channel(1);
    let work = produce(tx.clone());
    tokio::spawn(async move {
        let deadline = async {
            match req_deadline {
                Some(d) => tokio::time::sleep_until(d.0.into()).await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = work => r,
            () = deadline => Err(Status::deadline_exceeded("deadline exceeded")),
            () = cancel.cancelled() => return,
            () = tx.closed() => return,
        };
        if let Err(status) = result {
            let _ = tx.send(Err(status)).await;
        }
    });
    out
}

impl TestService for TestServiceImpl {
    async fn empty_call(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(&self, req: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        unary(req)
    }

    async fn cacheable_unary_call(
        &self,
        req: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let mut resp = unary(req)?;
        resp.metadata_mut().insert("cache-control", AsciiMetadataValue::from_static("public, max-age=60"));
        Ok(resp)
    }

    async fn streaming_output_call(
        &self,
        req: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Streaming<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::of(req.metadata());
        let (deadline, cancel) = (req.deadline(), req.cancellation());
        let r = req.into_inner();
        if let Some(status) = requested_status(&r.response_status) {
            return Err(echo.fail(status));
        }
        let out = spawn_stream(deadline, cancel, |tx| async move {
            send_responses(&tx, &r.response_parameters).await.map(drop)
        });
        Ok(echo.respond(out))
    }

    async fn streaming_input_call(
        &self,
        req: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let echo = Echo::of(req.metadata());
        let md = req.metadata().clone();
        let mut input = req.into_inner();
        let mut total = 0usize;
        while let Some(r) = input.message().await? {
            check_compressed(&md, r.expect_compressed).map_err(|s| echo.fail(s))?;
            total += r.payload.map_or(0, |p| p.body.len());
        }
        let aggregated_payload_size =
            i32::try_from(total).map_err(|_| echo.fail(Status::out_of_range("aggregated payload size overflows int32")))?;
        Ok(echo.respond(StreamingInputCallResponse { aggregated_payload_size }))
    }

    async fn full_duplex_call(
        &self,
        req: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Streaming<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::of(req.metadata());
        let (deadline, cancel) = (req.deadline(), req.cancellation());
        let mut input = req.into_inner();
        let out = spawn_stream(deadline, cancel, |tx| async move {
            while let Some(r) = input.message().await? {
                if let Some(status) = requested_status(&r.response_status) {
                    return Err(status);
                }
                if !send_responses(&tx, &r.response_parameters).await? {
                    return Ok(());
                }
            }
            Ok(())
        });
        Ok(echo.respond(out))
    }

    async fn half_duplex_call(
        &self,
        req: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Streaming<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::of(req.metadata());
        let (deadline, cancel) = (req.deadline(), req.cancellation());
        let mut input = req.into_inner();
        let out = spawn_stream(deadline, cancel, |tx| async move {
            let mut all = Vec::new();
            while let Some(r) = input.message().await? {
                all.push(r);
            }
            for r in all {
                if let Some(status) = requested_status(&r.response_status) {
                    return Err(status);
                }
                if !send_responses(&tx, &r.response_parameters).await? {
                    return Ok(());
                }
            }
            Ok(())
        });
        Ok(echo.respond(out))
    }

    async fn unimplemented_call(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented("grpc.testing.TestService/UnimplementedCall is not implemented"))
    }
}
