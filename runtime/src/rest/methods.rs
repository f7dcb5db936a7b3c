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
use tonic::{Request, Response, Status};

use super::call::{error_response, Call, HttpResponse};
use super::carry::{DecodeFrom, EncodeTo, Rest, RestDecoder, RestEncoder};
use super::status::error_body;
use super::Body;
use crate::call::{self, CallContext};
use crate::dispatch::{Carry, Transport};
use crate::{Cancellation, Streaming};

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
