//! Spec-default policies: what a user sees for a broken `*_grpc_service_config.json` beside a
//! `.proto` (the file and the JSON path) or a broken `x-switchboard-policy` /
//! `x-switchboard-idempotent` in an OpenAPI document (a JSON pointer), and which services a
//! directory's config applies to. The working shapes are the golden case `policy`.

use std::path::{Path, PathBuf};

const PROTO: &str = "syntax = \"proto3\";\npackage demo.v1;\nmessage M { string s = 1; }\nservice Echo { rpc Say(M) returns (M); }\nservice Other { rpc Do(M) returns (M); }\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn proto(configs: &[(&str, &str)]) -> (tempfile::TempDir, Result<Vec<switchboard_codegen::GeneratedFile>, String>) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "demo/v1/demo.proto", PROTO);
    for (name, text) in configs {
        write(dir.path(), &format!("demo/v1/{name}"), text);
    }
    let out = switchboard_codegen::Config::new().generate(&["demo/v1/demo.proto"], &[dir.path()]).map_err(|e| e.to_string());
    (dir, out)
}

fn file<'f>(files: &'f [switchboard_codegen::GeneratedFile], name: &str) -> Option<&'f str> {
    files.iter().find(|f| f.name == name).and_then(|f| f.as_str())
}

#[test]
fn a_directory_config_is_the_default_of_the_services_it_names() {
    let config = r#"{"methodConfig": [{"name": [{"service": "demo.v1.Echo"}], "timeout": "2s"}]}"#;
    let (_dir, files) = proto(&[("demo_grpc_service_config.json", config), ("notes.json", "not a config")]);
    let files = files.unwrap();
    let json = file(&files, "demo.v1.Echo.policy.json").expect("Echo's policy");
    assert_eq!(json, r#"{"methodConfig":[{"name":[{"service":"demo.v1.Echo"}],"timeout":"2s"}]}"#);
    assert!(file(&files, "demo.v1.Other.policy.json").is_none(), "Other is not named");
    let code = file(&files, "demo.v1.rs").unwrap();
    assert!(code.contains("pub const ECHO_POLICY: &str = include_str!(\"demo.v1.Echo.policy.json\");"), "{code}");
    assert!(code.contains("policy = ECHO_POLICY"), "{code}");
    assert!(code.contains("`demo/v1/demo_grpc_service_config.json`"), "{code}");

    // A default entry (`"name": [{}]`) makes it every service's.
    let (_dir, files) = proto(&[("demo_grpc_service_config.json", r#"{"methodConfig": [{"name": [{}], "timeout": "1s"}]}"#)]);
    let files = files.unwrap();
    assert!(file(&files, "demo.v1.Echo.policy.json").is_some() && file(&files, "demo.v1.Other.policy.json").is_some());

    // Without one, nothing changes.
    let (_dir, files) = proto(&[]);
    assert!(!files.unwrap().iter().any(|f| f.name.ends_with(".policy.json")));
}

#[test]
fn a_broken_config_names_the_file_and_the_json_path() {
    let config = r#"{"methodConfig": [{"name": [{"service": "demo.v1.Echo"}], "retryPolicy": {"maxAttempts": 1}}]}"#;
    let (dir, err) = proto(&[("demo_grpc_service_config.json", config)]);
    let err = err.unwrap_err();
    let path = dir.path().join("demo/v1/demo_grpc_service_config.json");
    // The runtime's own reader checks it with `check-schemas` (on by default); without, the names.
    #[cfg(feature = "check-schemas")]
    assert_eq!(err, format!("{}: $.methodConfig[0].retryPolicy.maxAttempts: must be greater than 1 (the first attempt counts)", path.display()));
    #[cfg(not(feature = "check-schemas"))]
    let _ = (err, path);

    let (dir, err) = proto(&[("demo_grpc_service_config.json", r#"{"methodConfig": [{"name": [{"service": 7}]}]}"#)]);
    let path = dir.path().join("demo/v1/demo_grpc_service_config.json");
    assert_eq!(err.unwrap_err(), format!("{}: $.methodConfig[0].name[0].service: expected a string, found a number", path.display()));

    let (dir, err) = proto(&[("demo_grpc_service_config.json", "{\n  \"methodConfig\": [,]\n}\n")]);
    let path = dir.path().join("demo/v1/demo_grpc_service_config.json");
    let err = err.unwrap_err();
    assert!(err.starts_with(&format!("{}:2:", path.display())) && err.contains("must be JSON"), "{err}");
}

#[test]
fn two_configs_for_one_service_are_an_error_naming_both() {
    let a = r#"{"methodConfig": [{"name": [{"service": "demo.v1.Echo"}], "timeout": "2s"}]}"#;
    let b = r#"{"methodConfig": [{"name": [{}], "timeout": "9s"}]}"#;
    let (dir, err) = proto(&[("a_grpc_service_config.json", a), ("b_grpc_service_config.json", b)]);
    let err = err.unwrap_err();
    let (first, second) = (dir.path().join("demo/v1/a_grpc_service_config.json"), dir.path().join("demo/v1/b_grpc_service_config.json"));
    let expected = format!("{}: `demo.v1.Echo` gets its default policy from this file and from {} too", first.display(), second.display());
    assert!(err.starts_with(&expected), "{err}");

    // Configs naming different services live side by side.
    let other = r#"{"methodConfig": [{"name": [{"service": "demo.v1.Other"}], "timeout": "9s"}]}"#;
    let (_dir, files) = proto(&[("a_grpc_service_config.json", a), ("b_grpc_service_config.json", other)]);
    let files = files.unwrap();
    assert!(file(&files, "demo.v1.Echo.policy.json").unwrap().contains("2s"));
    assert!(file(&files, "demo.v1.Other.policy.json").unwrap().contains("9s"));
}

fn openapi(extensions: &str) -> Result<Vec<switchboard_codegen::GeneratedFile>, String> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "openapi: 3.1.0\ninfo: {{title: Api, version: '1'}}\n{extensions}\ncomponents: {{}}\n"
    );
    let path = write(dir.path(), "api.yaml", &text);
    switchboard_codegen::Config::new().generate(&[path], &[] as &[&str]).map_err(|e| e.to_string().replace(&format!("{}", dir.path().display()), "DIR"))
}

const PATHS: &str = "paths:\n  /a:\n    get:\n      operationId: getA\n      responses: {'200': {description: ok}}\n    post:\n      operationId: postA\n      responses: {'200': {description: ok}}\n";

#[test]
fn openapi_policies_lower_into_one_service_config() {
    let text = format!("x-switchboard-policy: {{timeout: 4s}}\n{}", PATHS.replace("    post:\n", "    post:\n      x-switchboard-policy: {timeout: 1s}\n      x-switchboard-idempotent: true\n"));
    let files = openapi(&text).unwrap();
    assert_eq!(
        file(&files, "api.policy.json").unwrap(),
        r#"{"methodConfig":[{"name":[{"service":"api.Api"}],"timeout":"4s"},{"name":[{"service":"api.Api","method":"PostA"}],"timeout":"1s"}]}"#
    );
    let code = file(&files, "api.rs").unwrap();
    assert!(code.contains("policy = API_POLICY"), "{code}");
    assert!(code.contains("#[rpc(operation = operations::POST_A, idempotent)]"), "{code}");
    assert!(code.contains("#[rpc(operation = operations::GET_A, no_side_effects)]"), "{code}");
    // Without extensions: no policy.
    assert!(file(&openapi(PATHS).unwrap(), "api.policy.json").is_none());
}

#[test]
fn broken_openapi_extensions_name_their_json_pointer() {
    let at_get = |ext: &str| openapi(&PATHS.replace("    get:\n", &format!("    get:\n      {ext}\n"))).unwrap_err();
    assert_eq!(
        at_get("x-switchboard-policy: {timeout: soon}"),
        "DIR/api.yaml: /paths/~1a/get/x-switchboard-policy/timeout: expected a duration such as \"1.5s\" (seconds, then `s`), found \"soon\""
    );
    assert_eq!(at_get("x-switchboard-policy: 5s"), "DIR/api.yaml: /paths/~1a/get/x-switchboard-policy: expected an object (a gRPC methodConfig entry without `name`), found \"5s\"");
    assert_eq!(
        at_get("x-switchboard-policy: {name: [{}]}"),
        "DIR/api.yaml: /paths/~1a/get/x-switchboard-policy/name: `x-switchboard-policy` names no methods: it applies to its operation"
    );
    assert_eq!(
        at_get("x-switchboard-policy: {retryThrottling: {maxTokens: 10, tokenRatio: 1}}"),
        "DIR/api.yaml: /paths/~1a/get/x-switchboard-policy/retryThrottling: applies to the whole client: set it at the document root"
    );
    assert_eq!(at_get("x-switchboard-idempotent: 'yes'"), "DIR/api.yaml: /paths/~1a/get/x-switchboard-idempotent: expected true or false, found \"yes\"");
    let on_path = openapi(&PATHS.replace("  /a:\n", "  /a:\n    x-switchboard-idempotent: true\n")).unwrap_err();
    assert_eq!(on_path, "DIR/api.yaml: /paths/~1a/x-switchboard-idempotent: only an operation can be declared idempotent, not a path");
    let at_root = openapi(&format!("x-switchboard-idempotent: true\n{PATHS}")).unwrap_err();
    assert_eq!(at_root, "DIR/api.yaml: /x-switchboard-idempotent: only an operation can be declared idempotent");
    let root = openapi(&format!("x-switchboard-policy: {{retryPolicy: {{maxAttempts: 3}}}}\n{PATHS}")).unwrap_err();
    assert!(root.starts_with("DIR/api.yaml: /x-switchboard-policy/retryPolicy"), "{root}");
    let budget = openapi(&PATHS.replace("  /a:\n", "  /a:\n    x-switchboard-policy: {x-switchboard: {retryBudget: {percent: 5}}}\n")).unwrap_err();
    assert_eq!(budget, "DIR/api.yaml: /paths/~1a/x-switchboard-policy/x-switchboard/retryBudget: applies to the whole client: set it at the document root");
}
