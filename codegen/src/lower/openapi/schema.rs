//! Schemas → [`Type`]s and named [`Model`]s.
//!
//! Component schemas keep their names; inline schemas that need a type of their own (objects,
//! enums, unions) are named from where they appear (`Pet` + `category` → `Pet_category`, an
//! operation's body → `<operationId>_body`), made unique by their Rust spelling.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::{doc_lines, escape, follow_refs_at, Warning};
use crate::ident;
use crate::ir::model::{Discriminator, Field, Model, ModelKind, Type};

/// How deeply schemas may nest in place (properties, items, combinators, references followed
/// before a component is reached) before the rest is typed as any JSON value, with a warning:
/// deeper than real APIs go, shallow enough for any thread's stack. Component schemas reached
/// deeper than [`DEFER_DEPTH`] are lowered later, from the top, so chains of components never
/// count.
const MAX_DEPTH: usize = 48;
/// Components first reached below this depth are queued instead of lowered in place.
const DEFER_DEPTH: usize = 16;

/// Walks schemas, collecting named models.
pub(crate) struct Lowerer<'a> {
    doc: &'a Value,
    models: Vec<Model>,
    /// Component or inline schema pointer → model name.
    by_pointer: HashMap<String, String>,
    /// Rust names taken (upper camel), to keep model names unique.
    taken: BTreeSet<String>,
    warnings: Vec<Warning>,
    /// Schemas being lowered (pointer), to stop on reference cycles.
    active: BTreeSet<String>,
    /// Pointers of schemas already lowered into models.
    done: std::collections::HashSet<String>,
    /// Inline schemas lowered into models, by their JSON text.
    inline_by_text: HashMap<String, String>,
    /// How many schemas are being lowered one inside the other right now.
    depth: usize,
    /// Component schemas named but not lowered yet (reached too deep to lower in place).
    pending: Vec<String>,
    /// Operation request and response models by their shape (the `Debug` text of the kind) →
    /// the name of the first model with that shape ([`Lowerer::push_operation_model`]).
    operation_shapes: HashMap<String, String>,
}

/// A lowered schema: its type and whether `null` is allowed.
pub(crate) struct Lowered {
    pub ty: Type,
    pub nullable: bool,
}

impl<'a> Lowerer<'a> {
    pub(crate) fn new(doc: &'a Value) -> Self {
        let mut taken = BTreeSet::new();
        // Names the generated module itself uses (its types name these standard prelude types
        // without a path).
        taken.extend(["Operations", "Option", "String", "Vec"].map(str::to_owned));
        Lowerer {
            doc,
            models: Vec::new(),
            by_pointer: HashMap::new(),
            taken,
            warnings: Vec::new(),
            active: BTreeSet::new(),
            done: Default::default(),
            inline_by_text: HashMap::new(),
            depth: 0,
            pending: Vec::new(),
            operation_shapes: HashMap::new(),
        }
    }

    pub(crate) fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        self.warnings.push(Warning { pointer: pointer.to_owned(), message: message.into() });
    }

    /// Claims a unique name for a model built from `base`: unique as the Rust type name
    /// rendering gives it ([`ident::type_name`]), so names that differ only by case,
    /// separators or characters Rust does not allow stay apart.
    pub(crate) fn claim(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        let mut n = 2;
        loop {
            let rust = ident::type_name(&name);
            if !self.taken.contains(&rust) {
                self.taken.insert(rust);
                return name;
            }
            name = format!("{base}{n}");
            n += 1;
        }
    }

    /// [`Lowerer::claim`] for an operation's request or response type, which the service
    /// trait names next to switchboard's `Request`, `Response`, `Status` and core's `Result`:
    /// never one of those (an operation id such as `_` would give `Request`).
    pub(crate) fn claim_operation_type(&mut self, base: &str) -> String {
        let mut name = self.claim(base);
        while matches!(ident::type_name(&name).as_str(), "Request" | "Response" | "Status" | "Result") {
            name = self.claim(&format!("{base}_type"));
        }
        name
    }

    /// Claims the names of every component schema (so that inline names never take them);
    /// with `all`, lowers them all too, otherwise only those an operation reaches become models.
    pub(crate) fn components(&mut self, all: bool) {
        let Some(schemas) = self.doc.pointer("/components/schemas").and_then(Value::as_object) else { return };
        // Claim all component names first, so inline names never take them.
        let names: Vec<String> = schemas.keys().cloned().collect();
        for name in &names {
            let pointer = format!("/components/schemas/{}", escape(name));
            let claimed = self.claim(name);
            self.by_pointer.insert(pointer, claimed);
        }
        if all {
            for name in &names {
                let pointer = format!("/components/schemas/{}", escape(name));
                self.named(&pointer);
            }
        }
    }

    /// The model for the schema at `pointer` (lowering it on first use; when reached deep
    /// inside other schemas, queued for [`Lowerer::lower_pending`] instead).
    fn named(&mut self, pointer: &str) -> Option<String> {
        let name = self.by_pointer.get(pointer).cloned()?;
        if self.done.contains(pointer) || self.active.contains(pointer) {
            return Some(name);
        }
        let doc = self.doc;
        let schema = doc.pointer(pointer)?;
        if self.depth > DEFER_DEPTH {
            if !self.pending.iter().any(|p| p == pointer) {
                self.pending.push(pointer.to_owned());
            }
            return Some(name);
        }
        self.active.insert(pointer.to_owned());
        let (kind, docs, deprecated) = self.model_kind(schema, pointer, &name);
        self.active.remove(pointer);
        self.done.insert(pointer.to_owned());
        self.pending.retain(|p| p != pointer);
        self.models.push(Model { name: name.clone(), pointer: pointer.to_owned(), docs, deprecated, kind });
        Some(name)
    }

    /// Lowers the component schemas queued by [`Lowerer::named`] (and those they reach), from
    /// the top: a loop, not recursion, however long the chain of references.
    pub(crate) fn lower_pending(&mut self) {
        while let Some(pointer) = self.pending.pop() {
            let depth = std::mem::replace(&mut self.depth, 0);
            self.named(&pointer);
            self.depth = depth;
        }
    }

    /// The model kind of a named schema: structs, enums and unions keep their shape; anything
    /// else is an alias.
    fn model_kind(&mut self, schema: &Value, pointer: &str, name: &str) -> (ModelKind, Vec<String>, bool) {
        let docs = docs_of(schema);
        let deprecated = schema.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
        let kind = match self.shape(schema, pointer, name) {
            Shape::Model(kind) => kind,
            Shape::Type(ty) => ModelKind::Alias(ty),
        };
        (kind, docs, deprecated)
    }

    /// Lowers a schema used in place (a property, an item, a parameter, a body): inline
    /// structs, enums and unions get a model named `hint`.
    pub(crate) fn lower(&mut self, schema: &Value, pointer: &str, hint: &str) -> Lowered {
        let nullable = self.nullable(schema);
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            return Lowered { ty: self.reference(target, pointer), nullable };
        }
        // Identical inline schemas (common in large APIs: the same object spelled out under many
        // operations) share one model.
        let key = if is_inline_model(schema) { serde_json::to_string(schema).ok() } else { None };
        if let Some(name) = key.as_ref().and_then(|k| self.inline_by_text.get(k)) {
            return Lowered { ty: Type::Named(name.clone()), nullable };
        }
        if self.active.contains(pointer) {
            // The same schema again inside itself: only through `allOf` merging, which copies
            // the parts' properties into the merged type.
            self.warn(pointer, "schema contains itself (through allOf); typed as any JSON value here");
            return Lowered { ty: Type::Json, nullable };
        }
        self.active.insert(pointer.to_owned());
        let shape = self.shape(schema, pointer, hint);
        self.active.remove(pointer);
        let ty = match shape {
            Shape::Type(ty) => ty,
            Shape::Model(kind) => {
                let name = self.claim(hint);
                if let Some(k) = key {
                    self.inline_by_text.insert(k, name.clone());
                }
                // A `$ref` to this inline schema (from another operation, say) finds the model.
                self.by_pointer.insert(pointer.to_owned(), name.clone());
                self.done.insert(pointer.to_owned());
                let docs = docs_of(schema);
                let deprecated = schema.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
                self.models.push(Model { name: name.clone(), pointer: pointer.to_owned(), docs, deprecated, kind });
                Type::Named(name)
            }
        };
        Lowered { ty, nullable }
    }

    fn reference(&mut self, target: &str, from: &str) -> Type {
        let Some(local) = target.strip_prefix('#') else {
            self.warn(from, format!("$ref {target:?} is not local after bundling; typed as any JSON value"));
            return Type::Json;
        };
        let local = percent_decode(local);
        if let Some(name) = self.named(&local) {
            return Type::Named(name);
        }
        let doc = self.doc;
        let Some(schema) = doc.pointer(&local) else {
            self.warn(from, format!("$ref {target:?} points at nothing; typed as any JSON value"));
            return Type::Json;
        };
        if self.active.contains(&local) {
            self.warn(from, format!("$ref {target:?} refers back to itself through non-component schemas; typed as any JSON value"));
            return Type::Json;
        }
        // A schema somewhere else in the document (under paths, say): lower it once, named by
        // its last segments (`lower` marks it active).
        let hint: String = local.rsplit('/').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("_");
        self.lower(schema, &local, &hint).ty
    }

    fn nullable(&self, schema: &Value) -> bool {
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return true;
        }
        if let Some(Value::Array(types)) = schema.get("type") {
            if types.iter().any(|t| t == "null") {
                return true;
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(items)) = schema.get(key) {
                if items.iter().any(is_null_schema) {
                    return true;
                }
            }
        }
        false
    }

    /// The shape of `schema`, depth-limited: past [`MAX_DEPTH`] schemas in place, any JSON value
    /// (with a warning naming the pointer).
    fn shape(&mut self, schema: &Value, pointer: &str, hint: &str) -> Shape {
        if self.depth >= MAX_DEPTH {
            self.warn(pointer, format!("schemas nest more than {MAX_DEPTH} levels deep here; typed as any JSON value"));
            return Shape::Type(Type::Json);
        }
        self.depth += 1;
        let shape = self.shape_at_depth(schema, pointer, hint);
        self.depth -= 1;
        shape
    }

    fn shape_at_depth(&mut self, schema: &Value, pointer: &str, hint: &str) -> Shape {
        let Some(obj) = schema.as_object() else {
            // `true` / `{}`-like schemas.
            return Shape::Type(Type::Json);
        };
        if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
            return Shape::Type(self.reference(target, pointer));
        }
        if let Some(Value::Array(parts)) = obj.get("allOf") {
            return self.all_of(obj, parts, pointer, hint);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(parts)) = obj.get(key) {
                return self.one_of(obj, parts, &format!("{pointer}/{key}"), hint);
            }
        }
        if let Some(Value::Array(values)) = obj.get("enum") {
            return self.enumeration(obj, values, pointer);
        }
        let ty = primary_type(obj);
        match ty.as_deref() {
            Some("object") | None if obj.contains_key("properties") => Shape::Model(self.structure(obj, pointer, hint)),
            Some("object") => Shape::Type(self.map(obj, pointer, hint)),
            None if obj.contains_key("additionalProperties") => Shape::Type(self.map(obj, pointer, hint)),
            Some("array") => {
                let item = match obj.get("items") {
                    Some(items) => self.lower(items, &format!("{pointer}/items"), &format!("{hint}_item")).ty,
                    None => Type::Json,
                };
                Shape::Type(Type::Array(Box::new(item)))
            }
            Some("string") => Shape::Type(match obj.get("format").and_then(Value::as_str) {
                Some("date-time") => Type::DateTime,
                Some("date") => Type::Date,
                Some("uuid") => Type::Uuid,
                Some("byte") => Type::Base64,
                Some("binary") => Type::Binary,
                _ => Type::String,
            }),
            Some("integer") => Shape::Type(match obj.get("format").and_then(Value::as_str) {
                Some("int32") => Type::I32,
                _ => Type::I64,
            }),
            Some("number") => Shape::Type(match obj.get("format").and_then(Value::as_str) {
                Some("float") => Type::F32,
                _ => Type::F64,
            }),
            Some("boolean") => Shape::Type(Type::Bool),
            Some("null") => Shape::Type(Type::Json),
            None => Shape::Type(Type::Json),
            Some(other) => {
                self.warn(pointer, format!("unknown type {other:?}; typed as any JSON value"));
                Shape::Type(Type::Json)
            }
        }
    }

    fn map(&mut self, obj: &Map<String, Value>, pointer: &str, hint: &str) -> Type {
        match obj.get("additionalProperties") {
            Some(Value::Object(ap)) if !ap.is_empty() => {
                let value = self.lower(&Value::Object(ap.clone()), &format!("{pointer}/additionalProperties"), &format!("{hint}_value"));
                Type::Map(Box::new(value.ty))
            }
            _ => Type::Map(Box::new(Type::Json)),
        }
    }

    fn structure(&mut self, obj: &Map<String, Value>, pointer: &str, hint: &str) -> ModelKind {
        let required: Vec<&str> =
            obj.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let props: Vec<(String, Value, String)> = match obj.get("properties") {
            Some(Value::Object(props)) => {
                props.iter().map(|(name, prop)| (name.clone(), prop.clone(), format!("{pointer}/properties/{}", escape(name)))).collect()
            }
            _ => Vec::new(),
        };
        let additional = obj.get("additionalProperties").map(|ap| (ap.clone(), format!("{pointer}/additionalProperties")));
        self.build_struct(&props, &required, additional.as_ref(), hint)
    }

    /// A struct of these properties (name, schema, where the schema is in the document).
    fn build_struct(&mut self, props: &[(String, Value, String)], required: &[&str], additional: Option<&(Value, String)>, hint: &str) -> ModelKind {
        let mut fields = Vec::new();
        for (name, prop, prop_pointer) in props {
            fields.push(self.field(name, prop, prop_pointer, &format!("{hint}_{name}"), required.contains(&name.as_str())));
        }
        let additional = match additional {
            Some((ap @ Value::Object(m), at)) if !m.is_empty() => Some(self.lower(ap, at, &format!("{hint}_value")).ty),
            _ => None,
        };
        ModelKind::Struct { fields, additional }
    }

    pub(crate) fn field(&mut self, name: &str, schema: &Value, pointer: &str, hint: &str, required: bool) -> Field {
        let lowered = self.lower(schema, pointer, hint);
        let get_bool = |k: &str| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
        Field {
            name: name.to_owned(),
            ty: lowered.ty,
            required,
            nullable: lowered.nullable,
            default: schema.get("default").cloned(),
            docs: docs_of(schema),
            read_only: get_bool("readOnly"),
            write_only: get_bool("writeOnly"),
            deprecated: get_bool("deprecated"),
            boxed: false,
        }
    }

    /// `allOf`: merged into one struct when every part is an object (references followed);
    /// a single part is that part; otherwise the first part, with a warning.
    fn all_of(&mut self, obj: &Map<String, Value>, parts: &[Value], pointer: &str, hint: &str) -> Shape {
        let mut others: Map<String, Value> = obj.clone();
        others.remove("allOf");
        let has_own = others.contains_key("properties");
        // Parts that only annotate (`{description: ...}` beside a `$ref`, as many generators
        // write) do not change the type.
        let typed: Vec<(usize, &Value)> = parts.iter().enumerate().filter(|(_, p)| !is_annotation(p)).collect();
        if let ([(i, only)], false) = (typed.as_slice(), has_own) {
            return self.shape(only, &format!("{pointer}/allOf/{i}"), hint);
        }
        // Each property keeps the pointer of the schema it comes from, so that a part reached
        // again inside itself is seen as the same schema (and not copied forever).
        let mut merged_props: Vec<(String, Value, String)> = Vec::new();
        let mut required: Vec<String> = Vec::new();
        let mut additional: Option<(Value, String)> = None;
        let mut mergeable = true;
        // Parts reached through references: each merged once (`allOf` of the same part twice, or
        // of itself, adds nothing).
        let mut seen: BTreeSet<String> = BTreeSet::new();
        seen.insert(pointer.to_owned());
        let mut stack: Vec<(Value, String, usize)> =
            parts.iter().enumerate().map(|(i, p)| (p.clone(), format!("{pointer}/allOf/{i}"), 0)).collect();
        stack.push((Value::Object(others), pointer.to_owned(), 0));
        stack.reverse();
        while let Some((part, from, depth)) = stack.pop() {
            let Some((part, at)) = follow_refs_at(self.doc, &part, &from) else {
                mergeable = false;
                break;
            };
            if at != from && !seen.insert(at.clone()) {
                continue;
            }
            let part = part.clone();
            let Some(p) = part.as_object() else { continue };
            if let Some(Value::Array(inner)) = p.get("allOf") {
                if depth > 16 {
                    mergeable = false;
                    break;
                }
                for (i, v) in inner.iter().enumerate().rev() {
                    stack.push((v.clone(), format!("{at}/allOf/{i}"), depth + 1));
                }
            }
            if p.contains_key("oneOf") || p.contains_key("anyOf") || p.contains_key("enum") {
                mergeable = false;
                break;
            }
            match primary_type(p).as_deref() {
                Some("object") | None => {}
                _ => {
                    mergeable = false;
                    break;
                }
            }
            if let Some(Value::Object(props)) = p.get("properties") {
                for (k, v) in props {
                    let from = format!("{at}/properties/{}", escape(k));
                    match merged_props.iter_mut().find(|(name, _, _)| name == k) {
                        Some(slot) => *slot = (k.clone(), v.clone(), from),
                        None => merged_props.push((k.clone(), v.clone(), from)),
                    }
                }
            }
            if let Some(Value::Array(r)) = p.get("required") {
                required.extend(r.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            if let Some(ap @ Value::Object(_)) = p.get("additionalProperties") {
                additional = Some((ap.clone(), format!("{at}/additionalProperties")));
            }
        }
        if !mergeable {
            // Typing it as one part would drop the others' properties: keep the whole value.
            self.warn(pointer, "allOf of parts that are not all objects (a union, an enum, a scalar) cannot be merged into one type; typed as any JSON value");
            return Shape::Type(Type::Json);
        }
        let required: Vec<&str> = required.iter().map(String::as_str).collect();
        Shape::Model(self.build_struct(&merged_props, &required, additional.as_ref(), hint))
    }

    fn one_of(&mut self, obj: &Map<String, Value>, parts: &[Value], pointer: &str, hint: &str) -> Shape {
        let live: Vec<(usize, &Value)> = parts.iter().enumerate().filter(|(_, p)| !is_null_schema(p)).collect();
        if live.len() == 1 && !obj.contains_key("properties") {
            let (i, only) = live[0];
            return self.shape(only, &format!("{pointer}/{i}"), hint);
        }
        if live.is_empty() {
            return Shape::Type(Type::Json);
        }
        let mut variants: Vec<(String, Type)> = Vec::new();
        let mut refs: Vec<Option<String>> = Vec::new();
        for (i, part) in &live {
            let (vname, r) = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => (r.rsplit('/').next().unwrap_or("Variant").to_owned(), Some(r.to_owned())),
                None => (variant_name(part, *i), None),
            };
            let lowered = self.lower(part, &format!("{pointer}/{i}"), &format!("{hint}_{vname}"));
            let mut unique = vname.clone();
            let mut n = 2;
            while variants.iter().any(|(v, _)| ident::upper_camel(v) == ident::upper_camel(&unique)) {
                unique = format!("{vname}{n}");
                n += 1;
            }
            variants.push((unique, lowered.ty));
            refs.push(r);
        }
        let discriminator = obj.get("discriminator").and_then(|d| {
            let property = d.get("propertyName")?.as_str()?.to_owned();
            let mut mapping = Vec::new();
            if let Some(Value::Object(m)) = d.get("mapping") {
                for (tag, target) in m {
                    let target = target.as_str()?;
                    let idx = refs.iter().position(|r| r.as_deref() == Some(target)).or_else(|| {
                        refs.iter().position(|r| r.as_deref().and_then(|r| r.rsplit('/').next()) == Some(target))
                    });
                    if let Some(idx) = idx {
                        mapping.push((tag.clone(), idx));
                    }
                }
            }
            for (idx, r) in refs.iter().enumerate() {
                if mapping.iter().any(|(_, i)| *i == idx) {
                    continue;
                }
                if let Some(r) = r {
                    mapping.push((r.rsplit('/').next()?.to_owned(), idx));
                }
            }
            Some(Discriminator { property, mapping })
        });
        let discriminator = match discriminator {
            Some(d) if d.mapping.len() == variants.len() => Some(d),
            Some(_) => {
                self.warn(pointer, "discriminator does not map every alternative; matched by shape instead");
                None
            }
            None => None,
        };
        Shape::Model(ModelKind::OneOf { variants, discriminator, boxed: Vec::new() })
    }

    fn enumeration(&mut self, obj: &Map<String, Value>, values: &[Value], pointer: &str) -> Shape {
        let live: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        if !live.is_empty() && live.iter().all(|v| v.is_string()) {
            let mut seen = BTreeSet::new();
            let values: Vec<String> = live
                .iter()
                .filter_map(|v| v.as_str())
                .filter(|v| seen.insert(v.to_string()))
                .map(str::to_owned)
                .collect();
            return Shape::Model(ModelKind::StringEnum { values });
        }
        if !live.is_empty() && live.iter().all(|v| v.is_i64()) {
            return Shape::Model(ModelKind::IntEnum { values: live.iter().filter_map(|v| v.as_i64()).collect() });
        }
        // Mixed or other enums: the underlying type, constrained by the validator.
        let mut plain = obj.clone();
        plain.remove("enum");
        if primary_type(&plain).is_none() {
            if !live.is_empty() {
                self.warn(pointer, "enum of mixed or non-scalar values; typed as any JSON value");
            }
            return Shape::Type(Type::Json);
        }
        self.shape(&Value::Object(plain), pointer, "")
    }

    /// Marks fields and variants that contain their own model directly (not through an array or
    /// a map): those need a `Box`. A field is boxed when its type is in the same strongly
    /// connected component of the "contains directly" graph as the struct holding it.
    pub(crate) fn mark_boxes(&mut self) {
        let index: HashMap<String, usize> = self.models.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
        let edges: Vec<Vec<usize>> = self
            .models
            .iter()
            .map(|m| {
                let mut out = Vec::new();
                names_in_model(m, &mut out);
                out.iter().filter_map(|n| index.get(n).copied()).collect()
            })
            .collect();
        let component = strongly_connected(&edges);
        let same = |a: usize, b: &str| index.get(b).is_some_and(|&j| component[j] == component[a]);
        for (i, m) in self.models.iter_mut().enumerate() {
            match &mut m.kind {
                ModelKind::Struct { fields, .. } | ModelKind::Request { fields } => {
                    for f in fields {
                        if let Type::Named(t) = &f.ty {
                            f.boxed = same(i, t);
                        }
                    }
                }
                ModelKind::OneOf { variants, boxed, .. } => {
                    *boxed = variants.iter().map(|(_, t)| matches!(t, Type::Named(n) if same(i, n))).collect();
                }
                _ => {}
            }
        }
    }

    /// Pushes an operation's request or response model; when an earlier operation's has the
    /// same shape (fields or variants, their types and docs alike), this one becomes an alias of
    /// it. Large APIs repeat shapes a lot (Microsoft Graph: 11,424 response enums, 1,833
    /// distinct; 11,415 request structs, 6,789 distinct), and every type costs generation and
    /// `cargo check` time; the alias keeps each operation's own name for the trait.
    pub(crate) fn push_operation_model(&mut self, model: Model) {
        let shape = format!("{:?}", model.kind);
        match self.operation_shapes.get(&shape) {
            Some(first) => {
                let kind = ModelKind::Alias(Type::Named(first.clone()));
                self.models.push(Model { kind, ..model });
            }
            None => {
                self.operation_shapes.insert(shape, model.name.clone());
                self.models.push(model);
            }
        }
    }

    pub(crate) fn finish(self) -> (Vec<Model>, Vec<Warning>) {
        (self.models, self.warnings)
    }
}

/// Tarjan's algorithm (iterative): the component number of each node.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut component = vec![usize::MAX; n];
    let mut next_index = 0;
    let mut next_component = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = next_component;
                    if w == v {
                        break;
                    }
                }
                next_component += 1;
            }
        }
    }
    component
}

enum Shape {
    Type(Type),
    Model(ModelKind),
}

/// Names of models a model contains directly (not through an array or a map, which allocate).
fn names_in_model(m: &Model, out: &mut Vec<String>) {
    let visit = |t: &Type, out: &mut Vec<String>| {
        if let Type::Named(n) = t {
            out.push(n.clone());
        }
    };
    match &m.kind {
        ModelKind::Struct { fields, .. } | ModelKind::Request { fields } => fields.iter().for_each(|f| visit(&f.ty, out)),
        ModelKind::OneOf { variants, .. } => variants.iter().for_each(|(_, t)| visit(t, out)),
        ModelKind::Alias(t) => visit(t, out),
        ModelKind::Response { variants } => variants.iter().filter_map(|v| v.body.as_ref()).for_each(|t| visit(t, out)),
        ModelKind::StringEnum { .. } | ModelKind::IntEnum { .. } => {}
    }
}

/// The schema's type, ignoring `"null"` in 3.1 type arrays (`None` when absent or ambiguous).
fn primary_type(obj: &Map<String, Value>) -> Option<String> {
    match obj.get("type") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Array(ts)) => {
            let live: Vec<&str> = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            match live.as_slice() {
                [one] => Some((*one).to_owned()),
                // `[integer, number]` and the like: the widest.
                many if many.iter().all(|t| *t == "integer" || *t == "number") => Some("number".into()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether an inline schema becomes a model of its own (an object with properties, an enum, a
/// union), so that identical ones can share it.
fn is_inline_model(v: &Value) -> bool {
    v.as_object().is_some_and(|m| ["properties", "enum", "oneOf", "anyOf", "allOf"].iter().any(|k| m.contains_key(*k)))
}

/// Whether a schema only annotates (description, examples, flags) and accepts any value.
fn is_annotation(v: &Value) -> bool {
    const KEYS: [&str; 13] = [
        "title", "description", "example", "examples", "default", "deprecated", "readOnly", "writeOnly", "externalDocs",
        "xml", "nullable", "$comment", "discriminator",
    ];
    v.as_object().is_some_and(|m| m.keys().all(|k| k.starts_with("x-") || KEYS.contains(&k.as_str())))
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
        || v.get("enum").and_then(Value::as_array).is_some_and(|e| e.len() == 1 && e[0].is_null())
}

/// A variant name for an inline `oneOf` part: its title, or its type.
fn variant_name(part: &Value, i: usize) -> String {
    if let Some(t) = part.get("title").and_then(Value::as_str) {
        if t.chars().any(|c| c.is_alphanumeric()) {
            return t.to_owned();
        }
    }
    match part.get("type").and_then(Value::as_str) {
        Some("string") => "String".into(),
        Some("integer") => "Integer".into(),
        Some("number") => "Number".into(),
        Some("boolean") => "Boolean".into(),
        Some("array") => "Array".into(),
        Some("object") => format!("Object{i}"),
        _ => format!("Variant{i}"),
    }
}

/// `title` and `description` as doc lines.
pub(crate) fn docs_of(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = schema.get("title").and_then(Value::as_str) {
        out.extend(doc_lines(t));
    }
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(doc_lines(d));
    }
    out
}

/// `%7B` → `{` in reference pointers.
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
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
    #[test]
    fn percent_decoding_never_splits_characters() {
        assert_eq!(super::percent_decode("/paths/~1a%7Bid%7D"), "/paths/~1a{id}");
        assert_eq!(super::percent_decode("%é%"), "%é%");
        assert_eq!(super::percent_decode("%4"), "%4");
    }
}
