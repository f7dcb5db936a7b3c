//! Partition keys generated from specs (tests/fixtures/keys): a `.proto` field marked
//! `[(switchboard.key) = true]` and an OpenAPI `x-switchboard-key` reach the events' `sb-key`
//! header, which the handler reads in its request metadata; a per-call key wins.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use golden::keys::keys::v1::{Lane, Moved, Orders, OrderPlaced, OrdersQueueClient, OrdersQueueServer, Ping, Sharded};
use golden::keys::shop::{
    MoveOrderBody, MoveOrderBodyType, MoveOrderRequest, MoveOrderResponse, Order, PlaceOrderRequest, PlaceOrderResponse, Shop,
    ShopQueueClient, ShopQueueServer,
};
use switchboard::client::CallOptions;
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status};
use switchboard_test_support::ready::eventually;

/// `(method, sb-key)` of every call handled.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(&'static str, Option<String>)>>>);

impl Seen {
    fn note<M>(&self, method: &'static str, req: &Request<M>) {
        let key = req.metadata().get("sb-key").map(|v| v.to_str().unwrap().to_owned());
        self.0.lock().unwrap().push((method, key));
    }
    fn keys(&self, method: &str) -> Vec<Option<String>> {
        self.0.lock().unwrap().iter().filter(|(m, _)| *m == method).map(|(_, k)| k.clone()).collect()
    }
}

impl Orders for Seen {
    async fn placed(&self, req: Request<OrderPlaced>) -> Result<Response<()>, Status> {
        self.note("placed", &req);
        Ok(Response::new(()))
    }
    async fn moved(&self, req: Request<Moved>) -> Result<Response<()>, Status> {
        self.note("moved", &req);
        Ok(Response::new(()))
    }
    async fn sharded(&self, req: Request<Sharded>) -> Result<Response<()>, Status> {
        self.note("sharded", &req);
        Ok(Response::new(()))
    }
    async fn lookup(&self, req: Request<OrderPlaced>) -> Result<Response<OrderPlaced>, Status> {
        self.note("lookup", &req);
        Ok(Response::new(req.into_inner()))
    }
    async fn pinged(&self, req: Request<Ping>) -> Result<Response<()>, Status> {
        self.note("pinged", &req);
        Ok(Response::new(()))
    }
}

impl Shop for Seen {
    async fn place_order(&self, req: Request<PlaceOrderRequest>) -> Result<Response<PlaceOrderResponse>, Status> {
        self.note("place_order", &req);
        Ok(Response::new(PlaceOrderResponse::NoContent))
    }
    async fn move_order(&self, req: Request<MoveOrderRequest>) -> Result<Response<MoveOrderResponse>, Status> {
        self.note("move_order", &req);
        Ok(Response::new(MoveOrderResponse::NoContent))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_keys_reach_the_sb_key_header() {
    let broker = Broker::connect("memory://golden-keys").await.unwrap();
    let seen = Seen::default();
    for serve in [
        Box::pin({
            let (server, b) = (OrdersQueueServer::new(seen.clone()), broker.clone());
            async move { server.serve(&b).await.unwrap() }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        Box::pin({
            let (server, b) = (ShopQueueServer::new(seen.clone()), broker.clone());
            async move { server.serve(&b).await.unwrap() }
        }),
    ] {
        tokio::spawn(serve);
    }
    let orders = OrdersQueueClient::new(&broker);
    let shop = ShopQueueClient::new(&broker);
    let placed = |id: &str| OrderPlaced { order_id: id.into(), total: 5 };

    orders.publish_placed(placed("o-1")).await.unwrap();
    orders.publish_placed(CallOptions::new().partition_key("mine").request(placed("o-2"))).await.unwrap();
    orders.publish_moved(Moved { r#type: Lane::Express as i32, order: Some(placed("o-3")) }).await.unwrap();
    orders.publish_sharded(Sharded { shard: Some(7) }).await.unwrap();
    orders.publish_sharded(Sharded { shard: None }).await.unwrap();
    orders.publish_pinged(Ping {}).await.unwrap();
    shop.publish_place_order(PlaceOrderRequest { body: Order { order_id: "s-1".into(), total: None } }).await.unwrap();
    let body = MoveOrderBody { r#type: Some(MoveOrderBodyType::Express), count: Some(2) };
    shop.publish_move_order(MoveOrderRequest { body: Some(body) }).await.unwrap();
    shop.publish_move_order(MoveOrderRequest { body: None }).await.unwrap();

    eventually("9 events handled", Duration::from_secs(10), || seen.0.lock().unwrap().len() == 9).await;
    // (Events are handled concurrently: in any order.)
    let mut placed_keys = seen.keys("placed");
    placed_keys.sort();
    assert_eq!(placed_keys, [Some("mine".to_owned()), Some("o-1".to_owned())], "the field, and the per-call key");
    assert_eq!(seen.keys("moved"), [Some("1".to_owned())], "an enum is its number");
    assert_eq!(seen.keys("sharded").len(), 2);
    assert!(seen.keys("sharded").contains(&Some("7".to_owned())) && seen.keys("sharded").contains(&None));
    assert_eq!(seen.keys("pinged"), [None]);
    assert_eq!(seen.keys("place_order"), [Some("s-1".to_owned())]);
    let moves = seen.keys("move_order");
    assert!(moves.contains(&Some("express".to_owned())) && moves.contains(&None), "{moves:?}");
}
