//! Response enums ↔ (status, body): a serde `Serializer` that reads which variant a handler
//! returned (and its status and body), and a `Deserializer` that builds the variant from a
//! response the client received.
//!
//! Variant `i` is `Operation::responses[i]`: a unit variant has no content; a newtype variant
//! holds the body (or, for a `default` / `NXX` entry without content, the status code); a tuple
//! variant holds the status code and the body.

// Used by the transports that serve and call operations (REST, queues).
#![cfg_attr(not(any(feature = "rest", feature = "queue")), allow(dead_code))]

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible, Serialize};
use serde_json::Value;

use super::media::Media;
use super::ResponseSpec;

/// An error of either direction.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}
impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}
impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// The body of a captured response.
#[derive(Debug, PartialEq)]
pub(crate) enum Body {
    /// No content.
    None,
    /// Already JSON (the response's media type is JSON).
    Json(Vec<u8>),
    /// The serde form, for another media type to encode.
    Value(Value),
}

/// What a handler answered.
#[derive(Debug, PartialEq)]
pub(crate) struct Captured {
    /// Index of the variant (= of the response spec).
    pub(crate) index: usize,
    /// The status the variant carries (`default` / `NXX` entries).
    pub(crate) status: Option<u16>,
    pub(crate) body: Body,
}

const NOT_AN_ENUM: &str = "the response type must be an enum with one variant per documented response";

/// Reads the variant, status and body of a response enum value. `kinds` has, per response, the
/// encoding of its body (the server prepares it once; `None` entries have no content).
/// What [`capture`] gives: the chosen variant, or why none could be read.
pub(crate) type CaptureResult = Result<Captured, Error>;

pub(crate) fn capture<T: Serialize + ?Sized, K>(
    value: &T,
    responses: &'static [ResponseSpec],
    kinds: &[Option<(Media, K)>],
) -> Result<Captured, Error> {
    let json = |index: usize| kinds.get(index).is_none_or(|k| matches!(k, None | Some((Media::Json, _))));
    value.serialize(Capture { responses, json: &json })
}

fn spec(responses: &'static [ResponseSpec], index: u32) -> Result<&'static ResponseSpec, Error> {
    responses
        .get(index as usize)
        .ok_or_else(|| Error(format!("variant {index} has no documented response (there are {})", responses.len())))
}

fn status_of<T: Serialize + ?Sized>(value: &T) -> Result<u16, Error> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_u64())
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| Error("the status code of a `default` or `NXX` response must be a number".into()))
}

/// Initial capacity of a JSON response body.
const BODY_CAPACITY: usize = 512;

fn body_of<T: Serialize + ?Sized>(json: bool, value: &T) -> Result<Body, Error> {
    if json {
        // Room for a typical object at once: growing from a small buffer reallocates (and copies)
        // on most answers, and an allocation of this size costs no more than a smaller one.
        let mut out = Vec::with_capacity(BODY_CAPACITY);
        serde_json::to_writer(&mut out, value).map(|()| Body::Json(out))
    } else {
        serde_json::to_value(value).map(Body::Value)
    }
    .map_err(|e| Error(format!("encoding the response body: {e}")))
}

struct Capture<'k> {
    responses: &'static [ResponseSpec],
    /// Whether response `i`'s body is JSON.
    json: &'k dyn Fn(usize) -> bool,
}

/// Collects the two fields of a tuple variant.
struct TupleCapture {
    json: bool,
    index: usize,
    field: usize,
    status: Option<u16>,
    body: Body,
}

impl ser::SerializeTupleVariant for TupleCapture {
    type Ok = Captured;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        match self.field {
            0 => self.status = Some(status_of(value)?),
            1 => self.body = body_of(self.json, value)?,
            _ => return Err(Error("a response variant holds at most a status and a body".into())),
        }
        self.field += 1;
        Ok(())
    }

    fn end(self) -> Result<Captured, Error> {
        Ok(Captured { index: self.index, status: self.status, body: self.body })
    }
}

macro_rules! not_an_enum {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Captured, Error> {
            Err(Error(NOT_AN_ENUM.into()))
        })*
    };
}

impl ser::Serializer for Capture<'_> {
    type Ok = Captured;
    type Error = Error;
    type SerializeSeq = Impossible<Captured, Error>;
    type SerializeTuple = Impossible<Captured, Error>;
    type SerializeTupleStruct = Impossible<Captured, Error>;
    type SerializeTupleVariant = TupleCapture;
    type SerializeMap = Impossible<Captured, Error>;
    type SerializeStruct = Impossible<Captured, Error>;
    type SerializeStructVariant = Impossible<Captured, Error>;

    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<Captured, Error> {
        spec(self.responses, index)?;
        Ok(Captured { index: index as usize, status: None, body: Body::None })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<Captured, Error> {
        let spec = spec(self.responses, index)?;
        let index = index as usize;
        if spec.carries_status() && spec.content.is_none() {
            return Ok(Captured { index, status: Some(status_of(value)?), body: Body::None });
        }
        Ok(Captured { index, status: None, body: body_of((self.json)(index), value)? })
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<TupleCapture, Error> {
        spec(self.responses, index)?;
        let index = index as usize;
        Ok(TupleCapture { json: (self.json)(index), index, field: 0, status: None, body: Body::None })
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<Captured, Error> {
        value.serialize(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }

    not_an_enum!(
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_str(&str), serialize_bytes(&[u8]), serialize_none(),
        serialize_unit(), serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Captured, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }
}

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

/// A received body, for the variant to deserialize.
pub(crate) enum Received<'a> {
    /// JSON text, deserialized straight from the bytes.
    Json(&'a [u8]),
    /// Text or base64 of bytes, already a value.
    Value(Value),
}

/// A response the client received, as the deserializer of the response enum.
pub(crate) struct ResponseDe<'a> {
    pub(crate) index: usize,
    pub(crate) spec: &'static ResponseSpec,
    pub(crate) status: u16,
    pub(crate) body: Received<'a>,
}

impl<'de> ResponseDe<'de> {
    fn body<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.body {
            Received::Json(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
                seed.deserialize(Value::Null).map_err(|e| Error(format!("empty body: {e}")))
            }
            Received::Json(bytes) => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let value = seed.deserialize(&mut de).map_err(|e| Error(e.to_string()))?;
                de.end().map_err(|e| Error(e.to_string()))?;
                Ok(value)
            }
            Received::Value(v) => seed.deserialize(v).map_err(|e| Error(e.to_string())),
        }
    }
}

impl<'de> de::Deserializer<'de> for ResponseDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error(NOT_AN_ENUM.into()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for ResponseDe<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let index = u32::try_from(self.index).map_err(|_| Error("too many responses".into()))?;
        let variant = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(index))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for ResponseDe<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        if self.spec.carries_status() && self.spec.content.is_none() {
            return seed.deserialize(IntoDeserializer::<Error>::into_deserializer(self.status));
        }
        self.body(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(StatusAndBody { status: Some(self.status), rest: Some(self) })
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Result<V::Value, Error> {
        Err(Error("a response variant is a unit, newtype or (status, body) variant".into()))
    }
}

struct StatusAndBody<'a> {
    status: Option<u16>,
    rest: Option<ResponseDe<'a>>,
}

impl<'de> de::SeqAccess<'de> for StatusAndBody<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if let Some(status) = self.status.take() {
            return seed.deserialize(IntoDeserializer::<Error>::into_deserializer(status)).map(Some);
        }
        match self.rest.take() {
            Some(rest) => rest.body(seed).map(Some),
            None => Ok(None),
        }
    }
}

/// The bytes of a captured body on the wire, for a response whose media type is `media`: JSON
/// as serialized, raw bytes for binary types (a `Binary` value serializes to base64 text), the
/// text of a string for text types.
pub(crate) fn body_bytes(body: Body, media: Media) -> Vec<u8> {
    match (body, media) {
        (Body::None, _) => Vec::new(),
        (Body::Json(bytes), _) => bytes,
        (Body::Value(value), Media::Binary) => raw_bytes(value),
        (Body::Value(Value::String(s)), _) => s.into_bytes(),
        (Body::Value(value), _) => value.to_string().into_bytes(),
    }
}

/// The body of response `index` of `op` as received, for [`ResponseDe`]: JSON as is, binary
/// bodies as base64 text, form bodies as an object of strings, other types as text.
pub(crate) fn received<'a>(op: &'static super::Operation, index: usize, body: &'a [u8]) -> Received<'a> {
    match op.responses.get(index).and_then(|r| r.content).map(super::media::classify) {
        None | Some(Media::Json) => Received::Json(body),
        Some(Media::Binary) => Received::Value(bytes_value(body)),
        Some(Media::Form) => {
            let map: serde_json::Map<String, Value> =
                form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
            Received::Value(Value::Object(map))
        }
        Some(_) => Received::Value(Value::String(String::from_utf8_lossy(body).into_owned())),
    }
}

/// Bytes back from a response body whose media type is binary: base64 text.
fn bytes_value(body: &[u8]) -> Value {
    use base64::Engine as _;
    Value::String(base64::engine::general_purpose::STANDARD.encode(body))
}

/// A binary response body from the base64 text a `Binary` value serializes to.
fn raw_bytes(value: Value) -> Vec<u8> {
    use base64::Engine as _;
    match value {
        Value::String(s) => {
            let t = s.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .unwrap_or_else(|_| s.into_bytes())
        }
        other => other.to_string().into_bytes(),
    }
}

/// The variant for HTTP status `status`: the exact code, else its `NXX` range, else `default`.
pub(crate) fn variant_for(responses: &[ResponseSpec], status: u16) -> Option<usize> {
    let code = status.to_string();
    if let Some(i) = responses.iter().position(|r| r.status == code) {
        return Some(i);
    }
    let class = char::from(b'0' + (status / 100 % 10) as u8);
    responses
        .iter()
        .position(|r| {
            let s = r.status.as_bytes();
            s.len() == 3 && s[0] as char == class && s[1..].eq_ignore_ascii_case(b"XX")
        })
        .or_else(|| responses.iter().position(|r| r.status.eq_ignore_ascii_case("default")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_bodies_travel_as_raw_bytes() {
        use serde_json::json;
        assert_eq!(raw_bytes(json!("AP8=")), b"\x00\xff");
        assert_eq!(body_bytes(Body::Value(json!("AP8=")), Media::Binary), b"\x00\xff");
        assert_eq!(body_bytes(Body::Value(json!("hi")), Media::Text), b"hi");
        assert_eq!(bytes_value(b"\x00\xff"), json!("AP8="));
    }
    use serde::Deserialize;
    use crate::api::media::classify;

    #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
    struct Pet {
        name: String,
    }

    #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
    enum Resp {
        Ok(Pet),
        NoContent,
        Text(String),
        ClientError(u16),
        Default(u16, Pet),
    }

    const RESPONSES: &[ResponseSpec] = &[
        ResponseSpec { status: "200", content: Some("application/json") },
        ResponseSpec { status: "204", content: None },
        ResponseSpec { status: "202", content: Some("text/plain") },
        ResponseSpec { status: "4XX", content: None },
        ResponseSpec { status: "default", content: Some("application/json") },
    ];

    fn capture<T: Serialize>(value: &T, responses: &'static [ResponseSpec]) -> Result<Captured, Error> {
        let kinds: Vec<Option<(Media, ())>> = responses.iter().map(|r| r.content.map(|c| (classify(c), ()))).collect();
        super::capture(value, responses, &kinds)
    }

    #[test]
    fn variants_are_captured_with_status_and_body() {
        let pet = || Pet { name: "rex".into() };
        assert_eq!(
            capture(&Resp::Ok(pet()), RESPONSES).unwrap(),
            Captured { index: 0, status: None, body: Body::Json(br#"{"name":"rex"}"#.to_vec()) }
        );
        assert_eq!(capture(&Resp::NoContent, RESPONSES).unwrap(), Captured { index: 1, status: None, body: Body::None });
        assert_eq!(
            capture(&Resp::Text("hi".into()), RESPONSES).unwrap().body,
            Body::Value(Value::String("hi".into()))
        );
        assert_eq!(capture(&Resp::ClientError(418), RESPONSES).unwrap().status, Some(418));
        let c = capture(&Resp::Default(503, pet()), RESPONSES).unwrap();
        assert_eq!((c.index, c.status), (4, Some(503)));
        assert!(capture(&Pet { name: "x".into() }, RESPONSES).unwrap_err().0.contains("enum"));
        assert!(capture(&Resp::Ok(pet()), &RESPONSES[..0]).is_err());
    }

    #[test]
    fn responses_become_variants() {
        let de = |status: u16, body: Received<'static>| {
            let index = variant_for(RESPONSES, status).unwrap();
            Resp::deserialize(ResponseDe { index, spec: &RESPONSES[index], status, body })
        };
        assert_eq!(de(200, Received::Json(br#"{"name":"a"}"#)).unwrap(), Resp::Ok(Pet { name: "a".into() }));
        assert_eq!(de(204, Received::Json(b"")).unwrap(), Resp::NoContent);
        assert_eq!(de(202, Received::Value(Value::String("t".into()))).unwrap(), Resp::Text("t".into()));
        assert_eq!(de(404, Received::Json(b"")).unwrap(), Resp::ClientError(404));
        assert_eq!(de(500, Received::Json(br#"{"name":"b"}"#)).unwrap(), Resp::Default(500, Pet { name: "b".into() }));
        assert!(de(200, Received::Json(br#"{"nam":"a"}"#)).is_err());
        assert_eq!(variant_for(&RESPONSES[..2], 500), None);
    }
}
