//! The REST client: the same calls as the gRPC client, sent as HTTP/1.1 + JSON along the
//! method's first binding.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::ndjson::lines;
use super::decode::{self, lower_camel};
use super::routes::default_rule;
use super::status::{code_from_http, status_from_json, status_from_value};
use super::template::{expand, Template};
use crate::context::parse_grpc_timeout;
use crate::{HttpRule, MethodDescriptor, Streaming};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type ReqBody = BoxBody<Bytes, BoxError>;

/// A base URL the REST client cannot use.
#[derive(Debug, Clone)]
pub struct InvalidBaseUrl(String);

impl std::fmt::Display for InvalidBaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid base URL {}", self.0)
    }
}

impl std::error::Error for InvalidBaseUrl {}

/// Calls services over REST. The macro's `<Trait>RestClient` wraps one; clone it freely (the
/// connection pool is shared).
#[derive(Clone, Debug)]
pub struct RestClient {
    pub(crate) base: String,
    client: Client<HttpConnector, ReqBody>,
    timeout: Option<Duration>,
    /// Credentials for OpenAPI operations' security schemes.
    pub(crate) credentials: ClientCredentials,
}

/// What the client sends to operations that ask for credentials.
#[derive(Clone, Default)]
pub(crate) struct ClientCredentials {
    pub(crate) bearer: Option<String>,
    pub(crate) basic: Option<(String, String)>,
    pub(crate) api_key: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("bearer", &self.bearer.as_ref().map(|_| ".."))
            .field("basic", &self.basic.as_ref().map(|(u, _)| u))
            .field("api_key", &self.api_key.as_ref().map(|_| ".."))
            .finish()
    }
}

impl RestClient {
    /// A client for the server at `base_url`, e.g. `http://127.0.0.1:8080` (a path prefix is
    /// kept: `http://host/api` sends `/api/v1/...`).
    pub fn new(base_url: &str) -> Result<Self, InvalidBaseUrl> {
        let uri: http::Uri = base_url.parse().map_err(|e| InvalidBaseUrl(format!("`{base_url}`: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() || uri.query().is_some() {
            return Err(InvalidBaseUrl(format!("`{base_url}` is not an http://host[:port][/prefix] URL")));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(RestClient {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
            timeout: None,
            credentials: ClientCredentials::default(),
        })
    }

    /// Fails calls that take longer than `timeout` with DEADLINE_EXCEEDED (a request's own
    /// `set_timeout` wins when shorter).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends `Authorization: Bearer <token>` to OpenAPI operations whose security asks for a
    /// bearer token (`http`/`bearer`, `oauth2`, `openIdConnect`).
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.credentials.bearer = Some(token.into());
        self
    }

    /// Sends HTTP Basic credentials to OpenAPI operations whose security asks for them.
    pub fn with_basic(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials.basic = Some((user.into(), password.into()));
        self
    }

    /// Sends `key` to OpenAPI operations whose security asks for an API key, wherever the
    /// scheme wants it (header, query parameter or cookie).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.credentials.api_key = Some(key.into());
        self
    }

    /// One request, one response.
    pub async fn unary<Req: Serialize + 'static, Resp: DeserializeOwned + 'static>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let (rule, http_request, timeout) = self.build(method, request)?;
        self.one_answer(rule, http_request, timeout).await
    }

    /// One request, a stream of responses (NDJSON).
    pub async fn server_streaming<Req: Serialize + 'static, Resp: DeserializeOwned + Send + 'static>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        let (rule, http_request, timeout) = self.build(method, request)?;
        self.streamed_answer(rule, http_request, timeout).await
    }

    /// A stream of requests (sent as an NDJSON body), one response.
    pub async fn client_streaming<Req: Serialize + Send + 'static, Resp: DeserializeOwned + 'static>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Streaming<Req>>,
    ) -> Result<Response<Resp>, Status> {
        let (rule, http_request, timeout) = self.build_streaming(method, request)?;
        self.one_answer(rule, http_request, timeout).await
    }

    /// Streams both ways (NDJSON both ways; over HTTP/1.1 the request is sent before the answer
    /// is read).
    pub async fn streaming<Req: Serialize + Send + 'static, Resp: DeserializeOwned + Send + 'static>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Streaming<Req>>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        let (rule, http_request, timeout) = self.build_streaming(method, request)?;
        self.streamed_answer(rule, http_request, timeout).await
    }

    async fn one_answer<Resp: DeserializeOwned + 'static>(
        &self,
        rule: HttpRule,
        request: http::Request<ReqBody>,
        timeout: Option<Duration>,
    ) -> Result<Response<Resp>, Status> {
        with_timeout(timeout, async {
            let response = self.send(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| Status::unavailable(format!("reading the response: {e}")))?.to_bytes();
            if !parts.status.is_success() {
                return Err(error_from(parts.status, &parts.headers, &body));
            }
            let message = decode_response::<Resp>(&body, rule.response_body)?;
            Ok(Response::from_parts(MetadataMap::from_headers(parts.headers), message, http::Extensions::new()))
        })
        .await
    }

    async fn streamed_answer<Resp: DeserializeOwned + Send + 'static>(
        &self,
        rule: HttpRule,
        request: http::Request<ReqBody>,
        timeout: Option<Duration>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        let response = with_timeout(timeout, self.send(request)).await?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            return Err(error_from(parts.status, &parts.headers, &body));
        }
        Ok(Response::from_parts(
            MetadataMap::from_headers(parts.headers),
            ndjson_stream(body, rule.response_body, timeout),
            http::Extensions::new(),
        ))
    }

    pub(crate) async fn send(&self, request: http::Request<ReqBody>) -> Result<http::Response<hyper::body::Incoming>, Status> {
        self.client.request(request).await.map_err(|e| {
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut text = String::new();
            while let Some(err) = source {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&err.to_string());
                source = err.source();
            }
            Status::unavailable(format!("REST call failed: {text}"))
        })
    }

    pub(crate) fn timeout_of(&self, metadata: &MetadataMap) -> Option<Duration> {
        let own = metadata.get("grpc-timeout").and_then(|v| parse_grpc_timeout(v.as_bytes()));
        match (own, self.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn build<Req: Serialize + 'static>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Req>,
    ) -> Result<(HttpRule, http::Request<ReqBody>, Option<Duration>), Status> {
        let rule = method.http.first().copied().unwrap_or_else(|| default_rule(method));
        let (metadata, _, message) = request.into_parts();
        let timeout = self.timeout_of(&metadata);
        let mut value = decode::to_value(&message)
            .map_err(|e| Status::invalid_argument(format!("encoding the request as JSON: {e}")))?;
        let template = Template::parse_http(rule.path).map_err(|e| Status::internal(e.to_string()))?;
        let mut missing = None;
        let path = expand(&template, |field| match take_field(&mut value, field) {
                Some(v) => scalar_text(&v),
                None => {
                    missing = Some(field.to_owned());
                    None
                }
            })
            .map_err(Status::invalid_argument)?;
        let body = match rule.body {
            "" => None,
            "*" => Some(std::mem::take(&mut value)),
            field => Some(take_field(&mut value, field).unwrap_or(Value::Object(Map::new()))),
        };
        let mut uri = format!("{}{}", self.base, path);
        if rule.body != "*" {
            let mut query = form_urlencoded::Serializer::new(String::new());
            flatten_query(&value, "", &mut query)?;
            let query = query.finish();
            if !query.is_empty() {
                uri.push('?');
                uri.push_str(&query);
            }
        }
        let body = match body {
            Some(v) => Full::new(Bytes::from(serde_json::to_vec(&v).unwrap_or_default())).map_err(|e| match e {}).boxed(),
            None => Full::new(Bytes::new()).map_err(|e| match e {}).boxed(),
        };
        let mut req = http::Request::new(body);
        *req.method_mut() = http::Method::from_bytes(rule.method.as_bytes()).map_err(|e| Status::internal(e.to_string()))?;
        *req.uri_mut() = uri.parse().map_err(|e| Status::invalid_argument(format!("request URL `{uri}`: {e}")))?;
        *req.headers_mut() = metadata.into_headers();
        if !rule.body.is_empty() {
            req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        req.headers_mut().insert(ACCEPT, HeaderValue::from_static("application/json, application/x-ndjson"));
        Ok((rule, req, timeout))
    }

    fn build_streaming<Req: Serialize + Send + 'static>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Streaming<Req>>,
    ) -> Result<(HttpRule, http::Request<ReqBody>, Option<Duration>), Status> {
        let rule = method.http.first().copied().unwrap_or_else(|| default_rule(method));
        let template = Template::parse_http(rule.path).map_err(|e| Status::internal(e.to_string()))?;
        if !template.variables.is_empty() {
            return Err(Status::unimplemented(format!(
                "`{}` streams its requests, so its REST binding cannot take path variables",
                method.name
            )));
        }
        let path = expand(&template, |_| None).map_err(Status::internal)?;
        let (metadata, _, stream) = request.into_parts();
        let timeout = self.timeout_of(&metadata);
        let frames = stream.map(|item| -> Result<http_body::Frame<Bytes>, BoxError> {
            let message = item.map_err(|s| Box::new(s) as BoxError)?;
            let mut line = decode::to_json(&message)?;
            line.push(b'\n');
            Ok(http_body::Frame::data(Bytes::from(line)))
        });
        let mut req = http::Request::new(BodyExt::boxed(StreamBody::new(frames)));
        *req.method_mut() = http::Method::from_bytes(rule.method.as_bytes()).map_err(|e| Status::internal(e.to_string()))?;
        let uri = format!("{}{}", self.base, path);
        *req.uri_mut() = uri.parse().map_err(|e| Status::invalid_argument(format!("request URL `{uri}`: {e}")))?;
        *req.headers_mut() = metadata.into_headers();
        req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        req.headers_mut().insert(ACCEPT, HeaderValue::from_static("application/json, application/x-ndjson"));
        Ok((rule, req, timeout))
    }
}

pub(crate) async fn with_timeout<T>(
    timeout: Option<Duration>,
    fut: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded"))),
        None => fut.await,
    }
}

/// Removes the field at `path` (proto names; JSON output uses lowerCamelCase) from `value`.
fn take_field(value: &mut Value, path: &str) -> Option<Value> {
    let mut parts = path.split('.').peekable();
    let mut node = value;
    while let Some(part) = parts.next() {
        let obj = node.as_object_mut()?;
        let camel = lower_camel(part);
        let key = if obj.contains_key(&camel) { camel } else { part.to_owned() };
        if parts.peek().is_none() {
            return obj.remove(&key);
        }
        node = obj.get_mut(&key)?;
    }
    None
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Fields left over go to the query string: `a.b=1`, repeated fields as repeated keys.
fn flatten_query(value: &Value, prefix: &str, out: &mut form_urlencoded::Serializer<'_, String>) -> Result<(), Status> {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_query(v, &key, out)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar_text(item) {
                    Some(text) => {
                        out.append_pair(prefix, &text);
                    }
                    None => {
                        return Err(Status::invalid_argument(format!(
                            "field `{prefix}` is a list of messages, which a query string cannot carry"
                        )))
                    }
                }
            }
        }
        Value::Null => {}
        scalar => {
            if let Some(text) = scalar_text(scalar) {
                out.append_pair(prefix, &text);
            }
        }
    }
    Ok(())
}

fn decode_response<Resp: DeserializeOwned + 'static>(body: &[u8], response_body: &str) -> Result<Resp, Status> {
    let result = if response_body.is_empty() {
        decode::from_json::<Resp>(body)
    } else {
        let field: Value = serde_json::from_slice(body).map_err(|e| Status::internal(format!("malformed JSON response: {e}")))?;
        let mut root = Value::Object(Map::new());
        insert_field(&mut root, response_body, field);
        decode::from_node::<Resp>(decode::Node::Json(root))
    };
    result.map_err(|s| Status::internal(format!("unexpected response: {}", s.message())))
}

fn insert_field(root: &mut Value, path: &str, field: Value) {
    let mut node = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(obj) = node.as_object_mut() else { return };
        if i + 1 == parts.len() {
            obj.insert(lower_camel(part), field);
            return;
        }
        node = obj.entry(lower_camel(part)).or_insert_with(|| Value::Object(Map::new()));
    }
}

pub(crate) fn error_from(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Status {
    let mut result = status_from_json(body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
        Status::new(code_from_http(status), message)
    });
    let mut metadata = MetadataMap::from_headers(headers.clone());
    metadata.remove("content-type");
    metadata.remove("content-length");
    *result.metadata_mut() = metadata;
    result
}

fn ndjson_stream<Resp: DeserializeOwned + Send + 'static>(
    body: hyper::body::Incoming,
    response_body: &'static str,
    timeout: Option<Duration>,
) -> Streaming<Resp> {
    let data = body.into_data_stream().map(|r| r.map_err(|e| Status::unavailable(format!("reading the response: {e}"))));
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let lines = Box::pin(lines(data, super::call::DEFAULT_MAX_BODY));
    let stream = futures_util::stream::unfold((lines, false), move |(mut lines, done)| async move {
        if done {
            return None;
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, lines.next()).await {
                Ok(n) => n,
                Err(_) => return Some((Err(Status::deadline_exceeded("deadline exceeded")), (lines, true))),
            },
            None => lines.next().await,
        };
        let line = match next? {
            Ok(line) => line,
            Err(status) => return Some((Err(status), (lines, true))),
        };
        let value: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => return Some((Err(Status::internal(format!("malformed stream line: {e}"))), (lines, true))),
        };
        if let Some(error) = value.get("error") {
            let status = status_from_value(error).unwrap_or_else(|| Status::unknown(error.to_string()));
            return Some((Err(status), (lines, true)));
        }
        let Some(result) = value.get("result").cloned() else {
            return Some((Err(Status::internal("stream line without `result` or `error`")), (lines, true)));
        };
        let message = if response_body.is_empty() {
            decode::from_node::<Resp>(decode::Node::Json(result))
        } else {
            let mut root = Value::Object(Map::new());
            insert_field(&mut root, response_body, result);
            decode::from_node::<Resp>(decode::Node::Json(root))
        };
        let message = message.map_err(|s| Status::internal(format!("unexpected response: {}", s.message())));
        let done = message.is_err();
        Some((message, (lines, done)))
    });
    Streaming::new(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_move_from_the_message_to_path_and_query() {
        let mut v = serde_json::json!({"shelf": {"name": "shelves/1", "theme": "x"}, "pageSize": 5, "tags": ["a", "b"], "filter": null});
        assert_eq!(take_field(&mut v, "shelf.name"), Some(Value::String("shelves/1".into())));
        assert_eq!(take_field(&mut v, "page_size"), Some(serde_json::json!(5)));
        let mut q = form_urlencoded::Serializer::new(String::new());
        flatten_query(&v, "", &mut q).unwrap();
        assert_eq!(q.finish(), "shelf.theme=x&tags=a&tags=b");
    }
}
