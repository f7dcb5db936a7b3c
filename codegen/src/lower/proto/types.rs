//! Message and enum definitions → [`crate::ir::Message`] / [`crate::ir::Enum`].

use prost_reflect::{EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};

use super::source::SourceInfo;
use crate::ir::{Enum, EnumValue, Field, FieldKind, Message, Oneof, Scalar, TypeRef};

/// Appends every message (nested ones after their parent, map entries left out) and every enum
/// of `file`.
pub(super) fn lower_file(file: &FileDescriptor, comments: &SourceInfo, messages: &mut Vec<Message>, enums: &mut Vec<Enum>) {
    for e in file.enums() {
        enums.push(lower_enum(&e, comments));
    }
    for m in file.messages() {
        lower_message(&m, comments, messages, enums);
    }
}

/// The reference to a type declared in `package` inside `parent` (if nested).
pub(super) fn type_ref(package: &str, parent: Option<MessageDescriptor>, name: &str) -> TypeRef {
    let mut parents = Vec::new();
    let mut parent = parent;
    while let Some(p) = parent {
        parents.push(p.name().to_owned());
        parent = p.parent_message();
    }
    parents.reverse();
    TypeRef { package: package.to_owned(), parents, name: name.to_owned() }
}

fn lower_message(m: &MessageDescriptor, comments: &SourceInfo, messages: &mut Vec<Message>, enums: &mut Vec<Enum>) {
    if m.is_map_entry() {
        return;
    }
    let written_oneofs: Vec<_> = m.oneofs().filter(|o| !o.is_synthetic()).collect();
    let ty = type_ref(m.package_name(), m.parent_message(), m.name());
    messages.push(Message {
        package: ty.package,
        parents: ty.parents,
        name: ty.name,
        docs: comments.get(m.path()),
        deprecated: m.descriptor_proto().options.as_ref().is_some_and(|o| o.deprecated()),
        fields: m
            .fields()
            .map(|f| {
                let oneof = f
                    .containing_oneof()
                    .and_then(|o| written_oneofs.iter().position(|w| w.name() == o.name()));
                lower_field(&f, oneof, comments)
            })
            .collect(),
        oneofs: written_oneofs.iter().map(|o| Oneof { name: o.name().to_owned(), docs: comments.get(o.path()) }).collect(),
    });
    for e in m.child_enums() {
        enums.push(lower_enum(&e, comments));
    }
    for child in m.child_messages() {
        lower_message(&child, comments, messages, enums);
    }
}

fn lower_field(f: &FieldDescriptor, oneof: Option<usize>, comments: &SourceInfo) -> Field {
    let proto = f.field_descriptor_proto();
    let kind = if f.is_map() {
        let Kind::Message(entry) = f.kind() else { unreachable!("map fields have entry messages") };
        let key = match kind_of(&entry.map_entry_key_field()) {
            FieldKind::Scalar(s) => s,
            _ => Scalar::String,
        };
        FieldKind::Map(key, Box::new(kind_of(&entry.map_entry_value_field())))
    } else {
        kind_of(f)
    };
    Field {
        name: f.name().to_owned(),
        json_name: f.json_name().to_owned(),
        number: f.number(),
        kind,
        repeated: f.is_list(),
        proto3_optional: proto.proto3_optional(),
        oneof,
        docs: comments.get_or_trailing(f.path()),
        deprecated: proto.options.as_ref().is_some_and(|o| o.deprecated()),
    }
}

fn kind_of(f: &FieldDescriptor) -> FieldKind {
    let scalar = match f.kind() {
        Kind::Message(m) => return FieldKind::Message(type_ref(m.package_name(), m.parent_message(), m.name())),
        Kind::Enum(e) => return FieldKind::Enum(type_ref(e.package_name(), e.parent_message(), e.name())),
        Kind::Double => Scalar::Double,
        Kind::Float => Scalar::Float,
        Kind::Int32 => Scalar::Int32,
        Kind::Int64 => Scalar::Int64,
        Kind::Uint32 => Scalar::Uint32,
        Kind::Uint64 => Scalar::Uint64,
        Kind::Sint32 => Scalar::Sint32,
        Kind::Sint64 => Scalar::Sint64,
        Kind::Fixed32 => Scalar::Fixed32,
        Kind::Fixed64 => Scalar::Fixed64,
        Kind::Sfixed32 => Scalar::Sfixed32,
        Kind::Sfixed64 => Scalar::Sfixed64,
        Kind::Bool => Scalar::Bool,
        Kind::String => Scalar::String,
        Kind::Bytes => Scalar::Bytes,
    };
    FieldKind::Scalar(scalar)
}

fn lower_enum(e: &EnumDescriptor, comments: &SourceInfo) -> Enum {
    let ty = type_ref(e.package_name(), e.parent_message(), e.name());
    Enum {
        package: ty.package,
        parents: ty.parents,
        name: ty.name,
        docs: comments.get(e.path()),
        deprecated: e.enum_descriptor_proto().options.as_ref().is_some_and(|o| o.deprecated()),
        values: e
            .values()
            .map(|v| EnumValue {
                name: v.name().to_owned(),
                number: v.number(),
                docs: comments.get_or_trailing(v.path()),
                deprecated: v.enum_value_descriptor_proto().options.as_ref().is_some_and(|o| o.deprecated()),
            })
            .collect(),
    }
}
