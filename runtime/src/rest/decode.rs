//! Building a request message from an HTTP request: the JSON body, path variables and query
//! parameters, merged into one tree and handed to the message's proto3 JSON `Deserialize` impl.
//!
//! Values from the URL are text. The tree's deserializer reads text as whatever the message's
//! field asks for (a bool, a number, an enum name, a repeated field), so no type table is needed
//! here: the generated serde impls are the type table. Errors name the field through
//! `serde_path_to_error`.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use tonic::Status;

/// A deserialization error message.
#[derive(Debug)]
pub struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DeError {}
impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// A value in the merged request tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// A value from the JSON body.
    Json(serde_json::Value),
    /// One value from the path or the query string.
    Text(String),
    /// A query key given more than once (a repeated field).
    Texts(Vec<String>),
    /// An object assembled from dotted names (and from the body where the two overlap).
    Map(Vec<(String, Node)>),
}

impl Node {
    /// An empty object.
    pub fn empty() -> Self {
        Node::Map(Vec::new())
    }

    /// Sets the field at `path` (dotted proto or JSON names) to `value`. Values from the path
    /// replace what the body said; a repeated query key accumulates.
    pub fn insert(&mut self, path: &str, value: Node, replace: bool) -> Result<(), String> {
        let mut node = self;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if let Node::Json(serde_json::Value::Object(obj)) = node {
                let obj = std::mem::take(obj);
                *node = Node::Map(obj.into_iter().map(|(k, v)| (k, Node::Json(v))).collect());
            }
            let Node::Map(entries) = node else {
                return Err(format!("`{path}`: `{part}` is inside a field that is not a message"));
            };
            let camel = lower_camel(part);
            let idx = entries.iter().position(|(k, _)| k == part || *k == camel);
            if parts.peek().is_none() {
                match idx {
                    Some(i) if replace => entries[i] = (part.to_owned(), value),
                    Some(i) => match (&mut entries[i].1, value) {
                        (Node::Text(first), Node::Text(next)) => {
                            let first = std::mem::take(first);
                            entries[i].1 = Node::Texts(vec![first, next]);
                        }
                        (Node::Texts(all), Node::Text(next)) => all.push(next),
                        _ => return Err(format!("`{path}` is given twice")),
                    },
                    None => entries.push((part.to_owned(), value)),
                }
                return Ok(());
            }
            let i = match idx {
                Some(i) => i,
                None => {
                    entries.push((part.to_owned(), Node::empty()));
                    entries.len() - 1
                }
            };
            node = &mut entries[i].1;
        }
        Ok(())
    }
}

pub use crate::rest_names::lower_camel;

/// Whether `T` is `()`, which stands for `google.protobuf.Empty` in generated code (prost-build
/// maps it so). Its JSON is `{}`, not serde's `null`.
pub fn is_unit<T: 'static>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<()>()
}

fn unit<T: DeserializeOwned>() -> T {
    serde_json::from_value(serde_json::Value::Null).expect("() deserializes from null")
}

/// Serializes a message: `()` (Empty) as `{}`.
pub fn to_json<T: serde::Serialize + 'static>(message: &T) -> serde_json::Result<Vec<u8>> {
    if is_unit::<T>() { Ok(b"{}".to_vec()) } else { serde_json::to_vec(message) }
}

/// [`to_json`] as a value.
pub fn to_value<T: serde::Serialize + 'static>(message: &T) -> serde_json::Result<serde_json::Value> {
    if is_unit::<T>() { Ok(serde_json::Value::Object(Default::default())) } else { serde_json::to_value(message) }
}

/// Deserializes `T` from the tree; the error names the field.
pub fn from_node<T: DeserializeOwned + 'static>(node: Node) -> Result<T, Status> {
    if is_unit::<T>() {
        return match node {
            Node::Map(entries) if entries.is_empty() => Ok(unit()),
            Node::Json(serde_json::Value::Object(obj)) if obj.is_empty() => Ok(unit()),
            Node::Json(serde_json::Value::Null) => Ok(unit()),
            Node::Map(entries) => Err(Status::invalid_argument(format!(
                "unknown field `{}`: the request (google.protobuf.Empty) has no fields",
                entries[0].0
            ))),
            _ => Err(Status::invalid_argument("the request (google.protobuf.Empty) must be `{}`")),
        };
    }
    serde_path_to_error::deserialize(node).map_err(|e| invalid_field(e.path().to_string(), e.inner()))
}

/// `T` when the request gave nothing at all (no body, no path variables, no query): what
/// `{}` reads as for messages, and the zero value for the scalar types the wrapper well-known
/// types map to (`Request<String>` gets `""`), as proto3 defaults them.
pub fn from_nothing<T: DeserializeOwned + 'static>() -> Result<T, Status> {
    T::deserialize(Nothing).map_err(|e| Status::invalid_argument(format!("invalid request: {e}")))
}

/// A deserializer that gives every type its empty or zero value.
struct Nothing;

impl<'de> serde::Deserializer<'de> for Nothing {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_map(serde::de::value::MapDeserializer::new(std::iter::empty::<(String, String)>()))
    }
    fn deserialize_bool<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_bool(false)
    }
    fn deserialize_i64<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_i64(0)
    }
    fn deserialize_u64<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_u64(0)
    }
    fn deserialize_f64<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_f64(0.0)
    }
    fn deserialize_str<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_str("")
    }
    fn deserialize_bytes<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_bytes(&[])
    }
    fn deserialize_option<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_none()
    }
    fn deserialize_unit<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_unit()
    }
    fn deserialize_seq<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_seq(serde::de::value::SeqDeserializer::new(std::iter::empty::<String>()))
    }
    serde::forward_to_deserialize_any! {
        map struct identifier ignored_any enum tuple tuple_struct newtype_struct unit_struct
    }
    fn deserialize_i8<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_i16<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_i32<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_u8<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u16<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u32<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_f32<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_f64(v)
    }
    fn deserialize_char<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(v)
    }
    fn deserialize_string<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(v)
    }
    fn deserialize_byte_buf<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(v)
    }
}

/// Deserializes `T` from a JSON body; the error names the field.
pub fn from_json<T: DeserializeOwned + 'static>(body: &[u8]) -> Result<T, Status> {
    if is_unit::<T>() {
        return from_node(Node::Json(json_value(body)?));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            Status::invalid_argument(format!("malformed JSON body: {inner}"))
        } else {
            invalid_field(e.path().to_string(), inner)
        }
    })?;
    de.end().map_err(|e| Status::invalid_argument(format!("malformed JSON body: {e}")))?;
    Ok(value)
}

/// Parses a body as a JSON value (for merging with path and query values).
pub fn json_value(body: &[u8]) -> Result<serde_json::Value, Status> {
    serde_json::from_slice(body).map_err(|e| Status::invalid_argument(format!("malformed JSON body: {e}")))
}

/// What a visitor says it expects (`"a boolean"`), to read URL text as that.
fn expecting<'de, V: Visitor<'de>>(visitor: &V) -> String {
    struct Expecting<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
    }
    Expecting(visitor).to_string()
}

/// `page_count,author.first_name` → `pageCount,author.firstName`.
fn camel_mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut upper = false;
    for c in text.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn invalid_field(path: String, inner: &dyn fmt::Display) -> Status {
    if path == "." || path.is_empty() {
        Status::invalid_argument(format!("invalid request: {inner}"))
    } else {
        Status::invalid_argument(format!("invalid value for field `{path}`: {inner}"))
    }
}

macro_rules! json_or {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self {
                Node::Json(v) => v.$method(visitor).map_err(de::Error::custom),
                other => other.deserialize_any(visitor),
            }
        })*
    };
}

/// Numbers asked for by type: text from the URL is parsed (types that take numbers as strings,
/// like the proto3 JSON codec's, ask for `any` and get the text).
macro_rules! text_number {
    ($($method:ident $ty:ident $visit:ident),*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self {
                Node::Json(v) => v.$method(visitor).map_err(de::Error::custom),
                Node::Text(s) => match s.parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => visitor.visit_string(s),
                },
                other => other.deserialize_any(visitor),
            }
        })*
    };
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Json(v) => v.deserialize_any(visitor).map_err(de::Error::custom),
            // The proto3 JSON codec asks for `any` (numbers, which it also takes as strings,
            // booleans, wrappers) or a string (field masks): what it expects tells text apart.
            Node::Text(s) => match expecting(&visitor).as_str() {
                "a boolean" => match s.as_str() {
                    "true" => visitor.visit_bool(true),
                    "false" => visitor.visit_bool(false),
                    other => Err(de::Error::custom(format!("expected `true` or `false`, got `{other}`"))),
                },
                // URL text names fields as the proto does (`update_mask=page_count`, as
                // grpc-gateway reads it); the JSON form is lowerCamelCase.
                "a field mask string" => visitor.visit_string(camel_mask(&s)),
                _ => visitor.visit_string(s),
            },
            Node::Texts(_) => Err(de::Error::custom("given more than once, but it is not a repeated field")),
            Node::Map(entries) => visitor.visit_map(MapAccess { entries: entries.into_iter(), value: None }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Json(v) => v.deserialize_bool(visitor).map_err(de::Error::custom),
            Node::Text(s) => match s.as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                other => Err(de::Error::custom(format!("expected `true` or `false`, got `{other}`"))),
            },
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Json(serde_json::Value::Null) => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Json(v) => v.deserialize_seq(visitor).map_err(de::Error::custom),
            Node::Text(s) => visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::once(Node::Text(s)))),
            Node::Texts(all) => visitor.visit_seq(de::value::SeqDeserializer::new(all.into_iter().map(Node::Text))),
            Node::Map(_) => Err(de::Error::custom("expected a list, got an object")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Node::Json(v) => v.deserialize_enum(name, variants, visitor).map_err(de::Error::custom),
            Node::Text(s) => visitor.visit_enum(s.into_deserializer()),
            other => other.deserialize_any(visitor),
        }
    }

    json_or!(deserialize_map deserialize_str deserialize_string deserialize_identifier deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_ignored_any);

    text_number!(deserialize_i8 i8 visit_i8, deserialize_i16 i16 visit_i16, deserialize_i32 i32 visit_i32,
        deserialize_i64 i64 visit_i64, deserialize_u8 u8 visit_u8, deserialize_u16 u16 visit_u16,
        deserialize_u32 u32 visit_u32, deserialize_u64 u64 visit_u64, deserialize_f32 f32 visit_f32,
        deserialize_f64 f64 visit_f64);

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Node::Json(v) => v.deserialize_struct(name, fields, visitor).map_err(de::Error::custom),
            Node::Map(entries) => visitor.visit_map(MapAccess { entries: entries.into_iter(), value: None }),
            Node::Text(s) => Err(de::Error::custom(format!("expected an object, got the text `{s}`"))),
            Node::Texts(_) => Err(de::Error::custom("expected an object, got a list")),
        }
    }

    forward_to_deserialize_any! {
        i128 u128 char unit_struct tuple tuple_struct
    }
}

impl IntoDeserializer<'_, DeError> for Node {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct MapAccess {
    entries: std::vec::IntoIter<(String, Node)>,
    value: Option<Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(de::value::StringDeserializer::<DeError>::new(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self.value.take().ok_or_else(|| de::Error::custom("value without a key"))?;
        seed.deserialize(value)
    }
}

/// The request struct from its entries, read as a JSON object; errors name the field.
pub(crate) fn from_fields<Req: DeserializeOwned + 'static>(fields: crate::api::params::Fields) -> Result<Req, Status> {
    if fields.is_empty() && is_unit::<Req>() {
        return Req::deserialize(&serde_json::Value::Null).map_err(|e| Status::invalid_argument(format!("invalid request: {e}")));
    }
    // Straight from the entries (the common, valid case).
    if let Ok(message) = Req::deserialize(fields.deserializer()) {
        return Ok(message);
    }
    // Else from the JSON object they make: request types that read an object in some other way
    // (a newtype struct, say) get what they always got, and the error names the field.
    let value = serde_json::Value::Object(fields.into_map());
    if let Ok(message) = Req::deserialize(&value) {
        return Ok(message);
    }
    match serde_path_to_error::deserialize::<_, Req>(&value) {
        Ok(message) => Ok(message),
        Err(e) => {
            let path = e.path().to_string();
            Err(if path == "." || path.is_empty() {
                Status::invalid_argument(format!("invalid request: {}", e.inner()))
            } else {
                Status::invalid_argument(format!("invalid value for field `{path}`: {}", e.inner()))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        ids: Vec<String>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Req {
        name: String,
        #[serde(default)]
        page_size: Option<String>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[test]
    fn nothing_reads_as_the_zero_value() {
        assert_eq!(from_nothing::<String>().unwrap(), "");
        assert_eq!(from_nothing::<i64>().unwrap(), 0);
        assert!(!from_nothing::<bool>().unwrap());
        from_nothing::<()>().unwrap();
        assert_eq!(from_nothing::<Option<u8>>().unwrap(), None);
        assert_eq!(from_nothing::<Vec<u8>>().unwrap(), Vec::<u8>::new());
        let m: std::collections::BTreeMap<String, i64> = from_nothing().unwrap();
        assert!(m.is_empty());
        let s: crate::wkt::Struct = from_nothing().unwrap();
        assert!(s.fields.is_empty());
    }

    #[test]
    fn query_and_path_values_become_typed_fields() {
        let mut node = Node::empty();
        node.insert("name", Node::Text("shelves/1".into()), true).unwrap();
        node.insert("inner.flag", Node::Text("true".into()), false).unwrap();
        node.insert("inner.ids", Node::Text("a".into()), false).unwrap();
        node.insert("inner.ids", Node::Text("b".into()), false).unwrap();
        let req: Req = from_node(node).unwrap();
        assert_eq!(req.name, "shelves/1");
        assert_eq!(req.inner, Some(Inner { flag: true, ids: vec!["a".into(), "b".into()] }));
    }

    #[test]
    fn path_values_replace_the_body_and_errors_name_the_field() {
        let mut node = Node::Json(serde_json::json!({"name": "x", "inner": {"flag": false}}));
        node.insert("name", Node::Text("from-path".into()), true).unwrap();
        let req: Req = from_node(node).unwrap();
        assert_eq!(req.name, "from-path");

        let mut node = Node::empty();
        node.insert("name", Node::Text("n".into()), true).unwrap();
        node.insert("inner.flag", Node::Text("yes".into()), false).unwrap();
        let err = from_node::<Req>(node).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("inner.flag"), "{}", err.message());

        let err = from_json::<Req>(br#"{"name": 5}"#).unwrap_err();
        assert!(err.message().contains("`name`"), "{}", err.message());
        let err = from_json::<Req>(br#"{"name": "#).unwrap_err();
        assert!(err.message().contains("malformed JSON"), "{}", err.message());
        let err = from_json::<Req>(br#"{"name": "a"} x"#).unwrap_err();
        assert!(err.message().contains("malformed JSON"), "{}", err.message());
    }

    #[test]
    fn camel_case_names() {
        assert_eq!(lower_camel("page_token"), "pageToken");
        assert_eq!(lower_camel("name"), "name");
        assert_eq!(lower_camel("a_b_c"), "aBC");
    }
}

#[cfg(test)]
mod from_fields_tests {
    use super::*;
    use crate::api::params::Fields;
    use serde::Deserialize;
    use serde_json::Value;

    fn fields(entries: &[(&'static str, Value)]) -> Fields {
        let mut f = Fields::with_capacity(entries.len());
        for (k, v) in entries {
            f.insert(k, v.clone());
        }
        f
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Req {
        #[serde(rename = "petId")]
        pet_id: i64,
        tag: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Wrapped(std::collections::BTreeMap<String, i64>);

    #[test]
    fn request_structs_read_the_entries_as_an_object() {
        let got: Req = from_fields(fields(&[("petId", Value::from(7)), ("tag", Value::from("x"))])).unwrap();
        assert_eq!(got, Req { pet_id: 7, tag: Some("x".into()) });
        let got: Req = from_fields(fields(&[("petId", Value::from(1))])).unwrap();
        assert_eq!(got, Req { pet_id: 1, tag: None });
        // A later value for the same key replaces the earlier one, as in a map.
        let got: Req = from_fields(fields(&[("petId", Value::from(1)), ("petId", Value::from(2))])).unwrap();
        assert_eq!(got.pet_id, 2);
        from_fields::<()>(Fields::default()).unwrap();
        // A type that does not read a map's entries gets the JSON object, as before.
        let got: Wrapped = from_fields(fields(&[("a", Value::from(1))])).unwrap();
        assert_eq!(got.0["a"], 1);
    }

    #[test]
    fn errors_name_the_field() {
        let err = from_fields::<Req>(fields(&[("petId", Value::from("seven"))])).unwrap_err();
        assert!(err.message().starts_with("invalid value for field `petId`:"), "{}", err.message());
        let err = from_fields::<Req>(Fields::default()).unwrap_err();
        assert!(err.message().contains("petId"), "{}", err.message());
    }
}
