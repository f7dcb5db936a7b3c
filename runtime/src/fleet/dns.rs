//! [`DnsResolver`]: A/AAAA records (or SRV records, for names starting with `_`) through
//! hickory-resolver, from the system's name servers or the one a `dns://ip:port/…` target names.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

use super::{Address, Resolution, ResolveError, Resolver};

/// Looks a name up in DNS: every A and AAAA record of `name` on the target's port, or, for a
/// name starting with `_` (`_grpc._tcp.echo.svc`), every SRV record's target and port. The
/// answer is used for its TTL.
pub struct DnsResolver {
    server: Option<SocketAddr>,
    name: String,
    port: u16,
    resolver: OnceLock<Result<TokioResolver, String>>,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver").field("server", &self.server).field("name", &self.name).field("port", &self.port).finish()
    }
}

impl DnsResolver {
    /// Looks `name` up at `server` (the system's name servers when `None`); addresses are
    /// called on `port` (SRV records carry their own).
    pub fn new(server: Option<SocketAddr>, name: String, port: u16) -> Self {
        DnsResolver { server, name, port, resolver: OnceLock::new() }
    }

    fn resolver(&self) -> Result<&TokioResolver, ResolveError> {
        let made = self.resolver.get_or_init(|| {
            let mut builder = match self.server {
                None => TokioResolver::builder_tokio().map_err(|e| format!("reading the system's DNS config: {e}"))?,
                Some(server) => {
                    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut ns.connections {
                        connection.port = server.port();
                    }
                    TokioResolver::builder_with_config(ResolverConfig::from_name_servers(vec![ns]), TokioRuntimeProvider::default())
                }
            };
            let mut options = ResolverOpts::default();
            // The fleet asks again when the TTL runs out: a cached answer would hide a change.
            options.cache_size = 0;
            *builder.options_mut() = options;
            builder.build().map_err(|e| format!("starting the DNS resolver: {e}"))
        });
        made.as_ref().map_err(|e| ResolveError(e.clone()))
    }
}

impl Resolver for DnsResolver {
    fn resolve(&self) -> BoxFuture<'_, Result<Resolution, ResolveError>> {
        Box::pin(async move {
            let resolver = self.resolver()?;
            let now = Instant::now();
            let failed = |e: &dyn std::fmt::Display| ResolveError(format!("looking up `{}`: {e}", self.name));
            let (mut addresses, valid_until) = if self.name.starts_with('_') {
                let srv = resolver.srv_lookup(self.name.as_str()).await.map_err(|e| failed(&e))?;
                let mut addresses = Vec::new();
                let mut valid_until = srv.valid_until();
                for record in srv.answers() {
                    let RData::SRV(srv) = &record.data else { continue };
                    let ips = resolver.lookup_ip(srv.target.clone()).await.map_err(|e| failed(&e))?;
                    valid_until = valid_until.min(ips.valid_until());
                    addresses.extend(ips.iter().map(|ip| Address { host: ip.to_string(), port: srv.port }));
                }
                (addresses, valid_until)
            } else {
                let ips = resolver.lookup_ip(self.name.as_str()).await.map_err(|e| failed(&e))?;
                let addresses = ips.iter().map(|ip| Address { host: ip.to_string(), port: self.port }).collect();
                (addresses, ips.valid_until())
            };
            addresses.sort();
            addresses.dedup();
            Ok(Resolution { addresses, valid_for: Some(valid_until.saturating_duration_since(now).max(Duration::from_millis(1))) })
        })
    }
}
