//! What `#[service]` expansions call: the per-shape server glue and the bounds they share.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{BoxFuture, Either, Ready};
use tonic::body::Body;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use super::ServerConfig;
use futures_util::StreamExt;

use crate::{Cancellation, ServiceDescriptor, Streaming, Trailers};

/// Implemented by the macro for each service: names, descriptor and the method switch.
pub trait Dispatch: 'static {
    /// The user's implementation of the service trait.
    type Handler: Send + Sync + 'static;
    /// Fully-qualified service name.
    const NAME: &'static str;
    /// The service's static descriptor.
    fn descriptor() -> &'static ServiceDescriptor;
    /// Routes one request to its method by path.
    fn dispatch(
        handler: &Arc<Self::Handler>,
        config: &ServerConfig,
        request: http::Request<Body>,
    ) -> BoxFuture<'static, http::Response<Body>>;
}

/// Everything a client needs from its transport, in one bound.
pub trait Transport:
    tonic::client::GrpcService<
        Body,
        ResponseBody: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
                          + Send
                          + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    >
{
}

impl<T> Transport for T where
    T: tonic::client::GrpcService<
        Body,
        ResponseBody: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
                          + Send
                          + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    >
{
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

/// The response's messages followed, if the handler set [`Trailers`], by an OK status carrying
/// them (tonic sends a stream's final status, metadata included, as the HTTP/2 trailers).
fn with_trailers<M, S>(mut response: Response<S>) -> Response<Streaming<M>>
where
    S: futures_core::Stream<Item = Result<M, Status>> + Send + 'static,
    M: Send + 'static,
{
    let trailers = response.extensions_mut().remove::<Trailers>();
    response.map(|messages| match trailers {
        None => Streaming::new(messages),
        Some(Trailers(md)) => {
            let end = Status::with_metadata(tonic::Code::Ok, "", md);
            Streaming::new(messages.chain(futures_util::stream::once(async move { Err(end) })))
        }
    })
}

/// The handler's view of a request stream. tonic ends the stream quietly when the caller resets
/// it; here that end becomes `CANCELLED` (the call's [`Cancellation`] has fired by then), so a
/// handler never mistakes an abandoned upload for a complete one.
fn request_stream<Req: Send + 'static>(request: Request<tonic::Streaming<Req>>) -> Request<Streaming<Req>> {
    let cancellation = request.extensions().get::<Cancellation>().cloned().unwrap_or_default();
    request.map(|messages| {
        let end = futures_util::stream::once(async move {
            cancellation.is_cancelled().then(|| Status::cancelled("the caller cancelled the call"))
        })
        .filter_map(|e| async move { e.map(Err) });
        // An over-limit message is RESOURCE_EXHAUSTED (gRPC spec), not tonic's OUT_OF_RANGE.
        let messages = messages.map(|m| m.map_err(super::client::normalize));
        Streaming::new(messages.chain(end))
    })
}

/// A unary response body: the message, then (if the handler set [`Trailers`]) an OK status that
/// carries them. A plain enum, so the hot unary path allocates no stream.
struct UnaryBody<M> {
    message: Option<M>,
    trailers: Option<Status>,
}

impl<M: Unpin> futures_core::Stream for UnaryBody<M> {
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
    let trailers = response
        .extensions_mut()
        .remove::<Trailers>()
        .map(|Trailers(md)| Status::with_metadata(tonic::Code::Ok, "", md));
    response.map(|m| UnaryBody { message: Some(m), trailers })
}

/// A caller that streams can abandon the call mid-stream; make that visible (see
/// `WatchRequestBody`).
fn watch_resets(request: http::Request<Body>) -> http::Request<Body> {
    let cancellation = request.extensions().get::<Cancellation>().cloned().unwrap_or_default();
    request.map(|body| Body::new(super::server::WatchRequestBody::new(body, cancellation)))
}

/// A method whose caller sends one message: decode it, call the handler, encode its stream.
fn single_request<Req, Resp, S, F, Fut>(
    config: &ServerConfig,
    request: http::Request<Body>,
    handler: F,
) -> BoxFuture<'static, http::Response<Body>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    S: futures_core::Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
{
    let mut grpc = config.apply(tonic::server::Grpc::new(ProstCodec::<Resp, Req>::default()));
    Box::pin(async move { grpc.server_streaming(Once(Some(handler)), request).await })
}

/// A method whose caller streams: watch for resets, hand the handler a [`Streaming`].
fn streaming_request<Req, Resp, S, F, Fut>(
    config: &ServerConfig,
    request: http::Request<Body>,
    handler: F,
) -> BoxFuture<'static, http::Response<Body>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    S: futures_core::Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
{
    let mut grpc = config.apply(tonic::server::Grpc::new(ProstCodec::<Resp, Req>::default()));
    let request = watch_resets(request);
    let handler = move |r: Request<tonic::Streaming<Req>>| handler(request_stream(r));
    Box::pin(async move { grpc.streaming(Once(Some(handler)), request).await })
}

/// Serves a unary method.
pub fn unary<Req, Resp, F, Fut>(
    config: &ServerConfig,
    request: http::Request<Body>,
    handler: F,
) -> BoxFuture<'static, http::Response<Body>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Unpin + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    single_request(config, request, move |r| {
        let fut = handler(r);
        async move { fut.await.map(unary_body) }
    })
}

/// Serves a server-streaming method.
pub fn server_streaming<Req, Resp, F, Fut>(
    config: &ServerConfig,
    request: http::Request<Body>,
    handler: F,
) -> BoxFuture<'static, http::Response<Body>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
{
    single_request(config, request, move |r| {
        let fut = handler(r);
        async move { fut.await.map(with_trailers) }
    })
}

/// Serves a client-streaming method.
pub fn client_streaming<Req, Resp, F, Fut>(
    config: &ServerConfig,
    request: http::Request<Body>,
    handler: F,
) -> BoxFuture<'static, http::Response<Body>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Unpin + Send + 'static,
    F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    streaming_request(config, request, move |r| {
        let fut = handler(r);
        async move { fut.await.map(unary_body) }
    })
}

/// Serves a bidirectional-streaming method.
pub fn streaming<Req, Resp, F, Fut>(
    config: &ServerConfig,
    request: http::Request<Body>,
    handler: F,
) -> BoxFuture<'static, http::Response<Body>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
{
    streaming_request(config, request, move |r| {
        let fut = handler(r);
        async move { fut.await.map(with_trailers) }
    })
}

/// The answer for a path this service does not have.
pub fn unimplemented(request: http::Request<Body>) -> BoxFuture<'static, http::Response<Body>> {
    let msg = format!("method {} is not implemented", request.uri().path());
    Box::pin(async move { Status::unimplemented(msg).into_http() })
}
