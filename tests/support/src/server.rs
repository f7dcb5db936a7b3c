//! Servers for tests: each on a thread and tokio runtime of its own, so it outlives the test
//! (and the test runtime) that first needed it, and ids unique across processes and runs.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;

/// Runs `serve` on a thread named `name` with a two-worker runtime of its own, and returns what
/// `serve` reports through its sender: typically `Ok(address)` once it listens, or why it could
/// not start. A thread that ends before reporting is an `Err`.
///
/// ```
/// let address = switchboard_test_support::server::in_background("echo", |ready| async move {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let _ = ready.send(Ok(listener.local_addr().unwrap().to_string()));
/// });
/// assert!(address.unwrap().starts_with("127.0.0.1:"));
/// ```
pub fn in_background<T, F, Fut>(name: &str, serve: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Sender<Result<T, String>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (ready, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
            runtime.block_on(serve(ready));
        })
        .expect("spawn the server thread");
    rx.recv().unwrap_or_else(|_| Err(format!("the {name} thread ended before it was ready")))
}

/// An id for one call of `case`, unique in this process and across runs (brokers keep durable
/// queues and dedupe windows between runs): `<case>-<pid>-<nanos>-<n>`.
pub fn unique_id(case: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{case}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
