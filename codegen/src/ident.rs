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
    let s = ascii(s).to_snake_case();
    if s.is_empty() { "unnamed".into() } else { sanitize(&s) }
}

/// The field prost-build generates for a message field: `orderId` → `order_id`, `type` →
/// `r#type`.
pub fn message_field(name: &str) -> String {
    snake(name)
}

/// `library_service` → `LibraryService`.
pub fn upper_camel(s: &str) -> String {
    let s = ascii(s).to_upper_camel_case();
    if s.is_empty() { "Unnamed".into() } else { sanitize(&s) }
}

/// Spec names in ASCII (generated identifiers are ASCII: rustc warns about many non-ASCII
/// ones, and rejects characters such as `²` that are alphanumeric but not identifier
/// characters). Latin letters with accents lose them (`é` → `e`); any other non-ASCII character
/// becomes a word of its own spelling its code point (`日` → ` u65e5 `), so that different
/// names stay different. ASCII text is returned unchanged.
pub fn ascii(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else if let Some(folded) = fold_latin(c) {
            out.push_str(folded);
        } else if c.is_alphanumeric() {
            out.push_str(&format!(" u{:x} ", c as u32));
        } else {
            out.push(' ');
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The ASCII letters of a Latin letter with a diacritic (Latin-1 Supplement and Latin
/// Extended-A), by the letter's name.
fn fold_latin(c: char) -> Option<&'static str> {
    Some(match c {
        'À'..='Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à'..='å' | 'ā' | 'ă' | 'ą' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ď' | 'Đ' | 'Ð' => "D",
        'ď' | 'đ' | 'ð' => "d",
        'È'..='Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì'..='Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ò'..='Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' => "T",
        'ţ' | 'ť' | 'ŧ' => "t",
        'Þ' => "TH",
        'þ' => "th",
        'Ù'..='Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ŷ' | 'Ÿ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
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

/// Spells symbols that carry meaning in JSON names (`+1`, `-1`, `@id`, `$ref`) as words, so
/// that `+1` and `-1` do not both become `_1`.
fn words(wire: &str) -> String {
    let mut out = String::new();
    for (i, c) in ascii(wire).chars().enumerate() {
        match c {
            '+' => out.push_str(" plus "),
            '-' if i == 0 => out.push_str(" minus "),
            '@' => out.push_str(" at "),
            '$' => out.push_str(" dollar "),
            '*' => out.push_str(" star "),
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    }
    out
}

/// A struct field for a JSON property or parameter name: `created_at`, `plus_1`, `r#type`.
pub fn field(wire: &str) -> String {
    let s = words(wire).to_snake_case();
    if s.is_empty() { "value".into() } else { sanitize(&s) }
}

/// A type or variant name for a spec name or enum value: `InProgress`, `V2xx`, `Empty`.
pub fn type_name(wire: &str) -> String {
    let s = words(wire).to_upper_camel_case();
    if s.is_empty() {
        "Empty".into()
    } else if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{s}")
    } else {
        sanitize(&s)
    }
}

/// A constant name: `GET_PET`, `API_KEY`.
pub fn constant(wire: &str) -> String {
    let s = words(wire).to_shouty_snake_case();
    if s.is_empty() {
        "VALUE".into()
    } else if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{s}")
    } else {
        sanitize(&s)
    }
}

/// The response enum variant for a status: `Ok`, `NotFound`, `Status2xx`, `Default`.
pub fn status_variant(status: &str) -> String {
    let reason = match status {
        "default" => "Default",
        "100" => "Continue", "101" => "SwitchingProtocols", "200" => "Ok", "201" => "Created", "202" => "Accepted",
        "203" => "NonAuthoritativeInformation", "204" => "NoContent", "205" => "ResetContent", "206" => "PartialContent",
        "207" => "MultiStatus", "300" => "MultipleChoices", "301" => "MovedPermanently", "302" => "Found", "303" => "SeeOther",
        "304" => "NotModified", "307" => "TemporaryRedirect", "308" => "PermanentRedirect", "400" => "BadRequest",
        "401" => "Unauthorized", "402" => "PaymentRequired", "403" => "Forbidden", "404" => "NotFound",
        "405" => "MethodNotAllowed", "406" => "NotAcceptable", "408" => "RequestTimeout", "409" => "Conflict", "410" => "Gone",
        "411" => "LengthRequired", "412" => "PreconditionFailed", "413" => "PayloadTooLarge", "414" => "UriTooLong",
        "415" => "UnsupportedMediaType", "416" => "RangeNotSatisfiable", "417" => "ExpectationFailed", "418" => "ImATeapot",
        "421" => "MisdirectedRequest", "422" => "UnprocessableEntity", "423" => "Locked", "424" => "FailedDependency",
        "425" => "TooEarly", "426" => "UpgradeRequired", "428" => "PreconditionRequired", "429" => "TooManyRequests",
        "431" => "RequestHeaderFieldsTooLarge", "451" => "UnavailableForLegalReasons", "500" => "InternalServerError",
        "501" => "NotImplemented", "502" => "BadGateway", "503" => "ServiceUnavailable", "504" => "GatewayTimeout",
        "505" => "HttpVersionNotSupported", "507" => "InsufficientStorage", "511" => "NetworkAuthenticationRequired",
        other => return format!("Status{}", other.to_ascii_lowercase()),
    };
    reason.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_become_distinct_identifiers() {
        assert_eq!(field("+1"), "plus_1");
        assert_eq!(field("-1"), "minus_1");
        assert_eq!(field("type"), "r#type");
        assert_eq!(field("self"), "self_");
        assert_eq!(field("@odata.type"), "at_odata_type");
        assert_eq!(field("created-at"), "created_at");
        assert_eq!(field("2fa"), "_2fa");
        assert_eq!(field(""), "value");
        assert_eq!(type_name("in-progress"), "InProgress");
        assert_eq!(type_name("2xx"), "V2xx");
        assert_eq!(type_name(""), "Empty");
        assert_eq!(type_name("Self"), "Self_");
        assert_eq!(type_name("simple-user"), "SimpleUser");
        assert_eq!(constant("repos/get-content"), "REPOS_GET_CONTENT");
        assert_eq!(status_variant("404"), "NotFound");
        assert_eq!(status_variant("4XX"), "Status4xx");
        assert_eq!(status_variant("299"), "Status299");
    }

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
