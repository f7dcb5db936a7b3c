//! Rust names for spec names: the one place naming rules live (mirrors prost-build, so that
//! paths written here match the types prost-build generates).

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

use crate::ir::TypeRef;

/// Where the well-known types live, as seen from generated code.
pub const PROST_TYPES: &str = "::switchboard::wkt";
/// Where prost lives, as seen from generated code.
pub const PROST: &str = "::switchboard::__private::prost";

/// Makes `s` a usable identifier: raw for keywords, `_`-suffixed where raw is not allowed.
pub fn sanitize(s: &str) -> String {
    match s {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{s}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{s}_"),
        s if s.starts_with(|c: char| c.is_ascii_digit()) => format!("_{s}"),
        s => s.to_owned(),
    }
}

/// `LibraryService` → `LIBRARY_SERVICE` (constants; the macro names descriptors the same way).
pub fn shouty(s: &str) -> String {
    s.to_shouty_snake_case()
}

/// `GetBook` / `getBook` → `get_book`.
pub fn snake(s: &str) -> String {
    sanitize(&s.to_snake_case())
}

/// `library_service` → `LibraryService`.
pub fn upper_camel(s: &str) -> String {
    sanitize(&s.to_upper_camel_case())
}

/// The module path (snake-case segments) of a package.
pub fn package_modules(package: &str) -> Vec<String> {
    if package.is_empty() { Vec::new() } else { package.split('.').map(snake).collect() }
}

/// The file a package's code is written to, as prost-build names it.
pub fn package_file(package: &str) -> String {
    if package.is_empty() { "_.rs".into() } else { format!("{package}.rs") }
}

/// The Rust type for a message, written as seen from code in package `from`.
pub fn type_path(from: &str, ty: &TypeRef) -> String {
    if ty.package == crate::lower::proto::WELL_KNOWN_PACKAGE {
        return well_known(ty);
    }
    let here = package_modules(from);
    let mut there = package_modules(&ty.package);
    there.extend(ty.parents.iter().map(|p| snake(p)));
    let common = here.iter().zip(&there).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("super".to_owned(), here.len() - common).collect();
    parts.extend(there[common..].iter().cloned());
    parts.push(upper_camel(&ty.name));
    parts.join("::")
}

fn well_known(ty: &TypeRef) -> String {
    if ty.parents.is_empty() {
        let scalar = match ty.name.as_str() {
            "Empty" => Some("()".to_owned()),
            "BoolValue" => Some("bool".into()),
            "BytesValue" => Some(format!("{PROST}::alloc::vec::Vec<u8>")),
            "DoubleValue" => Some("f64".into()),
            "FloatValue" => Some("f32".into()),
            "Int32Value" => Some("i32".into()),
            "Int64Value" => Some("i64".into()),
            "StringValue" => Some(format!("{PROST}::alloc::string::String")),
            "UInt32Value" => Some("u32".into()),
            "UInt64Value" => Some("u64".into()),
            _ => None,
        };
        if let Some(s) = scalar {
            return s;
        }
    }
    let mut parts = vec![PROST_TYPES.to_owned()];
    parts.extend(ty.parents.iter().map(|p| snake(p)));
    parts.push(upper_camel(&ty.name));
    parts.join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(package: &str, parents: &[&str], name: &str) -> TypeRef {
        TypeRef { package: package.into(), parents: parents.iter().map(|s| s.to_string()).collect(), name: name.into() }
    }

    #[test]
    fn keywords_become_raw_or_suffixed() {
        assert_eq!(snake("Type"), "r#type");
        assert_eq!(snake("Match"), "r#match");
        assert_eq!(snake("async"), "r#async");
        assert_eq!(upper_camel("self"), "Self_");
        assert_eq!(snake("crate"), "crate_");
        assert_eq!(snake("super"), "super_");
        assert_eq!(upper_camel("2fa"), "_2fa");
        assert_eq!(snake("GetHTTPThing"), "get_http_thing");
        assert_eq!(upper_camel("library_service"), "LibraryService");
    }

    #[test]
    fn paths_are_relative_like_prost() {
        assert_eq!(type_path("grpc.testing", &ty("grpc.testing", &[], "SimpleRequest")), "SimpleRequest");
        assert_eq!(type_path("a.b", &ty("a.c", &[], "M")), "super::c::M");
        assert_eq!(type_path("a.b", &ty("a.b", &["Outer"], "Inner")), "outer::Inner");
        assert_eq!(type_path("", &ty("x.y", &[], "M")), "x::y::M");
        assert_eq!(type_path("x.y", &ty("", &[], "M")), "super::super::M");
        assert_eq!(type_path("google.api", &ty("google.type", &[], "Date")), "super::r#type::Date");
    }

    #[test]
    fn well_known_types_map_to_prost_types() {
        assert_eq!(type_path("a", &ty("google.protobuf", &[], "Empty")), "()");
        assert_eq!(type_path("a", &ty("google.protobuf", &[], "Timestamp")), format!("{PROST_TYPES}::Timestamp"));
        assert_eq!(type_path("a", &ty("google.protobuf", &[], "StringValue")), format!("{PROST}::alloc::string::String"));
    }

    #[test]
    fn keyword_packages_become_raw_modules() {
        assert_eq!(package_modules("google.type"), ["google", "r#type"]);
        assert_eq!(package_file(""), "_.rs");
    }
}
