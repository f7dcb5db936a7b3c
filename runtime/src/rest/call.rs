//! One REST call on the server: reading the HTTP request into a message and writing the handler's
//! answer (or error) back as JSON.

use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::decode::{self, Node};
use super::status::{error_body, http_status_of, with_http_status, HTTP_STATUS_HINT};
use super::Body;
use crate::context::parse_grpc_timeout;
use crate::call::CallContext;
use crate::MethodDescriptor;

/// `grpc-timeout`, parsed once (a `&str` key is validated and hashed again on every lookup).
const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// The HTTP response type of the REST transport.
pub type HttpResponse = http::Response<Body>;

/// Largest request body read by default (4 MiB, as gRPC's default message limit).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// A matched request on its way to a handler.
pub struct Call {
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Body,
    pub(crate) method: &'static MethodDescriptor,
    pub(crate) method_index: usize,
    pub(crate) body_field: &'static str,
    pub(crate) response_body: &'static str,
    /// google.api.http path variables: field path and decoded value.
    pub(crate) vars: Vec<(&'static str, String)>,
    pub(crate) max_body: usize,
    /// For OpenAPI operations: the operation's state and path variables.
    pub(crate) api: Option<ApiCall>,
}

/// The OpenAPI side of a matched request.
pub(crate) struct ApiCall {
    pub(crate) state: std::sync::Arc<crate::api::contract::OpState>,
    /// The path variables' byte ranges in the request path, in template order.
    pub(crate) vars: super::template::Captures,
    pub(crate) authorize: Option<crate::api::security::Authorize>,
}

impl Call {
    /// Index of the method in the service descriptor (the macro's dispatch switch).
    pub fn method_index(&self) -> usize {
        self.method_index
    }

    /// The method.
    pub fn method(&self) -> &'static MethodDescriptor {
        self.method
    }

    /// Splits off everything but the body into the call's state (metadata, extensions,
    /// deadline from `grpc-timeout`); also says whether the caller asked for Server-Sent Events.
    pub(crate) fn context(&mut self) -> (CallContext, bool) {
        let headers = std::mem::take(&mut self.parts.headers);
        let deadline = headers
            .get(GRPC_TIMEOUT)
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
            .and_then(|d| Instant::now().checked_add(d));
        let sse = self.method.shape.server_streams()
            && headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
        let extensions = std::mem::take(&mut self.parts.extensions);
        let method = self.method.grpc_path.strip_prefix('/').unwrap_or(self.method.grpc_path);
        (CallContext::served(MetadataMap::from_headers(headers), extensions, deadline, method, crate::client::TransportKind::Rest), sse)
    }

    /// Reads the whole body (bounded).
    pub(crate) async fn read_body(&mut self) -> Result<Bytes, Status> {
        let body = std::mem::replace(&mut self.body, Body::empty());
        read_limited(body, self.max_body).await
    }

    /// The request message from body, path and query.
    pub(crate) fn decode<T: DeserializeOwned + 'static>(&self, body: &[u8]) -> Result<T, Status> {
        let query = self.parts.uri.query().filter(|q| !q.is_empty() && self.body_field != "*");
        // The common case: the whole message is the body.
        if self.body_field == "*" && self.vars.is_empty() {
            return decode::from_json(if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body });
        }
        let mut root = Node::empty();
        match self.body_field {
            "" => {}
            "*" => {
                if !body.iter().all(u8::is_ascii_whitespace) {
                    let value = decode::json_value(body)?;
                    if !value.is_object() {
                        return Err(Status::invalid_argument("the request body must be a JSON object"));
                    }
                    root = Node::Json(value);
                }
            }
            field => {
                if !body.iter().all(u8::is_ascii_whitespace) {
                    let value = decode::json_value(body)?;
                    root.insert(field, Node::Json(value), true).map_err(Status::invalid_argument)?;
                }
            }
        }
        if let Some(query) = query {
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                if !self.body_field.is_empty() && (key == self.body_field || key.starts_with(&format!("{}.", self.body_field))) {
                    return Err(Status::invalid_argument(format!(
                        "query parameter `{key}`: field `{}` is the request body",
                        self.body_field
                    )));
                }
                root.insert(&key, Node::Text(value.into_owned()), false)
                    .map_err(|e| Status::invalid_argument(format!("query parameter {e}")))?;
            }
        }
        for (field, value) in &self.vars {
            root.insert(field, Node::Text(value.clone()), true)
                .map_err(|e| Status::invalid_argument(format!("path variable {e}")))?;
        }
        match root {
            // Nothing given: the default message (also for wrapper types such as `String`).
            Node::Map(entries) if entries.is_empty() => decode::from_nothing(),
            root => decode::from_node(root),
        }
    }
}

/// Reads a whole body of at most `max_body` bytes.
pub(crate) async fn read_limited(body: Body, max_body: usize) -> Result<Bytes, Status> {
    let limited = http_body_util::Limited::new(body, max_body);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let status = Status::resource_exhausted(format!("request body larger than {max_body} bytes"));
            Err(with_http_status(status, http::StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(e) => Err(Status::cancelled(format!("reading the request body: {e}"))),
    }
}

/// The JSON value of the field named `path` (proto or JSON names), `null` if absent.
pub(crate) fn field_of(mut value: serde_json::Value, path: &str) -> serde_json::Value {
    for part in path.split('.') {
        let camel = decode::lower_camel(part);
        value = match value {
            serde_json::Value::Object(mut obj) => {
                obj.remove(&camel).or_else(|| obj.remove(part)).unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        };
    }
    value
}

/// The error as HTTP: status from the gRPC code, JSON body, the status's metadata as headers.
pub fn error_response(status: &Status) -> HttpResponse {
    let body = error_body(status);
    let mut resp = http::Response::new(Body::from(body));
    *resp.status_mut() = http_status_of(status);
    let headers = resp.headers_mut();
    *headers = status.metadata().clone().into_headers();
    headers.remove(HTTP_STATUS_HINT);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // A pushback hint (a shed call, a handler's own) is also HTTP's `Retry-After`, in whole
    // seconds rounded up, for clients that know only that.
    let pushback = headers.get(crate::policy::PUSHBACK_METADATA).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = pushback {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    }
    resp
}
