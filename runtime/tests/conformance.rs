//! The cross-transport conformance suite: one code-first service (`conformance/service.rs`), one
//! set of cases (`conformance/cases.rs`) written once against an adapter over the generated
//! clients (`conformance/transports.rs`), run against every transport:
//!
//! - `grpc`: `ConformanceClient` to a tonic server on 127.0.0.1;
//! - `rest`: `ConformanceRestClient` to the REST server on 127.0.0.1;
//! - `memory`: `ConformanceQueueClient` through the embedded broker;
//! - `amqp`, `nats`: the same through RabbitMQ and NATS when `SWITCHBOARD_AMQP_URL` /
//!   `SWITCHBOARD_NATS_URL` are set (and the `amqp` / `nats` features are on, as in
//!   `cargo test --workspace`); otherwise each case prints why it skips, and under `CI=true` it
//!   fails instead.
//!
//! Cases: a deadline shorter than the handler (unary, and a response stream); the caller dropping
//! the call; metadata, trailers and error statuses both ways; a panicking handler (INTERNAL, then
//! 1,000 good calls) and a response stream that panics mid-way; and, on
//! queues, a panicking event handler ending in the dead-letter queue and a panicked request
//! with an idempotency key run again on retry (its dedupe entry released, not kept).
//!
//! Test names read `<transport>::<case>`, e.g. `cargo test -p switchboard --test conformance rest::`.
#![cfg(all(feature = "grpc", feature = "rest", feature = "queue"))]

#[path = "conformance/cases.rs"]
mod cases;
#[path = "conformance/service.rs"]
mod service;
#[path = "conformance/transports.rs"]
mod transports;

use transports::Kind;

/// One `#[tokio::test]` per case, for one transport.
macro_rules! cases {
    ($kind:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            crate::transports::run($kind, crate::cases::$case).await
        }
    )*};
}

/// The cases every transport runs.
macro_rules! every_transport {
    ($kind:expr) => {
        cases!($kind;
            deadline_exceeded_cancels_the_handler,
            deadline_ends_a_response_stream,
            dropped_call_cancels_the_handler,
            metadata_trailers_and_errors_round_trip,
            a_panic_answers_internal_and_the_server_keeps_serving,
            a_panicking_stream_ends_with_internal,
        );
    };
}

mod grpc {
    use super::*;
    every_transport!(Kind::Grpc);
}

mod rest {
    use super::*;
    every_transport!(Kind::Rest);
}

mod memory {
    use super::*;
    every_transport!(Kind::Memory);
    cases!(Kind::Memory; a_panicking_event_is_dead_lettered, a_panicked_request_is_not_remembered);
}

mod amqp {
    use super::*;
    every_transport!(Kind::Amqp);
    cases!(Kind::Amqp; a_panicking_event_is_dead_lettered, a_panicked_request_is_not_remembered);
}

mod nats {
    use super::*;
    every_transport!(Kind::Nats);
    cases!(Kind::Nats; a_panicking_event_is_dead_lettered, a_panicked_request_is_not_remembered);
}
