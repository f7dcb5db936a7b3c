//! The OpenTelemetry bridge (feature `otel`): with `tracing-opentelemetry`'s layer in the
//! subscriber, a span's W3C ids are those of its OpenTelemetry span, and a server span's
//! OpenTelemetry parent is the caller's span named by `traceparent`. Called only for spans a
//! subscriber records.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::trace::TraceContext;

/// Makes `remote` (the caller's span, read from `traceparent` and `tracestate`) the
/// OpenTelemetry parent of `span`, before its OpenTelemetry span starts. Without an
/// OpenTelemetry layer there is nothing to set.
pub(crate) fn set_remote_parent(span: &Span, remote: &TraceContext) {
    // A `tracestate` OpenTelemetry refuses is left off its span context; it is still sent on.
    let state = remote.tracestate().parse().unwrap_or_default();
    let parent = SpanContext::new(TraceId::from_bytes(remote.trace_id()), SpanId::from_bytes(remote.span_id()), TraceFlags::new(remote.flags()), true, state);
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// `ours`, the context switchboard made for `span`, with the trace id, span id and flags of
/// `span`'s OpenTelemetry span (started now), so that the ids sent in `traceparent` and seen by
/// handlers are the ones the exporter reports. Unchanged without an OpenTelemetry layer. A span
/// OpenTelemetry does not record (sampled out, or a no-op tracer, which hands back its parent's
/// context) keeps its own ids and takes only the sampled flag.
pub(crate) fn adopt(span: &Span, ours: TraceContext) -> TraceContext {
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    match (sc.is_valid(), otel.is_recording()) {
        (false, _) => ours,
        (true, true) => ours.with_ids(sc.trace_id().to_bytes(), sc.span_id().to_bytes(), sc.trace_flags().to_u8()),
        (true, false) => {
            let (trace_id, span_id) = (ours.trace_id(), ours.span_id());
            ours.with_ids(trace_id, span_id, sc.trace_flags().to_u8())
        }
    }
}
