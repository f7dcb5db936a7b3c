//! Serving one OpenAPI operation: what `#[service]` expansions call for methods with
//! `#[rpc(operation = ...)]`.
//!
//! ```text
//! route match ─▶ security (401 / hook) ─▶ parameters (params.rs) ─▶ validate ─▶ body by
//! Content-Type (415) ─▶ validate ─▶ serde into the request struct ─▶ handler ─▶ response enum
//! variant ─▶ status + media type from Operation::responses
//! ```
//!
//! Everything but the two serde steps is non-generic, so each operation adds little code.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::document::OpState;
use super::media::{self, classify, Media};
use super::params::{decode_params, RawRequest};
use super::response::{self, Body as Captured, Captured as Answer};
use super::security::{authenticate, Authorize};
use crate::rest::__glue::{run, Call, HttpResponse};
use crate::rest::call::CallContext;
use crate::rest::{error_response, Body};
use crate::Trailers;

/// The OpenAPI side of a matched request.
pub(crate) struct ApiCall {
    pub(crate) state: Arc<OpState>,
    /// The path variables' byte ranges in the request path, in template order.
    pub(crate) vars: Vec<Range<usize>>,
    pub(crate) authorize: Option<Authorize>,
}

/// One OpenAPI operation: the request struct from parameters and body, the response enum to
/// status and body.
pub fn unary<Req, Resp, F, Fut>(call: Call, f: F) -> BoxFuture<'static, HttpResponse>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let (mut ctx, state, fields) = match prepare(call).await {
            Ok(prepared) => prepared,
            Err(resp) => return resp,
        };
        let message = match from_fields::<Req>(fields) {
            Ok(m) => m,
            Err(status) => return error_response(&status),
        };
        let mut guard = ctx.cancellation.guard();
        let request = ctx.request(message);
        match run(ctx.deadline, &mut guard, f(request)).await {
            Ok(response) => {
                let (metadata, message, extensions) = response.into_parts();
                let answer = response::capture(&message, state.op.responses);
                respond(&state, metadata, &extensions, answer)
            }
            Err(status) => error_response(&status),
        }
    })
}

/// The request struct from its JSON object; errors name the field.
fn from_fields<Req: DeserializeOwned + 'static>(fields: Map<String, Value>) -> Result<Req, Status> {
    let value = if fields.is_empty() && crate::rest::decode::is_unit::<Req>() { Value::Null } else { Value::Object(fields) };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            Status::invalid_argument(format!("invalid request: {}", e.inner()))
        } else {
            Status::invalid_argument(format!("invalid value for field `{path}`: {}", e.inner()))
        }
    })
}

fn bad_request(message: String) -> HttpResponse {
    error_response(&Status::invalid_argument(message))
}

/// Everything before the handler: security, parameters, body, validation.
async fn prepare(mut call: Call) -> Result<(CallContext, Arc<OpState>, Map<String, Value>), HttpResponse> {
    let Some(api) = call.api.take() else {
        return Err(error_response(&Status::internal(format!("`{}` is not an OpenAPI operation", call.method.name))));
    };
    let state = api.state;
    let op = state.op;

    let credentials = if op.security.is_empty() {
        None
    } else {
        Some(authenticate(op, &call.parts, api.authorize.as_ref(), state.realm)?)
    };

    let mut fields = Map::new();
    {
        let path = call.parts.uri.path();
        let names = &state.template.names;
        let vars: Vec<(&str, &str)> =
            names.iter().zip(&api.vars).filter_map(|(n, r)| Some((*n, path.get(r.clone())?))).collect();
        let raw = RawRequest { path_vars: &vars, query: call.parts.uri.query(), headers: &call.parts.headers };
        decode_params(op.params, &raw, &mut fields).map_err(|e| bad_request(e.to_string()))?;
    }
    state.validate_params(&fields).map_err(bad_request)?;

    // The body's media type, checked before the body is read.
    let mut body_type = None;
    if let Some(spec) = op.body {
        let given = call.parts.headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("\u{0}"));
        body_type = match given {
            None => Some((0, None)),
            Some(ct) => match spec.content.iter().position(|doc| media::matches(doc, ct)) {
                Some(i) => Some((i, Some(ct.to_owned()))),
                None => return Err(unsupported(ct, spec.content)),
            },
        };
    }

    let mut ctx = call.context();
    if let Some(creds) = credentials {
        ctx.extensions.insert(creds);
    }
    if let (Some(spec), Some((index, given))) = (op.body, body_type) {
        let bytes: Bytes = call.read_body().await.map_err(|s| error_response(&s))?;
        if bytes.is_empty() {
            if spec.required {
                return Err(bad_request("the request body is required".to_owned()));
            }
        } else {
            let Some(documented) = spec.content.get(index) else {
                return Err(unsupported(given.as_deref().unwrap_or("none"), spec.content));
            };
            let content_type = given.as_deref().unwrap_or(media::concrete(documented));
            let value = super::body::decode(content_type, bytes, |name| state.property_shape(index, name))
                .await
                .map_err(bad_request)?;
            state.validate_body(index, &value).map_err(bad_request)?;
            fields.insert(spec.field.to_owned(), value);
        }
    }
    Ok((ctx, state, fields))
}

/// 415 naming what the operation takes.
fn unsupported(given: &str, accepted: &[&str]) -> HttpResponse {
    let given = if given == "\u{0}" { "(not text)" } else { given };
    let mut resp = bad_request(format!("Content-Type `{given}` is not accepted here; send one of: {}", accepted.join(", ")));
    *resp.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    resp
}

/// The HTTP response for the variant the handler chose.
fn respond(
    state: &OpState,
    metadata: MetadataMap,
    extensions: &http::Extensions,
    answer: Result<Answer, response::Error>,
) -> HttpResponse {
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return error_response(&Status::internal(format!("`{}`: {e}", state.op.id))),
    };
    let Some(spec) = state.op.responses.get(answer.index) else {
        return error_response(&Status::internal("the response variant has no documented response"));
    };
    let status = match (answer.status, spec.status.parse::<u16>()) {
        (Some(s), _) | (None, Ok(s)) => s,
        (None, Err(_)) => 500,
    };
    let Some(status) = http::StatusCode::from_u16(status).ok().filter(|s| s.as_u16() >= 200) else {
        return error_response(&Status::internal(format!("`{}` answered the status {status}", state.op.id)));
    };
    let (body, content_type) = match (answer.body, spec.content) {
        (Captured::None, _) | (_, None) => (Bytes::new(), None),
        (Captured::Json(bytes), Some(mt)) => (Bytes::from(bytes), Some(media::concrete(mt))),
        (Captured::Value(value), Some(mt)) => {
            let bytes = match (classify(mt), value) {
                (Media::Binary, value) => super::body::raw_bytes(value),
                (_, Value::String(s)) => s.into_bytes(),
                (_, value) => value.to_string().into_bytes(),
            };
            (Bytes::from(bytes), Some(media::concrete(mt)))
        }
    };
    let mut resp = http::Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    *headers = metadata.into_headers();
    if let Some(Trailers(trailers)) = extensions.get::<Trailers>() {
        headers.extend(trailers.clone().into_headers());
    }
    if let Some(ct) = content_type {
        match HeaderValue::from_str(ct) {
            Ok(v) => headers.insert(CONTENT_TYPE, v),
            Err(_) => headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        };
    }
    resp
}
