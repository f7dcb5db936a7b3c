//! Golden tests: each `tests/fixtures/<case>/` (include dirs: `proto/` when present, then each
//! directory named in its `include` file, one per line, relative to the case; spec list `specs`)
//! must generate exactly `tests/fixtures/<case>/expected/`, with the warnings listed in
//! `tests/fixtures/<case>/warnings` (none when it is absent). The expected trees are compiled and
//! used by the `golden` crate (tests/golden), so they are checked as Rust, not only diffed.
//!
//! After an intended change: `SWITCHBOARD_BLESS=1 cargo test -p switchboard-codegen --test golden`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs" || e == "json" || e == "bin"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

/// `proto/` (when present), then the directories listed in `include`.
fn includes(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.join("proto").is_dir() {
        out.push(dir.join("proto"));
    }
    if let Ok(list) = std::fs::read_to_string(dir.join("include")) {
        out.extend(list.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| dir.join(l)));
    }
    out
}

fn check(case: &str) {
    let dir = fixtures().join(case);
    let specs: Vec<String> =
        std::fs::read_to_string(dir.join("specs")).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
    // OpenAPI documents are files on disk, relative to the case.
    let specs: Vec<String> = specs
        .into_iter()
        .map(|s| if s.ends_with(".proto") { s } else { dir.join(&s).to_string_lossy().into_owned() })
        .collect();
    let include = includes(&dir);
    let mut config = switchboard_codegen::Config::new();
    let files = config.generate_checked(&specs, &include).unwrap();
    // Warnings, with paths relative to the case, are the lines of its `warnings` file (none
    // without one).
    let prefix = format!("{}/", dir.display());
    let warnings: Vec<String> = config.warnings().iter().map(|w| w.replace(&prefix, "")).collect();
    let got: BTreeMap<String, Vec<u8>> = files.iter().map(|f| (f.name.clone(), f.contents.clone())).collect();
    let expected_dir = dir.join("expected");
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&expected_dir);
        switchboard_codegen::write(&expected_dir, &files).unwrap();
        let _ = std::fs::remove_file(dir.join("warnings"));
        if !warnings.is_empty() {
            std::fs::write(dir.join("warnings"), warnings.join("\n") + "\n").unwrap();
        }
        return;
    }
    let expected_warnings = std::fs::read_to_string(dir.join("warnings")).unwrap_or_default();
    assert_eq!(warnings, expected_warnings.lines().collect::<Vec<_>>(), "{case}: warnings differ (SWITCHBOARD_BLESS=1 to update)");
    let expected = read_tree(&expected_dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{case}: generated file set differs (SWITCHBOARD_BLESS=1 to update)"
    );
    for (name, bytes) in &got {
        if bytes != &expected[name] {
            let (text, expected) = (String::from_utf8_lossy(bytes), String::from_utf8_lossy(&expected[name]));
            let line = text.lines().zip(expected.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
            panic!("{case}/{name} differs from expected at line {line} (SWITCHBOARD_BLESS=1 to update)");
        }
    }
    // Deterministic: a second run is byte-identical.
    let again = switchboard_codegen::Config::new().generate(&specs, &include).unwrap();
    assert_eq!(files, again, "{case}: output differs between runs");
}

#[test]
fn interop() {
    check("interop");
}

#[test]
fn gateway() {
    check("gateway");
}

#[test]
fn edge() {
    check("edge");
}

#[test]
fn openapi() {
    check("openapi");
}

#[test]
fn library() {
    check("library");
}

#[test]
fn notes() {
    check("notes");
}

#[test]
fn degrade() {
    check("degrade");
}

#[test]
fn policy() {
    check("policy");
}

#[test]
fn keys() {
    check("keys");
}
