//! Hand-written RabbitMQ request-reply on lapin, the way one would write it without switchboard.
//!
//! - Server: one connection; a channel with `basic.qos(prefetch)` consuming the transient
//!   (auto-delete) queue [`QUEUE`] with manual acks; each delivery is handled in its own task:
//!   decode the `EchoMsg`, publish the reply (default exchange, routing key = the request's
//!   `reply_to`, the request's `correlation_id`) on a second channel, then ack.
//! - Client: one connection and one channel, consuming RabbitMQ's direct reply-to pseudo-queue
//!   `amq.rabbitmq.reply-to` (no-ack, as direct reply-to requires); each call publishes the
//!   request with `reply_to = amq.rabbitmq.reply-to` and a fresh numeric `correlation_id`, and
//!   waits on a oneshot channel that the reply consumer completes, looked up by correlation id.
//!
//! What it leaves out, next to switchboard: headers (method, deadline, message id, content type),
//! the request's `expiration`, `mandatory` publishes and returned-message handling, deadline
//! checks and dedupe on the server, reconnects.
//!
//! With [`Fields`] (`--protocol`, `--add`), requests and replies carry what switchboard's
//! protocol puts on them (`docs/queue-protocol.md`): on a plain call, requests the method as the
//! `type` property, published `mandatory`; optionally `content_type` (and on replies), `message_id`, `expiration`, the headers `sb-method` and `sb-deadline`, and on
//! replies `sb-seq` and `sb-status` (which the client then checks). That prices the protocol
//! apart from the rest of the runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bench::EchoMsg;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use prost::Message;
use tokio::sync::oneshot;

use crate::Fields;

/// The request queue (not switchboard's `sb.rpc.*` names: the two never share a queue).
pub const QUEUE: &str = "bench.baseline.Echo";
/// RabbitMQ's direct reply-to pseudo-queue.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Consumes [`QUEUE`] and answers every request with its own body. Calls `ready` once
/// consuming; returns when the consumer ends (the connection was lost).
pub async fn serve(
    url: &str,
    prefetch: u16,
    fields: Fields,
    ready: impl FnOnce(),
) -> Result<(), Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let requests = connection.create_channel().await?;
    let replies = connection.create_channel().await?;
    requests
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let transient = QueueDeclareOptions {
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    requests
        .queue_declare(QUEUE.into(), transient, FieldTable::default())
        .await?;
    let mut consumer = requests
        .basic_consume(
            QUEUE.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    ready();
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let replies = replies.clone();
        tokio::spawn(async move {
            let props = &delivery.properties;
            if let (Some(to), Some(id)) = (props.reply_to(), props.correlation_id()) {
                let body = match EchoMsg::decode(delivery.data.as_slice()) {
                    Ok(request) => EchoMsg { body: request.body }.encode_to_vec(),
                    Err(_) => Vec::new(),
                };
                let mut reply = BasicProperties::default().with_correlation_id(id.clone());
                if fields.reply_content_type {
                    reply = reply.with_content_type("application/protobuf".into());
                }
                if fields.seq || fields.status {
                    let mut table = FieldTable::default();
                    for (name, on) in [("sb-seq", fields.seq), ("sb-status", fields.status)] {
                        if on {
                            table.insert(name.into(), AMQPValue::LongString(LongString::from("0")));
                        }
                    }
                    reply = reply.with_headers(table);
                }
                let _ = replies
                    .basic_publish(
                        "".into(),
                        to.clone(),
                        BasicPublishOptions::default(),
                        &body,
                        reply,
                    )
                    .await;
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        });
    }
    Ok(())
}

/// Calls waiting for their reply, by correlation id.
/// (The reply body; `None` for a reply whose `sb-status` is not 0.)
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Option<Vec<u8>>>>>>;

fn status_ok(properties: &BasicProperties) -> bool {
    let status = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("sb-status"));
    matches!(status, Some(AMQPValue::LongString(s)) if s.as_bytes() == b"0")
}

/// A request-reply client over one channel.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    timeout: Duration,
    fields: Fields,
    _connection: Arc<Connection>,
}

impl Client {
    pub async fn connect(url: &str, timeout: Duration, fields: Fields) -> Result<Client, Error> {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let mut replies = channel
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                "".into(),
                no_ack,
                FieldTable::default(),
            )
            .await?;
        let pending = Pending::default();
        let routes = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = replies.next().await {
                let id = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .and_then(|id| id.as_str().parse().ok());
                if let Some(waiting) = id.and_then(|id| routes.lock().unwrap().remove(&id)) {
                    let ok = !fields.status || status_ok(&delivery.properties);
                    let _ = waiting.send(if ok { Some(delivery.data) } else { None });
                }
            }
        });
        Ok(Client {
            channel,
            pending,
            next_id: Arc::default(),
            timeout,
            fields,
            _connection: Arc::new(connection),
        })
    }

    /// One call: the reply, or an error (broker trouble or no reply within the timeout).
    pub async fn call(&self, request: &EchoMsg) -> Result<EchoMsg, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut props = BasicProperties::default()
            .with_reply_to(DIRECT_REPLY_TO.into())
            .with_correlation_id(id.to_string().into());
        let f = self.fields;
        let options = BasicPublishOptions {
            mandatory: f.mandatory,
            ..BasicPublishOptions::default()
        };
        if f.kind {
            props = props.with_type("Unary".into());
        }
        if f.content_type {
            props = props.with_content_type("application/protobuf".into());
        }
        if f.message_id {
            props = props.with_message_id(format!("bench-{id}").into());
        }
        if f.expiration {
            props = props.with_expiration(self.timeout.as_millis().to_string().into());
        }
        if f.method || f.deadline {
            let mut table = FieldTable::default();
            if f.method {
                let method = AMQPValue::LongString(LongString::from("Unary"));
                table.insert("sb-method".into(), method);
            }
            if f.deadline {
                let deadline = (SystemTime::now() + self.timeout).duration_since(UNIX_EPOCH)?;
                let deadline = LongString::from(deadline.as_millis().to_string());
                table.insert("sb-deadline".into(), AMQPValue::LongString(deadline));
            }
            props = props.with_headers(table);
        }
        let published = self
            .channel
            .basic_publish(
                "".into(),
                QUEUE.into(),
                options,
                &request.encode_to_vec(),
                props,
            )
            .await;
        let reply = match published {
            Ok(_) => tokio::time::timeout(self.timeout, rx).await,
            Err(e) => {
                self.pending.lock().unwrap().remove(&id);
                return Err(e.into());
            }
        };
        match reply {
            Ok(Ok(Some(body))) => Ok(EchoMsg::decode(body.as_slice())?),
            Ok(Ok(None)) => Err("the reply's sb-status is not 0".into()),
            Ok(Err(_)) => Err("the reply consumer ended".into()),
            Err(_) => {
                self.pending.lock().unwrap().remove(&id);
                Err("no reply in time".into())
            }
        }
    }
}
