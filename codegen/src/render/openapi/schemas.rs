//! JSON Schemas for messages and enums, following the proto3 JSON mapping, and the
//! `components.schemas` they are collected in (every type reachable from the operations).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};

use crate::ir::{Api, ApiDocs, Enum, Field, FieldKind, Message, OpenApiV2, Scalar, TypeRef};

/// The component name of the error model (`default` responses, stream errors).
pub const STATUS: &str = "google.rpc.Status";

/// Every message and enum of an [`Api`] by full name: built once per run and shared by the
/// documents of all its services (building it per document made generation cost grow with
/// services × messages).
pub struct Index<'a> {
    /// The IR indexed (its grpc-gateway annotations describe the documents too).
    pub(super) api: &'a Api,
    messages: HashMap<String, &'a Message>,
    enums: HashMap<String, &'a Enum>,
}

impl<'a> Index<'a> {
    /// Indexes the types of `api`.
    pub fn new(api: &'a Api) -> Self {
        Index {
            api,
            messages: api.messages.iter().map(|m| (m.type_ref().full_name(), m)).collect(),
            enums: api.enums.iter().map(|e| (e.type_ref().full_name(), e)).collect(),
        }
    }
}

/// The schemas of one document: types are added as operations reference them, and rendered (with
/// everything they reference in turn) by [`Schemas::finish`].
pub struct Schemas<'a> {
    index: &'a Index<'a>,
    /// Referenced by name and not rendered yet.
    pending: Vec<String>,
    /// Every name referenced so far.
    referenced: BTreeSet<String>,
    /// Schemas rendered ahead of [`Schemas::finish`] (request bodies without path fields).
    extra: BTreeMap<String, Value>,
    /// (message, fields removed) → component name of the body schema.
    bodies: BTreeMap<(String, Vec<String>), String>,
    /// grpc-gateway's `openapiv2_schema` / `openapiv2_field` annotations.
    openapiv2: &'a OpenApiV2,
}

impl<'a> Schemas<'a> {
    /// No schemas yet; types are looked up in `index`.
    pub fn new(index: &'a Index<'a>) -> Self {
        Schemas {
            index,
            pending: Vec::new(),
            referenced: BTreeSet::new(),
            extra: BTreeMap::new(),
            bodies: BTreeMap::new(),
            openapiv2: &index.api.openapiv2,
        }
    }

    /// The definition of a message, if it was read.
    pub fn message(&self, ty: &TypeRef) -> Option<&'a Message> {
        self.index.messages.get(&ty.full_name()).copied()
    }

    /// The schema of a value of message type `ty`: inline for well-known types with a special
    /// JSON form, else a `$ref`.
    pub fn message_schema(&mut self, ty: &TypeRef) -> Value {
        let name = ty.full_name();
        well_known(&name).unwrap_or_else(|| self.reference(name))
    }

    /// A `$ref` to the error model.
    pub fn status(&mut self) -> Value {
        self.reference(STATUS.to_owned())
    }

    /// The schema of a field's values (arrays for repeated fields), without its description.
    pub fn field_type(&mut self, field: &Field) -> Value {
        let item = self.kind(&field.kind);
        if field.repeated {
            json!({"type": "array", "items": item})
        } else {
            item
        }
    }

    /// The schema of a query or path parameter of this field type: scalars and enums inline.
    pub fn parameter(&mut self, field: &Field) -> Value {
        let item = match &field.kind {
            FieldKind::Enum(ty) => match self.index.enums.get(&ty.full_name()) {
                Some(e) if ty.full_name() != NULL_VALUE => {
                    json!({"type": "string", "enum": e.values.iter().map(|v| v.name.clone()).collect::<Vec<_>>()})
                }
                _ => self.kind(&field.kind),
            },
            kind => self.kind(kind),
        };
        if field.repeated {
            json!({"type": "array", "items": item})
        } else {
            item
        }
    }

    /// A `$ref` to the schema of message `ty` without the top-level fields `removed` (a request
    /// body whose other fields come from the path): `<message>_Body`, a fresh name per distinct set.
    pub fn body_without(&mut self, ty: &TypeRef, removed: &[String]) -> Value {
        let full = ty.full_name();
        let (Some(message), false) = (self.message(ty), removed.is_empty()) else {
            return self.message_schema(ty);
        };
        let key = (full.clone(), removed.to_vec());
        if let Some(name) = self.bodies.get(&key) {
            return reference_to(name);
        }
        let taken = |n: &String, s: &Self| {
            s.index.messages.contains_key(n) || s.index.enums.contains_key(n) || s.bodies.values().any(|b| b == n)
        };
        let mut name = format!("{full}_Body");
        let mut n = 1;
        while taken(&name, self) {
            n += 1;
            name = format!("{full}_Body{n}");
        }
        self.bodies.insert(key, name.clone());
        let mut schema = self.render_message(message, removed);
        let fields = removed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
        let note = format!("`{full}` without {fields}, which the path sets.");
        let description = match schema.get("description").and_then(Value::as_str) {
            Some(d) => format!("{note}\n\n{d}"),
            None => note,
        };
        schema["description"] = Value::String(description);
        self.extra.insert(name.clone(), schema);
        reference_to(&name)
    }

    /// Renders every referenced schema (and what those reference), by component name.
    pub fn finish(mut self) -> Map<String, Value> {
        let mut out: Map<String, Value> = std::mem::take(&mut self.extra).into_iter().collect();
        while let Some(name) = self.pending.pop() {
            let schema = if let Some(m) = self.index.messages.get(&name).copied() {
                self.render_message(m, &[])
            } else if let Some(e) = self.index.enums.get(&name).copied() {
                render_enum(e)
            } else if name == STATUS {
                self.synthetic_status()
            } else {
                json!({"type": "object", "description": format!("`{name}` (not defined in the specs read)")})
            };
            out.insert(name, schema);
        }
        out
    }

    fn reference(&mut self, name: String) -> Value {
        let r = reference_to(&name);
        if self.referenced.insert(name.clone()) {
            self.pending.push(name);
        }
        r
    }

    fn kind(&mut self, kind: &FieldKind) -> Value {
        match kind {
            FieldKind::Scalar(s) => scalar(*s),
            FieldKind::Enum(ty) if ty.full_name() == NULL_VALUE => json!({"type": "null"}),
            FieldKind::Enum(ty) => self.reference(ty.full_name()),
            FieldKind::Message(ty) => self.message_schema(ty),
            FieldKind::Map(key, value) => {
                let mut schema = json!({"type": "object", "additionalProperties": self.kind(value)});
                if let Some(names) = map_key_names(*key) {
                    schema["propertyNames"] = names;
                }
                schema
            }
        }
    }

    fn render_message(&mut self, m: &Message, without: &[String]) -> Value {
        let mut properties = Map::new();
        for f in m.fields.iter().filter(|f| !without.contains(&f.name)) {
            let mut schema = self.field_type(f);
            let mut docs = f.docs.join("\n");
            if let Some(oneof) = f.oneof.and_then(|i| m.oneofs.get(i)) {
                let members: Vec<String> = m
                    .fields
                    .iter()
                    .filter(|g| g.oneof == f.oneof)
                    .map(|g| format!("`{}`", g.json_name))
                    .collect();
                let note = format!("Part of oneof `{}`: at most one of {} may be set.", oneof.name, members.join(", "));
                docs = if docs.is_empty() { note } else { format!("{docs}\n\n{note}") };
            }
            describe(&mut schema, &docs, f.deprecated);
            if let Some(given) = self.openapiv2.fields.get(&format!("{}.{}", m.type_ref().full_name(), f.name)) {
                annotate(&mut schema, given);
            }
            properties.insert(f.json_name.clone(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties});
        describe(&mut schema, &m.docs.join("\n"), m.deprecated);
        if let Some(given) = self.openapiv2.messages.get(&m.type_ref().full_name()) {
            annotate(&mut schema, given);
        }
        schema
    }

    /// The error model when `google/rpc/status.proto` was not read.
    fn synthetic_status(&mut self) -> Value {
        json!({
            "type": "object",
            "description": "An error: the gRPC status (google.rpc.Status) as JSON.",
            "properties": {
                "code": {"type": "integer", "format": "int32", "description": "The status code (google.rpc.Code), e.g. 5 for NOT_FOUND."},
                "message": {"type": "string", "description": "A developer-facing error message."},
                "details": {"type": "array", "items": any(), "description": "Messages that carry the error details."}
            }
        })
    }
}

const NULL_VALUE: &str = "google.protobuf.NullValue";

fn reference_to(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Adds a description (when there is one) and `deprecated: true` (when marked) to a schema.
pub fn describe(schema: &mut Value, docs: &str, deprecated: bool) {
    if let Value::Object(map) = schema {
        if !docs.is_empty() {
            map.insert("description".into(), Value::String(docs.to_owned()));
        }
        if deprecated {
            map.insert("deprecated".into(), Value::Bool(true));
        }
    }
}

/// What an `openapiv2_schema` / `openapiv2_field` annotation says: its title and description
/// replace the comments', its example (JSON text, kept as a string when it is not JSON) is added.
fn annotate(schema: &mut Value, docs: &ApiDocs) {
    let Value::Object(map) = schema else { return };
    if !docs.title.is_empty() {
        map.insert("title".into(), Value::String(docs.title.clone()));
    }
    if !docs.description.is_empty() {
        map.insert("description".into(), Value::String(docs.description.clone()));
    }
    if !docs.example.is_empty() {
        let example = serde_json::from_str(&docs.example).unwrap_or_else(|_| Value::String(docs.example.clone()));
        map.insert("examples".into(), json!([example]));
    }
}

/// Scalars in the proto3 JSON mapping: 64-bit integers are decimal strings, bytes base64.
fn scalar(s: Scalar) -> Value {
    match s {
        Scalar::Double => json!({"type": "number", "format": "double"}),
        Scalar::Float => json!({"type": "number", "format": "float"}),
        Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => json!({"type": "integer", "format": "int32"}),
        Scalar::Uint32 | Scalar::Fixed32 => json!({"type": "integer", "format": "uint32", "minimum": 0}),
        Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Scalar::Uint64 | Scalar::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Scalar::Bool => json!({"type": "boolean"}),
        Scalar::String => json!({"type": "string"}),
        Scalar::Bytes => json!({"type": "string", "format": "byte", "contentEncoding": "base64"}),
    }
}

/// What the JSON object keys of a map with this key type look like (they are always strings).
fn map_key_names(key: Scalar) -> Option<Value> {
    match key {
        Scalar::Bool => Some(json!({"enum": ["true", "false"]})),
        Scalar::String => None,
        Scalar::Uint32 | Scalar::Fixed32 | Scalar::Uint64 | Scalar::Fixed64 => Some(json!({"pattern": "^[0-9]+$"})),
        _ => Some(json!({"pattern": "^-?[0-9]+$"})),
    }
}

fn any() -> Value {
    json!({
        "type": "object",
        "description": "Any message: `@type` names it (`type.googleapis.com/<full name>`), the other properties are its JSON form.",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": true
    })
}

/// The special JSON forms of the well-known types, inlined where they are used.
pub fn well_known(full_name: &str) -> Option<Value> {
    let name = full_name.strip_prefix("google.protobuf.")?;
    Some(match name {
        "Timestamp" => json!({"type": "string", "format": "date-time", "description": "An RFC 3339 timestamp in UTC, e.g. `2024-01-31T12:00:00Z`."}),
        "Duration" => json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "description": "Seconds with up to 9 fractional digits and an `s` suffix, e.g. `1.5s`."}),
        "FieldMask" => json!({"type": "string", "description": "Field paths in lowerCamelCase, comma-separated, e.g. `title,author.displayName`."}),
        "Struct" => json!({"type": "object", "additionalProperties": true}),
        "Value" => json!({}),
        "ListValue" => json!({"type": "array", "items": {}}),
        "Empty" => json!({"type": "object"}),
        "Any" => any(),
        "DoubleValue" => scalar(Scalar::Double),
        "FloatValue" => scalar(Scalar::Float),
        "Int64Value" => scalar(Scalar::Int64),
        "UInt64Value" => scalar(Scalar::Uint64),
        "Int32Value" => scalar(Scalar::Int32),
        "UInt32Value" => scalar(Scalar::Uint32),
        "BoolValue" => scalar(Scalar::Bool),
        "StringValue" => scalar(Scalar::String),
        "BytesValue" => scalar(Scalar::Bytes),
        _ => return None,
    })
}

/// Whether a message-typed field can be a query parameter as a whole (its JSON form is a scalar).
pub fn is_scalar_like(full_name: &str) -> bool {
    well_known(full_name)
        .is_some_and(|s| matches!(s.get("type").and_then(Value::as_str), Some("string" | "number" | "integer" | "boolean")))
}

/// An enum: its value names, with what each means and that numbers are accepted too.
fn render_enum(e: &Enum) -> Value {
    let mut docs = e.docs.join("\n");
    let values: Vec<String> = e
        .values
        .iter()
        .filter(|v| !v.docs.is_empty() || v.deprecated)
        .map(|v| {
            let mut line = format!("- `{}`", v.name);
            if !v.docs.is_empty() {
                line.push_str(": ");
                line.push_str(&v.docs.join(" "));
            }
            if v.deprecated {
                line.push_str(" (deprecated)");
            }
            line
        })
        .collect();
    for part in [values.join("\n"), "Requests may also give a value's number instead of its name.".to_owned()] {
        if part.is_empty() {
            continue;
        }
        if !docs.is_empty() {
            docs.push_str("\n\n");
        }
        docs.push_str(&part);
    }
    let mut schema = json!({"type": "string", "enum": e.values.iter().map(|v| v.name.clone()).collect::<Vec<_>>()});
    describe(&mut schema, &docs, e.deprecated);
    schema
}
