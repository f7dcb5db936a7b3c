//! OpenAPI path templates and the index that finds them.
//!
//! An OpenAPI template is literal text with `{name}` variables; a variable matches part of one
//! segment (never a `/`), and one segment may hold several variables between literal text
//! (`/repos/{owner}/{repo}/compare/{base}...{head}`, `/files/{name}.{ext}`). Variable names are
//! any text but `}` (`{pet-id}`, `{api.version}`).
//!
//! [`ApiTrie`] indexes every template by segment: one node per literal segment or segment
//! pattern, so a lookup costs one step per request segment, whatever the number of operations.
//! At each step whole literal segments are tried before patterns, patterns with more literal text
//! before plainer ones, and a plain `{var}` last; the search backtracks, so `/pets/mine` wins
//! over `/pets/{id}`, and `DELETE /pets/mine` still reaches `DELETE /pets/{id}` when only `GET`
//! is bound to the literal path. Variables are captured as byte ranges of the request path, still
//! percent-encoded.

use std::ops::Range;

use super::template::TemplateError;

/// One piece of a segment pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Piece {
    /// Literal text.
    Lit(Box<str>),
    /// A variable.
    Var,
}

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// The whole segment is this text.
    Lit(Box<str>),
    /// Literal text and variables (at least one variable, never two side by side).
    Pattern(Vec<Piece>),
}

/// A parsed OpenAPI path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTemplate {
    segs: Vec<Seg>,
    /// Variable names in the order they appear.
    pub names: Vec<&'static str>,
}

impl ApiTemplate {
    /// Parses `path` (from the operation table), served under `prefix` (a base path such as
    /// `/v1`, or empty).
    pub fn parse(prefix: &str, path: &'static str) -> Result<Self, TemplateError> {
        let err = |message: String| TemplateError { template: path.to_owned(), message };
        let rest = path.strip_prefix('/').ok_or_else(|| err("must start with `/`".into()))?;
        let mut segs: Vec<Seg> = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| Seg::Lit(s.into()))
            .collect();
        let mut names = Vec::new();
        for seg in rest.split('/') {
            if !seg.contains(['{', '}']) {
                segs.push(Seg::Lit(seg.into()));
                continue;
            }
            let mut pieces = Vec::new();
            let mut text = seg;
            while !text.is_empty() {
                if let Some(inner) = text.strip_prefix('{') {
                    let close = inner.find('}').ok_or_else(|| err(format!("unclosed `{{` in segment `{seg}`")))?;
                    let name = &inner[..close];
                    if name.is_empty() || name.contains('{') {
                        return Err(err(format!("`{{{name}}}` is not a variable")));
                    }
                    if matches!(pieces.last(), Some(Piece::Var)) {
                        return Err(err(format!("segment `{seg}`: two variables need literal text between them")));
                    }
                    if names.contains(&name) {
                        return Err(err(format!("`{{{name}}}` appears twice")));
                    }
                    names.push(name);
                    pieces.push(Piece::Var);
                    text = &inner[close + 1..];
                } else {
                    let end = text.find(['{', '}']).unwrap_or(text.len());
                    if text[end..].starts_with('}') {
                        return Err(err(format!("unmatched `}}` in segment `{seg}`")));
                    }
                    pieces.push(Piece::Lit(text[..end].into()));
                    text = &text[end..];
                }
            }
            segs.push(Seg::Pattern(pieces));
        }
        Ok(ApiTemplate { segs, names })
    }
}

/// Literal characters of a pattern: patterns with more are tried first.
fn literal_len(pieces: &[Piece]) -> usize {
    pieces.iter().map(|p| if let Piece::Lit(l) = p { l.len() } else { 0 }).sum()
}

#[derive(Debug, Default)]
struct Node {
    /// Literal children, sorted by text.
    literals: Vec<(Box<str>, usize)>,
    /// Pattern children, most specific first.
    patterns: Vec<(Vec<Piece>, usize)>,
    /// Routes ending here: HTTP method and the caller's route index.
    routes: Vec<(http::Method, usize)>,
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
    fn push(&mut self, range: Range<usize>) {
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

    fn truncate(&mut self, len: usize) {
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

/// The result of looking up a request path.
#[derive(Debug, PartialEq, Eq)]
pub enum TrieLookup {
    /// A route with this method matched: its index and the variables' byte ranges in the path,
    /// in template order.
    Found(usize, Captures),
    /// The path matches routes, none with this method: the methods that would match.
    MethodNotAllowed(Vec<http::Method>),
    /// No template matches the path.
    NotFound,
}

/// Every OpenAPI template of a router, indexed by segment.
#[derive(Debug)]
pub struct ApiTrie {
    nodes: Vec<Node>,
}

impl Default for ApiTrie {
    fn default() -> Self {
        ApiTrie { nodes: vec![Node::default()] }
    }
}

impl ApiTrie {
    /// Whether no route was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1 && self.nodes[0].routes.is_empty()
    }

    /// Adds `template` for `method` as route `route`. Returns the route already there when
    /// another template of the same shape has the same method.
    pub fn insert(&mut self, template: &ApiTemplate, method: http::Method, route: usize) -> Result<(), usize> {
        let mut node = 0;
        for seg in &template.segs {
            node = match seg {
                Seg::Lit(text) => match self.nodes[node].literals.binary_search_by(|(t, _)| (**t).cmp(text)) {
                    Ok(i) => self.nodes[node].literals[i].1,
                    Err(i) => {
                        let child = self.push();
                        self.nodes[node].literals.insert(i, (text.clone(), child));
                        child
                    }
                },
                Seg::Pattern(pieces) => match self.nodes[node].patterns.iter().find(|(p, _)| p == pieces) {
                    Some((_, child)) => *child,
                    None => {
                        let child = self.push();
                        let patterns = &mut self.nodes[node].patterns;
                        let len = literal_len(pieces);
                        // Stable: equally specific patterns keep declaration order.
                        let at = patterns.iter().position(|(p, _)| literal_len(p) < len).unwrap_or(patterns.len());
                        patterns.insert(at, (pieces.clone(), child));
                        child
                    }
                },
            };
        }
        if let Some((_, other)) = self.nodes[node].routes.iter().find(|(m, _)| *m == method) {
            return Err(*other);
        }
        self.nodes[node].routes.push((method, route));
        Ok(())
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Finds the route for `method` and `path` (the request path, percent-encoded).
    pub fn lookup(&self, method: &http::Method, path: &str) -> TrieLookup {
        let Some(rest) = path.strip_prefix('/') else { return TrieLookup::NotFound };
        let mut caps = Captures::default();
        let mut allowed = Vec::new();
        match self.walk(0, rest, 1, method, &mut caps, &mut allowed) {
            Some(route) => TrieLookup::Found(route, caps),
            None if allowed.is_empty() => TrieLookup::NotFound,
            None => TrieLookup::MethodNotAllowed(allowed),
        }
    }

    /// Matches the segment starting at `rest` (at byte `offset` of the path) below `node`.
    fn walk(
        &self,
        node: usize,
        rest: &str,
        offset: usize,
        method: &http::Method,
        caps: &mut Captures,
        allowed: &mut Vec<http::Method>,
    ) -> Option<usize> {
        let n = &self.nodes[node];
        let (seg, next) = match rest.bytes().position(|b| b == b'/') {
            Some(i) => (&rest[..i], Some((&rest[i + 1..], offset + i + 1))),
            None => (rest, None),
        };
        let step = |child: usize, caps: &mut Captures, allowed: &mut Vec<http::Method>| match next {
            Some((rest, offset)) => self.walk(child, rest, offset, method, caps, allowed),
            None => {
                let routes = &self.nodes[child].routes;
                if let Some((_, route)) = routes.iter().find(|(m, _)| m == method) {
                    return Some(*route);
                }
                for (m, _) in routes {
                    if !allowed.contains(m) {
                        allowed.push(m.clone());
                    }
                }
                None
            }
        };
        let literal = if n.literals.len() <= 8 {
            n.literals.iter().find(|(t, _)| t.len() == seg.len() && **t == *seg).map(|(_, c)| *c)
        } else {
            n.literals.binary_search_by(|(t, _)| (**t).cmp(seg)).ok().map(|i| n.literals[i].1)
        };
        if let Some(child) = literal {
            if let Some(route) = step(child, caps, allowed) {
                return Some(route);
            }
        }
        for (pieces, child) in &n.patterns {
            let mark = caps.len;
            let matched = match &pieces[..] {
                // The usual `{name}` segment.
                [Piece::Var] => {
                    if seg.is_empty() {
                        false
                    } else {
                        caps.push(offset..offset + seg.len());
                        true
                    }
                }
                _ => match_pieces(pieces, seg, offset, caps),
            };
            if matched {
                if let Some(route) = step(*child, caps, allowed) {
                    return Some(route);
                }
            }
            caps.truncate(mark);
        }
        None
    }

    /// The paths of routes without variables (each once).
    pub fn literal_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(0usize, String::new())];
        while let Some((node, path)) = stack.pop() {
            let n = &self.nodes[node];
            if !n.routes.is_empty() && !path.is_empty() {
                out.push(path.clone());
            }
            for (text, child) in &n.literals {
                stack.push((*child, format!("{path}/{text}")));
            }
        }
        out
    }
}

/// Matches one segment against a pattern, pushing each variable's range. A variable takes at
/// least one character and, when literal text follows, the shortest run that lets the rest of
/// the segment match.
fn match_pieces(pieces: &[Piece], seg: &str, offset: usize, caps: &mut Captures) -> bool {
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
                    let mark = caps.len;
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn trie(routes: &[(&str, &'static str)]) -> (ApiTrie, Vec<ApiTemplate>) {
        let mut t = ApiTrie::default();
        let mut templates = Vec::new();
        for (i, (m, p)) in routes.iter().enumerate() {
            let tpl = ApiTemplate::parse("", p).unwrap();
            t.insert(&tpl, Method::from_bytes(m.as_bytes()).unwrap(), i).unwrap();
            templates.push(tpl);
        }
        (t, templates)
    }

    fn found<'p>(t: &ApiTrie, templates: &[ApiTemplate], m: &str, path: &'p str) -> Option<(usize, Vec<(&'static str, &'p str)>)> {
        match t.lookup(&Method::from_bytes(m.as_bytes()).unwrap(), path) {
            TrieLookup::Found(i, caps) => {
                Some((i, templates[i].names.iter().copied().zip(caps.iter().map(|r| &path[r])).collect()))
            }
            _ => None,
        }
    }

    #[test]
    fn literals_beat_variables_and_methods_backtrack() {
        let (t, tpl) = trie(&[("GET", "/pets/{id}"), ("GET", "/pets/mine"), ("DELETE", "/pets/{petId}"), ("GET", "/pets")]);
        assert_eq!(found(&t, &tpl, "GET", "/pets/mine"), Some((1, vec![])));
        assert_eq!(found(&t, &tpl, "GET", "/pets/7"), Some((0, vec![("id", "7")])));
        assert_eq!(found(&t, &tpl, "DELETE", "/pets/mine"), Some((2, vec![("petId", "mine")])));
        assert_eq!(found(&t, &tpl, "GET", "/pets"), Some((3, vec![])));
        assert_eq!(t.lookup(&Method::POST, "/pets/7"), TrieLookup::MethodNotAllowed(vec![Method::GET, Method::DELETE]));
        assert_eq!(t.lookup(&Method::GET, "/pets/7/x"), TrieLookup::NotFound);
        assert_eq!(t.lookup(&Method::GET, "/pets/"), TrieLookup::NotFound, "a variable is never empty");
        assert_eq!(t.lookup(&Method::GET, "/dogs"), TrieLookup::NotFound);
    }

    #[test]
    fn several_variables_in_one_segment() {
        let (t, tpl) = trie(&[
            ("GET", "/repos/{owner}/{repo}/compare/{base}...{head}"),
            ("GET", "/files/{name}.{ext}"),
            ("GET", "/files/{name}"),
            ("GET", "/v{major}.{minor}/x"),
        ]);
        assert_eq!(
            found(&t, &tpl, "GET", "/repos/o/r/compare/v1.0...feature.x"),
            Some((0, vec![("owner", "o"), ("repo", "r"), ("base", "v1.0"), ("head", "feature.x")]))
        );
        assert_eq!(found(&t, &tpl, "GET", "/files/a.tar.gz"), Some((1, vec![("name", "a"), ("ext", "tar.gz")])));
        assert_eq!(found(&t, &tpl, "GET", "/files/readme"), Some((2, vec![("name", "readme")])));
        assert_eq!(found(&t, &tpl, "GET", "/v2.1/x"), Some((3, vec![("major", "2"), ("minor", "1")])));
        assert!(found(&t, &tpl, "GET", "/repos/o/r/compare/...x").is_none());
    }

    #[test]
    fn many_variables_spill_to_the_heap() {
        let (t, tpl) = trie(&[("GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}")]);
        let (_, vars) = found(&t, &tpl, "GET", "/1/2/3/4/5/6/7/8").unwrap();
        assert_eq!(vars.iter().map(|(_, v)| *v).collect::<Vec<_>>(), ["1", "2", "3", "4", "5", "6", "7", "8"]);
        let mut caps = Captures::default();
        for i in 0..9 {
            caps.push(i..i + 1);
        }
        caps.truncate(7);
        assert_eq!(caps.iter().count(), 7);
        assert_eq!(caps.iter().last(), Some(6..7));
    }

    #[test]
    fn names_may_hold_any_text_and_templates_are_checked() {
        let tpl = ApiTemplate::parse("/v1", "/a/{pet-id}/{api.version}").unwrap();
        assert_eq!(tpl.names, vec!["pet-id", "api.version"]);
        assert_eq!(ApiTemplate::parse("/v1/", "/a").unwrap().segs, vec![Seg::Lit("v1".into()), Seg::Lit("a".into())]);
        for bad in ["a", "/a/{", "/a/{}", "/a/{x}{y}", "/a/{x}/{x}", "/a/b}"] {
            assert!(ApiTemplate::parse("", bad).is_err(), "{bad}");
        }
        let mut t = ApiTrie::default();
        t.insert(&ApiTemplate::parse("", "/a/{x}").unwrap(), Method::GET, 0).unwrap();
        assert_eq!(t.insert(&ApiTemplate::parse("", "/a/{y}").unwrap(), Method::GET, 1), Err(0));
        let (t, tpl) = trie(&[("GET", "/"), ("GET", "/a/b")]);
        assert_eq!(found(&t, &tpl, "GET", "/"), Some((0, vec![])));
        let mut paths = t.literal_paths();
        paths.sort();
        assert_eq!(paths, vec!["/", "/a/b"]);
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    #[test]
    #[ignore]
    fn lookup_speed() {
        let mut t = ApiTrie::default();
        for (i, p) in ["/pets", "/pets/mine", "/pets/{petId}", "/pets/{petId}/photo", "/pets/{petId}/data", "/pets/{petId}/name", "/compare/{base}...{head}", "/teapot"].iter().enumerate() {
            t.insert(&ApiTemplate::parse("/v1", p).unwrap(), http::Method::GET, i).unwrap();
        }
        let m = http::Method::GET;
        let start = std::time::Instant::now();
        let mut n = 0;
        for i in 0..1_000_000u32 {
            let path = if i % 2 == 0 { "/v1/pets/123" } else { "/v1/pets/45/name" };
            if let TrieLookup::Found(r, _) = t.lookup(&m, std::hint::black_box(path)) { n += r; }
        }
        eprintln!("{} ns/lookup ({n})", start.elapsed().as_nanos() / 1_000_000);
    }
}
