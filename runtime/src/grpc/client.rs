//! The generic gRPC client.

use futures_core::Stream;
use http::uri::PathAndQuery;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use super::status::normalize;
use crate::Streaming;

/// What a [`GrpcClient`] sends calls through: any tower service that speaks HTTP/2 the way tonic's
/// [`Channel`] does (a `Channel`, or one wrapped in tower layers). Implemented for every such
/// service; named so that client bounds stay readable.
pub trait GrpcTransport:
    tonic::client::GrpcService<
        tonic::body::Body,
        ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
                          + Send
                          + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    >
{
}

impl<T> GrpcTransport for T where
    T: tonic::client::GrpcService<
        tonic::body::Body,
        ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
                          + Send
                          + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    >
{
}

/// The typed client's engine: one generic function per call shape.
///
/// `<Trait>Client<C>` (from the macro) wraps one of these; `C` is any tower service that sends
/// HTTP/2 requests: a [`Channel`], or a `Channel` wrapped in tower layers (timeouts, retries,
/// load balancing, tracing).
#[derive(Debug, Clone)]
pub struct GrpcClient<C> {
    inner: tonic::client::Grpc<C>,
}

fn not_ready(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Status {
    Status::unavailable(format!("transport not ready: {}", e.into()))
}

impl GrpcClient<Channel> {
    /// Connects to `dst` (e.g. `"http://127.0.0.1:50051"`).
    pub async fn connect<D>(dst: D) -> Result<Self, tonic::transport::Error>
    where
        D: TryInto<Endpoint>,
        D::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let endpoint = Endpoint::new(dst)?;
        Ok(Self::new(endpoint.connect().await?))
    }
}

impl<C: GrpcTransport> GrpcClient<C> {
    /// Sends calls through `inner`.
    pub fn new(inner: C) -> Self {
        GrpcClient { inner: tonic::client::Grpc::new(inner) }
    }

    /// Sends calls through `inner`, rewriting each request's URI to `origin`.
    pub fn with_origin(inner: C, origin: http::Uri) -> Self {
        GrpcClient { inner: tonic::client::Grpc::with_origin(inner, origin) }
    }

    /// Compresses requests with `encoding`.
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.inner = self.inner.send_compressed(encoding);
        self
    }

    /// Accepts responses compressed with `encoding`.
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.inner = self.inner.accept_compressed(encoding);
        self
    }

    /// Largest response message accepted (default 4 MiB).
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.inner = self.inner.max_decoding_message_size(limit);
        self
    }

    /// Largest request message sent (default unlimited).
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        self.inner = self.inner.max_encoding_message_size(limit);
        self
    }

    /// One request, one response.
    pub async fn unary<Req, Resp>(
        &mut self,
        request: Request<Req>,
        path: &'static str,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner.ready().await.map_err(not_ready)?;
        let codec = ProstCodec::<Req, Resp>::default();
        self.inner.unary(request, PathAndQuery::from_static(path), codec)
            .await
            .map_err(normalize)
    }

    /// One request, a stream of responses.
    pub async fn server_streaming<Req, Resp>(
        &mut self,
        request: Request<Req>,
        path: &'static str,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner.ready().await.map_err(not_ready)?;
        let codec = ProstCodec::<Req, Resp>::default();
        let response = self.inner.server_streaming(request, PathAndQuery::from_static(path), codec).await.map_err(normalize)?;
        Ok(response.map(|s| Streaming::new(futures_util::StreamExt::map(s, |r| r.map_err(normalize)))))
    }

    /// A stream of requests, one response.
    pub async fn client_streaming<S, Req, Resp>(
        &mut self,
        request: Request<S>,
        path: &'static str,
    ) -> Result<Response<Resp>, Status>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner.ready().await.map_err(not_ready)?;
        let codec = ProstCodec::<Req, Resp>::default();
        self.inner.client_streaming(request, PathAndQuery::from_static(path), codec)
            .await
            .map_err(normalize)
    }

    /// Streams both ways.
    pub async fn streaming<S, Req, Resp>(
        &mut self,
        request: Request<S>,
        path: &'static str,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner.ready().await.map_err(not_ready)?;
        let codec = ProstCodec::<Req, Resp>::default();
        let response = self.inner.streaming(request, PathAndQuery::from_static(path), codec).await.map_err(normalize)?;
        Ok(response.map(|s| Streaming::new(futures_util::StreamExt::map(s, |r| r.map_err(normalize)))))
    }
}
