//! [`Grpc`]: the gRPC transport's side of the dispatch table. tonic frames and (de)compresses,
//! [`Carry`] reads and writes prost messages, the shared call path runs the handler.

use std::future::Future;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut};
use futures_util::future::{BoxFuture, Either, Ready};
use futures_util::StreamExt;
use tonic::body::Body;
use tonic::codec::{DecodeBuf, EncodeBuf};
use tonic::{Request, Response, Status};

use super::config::ServerConfig;
use super::request_body::WatchRequestBody;
use crate::call;
use crate::dispatch::{Carry, Transport};
use crate::{Cancellation, Streaming};

/// The gRPC transport, as [`GrpcServer`](super::GrpcServer) drives the dispatch table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grpc;

/// One gRPC call on its way to the dispatch table: the HTTP/2 request and the service's settings.
#[derive(Debug)]
pub struct GrpcCall {
    pub(crate) config: ServerConfig,
    pub(crate) request: http::Request<Body>,
}

/// gRPC carries protobuf messages (prost).
impl<M: prost::Message + Default + Send + 'static> Carry<M> for Grpc {
    fn decode(from: &mut dyn Buf) -> Result<M, Status>
    where
        Self: Transport,
    {
        // tonic reports undecodable messages as INTERNAL; so do we.
        M::decode(from).map_err(|e| Status::internal(e.to_string()))
    }
    fn encode(message: &M, mut to: &mut dyn BufMut) -> Result<(), Status>
    where
        Self: Transport,
    {
        message.encode(&mut to).map_err(|e| Status::internal(format!("encoding the message: {e}")))
    }
}

impl Transport for Grpc {
    type Call = GrpcCall;
    type Reply = http::Response<Body>;
    type Decoder<'a> = &'a mut dyn Buf;
    type Encoder<'a> = &'a mut dyn BufMut;

    fn unary<Req, Resp, F, Fut>(call: GrpcCall, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        single_request(call, move |r| {
            let (deadline, cancellation) = call::state_of(&r);
            let fut = handler(r);
            async move { call::run(deadline, &cancellation, fut).await.map(unary_body) }
        })
    }

    fn server_streaming<Req, Resp, F, Fut>(call: GrpcCall, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
    {
        single_request(call, move |r| {
            let (deadline, cancellation) = call::state_of(&r);
            let fut = handler(r);
            async move {
                let response = call::run(deadline, &cancellation, fut).await?;
                Ok(stream_body(response, deadline, &cancellation))
            }
        })
    }

    fn client_streaming<Req, Resp, F, Fut>(call: GrpcCall, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        streaming_request(call, move |r| {
            let (deadline, cancellation) = call::state_of(&r);
            let fut = handler(r);
            async move { call::run(deadline, &cancellation, fut).await.map(unary_body) }
        })
    }

    fn streaming<Req, Resp, F, Fut>(call: GrpcCall, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
    {
        streaming_request(call, move |r| {
            let (deadline, cancellation) = call::state_of(&r);
            let fut = handler(r);
            async move {
                let response = call::run(deadline, &cancellation, fut).await?;
                Ok(stream_body(response, deadline, &cancellation))
            }
        })
    }

    fn unimplemented(call: GrpcCall) -> BoxFuture<'static, Self::Reply> {
        let msg = format!("method {} is not implemented", call.request.uri().path());
        Box::pin(async move { Status::unimplemented(msg).into_http() })
    }
}

/// tonic's codec over [`Carry`]: encodes `E`, decodes `D`.
struct CarryCodec<E, D>(PhantomData<fn(E) -> D>);

impl<E, D> tonic::codec::Codec for CarryCodec<E, D>
where
    Grpc: Carry<E> + Carry<D>,
    E: Send + 'static,
    D: Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = CarryCodec<E, ()>;
    type Decoder = CarryCodec<(), D>;
    fn encoder(&mut self) -> Self::Encoder {
        CarryCodec(PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        CarryCodec(PhantomData)
    }
}

impl<E: Send + 'static> tonic::codec::Encoder for CarryCodec<E, ()>
where
    Grpc: Carry<E>,
{
    type Item = E;
    type Error = Status;
    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        <Grpc as Carry<E>>::encode(&item, dst)
    }
}

impl<D: Send + 'static> tonic::codec::Decoder for CarryCodec<(), D>
where
    Grpc: Carry<D>,
{
    type Item = D;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        <Grpc as Carry<D>>::decode(src).map(Some)
    }
}

/// Adapts a one-shot handler closure to the tower `Service` tonic's server calls once per request.
struct Once<F>(Option<F>);

impl<F, Req, Resp, Fut> tower_service::Service<Request<Req>> for Once<F>
where
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    type Response = Response<Resp>;
    type Error = Status;
    type Future = Either<Fut, Ready<Result<Response<Resp>, Status>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Req>) -> Self::Future {
        match self.0.take() {
            Some(f) => Either::Left(f(req)),
            None => Either::Right(futures_util::future::ready(Err(Status::internal(
                "switchboard: handler invoked twice for one call",
            )))),
        }
    }
}

/// A handler's response stream under the call's rules, then (if the handler set
/// [`Trailers`](crate::Trailers)) an OK status carrying them.
fn stream_body<M: Send + 'static>(
    mut response: Response<Streaming<M>>,
    deadline: Option<std::time::Instant>,
    cancellation: &Cancellation,
) -> Response<Streaming<M>> {
    let trailers = call::take_trailers(&mut response);
    response.map(|messages| {
        let messages = call::guard_stream(messages, deadline, cancellation);
        match trailers {
            None => Streaming::new(messages),
            Some(md) => Streaming::new(messages.chain(futures_util::stream::once(async move { Err(call::ok_with_trailers(md)) }))),
        }
    })
}

/// The handler's view of a request stream. tonic ends the stream quietly when the caller resets
/// it; here that end becomes `CANCELLED` (the call's [`Cancellation`] has fired by then), so a
/// handler never mistakes an abandoned upload for a complete one.
fn request_stream<Req: Send + 'static>(request: Request<tonic::Streaming<Req>>) -> Request<Streaming<Req>> {
    let (_, cancellation) = call::state_of(&request);
    request.map(|messages| {
        let end = futures_util::stream::once(async move {
            cancellation.is_cancelled().then(|| Status::cancelled("the caller cancelled the call"))
        })
        .filter_map(|e| async move { e.map(Err) });
        // An over-limit message is RESOURCE_EXHAUSTED (gRPC spec), not tonic's OUT_OF_RANGE.
        let messages = messages.map(|m| m.map_err(super::status::normalize));
        Streaming::new(messages.chain(end))
    })
}

/// A unary response body: the message, then (if the handler set trailers) an OK status that
/// carries them. A plain enum, so the hot unary path allocates no stream.
struct UnaryBody<M> {
    message: Option<M>,
    trailers: Option<Status>,
}

impl<M> Unpin for UnaryBody<M> {}

impl<M> futures_core::Stream for UnaryBody<M> {
    type Item = Result<M, Status>;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Poll::Ready(match this.message.take() {
            Some(m) => Some(Ok(m)),
            None => this.trailers.take().map(Err),
        })
    }
}

fn unary_body<M>(mut response: Response<M>) -> Response<UnaryBody<M>> {
    let trailers = call::take_trailers(&mut response).map(call::ok_with_trailers);
    response.map(|m| UnaryBody { message: Some(m), trailers })
}

/// A method whose caller sends one message: decode it, call the handler, encode its stream.
fn single_request<Req, Resp, S, F, Fut>(call: GrpcCall, handler: F) -> BoxFuture<'static, http::Response<Body>>
where
    Grpc: Carry<Req> + Carry<Resp>,
    Req: Send + 'static,
    Resp: Send + 'static,
    S: futures_core::Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
{
    let mut grpc = call.config.apply(tonic::server::Grpc::new(CarryCodec::<Resp, Req>(PhantomData)));
    let request = call.request;
    Box::pin(async move { grpc.server_streaming(Once(Some(handler)), request).await })
}

/// A method whose caller streams: watch for resets, hand the handler a [`Streaming`].
fn streaming_request<Req, Resp, S, F, Fut>(call: GrpcCall, handler: F) -> BoxFuture<'static, http::Response<Body>>
where
    Grpc: Carry<Req> + Carry<Resp>,
    Req: Send + 'static,
    Resp: Send + 'static,
    S: futures_core::Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
{
    let mut grpc = call.config.apply(tonic::server::Grpc::new(CarryCodec::<Resp, Req>(PhantomData)));
    // A caller that streams can abandon the call mid-stream; make that visible.
    let request = {
        let cancellation = call.request.extensions().get::<Cancellation>().cloned().unwrap_or_default();
        call.request.map(|body| Body::new(WatchRequestBody::new(body, cancellation)))
    };
    let handler = move |r: Request<tonic::Streaming<Req>>| handler(request_stream(r));
    Box::pin(async move { grpc.streaming(Once(Some(handler)), request).await })
}
