//! etcd: [`EtcdResolver`] lists and watches the keys under a prefix (`etcd:///services/echo`
//! targets); [`EtcdRegistration`] puts one replica's key there under a lease it keeps alive, so
//! the key goes when the replica deregisters (at once) or dies (when the lease's TTL runs out).
//!
//! # What is stored
//!
//! One key per endpoint under the prefix, `<prefix>/<instance id>` (`/services/echo/replica-1`),
//! whose value is JSON with the endpoint's `host:port` (`[v6]:port` for IPv6):
//!
//! ```text
//! /services/echo/replica-1  {"address": "10.0.0.5:50051"}
//! ```
//!
//! Other fields are ignored (room for metadata). So that other tools can register too, the
//! resolver also reads `{"Addr": "host:port"}` (what etcd's Go `endpoints` manager writes) and a
//! bare `host:port`; a value it cannot read is skipped. Every key under `prefix/` counts (keys
//! under `prefix-2/` do not). By hand, with etcdctl:
//!
//! ```text
//! etcdctl lease grant 10                      # lease 694d8c1f4a3b2e01 granted with TTL(10s)
//! etcdctl put --lease=694d8c1f4a3b2e01 /services/echo/replica-1 '{"address": "10.0.0.5:50051"}'
//! etcdctl lease keep-alive 694d8c1f4a3b2e01
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, PutOptions, WatchOptions};
use futures_util::future::BoxFuture;

use super::{Address, Resolution, ResolveError, Resolver, Snapshots};

/// The longest an etcd call (connecting included) may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on the connections to etcd (every 10 s, answered within 5 s): a watch or a
/// keep-alive stream to an etcd that froze or whose network went away fails, and is opened
/// again. (etcd refuses pings more often than every 5 s.)
const PING_EVERY: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Backoff between attempts to reach etcd again: 100 ms, doubling, at most 5 s, ±20 % jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Lists the endpoints registered under a key prefix in etcd and watches it: every change
/// (a replica registered, deregistered, or whose lease expired) reaches the fleet as a new full
/// snapshot within a few milliseconds. When etcd cannot be reached the fleet keeps the last
/// snapshot, and the resolver connects again (with a growing, jittered backoff), lists the
/// prefix anew and watches from there. The format of the keys is in the [module docs](self).
#[derive(Debug, Clone)]
pub struct EtcdResolver {
    endpoints: Vec<Address>,
    /// The prefix with a trailing `/`.
    prefix: String,
}

impl EtcdResolver {
    /// Watches the keys under `prefix/` (a trailing `/` is added when missing) at the etcd
    /// client `endpoints` (several: one etcd cluster).
    pub fn new(endpoints: Vec<Address>, prefix: &str) -> Self {
        EtcdResolver { endpoints, prefix: key_prefix(prefix) }
    }

    /// The keys' prefix, with its trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn error(&self, reason: String) -> ResolveError {
        ResolveError(format!("etcd at {}, keys under `{}`: {reason}", list(&self.endpoints), self.prefix))
    }

    /// Every readable key under the prefix and the revision they were read at.
    async fn list(&self, client: &mut Client) -> Result<(BTreeMap<Vec<u8>, Address>, i64), String> {
        let answer = within("listing the keys", client.get(self.prefix.as_str(), Some(GetOptions::new().with_prefix()))).await?;
        let revision = answer.header().map_or(0, |h| h.revision());
        let listed = answer.kvs().iter().filter_map(|kv| Some((kv.key().to_vec(), parse_value(kv.value())?))).collect();
        Ok((listed, revision))
    }

    /// Publishes what the prefix holds now and after every change, until the connection fails.
    async fn watch_once(&self, snapshots: &Snapshots, backoff: &mut Backoff) -> Result<Infallible, String> {
        let mut client = connect(&self.endpoints).await?;
        let (mut listed, revision) = self.list(&mut client).await?;
        snapshots.publish(addresses(&listed));
        // From the revision just after the listing: no change is missed, none seen twice.
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = within("watching the keys", client.watch(self.prefix.as_str(), Some(options))).await?;
        backoff.reset();
        loop {
            let answer = match stream.message().await {
                Ok(Some(answer)) => answer,
                Ok(None) => return Err("etcd ended the watch".to_owned()),
                Err(e) => return Err(format!("watching the keys: {e}")),
            };
            if answer.canceled() {
                // The revision was compacted away (or etcd gave up on the watch): list again.
                return Err(format!("etcd canceled the watch ({}; compacted at revision {})", answer.cancel_reason(), answer.compact_revision()));
            }
            let mut changed = false;
            for event in answer.events() {
                let Some(kv) = event.kv() else { continue };
                let address = match event.event_type() {
                    EventType::Put => parse_value(kv.value()),
                    EventType::Delete => None,
                };
                changed |= match address {
                    Some(address) => listed.insert(kv.key().to_vec(), address.clone()) != Some(address),
                    None => listed.remove(kv.key()).is_some(),
                };
            }
            if changed {
                snapshots.publish(addresses(&listed));
            }
        }
    }
}

impl Resolver for EtcdResolver {
    fn resolve(&self) -> BoxFuture<'_, Result<Resolution, ResolveError>> {
        Box::pin(async move {
            let mut client = connect(&self.endpoints).await.map_err(|e| self.error(e))?;
            let (listed, _) = self.list(&mut client).await.map_err(|e| self.error(e))?;
            Ok(Resolution { addresses: addresses(&listed), valid_for: None })
        })
    }

    fn watch<'a>(&'a self, snapshots: &'a Snapshots) -> Option<BoxFuture<'a, ()>> {
        Some(Box::pin(async move {
            let mut backoff = Backoff::new();
            loop {
                let Err(reason) = self.watch_once(snapshots, &mut backoff).await;
                let error = self.error(reason);
                tracing::warn!(%error, "fleet: etcd watch failed; keeping the last snapshot and trying again");
                snapshots.failed(error);
                tokio::time::sleep(backoff.next()).await;
            }
        }))
    }
}

/// One replica's registration in etcd: its key under a lease that a background task keeps
/// alive. [`deregister`](EtcdRegistration::deregister) revokes the lease, and the key is gone at
/// once (watching clients stop calling the replica within milliseconds); a process that dies
/// stops the keep-alives, and etcd deletes the key when the lease's TTL runs out. Dropping the
/// registration without deregistering stops the keep-alives too, as a dying process would.
///
/// Should etcd lose the lease (it could not be reached for longer than the TTL), the
/// background task registers again under a new lease when etcd answers.
///
/// On a graceful drain, deregister first, then stop serving: clients stop picking the replica
/// before its listener closes, and the calls in flight finish.
///
/// ```no_run
/// # use std::time::Duration;
/// # async fn run(server: switchboard::Server, sigterm: impl std::future::Future<Output = ()> + Send + 'static)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::fleet::EtcdRegistration;
/// let listener = tokio::net::TcpListener::bind("10.0.0.5:50051").await?;
/// let registration = EtcdRegistration::register(
///     &["127.0.0.1:2379"], "/services/echo", "replica-1", "10.0.0.5:50051", Duration::from_secs(10),
/// )
/// .await?;
/// server
///     .serve_with_shutdown(listener, async move {
///         sigterm.await;
///         // Out of the fleet first; then the server finishes the calls in flight.
///         if let Err(e) = registration.deregister().await {
///             eprintln!("{e} (the key expires with its lease)");
///         }
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EtcdRegistration {
    endpoints: Vec<Address>,
    key: String,
    ttl: Duration,
    lease: Arc<AtomicI64>,
    keeper: tokio::task::JoinHandle<()>,
}

/// A replica could not be registered in etcd (or deregistered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegistrationError(pub String);

impl EtcdRegistration {
    /// Registers `address` (`host:port`, as clients should call it) as instance `instance` of
    /// the service under `prefix` at the etcd client `endpoints` (`host:port`, port 2379 when
    /// omitted): grants a lease of `ttl` (whole seconds, rounded up; etcd may raise a short one
    /// to its minimum), puts `<prefix>/<instance>` = `{"address": "<address>"}` under it, and
    /// keeps the lease alive in the background (every third of the TTL). Needs a Tokio runtime.
    pub async fn register(
        endpoints: &[&str],
        prefix: &str,
        instance: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<EtcdRegistration, RegistrationError> {
        let endpoints = endpoints
            .iter()
            .map(|e| {
                let e = e.trim().trim_start_matches("http://");
                match super::target::split_port(e, 2379) {
                    Ok((host, port)) if !host.is_empty() => Ok(Address { host, port }),
                    _ => Err(RegistrationError(format!("`{e}` is not an etcd endpoint (host:port)"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(RegistrationError("no etcd endpoint given".to_owned()));
        }
        if instance.is_empty() {
            return Err(RegistrationError("the instance id is empty".to_owned()));
        }
        let address = Address::parse(address).map_err(RegistrationError)?;
        let key = format!("{}{instance}", key_prefix(prefix));
        let value = serde_json::json!({ "address": address.authority() }).to_string();
        let seconds = (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1) as i64;
        let failed = |e: String| RegistrationError(format!("registering `{key}` at etcd {}: {e}", list(&endpoints)));
        let mut client = connect(&endpoints).await.map_err(failed)?;
        let (lease, granted) = grant_and_put(&mut client, &key, &value, seconds).await.map_err(failed)?;
        let lease = Arc::new(AtomicI64::new(lease));
        let keeper = tokio::spawn(keep_alive(client, endpoints.clone(), key.clone(), value, seconds, lease.clone()));
        Ok(EtcdRegistration { endpoints, key, ttl: Duration::from_secs(granted as u64), lease, keeper })
    }

    /// The registered key (`<prefix>/<instance>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease's TTL, as etcd granted it.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The id of the lease the key is under now.
    pub fn lease_id(&self) -> i64 {
        self.lease.load(Ordering::Acquire)
    }

    /// Stops the keep-alives and revokes the lease: the key is deleted at once. On an error
    /// (etcd unreachable) the key still goes when the lease's TTL runs out.
    pub async fn deregister(self) -> Result<(), RegistrationError> {
        self.keeper.abort();
        let failed = |e: String| RegistrationError(format!("deregistering `{}` at etcd {}: {e}", self.key, list(&self.endpoints)));
        let mut client = connect(&self.endpoints).await.map_err(failed)?;
        // Revoking deletes the key; deleting it too covers a key the keeper had just put again
        // under a new lease when it was stopped (a no-op otherwise).
        let revoked = within("revoking the lease", client.lease_revoke(self.lease_id())).await;
        let deleted = within("deleting the key", client.delete(self.key.as_str(), None)).await;
        match (revoked, deleted) {
            (_, Ok(_)) => Ok(()),
            (Err(e), Err(_)) | (Ok(_), Err(e)) => Err(failed(e)),
        }
    }
}

impl Drop for EtcdRegistration {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Grants a lease of `ttl` seconds and puts `key` = `value` under it: the lease's id and TTL.
async fn grant_and_put(client: &mut Client, key: &str, value: &str, ttl: i64) -> Result<(i64, i64), String> {
    let lease = within("granting a lease", client.lease_grant(ttl, None)).await?;
    within("putting the key", client.put(key, value, Some(PutOptions::new().with_lease(lease.id())))).await?;
    Ok((lease.id(), lease.ttl()))
}

/// The registration's background task: keeps the lease alive, connecting again after failures
/// and registering anew under a new lease when etcd no longer knows the old one.
async fn keep_alive(client: Client, endpoints: Vec<Address>, key: String, value: String, ttl: i64, lease: Arc<AtomicI64>) {
    let mut client = Some(client);
    let mut backoff = Backoff::new();
    loop {
        let Err(reason) = keep_alive_once(client.take(), &endpoints, &key, &value, ttl, &lease, &mut backoff).await;
        tracing::warn!(key, error = %reason, "fleet: etcd lease keep-alive failed; trying again");
        tokio::time::sleep(backoff.next()).await;
    }
}

async fn keep_alive_once(
    client: Option<Client>,
    endpoints: &[Address],
    key: &str,
    value: &str,
    ttl: i64,
    lease: &AtomicI64,
    backoff: &mut Backoff,
) -> Result<Infallible, String> {
    let mut client = match client {
        Some(client) => client,
        None => connect(endpoints).await?,
    };
    let every = Duration::from_millis(ttl as u64 * 1000 / 3).max(Duration::from_millis(300));
    loop {
        let id = lease.load(Ordering::Acquire);
        // Opening the stream sends the first keep-alive and reads its answer.
        let (mut keeper, mut answers) = match tokio::time::timeout(CALL_TIMEOUT, client.lease_keep_alive(id)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(_))) => {
                // The lease expired (etcd was out of reach for longer than the TTL): register
                // again under a new one.
                let (id, _) = grant_and_put(&mut client, key, value, ttl).await?;
                lease.store(id, Ordering::Release);
                tracing::info!(key, "fleet: etcd lease had expired; registered again");
                continue;
            }
            Ok(Err(e)) => return Err(format!("keeping the lease alive: {e}")),
            Err(_) => return Err(format!("keeping the lease alive: no answer within {CALL_TIMEOUT:?}")),
        };
        backoff.reset();
        loop {
            tokio::time::sleep(every).await;
            within("keeping the lease alive", keeper.keep_alive()).await?;
            match within("keeping the lease alive", answers.message()).await? {
                Some(answer) if answer.ttl() > 0 => {}
                // etcd no longer knows the lease: the next round finds out and registers again.
                Some(_) => break,
                None => return Err("etcd closed the keep-alive stream".to_owned()),
            }
        }
    }
}

/// A client of the etcd cluster at `endpoints` (connections are made on the first call).
async fn connect(endpoints: &[Address]) -> Result<Client, String> {
    let urls: Vec<String> = endpoints.iter().map(|a| format!("http://{}", a.authority())).collect();
    let options = ConnectOptions::new().with_connect_timeout(CALL_TIMEOUT).with_keep_alive(PING_EVERY, PING_TIMEOUT);
    within("connecting", Client::connect(urls, Some(options))).await
}

/// `call`, failed after [`CALL_TIMEOUT`] (a call to an etcd that cannot be reached may wait for
/// a connection for ever).
async fn within<T>(what: &str, call: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
    }
}

/// `prefix` with one trailing `/`: `/services/echo` must not list `/services/echo-2/…`.
fn key_prefix(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// An endpoint's address from its key's value: `{"address": "host:port"}`, `{"Addr": "host:port"}`
/// or `host:port`.
fn parse_value(value: &[u8]) -> Option<Address> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        let address = json.get("address").or_else(|| json.get("Addr"))?.as_str()?;
        return Address::parse(address.trim()).ok();
    }
    Address::parse(text).ok()
}

/// The snapshot: the listed addresses in key order, each once.
fn addresses(listed: &BTreeMap<Vec<u8>, Address>) -> Vec<Address> {
    let mut seen = std::collections::HashSet::new();
    listed.values().filter(|a| seen.insert(*a)).cloned().collect()
}

fn list(endpoints: &[Address]) -> String {
    endpoints.iter().map(Address::authority).collect::<Vec<_>>().join(",")
}

/// Waits between attempts to reach etcd: 100 ms, doubling up to 5 s, ±20 % jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: BACKOFF_BASE }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_BASE;
    }

    fn next(&mut self) -> Duration {
        let wait = self.next.mul_f64(0.8 + 0.4 * fastrand::f64());
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let a = |s: &str| Some(Address::parse(s).unwrap());
        assert_eq!(parse_value(br#"{"address": "10.0.0.5:50051", "zone": "b"}"#), a("10.0.0.5:50051"));
        assert_eq!(parse_value(br#"{"Op": 0, "Addr": "[::1]:50051", "Metadata": null}"#), a("[::1]:50051"));
        assert_eq!(parse_value(b" 10.0.0.5:50051\n"), a("10.0.0.5:50051"));
        assert_eq!(parse_value(br#"{"address": "no-port"}"#), None);
        assert_eq!(parse_value(br#"{"addr": "10.0.0.5:1"}"#), None);
        assert_eq!(parse_value(b"\xff"), None);
        assert_eq!(key_prefix("/services/echo"), "/services/echo/");
        assert_eq!(key_prefix("/services/echo//"), "/services/echo/");
    }

    #[test]
    fn snapshots_keep_key_order_without_duplicates() {
        let listed: BTreeMap<Vec<u8>, Address> = [("b", "10.0.0.1:1"), ("a", "10.0.0.2:1"), ("c", "10.0.0.1:1")]
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Address::parse(v).unwrap()))
            .collect();
        let got: Vec<String> = addresses(&listed).iter().map(Address::authority).collect();
        assert_eq!(got, ["10.0.0.2:1", "10.0.0.1:1"]);
    }
}
