//! [`QueueServer`]: takes a service's requests and events off a broker and runs the handler.
//!
//! Per request: drop it if its deadline has passed; look the message id up in the dedupe window
//! (a duplicate gets the first reply again); run the handler under the deadline; send the reply
//! frames; then ack. A cancel frame naming the request's correlation id (its caller gave up)
//! stops it on the way: the handler's future is dropped (its `Cancellation` fires), nothing is
//! answered, the message id is released, and the request is acked. Per event: the same, but the outcome decides the ack: Ok → ack; an error →
//! retry after a backoff, and after `max_attempts` (or at once for a message that cannot be
//! decoded) move it to the dead-letter queue.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tonic::{Code, Status};

use super::codec::Proto;
use super::call::{OpCall, Outcome, Queue, QueueCall, UnaryReply};
use crate::dispatch::{Dispatch, ServiceTable};
use super::backend::{Cancels, ConsumerSpec, Deliveries, Delivery};
use crate::dedupe::{self, Dedupe, DedupeStore, KeyClaim, KeyWindow, Kept};
use super::micro::Stats;
use crate::shed::{self, Limit};
use super::wire::{self, Envelope};
use super::{Broker, DEFAULT_DEDUPE_MAX_BYTES};
use crate::CallShape;

/// Serves a service over a [`Broker`]: request-reply for unary and server-streaming methods,
/// at-least-once handling for event methods. Built by `<Trait>QueueServer::new(handler)`.
///
/// ```no_run
/// # use switchboard::{Request, Response, Status};
/// # #[switchboard::service(package = "hello.v1")]
/// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
/// # struct Impl;
/// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = switchboard::queue::Broker::connect("memory://").await?;
/// GreeterQueueServer::new(Impl).prefetch(32).serve(&broker).await?;
/// # Ok(()) }
/// ```
///
/// `C` is the service's codec ([`Proto`] or [`Json`](super::Json)); the `<Trait>QueueServer`
/// alias the macro writes picks it.
pub struct QueueServer<D: Dispatch<Queue<C>>, C: Send + Sync + 'static = Proto> {
    handler: Arc<D::Handler>,
    options: Options,
    _dispatch: PhantomData<fn() -> (D, C)>,
}

#[derive(Debug, Clone)]
struct Options {
    prefetch: u16,
    max_attempts: u32,
    backoff: (Duration, Duration),
    dedupe_window: Duration,
    dedupe_capacity: usize,
    dedupe_max_bytes: usize,
    /// Where the window keeps its keys, when not in this server.
    dedupe_store: Option<Store>,
    dedupe_lease: Duration,
    ack_wait: Duration,
    /// How long a shutdown waits for the calls in flight (none: as long as they take).
    drain_timeout: Option<Duration>,
    /// The limit on requests in flight, if one is set.
    shed: Option<Arc<Limit>>,
    requests: bool,
    events: bool,
    /// Whether to answer NATS micro discovery, and the version it reports.
    discovery: bool,
    version: Option<String>,
    /// The hook that checks credentials of secured OpenAPI operations.
    #[cfg(feature = "openapi")]
    authorize: Option<Hook>,
}

/// A dedupe store, shown by name in `Debug` output.
#[derive(Clone)]
struct Store(Arc<dyn DedupeStore>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(..)")
    }
}

/// The authorization hook, shown by name in `Debug` output.
#[cfg(feature = "openapi")]
#[derive(Clone)]
struct Hook(crate::api::security::Authorize);

#[cfg(feature = "openapi")]
impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook(..)")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefetch: 64,
            max_attempts: 5,
            backoff: (Duration::from_millis(100), Duration::from_secs(10)),
            dedupe_window: Duration::from_secs(300),
            dedupe_capacity: 100_000,
            dedupe_max_bytes: DEFAULT_DEDUPE_MAX_BYTES,
            dedupe_store: None,
            dedupe_lease: dedupe::DEFAULT_LEASE,
            ack_wait: Duration::from_secs(30),
            drain_timeout: None,
            shed: None,
            requests: true,
            events: true,
            discovery: true,
            version: None,
            #[cfg(feature = "openapi")]
            authorize: None,
        }
    }
}

impl<D: Dispatch<Queue<C>>, C: Send + Sync + 'static> QueueServer<D, C> {
    /// Serves `handler`.
    pub fn new(handler: D::Handler) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// Serves a shared handler (the same one gRPC and REST serve, say).
    pub fn from_arc(handler: Arc<D::Handler>) -> Self {
        QueueServer { handler, options: Options::default(), _dispatch: PhantomData }
    }

    /// Most messages in flight at once (AMQP prefetch, JetStream max ack pending). Default 64.
    /// On Kafka, each consumer counts its own: requests, events, and the retry topic's events.
    pub fn prefetch(mut self, n: u16) -> Self {
        self.options.prefetch = n.max(1);
        self
    }

    /// Attempts at an event before it is dead-lettered. Default 5.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.options.max_attempts = n.max(1);
        self
    }

    /// Delay before retrying a failed event: `first`, doubling per attempt up to `max`.
    /// Default 100 ms up to 10 s.
    pub fn retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.options.backoff = (first, max.max(first));
        self
    }

    /// How long message ids are remembered, so a redelivered request or event is not run again.
    /// Default 5 minutes; zero turns deduplication off.
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.options.dedupe_window = window;
        self
    }

    /// Most message ids remembered. Default 100,000.
    pub fn dedupe_capacity(mut self, n: usize) -> Self {
        self.options.dedupe_capacity = n;
        self
    }

    /// Most memory the dedupe window holds, in bytes: the replies kept for duplicates plus about
    /// a hundred bytes per remembered id. Past it, the ids that finished first are forgotten
    /// first (a redelivery of a forgotten request runs again). Default 64 MiB
    /// ([`DEFAULT_DEDUPE_MAX_BYTES`]). A reply larger than 256 KiB, or than this budget, is not
    /// kept: its duplicates are answered ABORTED instead of being run again.
    ///
    /// ```no_run
    /// # use switchboard::{Request, Response, Status};
    /// # #[switchboard::service(package = "hello.v1")]
    /// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
    /// # struct Impl;
    /// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let broker = switchboard::queue::Broker::connect("memory://").await?;
    /// use std::time::Duration;
    /// GreeterQueueServer::new(Impl)
    ///     .dedupe_window(Duration::from_secs(60))
    ///     .dedupe_max_bytes(16 * 1024 * 1024) // 16 MiB of remembered replies at most
    ///     .serve(&broker)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn dedupe_max_bytes(mut self, bytes: usize) -> Self {
        self.options.dedupe_max_bytes = bytes;
        self
    }

    /// Keeps the dedupe window in `store` instead of this server: with a store the replicas of
    /// the service share ([`RedisStore`](crate::dedupe::RedisStore),
    /// [`NatsKvStore`](crate::dedupe::NatsKvStore)), a request or event redelivered to another
    /// replica (its server died before acking) is answered from the first run instead of running
    /// again. Keys are `q/<service>/<message id>`; answers are kept for
    /// [`dedupe_window`](Self::dedupe_window), up to 256 KiB (or
    /// [`dedupe_max_bytes`](Self::dedupe_max_bytes)) each; the store bounds its own size. An
    /// answer is stored before its reply goes out and before the message is acked; a store that
    /// cannot be reached answers the request UNAVAILABLE (an event is retried) rather than
    /// running it unguarded. What it guarantees: [`DedupeStore`].
    ///
    /// ```no_run
    /// # use switchboard::{Request, Response, Status};
    /// # #[switchboard::service(package = "hello.v1", grpc = false)]
    /// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
    /// # struct Impl;
    /// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use switchboard::dedupe::{DedupeStore, InProcessStore};
    /// let broker = switchboard::queue::Broker::connect("memory://").await?;
    /// // Replicas share `RedisStore::connect("redis://…")` (feature `redis`) or
    /// // `NatsKvStore::connect("nats://…", bucket, window)` (feature `nats`) instead.
    /// let store: Arc<dyn DedupeStore> = Arc::new(InProcessStore::default());
    /// GreeterQueueServer::new(Impl)
    ///     .dedupe_store(store)
    ///     .dedupe_lease(Duration::from_secs(5))
    ///     .serve(&broker)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn dedupe_store(mut self, store: Arc<dyn DedupeStore>) -> Self {
        self.options.dedupe_store = Some(Store(store));
        self
    }

    /// How long a run's claim on its message id holds in a [`dedupe_store`](Self::dedupe_store)
    /// without being renewed. The server renews it every third of the lease while the handler
    /// runs, so a slow handler keeps it; a replica that dies while running leaves it to lapse,
    /// and the message's redelivery waits that long (at most) before it runs again. A replica
    /// that cannot renew its claim for a whole lease (frozen, cut off from the store) may see
    /// another run start beside it. Default 10 s. Not used without a store (claims then end with
    /// the process).
    pub fn dedupe_lease(mut self, lease: Duration) -> Self {
        self.options.dedupe_lease = lease.max(Duration::from_millis(10));
        self
    }

    /// Sheds load: past `max_in_flight` requests running at once, a new request is answered
    /// RESOURCE_EXHAUSTED at once with `grpc-retry-pushback-ms: <pushback>` in the reply's
    /// metadata (docs/queue-protocol.md), which switchboard's retrying clients wait for before
    /// they try again; without it requests past the prefetch wait in the broker. Events are never
    /// shed (the broker keeps them until a consumer has room). The same limiter as the gRPC and
    /// REST servers'.
    ///
    /// ```no_run
    /// # use switchboard::{Request, Response, Status};
    /// # #[switchboard::service(package = "hello.v1")]
    /// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
    /// # struct Impl;
    /// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let broker = switchboard::queue::Broker::connect("memory://").await?;
    /// use std::time::Duration;
    /// GreeterQueueServer::new(Impl).prefetch(256).shed_load(64, Duration::from_millis(200)).serve(&broker).await?;
    /// # Ok(()) }
    /// ```
    pub fn shed_load(mut self, max_in_flight: usize, pushback: Duration) -> Self {
        self.options.shed = Some(Limit::new(max_in_flight, pushback));
        self
    }

    /// How long a broker that redelivers by timer (JetStream) waits for an ack. Default 30 s.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.options.ack_wait = wait;
        self
    }

    /// On shutdown, how long to wait for the calls in flight once no more messages are taken.
    /// Calls still running then are stopped; their messages were not acknowledged, so the
    /// broker delivers them again (to another replica), as for a replica that died. Default:
    /// wait as long as they take.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use switchboard::__private::Dispatch;
    /// # use switchboard::queue::{Proto, Queue, QueueServer};
    /// # fn f<D: Dispatch<Queue<Proto>>>(server: QueueServer<D>) {
    /// let server = server.drain_timeout(Duration::from_secs(10));
    /// # }
    /// ```
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.options.drain_timeout = Some(timeout);
        self
    }

    /// Whether to serve request-reply calls (default yes).
    pub fn requests(mut self, on: bool) -> Self {
        self.options.requests = on;
        self
    }

    /// Whether to consume the event methods' queues (default yes).
    pub fn events(mut self, on: bool) -> Self {
        self.options.events = on;
        self
    }

    /// Whether to answer NATS micro discovery (ADR-32's `$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`;
    /// default yes). On a `nats://` broker a server serving requests answers them for its
    /// service, under [`micro_name`](super::micro_name) of its full name, with an id of its own,
    /// one endpoint per method (its `sb.rpc.<service>.<method>` subject and `sb.rpc.<service>`
    /// queue group) and per-endpoint counts; it stops answering when it stops serving. Other
    /// brokers have no discovery. See docs/queue-protocol.md and [`discover`](super::discover).
    pub fn discovery(mut self, on: bool) -> Self {
        self.options.discovery = on;
        self
    }

    /// The version NATS micro discovery reports (semver, e.g. `1.4.2`; serving fails with
    /// INVALID_ARGUMENT otherwise). Default: the switchboard runtime's version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.options.version = Some(version.into());
        self
    }

    /// Checks the credentials of every call (and event) of a secured OpenAPI operation, after
    /// the server has read them from the frame's metadata headers ([`Credentials`]: the first
    /// alternative of the operation's `security` the caller satisfies; see
    /// docs/queue-protocol.md for where each kind travels) and before the request is decoded. An
    /// `Err` is the call's answer (`Status::unauthenticated`, `Status::permission_denied`).
    /// Without a hook, any credentials of the right kind are let through; the handler finds them
    /// in `req.extensions().get::<Credentials>()`. Missing credentials are UNAUTHENTICATED either
    /// way, and operations without security skip the hook.
    ///
    /// ```
    /// # use switchboard::{Request, Response, Status};
    /// # #[switchboard::service(package = "hello.v1", grpc = false)]
    /// # pub trait Greeter { async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>; }
    /// # struct Impl;
    /// # impl Greeter for Impl { async fn say_hello(&self, r: Request<String>) -> Result<Response<String>, Status> { Ok(Response::new(r.into_inner())) } }
    /// let server = GreeterQueueServer::new(Impl).authorize(|_op, creds| match creds.bearer() {
    ///     Some("let-me-in") => Ok(()),
    ///     _ => Err(Status::permission_denied("unknown token")),
    /// });
    /// ```
    ///
    /// [`Credentials`]: crate::api::Credentials
    #[cfg(feature = "openapi")]
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(&crate::api::Operation, &crate::api::Credentials) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.options.authorize = Some(Hook(Arc::new(hook)));
        self
    }

    /// Serves until the broker connection is closed.
    pub async fn serve(self, broker: &Broker) -> Result<(), Status> {
        self.serve_with_shutdown(broker, std::future::pending()).await
    }

    /// Serves until `signal` completes, then stops taking messages and finishes the ones in
    /// flight (unsettled ones go back to the broker), waiting at most the
    /// [`drain_timeout`](Self::drain_timeout).
    pub async fn serve_with_shutdown(
        self,
        broker: &Broker,
        signal: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), Status> {
        let desc = D::descriptor();
        let drain_timeout = self.options.drain_timeout;
        if let Some(version) = self.options.version.as_deref().filter(|v| !super::micro::is_semver(v)) {
            return Err(Status::invalid_argument(format!("`{version}` is not a semantic version (MAJOR.MINOR.PATCH)")));
        }
        let served: Vec<&'static str> = desc
            .methods
            .iter()
            .filter(|m| matches!(m.shape, CallShape::Unary | CallShape::ServerStreaming))
            .map(|m| m.name)
            .collect();
        let events: Vec<&'static str> = desc.methods.iter().filter(|m| m.event).map(|m| m.name).collect();
        let spec = |methods| ConsumerSpec {
            service: desc.full_name,
            methods,
            prefetch: self.options.prefetch,
            ack_wait: self.options.ack_wait,
        };
        let mut requests = if self.options.requests && !served.is_empty() {
            Some(broker.backend().serve_requests(spec(served)).await?)
        } else {
            None
        };
        let mut event_rx = if self.options.events && !events.is_empty() {
            Some(broker.backend().serve_events(spec(events)).await?)
        } else {
            None
        };
        // Cancel frames for the requests this server runs (all servers of the service hear them).
        let mut cancel_rx = match &requests {
            Some(_) => Some(broker.backend().serve_cancels(desc.full_name).await?),
            None => None,
        };
        #[cfg(feature = "openapi")]
        let operations = super::operation::prepare(desc, self.options.authorize.as_ref().map(|h| &h.0))?;
        #[cfg(not(feature = "openapi"))]
        let operations = super::operation::prepare(desc, None)?;
        // NATS micro discovery (ADR-32) for the methods served, once they are subscribed.
        #[cfg(feature = "nats")]
        let registration = match broker.nats() {
            Some(nats) if requests.is_some() && self.options.discovery => {
                let served: Vec<usize> = (0..desc.methods.len())
                    .filter(|&i| matches!(desc.methods[i].shape, CallShape::Unary | CallShape::ServerStreaming))
                    .collect();
                let version = self.options.version.as_deref().unwrap_or(env!("CARGO_PKG_VERSION"));
                let json = std::any::TypeId::of::<C>() == std::any::TypeId::of::<super::Json>();
                Some(super::micro::register(nats.client(), nats.shutdown(), desc, &served, version, json).await?)
            }
            _ => None,
        };
        #[cfg(feature = "nats")]
        let stats = registration.as_ref().map(|r| r.stats.clone());
        #[cfg(not(feature = "nats"))]
        let stats = None;
        let shared = Arc::new(Shared {
            handler: self.handler,
            broker: broker.clone(),
            methods: {
                let mut names: Vec<_> = desc.methods.iter().enumerate().map(|(i, m)| (m.name, i)).collect();
                names.sort_unstable();
                names
            },
            operations,
            dedupe: match &self.options.dedupe_store {
                None => KeyWindow::Local(Dedupe::new(self.options.dedupe_window, self.options.dedupe_capacity, self.options.dedupe_max_bytes)),
                Some(Store(store)) => KeyWindow::Shared(dedupe::Shared {
                    store: store.clone(),
                    prefix: format!("q/{}/", desc.full_name),
                    keep: self.options.dedupe_window,
                    lease: self.options.dedupe_lease,
                    max_reply: dedupe::max_reply(self.options.dedupe_max_bytes),
                }),
            },
            running: Running::default(),
            stats,
            options: self.options,
        });
        let mut tasks = JoinSet::new();
        let mut spare = None;
        let mut spare_event = None;
        let mut signal = std::pin::pin!(signal);
        loop {
            tokio::select! {
                d = next(&mut requests) => match d {
                    Some(d) => {
                        // Most calls finish without waiting (echo-like handlers, a buffered reply
                        // publish): poll once here and spawn a task only for those that wait. A
                        // handler that computes for long before its first await holds up this
                        // server's next delivery meanwhile; it would hold a worker thread anyway.
                        // The box of a call that finished is reused for the next one: these
                        // futures are often over 1 KiB, past malloc's per-thread cache, and a
                        // fresh one per request makes the worker threads fight over its lock.
                        // A panic that escapes a call (the handler's own are answered inside, by
                        // the shared call path; this is the last line for the server's code) ends
                        // that call only: caught around this first poll, and by the task after
                        // it. Its unsettled message goes back to the broker when its acker is
                        // dropped.
                        poll_once_or_spawn(handle_request::<D, C>(shared.clone(), d), &mut spare, &mut tasks).await;
                    }
                    None => requests = None,
                },
                d = next(&mut event_rx) => match d {
                    // As with requests: polled once here, a task only for those that wait (most
                    // events settle without waiting: a handler that does not await, an in-process
                    // dedupe window), the box reused. A panic ends that event only, here or in
                    // its task; its acker, dropped unsettled, gives the message back.
                    Some(d) => {
                        poll_once_or_spawn(handle_event::<D, C>(shared.clone(), d), &mut spare_event, &mut tasks).await;
                    }
                    None => event_rx = None,
                },
                c = next_cancel(&mut cancel_rx) => match c {
                    Some(frame) => {
                        if let Some(id) = frame.header(wire::CANCEL) {
                            shared.running.cancel(id);
                        }
                    }
                    None => cancel_rx = None,
                },
                _ = &mut signal => break,
            }
            // Finished calls are reaped here, without waiting: a `join_next` branch above would
            // wake this loop once for every call that finishes, just to reap it.
            while tasks.try_join_next().is_some() {}
            if requests.is_none() && event_rx.is_none() {
                break;
            }
        }
        drop((requests, event_rx, cancel_rx));
        // Discovery stops answering before the calls in flight finish.
        #[cfg(feature = "nats")]
        if let Some(registration) = registration {
            registration.deregister().await;
        }
        let finish = async { while tasks.join_next().await.is_some() {} };
        match drain_timeout {
            None => finish.await,
            Some(timeout) => {
                if tokio::time::timeout(timeout, finish).await.is_err() {
                    // Out of time: the calls left are stopped and their messages, never
                    // acknowledged, go back to the broker.
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                }
            }
        }
        Ok(())
    }
}

/// Polls a call's future once in the server loop and spawns it on `tasks` only if it waits (see
/// the comment at its use for requests): the box of a future that finished at its first poll is
/// kept in `spare` for the next one of its kind; a panic at that poll drops the future (its
/// unsettled message goes back to the broker when its acker is dropped).
async fn poll_once_or_spawn<F: Future<Output = ()> + Send + 'static>(call: F, spare: &mut Option<std::pin::Pin<Box<F>>>, tasks: &mut JoinSet<()>) {
    let mut fut = match spare.take() {
        Some(mut boxed) => {
            boxed.set(call);
            boxed
        }
        None => Box::pin(call),
    };
    let polled = std::future::poll_fn(|cx| Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx).is_ready())))).await;
    match polled {
        Ok(true) => *spare = Some(fut),
        Ok(false) => {
            tasks.spawn(fut);
        }
        Err(_) => drop(fut),
    }
}

/// The status a caller gets when the handler (or the code that encodes its messages) panicked:
/// the shared call path's.
fn panic_status() -> Status {
    crate::call::panicked()
}

async fn next(deliveries: &mut Option<Deliveries>) -> Option<Delivery> {
    match deliveries {
        Some(d) => d.next().await,
        None => std::future::pending().await,
    }
}

async fn next_cancel(frames: &mut Option<Cancels>) -> Option<Envelope> {
    match frames {
        Some(f) => f.next().await,
        None => std::future::pending().await,
    }
}

/// The requests a server is running that a cancel frame may stop, by correlation id; and the
/// cancel frames that came before their request was taken off the queue, so that it is not run
/// when it comes (kept [`EARLY_KEPT`] at most, and [`EARLY_MAX`] of them).
#[derive(Default)]
struct Running {
    state: std::sync::Mutex<RunningState>,
    /// Whether `early` holds anything: looked at without the lock by every request.
    any_early: AtomicBool,
}

#[derive(Default)]
struct RunningState {
    running: HashMap<String, Arc<Notify>>,
    /// Cancels no running request matched (it may be queued still, or another server's): when
    /// each came.
    early: HashMap<String, Instant>,
    /// The same, oldest first, to forget them in order (an entry already taken stays here until
    /// its turn, and is skipped then).
    early_order: VecDeque<(String, Instant)>,
}

/// How long a cancel that matched no running request is remembered.
const EARLY_KEPT: Duration = Duration::from_secs(30);
/// Most such cancels remembered.
const EARLY_MAX: usize = 4096;

impl Running {
    /// Stops the request with correlation id `id`, or remembers the cancel for a while.
    fn cancel(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        if let Some(stop) = state.running.get(id) {
            // A permit: it holds even if the request's task has not polled its wait yet.
            stop.notify_one();
            return;
        }
        let now = Instant::now();
        while state.early_order.front().is_some_and(|(_, at)| now.duration_since(*at) > EARLY_KEPT) || state.early_order.len() >= EARLY_MAX {
            if let Some((old, at)) = state.early_order.pop_front() {
                if state.early.get(&old) == Some(&at) {
                    state.early.remove(&old);
                }
            }
        }
        state.early.insert(id.to_owned(), now);
        state.early_order.push_back((id.to_owned(), now));
        self.any_early.store(true, Ordering::Release);
    }

    /// Whether a cancel for `id` came before its request did (it is forgotten then).
    fn cancelled_early(&self, id: &str) -> bool {
        if !self.any_early.load(Ordering::Acquire) {
            return false;
        }
        let mut state = self.state.lock().unwrap();
        let found = state.early.remove(id).is_some();
        if state.early.is_empty() {
            state.early_order.clear();
            self.any_early.store(false, Ordering::Release);
        }
        found
    }

    /// Makes the request with correlation id `id` cancellable until the guard is dropped; `None`
    /// when it was cancelled already.
    fn enter(&self, id: &str) -> Option<Stoppable<'_>> {
        if self.cancelled_early(id) {
            return None;
        }
        let stop = Arc::new(Notify::new());
        self.state.lock().unwrap().running.insert(id.to_owned(), stop.clone());
        Some(Stoppable { running: self, id: id.to_owned(), stop })
    }
}

/// A running request a cancel frame may stop.
struct Stoppable<'a> {
    running: &'a Running,
    id: String,
    stop: Arc<Notify>,
}

impl Drop for Stoppable<'_> {
    fn drop(&mut self) {
        let mut state = self.running.state.lock().unwrap();
        // Another request may have come with the same correlation id since: leave its entry.
        if state.running.get(&self.id).is_some_and(|stop| Arc::ptr_eq(stop, &self.stop)) {
            state.running.remove(&self.id);
        }
    }
}

/// The id a cancel frame names a request by: its correlation id (RabbitMQ's property, the
/// embedded broker's), or on NATS the last token of its reply subject.
fn cancel_key(reply: &ReplyTo) -> Option<&str> {
    reply.correlation_id.as_deref().or_else(|| reply.address.as_deref().and_then(|a| a.rsplit('.').next())).filter(|id| !id.is_empty())
}

struct Shared<H> {
    handler: Arc<H>,
    broker: Broker,
    dedupe: KeyWindow<Vec<Envelope>>,
    /// The requests running, for cancel frames to find.
    running: Running,
    /// What NATS micro discovery's STATS answer counts (only on NATS).
    stats: Option<Arc<Stats>>,
    options: Options,
    /// Method name (the `sb-method` header, the RabbitMQ type property, the NATS subject's last
    /// token) → index in the descriptor, built once when serving starts.
    /// Method names and their indexes, sorted by name: a binary search finds a frame's method
    /// with a few comparisons and no hashing (most services have a handful of methods).
    methods: Vec<(&'static str, usize)>,
    /// Per method index: its OpenAPI operation contract, prepared once when serving starts.
    operations: Vec<Option<OpCall>>,
}

/// The call to dispatch, or why there is none.
fn prepare<D: ServiceTable, H>(
    shared: &Shared<H>,
    env: Envelope,
    events: bool,
    deadline: Option<SystemTime>,
) -> Result<QueueCall, Status> {
    let desc = D::descriptor();
    let name = env.header(wire::METHOD).ok_or_else(|| Status::invalid_argument(format!("missing `{}` header", wire::METHOD)))?;
    let index = match shared.methods.binary_search_by(|(n, _)| (*n).cmp(name)) {
        Ok(found) => shared.methods[found].1,
        Err(_) => return Err(Status::unimplemented(format!("`{}` has no method `{name}`", desc.full_name))),
    };
    let method = &desc.methods[index];
    if events && !method.event {
        return Err(Status::unimplemented(format!("`{name}` is not an event method")));
    }
    if method.shape.client_streams() {
        return Err(Status::unimplemented(format!(
            "`{name}` is {}: client and bidi streaming are not carried over queues; call it over gRPC or REST",
            if method.shape.server_streams() { "bidi streaming" } else { "client streaming" }
        )));
    }
    let deadline = deadline.map(|d| {
        let left = d.duration_since(SystemTime::now()).unwrap_or_default();
        Instant::now() + left
    });
    let operation = shared.operations.get(index).cloned().flatten();
    Ok(QueueCall { method: index, path: method.grpc_path, env, deadline, operation })
}

/// Where a request's reply frames go, and what they copy from it.
struct ReplyTo {
    address: Option<String>,
    correlation_id: Option<String>,
    content_type: Option<wire::Str>,
}

impl ReplyTo {
    /// Takes the routing properties out of `env` (the handler does not need them).
    fn take(env: &mut Envelope) -> Self {
        ReplyTo {
            address: env.reply_to.take(),
            correlation_id: env.correlation_id.take(),
            content_type: env.headers.iter().find(|(k, _)| k == wire::CONTENT_TYPE).map(|(_, v)| v.clone()),
        }
    }
}

async fn handle_request<D: Dispatch<Queue<C>>, C: Send + Sync + 'static>(shared: Arc<Shared<D::Handler>>, delivery: Delivery) {
    let Delivery { mut env, acker, .. } = delivery;
    let deadline = env.deadline();
    if deadline.is_some_and(|d| d <= SystemTime::now()) {
        // Nobody waits for it any more: drop it without running it.
        let _ = acker.ack().await;
        return;
    }
    let reply = ReplyTo::take(&mut env);
    let key = cancel_key(&reply).filter(|_| reply.address.is_some());
    if key.is_some_and(|id| shared.running.cancelled_early(id)) {
        // Its caller gave up before it was taken: drop it without running it.
        let _ = acker.ack().await;
        return;
    }
    {
        let answer = std::pin::pin!(answer::<D, C>(&shared, env, deadline, &reply));
        let mut answer = answer;
        // Most calls finish at their first poll: only one that waits is made cancellable.
        if std::future::poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await.is_pending() {
            match key.and_then(|id| shared.running.enter(id)) {
                Some(stoppable) => {
                    tokio::select! {
                        biased;
                        () = &mut answer => {}
                        // Cancelled: the handler's future (and its dedupe claim) is dropped
                        // below, unanswered: its caller is gone.
                        () = stoppable.stop.notified() => {}
                    }
                }
                // Cancelled between its first poll and now.
                None if key.is_some() => {}
                None => answer.await,
            }
        }
    }
    let _ = acker.ack().await;
}

/// Runs one request and sends its reply frames (everything but the ack).
async fn answer<D: Dispatch<Queue<C>>, C: Send + Sync + 'static>(
    shared: &Shared<D::Handler>,
    env: Envelope,
    deadline: Option<SystemTime>,
    reply: &ReplyTo,
) {
    let reply_to = &reply.address;
    // Held until the reply is out: the request's place under the load limit.
    let _permit = match shed::admit(shared.options.shed.as_ref()) {
        Ok(permit) => permit,
        Err(status) => {
            if let Some(to) = reply_to {
                let _ = shared.broker.reply(to, final_frame(0, &status, reply)).await;
            }
            return;
        }
    };
    let id = env.header(wire::MESSAGE_ID).filter(|_| shared.dedupe.enabled()).map(str::to_owned);
    // Held while the handler runs: dropped unfinished (a panic, this future dropped, an early
    // return), it releases the id so that a redelivery runs again instead of waiting for it.
    let mut running = None;
    if let Some(id) = &id {
        match shared.dedupe.claim(id).await {
            Ok(KeyClaim::Fresh(r)) => running = Some(r),
            // The store cannot be reached: not run unguarded; the caller may try again.
            Err(status) => {
                if let Some(to) = reply_to {
                    let _ = shared.broker.reply(to, final_frame(0, &status, reply)).await;
                }
                return;
            }
            Ok(KeyClaim::Done(frames)) => {
                if let Some(to) = reply_to {
                    let frames = match frames {
                        Some(f) => f.to_vec(),
                        None => vec![final_frame(0, &Status::aborted("a duplicate of a request already answered (its reply was too large to keep)"), reply)],
                    };
                    for mut frame in frames {
                        frame.correlation_id = reply.correlation_id.clone();
                        let _ = shared.broker.reply(to, frame).await;
                    }
                }
                return;
            }
        }
    }
    // `forget`: the answer is not final for the id (a panic, a busy or unavailable handler: see
    // `dedupe::remembered`), so a retry runs again.
    // For NATS micro discovery's STATS: the method, and when its handler started.
    let mut counted = None;
    let (outcome, mut forget) = match prepare::<D, _>(shared, env, false, deadline) {
        Ok(call) => {
            if shared.stats.is_some() {
                counted = Some((call.method, Instant::now()));
            }
            // The shared call path answers a handler's panic (and the codec's, see
            // `methods::caught`) INTERNAL; it is still a panic here.
            let outcome = D::dispatch(&shared.handler, call.method, call).await;
            let forget = matches!(&outcome, Outcome::Unary(Err(s)) if !dedupe::remembered(s));
            (outcome, forget)
        }
        Err(status) => (Outcome::Unary(Err(status)), false),
    };
    // Replies are kept for the dedupe window only when a message id can ask for them again.
    let mut kept = running.as_ref().map(|_| Vec::new());
    let mut kept_bytes = 0usize;
    let max_kept = shared.dedupe.max_reply_bytes();
    let mut send = |frame: Envelope| {
        if let Some(k) = kept.as_mut() {
            kept_bytes += envelope_size(&frame);
            if kept_bytes > max_kept {
                kept = None;
            } else {
                k.push(frame.clone());
            }
        }
        frame
    };
    match outcome {
        Outcome::Unary(result) => {
            if let (Some(stats), Some((index, started))) = (&shared.stats, counted) {
                stats.record(index, started.elapsed(), result.as_ref().err());
            }
            let frame = send(unary_frame(result, reply));
            // Recorded before it goes out: a replica that dies from here on has left the answer
            // for the redelivery (with a shared store).
            settle(running.take(), forget, kept.take()).await;
            if let Some(to) = reply_to {
                let _ = shared.broker.reply(to, frame).await;
            }
        }
        Outcome::Stream(metadata, stream) => {
            // The handler's stream (and the encoding of its messages) runs user code too.
            let mut stream = AssertUnwindSafe(stream).catch_unwind();
            let mut seq = 0u64;
            let mut metadata = Some(metadata);
            let status = loop {
                match stream.next().await {
                    Some(Ok(Ok(body))) => {
                        let mut frame = reply_frame(seq, reply);
                        if let Some(md) = metadata.take() {
                            wire::push_metadata(&mut frame, &md);
                        }
                        frame.body = body;
                        let frame = send(frame);
                        if let Some(to) = reply_to {
                            if shared.broker.reply(to, frame).await.is_err() {
                                break None;
                            }
                        }
                        seq += 1;
                    }
                    Some(Ok(Err(status))) => {
                        forget |= !dedupe::remembered(&status);
                        break Some(status);
                    }
                    Some(Err(_)) => {
                        forget = true;
                        break Some(panic_status());
                    }
                    None => break Some(Status::new(Code::Ok, "")),
                }
            };
            if let (Some(stats), Some((index, started))) = (&shared.stats, counted) {
                stats.record(index, started.elapsed(), status.as_ref().filter(|s| s.code() != Code::Ok));
            }
            if let Some(status) = status {
                let mut frame = final_frame(seq, &status, reply);
                if let Some(md) = metadata.take() {
                    wire::push_metadata(&mut frame, &md);
                }
                let frame = send(frame);
                if let Some(to) = reply_to {
                    let _ = shared.broker.reply(to, frame).await;
                }
            }
        }
    }
    settle(running, forget, kept).await;
}

/// Records a run's answer for its id (`kept`: its reply frames, when small enough to keep), or
/// releases the id when the answer is not final (`forget`: a panic, or a "try again" answer), so
/// that a retry runs again.
async fn settle(running: Option<dedupe::Run<'_, Vec<Envelope>>>, forget: bool, kept: Option<Vec<Envelope>>) {
    match running {
        Some(running) if forget => drop(running),
        Some(running) => running.finish(kept.map(Arc::new)).await,
        None => {}
    }
}

/// Reply frames kept for duplicates: their bodies, headers and routing properties.
impl Kept for Vec<Envelope> {
    fn kept_size(&self) -> usize {
        self.iter().map(envelope_size).sum()
    }
}

/// Approximate memory one kept frame holds.
fn envelope_size(env: &Envelope) -> usize {
    std::mem::size_of::<Envelope>()
        + env.body.len()
        + env.headers.iter().map(|(k, v)| k.len() + v.len() + std::mem::size_of::<(wire::Str, wire::Str)>()).sum::<usize>()
        + env.reply_to.as_ref().map_or(0, String::len)
        + env.correlation_id.as_ref().map_or(0, String::len)
}

fn reply_frame(seq: u64, request: &ReplyTo) -> Envelope {
    let mut frame = Envelope { correlation_id: request.correlation_id.clone(), ..Envelope::default() };
    frame.headers.reserve(4);
    frame.push(wire::SEQ, wire::number(seq));
    if let Some(ct) = &request.content_type {
        frame.push(wire::CONTENT_TYPE, ct.clone());
    }
    frame
}

fn final_frame(seq: u64, status: &Status, request: &ReplyTo) -> Envelope {
    let mut frame = reply_frame(seq, request);
    wire::push_status(&mut frame, status);
    wire::push_metadata(&mut frame, status.metadata());
    frame
}

fn unary_frame(result: UnaryReply, request: &ReplyTo) -> Envelope {
    match result {
        Ok((metadata, body, headers)) => {
            // Success needs no protocol headers: a unary reply without `sb-status` is OK.
            let mut frame = Envelope { correlation_id: request.correlation_id.clone(), body, ..Envelope::default() };
            // An OpenAPI reply names its own media type.
            if let Some(ct) = request.content_type.as_ref().filter(|_| !headers.iter().any(|(k, _)| k == wire::CONTENT_TYPE)) {
                frame.push(wire::CONTENT_TYPE, ct.clone());
            }
            frame.headers.extend(headers);
            wire::push_metadata(&mut frame, &metadata);
            frame
        }
        Err(status) => final_frame(0, &status, request),
    }
}

/// Whether retrying cannot help: the message itself is the problem (it cannot be decoded, fails
/// its operation's schemas, or lacks the credentials its operation needs).
fn poison(status: &Status) -> bool {
    matches!(status.code(), Code::InvalidArgument | Code::Unimplemented | Code::Unauthenticated | Code::PermissionDenied)
}

async fn handle_event<D: Dispatch<Queue<C>>, C: Send + Sync + 'static>(shared: Arc<Shared<D::Handler>>, delivery: Delivery) {
    let Delivery { env, attempt, acker, .. } = delivery;
    // Released unless the handler succeeds (see `handle_request`).
    let mut running = None;
    if let Some(id) = env.header(wire::MESSAGE_ID).filter(|_| shared.dedupe.enabled()) {
        match shared.dedupe.claim(id).await {
            Ok(KeyClaim::Fresh(r)) => running = Some(r),
            Ok(KeyClaim::Done(_)) => {
                let _ = acker.ack().await;
                return;
            }
            // The store cannot be reached: tried again later, as the same attempt.
            Err(_) => {
                let (first, max) = shared.options.backoff;
                let delay = first.saturating_mul(1 << (attempt - 1).min(16)).min(max);
                let _ = acker.retry(delay, attempt).await;
                return;
            }
        }
    }
    // Events have no caller waiting: no deadline. A panic is a failed attempt like an error.
    let outcome = match prepare::<D, _>(&shared, env, true, None) {
        Ok(call) => D::dispatch(&shared.handler, call.method, call).await,
        Err(status) => Outcome::Unary(Err(status)),
    };
    let result = match outcome {
        Outcome::Unary(r) => r.map(|_| ()),
        Outcome::Stream(..) => Err(Status::unimplemented("a streaming method cannot be an event")),
    };
    match result {
        Ok(()) => {
            if let Some(running) = running {
                running.finish(None).await;
            }
            let _ = acker.ack().await;
        }
        Err(status) => {
            drop(running);
            if poison(&status) || attempt >= shared.options.max_attempts {
                let mut extra = Envelope::default();
                wire::push_status(&mut extra, &status);
                extra.push(wire::ATTEMPT, wire::number(attempt.into()));
                let extra = extra.headers.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                let _ = acker.dead_letter(extra).await;
            } else {
                let (first, max) = shared.options.backoff;
                let delay = first.saturating_mul(1 << (attempt - 1).min(16)).min(max);
                let _ = acker.retry(delay, attempt + 1).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancels_stop_running_requests_and_skip_queued_ones() {
        let running = Running::default();
        // Running: the cancel wakes it, even before it waits.
        let stoppable = running.enter("c-1").expect("not cancelled yet");
        running.cancel("c-1");
        tokio::time::timeout(Duration::from_secs(1), stoppable.stop.notified()).await.expect("stopped");
        drop(stoppable);
        assert!(running.state.lock().unwrap().running.is_empty(), "a finished request stayed");
        // Not running yet: remembered, once.
        running.cancel("c-2");
        assert!(running.enter("c-2").is_none(), "a request cancelled in the queue was run");
        assert!(!running.cancelled_early("c-2"), "a cancel was used twice");
        assert!(!running.any_early.load(Ordering::Acquire));
        // Bounded.
        for i in 0..EARLY_MAX + 10 {
            running.cancel(&format!("x-{i}"));
        }
        assert!(running.state.lock().unwrap().early.len() <= EARLY_MAX);
        assert!(!running.cancelled_early("x-0") && running.cancelled_early(&format!("x-{}", EARLY_MAX + 9)));
    }
}
