//! [`Queue`]: the queue transport's side of the dispatch table. The server took a frame off the
//! broker and built a [`QueueCall`]; here its body becomes a message ([`Carry`] over the service's
//! [`Codec`](super::Codec)), the shared call path runs the handler, and the answer is encoded as one
//! [`Outcome`] for the server to send.

use std::future::Future;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tonic::{Request, Response, Status};

use super::call::{append, Outcome, Queue, QueueCall, QueueDecoder, QueueEncoder};
use super::wire;
use crate::call::{self, caught, CallContext};
use crate::dispatch::{Carry, Transport};
use crate::Streaming;

impl<C: Send + Sync + 'static> Transport for Queue<C> {
    type Call = QueueCall;
    type Reply = Outcome;
    type Decoder<'a> = QueueDecoder<'a>;
    type Encoder<'a> = QueueEncoder<'a>;

    fn unary<Req, Resp, F, Fut>(mut call: QueueCall, handler: F) -> BoxFuture<'static, Outcome>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        if let Some(op) = call.operation.take() {
            return super::operation::unary::<C, Req, Resp, F, Fut>(call, op, handler);
        }
        Box::pin(async move {
            let message = match caught(|| <Self as Carry<Req>>::decode(QueueDecoder::Frame(&call.env))) {
                Ok(m) => m,
                Err(status) => return Outcome::Unary(Err(status)),
            };
            let mut ctx = context(&call);
            let result = ctx.run(message, handler).await;
            Outcome::Unary(caught(|| result.and_then(|mut response| {
                let trailers = call::take_trailers(&mut response);
                let (mut metadata, message, _) = response.into_parts();
                // Trailers travel with the one reply frame.
                if let Some(trailers) = trailers {
                    append(&mut metadata, &trailers);
                }
                let mut body = Bytes::new();
                let mut headers = Vec::new();
                <Self as Carry<Resp>>::encode(&message, QueueEncoder::new(&mut body, &mut headers))?;
                Ok((metadata, body, headers))
            })))
        })
    }

    fn server_streaming<Req, Resp, F, Fut>(call: QueueCall, handler: F) -> BoxFuture<'static, Outcome>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
    {
        Box::pin(async move {
            let message = match caught(|| <Self as Carry<Req>>::decode(QueueDecoder::Frame(&call.env))) {
                Ok(m) => m,
                Err(status) => return Outcome::Unary(Err(status)),
            };
            let mut ctx = context(&call);
            match ctx.run(message, handler).await {
                Ok(mut response) => {
                    let trailers = call::take_trailers(&mut response);
                    let (metadata, stream, _) = response.into_parts();
                    let messages = call::guard_stream(stream, ctx.deadline, &ctx.cancellation).map(|item| {
                        item.and_then(|m| {
                            let mut body = Bytes::new();
                            <Self as Carry<Resp>>::encode(&m, QueueEncoder::new(&mut body, &mut Vec::new()))?;
                            Ok(body)
                        })
                    });
                    // Trailers travel on the end frame: an OK status carrying them ends the stream.
                    let end = futures_util::stream::iter(trailers.map(|md| Err(call::ok_with_trailers(md))));
                    Outcome::Stream(metadata, Box::pin(messages.chain(end)))
                }
                Err(status) => Outcome::Unary(Err(status)),
            }
        })
    }

    fn client_streaming<Req, Resp, F, Fut>(call: QueueCall, handler: F) -> BoxFuture<'static, Outcome>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        let _ = (call, handler);
        unsupported()
    }

    fn streaming<Req, Resp, F, Fut>(call: QueueCall, handler: F) -> BoxFuture<'static, Outcome>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
    {
        let _ = (call, handler);
        unsupported()
    }

    fn unimplemented(call: QueueCall) -> BoxFuture<'static, Outcome> {
        let _ = call;
        Box::pin(std::future::ready(Outcome::Unary(Err(Status::unimplemented("no such method")))))
    }
}

/// The call state of a frame: its metadata headers and deadline; observed ([`crate::observe`]).
fn context(call: &QueueCall) -> CallContext {
    CallContext::served(wire::metadata_of(&call.env), call.extensions(), call.deadline, call.observed_name(), crate::client::TransportKind::Queue)
}

/// Client and bidi streaming, which queues do not carry.
fn unsupported() -> BoxFuture<'static, Outcome> {
    Box::pin(std::future::ready(Outcome::Unary(Err(Status::unimplemented(
        "client and bidi streaming are not carried over queues; call this method over gRPC or REST",
    )))))
}
