//! `google.api.http` path templates: parsing, matching request paths, and expanding them in the
//! client.
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

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// `*`: any one segment.
    Single,
    /// `**`: zero or more segments (only last).
    Multi,
}

/// A variable: the field path it binds and the segments it covers (`start..end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Dotted field path, e.g. `book.name`.
    pub field_path: String,
    /// First covered segment.
    pub start: usize,
    /// One past the last covered segment.
    pub end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The segments, variables flattened in.
    pub segments: Vec<Segment>,
    /// The variables, in order.
    pub variables: Vec<Variable>,
    /// The custom verb after `:`, if any.
    pub verb: Option<String>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template.
    pub template: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path template `{}`: {}", self.template, self.message)
    }
}

impl std::error::Error for TemplateError {}

impl PathTemplate {
    /// Parses `template`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let err = |message: &str| TemplateError { template: template.to_owned(), message: message.to_owned() };
        let rest = template.strip_prefix('/').ok_or_else(|| err("must start with `/`"))?;
        // The verb is a `:` after the last `/` that is outside braces.
        let (path, verb) = split_verb(rest);
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut chars = path;
        loop {
            if let Some(inner) = chars.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| err("unclosed `{`"))?;
                let body = &inner[..close];
                let (field_path, pattern) = match body.split_once('=') {
                    Some((f, p)) => (f, p),
                    None => (body, "*"),
                };
                if field_path.is_empty()
                    || !field_path.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    return Err(err(&format!("`{field_path}` is not a field path")));
                }
                let start = segments.len();
                for seg in pattern.split('/') {
                    segments.push(parse_segment(seg).map_err(|m| err(&m))?);
                }
                if variables.iter().any(|v: &Variable| v.field_path == field_path) {
                    return Err(err(&format!("`{field_path}` is bound twice")));
                }
                variables.push(Variable { field_path: field_path.to_owned(), start, end: segments.len() });
                chars = &inner[close + 1..];
            } else {
                let end = chars.find('/').unwrap_or(chars.len());
                let seg = &chars[..end];
                if seg.contains(['{', '}']) {
                    return Err(err("a variable must be a whole segment"));
                }
                segments.push(parse_segment(seg).map_err(|m| err(&m))?);
                chars = &chars[end..];
            }
            match chars.strip_prefix('/') {
                Some(next) => chars = next,
                None if chars.is_empty() => break,
                None => return Err(err("a variable must be a whole segment")),
            }
        }
        if let Some(pos) = segments.iter().position(|s| *s == Segment::Multi) {
            if pos + 1 != segments.len() {
                return Err(err("`**` must be the last segment"));
            }
        }
        if verb.is_some_and(str::is_empty) {
            return Err(err("empty verb after `:`"));
        }
        Ok(Self { segments, variables, verb: verb.map(str::to_owned) })
    }

    /// Number of literal segments: more literals is a more specific route.
    pub fn literal_count(&self) -> usize {
        self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count()
    }

    /// Matches a request path (as in the URI, still percent-encoded). On a match, returns each
    /// variable's field path and decoded value.
    pub fn matches(&self, path: &str) -> Option<Vec<(&str, String)>> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => {
                let stem = path.strip_suffix(verb.as_str())?.strip_suffix(':')?;
                // The verb belongs to the last segment.
                if stem.ends_with('/') && !stem.is_empty() {
                    return None;
                }
                stem
            }
            None => path,
        };
        // Only literal segments (e.g. the default `POST /pkg.Service/Method` binding): compare
        // segment by segment; nothing to capture, so nothing to allocate.
        if self.variables.is_empty() && self.segments.iter().all(|s| matches!(s, Segment::Literal(_))) {
            let mut parts = (!path.is_empty()).then(|| path.split('/')).into_iter().flatten();
            for seg in &self.segments {
                let Segment::Literal(lit) = seg else { return None };
                if parts.next() != Some(lit.as_str()) {
                    return None;
                }
            }
            return parts.next().is_none().then(Vec::new);
        }
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        let mut spans = Vec::with_capacity(self.segments.len());
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(lit) => {
                    if parts.get(i) != Some(&lit.as_str()) {
                        return None;
                    }
                    spans.push((i, i + 1));
                    i += 1;
                }
                Segment::Single => {
                    let part = parts.get(i)?;
                    if part.is_empty() {
                        return None;
                    }
                    spans.push((i, i + 1));
                    i += 1;
                }
                Segment::Multi => {
                    spans.push((i, parts.len()));
                    i = parts.len();
                }
            }
        }
        if i != parts.len() {
            return None;
        }
        let mut values = Vec::with_capacity(self.variables.len());
        for var in &self.variables {
            let from = spans[var.start].0;
            let to = if var.end > var.start { spans[var.end - 1].1 } else { from };
            let raw = &parts[from..to];
            let value = if raw.len() == 1 && self.segments[var.start] != Segment::Multi {
                percent_decode_str(raw[0]).decode_utf8().ok()?.into_owned()
            } else {
                raw.iter()
                    .map(|p| decode_keep_slash(p))
                    .collect::<Option<Vec<_>>>()?
                    .join("/")
            };
            values.push((var.field_path.as_str(), value));
        }
        Some(values)
    }

    /// Builds a path from variable values (client side). `value_of` returns the string value of
    /// a field path; a value must match the variable's pattern.
    pub fn expand(&self, mut value_of: impl FnMut(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        let mut i = 0;
        while i < self.segments.len() {
            out.push('/');
            if let Some(var) = self.variables.iter().find(|v| v.start == i) {
                let value = value_of(&var.field_path)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("field `{}` is bound to the path and must be set", var.field_path))?;
                let covered = &self.segments[var.start..var.end];
                if covered.len() == 1 && covered[0] == Segment::Single {
                    out.extend(utf8_percent_encode(&value, SEGMENT));
                } else {
                    let parts: Vec<&str> = value.split('/').collect();
                    if !pattern_accepts(covered, &parts) {
                        return Err(format!(
                            "field `{}` = `{value}` does not match the path pattern `{}`",
                            var.field_path,
                            render(covered)
                        ));
                    }
                    let encoded: Vec<String> = parts.iter().map(|p| utf8_percent_encode(p, SEGMENT).to_string()).collect();
                    out.push_str(&encoded.join("/"));
                }
                i = var.end.max(i + 1);
            } else {
                match &self.segments[i] {
                    Segment::Literal(lit) => out.push_str(lit),
                    _ => return Err("the path template has a wildcard outside a variable".into()),
                }
                i += 1;
            }
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        Ok(out)
    }
}

/// Characters escaped inside one path segment (RFC 3986 unreserved stay as they are).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn split_verb(rest: &str) -> (&str, Option<&str>) {
    let mut depth = 0usize;
    let mut last_slash = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => last_slash = i,
            _ => {}
        }
    }
    let tail = &rest[last_slash..];
    let mut depth = 0usize;
    for (i, c) in tail.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => return (&rest[..last_slash + i], Some(&tail[i + 1..])),
            _ => {}
        }
    }
    (rest, None)
}

fn parse_segment(seg: &str) -> Result<Segment, String> {
    Ok(match seg {
        "*" => Segment::Single,
        "**" => Segment::Multi,
        "" => return Err("empty segment".into()),
        lit if lit.contains(['*', '{', '}', '=']) => return Err(format!("`{lit}` is not a literal segment")),
        lit => Segment::Literal(lit.to_owned()),
    })
}

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
                if parts.get(i) != Some(&lit.as_str()) {
                    return false;
                }
                i += 1;
            }
            Segment::Single => {
                if parts.get(i).is_none_or(|p| p.is_empty()) {
                    return false;
                }
                i += 1;
            }
            Segment::Multi => return true,
        }
    }
    i == parts.len()
}

fn render(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.as_str(),
            Segment::Single => "*",
            Segment::Multi => "**",
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> PathTemplate {
        PathTemplate::parse(s).unwrap()
    }

    #[test]
    fn simple_variables_and_field_paths() {
        let tpl = t("/v1/shelves/{shelf}/books/{book.id}");
        let m = tpl.matches("/v1/shelves/1/books/a%20b").unwrap();
        assert_eq!(m, vec![("shelf", "1".to_owned()), ("book.id", "a b".to_owned())]);
        assert!(tpl.matches("/v1/shelves/1/books").is_none());
        assert!(tpl.matches("/v1/shelves/1/books/2/x").is_none());
        assert!(tpl.matches("/v1/shelves//books/2").is_none());
    }

    #[test]
    fn segment_patterns_and_double_star() {
        let tpl = t("/v1/{name=shelves/*/books/*}");
        assert_eq!(tpl.matches("/v1/shelves/s1/books/b2").unwrap(), vec![("name", "shelves/s1/books/b2".to_owned())]);
        assert!(tpl.matches("/v1/shelves/s1").is_none());
        assert!(tpl.matches("/v1/shelves/s1/magazines/b2").is_none());
        let tpl = t("/v1/{name=files/**}");
        assert_eq!(tpl.matches("/v1/files/a/b/c").unwrap(), vec![("name", "files/a/b/c".to_owned())]);
        assert_eq!(tpl.matches("/v1/files").unwrap(), vec![("name", "files".to_owned())]);
        let tpl = t("/v1/{path=**}");
        assert_eq!(tpl.matches("/v1/a%2Fb/c").unwrap(), vec![("path", "a%2Fb/c".to_owned())]);
    }

    #[test]
    fn verbs() {
        let tpl = t("/v1/{name=operations/*}:cancel");
        assert_eq!(tpl.verb.as_deref(), Some("cancel"));
        assert_eq!(tpl.matches("/v1/operations/7:cancel").unwrap(), vec![("name", "operations/7".to_owned())]);
        assert!(tpl.matches("/v1/operations/7").is_none());
        assert!(tpl.matches("/v1/operations/7:delete").is_none());
        let tpl = t("/v1/shelves:search");
        assert!(tpl.matches("/v1/shelves:search").is_some());
        assert!(tpl.matches("/v1/shelves").is_none());
        // A colon in a variable value of a verb-less template is data.
        assert_eq!(t("/v1/{name}").matches("/v1/a:b").unwrap(), vec![("name", "a:b".to_owned())]);
    }

    #[test]
    fn bad_templates_are_errors() {
        for bad in ["v1/x", "/v1/{", "/v1/{}", "/v1/**/x", "/v1/x:", "/v1/a{b}", "/v1/{a}/{a}", "/v1//x"] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expand_builds_paths_and_checks_patterns() {
        let tpl = t("/v1/{name=shelves/*/books/*}:move");
        let path = tpl.expand(|f| (f == "name").then(|| "shelves/1/books/a b".to_owned())).unwrap();
        assert_eq!(path, "/v1/shelves/1/books/a%20b:move");
        assert!(tpl.expand(|_| Some("shelves/1".to_owned())).unwrap_err().contains("does not match"));
        assert!(tpl.expand(|_| None).unwrap_err().contains("must be set"));
        let tpl = t("/v1/users/{id}");
        assert_eq!(tpl.expand(|_| Some("a/b".into())).unwrap(), "/v1/users/a%2Fb");
        assert_eq!(tpl.matches("/v1/users/a%2Fb").unwrap()[0].1, "a/b");
    }
}
