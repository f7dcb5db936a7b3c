//! gRPC transport: one server and one client, generic over service descriptors.
//!
//! [`GrpcServer<D>`] is a tower `Service` over HTTP/2 requests that serves every service the
//! `#[service]` macro describes (the macro names it `<Trait>Server<T>`); it plugs into
//! [`tonic::transport::Server`] like a tonic-generated server. Per call it looks the method up by
//! path (a table built once per service) and runs it through the dispatch table with [`Grpc`],
//! the transport's [`Transport`](crate::dispatch::Transport) impl. [`GrpcClient<C>`] carries the
//! generic call functions that `<Trait>Client<C>` methods delegate to.
//!
//! Modules: `server` (the tower service, deadlines as HTTP/2 trailers), `methods` (decode, run,
//! encode per call shape), `client`, and the leaves `config`, `request_body`, `status`.

mod client;
mod config;
mod methods;
mod request_body;
mod server;
mod status;

pub use client::{GrpcClient, GrpcTransport};
pub use config::ServerConfig;
pub use methods::{Grpc, GrpcCall};
pub use server::{GrpcResponseBody, GrpcServer, ResponseFuture};

/// tonic's HTTP/2 transport (server builder, `Channel`, `Endpoint`), re-exported.
pub use tonic::transport;
