//! Media types: which encoding a request or response body gets.

/// How a body of some media type is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    /// `application/json`, `*/*+json` (and `*/*`): JSON.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data` (any `multipart/*`).
    Multipart,
    /// `text/*` and XML-like types: the body is the text of a string value.
    Text,
    /// Anything else (`application/octet-stream`, `image/png`, …): raw bytes, which a `Binary`
    /// value carries as base64 text in the JSON form of the message.
    Binary,
}

/// The media type without parameters, e.g. `application/json` from `application/json; charset=utf-8`.
pub(crate) fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// The encoding of `media_type`.
pub(crate) fn classify(media_type: &str) -> Media {
    let mt = essence(media_type);
    let (kind, sub) = mt.split_once('/').unwrap_or((mt, ""));
    let sub_is = |s: &str| sub.eq_ignore_ascii_case(s);
    let sub_ends = |s: &str| sub.len() >= s.len() && sub.is_char_boundary(sub.len() - s.len()) && sub[sub.len() - s.len()..].eq_ignore_ascii_case(s);
    if (kind == "*" && sub == "*") || sub_is("json") || sub_ends("+json") {
        Media::Json
    } else if kind.eq_ignore_ascii_case("application") && sub_is("x-www-form-urlencoded") {
        Media::Form
    } else if kind.eq_ignore_ascii_case("multipart") {
        Media::Multipart
    } else if kind.eq_ignore_ascii_case("text") || sub_is("xml") || sub_ends("+xml") || sub_is("yaml") || sub_is("x-yaml") || sub_is("javascript") {
        Media::Text
    } else {
        Media::Binary
    }
}

/// Whether a request of type `actual` fits the documented type `documented` (which may be a
/// range such as `image/*` or `*/*`). Parameters are ignored.
#[cfg(feature = "rest")]
pub(crate) fn matches(documented: &str, actual: &str) -> bool {
    let (d, a) = (essence(documented), essence(actual));
    if d.eq_ignore_ascii_case(a) || d == "*/*" {
        return true;
    }
    match (d.split_once('/'), a.split_once('/')) {
        (Some((dk, "*")), Some((ak, _))) => dk.eq_ignore_ascii_case(ak),
        _ => false,
    }
}

/// The `Content-Type` to send for a documented type (a range becomes a concrete type).
pub(crate) fn concrete(documented: &'static str) -> &'static str {
    if documented == "*/*" {
        "application/json"
    } else if documented.ends_with("/*") {
        "application/octet-stream"
    } else {
        documented
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_pick_an_encoding() {
        assert_eq!(classify("application/json; charset=utf-8"), Media::Json);
        assert_eq!(classify("application/vnd.github+json"), Media::Json);
        assert_eq!(classify("application/x-www-form-urlencoded"), Media::Form);
        assert_eq!(classify("multipart/form-data; boundary=x"), Media::Multipart);
        assert_eq!(classify("text/plain"), Media::Text);
        assert_eq!(classify("application/xml"), Media::Text);
        assert_eq!(classify("application/octet-stream"), Media::Binary);
        assert_eq!(classify("image/png"), Media::Binary);
        assert!(matches("image/*", "image/png"));
        assert!(matches("application/json", "Application/JSON; charset=utf-8"));
        assert!(!matches("application/json", "text/plain"));
        assert_eq!(concrete("image/*"), "application/octet-stream");
    }
}
