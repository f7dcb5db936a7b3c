//! Hand-written NATS request-reply on async-nats, the way one would write it without switchboard.
//!
//! - Server: one connection; a queue-group subscription to [`SUBJECT`] (group [`GROUP`], so
//!   several servers would share the requests); for each message: decode the `EchoMsg` and
//!   publish the reply to the message's reply subject, in the subscription loop.
//! - Client: one connection shared by every caller; each call is `Client::request` (async-nats's
//!   own request multiplexer: one `_INBOX.<id>.*` subscription, a reply subject per request).
//!
//! What it leaves out, next to switchboard: headers (method, deadline, message id, content type,
//! status on the reply), deadline checks and dedupe on the server, a task per request.
//!
//! A plain switchboard call over NATS carries no headers (`docs/queue-protocol.md`: the subject
//! names the method, the service fixes the encoding), so the bare loop is already its wire
//! twin. [`Fields`] (`--add`) adds the optional headers to price them: requests `sb-method`,
//! `content-type`, `Nats-Msg-Id`, `sb-deadline`; replies `sb-seq`, `sb-status` (which the client
//! then checks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bench::EchoMsg;

use crate::Fields;
use futures_util::StreamExt;
use prost::Message;

/// The request subject (not switchboard's `sb.rpc.*` names).
pub const SUBJECT: &str = "bench.baseline.Echo";
/// The servers' queue group.
pub const GROUP: &str = "bench.baseline";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Answers every request on [`SUBJECT`] with its own body. Calls `ready` once the subscription
/// is registered with the server; returns when the subscription ends.
pub async fn serve(url: &str, fields: Fields, ready: impl FnOnce()) -> Result<(), Error> {
    let client = async_nats::connect(url).await?;
    let mut requests = client.queue_subscribe(SUBJECT, GROUP.into()).await?;
    client.flush().await?;
    ready();
    while let Some(message) = requests.next().await {
        let Some(reply) = message.reply else { continue };
        let body = match EchoMsg::decode(message.payload) {
            Ok(request) => EchoMsg { body: request.body }.encode_to_vec(),
            Err(_) => Vec::new(),
        };
        if fields.any_reply() {
            let mut h = HeaderMap::new();
            if fields.seq {
                h.insert("sb-seq", "0");
            }
            if fields.status {
                h.insert("sb-status", "0");
            }
            client.publish_with_headers(reply, h, body.into()).await?;
        } else {
            client.publish(reply, body.into()).await?;
        }
    }
    Ok(())
}

/// A request-reply client over one connection.
#[derive(Clone)]
pub struct Client {
    client: async_nats::Client,
    fields: Fields,
    timeout: Duration,
    next_id: Arc<AtomicU64>,
}

impl Client {
    pub async fn connect(url: &str, timeout: Duration, fields: Fields) -> Result<Client, Error> {
        let client = async_nats::ConnectOptions::new()
            .request_timeout(Some(timeout))
            .connect(url)
            .await?;
        Ok(Client {
            client,
            fields,
            timeout,
            next_id: Arc::default(),
        })
    }

    /// One call: the reply, or an error (no responders, timeout, connection trouble).
    pub async fn call(&self, request: &EchoMsg) -> Result<EchoMsg, Error> {
        let payload = request.encode_to_vec().into();
        let f = self.fields;
        if !f.any_request() {
            let reply = self.client.request(SUBJECT, payload).await?;
            return check(f, reply);
        }
        let mut h = HeaderMap::new();
        if f.method {
            h.insert("sb-method", "Unary");
        }
        if f.content_type {
            h.insert("content-type", "application/protobuf");
        }
        if f.message_id {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            h.insert("Nats-Msg-Id", format!("bench-{id}"));
        }
        if f.deadline {
            let deadline = (SystemTime::now() + self.timeout).duration_since(UNIX_EPOCH)?;
            h.insert("sb-deadline", deadline.as_millis().to_string());
        }
        let reply = self
            .client
            .request_with_headers(SUBJECT, h, payload)
            .await?;
        check(f, reply)
    }
}

/// The reply's message, if its `sb-status` (when the fields include it) is 0.
fn check(fields: Fields, reply: async_nats::Message) -> Result<EchoMsg, Error> {
    if fields.status {
        let status = reply.headers.as_ref().and_then(|h| h.get("sb-status"));
        match status.map(|s| s.as_str()) {
            Some("0") => {}
            other => return Err(format!("reply status {other:?}").into()),
        }
    }
    Ok(EchoMsg::decode(reply.payload)?)
}
