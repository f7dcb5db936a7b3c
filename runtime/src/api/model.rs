//! Support for generated OpenAPI models that serde's derives cannot express alone.

use serde::de::Error;
use serde_json::Value;

/// Implements `Deserialize` for a `oneOf` with a discriminator: the value is read once, its tag
/// property picks the variant, and the variant is read from the same value (tag included, since
/// the variant's own schema usually declares it). Generated code invokes it as
/// `tagged_union!(Pet, "petType", { "cat" => Cat, "dog" => Dog });`.
#[doc(hidden)]
#[macro_export]
macro_rules! __tagged_union {
    ($ty:ident, $tag:literal, { $($value:literal => $variant:ident),* $(,)? }) => {
        impl<'de> $crate::__private::serde::Deserialize<'de> for $ty {
            fn deserialize<__D: $crate::__private::serde::Deserializer<'de>>(
                d: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                let (tag, value) = $crate::__private::api_model::tagged::<__D>(d, $tag)?;
                match tag.as_str() {
                    $($value => $crate::__private::api_model::variant(value).map($ty::$variant),)*
                    other => ::core::result::Result::Err($crate::__private::api_model::unknown_tag(other, $tag, &[$($value),*])),
                }
            }
        }
    };
}

pub use crate::__tagged_union as tagged_union;

/// Reads a value and its tag property.
pub fn tagged<'de, D: serde::Deserializer<'de>>(d: D, property: &str) -> Result<(String, Value), D::Error> {
    let value = <Value as serde::Deserialize>::deserialize(d)?;
    let tag = match value.get(property) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(D::Error::custom(format!("`{property}` must be a string, found {other}"))),
        None => return Err(D::Error::custom(format!("missing discriminator property `{property}`"))),
    };
    Ok((tag, value))
}

/// Reads one variant from the value.
pub fn variant<T: serde::de::DeserializeOwned, E: Error>(value: Value) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}

/// The error for a tag no variant has.
pub fn unknown_tag<E: Error>(tag: &str, property: &str, known: &[&str]) -> E {
    E::custom(format!("unknown `{property}` {tag:?}; expected one of {known:?}"))
}

/// A JSON object being taken apart into a struct's fields (`DeserializeModel` structs).
pub struct Object<E> {
    map: serde_json::Map<String, Value>,
    ty: &'static str,
    _error: std::marker::PhantomData<fn() -> E>,
}

impl<E: Error> Object<E> {
    /// Reads an object.
    pub fn read<'de, D: serde::Deserializer<'de, Error = E>>(d: D, ty: &'static str) -> Result<Self, E> {
        match <Value as serde::Deserialize>::deserialize(d)? {
            Value::Object(map) => Ok(Object { map, ty, _error: std::marker::PhantomData }),
            other => Err(E::custom(format!("{ty}: expected an object, found {}", crate::policy::json_kind(&other)))),
        }
    }

    /// A property that must be present.
    pub fn required<T: serde::de::DeserializeOwned>(&mut self, key: &'static str) -> Result<T, E> {
        match self.map.remove(key) {
            Some(v) => serde_json::from_value(v).map_err(|e| E::custom(format!("`{key}`: {e}"))),
            None => Err(E::custom(format!("{}: missing property `{key}`", self.ty))),
        }
    }

    /// A property that may be absent (its `Default` then: `None` for options).
    pub fn optional<T: serde::de::DeserializeOwned + Default>(&mut self, key: &'static str) -> Result<T, E> {
        match self.map.remove(key) {
            Some(v) => serde_json::from_value(v).map_err(|e| E::custom(format!("`{key}`: {e}"))),
            None => Ok(T::default()),
        }
    }

    /// A property with a default (the schema's, as JSON text) used when it is absent.
    pub fn defaulted<T: serde::de::DeserializeOwned>(&mut self, key: &'static str, default: &'static str) -> Result<T, E> {
        match self.map.remove(key) {
            Some(v) => serde_json::from_value(v).map_err(|e| E::custom(format!("`{key}`: {e}"))),
            None => serde_json::from_str(default).map_err(|e| E::custom(format!("`{key}`: default {default}: {e}"))),
        }
    }

    /// The properties no field took (a flattened map of additional properties).
    pub fn rest<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, E> {
        let map = std::mem::take(&mut self.map);
        serde_json::from_value(Value::Object(map)).map_err(|e| E::custom(format!("{}: {e}", self.ty)))
    }
}


/// Reads any JSON value (untagged unions).
pub fn value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    <Value as serde::Deserialize>::deserialize(d)
}

/// Reads a string (string enums).
pub fn string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    <String as serde::Deserialize>::deserialize(d)
}

/// One alternative of an untagged union, if the value reads as it.
pub fn attempt<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

/// The error when no alternative of a union reads the value.
pub fn no_variant<E: Error>(ty: &str, v: &Value) -> E {
    E::custom(format!("{ty}: {} matches none of the alternatives", crate::policy::json_kind(v)))
}

/// The error for a string outside a closed enum.
pub fn unknown_value<E: Error>(ty: &str, v: &str) -> E {
    E::custom(format!("{ty}: unknown value {v:?}"))
}

/// Reads a response enum's variant index and payload (`null` for unit variants, the body for
/// newtype ones, `[status, body]` for `(u16, Body)` ones) through `deserialize_enum`.
/// `shapes[i]`: 0 unit, 1 newtype, 2 pair.
pub fn response_variant<'de, D: serde::Deserializer<'de>>(
    d: D,
    ty: &'static str,
    names: &'static [&'static str],
    shapes: &'static [u8],
) -> Result<(usize, Value), D::Error> {
    d.deserialize_enum(ty, names, ResponseVisitor { ty, names, shapes })
}

struct ResponseVisitor {
    ty: &'static str,
    names: &'static [&'static str],
    shapes: &'static [u8],
}

impl<'de> serde::de::Visitor<'de> for ResponseVisitor {
    type Value = (usize, Value);
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a variant of {}", self.ty)
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        use serde::de::VariantAccess;
        let (i, access) = data.variant_seed(IndexSeed { names: self.names })?;
        let payload = match self.shapes.get(i) {
            Some(0) => {
                access.unit_variant()?;
                Value::Null
            }
            Some(1) => access.newtype_variant::<Value>()?,
            Some(2) => access.tuple_variant(2, PairVisitor)?,
            _ => return Err(A::Error::custom(format!("{}: no variant {i}", self.ty))),
        };
        Ok((i, payload))
    }
}

struct IndexSeed {
    names: &'static [&'static str],
}

impl<'de> serde::de::DeserializeSeed<'de> for IndexSeed {
    type Value = usize;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> serde::de::Visitor<'de> for IndexSeed {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "one of {:?}", self.names)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<usize, E> {
        usize::try_from(v).ok().filter(|&i| i < self.names.len()).ok_or_else(|| E::custom(format!("no variant {v}")))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<usize, E> {
        self.names.iter().position(|n| *n == v).ok_or_else(|| E::unknown_variant(v, &[]))
    }
    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<usize, E> {
        self.visit_str(std::str::from_utf8(v).map_err(E::custom)?)
    }
}

struct PairVisitor;

impl<'de> serde::de::Visitor<'de> for PairVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a status code and a body")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let status: Value = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
        let body: Value = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
        Ok(Value::Array(vec![status, body]))
    }
}

/// A variant's payload.
pub fn payload<T: serde::de::DeserializeOwned, E: Error>(v: Value) -> Result<T, E> {
    serde_json::from_value(v).map_err(E::custom)
}
