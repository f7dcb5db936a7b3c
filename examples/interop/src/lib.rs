//! The gRPC interop service (`grpc.testing.TestService`) on switchboard: a server implementing
//! grpc's interop-test-descriptions.md and a client running the standard cases against any server.

/// Code generated from `proto/grpc/testing/*.proto` by build.rs.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

pub use pb::grpc::testing;

pub mod client;
pub mod server;
pub mod trailers;
