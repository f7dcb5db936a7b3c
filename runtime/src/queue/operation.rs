//! OpenAPI operations over queues: the operation contract (security, parameter and body
//! validation; `api::contract`) run on a request struct that arrived as JSON, and the handler's
//! response enum sent as status + media type + body.
//!
//! ```text
//! frame: JSON request struct ─▶ unavailable? (UNIMPLEMENTED) ─▶ credentials from metadata headers
//!   (UNAUTHENTICATED / hook) ─▶ each parameter and the body against its schema (INVALID_ARGUMENT
//!   naming the JSON pointer) ─▶ serde into the request struct ─▶ handler (the shared call path)
//!   ─▶ response enum variant ─▶ reply: `sb-http-status`, `content-type`, body
//! ```
//!
//! The wire form is specified in docs/queue-protocol.md ("OpenAPI operations").

#[cfg(feature = "openapi")]
pub(crate) use served::{prepare, unary};
#[cfg(feature = "openapi")]
pub(crate) use client::{call, put_credentials};

#[cfg(not(feature = "openapi"))]
pub(crate) use unserved::{prepare, unary};

#[cfg(feature = "openapi")]
mod served {
    use std::future::Future;

    use bytes::Bytes;
    use futures_util::future::BoxFuture;
    use http::header::HeaderName;
    use serde_json::Value;
    use tonic::{Request, Response, Status};

    use crate::api::contract::ApiService;
    use crate::api::security::{authenticate, Authorize, CredentialSource};
    use crate::call::{self, CallContext};
    use crate::dispatch::Carry;
    use crate::queue::call::{append, OpCall, Outcome, Queue, QueueCall, QueueDecoder, QueueEncoder};
    use crate::queue::wire::{self, Envelope};
    use crate::ServiceDescriptor;

    /// Per method index of `descriptor`: its operation, prepared (`None` for other methods).
    pub(crate) fn prepare(descriptor: &'static ServiceDescriptor, authorize: Option<&Authorize>) -> Result<Vec<Option<OpCall>>, Status> {
        let Some(api) = ApiService::build(descriptor).map_err(|e| Status::invalid_argument(format!("`{}`: {e}", descriptor.full_name)))? else {
            return Ok(vec![None; descriptor.methods.len()]);
        };
        Ok(api.ops.into_iter().map(|state| state.map(|state| OpCall { state, authorize: authorize.cloned() })).collect())
    }

    /// A frame's metadata headers as the place credentials travel: `authorization`, API key
    /// headers, `cookie`, and for an API key "in query" the entry named after the parameter.
    struct Metadata<'a>(&'a Envelope);

    impl CredentialSource for Metadata<'_> {
        fn header(&self, name: &HeaderName, pick: &mut dyn FnMut(&str) -> Option<String>) -> Option<String> {
            let name = name.as_str();
            self.0.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).find_map(|(_, v)| pick(v))
        }

        fn query(&self, name: &str) -> Option<String> {
            self.0.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string())
        }
    }

    /// Serves one call of an OpenAPI operation.
    pub(crate) fn unary<C, Req, Resp, F, Fut>(call: QueueCall, op: OpCall, handler: F) -> BoxFuture<'static, Outcome>
    where
        C: Send + Sync + 'static,
        Queue<C>: Carry<Req> + Carry<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        // The authorization hook is the user's code too.
        let prepared = call::caught(|| {
            let (ctx, message) = check(&call, &op)?;
            Ok((ctx, <Queue<C> as Carry<Req>>::decode(QueueDecoder::Json(message))?))
        });
        let (mut ctx, message) = match prepared {
            Ok(p) => p,
            Err(status) => return Box::pin(std::future::ready(Outcome::Unary(Err(status)))),
        };
        drop(call);
        Box::pin(async move {
            let result = ctx.run(message, handler).await;
            let result = call::caught(|| result.and_then(|mut response| {
                let trailers = call::take_trailers(&mut response);
                let (mut metadata, message, _) = response.into_parts();
                if let Some(trailers) = trailers {
                    append(&mut metadata, &trailers);
                }
                let mut captured = None;
                let mut unused = Bytes::new();
                let mut headers = Vec::new();
                <Queue<C> as Carry<Resp>>::encode(
                    &message,
                    QueueEncoder { body: &mut unused, headers: &mut headers, capture: Some((&op.state, &mut captured)) },
                )?;
                let captured = captured.ok_or_else(|| Status::internal("the response was not captured"))?;
                let (status, content_type, body) = op.state.answer(captured)?;
                headers.push((wire::HTTP_STATUS.into(), wire::number(status.into())));
                if let Some(ct) = content_type.and_then(|ct| ct.to_str().ok()) {
                    headers.push((wire::CONTENT_TYPE.into(), ct.to_owned().into()));
                }
                Ok((metadata, body, headers))
            }));
            Outcome::Unary(result)
        })
    }

    /// Everything before the handler: availability, encoding, credentials, validation.
    fn check(call: &QueueCall, op: &OpCall) -> Result<(CallContext, Value), Status> {
        let state = &op.state;
        if let Some(reason) = &state.unavailable {
            return Err(Status::unimplemented(reason.to_string()));
        }
        crate::queue::codec::check_content_type::<crate::queue::Json, Value>(&call.env)?;
        let credentials = if state.op.security.is_empty() {
            None
        } else {
            Some(authenticate(state.op, &state.security, &Metadata(&call.env), op.authorize.as_ref())?)
        };
        let message: Value = if call.env.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&call.env.body)
                .map_err(|e| Status::invalid_argument(format!("decoding the JSON body: {e}")))?
        };
        state.validate_message(&message)?;
        let mut ctx =
            CallContext::served(wire::metadata_of(&call.env), call.extensions(), call.deadline, call.observed_name(), crate::client::TransportKind::Queue);
        if let Some(creds) = credentials {
            ctx.extensions.insert(creds);
        }
        Ok((ctx, message))
    }
}

#[cfg(feature = "openapi")]
mod client {
    use tonic::{Code, Response, Status};

    use crate::api::response::{received, variant_for, ResponseDe};
    use crate::api::security::ClientCredentials;
    use crate::api::{Location, Operation, SchemeKind};
    use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

    /// Puts the client's credentials in `metadata` where docs/queue-protocol.md says the first
    /// security alternative of `op` they satisfy wants them (`authorization`, the API key's
    /// header, the query parameter's name, `cookie`). An entry the request already has is kept.
    pub(crate) fn put_credentials(op: &Operation, creds: &ClientCredentials, metadata: &mut MetadataMap) -> Result<(), Status> {
        let Some(alternative) = creds.alternative(op) else { return Ok(()) };
        let invalid = |what: &str| Status::invalid_argument(format!("the client's {what} cannot be sent as metadata"));
        let mut put = |name: &str, value: String| -> Result<(), Status> {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| invalid("credential name"))?;
            if !metadata.contains_key(&key) {
                metadata.insert(key, MetadataValue::try_from(value.as_str()).map_err(|_| invalid("credential"))?);
            }
            Ok(())
        };
        for scheme in alternative {
            match (scheme.kind, creds) {
                (SchemeKind::Bearer, ClientCredentials { bearer: Some(token), .. }) => put("authorization", format!("Bearer {token}"))?,
                (SchemeKind::Basic, ClientCredentials { basic: Some((user, password)), .. }) => {
                    use base64::Engine as _;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                    put("authorization", format!("Basic {encoded}"))?
                }
                (SchemeKind::ApiKey { location, name }, ClientCredentials { api_key: Some(key), .. }) => match location {
                    Location::Header | Location::Query => put(name, key.clone())?,
                    Location::Cookie => {
                        let value: String = percent_encoding::utf8_percent_encode(key, COOKIE_VALUE).collect();
                        put("cookie", format!("{name}={value}"))?
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
    use crate::queue::wire::{self, Envelope};

    /// The response enum from an operation's reply frame: `sb-http-status` picks the variant
    /// (exact code, then `NXX`, then `default`), the body fills it.
    pub(crate) fn call<Resp: serde::de::DeserializeOwned>(op: &'static Operation, frame: Envelope) -> Result<Response<Resp>, Status> {
        if let Some(status) = wire::status_of(&frame) {
            if status.code() != Code::Ok {
                return Err(status);
            }
        }
        let status: u16 = frame
            .header(wire::HTTP_STATUS)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Status::internal(format!("`{}`: the reply carries no `{}`", op.id, wire::HTTP_STATUS)))?;
        let Some(index) = variant_for(op.responses, status) else {
            return Err(Status::unknown(format!("`{}`: the reply's status {status} is not a documented response", op.id)));
        };
        let de = ResponseDe { index, spec: &op.responses[index], status, body: received(op, index, &frame.body) };
        let message = Resp::deserialize(de)
            .map_err(|e| Status::internal(format!("`{}`: the {status} reply could not be decoded: {e}", op.id)))?;
        Ok(Response::from_parts(wire::metadata_of(&frame), message, Default::default()))
    }
}

/// Built without the `openapi` feature: an operation is never served unchecked.
#[cfg(not(feature = "openapi"))]
mod unserved {
    use std::future::Future;

    use futures_util::future::BoxFuture;
    use tonic::{Request, Response, Status};

    use crate::dispatch::Carry;
    use crate::queue::call::{OpCall, Outcome, Queue, QueueCall};
    use crate::ServiceDescriptor;

    pub(crate) fn prepare(descriptor: &'static ServiceDescriptor, _: Option<&()>) -> Result<Vec<Option<OpCall>>, Status> {
        Ok(descriptor.methods.iter().map(|m| m.operation.map(|_| OpCall)).collect())
    }

    pub(crate) fn unary<C, Req, Resp, F, Fut>(call: QueueCall, _: OpCall, handler: F) -> BoxFuture<'static, Outcome>
    where
        C: Send + Sync + 'static,
        Queue<C>: Carry<Req> + Carry<Resp>,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        let _ = (call, handler);
        Box::pin(std::future::ready(Outcome::Unary(Err(Status::unimplemented(
            "OpenAPI operations are served over queues only with switchboard's `openapi` feature, which checks their credentials and schemas",
        )))))
    }
}
