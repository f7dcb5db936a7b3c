//! Procedural macros for switchboard. Use them through the `switchboard` crate
//! (`#[switchboard::service]`), never directly.
//!
//! Data flow: the attribute's tokens → [`model`] (a checked description of the service, every
//! problem collected as a `syn::Error` on the offending token) → [`expand`] (the rewritten trait;
//! [`table`]: the static descriptor and ONE dispatch table every transport reads; [`grpc`],
//! [`rest`], [`queue`]: each transport's server alias and typed client). [`names`] is the leaf
//! every stage reads names from; no module imports one that imports it back. When the model has errors,
//! the original trait is emitted unchanged beside the errors so that uses of it still type-check
//! and the user sees only the real mistakes.
#![deny(missing_docs)]

mod credentials;
mod expand;
mod grpc;
mod json_model;
mod model;
mod names;
mod queue;
mod rest;
mod table;

use proc_macro::TokenStream;

/// Turns a trait into a service served and called over every switchboard transport.
///
/// ```ignore
/// #[switchboard::service(package = "helloworld", name = "Greeter")]
/// pub trait Greeter {
///     #[rpc(name = "SayHello")]
///     async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status>;
/// }
/// ```
///
/// Service arguments: `package = "a.b"` (default none), `name = "Wire"` (default: the trait name),
/// `openapi = CONST` (the service's OpenAPI document as a `&'static str`, served at
/// `/openapi.json`), `schemas = CONST` (the schema bundle switchboard-codegen writes beside it,
/// so the server compiles request schemas without parsing the document), `policy = CONST` (the
/// spec's default call policy: a gRPC service config as JSON text in a `&'static str`, read by
/// `switchboard::policy::Policies::for_service` under the run-time config), `rest = false` (gRPC
/// only) and `grpc = false` (REST only; required by OpenAPI operations, whose types are not
/// protobuf messages).
/// Method arguments in `#[rpc(...)]`: `name = "Wire"` (default: the method name in
/// UpperCamelCase), `idempotent` or `no_side_effects`, and any number of
/// `http(get|put|post|delete|patch = "/path", body = "*", response_body = "field")` or
/// `http(custom = "VERB", path = "/path", ...)` bindings; or, instead of `http(...)`,
/// `operation = CONST`: the method serves that `switchboard::api::Operation` (unary methods only;
/// the request is the operation's request struct, the response its response enum); `event`
/// (unary methods: also published fire-and-forget on queues, `publish_<method>`), and with it
/// `key = "field"`: the request field (Rust names, a dotted path through nested structs and
/// `Option`s, e.g. `"body.order_id"`) whose value is the partition key (`sb-key`) of its events
/// and queue requests, unless a call sets its own `switchboard::queue::PartitionKey`.
///
/// The call shape comes from the types: `Request<Streaming<In>>` makes the caller stream,
/// `Response<Streaming<Out>>` makes the handler stream.
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::service(args.into(), input.into()).into()
}

/// `serde::Deserialize` for generated OpenAPI models, reading JSON through one generic runtime
/// helper per field instead of a visitor per type (see `json_model`). Used by generated code as
/// `#[derive(::switchboard::__private::DeserializeModel)]`.
#[doc(hidden)]
#[proc_macro_derive(DeserializeModel, attributes(serde, model))]
pub fn deserialize_model(input: TokenStream) -> TokenStream {
    json_model::derive(input.into()).into()
}
