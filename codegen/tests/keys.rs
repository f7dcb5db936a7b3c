//! Partition keys that cannot work are errors naming where they are: a `(switchboard.key)`
//! field option as `file:line:col`, an `x-switchboard-key` as its JSON pointer. The working
//! shapes are the golden case `keys`.

use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
}

/// Generates `k.proto` holding `body` after a header importing the options; the error, if any.
fn proto(body: &str) -> Result<Vec<switchboard_codegen::GeneratedFile>, String> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "syntax = \"proto3\";\npackage k.v1;\nimport \"google/protobuf/empty.proto\";\nimport \"switchboard/options.proto\";\n{body}"
    );
    write(dir.path(), "k.proto", &text);
    let out = switchboard_codegen::Config::new().generate(&["k.proto"], &[dir.path()]);
    out.map_err(|e| e.to_string().replace(&format!("{}/", dir.path().display()), ""))
}

const EVENT: &str = "service S { rpc E(M) returns (google.protobuf.Empty); }\n";

#[test]
fn the_option_is_built_in_and_keys_the_event() {
    let files = proto(&format!("{EVENT}message M {{ string id = 1; int32 orderId = 2 [(switchboard.key) = true]; }}\n")).unwrap();
    let code = files.iter().find(|f| f.name == "k.v1.rs").and_then(|f| f.as_str()).unwrap();
    assert!(code.contains("#[rpc(name = \"E\", event, key = \"order_id\")]"), "{code}");
    // The options file generates nothing of its own.
    assert!(files.iter().all(|f| !f.name.starts_with("switchboard")), "{:?}", files.iter().map(|f| &f.name).collect::<Vec<_>>());
    // `= false` is no key.
    let files = proto(&format!("{EVENT}message M {{ string id = 1 [(switchboard.key) = false]; }}\n")).unwrap();
    let code = files.iter().find(|f| f.name == "k.v1.rs").and_then(|f| f.as_str()).unwrap();
    assert!(code.contains("#[rpc(name = \"E\", event)]"), "{code}");
}

#[test]
fn bad_key_fields_are_located_errors() {
    let cases = [
        ("message M { repeated string ids = 1 [(switchboard.key) = true]; }", "k.proto:6:", "a repeated field"),
        ("message M { map<string, string> tags = 1 [(switchboard.key) = true]; }", "k.proto:6:", "a map"),
        ("message N { string id = 1; }\nmessage M { N n = 1 [(switchboard.key) = true]; }", "k.proto:7:", "a message field"),
        ("message M { bytes b = 1 [(switchboard.key) = true]; }", "k.proto:6:", "a bytes or floating-point field"),
        ("message M { oneof o { string a = 1 [(switchboard.key) = true]; int32 b = 2; } }", "k.proto:6:", "a member of a oneof"),
        (
            "message M {\n  string a = 1 [(switchboard.key) = true];\n  string b = 2 [(switchboard.key) = true];\n}",
            "k.proto:8:",
            "a message has one partition key field, and `a` is marked already",
        ),
        (
            "message Inner { string id = 1 [(switchboard.key) = true]; }\nmessage M { Inner inner = 1; }",
            "k.proto:6:",
            "`k.v1.Inner` is inside `k.v1.M`, the request of event `k.v1.S.E`",
        ),
    ];
    for (messages, at, problem) in cases {
        let err = proto(&format!("{EVENT}{messages}\n")).expect_err(messages);
        assert!(err.starts_with(at), "{messages}: {err}");
        assert!(err.contains(problem), "{messages}: {err}");
        assert!(err.contains("(switchboard.key)"), "{err}");
    }
    // A message reached inside an event's request that is itself an event's request is fine.
    let both = "service T { rpc F(Inner) returns (google.protobuf.Empty); }\nmessage Inner { string id = 1 [(switchboard.key) = true]; }\nmessage M { Inner inner = 1; }";
    proto(&format!("{EVENT}{both}\n")).unwrap();
}

const DOC: &str = r##"openapi: 3.0.3
info: {title: Shop, version: "1"}
paths:
  /orders:
    post:
      operationId: placeOrder
      x-switchboard-event: EVENT
      x-switchboard-key: KEY
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Order"}
      responses:
        "204": {description: Placed.}
components:
  schemas:
    Order:
      type: object
      properties:
        orderId: {type: string}
        lines: {type: array, items: {type: string}}
"##;

fn openapi(event: &str, key: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shop.yaml", &DOC.replace("EVENT", event).replace("KEY", key));
    let spec = dir.path().join("shop.yaml");
    let files = switchboard_codegen::Config::new().generate(&[&spec], &[] as &[&str]).map_err(|e| e.to_string().replace(&format!("{}/", dir.path().display()), ""))?;
    Ok(files.iter().find(|f| f.name == "shop.rs").and_then(|f| f.as_str()).unwrap().to_owned())
}

#[test]
fn x_switchboard_key_names_a_scalar_property_of_the_body_of_an_event() {
    let code = openapi("true", "orderId").unwrap();
    assert!(code.contains("event, key = \"body.order_id\")]"), "{code}");
    let at = "shop.yaml: /paths/~1orders/post/x-switchboard-key: ";
    let err = openapi("true", "nope").unwrap_err();
    assert!(err.starts_with(at), "{err}");
    assert!(err.contains("\"nope\" is not a property of the request body (/components/schemas/Order/properties/nope does not exist; its properties: `orderId`, `lines`)"), "{err}");
    let err = openapi("false", "orderId").unwrap_err();
    assert!(err.starts_with(at) && err.contains("only events have a partition key"), "{err}");
    let err = openapi("true", "lines").unwrap_err();
    assert!(err.starts_with(at) && err.contains("property \"lines\" of the request body is not a string, integer or boolean"), "{err}");
    let err = openapi("true", "[orderId]").unwrap_err();
    assert!(err.starts_with(at) && err.contains("expected the name of a property of the request body, found [\"orderId\"]"), "{err}");
}
