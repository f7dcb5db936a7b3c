//! The protobuf well-known types with their proto3 JSON mapping: pbjson-types' (Duration, Struct,
//! Value, wrappers, Empty, …) plus our own `FieldMask` (pbjson-types maps it as a plain message;
//! the JSON mapping is one string `"a.b,cD"`), `Any` (`{"@type", "value"}`) and `Timestamp`
//! (Z-normalized output as the mapping requires; pbjson-types writes `+00:00`).

pub use pbjson_types::*;

pub use self::field_mask::FieldMask;
pub use self::any::Any;
pub use self::timestamp::Timestamp;

mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::de::{Deserialize, Deserializer, Error as _};
    use serde::{Serialize, Serializer};

    /// `google.protobuf.Timestamp`: a point in time, UTC. JSON: RFC 3339, Z-normalized, with 0,
    /// 3, 6 or 9 fractional digits (`"2024-05-01T10:00:00.500Z"`); any offset is accepted.
    /// Converts from and to `chrono::DateTime<Utc>` and `std::time::SystemTime`.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
    pub struct Timestamp {
        /// Seconds since 1970-01-01T00:00:00Z.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Non-negative fractions of a second, 0..=999,999,999.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    impl From<DateTime<Utc>> for Timestamp {
        fn from(t: DateTime<Utc>) -> Self {
            Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
        }
    }

    impl TryFrom<Timestamp> for DateTime<Utc> {
        type Error = &'static str;
        fn try_from(t: Timestamp) -> Result<Self, Self::Error> {
            let nanos = u32::try_from(t.nanos).map_err(|_| "negative nanos")?;
            DateTime::from_timestamp(t.seconds, nanos).ok_or("timestamp out of range")
        }
    }

    impl From<std::time::SystemTime> for Timestamp {
        fn from(t: std::time::SystemTime) -> Self {
            DateTime::<Utc>::from(t).into()
        }
    }

    impl Serialize for Timestamp {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let t = DateTime::<Utc>::try_from(*self).map_err(serde::ser::Error::custom)?;
            let format = match self.nanos {
                0 => SecondsFormat::Secs,
                n if n % 1_000_000 == 0 => SecondsFormat::Millis,
                n if n % 1_000 == 0 => SecondsFormat::Micros,
                _ => SecondsFormat::Nanos,
            };
            serializer.serialize_str(&t.to_rfc3339_opts(format, true))
        }
    }

    impl<'de> Deserialize<'de> for Timestamp {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let text = String::deserialize(deserializer)?;
            let t = DateTime::parse_from_rfc3339(&text)
                .map_err(|e| D::Error::custom(format!("`{text}` is not an RFC 3339 timestamp: {e}")))?;
            Ok(t.to_utc().into())
        }
    }
}

mod field_mask {
    use serde::de::{Deserialize, Deserializer, Error as _};
    use serde::{Serialize, Serializer};

    /// `google.protobuf.FieldMask`: a set of field paths. JSON: the paths in lowerCamelCase,
    /// joined by `,` (`"displayName,address.zipCode"`); snake_case paths are accepted too.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct FieldMask {
        /// The field paths, in proto (snake_case) names.
        #[prost(string, repeated, tag = "1")]
        pub paths: Vec<String>,
    }

    impl Serialize for FieldMask {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut out = String::new();
            for (i, path) in self.paths.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let segments: Vec<String> = path.split('.').map(to_camel).collect();
                out.push_str(&segments.join("."));
            }
            serializer.serialize_str(&out)
        }
    }

    impl<'de> Deserialize<'de> for FieldMask {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let text = String::deserialize(deserializer)?;
            let mut paths = Vec::new();
            for path in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if path.contains('_') && path.chars().any(|c| c.is_ascii_uppercase()) {
                    return Err(D::Error::custom(format!("field mask path `{path}` mixes snake_case and camelCase")));
                }
                paths.push(path.split('.').map(to_snake).collect::<Vec<_>>().join("."));
            }
            Ok(FieldMask { paths })
        }
    }

    fn to_camel(s: &str) -> String {
        crate::rest_names::lower_camel(s)
    }

    fn to_snake(s: &str) -> String {
        crate::rest_names::snake(s)
    }
}

mod any {
    use base64::Engine as _;
    use serde::de::{Deserializer, Error as _};
    use serde::{Deserialize, Serialize, Serializer};

    /// `google.protobuf.Any`: a message of any type, as its type URL and encoded bytes. JSON:
    /// `{"@type": "<type url>", "value": "<base64 of the encoded message>"}` (the canonical mapping
    /// inlines the message's own JSON, which needs a type registry; this form round-trips without
    /// one).
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Any {
        /// Identifies the message type, e.g. `type.googleapis.com/google.rpc.ErrorInfo`.
        #[prost(string, tag = "1")]
        pub type_url: String,
        /// The encoded message.
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Json {
        #[serde(rename = "@type")]
        type_url: String,
        #[serde(default)]
        value: String,
    }

    impl Serialize for Any {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let value = base64::engine::general_purpose::STANDARD.encode(&self.value);
            Json { type_url: self.type_url.clone(), value }.serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let json = Json::deserialize(deserializer)?;
            let value = base64::engine::general_purpose::STANDARD
                .decode(json.value.as_bytes())
                .map_err(|e| D::Error::custom(format!("`value` is not base64: {e}")))?;
            Ok(Any { type_url: json.type_url, value })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_mask_is_one_camel_case_string() {
        let mask = FieldMask { paths: vec!["display_name".into(), "address.zip_code".into()] };
        let json = serde_json::to_string(&mask).unwrap();
        assert_eq!(json, r#""displayName,address.zipCode""#);
        assert_eq!(serde_json::from_str::<FieldMask>(&json).unwrap(), mask);
        assert_eq!(serde_json::from_str::<FieldMask>(r#""display_name""#).unwrap().paths, ["display_name"]);
        assert!(serde_json::from_str::<FieldMask>(r#"{"paths": []}"#).is_err());
    }

    #[test]
    fn timestamps_are_z_normalized() {
        let t: Timestamp = serde_json::from_str(r#""2024-05-01T12:00:00.5+02:00""#).unwrap();
        assert_eq!(t, Timestamp { seconds: 1_714_557_600, nanos: 500_000_000 });
        assert_eq!(serde_json::to_string(&t).unwrap(), r#""2024-05-01T10:00:00.500Z""#);
        let t = Timestamp { seconds: 0, nanos: 0 };
        assert_eq!(serde_json::to_string(&t).unwrap(), r#""1970-01-01T00:00:00Z""#);
        assert!(serde_json::from_str::<Timestamp>(r#""yesterday""#).is_err());
    }

    #[test]
    fn any_round_trips() {
        let any = Any { type_url: "type.googleapis.com/x.Y".into(), value: vec![1, 2] };
        let json = serde_json::to_value(&any).unwrap();
        assert_eq!(json, serde_json::json!({"@type": "type.googleapis.com/x.Y", "value": "AQI="}));
        assert_eq!(serde_json::from_value::<Any>(json).unwrap(), any);
    }
}
