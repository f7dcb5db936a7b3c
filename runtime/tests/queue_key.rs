//! Partition keys over the embedded broker: an event (and a request) of a method whose spec
//! names a key field carries `sb-key` with the field's value, which the handler reads in its
//! request metadata; a per-call key wins; a method without one sends none.

use std::sync::{Arc, Mutex};

use switchboard::client::CallOptions;
use switchboard::queue::{Broker, PartitionKey};
use switchboard::{Request, Response, Status};
use std::time::Duration;

use switchboard_test_support::ready::{eventually, retry_until};

#[derive(Clone, PartialEq, switchboard::prost::Message)]
#[prost(prost_path = "::switchboard::prost")]
pub struct Order {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub customer: String,
    #[prost(uint64, optional, tag = "3")]
    pub shard: Option<u64>,
    #[prost(bool, tag = "4")]
    pub rush: bool,
}

#[derive(Clone, PartialEq, switchboard::prost::Message)]
#[prost(prost_path = "::switchboard::prost")]
pub struct Empty {}

#[switchboard::service(package = "test.key.v1", rest = false)]
pub trait Orders {
    #[rpc(event, key = "customer")]
    async fn placed(&self, req: Request<Order>) -> Result<Response<Empty>, Status>;
    #[rpc(event, key = "shard")]
    async fn sharded(&self, req: Request<Order>) -> Result<Response<Empty>, Status>;
    #[rpc(event, key = "rush")]
    async fn rushed(&self, req: Request<Order>) -> Result<Response<Empty>, Status>;
    #[rpc(event)]
    async fn unkeyed(&self, req: Request<Order>) -> Result<Response<Empty>, Status>;
}

/// `(method, order id, sb-key)` of one call handled.
type Handled = (&'static str, String, Option<String>);

/// Every call handled.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Handled>>>);

impl Seen {
    fn note(&self, method: &'static str, req: Request<Order>) -> Result<Response<Empty>, Status> {
        let key = req.metadata().get("sb-key").map(|v| v.to_str().unwrap().to_owned());
        self.0.lock().unwrap().push((method, req.into_inner().id, key));
        Ok(Response::new(Empty {}))
    }

    fn key_of(&self, method: &str, id: &str) -> Option<Option<String>> {
        self.0.lock().unwrap().iter().find(|(m, i, _)| *m == method && i == id).map(|(_, _, k)| k.clone())
    }
}

impl Orders for Seen {
    async fn placed(&self, req: Request<Order>) -> Result<Response<Empty>, Status> {
        self.note("placed", req)
    }
    async fn sharded(&self, req: Request<Order>) -> Result<Response<Empty>, Status> {
        self.note("sharded", req)
    }
    async fn rushed(&self, req: Request<Order>) -> Result<Response<Empty>, Status> {
        self.note("rushed", req)
    }
    async fn unkeyed(&self, req: Request<Order>) -> Result<Response<Empty>, Status> {
        self.note("unkeyed", req)
    }
}

fn order(id: &str, customer: &str) -> Order {
    Order { id: id.into(), customer: customer.into(), shard: None, rush: false }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_key_field_and_the_callers_key_wins() {
    let broker = Broker::connect("memory://keys").await.unwrap();
    let seen = Seen::default();
    let server = OrdersQueueServer::new(seen.clone());
    let b = broker.clone();
    tokio::spawn(async move { server.serve(&b).await.unwrap() });
    let client = OrdersQueueClient::new(&broker);

    // Request-reply first: it waits for the server to be up, and is keyed the same way.
    retry_until("the server", Duration::from_secs(10), || client.placed(order("call", "ada"))).await;
    assert_eq!(seen.key_of("placed", "call"), Some(Some("ada".into())));

    client.publish_placed(order("e1", "ada")).await.unwrap();
    let mine = CallOptions::new().partition_key("vip-lane").request(order("e2", "ada"));
    client.publish_placed(mine).await.unwrap();
    let mut extension = Request::new(order("e3", "grace"));
    extension.extensions_mut().insert(PartitionKey::new("by-extension"));
    client.publish_placed(extension).await.unwrap();
    client.publish_sharded(Order { shard: Some(18_446_744_073_709_551_615), ..order("s1", "x") }).await.unwrap();
    // An optional field without a value: no key (a partitioning broker keys it by message id).
    client.publish_sharded(order("s2", "x")).await.unwrap();
    client.publish_rushed(Order { rush: true, ..order("r1", "x") }).await.unwrap();
    client.publish_unkeyed(order("u1", "x")).await.unwrap();

    eventually("8 calls handled", Duration::from_secs(10), || seen.0.lock().unwrap().len() == 8).await;
    assert_eq!(seen.key_of("placed", "e1"), Some(Some("ada".into())), "the field's value");
    assert_eq!(seen.key_of("placed", "e2"), Some(Some("vip-lane".into())), "the per-call key wins");
    assert_eq!(seen.key_of("placed", "e3"), Some(Some("by-extension".into())));
    assert_eq!(seen.key_of("sharded", "s1"), Some(Some("18446744073709551615".into())), "integers in decimal");
    assert_eq!(seen.key_of("sharded", "s2"), Some(None));
    assert_eq!(seen.key_of("rushed", "r1"), Some(Some("true".into())));
    assert_eq!(seen.key_of("unkeyed", "u1"), Some(None), "no key field, no key");
}
