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
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::api::contract::OpState;
use crate::api::media;
use crate::api::params::{decode_params, Fields, RawRequest};
use crate::api::response::{self, Captured as Answer};
use super::security::authenticate;
use crate::call::{self, CallContext};
use crate::dispatch::Carry;
use super::call::Call;
use super::carry::{DecodeFrom, EncodeTo, Rest, RestDecoder, RestEncoder};
use super::{error_response, Body, HttpResponse};

/// One OpenAPI operation: the request struct from parameters and body, the response enum to
/// status and body.
pub(crate) fn unary<Req, Resp, F, Fut>(mut call: Call, f: F) -> BoxFuture<'static, HttpResponse>
where
    Rest: Carry<Req> + Carry<Resp>,
    Req: Send + 'static,
    Resp: Send + 'static,
    F: FnOnce(Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    // Everything up to the body is synchronous and done here, so the future below (allocated
    // per request) holds only what the rest needs.
    let (mut ctx, state, mut fields, body) = match prepare(&mut call) {
        Ok(prepared) => prepared,
        Err(resp) => return Box::pin(std::future::ready(resp)),
    };
    let body = body.map(|b| (b, std::mem::replace(&mut call.body, Body::empty()), call.max_body));
    drop(call);
    Box::pin(async move {
        if let Some((to_read, body, max_body)) = body {
            // Boxed: requests without a body do not carry the body reader's state.
            if let Err(resp) = Box::pin(read_body(body, max_body, &state, to_read, &mut fields)).await {
                return resp;
            }
        }
        let message = match <Rest as Carry<Req>>::decode(RestDecoder(DecodeFrom::Fields(fields))) {
            Ok(m) => m,
            Err(status) => return error_response(&status),
        };
        match ctx.run(message, f).await {
            Ok(mut response) => {
                let trailers = call::take_trailers(&mut response);
                let (metadata, message, _) = response.into_parts();
                let mut answer = None;
                let encoded = <Rest as Carry<Resp>>::encode(&message, RestEncoder(EncodeTo::Capture { state: &state, out: &mut answer }));
                match (encoded, answer) {
                    (Ok(()), Some(answer)) => respond(&state, metadata, trailers, answer),
                    (Err(status), _) => error_response(&status),
                    (Ok(()), None) => error_response(&Status::internal("the response was not captured")),
                }
            }
            Err(status) => error_response(&status),
        }
    })
}

fn bad_request(message: String) -> HttpResponse {
    error_response(&Status::invalid_argument(message))
}

/// A body to read: the index of its documented media type and the request's `Content-Type`.
struct BodyToRead {
    index: usize,
    content_type: Option<String>,
}

type Prepared = (CallContext, Arc<OpState>, Fields, Option<BodyToRead>);

/// Everything before the body: security, parameters and their validation, the body's media type.
/// (The error is the finished answer; it is rare and handed straight back.)
#[allow(clippy::result_large_err)]
fn prepare(call: &mut Call) -> Result<Prepared, HttpResponse> {
    let Some(api) = call.api.take() else {
        return Err(error_response(&Status::internal(format!("`{}` is not an OpenAPI operation", call.method.name))));
    };
    let state = api.state;
    let op = state.op;
    // Fail closed: an operation whose schemas could not be compiled is not served unchecked.
    if let Some(reason) = &state.unavailable {
        return Err(error_response(&Status::unimplemented(reason.to_string())));
    }

    let credentials = if op.security.is_empty() {
        None
    } else {
        Some(authenticate(op, &state.security, &call.parts, api.authorize.as_ref(), state.realm)?)
    };

    let mut fields = Fields::with_capacity(op.params.len() + usize::from(op.body.is_some()));
    {
        let path = call.parts.uri.path();
        let names = &state.template.variables;
        let pairs = names.iter().zip(api.vars.iter()).filter_map(|(v, r)| Some((v.name, path.get(r)?)));
        // On the stack for the usual few variables.
        let mut inline = [("", ""); 8];
        let heap: Vec<(&str, &str)>;
        let vars: &[(&str, &str)] = if names.len() <= inline.len() {
            let mut n = 0;
            for (slot, pair) in inline.iter_mut().zip(pairs) {
                *slot = pair;
                n += 1;
            }
            &inline[..n]
        } else {
            heap = pairs.collect();
            &heap
        };
        let raw = RawRequest { path_vars: vars, query: call.parts.uri.query(), headers: &call.parts.headers };
        decode_params(op.params, &raw, &mut fields).map_err(|e| bad_request(e.to_string()))?;
    }
    state.validate_params(&mut fields).map_err(bad_request)?;

    // The body's media type, checked before the body is read.
    let mut body = None;
    if let Some(spec) = op.body {
        body = match call.parts.headers.get(CONTENT_TYPE) {
            None => Some(BodyToRead { index: 0, content_type: None }),
            Some(ct) => {
                let ct = ct.to_str().map_err(|_| unsupported("(not text)", spec.content))?;
                match spec.content.iter().position(|doc| media::matches(doc, ct)) {
                    Some(index) => Some(BodyToRead { index, content_type: Some(ct.to_owned()) }),
                    None => return Err(unsupported(ct, spec.content)),
                }
            }
        };
    }

    let (mut ctx, _) = call.context();
    if let Some(creds) = credentials {
        ctx.extensions.insert(creds);
    }
    Ok((ctx, state, fields, body))
}

/// Reads, decodes and validates the body into `fields`.
async fn read_body(
    raw: Body,
    max_body: usize,
    state: &OpState,
    body: BodyToRead,
    fields: &mut Fields,
) -> Result<(), HttpResponse> {
    let Some(spec) = state.op.body else { return Ok(()) };
    let bytes: Bytes = crate::rest::call::read_limited(raw, max_body).await.map_err(|s| error_response(&s))?;
    if bytes.is_empty() {
        if spec.required {
            return Err(bad_request("the request body is required".to_owned()));
        }
        return Ok(());
    }
    let Some(documented) = spec.content.get(body.index) else {
        return Err(unsupported(body.content_type.as_deref().unwrap_or("none"), spec.content));
    };
    let content_type = body.content_type.as_deref().unwrap_or(media::concrete(documented));
    let value = crate::api::body::decode(content_type, bytes, |name| state.property_shape(body.index, name))
        .await
        .map_err(bad_request)?;
    state.validate_body(body.index, &value).map_err(bad_request)?;
    fields.insert(spec.field, value);
    Ok(())
}

/// 415 naming what the operation takes.
fn unsupported(given: &str, accepted: &[&str]) -> HttpResponse {
    let mut resp = bad_request(format!("Content-Type `{given}` is not accepted here; send one of: {}", accepted.join(", ")));
    *resp.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    resp
}

/// The HTTP response for the variant the handler chose.
fn respond(
    state: &OpState,
    metadata: MetadataMap,
    trailers: Option<MetadataMap>,
    answer: Result<Answer, response::Error>,
) -> HttpResponse {
    let (status, content_type, body) = match state.answer(answer) {
        Ok(a) => a,
        Err(status) => return error_response(&status),
    };
    let Ok(status) = http::StatusCode::from_u16(status) else {
        return error_response(&Status::internal(format!("`{}` answered the status {status}", state.op.id)));
    };
    let mut resp = http::Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    *headers = metadata.into_headers();
    if let Some(trailers) = trailers {
        headers.extend(trailers.into_headers());
    }
    if let Some(ct) = content_type {
        headers.insert(CONTENT_TYPE, ct.clone());
    }
    resp
}
