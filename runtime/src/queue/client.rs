//! [`QueueClient`]: calls a service through a [`Broker`]. Generated `<Trait>QueueClient`s wrap
//! one and call the generic functions here with the method's descriptor.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

use super::codec::Codec;
use super::backend::{next_id, Registered};
use super::wire::{self, Envelope};
use super::Broker;
use crate::{ServiceDescriptor, Streaming};

/// Calls services through a broker. Cheap to clone; clones share the connection.
///
/// Every call has a deadline: the request's own (`Request::set_timeout`) or the client's
/// [`timeout`](QueueClient::timeout) (30 s unless set), so no caller waits forever on a server
/// that went away. The deadline travels in `sb-deadline`; a server drops requests that arrive
/// after it.
#[derive(Clone, Debug)]
pub struct QueueClient {
    broker: Broker,
    timeout: Duration,
    /// Whether `timeout` was set (then it travels as the deadline of every call).
    timeout_set: bool,
}

impl QueueClient {
    /// A client on `broker`.
    pub fn new(broker: &Broker) -> Self {
        QueueClient { broker: broker.clone(), timeout: Duration::from_secs(30), timeout_set: false }
    }

    /// Deadline for calls whose request sets none. Once set, it travels with every call
    /// (`sb-deadline`) and servers drop requests that arrive after it. Unset, calls still give up
    /// after 30 s, but servers are not told.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.timeout_set = true;
        self
    }

    /// The broker this client calls through.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Request envelope: method, content type (events only), message id (the caller's idempotency key; always
    /// one for events), deadline (when the request or the client asks for one), metadata.
    fn envelope<C: Codec<Req>, Req>(
        &self,
        method: &'static str,
        request: Request<Req>,
        event: bool,
    ) -> Result<(Envelope, Instant), Status> {
        let (metadata, _, message) = request.into_parts();
        let asked = metadata.get("grpc-timeout").and_then(|v| crate::context::parse_grpc_timeout(v.as_bytes()));
        let timeout = asked.map_or(self.timeout, |t| t.min(self.timeout));
        let mut env = Envelope::default();
        env.headers.reserve(4 + metadata.len());
        env.push(wire::METHOD, method);
        // A service has one encoding, so a call leaves `content-type` out (and its replies then
        // do too: they copy the request's). Events carry it: they are stored, and other programs
        // may read them off the queue.
        if event {
            env.push(wire::CONTENT_TYPE, C::CONTENT_TYPE);
        }
        let key = metadata.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(id) = key.or_else(|| event.then(next_id)) {
            env.push(wire::MESSAGE_ID, id);
        }
        if !event && (asked.is_some() || self.timeout_set) {
            env.push(wire::DEADLINE, wire::encode_deadline(SystemTime::now() + timeout));
        }
        wire::push_metadata(&mut env, &metadata);
        env.body = C::encode(&message, &mut env.headers)?;
        Ok((env, Instant::now() + timeout))
    }

    async fn send(
        &self,
        desc: &'static ServiceDescriptor,
        method: &'static str,
        mut env: Envelope,
    ) -> Result<(Registered<'_>, mpsc::UnboundedReceiver<Result<Envelope, Status>>), Status> {
        let id = next_id();
        let rx = self.broker.replies().register(id.clone());
        let slot = Registered { replies: self.broker.replies(), id: id.clone() };
        env.correlation_id = Some(id);
        self.broker.backend().request(desc.full_name, method, env).await?;
        Ok((slot, rx))
    }

    /// Request-reply. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn unary<C, Req, Resp>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let method = desc.methods[index].name;
        let (env, deadline) = self.envelope::<C, Req>(method, request, false)?;
        let frame = self.broker.call(desc.full_name, method, env, deadline).await?;
        if let Some(status) = wire::status_of(&frame) {
            if status.code() != Code::Ok {
                return Err(status);
            }
        }
        let message = <C as Codec<Resp>>::decode(&frame.body, &frame).map_err(reply_decode_error)?;
        Ok(Response::from_parts(wire::metadata_of(&frame), message, Default::default()))
    }

    /// Calls the OpenAPI operation of method `index`: the request struct as JSON, the reply's
    /// `sb-http-status` and body read into the response enum (docs/queue-protocol.md).
    #[doc(hidden)]
    pub async fn operation<Req, Resp>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: serde::Serialize + serde::de::DeserializeOwned + 'static,
        Resp: serde::de::DeserializeOwned,
    {
        let method = &desc.methods[index];
        let Some(op) = method.operation else {
            return Err(Status::internal(format!("`{}` has no OpenAPI operation", method.name)));
        };
        let (env, deadline) = self.envelope::<super::Json, Req>(method.name, request, false)?;
        let frame = self.broker.call(desc.full_name, method.name, env, deadline).await?;
        operation_reply(op, frame)
    }

    /// Request, then a stream of reply frames. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn server_streaming<C, Req, Resp>(
        &self,
        desc: &'static ServiceDescriptor,
        index: usize,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        C: Codec<Req> + Codec<Resp>,
        Resp: Send + 'static,
    {
        let method = desc.methods[index].name;
        let (env, deadline) = self.envelope::<C, Req>(method, request, false)?;
        let (slot, mut rx) = self.send(desc, method, env).await?;
        let first = next_frame(&mut rx, deadline).await?;
        let metadata: MetadataMap = wire::metadata_of(&first);
        if let Some(status) = wire::status_of(&first) {
            // Ended at once: an error, or an empty stream.
            return if status.code() == Code::Ok {
                Ok(Response::from_parts(metadata, Streaming::empty(), Default::default()))
            } else {
                Err(status)
            };
        }
        let replies = self.broker.clone();
        let id = slot.id.clone();
        std::mem::forget(slot); // the stream owns the reply slot from here
        let state = StreamState { rx, deadline, expected: 0, pending: Some(first), done: false, broker: replies, id };
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            let frame = match st.pending.take() {
                Some(f) => Ok(f),
                None => next_frame(&mut st.rx, st.deadline).await,
            };
            let item = match frame {
                Err(status) => Some(Err(status)),
                Ok(frame) => {
                    let seq: Option<u64> = frame.header(wire::SEQ).and_then(|s| s.parse().ok());
                    if seq.is_some_and(|s| s != st.expected) {
                        Some(Err(Status::data_loss(format!(
                            "reply frame {} arrived where frame {} was expected",
                            seq.unwrap_or_default(),
                            st.expected
                        ))))
                    } else {
                        st.expected += 1;
                        match wire::status_of(&frame) {
                            Some(status) if status.code() == Code::Ok => None,
                            Some(status) => Some(Err(status)),
                            None => Some(<C as Codec<Resp>>::decode(&frame.body, &frame).map_err(reply_decode_error)),
                        }
                    }
                }
            };
            match item {
                Some(Ok(m)) => Some((Ok(m), st)),
                Some(Err(e)) => {
                    st.done = true;
                    Some((Err(e), st))
                }
                None => None,
            }
        });
        Ok(Response::from_parts(metadata, Streaming::new(stream), Default::default()))
    }

    /// Publishes an event: returns once the broker holds it. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn publish<C, Req>(&self, desc: &'static ServiceDescriptor, index: usize, request: Request<Req>) -> Result<(), Status>
    where
        C: Codec<Req>,
    {
        let method = desc.methods[index].name;
        // Events outlive their publisher: no deadline on the message itself.
        let (env, deadline) = self.envelope::<C, Req>(method, request, true)?;
        match tokio::time::timeout_at(deadline.into(), self.broker.backend().publish(desc.full_name, method, env)).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded("the broker did not confirm the event in time")),
        }
    }

    /// Client and bidi streaming calls, which queues do not carry. (Used by generated clients.)
    #[doc(hidden)]
    pub async fn unsupported<T>(&self, desc: &'static ServiceDescriptor, index: usize) -> Result<T, Status> {
        Err(Status::unimplemented(format!(
            "`{}` streams requests, which queues do not carry; call it over gRPC or REST",
            desc.methods[index].name
        )))
    }
}

struct StreamState {
    rx: mpsc::UnboundedReceiver<Result<Envelope, Status>>,
    deadline: Instant,
    expected: u64,
    pending: Option<Envelope>,
    done: bool,
    broker: Broker,
    id: String,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        self.broker.replies().remove(&self.id);
    }
}

async fn next_frame(rx: &mut mpsc::UnboundedReceiver<Result<Envelope, Status>>, deadline: Instant) -> Result<Envelope, Status> {
    match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        Ok(Some(frame)) => frame,
        Ok(None) => Err(Status::unavailable("the broker connection was lost")),
        Err(_) => Err(Status::deadline_exceeded("deadline exceeded waiting for the reply")),
    }
}

fn reply_decode_error(status: Status) -> Status {
    Status::internal(format!("the reply could not be decoded: {}", status.message()))
}

#[cfg(feature = "openapi")]
fn operation_reply<Resp: serde::de::DeserializeOwned>(op: &'static crate::api::Operation, frame: Envelope) -> Result<Response<Resp>, Status> {
    super::operation::call(op, frame)
}

#[cfg(not(feature = "openapi"))]
fn operation_reply<Resp>(op: &'static crate::api::Operation, _: Envelope) -> Result<Response<Resp>, Status> {
    Err(Status::unimplemented(format!("`{}`: OpenAPI replies are read only with switchboard's `openapi` feature", op.id)))
}
