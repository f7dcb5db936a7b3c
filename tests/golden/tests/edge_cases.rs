//! The naming edge cases of tests/fixtures/edge, served and called over gRPC: keyword method
//! names, a trait renamed to avoid a collision, client methods renamed to avoid the client's own
//! constructors, nested and cross-package types, well-known types and the root package.

use golden::edge::acme::core::v1::{outer, StoreClient, StoreService, StoreServiceClient, StoreServiceServer, STORE_SERVICE_DESCRIPTOR};
use golden::edge::acme::r#type::Money;
use golden::edge::{GlobalThing, Root, RootClient, RootServer};
use switchboard::grpc::transport::Server;
use switchboard::{Request, Response, Status, Streaming};

struct Store;

impl StoreService for Store {
    async fn r#type(&self, req: Request<StoreClient>) -> Result<Response<StoreClient>, Status> {
        Ok(Response::new(StoreClient { id: format!("typed:{}", req.into_inner().id) }))
    }
    async fn r#match(&self, req: Request<outer::Inner>) -> Result<Response<outer::inner::Deepest>, Status> {
        Ok(Response::new(req.into_inner().deepest.unwrap_or_default()))
    }
    async fn connect(&self, _: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
    async fn new(&self, req: Request<Money>) -> Result<Response<Money>, Status> {
        let m = req.into_inner();
        Ok(Response::new(Money { units: m.units * 2, ..m }))
    }
    async fn global(&self, req: Request<GlobalThing>) -> Result<Response<bool>, Status> {
        Ok(Response::new(!req.into_inner().name.is_empty()))
    }
    async fn wait(
        &self,
        req: Request<switchboard::wkt::Duration>,
    ) -> Result<Response<Streaming<switchboard::wkt::Duration>>, Status> {
        let d = req.into_inner();
        Ok(Response::new(Streaming::iter(vec![d, d])))
    }
}

struct RootImpl;

impl Root for RootImpl {
    async fn hello(&self, req: Request<GlobalThing>) -> Result<Response<GlobalThing>, Status> {
        Ok(Response::new(GlobalThing { name: format!("hello {}", req.into_inner().name) }))
    }
}

#[tokio::test]
async fn keyword_and_colliding_names_work_over_grpc() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(StoreServiceServer::new(Store))
            .add_service(RootServer::new(RootImpl))
            .serve_with_incoming(switchboard::grpc::transport::server::TcpIncoming::from(listener)),
    );
    let url = format!("http://{addr}");
    let mut store = StoreServiceClient::connect(url.clone()).await.unwrap();
    assert_eq!(store.r#type(StoreClient { id: "a".into() }).await.unwrap().into_inner().id, "typed:a");
    let inner = outer::Inner { deepest: Some(outer::inner::Deepest { value: "deep".into() }) };
    assert_eq!(store.r#match(inner).await.unwrap().into_inner().value, "deep");
    store.connect_rpc(()).await.unwrap();
    let doubled = store.new_rpc(Money { currency: "EUR".into(), units: 21 }).await.unwrap().into_inner();
    assert_eq!(doubled.units, 42);
    assert!(store.global(GlobalThing { name: "x".into() }).await.unwrap().into_inner());
    let d = switchboard::wkt::Duration { seconds: 3, nanos: 0 };
    let mut waits = store.wait(d).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(x) = waits.message().await.unwrap() {
        assert_eq!(x.seconds, 3);
        n += 1;
    }
    assert_eq!(n, 2);

    let mut root = RootClient::connect(url).await.unwrap();
    assert_eq!(root.hello(GlobalThing { name: "root".into() }).await.unwrap().into_inner().name, "hello root");

    // Wire names are the proto's, whatever the Rust names became.
    assert_eq!(STORE_SERVICE_DESCRIPTOR.full_name, "acme.core.v1.Store");
    assert_eq!(STORE_SERVICE_DESCRIPTOR.methods[0].grpc_path, "/acme.core.v1.Store/Type");
    assert_eq!(STORE_SERVICE_DESCRIPTOR.methods[2].idempotency, switchboard::Idempotency::Idempotent);
}

#[test]
fn http_bindings_reach_the_descriptor() {
    use golden::gateway::shop::v1::SHOP_SERVICE_DESCRIPTOR as D;
    let get = D.method_by_path("/shop.v1.ShopService/GetProduct").unwrap();
    let routes: Vec<_> = get.http.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(routes, [("GET", "/v1/{name=shelves/*/products/*}"), ("GET", "/v1/products/{product.id}")]);
    let probe = D.method_by_path("/shop.v1.ShopService/Probe").unwrap();
    assert_eq!((probe.http[0].method, probe.http[0].path), ("HEAD", "/v1/probe"));
    let labels = D.method_by_path("/shop.v1.ShopService/GetShelfLabels").unwrap();
    assert_eq!(labels.http[0].response_body, "labels");
    let update = D.method_by_path("/shop.v1.ShopService/UpdateProduct").unwrap();
    assert_eq!((update.http[0].method, update.http[0].body), ("PATCH", "product"));
    assert!(D.method_by_path("/shop.v1.ShopService/Ping").unwrap().deprecated);
    assert_eq!(D.method_by_path("/shop.v1.ShopService/SyncStock").unwrap().shape, switchboard::CallShape::BidiStreaming);
}

#[test]
fn wrapper_fields_in_every_place_take_the_wrapped_scalars_json() {
    use golden::edge::acme::core::v1::{wrapped::Pick, Wrapped};
    let w = Wrapped {
        big: Some(u64::MAX),
        many: vec![-1, 12_345_678_901],
        blobs: [("k".to_owned(), vec![0xff, 0])].into_iter().collect(),
        pick: Some(Pick::Ratio(0.5)),
    };
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"big": "18446744073709551615", "many": ["-1", "12345678901"], "blobs": {"k": "/wA="}, "ratio": 0.5})
    );
    let back: Wrapped = serde_json::from_value(json).unwrap();
    assert_eq!(back, w);
    let nan: Wrapped = serde_json::from_str(r#"{"ratio": "NaN"}"#).unwrap();
    assert!(matches!(nan.pick, Some(Pick::Ratio(r)) if r.is_nan()), "the string forms of a double are read");
    let label: Wrapped = serde_json::from_str(r#"{"label": "x", "many": [1, "2"]}"#).unwrap();
    assert_eq!((label.pick, label.many), (Some(Pick::Label("x".into())), vec![1, 2]));
}
