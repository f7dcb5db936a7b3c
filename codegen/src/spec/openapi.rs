//! Reading OpenAPI documents: YAML or JSON (by extension) → one bundled `serde_json::Value`.
//!
//! References to other files (`$ref: "pet.yaml"`, `$ref: "common.yaml#/components/schemas/Error"`)
//! are pulled into the root document: a referenced schema becomes a component schema (named after
//! the fragment's last segment, or the file's stem) and the reference is rewritten to point at it;
//! anything else referenced in another file is inlined. Syntax errors are reported as
//! `file:line:col: message`; Swagger 2.0 is rejected with a pointer to the converters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Location};

/// A document, bundled.
#[derive(Debug, Clone)]
pub struct OpenApiSpec {
    /// The root file, as given.
    pub file: PathBuf,
    /// The document with every reference local (`#/...`).
    pub document: Value,
    /// Every file read (the root and the files it references), for `rerun-if-changed`.
    pub inputs: Vec<PathBuf>,
    /// What was read but left as it is: `(JSON pointer, message)` each (references inside
    /// specification extensions that do not resolve: `x-` values carry no OpenAPI meaning).
    pub warnings: Vec<(String, String)>,
}

/// Whether `path` names an OpenAPI document (`.yaml`, `.yml`, `.json`).
pub fn is_openapi(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Reads `path` and every file it references.
pub fn load(path: &Path) -> Result<OpenApiSpec, Error> {
    let mut loader = Loader { files: BTreeMap::new(), inputs: Vec::new() };
    let mut document = loader.read_root(path)?;
    check_version(path, &document)?;
    let mut bundled = Bundle { loader: &mut loader, added: BTreeMap::new(), schemas: Map::new(), warnings: Vec::new() };
    let base = path.to_path_buf();
    bundled.rewrite(&base, &mut document, 0, 0, &At::Root)?;
    let added = std::mem::take(&mut bundled.schemas);
    let warnings = std::mem::take(&mut bundled.warnings);
    if !added.is_empty() {
        let root = document.as_object_mut().expect("checked to be an object");
        let components = root.entry("components").or_insert_with(|| Value::Object(Map::new()));
        if let Some(components) = components.as_object_mut() {
            let schemas = components.entry("schemas").or_insert_with(|| Value::Object(Map::new()));
            if let Some(schemas) = schemas.as_object_mut() {
                for (k, v) in added {
                    schemas.entry(k).or_insert(v);
                }
            }
        }
    }
    check_depth(path, &document)?;
    Ok(OpenApiSpec { file: path.to_path_buf(), document, inputs: loader.inputs, warnings })
}

fn check_version(path: &Path, document: &Value) -> Result<(), Error> {
    let file = path.display().to_string();
    let Some(root) = document.as_object() else {
        return Err(Error::SpecFile { file, message: "an OpenAPI document must be an object".into() });
    };
    if root.contains_key("swagger") {
        return Err(Error::SpecFile {
            file,
            message: "this is a Swagger 2.0 document; switchboard reads OpenAPI 3.0 and 3.1. Convert it first, \
                      e.g. `npx swagger2openapi in.yaml -o out.yaml`"
                .into(),
        });
    }
    match root.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0") || v.starts_with("3.1") => Ok(()),
        Some(v) => Err(Error::SpecFile { file, message: format!("/openapi: unsupported version {v:?}; expected 3.0.x or 3.1.x") }),
        None => Err(Error::SpecFile { file, message: "/openapi: missing; is this an OpenAPI 3 document?".into() }),
    }
}

struct Loader {
    files: BTreeMap<PathBuf, Value>,
    inputs: Vec<PathBuf>,
}

impl Loader {
    /// The root document is not cached (nothing refers back to it by file name, usually).
    fn read_root(&mut self, path: &Path) -> Result<Value, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        self.inputs.push(path.to_path_buf());
        parse(path, &text)
    }

    fn read(&mut self, path: &Path) -> Result<Value, Error> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(v) = self.files.get(&key) {
            return Ok(v.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        self.inputs.push(path.to_path_buf());
        let value = parse(path, &text)?;
        self.files.insert(key, value.clone());
        Ok(value)
    }
}

/// Parses YAML or JSON text; errors carry `file:line:col`.
pub fn parse(path: &Path, text: &str) -> Result<Value, Error> {
    // Some tools write a UTF-8 byte order mark; neither parser skips it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json = path.extension().and_then(|e| e.to_str()) == Some("json");
    if json {
        serde_json::from_str(text).map_err(|e| Error::Spec {
            location: Location { file: path.to_path_buf(), line: e.line(), column: e.column() },
            message: strip_position(&e.to_string()),
        })
    } else {
        serde_yaml::from_str::<Value>(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            Error::Spec {
                location: Location { file: path.to_path_buf(), line, column },
                message: strip_position(&e.to_string()),
            }
        })
    }
}

/// Where `key` (a `paths` key) first appears in `path`'s text, quoted (JSON, YAML) or followed
/// by `:` (plain YAML); the file's start when it cannot be found.
pub fn locate_key(path: &Path, key: &str) -> Location {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let at = [format!("\"{key}\""), format!("'{key}'"), format!("{key}:")].iter().find_map(|needle| text.find(needle.as_str()));
    let (line, column) = match at {
        Some(at) => {
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        }
        None => (1, 1),
    };
    Location { file: path.to_path_buf(), line, column }
}

/// serde's messages end with " at line L column C"; the location is already in front.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// How deeply values may nest in the bundled document (references to other files inlined):
/// every later stage walks it, some recursively.
const MAX_NESTING: usize = 512;

/// Errors (naming the JSON pointer) when the bundled document nests deeper than
/// [`MAX_NESTING`]; checked with a loop.
fn check_depth(path: &Path, document: &Value) -> Result<(), Error> {
    let mut stack: Vec<(&Value, usize)> = vec![(document, 0)];
    while let Some((value, depth)) = stack.pop() {
        if depth > MAX_NESTING {
            // Found: walk again to name where (the first value that deep).
            let mut pointer = String::new();
            let mut at = document;
            for _ in 0..MAX_NESTING {
                let next = match at {
                    Value::Object(m) => m.iter().find(|(_, v)| deeper_than(v, MAX_NESTING / 2)).map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v)),
                    Value::Array(a) => a.iter().enumerate().find(|(_, v)| deeper_than(v, MAX_NESTING / 2)).map(|(i, v)| (i.to_string(), v)),
                    _ => None,
                };
                let Some((segment, v)) = next else { break };
                pointer.push('/');
                pointer.push_str(&segment);
                at = v;
                if pointer.matches('/').count() >= 8 {
                    break;
                }
            }
            return Err(Error::SpecFile {
                file: path.display().to_string(),
                message: format!("#{pointer}: values nest more than {MAX_NESTING} levels deep (with referenced files inlined)"),
            });
        }
        match value {
            Value::Object(m) => stack.extend(m.values().map(|v| (v, depth + 1))),
            Value::Array(a) => stack.extend(a.iter().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `value` nests more than `levels` deep (a loop).
fn deeper_than(value: &Value, levels: usize) -> bool {
    let mut stack = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        if d > levels {
            return true;
        }
        match v {
            Value::Object(m) => stack.extend(m.values().map(|v| (v, d + 1))),
            Value::Array(a) => stack.extend(a.iter().map(|v| (v, d + 1))),
            _ => {}
        }
    }
    false
}

/// Where a value is in the document, as a chain of parents (a pointer is only spelled out for
/// a warning).
enum At<'p> {
    Root,
    Key(&'p At<'p>, &'p str),
    Index(&'p At<'p>, usize),
}

impl At<'_> {
    fn pointer(&self) -> String {
        let mut segments = Vec::new();
        let mut at = self;
        loop {
            match at {
                At::Root => break,
                At::Key(parent, k) => {
                    segments.push(k.replace('~', "~0").replace('/', "~1"));
                    at = parent;
                }
                At::Index(parent, i) => {
                    segments.push(i.to_string());
                    at = parent;
                }
            }
        }
        segments.iter().rev().map(|s| format!("/{s}")).collect()
    }

    /// The specification extension (`x-...` key) this value is inside, if any.
    fn extension(&self) -> Option<&str> {
        let mut at = self;
        let mut found = None;
        loop {
            match at {
                At::Root => return found,
                At::Key(parent, k) => {
                    if k.starts_with("x-") {
                        found = Some(*k);
                    }
                    at = parent;
                }
                At::Index(parent, _) => at = parent,
            }
        }
    }
}

struct Bundle<'a> {
    loader: &'a mut Loader,
    /// (file, fragment) → component name already given.
    added: BTreeMap<(PathBuf, String), String>,
    schemas: Map<String, Value>,
    /// References left as they are: (pointer, message).
    warnings: Vec<(String, String)>,
}

impl Bundle<'_> {
    /// Rewrites every reference under `value` (read from `file`) to a local one. A reference
    /// inside a specification extension that cannot be resolved is left as it is, with a
    /// warning: extensions carry no OpenAPI meaning.
    /// `depth` counts files inlined one inside the other, `level` how deeply values nest.
    fn rewrite(&mut self, file: &Path, value: &mut Value, depth: usize, level: usize, at: &At<'_>) -> Result<(), Error> {
        if depth > 32 {
            return Err(Error::SpecFile { file: file.display().to_string(), message: "references nest too deeply (a cycle of inlined files?)".into() });
        }
        if level > MAX_NESTING {
            return Err(Error::SpecFile {
                file: file.display().to_string(),
                message: format!("#{}: values nest more than {MAX_NESTING} levels deep (with referenced files inlined)", at.pointer()),
            });
        }
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let r = r.clone();
                    if !r.starts_with('#') {
                        match self.external(file, &r, depth, level) {
                            Ok(v) => *value = v,
                            Err(e) => match at.extension() {
                                Some(ext) => self.warnings.push((
                                    at.pointer(),
                                    format!("$ref {r:?} inside the specification extension `{ext}` left as it is: {e}"),
                                )),
                                None => return Err(e),
                            },
                        }
                        return Ok(());
                    }
                }
                for (k, v) in map.iter_mut() {
                    self.rewrite(file, v, depth, level + 1, &At::Key(at, k))?;
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.rewrite(file, v, depth, level + 1, &At::Index(at, i))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Resolves an external reference: a schema becomes a component (the reference is rewritten),
    /// anything else is inlined.
    fn external(&mut self, from: &Path, reference: &str, depth: usize, level: usize) -> Result<Value, Error> {
        let (file_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        if file_part.starts_with("http://") || file_part.starts_with("https://") {
            return Err(Error::SpecFile {
                file: from.display().to_string(),
                message: format!("$ref {reference:?}: remote references are not fetched; download the file and refer to it by path"),
            });
        }
        let target = from.parent().unwrap_or(Path::new(".")).join(file_part);
        let key = (std::fs::canonicalize(&target).unwrap_or_else(|_| target.clone()), fragment.to_owned());
        if let Some(name) = self.added.get(&key) {
            return Ok(local_ref(name));
        }
        let doc = self.loader.read(&target)?;
        let mut found = if fragment.is_empty() || fragment == "/" {
            doc
        } else {
            doc.pointer(fragment).cloned().ok_or_else(|| Error::SpecFile {
                file: from.display().to_string(),
                message: format!("$ref {reference:?}: {fragment} does not exist in {}", target.display()),
            })?
        };
        let is_schema = fragment.starts_with("/components/schemas/") || (fragment.is_empty() && looks_like_schema(&found));
        if is_schema {
            let base = if fragment.is_empty() {
                target.file_stem().and_then(|s| s.to_str()).unwrap_or("Schema").to_owned()
            } else {
                fragment.rsplit('/').next().unwrap_or("Schema").replace("~1", "/").replace("~0", "~")
            };
            let mut name = base.clone();
            let mut n = 2;
            while self.schemas.contains_key(&name) || self.added.values().any(|v| v == &name) {
                name = format!("{base}{n}");
                n += 1;
            }
            self.added.insert(key, name.clone());
            // Local references inside the other file point into that file: rewrite them as
            // external ones first.
            relativize(&mut found, file_part);
            self.rewrite(&target, &mut found, depth + 1, level, &At::Root)?;
            self.schemas.insert(name.clone(), found);
            return Ok(local_ref(&name));
        }
        relativize(&mut found, file_part);
        self.rewrite(&target, &mut found, depth + 1, level, &At::Root)?;
        Ok(found)
    }
}

fn local_ref(name: &str) -> Value {
    let escaped = name.replace('~', "~0").replace('/', "~1");
    let mut m = Map::new();
    m.insert("$ref".into(), Value::String(format!("#/components/schemas/{escaped}")));
    Value::Object(m)
}

/// `#/x` inside a file that was itself referenced as `other.yaml` means `other.yaml#/x`.
fn relativize(value: &mut Value, file_part: &str) {
    let file_name = Path::new(file_part).file_name().and_then(|f| f.to_str()).unwrap_or(file_part).to_owned();
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if r.starts_with('#') {
                    *r = format!("{file_name}{r}");
                }
            }
            for v in map.values_mut() {
                relativize(v, file_part);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| relativize(v, file_part)),
        _ => {}
    }
}

fn looks_like_schema(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        ["type", "properties", "allOf", "oneOf", "anyOf", "items", "enum", "$ref", "additionalProperties"]
            .iter()
            .any(|k| m.contains_key(*k))
    })
}
