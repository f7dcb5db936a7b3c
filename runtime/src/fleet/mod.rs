//! Fleets: a client talks to a *service* — a set of endpoints that changes at run time — not to
//! one address.
//!
//! ```text
//! target URI ── Target::parse ── a Resolver (static list, DNS A/AAAA/SRV, etcd, your own)
//!   └ full snapshots of addresses, re-resolved periodically and when endpoints fail
//!     (never more often than a minimum interval); or pushed by a resolver that watches
//!     (etcd: a prefix listed, then watched; each change publishes the whole list again)
//!       └ Balancer: the snapshot behind an atomic pointer; per endpoint its calls in flight,
//!         peak-EWMA latency, reconnect backoff and ejection state
//!           └ each attempt picks one endpoint (pick_first, round_robin, power of two choices)
//!             ├ gRPC: FleetChannel, a tonic transport over one lazily connected Channel per endpoint
//!             └ REST: RestClient::fleet, the request's authority set to the endpoint's
//! ```
//!
//! Retries, hedging, deadlines and the rest of the call path run above the fleet: a retried
//! attempt picks again, so it usually lands on another replica. An endpoint that cannot be
//! reached is skipped (with a growing, jittered backoff before it is tried again) and the
//! resolver is asked to look again; an attempt that never reached a server is retried at once
//! by the policy layer ([`client::never_reached`](crate::client::never_reached)). Endpoints that
//! keep failing are ejected for a while ([`Ejection`], gRPC A50's outlier detection:
//! consecutive failures, success-rate and failure-percentage sweeps). When no endpoint is up (or
//! fewer than the panic threshold), every endpoint is tried (better than failing every call).
//!
//! One static endpoint (`http://host:port`) needs no fleet: the plain clients stay as they are.
//!
//! Replicas register themselves in etcd with [`EtcdRegistration`] (feature `etcd`): a key under
//! the service's prefix, held by a lease the replica keeps alive. A replica that deregisters on
//! drain leaves the fleet at once; one that dies leaves it when its lease's TTL runs out.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard::fleet::{Balancing, Fleet};
//! let fleet = Fleet::builder("static:///127.0.0.1:50051,127.0.0.2:50051")
//!     .balancing(Balancing::RoundRobin)
//!     .build()?;
//! // gRPC: `EchoClient::new(fleet.grpc())`; REST: `EchoRestClient::with_client(RestClient::fleet(fleet))`.
//! # Ok(()) }
//! ```

mod balance;
#[cfg(feature = "dns")]
mod dns;
mod endpoint;
#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "grpc")]
mod grpc;
mod outlier;
mod resolve;
mod target;

use std::sync::Arc;
use std::time::Duration;

pub use balance::Balancing;
pub(crate) use balance::{Attempt, Outcome};
#[cfg(feature = "dns")]
pub use dns::DnsResolver;
#[cfg(feature = "etcd")]
pub use etcd::{EtcdRegistration, EtcdResolver, RegistrationError};
#[cfg(feature = "grpc")]
pub use grpc::FleetChannel;
pub use resolve::{Resolution, ResolveError, Resolver, Snapshots, StaticResolver};
pub use target::{Target, TargetError};

use balance::Balancer;

/// One endpoint's address: a host (name or IP) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.authority())
    }
}

/// Outlier detection (gRPC A50): endpoints that fail are ejected — not picked — for
/// `base_ejection_time` × the times they were ejected (at most `max_ejection_time`); each
/// [`interval`](Ejection::interval) an endpoint not ejected earns one ejection back.
///
/// Three rules eject: [`consecutive_failures`](Ejection::consecutive_failures) in a row (at once),
/// and, at each interval's sweep over the calls of that interval, a success rate below the mean
/// by [`SuccessRateEjection::stdev_factor`] standard deviations, or a failure share above
/// [`FailurePercentageEjection::threshold`]. Never more than `max_ejection_percent` of the fleet
/// is ejected at once, and when fewer than `panic_threshold` percent of the endpoints are left
/// to pick, every serving endpoint is picked again (Envoy's panic threshold).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Ejection {
    /// Failures in a row that eject an endpoint (default 5; 0: this rule is off).
    pub consecutive_failures: u32,
    /// How long the first ejection lasts (default 30 s); the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// The longest ejection (default 300 s).
    pub max_ejection_time: Duration,
    /// No more than this share of the endpoints (percent) is ejected at once (default 10; one
    /// endpoint may always be ejected when none is).
    pub max_ejection_percent: u8,
    /// Fleets smaller than this eject nothing (default 1).
    pub minimum_hosts: usize,
    /// How often the sweeps run (default 10 s).
    pub interval: Duration,
    /// Success-rate ejection at each sweep (default off).
    pub success_rate: Option<SuccessRateEjection>,
    /// Failure-percentage ejection at each sweep (default off).
    pub failure_percentage: Option<FailurePercentageEjection>,
    /// When fewer than this share of the endpoints (percent) is available, ejections and
    /// backoffs are ignored and every serving endpoint is picked (default 0: only when none is).
    pub panic_threshold: u8,
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection {
            consecutive_failures: 5,
            base_ejection_time: balance::BASE_EJECTION,
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            minimum_hosts: 1,
            interval: Duration::from_secs(10),
            success_rate: None,
            failure_percentage: None,
            panic_threshold: 0,
        }
    }
}

/// Ejects endpoints whose success rate over a sweep interval is more than `stdev_factor`
/// standard deviations below the fleet's mean (gRPC A50's `successRateEjection`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SuccessRateEjection {
    /// How many standard deviations below the mean ejects (default 1.9).
    pub stdev_factor: f64,
    /// The chance (percent) that an endpoint found an outlier is ejected (default 100).
    pub enforcement_percentage: u8,
    /// At least this many endpoints with `request_volume` calls for the rule to run (default 5).
    pub minimum_hosts: usize,
    /// Calls in the interval an endpoint needs to count (default 100).
    pub request_volume: u32,
}

impl Default for SuccessRateEjection {
    fn default() -> Self {
        SuccessRateEjection { stdev_factor: 1.9, enforcement_percentage: 100, minimum_hosts: 5, request_volume: 100 }
    }
}

/// Ejects endpoints whose calls over a sweep interval failed more than `threshold` percent of the
/// time (gRPC A50's `failurePercentageEjection`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailurePercentageEjection {
    /// The failure share (percent) above which an endpoint is ejected (default 85).
    pub threshold: u8,
    /// The chance (percent) that an endpoint over the threshold is ejected (default 100).
    pub enforcement_percentage: u8,
    /// At least this many endpoints with `request_volume` calls for the rule to run (default 5).
    pub minimum_hosts: usize,
    /// Calls in the interval an endpoint needs to count (default 50).
    pub request_volume: u32,
}

impl Default for FailurePercentageEjection {
    fn default() -> Self {
        FailurePercentageEjection { threshold: 85, enforcement_percentage: 100, minimum_hosts: 5, request_volume: 50 }
    }
}

/// A set of endpoints found by a resolver and the balancer that spreads attempts over them.
/// Cheap to clone (shared); the resolver runs until the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Fleet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: String,
    balancer: Arc<Balancer>,
    resolver: Arc<resolve::Running>,
    connect: ConnectOptions,
}

/// How connections to endpoints are made and watched.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectOptions {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) keepalive: Option<(Duration, Duration)>,
    /// TLS to every endpoint (`https://`), when set.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::ClientTls>,
}

/// Builds a [`Fleet`]: its target, balancing, ejection and resolver settings.
#[derive(Debug, Clone)]
pub struct FleetBuilder {
    target: String,
    balancing: Balancing,
    ejection: Option<Ejection>,
    health_service: Option<String>,
    refresh: Duration,
    min_refresh: Duration,
    connect: ConnectOptions,
}

impl Fleet {
    /// A builder for the fleet at `target`: `dns:///name:port`, `dns://ns-ip:port/name:port`,
    /// `etcd:///prefix`, `etcd://host:port,host:port/prefix`, `static:///host:port,host:port` or
    /// `http://host:port`.
    pub fn builder(target: &str) -> FleetBuilder {
        FleetBuilder {
            target: target.to_owned(),
            balancing: Balancing::default(),
            ejection: None,
            health_service: None,
            refresh: Duration::from_secs(30),
            min_refresh: Duration::from_secs(30),
            connect: ConnectOptions::default(),
        }
    }

    /// The target it was built from.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The addresses of the resolver's last snapshot.
    pub fn addresses(&self) -> Vec<Address> {
        self.inner.balancer.snapshot.load().endpoints.iter().map(|e| e.address.clone()).collect()
    }

    /// Waits for the resolver's first answer (calls wait for it too; this only lets a program
    /// fail early on a name that does not resolve).
    pub async fn ready(&self) -> Result<(), ResolveError> {
        self.inner.resolver.first().await
    }

    /// A gRPC transport over this fleet, for a generated client: `EchoClient::new(fleet.grpc())`.
    #[cfg(feature = "grpc")]
    pub fn grpc(&self) -> FleetChannel {
        FleetChannel::new(self.clone())
    }

    /// The endpoint for one attempt (after the first resolution), counted in flight.
    pub(crate) async fn start(&self) -> Result<Attempt, tonic::Status> {
        if let Err(e) = self.inner.resolver.first().await {
            return Err(crate::client::not_delivered(tonic::Status::unavailable(format!("{}: {e}", self.inner.target))));
        }
        let balancer = &self.inner.balancer;
        loop {
            // Registered before looking, so that a change between the look and the wait wakes it.
            let changed = balancer.changed.notified();
            let why = match balancer.pick() {
                balance::Pick::Endpoint(endpoint, timed) => return Ok(balancer.start(endpoint, timed)),
                balance::Pick::Wait => {
                    changed.await;
                    continue;
                }
                balance::Pick::Empty => "the resolver lists no endpoint",
                balance::Pick::NoneServing => "no endpoint is serving (health checks)",
            };
            return Err(crate::client::not_delivered(tonic::Status::unavailable(format!("{}: {why}", self.inner.target))));
        }
    }

    /// Records an attempt's end; an unreachable endpoint also asks the resolver to look again.
    pub(crate) fn finish(&self, attempt: Attempt, outcome: Outcome) {
        attempt.finish(outcome);
        if outcome == Outcome::Unreachable {
            self.inner.resolver.refresh();
        }
    }

    #[cfg_attr(not(any(feature = "grpc", feature = "tls")), allow(dead_code))]
    pub(crate) fn connect_options(&self) -> &ConnectOptions {
        &self.inner.connect
    }
}

impl FleetBuilder {
    /// How attempts are spread (default [`Balancing::PeakEwma`]).
    ///
    /// ```
    /// # use switchboard::fleet::{Balancing, Fleet};
    /// let mut b = Fleet::builder("static:///127.0.0.1:1,127.0.0.1:2");
    /// b.balancing(Balancing::RoundRobin);
    /// ```
    pub fn balancing(&mut self, balancing: Balancing) -> &mut Self {
        self.balancing = balancing;
        self
    }

    /// Takes the balancing policy from a gRPC service config's `loadBalancingConfig`: the first
    /// entry this crate knows (`pick_first`, `round_robin`, `least_request`, `peak_ewma`), as
    /// gRPC clients do. Unknown entries are skipped; none known leaves the policy as it was.
    ///
    /// ```
    /// # use switchboard::fleet::Fleet;
    /// let config = switchboard::policy::ServiceConfig::from_json(
    ///     r#"{"loadBalancingConfig": [{"weighted_target_experimental": {}}, {"round_robin": {}}]}"#).unwrap();
    /// Fleet::builder("static:///127.0.0.1:1").service_config(&config);
    /// ```
    pub fn service_config(&mut self, config: &crate::policy::ServiceConfig) -> &mut Self {
        if let Some(b) = config.load_balancing().iter().find_map(|c| Balancing::from_name(&c.policy)) {
            self.balancing = b;
        }
        if let Some(health) = config.health_check() {
            self.health_service = Some(health.service_name.clone());
        }
        self
    }

    /// Watches each endpoint's health (`grpc.health.v1.Health/Watch` for `service`; `""`: the
    /// server as a whole) and sends calls only to endpoints that say SERVING, as gRPC clients do
    /// with a `healthCheckConfig` (gRFC A17; a server without the health service counts as
    /// serving). A replica that drains (NOT_SERVING) or freezes (its watch breaks: see
    /// [`keepalive`](FleetBuilder::keepalive)) stops getting calls at once. Calls wait for the
    /// first answers; when every endpoint says it is not serving, they fail with UNAVAILABLE
    /// (or, with `waitForReady`, wait for one that is). gRPC only: the watch is a gRPC call to
    /// the endpoint's port (a switchboard [`Server`](crate::Server) serves both).
    ///
    /// ```
    /// # use switchboard::fleet::Fleet;
    /// Fleet::builder("static:///127.0.0.1:1").health_check(Some("shop.v1.Orders"));
    /// ```
    pub fn health_check(&mut self, service: Option<&str>) -> &mut Self {
        self.health_service = service.map(str::to_owned);
        self
    }

    /// Ejects endpoints that keep failing (gRPC's outlier detection, A50): off by default, as in
    /// gRPC and Envoy; `Some(Ejection::default())` for its defaults.
    ///
    /// ```
    /// # use switchboard::fleet::{Ejection, Fleet};
    /// let mut ejection = Ejection::default();
    /// ejection.base_ejection_time = std::time::Duration::from_secs(2);
    /// Fleet::builder("static:///127.0.0.1:1").ejection(Some(ejection));
    /// ```
    pub fn ejection(&mut self, ejection: Option<Ejection>) -> &mut Self {
        self.ejection = ejection;
        self
    }

    /// Re-resolves every `every` (default 30 s), and when an endpoint cannot be reached, but
    /// never more often than every `at_least` (default 30 s, grpc-go's; tests use less). A DNS
    /// answer is also looked up again when its TTL runs out (no sooner than `at_least`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use switchboard::fleet::Fleet;
    /// Fleet::builder("dns:///echo.svc:50051").refresh(Duration::from_secs(60), Duration::from_secs(1));
    /// ```
    pub fn refresh(&mut self, every: Duration, at_least: Duration) -> &mut Self {
        self.refresh = every;
        self.min_refresh = at_least;
        self
    }

    /// Gives up connecting to an endpoint after `timeout` (it is then skipped for a while).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use switchboard::fleet::Fleet;
    /// Fleet::builder("static:///127.0.0.1:1").connect_timeout(Duration::from_secs(1));
    /// ```
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect.connect_timeout = Some(timeout);
        self
    }

    /// Sends HTTP/2 keepalive pings every `interval` (idle connections included) and closes a
    /// connection whose ping is not answered within `timeout`: a frozen replica, whose socket
    /// stays open, is found out (gRPC only; REST connections are HTTP/1.1).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use switchboard::fleet::Fleet;
    /// Fleet::builder("static:///127.0.0.1:1").keepalive(Duration::from_secs(10), Duration::from_secs(2));
    /// ```
    pub fn keepalive(&mut self, interval: Duration, timeout: Duration) -> &mut Self {
        self.connect.keepalive = Some((interval, timeout));
        self
    }

    /// Speaks TLS to every endpoint (gRPC, REST and the health watches), trusting `tls`'s
    /// roots (and presenting its client certificate, if it has one). Endpoints are addressed by
    /// what the resolver found (an IP, usually): give the certificate that IP, or set the name to
    /// verify with [`ClientTls::server_name`](crate::tls::ClientTls::server_name).
    ///
    /// ```no_run
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?.server_name("echo.svc")?;
    /// switchboard::fleet::Fleet::builder("dns:///echo.svc:443").tls(tls);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(&mut self, tls: crate::tls::ClientTls) -> &mut Self {
        self.connect.tls = Some(tls);
        self
    }

    /// Starts the fleet with the resolver its target names (needs a Tokio runtime).
    pub fn build(&self) -> Result<Fleet, TargetError> {
        let resolver: Box<dyn Resolver> = match Target::parse(&self.target)? {
            Target::Static(addresses) => Box::new(StaticResolver::new(addresses)),
            #[cfg(feature = "dns")]
            Target::Dns { server, name, port } => Box::new(DnsResolver::new(server, name, port)),
            #[cfg(not(feature = "dns"))]
            Target::Dns { .. } => return Err(TargetError::new(&self.target, "dns targets need the `dns` feature")),
            #[cfg(feature = "etcd")]
            Target::Etcd { endpoints, prefix } => Box::new(EtcdResolver::new(endpoints, &prefix)),
            #[cfg(not(feature = "etcd"))]
            Target::Etcd { .. } => return Err(TargetError::new(&self.target, "etcd targets need the `etcd` feature")),
        };
        Ok(self.build_with(resolver))
    }

    /// Starts the fleet with `resolver` (needs a Tokio runtime); the target is only its name.
    pub fn build_with(&self, resolver: Box<dyn Resolver>) -> Fleet {
        let balancer = Arc::new(Balancer::new(self.balancing, self.ejection.clone(), self.health_service.clone(), self.connect.clone()));
        let resolver = resolve::Running::start(resolver, balancer.clone(), self.refresh, self.min_refresh);
        outlier::sweep(&balancer);
        Fleet { inner: Arc::new(Inner { target: self.target.clone(), balancer, resolver, connect: self.connect.clone() }) }
    }
}
