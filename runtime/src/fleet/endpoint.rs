//! One endpoint of a fleet as the balancer sees it: its address, the calls it has in flight,
//! its latency (peak EWMA), and whether it is down (unreachable) or ejected (failing).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::Address;

/// How long a latency sample weighs in the peak EWMA (Linkerd's default decay).
const DECAY: Duration = Duration::from_secs(10);
/// The latency assumed of an endpoint before its first answer.
const DEFAULT_RTT_NANOS: f64 = 1_000_000.0;

/// Reconnect backoff of an unreachable endpoint: 100 ms, ×1.6, at most 2 s, ±20 % jitter
/// (gRPC's connection backoff, with a shorter base and cap: a replica that comes back is used
/// again within 2 s).
const DOWN_BASE: Duration = Duration::from_millis(100);
const DOWN_MAX: Duration = Duration::from_secs(2);

/// No health answer yet: calls wait for one (while no endpoint is serving).
pub(crate) const HEALTH_PENDING: u8 = 0;
/// Its health service says SERVING (or the fleet does not check health).
pub(crate) const HEALTH_SERVING: u8 = 1;
/// Its health service says anything else, or its watch broke.
pub(crate) const HEALTH_NOT_SERVING: u8 = 2;

/// The live state of one endpoint; shared by every call through the fleet and kept across
/// resolver snapshots that still list the address.
pub(crate) struct EndpointState {
    pub(crate) address: Address,
    /// `address` as an HTTP authority, parsed once (REST requests are sent to it).
    #[cfg(feature = "rest")]
    pub(crate) authority: Option<http::uri::Authority>,
    /// Calls sent and not answered yet.
    pub(crate) in_flight: AtomicUsize,
    /// Peak-EWMA latency in nanoseconds (f64 bits), and when it was last updated (nanoseconds
    /// after the fleet's epoch).
    ewma: AtomicU64,
    stamp: AtomicU64,
    /// Not picked before this time (nanoseconds after the epoch; 0: up).
    unavailable_until: AtomicU64,
    /// Consecutive unreachable attempts (the reconnect backoff's exponent).
    down_streak: AtomicU32,
    /// Consecutive failed calls (ejection's counter).
    pub(crate) failures: AtomicU32,
    /// Times ejected so far, less one per sweep interval spent not ejected (the ejection
    /// time's multiplier).
    pub(crate) ejections: AtomicU32,
    /// Calls answered, and of those failed, since the last outlier sweep.
    pub(crate) interval_calls: AtomicU32,
    pub(crate) interval_failures: AtomicU32,
    /// Whether the endpoint is out because it failed (ejected), not because it was unreachable.
    pub(crate) ejected: std::sync::atomic::AtomicBool,
    /// What its health service says ([`HEALTH_PENDING`], [`HEALTH_SERVING`],
    /// [`HEALTH_NOT_SERVING`]); serving when the fleet does not check health.
    health: AtomicU8,
    /// The task watching its health, stopped with it.
    pub(crate) watcher: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The gRPC channel to it, made on first use.
    #[cfg(feature = "grpc")]
    pub(crate) channel: OnceLock<tonic::transport::Channel>,
    #[cfg(not(feature = "grpc"))]
    #[allow(dead_code)]
    pub(crate) channel: OnceLock<()>,
    epoch: Instant,
}

impl std::fmt::Debug for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl EndpointState {
    pub(crate) fn new(address: Address, epoch: Instant, health_checked: bool) -> Arc<Self> {
        Arc::new(EndpointState {
            #[cfg(feature = "rest")]
            authority: address.authority().parse().ok(),
            address,
            in_flight: AtomicUsize::new(0),
            ewma: AtomicU64::new(DEFAULT_RTT_NANOS.to_bits()),
            stamp: AtomicU64::new(0),
            unavailable_until: AtomicU64::new(0),
            down_streak: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            interval_calls: AtomicU32::new(0),
            interval_failures: AtomicU32::new(0),
            ejected: std::sync::atomic::AtomicBool::new(false),
            health: AtomicU8::new(if health_checked { HEALTH_PENDING } else { HEALTH_SERVING }),
            watcher: std::sync::Mutex::new(None),
            channel: OnceLock::new(),
            epoch,
        })
    }

    /// Its health, as its health service said last.
    #[inline]
    pub(crate) fn health(&self) -> u8 {
        self.health.load(Ordering::Relaxed)
    }

    /// Records what its health service says now.
    #[allow(dead_code)]
    pub(crate) fn set_serving(&self, serving: bool) {
        self.health.store(if serving { HEALTH_SERVING } else { HEALTH_NOT_SERVING }, Ordering::Relaxed);
    }

    /// The gRPC channel to it (made on first use, connecting lazily).
    #[cfg(feature = "grpc")]
    pub(crate) fn grpc_channel(&self, options: &super::ConnectOptions) -> Result<tonic::transport::Channel, tonic::Status> {
        if let Some(channel) = self.channel.get() {
            return Ok(channel.clone());
        }
        #[cfg(feature = "tls")]
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        let uri = format!("{scheme}://{}", self.address.authority());
        let mut e = tonic::transport::Endpoint::from_shared(uri.clone())
            .map_err(|err| tonic::Status::invalid_argument(format!("endpoint {uri}: {err}")))?
            .tcp_nodelay(true);
        if let Some(timeout) = options.connect_timeout {
            e = e.connect_timeout(timeout);
        }
        if let Some((interval, timeout)) = options.keepalive {
            e = e.http2_keep_alive_interval(interval).keep_alive_timeout(timeout).keep_alive_while_idle(true);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &options.tls {
            return Ok(self.channel.get_or_init(|| e.connect_with_connector_lazy(tls.connector())).clone());
        }
        Ok(self.channel.get_or_init(|| e.connect_lazy()).clone())
    }

    pub(crate) fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Whether the endpoint may be picked at `now` (nanoseconds after the epoch).
    #[inline]
    pub(crate) fn available(&self, now: u64) -> bool {
        self.unavailable_until.load(Ordering::Relaxed) <= now
    }

    /// The peak-EWMA cost of sending it one more call: latency × (calls in flight + 1).
    pub(crate) fn cost(&self, ewma: bool) -> f64 {
        let load = (self.in_flight.load(Ordering::Relaxed) + 1) as f64;
        match ewma {
            true => f64::from_bits(self.ewma.load(Ordering::Relaxed)) * load,
            false => load,
        }
    }

    /// Folds one answer's latency into the peak EWMA: a slower answer than the average is taken
    /// at once; faster ones pull it down with a 10 s decay.
    pub(crate) fn observe_latency(&self, rtt: Duration) {
        let now = self.now();
        let rtt = rtt.as_nanos() as f64;
        let last = self.stamp.swap(now, Ordering::Relaxed);
        let old = f64::from_bits(self.ewma.load(Ordering::Relaxed));
        let new = if rtt > old {
            rtt
        } else {
            let elapsed = now.saturating_sub(last) as f64;
            let w = (-elapsed / DECAY.as_nanos() as f64).exp();
            old * w + rtt * (1.0 - w)
        };
        self.ewma.store(new.to_bits(), Ordering::Relaxed);
    }

    /// The endpoint could not be reached: not picked until a jittered, growing backoff has
    /// passed (then one call tries it again).
    pub(crate) fn mark_unreachable(&self) {
        let streak = self.down_streak.fetch_add(1, Ordering::Relaxed).min(16);
        let backoff = DOWN_BASE.as_secs_f64() * 1.6f64.powi(streak as i32);
        let backoff = backoff.min(DOWN_MAX.as_secs_f64()) * (0.8 + 0.4 * fastrand::f64());
        self.hold_until(self.now() + (backoff * 1e9) as u64);
    }

    /// The endpoint answered: it is reachable again.
    pub(crate) fn mark_reached(&self) {
        if self.down_streak.load(Ordering::Relaxed) != 0 {
            self.down_streak.store(0, Ordering::Relaxed);
        }
    }

    /// Not picked before `until` (nanoseconds after the epoch), unless already held longer.
    pub(crate) fn hold_until(&self, until: u64) {
        self.unavailable_until.fetch_max(until, Ordering::Relaxed);
    }
}

impl Drop for EndpointState {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.get_mut().ok().and_then(Option::take) {
            watcher.abort();
        }
    }
}
