//! The client's side: a span and metrics per call, a span, metrics and a `traceparent` per
//! attempt (what `client::run` and the queue client's direct path call).

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::time::Instant;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tracing::{Instrument, Span};

use super::labels::{self, MethodLabels};
use super::trace::{self, TraceContext, TRACEPARENT, TRACEPARENT_HEADER, TRACESTATE, TRACESTATE_HEADER};
use crate::client::TransportKind;
use crate::ServiceDescriptor;

/// What sent a call's later attempts: the policy layer marks its calls ([`resending`]) so that
/// they count as retries or as hedges (A96). A call some other layer sends again counts as
/// retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resending {
    Retries = 1,
    Hedges = 2,
}

/// Marks a call's later attempts as retries (`hedging: false`) or hedged copies (`true`): the
/// policy layer calls this before it sends anything.
pub(crate) fn resending(extensions: &mut http::Extensions, hedging: bool) {
    extensions.insert(if hedging { Resending::Hedges } else { Resending::Retries });
}

/// One client call being observed.
pub(crate) struct ClientCall {
    /// When the call started and its metric keys: only while metrics are recorded
    /// ([`record_metrics`](super::record_metrics)).
    start: Option<Instant>,
    labels: Option<&'static MethodLabels>,
    span: Span,
    /// The call span's place in the trace, when the trace is propagated: inside a handler that
    /// has one, when the request carries a `traceparent` of the caller's own, or when a
    /// subscriber records the call span.
    trace: Option<Box<TraceContext>>,
    attempts: AtomicU32,
    /// Attempts that were transparent retries (`client::TransparentRetry`).
    transparent: AtomicU32,
    resending: AtomicU8,
}

impl ClientCall {
    /// Starts observing a call of method `index` of `service` with request `metadata`.
    pub(crate) fn start(service: &'static ServiceDescriptor, index: usize, transport: TransportKind, metadata: &MetadataMap) -> Self {
        let method = &service.methods[index];
        let full = method.grpc_path.strip_prefix('/').unwrap_or(method.grpc_path);
        let labels = super::metrics_on().then(|| labels::of(full, transport));
        // A `traceparent` the caller set itself (its own tracer's span) is the parent; else the
        // handler's span this call is made in.
        let headers: &http::HeaderMap = metadata.as_ref();
        let given = if headers.is_empty() {
            None
        } else {
            let header = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
            header(&TRACEPARENT_HEADER).and_then(|tp| TraceContext::parse(tp, header(&TRACESTATE_HEADER)).ok())
        };
        #[cfg(feature = "otel")]
        let given_parent = given.is_some();
        let parent = given.or_else(trace::current);
        let span = tracing::info_span!(
            target: "switchboard",
            "rpc.client.call",
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service.full_name,
            rpc.method = method.name,
            transport = labels::transport_name(transport),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let trace = match &parent {
            Some(p) => Some(p.child()),
            None if !span.is_disabled() => Some(TraceContext::new_root()),
            None => None,
        };
        // The OpenTelemetry call span: a child of the current span (the handler's server span),
        // or of the caller's own `traceparent`; its ids are the call's.
        #[cfg(feature = "otel")]
        let trace = match trace {
            Some(t) if !span.is_disabled() => {
                if let Some(remote) = parent.as_ref().filter(|_| given_parent) {
                    super::otel::set_remote_parent(&span, remote);
                }
                Some(super::otel::adopt(&span, t))
            }
            other => other,
        };
        if let Some(t) = &trace {
            if !span.is_disabled() {
                span.record("trace_id", tracing::field::display(t.hex_trace_id()));
                span.record("span_id", tracing::field::display(t.hex_span_id()));
                if let Some(p) = t.hex_parent_span_id() {
                    span.record("parent_span_id", tracing::field::display(p));
                }
            }
        }
        ClientCall { start: labels.map(|_| Instant::now()), labels, span, trace: trace.map(Box::new), attempts: AtomicU32::new(0), transparent: AtomicU32::new(0), resending: AtomicU8::new(0) }
    }

    /// Runs `fut` (the call's attempts) inside the call span.
    pub(crate) fn within<F: Future>(&self, fut: F) -> futures_util::future::Either<F, tracing::instrument::Instrumented<F>> {
        // Without a subscriber that records the span, the future runs as it is.
        match self.span.is_disabled() {
            true => futures_util::future::Either::Left(fut),
            false => futures_util::future::Either::Right(fut.instrument(self.span.clone())),
        }
    }

    /// Starts an attempt that is about to go out with `metadata`: counts it, opens its span and,
    /// when the trace is propagated, writes its `traceparent` (and `tracestate`) into `metadata`.
    pub(crate) fn attempt(&self, metadata: &mut MetadataMap, extensions: &http::Extensions) -> Attempt {
        let number = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        if number > 1 {
            if extensions.get::<crate::client::TransparentRetry>().is_some() {
                self.transparent.fetch_add(1, Ordering::Relaxed);
            } else if let Some(r) = extensions.get::<Resending>() {
                self.resending.store(*r as u8, Ordering::Relaxed);
            }
        }
        if let Some(labels) = self.labels {
            metrics::with_recorder(|r| r.register_counter(&labels.client_attempt_started, &METADATA).increment(1));
        }
        let span = tracing::info_span!(
            target: "switchboard",
            parent: &self.span,
            "rpc.client.attempt",
            otel.kind = "client",
            attempt = number,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        if let Some(call) = &self.trace {
            let own = call.child();
            // Each attempt's OpenTelemetry span (a child of the call span) is what it names in
            // `traceparent`.
            #[cfg(feature = "otel")]
            let own = if span.is_disabled() { own } else { super::otel::adopt(&span, own) };
            if !span.is_disabled() {
                span.record("trace_id", tracing::field::display(own.hex_trace_id()));
                span.record("span_id", tracing::field::display(own.hex_span_id()));
                span.record("parent_span_id", tracing::field::display(call.hex_span_id()));
            }
            if let Ok(v) = MetadataValue::try_from(own.traceparent()) {
                metadata.insert(TRACEPARENT, v);
            }
            match MetadataValue::try_from(own.tracestate()) {
                Ok(v) if !own.tracestate().is_empty() => {
                    metadata.insert(TRACESTATE, v);
                }
                _ => {
                    metadata.remove(TRACESTATE);
                }
            }
        }
        // The first attempt starts with the call.
        let start = if number == 1 { self.start } else { self.labels.map(|_| Instant::now()) };
        Attempt { start, labels: self.labels, span }
    }

    /// Whether anything would observe a call with request `metadata`: metrics are recorded, a
    /// subscriber records switchboard's spans, a handler's trace is current, or the request
    /// carries a `traceparent`. When nothing does, a call without layers skips [`Self::start`].
    pub(crate) fn observes(metadata: &MetadataMap) -> bool {
        super::metrics_on()
            || tracing::enabled!(target: "switchboard", tracing::Level::INFO)
            || trace::has_current()
            || (!metadata.is_empty() && metadata.as_ref().contains_key(&TRACEPARENT_HEADER))
    }

    /// Runs a call sent once, without layers: `fut` is its one attempt (from [`Self::attempt`]),
    /// observed as the call and the attempt with one clock reading at its end, inside their spans
    /// only when a subscriber records them.
    pub(crate) fn single<F, T>(self, attempt: Option<Attempt>, fut: F) -> Single<F>
    where
        F: Future<Output = Result<T, Status>>,
    {
        Single { inner: fut, observed: Some((self, attempt)) }
    }

    /// Ends the call with `outcome`: its duration, status and the retries or hedges it made.
    pub(crate) fn finish<T>(self, outcome: &Result<T, Status>) {
        let elapsed = self.start.map(|s| s.elapsed().as_secs_f64());
        self.finish_after(outcome, elapsed);
    }

    fn finish_after<T>(self, outcome: &Result<T, Status>, elapsed: Option<f64>) {
        let code = code_of(outcome);
        let attempts = self.attempts.load(Ordering::Relaxed);
        let transparent = self.transparent.load(Ordering::Relaxed);
        let resent = attempts.saturating_sub(1).saturating_sub(transparent);
        if let (Some(labels), Some(elapsed)) = (self.labels, elapsed) {
            metrics::with_recorder(|r| {
                r.register_histogram(labels.client_call_duration(code), &METADATA).record(elapsed);
                if resent > 0 {
                    let key = if self.resending.load(Ordering::Relaxed) == Resending::Hedges as u8 {
                        &labels.client_call_hedges
                    } else {
                        &labels.client_call_retries
                    };
                    r.register_histogram(key, &METADATA).record(f64::from(resent));
                }
                if transparent > 0 {
                    r.register_histogram(&labels.client_call_transparent_retries, &METADATA).record(f64::from(transparent));
                }
            });
        }
        if !self.span.is_disabled() {
            self.span.record("rpc.grpc.status_code", code as i32);
            self.span.record("attempts", attempts);
        }
    }
}

/// One attempt being observed.
pub(crate) struct Attempt {
    start: Option<Instant>,
    labels: Option<&'static MethodLabels>,
    span: Span,
}

impl Attempt {
    /// Runs the attempt's future inside its span, then records its duration and status.
    pub(crate) async fn run<T>(self, fut: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let outcome = match self.span.is_disabled() {
            true => fut.await,
            false => fut.instrument(self.span.clone()).await,
        };
        self.finish(&outcome);
        outcome
    }

    fn finish<T>(self, outcome: &Result<T, Status>) {
        let elapsed = self.start.map(|s| s.elapsed().as_secs_f64());
        self.finish_after(outcome, elapsed);
    }

    fn finish_after<T>(self, outcome: &Result<T, Status>, elapsed: Option<f64>) {
        let code = code_of(outcome);
        if let (Some(labels), Some(elapsed)) = (self.labels, elapsed) {
            metrics::with_recorder(|r| r.register_histogram(labels.client_attempt_duration(code), &METADATA).record(elapsed));
        }
        if !self.span.is_disabled() {
            self.span.record("rpc.grpc.status_code", code as i32);
        }
    }
}

pin_project_lite::pin_project! {
    /// See [`ClientCall::single`]: a hand-written future, so the attempt's future is not moved
    /// into (and copied through) another state machine.
    pub(crate) struct Single<F> {
        #[pin]
        inner: F,
        observed: Option<(ClientCall, Option<Attempt>)>,
    }
}

impl<F> Single<F> {
    /// A call nothing observes ([`ClientCall::observes`]): `fut` as it is.
    pub(crate) fn unobserved(fut: F) -> Self {
        Single { inner: fut, observed: None }
    }
}

impl<F, T> Future for Single<F>
where
    F: Future<Output = Result<T, Status>>,
{
    type Output = Result<T, Status>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let polled = match this.observed.as_ref().filter(|(call, _)| !call.span.is_disabled()) {
            Some((call, attempt)) => {
                let _call = call.span.enter();
                let _attempt = attempt.as_ref().map(|a| a.span.enter());
                this.inner.poll(cx)
            }
            None => this.inner.poll(cx),
        };
        let std::task::Poll::Ready(outcome) = polled else { return std::task::Poll::Pending };
        if let Some((call, attempt)) = this.observed.take() {
            // The one attempt started with the call: one clock reading serves both.
            let elapsed = call.start.map(|s| s.elapsed().as_secs_f64());
            if let Some(attempt) = attempt {
                attempt.finish_after(&outcome, elapsed);
            }
            call.finish_after(&outcome, elapsed);
        }
        std::task::Poll::Ready(outcome)
    }
}

fn code_of<T>(outcome: &Result<T, Status>) -> Code {
    outcome.as_ref().map_or_else(Status::code, |_| Code::Ok)
}

/// Where switchboard's metrics come from (the `metrics` facade's call-site metadata).
pub(crate) static METADATA: metrics::Metadata<'static> = metrics::Metadata::new("switchboard", metrics::Level::INFO, Some(module_path!()));
