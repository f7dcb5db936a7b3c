//! How a service's messages are encoded in queue frames: protobuf or JSON, one per service.

use bytes::Bytes;
use tonic::Status;

use super::wire::{self, Envelope};

/// How a service's messages are encoded on the wire (one codec per service: protobuf for
/// services from `.proto` files and gRPC code-first traits, JSON for the others).
pub trait Codec<T>: Send + Sync + 'static {
    /// The `content-type` header value.
    const CONTENT_TYPE: &'static str;
    /// Encodes `value`; may add headers to its frame.
    fn encode(value: &T, headers: &mut Vec<(wire::Str, wire::Str)>) -> Result<Bytes, Status>;
    /// Decodes a body (its frame's headers at hand).
    fn decode(body: &[u8], env: &Envelope) -> Result<T, Status>;
}

/// Protobuf (prost) bodies: services from `.proto` files and gRPC code-first traits.
#[derive(Debug, Clone, Copy, Default)]
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
#[derive(Debug, Clone, Copy, Default)]
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

/// Rejects a frame whose `content-type` is not the service's (an absent one is the service's).
pub(crate) fn check_content_type<C: Codec<T>, T>(env: &Envelope) -> Result<(), Status> {
    match env.header(wire::CONTENT_TYPE) {
        Some(ct) if !ct.eq_ignore_ascii_case(C::CONTENT_TYPE) && !ct.is_empty() => Err(Status::invalid_argument(
            format!("content-type `{ct}` is not accepted: this service takes `{}`", C::CONTENT_TYPE),
        )),
        _ => Ok(()),
    }
}
