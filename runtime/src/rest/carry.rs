//! How the REST transport carries one message ([`Carry`] for [`Rest`]): serde types read from a
//! matched request (body, path variables, query), from one line of an NDJSON request stream or
//! from an OpenAPI operation's checked parameters and body; written as JSON (the whole message or
//! its `response_body` field) or captured as the documented response an OpenAPI response enum
//! holds. The framing around it (unary JSON, NDJSON, SSE) is `methods`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::Status;

use super::call::{field_of, Call};
use crate::dispatch::{Carry, Transport};

/// The REST transport, as [`RestRouter`](super::RestRouter) drives the dispatch table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rest;

/// Where REST reads a message from: the matched request (body, path variables, query), one
/// line of an NDJSON request stream, or an OpenAPI operation's decoded parameters and body.
pub struct RestDecoder<'a>(pub(crate) DecodeFrom<'a>);

pub(crate) enum DecodeFrom<'a> {
    /// A proto-bound request: body merged with path variables and query as the binding says.
    Message { call: &'a Call, body: &'a [u8] },
    /// One JSON message (a line of an NDJSON request stream).
    Line(&'a [u8]),
    /// An OpenAPI operation's parameters and body, by request-struct field.
    Fields(crate::api::params::Fields),
}

/// Where REST writes a message to: JSON bytes (the whole message or its `response_body` field),
/// or an OpenAPI response enum's chosen variant.
pub struct RestEncoder<'a>(pub(crate) EncodeTo<'a>);

pub(crate) enum EncodeTo<'a> {
    Json { response_body: &'static str, out: &'a mut Vec<u8> },
    Capture { state: &'a crate::api::contract::OpState, out: &'a mut Option<crate::api::response::CaptureResult> },
}

/// REST carries serde types: proto3 JSON for generated messages (`proto_json`), plain serde for
/// code-first and OpenAPI types.
impl<M: Serialize + DeserializeOwned + Send + 'static> Carry<M> for Rest {
    fn decode(from: RestDecoder<'_>) -> Result<M, Status>
    where
        Self: Transport,
    {
        match from.0 {
            DecodeFrom::Message { call, body } => call.decode::<M>(body),
            DecodeFrom::Line(line) => super::decode::from_json::<M>(line),
            DecodeFrom::Fields(fields) => super::decode::from_fields::<M>(fields),
        }
    }

    fn encode(message: &M, to: RestEncoder<'_>) -> Result<(), Status>
    where
        Self: Transport,
    {
        match to.0 {
            EncodeTo::Json { response_body, out } => {
                let json = if response_body.is_empty() {
                    super::decode::to_json(message)
                } else {
                    super::decode::to_value(message).and_then(|v| serde_json::to_vec(&field_of(v, response_body)))
                };
                *out = json.map_err(|e| Status::internal(format!("encoding the response as JSON: {e}")))?;
                Ok(())
            }
            EncodeTo::Capture { state, out } => {
                *out = Some(crate::api::response::capture(message, state.op.responses, &state.responses));
                Ok(())
            }
        }
    }
}
