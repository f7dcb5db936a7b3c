//! The metric names and label keys, after gRPC's OpenTelemetry metrics: A66 (per call and per
//! attempt) and A96 (retries). Every transport records under the same names; the `transport`
//! label tells them apart.

/// Counter, `{attempt}`: attempts started (each one a layer such as the policy layer sends
/// reaches the transport with). Labels: `grpc.method`, `transport`.
pub const CLIENT_ATTEMPT_STARTED: &str = "grpc.client.attempt.started";
/// Histogram, seconds: from an attempt's start to its outcome (for a response stream: to its
/// start). Labels: `grpc.method`, `grpc.status`, `transport`.
pub const CLIENT_ATTEMPT_DURATION: &str = "grpc.client.attempt.duration";
/// Histogram, seconds: a call as its caller sees it, every attempt and wait in between (for a
/// response stream: to its start). Labels: `grpc.method`, `grpc.status`, `transport`.
pub const CLIENT_CALL_DURATION: &str = "grpc.client.call.duration";
/// Histogram, `{retry}`: retries a call made (attempts after the first, under a `retryPolicy`);
/// not recorded when there were none (A96). Labels: `grpc.method`, `transport`.
pub const CLIENT_CALL_RETRIES: &str = "grpc.client.call.retries";
/// Histogram, `{transparent_retry}`: transparent retries a call made (the policy layer sends a
/// call that never reached a server's application again at once, `client::never_reached`); not
/// recorded when there were none (A96). Labels: `grpc.method`, `transport`.
pub const CLIENT_CALL_TRANSPARENT_RETRIES: &str = "grpc.client.call.transparent_retries";
/// Histogram, `{hedge}`: hedged copies a call sent after the first (`hedgingPolicy`); not
/// recorded when there were none. Labels: `grpc.method`, `transport`.
pub const CLIENT_CALL_HEDGES: &str = "grpc.client.call.hedges";
/// Counter, `{call}`: calls a server started handling. Labels: `grpc.method`, `transport`.
pub const SERVER_CALL_STARTED: &str = "grpc.server.call.started";
/// Histogram, seconds: from a call's arrival to the end of the handler's answer (the last
/// message of a response stream). Labels: `grpc.method`, `grpc.status`, `transport`.
pub const SERVER_CALL_DURATION: &str = "grpc.server.call.duration";

/// Label: the full method name, `package.Service/Method`.
pub const METHOD: &str = "grpc.method";
/// Label: the status code's name (`OK`, `UNAVAILABLE`, …).
pub const STATUS: &str = "grpc.status";
/// Label: `grpc`, `rest` or `queue`.
pub const TRANSPORT: &str = "transport";
