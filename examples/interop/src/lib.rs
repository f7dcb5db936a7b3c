//! The gRPC interop service (`grpc.testing.TestService`) on switchboard: a server implementing
//! grpc's interop-test-descriptions.md and a client running the standard cases against any server,
//! over gRPC, REST, and message brokers (RabbitMQ, NATS, the embedded one; see [`queue`]).

/// Code generated from `proto/grpc/testing/*.proto` by build.rs.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

pub use pb::grpc::testing;

pub mod client;
pub mod queue;
pub mod server;
pub mod trailers;
