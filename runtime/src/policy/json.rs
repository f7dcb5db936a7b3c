//! Reading the config's JSON with a path for every error: objects whose fields are taken one by
//! one (lowerCamelCase or snake_case, as proto3 JSON allows), and the value kinds the format uses.

use std::time::Duration;

use serde_json::{Map, Value};

/// A service config that cannot be used, with where in it and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{path}: {message}", .file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct PolicyError {
    file: Option<String>,
    path: String,
    message: String,
}

impl PolicyError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError { file: None, path: path.into(), message: message.into() }
    }

    pub(crate) fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// The JSON path of the offending value, e.g. `$.methodConfig[0].retryPolicy.maxAttempts`
    /// (`$` for the document itself).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file it came from, when it was read from one.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }
}

pub(crate) type Result<T> = std::result::Result<T, PolicyError>;

/// One JSON object being read: fields are taken by name, and [`Obj::finish`] rejects the ones
/// nobody took (except `x-` extensions).
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    pub path: String,
    taken: Vec<&'a str>,
    known: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    pub fn new(value: &'a Value, path: &str) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Obj { map, path: path.to_owned(), taken: Vec::new(), known: Vec::new() }),
            other => Err(PolicyError::new(path, format!("expected an object, found {}", kind(other)))),
        }
    }

    /// The field `camel` (or its snake_case spelling), with its path; JSON `null` counts as absent.
    pub fn field(&mut self, camel: &'static str) -> Result<Option<(&'a Value, String)>> {
        self.known.push(camel);
        let snake = crate::rest_names::snake(camel);
        let mut found = None;
        for (key, value) in self.map {
            if key == camel || key == &snake {
                if let Some((first, _)) = found {
                    return Err(PolicyError::new(
                        format!("{}.{key}", self.path),
                        format!("`{first}` and `{key}` are the same field; give it once"),
                    ));
                }
                self.taken.push(key);
                found = Some((key.as_str(), value));
            }
        }
        Ok(found.filter(|(_, v)| !v.is_null()).map(|(key, v)| (v, format!("{}.{key}", self.path))))
    }

    /// Rejects fields nobody took, naming the ones the object has.
    pub fn finish(self) -> Result<()> {
        for key in self.map.keys() {
            if key.starts_with("x-") || self.taken.contains(&key.as_str()) {
                continue;
            }
            let known = self.known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            return Err(PolicyError::new(format!("{}.{key}", self.path), format!("unknown field (this object has {known})")));
        }
        Ok(())
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| PolicyError::new(path, format!("expected an array, found {}", kind(v))))
}

pub(crate) fn boolean(v: &Value, path: &str) -> Result<bool> {
    v.as_bool().ok_or_else(|| PolicyError::new(path, format!("expected true or false, found {}", kind(v))))
}

pub(crate) fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| PolicyError::new(path, format!("expected a string, found {}", kind(v))))
}

/// A `uint32` (proto3 JSON: a number, or a string of digits).
pub(crate) fn uint32(v: &Value, path: &str) -> Result<u32> {
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| PolicyError::new(path, format!("expected a whole number from 0 to 4294967295, found {}", show(v))))
}

/// A finite `float` / `double` (a number, or a string holding one).
pub(crate) fn number(v: &Value, path: &str) -> Result<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|f| f.is_finite()).ok_or_else(|| PolicyError::new(path, format!("expected a number, found {}", show(v))))
}

/// A `google.protobuf.Duration` in its JSON form: seconds with up to nine decimals and an `s`,
/// e.g. `"1.5s"`, `"0.000001s"`; never negative here.
pub(crate) fn duration(v: &Value, path: &str) -> Result<Duration> {
    let bad = || PolicyError::new(path, format!("expected a duration such as \"1.5s\" (seconds, then `s`), found {}", show(v)));
    let text = v.as_str().ok_or_else(bad)?;
    if text.starts_with('-') {
        return Err(PolicyError::new(path, format!("must not be negative, found {text:?}")));
    }
    let seconds = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 9 || (seconds.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    // proto's Duration holds at most 315,576,000,000 seconds (10,000 years).
    let secs: u64 = whole.parse().ok().filter(|s| *s <= 315_576_000_000).ok_or_else(bad)?;
    let nanos: u32 = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().map_err(|_| bad())? };
    Ok(Duration::new(secs, nanos))
}

/// A value as the error message quotes it (long ones shortened).
pub(crate) fn show(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}
