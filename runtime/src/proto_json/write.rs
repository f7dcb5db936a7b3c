//! Protobuf bytes → proto3 JSON, straight from the wire format and the message's descriptor.
//!
//! A generated message is encoded with prost and its records are written as JSON in the order
//! prost wrote them (its fields' declaration order). prost leaves out proto3 fields at their
//! defaults and writes fields with presence when set, which is exactly the set of fields the
//! JSON mapping writes; repeated fields and maps are runs of records of one number (or packed
//! records). The well-known types (Timestamp, Any, wrappers, Struct, …), which have JSON forms
//! of their own, and anything unusual (groups, malformed input) go through prost-reflect's
//! `DynamicMessage` instead, which is the reference this follows.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::SERIALIZE;

/// A message's encoding and its descriptor, serializable as proto3 JSON.
pub(super) struct Wire<'a> {
    pub(super) descriptor: &'a MessageDescriptor,
    pub(super) bytes: &'a [u8],
}

/// One record's payload.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// The records of one message; `None` for what this writer leaves to prost-reflect (groups) or
/// cannot read.
fn records(mut bytes: &[u8]) -> Option<Vec<(u32, Payload<'_>)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).ok()?;
        let payload = match key & 7 {
            0 => Payload::Varint(varint(&mut bytes)?),
            1 => Payload::Fixed64(u64::from_le_bytes(take(&mut bytes, 8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                Payload::Bytes(take(&mut bytes, len)?)
            }
            5 => Payload::Fixed32(u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?)),
            _ => return None,
        };
        out.push((number, payload));
    }
    Some(out)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Some(head)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

/// The well-known types with JSON forms of their own.
pub(super) fn special(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Any"
            | "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.Struct"
            | "google.protobuf.Value"
            | "google.protobuf.ListValue"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let records = if special(self.descriptor.full_name()) { None } else { records(self.bytes) };
        let Some(records) = records else {
            let dynamic = DynamicMessage::decode(self.descriptor.clone(), self.bytes).map_err(S::Error::custom)?;
            return dynamic.serialize_with_options(serializer, &SERIALIZE);
        };
        let mut map = serializer.serialize_map(None)?;
        let mut i = 0;
        while i < records.len() {
            let number = records[i].0;
            // A run of records of one number: a repeated field's elements or a map's entries.
            let mut end = i + 1;
            while end < records.len() && records[end].0 == number {
                end += 1;
            }
            let run = &records[i..end];
            i = end;
            // Unknown fields are left out (groups never get here: `records` leaves them to
            // prost-reflect).
            let Some(field) = self.descriptor.get_field(number) else { continue };
            if field.is_map() {
                map.serialize_entry(field.json_name(), &MapJson { field: &field, run })?;
            } else if field.is_list() {
                map.serialize_entry(field.json_name(), &ListJson { kind: field.kind(), run })?;
            } else {
                // A singular field written twice: the last one counts.
                let (_, payload) = run[run.len() - 1];
                map.serialize_entry(field.json_name(), &Scalar { kind: &field.kind(), payload })?;
            }
        }
        map.end()
    }
}

struct ListJson<'a, 'b> {
    kind: Kind,
    run: &'a [(u32, Payload<'b>)],
}

impl Serialize for ListJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for &(_, payload) in self.run {
            match (payload, packed_width(&self.kind)) {
                // Packed scalars: one record holding many.
                (Payload::Bytes(mut bytes), Some(width)) => {
                    while !bytes.is_empty() {
                        let element = match width {
                            0 => Payload::Varint(varint(&mut bytes).ok_or_else(|| S::Error::custom("malformed packed field"))?),
                            4 => Payload::Fixed32(u32::from_le_bytes(
                                take(&mut bytes, 4).and_then(|b| b.try_into().ok()).ok_or_else(|| S::Error::custom("malformed packed field"))?,
                            )),
                            _ => Payload::Fixed64(u64::from_le_bytes(
                                take(&mut bytes, 8).and_then(|b| b.try_into().ok()).ok_or_else(|| S::Error::custom("malformed packed field"))?,
                            )),
                        };
                        seq.serialize_element(&Scalar { kind: &self.kind, payload: element })?;
                    }
                }
                (payload, _) => seq.serialize_element(&Scalar { kind: &self.kind, payload })?,
            }
        }
        seq.end()
    }
}

/// For kinds that can be packed, the width of one element (0: varint).
fn packed_width(kind: &Kind) -> Option<u8> {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => Some(8),
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => Some(4),
        Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Sint32 | Kind::Sint64 | Kind::Bool | Kind::Enum(_) => Some(0),
        Kind::String | Kind::Bytes | Kind::Message(_) => None,
    }
}

struct MapJson<'a, 'b> {
    field: &'a FieldDescriptor,
    run: &'a [(u32, Payload<'b>)],
}

impl Serialize for MapJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Kind::Message(entry) = self.field.kind() else { return Err(S::Error::custom("map field without an entry message")) };
        let (key_kind, value_kind) = (entry.map_entry_key_field().kind(), entry.map_entry_value_field().kind());
        let mut map = serializer.serialize_map(Some(self.run.len()))?;
        for &(_, payload) in self.run {
            let Payload::Bytes(bytes) = payload else { return Err(S::Error::custom("malformed map entry")) };
            let records = records(bytes).ok_or_else(|| S::Error::custom("malformed map entry"))?;
            // Either half may be left out at its default.
            let key = records.iter().rev().find(|(n, _)| *n == 1).map(|r| r.1);
            let value = records.iter().rev().find(|(n, _)| *n == 2).map(|r| r.1);
            map.serialize_key(&MapKey { kind: &key_kind, payload: key })?;
            match value {
                Some(payload) => map.serialize_value(&Scalar { kind: &value_kind, payload })?,
                None => map.serialize_value(&Absent { kind: &value_kind })?,
            }
        }
        map.end()
    }
}

/// A map key: JSON object keys are strings (`"1"`, `"true"`).
struct MapKey<'a, 'b> {
    kind: &'a Kind,
    payload: Option<Payload<'b>>,
}

impl Serialize for MapKey<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let payload = self.payload.unwrap_or_else(|| zero(self.kind));
        match (self.kind, payload) {
            (Kind::String, Payload::Bytes(b)) => serializer.serialize_str(std::str::from_utf8(b).map_err(S::Error::custom)?),
            (Kind::Bool, Payload::Varint(v)) => serializer.serialize_str(if v != 0 { "true" } else { "false" }),
            (kind, payload) => match integer(kind, payload) {
                Some(n) => serializer.collect_str(&n),
                None => Err(S::Error::custom("malformed map key")),
            },
        }
    }
}

/// An integer of any width, for keys and 64-bit values written as strings.
enum Integer {
    Signed(i64),
    Unsigned(u64),
}

impl std::fmt::Display for Integer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Integer::Signed(n) => n.fmt(f),
            Integer::Unsigned(n) => n.fmt(f),
        }
    }
}

fn integer(kind: &Kind, payload: Payload<'_>) -> Option<Integer> {
    Some(match (kind, payload) {
        (Kind::Int32, Payload::Varint(v)) => Integer::Signed(i64::from(v as i32)),
        (Kind::Int64, Payload::Varint(v)) => Integer::Signed(v as i64),
        (Kind::Uint32, Payload::Varint(v)) => Integer::Unsigned(u64::from(v as u32)),
        (Kind::Uint64, Payload::Varint(v)) => Integer::Unsigned(v),
        (Kind::Sint32, Payload::Varint(v)) => Integer::Signed(i64::from(((v as u32) >> 1) as i32 ^ -((v & 1) as i32))),
        (Kind::Sint64, Payload::Varint(v)) => Integer::Signed((v >> 1) as i64 ^ -((v & 1) as i64)),
        (Kind::Fixed32, Payload::Fixed32(v)) => Integer::Unsigned(u64::from(v)),
        (Kind::Sfixed32, Payload::Fixed32(v)) => Integer::Signed(i64::from(v as i32)),
        (Kind::Fixed64, Payload::Fixed64(v)) => Integer::Unsigned(v),
        (Kind::Sfixed64, Payload::Fixed64(v)) => Integer::Signed(v as i64),
        _ => return None,
    })
}

/// One value of a field (a singular field, a list element or a map value).
struct Scalar<'a, 'b> {
    kind: &'a Kind,
    payload: Payload<'b>,
}

impl Serialize for Scalar<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mismatch = || S::Error::custom("proto3 JSON: a field's wire type does not match its descriptor");
        match (self.kind, self.payload) {
            (Kind::Double, Payload::Fixed64(v)) => match special_float(f64::from_bits(v)) {
                None => serializer.serialize_f64(f64::from_bits(v)),
                Some(text) => serializer.serialize_str(text),
            },
            (Kind::Float, Payload::Fixed32(v)) => match special_float(f64::from(f32::from_bits(v))) {
                None => serializer.serialize_f32(f32::from_bits(v)),
                Some(text) => serializer.serialize_str(text),
            },
            (Kind::Bool, Payload::Varint(v)) => serializer.serialize_bool(v != 0),
            (Kind::String, Payload::Bytes(b)) => serializer.serialize_str(std::str::from_utf8(b).map_err(S::Error::custom)?),
            (Kind::Bytes, Payload::Bytes(b)) => serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            (Kind::Enum(e), Payload::Varint(v)) => {
                let number = v as i32;
                if e.full_name() == "google.protobuf.NullValue" {
                    serializer.serialize_none()
                } else if let Some(value) = e.get_value(number) {
                    serializer.serialize_str(value.name())
                } else {
                    serializer.serialize_i32(number)
                }
            }
            (Kind::Message(m), Payload::Bytes(bytes)) => Wire { descriptor: m, bytes }.serialize(serializer),
            (Kind::Int64 | Kind::Uint64 | Kind::Sint64 | Kind::Fixed64 | Kind::Sfixed64, payload) => {
                serializer.collect_str(&integer(self.kind, payload).ok_or_else(mismatch)?)
            }
            (kind, payload) => match integer(kind, payload).ok_or_else(mismatch)? {
                Integer::Signed(n) => serializer.serialize_i64(n),
                Integer::Unsigned(n) => serializer.serialize_u64(n),
            },
        }
    }
}

/// What JSON says for the floats it has no numbers for.
fn special_float(v: f64) -> Option<&'static str> {
    if v.is_finite() {
        None
    } else if v.is_nan() {
        Some("NaN")
    } else if v > 0.0 {
        Some("Infinity")
    } else {
        Some("-Infinity")
    }
}

/// A map value left out of its entry: the kind's default.
struct Absent<'a> {
    kind: &'a Kind,
}

impl Serialize for Absent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Scalar { kind: self.kind, payload: zero(self.kind) }.serialize(serializer)
    }
}

/// The encoding of a kind's default value (what a map entry leaves out).
fn zero(kind: &Kind) -> Payload<'static> {
    match kind {
        Kind::String | Kind::Bytes | Kind::Message(_) => Payload::Bytes(&[]),
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => Payload::Fixed64(0),
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => Payload::Fixed32(0),
        _ => Payload::Varint(0),
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The writer against prost-reflect's own serializer (the reference), on a message with
    //! every kind of field, then on hand-made encodings prost-reflect reads the same way.

    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, Value};
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto, FileDescriptorProto, MessageOptions};

    use super::Wire;

    fn field(name: &str, number: i32, ty: Type, label: Label, type_name: Option<&str>) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(ty as i32),
            label: Some(label as i32),
            type_name: type_name.map(Into::into),
            ..Default::default()
        }
    }

    fn entry(name: &str, key: Type, value: Type, value_type: Option<&str>) -> DescriptorProto {
        DescriptorProto {
            name: Some(name.into()),
            field: vec![field("key", 1, key, Label::Optional, None), field("value", 2, value, Label::Optional, value_type)],
            options: Some(MessageOptions { map_entry: Some(true), ..Default::default() }),
            ..Default::default()
        }
    }

    pub(in crate::proto_json) fn pool() -> DescriptorPool {
        use Label::{Optional as O, Repeated as R};
        let fields = vec![
            field("d", 1, Type::Double, O, None),
            field("f", 2, Type::Float, O, None),
            field("i32", 3, Type::Int32, O, None),
            field("i64", 4, Type::Int64, O, None),
            field("u32", 5, Type::Uint32, O, None),
            field("u64", 6, Type::Uint64, O, None),
            field("s32", 7, Type::Sint32, O, None),
            field("s64", 8, Type::Sint64, O, None),
            field("fx32", 9, Type::Fixed32, O, None),
            field("fx64", 10, Type::Fixed64, O, None),
            field("sf32", 11, Type::Sfixed32, O, None),
            field("sf64", 12, Type::Sfixed64, O, None),
            field("flag", 13, Type::Bool, O, None),
            field("text", 14, Type::String, O, None),
            field("data", 15, Type::Bytes, O, None),
            field("color", 16, Type::Enum, O, Some(".t.Color")),
            field("child", 17, Type::Message, O, Some(".t.All")),
            field("rep_i32", 18, Type::Int32, R, None),
            field("rep_text", 19, Type::String, R, None),
            field("rep_child", 20, Type::Message, R, Some(".t.All")),
            field("counts", 21, Type::Message, R, Some(".t.All.CountsEntry")),
            field("by_id", 22, Type::Message, R, Some(".t.All.ByIdEntry")),
            field("at", 23, Type::Message, O, Some(".google.protobuf.Timestamp")),
            field("wrapped", 24, Type::Message, O, Some(".google.protobuf.Int64Value")),
            field("rep_color", 25, Type::Enum, R, Some(".t.Color")),
            field("flags", 26, Type::Message, R, Some(".t.All.FlagsEntry")),
            field("rep_f", 27, Type::Float, R, None),
            field("rep_u64", 28, Type::Uint64, R, None),
        ];
        let file = FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t".into()),
            dependency: vec!["google/protobuf/timestamp.proto".into(), "google/protobuf/wrappers.proto".into()],
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("All".into()),
                field: fields,
                nested_type: vec![
                    entry("CountsEntry", Type::String, Type::Int64, None),
                    entry("ByIdEntry", Type::Int32, Type::Message, Some(".t.All")),
                    entry("FlagsEntry", Type::Bool, Type::String, None),
                ],
                ..Default::default()
            }],
            enum_type: vec![EnumDescriptorProto {
                name: Some("Color".into()),
                value: ["RED", "GREEN"]
                    .iter()
                    .enumerate()
                    .map(|(i, n)| EnumValueDescriptorProto { name: Some((*n).into()), number: Some(i as i32), options: None })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut pool = DescriptorPool::global();
        pool.add_file_descriptor_proto(file).unwrap();
        pool
    }

    fn json_both(descriptor: &prost_reflect::MessageDescriptor, bytes: &[u8]) -> (serde_json::Value, serde_json::Value) {
        let ours = serde_json::to_value(Wire { descriptor, bytes }).unwrap();
        let reference = DynamicMessage::decode(descriptor.clone(), bytes).unwrap();
        let reference = reference.serialize_with_options(serde_json::value::Serializer, &super::SERIALIZE).unwrap();
        (ours, reference)
    }

    #[test]
    fn every_kind_of_field_matches_prost_reflect() {
        let pool = pool();
        let all = pool.get_message_by_name("t.All").unwrap();
        let m = every_kind(&pool);
        let bytes = m.encode_to_vec();
        let (ours, reference) = json_both(&all, &bytes);
        assert_eq!(ours, reference);
        assert_eq!(ours["i64"], "-9223372036854775808");
        let text = serde_json::to_string(&Wire { descriptor: &all, bytes: &bytes }).unwrap();
        assert!(text.contains(r#""f":0.1,"#), "floats print as floats: {text}");
        assert_eq!(ours["child"]["repF"], serde_json::json!(["NaN", "Infinity", -1.5]));
        assert_eq!(ours["wrapped"], "0");
        assert_eq!(ours["at"], "2023-11-14T22:13:20.500Z");
        assert_eq!(ours["color"], 7, "unknown enum numbers stay numbers");
        assert_eq!(ours["byId"]["-3"]["color"], "GREEN");
    }

    /// A message with every kind of field set.
    pub(in crate::proto_json) fn every_kind(pool: &DescriptorPool) -> DynamicMessage {
        let all = pool.get_message_by_name("t.All").unwrap();
        let mut m = DynamicMessage::new(all.clone());
        let set = |m: &mut DynamicMessage, name: &str, v: Value| m.set_field_by_name(name, v);
        set(&mut m, "d", Value::F64(-2.5e-300));
        set(&mut m, "f", Value::F32(0.1));
        set(&mut m, "i32", Value::I32(-7));
        set(&mut m, "i64", Value::I64(i64::MIN));
        set(&mut m, "u32", Value::U32(u32::MAX));
        set(&mut m, "u64", Value::U64(u64::MAX));
        set(&mut m, "s32", Value::I32(-123_456));
        set(&mut m, "s64", Value::I64(-9_000_000_000));
        set(&mut m, "fx32", Value::U32(42));
        set(&mut m, "fx64", Value::U64(1 << 60));
        set(&mut m, "sf32", Value::I32(-42));
        set(&mut m, "sf64", Value::I64(-(1 << 60)));
        set(&mut m, "flag", Value::Bool(true));
        set(&mut m, "text", Value::String("héllo \"quoted\"\n".into()));
        set(&mut m, "data", Value::Bytes(vec![0, 1, 2, 250, 251, 252, 253].into()));
        set(&mut m, "color", Value::EnumNumber(7));
        let mut child = DynamicMessage::new(all.clone());
        child.set_field_by_name("color", Value::EnumNumber(1));
        child.set_field_by_name("rep_f", Value::List(vec![Value::F32(f32::NAN), Value::F32(f32::INFINITY), Value::F32(-1.5)]));
        set(&mut m, "child", Value::Message(child.clone()));
        set(&mut m, "rep_i32", Value::List(vec![Value::I32(1), Value::I32(-1), Value::I32(300)]));
        set(&mut m, "rep_text", Value::List(vec![Value::String("a".into()), Value::String(String::new())]));
        set(&mut m, "rep_child", Value::List(vec![Value::Message(child.clone()), Value::Message(DynamicMessage::new(all.clone()))]));
        set(&mut m, "counts", Value::Map([(MapKey::String("x".into()), Value::I64(5))].into_iter().collect()));
        set(&mut m, "by_id", Value::Map([(MapKey::I32(-3), Value::Message(child))].into_iter().collect()));
        set(&mut m, "flags", Value::Map([(MapKey::Bool(false), Value::String("no".into()))].into_iter().collect()));
        let ts = pool.get_message_by_name("google.protobuf.Timestamp").unwrap();
        let mut at = DynamicMessage::new(ts);
        at.set_field_by_name("seconds", Value::I64(1_700_000_000));
        at.set_field_by_name("nanos", Value::I32(500_000_000));
        set(&mut m, "at", Value::Message(at));
        let w = pool.get_message_by_name("google.protobuf.Int64Value").unwrap();
        let mut wrapped = DynamicMessage::new(w);
        wrapped.set_field_by_name("value", Value::I64(0));
        set(&mut m, "wrapped", Value::Message(wrapped));
        set(&mut m, "rep_color", Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(0), Value::EnumNumber(9)]));
        set(&mut m, "rep_u64", Value::List(vec![Value::U64(u64::MAX), Value::U64(0)]));
        m
    }

    #[test]
    fn unpacked_repeated_fields_partial_map_entries_and_unknown_fields_read_like_prost_reflect() {
        let pool = pool();
        let all = pool.get_message_by_name("t.All").unwrap();
        let bytes: Vec<u8> = [
            &[0x90, 0x01, 5, 0x90, 0x01, 6][..], // rep_i32 (18), unpacked: 5, 6
            &[0xaa, 0x01, 3, 1 << 3 | 2, 1, b'k'], // counts (21): {"k": <absent value>}
            &[0xb2, 0x01, 0],                      // by_id (22): an entry with neither key nor value
            &[0x98, 0x06, 1],                      // 99, a field the descriptor does not know
            &[3 << 3, 1, 3 << 3, 2],               // i32 twice: the last counts
        ]
        .concat();
        let (ours, reference) = json_both(&all, &bytes);
        assert_eq!(ours, reference);
        assert_eq!(ours, serde_json::json!({"repI32": [5, 6], "counts": {"k": "0"}, "byId": {"0": {}}, "i32": 2}));
    }
}
