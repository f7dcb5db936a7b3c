//! Order events through a message broker: `shop.orders.v1.Orders` (proto/shop/orders/v1/orders.proto).
//!
//! - `Placed(OrderPlaced)` is an event (it returns `google.protobuf.Empty`): publishers send it
//!   fire-and-forget, keyed by `order_id` (`[(switchboard.key) = true]`: the `sb-key` header, on
//!   Kafka the record key), and the server handles it at least once. An order with a negative
//!   amount is declined (FAILED_PRECONDITION) on every attempt, so it ends in the dead letters
//!   (`sb.dlq.shop.orders.v1.Orders.Placed`) after the server's last attempt.
//! - `GetOrder` is unary: what the server made of an order (accepted or not, how many handler
//!   runs, the key the handler saw), so a caller can see that its event was handled.
//!
//! [`OrderBook`] is the handler; `events-server` serves it on any broker URL and
//! `events-publish` publishes through the generated client. scripts/kafka_check.py does both
//! from Python over Kafka, written from docs/queue-protocol.md alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard::client::CallOptions;
use switchboard::queue::Broker;
use switchboard::{Code, Request, Response, Status};

/// Code generated from `proto/shop/orders/v1/orders.proto` by build.rs.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

pub use pb::shop::orders::v1 as orders;
use orders::{GetOrderRequest, Order, OrderPlaced, Orders, OrdersQueueClient, OrdersQueueServer};

/// The service's full name: topics and queues are named after it (`sb.event.<this>.Placed`, …).
pub const SERVICE: &str = "shop.orders.v1.Orders";

/// The attempts `events-server` makes at an event before dead-lettering it (the runtime's
/// default is 5; 3 keeps the declined order's way to the dead letters short: 100 + 200 ms).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The orders the server has seen, by id.
#[derive(Debug, Default)]
pub struct OrderBook {
    orders: Mutex<HashMap<String, Order>>,
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// The order `id`, if an event of it was handled.
    pub fn get(&self, id: &str) -> Option<Order> {
        self.orders.lock().unwrap().get(id).cloned()
    }

    /// How many orders the book holds.
    pub fn len(&self) -> usize {
        self.orders.lock().unwrap().len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Orders for OrderBook {
    async fn placed(&self, request: Request<OrderPlaced>) -> Result<Response<()>, Status> {
        let key = request.metadata().get("sb-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let placed = request.into_inner();
        if placed.order_id.is_empty() {
            // Poison: retrying cannot help, so it goes to the dead letters at once.
            return Err(Status::invalid_argument("order_id is empty"));
        }
        let accepted = placed.amount >= 0;
        let attempts = {
            let mut orders = self.orders.lock().unwrap();
            let order = orders.entry(placed.order_id.clone()).or_default();
            order.order_id = placed.order_id.clone();
            order.customer = placed.customer.clone();
            order.amount = placed.amount;
            order.accepted |= accepted;
            order.attempts += 1;
            order.key = key.clone();
            order.attempts
        };
        println!(
            "handled Placed {} (customer {:?}, amount {}, key {key:?}, run {attempts}): {}",
            placed.order_id,
            placed.customer,
            placed.amount,
            if accepted { "accepted" } else { "declined" }
        );
        if !accepted {
            return Err(Status::failed_precondition(format!("order {}: amount {} is negative: declined", placed.order_id, placed.amount)));
        }
        Ok(Response::new(()))
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Response<Order>, Status> {
        let id = request.into_inner().order_id;
        match self.get(&id) {
            Some(order) => Ok(Response::new(order)),
            None => Err(Status::not_found(format!("no event of order {id:?} was handled"))),
        }
    }
}

/// The queue server of `book`: `max_attempts` per event, retries 100 ms doubling.
pub fn queue_server(book: Arc<OrderBook>, max_attempts: u32) -> OrdersQueueServer<OrderBook> {
    OrdersQueueServer::from_arc(book).max_attempts(max_attempts)
}

/// Calls `GetOrder` through `broker` until the service answers (NOT_FOUND for an unknown order
/// is an answer), so that callers are known to be served: the broker's consumers are in place.
/// On Kafka the first group join takes a few seconds.
pub async fn wait_until_served(broker: &Broker, limit: Duration) -> Result<(), String> {
    let client = OrdersQueueClient::new(broker).timeout(Duration::from_secs(3));
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let probe = GetOrderRequest { order_id: "readiness-probe".into() };
        let last = match client.get_order(probe).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == Code::NotFound => return Ok(()),
            Err(status) => status,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{SERVICE} is not served through {} after {limit:?}: {:?}: {}", broker.url(), last.code(), last.message()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One event `events-publish` published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The order id: the event's key.
    pub order_id: String,
    /// Its message id (the idempotency key it was published with; CloudEvents `ce_id` on Kafka).
    pub message_id: String,
    /// The amount.
    pub amount: i64,
}

impl std::fmt::Display for Published {
    /// The line `events-publish` prints: `published order_id=… message_id=… amount=…`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "published order_id={} message_id={} amount={}", self.order_id, self.message_id, self.amount)
    }
}

/// Publishes `count` `Placed` events through the generated client's `publish_placed`: order ids
/// `<prefix>-1` … `<prefix>-<count>`, amounts `amount`, `amount + 1`, …; each one's message id is
/// `<order id>.placed` (sent as its idempotency key). Returns once the broker holds them all.
pub async fn publish(broker: &Broker, prefix: &str, count: usize, amount: i64) -> Result<Vec<Published>, Status> {
    let client = OrdersQueueClient::new(broker);
    let mut published = Vec::with_capacity(count);
    for i in 1..=count {
        let order_id = format!("{prefix}-{i}");
        let message_id = format!("{order_id}.placed");
        let amount = amount + i as i64 - 1;
        let event = OrderPlaced { order_id: order_id.clone(), customer: format!("customer-{}", i % 3), amount };
        client.publish_placed(CallOptions::new().idempotency_key(&message_id).request(event)).await?;
        published.push(Published { order_id, message_id, amount });
    }
    Ok(published)
}

/// A prefix for order ids that differs from run to run (a broker keeps the events of earlier runs).
pub fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("ord-{:x}", (nanos as u64 ^ (u64::from(std::process::id()) << 32)) & 0xff_ffff_ffff)
}
