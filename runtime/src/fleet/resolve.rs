//! Resolvers: where a fleet's addresses come from, as full snapshots; and the task that asks
//! one again periodically, when its answer expires, and when an endpoint cannot be reached (or
//! lets one that watches its registry push its snapshots).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::{watch, Notify};

use super::balance::Balancer;
use super::Address;

/// One answer of a [`Resolver`]: every address the service has now (a full snapshot, never a
/// change), and how long it may be used before asking again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The addresses; an empty list means the service has none now.
    pub addresses: Vec<Address>,
    /// How long the answer holds (a DNS TTL, say): `None` keeps it until the periodic refresh.
    pub valid_for: Option<Duration>,
}

/// A resolver could not answer (the fleet keeps the addresses it had).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// Finds the addresses of a service. Implement it to plug in a registry of your own; the fleet
/// calls [`resolve`](Resolver::resolve) once at start, then again periodically, when an answer
/// expires and when an endpoint cannot be reached (never more often than its minimum interval).
///
/// A registry that can be watched (etcd) pushes instead: [`watch`](Resolver::watch) returns a
/// future that publishes a full snapshot to [`Snapshots`] whenever the service changes.
pub trait Resolver: Send + Sync + 'static {
    /// Every address the service has now.
    fn resolve(&self) -> BoxFuture<'_, Result<Resolution, ResolveError>>;

    /// Whether asking again can change the answer (`false` for a fixed list: the fleet then
    /// asks once).
    fn changes(&self) -> bool {
        true
    }

    /// Pushes snapshots rather than being asked: `Some` future that publishes every address
    /// the service has to `snapshots` at start and again after every change (full snapshots,
    /// never changes), and that runs as long as the fleet does (reconnecting to its registry
    /// by itself). While it runs, [`resolve`](Resolver::resolve) is not called; should it end,
    /// the fleet goes back to asking. `None` (the default): the resolver is only asked.
    fn watch<'a>(&'a self, snapshots: &'a Snapshots) -> Option<BoxFuture<'a, ()>> {
        let _ = snapshots;
        None
    }
}

/// Where a resolver's answers go: the fleet's balancer, and the first answer calls wait for.
pub struct Snapshots {
    balancer: Arc<Balancer>,
    first: watch::Sender<Option<Result<(), ResolveError>>>,
    good: AtomicBool,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").finish_non_exhaustive()
    }
}

impl Snapshots {
    /// Every address the service has now (a full snapshot: an address left out is gone).
    pub fn publish(&self, addresses: Vec<Address>) {
        self.balancer.update(addresses);
        self.good.store(true, Ordering::Release);
        self.first.send_replace(Some(Ok(())));
    }

    /// The resolver cannot answer now: the fleet keeps the addresses it had; a fleet that never
    /// had any fails its calls with `error` until addresses come.
    pub fn failed(&self, error: ResolveError) {
        if !self.good.load(Ordering::Acquire) {
            self.first.send_replace(Some(Err(error)));
        }
    }
}

/// A fixed list of addresses (`static:///…` and `http://host:port` targets).
#[derive(Debug, Clone)]
pub struct StaticResolver {
    addresses: Vec<Address>,
}

impl StaticResolver {
    /// Always answers `addresses`.
    pub fn new(addresses: Vec<Address>) -> Self {
        StaticResolver { addresses }
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self) -> BoxFuture<'_, Result<Resolution, ResolveError>> {
        Box::pin(std::future::ready(Ok(Resolution { addresses: self.addresses.clone(), valid_for: None })))
    }

    fn changes(&self) -> bool {
        false
    }
}

/// A resolver at work for one fleet: its task, the first answer (calls wait for it) and the
/// "look again" signal.
pub(crate) struct Running {
    first: watch::Receiver<Option<Result<(), ResolveError>>>,
    /// Whether addresses came once (then they always are: later failures keep them), so
    /// that a call does not lock the watch to find out.
    answered: AtomicBool,
    again: Arc<Notify>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Running {
    pub(crate) fn start(resolver: Box<dyn Resolver>, balancer: Arc<Balancer>, every: Duration, at_least: Duration) -> Arc<Self> {
        let (tx, first) = watch::channel(None);
        let again = Arc::new(Notify::new());
        let signal = again.clone();
        let task = tokio::spawn(async move {
            let snapshots = Snapshots { balancer, first: tx, good: AtomicBool::new(false) };
            if let Some(watching) = resolver.watch(&snapshots) {
                watching.await;
            }
            loop {
                let asked = Instant::now();
                let wait = match resolver.resolve().await {
                    Ok(resolution) => {
                        let wait = resolution.valid_for.map_or(every, |ttl| ttl.min(every));
                        snapshots.publish(resolution.addresses);
                        wait
                    }
                    Err(e) => {
                        // Keep what was resolved before; a fleet that never resolved fails
                        // its calls with the reason until an answer comes.
                        snapshots.failed(e);
                        every
                    }
                };
                if !resolver.changes() {
                    // Nothing to ask again; the answer stays readable until the fleet goes.
                    std::future::pending::<()>().await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait.max(at_least)) => {}
                    _ = signal.notified() => {}
                }
                // Never sooner than the minimum interval after the last question.
                tokio::time::sleep_until((asked + at_least).into()).await;
            }
        });
        Arc::new(Running { first, answered: AtomicBool::new(false), again, task: Mutex::new(Some(task)) })
    }

    /// Waits for the first answer: `Ok` once addresses came, the error while none ever did.
    pub(crate) async fn first(&self) -> Result<(), ResolveError> {
        if self.answered.load(Ordering::Relaxed) {
            return Ok(());
        }
        if let Some(answer) = &*self.first.borrow() {
            if answer.is_ok() {
                self.answered.store(true, Ordering::Relaxed);
            }
            return answer.clone();
        }
        let mut first = self.first.clone();
        let answer = match first.wait_for(Option::is_some).await {
            Ok(answer) => answer.clone().unwrap_or(Ok(())),
            Err(_) => Err(ResolveError("the resolver stopped before answering".to_owned())),
        };
        answer
    }

    /// Asks the resolver to look again (no sooner than its minimum interval).
    pub(crate) fn refresh(&self) {
        self.again.notify_one();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            task.abort();
        }
    }
}
