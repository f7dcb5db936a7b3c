//! Envelopes as Kafka records and back: header mapping, the routing headers Kafka needs (it has
//! no reply-to or correlation-id properties), CloudEvents binary-mode attributes, topic names.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use tonic::Status;

use super::super::wire::{self, Envelope, Str};

/// Where a request's replies go: the caller's reply topic.
pub(crate) const REPLY_TO: &str = "sb-reply-to";
/// Which call a reply belongs to (every reply frame copies it from the request).
pub(crate) const CORRELATION_ID: &str = "sb-correlation-id";
/// The partition key the codegen sets (`sb-key`): the record key when present.
pub(crate) use super::super::wire::KEY;
/// On a record in the retry topic: when it is due, milliseconds since the Unix epoch.
pub(crate) const DUE: &str = "sb-due";
/// On retried and dead-lettered events: the topic the event was first published to.
pub(crate) const ORIGIN_TOPIC: &str = "sb-origin-topic";
/// … its partition there.
pub(crate) const ORIGIN_PARTITION: &str = "sb-origin-partition";
/// … and its offset there.
pub(crate) const ORIGIN_OFFSET: &str = "sb-origin-offset";

/// Kafka's limit on topic names.
const MAX_TOPIC: usize = 249;

/// `name` if Kafka takes it as a topic name (`[a-zA-Z0-9._-]`, at most 249 characters).
pub(crate) fn checked_topic(name: String) -> Result<String, Status> {
    let valid = !name.is_empty()
        && name.len() <= MAX_TOPIC
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    match valid {
        true => Ok(name),
        false => Err(Status::invalid_argument(format!("`{name}` is not a valid Kafka topic name ([a-zA-Z0-9._-], at most 249 characters)"))),
    }
}

/// A service's request topic: `sb.rpc.<service>`.
pub(crate) fn request_topic(service: &str) -> Result<String, Status> {
    checked_topic(wire::request_queue(service))
}

/// One event method's topic: `sb.event.<service>.<method>`.
pub(crate) fn event_topic(service: &str, method: &str) -> Result<String, Status> {
    checked_topic(wire::event_address(service, method))
}

/// One event method's dead-letter topic: `sb.dlq.<service>.<method>`.
pub(crate) fn dead_letter_topic(service: &str, method: &str) -> Result<String, Status> {
    checked_topic(wire::dead_letter_address(service, method))
}

/// A service's retry topic (every event method's failed attempts, due later): `sb.retry.<service>`.
pub(crate) fn retry_topic(service: &str) -> Result<String, Status> {
    checked_topic(format!("sb.retry.{service}"))
}

/// A service's cancel-frame topic: `sb.cancel.<service>`.
pub(crate) fn cancel_topic(service: &str) -> Result<String, Status> {
    checked_topic(wire::cancel_address(service))
}

/// A service's event consumer group, unless the connection names another: `sb.event.<service>`.
pub(crate) fn event_group(service: &str) -> String {
    format!("sb.event.{service}")
}

/// The group that consumes a service's retry topic: its event group's name and `.retry`
/// (`sb.event.<service>.retry` by default).
pub(crate) fn retry_group(event_group: &str) -> String {
    format!("{event_group}.retry")
}

/// A service's request consumer group: `sb.rpc.<service>` (the request topic's name).
pub(crate) fn request_group(service: &str) -> String {
    wire::request_queue(service)
}

/// The reader group of `Broker::dead_letters`: `sb.dlq-reader.<service>.<method>`.
pub(crate) fn dead_letter_group(service: &str, method: &str) -> String {
    format!("sb.dlq-reader.{service}.{method}")
}

/// Milliseconds since the Unix epoch, `delay` from now.
pub(crate) fn due_in(delay: Duration) -> String {
    let at = SystemTime::now() + delay;
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis().to_string()
}

/// The record key of an envelope: its `sb-key`, else its message id, else none.
pub(crate) fn key_of(env: &Envelope) -> Option<String> {
    env.header(KEY).or_else(|| env.header(wire::MESSAGE_ID)).map(str::to_owned)
}

/// An envelope's headers as Kafka record headers, with its routing properties as
/// `sb-reply-to` / `sb-correlation-id`.
pub(crate) fn to_headers(env: &Envelope) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(env.headers.len() + 2);
    for (name, value) in &env.headers {
        headers = headers.insert(Header { key: name.as_ref(), value: Some(value.as_ref()) });
    }
    if let Some(reply_to) = &env.reply_to {
        headers = headers.insert(Header { key: REPLY_TO, value: Some(reply_to.as_str()) });
    }
    if let Some(id) = &env.correlation_id {
        headers = headers.insert(Header { key: CORRELATION_ID, value: Some(id.as_str()) });
    }
    headers
}

/// Adds the CloudEvents binary-mode attributes (`ce_specversion`, `ce_id`, `ce_source`,
/// `ce_type`, `ce_time`) to an event. `content-type` is a protocol header already.
pub(crate) fn push_cloudevents(env: &mut Envelope, service: &str, method: &str) {
    let id = env.header(wire::MESSAGE_ID).map(str::to_owned);
    env.push("ce_specversion", "1.0");
    if let Some(id) = id {
        env.push("ce_id", id);
    }
    env.push("ce_source", format!("/switchboard/{service}"));
    env.push("ce_type", format!("{service}.{method}"));
    env.push("ce_time", chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    if env.header(wire::CONTENT_TYPE).is_none() {
        env.push(wire::CONTENT_TYPE, wire::PROTOBUF);
    }
}

/// A received record's headers and body as an envelope: names lower-cased, values as UTF-8
/// (invalid bytes replaced), `sb-reply-to` / `sb-correlation-id` moved to the routing fields.
/// The names switchboard itself writes (and a few constant values) are borrowed, not allocated.
pub(crate) fn envelope_of(message: &BorrowedMessage<'_>) -> Envelope {
    let body = bytes::Bytes::copy_from_slice(message.payload().unwrap_or_default());
    let mut env = Envelope { body, ..Envelope::default() };
    if let Some(headers) = message.headers() {
        env.headers.reserve(headers.count());
        for header in headers.iter() {
            let raw = header.value.unwrap_or_default();
            if header.key.eq_ignore_ascii_case(REPLY_TO) {
                env.reply_to = Some(String::from_utf8_lossy(raw).into_owned());
            } else if header.key.eq_ignore_ascii_case(CORRELATION_ID) {
                env.correlation_id = Some(String::from_utf8_lossy(raw).into_owned());
            } else {
                env.headers.push((name_of(header.key), value_of(raw)));
            }
        }
    }
    env
}

/// Header names switchboard writes, borrowed when a record carries them.
const KNOWN_NAMES: &[&str] = &[
    wire::MESSAGE_ID,
    wire::CONTENT_TYPE,
    wire::METHOD,
    wire::KEY,
    wire::ATTEMPT,
    wire::DEADLINE,
    wire::STATUS,
    wire::STATUS_MESSAGE,
    wire::STATUS_DETAILS,
    DUE,
    ORIGIN_TOPIC,
    ORIGIN_PARTITION,
    ORIGIN_OFFSET,
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "traceparent",
    "tracestate",
];

/// Header values that are the same on most records, borrowed when a record carries them.
const KNOWN_VALUES: &[&str] = &["1.0", wire::PROTOBUF, wire::JSON];

/// A header name, lower-cased (allocated only when it is not one of [`KNOWN_NAMES`]).
fn name_of(key: &str) -> Str {
    match KNOWN_NAMES.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        Some(k) => Cow::Borrowed(*k),
        None => Cow::Owned(key.to_ascii_lowercase()),
    }
}

/// A header value as UTF-8 (invalid bytes replaced).
fn value_of(raw: &[u8]) -> Str {
    match KNOWN_VALUES.iter().find(|v| v.as_bytes() == raw) {
        Some(v) => Cow::Borrowed(*v),
        None => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
    }
}

/// The `sb-due` time of a record, if it has one.
pub(crate) fn due_of(env: &Envelope) -> Option<SystemTime> {
    let ms: u64 = env.header(DUE)?.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert_eq!(event_topic("a.v1.Ledger", "Record").unwrap(), "sb.event.a.v1.Ledger.Record");
        assert_eq!(retry_topic("a.v1.Ledger").unwrap(), "sb.retry.a.v1.Ledger");
        assert!(event_topic("a b", "C").is_err());
        assert!(checked_topic("x".repeat(250)).is_err());
    }

    #[test]
    fn header_names_and_values() {
        assert!(matches!(name_of("Message-ID"), Cow::Borrowed("message-id")));
        assert_eq!(name_of("X-Custom"), "x-custom");
        assert!(matches!(value_of(b"1.0"), Cow::Borrowed("1.0")));
        assert_eq!(value_of(b"ab\xffc"), "ab\u{fffd}c");
    }

    #[test]
    fn keys() {
        let mut env = Envelope::default();
        assert_eq!(key_of(&env), None);
        env.push(wire::MESSAGE_ID, "m-1");
        assert_eq!(key_of(&env).as_deref(), Some("m-1"));
        env.push(KEY, "customer-7");
        assert_eq!(key_of(&env).as_deref(), Some("customer-7"));
    }
}
