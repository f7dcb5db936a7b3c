//! Request bodies: read by the server into the JSON value the request struct holds, and written
//! by the client from it, by media type.
//!
//! | media type                          | JSON value                                           |
//! |-------------------------------------|------------------------------------------------------|
//! | `application/json`, `*/*+json`      | the JSON itself                                      |
//! | `application/x-www-form-urlencoded` | an object; repeated keys are arrays                  |
//! | `multipart/form-data`               | an object: file parts (a filename or a non-text type) as base64 text, `application/json` parts parsed, text parts as text |
//! | `text/*`                            | the text                                             |
//! | anything else (octet-stream, …)     | the bytes as base64 text (what `Binary` reads)       |
//!
//! Form fields and text parts are typed by the body schema (`integer`, `number`, `boolean`, or
//! arrays of them) when the server has one; otherwise they stay strings.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Number, Value};

use super::media::{classify, Media};
use super::Scalar;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Reads a body of media type `content_type`; `shape` types form and multipart fields.
pub(crate) async fn decode(
    content_type: &str,
    body: Bytes,
    shape: impl Fn(&str) -> Option<(Scalar, bool)>,
) -> Result<Value, String> {
    match classify(content_type) {
        Media::Json => serde_json::from_slice(&body).map(integral).map_err(|e| format!("malformed JSON body: {e}")),
        Media::Form => {
            let mut out = Map::new();
            for (key, value) in form_urlencoded::parse(&body) {
                let s = shape(&key);
                add(&mut out, &key, typed(value.into_owned(), s), s.is_some_and(|(_, array)| array));
            }
            Ok(Value::Object(out))
        }
        Media::Multipart => multipart(content_type, body, shape).await,
        Media::Text => String::from_utf8(body.into()).map(Value::String).map_err(|_| "the text body is not UTF-8".to_owned()),
        Media::Binary => Ok(Value::String(B64.encode(&body))),
    }
}

/// `value` with every number that has a zero fractional part (`434.0`, `1e3`) written as an
/// integer. JSON Schema counts such numbers as integers, and serde reads an integer field only
/// from an integer token; a `number` field reads an integer token as well.
fn integral(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Number(n) if n.is_f64() => {
                // Within i64 (2^63 = 9.22e18); larger values stay as they are.
                if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18) {
                    *n = Number::from(f as i64);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

async fn multipart(
    content_type: &str,
    body: Bytes,
    shape: impl Fn(&str) -> Option<(Scalar, bool)>,
) -> Result<Value, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| format!("multipart body: {e}"))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut out = Map::new();
    while let Some(field) = parts.next_field().await.map_err(|e| format!("multipart body: {e}"))? {
        let Some(name) = field.name().map(str::to_owned) else { continue };
        let file = field.file_name().is_some();
        let media = field.content_type().map(|m| classify(m.essence_str()));
        let data = field.bytes().await.map_err(|e| format!("multipart part `{name}`: {e}"))?;
        let s = shape(&name);
        let value = match media {
            Some(Media::Json) if !file => {
                serde_json::from_slice(&data)
                    .map(integral)
                    .map_err(|e| format!("multipart part `{name}`: malformed JSON: {e}"))?
            }
            None | Some(Media::Text) if !file => match String::from_utf8(data.into()) {
                Ok(text) => typed(text, s),
                Err(e) => Value::String(B64.encode(e.as_bytes())),
            },
            _ => Value::String(B64.encode(&data)),
        };
        add(&mut out, &name, value, s.is_some_and(|(_, array)| array));
    }
    Ok(Value::Object(out))
}

/// Text as the schema's scalar type; text that does not parse stays a string (and fails
/// validation with a message naming the property).
fn typed(text: String, shape: Option<(Scalar, bool)>) -> Value {
    match shape.map(|(s, _)| s) {
        Some(Scalar::Integer) => match (text.parse::<i64>(), text.parse::<u64>()) {
            (Ok(n), _) => Value::Number(n.into()),
            (_, Ok(n)) => Value::Number(n.into()),
            _ => Value::String(text),
        },
        Some(Scalar::Number) => match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(text),
        },
        Some(Scalar::Boolean) => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        Some(Scalar::String) | None => Value::String(text),
    }
}

/// Adds a field; a repeated name (or an array property) collects an array.
fn add(out: &mut Map<String, Value>, name: &str, value: Value, array: bool) {
    match out.get_mut(name) {
        Some(Value::Array(items)) => items.push(value),
        Some(first) => {
            let first = std::mem::take(first);
            out.insert(name.to_owned(), Value::Array(vec![first, value]));
        }
        None if array => {
            out.insert(name.to_owned(), Value::Array(vec![value]));
        }
        None => {
            out.insert(name.to_owned(), value);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

/// The text of a scalar value inside a form or multipart body.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `value` as a body of `media_type`: the bytes and the `Content-Type` to send. `None`
/// when the value does not fit the media type (bytes wanted, something else given).
pub(crate) fn encode(media_type: &'static str, value: &Value) -> Option<(Bytes, String)> {
    let content_type = super::media::concrete(media_type).to_owned();
    match classify(media_type) {
        Media::Json => Some((serde_json::to_vec(value).ok()?.into(), content_type)),
        Media::Form => {
            let obj = value.as_object()?;
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (key, v) in obj {
                match v {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            form.append_pair(key, &text(item));
                        }
                    }
                    v => {
                        form.append_pair(key, &text(v));
                    }
                }
            }
            Some((form.finish().into(), content_type))
        }
        Media::Multipart => {
            let obj = value.as_object()?;
            let boundary = boundary();
            let mut out = Vec::new();
            for (key, v) in obj {
                let items = match v {
                    Value::Array(items) => items.iter().collect(),
                    Value::Null => Vec::new(),
                    v => vec![v],
                };
                for item in items {
                    out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n", quote(key)).as_bytes());
                    let data = match item {
                        Value::Object(_) | Value::Array(_) => {
                            out.extend_from_slice(b"Content-Type: application/json\r\n");
                            item.to_string()
                        }
                        v => text(v),
                    };
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(data.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            Some((out.into(), format!("multipart/form-data; boundary={boundary}")))
        }
        Media::Text => Some((text(value).into_bytes().into(), content_type)),
        Media::Binary => {
            let s = value.as_str()?;
            let bytes = B64
                .decode(s.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s.trim_end_matches('=')))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
                .ok()?;
            Some((bytes.into(), content_type))
        }
    }
}

/// A field name inside `name="..."`: quotes and line breaks percent-encoded (as browsers do).
fn quote(name: &str) -> String {
    name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// A boundary that does not occur in the parts by accident (time and a counter, 30+ characters).
fn boundary() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("switchboard-{t:x}-{n:x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(name: &str) -> Option<(Scalar, bool)> {
        match name {
            "age" => Some((Scalar::Integer, false)),
            "ok" => Some((Scalar::Boolean, false)),
            "tags" => Some((Scalar::String, true)),
            _ => None,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn integral_json_numbers_become_integers() {
        let body = Bytes::from(r#"{"capacity": 434.0, "big": 1e3, "w": 2.5, "huge": 1e300, "xs": [-7.0, {"n": 0.0}]}"#);
        let v = block_on(decode("application/json", body, shape)).unwrap();
        assert_eq!(v, json!({"capacity": 434, "big": 1000, "w": 2.5, "huge": 1e300, "xs": [-7, {"n": 0}]}));
        assert!(v["capacity"].is_i64() && v["huge"].is_f64());
    }

    #[test]
    fn form_bodies_are_typed_by_the_schema() {
        let v = block_on(decode("application/x-www-form-urlencoded", Bytes::from("age=3&ok=true&tags=a&name=x+y&n=1&n=2"), shape)).unwrap();
        assert_eq!(v, json!({"age": 3, "ok": true, "tags": ["a"], "name": "x y", "n": ["1", "2"]}));
        let v = block_on(decode("application/x-www-form-urlencoded", Bytes::from("age=old"), shape)).unwrap();
        assert_eq!(v, json!({"age": "old"}));
    }

    #[test]
    fn multipart_round_trips_and_files_become_base64() {
        let value = json!({"age": 7, "tags": ["a", "b"], "meta": {"k": 1}, "name": "n\"q"});
        let (body, ct) = encode("multipart/form-data", &value).unwrap();
        let back = block_on(decode(&ct, body, shape)).unwrap();
        assert_eq!(back, value);
        let raw = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--b--\r\n";
        let v = block_on(decode("multipart/form-data; boundary=b", Bytes::from(raw), shape)).unwrap();
        assert_eq!(v, json!({"file": "AAE="}));
        assert!(block_on(decode("multipart/form-data", Bytes::from(raw), shape)).is_err(), "no boundary");
    }

    #[test]
    fn other_bodies() {
        assert_eq!(block_on(decode("application/octet-stream", Bytes::from_static(b"\x00\xff"), shape)).unwrap(), json!("AP8="));
        assert_eq!(block_on(decode("text/plain", Bytes::from_static(b"hi"), shape)).unwrap(), json!("hi"));
        assert!(block_on(decode("application/json", Bytes::from_static(b"{"), shape)).unwrap_err().contains("malformed JSON"));
        assert_eq!(encode("application/octet-stream", &json!("AP8=")).unwrap().0.as_ref(), b"\x00\xff");
        assert!(encode("application/octet-stream", &json!({})).is_none());
        assert_eq!(encode("application/x-www-form-urlencoded", &json!({"a": [1, 2], "b": null, "c": "x y"})).unwrap().0.as_ref(), b"a=1&a=2&c=x+y");
    }
}
