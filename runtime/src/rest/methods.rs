//! [`Rest`]: the REST transport's side of the dispatch table. The router matched the route and
//! built a [`Call`]; here the request becomes a message ([`Carry`] over serde, proto3 JSON), the
//! shared call path runs the handler, and the answer is framed as JSON, NDJSON or SSE.
//!
//! Streams over REST:
//! - server streaming answers `application/x-ndjson`, one `{"result": <message>}` per line and
//!   `{"error": {"code", "message", "details"}}` as the last line if the stream fails (the
//!   framing grpc-gateway uses); with `Accept: text/event-stream`, Server-Sent Events instead:
//!   `data: <message>` per message, `event: error` + `data: <status>` on failure.
//! - client streaming and bidi read the request body as newline-delimited JSON messages (plain
//!   messages, one per line, each at most the server's `max_body_size`; the stream as a whole is
//!   not capped) and answer like unary / server streaming. Over HTTP/1.1 most clients send the
//!   whole body before reading the answer, so bidi is half-duplex there.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use http::header::{HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::call::{error_response, field_of, Call, HttpResponse};
use super::status::error_body;
use super::Body;
use crate::call::{self, CallContext};
use crate::dispatch::{Carry, Transport};
use crate::{Cancellation, Streaming};

/// The REST transport, as [`RestRouter`](super::RestRouter) drives the dispatch table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rest;

/// Where REST reads a message from: the matched request (body, path variables, query), one
/// line of an NDJSON request stream, or an OpenAPI operation's decoded parameters and body.
pub struct RestDecoder<'a>(pub(crate) DecodeFrom<'a>);

pub(crate) enum DecodeFrom<'a> {
    /// A proto-bound request: body merged with path variables and query as the binding says.
    Message { call: &'a Call, body: &'a [u8] },
    /// One JSON message (a line of an NDJSON request stream).
    Line(&'a [u8]),
    /// An OpenAPI operation's parameters and body, by request-struct field.
    Fields(crate::api::params::Fields),
}

/// Where REST writes a message to: JSON bytes (the whole message or its `response_body` field),
/// or an OpenAPI response enum's chosen variant.
pub struct RestEncoder<'a>(pub(crate) EncodeTo<'a>);

pub(crate) enum EncodeTo<'a> {
    Json { response_body: &'static str, out: &'a mut Vec<u8> },
    Capture { state: &'a crate::api::contract::OpState, out: &'a mut Option<crate::api::response::CaptureResult> },
}

/// REST carries serde types: proto3 JSON for generated messages (pbjson), plain serde for
/// code-first and OpenAPI types.
impl<M: Serialize + DeserializeOwned + Send + 'static> Carry<M> for Rest {
    fn decode(from: RestDecoder<'_>) -> Result<M, Status>
    where
        Self: Transport,
    {
        match from.0 {
            DecodeFrom::Message { call, body } => call.decode::<M>(body),
            DecodeFrom::Line(line) => super::decode::from_json::<M>(line),
            DecodeFrom::Fields(fields) => super::operation::from_fields::<M>(fields),
        }
    }

    fn encode(message: &M, to: RestEncoder<'_>) -> Result<(), Status>
    where
        Self: Transport,
    {
        match to.0 {
            EncodeTo::Json { response_body, out } => {
                let json = if response_body.is_empty() {
                    super::decode::to_json(message)
                } else {
                    super::decode::to_value(message).and_then(|v| serde_json::to_vec(&field_of(v, response_body)))
                };
                *out = json.map_err(|e| Status::internal(format!("encoding the response as JSON: {e}")))?;
                Ok(())
            }
            EncodeTo::Capture { state, out } => {
                *out = Some(crate::api::response::capture(message, state.op.responses, &state.responses));
                Ok(())
            }
        }
    }
}

impl Transport for Rest {
    type Call = Call;
    type Reply = HttpResponse;
    type Decoder<'a> = RestDecoder<'a>;
    type Encoder<'a> = RestEncoder<'a>;

    fn unary<Req, Resp, F, Fut>(call: Call, handler: F) -> BoxFuture<'static, HttpResponse>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        if call.api.is_some() {
            return super::operation::unary(call, handler);
        }
        Box::pin(async move {
            let (mut ctx, framing, message) = match read_message::<Req>(call).await {
                Ok(read) => read,
                Err(status) => return error_response(&status),
            };
            match ctx.run(message, handler).await {
                Ok(response) => json_response(response, framing.response_body),
                Err(status) => error_response(&status),
            }
        })
    }

    fn server_streaming<Req, Resp, F, Fut>(call: Call, handler: F) -> BoxFuture<'static, HttpResponse>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
    {
        Box::pin(async move {
            let (ctx, framing, message) = match read_message::<Req>(call).await {
                Ok(read) => read,
                Err(status) => return error_response(&status),
            };
            answer_stream(ctx, framing, message, handler).await
        })
    }

    fn client_streaming<Req, Resp, F, Fut>(mut call: Call, handler: F) -> BoxFuture<'static, HttpResponse>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        Box::pin(async move {
            let (mut ctx, framing) = context(&mut call);
            let requests = ndjson_requests::<Req>(call.body, call.max_body);
            match ctx.run(requests, handler).await {
                Ok(response) => json_response(response, framing.response_body),
                Err(status) => error_response(&status),
            }
        })
    }

    fn streaming<Req, Resp, F, Fut>(mut call: Call, handler: F) -> BoxFuture<'static, HttpResponse>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
    {
        Box::pin(async move {
            let (ctx, framing) = context(&mut call);
            let requests = ndjson_requests::<Req>(call.body, call.max_body);
            answer_stream(ctx, framing, requests, handler).await
        })
    }

    fn unimplemented(call: Call) -> BoxFuture<'static, HttpResponse> {
        let status = Status::unimplemented(format!("method `{}` is not implemented", call.method.name));
        Box::pin(async move { error_response(&status) })
    }
}

/// How the answer is framed: the binding's `response_body` and whether the caller asked for SSE.
#[derive(Clone, Copy)]
struct Framing {
    response_body: &'static str,
    sse: bool,
}

/// The call's state from its headers, and how to frame the answer.
fn context(call: &mut Call) -> (CallContext, Framing) {
    let (ctx, sse) = call.context();
    (ctx, Framing { response_body: call.response_body, sse })
}

/// Reads the whole (bounded) body and decodes the request message from it, the path and the query.
async fn read_message<Req>(mut call: Call) -> Result<(CallContext, Framing, Req), Status>
where
    Rest: Carry<Req>,
{
    let (ctx, framing) = context(&mut call);
    let body = call.read_body().await?;
    let message = <Rest as Carry<Req>>::decode(RestDecoder(DecodeFrom::Message { call: &call, body: &body }))?;
    Ok((ctx, framing, message))
}

/// The request body as a stream of messages, one JSON value per line, each at most `max_line`.
fn ndjson_requests<Req: Send + 'static>(body: Body, max_line: usize) -> Streaming<Req>
where
    Rest: Carry<Req>,
{
    let data = body.into_data_stream().map(|r| r.map_err(|e| Status::cancelled(format!("reading the request body: {e}"))));
    let lines = super::ndjson::lines(data, max_line);
    Streaming::new(lines.map(|line| line.and_then(|l| <Rest as Carry<Req>>::decode(RestDecoder(DecodeFrom::Line(&l))))))
}

/// `200 application/json` with the message (or its `response_body` field); the handler's
/// metadata and trailers become headers.
fn json_response<T>(mut response: Response<T>, response_body: &'static str) -> HttpResponse
where
    Rest: Carry<T>,
{
    let trailers = call::take_trailers(&mut response);
    let (metadata, message, _) = response.into_parts();
    let mut body = Vec::new();
    if let Err(status) = <Rest as Carry<T>>::encode(&message, RestEncoder(EncodeTo::Json { response_body, out: &mut body })) {
        return error_response(&status);
    }
    let mut resp = http::Response::new(Body::from(body));
    let headers = resp.headers_mut();
    *headers = metadata.into_headers();
    if let Some(trailers) = trailers {
        headers.extend(trailers.into_headers());
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Runs the handler on `message`; answers its stream as NDJSON or SSE.
async fn answer_stream<M, Resp, F, Fut>(mut ctx: CallContext, framing: Framing, message: M, handler: F) -> HttpResponse
where
    Rest: Carry<Resp>,
    Resp: Send + 'static,
    F: FnOnce(Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>>,
{
    match ctx.run(message, handler).await {
        Ok(response) => stream_response(response, framing, ctx.deadline, &ctx.cancellation),
        Err(status) => error_response(&status),
    }
}

/// A streamed answer: NDJSON (`{"result": m}` per line) or SSE. Trailers become headers (they
/// cannot follow an HTTP/1.1 body); messages run under the call's rules (crate::call).
fn stream_response<Resp: Send + 'static>(
    mut response: Response<Streaming<Resp>>,
    framing: Framing,
    deadline: Option<Instant>,
    cancellation: &Cancellation,
) -> HttpResponse
where
    Rest: Carry<Resp>,
{
    let trailers = call::take_trailers(&mut response);
    let (metadata, stream, _) = response.into_parts();
    let Framing { response_body, sse } = framing;
    let messages = call::guard_stream(stream, deadline, cancellation);
    type Frames = Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>;
    let frames: Frames = Box::pin(messages.scan(false, move |ended, item| {
        if *ended {
            return futures_util::future::ready(None);
        }
        let frame = match item {
            Ok(message) => {
                let mut json = Vec::new();
                match <Rest as Carry<Resp>>::encode(&message, RestEncoder(EncodeTo::Json { response_body, out: &mut json })) {
                    Ok(()) => frame(sse, &json, false),
                    Err(status) => {
                        *ended = true;
                        error_frame(sse, &status)
                    }
                }
            }
            Err(status) => {
                *ended = true;
                error_frame(sse, &status)
            }
        };
        futures_util::future::ready(Some(Ok(frame)))
    }));
    let mut resp = http::Response::new(Body::from_stream(frames));
    let headers = resp.headers_mut();
    *headers = metadata.into_headers();
    if let Some(trailers) = trailers {
        headers.extend(trailers.into_headers());
    }
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
