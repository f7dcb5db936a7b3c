//! OpenAPI parameter serialization: reading path variables, query entries, headers and cookies
//! into the JSON object a request struct deserializes from (server side), and writing them back
//! out (client side), by `style` and `explode` as the OpenAPI 3.x "Style Values" table describes.
//!
//! | style            | where        | scalar      | array (explode / not)      | object (explode / not)      |
//! |------------------|--------------|-------------|----------------------------|-----------------------------|
//! | `simple`         | path, header | `v`         | `a,b` / `a,b`              | `k=v,l=w` / `k,v,l,w`       |
//! | `label`          | path         | `.v`        | `.a.b` / `.a,b`            | `.k=v.l=w` / `.k,v,l,w`     |
//! | `matrix`         | path         | `;x=v`      | `;x=a;x=b` / `;x=a,b`      | `;k=v;l=w` / `;x=k,v,l,w`   |
//! | `form`           | query, cookie| `x=v`       | `x=a&x=b` / `x=a,b`        | `k=v&l=w` / `x=k,v,l,w`     |
//! | `spaceDelimited` | query        |             | as form / `x=a%20b`        | as form / `x=k%20v`         |
//! | `pipeDelimited`  | query        |             | as form / `x=a\|b`         | as form / `x=k\|v`          |
//! | `deepObject`     | query        |             |                            | `x[k]=v&x[l]=w`             |
//!
//! Cookies use `; ` where the query uses `&`. Decoding is lenient where the table is ambiguous:
//! a non-exploded query array whose raw value has no delimiter is split after percent-decoding,
//! so `ids=1%2C2` reads as `[1, 2]` (a one-element array whose value holds the delimiter can
//! therefore not be told apart).

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::{Location, Param, ParamShape, Scalar, Style};

/// Characters left as they are in an encoded path segment: RFC 3986 `unreserved`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Characters escaped in a cookie value (everything outside RFC 6265 `cookie-octet`, and `%`).
const COOKIE_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\').add(b'%').add(b'=');

/// Longest bad value quoted in full in an error message.
const QUOTE_MAX: usize = 64;

/// Values of one request as read off the wire.
pub(crate) struct RawRequest<'a> {
    /// Path variables as matched: (variable name, raw value still percent-encoded).
    pub path_vars: &'a [(&'a str, &'a str)],
    /// Raw query string without '?', if any.
    pub query: Option<&'a str>,
    /// Request headers (cookies are read from the `Cookie` headers).
    pub headers: &'a http::HeaderMap,
}

/// A parameter that could not be read.
///
/// Displays as e.g. ``query parameter `limit`: expected an integer, got `abc` `` or
/// ``header `X-Id` is required``.
#[derive(Debug)]
pub(crate) struct ParamError {
    /// The parameter's name on the wire.
    pub name: &'static str,
    /// Where it travels.
    pub location: Location,
    /// What is wrong, e.g. ``expected an integer, got `abc` `` or `is required`.
    pub message: String,
}

impl ParamError {
    fn new(param: &Param, message: impl Into<String>) -> Self {
        ParamError { name: param.name, location: param.location, message: message.into() }
    }
}

fn location_noun(location: Location) -> &'static str {
    match location {
        Location::Path => "path parameter",
        Location::Query => "query parameter",
        Location::Header => "header",
        Location::Cookie => "cookie",
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = location_noun(self.location);
        if self.message.starts_with("is ") {
            write!(f, "{noun} `{}` {}", self.name, self.message)
        } else {
            write!(f, "{noun} `{}`: {}", self.name, self.message)
        }
    }
}

impl std::error::Error for ParamError {}

// ---------------------------------------------------------------------------------------------
// Decoding (server side)
// ---------------------------------------------------------------------------------------------

/// The entries of a request struct's serde form as the server decodes them: (key, value) for each
/// parameter present, then the body; the request struct deserializes from them as from a JSON
/// object ([`Fields::deserializer`]). A list, not a `serde_json::Map`: an operation has a few
/// entries, and their keys are the operation table's `'static` field names, so building the
/// request costs no map node and no key copies.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(&'static str, Value)>);

/// What [`Fields::deserializer`] returns.
pub(crate) type FieldsDeserializer<'a> = serde::de::value::MapDeserializer<
    'a,
    std::iter::Map<std::slice::Iter<'a, (&'static str, Value)>, fn(&'a (&'static str, Value)) -> (&'a str, &'a Value)>,
    serde_json::Error,
>;

impl Fields {
    /// Room for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Fields(Vec::with_capacity(n))
    }

    /// Sets `key` (replacing an earlier value, as a map would).
    pub(crate) fn insert(&mut self, key: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as a deserializer of a JSON object (what `Value::Object` of them would give).
    pub(crate) fn deserializer<'a>(&'a self) -> FieldsDeserializer<'a> {
        fn pair<'a>(entry: &'a (&'static str, Value)) -> (&'a str, &'a Value) {
            (entry.0, &entry.1)
        }
        let pair: fn(&'a (&'static str, Value)) -> (&'a str, &'a Value) = pair;
        serde::de::value::MapDeserializer::new(self.0.iter().map(pair))
    }

    /// The entries as a JSON object.
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// Decodes every parameter of `params` into `out` (key = [`Param::field`]). A missing optional
/// parameter leaves its key absent; a missing required one is an error.
pub(crate) fn decode_params(params: &[Param], raw: &RawRequest<'_>, out: &mut Fields) -> Result<(), ParamError> {
    let query = raw.query.map(split_query).unwrap_or_default();
    let cookies =
        if params.iter().any(|p| p.location == Location::Cookie) { cookie_pairs(raw.headers) } else { Vec::new() };
    for param in params {
        let value = match param.location {
            Location::Path => decode_path(param, raw.path_vars)?,
            Location::Query => decode_query(param, params, &query)?,
            Location::Header => decode_header(param, raw.headers)?,
            Location::Cookie => decode_cookie(param, params, &cookies)?,
        };
        match value {
            Some(value) => out.insert(param.field, value),
            None if param.required || param.location == Location::Path => {
                return Err(ParamError::new(param, "is required"));
            }
            None => {}
        }
    }
    Ok(())
}

/// Quotes a bad value for an error message, shortened when long.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("`{}…`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

/// Turns one piece of text into the JSON value of type `scalar`.
fn scalar(param: &Param, scalar: Scalar, text: &str) -> Result<Value, ParamError> {
    match scalar {
        Scalar::String => Ok(Value::String(text.to_owned())),
        Scalar::Integer => {
            if let Ok(i) = text.parse::<i64>() {
                Ok(Value::from(i))
            } else if let Ok(u) = text.parse::<u64>() {
                Ok(Value::from(u))
            } else {
                Err(ParamError::new(param, format!("expected an integer, got {}", quote(text))))
            }
        }
        Scalar::Number => {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::from(i));
            }
            // `from_f64` refuses the NaN and infinities `parse` accepts (`NaN`, `inf`, `1e999`).
            match text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Ok(Value::Number(n)),
                None => Err(ParamError::new(param, format!("expected a number, got {}", quote(text)))),
            }
        }
        Scalar::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(ParamError::new(param, format!("expected `true` or `false`, got {}", quote(text)))),
        },
    }
}

/// A scalar parameter that is present. Empty text is a value only for a string: OpenAPI's
/// `allowEmptyValue` defaults to false, so `?limit=` is an invalid integer, not a missing one.
fn present_scalar(param: &Param, ty: Scalar, text: &str) -> Result<Option<Value>, ParamError> {
    scalar(param, ty, text).map(Some)
}

/// An array of `ty` from pieces of text; empty pieces are dropped unless `ty` is a string.
fn array<S: AsRef<str>>(param: &Param, ty: Scalar, pieces: impl IntoIterator<Item = S>) -> Result<Value, ParamError> {
    let mut items = Vec::new();
    for piece in pieces {
        let piece = piece.as_ref();
        if piece.is_empty() && ty != Scalar::String {
            continue;
        }
        items.push(scalar(param, ty, piece)?);
    }
    Ok(Value::Array(items))
}

/// An object from `k,v,k,v` pieces.
fn object_from_flat<S: Into<String>>(param: &Param, pieces: Vec<S>) -> Result<Value, ParamError> {
    if !pieces.len().is_multiple_of(2) {
        return Err(ParamError::new(param, "expected an even number of comma-separated keys and values"));
    }
    let mut map = Map::new();
    let mut it = pieces.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k.into(), Value::String(v.into()));
    }
    Ok(Value::Object(map))
}

/// An object from `k=v` pieces (a piece without `=` is a key with an empty value).
fn object_from_pairs<S: AsRef<str>>(pieces: impl IntoIterator<Item = S>) -> Value {
    let mut map = Map::new();
    for piece in pieces {
        let piece = piece.as_ref();
        if piece.is_empty() {
            continue;
        }
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        map.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Value::Object(map)
}

// --- path ---

fn path_decode<'s>(param: &Param, piece: &'s str) -> Result<Cow<'s, str>, ParamError> {
    percent_decode_str(piece)
        .decode_utf8()
        .map_err(|_| ParamError::new(param, "is not valid UTF-8 once percent-decoded"))
}

fn path_decode_all(param: &Param, raw: &str, sep: char) -> Result<Vec<String>, ParamError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(sep).map(|piece| path_decode(param, piece).map(Cow::into_owned)).collect()
}

fn decode_path(param: &Param, vars: &[(&str, &str)]) -> Result<Option<Value>, ParamError> {
    let Some(&(_, raw)) = vars.iter().find(|(name, _)| *name == param.name) else {
        return Ok(None);
    };
    if param.style == Style::Matrix {
        return decode_matrix(param, raw).map(Some);
    }
    let (body, explode_sep) = match param.style {
        Style::Label => (raw.strip_prefix('.').unwrap_or(raw), '.'),
        _ => (raw, ','),
    };
    let value = match param.shape {
        ParamShape::Scalar(ty) => scalar(param, ty, &path_decode(param, body)?)?,
        ParamShape::Array(ty) => {
            let sep = if param.explode { explode_sep } else { ',' };
            array(param, ty, path_decode_all(param, body, sep)?)?
        }
        ParamShape::Object if param.explode => path_decode_pairs(param, body, explode_sep)?,
        ParamShape::Object => object_from_flat(param, path_decode_all(param, body, ',')?)?,
    };
    Ok(Some(value))
}

/// `k=v` pieces separated by `sep` as an object, each side percent-decoded on its own (so an
/// encoded `=` inside a key or value survives); a piece without `=` is a key with an empty value.
fn path_decode_pairs(param: &Param, raw: &str, sep: char) -> Result<Value, ParamError> {
    let mut map = Map::new();
    for piece in raw.split(sep).filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let (k, v) = (path_decode(param, k)?, path_decode(param, v)?);
        map.entry(k.into_owned()).or_insert_with(|| Value::String(v.into_owned()));
    }
    Ok(Value::Object(map))
}

/// `;x=v`, `;x=a,b`, `;x=a;x=b`, `;k=v;l=w`, `;x=k,v,l,w`.
fn decode_matrix(param: &Param, raw: &str) -> Result<Value, ParamError> {
    let segments = raw.split(';').filter(|s| !s.is_empty());
    let strip_name = |segment: &'_ str| -> Option<String> {
        let rest = segment.strip_prefix(param.name)?;
        if rest.is_empty() {
            Some(String::new())
        } else {
            rest.strip_prefix('=').map(str::to_owned)
        }
    };
    let first_body = || -> Result<String, ParamError> {
        raw.split(';')
            .filter(|s| !s.is_empty())
            .find_map(strip_name)
            .ok_or_else(|| ParamError::new(param, format!("expected `;{}=…`, got {}", param.name, quote(raw))))
    };
    match param.shape {
        ParamShape::Scalar(ty) => scalar(param, ty, &path_decode(param, &first_body()?)?),
        ParamShape::Array(ty) if param.explode => {
            let mut pieces = Vec::new();
            for segment in segments {
                if let Some(body) = strip_name(segment) {
                    if !body.is_empty() {
                        pieces.push(path_decode(param, &body)?.into_owned());
                    }
                }
            }
            array(param, ty, pieces)
        }
        ParamShape::Array(ty) => array(param, ty, path_decode_all(param, &first_body()?, ',')?),
        ParamShape::Object if param.explode => path_decode_pairs(param, raw, ';'),
        ParamShape::Object => object_from_flat(param, path_decode_all(param, &first_body()?, ',')?),
    }
}

// --- query ---

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte;
/// invalid UTF-8 becomes U+FFFD.
fn form_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['+', '%']) {
        return Cow::Borrowed(raw);
    }
    let spaced: Cow<'_, str> = if raw.contains('+') { Cow::Owned(raw.replace('+', " ")) } else { Cow::Borrowed(raw) };
    let decoded = percent_decode_str(&spaced).decode_utf8_lossy().into_owned();
    Cow::Owned(decoded)
}

/// `k=v&l=w` → (decoded key, raw value) in order; empty entries skipped.
fn split_query(query: &str) -> Vec<(Cow<'_, str>, &str)> {
    query
        .split('&')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            (form_decode(k), v)
        })
        .collect()
}

/// The delimiter of a non-exploded query array or object.
fn query_delimiter(style: Style) -> char {
    match style {
        Style::SpaceDelimited => ' ',
        Style::PipeDelimited => '|',
        _ => ',',
    }
}

/// Splits a raw non-exploded query value on `delim` and decodes each piece. When the raw value
/// holds no delimiter, the decoded value is split instead (clients that escape the delimiter).
fn split_delimited(raw: &str, delim: char) -> Vec<String> {
    if raw.is_empty() {
        return Vec::new();
    }
    let raw_pieces: Vec<&str> = if delim == ' ' { raw.split("%20").collect() } else { raw.split(delim).collect() };
    if raw_pieces.len() > 1 {
        return raw_pieces.into_iter().map(|p| form_decode(p).into_owned()).collect();
    }
    form_decode(raw).split(delim).map(str::to_owned).collect()
}

/// Whether query key `key` belongs to a parameter other than `param`.
fn claimed_by_other(param: &Param, params: &[Param], location: Location, key: &str) -> bool {
    params.iter().any(|other| {
        other.location == location
            && other.name != param.name
            && (other.name == key
                || (other.style == Style::DeepObject
                    && key.strip_prefix(other.name).is_some_and(|rest| rest.starts_with('['))))
    })
}

fn decode_query(param: &Param, params: &[Param], query: &[(Cow<'_, str>, &str)]) -> Result<Option<Value>, ParamError> {
    let mut values = query.iter().filter(|(k, _)| k == param.name).map(|(_, v)| *v);
    match param.shape {
        ParamShape::Object if param.style == Style::DeepObject => Ok(decode_deep_object(param.name, query)),
        ParamShape::Object if param.explode => {
            let mut map = Map::new();
            for (k, v) in query {
                if !claimed_by_other(param, params, Location::Query, k) {
                    map.entry(k.as_ref()).or_insert_with(|| Value::String(form_decode(v).into_owned()));
                }
            }
            Ok((!map.is_empty()).then_some(Value::Object(map)))
        }
        ParamShape::Object => match values.next() {
            None => Ok(None),
            Some(raw) => object_from_flat(param, split_delimited(raw, query_delimiter(param.style))).map(Some),
        },
        ParamShape::Array(ty) if param.explode || param.style == Style::DeepObject => {
            let pieces: Vec<Cow<'_, str>> = values.map(form_decode).collect();
            if pieces.is_empty() {
                return Ok(None);
            }
            array(param, ty, pieces).map(Some)
        }
        ParamShape::Array(ty) => match values.next() {
            None => Ok(None),
            Some(raw) => array(param, ty, split_delimited(raw, query_delimiter(param.style))).map(Some),
        },
        ParamShape::Scalar(ty) => match values.next() {
            None => Ok(None),
            Some(raw) => present_scalar(param, ty, &form_decode(raw)),
        },
    }
}

/// `x[k]=v&x[l][m]=w` → `{"k": "v", "l": {"m": "w"}}`; `None` when no key starts with `x[`.
fn decode_deep_object(name: &str, query: &[(Cow<'_, str>, &str)]) -> Option<Value> {
    let mut root = Map::new();
    let mut any = false;
    for (key, raw) in query {
        let Some(rest) = key.strip_prefix(name).and_then(|r| r.strip_prefix('[')) else { continue };
        let Some(inner) = rest.strip_suffix(']') else { continue };
        any = true;
        let path: Vec<&str> = inner.split("][").collect();
        let value = Value::String(form_decode(raw).into_owned());
        insert_deep(&mut root, &path, value);
    }
    any.then_some(Value::Object(root))
}

/// Inserts `value` at `path` (first occurrence wins; a string in the way is left alone).
fn insert_deep(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let mut current = map;
    let Some((last, parents)) = path.split_last() else { return };
    for segment in parents {
        let slot = current.entry(*segment).or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(next) => current = next,
            _ => return,
        }
    }
    current.entry(*last).or_insert(value);
}

// --- headers ---

fn decode_header(param: &Param, headers: &http::HeaderMap) -> Result<Option<Value>, ParamError> {
    let mut lines = headers.get_all(param.name).iter().peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let text = lines.map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned()).collect::<Vec<_>>().join(",");
    let split = |text: &str| -> Vec<String> {
        if text.trim().is_empty() {
            Vec::new()
        } else {
            text.split(',').map(|s| s.trim().to_owned()).collect()
        }
    };
    match param.shape {
        ParamShape::Scalar(ty) => present_scalar(param, ty, &text),
        ParamShape::Array(ty) => array(param, ty, split(&text)).map(Some),
        ParamShape::Object if param.explode => Ok(Some(object_from_pairs(split(&text)))),
        ParamShape::Object => object_from_flat(param, split(&text)).map(Some),
    }
}

// --- cookies ---

/// Every `name=value` pair of every `Cookie` header, values with optional quotes removed.
fn cookie_pairs(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for line in headers.get_all(http::header::COOKIE) {
        let Ok(line) = std::str::from_utf8(line.as_bytes()) else { continue };
        for pair in line.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            out.push((k.trim(), v));
        }
    }
    out
}

/// Percent-decodes a cookie value; text that does not decode to UTF-8 is kept as it is.
fn cookie_decode(raw: &str) -> Cow<'_, str> {
    percent_decode_str(raw).decode_utf8().unwrap_or(Cow::Borrowed(raw))
}

fn decode_cookie(param: &Param, params: &[Param], cookies: &[(&str, &str)]) -> Result<Option<Value>, ParamError> {
    let mut values = cookies.iter().filter(|(k, _)| *k == param.name).map(|(_, v)| *v);
    let split = |raw: &str| -> Vec<String> {
        if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(',').map(|p| cookie_decode(p).into_owned()).collect()
        }
    };
    match param.shape {
        ParamShape::Scalar(ty) => match values.next() {
            None => Ok(None),
            Some(raw) => present_scalar(param, ty, &cookie_decode(raw)),
        },
        ParamShape::Array(ty) if param.explode => {
            let pieces: Vec<Cow<'_, str>> = values.map(cookie_decode).collect();
            if pieces.is_empty() {
                return Ok(None);
            }
            array(param, ty, pieces).map(Some)
        }
        ParamShape::Array(ty) => match values.next() {
            None => Ok(None),
            Some(raw) => array(param, ty, split(raw)).map(Some),
        },
        ParamShape::Object if param.explode => {
            let mut map = Map::new();
            for (k, v) in cookies {
                if !claimed_by_other(param, params, Location::Cookie, k) {
                    map.entry(*k).or_insert_with(|| Value::String(cookie_decode(v).into_owned()));
                }
            }
            Ok((!map.is_empty()).then_some(Value::Object(map)))
        }
        ParamShape::Object => match values.next() {
            None => Ok(None),
            Some(raw) => object_from_flat(param, split(raw)).map(Some),
        },
    }
}

/// Retypes the properties of a decoded object parameter (read as strings) by its schema:
/// `shape(key)` gives a property's scalar type and whether it is an array (e.g.
/// `SchemaSet::property_shape`); an array property's text is split on `,`, and an empty value of
/// a non-string property is dropped. Properties the schema does not type, and values that are
/// not strings, are left as they are.
pub(crate) fn coerce_object(
    param: &Param,
    value: &mut Value,
    shape: impl Fn(&str) -> Option<(Scalar, bool)>,
) -> Result<(), ParamError> {
    let Value::Object(map) = value else { return Ok(()) };
    let mut empty = Vec::new();
    for (key, slot) in map.iter_mut() {
        let (Some((ty, is_array)), Value::String(text)) = (shape(key), &*slot) else { continue };
        let typed = if is_array {
            let pieces: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split(',').collect() };
            array(param, ty, pieces)
        } else if text.is_empty() && ty != Scalar::String {
            empty.push(key.clone()); // `x[n]=` reads as no `n`
            continue;
        } else {
            scalar(param, ty, text)
        };
        *slot = typed.map_err(|e| ParamError { message: format!("property `{key}`: {}", e.message), ..e })?;
    }
    for key in empty {
        map.remove(&key);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encoding (client side)
// ---------------------------------------------------------------------------------------------

/// What the client sends for the parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EncodedParams {
    /// The path template expanded, each value percent-encoded for a path segment.
    pub path: String,
    /// The query string without `?`; empty if there is none.
    pub query: String,
    /// (header name, value); cookies are folded into one `("Cookie", "a=1; b=2")`.
    pub headers: Vec<(&'static str, String)>,
}

/// The text of a JSON value as a parameter carries it: strings unquoted, numbers and booleans as
/// JSON writes them, null as nothing, arrays and objects nested inside a parameter as JSON.
fn text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        other => Cow::Owned(other.to_string()),
    }
}

fn path_enc(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

fn query_enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn cookie_enc(s: &str) -> String {
    utf8_percent_encode(s, COOKIE_VALUE).to_string()
}

/// The items of an array value (a scalar reads as a one-item array).
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// `k,v,l,w` (or `k=v,l=w` when `pairs`) with keys and values passed through `enc`.
fn join_object(map: &Map<String, Value>, enc: fn(&str) -> String, pairs: bool, sep: &str) -> String {
    let mut parts = Vec::with_capacity(map.len() * 2);
    for (k, v) in map {
        if pairs {
            parts.push(format!("{}={}", enc(k), enc(&text(v))));
        } else {
            parts.push(enc(k));
            parts.push(enc(&text(v)));
        }
    }
    parts.join(if pairs { sep } else { "," })
}

fn join_items(value: &Value, enc: fn(&str) -> String, sep: &str) -> String {
    items(value).into_iter().map(|v| enc(&text(v))).collect::<Vec<_>>().join(sep)
}

/// The path text of one path parameter, as its style writes it.
fn encode_path_value(param: &Param, value: &Value) -> String {
    let explode = param.explode;
    match param.style {
        Style::Label => {
            let body = match value {
                Value::Array(_) => join_items(value, path_enc, if explode { "." } else { "," }),
                Value::Object(map) => join_object(map, path_enc, explode, "."),
                v => path_enc(&text(v)),
            };
            format!(".{body}")
        }
        Style::Matrix => {
            let name = path_enc(param.name);
            let named = |body: String| if body.is_empty() { format!(";{name}") } else { format!(";{name}={body}") };
            match value {
                Value::Array(items) if explode => {
                    if items.is_empty() {
                        format!(";{name}")
                    } else {
                        items.iter().map(|v| named(path_enc(&text(v)))).collect()
                    }
                }
                Value::Array(_) => named(join_items(value, path_enc, ",")),
                Value::Object(map) if explode => {
                    map.iter().map(|(k, v)| format!(";{}={}", path_enc(k), path_enc(&text(v)))).collect()
                }
                Value::Object(map) => named(join_object(map, path_enc, false, ",")),
                v => named(path_enc(&text(v))),
            }
        }
        _ => match value {
            Value::Array(_) => join_items(value, path_enc, ","),
            Value::Object(map) => join_object(map, path_enc, explode, ","),
            v => path_enc(&text(v)),
        },
    }
}

/// Appends the query entries of one query parameter.
fn encode_query_value(param: &Param, value: &Value, out: &mut Vec<String>) {
    let name = query_enc(param.name);
    let exploded = param.explode && param.style != Style::DeepObject;
    match value {
        Value::Object(map) if param.style == Style::DeepObject => encode_deep(&name, map, out),
        Value::Object(map) if exploded => {
            for (k, v) in map {
                out.push(format!("{}={}", query_enc(k), query_enc(&text(v))));
            }
        }
        Value::Array(items) if param.explode || param.style == Style::DeepObject => {
            for v in items {
                out.push(format!("{name}={}", query_enc(&text(v))));
            }
        }
        Value::Array(_) | Value::Object(_) => {
            let sep = match param.style {
                Style::SpaceDelimited => "%20",
                Style::PipeDelimited => "|",
                _ => ",",
            };
            let body = match value {
                Value::Object(map) => {
                    map.iter().flat_map(|(k, v)| [query_enc(k), query_enc(&text(v))]).collect::<Vec<_>>().join(sep)
                }
                _ => join_items(value, query_enc, sep),
            };
            out.push(format!("{name}={body}"));
        }
        v => out.push(format!("{name}={}", query_enc(&text(v)))),
    }
}

/// `prefix[k]=v`, recursing into nested objects as `prefix[k][l]=v`.
fn encode_deep(prefix: &str, map: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in map {
        let key = format!("{prefix}[{}]", query_enc(k));
        match v {
            Value::Object(inner) => encode_deep(&key, inner, out),
            Value::Null => {}
            v => out.push(format!("{key}={}", query_enc(&text(v)))),
        }
    }
}

fn encode_header_value(param: &Param, value: &Value) -> Result<String, String> {
    let raw: fn(&str) -> String = str::to_owned;
    let s = match value {
        Value::Array(_) => join_items(value, raw, ","),
        Value::Object(map) => join_object(map, raw, param.explode, ","),
        v => text(v).into_owned(),
    };
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("header `{}`: value contains a control character", param.name));
    }
    Ok(s)
}

fn encode_cookie_value(param: &Param, value: &Value, out: &mut Vec<String>) {
    let name = param.name;
    match value {
        Value::Array(items) if param.explode => {
            for v in items {
                out.push(format!("{name}={}", cookie_enc(&text(v))));
            }
        }
        Value::Array(_) => out.push(format!("{name}={}", join_items(value, cookie_enc, ","))),
        Value::Object(map) if param.explode => {
            for (k, v) in map {
                out.push(format!("{}={}", cookie_enc(k), cookie_enc(&text(v))));
            }
        }
        Value::Object(map) => out.push(format!("{name}={}", join_object(map, cookie_enc, false, ","))),
        v => out.push(format!("{name}={}", cookie_enc(&text(v)))),
    }
}

/// Encodes the parameter entries of `fields` (the request struct serialized to a JSON object)
/// using `template` (the operation path, e.g. `/repos/{owner}/{repo}/compare/{base}...{head}`).
/// Absent or null optional parameters are left out; a missing required one is an error naming
/// it, and so is a template variable no path parameter fills.
pub(crate) fn encode_params(
    template: &str,
    params: &[Param],
    fields: &Map<String, Value>,
) -> Result<EncodedParams, String> {
    let mut path_values: Vec<(&str, String)> = Vec::new();
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut cookies = Vec::new();
    for param in params {
        let value = fields.get(param.field).filter(|v| !v.is_null());
        let Some(value) = value else {
            if param.required || param.location == Location::Path {
                return Err(format!("missing required {} `{}`", location_noun(param.location), param.name));
            }
            continue;
        };
        match param.location {
            Location::Path => path_values.push((param.name, encode_path_value(param, value))),
            Location::Query => encode_query_value(param, value, &mut query),
            Location::Header => {
                if http::HeaderName::from_bytes(param.name.as_bytes()).is_err() {
                    return Err(format!("header `{}`: not a valid header name", param.name));
                }
                headers.push((param.name, encode_header_value(param, value)?));
            }
            Location::Cookie => encode_cookie_value(param, value, &mut cookies),
        }
    }
    if !cookies.is_empty() {
        headers.push(("Cookie", cookies.join("; ")));
    }
    let path = expand_template(template, &path_values)?;
    Ok(EncodedParams { path, query: query.join("&"), headers })
}

/// Replaces each `{name}` of `template` (parsed by the one path parser) with its encoded value.
fn expand_template(template: &str, values: &[(&str, String)]) -> Result<String, String> {
    use switchboard_path::{Piece, Segment, Template};
    let parsed = Template::parse_openapi("", template).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(template.len() + 16);
    let mut vars = parsed.variables.iter();
    let mut push_value = |out: &mut String| -> Result<(), String> {
        let name = vars.next().map_or("", |v| v.name);
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => {
                out.push_str(value);
                Ok(())
            }
            None => Err(format!("path template variable `{{{name}}}` has no path parameter")),
        }
    };
    for seg in &parsed.segments {
        out.push('/');
        match seg {
            Segment::Literal(l) => out.push_str(l),
            Segment::Any => push_value(&mut out)?,
            Segment::Pattern(pieces) => {
                for piece in pieces.iter() {
                    match piece {
                        Piece::Lit(l) => out.push_str(l),
                        Piece::Var => push_value(&mut out)?,
                    }
                }
            }
            Segment::Rest => return Err(format!("path template `{template}`: `**` is not an OpenAPI path")),
        }
    }
    if let Some(verb) = parsed.verb {
        out.push(':');
        out.push_str(verb);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const fn p(name: &'static str, location: Location, style: Style, explode: bool, shape: ParamShape) -> Param {
        Param { name, field: name, location, style, explode, required: false, shape }
    }

    const fn req(mut param: Param) -> Param {
        param.required = true;
        param
    }

    fn decode(
        params: &[Param],
        path_vars: &[(&str, &str)],
        query: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Value, String> {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
        }
        let raw = RawRequest { path_vars, query, headers: &map };
        let mut out = Fields::default();
        decode_params(params, &raw, &mut out).map_err(|e| e.to_string())?;
        Ok(Value::Object(out.into_map()))
    }

    fn q(params: &[Param], query: &str) -> Result<Value, String> {
        decode(params, &[], Some(query), &[])
    }

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    use Location::*;
    use ParamShape::{Array, Object};
    use Scalar::{Boolean, Integer, Number, String as Str};

    fn sc(s: Scalar) -> ParamShape {
        ParamShape::Scalar(s)
    }

    #[test]
    fn path_simple_label_matrix() {
        let id = [req(p("id", Path, Style::Simple, false, sc(Integer)))];
        assert_eq!(decode(&id, &[("id", "42")], None, &[]).unwrap(), json!({"id": 42}));
        assert_eq!(
            decode(&id, &[("id", "4x")], None, &[]).unwrap_err(),
            "path parameter `id`: expected an integer, got `4x`"
        );
        assert_eq!(decode(&id, &[], None, &[]).unwrap_err(), "path parameter `id` is required");

        let name = [req(p("name", Path, Style::Simple, false, sc(Str)))];
        assert_eq!(decode(&name, &[("name", "a%20b%2Fc+d")], None, &[]).unwrap(), json!({"name": "a b/c+d"}));
        assert!(decode(&name, &[("name", "%FF")], None, &[]).unwrap_err().contains("UTF-8"));

        let arr = [req(p("ids", Path, Style::Simple, false, Array(Integer)))];
        assert_eq!(decode(&arr, &[("ids", "3,4,5")], None, &[]).unwrap(), json!({"ids": [3, 4, 5]}));
        let strs = [req(p("s", Path, Style::Simple, false, Array(Str)))];
        assert_eq!(decode(&strs, &[("s", "a%2Cb,c")], None, &[]).unwrap(), json!({"s": ["a,b", "c"]}));

        let obj = [req(p("o", Path, Style::Simple, false, Object))];
        assert_eq!(decode(&obj, &[("o", "R,100,G,200")], None, &[]).unwrap(), json!({"o": {"R": "100", "G": "200"}}));
        assert!(decode(&obj, &[("o", "R,100,G")], None, &[]).is_err());
        let obj_x = [req(p("o", Path, Style::Simple, true, Object))];
        assert_eq!(decode(&obj_x, &[("o", "R=100,G=200")], None, &[]).unwrap(), json!({"o": {"R": "100", "G": "200"}}));

        let label = [req(p("c", Path, Style::Label, false, Array(Str)))];
        assert_eq!(decode(&label, &[("c", ".blue,black")], None, &[]).unwrap(), json!({"c": ["blue", "black"]}));
        let label_x = [req(p("c", Path, Style::Label, true, Array(Str)))];
        assert_eq!(decode(&label_x, &[("c", ".blue.black")], None, &[]).unwrap(), json!({"c": ["blue", "black"]}));
        let label_o = [req(p("c", Path, Style::Label, true, Object))];
        assert_eq!(decode(&label_o, &[("c", ".R=1.G=2")], None, &[]).unwrap(), json!({"c": {"R": "1", "G": "2"}}));

        let m = [req(p("c", Path, Style::Matrix, false, sc(Str)))];
        assert_eq!(decode(&m, &[("c", ";c=blue")], None, &[]).unwrap(), json!({"c": "blue"}));
        assert!(decode(&m, &[("c", "blue")], None, &[]).unwrap_err().contains("expected `;c=…`"));
        let m_arr = [req(p("c", Path, Style::Matrix, false, Array(Str)))];
        assert_eq!(decode(&m_arr, &[("c", ";c=blue,black")], None, &[]).unwrap(), json!({"c": ["blue", "black"]}));
        let m_x = [req(p("c", Path, Style::Matrix, true, Array(Integer)))];
        assert_eq!(decode(&m_x, &[("c", ";c=1;c=2")], None, &[]).unwrap(), json!({"c": [1, 2]}));
        let m_o = [req(p("c", Path, Style::Matrix, true, Object))];
        assert_eq!(decode(&m_o, &[("c", ";R=1;G=2")], None, &[]).unwrap(), json!({"c": {"R": "1", "G": "2"}}));
        let m_of = [req(p("c", Path, Style::Matrix, false, Object))];
        assert_eq!(decode(&m_of, &[("c", ";c=R,1,G,2")], None, &[]).unwrap(), json!({"c": {"R": "1", "G": "2"}}));
    }

    #[test]
    fn scalars() {
        let ps = [
            p("i", Query, Style::Form, true, sc(Integer)),
            p("n", Query, Style::Form, true, sc(Number)),
            p("b", Query, Style::Form, true, sc(Boolean)),
            p("s", Query, Style::Form, true, sc(Str)),
        ];
        assert_eq!(q(&ps, "i=-7&n=2.5&b=true&s=x+y%21").unwrap(), json!({"i": -7, "n": 2.5, "b": true, "s": "x y!"}));
        assert_eq!(q(&ps, "i=18446744073709551615").unwrap(), json!({"i": 18446744073709551615u64}));
        assert_eq!(q(&ps, "n=3").unwrap(), json!({"n": 3}));
        assert_eq!(q(&ps, "i=abc").unwrap_err(), "query parameter `i`: expected an integer, got `abc`");
        assert_eq!(q(&ps, "i=1.5").unwrap_err(), "query parameter `i`: expected an integer, got `1.5`");
        assert_eq!(q(&ps, "n=NaN").unwrap_err(), "query parameter `n`: expected a number, got `NaN`");
        assert!(q(&ps, "n=inf").is_err());
        assert!(q(&ps, "n=1e999").is_err());
        assert_eq!(q(&ps, "b=yes").unwrap_err(), "query parameter `b`: expected `true` or `false`, got `yes`");
        // an empty string is "", an empty integer is no integer (allowEmptyValue is false)
        assert_eq!(q(&ps, "s=").unwrap(), json!({"s": ""}));
        assert_eq!(q(&ps, "i=&s=").unwrap_err(), "query parameter `i`: expected an integer, got ``");
        // repeated scalar: the first wins
        assert_eq!(q(&ps, "i=1&i=2").unwrap(), json!({"i": 1}));
        let long = "x".repeat(200);
        let err = q(&ps, &format!("i={long}")).unwrap_err();
        assert!(err.ends_with("…`") && err.len() < 150, "{err}");
        // keys are decoded too
        assert_eq!(q(&ps, "%73=1").unwrap(), json!({"s": "1"}));
    }

    #[test]
    fn required_and_optional() {
        let ps = [req(p("limit", Query, Style::Form, true, sc(Integer))), p("x", Query, Style::Form, true, sc(Str))];
        assert_eq!(q(&ps, "").unwrap_err(), "query parameter `limit` is required");
        assert_eq!(decode(&ps, &[], None, &[]).unwrap_err(), "query parameter `limit` is required");
        assert_eq!(q(&ps, "limit=5").unwrap(), json!({"limit": 5}));
        let h = [req(p("X-Id", Header, Style::Simple, false, sc(Str)))];
        assert_eq!(decode(&h, &[], None, &[]).unwrap_err(), "header `X-Id` is required");
        let c = [req(p("session", Cookie, Style::Form, true, sc(Str)))];
        assert_eq!(decode(&c, &[], None, &[]).unwrap_err(), "cookie `session` is required");
    }

    #[test]
    fn query_arrays() {
        let form_x = [p("id", Query, Style::Form, true, Array(Integer))];
        assert_eq!(q(&form_x, "id=3&x=1&id=4").unwrap(), json!({"id": [3, 4]}));
        assert_eq!(q(&form_x, "x=1").unwrap(), json!({}));
        assert_eq!(q(&form_x, "id=3&id=z").unwrap_err(), "query parameter `id`: expected an integer, got `z`");

        let form = [p("id", Query, Style::Form, false, Array(Str))];
        assert_eq!(q(&form, "id=a,b%2Cc,d").unwrap(), json!({"id": ["a", "b,c", "d"]}));
        assert_eq!(q(&form, "id=a%2Cb").unwrap(), json!({"id": ["a", "b"]}));
        assert_eq!(q(&form, "id=").unwrap(), json!({"id": []}));
        assert_eq!(q(&form, "id=x+y").unwrap(), json!({"id": ["x y"]}));

        let space = [p("id", Query, Style::SpaceDelimited, false, Array(Str))];
        assert_eq!(q(&space, "id=a%20b%20c").unwrap(), json!({"id": ["a", "b", "c"]}));
        assert_eq!(q(&space, "id=a+b+c").unwrap(), json!({"id": ["a", "b", "c"]}));
        assert_eq!(q(&space, "id=a+b%20c").unwrap(), json!({"id": ["a b", "c"]}));

        let pipe = [p("id", Query, Style::PipeDelimited, false, Array(Integer))];
        assert_eq!(q(&pipe, "id=1|2|3").unwrap(), json!({"id": [1, 2, 3]}));
        assert_eq!(q(&pipe, "id=1%7C2").unwrap(), json!({"id": [1, 2]}));
    }

    #[test]
    fn query_objects() {
        let deep =
            [p("filter", Query, Style::DeepObject, true, Object), p("limit", Query, Style::Form, true, sc(Integer))];
        assert_eq!(
            q(&deep, "filter[role]=admin&filter%5Bname%5D=J+D&limit=3&filter[a][b]=c&filterx=1").unwrap(),
            json!({"filter": {"role": "admin", "name": "J D", "a": {"b": "c"}}, "limit": 3})
        );
        assert_eq!(q(&deep, "limit=3").unwrap(), json!({"limit": 3}));

        let form_x = [
            p("color", Query, Style::Form, true, Object),
            p("limit", Query, Style::Form, true, sc(Integer)),
            p("f", Query, Style::DeepObject, true, Object),
        ];
        assert_eq!(
            q(&form_x, "R=100&G=200&limit=1&f[x]=y&R=5").unwrap(),
            json!({"color": {"R": "100", "G": "200"}, "limit": 1, "f": {"x": "y"}})
        );
        assert_eq!(q(&form_x, "limit=1").unwrap(), json!({"limit": 1}));

        let form = [p("color", Query, Style::Form, false, Object)];
        assert_eq!(q(&form, "color=R,100,G,200").unwrap(), json!({"color": {"R": "100", "G": "200"}}));
        let pipe = [p("color", Query, Style::PipeDelimited, false, Object)];
        assert_eq!(q(&pipe, "color=R|100|G|200").unwrap(), json!({"color": {"R": "100", "G": "200"}}));
    }

    #[test]
    fn headers_and_cookies() {
        let hs = [
            p("X-Rate", Header, Style::Simple, false, sc(Number)),
            p("X-Ids", Header, Style::Simple, false, Array(Integer)),
            p("X-Obj", Header, Style::Simple, true, Object),
            p("X-Flat", Header, Style::Simple, false, Object),
        ];
        assert_eq!(
            decode(
                &hs,
                &[],
                None,
                &[("x-rate", " 1.5 "), ("x-ids", "1, 2"), ("X-Ids", "3"), ("x-obj", "a=1, b=2"), ("x-flat", "a,1")]
            )
            .unwrap(),
            json!({"X-Rate": 1.5, "X-Ids": [1, 2, 3], "X-Obj": {"a": "1", "b": "2"}, "X-Flat": {"a": "1"}})
        );
        assert_eq!(
            decode(&hs, &[], None, &[("x-rate", "fast")]).unwrap_err(),
            "header `X-Rate`: expected a number, got `fast`"
        );
        // a header name that is not valid never matches
        let bad = [p("bad name", Header, Style::Simple, false, sc(Str))];
        assert_eq!(decode(&bad, &[], None, &[]).unwrap(), json!({}));

        let cs = [
            p("session", Cookie, Style::Form, true, sc(Str)),
            p("n", Cookie, Style::Form, true, sc(Integer)),
            p("tags", Cookie, Style::Form, false, Array(Str)),
            p("multi", Cookie, Style::Form, true, Array(Integer)),
        ];
        assert_eq!(
            decode(
                &cs,
                &[],
                None,
                &[("cookie", "session=\"a%3Bb\"; n=5"), ("cookie", "tags=x,y; multi=1; multi=2; other=z")]
            )
            .unwrap(),
            json!({"session": "a;b", "n": 5, "tags": ["x", "y"], "multi": [1, 2]})
        );
        let cobj = [p("prefs", Cookie, Style::Form, true, Object), p("session", Cookie, Style::Form, true, sc(Str))];
        assert_eq!(
            decode(&cobj, &[], None, &[("cookie", "session=1; theme=dark; lang=en")]).unwrap(),
            json!({"prefs": {"theme": "dark", "lang": "en"}, "session": "1"})
        );
    }

    #[test]
    fn encode_path_styles() {
        let ps = [
            req(p("owner", Path, Style::Simple, false, sc(Str))),
            req(p("repo", Path, Style::Simple, false, sc(Str))),
            req(p("base", Path, Style::Simple, false, sc(Str))),
            req(p("head", Path, Style::Simple, false, sc(Str))),
        ];
        let f = fields(json!({"owner": "a b", "repo": "x/y", "base": "main", "head": "feat~1.é"}));
        let e = encode_params("/repos/{owner}/{repo}/compare/{base}...{head}", &ps, &f).unwrap();
        assert_eq!(e.path, "/repos/a%20b/x%2Fy/compare/main...feat~1.%C3%A9");
        assert_eq!(e.query, "");
        assert!(e.headers.is_empty());

        let missing = encode_params("/repos/{owner}", &ps[..1], &Map::new()).unwrap_err();
        assert_eq!(missing, "missing required path parameter `owner`");
        let null = encode_params("/repos/{owner}", &ps[..1], &fields(json!({"owner": null}))).unwrap_err();
        assert_eq!(null, "missing required path parameter `owner`");
        let unknown = encode_params("/x/{nope}", &[], &Map::new()).unwrap_err();
        assert_eq!(unknown, "path template variable `{nope}` has no path parameter");
        let bad = encode_params("/x/{open", &[], &Map::new()).unwrap_err();
        assert!(bad.contains("unclosed"), "{bad}");
        let verb = [req(p("id", Path, Style::Simple, false, sc(Str)))];
        assert_eq!(encode_params("/things/{id}:cancel", &verb, &fields(json!({"id": "7"}))).unwrap().path, "/things/7:cancel");

        let cases: &[(Style, bool, Value, &str)] = &[
            (Style::Simple, false, json!(5), "5"),
            (Style::Simple, false, json!(["a", "b,c"]), "a,b%2Cc"),
            (Style::Simple, false, json!({"G": 200, "R": 100}), "G,200,R,100"),
            (Style::Simple, true, json!({"G": 200, "R": 100}), "G=200,R=100"),
            (Style::Label, false, json!("blue"), ".blue"),
            (Style::Label, false, json!(["a", "b"]), ".a,b"),
            (Style::Label, true, json!(["a", "b"]), ".a.b"),
            (Style::Label, true, json!({"R": 1}), ".R=1"),
            (Style::Matrix, false, json!("blue"), ";c=blue"),
            (Style::Matrix, false, json!(""), ";c"),
            (Style::Matrix, false, json!(["a", "b"]), ";c=a,b"),
            (Style::Matrix, true, json!(["a", "b"]), ";c=a;c=b"),
            (Style::Matrix, true, json!([]), ";c"),
            (Style::Matrix, true, json!({"G": 2, "R": 1}), ";G=2;R=1"),
            (Style::Matrix, false, json!({"R": 1}), ";c=R,1"),
            (Style::Simple, false, json!(true), "true"),
            (Style::Simple, false, json!(2.5), "2.5"),
        ];
        for (style, explode, value, want) in cases {
            let param = req(p("c", Path, *style, *explode, Object));
            let e = encode_params("/{c}", &[param], &fields(json!({"c": value}))).unwrap();
            assert_eq!(e.path, format!("/{want}"), "{style:?} {explode} {value}");
        }
    }

    #[test]
    fn encode_query_headers_cookies() {
        let ps = [
            p("limit", Query, Style::Form, true, sc(Integer)),
            p("tags", Query, Style::Form, true, Array(Str)),
            p("ids", Query, Style::Form, false, Array(Integer)),
            p("sp", Query, Style::SpaceDelimited, false, Array(Str)),
            p("pp", Query, Style::PipeDelimited, false, Array(Str)),
            p("filter", Query, Style::DeepObject, true, Object),
            p("q", Query, Style::Form, true, sc(Str)),
            p("absent", Query, Style::Form, true, sc(Str)),
            p("X-Trace", Header, Style::Simple, false, sc(Str)),
            p("X-List", Header, Style::Simple, false, Array(Integer)),
            p("session", Cookie, Style::Form, true, sc(Str)),
            p("ck", Cookie, Style::Form, false, Array(Str)),
        ];
        let f = fields(json!({
            "limit": 10, "tags": ["a b", "c&d"], "ids": [1, 2], "sp": ["x y", "z"], "pp": ["a|b", "c"],
            "filter": {"nested": {"k": "v"}, "role": "admin"}, "q": "ü=?", "absent": null,
            "X-Trace": "abc", "X-List": [1, 2], "session": "a;b c", "ck": ["x", "y"],
        }));
        let e = encode_params("/items", &ps, &f).unwrap();
        assert_eq!(e.path, "/items");
        assert_eq!(
            e.query,
            "limit=10&tags=a+b&tags=c%26d&ids=1,2&sp=x+y%20z&pp=a%7Cb|c&filter[nested][k]=v&filter[role]=admin&q=%C3%BC%3D%3F"
        );
        assert_eq!(
            e.headers,
            vec![
                ("X-Trace", "abc".to_owned()),
                ("X-List", "1,2".to_owned()),
                ("Cookie", "session=a%3Bb%20c; ck=x,y".to_owned())
            ]
        );

        let bad = [p("X-Bad", Header, Style::Simple, false, sc(Str))];
        assert!(encode_params("/", &bad, &fields(json!({"X-Bad": "a\r\nb"}))).is_err());
        let bad_name = [p("bad name", Header, Style::Simple, false, sc(Str))];
        assert!(encode_params("/", &bad_name, &fields(json!({"bad name": "a"}))).is_err());
        let required = [req(p("limit", Query, Style::Form, true, sc(Integer)))];
        assert_eq!(encode_params("/", &required, &Map::new()).unwrap_err(), "missing required query parameter `limit`");
    }

    /// Whatever the client encodes, the server decodes back to the same JSON.
    #[test]
    fn round_trip() {
        let ps = [
            req(p("id", Path, Style::Simple, false, sc(Integer))),
            req(p("lab", Path, Style::Label, true, Array(Str))),
            req(p("mat", Path, Style::Matrix, true, Object)),
            p("limit", Query, Style::Form, true, sc(Integer)),
            p("tags", Query, Style::Form, true, Array(Str)),
            p("ids", Query, Style::Form, false, Array(Integer)),
            p("sp", Query, Style::SpaceDelimited, false, Array(Str)),
            p("pp", Query, Style::PipeDelimited, false, Array(Str)),
            p("filter", Query, Style::DeepObject, true, Object),
            p("ratio", Query, Style::Form, true, sc(Number)),
            p("flag", Query, Style::Form, true, sc(Boolean)),
            p("X-Trace", Header, Style::Simple, false, sc(Str)),
            p("X-List", Header, Style::Simple, false, Array(Integer)),
            p("session", Cookie, Style::Form, true, sc(Str)),
            p("ck", Cookie, Style::Form, false, Array(Str)),
            p("multi", Cookie, Style::Form, true, Array(Integer)),
        ];
        let value = json!({
            "id": 7, "lab": ["a b", "ü"], "mat": {"k": "v w", "x": "=;"},
            "limit": 10, "tags": ["a b", "c&d", "e+f", "%"], "ids": [1, 2], "sp": ["x y", "z"], "pp": ["a|b", "c"],
            "filter": {"role": "admin", "q": "[x]"}, "ratio": 0.25, "flag": false,
            "X-Trace": "abc def", "X-List": [1, 2], "session": "a;b c,d\"e%", "ck": ["x", "y"], "multi": [3, 4],
        });
        let e = encode_params("/things/{id}/{lab}/{mat}", &ps, &fields(value.clone())).unwrap();
        // split the path back into the variables the router would match
        let segs: Vec<&str> = e.path.trim_start_matches('/').split('/').collect();
        let vars = [("id", segs[1]), ("lab", segs[2]), ("mat", segs[3])];
        let hdrs: Vec<(&str, &str)> = e.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let back = decode(&ps, &vars, Some(&e.query), &hdrs).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn object_properties_retyped() {
        let param = p("filter", Query, Style::DeepObject, true, Object);
        let mut value = q(&[param], "filter[limit]=5&filter[ids]=1,2&filter[on]=true&filter[name]=x&filter[n]=")
            .unwrap()["filter"]
            .take();
        let shape = |key: &str| match key {
            "limit" | "n" => Some((Integer, false)),
            "ids" => Some((Integer, true)),
            "on" => Some((Boolean, false)),
            _ => None,
        };
        coerce_object(&param, &mut value, shape).unwrap();
        assert_eq!(value, json!({"limit": 5, "ids": [1, 2], "on": true, "name": "x"}));
        let mut bad = json!({"limit": "x"});
        assert_eq!(
            coerce_object(&param, &mut bad, shape).unwrap_err().to_string(),
            "query parameter `filter`: property `limit`: expected an integer, got `x`"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let ps = [
            p("a", Path, Style::Matrix, true, Array(Integer)),
            p("b", Path, Style::Label, true, Object),
            p("c", Query, Style::DeepObject, true, Object),
            p("d", Query, Style::Form, true, Object),
            p("e", Cookie, Style::Form, true, Object),
            p("f", Header, Style::Simple, true, Object),
        ];
        let inputs = [
            "", ";", "=", ";;a=", "%", "%%", "%zz", "[", "]", "c[", "c[]", "c[]]", "c[[]", "&&&", "===", "é%C3", ".",
            ".=.",
        ];
        for s in inputs {
            let _ = decode(&ps, &[("a", s), ("b", s)], Some(s), &[("cookie", s), ("f", s)]);
        }
    }
}
