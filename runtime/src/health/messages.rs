//! The messages of `grpc/health/v1/health.proto`, with its field numbers (wire-compatible with
//! every gRPC health client: grpc-go, grpcio-health-checking, `grpc_health_probe`), and their
//! proto3 JSON for the REST binding: fields at their default are left out, the status is
//! written by name and read by name or number.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    /// No status known (the proto's default; never a status a service is set to here).
    Unknown = 0,
    /// The service takes calls.
    Serving = 1,
    /// The service takes no calls (it is starting, overloaded, or shutting down).
    NotServing = 2,
    /// Only from `Watch`: the server has no status for the service (yet).
    ServiceUnknown = 3,
}

impl ServingStatus {
    /// The name in the proto (`"SERVING"`), as proto3 JSON writes it.
    pub fn as_str_name(self) -> &'static str {
        match self {
            ServingStatus::Unknown => "UNKNOWN",
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        }
    }

    /// The status named `name` in the proto, if there is one.
    pub fn from_str_name(name: &str) -> Option<Self> {
        match name {
            "UNKNOWN" => Some(ServingStatus::Unknown),
            "SERVING" => Some(ServingStatus::Serving),
            "NOT_SERVING" => Some(ServingStatus::NotServing),
            "SERVICE_UNKNOWN" => Some(ServingStatus::ServiceUnknown),
            _ => None,
        }
    }
}

impl fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str_name())
    }
}

/// `grpc.health.v1.HealthCheckRequest`: the service asked about (`""`: the whole server).
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckRequest {
    /// The service's full name, `package.Service`; `""` asks about the server as a whole.
    #[prost(string, tag = "1")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service: String,
}

impl HealthCheckRequest {
    /// A request about `service`.
    pub fn new(service: impl Into<String>) -> Self {
        HealthCheckRequest { service: service.into() }
    }
}

/// `grpc.health.v1.HealthCheckResponse`: one status. Read it with `.status()`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HealthCheckResponse {
    /// The status, as its number ([`ServingStatus`]; `status()` reads it, `UNKNOWN` when the
    /// number is not one of the proto's).
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

impl From<ServingStatus> for HealthCheckResponse {
    fn from(status: ServingStatus) -> Self {
        HealthCheckResponse { status: status as i32 }
    }
}

/// `grpc.health.v1.HealthListRequest` (empty: `List` answers every service).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct HealthListRequest {}

/// `grpc.health.v1.HealthListResponse`: every service's status, by full name (`""`: the
/// server).
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthListResponse {
    /// The statuses.
    #[prost(map = "string, message", tag = "1")]
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub statuses: HashMap<String, HealthCheckResponse>,
}

/// `{"status": "SERVING"}`; `{}` for `UNKNOWN`, a number for one the proto does not name.
impl Serialize for HealthCheckResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match ServingStatus::try_from(self.status) {
            Ok(ServingStatus::Unknown) => {}
            Ok(status) => map.serialize_entry("status", status.as_str_name())?,
            Err(_) => map.serialize_entry("status", &self.status)?,
        }
        map.end()
    }
}

/// `status` by name or number (or `null`); other fields are ignored.
impl<'de> Deserialize<'de> for HealthCheckResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ResponseVisitor)
    }
}

struct ResponseVisitor;

impl<'de> Visitor<'de> for ResponseVisitor {
    type Value = HealthCheckResponse;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a grpc.health.v1.HealthCheckResponse object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut response = HealthCheckResponse::default();
        while let Some(key) = map.next_key::<String>()? {
            if key != "status" {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
            response.status = match map.next_value::<Option<serde_json::Value>>()? {
                None => 0,
                Some(serde_json::Value::String(name)) => match ServingStatus::from_str_name(&name) {
                    Some(status) => status as i32,
                    None => return Err(de::Error::custom(format_args!("`{name}` is not a ServingStatus"))),
                },
                Some(serde_json::Value::Number(n)) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => n,
                    None => return Err(de::Error::custom(format_args!("`{n}` is not a ServingStatus number"))),
                },
                Some(other) => return Err(de::Error::custom(format_args!("`{other}` is not a ServingStatus"))),
            };
        }
        Ok(response)
    }
}
