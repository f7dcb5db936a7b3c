//! The REST client: the same calls as the gRPC client, sent as HTTP/1.1 + JSON along the
//! method's first binding.

use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
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
pub(crate) use crate::api::security::ClientCredentials;
use crate::client::{self, Call, DefaultTimeout, Exchange, Layer, Layers, Once, TransportKind};
use crate::{HttpRule, MethodDescriptor, ServiceDescriptor, Streaming};

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

/// The client's connection pool: plain TCP, or TLS (`RestClient::with_tls`). Both pools' requests
/// are hyper-util's one boxed future, so a plaintext call costs what it did before TLS existed.
#[derive(Clone, Debug)]
enum Pool {
    Plain(Client<HttpConnector, ReqBody>),
    #[cfg(feature = "tls")]
    Tls(Client<crate::tls::Connector, ReqBody>),
}

impl Pool {
    fn request(&self, request: http::Request<ReqBody>) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            Pool::Plain(client) => client.request(request),
            #[cfg(feature = "tls")]
            Pool::Tls(client) => client.request(request),
        }
    }
}

/// Calls services over REST. The macro's `<Trait>RestClient` wraps one; clone it freely (the
/// connection pool is shared).
///
/// Every call goes through [`client::run`](crate::client): the request is encoded once (request
/// line, headers, JSON body), the [`Layer`]s added with [`layer`](RestClient::layer) see the
/// call and may send it more than once (the same bytes each time), and the whole call runs under
/// its deadline.
#[derive(Clone, Debug)]
pub struct RestClient {
    pub(crate) base: String,
    client: Pool,
    timeout: Option<Duration>,
    /// Credentials for OpenAPI operations' security schemes.
    pub(crate) credentials: ClientCredentials,
    layers: Layers,
    /// The fleet each attempt picks an endpoint of (`base` is then empty: requests carry their
    /// path, and each attempt adds the scheme and the endpoint it picked).
    fleet: Option<crate::fleet::Fleet>,
}


impl RestClient {
    /// A client for the server at `base_url`, e.g. `http://127.0.0.1:8080` (a path prefix is
    /// kept: `http://host/api` sends `/api/v1/...`).
    pub fn new(base_url: &str) -> Result<Self, InvalidBaseUrl> {
        Self::over(base_url, "http", || {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            Pool::Plain(Client::builder(TokioExecutor::new()).build(connector))
        })
    }

    /// A client for the TLS server at `base_url`, e.g. `https://localhost:8443` (a path prefix
    /// is kept), verifying its certificate against `tls`'s roots (and presenting `tls`'s client
    /// certificate, if it has one). The connections offer ALPN `http/1.1`.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?;
    /// let client = switchboard::rest::RestClient::with_tls("https://localhost:8443", &tls)?;
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn with_tls(base_url: &str, tls: &crate::tls::ClientTls) -> Result<Self, InvalidBaseUrl> {
        Self::over(base_url, "https", || {
            let connector = tls.connector_with_alpn(vec![b"http/1.1".to_vec()]);
            Pool::Tls(Client::builder(TokioExecutor::new()).build(connector))
        })
    }

    /// A client for `base_url`, whose scheme must be `scheme`, over the pool `pool` makes.
    fn over(base_url: &str, scheme: &str, pool: impl FnOnce() -> Pool) -> Result<Self, InvalidBaseUrl> {
        let uri: http::Uri = base_url.parse().map_err(|e| InvalidBaseUrl(format!("`{base_url}`: {e}")))?;
        if scheme == "http" && uri.scheme_str() == Some("https") {
            let how = if cfg!(feature = "tls") { "RestClient::with_tls" } else { "switchboard's `tls` feature and RestClient::with_tls" };
            return Err(InvalidBaseUrl(format!("`{base_url}` is an https:// URL: TLS needs {how}")));
        }
        if uri.scheme_str() != Some(scheme) || uri.authority().is_none() || uri.query().is_some() {
            return Err(InvalidBaseUrl(format!("`{base_url}` is not an {scheme}://host[:port][/prefix] URL")));
        }
        let client = pool();
        Ok(RestClient {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
            timeout: None,
            credentials: ClientCredentials::default(),
            layers: Layers::default(),
            fleet: None,
        })
    }

    /// A client for a [`Fleet`](crate::fleet::Fleet) of servers: each attempt goes to the
    /// endpoint the fleet's balancer picks (a retry usually to another one).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let fleet = switchboard::fleet::Fleet::builder("static:///127.0.0.1:8080,127.0.0.2:8080").build()?;
    /// let client = switchboard::rest::RestClient::fleet(fleet);
    /// # Ok(()) }
    /// ```
    pub fn fleet(fleet: crate::fleet::Fleet) -> Self {
        #[cfg(feature = "tls")]
        if let Some(tls) = &fleet.connect_options().tls {
            let mut client = RestClient::with_tls("https://fleet.invalid", tls).expect("a valid URL");
            client.base.clear();
            client.fleet = Some(fleet);
            return client;
        }
        let mut client = RestClient::new("http://fleet.invalid").expect("a valid URL");
        // Requests carry only their path; each attempt adds the scheme and its endpoint.
        client.base.clear();
        client.fleet = Some(fleet);
        client
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

    /// Runs every call through `layer` (inside the layers added before it). See
    /// [`client::Layer`](crate::client::Layer).
    pub fn layer(mut self, layer: impl Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// The call state of a request to method `index` of `service`: its deadline from the
    /// request's `grpc-timeout` and this client's timeout (which is enforced, not sent).
    pub(crate) fn call_of(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        metadata: MetadataMap,
        extensions: http::Extensions,
    ) -> Call {
        let default = DefaultTimeout { timeout: self.timeout, travels: false };
        Call::new(service, index, TransportKind::Rest, metadata, extensions, default)
    }

    /// Runs `call` through this client's layers to `exchange`.
    pub(crate) async fn run<E: Exchange>(&self, call: Call, exchange: E) -> Result<Response<E::Message>, Status> {
        client::run(&self.layers, call, exchange).await
    }

    /// One request, one response: method `index` of `service`.
    pub async fn unary<Req: Serialize + 'static, Resp: DeserializeOwned + Send + 'static>(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let method = &service.methods[index];
        let (metadata, extensions, message) = request.into_parts();
        let (rule, prepared, body) = self.build(method, &message)?;
        drop(message);
        let mut call = self.call_of(service, index, metadata, extensions);
        call.set_request_size(body.len());
        self.run(call, Attempt { client: self, prepared, body: Source::Bytes(body), answer: One::<Resp>::new(rule.response_body) }).await
    }

    /// One request, a stream of responses (NDJSON): method `index` of `service`.
    pub async fn server_streaming<Req: Serialize + 'static, Resp: DeserializeOwned + Send + 'static>(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        let method = &service.methods[index];
        let (metadata, extensions, message) = request.into_parts();
        let (rule, prepared, body) = self.build(method, &message)?;
        drop(message);
        let mut call = self.call_of(service, index, metadata, extensions);
        call.set_request_size(body.len());
        self.run(call, Attempt { client: self, prepared, body: Source::Bytes(body), answer: Many::<Resp>::new(rule.response_body) }).await
    }

    /// A stream of requests (sent as an NDJSON body), one response: method `index` of
    /// `service`. The stream is sent once; a layer that runs the call again gets
    /// FAILED_PRECONDITION.
    pub async fn client_streaming<Req: Serialize + Send + 'static, Resp: DeserializeOwned + Send + 'static>(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Streaming<Req>>,
    ) -> Result<Response<Resp>, Status> {
        let (metadata, extensions, stream) = request.into_parts();
        let (rule, prepared, body) = self.build_streaming(&service.methods[index], stream)?;
        let call = self.call_of(service, index, metadata, extensions);
        self.run(call, Attempt { client: self, prepared, body: Source::Stream(Once::new(body)), answer: One::<Resp>::new(rule.response_body) }).await
    }

    /// Streams both ways (NDJSON both ways; over HTTP/1.1 the request is sent before the answer
    /// is read): method `index` of `service`. The request stream is sent once.
    pub async fn streaming<Req: Serialize + Send + 'static, Resp: DeserializeOwned + Send + 'static>(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Streaming<Req>>,
    ) -> Result<Response<Streaming<Resp>>, Status> {
        let (metadata, extensions, stream) = request.into_parts();
        let (rule, prepared, body) = self.build_streaming(&service.methods[index], stream)?;
        let call = self.call_of(service, index, metadata, extensions);
        self.run(call, Attempt { client: self, prepared, body: Source::Stream(Once::new(body)), answer: Many::<Resp>::new(rule.response_body) }).await
    }

    /// Sends `request` and reads the whole answer (no larger than the request's
    /// [`ResponseLimit`](crate::client::ResponseLimit), when it has one).
    pub(crate) async fn exchange(&self, request: http::Request<ReqBody>) -> Result<(http::response::Parts, Bytes), Status> {
        let limit = request.extensions().get::<crate::client::ResponseLimit>().map(|l| l.0);
        let (parts, body) = self.send(request).await?.into_parts();
        let body = match limit {
            None => body.collect().await.map_err(|e| Status::unavailable(format!("reading the response: {e}")))?.to_bytes(),
            Some(limit) => {
                // Read no more than the limit (and one byte to tell it was passed).
                let limited = http_body_util::Limited::new(body, limit);
                limited.collect().await.map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
                    Ok(_) => crate::client::ResponseLimit::exceeded(None, limit),
                    Err(e) => Status::unavailable(format!("reading the response: {e}")),
                })?.to_bytes()
            }
        };
        Ok((parts, body))
    }

    pub(crate) async fn send(&self, request: http::Request<ReqBody>) -> Result<http::Response<hyper::body::Incoming>, Status> {
        match &self.fleet {
            None => self.send_to(request).await,
            Some(fleet) => self.send_to_fleet(fleet, request).await,
        }
    }

    /// Sends `request` to the endpoint `fleet` picks, and tells the fleet how it went.
    async fn send_to_fleet(
        &self,
        fleet: &crate::fleet::Fleet,
        mut request: http::Request<ReqBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, Status> {
        use crate::fleet::Outcome;
        let attempt = fleet.start().await?;
        let mut parts = std::mem::take(request.uri_mut()).into_parts();
        #[cfg(feature = "tls")]
        let https = fleet.connect_options().tls.is_some();
        #[cfg(not(feature = "tls"))]
        let https = false;
        parts.scheme = Some(if https { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP });
        let endpoint = attempt.endpoint();
        parts.authority = Some(endpoint.authority.clone().ok_or_else(|| {
            Status::invalid_argument(format!("endpoint address `{}` is not an HTTP authority", endpoint.address))
        })?);
        *request.uri_mut() = http::Uri::from_parts(parts).map_err(|e| Status::invalid_argument(format!("endpoint URI: {e}")))?;
        let sent = self.send_to(request).await;
        let outcome = match &sent {
            Ok(response) if response.status().is_server_error() => Outcome::Failed,
            Ok(_) => Outcome::Answered,
            // No answer: the connection could not be made or broke.
            Err(_) => Outcome::Unreachable,
        };
        fleet.finish(attempt, outcome);
        sent
    }

    async fn send_to(&self, request: http::Request<ReqBody>) -> Result<http::Response<hyper::body::Incoming>, Status> {
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
            let status = Status::unavailable(format!("REST call failed: {text}"));
            // No connection could be made: nothing was sent.
            if e.is_connect() {
                return crate::client::not_delivered(status);
            }
            status
        })
    }

    /// The request line, headers and body of `message` along `method`'s first binding whose
    /// path the message can fill (a oneof member bound in one of several bindings, say), encoded
    /// once. When none can, the first binding's error.
    fn build<Req: Serialize + 'static>(
        &self,
        method: &'static MethodDescriptor,
        message: &Req,
    ) -> Result<(HttpRule, Prepared, Bytes), Status> {
        let value = decode::to_value(message)
            .map_err(|e| Status::invalid_argument(format!("encoding the request as JSON: {e}")))?;
        let default = [default_rule(method)];
        let rules = if method.http.is_empty() { &default[..] } else { method.http };
        // Every binding but the last gets a copy of the message; the last (the only one, as a
        // rule) takes it.
        let (last, earlier) = rules.split_last().expect("at least the default binding");
        let mut first_error = None;
        for rule in earlier {
            match self.build_along(*rule, value.clone()) {
                Ok((prepared, body)) => return Ok((*rule, prepared, body)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match self.build_along(*last, value) {
            Ok((prepared, body)) => Ok((*last, prepared, body)),
            Err(e) => Err(first_error.unwrap_or(e)),
        }
    }

    /// [`build`](Self::build) along one binding.
    fn build_along(&self, rule: HttpRule, mut value: Value) -> Result<(Prepared, Bytes), Status> {
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
            Some(v) => Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            None => Bytes::new(),
        };
        let prepared = Prepared {
            method: http::Method::from_bytes(rule.method.as_bytes()).map_err(|e| Status::internal(e.to_string()))?,
            uri: uri.parse().map_err(|e| Status::invalid_argument(format!("request URL `{uri}`: {e}")))?,
            headers: Vec::new(),
            content_type: (!rule.body.is_empty()).then(|| HeaderValue::from_static("application/json")),
            accept: HeaderValue::from_static("application/json, application/x-ndjson"),
            accept_if_absent: false,
        };
        Ok((prepared, body))
    }

    /// The request line and headers of a request stream along `method`'s first binding, and
    /// its NDJSON body (sent once).
    fn build_streaming<Req: Serialize + Send + 'static>(
        &self,
        method: &'static MethodDescriptor,
        stream: Streaming<Req>,
    ) -> Result<(HttpRule, Prepared, ReqBody), Status> {
        let rule = method.http.first().copied().unwrap_or_else(|| default_rule(method));
        let template = Template::parse_http(rule.path).map_err(|e| Status::internal(e.to_string()))?;
        if !template.variables.is_empty() {
            return Err(Status::unimplemented(format!(
                "`{}` streams its requests, so its REST binding cannot take path variables",
                method.name
            )));
        }
        let path = expand(&template, |_| None).map_err(Status::internal)?;
        let frames = stream.map(|item| -> Result<http_body::Frame<Bytes>, BoxError> {
            let message = item.map_err(|s| Box::new(s) as BoxError)?;
            let mut line = decode::to_json(&message)?;
            line.push(b'\n');
            Ok(http_body::Frame::data(Bytes::from(line)))
        });
        let body = BodyExt::boxed(StreamBody::new(frames));
        let uri = format!("{}{}", self.base, path);
        let prepared = Prepared {
            method: http::Method::from_bytes(rule.method.as_bytes()).map_err(|e| Status::internal(e.to_string()))?,
            uri: uri.parse().map_err(|e| Status::invalid_argument(format!("request URL `{uri}`: {e}")))?,
            headers: Vec::new(),
            content_type: Some(HeaderValue::from_static("application/x-ndjson")),
            accept: HeaderValue::from_static("application/json, application/x-ndjson"),
            accept_if_absent: false,
        };
        Ok((rule, prepared, body))
    }
}

/// Whether a header of a [`Prepared`] request is added next to the metadata's (`append`) or
/// replaces it (`insert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    Append,
    Insert,
}

/// A request encoded once, before its first attempt: request line and the headers that go after
/// the call's metadata (in order). Each attempt sends it with the attempt's metadata.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    /// Parameter and credential headers, in order.
    pub(crate) headers: Vec<(HeaderName, HeaderValue, Put)>,
    /// `Content-Type`, replacing any in the metadata.
    pub(crate) content_type: Option<HeaderValue>,
    /// `Accept`: replacing any in the metadata, or only where the metadata has none.
    pub(crate) accept: HeaderValue,
    pub(crate) accept_if_absent: bool,
}

impl Prepared {
    /// The HTTP request of one attempt of `call` (by reference: the request line is copied).
    fn request(&self, call: Call, body: ReqBody) -> http::Request<ReqBody> {
        self.finish(call, self.method.clone(), self.uri.clone(), body)
    }

    /// The HTTP request of the only attempt of `call`.
    fn into_request(mut self, call: Call, body: ReqBody) -> http::Request<ReqBody> {
        let method = std::mem::take(&mut self.method);
        let uri = std::mem::take(&mut self.uri);
        self.finish(call, method, uri, body)
    }

    fn finish(&self, mut call: Call, method: http::Method, uri: http::Uri, body: ReqBody) -> http::Request<ReqBody> {
        let mut req = http::Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        *headers = call.header_metadata().into_headers();
        for (name, value, put) in &self.headers {
            match put {
                Put::Append => headers.append(name.clone(), value.clone()),
                Put::Insert => headers.insert(name.clone(), value.clone()).is_some(),
            };
        }
        if let Some(ct) = &self.content_type {
            headers.insert(CONTENT_TYPE, ct.clone());
        }
        if !self.accept_if_absent || !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, self.accept.clone());
        }
        req
    }
}

/// Where an attempt's body comes from: bytes encoded once (sent again as they are), or a
/// request stream (sent once).
pub(crate) enum Source {
    Bytes(Bytes),
    Stream(Once<ReqBody>),
}

fn full(bytes: Bytes) -> ReqBody {
    Full::new(bytes).map_err(|e| match e {}).boxed()
}

impl Source {
    fn again(&self, call: &Call) -> Result<ReqBody, Status> {
        match self {
            Source::Bytes(b) => Ok(full(b.clone())),
            Source::Stream(s) => s.take(call),
        }
    }
    fn once(self) -> Result<ReqBody, Status> {
        match self {
            Source::Bytes(b) => Ok(full(b)),
            Source::Stream(s) => s.into_inner(),
        }
    }
}

/// How an attempt reads its answer into `Message`.
pub(crate) trait Answer: Copy + Send + Sync {
    type Message: Send + 'static;
    fn read<'a>(
        self,
        client: &'a RestClient,
        request: http::Request<ReqBody>,
        deadline: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<Response<Self::Message>, Status>>;
}

/// One REST call's attempts: the encoded request, its body source and how to read the answer.
pub(crate) struct Attempt<'c, A> {
    pub(crate) client: &'c RestClient,
    pub(crate) prepared: Prepared,
    pub(crate) body: Source,
    pub(crate) answer: A,
}

impl<A: Answer> Exchange for Attempt<'_, A> {
    type Message = A::Message;

    fn send(&self, call: Call) -> BoxFuture<'_, Result<Response<A::Message>, Status>> {
        let deadline = call.deadline();
        let limit = crate::client::ResponseLimit::of(&call);
        match self.body.again(&call) {
            Ok(body) => {
                let mut request = self.prepared.request(call, body);
                if let Some(limit) = limit {
                    request.extensions_mut().insert(crate::client::ResponseLimit(limit));
                }
                self.answer.read(self.client, request, deadline)
            }
            Err(status) => Box::pin(std::future::ready(Err(status))),
        }
    }

    fn send_once<'a>(self, call: Call) -> BoxFuture<'a, Result<Response<A::Message>, Status>>
    where
        Self: 'a,
    {
        let deadline = call.deadline();
        match self.body.once() {
            Ok(body) => self.answer.read(self.client, self.prepared.into_request(call, body), deadline),
            Err(status) => Box::pin(std::future::ready(Err(status))),
        }
    }
}

/// A whole JSON answer, decoded into `Resp` (its `response_body` field, if the binding names one).
pub(crate) struct One<Resp> {
    response_body: &'static str,
    resp: PhantomData<fn() -> Resp>,
}

impl<Resp> Clone for One<Resp> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Resp> Copy for One<Resp> {}

impl<Resp> One<Resp> {
    fn new(response_body: &'static str) -> Self {
        One { response_body, resp: PhantomData }
    }
}

impl<Resp: DeserializeOwned + Send + 'static> Answer for One<Resp> {
    type Message = Resp;
    fn read<'a>(
        self,
        client: &'a RestClient,
        request: http::Request<ReqBody>,
        _: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<Response<Resp>, Status>> {
        Box::pin(async move {
            let (parts, body) = client.exchange(request).await?;
            if !parts.status.is_success() {
                return Err(error_from(parts.status, &parts.headers, &body));
            }
            let message = decode_response::<Resp>(&body, self.response_body)?;
            Ok(Response::from_parts(MetadataMap::from_headers(parts.headers), message, http::Extensions::new()))
        })
    }
}

/// An NDJSON answer, read as a stream of `Resp` under the call's deadline.
pub(crate) struct Many<Resp> {
    response_body: &'static str,
    resp: PhantomData<fn() -> Resp>,
}

impl<Resp> Clone for Many<Resp> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Resp> Copy for Many<Resp> {}

impl<Resp> Many<Resp> {
    fn new(response_body: &'static str) -> Self {
        Many { response_body, resp: PhantomData }
    }
}

impl<Resp: DeserializeOwned + Send + 'static> Answer for Many<Resp> {
    type Message = Streaming<Resp>;
    fn read<'a>(
        self,
        client: &'a RestClient,
        request: http::Request<ReqBody>,
        deadline: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<Response<Streaming<Resp>>, Status>> {
        Box::pin(async move {
            let response = client.send(request).await?;
            let (parts, body) = response.into_parts();
            if !parts.status.is_success() {
                let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                return Err(error_from(parts.status, &parts.headers, &body));
            }
            Ok(Response::from_parts(
                MetadataMap::from_headers(parts.headers),
                ndjson_stream(body, self.response_body, deadline),
                http::Extensions::new(),
            ))
        })
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

/// The messages of an NDJSON answer; past `deadline` (the call's) the stream ends with
/// DEADLINE_EXCEEDED.
fn ndjson_stream<Resp: DeserializeOwned + Send + 'static>(
    body: hyper::body::Incoming,
    response_body: &'static str,
    deadline: Option<std::time::Instant>,
) -> Streaming<Resp> {
    let data = body.into_data_stream().map(|r| r.map_err(|e| Status::unavailable(format!("reading the response: {e}"))));
    let deadline = deadline.map(tokio::time::Instant::from_std);
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
