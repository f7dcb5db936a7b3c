//! google.api.http path templates → OpenAPI paths.
//!
//! The template grammar (googleapis `http.proto`):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! An OpenAPI path parameter is one path segment, so a variable whose pattern spans segments
//! (`{name=shelves/*/books/*}`) becomes literal segments plus one parameter per wildcard
//! (`shelves/{shelf}/books/{book}`), each named after the literal before it.

use std::collections::BTreeSet;

/// A path template turned into an OpenAPI path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The OpenAPI path, e.g. `/v1/shelves/{shelf}/books/{book}:move`.
    pub path: String,
    /// Its parameters, in the order they appear in `path`.
    pub params: Vec<PathParam>,
    /// The fields the path sets (dotted paths of proto field names), including those of
    /// variables without wildcards (`{name=operations}` always sets `name` to `operations`).
    pub bound: BTreeSet<String>,
}

/// One `{parameter}` of an expanded path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParam {
    /// Name in the OpenAPI path.
    pub name: String,
    /// The request field it sets (a dotted path of proto field names); `None` for a wildcard
    /// outside any variable, which matches a segment but sets nothing.
    pub field: Option<String>,
    /// When the parameter is one part of the field's value: the value with every part in braces,
    /// e.g. `shelves/{shelf}/books/{book}`. `None` when the parameter is the whole value.
    pub value: Option<String>,
    /// Whether it may span segments (`**`): its value may contain `/`.
    pub multi_segment: bool,
}

impl Expanded {
    /// The path with every parameter name blanked (`/v1/shelves/{}`): paths that differ only in
    /// parameter names are the same route.
    pub fn route_key(&self) -> String {
        blank_params(&self.path)
    }
}

pub use switchboard_path::blank_params;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Wildcard,
    DoubleWildcard,
    Variable { field: String, pattern: Vec<Segment> },
}

/// Parses and expands a path template. Anything that does not parse is kept as a literal.
pub fn expand(template: &str) -> Expanded {
    let (segments, verb) = parse(template);
    let mut namer = Namer::default();
    // Whole-value variables keep the field's name; reserve those first.
    for s in &segments {
        if let Segment::Variable { field, pattern } = s {
            if is_whole(pattern) {
                namer.used.insert(field.clone());
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut params = Vec::new();
    let bound = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Variable { field, .. } => Some(field.clone()),
            _ => None,
        })
        .collect();
    let mut anonymous = 0;
    for (i, s) in segments.iter().enumerate() {
        match s {
            Segment::Literal(l) => out.push(l.clone()),
            Segment::Wildcard | Segment::DoubleWildcard => {
                anonymous += 1;
                let before = i.checked_sub(1).and_then(|j| match &segments[j] {
                    Segment::Literal(l) => Some(l.as_str()),
                    _ => None,
                });
                let name = namer.name(before, "segment", anonymous);
                out.push(format!("{{{name}}}"));
                params.push(PathParam {
                    name,
                    field: None,
                    value: None,
                    multi_segment: *s == Segment::DoubleWildcard,
                });
            }
            Segment::Variable { field, pattern } if is_whole(pattern) => {
                out.push(format!("{{{field}}}"));
                params.push(PathParam {
                    name: field.clone(),
                    field: Some(field.clone()),
                    value: None,
                    multi_segment: pattern == &[Segment::DoubleWildcard],
                });
            }
            Segment::Variable { field, pattern } => {
                let mut parts = Vec::new();
                let mut mine = Vec::new();
                let mut n = 0;
                for (j, p) in pattern.iter().enumerate() {
                    match p {
                        Segment::Literal(l) => parts.push(l.clone()),
                        Segment::Wildcard | Segment::DoubleWildcard => {
                            n += 1;
                            let before = j.checked_sub(1).and_then(|k| match &pattern[k] {
                                Segment::Literal(l) => Some(l.as_str()),
                                _ => None,
                            });
                            let name = namer.name(before, field, n);
                            parts.push(format!("{{{name}}}"));
                            mine.push(PathParam {
                                name,
                                field: Some(field.clone()),
                                value: None,
                                multi_segment: *p == Segment::DoubleWildcard,
                            });
                        }
                        Segment::Variable { .. } => {}
                    }
                }
                let value = parts.join("/");
                for p in &mut mine {
                    p.value = Some(value.clone());
                }
                out.push(value);
                params.extend(mine);
            }
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if let Some(verb) = verb {
        path.push(':');
        path.push_str(&verb);
    }
    Expanded { path, params, bound }
}

/// Whether a variable's pattern is one whole-value wildcard (`{x}`, `{x=*}`, `{x=**}`).
fn is_whole(pattern: &[Segment]) -> bool {
    matches!(pattern, [Segment::Wildcard] | [Segment::DoubleWildcard])
}

/// Unique parameter names within one path.
#[derive(Default)]
struct Namer {
    used: BTreeSet<String>,
}

impl Namer {
    /// The singular of the literal before a wildcard (`shelves` → `shelf`), else `<var>_<n>`,
    /// made unique with a numeric suffix.
    fn name(&mut self, before: Option<&str>, var: &str, n: usize) -> String {
        let candidates = [before.and_then(singular), Some(format!("{var}_{n}"))];
        let mut name = candidates.iter().flatten().find(|c| !self.used.contains(*c)).cloned();
        if name.is_none() {
            let base = format!("{var}_{n}");
            name = (2..).map(|i| format!("{base}_{i}")).find(|c| !self.used.contains(c));
        }
        let name = name.unwrap_or_default();
        self.used.insert(name.clone());
        name
    }
}

/// A naive English singular of a collection segment, usable as a parameter name.
fn singular(word: &str) -> Option<String> {
    let ok = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return None;
    }
    let s = if let Some(stem) = word.strip_suffix("ies").filter(|s| !s.is_empty()) {
        format!("{stem}y")
    } else if let Some(stem) = word.strip_suffix("lves") {
        format!("{stem}lf")
    } else if let Some(stem) = word.strip_suffix("sses") {
        format!("{stem}ss")
    } else if let Some(stem) = ["xes", "ches", "shes"].iter().find_map(|suffix| word.strip_suffix(suffix).map(|_| word)) {
        stem[..stem.len() - 2].to_owned()
    } else if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        word.to_owned()
    } else if let Some(stem) = word.strip_suffix('s').filter(|s| !s.is_empty()) {
        stem.to_owned()
    } else {
        word.to_owned()
    };
    Some(s)
}

/// Splits a template into segments and its verb, with the runtime's parser (crate
/// `switchboard-path`; codegen has rejected templates it does not accept before rendering).
fn parse(template: &str) -> (Vec<Segment>, Option<String>) {
    let Ok(parsed) = switchboard_path::Template::parse_http(template) else {
        return (vec![Segment::Literal(template.trim_start_matches('/').to_owned())], None);
    };
    let one = |s: &switchboard_path::Segment| match s {
        switchboard_path::Segment::Literal(l) => Segment::Literal(l.to_string()),
        switchboard_path::Segment::Any => Segment::Wildcard,
        switchboard_path::Segment::Rest => Segment::DoubleWildcard,
        // Only OpenAPI paths have patterns.
        switchboard_path::Segment::Pattern(_) => Segment::Wildcard,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < parsed.segments.len() {
        match parsed.variables.iter().find(|v| v.start == i) {
            Some(v) => {
                out.push(Segment::Variable { field: v.name.to_owned(), pattern: parsed.segments[v.start..v.end].iter().map(one).collect() });
                i = v.end.max(i + 1);
            }
            None => {
                out.push(one(&parsed.segments[i]));
                i += 1;
            }
        }
    }
    (out, parsed.verb.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &Expanded) -> Vec<&str> {
        e.params.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn multi_segment_variables_become_literals_and_named_parameters() {
        let e = expand("/v1/{name=shelves/*/books/*}");
        assert_eq!(e.path, "/v1/shelves/{shelf}/books/{book}");
        assert_eq!(names(&e), ["shelf", "book"]);
        assert!(e.params.iter().all(|p| p.field.as_deref() == Some("name")));
        assert_eq!(e.params[0].value.as_deref(), Some("shelves/{shelf}/books/{book}"));
    }

    #[test]
    fn bare_variables_and_verbs() {
        let e = expand("/v1/{product.id}");
        assert_eq!((e.path.as_str(), names(&e)), ("/v1/{product.id}", vec!["product.id"]));
        assert_eq!(e.params[0].value, None);
        let e = expand("/v1/{name=shelves/*}:archive");
        assert_eq!(e.path, "/v1/shelves/{shelf}:archive");
        let e = expand("/v1/{parent=shelves/*}/products:watch");
        assert_eq!(e.path, "/v1/shelves/{shelf}/products:watch");
        assert_eq!(expand("/v1/x:cancel").path, "/v1/x:cancel");
        assert_eq!(expand("/v1/{name=*}").path, "/v1/{name}");
        let e = expand("/v1/{name=operations}");
        assert_eq!((e.path.as_str(), e.params.len()), ("/v1/operations", 0));
        assert!(e.bound.contains("name"));
    }

    #[test]
    fn double_wildcards_may_contain_slashes() {
        let e = expand("/v1/{name=shelves/*/products/**}");
        assert_eq!(e.path, "/v1/shelves/{shelf}/products/{product}");
        assert_eq!(e.params.iter().map(|p| p.multi_segment).collect::<Vec<_>>(), [false, true]);
        let e = expand("/v1/{name=**}");
        assert_eq!(e.path, "/v1/{name}");
        assert!(e.params[0].multi_segment);
    }

    #[test]
    fn names_are_unique_and_fall_back_to_the_variable() {
        let e = expand("/v1/{name=projects/*/projects/*}/{project}");
        assert_eq!(names(&e), ["name_1", "name_2", "project"]);
        let e = expand("/v1/{name=*/things/*}");
        assert_eq!(names(&e), ["name_1", "thing"]);
        let e = expand("/v1/{a=items/*}/{b=items/*}");
        assert_eq!(names(&e), ["item", "b_1"]);
    }

    #[test]
    fn singulars() {
        let s = |w: &str| singular(w).unwrap();
        assert_eq!(
            ["shelves", "archives", "books", "policies", "addresses", "boxes", "branches", "status", "data", "instanceConfigs"].map(s),
            ["shelf", "archive", "book", "policy", "address", "box", "branch", "status", "data", "instanceConfig"]
        );
        assert_eq!(singular("1x"), None);
    }

    #[test]
    fn route_keys_ignore_parameter_names() {
        assert_eq!(expand("/v1/{name=shelves/*}").route_key(), expand("/v1/shelves/{id}").route_key());
    }
}
