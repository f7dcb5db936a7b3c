//! [`HealthReporter`]: the statuses the health service answers with, and the one place they
//! change.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

use super::ServingStatus;

/// What the reporter holds: every status, and whether it was shut down or closed.
#[derive(Debug, Clone, Default)]
pub(super) struct State {
    /// Statuses by service full name; `""` is the server as a whole.
    pub(super) statuses: BTreeMap<String, ServingStatus>,
    /// Set by [`HealthReporter::shutdown`]: every status is `NOT_SERVING` and stays so.
    shut_down: bool,
    /// Set by [`HealthReporter::close`]: `Watch` calls end.
    pub(super) closed: bool,
}

/// The health statuses a server reports, shared by every handle: a cheap, cloneable handle
/// whose setters take `&self`.
///
/// Statuses are kept by service full name (`package.Service`); `""` is the server as a whole.
/// A new reporter knows only `""`, as `SERVING`. Every change reaches the `Watch` calls in
/// progress at once (a `tokio::sync::watch` channel underneath; a watcher that falls behind sees
/// the latest status, not every one in between).
///
/// [`switchboard::Server`](crate::Server) keeps one: [`Server::health`](crate::Server::health)
/// hands it out, every service added is registered `SERVING`, and it is shut down when the
/// server's shutdown signal fires.
///
/// ```
/// use switchboard::health::{HealthReporter, ServingStatus};
///
/// let health = HealthReporter::new();
/// health.set_not_serving("shop.v1.Orders");
/// assert_eq!(health.status("shop.v1.Orders"), Some(ServingStatus::NotServing));
/// health.shutdown();
/// health.set_serving("");
/// assert_eq!(health.status(""), Some(ServingStatus::NotServing), "shut down: changes are ignored");
/// ```
#[derive(Clone)]
pub struct HealthReporter {
    state: Arc<watch::Sender<State>>,
}

impl HealthReporter {
    /// A reporter with `""` (the server) `SERVING`, and no service.
    pub fn new() -> Self {
        let mut state = State::default();
        state.statuses.insert(String::new(), ServingStatus::Serving);
        HealthReporter { state: Arc::new(watch::Sender::new(state)) }
    }

    /// Sets `service`'s status (`""`: the server's), registering it if it is new. Ignored once
    /// the reporter is shut down.
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        self.state.send_if_modified(|state| {
            if state.shut_down {
                return false;
            }
            state.statuses.insert(service.to_owned(), status) != Some(status)
        });
    }

    /// Sets `service` `SERVING` (see [`HealthReporter::set_status`]).
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Sets `service` `NOT_SERVING` (see [`HealthReporter::set_status`]): health-checking
    /// clients stop sending it calls.
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Forgets `service`: `Check` answers NOT_FOUND for it again, and `Watch` `SERVICE_UNKNOWN`.
    /// Ignored once the reporter is shut down.
    pub fn clear(&self, service: &str) {
        self.state.send_if_modified(|state| !state.shut_down && state.statuses.remove(service).is_some());
    }

    /// `service`'s status, if it has one.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.state.borrow().statuses.get(service).copied()
    }

    /// Every status, by service full name (`""`: the server).
    pub fn statuses(&self) -> BTreeMap<String, ServingStatus> {
        self.state.borrow().statuses.clone()
    }

    /// Sets every status `NOT_SERVING` and keeps them so: later changes are ignored. `Watch`
    /// calls see it at once and stay open. A server calls it when it starts to shut down, so
    /// that clients stop sending calls before it stops taking them.
    pub fn shutdown(&self) {
        self.shut(false);
    }

    /// Whether [`HealthReporter::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.state.borrow().shut_down
    }

    /// Shuts down (as [`HealthReporter::shutdown`]) and ends every `Watch` call, in progress or
    /// to come, once it has sent the last status (`NOT_SERVING`): a graceful shutdown waits
    /// for the calls in flight, and a `Watch` would otherwise never end.
    /// [`Server::serve_with_shutdown`](crate::Server::serve_with_shutdown) calls it as it stops;
    /// a server built from [`Server::into_parts`](crate::Server::into_parts) calls it before its
    /// own graceful shutdown.
    pub fn close(&self) {
        self.shut(true);
    }

    /// Every status `NOT_SERVING` for good, and with `close` the end of the `Watch` calls: one
    /// change, so that a watcher sees both at once.
    fn shut(&self, close: bool) {
        self.state.send_modify(|state| {
            state.shut_down = true;
            state.closed |= close;
            state.statuses.values_mut().for_each(|status| *status = ServingStatus::NotServing);
        });
    }

    /// Registers a service a server carries: `SERVING`, unless it already has a status (one set
    /// before the service was added wins).
    #[cfg(all(feature = "grpc", feature = "rest"))]
    pub(crate) fn register(&self, service: &str) {
        self.state.send_if_modified(|state| {
            if state.shut_down || state.statuses.contains_key(service) {
                return false;
            }
            state.statuses.insert(service.to_owned(), ServingStatus::Serving);
            true
        });
    }

    /// A receiver of every change, for `Watch`.
    pub(super) fn subscribe(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }
}

impl Default for HealthReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("HealthReporter")
            .field("statuses", &state.statuses)
            .field("shut_down", &state.shut_down)
            .field("closed", &state.closed)
            .finish()
    }
}
