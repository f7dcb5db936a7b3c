//! Calling one OpenAPI operation with the REST client.
//!
//! The request struct is serialized to a JSON object; its parameter entries are placed by the
//! operation table (params.rs), its body entry is written in the first documented media type that
//! fits it, and the credentials set on the client go wherever the operation's first satisfiable
//! security alternative wants them. The response's status picks the variant of the response enum
//! (exact code, then `NXX`, then `default`); an undocumented status is an error `Status`.
//!
//! The base URL of the client is the server URL including any base path
//! (`http://host:8080/v1`): operation paths are appended to it as OpenAPI's `servers[].url` says.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::api::media::{classify, Media};
use crate::api::params::encode_params;
use crate::api::response::{received, variant_for, ResponseDe};
use crate::api::{Location, Operation, SchemeKind};
use super::client::{error_from, with_timeout, ClientCredentials, ReqBody};
use super::RestClient;
use crate::MethodDescriptor;

/// A received response, before the enum is built.
struct Raw {
    parts: http::response::Parts,
    body: Bytes,
}

impl RestClient {
    /// Calls the OpenAPI operation `op`: `Req` is its request struct, `Resp` its response enum.
    pub async fn api_unary<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        op: &'static Operation,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let (metadata, _, message) = request.into_parts();
        let fields = match serde_json::to_value(&message) {
            Ok(Value::Object(fields)) => fields,
            Ok(Value::Null) => Map::new(),
            Ok(_) => return Err(Status::invalid_argument(format!("`{}`: the request must serialize to a JSON object", op.id))),
            Err(e) => return Err(Status::invalid_argument(format!("encoding the request as JSON: {e}"))),
        };
        drop(message);
        let timeout = self.timeout_of(&metadata);
        let raw = with_timeout(timeout, self.api_exchange(op, metadata, fields)).await?;
        let (index, received) = match variant_for(op.responses, raw.parts.status.as_u16()) {
            Some(index) => (index, received(op, index, &raw.body)),
            None => return Err(error_from(raw.parts.status, &raw.parts.headers, &raw.body)),
        };
        let status = raw.parts.status.as_u16();
        let de = ResponseDe { index, spec: &op.responses[index], status, body: received };
        match Resp::deserialize(de) {
            Ok(message) => Ok(Response::from_parts(MetadataMap::from_headers(raw.parts.headers), message, http::Extensions::new())),
            // An error the server's own layers produced (401, 400 for a bad parameter, …) in a
            // shape the documented error type does not have.
            Err(_) if status >= 400 => Err(error_from(raw.parts.status, &raw.parts.headers, &raw.body)),
            Err(e) => Err(Status::internal(format!("`{}`: unexpected {status} response: {e}", op.id))),
        }
    }

    /// Builds the request, sends it and reads the whole answer.
    async fn api_exchange(
        &self,
        op: &'static Operation,
        metadata: MetadataMap,
        mut fields: Map<String, Value>,
    ) -> Result<Raw, Status> {
        let encoded = encode_params(op.path, op.params, &fields).map_err(|e| Status::invalid_argument(format!("`{}`: {e}", op.id)))?;
        let mut uri = format!("{}{}", self.base, encoded.path);
        let mut query = encoded.query;
        let mut headers = metadata.into_headers();
        let mut cookies: Vec<String> = Vec::new();
        for (name, value) in encoded.headers {
            if name.eq_ignore_ascii_case("cookie") {
                cookies.push(value);
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Status::invalid_argument(format!("header name `{name}`")))?;
            let value = HeaderValue::from_str(&value).map_err(|_| Status::invalid_argument(format!("header `{name}`: value is not valid in a header")))?;
            headers.append(name, value);
        }
        add_credentials(op, &self.credentials, &mut headers, &mut query, &mut cookies)?;
        if !cookies.is_empty() {
            let value = HeaderValue::from_str(&cookies.join("; ")).map_err(|_| Status::invalid_argument("cookie value"))?;
            headers.insert(COOKIE, value);
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query);
        }

        let mut body = Bytes::new();
        if let Some(spec) = op.body {
            match fields.remove(spec.field).filter(|v| !v.is_null()) {
                Some(value) => {
                    let Some((bytes, content_type)) = spec.content.iter().find_map(|mt| crate::api::body::encode(mt, &value)) else {
                        return Err(Status::invalid_argument(format!(
                            "`{}`: the body cannot be sent as any of {}",
                            op.id,
                            spec.content.join(", ")
                        )));
                    };
                    body = bytes;
                    let ct = HeaderValue::from_str(&content_type).map_err(|_| Status::internal("content type"))?;
                    headers.insert(CONTENT_TYPE, ct);
                }
                None if spec.required => {
                    return Err(Status::invalid_argument(format!("`{}`: the request body `{}` is required", op.id, spec.field)));
                }
                None => {}
            }
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, accept(op));
        }

        let body: ReqBody = Full::new(body).map_err(|e| match e {}).boxed();
        let mut req = http::Request::new(body);
        *req.method_mut() = http::Method::from_bytes(op.method.as_bytes()).map_err(|e| Status::internal(e.to_string()))?;
        *req.uri_mut() = uri.parse().map_err(|e| Status::invalid_argument(format!("request URL `{uri}`: {e}")))?;
        *req.headers_mut() = headers;
        let response = self.send(req).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| Status::unavailable(format!("reading the response: {e}")))?.to_bytes();
        Ok(Raw { parts, body })
    }
}

/// `Accept`: the media types the operation documents.
fn accept(op: &Operation) -> HeaderValue {
    let mut types: Vec<&str> = Vec::new();
    for mt in op.responses.iter().filter_map(|r| r.content) {
        if !types.contains(&mt) {
            types.push(mt);
        }
    }
    if types.is_empty() {
        return HeaderValue::from_static("*/*");
    }
    // Errors from the server's own layers are JSON.
    if !types.iter().any(|t| classify(t) == Media::Json) {
        types.push("application/json;q=0.5");
    }
    HeaderValue::from_str(&types.join(", ")).unwrap_or(HeaderValue::from_static("*/*"))
}

/// Puts the client's credentials where the first security alternative it can satisfy wants
/// them. With none satisfiable nothing is sent (the server answers 401).
fn add_credentials(
    op: &Operation,
    creds: &ClientCredentials,
    headers: &mut http::HeaderMap,
    query: &mut String,
    cookies: &mut Vec<String>,
) -> Result<(), Status> {
    let has = |kind: &SchemeKind| match kind {
        SchemeKind::Bearer => creds.bearer.is_some(),
        SchemeKind::Basic => creds.basic.is_some(),
        SchemeKind::ApiKey { location, .. } => creds.api_key.is_some() && *location != Location::Path,
    };
    let Some(alternative) = op.security.iter().find(|alt| alt.iter().all(|s| has(&s.kind))) else { return Ok(()) };
    let invalid = |what: &str| Status::invalid_argument(format!("the client's {what} cannot be sent in a header"));
    for scheme in *alternative {
        match (scheme.kind, creds) {
            (SchemeKind::Bearer, ClientCredentials { bearer: Some(token), .. }) => {
                let v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| invalid("bearer token"))?;
                headers.insert(AUTHORIZATION, v);
            }
            (SchemeKind::Basic, ClientCredentials { basic: Some((user, password)), .. }) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let v = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| invalid("Basic credentials"))?;
                headers.insert(AUTHORIZATION, v);
            }
            (SchemeKind::ApiKey { location, name }, ClientCredentials { api_key: Some(key), .. }) => match location {
                Location::Header => {
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("API key header name"))?;
                    headers.insert(name, HeaderValue::from_str(key).map_err(|_| invalid("API key"))?);
                }
                Location::Query => {
                    if !query.is_empty() {
                        query.push('&');
                    }
                    query.extend(form_urlencoded::byte_serialize(name.as_bytes()));
                    query.push('=');
                    query.extend(form_urlencoded::byte_serialize(key.as_bytes()));
                }
                Location::Cookie => {
                    let value = percent_encoding::utf8_percent_encode(key, COOKIE_VALUE);
                    cookies.push(format!("{name}={value}"));
                }
                Location::Path => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// Characters escaped in a cookie value.
const COOKIE_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\').add(b'%').add(b'=');

/// What `<Trait>RestClient` methods for operations call.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    client: &RestClient,
    method: &'static MethodDescriptor,
    request: Request<Req>,
) -> Result<Response<Resp>, Status> {
    match method.operation {
        Some(op) => client.api_unary(op, request).await,
        None => Err(Status::internal(format!("`{}` has no OpenAPI operation", method.name))),
    }
}
