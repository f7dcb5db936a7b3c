//! Observability of every call on every transport: W3C trace context, `tracing` spans and
//! metrics through the `metrics` facade, recorded in the two call paths (the client's
//! [`client`](crate::client) runner and the server's call path), so gRPC, REST and queues are
//! observed alike.
//!
//! ```text
//! client call ── span rpc.client.call (rpc.service, rpc.method, transport, trace ids, status)
//!   └ each attempt that reaches the transport (retries and hedged copies too)
//!       ── span rpc.client.attempt: its own span id; sends traceparent = (trace id, that span id)
//!          and tracestate, as gRPC metadata, HTTP headers or queue message headers
//! server ── span rpc.server.call: same trace id, parent = the attempt's span id; the handler
//!          reads it with RequestExt::trace_context(); calls it makes continue the trace
//! ```
//!
//! **Traces.** A call continues the trace of the handler it is made in (the server span is its
//! parent), or of a `traceparent` the caller put on the request itself (its own tracer's span);
//! otherwise it starts a new trace when a `tracing` subscriber records its span. Without any of
//! these nothing is propagated (and nothing is allocated for it). A server reads `traceparent`
//! on every call; a malformed one starts a new trace. Span fields carry the W3C ids as lowercase
//! hex (`trace_id`, `span_id`, `parent_span_id`), so a subscriber can join spans across
//! processes; OpenTelemetry field conventions are used where they exist (`otel.kind`,
//! `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`).
//!
//! **Metrics** ([`names`]) follow gRPC's OpenTelemetry metrics, A66 (per attempt, per call, per
//! server call) and A96 (retries and hedges per call), with the labels `grpc.method`
//! (`package.Service/Method`), `grpc.status` (`OK`, `UNAVAILABLE`, …) and `transport` (`grpc`,
//! `rest`, `queue`). A66's `grpc.target` is not recorded (a client here has no target URI on
//! every transport). They are recorded once [`record_metrics`] has been called, as grpc-go and
//! grpc-java record theirs once their OpenTelemetry plugin is registered: install any `metrics`
//! recorder (the Prometheus exporter, say) and call it. Until then a call reads no clock and
//! records nothing, so observability costs nothing where it is not used; label sets and keys
//! are made once per method.
//!
//! **OpenTelemetry** (cargo feature `otel`). With `tracing-opentelemetry`'s layer in the
//! subscriber, the spans above are OpenTelemetry spans (`otel.kind` gives their kind) and their
//! W3C ids are the OpenTelemetry spans' ids: the `traceparent` an attempt sends names the attempt
//! span the exporter reports, a server span's parent is that remote span (with its `tracestate`),
//! and the [`TraceContext`] a handler sees, which its calls continue, is its server span's. The
//! exported tree, across processes: a call span, under it one attempt span per attempt (each
//! retry and hedged copy), under each attempt the server span it reached, under that the call
//! spans of the calls its handler made. A span the tracer does not record (sampled out, or a
//! no-op tracer) keeps switchboard's own ids and sends OpenTelemetry's sampled flag. The layer
//! must see target `switchboard` at level INFO. Without the feature nothing of OpenTelemetry is
//! compiled in.
//!
//! ```
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // The SDK's tracer, with the exporter of your choice (OTLP, stdout, ...) on the builder.
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
//! let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("my-service"));
//! tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```
//! use switchboard::observe::{names, TraceContext};
//! assert_eq!(names::CLIENT_ATTEMPT_STARTED, "grpc.client.attempt.started");
//! let t = TraceContext::new_root();
//! assert_eq!(t.traceparent().len(), 55);
//! ```

pub(crate) mod client;

static METRICS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records switchboard's metrics ([`names`]) through the `metrics` facade from now on, in this
/// process: call it once, where the recorder is installed. Calls that started before are not
/// recorded.
///
/// ```
/// // metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
/// switchboard::observe::record_metrics();
/// ```
pub fn record_metrics() {
    METRICS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`record_metrics`] was called.
#[inline]
pub(crate) fn metrics_on() -> bool {
    METRICS.load(std::sync::atomic::Ordering::Relaxed)
}

mod labels;
pub mod names;
#[cfg(feature = "otel")]
mod otel;
pub(crate) mod server;
mod trace;

pub use trace::{TraceContext, TraceparentError, MAX_TRACESTATE, TRACEPARENT, TRACESTATE};
