//! Path templates: the types of the one parser (crate `switchboard-path`) that google.api.http
//! rules and OpenAPI paths share, and the REST client's expansion of a google.api.http template.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;      Segment  = "*" | "**" | LITERAL | Variable ;
//! Segments = Segment { "/" Segment } ;    Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;                FieldPath = IDENT { "." IDENT } ;
//! ```
//!
//! `{var}` is `{var=*}`. `*` matches one segment, `**` zero or more (last only). A variable that
//! spans one segment is percent-decoded completely (`%2F` becomes `/`); one that spans several
//! is decoded except for `%2F`, so the segments it was built from stay apparent.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

pub use switchboard_path::{Captures, Piece, Segment, Syntax, Template, TemplateError, Variable};

/// The decoded value of a google.api.http variable whose raw (percent-encoded) text in the
/// request path is `raw`; `None` when it is not UTF-8.
pub(crate) fn decode_variable(template: &Template<'_>, var: &Variable<'_>, raw: &str) -> Option<String> {
    let single = var.end == var.start + 1 && template.segments[var.start] != Segment::Rest;
    if single {
        return Some(percent_decode_str(raw).decode_utf8().ok()?.into_owned());
    }
    let mut out = String::with_capacity(raw.len());
    for (i, part) in raw.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&decode_keep_slash(part)?);
    }
    Some(out)
}

/// Builds a path from variable values (client side). `value_of` returns the string value of
/// a field path; a value must match the variable's pattern.
pub fn expand(template: &Template<'_>, mut value_of: impl FnMut(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut i = 0;
    while i < template.segments.len() {
        out.push('/');
        if let Some(var) = template.variables.iter().find(|v| v.start == i) {
            let value = value_of(var.name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("field `{}` is bound to the path and must be set", var.name))?;
            let covered = &template.segments[var.start..var.end];
            if covered.len() == 1 && covered[0] == Segment::Any {
                out.extend(utf8_percent_encode(&value, SEGMENT));
            } else {
                let parts: Vec<&str> = value.split('/').collect();
                if !pattern_accepts(covered, &parts) {
                    return Err(format!(
                        "field `{}` = `{value}` does not match the path pattern `{}`",
                        var.name,
                        render(covered)
                    ));
                }
                let encoded: Vec<String> = parts.iter().map(|p| utf8_percent_encode(p, SEGMENT).to_string()).collect();
                out.push_str(&encoded.join("/"));
            }
            i = var.end.max(i + 1);
        } else {
            match &template.segments[i] {
                Segment::Literal(lit) => out.push_str(lit),
                _ => return Err("the path template has a wildcard outside a variable".into()),
            }
            i += 1;
        }
    }
    if let Some(verb) = template.verb {
        out.push(':');
        out.push_str(verb);
    }
    Ok(out)
}

/// Characters escaped inside one path segment (RFC 3986 unreserved stay as they are).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn decode_keep_slash(part: &str) -> Option<String> {
    let mut out = String::new();
    for (i, chunk) in part.split("%2F").enumerate() {
        let chunk_parts: Vec<&str> = chunk.split("%2f").collect();
        if i > 0 {
            out.push_str("%2F");
        }
        for (j, c) in chunk_parts.iter().enumerate() {
            if j > 0 {
                out.push_str("%2F");
            }
            out.push_str(&percent_decode_str(c).decode_utf8().ok()?);
        }
    }
    Some(out)
}

fn pattern_accepts(pattern: &[Segment], parts: &[&str]) -> bool {
    let mut i = 0;
    for seg in pattern {
        match seg {
            Segment::Literal(lit) => {
                if parts.get(i) != Some(&&**lit) {
                    return false;
                }
                i += 1;
            }
            Segment::Any => {
                if parts.get(i).is_none_or(|p| p.is_empty()) {
                    return false;
                }
                i += 1;
            }
            Segment::Rest => return true,
            Segment::Pattern(_) => return false,
        }
    }
    i == parts.len()
}

fn render(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l,
            Segment::Any => "*",
            Segment::Rest => "**",
            Segment::Pattern(_) => "?",
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Template<'_> {
        Template::parse_http(s).unwrap()
    }

    /// Matches and decodes, as the server does.
    fn matches<'t>(tpl: &Template<'t>, path: &str) -> Option<Vec<(&'t str, String)>> {
        let mut caps = Captures::default();
        if !tpl.match_path(path, &mut caps) {
            return None;
        }
        tpl.variables.iter().zip(caps.iter()).map(|(v, r)| Some((v.name, decode_variable(tpl, v, &path[r])?))).collect()
    }

    #[test]
    fn simple_variables_and_field_paths() {
        let tpl = t("/v1/shelves/{shelf}/books/{book.id}");
        let m = matches(&tpl, "/v1/shelves/1/books/a%20b").unwrap();
        assert_eq!(m, vec![("shelf", "1".to_owned()), ("book.id", "a b".to_owned())]);
        assert!(matches(&tpl, "/v1/shelves/1/books").is_none());
        assert!(matches(&tpl, "/v1/shelves/1/books/2/x").is_none());
        assert!(matches(&tpl, "/v1/shelves//books/2").is_none());
    }

    #[test]
    fn segment_patterns_and_double_star() {
        let tpl = t("/v1/{name=shelves/*/books/*}");
        assert_eq!(matches(&tpl, "/v1/shelves/s1/books/b2").unwrap(), vec![("name", "shelves/s1/books/b2".to_owned())]);
        assert!(matches(&tpl, "/v1/shelves/s1").is_none());
        assert!(matches(&tpl, "/v1/shelves/s1/magazines/b2").is_none());
        let tpl = t("/v1/{name=files/**}");
        assert_eq!(matches(&tpl, "/v1/files/a/b/c").unwrap(), vec![("name", "files/a/b/c".to_owned())]);
        assert_eq!(matches(&tpl, "/v1/files").unwrap(), vec![("name", "files".to_owned())]);
        let tpl = t("/v1/{path=**}");
        assert_eq!(matches(&tpl, "/v1/a%2Fb/c").unwrap(), vec![("path", "a%2Fb/c".to_owned())]);
    }

    #[test]
    fn verbs() {
        let tpl = t("/v1/{name=operations/*}:cancel");
        assert_eq!(tpl.verb, Some("cancel"));
        assert_eq!(matches(&tpl, "/v1/operations/7:cancel").unwrap(), vec![("name", "operations/7".to_owned())]);
        assert!(matches(&tpl, "/v1/operations/7").is_none());
        assert!(matches(&tpl, "/v1/operations/7:delete").is_none());
        let tpl = t("/v1/shelves:search");
        assert!(matches(&tpl, "/v1/shelves:search").is_some());
        assert!(matches(&tpl, "/v1/shelves").is_none());
        // A colon in a variable value of a verb-less template is data.
        assert_eq!(matches(&t("/v1/{name}"), "/v1/a:b").unwrap(), vec![("name", "a:b".to_owned())]);
    }

    #[test]
    fn bad_templates_are_errors() {
        for bad in ["v1/x", "/v1/{", "/v1/{}", "/v1/**/x/**", "/v1/x:", "/v1/a{b}", "/v1/{a}/{a}", "/v1//x"] {
            assert!(Template::parse_http(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expand_builds_paths_and_checks_patterns() {
        let tpl = t("/v1/{name=shelves/*/books/*}:move");
        let path = expand(&tpl, |f| (f == "name").then(|| "shelves/1/books/a b".to_owned())).unwrap();
        assert_eq!(path, "/v1/shelves/1/books/a%20b:move");
        assert!(expand(&tpl, |_| Some("shelves/1".to_owned())).unwrap_err().contains("does not match"));
        assert!(expand(&tpl, |_| None).unwrap_err().contains("must be set"));
        let tpl = t("/v1/users/{id}");
        assert_eq!(expand(&tpl, |_| Some("a/b".into())).unwrap(), "/v1/users/a%2Fb");
        assert_eq!(matches(&tpl, "/v1/users/a%2Fb").unwrap()[0].1, "a/b");
    }
}
