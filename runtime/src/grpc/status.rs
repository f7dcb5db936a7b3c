//! Where tonic's statuses differ from the gRPC spec, and how switchboard brings them in line.

use tonic::Status;

/// Brings tonic's statuses in line with the gRPC spec: a client-side deadline is
/// `DEADLINE_EXCEEDED` (tonic says `CANCELLED`), an over-limit message is `RESOURCE_EXHAUSTED`
/// (tonic says `OUT_OF_RANGE`), a broken or refused connection is `UNAVAILABLE` (tonic says
/// `UNKNOWN`), and so is a request its connection closed on before sending it (tonic says
/// `CANCELLED`; it never reached a server).
pub(crate) fn normalize(status: Status) -> Status {
    use std::error::Error as _;
    let timed_out = status.code() == tonic::Code::Cancelled
        && status.source().is_some_and(|e| {
            e.is::<tonic::TimeoutExpired>()
                || e.source().is_some_and(|e| e.is::<tonic::TimeoutExpired>())
                || e.to_string().contains("Timeout expired")
        });
    if timed_out {
        return Status::deadline_exceeded("deadline exceeded (client-side timeout)");
    }
    if is_size_limit(status.code(), status.message()) {
        return Status::resource_exhausted(status.message().to_owned());
    }
    if status.code() == tonic::Code::Unknown && broken_connection(&status) {
        return unavailable(status);
    }
    if status.code() == tonic::Code::Cancelled && unsent(&status) {
        // Sent again at once by the policy layer, as hyper's own client does with such requests.
        return crate::client::not_delivered(unavailable(status));
    }
    status
}

/// Whether a CANCELLED status is hyper's report of a request still queued on a connection that
/// closed (a replica killed under load): it was never written, so no server saw it.
fn unsent(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled) {
            return true;
        }
        source = err.source();
    }
    false
}

/// Whether an UNKNOWN status is tonic's report of a connection that broke or could not be made
/// (its source chain holds the transport's or an I/O error).
fn broken_connection(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The gRPC spec's code for a connection that broke or could not be made: UNAVAILABLE (tonic
/// says UNKNOWN), naming the cause; the original status stays its source (so
/// [`never_reached`](crate::client::never_reached) still sees a refused connection).
fn unavailable(status: Status) -> Status {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(&status);
    while let Some(err) = source {
        let more = err.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = err.source();
    }
    let mut mapped = Status::unavailable(text);
    mapped.set_source(std::sync::Arc::new(status));
    mapped
}

/// Whether a status is tonic's report of a message over the configured size limit.
pub(crate) fn is_size_limit(code: tonic::Code, message: &str) -> bool {
    code == tonic::Code::OutOfRange
        && (message.starts_with("Error, decoded message length too large")
            || message.starts_with("Error, encoded message length too large"))
}

/// The gRPC spec says an over-limit message is `RESOURCE_EXHAUSTED`; tonic reports
/// `OUT_OF_RANGE`. Rewrites trailers-only responses (the case of an over-limit request).
pub(crate) fn fix_size_limit_status(headers: &mut http::HeaderMap) {
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    let Some(code) = code else { return };
    let msg = headers.get("grpc-message").map(|v| v.as_bytes()).unwrap_or_default();
    let msg = String::from_utf8_lossy(msg).replace("%20", " ");
    if is_size_limit(tonic::Code::from_i32(code), &msg) {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}
