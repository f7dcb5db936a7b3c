//! The server's side: a span, a [`TraceContext`] and metrics per call, kept with the call's
//! shared state (its [`Cancellation`]) so that the call path (`call::run`, `guard_stream`) finds
//! them on every transport.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

#[cfg(any(feature = "rest", feature = "queue"))]
use tonic::metadata::MetadataMap;
use tonic::Code;
use tracing::Span;

use super::client::METADATA;
use super::labels::{self, MethodLabels};
use super::trace::{self, TraceContext, TRACEPARENT_HEADER, TRACESTATE_HEADER};
use crate::client::TransportKind;

/// One call a server handles, observed from its arrival until the end of its answer.
pub(crate) struct ServerCall {
    /// When the call arrived and its metric keys: only while metrics are recorded
    /// ([`record_metrics`](super::record_metrics)).
    start: Option<Instant>,
    labels: Option<&'static MethodLabels>,
    span: Span,
    /// Boxed: most calls have none, and the call's state is moved into place on every call.
    trace: Option<Box<TraceContext>>,
    /// When the answer ended, in nanoseconds after `start`, plus one (0: not yet).
    ended: AtomicU64,
    code: AtomicU8,
}

impl std::fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCall").field("trace", &self.trace).finish_non_exhaustive()
    }
}

impl ServerCall {
    /// A call of `method` (`package.Service/Method`) on `transport` that arrived with these
    /// `traceparent` / `tracestate` values (a malformed `traceparent` starts a new trace, as the
    /// spec says).
    ///
    /// `None` when nothing observes the call: no metrics are recorded, no subscriber records its
    /// span and it came without a `traceparent`.
    ///
    /// (Without a transport no server observes calls: this and what starts from it stay unused.)
    #[cfg_attr(not(any(feature = "grpc", feature = "rest", feature = "queue")), allow(dead_code))]
    pub(crate) fn new(method: &str, transport: TransportKind, traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let labels = super::metrics_on().then(|| labels::of(method, transport));
        if let Some(labels) = labels {
            metrics::with_recorder(|r| r.register_counter(&labels.server_call_started, &METADATA).increment(1));
        }
        // The span's fields are read only when a subscriber records the span.
        let span = tracing::info_span!(
            target: "switchboard",
            parent: None,
            "rpc.server.call",
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = method.split_once('/').map_or("", |(s, _)| s),
            rpc.method = method.split_once('/').map_or(method, |(_, m)| m),
            transport = labels::transport_name(transport),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        if labels.is_none() && traceparent.is_none() && span.is_disabled() {
            return None;
        }
        let remote = traceparent.and_then(|tp| TraceContext::parse(tp, tracestate).ok());
        let trace = match &remote {
            Some(remote) => Some(remote.child()),
            None if !span.is_disabled() => Some(TraceContext::new_root()),
            None => None,
        };
        // The OpenTelemetry server span: its parent is the caller's attempt span, and its ids
        // are the ones the handler sees and its calls continue.
        #[cfg(feature = "otel")]
        let trace = match trace {
            Some(t) if !span.is_disabled() => {
                if let Some(remote) = &remote {
                    super::otel::set_remote_parent(&span, remote);
                }
                Some(super::otel::adopt(&span, t))
            }
            other => other,
        };
        if let (Some(t), false) = (&trace, span.is_disabled()) {
            span.record("trace_id", tracing::field::display(t.hex_trace_id()));
            span.record("span_id", tracing::field::display(t.hex_span_id()));
            if let Some(p) = t.hex_parent_span_id() {
                span.record("parent_span_id", tracing::field::display(p));
            }
        }
        Some(ServerCall { start: labels.map(|_| Instant::now()), labels, span, trace: trace.map(Box::new), ended: AtomicU64::new(0), code: AtomicU8::new(0) })
    }

    /// The server span's trace context.
    #[cfg_attr(not(any(feature = "grpc", feature = "rest", feature = "queue")), allow(dead_code))]
    pub(crate) fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_deref()
    }

    /// Runs `f` (one poll of the handler or of its response stream) inside the server span, with
    /// the call's trace as the one outgoing calls continue.
    pub(crate) fn polling<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.span.enter();
        trace::with_current(self.trace.as_deref(), f)
    }

    /// The handler's answer ended (or, for a response stream, its last message) with `code`.
    pub(crate) fn ended(&self, code: Code) {
        let nanos = self.start.map_or(0, |s| u64::try_from(s.elapsed().as_nanos()).unwrap_or(u64::MAX - 1));
        self.code.store(code as i32 as u8, Ordering::Relaxed);
        self.ended.store(nanos + 1, Ordering::Release);
    }

    /// A response stream follows the handler's answer: the call ends with the stream.
    pub(crate) fn streams(&self) {
        self.ended.store(0, Ordering::Release);
    }
}

impl Drop for ServerCall {
    /// Records the call once everything that shared its state has let go of it: a call whose
    /// answer never ended (dropped by a caller who went away) ends now, CANCELLED.
    fn drop(&mut self) {
        let (nanos, code) = match self.ended.load(Ordering::Acquire) {
            0 => (self.start.map_or(0, |s| s.elapsed().as_nanos() as u64), Code::Cancelled),
            n => (n - 1, Code::from_i32(i32::from(self.code.load(Ordering::Relaxed)))),
        };
        if let Some(labels) = self.labels {
            let seconds = nanos as f64 / 1e9;
            metrics::with_recorder(|r| r.register_histogram(labels.server_call_duration(code), &METADATA).record(seconds));
        }
        if !self.span.is_disabled() {
            self.span.record("rpc.grpc.status_code", code as i32);
        }
    }
}

impl ServerCall {
    /// A call whose request metadata is `metadata` (its `traceparent` and `tracestate`): REST's
    /// and the queue transport's (`CallContext::served`).
    #[cfg(any(feature = "rest", feature = "queue"))]
    #[inline]
    pub(crate) fn of_metadata(metadata: &MetadataMap, method: &str, transport: TransportKind) -> Option<Self> {
        Self::of_headers(metadata.as_ref(), method, transport)
    }

    /// A call whose request headers are `headers` (its `traceparent` and `tracestate`).
    #[cfg_attr(not(any(feature = "grpc", feature = "rest", feature = "queue")), allow(dead_code))]
    #[inline]
    pub(crate) fn of_headers(headers: &http::HeaderMap, method: &str, transport: TransportKind) -> Option<Self> {
        let [tp, ts] = crate::context::find_headers(headers, [&TRACEPARENT_HEADER, &TRACESTATE_HEADER]).map(|v| v.and_then(|v| v.to_str().ok()));
        // `tracestate` means nothing without a `traceparent`.
        let ts = ts.filter(|_| tp.is_some());
        ServerCall::new(method, transport, tp, ts)
    }
}
