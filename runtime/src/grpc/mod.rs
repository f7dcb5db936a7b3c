//! gRPC transport: one server and one client, generic over service descriptors.
//!
//! [`GrpcServer<D>`] is a tower `Service` over HTTP/2 requests that serves every service the
//! `#[service]` macro describes (the macro names it `<Trait>Server<T>`); it plugs into
//! [`tonic::transport::Server`] like a tonic-generated server. [`GrpcClient<C>`] carries the
//! generic call functions that `<Trait>Client<C>` methods delegate to.

mod client;
mod server;

#[doc(hidden)]
pub mod __glue;

pub use client::GrpcClient;
pub use server::{GrpcResponseBody, GrpcServer, ResponseFuture, ServerConfig};

/// tonic's HTTP/2 transport (server builder, `Channel`, `Endpoint`), re-exported.
pub use tonic::transport;
