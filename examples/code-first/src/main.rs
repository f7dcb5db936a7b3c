//! Run: cargo run -p code-first
//!
//! Code-first: no spec file. The message types are plain prost structs, the service is a trait
//! written by hand, and `#[switchboard::service]` turns it into exactly what generated code gets:
//! `CounterServer` (gRPC, plugs into tonic's `Server`) and `CounterClient`.

use std::sync::atomic::{AtomicI64, Ordering};

use switchboard::grpc::transport::Server;
use switchboard::{Request, Response, Status, Streaming};

/// How much to add.
#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Add {
    #[prost(sint64, tag = "1")]
    pub amount: i64,
}

/// The counter's value.
#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Value {
    #[prost(sint64, tag = "1")]
    pub value: i64,
}

/// A shared counter. Served at `/counter.v1.Counter/<Method>`, exactly as if it came from a .proto.
#[switchboard::service(package = "counter.v1")]
pub trait Counter {
    /// Adds to the counter and returns the new value.
    #[rpc(name = "Add")]
    async fn add(&self, req: Request<Add>) -> Result<Response<Value>, Status>;

    /// Applies a stream of additions; returns the final value.
    async fn add_many(&self, req: Request<Streaming<Add>>) -> Result<Response<Value>, Status>;

    /// Counts from the current value up by one, `amount` times.
    #[rpc(no_side_effects)]
    async fn count_up(&self, req: Request<Add>) -> Result<Response<Streaming<Value>>, Status>;
}

#[derive(Default)]
struct AtomicCounter(AtomicI64);

impl Counter for AtomicCounter {
    async fn add(&self, req: Request<Add>) -> Result<Response<Value>, Status> {
        let amount = req.into_inner().amount;
        let value = self.0.fetch_add(amount, Ordering::SeqCst) + amount;
        Ok(Response::new(Value { value }))
    }

    async fn add_many(&self, req: Request<Streaming<Add>>) -> Result<Response<Value>, Status> {
        let mut adds = req.into_inner();
        while let Some(add) = adds.message().await? {
            self.0.fetch_add(add.amount, Ordering::SeqCst);
        }
        Ok(Response::new(Value { value: self.0.load(Ordering::SeqCst) }))
    }

    async fn count_up(&self, req: Request<Add>) -> Result<Response<Streaming<Value>>, Status> {
        let n = req.into_inner().amount;
        if n < 0 {
            return Err(Status::invalid_argument("amount: must not be negative"));
        }
        let start = self.0.load(Ordering::SeqCst);
        Ok(Response::new(Streaming::iter((1..=n).map(move |i| Value { value: start + i }))))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = switchboard::grpc::transport::server::TcpIncoming::from(listener);
    tokio::spawn(Server::builder().add_service(CounterServer::new(AtomicCounter::default())).serve_with_incoming(incoming));

    let mut client = CounterClient::connect(format!("http://{addr}")).await?;
    client.add(Add { amount: 5 }).await?;
    let total = client.add_many(switchboard::stream::iter([1, 2, 3].map(|amount| Add { amount }))).await?.into_inner();
    println!("after Add(5) and AddMany(1, 2, 3): {}", total.value);
    let mut counting = client.count_up(Add { amount: 3 }).await?.into_inner();
    while let Some(v) = counting.message().await? {
        println!("CountUp -> {}", v.value);
    }
    let err = client.count_up(Add { amount: -1 }).await.unwrap_err();
    println!("CountUp(-1) -> {:?}: {}", err.code(), err.message());
    println!("service {} has {} methods", COUNTER_DESCRIPTOR.full_name, COUNTER_DESCRIPTOR.methods.len());
    Ok(())
}
