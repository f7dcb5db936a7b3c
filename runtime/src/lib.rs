//! # switchboard — one service trait, every transport
//!
//! This crate is the runtime that generated and hand-written services depend on. The data flow:
//!
//! ```text
//! .proto ─(switchboard-codegen)─▶ message types + `#[switchboard::service] trait`
//!                                        │
//!            hand-written trait ─────────┤  #[switchboard::service] (switchboard-macros)
//!                                        ▼
//!      static ServiceDescriptor + ONE dispatch table (dispatch::Dispatch<T>) + typed clients
//!                                        ▼
//!   runtime transports (this crate), each a dispatch::Transport, all through one call path
//!   (call: deadline, cancellation, panics → INTERNAL, trailers):
//!      grpc::GrpcServer<D>  (tonic / tower)      grpc::GrpcClient<C>
//!      rest::RestServer<D>  (axum)               rest::RestClient (hyper)
//!      queue::QueueServer<D> (memory / RabbitMQ / NATS brokers)   queue::QueueClient
//!   and the clients all through one client call path ([`client`]: the request encoded once,
//!   per-call options, layers that may send it again, the deadline over all of it)
//! ```
//!
//! A service is a trait whose methods take a [`Request`] and return a [`Response`] or a
//! [`Status`]. Streams in either direction are [`Streaming`]. The `#[service]` attribute turns
//! the trait into:
//!
//! - `<Trait>Server<T>`: a tower `Service` that serves any `T: Trait` over gRPC and plugs into
//!   `tonic::transport::Server` (`Server::builder().add_service(GreeterServer::new(imp))`);
//! - `<Trait>Client<C>`: a typed client over any tower service `C` that speaks HTTP/2, so tower
//!   layers (timeouts, retries, load balancing, tracing) wrap it.
//!
//! ```
//! use switchboard::{Request, Response, Status};
//!
//! #[switchboard::service(package = "hello.v1")]
//! pub trait Greeter {
//!     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
//! }
//!
//! struct Impl;
//! impl Greeter for Impl {
//!     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
//!         Ok(Response::new(format!("hello, {}", req.into_inner())))
//!     }
//! }
//! # #[cfg(feature = "grpc")]
//! let _server = GreeterServer::new(Impl);
//! ```
//!
//! Cross-cutting call state travels in request extensions: [`Deadline`] (from `grpc-timeout`)
//! and [`Cancellation`] (fires when the caller goes away); [`RequestExt`] reads both, and the
//! call's [`observe::TraceContext`] (every call is traced and measured alike on every transport:
//! [`observe`]).
#![deny(missing_docs)]

// `#[service]` expansions name `::switchboard::…`; this makes those paths resolve inside the
// crate too, for the services it defines itself (`health`).
#[cfg(any(feature = "grpc", feature = "rest"))]
extern crate self as switchboard;

pub mod api;
mod call;
pub mod client;
mod context;
#[cfg(any(feature = "grpc", feature = "rest", feature = "queue"))]
pub mod dedupe;
pub mod descriptor;
#[cfg(any(feature = "grpc", feature = "rest"))]
pub mod fleet;
pub mod dispatch;
pub mod observe;
pub mod policy;
mod streaming;
mod proto_json;

#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(any(feature = "grpc", feature = "rest"))]
pub mod health;
#[cfg(feature = "rest")]
pub mod rest;
#[cfg(feature = "queue")]
pub mod queue;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(all(feature = "grpc", feature = "rest"))]
mod serve;
#[cfg(all(feature = "grpc", feature = "rest"))]
pub use serve::Server;

pub use context::{Cancellation, Deadline, RequestExt, Trailers};
pub use descriptor::{CallShape, HttpRule, Idempotency, MethodDescriptor, ServiceDescriptor};
pub use streaming::{StreamSender, Streaming};
pub use switchboard_macros::service;
pub use tonic::metadata;
pub use tonic::{Code, IntoRequest, IntoStreamingRequest, Request, Response, Status};

/// Stream helpers (futures' `stream` module): build request streams for client-streaming calls
/// with `switchboard::stream::iter(messages)`, adapt them with `StreamExt`.
pub use futures_util::stream;

/// prost, for hand-written (code-first) message types:
/// `#[derive(switchboard::prost::Message)] #[prost(prost_path = "::switchboard::prost")]`.
pub use prost;

/// The protobuf well-known types (`Timestamp`, `Duration`, `FieldMask`, `Struct`, `Any`, …) that
/// generated messages and handler signatures use: prost messages with proto3 JSON serde impls.
/// (prost-build writes paths to them with every segment snake-cased, so they cannot live under
/// the hidden `__private` module.)
pub mod wkt;
mod rest_names;
#[cfg(any(feature = "grpc", feature = "rest", feature = "queue"))]
mod shed;

/// serde, for the JSON mapping of hand-written (code-first) message types, which the REST
/// transport needs: `#[derive(switchboard::serde::Serialize, switchboard::serde::Deserialize)]
/// #[serde(crate = "switchboard::serde", rename_all = "camelCase")]` (or
/// `#[switchboard::service(rest = false)]` to serve gRPC only).
pub use serde;

/// Dates and times (chrono): `wkt::Timestamp` converts from and to `chrono::DateTime<Utc>`,
/// e.g. `Timestamp::from(switchboard::chrono::Utc::now())`.
pub use chrono;

/// UUIDs (`format: uuid` in OpenAPI models).
pub use uuid;

/// JSON values: the type of OpenAPI schemas that no Rust type describes precisely.
pub use serde_json;

/// Compression encodings a server or client can accept or send (`gzip`).
pub use tonic::codec::CompressionEncoding;

/// What generated and macro-expanded code uses. Not a public API: it changes without notice.
///
/// The one entry point of `#[service]` expansions: the dispatch traits they implement
/// ([`dispatch`](crate::dispatch), documented there), the transports they name in server aliases,
/// the client engines, and the crates their types derive from.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::{Carry, Dispatch, ServiceTable, Transport};
    pub use ::bytes;
    pub use ::http;
    pub use ::prost;
    pub use ::prost_types;
    pub use ::tonic;
    pub use ::tower_service;
    pub use ::serde;
    pub use ::serde_json;
    pub use ::inventory;
    pub use crate::__proto_json as proto_json;
    /// proto3 JSON of generated messages (the codec behind `proto_json!`; see the module).
    pub mod proto_json {
        pub use crate::proto_json::{deserialize, serialize, Descriptor, Descriptors};
    }
    pub use core::future::Future;
    pub use std::sync::Arc;
    pub use ::futures_util::future::BoxFuture;
    pub use crate::api::model as api_model;
    pub use switchboard_macros::DeserializeModel;
    /// What a generated OpenAPI module imports with a glob (`use
    /// ::switchboard::__private::models::*;`) so that its types name their derives without a
    /// path. A type of the module with the same name shadows only the trait: the derive macros
    /// stay in scope. (The module's types name `Option`, `String` and `Vec` from the standard
    /// prelude too; codegen never gives a type one of those names.)
    pub mod models {
        pub use ::serde::Serialize;
        pub use switchboard_macros::DeserializeModel;
    }

    #[cfg(feature = "grpc")]
    pub use ::tonic_prost;
    /// gRPC: the transport and the client's bound.
    #[cfg(feature = "grpc")]
    pub mod grpc {
        pub use crate::grpc::{Grpc, GrpcTransport};
    }
    /// REST: the transport and the client helpers.
    #[cfg(feature = "rest")]
    pub mod rest {
        pub use crate::rest::{streaming_request, Rest};
    }
    /// OpenAPI operations: the REST client's call.
    #[cfg(feature = "rest")]
    pub mod api {
        pub use crate::rest::operation_call as call;
    }
    /// Queues: the transport and its codecs.
    #[cfg(feature = "queue")]
    pub mod queue {
        pub use crate::queue::{Json, Proto, Queue};
        pub use crate::queue::key::{default_key, key_text, KeyStepOption, KeyStepPlain};
    }
}

/// Expands to its input when the `queue` feature is on (used by `#[service]` expansions).
#[cfg(feature = "queue")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_queue {
    ($($t:tt)*) => { $($t)* };
}

/// Expands to nothing: the `queue` feature is off.
#[cfg(not(feature = "queue"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_queue {
    ($($t:tt)*) => {};
}

/// Expands to its input when the `rest` feature is on (used by `#[service]` expansions).
#[cfg(feature = "rest")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_rest {
    ($($t:tt)*) => { $($t)* };
}

/// Expands to nothing: the `rest` feature is off.
#[cfg(not(feature = "rest"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_rest {
    ($($t:tt)*) => {};
}

/// Expands to its input when the `tls` feature is on (used by `#[service]` expansions).
#[cfg(feature = "tls")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_tls {
    ($($t:tt)*) => { $($t)* };
}

/// Expands to nothing: the `tls` feature is off.
#[cfg(not(feature = "tls"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_tls {
    ($($t:tt)*) => {};
}

/// Expands to its input when the `grpc` feature is on (used by `#[service]` expansions).
#[cfg(feature = "grpc")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_grpc {
    ($($t:tt)*) => { $($t)* };
}

/// Expands to nothing: the `grpc` feature is off.
#[cfg(not(feature = "grpc"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_grpc {
    ($($t:tt)*) => {};
}
