//! W3C Trace Context: the `traceparent` and `tracestate` headers, and the trace a handler's
//! outgoing calls continue.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

/// The `traceparent` header (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header (W3C Trace Context), carried as it came.
pub const TRACESTATE: &str = "tracestate";

/// [`TRACEPARENT`] and [`TRACESTATE`] as header names made once (a lookup by name then skips
/// parsing it, on every request).
pub(crate) static TRACEPARENT_HEADER: http::HeaderName = http::HeaderName::from_static(TRACEPARENT);
pub(crate) static TRACESTATE_HEADER: http::HeaderName = http::HeaderName::from_static(TRACESTATE);

/// The longest `tracestate` carried: the spec asks for at least 512 characters. A longer one is
/// cut at the last list member that fits (members beyond it are dropped, as the spec allows).
pub const MAX_TRACESTATE: usize = 512;

/// One span's place in a distributed trace (W3C Trace Context): the trace id, this span's id,
/// the id of its parent span if it has one, the trace flags and the vendors' `tracestate`.
///
/// A server handler finds the context of its call's server span in the request
/// ([`RequestExt::trace_context`](crate::RequestExt::trace_context)): same trace id as the caller,
/// parent = the caller's attempt span. Calls the handler makes continue that trace.
///
/// ```
/// use switchboard::observe::TraceContext;
///
/// let remote = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("congo=t61rcWkgMzE")).unwrap();
/// let server = remote.child();
/// assert_eq!(server.trace_id(), remote.trace_id());
/// assert_eq!(server.parent_span_id(), Some(remote.span_id()));
/// assert!(server.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
/// assert_eq!(server.tracestate(), "congo=t61rcWkgMzE");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    flags: u8,
    tracestate: Option<Arc<str>>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &Hex(&self.trace_id))
            .field("span_id", &Hex(&self.span_id))
            .field("parent_span_id", &self.parent_span_id.as_ref().map(|p| Hex(p)))
            .field("flags", &self.flags)
            .field("tracestate", &self.tracestate())
            .finish()
    }
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Not `version-traceid-parentid-flags` with the lengths of version 00 (55 characters; a
    /// later version may append `-…` after them).
    #[error("traceparent must be 2-32-16-2 lowercase hex digits joined by '-'")]
    Format,
    /// A field holds something other than lowercase hex digits.
    #[error("traceparent {0} is not lowercase hex")]
    Hex(&'static str),
    /// Version `ff`, which the spec forbids.
    #[error("traceparent version ff is invalid")]
    Version,
    /// The trace id is all zeros.
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    /// The parent (span) id is all zeros.
    #[error("traceparent parent id is all zeros")]
    ZeroSpanId,
}

impl TraceContext {
    /// A new trace: random trace and span ids, sampled.
    ///
    /// ```
    /// let root = switchboard::observe::TraceContext::new_root();
    /// assert!(root.parent_span_id().is_none() && root.sampled());
    /// ```
    pub fn new_root() -> Self {
        TraceContext { trace_id: random_trace_id(), span_id: random_span_id(), parent_span_id: None, flags: 1, tracestate: None }
    }

    /// A child span of this one: same trace, flags and `tracestate`, a new span id, this span as
    /// its parent.
    ///
    /// ```
    /// let root = switchboard::observe::TraceContext::new_root();
    /// let child = root.child();
    /// assert_ne!(child.span_id(), root.span_id());
    /// assert_eq!(child.parent_span_id(), Some(root.span_id()));
    /// ```
    pub fn child(&self) -> Self {
        TraceContext { span_id: random_span_id(), parent_span_id: Some(self.span_id), tracestate: self.tracestate.clone(), ..*self }
    }

    /// Reads a `traceparent` header value (and the `tracestate` beside it, carried as it is, cut
    /// to [`MAX_TRACESTATE`]). The result is the remote span: its span id is the caller's, and it
    /// has no parent here; take [`child`](Self::child) for a span of your own.
    ///
    /// Version 00 must be exactly 55 characters. A later version (`01`–`fe`) is read by the
    /// spec's forward-compatibility rule: its first 55 characters as version 00, followed by
    /// nothing or by `-` and fields this reader skips.
    ///
    /// # Errors
    ///
    /// [`TraceparentError`] for a wrong length or separator, non-lowercase-hex fields, version
    /// `ff`, an all-zero trace id or span id.
    ///
    /// ```
    /// use switchboard::observe::{TraceContext, TraceparentError};
    /// assert!(TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).is_ok());
    /// let zero = TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None);
    /// assert_eq!(zero.unwrap_err(), TraceparentError::ZeroTraceId);
    /// ```
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, TraceparentError> {
        let s = traceparent.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
        if s.len() < 55 {
            return Err(TraceparentError::Format);
        }
        let version = hex_byte(&s[0..2]).ok_or(TraceparentError::Hex("version"))?;
        if version == 0xff {
            return Err(TraceparentError::Version);
        }
        if (version == 0 && s.len() != 55) || (s.len() > 55 && s[55] != b'-') {
            return Err(TraceparentError::Format);
        }
        if s[2] != b'-' || s[35] != b'-' || s[52] != b'-' {
            return Err(TraceparentError::Format);
        }
        let mut trace_id = [0u8; 16];
        decode(&s[3..35], &mut trace_id).ok_or(TraceparentError::Hex("trace id"))?;
        let mut span_id = [0u8; 8];
        decode(&s[36..52], &mut span_id).ok_or(TraceparentError::Hex("parent id"))?;
        let flags = hex_byte(&s[53..55]).ok_or(TraceparentError::Hex("trace flags"))?;
        if trace_id == [0; 16] {
            return Err(TraceparentError::ZeroTraceId);
        }
        if span_id == [0; 8] {
            return Err(TraceparentError::ZeroSpanId);
        }
        // Only the sampled bit is defined (for any version); the rest are not passed on.
        let flags = if version == 0 { flags } else { flags & 1 };
        Ok(TraceContext { trace_id, span_id, parent_span_id: None, flags, tracestate: tracestate.and_then(bounded_tracestate) })
    }

    /// The `traceparent` header value of this span (version 00).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", Hex(&self.trace_id), Hex(&self.span_id), self.flags)
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// This span's id.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The parent span's id (for a server span: the caller's attempt span), if any.
    pub fn parent_span_id(&self) -> Option<[u8; 8]> {
        self.parent_span_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller recorded (sampled) the trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The vendors' `tracestate`, as it came (empty when there is none).
    pub fn tracestate(&self) -> &str {
        self.tracestate.as_deref().unwrap_or("")
    }

    /// The trace id in lowercase hex (32 characters), as traces are shown.
    ///
    /// ```
    /// let t = switchboard::observe::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).unwrap();
    /// assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(t.span_id_hex(), "00f067aa0ba902b7");
    /// ```
    pub fn trace_id_hex(&self) -> String {
        Hex(&self.trace_id).to_string()
    }

    /// This span's id in lowercase hex (16 characters).
    pub fn span_id_hex(&self) -> String {
        Hex(&self.span_id).to_string()
    }

    /// This span with another trace id, span id and flags: its OpenTelemetry span's.
    #[cfg(feature = "otel")]
    pub(crate) fn with_ids(self, trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Self {
        TraceContext { trace_id, span_id, flags, ..self }
    }

    pub(crate) fn hex_trace_id(&self) -> Hex<'_> {
        Hex(&self.trace_id)
    }

    pub(crate) fn hex_span_id(&self) -> Hex<'_> {
        Hex(&self.span_id)
    }

    pub(crate) fn hex_parent_span_id(&self) -> Option<Hex<'_>> {
        self.parent_span_id.as_ref().map(|p| Hex(p))
    }
}

/// Bytes shown as lowercase hex (the span fields: no string is made unless a subscriber records).
#[derive(Clone, Copy)]
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    Some(nibble(two[0])? << 4 | nibble(two[1])?)
}

fn decode(hex: &[u8], out: &mut [u8]) -> Option<()> {
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = hex_byte(pair)?;
    }
    Some(())
}

/// `tracestate` cut to [`MAX_TRACESTATE`] at a list member's end; `None` when empty or when not
/// even the first member fits.
fn bounded_tracestate(s: &str) -> Option<Arc<str>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.len() <= MAX_TRACESTATE {
        return Some(Arc::from(s));
    }
    let cut = s[..=MAX_TRACESTATE].rfind(',')?;
    Some(Arc::from(s[..cut].trim_end()))
}

fn random_trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..).to_be_bytes();
        if id != [0; 16] {
            return id;
        }
    }
}

fn random_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..).to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

thread_local! {
    /// The trace of the server span whose handler (or response stream) this thread polls now:
    /// what calls the handler makes continue (as `context::HANDLING` does for the deadline).
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// Whether a server span is being handled on this thread with a trace context.
pub(crate) fn has_current() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// The trace context of the server span being handled on this thread, if any.
pub(crate) fn current() -> Option<TraceContext> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `trace` the current one while `f` runs (a handler's poll), then restores the one
/// before, also when `f` panics.
#[inline]
pub(crate) fn with_current<R>(trace: Option<&TraceContext>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<TraceContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = before);
        }
    }
    let Some(trace) = trace else { return f() };
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(trace.clone())));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let t = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(t.traceparent(), VALID);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id_hex(), "00f067aa0ba902b7");
        assert!(t.sampled() && t.parent_span_id().is_none() && t.tracestate().is_empty());
        let unsampled = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None).unwrap();
        assert!(!unsampled.sampled());
        // Surrounding blanks (optional whitespace in a header value) are not part of it.
        assert!(TraceContext::parse(&format!(" {VALID}\t"), None).is_ok());
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        use TraceparentError::*;
        let cases: &[(&str, TraceparentError)] = &[
            ("", Format),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", Format),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", Format),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", Format),
            ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Format),
            ("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", Format),
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", Hex("trace id")),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01", Hex("parent id")),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", Hex("trace flags")),
            ("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Hex("version")),
            ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Version),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", ZeroTraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ZeroSpanId),
            ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", Format),
        ];
        for (input, want) in cases {
            assert_eq!(TraceContext::parse(input, None).as_ref().unwrap_err(), want, "{input:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_55_characters() {
        let t = TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes-next", None).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.flags(), 1, "only the sampled bit of an unknown version is kept");
        assert_eq!(t.traceparent(), VALID, "sent on as version 00");
        assert!(TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).is_ok());
    }

    #[test]
    fn tracestate_is_carried_as_is_and_bounded() {
        let t = TraceContext::parse(VALID, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.child().tracestate(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        let long = (0..60).map(|i| format!("k{i}=vvvvvv")).collect::<Vec<_>>().join(",");
        let t = TraceContext::parse(VALID, Some(&long)).unwrap();
        assert!(t.tracestate().len() <= MAX_TRACESTATE && long.starts_with(t.tracestate()) && !t.tracestate().ends_with(','));
        let one_huge = "k=".to_owned() + &"v".repeat(600);
        assert_eq!(TraceContext::parse(VALID, Some(&one_huge)).unwrap().tracestate(), "");
    }

    #[test]
    fn children_and_roots_get_fresh_nonzero_ids() {
        let root = TraceContext::new_root();
        let a = root.child();
        let b = root.child();
        assert_ne!(a.span_id(), b.span_id());
        assert_eq!(a.trace_id(), root.trace_id());
        assert_ne!(TraceContext::new_root().trace_id(), root.trace_id());
        assert_eq!(TraceContext::parse(&a.traceparent(), None).unwrap().span_id(), a.span_id());
    }

    #[test]
    fn the_current_trace_is_restored_after_a_poll() {
        let t = TraceContext::new_root();
        assert!(current().is_none());
        let seen = with_current(Some(&t), current);
        assert_eq!(seen, Some(t));
        assert!(current().is_none());
    }
}
