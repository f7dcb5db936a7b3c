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

use std::marker::PhantomData;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::api::media::{classify, Media};
use crate::api::params::encode_params;
use crate::api::response::{received, variant_for, ResponseDe};
use crate::api::{Location, Operation, SchemeKind};
use super::client::{error_from, Answer, Attempt, ClientCredentials, Prepared, Put, ReqBody, Source};
use super::RestClient;
use crate::ServiceDescriptor;

impl RestClient {
    /// Calls the OpenAPI operation of method `index` of `service`: `Req` is its request struct,
    /// `Resp` its response enum. The request is encoded once; the client's layers may send it
    /// more than once.
    pub async fn api_unary<Req: Serialize, Resp: DeserializeOwned + Send + 'static>(
        &self,
        service: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let Some(op) = service.methods[index].operation else {
            return Err(Status::internal(format!("`{}` has no OpenAPI operation", service.methods[index].name)));
        };
        let (metadata, extensions, message) = request.into_parts();
        let fields = match serde_json::to_value(&message) {
            Ok(Value::Object(fields)) => fields,
            Ok(Value::Null) => Map::new(),
            Ok(_) => return Err(Status::invalid_argument(format!("`{}`: the request must serialize to a JSON object", op.id))),
            Err(e) => return Err(Status::invalid_argument(format!("encoding the request as JSON: {e}"))),
        };
        drop(message);
        let (prepared, body) = self.api_prepare(op, fields)?;
        let mut call = self.call_of(service, index, metadata, extensions);
        call.set_request_size(body.len());
        self.run(call, Attempt { client: self, prepared, body: Source::Bytes(body), answer: Variant::<Resp> { op, resp: PhantomData } }).await
    }

    /// The request line, parameter and credential headers and body of one call of `op`,
    /// encoded once.
    fn api_prepare(&self, op: &'static Operation, mut fields: Map<String, Value>) -> Result<(Prepared, Bytes), Status> {
        let encoded = encode_params(op.path, op.params, &fields).map_err(|e| Status::invalid_argument(format!("`{}`: {e}", op.id)))?;
        let mut uri = format!("{}{}", self.base, encoded.path);
        let mut query = encoded.query;
        let mut headers = Vec::new();
        let mut cookies: Vec<String> = Vec::new();
        for (name, value) in encoded.headers {
            if name.eq_ignore_ascii_case("cookie") {
                cookies.push(value);
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Status::invalid_argument(format!("header name `{name}`")))?;
            let value = HeaderValue::from_str(&value).map_err(|_| Status::invalid_argument(format!("header `{name}`: value is not valid in a header")))?;
            headers.push((name, value, Put::Append));
        }
        add_credentials(op, &self.credentials, &mut headers, &mut query, &mut cookies)?;
        if !cookies.is_empty() {
            let value = HeaderValue::from_str(&cookies.join("; ")).map_err(|_| Status::invalid_argument("cookie value"))?;
            headers.push((COOKIE, value, Put::Insert));
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query);
        }

        let mut body = Bytes::new();
        let mut content_type = None;
        if let Some(spec) = op.body {
            match fields.remove(spec.field).filter(|v| !v.is_null()) {
                Some(value) => {
                    let Some((bytes, ct)) = spec.content.iter().find_map(|mt| crate::api::body::encode(mt, &value)) else {
                        return Err(Status::invalid_argument(format!(
                            "`{}`: the body cannot be sent as any of {}",
                            op.id,
                            spec.content.join(", ")
                        )));
                    };
                    body = bytes;
                    content_type = Some(HeaderValue::from_str(&ct).map_err(|_| Status::internal("content type"))?);
                }
                None if spec.required => {
                    return Err(Status::invalid_argument(format!("`{}`: the request body `{}` is required", op.id, spec.field)));
                }
                None => {}
            }
        }
        let prepared = Prepared {
            method: http::Method::from_bytes(op.method.as_bytes()).map_err(|e| Status::internal(e.to_string()))?,
            uri: uri.parse().map_err(|e| Status::invalid_argument(format!("request URL `{uri}`: {e}")))?,
            headers,
            content_type,
            accept: accept(op),
            accept_if_absent: true,
        };
        Ok((prepared, body))
    }
}

/// An operation's answer: the response enum's variant for the status, or an error.
struct Variant<Resp> {
    op: &'static Operation,
    resp: PhantomData<fn() -> Resp>,
}

impl<Resp> Clone for Variant<Resp> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Resp> Copy for Variant<Resp> {}

impl<Resp: DeserializeOwned + Send + 'static> Answer for Variant<Resp> {
    type Message = Resp;
    fn read<'a>(
        self,
        client: &'a RestClient,
        request: http::Request<ReqBody>,
        _: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<Response<Resp>, Status>> {
        Box::pin(async move {
            let op = self.op;
            let (parts, body) = client.exchange(request).await?;
            let (index, received) = match variant_for(op.responses, parts.status.as_u16()) {
                Some(index) => (index, received(op, index, &body)),
                None => return Err(error_from(parts.status, &parts.headers, &body)),
            };
            let status = parts.status.as_u16();
            let de = ResponseDe { index, spec: &op.responses[index], status, body: received };
            match Resp::deserialize(de) {
                Ok(message) => Ok(Response::from_parts(MetadataMap::from_headers(parts.headers), message, http::Extensions::new())),
                // An error the server's own layers produced (401, 400 for a bad parameter, …) in a
                // shape the documented error type does not have.
                Err(_) if status >= 400 => Err(error_from(parts.status, &parts.headers, &body)),
                Err(e) => Err(Status::internal(format!("`{}`: unexpected {status} response: {e}", op.id))),
            }
        })
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
    headers: &mut Vec<(HeaderName, HeaderValue, Put)>,
    query: &mut String,
    cookies: &mut Vec<String>,
) -> Result<(), Status> {
    let Some(alternative) = creds.alternative(op) else { return Ok(()) };
    let invalid = |what: &str| Status::invalid_argument(format!("the client's {what} cannot be sent in a header"));
    for scheme in alternative {
        match (scheme.kind, creds) {
            (SchemeKind::Bearer, ClientCredentials { bearer: Some(token), .. }) => {
                let v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| invalid("bearer token"))?;
                headers.push((AUTHORIZATION, v, Put::Insert));
            }
            (SchemeKind::Basic, ClientCredentials { basic: Some((user, password)), .. }) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let v = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| invalid("Basic credentials"))?;
                headers.push((AUTHORIZATION, v, Put::Insert));
            }
            (SchemeKind::ApiKey { location, name }, ClientCredentials { api_key: Some(key), .. }) => match location {
                Location::Header => {
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("API key header name"))?;
                    headers.push((name, HeaderValue::from_str(key).map_err(|_| invalid("API key"))?, Put::Insert));
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
pub fn call<'a, Req: Serialize + 'a, Resp: DeserializeOwned + Send + 'static>(
    client: &'a RestClient,
    service: &'static ServiceDescriptor,
    index: usize,
    request: Request<Req>,
) -> impl std::future::Future<Output = Result<Response<Resp>, Status>> + 'a {
    client.api_unary(service, index, request)
}
