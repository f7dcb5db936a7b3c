//! Validation of request values against the schemas of an OpenAPI document, on the
//! [`jsonschema`] crate.
//!
//! Each parameter and request body schema is cut out of the document into a self-contained
//! JSON Schema (every `$ref` it reaches, transitively, copied under `definitions` / `$defs` and
//! the references rewritten to point there), transformed for the request direction, and
//! compiled once. The document itself is not kept.
//!
//! Dialects:
//!
//! - **OpenAPI 3.0** (and Swagger 2.0) compiles as JSON Schema **Draft 4**, after a small
//!   transform: `nullable: true` adds `null` to the schema's types (or, beside `$ref`, `allOf`,
//!   `anyOf`, `oneOf`, `not` or `const`, accepts `null` ahead of the schema); a `$ref` replaces
//!   its siblings; boolean `exclusiveMinimum` / `exclusiveMaximum` are Draft 4's own (a numeric
//!   one, 3.1 style, becomes `minimum` + `exclusiveMinimum: true`).
//! - **OpenAPI 3.1** compiles as **Draft 2020-12** (`unevaluatedProperties`,
//!   `dependentSchemas`, `prefixItems`, … all apply). A leftover boolean `exclusiveMinimum` is
//!   read the 3.0 way.
//!
//! In both: a `readOnly` property is neither required nor checked in a request; `format:
//! int32` / `int64` bound integers; `date`, `date-time`, `uuid` and `email` are checked, other
//! formats are not; `discriminator` picks the alternative of a `oneOf` / `anyOf` by the tag
//! property (its `mapping`, else the last segment of each branch's `$ref`), as before; `pattern`s
//! are ECMA-262 regular expressions run by a backtracking engine (`fancy-regex`) under a
//! backtrack limit: a value that hits the limit is rejected (a 400), never matched for long.
//!
//! A schema that cannot be compiled (a `$ref` to another document or to nothing, a pattern
//! that is not a regular expression, an unknown `type`, a `$dynamicRef`, …) is an error: the
//! caller decides (the server answers 501 for that operation rather than serve it unchecked).

#![cfg_attr(not(feature = "rest"), allow(dead_code))] // until a transport other than REST validates

use std::collections::HashMap;
use std::fmt;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, Keyword, PatternOptions, ValidationError as JsError};
use serde_json::{json, Map, Value};

use super::Scalar;

/// How many backtracking steps one `pattern` match may take before the value is rejected.
/// fancy-regex's default is 1,000,000; a tenth of that keeps a hostile value to milliseconds.
const BACKTRACK_LIMIT: usize = 100_000;

/// How many `$ref` hops resolving one pointer may take.
const MAX_REF_HOPS: u32 = 64;

/// How deep the property-shape lookups follow `$ref` / `allOf` / `oneOf` / `anyOf`.
const MAX_SHAPE_DEPTH: u32 = 16;

/// Enum values listed in full in an error message.
const ENUM_LISTED: usize = 10;

/// The custom keywords the transform writes (names no document uses).
const KW_INT: &str = "x-switchboard-int";
const KW_DISCRIMINATOR: &str = "x-switchboard-discriminator";
const KW_TAG: &str = "x-switchboard-tag";

/// Which JSON Schema an OpenAPI document speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAPI 3.0 (and Swagger 2.0): Draft 4 after the transform.
    V30,
    /// OpenAPI 3.1 and later: Draft 2020-12.
    V31,
}

impl Dialect {
    /// Read from the document's `openapi` field: `3.0.x`, or a `swagger` field, is 3.0;
    /// anything else 3.1.
    pub(crate) fn of(document: &Value) -> Self {
        let v30 = document.get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with("3.0"))
            || document.get("swagger").is_some();
        if v30 {
            Dialect::V30
        } else {
            Dialect::V31
        }
    }

    fn defs(self) -> &'static str {
        match self {
            Dialect::V30 => "definitions",
            Dialect::V31 => "$defs",
        }
    }
}

/// Property name, scalar type and whether it is an array of it, sorted by name.
type Shapes = Box<[(Box<str>, Scalar, bool)]>;

/// One compiled parameter or body schema.
pub(crate) struct Compiled {
    validator: jsonschema::Validator,
    /// For object schemas: each property's scalar type and whether it is an array, sorted by
    /// name (form and multipart bodies, object parameters).
    shapes: Box<[(Box<str>, Scalar, bool)]>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled").field("shapes", &self.shapes).finish_non_exhaustive()
    }
}

/// Why a value does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidationError {
    /// JSON pointer into the validated value, `""` for the root.
    pub pointer: String,
    /// Plain language, e.g. `must be at most 100` or ``missing required property `name` ``.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

/// Why a schema could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SchemaError(pub(crate) String);

impl From<String> for SchemaError {
    fn from(message: String) -> Self {
        SchemaError(message)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON pointers
// ---------------------------------------------------------------------------------------------

pub(crate) fn escape_token(token: &str) -> String {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_owned()
    }
}

fn unescape_token(token: &str) -> String {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~")
    } else {
        token.to_owned()
    }
}

/// The JSON pointer a `$ref` names, e.g. `#/components/schemas/Pet` → `/components/schemas/Pet`.
fn ref_to_pointer(reference: &str) -> Result<String, String> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(format!("`$ref: {reference}`: only references into the same document (`#/…`) are supported"));
    };
    let fragment = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy();
    if fragment.is_empty() || fragment.starts_with('/') {
        Ok(fragment.into_owned())
    } else {
        Err(format!("`$ref: {reference}`: anchors are not supported, only JSON pointers"))
    }
}

/// Resolves `pointer` in `doc`. Where a token names nothing in an object that is itself a
/// `$ref`, the reference is followed (so `/paths/~1a/get/parameters/0/schema` works when
/// parameter 0 is a `$ref` to `#/components/parameters/…`). Returns the pointer of the place
/// actually reached.
pub(crate) fn resolve<'d>(doc: &'d Value, pointer: &str, hops: &mut u32) -> Result<(String, &'d Value), String> {
    if pointer.is_empty() {
        return Ok((String::new(), doc));
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("`{pointer}` is not a JSON pointer (it must start with `/`)"));
    };
    let mut canonical = String::with_capacity(pointer.len());
    let mut current = doc;
    for token in rest.split('/') {
        let key = unescape_token(token);
        loop {
            let next = match current {
                Value::Object(map) => map.get(&key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            if let Some(next) = next {
                current = next;
                canonical.push('/');
                canonical.push_str(token);
                break;
            }
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return Err(format!("nothing at `{pointer}` in the document"));
            };
            *hops += 1;
            if *hops > MAX_REF_HOPS {
                return Err(format!("too many `$ref` hops resolving `{pointer}`"));
            }
            let (target, value) = resolve(doc, &ref_to_pointer(reference)?, hops)?;
            canonical = target;
            current = value;
        }
    }
    Ok((canonical, current))
}

/// `value` with a `$ref` at its top followed (to a schema object that has none, or after
/// `MAX_REF_HOPS`).
fn follow<'d>(doc: &'d Value, mut value: &'d Value) -> &'d Value {
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else { return value };
        let Some(target) = ref_to_pointer(reference).ok().and_then(|p| resolve(doc, &p, &mut 0).ok()) else {
            return value;
        };
        value = target.1;
    }
    value
}

// ---------------------------------------------------------------------------------------------
// Bundling and transforming
// ---------------------------------------------------------------------------------------------

/// Transforms schemas of the document: each root (a parameter or body schema) on its own, and
/// each definition it reaches through `$ref` once, however many roots reach it. Definitions are
/// numbered in the order they are first met (`d0`, `d1`, …); a self-contained schema is a root
/// with the definitions it reaches ([`Bundler::closure`]).
struct Bundler<'d> {
    doc: &'d Value,
    dialect: Dialect,
    /// Per definition: its transformed schema (filled as the queue drains).
    defs: Vec<Value>,
    /// Per definition: the definitions its transformed schema refers to directly.
    def_refs: Vec<Vec<usize>>,
    /// Per definition: why it cannot be transformed (a schema reaching it cannot be compiled).
    def_errors: Vec<Option<String>>,
    by_pointer: HashMap<String, usize>,
    queue: Vec<(usize, String)>,
    /// The definitions referred to by the schema being transformed.
    emitted: Vec<usize>,
    /// Schemas known not to reach themselves without looking inside the value.
    acyclic: std::collections::HashSet<String>,
}

/// Keywords whose value is one subschema.
const ONE_SCHEMA: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];

/// Keywords whose value is an array of subschemas.
const SCHEMA_LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Keywords whose value is an object of subschemas.
const SCHEMA_MAP: &[&str] = &["properties", "patternProperties", "dependentSchemas"];

/// Annotations and OpenAPI-only keywords, dropped (the compiled schema does not need them).
const DROPPED: &[&str] = &[
    "$id",
    "$schema",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "example",
    "examples",
    "default",
    "deprecated",
    "xml",
    "externalDocs",
    "discriminator",
    "nullable",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
];

impl<'d> Bundler<'d> {
    fn new(doc: &'d Value, dialect: Dialect) -> Self {
        Bundler {
            doc,
            dialect,
            defs: Vec::new(),
            def_refs: Vec::new(),
            def_errors: Vec::new(),
            by_pointer: HashMap::new(),
            queue: Vec::new(),
            emitted: Vec::new(),
            acyclic: std::collections::HashSet::new(),
        }
    }

    /// `#/definitions/d3` (3.0) or `#/$defs/d3` (3.1) for a `$ref` met in the document.
    fn reference(&mut self, reference: &str) -> Result<String, String> {
        let pointer = ref_to_pointer(reference)?;
        let id = self.intern(&pointer)?;
        Ok(format!("#/{}/d{id}", self.dialect.defs()))
    }

    /// The id of the definition at `pointer` (interned and queued when new), noted as referred
    /// to by the schema being transformed.
    fn intern(&mut self, pointer: &str) -> Result<usize, String> {
        let id = self.intern_new(pointer)?;
        if !self.emitted.contains(&id) {
            self.emitted.push(id);
        }
        Ok(id)
    }

    fn intern_new(&mut self, pointer: &str) -> Result<usize, String> {
        if let Some(&id) = self.by_pointer.get(pointer) {
            return Ok(id);
        }
        let (canonical, value) = resolve(self.doc, pointer, &mut 0)?;
        self.no_ref_cycle(&canonical, value)?;
        let id = match self.by_pointer.get(&canonical) {
            Some(&id) => id,
            None => {
                let id = self.defs.len();
                self.defs.push(Value::Bool(true));
                self.def_refs.push(Vec::new());
                self.def_errors.push(None);
                self.by_pointer.insert(canonical.clone(), id);
                self.queue.push((id, canonical.clone()));
                id
            }
        };
        self.by_pointer.insert(pointer.to_owned(), id);
        Ok(id)
    }

    /// A schema that reaches itself through `$ref` without looking inside the value (through
    /// `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `dependentSchemas` only) would
    /// recurse forever, or (as jsonschema cuts such loops) pass values it should not: refused.
    fn no_ref_cycle(&mut self, start: &str, value: &'d Value) -> Result<(), String> {
        if self.acyclic.contains(start) {
            return Ok(());
        }
        let mut stack = vec![start.to_owned()];
        self.in_place(value, &mut stack)?;
        self.acyclic.insert(start.to_owned());
        Ok(())
    }

    fn in_place(&mut self, value: &'d Value, stack: &mut Vec<String>) -> Result<(), String> {
        let Value::Object(map) = value else { return Ok(()) };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            // Unresolvable references are reported where they are compiled.
            if let Some((target, next)) = ref_to_pointer(reference).ok().and_then(|p| resolve(self.doc, &p, &mut 0).ok()) {
                if stack.contains(&target) {
                    return Err(format!(
                        "`{}` refers to itself through `$ref` without looking inside the value",
                        stack[0]
                    ));
                }
                if !self.acyclic.contains(&target) {
                    stack.push(target);
                    self.in_place(next, stack)?;
                    if let Some(done) = stack.pop() {
                        self.acyclic.insert(done);
                    }
                }
            }
            if self.dialect == Dialect::V30 {
                return Ok(()); // its siblings do not apply
            }
        }
        for keyword in ["allOf", "anyOf", "oneOf"] {
            for branch in map.get(keyword).and_then(Value::as_array).into_iter().flatten() {
                self.in_place(branch, stack)?;
            }
        }
        for keyword in ["not", "if", "then", "else"] {
            if let Some(branch) = map.get(keyword) {
                self.in_place(branch, stack)?;
            }
        }
        for branch in map.get("dependentSchemas").and_then(Value::as_object).into_iter().flat_map(|m| m.values()) {
            self.in_place(branch, stack)?;
        }
        Ok(())
    }

    /// The self-contained schema at `pointer`: its root with every definition it reaches.
    fn run(mut self, pointer: &str) -> Result<Value, String> {
        let (root, refs) = self.root(pointer)?;
        let reached = self.closure(&refs)?;
        let defs = reached.into_iter().map(|id| (id, std::mem::take(&mut self.defs[id])));
        Ok(assemble(self.dialect, root, defs))
    }

    /// Transforms the schema at `pointer` and then every definition it reaches that is not
    /// transformed yet: the root's transformed schema and the definitions it refers to directly.
    fn root(&mut self, pointer: &str) -> Result<(Value, Vec<usize>), String> {
        let (canonical, root) = resolve(self.doc, pointer, &mut 0)?;
        self.emitted.clear();
        let out = match self.no_ref_cycle(&canonical, root) {
            Ok(()) => self.transform(root).map_err(|e| format!("`{canonical}`: {e}")),
            Err(e) => Err(e),
        };
        let refs = std::mem::take(&mut self.emitted);
        while let Some((id, pointer)) = self.queue.pop() {
            self.emitted.clear();
            let schema = resolve(self.doc, &pointer, &mut 0)
                .and_then(|(_, value)| self.transform(value))
                .map_err(|e| format!("`{pointer}`: {e}"));
            match schema {
                Ok(schema) => self.defs[id] = schema,
                Err(e) => self.def_errors[id] = Some(e),
            }
            self.def_refs[id] = std::mem::take(&mut self.emitted);
        }
        Ok((out?, refs))
    }

    /// Every definition reachable from `refs`, in ascending order; the first reason one of
    /// them cannot be transformed, if any.
    fn closure(&self, refs: &[usize]) -> Result<Vec<usize>, String> {
        let reached = reachable(self.defs.len(), refs.to_vec(), |id| Ok::<_, String>(self.def_refs[id].clone()))?;
        match reached.iter().find_map(|&id| self.def_errors[id].as_ref()) {
            Some(e) => Err(e.clone()),
            None => Ok(reached),
        }
    }

    /// One schema of the document, for the request direction and the target draft.
    fn transform(&mut self, schema: &Value) -> Result<Value, String> {
        let map = match schema {
            // Draft 4 has no boolean schemas (but for `additionalProperties` / `additionalItems`).
            Value::Bool(true) if self.dialect == Dialect::V30 => return Ok(json!({})),
            Value::Bool(false) if self.dialect == Dialect::V30 => return Ok(json!({ "not": {} })),
            Value::Bool(b) => return Ok(Value::Bool(*b)),
            Value::Object(map) => map,
            _ => return Err("is not a schema (an object or a boolean)".to_owned()),
        };
        let v30 = self.dialect == Dialect::V30;
        let nullable = v30 && map.get("nullable") == Some(&Value::Bool(true));
        if let Some(reference) = map.get("$ref") {
            let reference = reference.as_str().ok_or("`$ref` is not a string")?;
            if v30 {
                // 3.0: a `$ref` replaces its siblings; `nullable` beside it is honoured anyway,
                // since documents write it there to mean "this reference, or null".
                let target = json!({ "$ref": self.reference(reference)? });
                return Ok(if nullable { object([("anyOf", Value::Array(vec![json!({ "type": "null" }), target]))]) } else { target });
            }
        }
        let mut out = Map::new();
        for (key, value) in map {
            let k = key.as_str();
            if k.starts_with("x-") || DROPPED.contains(&k) {
                continue;
            }
            match k {
                "$ref" => {
                    let reference = value.as_str().ok_or("`$ref` is not a string")?;
                    out.insert(key.clone(), Value::String(self.reference(reference)?));
                }
                "$dynamicRef" | "$recursiveRef" | "$recursiveAnchor" => {
                    return Err(format!("`{k}` is not supported"));
                }
                "items" => {
                    let items = match value {
                        Value::Array(list) => Value::Array(list.iter().map(|s| self.transform(s)).collect::<Result<_, _>>()?),
                        other => self.transform(other)?,
                    };
                    out.insert(key.clone(), items);
                }
                "dependencies" => {
                    let Value::Object(deps) = value else { return Err("`dependencies` is not an object".to_owned()) };
                    let mut copied = Map::new();
                    for (name, dep) in deps {
                        let dep = if dep.is_array() { dep.clone() } else { self.transform(dep)? };
                        copied.insert(name.clone(), dep);
                    }
                    out.insert(key.clone(), Value::Object(copied));
                }
                "format" => match value.as_str() {
                    Some("int32") => {
                        out.insert(KW_INT.to_owned(), Value::from(32));
                    }
                    Some("int64") => {
                        out.insert(KW_INT.to_owned(), Value::from(64));
                    }
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                },
                "exclusiveMinimum" | "exclusiveMaximum" => {} // below, with `minimum` / `maximum`
                "required" if v30 && value.as_array().is_some_and(Vec::is_empty) => {} // Draft 4 wants ≥ 1
                "additionalProperties" | "additionalItems" if value.is_boolean() => {
                    out.insert(key.clone(), value.clone());
                }
                _ if ONE_SCHEMA.contains(&k) => {
                    out.insert(key.clone(), self.transform(value)?);
                }
                _ if SCHEMA_LIST.contains(&k) => {
                    let Value::Array(list) = value else { return Err(format!("`{k}` is not an array")) };
                    let list = list.iter().map(|s| self.transform(s)).collect::<Result<Vec<_>, _>>()?;
                    out.insert(key.clone(), Value::Array(list));
                }
                _ if SCHEMA_MAP.contains(&k) => {
                    let Value::Object(entries) = value else { return Err(format!("`{k}` is not an object")) };
                    let mut copied = Map::new();
                    for (name, s) in entries {
                        copied.insert(name.clone(), self.transform(s)?);
                    }
                    out.insert(key.clone(), Value::Object(copied));
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        self.bounds(map, &mut out, "exclusiveMinimum", "minimum");
        self.bounds(map, &mut out, "exclusiveMaximum", "maximum");
        self.read_only(map, &mut out);
        self.discriminator(map, &mut out)?;
        Ok(if nullable { with_null(out) } else { Value::Object(out) })
    }

    /// `exclusiveMinimum` in the target draft's form: Draft 4 pairs a boolean with `minimum`,
    /// 2020-12 takes the bound itself.
    fn bounds(&self, source: &Map<String, Value>, out: &mut Map<String, Value>, exclusive: &str, inclusive: &str) {
        match (self.dialect, source.get(exclusive)) {
            (_, None) | (_, Some(Value::Bool(false))) => {}
            (Dialect::V30, Some(Value::Bool(true))) => {
                if out.contains_key(inclusive) {
                    out.insert(exclusive.to_owned(), Value::Bool(true));
                }
            }
            (Dialect::V30, Some(bound)) => {
                // A 3.1-style numeric bound in a 3.0 document: the stricter of it and `minimum`.
                let stricter = match (bound.as_f64(), out.get(inclusive).and_then(Value::as_f64)) {
                    (Some(b), Some(i)) if exclusive == "exclusiveMinimum" => b >= i,
                    (Some(b), Some(i)) => b <= i,
                    _ => true,
                };
                if stricter {
                    out.insert(inclusive.to_owned(), bound.clone());
                    out.insert(exclusive.to_owned(), Value::Bool(true));
                }
            }
            (Dialect::V31, Some(Value::Bool(true))) => {
                // A 3.0-style boolean in a 3.1 document.
                if let Some(bound) = out.remove(inclusive) {
                    out.insert(exclusive.to_owned(), bound);
                }
            }
            (Dialect::V31, Some(bound)) => {
                out.insert(exclusive.to_owned(), bound.clone());
            }
        }
    }

    /// Requests: a `readOnly` property (itself or through `$ref` / `allOf`) is not required,
    /// and what a client sends for it is not checked.
    fn read_only(&self, source: &Map<String, Value>, out: &mut Map<String, Value>) {
        let Some(Value::Object(properties)) = source.get("properties") else { return };
        let read_only: Vec<&String> =
            properties.iter().filter(|(_, s)| self.is_read_only(s, 0)).map(|(name, _)| name).collect();
        if read_only.is_empty() {
            return;
        }
        if let Some(Value::Object(copied)) = out.get_mut("properties") {
            for name in &read_only {
                copied.insert((*name).clone(), json!({}));
            }
        }
        if let Some(Value::Array(required)) = out.get_mut("required") {
            required.retain(|r| !read_only.iter().any(|name| r.as_str() == Some(name.as_str())));
            if required.is_empty() {
                out.remove("required");
            }
        }
    }

    fn is_read_only(&self, schema: &Value, depth: u32) -> bool {
        if depth > 8 {
            return false;
        }
        if schema.get("readOnly") == Some(&Value::Bool(true)) {
            return true;
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let target = ref_to_pointer(reference).ok().and_then(|p| resolve(self.doc, &p, &mut 0).ok());
            if target.is_some_and(|(_, t)| self.is_read_only(t, depth + 1)) {
                return true;
            }
        }
        schema.get("allOf").and_then(Value::as_array).is_some_and(|all| all.iter().any(|s| self.is_read_only(s, depth + 1)))
    }

    /// `discriminator`: for an object, the tag property must be there, a string, and a known
    /// tag; then only the alternative it names applies. Written as a check of the tag (first,
    /// in `allOf`) and the `oneOf` / `anyOf` alternatives each gated on their tags, so exactly
    /// the named one is evaluated in full. Values other than objects meet the plain `oneOf` /
    /// `anyOf` of the alternatives.
    fn discriminator(&mut self, source: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), String> {
        let Some(Value::Object(discriminator)) = source.get("discriminator") else { return Ok(()) };
        let Some(property) = discriminator.get("propertyName").and_then(Value::as_str) else { return Ok(()) };
        let keyword = if source.get("oneOf").is_some_and(Value::is_array) {
            "oneOf"
        } else if source.get("anyOf").is_some_and(Value::is_array) {
            "anyOf"
        } else {
            return Ok(());
        };
        // (tag, target pointer): explicit mapping first, then each branch's `$ref` by its last
        // segment.
        let mut tags: Vec<(String, String)> = Vec::new();
        if let Some(Value::Object(explicit)) = discriminator.get("mapping") {
            for (tag, target) in explicit {
                let Some(target) = target.as_str() else { continue };
                let pointer = if target.starts_with('#') {
                    ref_to_pointer(target)?
                } else if target.contains('/') {
                    continue; // a reference into another document
                } else {
                    format!("/components/schemas/{}", escape_token(target))
                };
                // A mapping to nothing only loses that tag; the schema still compiles.
                if resolve(self.doc, &pointer, &mut 0).is_ok() {
                    tags.push((tag.clone(), pointer));
                }
            }
        }
        for branch in source.get(keyword).and_then(Value::as_array).into_iter().flatten() {
            let Some(reference) = branch.get("$ref").and_then(Value::as_str) else { continue };
            let name = unescape_token(reference.rsplit('/').next().unwrap_or(reference));
            if !tags.iter().any(|(tag, _)| *tag == name) {
                tags.push((name, ref_to_pointer(reference)?));
            }
        }
        // One alternative per target, with all the tags that name it.
        let mut alternatives: Vec<(usize, Vec<String>)> = Vec::new();
        for (tag, pointer) in &tags {
            let id = self.intern(pointer)?;
            match alternatives.iter_mut().find(|(i, _)| *i == id) {
                Some((_, list)) => list.push(tag.clone()),
                None => alternatives.push((id, vec![tag.clone()])),
            }
        }
        let gated: Vec<Value> = alternatives
            .iter()
            .map(|(id, list)| {
                json!({
                    KW_TAG: { "property": property, "tags": list },
                    "allOf": [{ "$ref": format!("#/{}/d{id}", self.dialect.defs()) }],
                })
            })
            .collect();
        out.insert(keyword.to_owned(), Value::Array(gated));
        let check = json!({ KW_DISCRIMINATOR: {
            "property": property,
            "tags": tags.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        }});
        match out.get_mut("allOf") {
            Some(Value::Array(all)) => all.push(check),
            _ => {
                out.insert("allOf".to_owned(), Value::Array(vec![check]));
            }
        }
        Ok(())
    }
}

/// Every definition (of `count`) reachable from `start` through `refs_of`, in ascending order.
fn reachable<E>(count: usize, start: Vec<usize>, mut refs_of: impl FnMut(usize) -> Result<Vec<usize>, E>) -> Result<Vec<usize>, E> {
    let mut seen = vec![false; count];
    let mut stack = start;
    let mut reached = Vec::new();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id], true) {
            continue;
        }
        reached.push(id);
        stack.extend(refs_of(id)?.into_iter().filter(|&next| !seen[next]));
    }
    reached.sort_unstable();
    Ok(reached)
}

/// A JSON object of `pairs`, moving the values (`json!` would copy each value through serde).
pub(crate) fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

/// A self-contained schema: `root` with `defs` (`(id, transformed schema)`, the definitions it
/// reaches) under `definitions` / `$defs` as `d<id>`.
fn assemble(dialect: Dialect, mut root: Value, defs: impl Iterator<Item = (usize, Value)>) -> Value {
    let defs: Map<String, Value> = defs.map(|(id, schema)| (format!("d{id}"), schema)).collect();
    if defs.is_empty() {
        return root;
    }
    // Beside a 3.0 `$ref` (Draft 4) the definitions would not be read; a boolean has no room.
    let wrap = match &root {
        Value::Object(map) => dialect == Dialect::V30 && map.contains_key("$ref"),
        _ => true,
    };
    if wrap {
        root = object([("allOf", Value::Array(vec![root]))]);
    }
    if let Value::Object(map) = &mut root {
        map.insert(dialect.defs().to_owned(), Value::Object(defs));
    }
    root
}

/// A 3.0 `nullable: true` schema: `null` is valid, whatever else the schema says.
fn with_null(mut out: Map<String, Value>) -> Value {
    let composite = ["allOf", "anyOf", "oneOf", "not", "const", "$ref", KW_DISCRIMINATOR].iter().any(|k| out.contains_key(*k));
    if composite {
        return object([("anyOf", Value::Array(vec![json!({ "type": "null" }), Value::Object(out)]))]);
    }
    match out.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            out.insert("type".to_owned(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => types.push(Value::from("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = out.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Custom keywords
// ---------------------------------------------------------------------------------------------

/// `format: int32` / `int64` on numbers: an integer (an integral float too) in range.
struct IntFormat {
    bits: u8,
}

impl<'i> Keyword<'i> for IntFormat {
    fn validate(&self, instance: &'i Value) -> Result<(), JsError<'i>> {
        if self.is_valid(instance) {
            Ok(())
        } else {
            Err(JsError::custom(format!("must be a {}-bit integer", self.bits)))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        let Value::Number(n) = instance else { return true };
        if self.bits == 64 {
            integer_in(n, i64::MIN, i64::MAX)
        } else {
            integer_in(n, i32::MIN.into(), i32::MAX.into())
        }
    }
}

fn integer_in(value: &serde_json::Number, min: i64, max: i64) -> bool {
    if let Some(i) = value.as_i64() {
        return (min..=max).contains(&i);
    }
    if value.is_u64() {
        return false; // above i64::MAX
    }
    value.as_f64().is_some_and(|f| f.fract() == 0.0 && f >= min as f64 && f < max as f64 + 1.0)
}

/// The tag check of a `discriminator`. Its error message is `<property>\n<text>`, or
/// `\n<text>` when the error is about the object itself: [`message`] places it.
struct TagCheck {
    property: String,
    tags: Vec<String>,
}

impl<'i> Keyword<'i> for TagCheck {
    fn validate(&self, instance: &'i Value) -> Result<(), JsError<'i>> {
        let Value::Object(map) = instance else { return Ok(()) };
        let property = &self.property;
        match map.get(property) {
            None => Err(JsError::custom(format!("\nmissing required property `{property}`"))),
            Some(Value::String(tag)) if self.tags.contains(tag) => Ok(()),
            Some(Value::String(tag)) => {
                let mut known: Vec<String> =
                    self.tags.iter().take(ENUM_LISTED).map(|t| Value::String(t.clone()).to_string()).collect();
                if self.tags.len() > ENUM_LISTED {
                    known.push("…".to_owned());
                }
                Err(JsError::custom(format!(
                    "{property}\n`{tag}` is not a known `{property}`; expected one of {}",
                    known.join(", ")
                )))
            }
            Some(_) => Err(JsError::custom(format!("{property}\nmust be a string"))),
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        match instance {
            Value::Object(map) => matches!(map.get(&self.property), Some(Value::String(t)) if self.tags.contains(t)),
            _ => true,
        }
    }
}

/// The gate of one `discriminator` alternative: an object whose tag is one of this
/// alternative's (other values pass).
struct TagGate {
    property: String,
    tags: Vec<String>,
}

impl<'i> Keyword<'i> for TagGate {
    fn validate(&self, instance: &'i Value) -> Result<(), JsError<'i>> {
        if self.is_valid(instance) {
            Ok(())
        } else {
            Err(JsError::custom("another alternative's tag"))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        match instance {
            Value::Object(map) => matches!(map.get(&self.property), Some(Value::String(t)) if self.tags.contains(t)),
            _ => true,
        }
    }
}

fn tags_of(value: &Value) -> Option<(String, Vec<String>)> {
    let property = value.get("property")?.as_str()?.to_owned();
    let tags = value.get("tags")?.as_array()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    Some((property, tags))
}

// ---------------------------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------------------------

/// Compiles the schema at `pointer` in `doc` (e.g. `/paths/~1pets/post/requestBody/content/
/// application~1json/schema`; `$ref`s on the way are followed) for validating requests.
pub(crate) fn compile(doc: &Value, dialect: Dialect, pointer: &str) -> Result<Compiled, SchemaError> {
    let (schema, validator, shapes) = cut(doc, dialect, pointer)?;
    drop(schema);
    Ok(Compiled { validator, shapes })
}

/// The schema at `pointer`: self-contained and transformed, compiled, and its property shapes.
fn cut(doc: &Value, dialect: Dialect, pointer: &str) -> Result<(Value, jsonschema::Validator, Shapes), SchemaError> {
    let schema = Bundler::new(doc, dialect).run(pointer)?;
    let validator = build(&schema, dialect).map_err(|e| SchemaError(format!("`{pointer}`: {e}")))?;
    let shapes = match resolve(doc, pointer, &mut 0) {
        Ok((_, root)) => property_shapes(doc, root),
        Err(_) => Box::default(),
    };
    Ok((schema, validator, shapes))
}

/// Builds the schema parts of a schema bundle (what switchboard-codegen writes beside generated
/// code, so that servers compile each schema without the document): every definition the
/// document's parameter and body schemas reach, transformed once and shared, and per schema
/// (an entry) its transformed root, the definitions it refers to directly and the property
/// shapes of an object schema. Each entry is checked to compile as [`compile`] would.
pub(crate) struct BundleBuilder<'d> {
    bundler: Bundler<'d>,
    entries: Vec<Pending>,
}

/// An entry of a bundle being built.
struct Pending {
    pointer: String,
    schema: Value,
    refs: Vec<usize>,
    shapes: Shapes,
}

impl<'d> BundleBuilder<'d> {
    pub(crate) fn new(doc: &'d Value, dialect: Dialect) -> Self {
        BundleBuilder { bundler: Bundler::new(doc, dialect), entries: Vec::new() }
    }

    /// Adds the schema at `pointer` (e.g. `/paths/~1pets/post/requestBody/content/
    /// application~1json/schema`): the index of its entry in [`BundleBuilder::finish`]'s list,
    /// or why it cannot be transformed.
    pub(crate) fn add(&mut self, pointer: &str) -> Result<usize, SchemaError> {
        let (schema, refs) = self.bundler.root(pointer)?;
        let shapes = match resolve(self.bundler.doc, pointer, &mut 0) {
            Ok((_, root)) => property_shapes(self.bundler.doc, root),
            Err(_) => Box::default(),
        };
        self.entries.push(Pending { pointer: pointer.to_owned(), schema, refs, shapes });
        Ok(self.entries.len() - 1)
    }

    /// The shared definitions (`{"schema": …, "refs": [ids]}` each, by id) and per added
    /// schema its entry, `{"schema": …, "refs": [ids], "shapes": [["name", "integer", false],
    /// …]}` (shapes only for object schemas), or why it cannot be compiled.
    pub(crate) fn finish(self) -> (Vec<Value>, Vec<Result<Value, SchemaError>>) {
        let BundleBuilder { bundler, entries } = self;
        let dialect = bundler.dialect;
        // Per entry: the definitions it reaches, or why it cannot be compiled.
        let mut checked: Vec<Result<Vec<usize>, SchemaError>> =
            entries.iter().map(|e| bundler.closure(&e.refs).map_err(SchemaError)).collect();
        // One compile of every definition and every root that reaches no broken definition (a
        // document's schemas nearly always all compile); only when that fails is each entry
        // compiled on its own, to tell which cannot be.
        let roots: Vec<Value> =
            entries.iter().zip(&checked).filter(|(_, ok)| ok.is_ok()).map(|(e, _)| e.schema.clone()).collect();
        if !roots.is_empty() {
            let defs = bundler.defs.iter().cloned().enumerate();
            let all = assemble(dialect, object([("anyOf", Value::Array(roots))]), defs);
            if build(&all, dialect).is_err() {
                let one = |(entry, ok): (&Pending, &mut Result<Vec<usize>, SchemaError>)| {
                    let Ok(reached) = ok else { return };
                    let defs = reached.iter().map(|&id| (id, bundler.defs[id].clone()));
                    let schema = assemble(dialect, entry.schema.clone(), defs);
                    if let Err(e) = build(&schema, dialect) {
                        *ok = Err(SchemaError(format!("`{}`: {e}", entry.pointer)));
                    }
                };
                let one = &one;
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(entries.len() / 64 + 1);
                let chunk = entries.len().div_ceil(threads).max(1);
                std::thread::scope(|scope| {
                    for (part, oks) in entries.chunks(chunk).zip(checked.chunks_mut(chunk)) {
                        scope.spawn(move || part.iter().zip(oks.iter_mut()).for_each(one));
                    }
                });
            }
        }
        let defs = bundler
            .defs
            .into_iter()
            .zip(bundler.def_refs)
            .map(|(schema, refs)| object([("schema", schema), ("refs", json!(refs))]))
            .collect();
        let entries = entries
            .into_iter()
            .zip(checked)
            .map(|(entry, ok)| {
                ok?; // the closure itself is not written: the server derives it from `refs`
                let mut out = object([("schema", entry.schema), ("refs", json!(entry.refs))]);
                // Shapes matter only for object schemas (form bodies, object parameters).
                if !entry.shapes.is_empty() {
                    let shapes: Vec<Value> =
                        entry.shapes.iter().map(|(name, scalar, array)| json!([&**name, scalar_name(*scalar), array])).collect();
                    out["shapes"] = Value::Array(shapes);
                }
                Ok(out)
            })
            .collect();
        (defs, entries)
    }
}

/// Compiles an entry of a schema bundle ([`BundleBuilder::finish`]) with the bundle's shared
/// definitions, `defs`.
pub(crate) fn compile_entry(entry: &Value, defs: &[Value], dialect: Dialect) -> Result<Compiled, SchemaError> {
    let malformed = || SchemaError("malformed schema bundle: regenerate the code".to_owned());
    let schema = entry.get("schema").ok_or_else(|| SchemaError("the bundle entry has no schema".into()))?;
    let refs_of = |value: &Value| -> Result<Vec<usize>, SchemaError> {
        let Some(list) = value.get("refs") else { return Ok(Vec::new()) };
        let list = list.as_array().ok_or_else(malformed)?;
        list.iter().map(|id| id.as_u64().map(|id| id as usize).filter(|&id| id < defs.len()).ok_or_else(malformed)).collect()
    };
    let reached = reachable(defs.len(), refs_of(entry)?, |id| refs_of(&defs[id]))?;
    let reached: Vec<(usize, Value)> = reached
        .into_iter()
        .map(|id| defs[id].get("schema").cloned().map(|s| (id, s)).ok_or_else(malformed))
        .collect::<Result<_, _>>()?;
    let schema = assemble(dialect, schema.clone(), reached.into_iter());
    let validator = build(&schema, dialect).map_err(SchemaError)?;
    let mut shapes: Vec<(Box<str>, Scalar, bool)> = Vec::new();
    for shape in entry.get("shapes").and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(scalar), Some(array)) = (
            shape.get(0).and_then(Value::as_str),
            shape.get(1).and_then(Value::as_str).and_then(scalar_of_name),
            shape.get(2).and_then(Value::as_bool),
        ) else {
            return Err(SchemaError(format!("malformed property shape {shape} in the bundle")));
        };
        shapes.push((name.into(), scalar, array));
    }
    shapes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Compiled { validator, shapes: shapes.into() })
}

fn scalar_name(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::String => "string",
        Scalar::Integer => "integer",
        Scalar::Number => "number",
        Scalar::Boolean => "boolean",
    }
}

fn scalar_of_name(name: &str) -> Option<Scalar> {
    Some(match name {
        "string" => Scalar::String,
        "integer" => Scalar::Integer,
        "number" => Scalar::Number,
        "boolean" => Scalar::Boolean,
        _ => return None,
    })
}

/// Compiles an already self-contained, transformed schema.
fn build(schema: &Value, dialect: Dialect) -> Result<jsonschema::Validator, String> {
    let draft = match dialect {
        Dialect::V30 => Draft::Draft4,
        Dialect::V31 => Draft::Draft202012,
    };
    jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .with_format("date", is_date)
        .with_format("uuid", is_uuid)
        .with_pattern_options(PatternOptions::fancy_regex().backtrack_limit(BACKTRACK_LIMIT))
        .with_keyword(KW_INT, |_, value: &Value, _| {
            let bits = if value.as_u64() == Some(32) { 32 } else { 64 };
            Ok(Box::new(IntFormat { bits }) as Box<dyn for<'i> Keyword<'i>>)
        })
        .with_keyword(KW_DISCRIMINATOR, |_, value: &Value, _| {
            let (property, tags) = tags_of(value).ok_or_else(|| JsError::custom("bad discriminator"))?;
            Ok(Box::new(TagCheck { property, tags }) as Box<dyn for<'i> Keyword<'i>>)
        })
        .with_keyword(KW_TAG, |_, value: &Value, _| {
            let (property, tags) = tags_of(value).ok_or_else(|| JsError::custom("bad discriminator"))?;
            Ok(Box::new(TagGate { property, tags }) as Box<dyn for<'i> Keyword<'i>>)
        })
        .build(schema)
        .map_err(|e| e.to_string())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else { return false };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

// ---------------------------------------------------------------------------------------------
// Property shapes (form and multipart bodies, object parameters)
// ---------------------------------------------------------------------------------------------

const T_NULL: u8 = 1;
const T_BOOLEAN: u8 = 2;
const T_INTEGER: u8 = 4;
const T_NUMBER: u8 = 8;
const T_STRING: u8 = 16;
const T_ARRAY: u8 = 32;
const T_OBJECT: u8 = 64;

fn type_bit(name: &str) -> u8 {
    match name {
        "null" => T_NULL,
        "boolean" => T_BOOLEAN,
        "integer" => T_INTEGER,
        "number" => T_NUMBER,
        "string" => T_STRING,
        "array" => T_ARRAY,
        "object" => T_OBJECT,
        _ => 0,
    }
}

/// Every property an object schema names (through `$ref` / `allOf` / `oneOf` / `anyOf`) with
/// the scalar type it expects and whether it is an array of it.
fn property_shapes(doc: &Value, root: &Value) -> Box<[(Box<str>, Scalar, bool)]> {
    let mut names: Vec<(String, &Value)> = Vec::new();
    collect_properties(doc, root, 0, &mut names);
    let mut shapes: Vec<(Box<str>, Scalar, bool)> = Vec::new();
    for (name, schema) in names {
        if shapes.iter().any(|(n, _, _)| **n == *name) {
            continue; // the first place that names it wins
        }
        let types = effective_types(doc, schema, 0);
        let shape = if types & !T_NULL == T_ARRAY {
            let items = array_items(doc, schema, 0);
            let scalar = items.and_then(|i| scalar_of(effective_types(doc, i, 0))).unwrap_or(Scalar::String);
            Some((scalar, true))
        } else {
            scalar_of(types).map(|s| (s, false))
        };
        if let Some((scalar, array)) = shape {
            shapes.push((name.into(), scalar, array));
        }
    }
    shapes.sort_by(|a, b| a.0.cmp(&b.0));
    shapes.into_boxed_slice()
}

fn collect_properties<'d>(doc: &'d Value, schema: &'d Value, depth: u32, out: &mut Vec<(String, &'d Value)>) {
    if depth > MAX_SHAPE_DEPTH {
        return;
    }
    let schema = follow(doc, schema);
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, s) in properties {
            out.push((name.clone(), s));
        }
    }
    for keyword in ["allOf", "oneOf", "anyOf"] {
        for s in schema.get(keyword).and_then(Value::as_array).into_iter().flatten() {
            collect_properties(doc, s, depth + 1, out);
        }
    }
}

fn scalar_of(types: u8) -> Option<Scalar> {
    match types & !T_NULL {
        T_INTEGER => Some(Scalar::Integer),
        t if t == T_NUMBER || t == T_NUMBER | T_INTEGER => Some(Scalar::Number),
        T_BOOLEAN => Some(Scalar::Boolean),
        0 | T_ARRAY | T_OBJECT => None,
        _ => Some(Scalar::String),
    }
}

/// The types a schema allows, looking through `$ref`/`allOf` and through `anyOf`/`oneOf`
/// whose branches agree (null branches aside).
fn effective_types(doc: &Value, schema: &Value, depth: u32) -> u8 {
    let schema = follow(doc, schema);
    let types = match schema.get("type") {
        Some(Value::String(name)) => type_bit(name),
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).fold(0, |bits, n| bits | type_bit(n)),
        _ => 0,
    };
    if types != 0 || depth >= MAX_SHAPE_DEPTH {
        return types;
    }
    for s in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        let t = effective_types(doc, s, depth + 1);
        if t != 0 {
            return t;
        }
    }
    let branches = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array);
    let mut union = 0;
    for s in branches.into_iter().flatten() {
        let t = effective_types(doc, s, depth + 1);
        if t == 0 {
            return 0;
        }
        union |= t;
    }
    union
}

fn array_items<'d>(doc: &'d Value, schema: &'d Value, depth: u32) -> Option<&'d Value> {
    let schema = follow(doc, schema);
    if let Some(items @ (Value::Object(_) | Value::Bool(_))) = schema.get("items") {
        return Some(items);
    }
    if depth >= MAX_SHAPE_DEPTH {
        return None;
    }
    ["allOf", "oneOf", "anyOf"]
        .iter()
        .flat_map(|k| schema.get(*k).and_then(Value::as_array).into_iter().flatten())
        .find_map(|s| array_items(doc, s, depth + 1))
}

// ---------------------------------------------------------------------------------------------
// Validating
// ---------------------------------------------------------------------------------------------

impl Compiled {
    /// Checks `value`; the most telling error, if any.
    pub(crate) fn validate(&self, value: &Value) -> Result<(), ValidationError> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let errors: Vec<JsError<'_>> = self.validator.iter_errors(value).collect();
        match pick(&errors) {
            Some(error) => Err(describe(error).into_error()),
            // `is_valid` and `iter_errors` disagreed (they should not): reject all the same.
            None => Err(ValidationError { pointer: String::new(), message: "does not match its schema".to_owned() }),
        }
    }

    /// The scalar type property `name` of this object schema expects, and whether it is an
    /// array of it; `None` if unknown (or an object).
    pub(crate) fn property_shape(&self, name: &str) -> Option<(Scalar, bool)> {
        let i = self.shapes.binary_search_by(|(n, _, _)| n.as_ref().cmp(name)).ok()?;
        let (_, scalar, array) = &self.shapes[i];
        Some((*scalar, *array))
    }
}

/// A described error: where, what, and whether it is a plain type mismatch.
struct Failure {
    pointer: String,
    message: String,
    type_mismatch: bool,
}

impl Failure {
    fn into_error(self) -> ValidationError {
        ValidationError { pointer: self.pointer, message: self.message }
    }

    fn depth(&self) -> usize {
        self.pointer.matches('/').count()
    }
}

/// The error the old validator would have stopped at: the value's own checks first (type,
/// `enum`/`const`, bounds, lengths, `required`), then what is inside it, then `anyOf`/`oneOf`/
/// `not`. Discriminator gates are not errors of their own.
fn pick<'a, 'i>(errors: &'a [JsError<'i>]) -> Option<&'a JsError<'i>> {
    errors
        .iter()
        .enumerate()
        .filter(|(_, e)| !is_gate(e))
        .min_by_key(|(i, e)| {
            let logic = matches!(
                e.kind(),
                ValidationErrorKind::AnyOf { .. }
                    | ValidationErrorKind::OneOfNotValid { .. }
                    | ValidationErrorKind::OneOfMultipleValid { .. }
                    | ValidationErrorKind::Not { .. }
            );
            (logic, e.instance_path().as_str().matches('/').count(), rank(e.kind()), *i)
        })
        .map(|(_, e)| e)
}

fn is_gate(error: &JsError<'_>) -> bool {
    matches!(error.kind(), ValidationErrorKind::Custom { keyword, .. } if keyword == KW_TAG)
}

fn rank(kind: &ValidationErrorKind) -> u8 {
    match kind {
        ValidationErrorKind::FalseSchema | ValidationErrorKind::Type { .. } => 0,
        ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. } => 1,
        ValidationErrorKind::Custom { keyword, .. } if keyword == KW_DISCRIMINATOR => 5,
        ValidationErrorKind::Required { .. }
        | ValidationErrorKind::MinProperties { .. }
        | ValidationErrorKind::MaxProperties { .. }
        | ValidationErrorKind::AdditionalProperties { .. }
        | ValidationErrorKind::UnevaluatedProperties { .. }
        | ValidationErrorKind::PropertyNames { .. } => 4,
        ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. }
        | ValidationErrorKind::UniqueItems
        | ValidationErrorKind::Contains
        | ValidationErrorKind::AdditionalItems { .. }
        | ValidationErrorKind::UnevaluatedItems { .. } => 3,
        _ => 2,
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn type_message(types: u8) -> String {
    let names: Vec<&str> = [
        (T_STRING, "a string"),
        (T_INTEGER, "an integer"),
        (T_NUMBER, "a number"),
        (T_BOOLEAN, "a boolean"),
        (T_ARRAY, "an array"),
        (T_OBJECT, "an object"),
        (T_NULL, "null"),
    ]
    .iter()
    .filter(|(bit, _)| types & bit != 0)
    .filter(|(bit, _)| !(*bit == T_INTEGER && types & T_NUMBER != 0))
    .map(|(_, name)| *name)
    .collect();
    format!("must be {}", or_list(&names))
}

fn number_text(n: &Value) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn format_message(format: &str) -> String {
    match format {
        "date-time" => "must be a date-time (RFC 3339, e.g. 2024-01-31T12:00:00Z)".to_owned(),
        "date" => "must be a date (YYYY-MM-DD)".to_owned(),
        "uuid" => "must be a UUID".to_owned(),
        "email" => "must be an email address".to_owned(),
        other => format!("must be a valid `{other}`"),
    }
}

/// Plain words for one error, at its place in the value.
fn describe(error: &JsError<'_>) -> Failure {
    let pointer = error.instance_path().as_str().to_owned();
    let plain = |message: String| Failure { pointer: pointer.clone(), message, type_mismatch: false };
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let bits = match kind {
                TypeKind::Single(t) => *t as u8,
                TypeKind::Multiple(set) => set.iter().fold(0, |bits, t| bits | t as u8),
            };
            Failure { pointer, message: type_message(bits), type_mismatch: true }
        }
        ValidationErrorKind::FalseSchema => plain("is not allowed here".to_owned()),
        ValidationErrorKind::Constant { expected_value } => plain(format!("must be equal to {expected_value}")),
        ValidationErrorKind::Enum { options } => {
            let all = options.as_array().map(Vec::as_slice).unwrap_or_default();
            let mut listed: Vec<String> = all.iter().take(ENUM_LISTED).map(Value::to_string).collect();
            if all.len() > ENUM_LISTED {
                listed.push("…".to_owned());
            }
            plain(format!("must be one of {}", listed.join(", ")))
        }
        ValidationErrorKind::Minimum { limit } => plain(format!("must be at least {}", number_text(limit))),
        ValidationErrorKind::Maximum { limit } => plain(format!("must be at most {}", number_text(limit))),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            plain(format!("must be greater than {}", number_text(limit)))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => plain(format!("must be less than {}", number_text(limit))),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            plain(format!("must be a multiple of {}", number_text(&Value::from(*multiple_of))))
        }
        ValidationErrorKind::MinLength { limit } => {
            plain(format!("must be at least {} long", plural(*limit, "character", "characters")))
        }
        ValidationErrorKind::MaxLength { limit } => {
            plain(format!("must be at most {} long", plural(*limit, "character", "characters")))
        }
        ValidationErrorKind::Pattern { pattern } => plain(format!("must match pattern {pattern}")),
        ValidationErrorKind::BacktrackLimitExceeded { .. } | ValidationErrorKind::RegexEngineFailure { .. } => {
            plain("could not be matched against its `pattern` within the backtracking limit".to_owned())
        }
        ValidationErrorKind::Format { format } => plain(format_message(format)),
        ValidationErrorKind::MinItems { limit } => {
            plain(format!("must have at least {}", plural(*limit, "item", "items")))
        }
        ValidationErrorKind::MaxItems { limit } => plain(format!("must have at most {}", plural(*limit, "item", "items"))),
        ValidationErrorKind::UniqueItems => plain("must not contain duplicate items".to_owned()),
        ValidationErrorKind::Contains => plain("must contain at least one item matching `contains`".to_owned()),
        ValidationErrorKind::AdditionalItems { limit } => Failure {
            pointer: format!("{pointer}/{limit}"),
            message: "is not allowed here".to_owned(),
            type_mismatch: false,
        },
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            plain(format!("missing required property `{name}`"))
        }
        ValidationErrorKind::MinProperties { limit } => {
            plain(format!("must have at least {}", plural(*limit, "property", "properties")))
        }
        ValidationErrorKind::MaxProperties { limit } => {
            plain(format!("must have at most {}", plural(*limit, "property", "properties")))
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let key = unexpected.first().map(String::as_str).unwrap_or_default();
            Failure {
                pointer: format!("{pointer}/{}", escape_token(key)),
                message: format!("unknown property `{key}`"),
                type_mismatch: false,
            }
        }
        ValidationErrorKind::UnevaluatedItems { unexpected } => {
            plain(format!("has items no schema allows ({})", unexpected.join(", ")))
        }
        ValidationErrorKind::PropertyNames { error } => {
            let key = error.instance().as_str().map(str::to_owned).unwrap_or_default();
            plain(format!("property name `{key}` {}", describe(error).message))
        }
        ValidationErrorKind::Not { .. } => plain("must not match the schema in `not`".to_owned()),
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            best_failure(&pointer, context)
        }
        ValidationErrorKind::OneOfMultipleValid { context } => {
            let valid: Vec<usize> = context.iter().enumerate().filter(|(_, c)| c.is_empty()).map(|(i, _)| i).collect();
            match valid.as_slice() {
                [a, b, ..] => plain(format!("must match exactly one schema of `oneOf`, but matches both {a} and {b}")),
                _ => plain("must match exactly one schema of `oneOf`".to_owned()),
            }
        }
        ValidationErrorKind::Custom { keyword, message } if keyword == KW_DISCRIMINATOR => {
            let (property, text) = message.split_once('\n').unwrap_or(("", message));
            let pointer = if property.is_empty() { pointer } else { format!("{pointer}/{}", escape_token(property)) };
            Failure { pointer, message: text.to_owned(), type_mismatch: text == "must be a string" }
        }
        ValidationErrorKind::Custom { message, .. } => plain(message.clone()),
        other => plain(format!("does not match its schema ({})", other.keyword())),
    }
}

/// The most telling of the alternatives' failures of an `anyOf`/`oneOf` (alternatives another
/// discriminator tag shut out aside): the one that got deepest into the value; when every
/// alternative failed at the value itself, a mismatch other than of type (the alternative whose
/// type fit); when all are type mismatches, all of them in one message.
fn best_failure(pointer: &str, context: &[Vec<JsError<'static>>]) -> Failure {
    let mut failures: Vec<Failure> = context
        .iter()
        .filter(|branch| !branch.iter().any(is_gate))
        .filter_map(|branch| pick(branch).map(describe))
        .collect();
    if failures.is_empty() {
        return Failure {
            pointer: pointer.to_owned(),
            message: "must match one of the allowed schemas".to_owned(),
            type_mismatch: false,
        };
    }
    let base = pointer.matches('/').count();
    let deepest = failures.iter().map(Failure::depth).max().unwrap_or(base);
    if deepest > base || failures.iter().any(|f| !f.type_mismatch) {
        let pick = failures.iter().position(|f| f.depth() == deepest && (deepest > base || !f.type_mismatch)).unwrap_or(0);
        return failures.swap_remove(pick);
    }
    let mut messages: Vec<&str> = Vec::new();
    for f in &failures {
        if !messages.contains(&f.message.as_str()) {
            messages.push(&f.message);
        }
    }
    Failure {
        pointer: pointer.to_owned(),
        message: format!("must match one of the allowed schemas: {}", messages.join("; ")),
        type_mismatch: true,
    }
}

#[cfg(test)]
mod tests;
