//! A replica of a fleet, as `fleet.rs` and `etcd.rs` run them: a server on a thread and a
//! current-thread runtime of its own, so that it can go as a process goes — killed (its runtime
//! dropped: its listener and every connection close, as when a process dies), stopped gracefully,
//! or frozen (its runtime's only thread blocked, as a process stopped with SIGSTOP).
// Each test uses part of this module (etcd.rs neither stops nor freezes its replicas).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use switchboard::grpc::transport::server::{Router, TcpIncoming};
use switchboard::rest::RestRouter;
use tokio::net::TcpListener;

/// What a replica started by [`Replica::start_kind`] serves on its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// tonic's server (TCP_NODELAY on each connection).
    Grpc,
    /// The service's REST server.
    Rest,
}

/// One replica: a server on a thread and runtime of its own, killed when dropped.
pub struct Replica {
    /// Where it listens (`ip:port`).
    pub address: String,
    /// A [`switchboard::Server`]'s health statuses, when the caller kept them.
    pub health: Option<switchboard::health::HealthReporter>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    /// Resolves `serve`'s `stopped` (see [`Replica::start`]).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Freezes its runtime's only thread until the receiver sent here gets a message or its
    /// sender is dropped: the process is stopped (SIGSTOP) as far as its peers can tell — the
    /// kernel keeps its sockets open and accepts connections, nothing answers.
    freeze: tokio::sync::mpsc::UnboundedSender<std::sync::mpsc::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    /// Starts a replica on a thread named `name`: binds `address` (`ip:port`, port 0 for any free
    /// one), then runs `serve(listener, stopped)` until it ends or the replica is killed;
    /// `stopped` resolves when [`Replica::stop`] is called (a server that should drain waits for
    /// it).
    pub fn start<F, S>(name: String, address: String, serve: S) -> Replica
    where
        S: FnOnce(TcpListener, tokio::sync::oneshot::Receiver<()>) -> F + Send + 'static,
        F: Future,
    {
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (freeze, mut frozen) = tokio::sync::mpsc::unbounded_channel::<std::sync::mpsc::Receiver<()>>();
        let (ready, listening) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                runtime.block_on(async move {
                    tokio::spawn(async move {
                        while let Some(thaw) = frozen.recv().await {
                            // Blocks the runtime's only thread: every task of the replica stops.
                            let _ = thaw.recv();
                        }
                    });
                    // The port of a replica just killed may still be held for a moment.
                    let listener = switchboard_test_support::ready::retry_until("bind", Duration::from_secs(5), || {
                        TcpListener::bind(address.clone())
                    })
                    .await;
                    let _ = ready.send(listener.local_addr().unwrap().to_string());
                    tokio::select! {
                        _ = serve(listener, stopped) => {}
                        _ = killed => {}
                    }
                });
                // Dropping the runtime here cancels every connection task: sockets close.
                drop(runtime);
            })
            .expect("a replica thread");
        let address = listening.recv().expect("the replica listens");
        Replica { address, health: None, kill: Some(kill), stop: Some(stop), freeze, thread: Some(thread) }
    }

    /// Starts a replica serving `kind`: `grpc()`'s router on tonic's server, or `rest()`.
    pub fn start_kind(
        kind: Kind,
        name: String,
        address: String,
        grpc: impl FnOnce() -> Router + Send + 'static,
        rest: impl FnOnce() -> RestRouter + Send + 'static,
    ) -> Replica {
        Replica::start(name, address, move |listener, _| async move {
            match kind {
                Kind::Grpc => {
                    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                    let _ = grpc().serve_with_incoming(incoming).await;
                }
                Kind::Rest => {
                    let _ = rest().serve(listener).await;
                }
            }
        })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.address.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// Freezes it (see [`Replica::freeze`]'s field) until the returned sender sends or drops.
    pub fn freeze(&self) -> std::sync::mpsc::Sender<()> {
        let (thaw, frozen) = std::sync::mpsc::channel();
        self.freeze.send(frozen).expect("the replica runs");
        thaw
    }

    /// Stops it gracefully (resolves `serve`'s `stopped`) and waits until `serve` has ended.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join();
    }

    /// Stops it as a dying process would: listener and connections closed.
    pub fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
