//! Per-call state that every transport provides to handlers: deadlines and cancellation.
#![cfg_attr(not(feature = "grpc"), allow(dead_code))]

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The instant by which the caller wants an answer.
///
/// Set from the `grpc-timeout` header on gRPC. Read it with [`RequestExt::deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

thread_local! {
    /// The deadline of the call whose handler (or response stream) this thread is polling right
    /// now: what calls the handler makes inherit ([`inherited_deadline`]).
    static HANDLING: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// The deadline of the call being handled on this thread, if any: the default deadline of
/// every call a handler makes (the shorter of it and the call's own), on any transport.
pub(crate) fn inherited_deadline() -> Option<Instant> {
    HANDLING.with(std::cell::Cell::get)
}

/// Makes `deadline` the inherited one while `f` runs (a handler's poll), then restores the one
/// before, also when `f` panics.
#[inline]
pub(crate) fn handling<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HANDLING.with(|h| h.set(self.0));
        }
    }
    let _restore = Restore(HANDLING.with(|h| h.replace(deadline)));
    f()
}

/// Fires when the caller abandons the call: the client cancelled or reset the stream, the
/// connection dropped, or the deadline passed.
///
/// The handler's own future is dropped at that point too; `Cancellation` is for work the handler
/// handed to other tasks (a spawned producer behind a response stream, say). Read it with
/// [`RequestExt::cancellation`].
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: AtomicBool,
    notify: Notify,
    /// The call's span, trace context and metrics, when a server observes it (set once, by the
    /// transport, before the handler runs; recorded when the last clone is dropped).
    /// Boxed: most calls are not observed (no metrics recorded, no subscriber, no trace), and
    /// this state is allocated for every call.
    served: Option<Box<crate::observe::server::ServerCall>>,
}

impl Cancellation {
    /// A token that nothing has cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token for a call a server observes ([`crate::observe`]): `call` is kept with it, and
    /// recorded when the last clone is dropped.
    pub(crate) fn serving(call: Option<crate::observe::server::ServerCall>) -> Self {
        Cancellation(Arc::new(CancelState { cancelled: AtomicBool::new(false), notify: Notify::new(), served: call.map(Box::new) }))
    }
    /// Whether the call has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }
    /// Completes when the call is cancelled.
    pub async fn cancelled(&self) {
        let notified = self.0.notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Register before checking the flag, so a cancel in between still wakes us.
        notified.as_mut().enable();
        if !self.is_cancelled() {
            notified.await;
        }
    }
    /// Cancels the call (transports do this; handlers rarely need to).
    pub fn cancel(&self) {
        if !self.0.cancelled.swap(true, Ordering::AcqRel) {
            self.0.notify.notify_waiters();
        }
    }
    /// The observed server call this cancellation belongs to, if any.
    pub(crate) fn served(&self) -> Option<&crate::observe::server::ServerCall> {
        self.0.served.as_deref()
    }
    /// A guard that cancels when dropped unless [`CancelOnDrop::disarm`] is called first.
    pub(crate) fn guard(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// Cancels a [`Cancellation`] when dropped while still armed.
#[derive(Debug)]
pub(crate) struct CancelOnDrop(Option<Cancellation>);

impl CancelOnDrop {
    /// A guard that does nothing.
    pub(crate) fn disarmed() -> Self {
        CancelOnDrop(None)
    }

    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

/// Trailing metadata for a successful response: put it in the response's extensions and the
/// transport sends it after the last message (gRPC trailers).
///
/// ```
/// # use switchboard::{metadata::MetadataMap, Response, Trailers};
/// let mut trailers = MetadataMap::new();
/// trailers.insert("x-checksum", "abc".parse().unwrap());
/// let mut resp = Response::new(());
/// resp.extensions_mut().insert(Trailers(trailers));
/// ```
///
/// Errors carry their own trailers: `Status::with_metadata`.
#[derive(Debug, Clone, Default)]
pub struct Trailers(pub tonic::metadata::MetadataMap);

/// Call state on a [`Request`](crate::Request): deadline, cancellation, attempt, trace context.
pub trait RequestExt {
    /// The caller's deadline, if it sent one.
    fn deadline(&self) -> Option<Deadline>;
    /// The call's cancellation signal (a never-firing one if no transport set it).
    fn cancellation(&self) -> Cancellation;
    /// Which attempt of the caller's this is, from 1: a retry or hedged copy carries
    /// `grpc-previous-rpc-attempts` (the policy layer sends it on every transport).
    fn attempt(&self) -> u32;
    /// The trace context of the server span handling this call: the caller's trace id and, as
    /// parent, the caller's attempt span (from `traceparent`); a new trace when the caller sent
    /// none and a `tracing` subscriber records the span; `None` otherwise (and on a request no
    /// server handed over). Calls the handler makes continue this trace.
    ///
    /// ```
    /// use switchboard::{observe::TraceContext, Request, RequestExt};
    /// let mut request = Request::new(());
    /// assert!(request.trace_context().is_none());
    /// let t = TraceContext::new_root();
    /// request.extensions_mut().insert(t.clone());
    /// assert_eq!(request.trace_context(), Some(&t));
    /// ```
    fn trace_context(&self) -> Option<&crate::observe::TraceContext>;
}

impl<T> RequestExt for tonic::Request<T> {
    fn deadline(&self) -> Option<Deadline> {
        self.extensions().get::<Deadline>().copied()
    }
    fn cancellation(&self) -> Cancellation {
        self.extensions().get::<Cancellation>().cloned().unwrap_or_default()
    }
    fn attempt(&self) -> u32 {
        let previous = self.metadata().get("grpc-previous-rpc-attempts").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u32>().ok());
        previous.unwrap_or(0).saturating_add(1)
    }
    fn trace_context(&self) -> Option<&crate::observe::TraceContext> {
        self.extensions().get::<crate::observe::TraceContext>()
    }
}

/// Parses a `grpc-timeout` header value (`1..=8` ASCII digits and a unit `H M S m u n`).
pub(crate) fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit[0] {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout(b"1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grpc_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse_grpc_timeout(b"123456789S"), None, "more than 8 digits");
        assert_eq!(parse_grpc_timeout(b"S"), None);
        assert_eq!(parse_grpc_timeout(b"10x"), None);
        assert_eq!(parse_grpc_timeout(b""), None);
    }

    #[tokio::test]
    async fn cancelled_wakes_waiters_registered_before_and_after() {
        let c = Cancellation::new();
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.cancelled().await }
        });
        tokio::task::yield_now().await;
        c.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        // Already cancelled: returns at once.
        tokio::time::timeout(Duration::from_secs(5), c.cancelled()).await.unwrap();
    }

    #[test]
    fn guard_cancels_unless_disarmed() {
        let c = Cancellation::new();
        drop(c.guard());
        assert!(c.is_cancelled());
        let c = Cancellation::new();
        let mut g = c.guard();
        g.disarm();
        drop(g);
        assert!(!c.is_cancelled());
    }
}

/// The first values of the headers `names` in `headers`. A request has a handful of headers, so
/// one pass comparing names (a standard header never equals these custom names, a custom one is
/// compared by its bytes) costs less than hashing each name for a lookup; a long header list is
/// looked up instead.
#[cfg_attr(not(any(feature = "grpc", feature = "rest", feature = "queue")), allow(dead_code))]
#[inline]
pub(crate) fn find_headers<'h, const N: usize>(headers: &'h http::HeaderMap, names: [&http::HeaderName; N]) -> [Option<&'h http::HeaderValue>; N] {
    let mut found = [None; N];
    if headers.is_empty() {
        return found;
    }
    if headers.keys_len() > 12 {
        for (slot, name) in found.iter_mut().zip(names) {
            *slot = headers.get(name);
        }
        return found;
    }
    for (name, value) in headers {
        if let Some(i) = names.iter().position(|n| *n == name) {
            found[i].get_or_insert(value);
        }
    }
    found
}

#[cfg(test)]
mod find_headers_tests {
    use super::find_headers;
    use http::{HeaderMap, HeaderName, HeaderValue};

    #[test]
    fn finds_the_first_value_of_each_name_in_short_and_long_header_lists() {
        static A: HeaderName = HeaderName::from_static("traceparent");
        static B: HeaderName = HeaderName::from_static("idempotency-key");
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.append(&B, HeaderValue::from_static("k1"));
        headers.append(&B, HeaderValue::from_static("k2"));
        headers.insert("x-other", HeaderValue::from_static("o"));
        assert_eq!(find_headers(&headers, [&A, &B]), [None, Some(&HeaderValue::from_static("k1"))]);
        for i in 0..20 {
            headers.insert(HeaderName::from_bytes(format!("x-pad-{i}").as_bytes()).unwrap(), HeaderValue::from_static("p"));
        }
        headers.insert(&A, HeaderValue::from_static("00-a-b-01"));
        assert_eq!(find_headers(&headers, [&A, &B]), [Some(&HeaderValue::from_static("00-a-b-01")), Some(&HeaderValue::from_static("k1"))]);
        assert_eq!(find_headers(&HeaderMap::new(), [&A]), [None]);
    }
}
