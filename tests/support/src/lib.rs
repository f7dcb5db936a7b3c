//! What switchboard's own tests share, so that each suite does not grow its own copy:
//!
//! - [`http`]: a small HTTP/1.1 client for tests, on hyper's client (one fresh connection per
//!   request, as curl makes them), and [`http::Http::raw`] for the tests that send malformed or
//!   hand-framed requests on purpose.
//! - [`broker`]: the one rule for the RabbitMQ / NATS suites: a broker URL from the environment,
//!   or a printed skip on a bare machine, or a failure under `CI=true`; [`ci`] holds that rule
//!   for other missing requirements (python3, grpcio).
//! - [`ready`]: readiness by signal, not by sleeping: retry until a deadline, wait for a condition
//!   or a "ready" line.
//! - [`server`]: a server on a thread and runtime of its own, and ids unique across runs.
//!
//! This crate does not depend on `switchboard`, so the runtime's own integration tests can use it
//! without a second copy of the runtime's types. Every helper panics with a message naming what
//! failed: they are for tests, where a panic is the failure report.

pub mod broker;
pub mod ci;
pub mod http;
pub mod ready;
pub mod server;
