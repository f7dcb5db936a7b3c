//! The grpc-gateway-style fixture (tests/fixtures/gateway) served over REST from its generated
//! code, called the way curl or a browser would: every google.api.http rule shape, proto3 JSON,
//! errors, streaming, and the same handler over gRPC on the same port.

use std::collections::HashMap;

use golden::gateway::shop::v1::*;
use serde_json::{json, Value};
use switchboard::wkt::{FieldMask, Struct, Timestamp};
use switchboard::{Request, Response, Status, Streaming};
use switchboard_test_support::http::Http;

struct Shop;

fn ts(s: &str) -> Timestamp {
    switchboard::chrono::DateTime::parse_from_rfc3339(s).expect("timestamp").to_utc().into()
}

impl ShopService for Shop {
    async fn list_shelves(&self, _: Request<()>) -> Result<Response<ListShelvesResponse>, Status> {
        let shelf = Shelf {
            name: "shelves/1".into(),
            theme: "sci-fi".into(),
            labels: HashMap::from([("floor".to_owned(), "2".to_owned())]),
            create_time: Some(ts("2024-05-01T10:00:00Z")),
        };
        Ok(Response::new(ListShelvesResponse { shelves: vec![shelf], next_page_token: "p2".into() }))
    }

    async fn create_shelf(&self, request: Request<CreateShelfRequest>) -> Result<Response<Shelf>, Status> {
        let req = request.into_inner();
        let mut shelf = req.shelf.ok_or_else(|| Status::invalid_argument("shelf is required"))?;
        shelf.name = format!("shelves/{}", req.request_id);
        Ok(Response::new(shelf))
    }

    async fn get_product(&self, request: Request<GetProductRequest>) -> Result<Response<Product>, Status> {
        let req = request.into_inner();
        let id = req.product.map(|p| p.id).unwrap_or_default();
        Ok(Response::new(Product {
            name: req.name,
            id,
            price: Some(product::Price { currency_code: "EUR".into(), units: 12_345_678_901, nanos: 5 }),
            rating_count: Some(7),
            thumbnail: vec![0, 1, 2, 255],
            tags: req.read_mask.map(|m| m.paths).unwrap_or_default(),
            availability: Some(product::Availability::InStock(3)),
        }))
    }

    async fn update_product(&self, request: Request<UpdateProductRequest>) -> Result<Response<Product>, Status> {
        let req = request.into_inner();
        let mut product = req.product.unwrap_or_default();
        product.tags.extend(req.update_mask.map(|m| m.paths).unwrap_or_default());
        Ok(Response::new(product))
    }

    async fn delete_product(&self, request: Request<GetProductRequest>) -> Result<Response<()>, Status> {
        let name = request.into_inner().name;
        if name.contains("missing") {
            return Err(Status::not_found(format!("{name} does not exist")));
        }
        Ok(Response::new(()))
    }

    async fn archive_shelf(&self, request: Request<ArchiveShelfRequest>) -> Result<Response<Shelf>, Status> {
        let req = request.into_inner();
        let theme = if req.force { "archived (forced)" } else { "archived" };
        Ok(Response::new(Shelf { name: req.name, theme: theme.into(), ..Default::default() }))
    }

    async fn probe(&self, _: Request<String>) -> Result<Response<Struct>, Status> {
        Ok(Response::new(Struct::default()))
    }

    async fn get_shelf_labels(&self, request: Request<ArchiveShelfRequest>) -> Result<Response<Shelf>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(Shelf { name: name.clone(), labels: HashMap::from([("of".to_owned(), name)]), ..Default::default() }))
    }

    async fn watch_products(&self, request: Request<WatchRequest>) -> Result<Response<Streaming<ProductEvent>>, Status> {
        let req = request.into_inner();
        let since = req.since.map(|t| serde_json::to_value(t).unwrap().as_str().unwrap().to_owned()).unwrap_or_default();
        let mut items: Vec<Result<ProductEvent, Status>> = [product_event::Kind::Created, product_event::Kind::Deleted]
            .into_iter()
            .map(|kind| {
                Ok(ProductEvent {
                    kind: kind as i32,
                    product: Some(Product { name: format!("{}/products/x", req.parent), id: since.clone(), ..Default::default() }),
                })
            })
            .collect();
        if req.parent.ends_with("/broken") {
            items.push(Err(Status::unavailable("feed broke")));
        }
        Ok(Response::new(Streaming::new(switchboard::stream::iter(items))))
    }

    async fn import_products(&self, request: Request<Streaming<Product>>) -> Result<Response<ImportSummary>, Status> {
        let mut stream = request.into_inner();
        let mut summary = ImportSummary::default();
        while let Some(product) = stream.message().await? {
            summary.imported += 1;
            summary.errors.push(product.id);
        }
        Ok(Response::new(summary))
    }

    async fn sync_stock(&self, request: Request<Streaming<StockDelta>>) -> Result<Response<Streaming<StockLevel>>, Status> {
        let mut deltas = request.into_inner();
        let mut levels = Vec::new();
        while let Some(d) = deltas.message().await? {
            levels.push(StockLevel { product_id: d.product_id, level: (100 + d.delta) as u64 });
        }
        Ok(Response::new(Streaming::iter(levels)))
    }

    #[allow(deprecated)]
    async fn ping(&self, request: Request<Timestamp>) -> Result<Response<Timestamp>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serves the shop over gRPC and REST on one port.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(switchboard::Server::builder().add_service(ShopServiceServer::new(Shop)).serve(listener));
    format!("http://{addr}")
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn call(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let answer = Http::new(base).request(method, path).headers(headers).body(body.to_owned()).send().await;
    let mut map = http::HeaderMap::new();
    for (k, v) in &answer.headers {
        map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
    }
    Reply { status: answer.status, headers: map, body: answer.text() }
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

#[tokio::test]
async fn get_without_body_and_proto3_json_output() {
    let base = serve().await;
    let r = call(&base, "GET", "/v1/shelves", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.json(),
        json!({"shelves": [{"name": "shelves/1", "theme": "sci-fi", "labels": {"floor": "2"}, "createTime": "2024-05-01T10:00:00Z"}], "nextPageToken": "p2"})
    );
}

#[tokio::test]
async fn body_field_and_query_string() {
    let base = serve().await;
    let r = call(&base, "POST", "/v1/shelves?request_id=r7", JSON, r#"{"theme": "poetry", "labels": {"a": "b"}}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"name": "shelves/r7", "theme": "poetry", "labels": {"a": "b"}}));
    // The JSON name works in the query too.
    let r = call(&base, "POST", "/v1/shelves?requestId=r8", JSON, r#"{}"#).await;
    assert_eq!(r.json()["name"], "shelves/r8");
}

#[tokio::test]
async fn segment_patterns_field_paths_and_additional_bindings() {
    let base = serve().await;
    let r = call(&base, "GET", "/v1/shelves/s1/products/p%201?read_mask=a,b.c", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["name"], "shelves/s1/products/p 1");
    assert_eq!(j["price"], json!({"currencyCode": "EUR", "units": "12345678901", "nanos": 5}), "int64 as string");
    assert_eq!(j["thumbnail"], "AAEC/w==", "bytes as base64");
    assert_eq!(j["tags"], json!(["a", "b.c"]), "FieldMask from the query");
    assert_eq!(j["inStock"], 3, "oneof member");
    assert_eq!(j["ratingCount"], "7", "Int64Value as a string, like int64");
    // additional_bindings: `{product.id}` sets a nested field.
    let r = call(&base, "GET", "/v1/products/42", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["id"], "42");
    // `**` takes the rest of the path.
    let r = call(&base, "DELETE", "/v1/shelves/s1/products/a/b/c", &[], "").await;
    assert_eq!((r.status, r.json()), (200, json!({})));
}

#[tokio::test]
async fn patch_with_body_field_path_variable_and_field_mask() {
    let base = serve().await;
    let r = call(
        &base,
        "PATCH",
        "/v1/shelves/s1/products/p1?update_mask=price,tags",
        JSON,
        r#"{"id": "p1", "price": {"currency_code": "USD", "units": "5"}, "tags": ["new"], "ratingCount": "12345678901"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["ratingCount"], "12345678901", "an Int64Value given as a string");
    assert_eq!(j["name"], "shelves/s1/products/p1", "path variable fills product.name");
    assert_eq!(j["price"], json!({"currencyCode": "USD", "units": "5"}), "proto names accepted in the body");
    assert_eq!(j["tags"], json!(["new", "price", "tags"]));
}

#[tokio::test]
async fn custom_verb_body_star_and_response_body() {
    let base = serve().await;
    let r = call(&base, "POST", "/v1/shelves/s9:archive", JSON, r#"{"force": true}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"name": "shelves/s9", "theme": "archived (forced)"}));
    let r = call(&base, "GET", "/v1/shelves/s9/labels", &[], "").await;
    assert_eq!(r.json(), json!({"of": "shelves/s9"}), "response_body sends one field");
    let r = call(&base, "HEAD", "/v1/probe", &[], "").await;
    assert_eq!(r.status, 200);
    // HEAD on a GET binding: the GET's headers, no body.
    let r = call(&base, "HEAD", "/v1/shelves/s9/labels", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn default_binding_with_well_known_type() {
    let base = serve().await;
    let r = call(&base, "POST", "/shop.v1.ShopService/Ping", JSON, r#""2024-01-02T03:04:05.5Z""#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!("2024-01-02T03:04:05.500Z"));
}

#[tokio::test]
async fn client_mistakes_are_4xx_naming_the_field() {
    let base = serve().await;
    let r = call(&base, "POST", "/v1/shelves/s9:archive", JSON, r#"{"force": "yes"}"#).await;
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["code"], 3);
    assert!(j["message"].as_str().unwrap().contains("force"), "{j}");
    let r = call(&base, "POST", "/v1/shelves/s9:archive", JSON, r#"{"force": tru"#).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("malformed JSON"), "{}", r.body);
    let r = call(&base, "GET", "/v1/shelves/s1/products/p1?nope=1", &[], "").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("nope"), "{}", r.body);
    let r = call(&base, "GET", "/v1/shelves/s1/products/p1?read_mask=a&read_mask=b", &[], "").await;
    assert_eq!(r.status, 400, "a non-repeated field given twice: {}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("read_mask"), "{}", r.body);
    let r = call(&base, "GET", "/v1/nowhere", &[], "").await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(5)));
    let r = call(&base, "PUT", "/v1/shelves", JSON, "{}").await;
    assert_eq!(r.status, 405);
    assert!(r.headers["allow"].to_str().unwrap().contains("GET"), "{:?}", r.headers);
    let r = call(&base, "DELETE", "/v1/shelves/s1/products/missing", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"code": 5, "message": "shelves/s1/products/missing does not exist", "details": []}));
}

#[tokio::test]
async fn server_streaming_as_ndjson_and_sse() {
    let base = serve().await;
    let r = call(&base, "GET", "/v1/shelves/s1/products:watch?since=2024-01-01T00:00:00Z", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = r.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{}", r.body);
    assert_eq!(lines[0]["result"]["kind"], "CREATED", "enums by name");
    assert_eq!(lines[1]["result"]["kind"], "DELETED");
    assert_eq!(lines[0]["result"]["product"]["id"], "2024-01-01T00:00:00Z");

    let r = call(&base, "GET", "/v1/shelves/broken/products:watch", &[], "").await;
    let lines: Vec<Value> = r.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{}", r.body);
    assert_eq!(lines[2], json!({"error": {"code": 14, "message": "feed broke", "details": []}}));

    let r = call(&base, "GET", "/v1/shelves/s1/products:watch", &[("accept", "text/event-stream")], "").await;
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let events: Vec<&str> = r.body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2, "{}", r.body);
    let first: Value = serde_json::from_str(events[0].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(first["kind"], "CREATED");
}

#[tokio::test]
async fn client_and_bidi_streaming_read_ndjson_bodies() {
    let base = serve().await;
    let body = "{\"id\": \"a\"}\n{\"id\": \"b\"}\n\n{\"id\": \"c\"}";
    let r = call(&base, "POST", "/shop.v1.ShopService/ImportProducts", &[("content-type", "application/x-ndjson")], body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"imported": "3", "errors": ["a", "b", "c"]}));
    let r = call(&base, "POST", "/shop.v1.ShopService/ImportProducts", &[], "{\"id\": 1}\n").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = call(&base, "POST", "/shop.v1.ShopService/SyncStock", &[], "{\"productId\": \"a\", \"delta\": -5}\n").await;
    assert_eq!(r.body.trim(), r#"{"result":{"productId":"a","level":"95"}}"#);
}

#[tokio::test]
async fn rest_client_uses_the_bindings_and_maps_errors_back() {
    let base = serve().await;
    let mut client = ShopServiceRestClient::new(&base).unwrap();
    let p = client
        .get_product(GetProductRequest { name: "shelves/a/products/b".into(), read_mask: Some(FieldMask { paths: vec!["x".into()] }), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.name, "shelves/a/products/b");
    assert_eq!(p.tags, vec!["x"]);
    assert_eq!(p.price.unwrap().units, 12_345_678_901);

    let updated = client
        .update_product(UpdateProductRequest {
            product: Some(Product { name: "shelves/a/products/b".into(), tags: vec!["t".into()], ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["tags".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.tags, vec!["t", "tags"]);

    let labels = client.get_shelf_labels(ArchiveShelfRequest { name: "shelves/q".into(), force: false }).await.unwrap();
    assert_eq!(labels.get_ref().labels["of"], "shelves/q", "response_body is put back into its field");

    let err = client.delete_product(GetProductRequest { name: "shelves/a/products/missing".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), switchboard::Code::NotFound);
    assert_eq!(err.message(), "shelves/a/products/missing does not exist");

    let err = client.get_product(GetProductRequest { name: "not-a-shelf".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), switchboard::Code::InvalidArgument, "{err:?}");

    let mut events = client
        .watch_products(WatchRequest { parent: "shelves/broken".into(), since: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(events.message().await.unwrap().unwrap().kind, product_event::Kind::Created as i32);
    assert!(events.message().await.unwrap().is_some());
    assert_eq!(events.message().await.unwrap_err().code(), switchboard::Code::Unavailable);

    let summary = client
        .import_products(switchboard::stream::iter(vec![Product { id: "1".into(), ..Default::default() }; 4]))
        .await
        .unwrap();
    assert_eq!(summary.get_ref().imported, 4);
    #[allow(deprecated)]
    let pong = client.ping(ts("2020-01-01T00:00:00Z")).await.unwrap();
    assert_eq!(pong.into_inner(), ts("2020-01-01T00:00:00Z"));
    let shelves = client.list_shelves(()).await.unwrap();
    assert_eq!(shelves.get_ref().shelves[0].labels["floor"], "2");
}

#[tokio::test]
async fn grpc_and_rest_share_one_port_and_one_handler() {
    let base = serve().await;
    let mut grpc = ShopServiceClient::connect(base.clone()).await.unwrap();
    let shelf = grpc.archive_shelf(ArchiveShelfRequest { name: "shelves/g".into(), force: true }).await.unwrap();
    assert_eq!(shelf.get_ref().theme, "archived (forced)");
    let r = call(&base, "POST", "/shop.v1.ShopService/Ping", JSON, r#""2024-01-02T03:04:05Z""#).await;
    assert_eq!(r.status, 200);
    // The default REST binding and the gRPC path are the same URL; content-type tells them apart.
    #[allow(deprecated)]
    let pong = grpc.ping(ts("2024-01-02T03:04:05Z")).await.unwrap();
    assert_eq!(pong.into_inner(), ts("2024-01-02T03:04:05Z"));
}

#[tokio::test]
async fn openapi_document_is_served() {
    let base = serve().await;
    let r = call(&base, "GET", "/openapi.json", &[], "").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    // The document generated from the proto, not a stand-in: expanded resource paths, schemas.
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/shelves/{shelf}/products/{product}"), "{:?}", paths.keys());
    assert!(paths["/v1/shelves/{shelf}/products/{product}"]["get"]["parameters"].is_array());
    assert_eq!(doc["components"]["schemas"]["shop.v1.Product.Price"]["properties"]["units"]["type"], "string");
    // An independent validator, when Python has it.
    let has_validator = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_validator {
        eprintln!("SKIP openapi-spec-validator: not installed (pip install openapi-spec-validator)");
        return;
    }
    let file = std::env::temp_dir().join(format!("switchboard-served-openapi-{}.json", std::process::id()));
    std::fs::write(&file, &r.body).unwrap();
    let out = std::process::Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn wrapper_fields_take_the_wrapped_scalars_json() {
    let p: Product = serde_json::from_str(r#"{"ratingCount": 9}"#).unwrap();
    assert_eq!(p.rating_count, Some(9), "a number is accepted too");
    let p: Product = serde_json::from_str(r#"{"ratingCount": null}"#).unwrap();
    assert_eq!(p.rating_count, None);
    let err = serde_json::from_str::<Product>(r#"{"ratingCount": "many"}"#).unwrap_err();
    assert!(err.to_string().contains("invalid"), "{err}");
    let json = serde_json::to_value(Product::default()).unwrap();
    assert!(json.get("ratingCount").is_none(), "an unset wrapper is left out: {json}");
}
