//! Where tonic's statuses differ from the gRPC spec, and how switchboard brings them in line.

use tonic::Status;

/// Brings tonic's statuses in line with the gRPC spec: a client-side deadline is
/// `DEADLINE_EXCEEDED` (tonic says `CANCELLED`), an over-limit message is `RESOURCE_EXHAUSTED`
/// (tonic says `OUT_OF_RANGE`).
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
    status
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
