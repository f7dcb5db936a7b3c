//! The spec's default call policy, a gRPC service config (JSON), checked at generation time as
//! the runtime will read it, so that a broken one is a generation error naming the file and the
//! JSON path instead of a client that fails to start.
//!
//! With the `check-schemas` feature (the runtime's `openapi` part is then a dependency) the
//! runtime's own reader checks every field; without it only what codegen reads itself is
//! checked here (the shape of `methodConfig` and its names), and the rest when a client reads
//! the policy (`switchboard::policy::Policies::for_service`).

use serde_json::Value;

/// What is wrong with a service config: the JSON path of the offending value (as the runtime
/// names it: `$.methodConfig[0].retryPolicy.maxAttempts`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `$`-rooted JSON path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into() }
    }
}

/// Checks `config` as the runtime reads it, and returns the names of its `methodConfig` entries
/// (`(service, method)` each, empty for absent: `("", "")` is the default entry).
pub fn check(config: &Value) -> Result<Vec<(String, String)>, Problem> {
    let names = names(config)?;
    #[cfg(feature = "check-schemas")]
    switchboard::policy::ServiceConfig::from_value(config).map_err(|e| Problem::new(e.path(), e.message()))?;
    Ok(names)
}

/// The field `camel` of an object, or its snake_case spelling (proto3 JSON reads both).
pub fn field<'v>(object: &'v serde_json::Map<String, Value>, camel: &str) -> Option<(&'v str, &'v Value)> {
    let snake = heck::ToSnakeCase::to_snake_case(camel);
    object.iter().find(|(k, _)| *k == camel || **k == snake).map(|(k, v)| (k.as_str(), v))
}

fn names(config: &Value) -> Result<Vec<(String, String)>, Problem> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let Value::Object(top) = config else { return Err(Problem::new("$", format!("expected an object, found {}", kind(config)))) };
    let mut out = Vec::new();
    let Some((key, entries)) = field(top, "methodConfig").filter(|(_, v)| !v.is_null()) else { return Ok(out) };
    let Value::Array(entries) = entries else {
        return Err(Problem::new(format!("$.{key}"), format!("expected an array, found {}", kind(entries))));
    };
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("$.{key}[{i}]");
        let Value::Object(entry) = entry else { return Err(Problem::new(at, format!("expected an object, found {}", kind(entry)))) };
        let Some((name_key, list)) = field(entry, "name").filter(|(_, v)| !v.is_null()) else { continue };
        let Value::Array(list) = list else {
            return Err(Problem::new(format!("{at}.{name_key}"), format!("expected an array, found {}", kind(list))));
        };
        for (j, name) in list.iter().enumerate() {
            let at = format!("{at}.{name_key}[{j}]");
            let Value::Object(name) = name else { return Err(Problem::new(at, format!("expected an object, found {}", kind(name)))) };
            let part = |camel: &str| match field(name, camel) {
                None | Some((_, Value::Null)) => Ok(String::new()),
                Some((_, Value::String(s))) => Ok(s.clone()),
                Some((k, v)) => Err(Problem::new(format!("{at}.{k}"), format!("expected a string, found {}", kind(v)))),
            };
            out.push((part("service")?, part("method")?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_problems() {
        let config = serde_json::json!({"methodConfig": [{"name": [{"service": "a.B"}, {"service": "a.B", "method": "C"}]}, {"name": [{}]}]});
        assert_eq!(check(&config).unwrap(), [("a.B".into(), String::new()), ("a.B".into(), "C".into()), (String::new(), String::new())]);
        let bad = serde_json::json!({"method_config": [{"name": [{"service": 7}]}]});
        assert_eq!(check(&bad).unwrap_err(), Problem::new("$.method_config[0].name[0].service", "expected a string, found a number"));
        assert_eq!(check(&serde_json::json!([])).unwrap_err().path, "$");
    }

    #[cfg(feature = "check-schemas")]
    #[test]
    fn the_runtime_reader_checks_the_rest() {
        let bad = serde_json::json!({"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 1}}]});
        assert_eq!(check(&bad).unwrap_err().path, "$.methodConfig[0].retryPolicy.maxAttempts");
    }
}
