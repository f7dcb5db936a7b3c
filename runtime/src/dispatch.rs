//! The one dispatch table: how a service's methods reach every transport.
//!
//! ```text
//!   #[service] trait ──macro──▶ impl<H: Trait, T: Transport> Dispatch<T> for __<Trait>Dispatch<H>
//!                                 (ONE match on the method index, one arm per method)
//!                                          │ T::unary / T::server_streaming / … (per call shape)
//!                                          ▼
//!   transport T (grpc::Grpc, rest::Rest, queue::Queue<C>): decode with Carry<Req>, run the
//!   handler through the shared call path (crate::call: deadline, cancellation, panics,
//!   trailers), encode with Carry<Resp>, frame the answer.
//! ```
//!
//! The `#[service]` macro writes one [`Dispatch`] impl per service, generic over the transport:
//! the table only knows method indices and handler calls; it never decodes or frames anything.
//! A transport implements [`Transport`] (one function per call shape) and [`Carry`] (how it
//! reads and writes one message type), resolves a route / path / subject to a method index once,
//! when it registers the service, and calls [`Dispatch::dispatch`] per call.
//!
//! These traits are public so that the servers' bounds are documented; they are implemented by
//! generated code and by transports, not by hand.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::{Request, Response, ServiceDescriptor, Status, Streaming};

/// A service as the macro describes it: the handler type and the static descriptor.
///
/// Implemented by the hidden `__<Trait>Dispatch<H>` type the `#[service]` macro emits.
pub trait ServiceTable: 'static {
    /// The user's implementation of the service trait.
    type Handler: Send + Sync + 'static;
    /// Fully-qualified service name, `package.Service` (a constant: tonic's router needs one).
    const NAME: &'static str;
    /// The service's static descriptor (names, shapes, bindings).
    fn descriptor() -> &'static ServiceDescriptor;
}

/// A service's methods, callable through transport `T`.
///
/// The macro implements it once, for every `T` that can [`Carry`] all of the service's message
/// types. `method` is an index into [`ServiceDescriptor::methods`].
pub trait Dispatch<T: Transport>: ServiceTable {
    /// Runs method `method` for one call. An index the service does not have answers
    /// [`Transport::unimplemented`].
    fn dispatch(handler: &Arc<Self::Handler>, method: usize, call: T::Call) -> BoxFuture<'static, T::Reply>;
}

/// A transport's message codec for type `M`: how it reads `M` from a request and writes `M`
/// into an answer.
///
/// gRPC carries prost messages, REST and the JSON queue codec carry serde types, the protobuf
/// queue codec carries prost messages.
///
/// (The `Self: Transport` bounds sit on the methods rather than on the trait: as a supertrait,
/// a `Self: Carry<M>` where-clause in a generic transport's impl would hide the transport's own
/// associated types from it.)
pub trait Carry<M> {
    /// Reads one message.
    fn decode(from: <Self as Transport>::Decoder<'_>) -> Result<M, Status>
    where
        Self: Transport;
    /// Writes one message.
    fn encode(message: &M, to: <Self as Transport>::Encoder<'_>) -> Result<(), Status>
    where
        Self: Transport;
}

/// One transport: what a call looks like on the way in and out, and one function per call shape.
///
/// Each function decodes the request with [`Carry`], runs `handler` through the shared call path
/// (the same deadline, cancellation, panic and trailer rules on every transport) and encodes the
/// answer. Adding a transport means implementing this trait and [`Carry`] (README, "Adding a
/// transport").
pub trait Transport: Sized + 'static {
    /// One call on its way in (undecoded request and call state).
    type Call: Send + 'static;
    /// The transport's answer to a call.
    type Reply: Send + 'static;
    /// Where [`Carry::decode`] reads a message from.
    type Decoder<'a>;
    /// Where [`Carry::encode`] writes a message to.
    type Encoder<'a>;

    /// One request, one response.
    fn unary<Req, Resp, F, Fut>(call: Self::Call, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static;

    /// One request, a stream of responses.
    fn server_streaming<Req, Resp, F, Fut>(call: Self::Call, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static;

    /// A stream of requests, one response.
    fn client_streaming<Req, Resp, F, Fut>(call: Self::Call, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static;

    /// Streams both ways.
    fn streaming<Req, Resp, F, Fut>(call: Self::Call, handler: F) -> BoxFuture<'static, Self::Reply>
    where
        Self: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static;

    /// The answer for a method index the service does not have.
    fn unimplemented(call: Self::Call) -> BoxFuture<'static, Self::Reply>;
}
