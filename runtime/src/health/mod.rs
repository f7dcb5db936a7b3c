//! gRPC health checking: `grpc.health.v1.Health` (`Check`, `List`, `Watch`), served for every
//! service a server carries, on gRPC and over its REST binding, and followed by clients.
//!
//! The data flow:
//!
//! ```text
//! Server::add_service(..) ─ registers `package.Service` SERVING ─┐
//! your code: Server::health() → HealthReporter ─ set_serving / ──┤
//!            set_not_serving / set_status / shutdown / close     ▼
//!                         HealthReporter: statuses by service name ("" = the server),
//!                         in a tokio `watch` channel (every clone shares it)
//!                                        │ read by Check and List, subscribed to by Watch
//!                                        ▼
//!   `impl Health for HealthReporter` (a #[service] trait: one dispatch table, one call path)
//!      gRPC: HealthServer          /grpc.health.v1.Health/{Check,List,Watch}
//!      REST: HealthRestServer      POST /grpc.health.v1.Health/{Check,List,Watch}, JSON
//!                                        │
//!                                        ▼
//!   clients: grpcio's / grpc-go's health stubs, grpc_health_probe, HealthClient,
//!            health::watch(channel, service) → Stream<ServingStatus> for a load balancer
//! ```
//!
//! [`switchboard::Server`](crate::Server) serves it by itself: every service added is
//! registered `SERVING` under its full name (`package.Service`), beside `""` (the server as a
//! whole, `SERVING` from the start); [`Server::health`](crate::Server::health) gives the
//! [`HealthReporter`] to change them. When the shutdown signal of
//! [`Server::serve_with_shutdown`](crate::Server::serve_with_shutdown) fires, every status turns
//! `NOT_SERVING` first (watchers see it at once), the server keeps serving for its
//! [`drain`](crate::Server::drain) period (zero unless set), and then `Watch` calls end and the
//! server stops. A server that already carries a `grpc.health.v1.Health` of its own keeps it.
//!
//! The answers, as gRPC's health checking protocol and grpc-go have them:
//!
//! - `Check("")` is the server's status; `Check("package.Service")` that service's;
//!   a service without a status is NOT_FOUND.
//! - `Watch` sends the status at once and then each change (a service without a status is
//!   `SERVICE_UNKNOWN`, not an error), until the caller goes away or the server stops.
//! - `List` answers every status, `""` included (RESOURCE_EXHAUSTED past [`MAX_LISTED`]).
//!
//! Over REST, with the default binding of methods without an HTTP rule (the request is the JSON
//! body; proto3 JSON, so `UNKNOWN` is left out):
//!
//! ```text
//! POST /grpc.health.v1.Health/Check  {"service": "shop.v1.Orders"}  → 200 {"status": "SERVING"}
//!                                    {"service": "nope"}            → 404 {"code": 5, ...}
//! POST /grpc.health.v1.Health/List   {}  → 200 {"statuses": {"": {"status": "SERVING"}, ...}}
//! POST /grpc.health.v1.Health/Watch  {"service": ""}  → application/x-ndjson, one
//!                                    {"result": {"status": "SERVING"}} line per change
//! ```
//!
//! The served `/openapi.json` leaves these routes out: it describes the application's API.
//!
//! The message types carry the field numbers of `grpc/health/v1/health.proto`, so any gRPC
//! health client talks to it (the tests call it with Python grpcio's `grpc_health.v1` stub).

mod messages;
mod reporter;
mod service;
#[cfg(feature = "grpc")]
mod client;

pub use messages::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse, ServingStatus};
pub use reporter::HealthReporter;
pub use service::*;
#[cfg(feature = "grpc")]
pub use client::watch;
