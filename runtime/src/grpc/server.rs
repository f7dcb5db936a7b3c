//! The generic gRPC server.

use std::convert::Infallible;
use std::future::Future;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::Status;

use super::config::ServerConfig;
use super::methods::{Grpc, GrpcCall};
use super::status::fix_size_limit_status;
use crate::context::{parse_grpc_timeout, CancelOnDrop};
use crate::dispatch::Dispatch;
use crate::dedupe::http::{Framing, Window};
use crate::client::TransportKind;
use crate::observe::server::ServerCall;
use crate::shed::{self, InFlight, Limit};
use crate::{CallShape, Cancellation, Deadline, ServiceDescriptor};

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
pub struct GrpcServer<D: Dispatch<Grpc>> {
    handler: Arc<D::Handler>,
    config: Arc<ServerConfig>,
    /// gRPC path → method index, built once per service.
    methods: Arc<HashMap<&'static str, usize>>,
    /// Unary calls with an `idempotency-key` run once per key (shared by clones).
    dedupe: Window,
    /// The limit on calls in flight, if one is set (shared by clones).
    shed: Option<Arc<Limit>>,
}

impl<D: Dispatch<Grpc>> GrpcServer<D> {
    /// Serves `handler`.
    pub fn new(handler: D::Handler) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// Serves a handler that is shared with other code.
    pub fn from_arc(handler: Arc<D::Handler>) -> Self {
        let methods = D::descriptor().methods.iter().enumerate().map(|(i, m)| (m.grpc_path, i)).collect();
        GrpcServer { handler, config: Arc::default(), methods: Arc::new(methods), dedupe: Window::default(), shed: None }
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

    /// How long a unary call's `idempotency-key` is remembered (default 5 minutes; zero turns
    /// keyed dedupe off). Within it a call with the same method, key and `authorization` as an
    /// earlier one does not run again: it gets the earlier answer, or waits for it while the
    /// first still runs. Answers that say "try again" (UNAVAILABLE, RESOURCE_EXHAUSTED,
    /// CANCELLED, DEADLINE_EXCEEDED, a panic) are not remembered, so a retry runs again. Up to
    /// `max_bytes` of answers are kept (default 64 MiB; the oldest go first, and a duplicate of
    /// an answer that was not kept gets ABORTED).
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[switchboard::service(package = "demo")] pub trait Echo {
    /// #     async fn echo(&self, req: switchboard::Request<String>) -> Result<switchboard::Response<String>, switchboard::Status>;
    /// # }
    /// # struct Impl;
    /// # impl Echo for Impl {
    /// #     async fn echo(&self, req: switchboard::Request<String>) -> Result<switchboard::Response<String>, switchboard::Status> { Ok(switchboard::Response::new(req.into_inner())) }
    /// # }
    /// let server = EchoServer::new(Impl).dedupe(Duration::from_secs(60), 16 * 1024 * 1024);
    /// # let _ = server;
    /// ```
    pub fn dedupe(mut self, window: Duration, max_bytes: usize) -> Self {
        self.dedupe = Window::new(window, 100_000, max_bytes);
        self
    }

    /// Sheds load: past `max_in_flight` calls running at once (this server and its clones), a new
    /// call is answered RESOURCE_EXHAUSTED at once with `grpc-retry-pushback-ms: <pushback>`, which
    /// switchboard's and gRPC's retrying clients wait for before they try again. A call counts until
    /// its whole response (a stream to its end) has been sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[switchboard::service(package = "demo")] pub trait Echo {
    /// #     async fn echo(&self, req: switchboard::Request<String>) -> Result<switchboard::Response<String>, switchboard::Status>;
    /// # }
    /// # struct Impl;
    /// # impl Echo for Impl {
    /// #     async fn echo(&self, req: switchboard::Request<String>) -> Result<switchboard::Response<String>, switchboard::Status> { Ok(switchboard::Response::new(req.into_inner())) }
    /// # }
    /// let server = EchoServer::new(Impl).shed_load(64, Duration::from_millis(200));
    /// # let _ = server;
    /// ```
    pub fn shed_load(mut self, max_in_flight: usize, pushback: Duration) -> Self {
        self.shed = Some(Limit::new(max_in_flight, pushback));
        self
    }

    /// Largest response message sent (default unlimited); a larger one fails the call (tonic
    /// reports `OUT_OF_RANGE` in the trailers; switchboard clients see `RESOURCE_EXHAUSTED`).
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_encoding_message_size = Some(limit);
        self
    }
}

impl<D: Dispatch<Grpc>> Clone for GrpcServer<D> {
    fn clone(&self) -> Self {
        GrpcServer { handler: self.handler.clone(), config: self.config.clone(), methods: self.methods.clone(), dedupe: self.dedupe.clone(), shed: self.shed.clone() }
    }
}

impl<D: Dispatch<Grpc>> fmt::Debug for GrpcServer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcServer").field("service", &D::NAME).field("config", &self.config).finish()
    }
}

impl<D: Dispatch<Grpc>> NamedService for GrpcServer<D> {
    const NAME: &'static str = D::NAME;
}

impl<D, B> tower_service::Service<http::Request<B>> for GrpcServer<D>
where
    D: Dispatch<Grpc>,
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
        static GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");
        let mut req = req.map(Body::new);
        let deadline = req
            .headers()
            .get(&GRPC_TIMEOUT)
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
            .and_then(|d| Instant::now().checked_add(d));
        if let Some(at) = deadline {
            req.extensions_mut().insert(Deadline(at));
        }
        let index = self.methods.get(req.uri().path()).copied();
        // A method the service has is observed (crate::observe): its span, trace context and
        // metrics live with the call's cancellation.
        let cancellation = match index {
            Some(index) => {
                let path = D::descriptor().methods[index].grpc_path;
                let observed = ServerCall::of_headers(req.headers(), path.strip_prefix('/').unwrap_or(path), TransportKind::Grpc);
                if let Some(t) = observed.as_ref().and_then(ServerCall::trace) {
                    req.extensions_mut().insert(t.clone());
                }
                Cancellation::serving(observed)
            }
            None => Cancellation::new(),
        };
        let guard = cancellation.guard();
        req.extensions_mut().insert(cancellation);
        let permit = match shed::admit(self.shed.as_ref()) {
            Ok(permit) => permit,
            Err(status) => {
                let mut guard = guard;
                guard.disarm();
                let inner = Box::pin(std::future::ready(status.into_http()));
                return ResponseFuture { inner, deadline: None, guard: Some(guard), permit: None };
            }
        };
        ResponseFuture {
            inner: match index {
                Some(index) => {
                    let method = &D::descriptor().methods[index];
                    let key = if method.shape == CallShape::Unary { self.dedupe.key(method.grpc_path, req.headers()) } else { None };
                    let call = D::dispatch(&self.handler, index, GrpcCall { config: (*self.config).clone(), request: req });
                    match key {
                        None => call,
                        Some(key) => Box::pin(self.dedupe.clone().once(key, call, GRPC_FRAMING)),
                    }
                }
                None => <Grpc as crate::dispatch::Transport>::unimplemented(GrpcCall { config: ServerConfig::default(), request: req }),
            },
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at.into()))),
            guard: Some(guard),
            permit,
        }
    }
}

/// How gRPC answers read for the dedupe window: the status in the trailers (or, trailers-only,
/// in the headers).
const GRPC_FRAMING: Framing<Body> = Framing {
    status_of: |reply| {
        let (_, headers, trailers) = reply.parts();
        trailers
            .and_then(Status::from_header_map)
            .or_else(|| Status::from_header_map(headers))
            .unwrap_or_else(|| Status::unknown("no grpc-status in the answer"))
    },
    wrap: Body::new,
    error: |status| status.clone().into_http(),
};

/// The future of a [`GrpcServer`] response: the method's future, bounded by the call's deadline.
/// Dropping it before it completes fires the call's [`Cancellation`].
pub struct ResponseFuture {
    inner: BoxFuture<'static, http::Response<Body>>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    guard: Option<CancelOnDrop>,
    /// The call's place under the server's load limit, freed with the response body.
    permit: Option<InFlight>,
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
        let permit = this.permit.take();
        Poll::Ready(Ok(response.map(|inner| GrpcResponseBody { inner, guard, deadline, ended: false, permit })))
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
        permit: Option<InFlight>,
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
            // Its place under the load limit is free once the answer is out.
            *this.permit = None;
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

