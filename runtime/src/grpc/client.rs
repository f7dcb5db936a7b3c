//! The generic gRPC client: every call through the client call path ([`crate::client`]).

use std::marker::PhantomData;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use futures_core::Stream;
use futures_util::future::BoxFuture;
use http::uri::PathAndQuery;
use tonic::codec::{Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::{ProstCodec, ProstDecoder};

use super::status::normalize;
use crate::client::{self, Call, DefaultTimeout, Exchange, Layer, Layers, Once, TransportKind};
use crate::{ServiceDescriptor, Streaming};

/// What a [`GrpcClient`] sends calls through: any tower service that speaks HTTP/2 the way tonic's
/// [`Channel`] does (a `Channel`, or one wrapped in tower layers). Implemented for every such
/// service; named so that client bounds stay readable.
///
/// The service and its response futures are `Send`: calls run through the client call path,
/// whose layers may send an attempt from another task's future. The service is `Clone` (a
/// `Channel` is; tower's layers keep it so): attempts that run at once — hedged copies — each go
/// through a clone.
pub trait GrpcTransport:
    tonic::client::GrpcService<
        tonic::body::Body,
        ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
                          + Send
                          + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Future: Send,
    > + Clone
    + Send
{
}

impl<T> GrpcTransport for T where
    T: tonic::client::GrpcService<
            tonic::body::Body,
            ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
                              + Send
                              + 'static,
            Error: Into<Box<dyn std::error::Error + Send + Sync>>,
            Future: Send,
        > + Clone
        + Send
{
}

/// The typed client's engine: one generic function per call shape.
///
/// `<Trait>Client<C>` (from the macro) wraps one of these; `C` is any tower service that sends
/// HTTP/2 requests: a [`Channel`], or a `Channel` wrapped in tower layers (timeouts, retries,
/// load balancing, tracing).
///
/// Every call goes through [`client::run`](crate::client): the request message is encoded once
/// (prost), the [`Layer`]s added with [`layer`](GrpcClient::layer) see the call and may send it
/// more than once (the same bytes each time), and the whole call runs under its deadline: the
/// request's `set_timeout` or the client's [`timeout`](GrpcClient::timeout), whichever is
/// shorter.
#[derive(Debug, Clone)]
pub struct GrpcClient<C> {
    inner: tonic::client::Grpc<C>,
    timeout: Option<Duration>,
    layers: Layers,
}

fn not_ready(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Status {
    let e = e.into();
    let status = Status::unavailable(format!("transport not ready: {e}"));
    // A connection that could not be made: nothing was sent.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*e);
    while let Some(err) = source {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return client::not_delivered(status);
        }
        source = err.source();
    }
    status
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

#[cfg(feature = "tls")]
impl GrpcClient<Channel> {
    /// Connects over TLS to `url` (`https://host[:port]`), verifying the server's certificate
    /// against `tls`'s roots (and presenting `tls`'s client certificate, if it has one). The
    /// connection offers ALPN `h2`. The error names what failed: the TCP connect, or the
    /// handshake's reason (an unknown issuer, a certificate for another name, ...).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::grpc::{transport::Channel, GrpcClient};
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?;
    /// let client: GrpcClient<Channel> = GrpcClient::connect_tls("https://localhost:8443", &tls).await?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_tls(url: &str, tls: &crate::tls::ClientTls) -> Result<Self, crate::tls::TlsError> {
        Ok(Self::new(tls.channel(url).await?))
    }
}

impl<C: GrpcTransport> GrpcClient<C> {
    /// Sends calls through `inner`.
    pub fn new(inner: C) -> Self {
        GrpcClient { inner: tonic::client::Grpc::new(inner), timeout: None, layers: Layers::default() }
    }

    /// Sends calls through `inner`, rewriting each request's URI to `origin`.
    pub fn with_origin(inner: C, origin: http::Uri) -> Self {
        GrpcClient { inner: tonic::client::Grpc::with_origin(inner, origin), timeout: None, layers: Layers::default() }
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

    /// Fails calls that take longer than `timeout` with DEADLINE_EXCEEDED and sends the deadline
    /// (`grpc-timeout`) with every call; a request's own `set_timeout` wins when shorter.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs every call through `layer` (inside the layers added before it). See
    /// [`client::Layer`](crate::client::Layer).
    pub fn layer(mut self, layer: impl Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// The call state of `request` for method `index` of `service`.
    fn call_of<T>(&self, service: &'static ServiceDescriptor, index: usize, request: Request<T>) -> (Call, T) {
        let (metadata, extensions, message) = request.into_parts();
        let default = DefaultTimeout { timeout: self.timeout, travels: true };
        (Call::new(service, index, TransportKind::Grpc, metadata, extensions, default), message)
    }

    /// One request, one response: method `index` of `service`.
    pub async fn unary<Req, Resp>(
        &mut self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let (mut call, message) = self.call_of(service, index, request);
        let body = Bytes::from(message.encode_to_vec());
        call.set_request_size(body.len());
        drop(message);
        let path = PathAndQuery::from_static(service.methods[index].grpc_path);
        let exchange = Unary::<C, Resp> { grpc: Shared::new(&mut self.inner), body, path, resp: PhantomData };
        client::run(&self.layers, call, exchange).await
    }

    /// One request, a stream of responses: method `index` of `service`.
    pub async fn server_streaming<Req, Resp>(
        &mut self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let (mut call, message) = self.call_of(service, index, request);
        let body = Bytes::from(message.encode_to_vec());
        call.set_request_size(body.len());
        drop(message);
        let path = PathAndQuery::from_static(service.methods[index].grpc_path);
        let exchange = ServerStreaming::<C, Resp> { grpc: Shared::new(&mut self.inner), body, path, resp: PhantomData };
        client::run(&self.layers, call, exchange).await
    }

    /// A stream of requests, one response: method `index` of `service`. The stream is sent
    /// once; a layer that runs the call again gets FAILED_PRECONDITION.
    pub async fn client_streaming<S, Req, Resp>(
        &mut self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<S>,
    ) -> Result<Response<Resp>, Status>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let (call, stream) = self.call_of(service, index, request);
        let path = PathAndQuery::from_static(service.methods[index].grpc_path);
        let exchange = Streams::<C, S, Req, Resp, false> { grpc: Shared::new(&mut self.inner), stream: Once::new(stream), path, types: PhantomData };
        client::run(&self.layers, call, exchange).await.map(|r| r.map(Outgoing::into_unary))
    }

    /// Streams both ways: method `index` of `service`. The request stream is sent once, as for
    /// [`client_streaming`](Self::client_streaming).
    pub async fn streaming<S, Req, Resp>(
        &mut self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<S>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let (call, stream) = self.call_of(service, index, request);
        let path = PathAndQuery::from_static(service.methods[index].grpc_path);
        let exchange = Streams::<C, S, Req, Resp, true> { grpc: Shared::new(&mut self.inner), stream: Once::new(stream), path, types: PhantomData };
        client::run(&self.layers, call, exchange).await.map(|r| r.map(Outgoing::into_streaming))
    }
}

/// tonic's client, shared by the attempts of one call: `&mut` is what its calls take, so each
/// attempt a layer sends goes through a clone of it (the channel underneath is shared), and the
/// only attempt of a call without layers takes it directly.
struct Shared<'c, C>(tokio::sync::Mutex<&'c mut tonic::client::Grpc<C>>);

impl<'c, C: Clone> Shared<'c, C> {
    fn new(grpc: &'c mut tonic::client::Grpc<C>) -> Self {
        Shared(tokio::sync::Mutex::new(grpc))
    }

    /// tonic's client for one attempt: a clone (a `Channel` clone shares its connection), so
    /// attempts of one call run at once; the lock is held only to clone.
    async fn attempt(&self) -> tonic::client::Grpc<C> {
        (**self.0.lock().await).clone()
    }
}

/// A tonic request for one attempt: the call's metadata (with its deadline) and extensions.
fn request_of<T>(mut call: Call, message: T) -> Request<T> {
    let (metadata, extensions) = call.take_parts();
    Request::from_parts(metadata, extensions, message)
}

async fn unary_attempt<C: GrpcTransport, Resp>(
    grpc: &mut tonic::client::Grpc<C>,
    call: Call,
    body: Bytes,
    path: PathAndQuery,
) -> Result<Response<Resp>, Status>
where
    Resp: prost::Message + Default + Send + 'static,
{
    grpc.ready().await.map_err(not_ready)?;
    grpc.unary(request_of(call, body), path, Replay::<Resp>(PhantomData)).await.map_err(normalize)
}

async fn server_streaming_attempt<C: GrpcTransport, Resp>(
    grpc: &mut tonic::client::Grpc<C>,
    call: Call,
    body: Bytes,
    path: PathAndQuery,
) -> Result<Response<Streaming<Resp>>, Status>
where
    Resp: prost::Message + Default + Send + 'static,
{
    grpc.ready().await.map_err(not_ready)?;
    let response = grpc.server_streaming(request_of(call, body), path, Replay::<Resp>(PhantomData)).await.map_err(normalize)?;
    Ok(response.map(|s| Streaming::new(futures_util::StreamExt::map(s, |r| r.map_err(normalize)))))
}

/// A unary call's attempt: the encoded request, sent again as it is.
struct Unary<'c, C, Resp> {
    grpc: Shared<'c, C>,
    body: Bytes,
    path: PathAndQuery,
    resp: PhantomData<fn() -> Resp>,
}

impl<C, Resp> Exchange for Unary<'_, C, Resp>
where
    C: GrpcTransport,
    Resp: prost::Message + Default + Send + 'static,
{
    type Message = Resp;

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<Resp>, Status>> {
        Box::pin(async move {
            // A clone of tonic's client per attempt, so attempts run at once (hedging).
            let mut grpc = self.grpc.attempt().await;
            if let Some(limit) = client::ResponseLimit::of(&call) {
                grpc = grpc.max_decoding_message_size(limit);
            }
            unary_attempt(&mut grpc, call, self.body.clone(), self.path.clone()).await
        })
    }

    fn send_once<'a>(self, call: Call) -> BoxFuture<'a, Result<Response<Resp>, Status>>
    where
        Self: 'a,
    {
        Box::pin(async move { unary_attempt(self.grpc.0.into_inner(), call, self.body, self.path).await })
    }

    fn expired() -> Status {
        client_deadline()
    }
}

/// A server-streaming call's attempt: the encoded request, sent again as it is.
struct ServerStreaming<'c, C, Resp> {
    grpc: Shared<'c, C>,
    body: Bytes,
    path: PathAndQuery,
    resp: PhantomData<fn() -> Resp>,
}

impl<C, Resp> Exchange for ServerStreaming<'_, C, Resp>
where
    C: GrpcTransport,
    Resp: prost::Message + Default + Send + 'static,
{
    type Message = Streaming<Resp>;

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<Streaming<Resp>>, Status>> {
        Box::pin(async move {
            // A clone of tonic's client per attempt, so attempts run at once (hedging).
            let mut grpc = self.grpc.attempt().await;
            if let Some(limit) = client::ResponseLimit::of(&call) {
                grpc = grpc.max_decoding_message_size(limit);
            }
            server_streaming_attempt(&mut grpc, call, self.body.clone(), self.path.clone()).await
        })
    }

    fn send_once<'a>(self, call: Call) -> BoxFuture<'a, Result<Response<Streaming<Resp>>, Status>>
    where
        Self: 'a,
    {
        Box::pin(async move { server_streaming_attempt(self.grpc.0.into_inner(), call, self.body, self.path).await })
    }

    fn expired() -> Status {
        client_deadline()
    }
}

/// The answer of a client- or bidi-streaming attempt (one exchange type serves both shapes).
enum Outgoing<Resp> {
    Unary(Resp),
    Streaming(Streaming<Resp>),
}

impl<Resp> Outgoing<Resp> {
    fn into_unary(self) -> Resp {
        match self {
            Outgoing::Unary(m) => m,
            Outgoing::Streaming(_) => unreachable!("a client-streaming exchange answers one message"),
        }
    }

    fn into_streaming(self) -> Streaming<Resp> {
        match self {
            Outgoing::Streaming(s) => s,
            Outgoing::Unary(_) => unreachable!("a bidi exchange answers a stream"),
        }
    }
}

/// A client- or bidi-streaming call's attempt (`BIDI`): the request stream, sent once.
struct Streams<'c, C, S, Req, Resp, const BIDI: bool> {
    grpc: Shared<'c, C>,
    stream: Once<S>,
    path: PathAndQuery,
    types: PhantomData<fn() -> (Req, Resp)>,
}

async fn streams_attempt<C: GrpcTransport, S, Req, Resp, const BIDI: bool>(
    grpc: &mut tonic::client::Grpc<C>,
    call: Call,
    stream: S,
    path: PathAndQuery,
) -> Result<Response<Outgoing<Resp>>, Status>
where
    S: Stream<Item = Req> + Send + 'static,
    Req: prost::Message + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    grpc.ready().await.map_err(not_ready)?;
    let codec = ProstCodec::<Req, Resp>::default();
    if BIDI {
        let response = grpc.streaming(request_of(call, stream), path, codec).await.map_err(normalize)?;
        Ok(response.map(|s| Outgoing::Streaming(Streaming::new(futures_util::StreamExt::map(s, |r| r.map_err(normalize))))))
    } else {
        let response = grpc.client_streaming(request_of(call, stream), path, codec).await.map_err(normalize)?;
        Ok(response.map(Outgoing::Unary))
    }
}

impl<C, S, Req, Resp, const BIDI: bool> Exchange for Streams<'_, C, S, Req, Resp, BIDI>
where
    C: GrpcTransport,
    S: Stream<Item = Req> + Send + 'static,
    Req: prost::Message + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    type Message = Outgoing<Resp>;

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<Outgoing<Resp>>, Status>> {
        Box::pin(async move {
            let stream = self.stream.take(&call)?;
            // A clone of tonic's client per attempt, so attempts run at once (hedging).
            let mut grpc = self.grpc.attempt().await;
            if let Some(limit) = client::ResponseLimit::of(&call) {
                grpc = grpc.max_decoding_message_size(limit);
            }
            streams_attempt::<C, S, Req, Resp, BIDI>(&mut grpc, call, stream, self.path.clone()).await
        })
    }

    fn send_once<'a>(self, call: Call) -> BoxFuture<'a, Result<Response<Outgoing<Resp>>, Status>>
    where
        Self: 'a,
    {
        Box::pin(async move {
            let stream = self.stream.into_inner()?;
            streams_attempt::<C, S, Req, Resp, BIDI>(self.grpc.0.into_inner(), call, stream, self.path).await
        })
    }

    fn expired() -> Status {
        client_deadline()
    }
}

/// A gRPC call past its deadline, as the channel's own timeout reports it (`normalize`).
fn client_deadline() -> Status {
    Status::deadline_exceeded("deadline exceeded (client-side timeout)")
}

/// The codec of a replayable call: the request is already encoded (prost bytes, written as they
/// are), the response is decoded with prost.
struct Replay<Resp>(PhantomData<fn() -> Resp>);

impl<Resp: prost::Message + Default + Send + 'static> Codec for Replay<Resp> {
    type Encode = Bytes;
    type Decode = Resp;
    type Encoder = Encoded;
    type Decoder = ProstDecoder<Resp>;

    fn encoder(&mut self) -> Encoded {
        Encoded
    }

    fn decoder(&mut self) -> ProstDecoder<Resp> {
        ProstDecoder::default()
    }
}

/// Writes a message encoded beforehand.
struct Encoded;

impl Encoder for Encoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}
