//! Degrade per item, not per run (protobuf): a `google.api.http` binding the REST router would
//! refuse is left out with a warning naming `file:line:col` of its option, every other binding
//! and every method is generated, and `strict` turns the warnings into an error.
//!
//! The fixture, `tests/fixtures/degrade/proto/clash/v1/clash.proto`, clashes in each way the
//! router checks (same HTTP method, path segments and verb within one service), including with
//! default routes, and has a binding naming a field that does not exist. Its generated code is
//! a golden tree too (`golden.rs`), served by `tests/golden/tests/degrade_rest.rs`.

use std::path::{Path, PathBuf};

use switchboard_codegen::Config;

const SPEC: &str = "clash/v1/clash.proto";

fn includes() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![root.join("../tests/fixtures/degrade/proto"), root.join("../tests/fixtures/gateway/proto")]
}

fn file() -> String {
    includes()[0].join(SPEC).display().to_string()
}

/// The expected warnings: (line:col, method, problem, what the method is left with).
fn expected() -> Vec<String> {
    let default = |m: &str| format!("with no binding left, REST serves it at its default route `POST /clash.v1.Library/{m}`");
    let others = "it keeps its other bindings".to_owned();
    [
        ("24:5", "ReadBook", "`GET /v1/{book=shelves/*/books/*}` matches the same requests as `GET /v1/{name=shelves/*/books/*}` of clash.v1.Library.GetBook", default("ReadBook")),
        ("28:5", "MoveBook", "additional_bindings[0]: `GET /v1/books/{name}` matches the same requests as `GET /v1/books/{name}` of clash.v1.Library.GetBook", others),
        ("40:5", "Touch", "`POST /clash.v1.Library/Ping` matches the same requests as `POST /clash.v1.Library/Ping` (its default route) of clash.v1.Library.Ping", default("Touch")),
        ("44:5", "Shelve", "path variable \"shelf\" is not a field of clash.v1.Book", default("Shelve")),
        ("49:5", "Early", "`POST /clash.v1.Library/Late` matches the same requests as `POST /clash.v1.Library/Late` (its default route) of clash.v1.Library.Late", default("Early")),
        ("52:5", "Late", "`GET /v1/books/{name}` matches the same requests as `GET /v1/books/{name}` of clash.v1.Library.GetBook", default("Late")),
    ]
    .into_iter()
    .map(|(at, method, problem, left)| {
        format!(
            "{}:{at}: method clash.v1.Library.{method}: google.api.http: {problem}; binding skipped (the method is still generated and served over gRPC; {left})",
            file()
        )
    })
    .collect()
}

#[test]
fn refused_bindings_are_warnings_at_their_option_and_the_rest_is_generated() {
    let mut config = Config::new();
    let files = config.generate_checked(&[SPEC], &includes()).unwrap();
    assert_eq!(config.warnings(), expected());

    // Every method stays in the trait (served over gRPC, and over REST at what is left).
    let code = String::from_utf8_lossy(&files.iter().find(|f| f.name == "clash.v1.rs").unwrap().contents).into_owned();
    for method in ["get_book", "read_book", "move_book", "delete_book", "touch", "shelve", "ping", "early", "late"] {
        assert!(code.contains(&format!("async fn {method}(")), "`{method}` is missing from the trait");
    }

    // The bindings the generated service declares: everything but the skipped ones.
    let spec = switchboard_codegen::spec::proto::load(&[SPEC], &includes()).unwrap();
    let (api, warnings) = switchboard_codegen::lower::proto::lower(&spec.pool);
    assert_eq!(warnings.len(), 6);
    let bindings = |service: &str| -> Vec<(String, Vec<String>)> {
        let service = api.packages.iter().flat_map(|p| &p.services).find(|s| s.name == service).unwrap();
        service
            .methods
            .iter()
            .map(|m| (m.name.clone(), m.bindings.http.iter().map(|r| format!("{} {}", r.method, r.path)).collect()))
            .collect()
    };
    let want = |list: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        list.iter().map(|(m, rules)| (m.to_string(), rules.iter().map(|r| r.to_string()).collect())).collect()
    };
    assert_eq!(
        bindings("Library"),
        want(&[
            ("GetBook", &["get /v1/{name=shelves/*/books/*}", "get /v1/books/{name}"]),
            ("ReadBook", &[]),
            ("MoveBook", &["post /v1/{name=shelves/*/books/*}:move"]),
            ("DeleteBook", &["delete /v1/{name=shelves/*/books/*}"]),
            ("Touch", &[]),
            ("Shelve", &[]),
            ("Ping", &[]),
            ("Early", &[]),
            ("Late", &[]),
        ])
    );
    // Another service may take the same routes (each service registers with its own router).
    assert_eq!(bindings("Mirror"), want(&[("GetBook", &["get /v1/{name=shelves/*/books/*}"])]));

    // The exported document agrees: skipped routes are not there, default routes are.
    let doc: serde_json::Value = serde_json::from_str(&Config::new().openapi(&[SPEC], &includes()).unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths["/v1/books/{name}"]["get"]["operationId"].as_str().unwrap().starts_with("Library_GetBook"), "{doc:#}");
    assert!(paths.get("/v1/books/{name}#2").is_none(), "MoveBook's and Late's routes are skipped: {doc:#}");
    for m in ["ReadBook", "Touch", "Shelve", "Early", "Late", "Ping"] {
        assert!(paths[&format!("/clash.v1.Library/{m}")].get("post").is_some(), "{m} is at its default route: {doc:#}");
    }
}

#[test]
fn strict_makes_the_warnings_an_error_listing_them_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let err = Config::new().strict(true).out_dir(out.path()).compile(&[SPEC], &includes()).unwrap_err().to_string();
    let list: Vec<String> = expected().iter().map(|w| format!("  {w}")).collect();
    assert_eq!(err, format!("{}: 6 warnings (errors with --strict / `Config::strict`):\n{}", file(), list.join("\n")));
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing is written");
    let err = Config::new().strict(true).openapi(&[SPEC], &includes()).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: 6 warnings", file())), "{err}");
}

#[test]
fn the_cli_warns_with_file_line_col_and_fails_with_strict() {
    let out = tempfile::tempdir().unwrap();
    let inc = includes();
    let mut args = vec!["generate", "-I", inc[0].to_str().unwrap(), "-I", inc[1].to_str().unwrap(), "-o", out.path().to_str().unwrap(), SPEC];
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (ok, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let lines: Vec<String> = expected().iter().map(|w| format!("warning: {w}")).collect();
    assert_eq!(stderr.lines().collect::<Vec<_>>(), lines);
    assert!(out.path().join("clash.v1.rs").is_file());
    args.insert(1, "--strict");
    let (ok, stderr) = run(&args);
    assert!(!ok);
    assert!(stderr.starts_with(&format!("{}: 6 warnings (errors with --strict", file())), "{stderr}");
}
