//! What `#[service]` expansions call for REST: the dispatch trait and one function per call shape.
//!
//! Streams over REST:
//! - server streaming answers `application/x-ndjson`, one `{"result": <message>}` per line and
//!   `{"error": {"code", "message", "details"}}` as the last line if the stream fails (the
//!   framing grpc-gateway uses); with `Accept: text/event-stream`, Server-Sent Events instead:
//!   `data: <message>` per message, `event: error` + `data: <status>` on failure.
//! - client streaming and bidi read the request body as newline-delimited JSON messages (plain
//!   messages, one per line) and answer like unary / server streaming. Over HTTP/1.1 most clients
//!   send the whole body before reading the answer, so bidi is half-duplex there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use http::header::{HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

pub use super::call::{Call, HttpResponse};
use super::call::{error_response, field_of, json_response, CallContext};
use super::status::error_body;
use super::Body;
use crate::context::CancelOnDrop;
use crate::{ServiceDescriptor, Streaming};

/// Implemented by the macro for each service: the descriptor and the method switch.
pub trait Dispatch: 'static {
    /// The user's implementation of the service trait.
    type Handler: Send + Sync + 'static;
    /// The service's static descriptor.
    fn descriptor() -> &'static ServiceDescriptor;
    /// Runs the method `call.method_index()`.
    fn dispatch(handler: &Arc<Self::Handler>, call: Call) -> BoxFuture<'static, HttpResponse>;
}

/// Runs `fut` under the call's deadline; a caller that goes away fires the cancellation.
pub(crate) async fn run<T>(
    ctx_deadline: Option<Instant>,
    guard: &mut CancelOnDrop,
    fut: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let result = match ctx_deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline.into(), fut).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
        },
        None => fut.await,
    };
    guard.disarm();
    result
}

/// One request, one response.
pub fn unary<Req, Resp, F, Fut>(mut call: Call, f: F) -> BoxFuture<'static, HttpResponse>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let ctx = call.context();
        let message = match read_message::<Req>(&mut call).await {
            Ok(m) => m,
            Err(status) => return error_response(&status),
        };
        answer_one(ctx, message, f).await
    })
}

/// One request, a stream of responses.
pub fn server_streaming<Req, Resp, F, Fut>(mut call: Call, f: F) -> BoxFuture<'static, HttpResponse>
where
    Req: DeserializeOwned + Default + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let ctx = call.context();
        let message = match read_message::<Req>(&mut call).await {
            Ok(m) => m,
            Err(status) => return error_response(&status),
        };
        answer_stream(ctx, message, f).await
    })
}

/// A stream of requests (newline-delimited JSON body), one response.
pub fn client_streaming<Req, Resp, F, Fut>(mut call: Call, f: F) -> BoxFuture<'static, HttpResponse>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let ctx = call.context();
        answer_one(ctx, ndjson_requests::<Req>(call.body), f).await
    })
}

/// Streams both ways.
pub fn streaming<Req, Resp, F, Fut>(mut call: Call, f: F) -> BoxFuture<'static, HttpResponse>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let ctx = call.context();
        answer_stream(ctx, ndjson_requests::<Req>(call.body), f).await
    })
}

/// Runs the handler on `message`; answers its one message as JSON.
async fn answer_one<M, Resp, Fut>(mut ctx: CallContext, message: M, f: impl FnOnce(Request<M>) -> Fut) -> HttpResponse
where
    Resp: Serialize + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let mut guard = ctx.cancellation.guard();
    let request = ctx.request(message);
    match run(ctx.deadline, &mut guard, f(request)).await {
        Ok(response) => json_response(response, ctx.response_body),
        Err(status) => error_response(&status),
    }
}

/// Runs the handler on `message`; answers its stream as NDJSON or SSE.
async fn answer_stream<M, Resp, Fut>(mut ctx: CallContext, message: M, f: impl FnOnce(Request<M>) -> Fut) -> HttpResponse
where
    Resp: Serialize + Send + 'static,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>>,
{
    let mut guard = ctx.cancellation.guard();
    let request = ctx.request(message);
    match run(ctx.deadline, &mut guard, f(request)).await {
        Ok(response) => stream_response(response, &ctx, ctx.cancellation.guard()),
        Err(status) => error_response(&status),
    }
}

/// A method this service does not have (cannot happen for matched routes; kept total).
pub fn unimplemented(call: Call) -> BoxFuture<'static, HttpResponse> {
    let status = Status::unimplemented(format!("method `{}` is not implemented", call.method.name));
    Box::pin(async move { error_response(&status) })
}

async fn read_message<Req: DeserializeOwned + Default + 'static>(call: &mut Call) -> Result<Req, Status> {
    let body = call.read_body().await?;
    call.decode::<Req>(&body)
}

/// The request body as a stream of messages, one JSON value per line.
fn ndjson_requests<Req: DeserializeOwned + Send + 'static>(body: Body) -> Streaming<Req> {
    let lines = lines(body.into_data_stream().map(|r| r.map_err(|e| Status::cancelled(format!("reading the request body: {e}")))));
    Streaming::new(lines.map(|line| line.and_then(|l| super::decode::from_json::<Req>(&l))))
}

/// Splits a byte stream into non-blank lines.
pub(crate) fn lines<S>(stream: S) -> impl Stream<Item = Result<Bytes, Status>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, Status>> + Send + 'static,
{
    futures_util::stream::unfold(
        (Box::pin(stream), BytesMut::new(), false),
        |(mut stream, mut buf, mut done)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(pos + 1).freeze();
                    let line = line.slice(..line.len() - 1);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some((Ok(line), (stream, buf, done)));
                }
                if done {
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let rest = buf.split().freeze();
                    return Some((Ok(rest), (stream, buf, done)));
                }
                match stream.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        done = true;
                        buf.clear();
                        return Some((Err(e), (stream, buf, done)));
                    }
                    None => done = true,
                }
            }
        },
    )
}

/// A streamed answer: NDJSON (`{"result": m}` per line) or SSE.
fn stream_response<Resp: Serialize + Send + 'static>(
    response: Response<Streaming<Resp>>,
    ctx: &CallContext,
    guard: CancelOnDrop,
) -> HttpResponse {
    let (metadata, stream, _) = response.into_parts();
    let sse = ctx.sse;
    let response_body = ctx.response_body;
    let deadline = ctx.deadline;
    type Frames = Pin<Box<dyn Stream<Item = Result<Bytes, std::convert::Infallible>> + Send>>;
    let state = (stream, Some(guard), false);
    let frames: Frames = Box::pin(futures_util::stream::unfold(state, move |(mut stream, mut guard, finished)| async move {
        if finished {
            return None;
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), stream.next()).await {
                Ok(n) => n,
                Err(_) => Some(Err(Status::deadline_exceeded("deadline exceeded"))),
            },
            None => stream.next().await,
        };
        let (frame, finished) = match next {
            Some(Ok(message)) => {
                let json = if response_body.is_empty() {
                    super::decode::to_json(&message)
                } else {
                    super::decode::to_value(&message).and_then(|v| serde_json::to_vec(&field_of(v, response_body)))
                };
                match json {
                    Ok(json) => (frame(sse, &json, false), false),
                    Err(e) => (error_frame(sse, &Status::internal(format!("encoding JSON: {e}"))), true),
                }
            }
            Some(Err(status)) => (error_frame(sse, &status), true),
            None => {
                if let Some(g) = guard.as_mut() {
                    g.disarm();
                }
                return None;
            }
        };
        if finished {
            if let Some(g) = guard.as_mut() {
                g.disarm();
            }
        }
        Some((Ok(frame), (stream, guard, finished)))
    }));
    let mut resp = http::Response::new(Body::from_stream(frames));
    let headers = resp.headers_mut();
    *headers = metadata.into_headers();
    let content_type = if sse { "text/event-stream" } else { "application/x-ndjson" };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// One stream item: `{"result": <json>}\n`, or an SSE `data:` event.
fn frame(sse: bool, json: &[u8], error: bool) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    if sse {
        if error {
            out.extend_from_slice(b"event: error\n");
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(json);
        out.extend_from_slice(b"\n\n");
    } else {
        out.extend_from_slice(if error { b"{\"error\":" } else { b"{\"result\":" });
        out.extend_from_slice(json);
        out.extend_from_slice(b"}\n");
    }
    Bytes::from(out)
}

fn error_frame(sse: bool, status: &Status) -> Bytes {
    frame(sse, &error_body(status), true)
}

/// A client's request stream as [`Streaming`] (for the REST client's streaming calls).
pub fn streaming_request<S, T>(request: Request<S>) -> Request<Streaming<T>>
where
    S: Stream<Item = T> + Send + 'static,
    T: 'static,
{
    request.map(|stream| Streaming::new(stream.map(Ok)))
}
