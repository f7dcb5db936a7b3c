//! Partition keys: which messages a broker keeps in order relative to each other.
//!
//! A request or event carrying a key travels with an `sb-key` header (docs/queue-protocol.md).
//! Brokers that partition (Kafka) put messages with one key on one partition, in publish order,
//! and use the key as the record key; the others carry the header as it is. A handler reads it as
//! the `sb-key` entry of its request metadata.
//!
//! Where a key comes from, first match wins:
//! 1. the call: a [`PartitionKey`] in the request's extensions (`CallOptions::partition_key`);
//! 2. the spec: the request field a method names (`#[rpc(event, key = "order_id")]`, generated
//!    from `[(switchboard.key) = true]` in a `.proto` or `x-switchboard-key` in OpenAPI);
//! 3. none: a partitioning broker then keys the message by its message id.

use tonic::Request;

/// A call's partition key, set per call in the request's extensions (it wins over the key the
/// method's spec names); sent as the `sb-key` header.
///
/// ```
/// use switchboard::queue::PartitionKey;
/// let mut request = switchboard::Request::new(());
/// request.extensions_mut().insert(PartitionKey::new("customer-7"));
/// assert_eq!(PartitionKey::of(&request), Some("customer-7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey(pub String);

impl PartitionKey {
    /// A key.
    pub fn new(key: impl Into<String>) -> Self {
        PartitionKey(key.into())
    }

    /// The key `request` carries in its extensions, if any.
    pub fn of<M>(request: &Request<M>) -> Option<&str> {
        request.extensions().get::<PartitionKey>().map(|k| k.0.as_str())
    }
}

/// Gives `request` the key `field` computes from its message, unless the caller set one (a
/// [`PartitionKey`] extension). A field without a value (`None`) gives no key. (Used by
/// generated clients for methods whose spec names a key field.)
#[doc(hidden)]
pub fn default_key<M>(request: &mut Request<M>, field: impl FnOnce(&M) -> Option<String>) {
    if request.extensions().get::<PartitionKey>().is_some() {
        return;
    }
    if let Some(key) = field(request.get_ref()) {
        request.extensions_mut().insert(PartitionKey(key));
    }
}

/// The key text of a field's value: strings as they are, numbers in decimal (protobuf enums are
/// their number), booleans as `true` / `false`; `None` (JSON `null`) gives no key, anything else
/// its compact JSON. (Used by generated clients.)
#[doc(hidden)]
pub fn key_text<T: serde::Serialize + ?Sized>(value: &T) -> Option<String> {
    match serde_json::to_value(value).ok()? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// One step of a key field's path through an optional value: `&Option<T>` steps to its value,
/// if any. Generated clients call `(&value).key_step()`; method resolution picks this for
/// `Option`s and [`KeyStepPlain`] (one autoref later) for anything else.
#[doc(hidden)]
pub trait KeyStepOption<'a> {
    /// The value inside.
    type Inner: ?Sized;
    /// The value, if there is one.
    fn key_step(self) -> Option<&'a Self::Inner>;
}

impl<'a, T> KeyStepOption<'a> for &'a Option<T> {
    type Inner = T;
    fn key_step(self) -> Option<&'a T> {
        self.as_ref()
    }
}

/// One step of a key field's path through a plain value: itself (see [`KeyStepOption`]).
#[doc(hidden)]
pub trait KeyStepPlain<'a> {
    /// The value.
    type Inner: ?Sized;
    /// The value.
    fn key_step(self) -> Option<&'a Self::Inner>;
}

impl<'a, T: ?Sized> KeyStepPlain<'a> for &&'a T {
    type Inner = T;
    fn key_step(self) -> Option<&'a T> {
        Some(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_texts() {
        assert_eq!(key_text("order-1").as_deref(), Some("order-1"));
        assert_eq!(key_text(&42i32).as_deref(), Some("42"));
        assert_eq!(key_text(&u64::MAX).as_deref(), Some("18446744073709551615"));
        assert_eq!(key_text(&-7i64).as_deref(), Some("-7"));
        assert_eq!(key_text(&true).as_deref(), Some("true"));
        assert_eq!(key_text(&None::<String>), None);
    }

    #[test]
    fn steps_look_through_options() {
        struct Body {
            id: Option<u32>,
            name: String,
        }
        let with = Some(Body { id: Some(3), name: "n".into() });
        let b = (&with).key_step().unwrap();
        assert_eq!((&b.id).key_step(), Some(&3));
        assert_eq!((&b.name).key_step().map(String::as_str), Some("n"));
        let without: Option<Body> = None;
        assert!((&without).key_step().is_none());
    }

    #[test]
    fn the_callers_key_wins() {
        let mut request = Request::new(5u32);
        default_key(&mut request, key_text);
        assert_eq!(PartitionKey::of(&request), Some("5"));
        let mut request = Request::new(5u32);
        request.extensions_mut().insert(PartitionKey::new("mine"));
        default_key(&mut request, key_text);
        assert_eq!(PartitionKey::of(&request), Some("mine"));
    }
}
