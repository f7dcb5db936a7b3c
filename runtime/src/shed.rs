//! Load shedding: a server past its configured number of calls in flight answers new ones
//! RESOURCE_EXHAUSTED at once, with a pushback hint, instead of queueing them behind the slow
//! ones. The same limiter on every server (gRPC, REST, queues):
//!
//! ```text
//! call arrives ─▶ Limit::admit: in flight < max? ─▶ yes: InFlight (held until the answer is out)
//!                                                 ─▶ no: RESOURCE_EXHAUSTED +
//!                                                        `grpc-retry-pushback-ms: <pushback>`
//!                                                        (REST also `Retry-After`)
//! ```
//!
//! A switchboard client's retry policy honours the pushback (gRPC A6): a call shed by one busy
//! server is retried after the hint, not at once, when RESOURCE_EXHAUSTED is retryable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::Status;

/// A server's limit on calls in flight (shared by its clones).
#[derive(Debug)]
pub(crate) struct Limit {
    max: usize,
    pushback: Duration,
    in_flight: AtomicUsize,
}

impl Limit {
    /// At most `max` calls in flight; the shed ones are told to come back after `pushback`.
    pub(crate) fn new(max: usize, pushback: Duration) -> Arc<Self> {
        Arc::new(Limit { max: max.max(1), pushback, in_flight: AtomicUsize::new(0) })
    }

    /// Admits a call (the returned guard counts it until dropped), or the status to shed it with.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<InFlight, Status> {
        let admitted = self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1));
        match admitted {
            Ok(_) => Ok(InFlight(self.clone())),
            Err(_) => {
                let mut status = Status::resource_exhausted(format!("the server is busy: {} calls in flight; try again later", self.max));
                let ms = u64::try_from(self.pushback.as_millis()).unwrap_or(u64::MAX);
                status.metadata_mut().insert(crate::policy::PUSHBACK_METADATA, MetadataValue::from(ms));
                Err(status)
            }
        }
    }

    /// Calls in flight now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// One admitted call; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Limit>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Admits through an optional limit (none: every call).
pub(crate) fn admit(limit: Option<&Arc<Limit>>) -> Result<Option<InFlight>, Status> {
    limit.map(Limit::admit).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_calls_are_shed_with_pushback() {
        let limit = Limit::new(2, Duration::from_millis(250));
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        let shed = limit.admit().unwrap_err();
        assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
        assert_eq!(shed.metadata().get("grpc-retry-pushback-ms").unwrap(), "250");
        assert_eq!(limit.in_flight(), 2);
        drop(a);
        assert_eq!(limit.in_flight(), 1);
        assert!(limit.admit().is_ok(), "a place was freed");
    }
}
