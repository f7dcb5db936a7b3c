//! proto3 JSON → protobuf bytes, straight from the JSON and the message's descriptor.
//!
//! Each JSON field is looked up by its JSON name or its proto name and written as a protobuf
//! record; prost then decodes the bytes into the generated message. `null` leaves a field
//! unset. Numbers are taken as JSON numbers or strings (64-bit integers are strings in the
//! mapping), floats also as `"NaN"` and `"Infinity"`, enums by name or number, bytes as base64
//! (standard or URL-safe, padded or not). The well-known types with JSON forms of their own
//! (Timestamp, Any, wrappers, Struct, FieldMask, …) are read by prost-reflect's `DynamicMessage`,
//! the reference this follows, and written from it.

use std::fmt;

use base64::Engine as _;
use prost::encoding::encode_varint;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

use super::write::special;
use super::DESERIALIZE;

/// Reads a message of `descriptor` and appends its encoding to `out`.
pub(super) struct Message<'a> {
    pub(super) descriptor: &'a MessageDescriptor,
    pub(super) out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Message<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if special(self.descriptor.full_name()) {
            let dynamic = DynamicMessage::deserialize_with_options(self.descriptor.clone(), deserializer, &DESERIALIZE)?;
            prost::Message::encode(&dynamic, self.out).map_err(D::Error::custom)?;
            return Ok(());
        }
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Message<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object ({})", self.descriptor.full_name())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut set: Vec<(String, String)> = Vec::new();
        while let Some(field) = map.next_key_seed(Key(self.descriptor))? {
            let before = self.out.len();
            map.next_value_seed(Field { field: &field, out: self.out })?;
            // At most one member of a oneof (proto3 `optional` fields are synthetic oneofs).
            if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
                if self.out.len() > before {
                    if let Some((_, other)) = set.iter().find(|(o, _)| o == oneof.name()) {
                        return Err(A::Error::custom(format!(
                            "`{}` and `{other}` are both set, but they are members of oneof `{}`",
                            field.name(),
                            oneof.name()
                        )));
                    }
                    set.push((oneof.name().to_owned(), field.name().to_owned()));
                }
            }
        }
        Ok(())
    }
}

/// A field's name (JSON or proto spelling), looked up without copying it.
struct Key<'a>(&'a MessageDescriptor);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = FieldDescriptor;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FieldDescriptor, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = FieldDescriptor;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<FieldDescriptor, E> {
        let field = self.0.get_field_by_json_name(key).or_else(|| self.0.get_field_by_name(key));
        field.ok_or_else(|| E::custom(format!("unknown field `{key}` in {}", self.0.full_name())))
    }
}

/// One field's JSON value: `null` (unset), a list, a map or a single value.
struct Field<'a> {
    field: &'a FieldDescriptor,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // `null` is a value of google.protobuf.Value (and its NullValue), not an absence.
        let null_is_value = match self.field.kind() {
            Kind::Message(m) => m.full_name() == "google.protobuf.Value",
            Kind::Enum(e) => e.full_name() == "google.protobuf.NullValue",
            _ => false,
        };
        if null_is_value && !self.field.is_list() && !self.field.is_map() {
            return Single { number: self.field.number(), kind: self.field.kind(), out: self.out }.deserialize(deserializer);
        }
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value for `{}`", self.field.name())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let number = self.field.number();
        if self.field.is_map() {
            let Kind::Message(entry) = self.field.kind() else { return Err(D::Error::custom("map field without an entry message")) };
            deserializer.deserialize_map(Entries { number, entry: &entry, out: self.out })
        } else if self.field.is_list() {
            deserializer.deserialize_seq(List { number, kind: self.field.kind(), out: self.out })
        } else {
            Single { number, kind: self.field.kind(), out: self.out }.deserialize(deserializer)
        }
    }
}

struct List<'a> {
    number: u32,
    kind: Kind,
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Single { number: self.number, kind: self.kind.clone(), out: self.out })?.is_some() {}
        Ok(())
    }
}

struct Entries<'a> {
    number: u32,
    entry: &'a MessageDescriptor,
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (key_kind, value_kind) = (self.entry.map_entry_key_field().kind(), self.entry.map_entry_value_field().kind());
        let mut entry = Vec::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            entry.clear();
            key_record(&key_kind, &key, &mut entry).map_err(A::Error::custom)?;
            map.next_value_seed(Single { number: 2, kind: value_kind.clone(), out: &mut entry })?;
            length_delimited(self.number, &entry, self.out);
        }
        Ok(())
    }
}

/// A map key (JSON keys are strings) as the entry's field 1.
fn key_record(kind: &Kind, key: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let bad = || format!("invalid map key `{key}`");
    match kind {
        Kind::String => length_delimited(1, key.as_bytes(), out),
        Kind::Bool => match key {
            "true" => varint_record(1, 1, out),
            "false" => varint_record(1, 0, out),
            _ => return Err(bad()),
        },
        kind => {
            let number = if key.starts_with('-') { Number::I(key.parse().map_err(|_| bad())?) } else { Number::U(key.parse().map_err(|_| bad())?) };
            scalar_record(1, kind, number, out)?;
        }
    }
    Ok(())
}

/// One value of a field (a singular field, a list element, a map value) as a record.
struct Single<'a> {
    number: u32,
    kind: Kind,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Single<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let Single { number, kind, out } = self;
        match &kind {
            Kind::Message(m) => {
                let mut inner = Vec::new();
                Message { descriptor: m, out: &mut inner }.deserialize(deserializer)?;
                length_delimited(number, &inner, out);
            }
            Kind::String => deserializer.deserialize_string(Text { number, base64: false, out })?,
            Kind::Bytes => deserializer.deserialize_str(Text { number, base64: true, out })?,
            Kind::Bool => {
                let b = deserializer.deserialize_any(Bool)?;
                varint_record(number, u64::from(b), out);
            }
            Kind::Enum(e) => {
                let value = match deserializer.deserialize_any(NumberOrName)? {
                    Number::S(name) => match e.get_value_by_name(&name) {
                        Some(v) => v.number(),
                        None => return Err(D::Error::custom(format!("unknown {} value `{name}`", e.name()))),
                    },
                    Number::Null if e.full_name() == "google.protobuf.NullValue" => 0,
                    n => i32::try_from(n.integer().map_err(D::Error::custom)?).map_err(|_| D::Error::custom("enum number out of range"))?,
                };
                varint_record(number, value as i64 as u64, out);
            }
            kind => {
                let n = deserializer.deserialize_any(NumberOrName)?;
                scalar_record(number, kind, n, out).map_err(D::Error::custom)?;
            }
        }
        Ok(())
    }
}

/// A number as JSON gives it (or a string, which numbers may also be; or an enum's name).
enum Number {
    I(i64),
    U(u64),
    F(f64),
    S(String),
    Null,
}

impl Number {
    /// The value as an integer: integral floats and decimal strings (`"12"`, `"1e3"`) count.
    fn integer(self) -> Result<i128, String> {
        match self {
            Number::I(i) => Ok(i.into()),
            Number::U(u) => Ok(u.into()),
            Number::F(f) if f.fract() == 0.0 && f.abs() < 1.9e19 => Ok(f as i128),
            Number::S(s) => match s.parse::<i128>() {
                Ok(i) => Ok(i),
                Err(_) => Number::F(s.parse().map_err(|_| format!("`{s}` is not an integer"))?).integer(),
            },
            Number::F(f) => Err(format!("{f} is not an integer")),
            Number::Null => Err("null is not a number".into()),
        }
    }

    fn float(self) -> Result<f64, String> {
        match self {
            Number::I(i) => Ok(i as f64),
            Number::U(u) => Ok(u as f64),
            Number::F(f) => Ok(f),
            Number::S(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => s.parse().map_err(|_| format!("`{s}` is not a number")),
            },
            Number::Null => Err("null is not a number".into()),
        }
    }
}

fn scalar_record(number: u32, kind: &Kind, n: Number, out: &mut Vec<u8>) -> Result<(), String> {
    fn range<T: TryFrom<i128>>(i: i128, what: &str) -> Result<T, String> {
        T::try_from(i).map_err(|_| format!("{i} is out of range for {what}"))
    }
    match kind {
        Kind::Double => fixed64_record(number, n.float()?.to_bits(), out),
        Kind::Float => {
            let f = n.float()?;
            if f.is_finite() && (f < f64::from(f32::MIN) || f > f64::from(f32::MAX)) {
                return Err(format!("{f} is out of range for float"));
            }
            fixed32_record(number, (f as f32).to_bits(), out);
        }
        Kind::Int32 => varint_record(number, i64::from(range::<i32>(n.integer()?, "int32")?) as u64, out),
        Kind::Int64 => varint_record(number, range::<i64>(n.integer()?, "int64")? as u64, out),
        Kind::Uint32 => varint_record(number, u64::from(range::<u32>(n.integer()?, "uint32")?), out),
        Kind::Uint64 => varint_record(number, range::<u64>(n.integer()?, "uint64")?, out),
        Kind::Sint32 => {
            let v = range::<i32>(n.integer()?, "sint32")?;
            varint_record(number, u64::from(((v << 1) ^ (v >> 31)) as u32), out);
        }
        Kind::Sint64 => {
            let v = range::<i64>(n.integer()?, "sint64")?;
            varint_record(number, ((v << 1) ^ (v >> 63)) as u64, out);
        }
        Kind::Fixed32 => fixed32_record(number, range::<u32>(n.integer()?, "fixed32")?, out),
        Kind::Sfixed32 => fixed32_record(number, range::<i32>(n.integer()?, "sfixed32")? as u32, out),
        Kind::Fixed64 => fixed64_record(number, range::<u64>(n.integer()?, "fixed64")?, out),
        Kind::Sfixed64 => fixed64_record(number, range::<i64>(n.integer()?, "sfixed64")? as u64, out),
        Kind::Bool | Kind::String | Kind::Bytes | Kind::Enum(_) | Kind::Message(_) => return Err("not a number field".into()),
    }
    Ok(())
}

fn varint_record(number: u32, value: u64, out: &mut Vec<u8>) {
    encode_varint(u64::from(number) << 3, out);
    encode_varint(value, out);
}

fn fixed32_record(number: u32, value: u32, out: &mut Vec<u8>) {
    encode_varint(u64::from(number) << 3 | 5, out);
    out.extend_from_slice(&value.to_le_bytes());
}

fn fixed64_record(number: u32, value: u64, out: &mut Vec<u8>) {
    encode_varint(u64::from(number) << 3 | 1, out);
    out.extend_from_slice(&value.to_le_bytes());
}

fn length_delimited(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_varint(u64::from(number) << 3 | 2, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Standard or URL-safe alphabet, with or without padding.
fn base64(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).map_err(|e| format!("invalid base64: {e}"))
}

/// A string field's text, or a bytes field's base64, written as a record from the borrowed
/// input.
struct Text<'a> {
    number: u32,
    base64: bool,
    out: &'a mut Vec<u8>,
}

impl Visitor<'_> for Text<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.base64 { "a base64-encoded string" } else { "a string" })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.base64 {
            length_delimited(self.number, &base64(v).map_err(E::custom)?, self.out);
        } else {
            length_delimited(self.number, v.as_bytes(), self.out);
        }
        Ok(())
    }
}

/// `true` or `false`. (The REST decoder reads URL text as a boolean for visitors expecting
/// "a boolean".)
struct Bool;

impl Visitor<'_> for Bool {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
}

struct NumberOrName;

impl Visitor<'_> for NumberOrName {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number::I(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number::U(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number::F(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        Ok(Number::S(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Number, E> {
        Ok(Number::S(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Null)
    }
}

#[cfg(test)]
mod tests {
    //! The reader against prost-reflect's deserializer (the reference): the same JSON must give
    //! the same message.

    use prost::Message as _;
    use prost_reflect::DynamicMessage;
    use serde::de::DeserializeSeed as _;

    use super::Message;
    use crate::proto_json::write::tests::{every_kind, pool};

    fn read(json: &str) -> Result<DynamicMessage, String> {
        let pool = pool();
        let all = pool.get_message_by_name("t.All").unwrap();
        let mut out = Vec::new();
        let mut de = serde_json::Deserializer::from_str(json);
        Message { descriptor: &all, out: &mut out }.deserialize(&mut de).map_err(|e| e.to_string())?;
        Ok(DynamicMessage::decode(all, out.as_slice()).unwrap())
    }

    fn reference(json: &str) -> DynamicMessage {
        let all = pool().get_message_by_name("t.All").unwrap();
        let mut de = serde_json::Deserializer::from_str(json);
        DynamicMessage::deserialize_with_options(all, &mut de, &crate::proto_json::DESERIALIZE).unwrap()
    }

    #[test]
    fn what_the_writer_writes_reads_back_as_the_same_message() {
        let pool = pool();
        let m = every_kind(&pool);
        let all = pool.get_message_by_name("t.All").unwrap();
        let json = serde_json::to_string(&super::super::write::Wire { descriptor: &all, bytes: &m.encode_to_vec() }).unwrap();
        // NaN is unequal to itself, so messages are compared as their JSON.
        let ours = serde_json::to_value(read(&json).unwrap()).unwrap();
        assert_eq!(ours, serde_json::to_value(&m).unwrap());
        assert_eq!(ours, serde_json::to_value(reference(&json)).unwrap());
    }

    #[test]
    fn the_other_spellings_the_mapping_accepts_read_like_prost_reflect() {
        let json = r#"{
            "rep_i32": [1, "2", 3.0, "-4"], "i64": 12, "u64": "18446744073709551615", "s32": "-5",
            "color": 1, "rep_color": ["GREEN", 0], "data": "-_8", "d": "Infinity", "f": "NaN",
            "text": null, "child": {"rep_text": ["x"]}, "counts": {"a": "1", "b": 2},
            "flags": {"true": "yes"}, "by_id": {"7": {}}, "at": "2024-05-01T10:00:00+02:00",
            "wrapped": "9"
        }"#;
        let ours = read(json).unwrap();
        // prost-reflect compares NaN unequal to itself: compare JSON of both.
        let (a, b) = (serde_json::to_value(&ours).unwrap(), serde_json::to_value(reference(json)).unwrap());
        assert_eq!(a, b);
        assert_eq!(a["repI32"], serde_json::json!([1, 2, 3, -4]));
        assert_eq!(a["data"], "+/8=", "URL-safe, unpadded base64 read");
        // Exponents, quoted or not, as the mapping allows (prost-reflect refuses the quoted form).
        let e = serde_json::to_value(read(r#"{"fx64": "1e3", "i32": 2e2}"#).unwrap()).unwrap();
        assert_eq!((&e["fx64"], &e["i32"]), (&serde_json::json!("1000"), &serde_json::json!(200)));
    }

    #[test]
    fn bad_values_are_errors_naming_what_is_wrong() {
        for (json, expected) in [
            (r#"{"nope": 1}"#, "unknown field `nope` in t.All"),
            (r#"{"i32": 2147483648}"#, "2147483648 is out of range for int32"),
            (r#"{"i32": 1.5}"#, "1.5 is not an integer"),
            (r#"{"u32": -1}"#, "-1 is out of range for uint32"),
            (r#"{"color": "PURPLE"}"#, "unknown Color value `PURPLE`"),
            (r#"{"data": "***"}"#, "invalid base64"),
            (r#"{"flag": "yes"}"#, "expected a boolean"),
            (r#"{"by_id": {"x": {}}}"#, "invalid map key `x`"),
            (r#"{"child": 3}"#, "expected an object (t.All)"),
            (r#"{"f": 1e39}"#, "out of range for float"),
        ] {
            let e = read(json).unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }
}
