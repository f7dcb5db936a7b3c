//! gRPC status ↔ HTTP status and the JSON error body, as Google APIs map them.
//!
//! Errors travel as `{"code": <grpc code>, "message": "...", "details": [...]}` with the HTTP
//! status from [`http_status`]. Each detail is a `google.protobuf.Any` rendered as
//! `{"@type": "<type url>", "value": "<base64 of the message>"}`: the server has no type registry
//! to expand it, and the client turns it back into the same `Status::details()` bytes.

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use prost::Message as _;
use tonic::{Code, Status};

/// The HTTP status a gRPC code maps to (google.rpc.Code's documented mapping).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Status metadata naming the HTTP status of an error where the code's mapping is too coarse
/// (a body over the size limit is RESOURCE_EXHAUSTED, but 413, not 429). `error_response` reads
/// it and leaves it out of the response headers.
pub(crate) const HTTP_STATUS_HINT: &str = "sb-http-status";

/// `status` answered over HTTP with `http` instead of its code's usual mapping (a 4xx or 5xx).
pub(crate) fn with_http_status(mut status: Status, http: StatusCode) -> Status {
    status.metadata_mut().insert(HTTP_STATUS_HINT, tonic::metadata::MetadataValue::from(http.as_u16()));
    status
}

/// The HTTP status `status` is answered with: its hint if it has one, else its code's mapping.
pub(crate) fn http_status_of(status: &Status) -> StatusCode {
    status
        .metadata()
        .get(HTTP_STATUS_HINT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|code| (400..600).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| http_status(status.code()))
}

/// The gRPC code for an HTTP error status that came without a JSON error body.
pub fn code_from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        200..=299 => Code::Ok,
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        405 | 501 => Code::Unimplemented,
        408 | 504 => Code::DeadlineExceeded,
        409 => Code::Aborted,
        412 => Code::FailedPrecondition,
        413 | 429 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        502 | 503 => Code::Unavailable,
        500 => Code::Internal,
        _ => Code::Unknown,
    }
}

/// google.rpc.Status, the encoding of `Status::details()` bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// The JSON error body of `status` as bytes, fields in the documented order.
pub fn error_body(status: &Status) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        code: i32,
        message: &'a str,
        details: serde_json::Value,
    }
    let json = error_json(status);
    let body = Body { code: status.code() as i32, message: status.message(), details: json["details"].clone() };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The JSON error body of `status`.
pub fn error_json(status: &Status) -> serde_json::Value {
    let details: Vec<serde_json::Value> = RpcStatus::decode(status.details())
        .map(|s| s.details)
        .unwrap_or_default()
        .into_iter()
        .map(|any| {
            serde_json::json!({
                "@type": any.type_url,
                "value": base64::engine::general_purpose::STANDARD.encode(any.value),
            })
        })
        .collect();
    serde_json::json!({
        "code": status.code() as i32,
        "message": status.message(),
        "details": details,
    })
}

/// Reads an error body back into a [`Status`]; `None` when `body` is not one.
pub fn status_from_json(body: &[u8]) -> Option<Status> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    status_from_value(&value)
}

/// [`status_from_json`] on a parsed value.
pub fn status_from_value(value: &serde_json::Value) -> Option<Status> {
    let obj = value.as_object()?;
    let code = obj.get("code")?.as_i64()?;
    let message = obj.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
    let code = Code::from_i32(i32::try_from(code).ok()?);
    let details: Vec<prost_types::Any> = obj
        .get("details")
        .and_then(|d| d.as_array())
        .map(|d| {
            d.iter()
                .filter_map(|any| {
                    let type_url = any.get("@type")?.as_str()?.to_owned();
                    let value = any.get("value").and_then(|v| v.as_str()).unwrap_or_default();
                    let value = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
                    Some(prost_types::Any { type_url, value })
                })
                .collect()
        })
        .unwrap_or_default();
    if details.is_empty() {
        return Some(Status::new(code, message));
    }
    let bytes = RpcStatus { code: code as i32, message: message.clone(), details }.encode_to_vec();
    Some(Status::with_details(code, message, Bytes::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_http_where_the_mapping_is_one_to_one() {
        for (code, http) in [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
            (Code::Cancelled, 499),
        ] {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
        assert_eq!(code_from_http(StatusCode::NOT_FOUND), Code::NotFound);
        assert_eq!(code_from_http(StatusCode::GATEWAY_TIMEOUT), Code::DeadlineExceeded);
    }

    #[test]
    fn an_http_status_hint_overrides_the_mapping() {
        let too_large = with_http_status(Status::resource_exhausted("big"), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(http_status_of(&too_large), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(http_status_of(&Status::resource_exhausted("quota")), StatusCode::TOO_MANY_REQUESTS);
        let mut odd = Status::not_found("x");
        odd.metadata_mut().insert(HTTP_STATUS_HINT, "200".parse().unwrap());
        assert_eq!(http_status_of(&odd), StatusCode::NOT_FOUND);
    }

    #[test]
    fn error_body_keeps_code_message_and_details() {
        let detail = prost_types::Any { type_url: "type.googleapis.com/x.Y".into(), value: vec![1, 2, 3] };
        let bytes = RpcStatus { code: 5, message: "gone".into(), details: vec![detail] }.encode_to_vec();
        let status = Status::with_details(Code::NotFound, "gone", Bytes::from(bytes));
        let json = error_json(&status);
        assert_eq!(json["code"], 5);
        assert_eq!(json["message"], "gone");
        assert_eq!(json["details"][0]["@type"], "type.googleapis.com/x.Y");
        let back = status_from_value(&json).expect("status");
        assert_eq!(back.code(), Code::NotFound);
        assert_eq!(back.message(), "gone");
        assert_eq!(back.details(), status.details());
        assert_eq!(error_json(&Status::not_found("x"))["details"], serde_json::json!([]));
    }
}
