//! OpenAPI operations: the static operation table generated code points trait methods at, the
//! value types generated models use (`Base64`, `Binary`), and — behind the `openapi` feature —
//! the operation contract every transport enforces: security (`security`), the compiled
//! parameter and body schemas (`contract`, `validate`), and the response enum ↔ (status, media
//! type, body) mapping (`response`, `media`). This module never imports a transport. What is
//! HTTP-only lives in the REST transport: routing, reading parameters out of a URL and headers
//! (`params`, `body`: multipart and forms, feature `rest`), 401 challenges and 415 answers
//! (`rest::operation`, `rest::security`), and the client (`rest::operation_client`). The queue
//! transport runs the same contract over a JSON request struct (`queue::operation`).
//!
//! ```text
//! request struct ──serde──▶ JSON object {param field: value, body field: body}
//!        ▲                                   │  params.rs places each entry by the Operation table
//!        │ server: decode + validate          ▼  (path / query / header / cookie, style, explode)
//!   HTTP request  ◀──────── client ───────  HTTP request        (queues: the JSON object itself)
//! response enum  ──variant index──▶ ResponseSpec (status code, media type) ──▶ HTTP response
//!                                                                (queues: sb-http-status + body)
//! ```
//!
//! Serving: a method with `#[rpc(operation = CONST)]` is routed by the operation's method and
//! path (under the base path of the document's first server URL) over REST, and by its name over
//! queues. Before the handler runs, the server checks credentials ([`Credentials`]; missing:
//! 401 / UNAUTHENTICATED, and the `authorize` hook of the router or queue server), decodes and
//! validates the parameters and the body against the document's schemas (400 /
//! INVALID_ARGUMENT naming the parameter or the JSON pointer; 415 for a media type the operation
//! does not take). An operation whose schemas cannot be compiled answers 501 `UNIMPLEMENTED`
//! naming the reason instead of being served unvalidated. The handler's response enum picks the
//! status and media type.
//!
//! Calling: `RestClient::api_unary` (and the `<Trait>RestClient` methods) send the request
//! struct the same way back and turn the answer into the response enum; `<Trait>QueueClient`
//! methods do the same with a queue reply.

#[doc(hidden)]
pub mod model;
mod operation;
#[cfg(feature = "rest")]
pub(crate) mod params;
pub(crate) mod security;
mod types;
#[cfg(feature = "openapi")]
pub(crate) mod validate;

/// What switchboard-codegen calls to write the schema bundle of an OpenAPI service (and to
/// find the operations the server will answer 501 for). Not a public API.
#[cfg(feature = "openapi")]
#[doc(hidden)]
pub use contract::schema_bundle as __schema_bundle;
/// [`__schema_bundle`] of a document already parsed. Not a public API.
#[cfg(feature = "openapi")]
#[doc(hidden)]
pub use contract::schema_bundle_of as __schema_bundle_of;

#[cfg(feature = "rest")]
pub(crate) mod body;
#[cfg(feature = "openapi")]
pub(crate) mod contract;
#[cfg(feature = "openapi")]
pub(crate) mod media;
#[cfg(feature = "openapi")]
pub(crate) mod response;

pub use security::{Credential, Credentials};


pub use operation::{
    Location, Operation, Param, ParamShape, RequestBody, ResponseSpec, Scalar, SchemeKind, SecurityScheme, Style,
};
pub use types::{Base64, Binary};
