//! Shared pieces of the `bench` crate: the message type of the benchmark
//! proto and the names both the baseline server and the load generator use.
//!
//! ```proto
//! syntax = "proto3";
//! package bench;
//! service Echo { rpc Unary(EchoMsg) returns (EchoMsg); }
//! message EchoMsg { bytes body = 1; }
//! ```
//!
//! [`pets`] holds both servers of the OpenAPI benchmark (`GET /v1/pets/{petId}`).

/// `bench.EchoMsg`, written by hand (no build script, no protoc).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoMsg {
    #[prost(bytes = "vec", tag = "1")]
    pub body: Vec<u8>,
}

/// Fully qualified service name, as used by gRPC routing.
pub const SERVICE_NAME: &str = "bench.Echo";

/// HTTP/2 path of the `Unary` method.
pub const UNARY_PATH: &str = "/bench.Echo/Unary";

pub mod pets;

/// Base path and collection of the OpenAPI benchmark's operation: requests go to
/// `{PETS_PATH}/{id}`.
pub const PETS_PATH: &str = "/v1/pets";
