//! [`Queue`]: the queue transport's side of the dispatch table. The server took a frame off the
//! broker and built a [`QueueCall`]; here its body becomes a message ([`Carry`] over the service's
//! [`Codec`]), the shared call path runs the handler, and the answer is encoded as one
//! [`Outcome`] for the server to send.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::codec::{check_content_type, Codec};
use super::wire::{self, Envelope};
use crate::call::{self, CallContext};
use crate::dispatch::{Carry, Transport};
use crate::Streaming;
use super::operation::OpCall;

/// The queue transport with codec `C` ([`Proto`](super::Proto) or [`Json`](super::Json)), as
/// [`QueueServer`](super::QueueServer) drives the dispatch table.
pub struct Queue<C>(PhantomData<fn() -> C>);

impl<C> std::fmt::Debug for Queue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queue")
    }
}

/// One request taken off the broker, on its way to a handler.
pub struct QueueCall {
    pub(crate) method: usize,
    pub(crate) env: Envelope,
    pub(crate) deadline: Option<Instant>,
    /// The method's OpenAPI operation contract, when it serves one.
    pub(crate) operation: Option<OpCall>,
}

impl QueueCall {
    /// Index of the method in the service descriptor.
    pub fn method_index(&self) -> usize {
        self.method
    }
}

/// A unary handler's encoded reply: metadata, body and extra headers (such as
/// `sb-http-status`), or an error.
pub type UnaryReply = Result<(MetadataMap, Bytes, Vec<(wire::Str, wire::Str)>), Status>;

/// What a handler produced, encoded.
pub enum Outcome {
    /// One message or an error.
    Unary(UnaryReply),
    /// Response metadata and a stream of encoded messages.
    Stream(MetadataMap, BoxStream<'static, Result<Bytes, Status>>),
}

/// Where [`Carry::decode`] reads a queue message from: a frame's body, or (OpenAPI operations)
/// the request struct's JSON after the operation contract checked it.
pub enum QueueDecoder<'a> {
    /// A frame, decoded with the service's codec.
    Frame(&'a Envelope),
    /// A checked JSON value.
    Json(serde_json::Value),
}

/// Where [`Carry::encode`] writes a queue message: its body and extra frame headers, or (OpenAPI
/// operations) which documented response a response enum holds.
pub struct QueueEncoder<'a> {
    pub(crate) body: &'a mut Bytes,
    pub(crate) headers: &'a mut Vec<(wire::Str, wire::Str)>,
    #[cfg(feature = "openapi")]
    pub(crate) capture: Option<(&'a crate::api::contract::OpState, &'a mut Option<crate::api::response::CaptureResult>)>,
}

impl<'a> QueueEncoder<'a> {
    fn new(body: &'a mut Bytes, headers: &'a mut Vec<(wire::Str, wire::Str)>) -> Self {
        QueueEncoder {
            body,
            headers,
            #[cfg(feature = "openapi")]
            capture: None,
        }
    }
}

/// Protobuf services carry prost messages.
impl<M> Carry<M> for Queue<super::Proto>
where
    super::Proto: Codec<M>,
{
    fn decode(from: QueueDecoder<'_>) -> Result<M, Status> {
        match from {
            QueueDecoder::Frame(env) => {
                check_content_type::<super::Proto, M>(env)?;
                <super::Proto as Codec<M>>::decode(&env.body, env)
            }
            QueueDecoder::Json(_) => Err(Status::internal("a protobuf service has no OpenAPI operations")),
        }
    }
    fn encode(message: &M, to: QueueEncoder<'_>) -> Result<(), Status> {
        *to.body = <super::Proto as Codec<M>>::encode(message, to.headers)?;
        Ok(())
    }
}

/// JSON services carry serde types; an OpenAPI response enum is captured as the documented
/// response it holds.
impl<M> Carry<M> for Queue<super::Json>
where
    M: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn decode(from: QueueDecoder<'_>) -> Result<M, Status> {
        match from {
            QueueDecoder::Frame(env) => {
                check_content_type::<super::Json, M>(env)?;
                <super::Json as Codec<M>>::decode(&env.body, env)
            }
            QueueDecoder::Json(value) => {
                M::deserialize(value).map_err(|e| Status::invalid_argument(format!("invalid request: {e}")))
            }
        }
    }
    fn encode(message: &M, to: QueueEncoder<'_>) -> Result<(), Status> {
        #[cfg(feature = "openapi")]
        if let Some((state, out)) = to.capture {
            *out = Some(crate::api::response::capture(message, state.op.responses, &state.responses));
            return Ok(());
        }
        *to.body = <super::Json as Codec<M>>::encode(message, to.headers)?;
        Ok(())
    }
}

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
            let message = match <Self as Carry<Req>>::decode(QueueDecoder::Frame(&call.env)) {
                Ok(m) => m,
                Err(status) => return Outcome::Unary(Err(status)),
            };
            let mut ctx = context(&call);
            let result = ctx.run(message, handler).await;
            Outcome::Unary(result.and_then(|mut response| {
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
            }))
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
            let message = match <Self as Carry<Req>>::decode(QueueDecoder::Frame(&call.env)) {
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

/// The call state of a frame: its metadata headers and deadline.
fn context(call: &QueueCall) -> CallContext {
    CallContext::new(wire::metadata_of(&call.env), Default::default(), call.deadline)
}

/// Client and bidi streaming, which queues do not carry.
fn unsupported() -> BoxFuture<'static, Outcome> {
    Box::pin(std::future::ready(Outcome::Unary(Err(Status::unimplemented(
        "client and bidi streaming are not carried over queues; call this method over gRPC or REST",
    )))))
}

/// Appends every entry of `from` to `to`.
pub(crate) fn append(to: &mut MetadataMap, from: &MetadataMap) {
    for kv in from.iter() {
        match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                to.append(k.clone(), v.clone());
            }
            tonic::metadata::KeyAndValueRef::Binary(k, v) => {
                to.append_bin(k.clone(), v.clone());
            }
        }
    }
}
