//! The queue transport's call and message types: [`Queue`] (the transport, one per codec),
//! [`QueueCall`] (a request taken off the broker), [`Outcome`] (what a handler produced,
//! encoded), and how one message is carried ([`Carry`] over the service's [`Codec`], or an
//! OpenAPI operation's checked JSON and captured response). What runs a call is `methods`
//! (every method) and `operation` (OpenAPI operations).

use std::marker::PhantomData;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::codec::{check_content_type, Codec};
use super::wire::{self, Envelope};
use crate::dispatch::Carry;

/// One OpenAPI operation as a queue server serves it: its contract, prepared once, and the
/// server's authorization hook.
#[cfg(feature = "openapi")]
#[derive(Clone)]
pub(crate) struct OpCall {
    pub(crate) state: std::sync::Arc<crate::api::contract::OpState>,
    pub(crate) authorize: Option<crate::api::security::Authorize>,
}

/// Marks an operation method when the `openapi` feature is off (it is then not served).
#[cfg(not(feature = "openapi"))]
#[derive(Clone)]
pub(crate) struct OpCall;

/// The queue transport with codec `C` ([`Proto`](super::Proto) or [`Json`](super::Json)), as
/// [`QueueServer`](super::QueueServer) drives the dispatch table.
pub struct Queue<C>(PhantomData<fn() -> C>);

impl<C> std::fmt::Debug for Queue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queue")
    }
}

/// In a queue handler's request extensions: the frame's `message-id` (the dedupe key; a call's
/// idempotency key, or for a hedged copy its own id, see docs/queue-protocol.md), when it has one.
///
/// ```
/// # use switchboard::{Request, Status};
/// fn id_of<T>(req: &Request<T>) -> Option<&str> {
///     req.extensions().get::<switchboard::queue::MessageId>().map(|id| id.0.as_str())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(pub String);

/// One request taken off the broker, on its way to a handler.
pub struct QueueCall {
    pub(crate) method: usize,
    /// The method's `/package.Service/Method` path (its name in metrics and spans).
    pub(crate) path: &'static str,
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

    /// The extensions a handler's request starts with: the frame's [`MessageId`], if it has one.
    pub(crate) fn extensions(&self) -> http::Extensions {
        let mut extensions = http::Extensions::new();
        if let Some(id) = self.env.header(wire::MESSAGE_ID) {
            extensions.insert(MessageId(id.to_owned()));
        }
        extensions
    }

    /// The method's name in its metrics and server span ([`crate::observe`]):
    /// `package.Service/Method`, as on every transport.
    pub(crate) fn observed_name(&self) -> &str {
        self.path.strip_prefix('/').unwrap_or(self.path)
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
    pub(crate) fn new(body: &'a mut Bytes, headers: &'a mut Vec<(wire::Str, wire::Str)>) -> Self {
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
