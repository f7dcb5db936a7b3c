//! OpenAPI export: the documents of every fixture in `tests/fixtures` (read like the golden
//! tests read them) hold together (every `$ref` resolves, every `{param}` is declared, no two
//! operations share a route, operation ids are unique), say what the bindings and the proto3 JSON
//! mapping say, and pass `openapi-spec-validator` when Python has it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(case)
}

/// Specs and include directories of a fixture (as in golden.rs).
fn fixture(case: &str) -> (Vec<String>, Vec<PathBuf>) {
    let dir = fixture_dir(case);
    let specs = std::fs::read_to_string(dir.join("specs")).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
    let mut includes = Vec::new();
    if dir.join("proto").is_dir() {
        includes.push(dir.join("proto"));
    }
    if let Ok(list) = std::fs::read_to_string(dir.join("include")) {
        includes.extend(list.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| dir.join(l)));
    }
    (specs, includes)
}

/// The document of a fixture, checked for consistency and (when available) validated.
fn document(case: &str) -> Value {
    let (specs, includes) = fixture(case);
    let text = switchboard_codegen::Config::new().openapi(&specs, &includes).unwrap();
    let again = switchboard_codegen::Config::new().openapi(&specs, &includes).unwrap();
    assert_eq!(text, again, "{case}: output differs between runs");
    let doc: Value = serde_json::from_str(&text).unwrap();
    check_consistent(case, &doc);
    validate(case, &text);
    doc
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["components"]["schemas"].get(name).unwrap_or_else(|| panic!("no schema {name}"))
}

fn op<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    doc["paths"].get(path).and_then(|p| p.get(method)).unwrap_or_else(|| {
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        panic!("no {method} {path}; paths: {paths:?}")
    })
}

fn param<'a>(op: &'a Value, name: &str, location: &str) -> &'a Value {
    op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name && p["in"] == location))
        .unwrap_or_else(|| panic!("no {location} parameter {name} in {}", op["operationId"]))
}

fn param_names(op: &Value, location: &str) -> Vec<String> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["in"] == location).map(|p| p["name"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn body_schema<'a>(op: &'a Value, media: &str) -> &'a Value {
    &op["requestBody"]["content"][media]["schema"]
}

fn ok_schema<'a>(op: &'a Value, media: &str) -> &'a Value {
    &op["responses"]["200"]["content"][media]["schema"]
}

fn reference(name: &str) -> Value {
    serde_json::json!({"$ref": format!("#/components/schemas/{name}")})
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Structural checks every document must pass, whatever the validator says.
fn check_consistent(case: &str, doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in schemas.keys() {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "{case}: schema name {name:?} is not a valid component name"
        );
    }
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in &refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{case}: unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "{case}: $ref {r} does not resolve");
    }
    let mut ids = BTreeSet::new();
    let mut routes: BTreeMap<(String, String), String> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{case}: path {path}");
        let in_path: BTreeSet<String> =
            path.split('{').skip(1).map(|s| s.split_once('}').expect("balanced braces").0.to_owned()).collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{case}: {method} {path}");
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{case}: operationId {id} is not unique");
            let declared: BTreeSet<String> = param_names(op, "path").into_iter().collect();
            assert_eq!(declared, in_path, "{case}: {method} {path}: path parameters and template differ");
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{case}: {id}: path parameter {} not required", p["name"]);
                }
            }
            let mut query: Vec<String> = param_names(op, "query");
            let n = query.len();
            query.sort();
            query.dedup();
            assert_eq!(query.len(), n, "{case}: {id}: duplicate query parameters");
            // One operation per route and method, even when parameter names differ.
            let route = blank(path.split('#').next().unwrap());
            let key = (route, method.clone());
            if let Some(other) = routes.get(&key) {
                assert!(path.contains('#'), "{case}: {id} and {other} share {method} {path}");
            }
            assert!(op["responses"]["200"].is_object() && op["responses"]["default"].is_object(), "{case}: {id}");
            routes.insert(key, id);
        }
    }
}

fn blank(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn validator_available() -> bool {
    Command::new("python3").args(["-c", "import openapi_spec_validator"]).output().is_ok_and(|o| o.status.success())
}

/// Runs `python3 -m openapi_spec_validator` on the document when it is installed.
fn validate(case: &str, text: &str) {
    if !validator_available() {
        eprintln!("skipped: openapi-spec-validator check of {case} (python3 -m pip install openapi-spec-validator)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{case}.json"));
    std::fs::write(&file, text).unwrap();
    let out = Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{case}: openapi-spec-validator rejects the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gateway_bindings_become_operations() {
    let doc = document("gateway");
    assert_eq!(doc["info"]["title"], "shop.v1.ShopService");
    assert_eq!(doc["info"]["version"], "v1");
    assert_eq!(doc["tags"][0]["name"], "ShopService");

    // `{name=shelves/*/products/*}` and its additional binding `{product.id}`.
    let get = op(&doc, "get", "/v1/shelves/{shelf}/products/{product}");
    assert_eq!(get["operationId"], "ShopService_GetProduct");
    assert_eq!(get["tags"], serde_json::json!(["ShopService"]));
    assert_eq!(get["summary"], "Gets a product by resource name, with an alternative numeric route.");
    let shelf = param(get, "shelf", "path");
    assert!(shelf["description"].as_str().unwrap().contains("`name` = `shelves/{shelf}/products/{product}`"), "{shelf}");
    // GET: every field not in the path is a query parameter, nested ones flattened.
    let query = param_names(get, "query");
    for name in ["product.id", "product.price.currency_code", "product.price.units", "product.tags", "read_mask"] {
        assert!(query.contains(&name.to_owned()), "{name} missing from {query:?}");
    }
    assert!(!query.contains(&"name".to_owned()), "the path sets `name`");
    assert_eq!(param(get, "product.price.units", "query")["schema"], serde_json::json!({"type": "string", "format": "int64"}));
    let tags = param(get, "product.tags", "query");
    assert_eq!((&tags["schema"]["type"], &tags["explode"]), (&Value::from("array"), &Value::from(true)));
    let alt = op(&doc, "get", "/v1/products/{product.id}");
    assert_eq!(alt["operationId"], "ShopService_GetProduct_2");
    assert!(param_names(alt, "query").contains(&"name".to_owned()));

    // `**` may contain slashes.
    let delete = op(&doc, "delete", "/v1/shelves/{shelf}/products/{product}");
    assert!(param(delete, "product", "path")["description"].as_str().unwrap().contains("May contain `/`"));

    // body: "product" with the product's name in the path: the body is the field, the rest query.
    let patch = op(&doc, "patch", "/v1/shelves/{shelf}/products/{product}");
    assert_eq!(*body_schema(patch, "application/json"), reference("shop.v1.Product"));
    assert_eq!(param_names(patch, "query"), ["update_mask"]);

    // body: "shelf" on POST: the body is the field; other fields are query parameters.
    let create = op(&doc, "post", "/v1/shelves");
    assert_eq!(*body_schema(create, "application/json"), reference("shop.v1.Shelf"));
    assert_eq!(param_names(create, "query"), ["request_id"]);

    // body: "*" with a path field: a body schema without that field.
    let archive = op(&doc, "post", "/v1/shelves/{shelf}:archive");
    assert_eq!(*body_schema(archive, "application/json"), reference("shop.v1.ArchiveShelfRequest_Body"));
    let body = schema(&doc, "shop.v1.ArchiveShelfRequest_Body");
    assert!(body["properties"].get("name").is_none() && body["properties"].get("force").is_some(), "{body}");

    // response_body: the 200 response is that field (a map).
    let labels = op(&doc, "get", "/v1/shelves/{shelf}/labels");
    assert_eq!(*ok_schema(labels, "application/json"), serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}}));

    // Custom HEAD binding; the StringValue request's field is a query parameter.
    assert_eq!(op(&doc, "head", "/v1/probe")["operationId"], "ShopService_Probe");

    // Default bindings: POST /<package>.<Service>/<Method>, whole request as body.
    let ping = op(&doc, "post", "/shop.v1.ShopService/Ping");
    assert_eq!(ping["deprecated"], true);
    assert_eq!(body_schema(ping, "application/json")["format"], "date-time");

    // Server streaming: NDJSON lines of result-or-error, and SSE.
    let watch = op(&doc, "get", "/v1/shelves/{shelf}/products:watch");
    let line = ok_schema(watch, "application/x-ndjson");
    assert_eq!(line["oneOf"][0]["properties"]["result"], reference("shop.v1.ProductEvent"));
    assert_eq!(line["oneOf"][1]["properties"]["error"], reference("google.rpc.Status"));
    assert!(watch["responses"]["200"]["content"].get("text/event-stream").is_some());
    // Client and bidi streaming: NDJSON request bodies.
    let import = op(&doc, "post", "/shop.v1.ShopService/ImportProducts");
    assert_eq!(*body_schema(import, "application/x-ndjson"), reference("shop.v1.Product"));
    let sync = op(&doc, "post", "/shop.v1.ShopService/SyncStock");
    assert_eq!(*body_schema(sync, "application/x-ndjson"), reference("shop.v1.StockDelta"));
    assert!(ok_schema(sync, "application/x-ndjson")["oneOf"].is_array());

    // Errors: the default response is the status.
    assert_eq!(get["responses"]["default"]["content"]["application/json"]["schema"], reference("google.rpc.Status"));
    let status = schema(&doc, "google.rpc.Status");
    assert_eq!(status["properties"]["code"]["format"], "int32");
    assert_eq!(status["properties"]["details"]["items"]["required"], serde_json::json!(["@type"]));

    // Schemas: proto3 JSON names and types.
    let product = &schema(&doc, "shop.v1.Product")["properties"];
    assert_eq!(product["ratingCount"], serde_json::json!({"type": "string", "format": "int64"}));
    assert_eq!(product["thumbnail"]["format"], "byte");
    assert_eq!(product["restockTime"]["format"], "date-time");
    assert!(product["inStock"]["description"].as_str().unwrap().contains("at most one of `inStock`, `restockTime`"));
    assert_eq!(product["price"], reference("shop.v1.Product.Price"));
    assert_eq!(schema(&doc, "shop.v1.Product.Price")["properties"]["units"]["type"], "string");
    assert_eq!(schema(&doc, "shop.v1.StockLevel")["properties"]["level"], serde_json::json!({"type": "string", "format": "uint64"}));
    let kind = schema(&doc, "shop.v1.ProductEvent.Kind");
    assert_eq!(kind["enum"], serde_json::json!(["KIND_UNSPECIFIED", "CREATED", "UPDATED", "DELETED"]));
    assert!(kind["description"].as_str().unwrap().contains("number"), "{kind}");
    assert_eq!(schema(&doc, "shop.v1.ProductEvent")["properties"]["kind"], reference("shop.v1.ProductEvent.Kind"));
}

#[test]
fn library_api_is_resource_oriented() {
    let doc = document("library");
    assert_eq!(doc["info"]["title"], "example.library.v1.Library");
    assert!(doc["info"]["description"].as_str().unwrap().starts_with("Manages shelves and the books on them."));

    let get = op(&doc, "get", "/v1/shelves/{shelf}/books/{book}");
    assert_eq!(param_names(get, "path"), ["shelf", "book"]);
    let book = param(get, "book", "path");
    assert!(book["description"].as_str().unwrap().contains("`name` = `shelves/{shelf}/books/{book}`"));
    assert_eq!(param_names(get, "query"), ["read_mask"]);

    let list = op(&doc, "get", "/v1/shelves/{shelf}/books");
    assert_eq!(
        param_names(list, "query"),
        ["page_size", "page_token", "filter", "genres", "authors", "category.name", "published_after", "in_stock"],
        "recursive `category` stops at its first level; `parent` is in the path"
    );
    assert_eq!(param(list, "page_size", "query")["schema"], serde_json::json!({"type": "integer", "format": "int32"}));
    let genres = param(list, "genres", "query");
    assert_eq!(genres["schema"]["items"]["enum"], serde_json::json!(["GENRE_UNSPECIFIED", "FICTION", "NON_FICTION", "POETRY"]));
    assert_eq!(genres["explode"], true);
    assert_eq!(param(list, "in_stock", "query")["schema"]["type"], "boolean");
    let everywhere = op(&doc, "get", "/v1/books");
    assert_eq!(everywhere["operationId"], "Library_ListBooks_2");
    assert_eq!(param_names(everywhere, "query")[0], "parent");

    let create = op(&doc, "post", "/v1/shelves/{shelf}/books");
    assert_eq!(*body_schema(create, "application/json"), reference("example.library.v1.Book"));
    assert_eq!(param_names(create, "query"), ["book_id"]);

    let update = op(&doc, "patch", "/v1/shelves/{shelf}/books/{book}");
    assert!(param(update, "book", "path")["description"].as_str().unwrap().contains("`book.name`"));
    assert_eq!(*body_schema(update, "application/json"), reference("example.library.v1.Book"));
    assert_eq!(param_names(update, "query"), ["update_mask", "allow_missing"]);
    assert_eq!(param(update, "update_mask", "query")["schema"]["type"], "string");

    let mv = op(&doc, "post", "/v1/shelves/{shelf}/books/{book}:move");
    assert_eq!(*body_schema(mv, "application/json"), reference("example.library.v1.MoveBookRequest_Body"));
    let body = schema(&doc, "example.library.v1.MoveBookRequest_Body");
    assert_eq!(body["properties"].as_object().unwrap().keys().collect::<Vec<_>>(), ["otherShelf"]);
    assert_eq!(op(&doc, "post", "/v1/shelves/{shelf}/books/{book}:return")["deprecated"], true);
    assert_eq!(op(&doc, "delete", "/v1/shelves/{shelf}")["operationId"], "Library_DeleteShelf");

    let stats = op(&doc, "get", "/v1/shelves/{shelf}/books/{book}/stats");
    assert_eq!(*ok_schema(stats, "application/json"), reference("example.library.v1.BookStats.Counters"));
    let counters = &schema(&doc, "example.library.v1.BookStats.Counters")["properties"];
    assert_eq!(counters["reads"]["format"], "uint64");
    assert_eq!(counters["lends"], serde_json::json!({"type": "string", "format": "int64"}));
    assert_eq!(counters["averageRating"], serde_json::json!({"type": "number", "format": "float"}));

    let watch = op(&doc, "get", "/v1/shelves/{shelf}:watch");
    assert_eq!(ok_schema(watch, "application/x-ndjson")["oneOf"][0]["properties"]["result"], reference("example.library.v1.ShelfEvent"));
    assert_eq!(param(watch, "heartbeat_interval", "query")["schema"]["pattern"], "^-?[0-9]+(\\.[0-9]{1,9})?s$");
    let import = op(&doc, "post", "/v1/books:import");
    assert_eq!(*body_schema(import, "application/x-ndjson"), reference("example.library.v1.Book"));
    op(&doc, "post", "/example.library.v1.Library/Chat");

    let book = &schema(&doc, "example.library.v1.Book")["properties"];
    assert_eq!(book["pageCount"], serde_json::json!({"type": "string", "format": "uint64"}));
    assert_eq!(book["rating"]["type"], "number");
    assert_eq!(book["coverThumbnail"]["contentEncoding"], "base64");
    assert_eq!(book["readingTime"]["type"], "string");
    assert_eq!(book["metadata"]["type"], "object");
    assert_eq!(book["metadata"]["description"], "Free-form metadata.");
    assert_eq!(book["genre"], reference("example.library.v1.Genre"));
    assert_eq!(book["isbn"]["deprecated"], true);
    assert_eq!(book["copiesSold"], serde_json::json!({"type": "string", "format": "int64"}));
    assert_eq!(book["chapterTitles"]["propertyNames"]["pattern"], "^-?[0-9]+$");
    assert_eq!(book["edition"]["format"], "int32");
    assert!(book["dueBackTime"]["description"].as_str().unwrap().contains("oneof `availability`"));
    // Recursive messages are references to themselves.
    let category = &schema(&doc, "example.library.v1.Category")["properties"];
    assert_eq!(category["parent"], reference("example.library.v1.Category"));
    assert_eq!(category["children"]["items"], reference("example.library.v1.Category"));
    let genre = schema(&doc, "example.library.v1.Genre");
    let description = genre["description"].as_str().unwrap();
    assert!(description.contains("`FICTION`: Novels and stories.") && description.contains("`POETRY` (deprecated)"), "{description}");
    let chat = &schema(&doc, "example.library.v1.ChatMessage")["properties"];
    assert_eq!(chat["attachment"], serde_json::json!({}));
    assert_eq!(chat["suggestions"]["type"], "array");
    assert_eq!(chat["nothing"], serde_json::json!({"type": "null"}));
    let shelf = &schema(&doc, "example.library.v1.Shelf")["properties"];
    assert_eq!(shelf["createTime"]["format"], "date-time");
    assert_eq!(shelf["bookCount"]["description"], "How many books it holds.");
}

#[test]
fn interop_methods_get_default_bindings() {
    let doc = document("interop");
    for method in ["EmptyCall", "UnaryCall", "StreamingOutputCall", "StreamingInputCall", "FullDuplexCall"] {
        let o = op(&doc, "post", &format!("/grpc.testing.TestService/{method}"));
        assert_eq!(o["operationId"], format!("TestService_{method}"));
    }
    // Same method name in two services: distinct operations.
    op(&doc, "post", "/grpc.testing.UnimplementedService/UnimplementedCall");
    let unary = op(&doc, "post", "/grpc.testing.TestService/UnaryCall");
    assert_eq!(*body_schema(unary, "application/json"), reference("grpc.testing.SimpleRequest"));
    assert_eq!(*ok_schema(unary, "application/json"), reference("grpc.testing.SimpleResponse"));
    let request = &schema(&doc, "grpc.testing.SimpleRequest")["properties"];
    assert_eq!(request["responseType"]["$ref"], reference("grpc.testing.PayloadType")["$ref"]);
    // A user message called BoolValue is not the well-known wrapper.
    assert_eq!(request["responseCompressed"]["$ref"], reference("grpc.testing.BoolValue")["$ref"]);
    assert_eq!(schema(&doc, "grpc.testing.Payload")["properties"]["body"]["format"], "byte");
    assert_eq!(doc["info"]["title"], "grpc.testing");
}

#[test]
fn edge_cases_of_names_and_well_known_types() {
    let doc = document("edge");
    // Only services of the files asked for: `Root` lives in an imported file.
    assert!(doc["paths"].get("/Root/Hello").is_none());
    let global = op(&doc, "post", "/acme.core.v1.Store/Global");
    assert_eq!(*body_schema(global, "application/json"), reference("GlobalThing"));
    assert_eq!(*ok_schema(global, "application/json"), serde_json::json!({"type": "boolean"}));
    let connect = op(&doc, "post", "/acme.core.v1.Store/Connect");
    assert_eq!(*body_schema(connect, "application/json"), serde_json::json!({"type": "object"}));
    let wait = op(&doc, "post", "/acme.core.v1.Store/Wait");
    assert_eq!(ok_schema(wait, "application/x-ndjson")["oneOf"][0]["properties"]["result"]["type"], "string");
    let old = op(&doc, "post", "/acme.core.v1.Legacy/OldWay");
    assert_eq!(old["deprecated"], true);
    assert_eq!(*ok_schema(old, "application/json"), serde_json::json!({"type": "string", "format": "int64"}));
    assert_eq!(schema(&doc, "acme.type.Money")["properties"]["units"]["type"], "string");
    assert_eq!(schema(&doc, "acme.core.v1.Outer.Inner")["properties"]["deepest"], reference("acme.core.v1.Outer.Inner.Deepest"));
    let tags: Vec<&Value> = doc["tags"].as_array().unwrap().iter().map(|t| &t["name"]).collect();
    assert_eq!(tags, ["Store", "Legacy"]);
}

/// Writes `source` as `x/v1/x.proto` next to a copy of the gateway fixture's google/api protos.
fn scratch(source: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("x/v1")).unwrap();
    std::fs::write(dir.path().join("x/v1/x.proto"), source).unwrap();
    let includes = vec![dir.path().to_path_buf(), fixture_dir("gateway").join("proto")];
    (dir, includes)
}

#[test]
fn colliding_routes_are_disambiguated() {
    let (_dir, includes) = scratch(
        r#"syntax = "proto3";
package x.v1;
import "google/api/annotations.proto";
message Req { string name = 1; string id = 2; Req next = 3; }
service A {
  rpc Get(Req) returns (Req) { option (google.api.http) = { get: "/v1/{name=things/*}" }; }
  rpc Delete(Req) returns (Req) { option (google.api.http) = { delete: "/v1/things/{id}" }; }
  rpc Custom(Req) returns (Req) { option (google.api.http) = { custom { kind: "LIST" path: "/v1/things" } }; }
}
service B {
  rpc GetById(Req) returns (Req) { option (google.api.http) = { get: "/v1/things/{id}" }; }
}
service C {
  rpc Get(Req) returns (Req) { option (google.api.http) = { get: "/v1/{name=things/*}" }; }
}
"#,
    );
    // Within one service, the second of two bindings of one route is left out (the router could
    // not tell them apart; an error with `strict`); across services (which may be served apart)
    // the document disambiguates.
    let (_clash_dir, clash_includes) = scratch(
        r#"syntax = "proto3";
package x.v1;
import "google/api/annotations.proto";
message Req { string name = 1; string id = 2; }
service A {
  rpc Get(Req) returns (Req) { option (google.api.http) = { get: "/v1/{name=things/*}" }; }
  rpc GetById(Req) returns (Req) { option (google.api.http) = { get: "/v1/things/{id}" }; }
}
"#,
    );
    let err = switchboard_codegen::Config::new().strict(true).openapi(&["x/v1/x.proto"], &clash_includes).unwrap_err().to_string();
    assert!(err.contains("method x.v1.A.GetById: google.api.http: `GET /v1/things/{id}` matches the same requests as `GET /v1/{name=things/*}` of x.v1.A.Get; binding skipped"), "{err}");
    // Without `strict`, the second binding is left out (with a warning) and the method is
    // reachable at its default route.
    let text = switchboard_codegen::Config::new().openapi(&["x/v1/x.proto"], &clash_includes).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["paths"].get("/v1/things/{id}").is_none(), "{text}");
    assert_eq!(op(&doc, "post", "/x.v1.A/GetById")["operationId"], "A_GetById");
    let text = switchboard_codegen::Config::new().openapi(&["x/v1/x.proto"], &includes).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    check_consistent("collisions", &doc);
    validate("collisions", &text);
    // The first binding owns the route; the path string is the first one seen for it.
    let first = op(&doc, "get", "/v1/things/{thing}");
    assert_eq!(first["operationId"], "A_Get");
    // Same route, other parameter name: renamed to the route's, described as the other field.
    let second = op(&doc, "get", "/v1/things/{thing}#2");
    assert_eq!(second["operationId"], "B_GetById");
    assert!(second["description"].as_str().unwrap().contains("also bound to `A_Get`"));
    assert_eq!(param_names(second, "path"), ["thing"]);
    assert_eq!(param_names(second, "query"), ["name"]);
    // Another method on the same route shares the path item.
    assert_eq!(op(&doc, "delete", "/v1/things/{thing}")["operationId"], "A_Delete");
    // Another service binding the same route comes after.
    assert_eq!(op(&doc, "get", "/v1/things/{thing}#3")["operationId"], "C_Get");
    // A method OpenAPI cannot describe is listed, not dropped silently.
    assert_eq!(doc["x-switchboard-skipped-bindings"][0]["method"], "LIST");
    // `next` is a `Req` again: recursion stops there.
    assert_eq!(param_names(first, "query"), ["id"]);
}

#[test]
fn one_service_document() {
    let (specs, includes) = fixture("gateway");
    let spec = switchboard_codegen::spec::proto::load(&specs, &includes).unwrap();
    let (api, warnings) = switchboard_codegen::lower::proto::lower(&spec.pool);
    assert_eq!(warnings, []);
    let service = api.packages.iter().flat_map(|p| &p.services).find(|s| s.name == "ShopService").unwrap();
    let doc = switchboard_codegen::openapi::service_document(&api, service);
    check_consistent("service_document", &doc);
    assert_eq!(doc["info"]["title"], "shop.v1.ShopService");
    assert!(doc["info"]["description"].as_str().unwrap().starts_with("Manages shelves"));
    assert!(doc["paths"].get("/shop.v1.ShopService/Ping").is_some());
    // Messages and enums of every file read are in the IR, imports and well-known types too.
    assert!(api.messages.iter().any(|m| m.package == "google.protobuf" && m.name == "Timestamp"));
    let product = api.messages.iter().find(|m| m.name == "Product").unwrap();
    let in_stock = product.field("in_stock").unwrap();
    assert_eq!((in_stock.json_name.as_str(), in_stock.number, in_stock.oneof), ("inStock", 4, Some(0)));
    assert_eq!(product.oneofs[0].name, "availability");
    assert_eq!(product.docs, ["A product."]);
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cli_prints_the_document() {
    let (specs, includes) = fixture("library");
    let mut args = vec!["openapi".to_owned()];
    for i in &includes {
        args.extend(["-I".to_owned(), i.display().to_string()]);
    }
    args.extend(specs.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = cli(&args);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, switchboard_codegen::Config::new().openapi(&specs, &includes).unwrap());
}

#[test]
fn cli_errors_are_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.proto"), "syntax = \"proto3\";\nmessage A {\n  int32 a = 1\n}\n").unwrap();
    let (ok, stdout, stderr) = cli(&["openapi", "-I", dir.path().to_str().unwrap(), "bad.proto"]);
    assert!(!ok && stdout.is_empty());
    let prefix = dir.path().join("bad.proto").display().to_string();
    assert_eq!(stderr.trim().strip_prefix(&prefix), Some(":4:1: expected ';' or '[', but found '}'"), "{stderr}");
}

#[test]
fn grpc_gateway_nested_paths_and_openapiv2_options() {
    let doc = document("notes");
    assert_eq!(doc["info"], serde_json::json!({"title": "Notes API", "version": "1.2.0", "description": "Notes kept in notebooks."}));
    // body: "payload.note": the body is the nested field's type; nothing under it, nor the
    // path's `parent.name`, is a query parameter.
    let create = op(&doc, "post", "/v1/notebooks/{notebook}/notes");
    assert_eq!(body_schema(create, "application/json"), &reference("notes.v1.Note"));
    assert_eq!(param_names(create, "query"), ["payload.comment", "request_id"]);
    assert_eq!(create["operationId"], "createNote");
    assert_eq!(create["summary"], "Create a note");
    assert_eq!(create["description"], "The body is the note; the notebook comes from the path.");
    assert_eq!(create["tags"], serde_json::json!(["notes"]));
    // body: "change.title": a string body.
    let rename = op(&doc, "post", "/v1/notes/{id}:rename");
    assert_eq!(body_schema(rename, "application/json"), &serde_json::json!({"type": "string"}));
    assert_eq!(param_names(rename, "query"), ["change.reason"]);
    // response_body: "content.text".
    let text = op(&doc, "get", "/v1/notes/{id}/text");
    assert_eq!(ok_schema(text, "application/json"), &serde_json::json!({"type": "string"}));
    // A path variable into a oneof member: the other member is not a query parameter.
    let by_id = op(&doc, "get", "/v1/notes/by-id/{note_id}");
    assert_eq!(param_names(by_id, "query"), ["include_deleted"]);
    let by_slug = op(&doc, "get", "/v1/notes/by-slug/{slug}");
    assert_eq!(param_names(by_slug, "query"), ["include_deleted"]);
    for (find, id) in [(by_id, "NoteService_FindNote"), (by_slug, "NoteService_FindNote_2")] {
        assert_eq!((find["operationId"].as_str(), find["deprecated"].as_bool()), (Some(id), Some(true)));
        assert_eq!(find["tags"], serde_json::json!(["search", "notes"]));
    }
    // openapiv2_tag names the service's tag; tags only operations name are listed too.
    let tags: Vec<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tags, ["Notebook", "notes", "search"]);
    let note = schema(&doc, "notes.v1.Note");
    assert_eq!((note["title"].as_str(), note["description"].as_str()), (Some("Note"), Some("A note in a notebook.")));
    assert_eq!(note["examples"], serde_json::json!([{"id": "n1", "text": "Buy milk"}]));
    assert_eq!(note["properties"]["id"]["examples"], serde_json::json!(["n1"]));
    assert_eq!(note["properties"]["text"]["title"], "Text");
}

#[test]
fn openapiv2_options_are_recognised_by_package_and_number_only() {
    // A declaration with grpc-gateway's names but another extension number is someone else's
    // option: it must not be read as grpc-gateway's.
    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("protoc-gen-openapiv2/options");
    std::fs::create_dir_all(&options).unwrap();
    std::fs::write(
        options.join("annotations.proto"),
        "syntax = \"proto3\";\npackage grpc.gateway.protoc_gen_openapiv2.options;\nimport \"google/protobuf/descriptor.proto\";\n\
         message Operation { string summary = 2; }\nextend google.protobuf.MethodOptions { Operation openapiv2_operation = 50001; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("x.proto"),
        "syntax = \"proto3\";\npackage x;\nimport \"protoc-gen-openapiv2/options/annotations.proto\";\nmessage M {}\n\
         service S {\n  // From the comment.\n  rpc Get(M) returns (M) {\n    option (grpc.gateway.protoc_gen_openapiv2.options.openapiv2_operation) = { summary: \"From the option\" };\n  }\n}\n",
    )
    .unwrap();
    let text = switchboard_codegen::Config::new().openapi(&["x.proto".to_owned()], &[dir.path().to_path_buf()]).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(op(&doc, "post", "/x.S/Get")["summary"], "From the comment.");
}
