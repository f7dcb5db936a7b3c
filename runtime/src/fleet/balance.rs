//! Picking an endpoint per attempt: `pick_first`, `round_robin` and power-of-two-choices over
//! calls in flight (optionally weighted by peak-EWMA latency), lock-free over the current
//! snapshot; and what an attempt's outcome does to its endpoint (latency, reconnect backoff,
//! ejection).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::endpoint::{EndpointState, HEALTH_PENDING, HEALTH_SERVING};
use super::{Address, ConnectOptions, Ejection};

/// How a fleet spreads calls over its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Balancing {
    /// The first endpoint of the resolver's list that is up; the next one when it is not
    /// (gRPC's `pick_first`).
    PickFirst,
    /// Each endpoint that is up in turn (gRPC's `round_robin`).
    RoundRobin,
    /// Two endpoints drawn at random, the one with fewer calls in flight wins (power of two
    /// choices).
    LeastLoaded,
    /// Power of two choices by peak-EWMA latency × calls in flight (Linkerd's default): a slow
    /// replica gets less traffic even when every replica has calls in flight.
    #[default]
    PeakEwma,
}

impl Balancing {
    /// The policy a gRPC `loadBalancingConfig` names: `pick_first`, `round_robin`, and
    /// switchboard's `least_request` (power of two choices) and `peak_ewma`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pick_first" => Balancing::PickFirst,
            "round_robin" => Balancing::RoundRobin,
            "least_request" | "least_request_experimental" | "p2c" => Balancing::LeastLoaded,
            "peak_ewma" => Balancing::PeakEwma,
            _ => return None,
        })
    }
}

/// The endpoints the resolver listed last, with their live state.
pub(crate) struct Snapshot {
    pub(crate) endpoints: Vec<Arc<EndpointState>>,
}

/// The balancer's shared state: the current snapshot (swapped whole, read without locks) and
/// the round-robin cursor.
pub(crate) struct Balancer {
    pub(crate) policy: Balancing,
    pub(crate) ejection: Option<Ejection>,
    /// The service whose health each endpoint is watched for (gRFC A17), when checked.
    pub(crate) health_service: Option<String>,
    /// How the health watches connect (a watch is a gRPC call: unused without `grpc`).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) connect: ConnectOptions,
    /// Signalled when an endpoint's health changes (calls waiting for a serving one look again).
    pub(crate) changed: Arc<tokio::sync::Notify>,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    cursor: AtomicUsize,
    pub(crate) epoch: Instant,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("policy", &self.policy)
            .field("endpoints", &self.snapshot.load().endpoints)
            .finish_non_exhaustive()
    }
}

impl Balancer {
    pub(crate) fn new(policy: Balancing, ejection: Option<Ejection>, health_service: Option<String>, connect: ConnectOptions) -> Self {
        Balancer {
            policy,
            ejection,
            health_service,
            connect,
            changed: Arc::new(tokio::sync::Notify::new()),
            snapshot: ArcSwap::from_pointee(Snapshot { endpoints: Vec::new() }),
            cursor: AtomicUsize::new(0),
            epoch: Instant::now(),
        }
    }

    /// Takes a resolver's full list: endpoints still listed keep their state (connections,
    /// latency, ejection), new ones start fresh, the rest are dropped.
    pub(crate) fn update(&self, addresses: Vec<Address>) {
        let old = self.snapshot.load();
        let endpoints = addresses
            .into_iter()
            .map(|address| match old.endpoints.iter().find(|e| e.address == address) {
                Some(kept) => kept.clone(),
                None => {
                    let endpoint = EndpointState::new(address, self.epoch, self.health_service.is_some());
                    self.watch_health(&endpoint);
                    endpoint
                }
            })
            .collect();
        self.snapshot.store(Arc::new(Snapshot { endpoints }));
        self.changed.notify_waiters();
    }

    /// Follows `endpoint`'s health (its `grpc.health.v1.Health/Watch`) while it is listed.
    fn watch_health(&self, endpoint: &Arc<EndpointState>) {
        #[cfg(feature = "grpc")]
        if let Some(service) = &self.health_service {
            use futures_util::StreamExt as _;
            let channel = match endpoint.grpc_channel(&self.connect) {
                Ok(channel) => channel,
                Err(_) => return endpoint.set_serving(false),
            };
            let (weak, changed, service) = (Arc::downgrade(endpoint), self.changed.clone(), service.clone());
            let task = tokio::spawn(async move {
                let mut statuses = std::pin::pin!(crate::health::watch(channel, service));
                while let Some(status) = statuses.next().await {
                    let Some(endpoint) = weak.upgrade() else { return };
                    endpoint.set_serving(status == crate::health::ServingStatus::Serving);
                    changed.notify_waiters();
                }
            });
            *endpoint.watcher.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task.abort_handle());
        }
        #[cfg(not(feature = "grpc"))]
        let _ = endpoint;
    }

    /// The endpoint for one attempt. Candidates are the serving endpoints (all, when health is
    /// not checked) that are up (not backing off, not ejected); when none is up, every serving
    /// one (better to try than to fail every call).
    pub(crate) fn pick(&self) -> Pick {
        let snapshot = self.snapshot.load();
        let all = &snapshot.endpoints;
        let Some(first) = all.first() else { return Pick::Empty };
        // One endpoint (a static target, say): it, when it is serving; no clock is read and
        // no latency kept (there is nothing to compare it with).
        if all.len() == 1 {
            return match first.health() {
                HEALTH_SERVING => Pick::Endpoint(first.clone(), false),
                HEALTH_PENDING => Pick::Wait,
                _ => Pick::NoneServing,
            };
        }
        let now = first.now();
        let serving = |e: &&Arc<EndpointState>| e.health() == HEALTH_SERVING;
        let up = |e: &&Arc<EndpointState>| e.health() == HEALTH_SERVING && e.available(now);
        let mut any_up = all.iter().any(|e| up(&e));
        // Envoy's panic threshold: too few left to pick, pick every serving endpoint.
        if let Some(ejection) = self.ejection.as_ref().filter(|e| e.panic_threshold > 0 && any_up) {
            let (available, serving) = (all.iter().filter(up).count(), all.iter().filter(serving).count());
            if available * 100 < serving * usize::from(ejection.panic_threshold) {
                any_up = false;
            }
        }
        if !any_up && !all.iter().any(|e| serving(&e)) {
            return match all.iter().any(|e| e.health() == HEALTH_PENDING) {
                true => Pick::Wait,
                false => Pick::NoneServing,
            };
        }
        let pool = |i: usize| -> Option<&Arc<EndpointState>> {
            match any_up {
                true => all.iter().filter(up).nth(i),
                false => all.iter().filter(serving).nth(i),
            }
        };
        let count = if any_up { all.iter().filter(up).count() } else { all.iter().filter(serving).count() };
        let chosen = match self.policy {
            Balancing::PickFirst => pool(0),
            Balancing::RoundRobin => pool(self.cursor.fetch_add(1, Ordering::Relaxed) % count),
            Balancing::LeastLoaded | Balancing::PeakEwma => {
                let ewma = self.policy == Balancing::PeakEwma;
                if count == 1 {
                    pool(0)
                } else {
                    let a = fastrand::usize(0..count);
                    let b = (a + 1 + fastrand::usize(0..count - 1)) % count;
                    match (pool(a), pool(b)) {
                        (Some(a), Some(b)) => Some(if b.cost(ewma) < a.cost(ewma) { b } else { a }),
                        (a, b) => a.or(b),
                    }
                }
            }
        };
        match chosen {
            Some(endpoint) => Pick::Endpoint(endpoint.clone(), self.policy == Balancing::PeakEwma),
            // The snapshot changed under the count: look again.
            None => Pick::Wait,
        }
    }

    /// An attempt on `endpoint` begins: counted in flight until the returned guard ends;
    /// `timed`, its latency is folded into the endpoint's peak EWMA when it ends.
    pub(crate) fn start(self: &Arc<Self>, endpoint: Arc<EndpointState>, timed: bool) -> Attempt {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Attempt { endpoint, balancer: self.clone(), started: timed.then(Instant::now), done: false }
    }

    /// Ejects `endpoint` after a run of failures, unless that would eject more than the allowed
    /// share of the fleet.
    pub(crate) fn maybe_eject(&self, endpoint: &EndpointState, ejection: &Ejection) {
        let snapshot = self.snapshot.load();
        let total = snapshot.endpoints.len();
        let now = endpoint.now();
        let ejected = snapshot
            .endpoints
            .iter()
            .filter(|e| e.ejected.load(Ordering::Relaxed) && !e.available(now))
            .count();
        if total < ejection.minimum_hosts || ejected * 100 >= total * usize::from(ejection.max_ejection_percent) {
            return;
        }
        if endpoint.ejected.swap(true, Ordering::Relaxed) && !endpoint.available(now) {
            return;
        }
        let times = endpoint.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let hold = ejection.base_ejection_time.saturating_mul(times).min(ejection.max_ejection_time.max(ejection.base_ejection_time));
        endpoint.failures.store(0, Ordering::Relaxed);
        endpoint.hold_until(now + hold.as_nanos() as u64);
    }
}

/// What [`Balancer::pick`] found.
pub(crate) enum Pick {
    /// The endpoint for the attempt, and whether to time it (peak EWMA over more than one).
    Endpoint(Arc<EndpointState>, bool),
    /// The resolver lists no endpoint.
    Empty,
    /// No endpoint is serving yet, but some have not said: wait for a change.
    Wait,
    /// Every endpoint's health says it is not serving.
    NoneServing,
}

/// How an attempt ended, as far as its endpoint is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It answered (any answer a healthy server gives, errors included).
    Answered,
    /// It answered with a server-side failure (UNAVAILABLE, INTERNAL, UNKNOWN, DATA_LOSS;
    /// HTTP 5xx): counts toward ejection.
    Failed,
    /// No answer came: no connection could be made, or it broke (keepalive found the peer
    /// frozen, the peer closed it mid-call).
    Unreachable,
}

/// One attempt in flight on one endpoint. Dropped without [`finish`](Attempt::finish) (the
/// caller gave up), it only leaves the in-flight count.
pub(crate) struct Attempt {
    endpoint: Arc<EndpointState>,
    balancer: Arc<Balancer>,
    /// When it was sent, if its latency is kept.
    started: Option<Instant>,
    done: bool,
}

impl Attempt {
    pub(crate) fn endpoint(&self) -> &Arc<EndpointState> {
        &self.endpoint
    }

    /// Records how the attempt ended.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.done = true;
        let e = &self.endpoint;
        e.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.balancer.ejection.is_some() {
            e.interval_calls.fetch_add(1, Ordering::Relaxed);
            if outcome != Outcome::Answered {
                e.interval_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        match outcome {
            Outcome::Unreachable => e.mark_unreachable(),
            Outcome::Answered | Outcome::Failed => {
                e.mark_reached();
                // Only peak EWMA reads the latency.
                if let Some(started) = self.started {
                    e.observe_latency(started.elapsed());
                }
                if outcome == Outcome::Answered {
                    if e.failures.load(Ordering::Relaxed) != 0 {
                        e.failures.store(0, Ordering::Relaxed);
                    }
                    if e.ejected.load(Ordering::Relaxed) && e.available(e.now()) {
                        e.ejected.store(false, Ordering::Relaxed);
                    }
                    return;
                }
                if let Some(ejection) = &self.balancer.ejection {
                    let run = e.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if ejection.consecutive_failures > 0 && run >= ejection.consecutive_failures {
                        self.balancer.maybe_eject(e, ejection);
                    }
                }
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Whether a gRPC status code is the server's failure (ejection counts it).
#[cfg(feature = "grpc")]
pub(crate) fn server_failure(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unavailable | tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss)
}

/// Ejection defaults, for [`Ejection::default`].
pub(crate) const BASE_EJECTION: Duration = Duration::from_secs(30);
