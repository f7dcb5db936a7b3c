//! Queue server replicas that share one idempotency window.
//!
//! `idem-replica` (src/bin/idem-replica.rs) serves [`Ledger`] over RabbitMQ or NATS with its
//! dedupe window in Redis or a NATS JetStream key-value bucket, and can be told to die at the
//! worst moments: right after its answer was stored and before it replied and acked, or in the
//! middle of a handler. tests/replicas.rs runs three of them on one queue, kills them that way
//! and restarts them, and checks that every keyed request's handler ran exactly once and every
//! caller got its answer.

use switchboard::{Request, Response, Status};

/// A ledger whose entries must be applied once.
#[switchboard::service(package = "idem.v1", grpc = false)]
pub trait Ledger {
    /// Applies entry `req` (its side effect: a line in the replica's log) and answers
    /// `"<entry> applied by <pid>"`.
    async fn apply(&self, req: Request<String>) -> Result<Response<String>, Status>;
}
