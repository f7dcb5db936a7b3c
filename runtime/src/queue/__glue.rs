//! What `#[service]` expansions call for queues: the dispatch trait, the codecs, and one
//! function per call shape. Not a public API.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::wire::{self, Envelope};
use crate::context::CancelOnDrop;
use crate::{Cancellation, Deadline, ServiceDescriptor, Streaming};

pub use super::client::QueueClient;

/// Implemented by the macro for each service: the descriptor and the method switch.
pub trait Dispatch: 'static {
    /// The user's implementation of the service trait.
    type Handler: Send + Sync + 'static;
    /// The service's static descriptor.
    fn descriptor() -> &'static ServiceDescriptor;
    /// Runs method `call.method_index()`.
    fn dispatch(handler: &Arc<Self::Handler>, call: Call) -> BoxFuture<'static, Outcome>;
}

/// One request taken off the broker, on its way to a handler.
pub struct Call {
    pub(crate) method: usize,
    pub(crate) env: Envelope,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancellation: Cancellation,
}

impl Call {
    /// Index of the method in the service descriptor.
    pub fn method_index(&self) -> usize {
        self.method
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::from_parts(wire::metadata_of(&self.env), Default::default(), message);
        if let Some(d) = self.deadline {
            request.extensions_mut().insert(Deadline(d));
        }
        request.extensions_mut().insert(self.cancellation.clone());
        request
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

/// How a service's messages are encoded on the wire.
pub trait Codec<T>: 'static {
    /// The `content-type` header value.
    const CONTENT_TYPE: &'static str;
    /// Encodes `value`; may add headers to its frame.
    fn encode(value: &T, headers: &mut Vec<(wire::Str, wire::Str)>) -> Result<Bytes, Status>;
    /// Decodes a body (its frame's headers at hand).
    fn decode(body: &[u8], env: &Envelope) -> Result<T, Status>;
}

/// Protobuf (prost) bodies: services from `.proto` files and gRPC code-first traits.
pub struct Proto;

impl<T: prost::Message + Default + 'static> Codec<T> for Proto {
    const CONTENT_TYPE: &'static str = wire::PROTOBUF;
    fn encode(value: &T, _: &mut Vec<(wire::Str, wire::Str)>) -> Result<Bytes, Status> {
        Ok(Bytes::from(value.encode_to_vec()))
    }
    fn decode(body: &[u8], _: &Envelope) -> Result<T, Status> {
        T::decode(body).map_err(|e| Status::invalid_argument(format!("decoding the protobuf body: {e}")))
    }
}

/// JSON (serde) bodies: OpenAPI services and JSON-only code-first traits.
pub struct Json;

impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Codec<T> for Json {
    const CONTENT_TYPE: &'static str = wire::JSON;
    fn encode(value: &T, _: &mut Vec<(wire::Str, wire::Str)>) -> Result<Bytes, Status> {
        serde_json::to_vec(value).map(Bytes::from).map_err(|e| Status::internal(format!("encoding JSON: {e}")))
    }
    fn decode(body: &[u8], _: &Envelope) -> Result<T, Status> {
        serde_json::from_slice(body).map_err(|e| Status::invalid_argument(format!("decoding the JSON body: {e}")))
    }
}

fn check_content_type<C: Codec<T>, T>(env: &Envelope) -> Result<(), Status> {
    match env.header(wire::CONTENT_TYPE) {
        Some(ct) if !ct.eq_ignore_ascii_case(C::CONTENT_TYPE) && !ct.is_empty() => Err(Status::invalid_argument(
            format!("content-type `{ct}` is not accepted: this service takes `{}`", C::CONTENT_TYPE),
        )),
        _ => Ok(()),
    }
}

/// Runs `fut` until the call's deadline.
async fn run<T>(deadline: Option<Instant>, fut: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), fut)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded while the handler ran"))),
        None => fut.await,
    }
}

/// One request, one response (also how events are handled).
pub fn unary<C, Req, Resp, F, Fut>(call: Call, f: F) -> BoxFuture<'static, Outcome>
where
    C: Codec<Req> + Codec<Resp>,
    Req: Send + 'static,
    Resp: Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let message = match check_content_type::<C, Req>(&call.env).and_then(|()| C::decode(&call.env.body, &call.env)) {
            Ok(m) => m,
            Err(status) => return Outcome::Unary(Err(status)),
        };
        let mut guard: CancelOnDrop = call.cancellation.guard();
        let result = run(call.deadline, f(call.request(message))).await;
        guard.disarm();
        Outcome::Unary(result.and_then(|response| {
            let (mut metadata, message, extensions) = response.into_parts();
            // Trailers travel with the one reply frame.
            if let Some(crate::Trailers(trailers)) = extensions.get::<crate::Trailers>() {
                append(&mut metadata, trailers);
            }
            let mut headers = Vec::new();
            let body = <C as Codec<Resp>>::encode(&message, &mut headers)?;
            Ok((metadata, body, headers))
        }))
    })
}

/// One request, a stream of responses.
pub fn server_streaming<C, Req, Resp, F, Fut>(call: Call, f: F) -> BoxFuture<'static, Outcome>
where
    C: Codec<Req> + Codec<Resp>,
    Req: Send + 'static,
    Resp: Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let message = match check_content_type::<C, Req>(&call.env).and_then(|()| C::decode(&call.env.body, &call.env)) {
            Ok(m) => m,
            Err(status) => return Outcome::Unary(Err(status)),
        };
        let guard = call.cancellation.guard();
        match run(call.deadline, f(call.request(message))).await {
            Ok(response) => {
                let (metadata, stream, extensions) = response.into_parts();
                // Trailers travel on the end frame: an OK status carrying them ends the stream.
                let trailers = extensions.get::<crate::Trailers>().map(|t| t.0.clone());
                let stream = stream.chain(futures_util::stream::iter(
                    trailers.map(|md| Err(Status::with_metadata(tonic::Code::Ok, "", md))),
                ));
                let deadline = call.deadline;
                let encoded = stream.map(|item| {
                    item.and_then(|m| <C as Codec<Resp>>::encode(&m, &mut Vec::new()))
                });
                let encoded = futures_util::stream::unfold(
                    (Box::pin(encoded), Some(guard)),
                    move |(mut s, mut guard)| async move {
                        let next = match deadline {
                            Some(d) => tokio::time::timeout_at(d.into(), s.next())
                                .await
                                .unwrap_or_else(|_| Some(Err(Status::deadline_exceeded("deadline exceeded")))),
                            None => s.next().await,
                        };
                        if next.is_none() {
                            if let Some(mut g) = guard.take() {
                                g.disarm();
                            }
                        }
                        next.map(|n| (n, (s, guard)))
                    },
                );
                Outcome::Stream(metadata, Box::pin(encoded))
            }
            Err(status) => Outcome::Unary(Err(status)),
        }
    })
}

/// Appends every entry of `from` to `to`.
fn append(to: &mut MetadataMap, from: &MetadataMap) {
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

/// Client and bidi streaming, which queues do not carry.
pub fn unsupported(call: Call) -> BoxFuture<'static, Outcome> {
    let _ = call;
    Box::pin(std::future::ready(Outcome::Unary(Err(Status::unimplemented(
        "client and bidi streaming are not carried over queues; call this method over gRPC or REST",
    )))))
}

/// A method index this service does not have.
pub fn unimplemented(call: Call) -> BoxFuture<'static, Outcome> {
    let _ = call;
    Box::pin(std::future::ready(Outcome::Unary(Err(Status::unimplemented("no such method")))))
}
