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
