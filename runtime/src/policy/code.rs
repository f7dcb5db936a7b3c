//! Status codes in a config: `google.rpc.Code` names (`"UNAVAILABLE"`, any case) or numbers.

use serde_json::Value;
use tonic::Code;

use super::json::{array, show, PolicyError, Result};

const NAMES: [(&str, Code); 17] = [
    ("OK", Code::Ok),
    ("CANCELLED", Code::Cancelled),
    ("UNKNOWN", Code::Unknown),
    ("INVALID_ARGUMENT", Code::InvalidArgument),
    ("DEADLINE_EXCEEDED", Code::DeadlineExceeded),
    ("NOT_FOUND", Code::NotFound),
    ("ALREADY_EXISTS", Code::AlreadyExists),
    ("PERMISSION_DENIED", Code::PermissionDenied),
    ("RESOURCE_EXHAUSTED", Code::ResourceExhausted),
    ("FAILED_PRECONDITION", Code::FailedPrecondition),
    ("ABORTED", Code::Aborted),
    ("OUT_OF_RANGE", Code::OutOfRange),
    ("UNIMPLEMENTED", Code::Unimplemented),
    ("INTERNAL", Code::Internal),
    ("UNAVAILABLE", Code::Unavailable),
    ("DATA_LOSS", Code::DataLoss),
    ("UNAUTHENTICATED", Code::Unauthenticated),
];

/// One status code.
pub(crate) fn code(v: &Value, path: &str) -> Result<Code> {
    let found = match v {
        Value::String(s) => NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)).map(|(_, c)| *c),
        Value::Number(n) => n.as_u64().filter(|n| *n <= 16).map(|n| Code::from(n as i32)),
        _ => None,
    };
    found.ok_or_else(|| PolicyError::new(path, format!("expected a status code name such as \"UNAVAILABLE\" or a number from 0 to 16, found {}", show(v))))
}

/// A list of failure codes (`OK` is not one), each once.
pub(crate) fn failure_codes(v: &Value, path: &str) -> Result<Vec<Code>> {
    let mut codes = Vec::new();
    for (i, item) in array(v, path)?.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let c = code(item, &at)?;
        if c == Code::Ok {
            return Err(PolicyError::new(at, "OK is not a failure; list failure codes only"));
        }
        if !codes.contains(&c) {
            codes.push(c);
        }
    }
    Ok(codes)
}
