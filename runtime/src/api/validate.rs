//! Validation of JSON values against the schemas of an OpenAPI document, in both dialects:
//! OpenAPI 3.0 (its own JSON Schema subset: `nullable`, boolean `exclusiveMinimum`, `$ref`
//! replacing its siblings) and OpenAPI 3.1 (JSON Schema 2020-12: `type` arrays, numeric
//! `exclusiveMinimum`, `$ref` alongside other keywords).
//!
//! Schemas are compiled on demand, by JSON pointer, into an arena of nodes whose children are
//! node ids; every subschema is compiled once (keyed by its location in the document), so a
//! `$ref` cycle closes on itself. Validation never looks at the document again.
//!
//! Supported keywords: `$ref` (local `#/…` pointers), `type`, `nullable` (3.0), `enum`, `const`,
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`,
//! `maxLength`, `pattern`, `format` (`date-time`, `date`, `uuid`, `email`, `int32`, `int64`),
//! `items`, `prefixItems`, `minItems`, `maxItems`, `uniqueItems`, `contains`, `properties`,
//! `patternProperties`, `additionalProperties`, `required`, `minProperties`, `maxProperties`,
//! `propertyNames`, `dependentRequired`, `allOf`, `anyOf`, `oneOf` (with `discriminator`),
//! `not`, `if`/`then`/`else`, `readOnly`, `writeOnly`, boolean schemas.
//!
//! Not supported (ignored): `$id`/`$anchor`/`$dynamicRef` and `$ref`s to other documents (a
//! `$ref` that is not a local pointer fails the compile), `unevaluatedProperties`,
//! `unevaluatedItems`, `dependentSchemas`, `minContains`/`maxContains`, other formats, and
//! `pattern`s that `regex-lite` cannot compile (look-around, backreferences).

use std::collections::{HashMap, HashSet};
use std::fmt;

use regex_lite::Regex;
use serde_json::{Map, Value};

use super::Scalar;

/// How deep validation may nest schema applications before giving up (a guard against stack
/// exhaustion on values nested far deeper than any document intends, and on `allOf` cycles).
const MAX_DEPTH: u32 = 384;

/// How many `$ref` hops resolving one pointer may take.
const MAX_REF_HOPS: u32 = 64;

/// Arrays longer than this are checked for `uniqueItems` by hashing instead of pairwise.
const PAIRWISE_UNIQUE_MAX: usize = 32;

/// Enum values listed in full in an error message.
const ENUM_LISTED: usize = 10;

const T_NULL: u8 = 1;
const T_BOOLEAN: u8 = 2;
const T_INTEGER: u8 = 4;
const T_NUMBER: u8 = 8;
const T_STRING: u8 = 16;
const T_ARRAY: u8 = 32;
const T_OBJECT: u8 = 64;

/// Schemas of one OpenAPI document, compiled on demand.
pub(crate) struct SchemaSet {
    document: Value,
    dialect: Dialect,
    nodes: Vec<Node>,
    by_pointer: HashMap<String, SchemaId>,
}

/// A compiled schema of a [`SchemaSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SchemaId(u32);

/// Which way a value travels: `readOnly` properties are not required in requests (and are not
/// checked there), `writeOnly` ones are not required in responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// A request body or parameter.
    Request,
    /// A response body.
    #[cfg_attr(not(test), allow(dead_code))] // responses are not validated by the server yet
    Response,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// OpenAPI 3.0 (and Swagger 2.0).
    V30,
    /// OpenAPI 3.1 and later.
    V31,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    DateTime,
    Date,
    Uuid,
    Email,
    Int32,
    Int64,
}

/// One compiled schema. Keyword groups that only apply to one instance type are boxed so the
/// common node stays small.
#[derive(Default)]
struct Node {
    /// The `false` schema: nothing is valid.
    never: bool,
    /// Allowed types (`T_*` bits); 0 allows any.
    types: u8,
    /// OpenAPI 3.0 `nullable: true`: null is valid, whatever else the schema says.
    nullable: bool,
    read_only: bool,
    write_only: bool,
    format: Option<Format>,
    enumeration: Option<Box<[Value]>>,
    constant: Option<Box<Value>>,
    number: Option<Box<NumberRules>>,
    string: Option<Box<StringRules>>,
    array: Option<Box<ArrayRules>>,
    object: Option<Box<ObjectRules>>,
    logic: Option<Box<Logic>>,
}

#[derive(Default)]
struct NumberRules {
    minimum: Option<f64>,
    exclusive_minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
}

#[derive(Default)]
struct StringRules {
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<(Regex, Box<str>)>,
}

#[derive(Default)]
struct ArrayRules {
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    prefix_items: Vec<SchemaId>,
    items: Option<SchemaId>,
    contains: Option<SchemaId>,
}

#[derive(Default)]
struct ObjectRules {
    /// Sorted by name.
    properties: Vec<(Box<str>, SchemaId)>,
    pattern_properties: Vec<(Regex, SchemaId)>,
    additional: Option<SchemaId>,
    required: Vec<Box<str>>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    property_names: Option<SchemaId>,
    dependent_required: Vec<(Box<str>, Vec<Box<str>>)>,
}

impl ObjectRules {
    fn property(&self, name: &str) -> Option<SchemaId> {
        self.properties.binary_search_by(|(k, _)| k.as_ref().cmp(name)).ok().map(|i| self.properties[i].1)
    }
}

#[derive(Default)]
struct Logic {
    /// `allOf`, plus the `$ref` target.
    all_of: Vec<SchemaId>,
    any_of: Vec<SchemaId>,
    one_of: Vec<SchemaId>,
    not: Option<SchemaId>,
    if_then_else: Option<(SchemaId, Option<SchemaId>, Option<SchemaId>)>,
    discriminator: Option<Discriminator>,
}

struct Discriminator {
    property: Box<str>,
    /// Tag value → schema: explicit `mapping` entries first, then the last segment of each
    /// `oneOf`/`anyOf` branch's `$ref`.
    mapping: Vec<(Box<str>, SchemaId)>,
}

// ---------------------------------------------------------------------------------------------
// JSON pointers
// ---------------------------------------------------------------------------------------------

fn escape_token(token: &str) -> String {
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
/// actually reached, with no `$ref` left to follow along it.
fn resolve<'d>(doc: &'d Value, pointer: &str, hops: &mut u32) -> Result<(String, &'d Value), String> {
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

// ---------------------------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------------------------

impl SchemaSet {
    /// `document` is the whole OpenAPI document; the dialect is read from its `openapi` field
    /// (`3.0.x`, or a `swagger` field, reads as 3.0; anything else as 3.1).
    pub(crate) fn new(document: &Value) -> Self {
        let v30 = document.get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with("3.0"))
            || document.get("swagger").is_some();
        SchemaSet {
            document: document.clone(),
            dialect: if v30 { Dialect::V30 } else { Dialect::V31 },
            nodes: Vec::new(),
            by_pointer: HashMap::new(),
        }
    }

    /// Compiles the schema found at the JSON pointer `pointer` into the document (e.g.
    /// `/paths/~1pets~1{petId}/get/parameters/0/schema`; `$ref`s met on the way are followed).
    /// Fails when there is nothing there or a `$ref` reachable from it cannot be resolved.
    /// Compiling the same place twice returns the same id.
    pub(crate) fn compile(&mut self, pointer: &str) -> Result<SchemaId, String> {
        if let Some(&id) = self.by_pointer.get(pointer) {
            return Ok(id);
        }
        let nodes_before = self.nodes.len();
        let mut compiler = Compiler {
            doc: &self.document,
            dialect: self.dialect,
            nodes: &mut self.nodes,
            by_pointer: &mut self.by_pointer,
            queue: Vec::new(),
            added: Vec::new(),
        };
        let result = compiler.run(pointer);
        if result.is_err() {
            // Leave no half-compiled nodes behind for a later compile to pick up.
            let added = std::mem::take(&mut compiler.added);
            for pointer in added {
                self.by_pointer.remove(&pointer);
            }
            self.nodes.truncate(nodes_before);
        }
        result
    }
}

struct Compiler<'s> {
    doc: &'s Value,
    dialect: Dialect,
    nodes: &'s mut Vec<Node>,
    by_pointer: &'s mut HashMap<String, SchemaId>,
    /// Nodes allocated but not built yet, with their canonical pointers.
    queue: Vec<(SchemaId, String)>,
    /// Pointers entered into `by_pointer` by this compile (removed again if it fails).
    added: Vec<String>,
}

fn uint(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| value.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
}

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

impl Compiler<'_> {
    fn run(&mut self, pointer: &str) -> Result<SchemaId, String> {
        let id = self.intern(pointer)?;
        while let Some((id, pointer)) = self.queue.pop() {
            let node = self.build(&pointer)?;
            if let Some(slot) = self.nodes.get_mut(id.0 as usize) {
                *slot = node;
            }
        }
        Ok(id)
    }

    /// The id of the schema at `pointer`, allocating (and queueing) a node if it is new.
    fn intern(&mut self, pointer: &str) -> Result<SchemaId, String> {
        if let Some(&id) = self.by_pointer.get(pointer) {
            return Ok(id);
        }
        let (canonical, _) = resolve(self.doc, pointer, &mut 0)?;
        let id = match self.by_pointer.get(&canonical) {
            Some(&id) => id,
            None => {
                let id = SchemaId(u32::try_from(self.nodes.len()).map_err(|_| "too many schemas".to_owned())?);
                self.nodes.push(Node::default());
                self.by_pointer.insert(canonical.clone(), id);
                self.added.push(canonical.clone());
                self.queue.push((id, canonical.clone()));
                id
            }
        };
        if canonical != pointer {
            self.by_pointer.insert(pointer.to_owned(), id);
            self.added.push(pointer.to_owned());
        }
        Ok(id)
    }

    fn child(&mut self, pointer: &str, keyword: &str) -> Result<SchemaId, String> {
        self.intern(&format!("{pointer}/{keyword}"))
    }

    fn children(&mut self, pointer: &str, keyword: &str, value: Option<&Value>) -> Result<Vec<SchemaId>, String> {
        let Some(Value::Array(items)) = value else { return Ok(Vec::new()) };
        (0..items.len()).map(|i| self.intern(&format!("{pointer}/{keyword}/{i}"))).collect()
    }

    fn build(&mut self, pointer: &str) -> Result<Node, String> {
        let (_, value) = resolve(self.doc, pointer, &mut 0)?;
        let schema = match value {
            Value::Bool(true) => return Ok(Node::default()),
            Value::Bool(false) => return Ok(Node { never: true, ..Node::default() }),
            Value::Object(schema) => schema,
            _ => return Err(format!("`{pointer}` is not a schema")),
        };
        let mut node = Node::default();
        let mut logic = Logic::default();

        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let target = self.intern(&ref_to_pointer(reference)?)?;
            logic.all_of.push(target);
            if self.dialect == Dialect::V30 {
                // 3.0: a `$ref` replaces its siblings. `nullable` beside it is honoured anyway,
                // since documents write it there to mean "this reference, or null".
                node.nullable = schema.get("nullable") == Some(&Value::Bool(true));
                node.logic = Some(Box::new(logic));
                return Ok(node);
            }
        }

        match schema.get("type") {
            Some(Value::String(name)) => node.types = type_bit(name),
            Some(Value::Array(names)) => {
                node.types = names.iter().filter_map(Value::as_str).fold(0, |bits, name| bits | type_bit(name));
            }
            _ => {}
        }
        if self.dialect == Dialect::V30 && schema.get("nullable") == Some(&Value::Bool(true)) {
            node.nullable = true;
        }
        node.read_only = schema.get("readOnly") == Some(&Value::Bool(true));
        node.write_only = schema.get("writeOnly") == Some(&Value::Bool(true));
        if let Some(Value::Array(values)) = schema.get("enum") {
            node.enumeration = Some(values.clone().into_boxed_slice());
        }
        if let Some(value) = schema.get("const") {
            node.constant = Some(Box::new(value.clone()));
        }
        node.format = match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Some(Format::DateTime),
            Some("date") => Some(Format::Date),
            Some("uuid") => Some(Format::Uuid),
            Some("email") => Some(Format::Email),
            Some("int32") => Some(Format::Int32),
            Some("int64") => Some(Format::Int64),
            _ => None,
        };

        node.number = Self::number_rules(schema);
        node.string = Self::string_rules(schema);
        node.array = self.array_rules(pointer, schema)?;
        node.object = self.object_rules(pointer, schema)?;

        logic.all_of.extend(self.children(pointer, "allOf", schema.get("allOf"))?);
        logic.any_of = self.children(pointer, "anyOf", schema.get("anyOf"))?;
        logic.one_of = self.children(pointer, "oneOf", schema.get("oneOf"))?;
        if schema.contains_key("not") {
            logic.not = Some(self.child(pointer, "not")?);
        }
        if schema.contains_key("if") {
            let then = if schema.contains_key("then") { Some(self.child(pointer, "then")?) } else { None };
            let otherwise = if schema.contains_key("else") { Some(self.child(pointer, "else")?) } else { None };
            logic.if_then_else = Some((self.child(pointer, "if")?, then, otherwise));
        }
        if !logic.one_of.is_empty() || !logic.any_of.is_empty() {
            logic.discriminator = self.discriminator(schema, &logic)?;
        }
        let has_logic = !logic.all_of.is_empty()
            || !logic.any_of.is_empty()
            || !logic.one_of.is_empty()
            || logic.not.is_some()
            || logic.if_then_else.is_some();
        if has_logic {
            node.logic = Some(Box::new(logic));
        }
        Ok(node)
    }

    fn number_rules(schema: &Map<String, Value>) -> Option<Box<NumberRules>> {
        let num = |key: &str| schema.get(key).and_then(Value::as_f64);
        let mut rules = NumberRules {
            minimum: num("minimum"),
            maximum: num("maximum"),
            exclusive_minimum: num("exclusiveMinimum"),
            exclusive_maximum: num("exclusiveMaximum"),
            multiple_of: num("multipleOf").filter(|m| *m > 0.0),
        };
        // 3.0: a boolean `exclusiveMinimum` turns `minimum` exclusive (accepted in either dialect).
        if schema.get("exclusiveMinimum") == Some(&Value::Bool(true)) {
            rules.exclusive_minimum = rules.minimum.take();
        }
        if schema.get("exclusiveMaximum") == Some(&Value::Bool(true)) {
            rules.exclusive_maximum = rules.maximum.take();
        }
        let any = rules.minimum.is_some()
            || rules.maximum.is_some()
            || rules.exclusive_minimum.is_some()
            || rules.exclusive_maximum.is_some()
            || rules.multiple_of.is_some();
        any.then(|| Box::new(rules))
    }

    fn string_rules(schema: &Map<String, Value>) -> Option<Box<StringRules>> {
        let rules = StringRules {
            min_length: uint(schema.get("minLength")),
            max_length: uint(schema.get("maxLength")),
            // A pattern regex-lite cannot compile is ignored rather than failing the schema.
            pattern: schema
                .get("pattern")
                .and_then(Value::as_str)
                .and_then(|source| Regex::new(source).ok().map(|re| (re, source.into()))),
        };
        let any = rules.min_length.is_some() || rules.max_length.is_some() || rules.pattern.is_some();
        any.then(|| Box::new(rules))
    }

    fn array_rules(&mut self, pointer: &str, schema: &Map<String, Value>) -> Result<Option<Box<ArrayRules>>, String> {
        let mut rules = ArrayRules {
            min_items: uint(schema.get("minItems")),
            max_items: uint(schema.get("maxItems")),
            unique_items: schema.get("uniqueItems") == Some(&Value::Bool(true)),
            ..ArrayRules::default()
        };
        rules.prefix_items = self.children(pointer, "prefixItems", schema.get("prefixItems"))?;
        match schema.get("items") {
            // draft-4 style tuple `items` (not OpenAPI, but harmless to honour)
            Some(items @ Value::Array(_)) if rules.prefix_items.is_empty() => {
                rules.prefix_items = self.children(pointer, "items", Some(items))?;
            }
            Some(Value::Object(_) | Value::Bool(false)) => rules.items = Some(self.child(pointer, "items")?),
            _ => {}
        }
        if schema.contains_key("contains") {
            rules.contains = Some(self.child(pointer, "contains")?);
        }
        let any = rules.min_items.is_some()
            || rules.max_items.is_some()
            || rules.unique_items
            || !rules.prefix_items.is_empty()
            || rules.items.is_some()
            || rules.contains.is_some();
        Ok(any.then(|| Box::new(rules)))
    }

    fn object_rules(&mut self, pointer: &str, schema: &Map<String, Value>) -> Result<Option<Box<ObjectRules>>, String> {
        let mut rules = ObjectRules {
            min_properties: uint(schema.get("minProperties")),
            max_properties: uint(schema.get("maxProperties")),
            ..ObjectRules::default()
        };
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for name in properties.keys() {
                let id = self.intern(&format!("{pointer}/properties/{}", escape_token(name)))?;
                rules.properties.push((name.as_str().into(), id));
            }
            rules.properties.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if let Some(Value::Object(patterns)) = schema.get("patternProperties") {
            for source in patterns.keys() {
                if let Ok(re) = Regex::new(source) {
                    let id = self.intern(&format!("{pointer}/patternProperties/{}", escape_token(source)))?;
                    rules.pattern_properties.push((re, id));
                }
            }
        }
        if let Some(Value::Object(_) | Value::Bool(false)) = schema.get("additionalProperties") {
            rules.additional = Some(self.child(pointer, "additionalProperties")?);
        }
        if let Some(Value::Array(names)) = schema.get("required") {
            rules.required = names.iter().filter_map(Value::as_str).map(Into::into).collect();
        }
        if schema.contains_key("propertyNames") {
            rules.property_names = Some(self.child(pointer, "propertyNames")?);
        }
        if let Some(Value::Object(dependent)) = schema.get("dependentRequired") {
            for (name, needs) in dependent {
                let needs: Vec<Box<str>> =
                    needs.as_array().into_iter().flatten().filter_map(Value::as_str).map(Into::into).collect();
                rules.dependent_required.push((name.as_str().into(), needs));
            }
        }
        let any = !rules.properties.is_empty()
            || !rules.pattern_properties.is_empty()
            || rules.additional.is_some()
            || !rules.required.is_empty()
            || rules.min_properties.is_some()
            || rules.max_properties.is_some()
            || rules.property_names.is_some()
            || !rules.dependent_required.is_empty();
        Ok(any.then(|| Box::new(rules)))
    }

    fn discriminator(&mut self, schema: &Map<String, Value>, logic: &Logic) -> Result<Option<Discriminator>, String> {
        let Some(Value::Object(discriminator)) = schema.get("discriminator") else { return Ok(None) };
        let Some(property) = discriminator.get("propertyName").and_then(Value::as_str) else { return Ok(None) };
        let mut mapping: Vec<(Box<str>, SchemaId)> = Vec::new();
        if let Some(Value::Object(explicit)) = discriminator.get("mapping") {
            for (tag, target) in explicit {
                let Some(target) = target.as_str() else { continue };
                let target_pointer = if target.starts_with('#') {
                    ref_to_pointer(target)?
                } else if target.contains('/') {
                    continue; // a reference into another document
                } else {
                    format!("/components/schemas/{}", escape_token(target))
                };
                // A mapping to nothing only loses that tag; the schema still compiles.
                if let Ok(id) = self.intern(&target_pointer) {
                    mapping.push((tag.as_str().into(), id));
                }
            }
        }
        let keyword = if logic.one_of.is_empty() { "anyOf" } else { "oneOf" };
        let branches = if logic.one_of.is_empty() { &logic.any_of } else { &logic.one_of };
        if let Some(Value::Array(raw)) = schema.get(keyword) {
            for (branch, id) in raw.iter().zip(branches) {
                let Some(reference) = branch.get("$ref").and_then(Value::as_str) else { continue };
                let name = unescape_token(reference.rsplit('/').next().unwrap_or(reference));
                if !mapping.iter().any(|(tag, _)| **tag == *name) {
                    mapping.push((name.into(), *id));
                }
            }
        }
        Ok(Some(Discriminator { property: property.into(), mapping }))
    }
}

// ---------------------------------------------------------------------------------------------
// Validating
// ---------------------------------------------------------------------------------------------

/// A path segment into the value, collected innermost first while an error unwinds.
enum Segment {
    Key(String),
    Index(usize),
}

struct Failure {
    /// Innermost segment first.
    path: Vec<Segment>,
    message: String,
    /// Whether the failure is a plain type mismatch at the value itself.
    type_mismatch: bool,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure { path: Vec::new(), message: message.into(), type_mismatch: false }
    }

    fn at_key(mut self, key: &str) -> Self {
        self.path.push(Segment::Key(key.to_owned()));
        self
    }

    fn at_index(mut self, index: usize) -> Self {
        self.path.push(Segment::Index(index));
        self
    }

    fn into_error(self) -> ValidationError {
        let mut pointer = String::new();
        for segment in self.path.iter().rev() {
            pointer.push('/');
            match segment {
                Segment::Key(key) => pointer.push_str(&escape_token(key)),
                Segment::Index(i) => pointer.push_str(&i.to_string()),
            }
        }
        ValidationError { pointer, message: self.message }
    }
}

type Check = Result<(), Failure>;

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn type_message(types: u8) -> String {
    let names: Vec<String> = [
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
    .map(|(_, name)| (*name).to_owned())
    .collect();
    format!("must be {}", or_list(&names))
}

fn type_ok(types: u8, value: &Value) -> bool {
    let bit = match value {
        Value::Null => T_NULL,
        Value::Bool(_) => T_BOOLEAN,
        Value::Number(n) if n.is_i64() || n.is_u64() => T_INTEGER | T_NUMBER,
        Value::Number(_) => T_NUMBER,
        Value::String(_) => T_STRING,
        Value::Array(_) => T_ARRAY,
        Value::Object(_) => T_OBJECT,
    };
    types & bit != 0
}

/// Equality as JSON Schema means it: numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

/// A text form of `value` that is equal for values `json_eq` calls equal (sorted keys,
/// integral numbers written as integers).
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => out.push_str(&(f as i64).to_string()),
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for key in keys {
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical(v, out);
                }
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The indices of the first two equal items, if any.
fn first_duplicate(items: &[Value]) -> Option<(usize, usize)> {
    if items.len() <= PAIRWISE_UNIQUE_MAX {
        for (j, b) in items.iter().enumerate() {
            if let Some(i) = items[..j].iter().position(|a| json_eq(a, b)) {
                return Some((i, j));
            }
        }
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let mut key = String::new();
        canonical(item, &mut key);
        if let Some(&i) = seen.get(&key) {
            return Some((i, j));
        }
        seen.insert(key, j);
    }
    None
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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

/// RFC 3339 `date-time`: `2024-02-29T13:45:00Z`, `…T13:45:00.123+02:00`.
fn is_date_time(s: &str) -> bool {
    let Some((date, time)) = s.split_once(['T', 't', ' ']) else { return false };
    let Some(split) = time.find(['Z', 'z', '+', '-']) else { return false };
    let (clock, offset) = time.split_at(split);
    let offset_ok = match offset {
        "Z" | "z" => true,
        _ => {
            offset.len() == 6
                && offset.get(3..4) == Some(":")
                && two_digits(offset.get(1..3), 23)
                && two_digits(offset.get(4..6), 59)
        }
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    is_date(date)
        && offset_ok
        && !fraction.is_empty()
        && fraction.bytes().all(|c| c.is_ascii_digit())
        && hms.len() == 8
        && hms.get(2..3) == Some(":")
        && hms.get(5..6) == Some(":")
        && two_digits(hms.get(0..2), 23)
        && two_digits(hms.get(3..5), 59)
        && two_digits(hms.get(6..8), 60)
}

fn two_digits(s: Option<&str>, max: u32) -> bool {
    s.is_some_and(|s| s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit()) && s.parse::<u32>().is_ok_and(|n| n <= max))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

fn is_email(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !s.chars().any(char::is_whitespace),
        None => false,
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

struct Validator<'s> {
    set: &'s SchemaSet,
    direction: Direction,
}

impl SchemaSet {
    /// Checks `value` against the schema `id`; the first error found, if any.
    pub(crate) fn validate(&self, id: SchemaId, value: &Value, direction: Direction) -> Result<(), ValidationError> {
        Validator { set: self, direction }.check(id, value, 0).map_err(Failure::into_error)
    }

    fn node(&self, id: SchemaId) -> Option<&Node> {
        self.nodes.get(id.0 as usize)
    }

    /// Whether the schema `id` (or a schema it refers to through `$ref`/`allOf`) is marked
    /// `readOnly` (`write == false`) or `writeOnly` (`write == true`).
    fn access_flag(&self, id: SchemaId, write: bool, depth: u32) -> bool {
        let Some(node) = self.node(id) else { return false };
        if if write { node.write_only } else { node.read_only } {
            return true;
        }
        depth < 8
            && node.logic.as_ref().is_some_and(|l| l.all_of.iter().any(|&c| self.access_flag(c, write, depth + 1)))
    }

    /// For form-urlencoded / multipart bodies and object parameters: the scalar type a property
    /// of an object schema expects (following `$ref`/`allOf`), and whether it is an array of
    /// it. `None` if unknown (or an object).
    pub(crate) fn property_shape(&self, id: SchemaId, property: &str) -> Option<(Scalar, bool)> {
        let property = self.find_property(id, property, 0)?;
        let types = self.effective_types(property, 0);
        if types & !T_NULL == T_ARRAY {
            let items = self.array_items(property, 0);
            let scalar =
                items.and_then(|items| self.scalar_of(self.effective_types(items, 0))).unwrap_or(Scalar::String);
            return Some((scalar, true));
        }
        self.scalar_of(types).map(|s| (s, false))
    }

    fn scalar_of(&self, types: u8) -> Option<Scalar> {
        match types & !T_NULL {
            T_INTEGER => Some(Scalar::Integer),
            t if t == T_NUMBER || t == T_NUMBER | T_INTEGER => Some(Scalar::Number),
            T_BOOLEAN => Some(Scalar::Boolean),
            0 | T_ARRAY | T_OBJECT => None,
            _ => Some(Scalar::String),
        }
    }

    fn find_property(&self, id: SchemaId, property: &str, depth: u32) -> Option<SchemaId> {
        let node = self.node(id)?;
        if let Some(found) = node.object.as_ref().and_then(|o| o.property(property)) {
            return Some(found);
        }
        if depth >= 16 {
            return None;
        }
        let logic = node.logic.as_ref()?;
        logic
            .all_of
            .iter()
            .chain(&logic.one_of)
            .chain(&logic.any_of)
            .find_map(|&c| self.find_property(c, property, depth + 1))
    }

    /// The types a schema allows, looking through `$ref`/`allOf` and through `anyOf`/`oneOf`
    /// whose branches agree (null branches aside).
    fn effective_types(&self, id: SchemaId, depth: u32) -> u8 {
        let Some(node) = self.node(id) else { return 0 };
        if node.types != 0 || depth >= 16 {
            return node.types;
        }
        let Some(logic) = node.logic.as_ref() else { return 0 };
        for &c in &logic.all_of {
            let t = self.effective_types(c, depth + 1);
            if t != 0 {
                return t;
            }
        }
        let branches = if logic.one_of.is_empty() { &logic.any_of } else { &logic.one_of };
        let mut union = 0;
        for &c in branches {
            let t = self.effective_types(c, depth + 1);
            if t == 0 {
                return 0;
            }
            union |= t;
        }
        union
    }

    fn array_items(&self, id: SchemaId, depth: u32) -> Option<SchemaId> {
        let node = self.node(id)?;
        if let Some(items) = node.array.as_ref().and_then(|a| a.items) {
            return Some(items);
        }
        if depth >= 16 {
            return None;
        }
        let logic = node.logic.as_ref()?;
        logic.all_of.iter().chain(&logic.one_of).chain(&logic.any_of).find_map(|&c| self.array_items(c, depth + 1))
    }
}

// The functions on the recursion path (`check`, `check_array`, `check_object`, `check_logic`)
// keep their frames small (debug builds allot every temporary its own stack slot): building
// messages and the non-recursive checks live in the functions they call.
impl Validator<'_> {
    fn check(&self, id: SchemaId, value: &Value, depth: u32) -> Check {
        let Some(node) = self.set.node(id) else { return Ok(()) };
        if depth > MAX_DEPTH || node.never || node.types != 0 || node.constant.is_some() || node.enumeration.is_some() {
            if node.nullable && value.is_null() {
                return Ok(());
            }
            check_value(node, value, depth)?;
        } else if node.nullable && value.is_null() {
            return Ok(());
        }
        match value {
            Value::Number(n) => check_number(node, n)?,
            Value::String(s) => check_string(node, s)?,
            Value::Array(items) => {
                if let Some(rules) = &node.array {
                    self.check_array(rules, items, depth)?;
                }
            }
            Value::Object(map) => {
                if let Some(rules) = &node.object {
                    self.check_object(rules, map, depth)?;
                }
            }
            _ => {}
        }
        match &node.logic {
            Some(logic) => self.check_logic(logic, value, depth),
            None => Ok(()),
        }
    }

    fn check_array(&self, rules: &ArrayRules, items: &[Value], depth: u32) -> Check {
        check_array_size(rules, items)?;
        for (i, item) in items.iter().enumerate() {
            if let Some(schema) = rules.prefix_items.get(i).copied().or(rules.items) {
                self.check(schema, item, depth + 1).map_err(|f| f.at_index(i))?;
            }
        }
        match rules.contains {
            Some(contains) => self.check_contains(contains, items, depth),
            None => Ok(()),
        }
    }

    fn check_contains(&self, contains: SchemaId, items: &[Value], depth: u32) -> Check {
        if items.iter().any(|item| self.check(contains, item, depth + 1).is_ok()) {
            Ok(())
        } else {
            Err(Failure::new("must contain at least one item matching `contains`"))
        }
    }

    fn check_object(&self, rules: &ObjectRules, map: &Map<String, Value>, depth: u32) -> Check {
        check_object_shape(self.set, self.direction, rules, map)?;
        for (key, value) in map {
            if let Some(names) = rules.property_names {
                self.check_property_name(names, key, depth)?;
            }
            let mut matched = false;
            if let Some(schema) = rules.property(key) {
                matched = true;
                if !(self.direction == Direction::Request && self.set.access_flag(schema, false, 0)) {
                    self.check(schema, value, depth + 1).map_err(|f| f.at_key(key))?;
                }
            }
            if !rules.pattern_properties.is_empty() {
                matched |= self.check_pattern_properties(rules, key, value, depth)?;
            }
            if !matched {
                if let Some(additional) = rules.additional {
                    if self.set.node(additional).is_some_and(|n| n.never) {
                        return Err(unknown_property(key));
                    }
                    self.check(additional, value, depth + 1).map_err(|f| f.at_key(key))?;
                }
            }
        }
        Ok(())
    }

    fn check_property_name(&self, names: SchemaId, key: &str, depth: u32) -> Check {
        self.check(names, &Value::String(key.to_owned()), depth + 1)
            .map_err(|f| Failure::new(format!("property name `{key}` {}", f.message)))
    }

    /// Checks `value` against every `patternProperties` schema whose pattern matches `key`;
    /// whether any did.
    fn check_pattern_properties(
        &self,
        rules: &ObjectRules,
        key: &str,
        value: &Value,
        depth: u32,
    ) -> Result<bool, Failure> {
        let mut matched = false;
        for (re, schema) in &rules.pattern_properties {
            if re.is_match(key) {
                matched = true;
                self.check(*schema, value, depth + 1).map_err(|f| f.at_key(key))?;
            }
        }
        Ok(matched)
    }

    fn check_logic(&self, logic: &Logic, value: &Value, depth: u32) -> Check {
        for &schema in &logic.all_of {
            self.check(schema, value, depth + 1)?;
        }
        if let (Some(discriminator), Value::Object(map)) = (&logic.discriminator, value) {
            return self.check_discriminated(discriminator, map, value, depth);
        }
        if !logic.any_of.is_empty() {
            self.check_any_of(&logic.any_of, value, depth)?;
        }
        if !logic.one_of.is_empty() {
            self.check_one_of(&logic.one_of, value, depth)?;
        }
        if logic.not.is_some() || logic.if_then_else.is_some() {
            self.check_not_and_if(logic, value, depth)?;
        }
        Ok(())
    }

    fn check_any_of(&self, branches: &[SchemaId], value: &Value, depth: u32) -> Check {
        let mut failures = Vec::new();
        for &schema in branches {
            match self.check(schema, value, depth + 1) {
                Ok(()) => return Ok(()),
                Err(f) => failures.push(f),
            }
        }
        Err(best_failure(failures))
    }

    fn check_one_of(&self, branches: &[SchemaId], value: &Value, depth: u32) -> Check {
        let mut failures = Vec::new();
        let mut matched: Option<usize> = None;
        for (i, &schema) in branches.iter().enumerate() {
            match self.check(schema, value, depth + 1) {
                Ok(()) => match matched {
                    None => matched = Some(i),
                    Some(first) => {
                        return Err(Failure::new(format!(
                            "must match exactly one schema of `oneOf`, but matches both {first} and {i}"
                        )))
                    }
                },
                Err(f) => failures.push(f),
            }
        }
        match matched {
            Some(_) => Ok(()),
            None => Err(best_failure(failures)),
        }
    }

    fn check_not_and_if(&self, logic: &Logic, value: &Value, depth: u32) -> Check {
        if let Some(not) = logic.not {
            if self.check(not, value, depth + 1).is_ok() {
                return Err(Failure::new("must not match the schema in `not`"));
            }
        }
        if let Some((condition, then, otherwise)) = logic.if_then_else {
            let branch = if self.check(condition, value, depth + 1).is_ok() { then } else { otherwise };
            if let Some(branch) = branch {
                self.check(branch, value, depth + 1)?;
            }
        }
        Ok(())
    }

    fn check_discriminated(
        &self,
        discriminator: &Discriminator,
        map: &Map<String, Value>,
        value: &Value,
        depth: u32,
    ) -> Check {
        match discriminated_branch(discriminator, map) {
            Ok(schema) => self.check(schema, value, depth + 1),
            Err(f) => Err(f),
        }
    }
}

/// Depth, `false` schemas, `type`, `const` and `enum`.
fn check_value(node: &Node, value: &Value, depth: u32) -> Check {
    if depth > MAX_DEPTH {
        return Err(Failure::new("is nested too deeply to validate"));
    }
    if node.never {
        return Err(Failure::new("is not allowed here"));
    }
    if node.types != 0 && !type_ok(node.types, value) {
        return Err(Failure { type_mismatch: true, ..Failure::new(type_message(node.types)) });
    }
    if let Some(constant) = &node.constant {
        if !json_eq(constant, value) {
            return Err(Failure::new(format!("must be equal to {constant}")));
        }
    }
    if let Some(allowed) = &node.enumeration {
        if !allowed.iter().any(|a| json_eq(a, value)) {
            let mut listed: Vec<String> = allowed.iter().take(ENUM_LISTED).map(Value::to_string).collect();
            if allowed.len() > ENUM_LISTED {
                listed.push("…".to_owned());
            }
            return Err(Failure::new(format!("must be one of {}", listed.join(", "))));
        }
    }
    Ok(())
}

fn check_number(node: &Node, n: &serde_json::Number) -> Check {
    if let Some(rules) = &node.number {
        check_number_rules(rules, n)?;
    }
    match node.format {
        Some(Format::Int32) if !integer_in(n, i32::MIN.into(), i32::MAX.into()) => {
            Err(Failure::new("must be a 32-bit integer"))
        }
        Some(Format::Int64) if !integer_in(n, i64::MIN, i64::MAX) => Err(Failure::new("must be a 64-bit integer")),
        _ => Ok(()),
    }
}

fn check_number_rules(rules: &NumberRules, n: &serde_json::Number) -> Check {
    let Some(v) = n.as_f64() else { return Ok(()) };
    if let Some(min) = rules.minimum.filter(|&m| v < m) {
        return Err(Failure::new(format!("must be at least {}", number_text(min))));
    }
    if let Some(min) = rules.exclusive_minimum.filter(|&m| v <= m) {
        return Err(Failure::new(format!("must be greater than {}", number_text(min))));
    }
    if let Some(max) = rules.maximum.filter(|&m| v > m) {
        return Err(Failure::new(format!("must be at most {}", number_text(max))));
    }
    if let Some(max) = rules.exclusive_maximum.filter(|&m| v >= m) {
        return Err(Failure::new(format!("must be less than {}", number_text(max))));
    }
    if let Some(step) = rules.multiple_of {
        let ok = match (n.as_i64(), step.fract() == 0.0 && step < 9.0e15) {
            (Some(i), true) => i % (step as i64) == 0,
            _ => {
                let q = v / step;
                q.is_finite() && (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
            }
        };
        if !ok {
            return Err(Failure::new(format!("must be a multiple of {}", number_text(step))));
        }
    }
    Ok(())
}

fn check_string(node: &Node, s: &str) -> Check {
    if let Some(rules) = &node.string {
        if rules.min_length.is_some() || rules.max_length.is_some() {
            let len = s.chars().count() as u64;
            if let Some(min) = rules.min_length.filter(|&m| len < m) {
                return Err(Failure::new(format!("must be at least {} long", plural(min, "character", "characters"))));
            }
            if let Some(max) = rules.max_length.filter(|&m| len > m) {
                return Err(Failure::new(format!("must be at most {} long", plural(max, "character", "characters"))));
            }
        }
        if let Some((re, source)) = &rules.pattern {
            if !re.is_match(s) {
                return Err(Failure::new(format!("must match pattern {source}")));
            }
        }
    }
    let (ok, what) = match node.format {
        Some(Format::DateTime) => (is_date_time(s), "a date-time (RFC 3339, e.g. 2024-01-31T12:00:00Z)"),
        Some(Format::Date) => (is_date(s), "a date (YYYY-MM-DD)"),
        Some(Format::Uuid) => (is_uuid(s), "a UUID"),
        Some(Format::Email) => (is_email(s), "an email address"),
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(Failure::new(format!("must be {what}")))
    }
}

fn check_array_size(rules: &ArrayRules, items: &[Value]) -> Check {
    let len = items.len() as u64;
    if let Some(min) = rules.min_items.filter(|&m| len < m) {
        return Err(Failure::new(format!("must have at least {}", plural(min, "item", "items"))));
    }
    if let Some(max) = rules.max_items.filter(|&m| len > m) {
        return Err(Failure::new(format!("must have at most {}", plural(max, "item", "items"))));
    }
    if rules.unique_items {
        if let Some((i, j)) = first_duplicate(items) {
            return Err(Failure::new(format!("must not contain duplicate items (items {i} and {j} are equal)")));
        }
    }
    Ok(())
}

/// `required` (less the `readOnly`/`writeOnly` exemptions), `minProperties`,
/// `maxProperties`, `dependentRequired`.
fn check_object_shape(set: &SchemaSet, direction: Direction, rules: &ObjectRules, map: &Map<String, Value>) -> Check {
    for name in &rules.required {
        if map.contains_key(name.as_ref()) {
            continue;
        }
        let exempt = rules.property(name).is_some_and(|p| match direction {
            Direction::Request => set.access_flag(p, false, 0),
            Direction::Response => set.access_flag(p, true, 0),
        });
        if !exempt {
            return Err(Failure::new(format!("missing required property `{name}`")));
        }
    }
    let len = map.len() as u64;
    if let Some(min) = rules.min_properties.filter(|&m| len < m) {
        return Err(Failure::new(format!("must have at least {}", plural(min, "property", "properties"))));
    }
    if let Some(max) = rules.max_properties.filter(|&m| len > m) {
        return Err(Failure::new(format!("must have at most {}", plural(max, "property", "properties"))));
    }
    for (name, needs) in &rules.dependent_required {
        if map.contains_key(name.as_ref()) {
            if let Some(missing) = needs.iter().find(|n| !map.contains_key(n.as_ref())) {
                return Err(Failure::new(format!("missing property `{missing}`, required when `{name}` is present")));
            }
        }
    }
    Ok(())
}

fn unknown_property(key: &str) -> Failure {
    Failure::new(format!("unknown property `{key}`")).at_key(key)
}

/// The schema the discriminator property of `map` selects.
fn discriminated_branch(discriminator: &Discriminator, map: &Map<String, Value>) -> Result<SchemaId, Failure> {
    let property = discriminator.property.as_ref();
    let tag = match map.get(property) {
        None => return Err(Failure::new(format!("missing required property `{property}`"))),
        Some(Value::String(tag)) => tag,
        Some(_) => return Err(Failure { type_mismatch: true, ..Failure::new("must be a string") }.at_key(property)),
    };
    if let Some((_, schema)) = discriminator.mapping.iter().find(|(t, _)| **t == **tag) {
        return Ok(*schema);
    }
    let mut known: Vec<String> =
        discriminator.mapping.iter().take(ENUM_LISTED).map(|(t, _)| Value::String(t.to_string()).to_string()).collect();
    if discriminator.mapping.len() > ENUM_LISTED {
        known.push("…".to_owned());
    }
    Err(Failure::new(format!("`{tag}` is not a known `{property}`; expected one of {}", known.join(", ")))
        .at_key(property))
}

/// The most telling of the branch failures of an `anyOf`/`oneOf`: the one that got deepest
/// into the value; when every branch failed at the value itself, a mismatch other than of type
/// (the branch whose type fit); when all are type mismatches, all of them in one message.
fn best_failure(failures: Vec<Failure>) -> Failure {
    let deepest = failures.iter().map(|f| f.path.len()).max().unwrap_or(0);
    if deepest > 0 || failures.iter().any(|f| !f.type_mismatch) {
        let mut failures = failures;
        let pick =
            failures.iter().position(|f| f.path.len() == deepest && (deepest > 0 || !f.type_mismatch)).unwrap_or(0);
        if pick < failures.len() {
            return failures.swap_remove(pick);
        }
        return Failure::new("must match one of the allowed schemas");
    }
    let mut messages: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for f in &failures {
        if seen.insert(f.message.as_str()) {
            messages.push(&f.message);
        }
    }
    Failure {
        type_mismatch: true,
        ..Failure::new(format!("must match one of the allowed schemas: {}", messages.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A 3.0 pet store: `nullable`, boolean `exclusiveMinimum`, `readOnly`/`writeOnly`, a
    /// discriminated `oneOf`, a recursive category tree, and a parameter given by `$ref`.
    fn petstore_30() -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "pets", "version": "1"},
            "paths": {
                "/pets/{petId}": {
                    "get": {
                        "parameters": [
                            {"$ref": "#/components/parameters/PetId"},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "format": "int32", "minimum": 0, "exclusiveMinimum": true, "maximum": 100}}
                        ],
                        "responses": {"200": {"$ref": "#/components/responses/Pet"}}
                    }
                }
            },
            "components": {
                "parameters": {
                    "PetId": {"name": "petId", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
                },
                "responses": {
                    "Pet": {"description": "a pet", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}
                },
                "schemas": {
                    "Pet": {
                        "type": "object",
                        "required": ["id", "name", "status", "password"],
                        "additionalProperties": false,
                        "properties": {
                            "id": {"type": "integer", "format": "int64", "readOnly": true},
                            "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                            "status": {"type": "string", "enum": ["available", "sold"]},
                            "nickname": {"type": "string", "nullable": true},
                            "password": {"type": "string", "writeOnly": true},
                            "owner": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/Owner"}]},
                            "weight": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 100, "exclusiveMaximum": false},
                            "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}, "maxItems": 3, "uniqueItems": true},
                            "born": {"type": "string", "format": "date"},
                            "seen": {"type": "string", "format": "date-time"},
                            "category": {"$ref": "#/components/schemas/Category"},
                            "animal": {"$ref": "#/components/schemas/Animal"}
                        }
                    },
                    "Owner": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}},
                    "Tag": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                    "Category": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "parent": {"$ref": "#/components/schemas/Category"},
                            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Category"}}
                        }
                    },
                    "Animal": {
                        "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                        "discriminator": {"propertyName": "kind", "mapping": {"doggo": "#/components/schemas/Dog"}}
                    },
                    "Cat": {"type": "object", "required": ["kind", "lives"], "properties": {"kind": {"type": "string"}, "lives": {"type": "integer", "maximum": 9}}},
                    "Dog": {"type": "object", "required": ["kind", "bark"], "properties": {"kind": {"type": "string"}, "bark": {"type": "boolean"}}}
                }
            }
        })
    }

    fn err(set: &SchemaSet, id: SchemaId, value: Value, direction: Direction) -> (String, String) {
        let e = set.validate(id, &value, direction).expect_err("should fail");
        (e.pointer, e.message)
    }

    fn pet() -> Value {
        json!({"id": 1, "name": "rex", "status": "sold", "password": "x"})
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        base[key] = value;
        base
    }

    #[test]
    fn openapi_30_document() {
        let mut set = SchemaSet::new(&petstore_30());
        let pet_id = set.compile("/paths/~1pets~1{petId}/get/parameters/0/schema").unwrap();
        let limit = set.compile("/paths/~1pets~1{petId}/get/parameters/1/schema").unwrap();
        let body = set.compile("/paths/~1pets~1{petId}/get/responses/200/content/application~1json/schema").unwrap();
        let pet_schema = set.compile("/components/schemas/Pet").unwrap();
        assert_ne!(body, pet_schema, "the response schema is a $ref node of its own");
        assert_eq!(set.compile("/components/schemas/Pet").unwrap(), pet_schema);
        let r = Direction::Response;

        assert!(set.validate(pet_id, &json!("0b6f4d2e-2f0a-4c2b-9a55-7d8e1f0a9c3b"), r).is_ok());
        assert_eq!(err(&set, pet_id, json!("nope"), r), ("".into(), "must be a UUID".into()));

        // boolean exclusiveMinimum: 0 < limit <= 100
        assert!(set.validate(limit, &json!(1), r).is_ok());
        assert!(set.validate(limit, &json!(100), r).is_ok());
        assert_eq!(err(&set, limit, json!(0), r).1, "must be greater than 0");
        assert_eq!(err(&set, limit, json!(101), r).1, "must be at most 100");
        assert_eq!(err(&set, limit, json!(5.5), r).1, "must be an integer");
        assert_eq!(err(&set, limit, json!(5.0), r).1, "must be an integer");
        assert_eq!(err(&set, limit, json!("5"), r).1, "must be an integer");

        assert!(set.validate(body, &pet(), r).is_ok());
        assert_eq!(err(&set, body, json!([]), r), ("".into(), "must be an object".into()));
        // nullable
        assert!(set.validate(body, &with(pet(), "nickname", Value::Null), r).is_ok());
        assert_eq!(err(&set, body, with(pet(), "name", Value::Null), r), ("/name".into(), "must be a string".into()));
        // nullable beside allOf: null passes, a bad owner fails inside
        assert!(set.validate(body, &with(pet(), "owner", Value::Null), r).is_ok());
        assert!(set.validate(body, &with(pet(), "owner", json!({"email": "a@b.c"})), r).is_ok());
        assert_eq!(
            err(&set, body, with(pet(), "owner", json!({"email": "not an email"})), r),
            ("/owner/email".into(), "must be an email address".into())
        );
        assert_eq!(
            err(&set, body, with(pet(), "owner", json!({})), r),
            ("/owner".into(), "missing required property `email`".into())
        );
        // number bounds: exclusiveMinimum true, exclusiveMaximum false
        assert!(set.validate(body, &with(pet(), "weight", json!(100)), r).is_ok());
        assert_eq!(err(&set, body, with(pet(), "weight", json!(0)), r).1, "must be greater than 0");
        assert_eq!(err(&set, body, with(pet(), "weight", json!(100.5)), r).1, "must be at most 100");
        // strings
        assert_eq!(err(&set, body, with(pet(), "name", json!("")), r).1, "must be at least 1 character long");
        assert_eq!(err(&set, body, with(pet(), "name", json!("abcdef")), r).1, "must be at most 5 characters long");
        assert!(set.validate(body, &with(pet(), "name", json!("ééééé")), r).is_err(), "pattern is ASCII-only");
        assert_eq!(err(&set, body, with(pet(), "name", json!("Rex")), r).1, "must match pattern ^[a-z]+$");
        assert_eq!(
            err(&set, body, with(pet(), "status", json!("lost")), r),
            ("/status".into(), "must be one of \"available\", \"sold\"".into())
        );
        // additionalProperties: false
        assert_eq!(
            err(&set, body, with(pet(), "colour", json!("red")), r),
            ("/colour".into(), "unknown property `colour`".into())
        );
        // arrays, pointer into items
        assert!(set.validate(body, &with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}])), r).is_ok());
        assert_eq!(
            err(&set, body, with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}, {"name": 3}])), r),
            ("/tags/2/name".into(), "must be a string".into())
        );
        assert_eq!(
            err(&set, body, with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}, {"name": "a"}])), r).1,
            "must not contain duplicate items (items 0 and 2 are equal)"
        );
        assert_eq!(
            err(
                &set,
                body,
                with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}])),
                r
            )
            .1,
            "must have at most 3 items"
        );
        // dates
        assert!(set.validate(body, &with(pet(), "born", json!("2024-02-29")), r).is_ok());
        assert_eq!(err(&set, body, with(pet(), "born", json!("2023-02-29")), r).1, "must be a date (YYYY-MM-DD)");
        assert!(set.validate(body, &with(pet(), "seen", json!("2024-01-31T12:00:00.5+02:00")), r).is_ok());
        assert!(set.validate(body, &with(pet(), "seen", json!("2024-01-31")), r).is_err());
    }

    #[test]
    fn read_only_and_write_only() {
        let mut set = SchemaSet::new(&petstore_30());
        let body = set.compile("/components/schemas/Pet").unwrap();
        let request = json!({"name": "rex", "status": "sold", "password": "x"});
        assert!(set.validate(body, &request, Direction::Request).is_ok());
        assert_eq!(
            err(&set, body, request.clone(), Direction::Response),
            ("".into(), "missing required property `id`".into())
        );
        // readOnly values sent in a request are not checked
        assert!(set.validate(body, &with(request, "id", json!("whatever")), Direction::Request).is_ok());
        let response = json!({"id": 1, "name": "rex", "status": "sold"});
        assert!(set.validate(body, &response, Direction::Response).is_ok());
        assert_eq!(
            err(&set, body, response, Direction::Request),
            ("".into(), "missing required property `password`".into())
        );
    }

    #[test]
    fn recursion() {
        let mut set = SchemaSet::new(&petstore_30());
        let category = set.compile("/components/schemas/Category").unwrap();
        let tree = json!({"name": "a", "parent": {"name": "b", "parent": {"name": "c"}},
            "children": [{"name": "d", "children": [{"name": "e"}, {"name": 5}]}]});
        assert_eq!(
            err(&set, category, tree, Direction::Response),
            ("/children/0/children/1/name".into(), "must be a string".into())
        );
        // values nested deeper than the limit fail cleanly instead of exhausting the stack
        let mut deep = json!({"name": "leaf"});
        for _ in 0..2000 {
            let mut map = Map::new();
            map.insert("parent".to_owned(), deep); // moved, not serialized as `json!` would
            deep = Value::Object(map);
        }
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let outcome = set.validate(category, &deep, Direction::Response).map_err(|e| e.message);
                // dropping a deeply nested value recurses too; forget it
                std::mem::forget(deep);
                outcome
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(result.unwrap_err(), "is nested too deeply to validate");
    }

    #[test]
    fn discriminator() {
        let mut set = SchemaSet::new(&petstore_30());
        let animal = set.compile("/components/schemas/Animal").unwrap();
        let r = Direction::Response;
        assert!(set.validate(animal, &json!({"kind": "Cat", "lives": 9}), r).is_ok());
        assert!(set.validate(animal, &json!({"kind": "doggo", "bark": true}), r).is_ok());
        assert!(set.validate(animal, &json!({"kind": "Dog", "bark": true}), r).is_ok());
        assert_eq!(
            err(&set, animal, json!({"kind": "Cat", "lives": 10}), r),
            ("/lives".into(), "must be at most 9".into())
        );
        assert_eq!(
            err(&set, animal, json!({"kind": "Lizard"}), r),
            ("/kind".into(), "`Lizard` is not a known `kind`; expected one of \"doggo\", \"Cat\", \"Dog\"".into())
        );
        assert_eq!(err(&set, animal, json!({"lives": 1}), r), ("".into(), "missing required property `kind`".into()));
        assert_eq!(err(&set, animal, json!({"kind": 1}), r), ("/kind".into(), "must be a string".into()));
        // not an object: plain oneOf evaluation
        assert_eq!(err(&set, animal, json!(3), r).1, "must match one of the allowed schemas: must be an object");
    }

    fn doc_31(schemas: Value) -> Value {
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "components": {"schemas": schemas}})
    }

    #[test]
    fn openapi_31_document() {
        let doc = doc_31(json!({
            "Item": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": ["integer", "string"]},
                    "note": {"type": ["string", "null"], "maxLength": 3},
                    "nullable_ignored": {"type": "string", "nullable": true},
                    "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 0.5},
                    "link": {"$ref": "#/components/schemas/Link", "required": ["extra"]},
                    "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false},
                    "kind": {"const": "item"},
                    "anything": true,
                    "nothing": false
                }
            },
            "Link": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}
        }));
        let mut set = SchemaSet::new(&doc);
        let item = set.compile("/components/schemas/Item").unwrap();
        let r = Direction::Request;
        let ok = |v: Value| set.validate(item, &v, r).map_err(|e| (e.pointer, e.message));
        assert!(ok(json!({"id": 1})).is_ok());
        assert!(ok(json!({"id": "a", "note": null})).is_ok());
        assert_eq!(ok(json!({"id": true})).unwrap_err(), ("/id".into(), "must be a string or an integer".into()));
        assert_eq!(ok(json!({"id": 1, "note": "long"})).unwrap_err().1, "must be at most 3 characters long");
        assert_eq!(ok(json!({"id": 1, "note": 5})).unwrap_err().1, "must be a string or null");
        assert_eq!(ok(json!({"id": 1, "nullable_ignored": null})).unwrap_err().1, "must be a string");
        assert!(ok(json!({"id": 1, "score": 9.5})).is_ok());
        assert_eq!(ok(json!({"id": 1, "score": 0})).unwrap_err().1, "must be greater than 0");
        assert_eq!(ok(json!({"id": 1, "score": 10})).unwrap_err().1, "must be less than 10");
        assert_eq!(ok(json!({"id": 1, "score": 1.2})).unwrap_err().1, "must be a multiple of 0.5");
        // $ref with siblings: both apply
        assert!(ok(json!({"id": 1, "link": {"href": "x", "extra": 1}})).is_ok());
        assert_eq!(
            ok(json!({"id": 1, "link": {"href": "x"}})).unwrap_err(),
            ("/link".into(), "missing required property `extra`".into())
        );
        assert_eq!(
            ok(json!({"id": 1, "link": {"extra": 1}})).unwrap_err(),
            ("/link".into(), "missing required property `href`".into())
        );
        // prefixItems + items: false
        assert!(ok(json!({"id": 1, "pair": ["a", 1]})).is_ok());
        assert_eq!(
            ok(json!({"id": 1, "pair": ["a", "b"]})).unwrap_err(),
            ("/pair/1".into(), "must be an integer".into())
        );
        assert_eq!(
            ok(json!({"id": 1, "pair": ["a", 1, 2]})).unwrap_err(),
            ("/pair/2".into(), "is not allowed here".into())
        );
        assert!(ok(json!({"id": 1, "kind": "item"})).is_ok());
        assert_eq!(ok(json!({"id": 1, "kind": "other"})).unwrap_err().1, "must be equal to \"item\"");
        assert!(ok(json!({"id": 1, "anything": [1, {"x": null}]})).is_ok());
        assert_eq!(ok(json!({"id": 1, "nothing": 1})).unwrap_err(), ("/nothing".into(), "is not allowed here".into()));
    }

    #[test]
    fn every_keyword() {
        let doc = doc_31(json!({
            "n": {"type": "number", "minimum": 1.5, "maximum": 3, "multipleOf": 0.25},
            "i": {"type": "integer", "multipleOf": 3, "format": "int32"},
            "i64": {"type": "integer", "format": "int64"},
            "s": {"type": "string", "pattern": "[0-9]{2}", "minLength": 2},
            "bad_pattern": {"type": "string", "pattern": "(?<=a)b"},
            "e": {"enum": [1, "two", null, [3]]},
            "arr": {"type": "array", "minItems": 1, "contains": {"type": "string"}},
            "uniq": {"type": "array", "uniqueItems": true},
            "obj": {
                "type": "object", "minProperties": 1, "maxProperties": 2,
                "patternProperties": {"^x-": {"type": "integer"}},
                "additionalProperties": {"type": "string"},
                "propertyNames": {"maxLength": 4},
                "dependentRequired": {"a": ["b"]}
            },
            "any": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["k"]}]},
            "one": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}]},
            "not": {"not": {"type": "string"}},
            "cond": {"if": {"properties": {"t": {"const": "a"}}}, "then": {"required": ["a"]}, "else": {"required": ["b"]}},
            "uuid": {"type": "string", "format": "uuid"},
            "unknown_format": {"type": "string", "format": "hostname"}
        }));
        let mut set = SchemaSet::new(&doc);
        let mut check = |name: &str, value: Value| -> Result<(), (String, String)> {
            let id = set.compile(&format!("/components/schemas/{name}")).unwrap();
            set.validate(id, &value, Direction::Request).map_err(|e| (e.pointer, e.message))
        };
        let msg = |r: Result<(), (String, String)>| r.unwrap_err().1;

        assert!(check("n", json!(2.75)).is_ok());
        assert_eq!(msg(check("n", json!(1))), "must be at least 1.5");
        assert_eq!(msg(check("n", json!(3.25))), "must be at most 3");
        assert_eq!(msg(check("n", json!(2.1))), "must be a multiple of 0.25");
        assert!(check("i", json!(-9)).is_ok());
        assert_eq!(msg(check("i", json!(4))), "must be a multiple of 3");
        assert_eq!(msg(check("i", json!(3_000_000_000u64))), "must be a 32-bit integer");
        assert!(check("i64", json!(i64::MIN)).is_ok());
        assert_eq!(msg(check("i64", json!(u64::MAX))), "must be a 64-bit integer");
        assert!(check("s", json!("ab12cd")).is_ok(), "patterns search, unanchored");
        assert_eq!(msg(check("s", json!("abc"))), "must match pattern [0-9]{2}");
        assert_eq!(msg(check("s", json!("1"))), "must be at least 2 characters long");
        assert!(check("bad_pattern", json!("anything")).is_ok(), "an uncompilable pattern is ignored");
        assert!(check("e", json!(null)).is_ok());
        assert!(check("e", json!(1.0)).is_ok(), "1.0 equals 1");
        assert!(check("e", json!([3])).is_ok());
        assert_eq!(msg(check("e", json!("one"))), "must be one of 1, \"two\", null, [3]");
        assert!(check("arr", json!([1, "x"])).is_ok());
        assert_eq!(msg(check("arr", json!([]))), "must have at least 1 item");
        assert_eq!(msg(check("arr", json!([1, 2]))), "must contain at least one item matching `contains`");
        assert!(check("uniq", json!([1, "1", [1], {"a": 1}, {"a": 2}])).is_ok());
        assert_eq!(
            msg(check("uniq", json!([{"a": 1, "b": 2}, {"b": 2, "a": 1.0}]))),
            "must not contain duplicate items (items 0 and 1 are equal)"
        );
        let mut long: Vec<Value> = (0..100).map(Value::from).collect();
        assert!(check("uniq", Value::Array(long.clone())).is_ok());
        long.push(json!(50.0));
        assert_eq!(
            msg(check("uniq", Value::Array(long))),
            "must not contain duplicate items (items 50 and 100 are equal)"
        );
        assert!(check("obj", json!({"x-a": 1, "b": "s"})).is_ok());
        assert_eq!(msg(check("obj", json!({}))), "must have at least 1 property");
        assert_eq!(msg(check("obj", json!({"a": "1", "b": "2", "c": "3"}))), "must have at most 2 properties");
        assert_eq!(check("obj", json!({"x-a": "1"})).unwrap_err(), ("/x-a".into(), "must be an integer".into()));
        assert_eq!(check("obj", json!({"b": 1})).unwrap_err(), ("/b".into(), "must be a string".into()));
        assert_eq!(
            msg(check("obj", json!({"toolong": "1"}))),
            "property name `toolong` must be at most 4 characters long"
        );
        assert_eq!(msg(check("obj", json!({"a": "1"}))), "missing property `b`, required when `a` is present");
        assert!(check("any", json!("x")).is_ok());
        assert!(check("any", json!({"k": 1})).is_ok());
        assert_eq!(check("any", json!({})).unwrap_err(), ("".into(), "missing required property `k`".into()));
        assert_eq!(
            msg(check("any", json!(1))),
            "must match one of the allowed schemas: must be a string; must be an object"
        );
        assert!(check("one", json!(1)).is_ok());
        assert!(check("one", json!(2.5)).is_ok());
        assert_eq!(msg(check("one", json!(3))), "must match exactly one schema of `oneOf`, but matches both 0 and 1");
        assert_eq!(msg(check("one", json!(1.5))), "must be at least 2");
        assert!(check("not", json!(1)).is_ok());
        assert_eq!(msg(check("not", json!("s"))), "must not match the schema in `not`");
        assert!(check("cond", json!({"t": "a", "a": 1})).is_ok());
        assert!(check("cond", json!({"t": "z", "b": 1})).is_ok());
        assert_eq!(msg(check("cond", json!({"t": "a", "b": 1}))), "missing required property `a`");
        assert_eq!(msg(check("uuid", json!("0b6f4d2e-2f0a-4c2b-9a55-7d8e1f0a9c3"))), "must be a UUID");
        assert!(check("unknown_format", json!("not a host!")).is_ok());
    }

    #[test]
    fn schema_set_is_send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<SchemaSet>();
    }

    #[test]
    fn formats() {
        for ok in [
            "2024-01-31T12:00:00Z",
            "2024-01-31t12:00:00z",
            "2024-01-31T23:59:60.123456-08:00",
            "2000-02-29T00:00:00+00:00",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "2024-01-31",
            "2024-01-31T12:00:00",
            "2024-01-31T24:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-31T12:00Z",
            "2024-01-31T12:00:00.Z",
            "2024-01-31T12:00:00+0200",
            "1900-02-29T00:00:00Z",
            "2024-01-3１T12:00:00Z",
            "",
            "T",
            "2024-01-31T12:00:00+é:00",
            "2024-01-31T1é:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
        assert!(is_date("2000-02-29") && !is_date("2100-02-29") && !is_date("2024-04-31") && !is_date("24-01-01"));
        assert!(is_uuid("0B6F4D2E-2F0A-4C2B-9A55-7D8E1F0A9C3B") && !is_uuid("0b6f4d2e2f0a4c2b9a557d8e1f0a9c3b"));
        assert!(is_email("a@b") && !is_email("@b") && !is_email("a@") && !is_email("a b@c") && !is_email("ab"));
    }

    #[test]
    fn compile_errors_and_pointers() {
        let doc = doc_31(json!({
            "Broken": {"type": "object", "properties": {"x": {"$ref": "#/components/schemas/Missing"}}},
            "External": {"$ref": "other.yaml#/Foo"},
            "Anchor": {"$ref": "#foo"},
            "a/b~c": {"type": "integer"},
            "UsesEscaped": {"$ref": "#/components/schemas/a~1b~0c"},
            "Spaced name": {"type": "boolean"},
            "UsesPercent": {"$ref": "#/components/schemas/Spaced%20name"},
            "Loop": {"$ref": "#/components/schemas/Loop"},
            "AllLoop": {"allOf": [{"$ref": "#/components/schemas/AllLoop"}]},
            "NotASchema": 5
        }));
        let mut set = SchemaSet::new(&doc);
        assert!(set.compile("/components/schemas/Broken").unwrap_err().contains("/components/schemas/Missing"));
        // the failed compile left nothing behind
        assert!(set.nodes.is_empty() && set.by_pointer.is_empty());
        assert!(set.compile("/components/schemas/External").unwrap_err().contains("same document"));
        assert!(set.compile("/components/schemas/Anchor").unwrap_err().contains("anchors"));
        assert!(set.compile("/nope").is_err());
        assert!(set.compile("nope").is_err());
        assert!(set.compile("/components/schemas/NotASchema").is_err());
        let escaped = set.compile("/components/schemas/UsesEscaped").unwrap();
        assert!(set.validate(escaped, &json!(1), Direction::Request).is_ok());
        assert!(set.validate(escaped, &json!("1"), Direction::Request).is_err());
        let spaced = set.compile("/components/schemas/UsesPercent").unwrap();
        assert_eq!(set.validate(spaced, &json!(1), Direction::Request).unwrap_err().message, "must be a boolean");
        // a $ref cycle that never descends into the value compiles, and fails cleanly
        let looped = set.compile("/components/schemas/Loop").unwrap();
        assert!(set.validate(looped, &json!(1), Direction::Request).is_err());
        let all_loop = set.compile("/components/schemas/AllLoop").unwrap();
        assert!(set.validate(all_loop, &json!(1), Direction::Request).is_err());
        // pointers escape `/` and `~` in keys
        let doc = doc_31(json!({"M": {"type": "object", "additionalProperties": {"type": "integer"}}}));
        let mut set = SchemaSet::new(&doc);
        let m = set.compile("/components/schemas/M").unwrap();
        let e = set.validate(m, &json!({"a/b~c": "x"}), Direction::Request).unwrap_err();
        assert_eq!(e.pointer, "/a~1b~0c");
        assert_eq!(e.to_string(), "/a~1b~0c: must be an integer");
    }

    #[test]
    fn property_shapes() {
        let doc = doc_31(json!({
            "Base": {"type": "object", "properties": {"count": {"type": "integer"}}},
            "Form": {
                "allOf": [{"$ref": "#/components/schemas/Base"}],
                "properties": {
                    "ratio": {"type": ["number", "null"]},
                    "flag": {"$ref": "#/components/schemas/Flag"},
                    "ids": {"type": "array", "items": {"type": "integer"}},
                    "names": {"type": "array"},
                    "file": {"type": "string", "format": "binary"},
                    "opt": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "mixed": {"type": ["integer", "string"]},
                    "nested": {"type": "object"},
                    "free": {}
                }
            },
            "Flag": {"type": "boolean"}
        }));
        let mut set = SchemaSet::new(&doc);
        let form = set.compile("/components/schemas/Form").unwrap();
        assert_eq!(set.property_shape(form, "count"), Some((Scalar::Integer, false)));
        assert_eq!(set.property_shape(form, "ratio"), Some((Scalar::Number, false)));
        assert_eq!(set.property_shape(form, "flag"), Some((Scalar::Boolean, false)));
        assert_eq!(set.property_shape(form, "ids"), Some((Scalar::Integer, true)));
        assert_eq!(set.property_shape(form, "names"), Some((Scalar::String, true)));
        assert_eq!(set.property_shape(form, "file"), Some((Scalar::String, false)));
        assert_eq!(set.property_shape(form, "opt"), Some((Scalar::Integer, false)));
        assert_eq!(set.property_shape(form, "mixed"), Some((Scalar::String, false)));
        assert_eq!(set.property_shape(form, "nested"), None);
        assert_eq!(set.property_shape(form, "free"), None);
        assert_eq!(set.property_shape(form, "absent"), None);
    }

    /// Compiles every parameter, request and response schema of a large real document (GitHub's
    /// REST API description, 3.0, ~13 MB). Run with
    /// `SWITCHBOARD_BIG_SPEC=path/to/api.github.com.json cargo test --release -p switchboard --lib big_document -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs a large OpenAPI document named by SWITCHBOARD_BIG_SPEC"]
    fn big_document() {
        let Ok(path) = std::env::var("SWITCHBOARD_BIG_SPEC") else { return };
        let text = std::fs::read_to_string(path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let start = std::time::Instant::now();
        let mut set = SchemaSet::new(&doc);
        let cloned = start.elapsed();
        let mut pointers = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let path = escape_token(path);
            for (method, op) in item.as_object().unwrap() {
                let Some(op) = op.as_object() else { continue };
                for (i, _) in op.get("parameters").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    pointers.push(format!("/paths/{path}/{method}/parameters/{i}/schema"));
                }
                let mut content = |base: String, body: &Value| {
                    for media in body.get("content").and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
                        pointers.push(format!("{base}/content/{}/schema", escape_token(media)));
                    }
                };
                if op.contains_key("requestBody") {
                    let body = resolve(&doc, &format!("/paths/{path}/{method}/requestBody"), &mut 0).unwrap().1;
                    content(format!("/paths/{path}/{method}/requestBody"), body);
                }
                for code in op.get("responses").and_then(Value::as_object).into_iter().flat_map(|r| r.keys()) {
                    let base = format!("/paths/{path}/{method}/responses/{}", escape_token(code));
                    let body = resolve(&doc, &base, &mut 0).unwrap().1;
                    content(base, body);
                }
            }
        }
        let mut failed = 0;
        for pointer in &pointers {
            if set.compile(pointer).is_err() {
                failed += 1;
            }
        }
        let total = start.elapsed();
        eprintln!(
            "{} schemas ({} failed) → {} nodes; clone {:?}, total {:?}",
            pointers.len(),
            failed,
            set.nodes.len(),
            cloned,
            total
        );
        assert_eq!(failed, 0);
    }
}
