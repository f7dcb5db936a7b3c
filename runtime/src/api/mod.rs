//! OpenAPI operations: the static operation table generated code points trait methods at, the
//! value types generated models use (`Base64`, `Binary`), and the transport-neutral pieces that
//! read the table: parameters (`params`), the validator (`validate`, feature `openapi`), media
//! types, bodies and response enums. This module never imports a transport: the HTTP serving of
//! operations (routing, credentials from headers, 401/415 answers, the per-operation state) lives
//! in the REST transport (`rest::operation`, `rest::security`, `rest::document`,
//! `rest::operation_client`).
//!
//! ```text
//! request struct ──serde──▶ JSON object {param field: value, body field: body}
//!        ▲                                   │  params.rs places each entry by the Operation table
//!        │ server: decode + validate          ▼  (path / query / header / cookie, style, explode)
//!   HTTP request  ◀──────── client ───────  HTTP request
//! response enum  ──variant index──▶ ResponseSpec (status code, media type) ──▶ HTTP response
//! ```
//!
//! Serving (feature `rest`): a method with `#[rpc(operation = CONST)]` is routed by the
//! operation's method and path (under the base path of the document's first server URL). Before
//! the handler runs, the server checks credentials ([`Credentials`], 401 when missing, and the
//! `authorize` hook of the router), decodes and validates the parameters and the body against
//! the document's schemas (400 naming the parameter or the JSON pointer; 415 for a media type
//! the operation does not take). An operation whose schemas cannot be compiled answers 501
//! `UNIMPLEMENTED` naming the reason instead of being served unvalidated. The handler's response
//! enum picks the status and media type.
//!
//! Calling: `RestClient::api_unary` (and the `<Trait>RestClient` methods) send the request
//! struct the same way back and turn the answer into the response enum.

#[doc(hidden)]
pub mod model;
mod operation;
#[cfg(feature = "rest")]
pub(crate) mod params;
pub(crate) mod security;
mod types;
#[cfg(feature = "openapi")]
pub(crate) mod validate;

/// What switchboard-codegen calls to find, at generation time, the operations the server will
/// answer 501 for. Not a public API.
#[cfg(feature = "openapi")]
#[doc(hidden)]
pub use validate::unservable_operations as __unservable_operations;

#[cfg(feature = "rest")]
pub(crate) mod body;
#[cfg(feature = "rest")]
pub(crate) mod media;
#[cfg(feature = "rest")]
pub(crate) mod response;

pub use security::{Credential, Credentials};


pub use operation::{
    Location, Operation, Param, ParamShape, RequestBody, ResponseSpec, Scalar, SchemeKind, SecurityScheme, Style,
};
pub use types::{Base64, Binary};
