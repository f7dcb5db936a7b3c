//! Hostile OpenAPI documents: deep nesting, reference cycles through every combinator, names
//! made of any Unicode, punctuation, digits, keywords and near-duplicates. Whatever comes in,
//! the generator never panics or overflows the stack (this runs on the test harness's small
//! thread stack, in a debug build), and either writes Rust whose items and fields never collide
//! or refuses with a located error.
//!
//! The documents come from a seeded generator, so a failure names a seed that reproduces it.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Map, Value};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Names that have broken generators: Unicode (letters, digits and symbols that are not
/// identifier characters), leading digits, only punctuation, keywords, case and separator
/// variants of each other, the empty string.
const ODD: &[&str] = &[
    "Pet", "pet", "PET", "p_e_t", "p-e-t", "p.e.t", "Pet2", "pet 2", "2pet", "123", "_", "__", "-", "+", "+1", "-1", "*", "@type",
    "$ref", "", " ", "?", "!!", "IoE²", "²", "Ⅻ", "日本語", "日本", "中国", "Café", "Cafe", "cafe\u{301}", "naïve", "ß", "ẞ",
    "🙂", "a🙂b", "self", "Self", "super", "crate", "type", "match", "async", "r#type", "fn", "mod", "Option", "Result",
    "String", "Vec", "Box", "Operations", "operations", "Request", "get_request", "getRequest", "get-request", "Response",
    "Value", "default", "Default", "Ok", "Err", "None", "Some", "\u{200b}", "tab\there", "new\nline", "cr\rhere", "quote\"",
    "back\\slash", "slash/name", "tilde~name", "percent%7Bx", "{brace}", "a{b}c", "ǅ", "ǈ", "İ", "ı", "Σ", "σ", "ς",
];

fn odd(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("{}{}", rng.pick(ODD), rng.pick(ODD)),
        _ => (*rng.pick(ODD)).to_owned(),
    }
}

/// A schema `depth` levels deep (at most), referring to the component names given, with every
/// combinator.
fn schema(rng: &mut Rng, depth: usize, components: &[String]) -> Value {
    if depth == 0 || rng.chance(20) {
        return match rng.below(9) {
            0 if !components.is_empty() => json!({"$ref": format!("#/components/schemas/{}", escape(&components[rng.below(components.len())]))}),
            1 => json!({"$ref": "#/components/schemas/does-not-exist"}),
            2 => json!({"type": "string", "format": rng.pick(&["date-time", "uuid", "byte", "binary", "weird"])}),
            3 => json!({"type": ["integer", "null"]}),
            4 => json!({"enum": (0..rng.below(6)).map(|_| Value::String(odd(rng))).collect::<Vec<_>>()}),
            5 => json!({"enum": [1, "one", null, {"x": 1}]}),
            6 => json!(true),
            7 => json!({"type": rng.pick(&["number", "boolean", "null", "file", "object"])}),
            _ => json!({}),
        };
    }
    let d = depth - 1;
    let mut s = Map::new();
    match rng.below(9) {
        0 | 1 => {
            let mut props = Map::new();
            for _ in 0..rng.below(5) {
                props.insert(odd(rng), schema(rng, d, components));
            }
            let names: Vec<String> = props.keys().cloned().collect();
            s.insert("type".into(), json!("object"));
            s.insert("properties".into(), Value::Object(props));
            if !names.is_empty() {
                s.insert("required".into(), json!([rng.pick(&names)]));
            }
        }
        2 => {
            s.insert("type".into(), json!("array"));
            s.insert("items".into(), schema(rng, d, components));
        }
        3 => {
            s.insert("type".into(), json!("object"));
            s.insert("additionalProperties".into(), schema(rng, d, components));
        }
        4 => {
            s.insert("not".into(), schema(rng, d, components));
        }
        k => {
            let key = ["allOf", "oneOf", "anyOf", "allOf", "oneOf"][k - 4];
            let parts: Vec<Value> = (0..1 + rng.below(3)).map(|_| schema(rng, d, components)).collect();
            s.insert(key.into(), Value::Array(parts));
            if key != "allOf" && rng.chance(30) {
                s.insert("discriminator".into(), json!({"propertyName": odd(rng)}));
            }
        }
    }
    if rng.chance(20) {
        s.insert("title".into(), json!(odd(rng)));
    }
    if rng.chance(20) {
        s.insert("description".into(), json!(format!("{}\r{}\u{2028}{}", odd(rng), odd(rng), odd(rng))));
    }
    if rng.chance(10) {
        s.insert("nullable".into(), json!(true));
    }
    if rng.chance(5) {
        s.insert("x-vendor".into(), json!({"$ref": "missing-file.md"}));
    }
    Value::Object(s)
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A schema nested `levels` deep, built with a loop (no recursion here either).
fn nested(levels: usize, key: &str) -> Value {
    let mut v = json!({"type": "string"});
    for i in 0..levels {
        v = match key {
            "items" => json!({"type": "array", "items": v}),
            "properties" => json!({"type": "object", "properties": {format!("p{i}"): v}}),
            "additionalProperties" => json!({"type": "object", "additionalProperties": v}),
            "not" => json!({"not": v}),
            combinator => json!({combinator: [v, {"type": "object", "properties": {"x": {"type": "string"}}}]}),
        };
    }
    v
}

fn document(rng: &mut Rng) -> Value {
    let mut names: Vec<String> = (0..rng.below(8)).map(|_| odd(rng)).collect();
    names.sort();
    names.dedup();
    let mut schemas = Map::new();
    for name in &names {
        // Cycles: every component may refer to every other, and to itself.
        let depth = 1 + rng.below(5);
        schemas.insert(name.clone(), schema(rng, depth, &names));
    }
    if rng.chance(15) {
        // Deep nesting, through one of the keywords that nest schemas.
        let key = *rng.pick(&["items", "properties", "additionalProperties", "not", "allOf", "oneOf", "anyOf"]);
        schemas.insert("Deep".into(), nested(20 + rng.below(100), key));
        names.push("Deep".into());
    }
    if rng.chance(15) {
        // A long chain of components, each referring to the next.
        let n = 50 + rng.below(150);
        for i in 0..n {
            schemas.insert(format!("Chain{i}"), json!({"type": "object", "properties": {"next": {"$ref": format!("#/components/schemas/Chain{}", i + 1)}}}));
        }
        schemas.insert(format!("Chain{n}"), json!({"allOf": [{"$ref": "#/components/schemas/Chain0"}]}));
        names.push("Chain0".into());
    }
    if rng.chance(10) {
        // allOf and single-part combinators around themselves.
        schemas.insert("Loop".into(), json!({"allOf": [{"$ref": "#/components/schemas/Loop"}]}));
        schemas.insert("Loop2".into(), json!({"oneOf": [{"$ref": "#/components/schemas/Loop3"}]}));
        schemas.insert("Loop3".into(), json!({"anyOf": [{"$ref": "#/components/schemas/Loop2"}, {"type": "null"}]}));
        names.extend(["Loop".to_owned(), "Loop2".to_owned()]);
    }
    let mut paths = Map::new();
    for p in 0..1 + rng.below(5) {
        let path = match rng.below(6) {
            0 => format!("/{}/{{id}}", odd(rng).replace(['{', '}', '/', '?', '#'], "")),
            1 => "/a/{x}{y}".to_owned(),
            2 => "/same/{a}".to_owned(),
            3 => "/same/{b}".to_owned(),
            _ => format!("/p{p}"),
        };
        let mut item = Map::new();
        for method in ["get", "post", "put", "delete"] {
            if !rng.chance(40) {
                continue;
            }
            let mut op = Map::new();
            if rng.chance(85) {
                op.insert("operationId".into(), json!(odd(rng)));
            }
            op.insert("summary".into(), json!(odd(rng)));
            let mut params = Vec::new();
            for v in ["id", "x", "y", "a", "b"] {
                if path.contains(&format!("{{{v}}}")) {
                    params.push(json!({"name": v, "in": "path", "required": true, "schema": schema(rng, 2, &names)}));
                }
            }
            for _ in 0..rng.below(3) {
                params.push(json!({"name": odd(rng), "in": *rng.pick(&["query", "header", "cookie", "body"]), "schema": schema(rng, 3, &names)}));
            }
            op.insert("parameters".into(), Value::Array(params));
            if method != "get" && rng.chance(70) {
                let media = *rng.pick(&["application/json", "multipart/form-data", "text/plain", "application/x-www-form-urlencoded", "*/*"]);
                op.insert("requestBody".into(), json!({"content": {media: {"schema": schema(rng, 4, &names)}}}));
            }
            let mut responses = Map::new();
            for status in ["200", "201", "4XX", "default", "2xx", "bogus"] {
                if rng.chance(40) {
                    responses.insert(status.into(), json!({"description": odd(rng), "content": {"application/json": {"schema": schema(rng, 4, &names)}}}));
                }
            }
            op.insert("responses".into(), Value::Object(responses));
            if rng.chance(10) {
                op.insert("x-docs".into(), json!({"$ref": "./topics/missing.md"}));
            }
            item.insert(method.into(), Value::Object(op));
        }
        paths.insert(path, Value::Object(item));
    }
    json!({
        "openapi": *rng.pick(&["3.0.3", "3.1.0"]),
        "info": {"title": odd(rng), "version": "1", "description": odd(rng)},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Items of one module, by namespace (types: structs, enums, aliases, traits; values: consts,
/// statics, fns, tuple and unit structs), with no name twice; fields and variants likewise.
fn check_names(file: &str, code: &str) {
    let parsed = syn::parse_file(code).unwrap_or_else(|e| panic!("{file} does not parse: {e}"));
    check_items(file, &parsed.items);
}

fn check_items(file: &str, items: &[syn::Item]) {
    let mut types = BTreeSet::new();
    let mut values = BTreeSet::new();
    let add = |set: &mut BTreeSet<String>, name: String| assert!(set.insert(name.clone()), "{file}: `{name}` is defined twice");
    for item in items {
        match item {
            syn::Item::Struct(s) => {
                add(&mut types, s.ident.to_string());
                if !matches!(s.fields, syn::Fields::Named(_)) {
                    add(&mut values, s.ident.to_string());
                }
                let mut fields = BTreeSet::new();
                for f in s.fields.iter().filter_map(|f| f.ident.as_ref()) {
                    assert!(fields.insert(f.to_string()), "{file}: field `{f}` twice in `{}`", s.ident);
                }
            }
            syn::Item::Enum(e) => {
                add(&mut types, e.ident.to_string());
                let mut variants = BTreeSet::new();
                for v in &e.variants {
                    assert!(variants.insert(v.ident.to_string()), "{file}: variant `{}` twice in `{}`", v.ident, e.ident);
                }
            }
            syn::Item::Type(t) => add(&mut types, t.ident.to_string()),
            syn::Item::Trait(t) => add(&mut types, t.ident.to_string()),
            syn::Item::Const(c) => add(&mut values, c.ident.to_string()),
            syn::Item::Static(s) => add(&mut values, s.ident.to_string()),
            syn::Item::Fn(f) => add(&mut values, f.sig.ident.to_string()),
            syn::Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    check_items(file, inner);
                }
            }
            _ => {}
        }
    }
}

fn run(seed: u64, dir: &Path) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let doc = document(&mut rng);
    let yaml = rng.chance(30);
    let name = if yaml { format!("hostile{seed}.yaml") } else { format!("hostile{seed}.json") };
    let path = dir.join(&name);
    let text = if yaml { serde_yaml::to_string(&doc).unwrap() } else { serde_json::to_string(&doc).unwrap() };
    std::fs::write(&path, text).unwrap();
    let mut config = switchboard_codegen::Config::new();
    match config.generate_checked(&[&path], &[] as &[&str]) {
        Ok(files) => {
            for f in files.iter().filter(|f| f.name.ends_with(".rs")) {
                check_names(&format!("seed {seed}: {}", f.name), f.as_str().unwrap_or_default());
            }
            for w in config.warnings() {
                assert!(w.contains(".json#/") || w.contains(".yaml#/") || w.contains(".json#:") || w.contains(".yaml#:"), "seed {seed}: warning without a pointer: {w}");
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains("rendered invalid Rust"), "seed {seed}: {message}");
            assert!(message.starts_with(&path.display().to_string()), "seed {seed}: error without the file: {message}");
        }
    }
}

#[test]
fn hostile_documents_generate_or_fail_with_a_location_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    // SWITCHBOARD_HOSTILE_SEEDS=N runs more (the default keeps CI to a few seconds);
    // SWITCHBOARD_HOSTILE_DIR=<dir> keeps the documents there.
    let n: u64 = std::env::var("SWITCHBOARD_HOSTILE_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let keep = std::env::var_os("SWITCHBOARD_HOSTILE_DIR").map(std::path::PathBuf::from);
    for seed in 0..n {
        run(seed, keep.as_deref().unwrap_or(dir.path()));
    }
}

#[test]
fn nesting_deeper_than_the_parsers_allow_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    // JSON and YAML: the parsers' recursion limits answer, with a position.
    let deep = format!("{{\"openapi\": \"3.0.3\", \"x\": {}1{}}}", "[".repeat(5_000), "]".repeat(5_000));
    let path = dir.path().join("deep.json");
    std::fs::write(&path, deep).unwrap();
    let err = switchboard_codegen::Config::new().generate(&[&path], &[] as &[&str]).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:1:", path.display())) && err.contains("recursion limit"), "{err}");
    let deep = format!("openapi: 3.0.3\nx: {}1{}\n", "[".repeat(5_000), "]".repeat(5_000));
    let path = dir.path().join("deep.yaml");
    std::fs::write(&path, deep).unwrap();
    let err = switchboard_codegen::Config::new().generate(&[&path], &[] as &[&str]).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:", path.display())) && err.contains("recursion limit"), "{err}");
}

#[test]
fn schemas_nested_past_the_limit_become_json_values_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    // Within the JSON parser's 128 levels: schemas nesting through one or two JSON levels each.
    for (key, levels) in [("items", 100), ("additionalProperties", 100), ("properties", 60), ("oneOf", 60), ("anyOf", 60)] {
        let doc = json!({
            "openapi": "3.1.0",
            "info": {"title": "Deep", "version": "1"},
            "paths": {"/a": {"get": {"operationId": "get", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Deep"}}}}}}}},
            "components": {"schemas": {"Deep": nested(levels, key)}},
        });
        let path = dir.path().join(format!("deep_{key}.json"));
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
        let mut config = switchboard_codegen::Config::new();
        config.generate_checked(&[&path], &[] as &[&str]).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(
            config.warnings().iter().any(|w| w.contains("#/components/schemas/Deep/") && w.contains("levels deep here; typed as any JSON value")),
            "{key}: {:?}",
            config.warnings()
        );
    }
}
