//! The generic gRPC server.

use std::convert::Infallible;
use std::future::Future;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::NamedService;
use tonic::Status;

use super::__glue::Dispatch;
use crate::context::{parse_grpc_timeout, CancelOnDrop};
use crate::{Cancellation, Deadline, ServiceDescriptor};

/// Server-side gRPC settings shared by every method of a service.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub(crate) accept: EnabledCompressionEncodings,
    pub(crate) send: EnabledCompressionEncodings,
    pub(crate) max_decoding_message_size: Option<usize>,
    pub(crate) max_encoding_message_size: Option<usize>,
}

impl ServerConfig {
    pub(crate) fn apply<C>(&self, grpc: tonic::server::Grpc<C>) -> tonic::server::Grpc<C>
    where
        C: tonic::codec::Codec,
    {
        grpc.apply_compression_config(self.accept, self.send)
            .apply_max_message_size_config(self.max_decoding_message_size, self.max_encoding_message_size)
    }
}

/// Serves a `#[service]` trait implementation over gRPC.
///
/// The macro defines `type <Trait>Server<T> = GrpcServer<...>`; build one with
/// `<Trait>Server::new(handler)` and add it to a `tonic::transport::Server`, or wrap it in tower
/// layers like any other `Service`.
///
/// Before the handler runs, the server puts a [`Deadline`] (from `grpc-timeout`) and a
/// [`Cancellation`] into the request's extensions; the cancellation fires if the caller goes away
/// before the response (including a streamed body) has been fully sent. A call still running at
/// its deadline ends with `DEADLINE_EXCEEDED`.
pub struct GrpcServer<D: Dispatch> {
    handler: Arc<D::Handler>,
    config: Arc<ServerConfig>,
}

impl<D: Dispatch> GrpcServer<D> {
    /// Serves `handler`.
    pub fn new(handler: D::Handler) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// Serves a handler that is shared with other code.
    pub fn from_arc(handler: Arc<D::Handler>) -> Self {
        GrpcServer { handler, config: Arc::default() }
    }

    /// The shared handler (to serve the same one over another transport).
    pub fn handler(&self) -> &Arc<D::Handler> {
        &self.handler
    }

    /// The service this server serves.
    pub fn descriptor(&self) -> &'static ServiceDescriptor {
        D::descriptor()
    }

    /// Accepts requests compressed with `encoding` (e.g. [`CompressionEncoding::Gzip`]).
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        Arc::make_mut(&mut self.config).accept.enable(encoding);
        self
    }

    /// Compresses responses with `encoding` when the client accepts it.
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        Arc::make_mut(&mut self.config).send.enable(encoding);
        self
    }

    /// Largest request message accepted (default 4 MiB); larger ones fail with
    /// `RESOURCE_EXHAUSTED`.
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_decoding_message_size = Some(limit);
        self
    }

    /// Largest response message sent (default unlimited); a larger one fails the call (tonic
    /// reports `OUT_OF_RANGE` in the trailers; switchboard clients see `RESOURCE_EXHAUSTED`).
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_encoding_message_size = Some(limit);
        self
    }
}

impl<D: Dispatch> Clone for GrpcServer<D> {
    fn clone(&self) -> Self {
        GrpcServer { handler: self.handler.clone(), config: self.config.clone() }
    }
}

impl<D: Dispatch> fmt::Debug for GrpcServer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcServer").field("service", &D::NAME).field("config", &self.config).finish()
    }
}

impl<D: Dispatch> NamedService for GrpcServer<D> {
    const NAME: &'static str = D::NAME;
}

impl<D, B> tower_service::Service<http::Request<B>> for GrpcServer<D>
where
    D: Dispatch,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<GrpcResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let mut req = req.map(Body::new);
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
            .and_then(|d| Instant::now().checked_add(d));
        if let Some(at) = deadline {
            req.extensions_mut().insert(Deadline(at));
        }
        let cancellation = Cancellation::new();
        let guard = cancellation.guard();
        req.extensions_mut().insert(cancellation);
        ResponseFuture {
            inner: D::dispatch(&self.handler, &self.config, req),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at.into()))),
            guard: Some(guard),
        }
    }
}

/// The future of a [`GrpcServer`] response: the method's future, bounded by the call's deadline.
/// Dropping it before it completes fires the call's [`Cancellation`].
pub struct ResponseFuture {
    inner: BoxFuture<'static, http::Response<Body>>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    guard: Option<CancelOnDrop>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<GrpcResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (mut response, expired) = match this.inner.as_mut().poll(cx) {
            Poll::Ready(r) => (r, false),
            Poll::Pending => {
                let expired = this.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                (Status::deadline_exceeded("deadline exceeded").into_http(), true)
            }
        };
        let mut guard = this.guard.take().unwrap_or_else(CancelOnDrop::disarmed);
        // A trailers-only response (empty body: an error, status in the headers) is complete as
        // it stands; hyper sends it without ever polling the body.
        if response.body().is_end_stream() {
            fix_size_limit_status(response.headers_mut());
            if !expired {
                guard.disarm();
            }
        }
        if expired {
            // The handler's future is dropped here: the call is over for it.
            drop(guard);
            guard = CancelOnDrop::disarmed();
        }
        let deadline = this.deadline.take();
        Poll::Ready(Ok(response.map(|inner| GrpcResponseBody { inner, guard, deadline, ended: false })))
    }
}

pin_project_lite::pin_project! {
    /// A request body whose error (the caller reset the stream) fires the call's
    /// [`Cancellation`] before the decoder sees it. Used for methods whose caller streams.
    pub(crate) struct WatchRequestBody<B> {
        #[pin]
        inner: B,
        cancellation: Cancellation,
    }
}

impl<B> WatchRequestBody<B> {
    pub(crate) fn new(inner: B, cancellation: Cancellation) -> Self {
        WatchRequestBody { inner, cancellation }
    }
}

impl<B> HttpBody for WatchRequestBody<B>
where
    B: HttpBody<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.cancellation.cancel();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The response body of a [`GrpcServer`] call: cancels the call's [`Cancellation`] if dropped
    /// before its end, and ends a stream still running at the call's deadline with
    /// `DEADLINE_EXCEEDED` trailers.
    pub struct GrpcResponseBody {
        #[pin]
        inner: Body,
        guard: CancelOnDrop,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        ended: bool,
    }
}

impl fmt::Debug for GrpcResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcResponseBody").field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl HttpBody for GrpcResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let mut this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        if let Some(deadline) = this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                *this.ended = true;
                drop(std::mem::replace(this.guard, CancelOnDrop::disarmed()));
                let mut trailers = http::HeaderMap::new();
                // Only fails for statuses with unencodable details; this one has none.
                let _ = Status::deadline_exceeded("deadline exceeded").add_header(&mut trailers);
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        // The response is complete once its trailers (or its end) went out; hyper may stop
        // polling as soon as `is_end_stream` says so, so disarm here rather than on `None`.
        let complete = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers() || this.inner.is_end_stream(),
            _ => false,
        };
        if complete {
            *this.ended = matches!(polled, Poll::Ready(None));
            this.guard.disarm();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a status is tonic's report of a message over the configured size limit.
pub(crate) fn is_size_limit(code: tonic::Code, message: &str) -> bool {
    code == tonic::Code::OutOfRange
        && (message.starts_with("Error, decoded message length too large")
            || message.starts_with("Error, encoded message length too large"))
}

/// The gRPC spec says an over-limit message is `RESOURCE_EXHAUSTED`; tonic reports
/// `OUT_OF_RANGE`. Rewrites trailers-only responses (the case of an over-limit request).
fn fix_size_limit_status(headers: &mut http::HeaderMap) {
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    let Some(code) = code else { return };
    let msg = headers.get("grpc-message").map(|v| v.as_bytes()).unwrap_or_default();
    let msg = String::from_utf8_lossy(msg).replace("%20", " ");
    if is_size_limit(tonic::Code::from_i32(code), &msg) {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}
