//! REST: the same service trait over HTTP with proto3 JSON bodies, server and client.
//!
//! ```text
//! HTTP request ─▶ RestRouter (routes from google.api.http bindings or the default
//!                 `POST /<pkg>.<Service>/<Method>`) ─▶ body + path + query ─▶ message (serde,
//!                 proto3 JSON: runtime/src/proto_json.rs) ─▶ handler ─▶ JSON / NDJSON / SSE
//! ```
//!
//! Bindings follow googleapis' `google/api/http.proto`: path templates with field paths,
//! segment patterns (`{name=shelves/*/books/*}`, `**`) and verbs (`:cancel`); `body: "*"`,
//! `body: "<field>"` or no body; `response_body`; every field bound by neither path nor body is
//! read from the query string (`a.b=1` for nested fields, a repeated key for repeated fields,
//! enums by name). Errors map gRPC codes to HTTP statuses as Google APIs do ([`status`]).
//!
//! Methods that serve an OpenAPI operation (`#[rpc(operation = CONST)]`) are routed by the
//! operation's method and path template instead, under the base path of the document's first
//! server URL, and read and answer as [`crate::api`] describes (parameters by style, bodies by
//! media type, schema validation, security, response enums).
//!
//! Both kinds of route are matched by one segment trie with one precedence rule (a literal
//! segment beats a segment pattern, which beats a variable, which beats `**`; a `:verb` is part
//! of the match), one 404/405/HEAD rule, and clashes reported when a service is added
//! ([`RestRouter::try_add`], [`RouteError`]). Templates are parsed once, by crate
//! `switchboard-path`, the parser `switchboard generate` and `#[service]` check them with.
//!
//! Streaming: see the `methods` module docs (server streaming is NDJSON or Server-Sent Events;
//! client and bidi streaming read an NDJSON request body, each message bounded).

pub(crate) mod call;
mod carry;
pub(crate) mod client;
pub(crate) mod decode;
pub(crate) mod methods;
pub(crate) mod operation;
mod operation_client;
pub(crate) mod security;
mod ndjson;
mod openapi;
mod routes;
mod server;
pub mod status;
pub mod template;

pub use call::{error_response, HttpResponse, DEFAULT_MAX_BODY};
pub use client::{InvalidBaseUrl, RestClient};
pub use carry::{Rest, RestDecoder, RestEncoder};
#[doc(hidden)]
pub use methods::streaming_request;
#[doc(hidden)]
pub use operation_client::call as operation_call;
pub use routes::{RouteError, RouteName};
pub use server::{IntoMakeService, RestRouter, RestServer};
#[cfg(feature = "grpc")]
pub(crate) use server::nodelay;

/// The body type of REST requests and responses (axum's).
pub type Body = axum::body::Body;
