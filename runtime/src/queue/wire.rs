//! The wire format every broker carries (`docs/queue-protocol.md`): header names, addresses,
//! status, metadata and deadline encodings. Broker-neutral: backends map [`Envelope`]s to AMQP
//! properties and NATS headers.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use tonic::metadata::{KeyAndValueRef, MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// Method wire name (`SayHello`): on every request and event.
pub const METHOD: &str = "sb-method";
/// Media type of the body: `application/protobuf` or `application/json`.
pub const CONTENT_TYPE: &str = "content-type";
/// Message id (AMQP `message_id`, NATS `Nats-Msg-Id`): the dedupe key.
pub const MESSAGE_ID: &str = "message-id";
/// Absolute deadline, milliseconds since the Unix epoch.
pub const DEADLINE: &str = "sb-deadline";
/// Partition (ordering) key of a request or event, when it has one: from the field its method's
/// spec names, or the caller's [`PartitionKey`](super::PartitionKey). Kafka uses it as the record
/// key; other brokers carry it. Handlers see it as the `sb-key` entry of their request metadata.
pub const KEY: &str = "sb-key";
/// Delivery attempt of an event, 1-based (set when the runtime republishes it for a retry).
pub const ATTEMPT: &str = "sb-attempt";
/// Status code (gRPC numbering) on the frame that ends a call.
pub const STATUS: &str = "sb-status";
/// Status message, percent-encoded UTF-8 (as gRPC's `grpc-message`).
pub const STATUS_MESSAGE: &str = "sb-status-message";
/// Status details: base64 of a serialized `google.rpc.Status`.
pub const STATUS_DETAILS: &str = "sb-status-details";
/// Position of a reply frame in its call, from 0.
pub const SEQ: &str = "sb-seq";
/// On OpenAPI replies: the HTTP status of the response variant the handler chose.
pub const HTTP_STATUS: &str = "sb-http-status";
/// On a cancel frame: the correlation id of the request to stop (see [`cancel_address`]).
pub const CANCEL: &str = "sb-cancel";

/// `application/protobuf`: bodies of services generated from `.proto` files.
pub const PROTOBUF: &str = "application/protobuf";
/// `application/json`: bodies of OpenAPI services.
pub const JSON: &str = "application/json";

/// Queue (AMQP) of a service's requests: `sb.rpc.<service>`.
pub fn request_queue(service: &str) -> String {
    format!("sb.rpc.{service}")
}

/// Subject (NATS) of one method's requests: `sb.rpc.<service>.<method>`.
pub fn request_subject(service: &str, method: &str) -> String {
    format!("sb.rpc.{service}.{method}")
}

/// Durable queue (AMQP) or subject (NATS) of one method's events: `sb.event.<service>.<method>`.
pub fn event_address(service: &str, method: &str) -> String {
    format!("sb.event.{service}.{method}")
}

/// Dead-letter queue (AMQP) or subject (NATS) of one method's events: `sb.dlq.<service>.<method>`.
pub fn dead_letter_address(service: &str, method: &str) -> String {
    format!("sb.dlq.{service}.{method}")
}

/// Where cancel frames for a service's requests go: `sb.cancel.<service>`. Every server of the
/// service hears every one (RabbitMQ: routing key on `amq.topic`, each server binding a queue of
/// its own; NATS: a subject each server subscribes to without a queue group).
pub fn cancel_address(service: &str) -> String {
    format!("sb.cancel.{service}")
}

/// JetStream stream holding a service's events and dead letters: `SB_` + the service name with
/// every character outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn stream_name(service: &str) -> String {
    let mut name = String::with_capacity(service.len() + 3);
    name.push_str("SB_");
    name.extend(service.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }));
    name
}

/// A header name or value: borrowed when it is a constant (no allocation on the hot path),
/// owned when it came off the wire.
pub type Str = Cow<'static, str>;

/// A message as brokers carry it: headers (lower-case names), body, and the two routing
/// properties request-reply needs.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// Header names and values, in order. Names are lower case.
    pub headers: Vec<(Str, Str)>,
    /// The encoded message.
    pub body: Bytes,
    /// Where replies go (AMQP `reply_to`, NATS reply subject).
    pub reply_to: Option<String>,
    /// Which call a reply belongs to (AMQP `correlation_id`; on NATS the reply subject's last token).
    pub correlation_id: Option<String>,
}

impl Envelope {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    /// Appends a header.
    pub fn push(&mut self, name: impl Into<Str>, value: impl Into<Str>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Sets header `name`, replacing any value it had.
    pub fn set(&mut self, name: &str, value: impl Into<Str>) {
        let value = value.into();
        match self.headers.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.headers.push((Cow::Owned(name.to_owned()), value)),
        }
    }

    /// The deadline header, if any.
    pub fn deadline(&self) -> Option<SystemTime> {
        let ms: u64 = self.header(DEADLINE)?.trim().parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The event attempt header (1 when absent).
    pub fn attempt(&self) -> u32 {
        self.header(ATTEMPT).and_then(|a| a.trim().parse().ok()).unwrap_or(1)
    }
}

/// `sb-deadline` value for `deadline`.
pub fn encode_deadline(deadline: SystemTime) -> String {
    let ms = deadline.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    ms.to_string()
}

/// Whether a header carries call metadata (not a protocol or broker header).
pub fn is_metadata(name: &str) -> bool {
    !(name.starts_with("sb-")
        || name.starts_with("nats-")
        || name.starts_with("x-death")
        || name.starts_with("x-first-death")
        || name.starts_with("x-last-death")
        || name == "x-delivery-count"
        || name == "x-received-from"
        || name == CONTENT_TYPE
        || name == MESSAGE_ID
        || name == "grpc-timeout"
        || name == "te"
        || name == "user-agent"
        || is_cloudevents_attribute(name))
}

/// The CloudEvents 1.0 attributes switchboard writes on Kafka events (binary mode). They mirror
/// protocol headers (`sb-message-id`, `sb-method`, the publish time), so they are not call
/// metadata; other `ce_*` headers (a producer's extension attributes) are.
pub(crate) fn is_cloudevents_attribute(name: &str) -> bool {
    matches!(name, "ce_specversion" | "ce_id" | "ce_source" | "ce_type" | "ce_time")
}

/// Appends `metadata` as headers: ASCII values as they are, `-bin` values in base64.
pub fn push_metadata(env: &mut Envelope, metadata: &MetadataMap) {
    for kv in metadata.iter() {
        match kv {
            KeyAndValueRef::Ascii(k, v) => {
                if is_metadata(k.as_str()) {
                    if let Ok(v) = v.to_str() {
                        env.push(k.as_str().to_owned(), v.to_owned());
                    }
                }
            }
            KeyAndValueRef::Binary(k, v) => {
                if is_metadata(k.as_str()) {
                    if let Ok(bytes) = v.to_bytes() {
                        env.push(k.as_str().to_owned(), base64::engine::general_purpose::STANDARD.encode(bytes));
                    }
                }
            }
        }
    }
}

/// The metadata headers of `env` (others are skipped; invalid names or values are dropped).
pub fn metadata_of(env: &Envelope) -> MetadataMap {
    let mut md = MetadataMap::new();
    for (k, v) in &env.headers {
        // Backends lower-case names; anything else is not valid metadata anyway.
        let k: &str = k;
        // `sb-key` is a protocol header that handlers also read (it is not sent on from there).
        if !is_metadata(k) && k != KEY {
            continue;
        }
        if k.ends_with("-bin") {
            let Ok(key) = MetadataKey::from_bytes(k.as_bytes()) else { continue };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(v.trim_end_matches('=')));
            if let Ok(bytes) = bytes {
                md.append_bin(key, MetadataValue::from_bytes(&bytes));
            }
        } else if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(k.as_bytes()), v.parse()) {
            md.append(key, value);
        }
    }
    md
}

/// Writes `status` onto a final frame: code, message, details.
pub fn push_status(env: &mut Envelope, status: &Status) {
    env.push(STATUS, number(status.code() as i32 as u64));
    if !status.message().is_empty() {
        env.push(STATUS_MESSAGE, percent_encode(status.message()));
    }
    if !status.details().is_empty() {
        env.push(STATUS_DETAILS, base64::engine::general_purpose::STANDARD.encode(status.details()));
    }
}

/// The status a final frame carries (`None` on a data frame).
pub fn status_of(env: &Envelope) -> Option<Status> {
    let code = env.header(STATUS)?;
    let code = match code.trim().parse::<i32>() {
        Ok(c) => Code::from_i32(c),
        Err(_) => return Some(Status::internal(format!("malformed {STATUS} header {code:?}"))),
    };
    let message = env.header(STATUS_MESSAGE).map(percent_decode).unwrap_or_default();
    let details = env
        .header(STATUS_DETAILS)
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .unwrap_or_default();
    let metadata = metadata_of(env);
    Some(Status::with_details_and_metadata(code, message, Bytes::from(details), metadata))
}

/// A small number as a header value, without allocating for the common ones.
pub fn number(n: u64) -> Str {
    const SMALL: [&str; 20] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19"];
    match SMALL.get(n as usize) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(n.to_string()),
    }
}

/// Percent-encodes bytes outside printable ASCII, and `%` itself.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`percent_encode`]; invalid escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_headers() {
        let status = Status::with_details(Code::NotFound, "no book «42» 100%", Bytes::from_static(b"\x08\x05"));
        let mut env = Envelope::default();
        push_status(&mut env, &status);
        assert_eq!(env.header(STATUS), Some("5"));
        assert_eq!(env.header(STATUS_MESSAGE), Some("no book %C2%AB42%C2%BB 100%25"));
        let back = status_of(&env).unwrap();
        assert_eq!(back.code(), Code::NotFound);
        assert_eq!(back.message(), "no book «42» 100%");
        assert_eq!(back.details(), b"\x08\x05");
    }

    #[test]
    fn metadata_round_trips_and_protocol_headers_are_not_metadata() {
        let mut md = MetadataMap::new();
        md.insert("x-user", "ada".parse().unwrap());
        md.insert("tenant", "blue".parse().unwrap());
        md.insert_bin("trace-bin", MetadataValue::from_bytes(b"\x00\x01\xff"));
        let mut env = Envelope::default();
        env.push(METHOD, "Get");
        push_metadata(&mut env, &md);
        let back = metadata_of(&env);
        assert_eq!(back.get("tenant").unwrap(), "blue");
        assert_eq!(back.get_bin("trace-bin").unwrap().to_bytes().unwrap().as_ref(), b"\x00\x01\xff");
        assert_eq!(back.get("x-user").unwrap(), "ada");
        assert!(back.get(METHOD).is_none());
        // CloudEvents attributes mirror protocol headers; a producer's extension attributes are metadata.
        let mut env = Envelope::default();
        env.push("ce_id", "m-1");
        env.push("ce_type", "a.B.C");
        env.push("ce_tenant", "blue");
        let back = metadata_of(&env);
        assert!(back.get("ce_id").is_none() && back.get("ce_type").is_none());
        assert_eq!(back.get("ce_tenant").unwrap(), "blue");
    }

    #[test]
    fn names() {
        assert_eq!(stream_name("grpc.testing.TestService"), "SB_grpc_testing_TestService");
        assert_eq!(request_subject("a.B", "C"), "sb.rpc.a.B.C");
        assert_eq!(cancel_address("a.B"), "sb.cancel.a.B");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%é%41"), "%éA");
        assert!(!is_metadata("x-death") && !is_metadata("sb-seq") && is_metadata("x-request-id"));
    }
}
