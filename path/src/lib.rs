//! HTTP path templates for switchboard: ONE parser for both kinds of route switchboard serves,
//! shared by the runtime (which matches requests), the code generator and the `#[service]` macro
//! (which reject a template that cannot work where it is written).
//!
//! Both kinds lower into one [`Template`]: a list of [`Segment`]s, the [`Variable`]s they bind,
//! and an optional custom verb.
//!
//! - **google.api.http** ([`Template::parse_http`], googleapis `google/api/http.proto`):
//!
//!   ```text
//!   Template = "/" Segments [ Verb ] ;      Segment  = "*" | "**" | LITERAL | Variable ;
//!   Segments = Segment { "/" Segment } ;    Variable = "{" FieldPath [ "=" Segments ] "}" ;
//!   Verb     = ":" LITERAL ;                FieldPath = IDENT { "." IDENT } ;
//!   ```
//!
//!   `{var}` is `{var=*}`. `*` matches one non-empty segment, `**` zero or more (at most one
//!   `**`; the spec puts it last, googleapis also before further segments). A
//!   variable may span several segments (`{name=shelves/*/books/*}`).
//! - **OpenAPI paths** ([`Template::parse_openapi`]): literal text with `{name}` variables; a
//!   variable matches part of one segment (never a `/`), and one segment may hold several
//!   variables between literal text (`{base}...{head}`, `{name}.{ext}`). Names are any text but
//!   `{` and `}`.
//!
//! In both, a `:` after the last `/` (and after the last `}` of that segment) starts the custom
//! verb (`/v1/{name=operations/*}:cancel`, `/v1/shelves/{shelf}:watch`): the verb is part of the
//! route, so a request for `…:cancel` never matches a plain variable segment of another route
//! when some route declares that verb.
//!
//! [`Template::match_path`] matches one template against a request path and reports where each
//! variable sits in it ([`Captures`], byte ranges, still percent-encoded); routers index many
//! templates by segment and use it once on the route they picked.

#![deny(missing_docs)]

use std::fmt;
use std::ops::Range;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Exactly this text (as in the URI, still percent-encoded). OpenAPI paths may have empty
    /// literal segments (the root path `/`, a trailing `/`).
    Literal(Box<str>),
    /// `*`, `{var}` (google.api.http) or a whole-segment `{name}` (OpenAPI): any one non-empty
    /// segment.
    Any,
    /// `**`: zero or more segments (as few as let the rest match); at most one per template.
    Rest,
    /// Literal text and variables within one segment (OpenAPI `{base}...{head}`): at least one
    /// variable, never two side by side.
    Pattern(Box<[Piece]>),
}

/// One piece of a [`Segment::Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Literal text.
    Lit(Box<str>),
    /// A variable: at least one character, the shortest run that lets the rest match.
    Var,
}

/// A variable of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable<'a> {
    /// The name: a dotted field path (google.api.http) or the OpenAPI parameter name.
    pub name: &'a str,
    /// First segment it covers.
    pub start: usize,
    /// One past the last segment it covers.
    pub end: usize,
    /// Whether it is one piece of a [`Segment::Pattern`] (then `end == start + 1`).
    pub partial: bool,
}

/// Where a template comes from (it decides nothing about matching, only how values are read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// A google.api.http rule.
    Http,
    /// An OpenAPI path.
    OpenApi,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<'a> {
    /// The text it was parsed from (without any base path).
    pub source: &'a str,
    /// Which grammar it was parsed with.
    pub syntax: Syntax,
    /// The segments, variables flattened in.
    pub segments: Vec<Segment>,
    /// The variables, in the order they appear.
    pub variables: Vec<Variable<'a>>,
    /// The custom verb after `:`, if any.
    pub verb: Option<&'a str>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template.
    pub template: String,
    /// Byte offset in the template where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path template `{}`: {}", self.template, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Splits the verb off the last segment: the text after the last `:` that follows the last `/`
/// and the last `}` (so a `:` inside a variable is not one). `rest` is the template or path
/// after its leading `/`.
fn split_verb(rest: &str) -> (&str, Option<&str>) {
    let mut depth = 0usize;
    let mut last_slash = 0usize;
    let mut after = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                after = i + 1;
            }
            '/' if depth == 0 => {
                last_slash = i + 1;
                after = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return (rest, None);
    }
    let from = after.max(last_slash);
    match rest[from..].rfind(':') {
        Some(i) => (&rest[..from + i], Some(&rest[from + i + 1..])),
        None => (rest, None),
    }
}

/// `path` with every `{name}` turned into `{}`: the shape two OpenAPI paths share when they
/// differ only in their variables' names (`/pets/{id}` and `/pets/{petId}` are both `/pets/{}`).
pub fn blank_params(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits a request path (after its leading `/`) into the path and a candidate verb: the text
/// after the last `:` of the last segment.
pub fn split_request_verb(rest: &str) -> Option<(&str, &str)> {
    let last = rest.rfind('/').map_or(0, |i| i + 1);
    let colon = rest[last..].rfind(':')? + last;
    Some((&rest[..colon], &rest[colon + 1..]))
}

impl<'a> Template<'a> {
    /// Parses a google.api.http path template.
    pub fn parse_http(template: &'a str) -> Result<Self, TemplateError> {
        let err = |offset: usize, message: String| TemplateError { template: template.to_owned(), offset, message };
        let rest = template.strip_prefix('/').ok_or_else(|| err(0, "must start with `/`".into()))?;
        let (path, verb) = split_verb(rest);
        let mut segments = Vec::new();
        let mut variables: Vec<Variable<'a>> = Vec::new();
        let mut chars = path;
        let at = |s: &str| template.len() - verb.map_or(0, |v| v.len() + 1) - s.len();
        loop {
            if let Some(inner) = chars.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| err(at(chars), "unclosed `{`".into()))?;
                let body = &inner[..close];
                let (field_path, pattern) = match body.split_once('=') {
                    Some((f, p)) => (f, p),
                    None => (body, "*"),
                };
                if field_path.is_empty()
                    || !field_path.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    return Err(err(at(inner), format!("`{field_path}` is not a field path")));
                }
                if variables.iter().any(|v| v.name == field_path) {
                    return Err(err(at(inner), format!("`{field_path}` is bound twice")));
                }
                let start = segments.len();
                for seg in pattern.split('/') {
                    segments.push(http_segment(seg).map_err(|m| err(at(inner), m))?);
                }
                variables.push(Variable { name: field_path, start, end: segments.len(), partial: false });
                chars = &inner[close + 1..];
            } else {
                let end = chars.find('/').unwrap_or(chars.len());
                let seg = &chars[..end];
                if seg.contains(['{', '}']) {
                    return Err(err(at(chars), "a variable must be a whole segment".into()));
                }
                segments.push(http_segment(seg).map_err(|m| err(at(chars), m))?);
                chars = &chars[end..];
            }
            match chars.strip_prefix('/') {
                Some(next) => chars = next,
                None if chars.is_empty() => break,
                None => return Err(err(at(chars), "a variable must be a whole segment".into())),
            }
        }
        // googleapis puts `**` before further segments too (Firestore's
        // `{parent=projects/*/databases/*/documents/*/**}/{collection_id}`); one is enough.
        if segments.iter().filter(|s| **s == Segment::Rest).count() > 1 {
            return Err(err(0, "at most one `**`".into()));
        }
        if let Some(verb) = verb {
            if verb.is_empty() {
                return Err(err(template.len(), "empty verb after `:`".into()));
            }
            if verb.contains(['{', '}', '*', '=']) {
                return Err(err(template.len() - verb.len(), format!("`{verb}` is not a verb")));
            }
        }
        Ok(Template { source: template, syntax: Syntax::Http, segments, variables, verb })
    }

    /// Parses an OpenAPI path, served under `prefix` (a base path such as `/v1`, or empty),
    /// whose segments come first as literals.
    pub fn parse_openapi(prefix: &str, path: &'a str) -> Result<Self, TemplateError> {
        let err = |offset: usize, message: String| TemplateError { template: path.to_owned(), offset, message };
        let rest = path.strip_prefix('/').ok_or_else(|| err(0, "must start with `/`".into()))?;
        let (body, verb) = split_verb(rest);
        let verb = verb.filter(|v| !v.is_empty());
        let body = if verb.is_some() { body } else { rest };
        let mut segments: Vec<Segment> =
            prefix.split('/').filter(|s| !s.is_empty()).map(|s| Segment::Literal(s.into())).collect();
        let mut variables: Vec<Variable<'a>> = Vec::new();
        let mut offset = 1;
        for seg in body.split('/') {
            let index = segments.len();
            if !seg.contains(['{', '}']) {
                segments.push(Segment::Literal(seg.into()));
                offset += seg.len() + 1;
                continue;
            }
            let mut pieces = Vec::new();
            let mut text = seg;
            while !text.is_empty() {
                let here = offset + (seg.len() - text.len());
                if let Some(inner) = text.strip_prefix('{') {
                    let close = inner.find('}').ok_or_else(|| err(here, format!("unclosed `{{` in segment `{seg}`")))?;
                    let name = &inner[..close];
                    if name.is_empty() || name.contains('{') {
                        return Err(err(here, format!("`{{{name}}}` is not a variable")));
                    }
                    if matches!(pieces.last(), Some(Piece::Var)) {
                        return Err(err(here, format!("segment `{seg}`: two variables need literal text between them")));
                    }
                    if variables.iter().any(|v| v.name == name) {
                        return Err(err(here, format!("`{{{name}}}` appears twice")));
                    }
                    variables.push(Variable { name, start: index, end: index + 1, partial: true });
                    pieces.push(Piece::Var);
                    text = &inner[close + 1..];
                } else {
                    let end = text.find(['{', '}']).unwrap_or(text.len());
                    if text[end..].starts_with('}') {
                        return Err(err(here + end, format!("unmatched `}}` in segment `{seg}`")));
                    }
                    pieces.push(Piece::Lit(text[..end].into()));
                    text = &text[end..];
                }
            }
            if let [Piece::Var] = pieces[..] {
                // A whole-segment variable is the same segment as google.api.http's `*`.
                if let Some(v) = variables.last_mut() {
                    v.partial = false;
                }
                segments.push(Segment::Any);
            } else {
                segments.push(Segment::Pattern(pieces.into()));
            }
            offset += seg.len() + 1;
        }
        Ok(Template { source: path, syntax: Syntax::OpenApi, segments, variables, verb })
    }

    /// Whether the template has no variables, wildcards or verb: it matches one path only.
    pub fn is_literal(&self) -> bool {
        self.verb.is_none() && self.segments.iter().all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The one path a literal template matches (`None` unless [`Self::is_literal`]).
    pub fn literal_path(&self) -> Option<String> {
        if !self.is_literal() {
            return None;
        }
        let mut out = String::new();
        for s in &self.segments {
            if let Segment::Literal(l) = s {
                out.push('/');
                out.push_str(l);
            }
        }
        Some(out)
    }

    /// Matches a request path (percent-encoded, with its leading `/` and any `:verb`), pushing
    /// each variable's byte range in `path` to `caps`, in variable order. A variable covering
    /// several segments covers the `/`s between them; one of a `**` that matched nothing is an
    /// empty range.
    pub fn match_path(&self, path: &str, caps: &mut Captures) -> bool {
        let Some(rest) = path.strip_prefix('/') else { return false };
        let stem = match self.verb {
            Some(verb) => match split_request_verb(rest) {
                Some((stem, v)) if v == verb => stem,
                _ => return false,
            },
            None => rest,
        };
        self.match_stem(stem, 1, caps)
    }

    /// As [`Self::match_path`], for the path after its leading `/` with the verb already split
    /// off (`stem`), which starts at byte `base` of the request path.
    pub fn match_stem(&self, stem: &str, base: usize, caps: &mut Captures) -> bool {
        let at = Cursor { rest: Some(stem), pos: base, last_end: base };
        self.match_from(0, at, 0, None, caps)
    }

    /// Matches segments `j..` at `at`; `next_var` is the next variable to capture and `open` the
    /// start of a whole-segment variable being matched. A `**` takes as few segments as it can.
    fn match_from(&self, j: usize, at: Cursor<'_>, next_var: usize, open: Option<usize>, caps: &mut Captures) -> bool {
        let Some(seg) = self.segments.get(j) else { return at.rest.is_none() };
        let mark = caps.len();
        let mut open = open;
        if self.variables.get(next_var).is_some_and(|v| !v.partial && v.start == j) {
            open = Some(if at.rest.is_some() { at.pos } else { at.last_end });
        }
        // Closes a variable that ends with this segment, then matches the rest.
        let finish = |to: Cursor<'_>, mut next_var: usize, caps: &mut Captures| -> bool {
            let mut open = open;
            if let Some(from) = open {
                if self.variables[next_var].end == j + 1 {
                    caps.push(from..to.last_end.max(from));
                    open = None;
                    next_var += 1;
                }
            }
            if self.match_from(j + 1, to, next_var, open, caps) {
                return true;
            }
            caps.truncate(mark);
            false
        };
        if *seg == Segment::Rest {
            let mut to = at;
            loop {
                if finish(to, next_var, caps) {
                    return true;
                }
                match to.next() {
                    Some(further) => to = further.1,
                    None => return false,
                }
            }
        }
        let Some((text, to)) = at.next() else { return false };
        let mut vars_here = 0;
        let ok = match seg {
            Segment::Literal(l) => **l == *text,
            Segment::Any => !text.is_empty(),
            Segment::Pattern(pieces) => {
                vars_here = pieces.iter().filter(|p| **p == Piece::Var).count();
                match_pieces(pieces, text, at.pos, caps)
            }
            Segment::Rest => false,
        };
        if !ok {
            caps.truncate(mark);
            return false;
        }
        finish(to, next_var + vars_here, caps)
    }
}

/// Where a match is in the request path.
#[derive(Clone, Copy)]
struct Cursor<'p> {
    /// The path still to match; `None` once every segment is consumed.
    rest: Option<&'p str>,
    /// Byte offset of `rest` in the request path.
    pos: usize,
    /// Where the last consumed segment ended.
    last_end: usize,
}

impl<'p> Cursor<'p> {
    /// The next segment and the cursor after it.
    fn next(self) -> Option<(&'p str, Cursor<'p>)> {
        let rest = self.rest?;
        let (text, next) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let last_end = self.pos + text.len();
        Some((text, Cursor { rest: next, pos: last_end + 1, last_end }))
    }
}

fn http_segment(seg: &str) -> Result<Segment, String> {
    Ok(match seg {
        "*" => Segment::Any,
        "**" => Segment::Rest,
        "" => return Err("empty segment".into()),
        lit if lit.contains(['*', '{', '}', '=']) => return Err(format!("`{lit}` is not a literal segment")),
        lit => Segment::Literal(lit.into()),
    })
}

/// Matches one segment against a pattern, pushing each variable's range (`offset` is the
/// segment's byte offset in the path). A variable takes at least one character and, when literal
/// text follows, the shortest run that lets the rest of the segment match.
pub fn match_pieces(pieces: &[Piece], seg: &str, offset: usize, caps: &mut Captures) -> bool {
    match pieces.split_first() {
        None => seg.is_empty(),
        Some((Piece::Lit(lit), rest)) => {
            seg.starts_with(&**lit) && match_pieces(rest, &seg[lit.len()..], offset + lit.len(), caps)
        }
        Some((Piece::Var, rest)) => {
            let Some(first) = seg.chars().next() else { return false };
            match rest.first() {
                None => {
                    caps.push(offset..offset + seg.len());
                    true
                }
                Some(Piece::Lit(lit)) => {
                    let mark = caps.len();
                    let mut from = first.len_utf8();
                    while let Some(i) = seg[from..].find(&**lit) {
                        let at = from + i;
                        caps.push(offset..offset + at);
                        if match_pieces(rest, &seg[at..], offset + at, caps) {
                            return true;
                        }
                        caps.truncate(mark);
                        from = at + seg[at..].chars().next().map_or(1, char::len_utf8);
                    }
                    false
                }
                // The parser never puts two variables side by side.
                Some(Piece::Var) => false,
            }
        }
    }
}

/// Literal characters of a pattern: routers try patterns with more first.
pub fn literal_len(pieces: &[Piece]) -> usize {
    pieces.iter().map(|p| if let Piece::Lit(l) = p { l.len() } else { 0 }).sum()
}

/// Captured variables: byte ranges of the request path, in template order. The first few live
/// inline (no allocation per request); more spill to the heap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    len: usize,
    inline: [(u32, u32); INLINE],
    spill: Vec<Range<usize>>,
}

const INLINE: usize = 6;

impl Captures {
    /// Adds a range.
    pub fn push(&mut self, range: Range<usize>) {
        match (u32::try_from(range.start), u32::try_from(range.end)) {
            (Ok(a), Ok(b)) if self.len < INLINE && self.spill.is_empty() => self.inline[self.len] = (a, b),
            _ => {
                if self.spill.is_empty() {
                    self.spill.extend(self.inline[..self.len].iter().map(|&(a, b)| a as usize..b as usize));
                }
                self.spill.push(range);
            }
        }
        self.len += 1;
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the first `len` ranges.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            if !self.spill.is_empty() {
                self.spill.truncate(len);
            }
        }
    }

    /// The ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let inline = self.spill.is_empty().then(|| self.inline[..self.len].iter().map(|&(a, b)| a as usize..b as usize));
        inline.into_iter().flatten().chain(self.spill.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'p>(t: &Template<'_>, path: &'p str) -> Option<Vec<&'p str>> {
        let mut caps = Captures::default();
        t.match_path(path, &mut caps).then(|| caps.iter().map(|r| &path[r]).collect())
    }

    #[test]
    fn http_templates() {
        let t = Template::parse_http("/v1/shelves/{shelf}/books/{book.id}").unwrap();
        assert_eq!(t.variables.iter().map(|v| v.name).collect::<Vec<_>>(), ["shelf", "book.id"]);
        assert_eq!(vars(&t, "/v1/shelves/1/books/a%20b"), Some(vec!["1", "a%20b"]));
        assert_eq!(vars(&t, "/v1/shelves/1/books"), None);
        assert_eq!(vars(&t, "/v1/shelves//books/2"), None);
        let t = Template::parse_http("/v1/{name=shelves/*/books/*}:move").unwrap();
        assert_eq!(t.verb, Some("move"));
        assert_eq!(vars(&t, "/v1/shelves/s1/books/b2:move"), Some(vec!["shelves/s1/books/b2"]));
        assert_eq!(vars(&t, "/v1/shelves/s1/books/b2"), None);
        let t = Template::parse_http("/v1/{name=files/**}").unwrap();
        assert_eq!(vars(&t, "/v1/files/a/b"), Some(vec!["files/a/b"]));
        assert_eq!(vars(&t, "/v1/files"), Some(vec!["files"]));
        let t = Template::parse_http("/v1/{path=**}").unwrap();
        assert_eq!(vars(&t, "/v1"), Some(vec![""]));
        let t = Template::parse_http("/v1/*/{x}").unwrap();
        assert_eq!(vars(&t, "/v1/a/b"), Some(vec!["b"]));
        let t = Template::parse_http("/v1/{parent=projects/*/documents/*/**}/{collection_id}").unwrap();
        assert_eq!(vars(&t, "/v1/projects/p/documents/d/c1/d1/c2"), Some(vec!["projects/p/documents/d/c1/d1", "c2"]));
        assert_eq!(vars(&t, "/v1/projects/p/documents/d/c2"), Some(vec!["projects/p/documents/d", "c2"]));
        assert_eq!(vars(&t, "/v1/projects/p/documents/d"), None);
        let t = Template::parse_http("/v1/{p=**}/x").unwrap();
        assert_eq!(vars(&t, "/v1/x"), Some(vec![""]));
        assert_eq!(vars(&t, "/v1/a/x/x"), Some(vec!["a/x"]));
        for bad in ["v1/x", "/v1/{", "/v1/{}", "/v1/**/x/**", "/v1/x:", "/v1/a{b}", "/v1/{a}/{a}", "/v1//x", "/v1/{a=b}c"] {
            assert!(Template::parse_http(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn openapi_templates() {
        let t = Template::parse_openapi("/v1", "/repos/{owner}/{repo}/compare/{base}...{head}").unwrap();
        assert_eq!(t.segments[0], Segment::Literal("v1".into()));
        assert_eq!(t.segments[2], Segment::Any);
        assert_eq!(vars(&t, "/v1/repos/o/r/compare/v1.0...feature.x"), Some(vec!["o", "r", "v1.0", "feature.x"]));
        let t = Template::parse_openapi("", "/things/{id}:cancel").unwrap();
        assert_eq!((t.verb, &t.segments[1]), (Some("cancel"), &Segment::Any));
        let t = Template::parse_openapi("", "/a/{x}:{y}").unwrap();
        assert_eq!(t.verb, None);
        let t = Template::parse_openapi("", "/").unwrap();
        assert_eq!(vars(&t, "/"), Some(vec![]));
        for bad in ["a", "/a/{", "/a/{}", "/a/{x}{y}", "/a/{x}/{x}", "/a/b}"] {
            assert!(Template::parse_openapi("", bad).is_err(), "{bad}");
        }
    }
}
