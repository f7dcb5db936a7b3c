//! Calls that never reached a server's application (`client::never_reached`) over real
//! transports, and the policy layer's transparent retry of them (gRPC A6): sent again at once,
//! once, whatever the method. Over gRPC and REST the first attempt meets a refused connection and
//! the server comes up before the transparent resend, which then succeeds; on the embedded broker
//! nobody consumes the service, and the call fails after exactly one resend.
#![cfg(all(feature = "grpc", feature = "rest", feature = "queue"))]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use switchboard::client::{self, BoxFuture, Call, Layer, Next, Outcome};
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::{Channel, Server};
use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::queue::Broker;
use switchboard::{Code, Request, Response, Status};
use tokio::net::TcpListener;

#[switchboard::service(package = "test.reach.v1")]
pub trait Reach {
    /// Not idempotent: only a call no server saw may be sent again.
    async fn create(&self, req: Request<String>) -> Result<Response<String>, Status>;
}

struct Impl;

impl Reach for Impl {
    async fn create(&self, req: Request<String>) -> Result<Response<String>, Status> {
        Ok(Response::new(format!("created {}", req.into_inner())))
    }
}

/// Counts attempts; after the first one fails as never reached, runs `then` (starts the server).
struct FirstRefused {
    attempts: AtomicUsize,
    refusal: Mutex<Option<Status>>,
    then: Mutex<Option<Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>>>,
}

impl FirstRefused {
    fn new(then: Option<Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>>) -> Arc<Self> {
        Arc::new(FirstRefused { attempts: AtomicUsize::new(0), refusal: Mutex::new(None), then: Mutex::new(then) })
    }
}

impl Layer for FirstRefused {
    fn call<'a>(&'a self, call: Call, next: Next<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let outcome = next.run(call).await;
            if n == 1 {
                if let Err(status) = &outcome {
                    *self.refusal.lock().unwrap() = Some(Status::new(status.code(), status.message()));
                    assert!(client::never_reached(status), "the first attempt met no server, yet: {status:?}");
                    let then = self.then.lock().unwrap().take();
                    if let Some(start) = then {
                        start().await;
                    }
                }
            }
            outcome
        })
    }
}

/// A policy layer with no retry policy for the service: only transparent retries.
fn policy() -> Arc<dyn Layer> {
    let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "test.reach.v1.Reach"}], "timeout": "10s"}]}"#).unwrap();
    Arc::new(PolicyLayer::new(Policies::new().runtime(config)))
}

/// A loopback address nobody listens on (yet).
async fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_a_refused_connection_is_resent_once_the_server_is_up() {
    let address = free_address().await;
    let start: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send> = Box::new(move || {
        Box::pin(async move {
            let listener = TcpListener::bind(address).await.expect("bind the freed port");
            tokio::spawn(Server::builder().add_service(ReachServer::new(Impl)).serve_with_incoming(TcpIncoming::from(listener)));
        })
    });
    let seen = FirstRefused::new(Some(start));
    let channel = Channel::from_shared(format!("http://{address}")).unwrap().connect_lazy();
    let mut client = ReachClient::new(channel).layer(policy()).layer(seen.clone());
    let resp = client.create(Request::new("order-1".into())).await.unwrap_or_else(|e| panic!("the resend failed: {e:?}"));
    assert_eq!(resp.get_ref(), "created order-1");
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 2, "one transparent resend");
    assert_eq!(seen.refusal.lock().unwrap().as_ref().unwrap().code(), Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_a_refused_connection_is_resent_once_the_server_is_up() {
    let address = free_address().await;
    let start: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send> = Box::new(move || {
        Box::pin(async move {
            let listener = TcpListener::bind(address).await.expect("bind the freed port");
            tokio::spawn(ReachRestServer::new(Impl).serve(listener));
        })
    });
    let seen = FirstRefused::new(Some(start));
    let mut client = ReachRestClient::new(&format!("http://{address}")).unwrap().layer(policy()).layer(seen.clone());
    let resp = client.create(Request::new("order-2".into())).await.unwrap_or_else(|e| panic!("the resend failed: {e:?}"));
    assert_eq!(resp.get_ref(), "created order-2");
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 2, "one transparent resend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_no_consumer_is_resent_once_then_fails() {
    no_consumer("memory://never-reached").await;
}

/// RabbitMQ returns the request (`mandatory`, no queue): never reached.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_a_returned_request_is_resent_once_then_fails() {
    if let Some(url) = switchboard_test_support::broker::env_or_skip("SWITCHBOARD_AMQP_URL") {
        no_consumer(&url).await;
    }
}

/// NATS has no responders for the subject: never reached.
#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_no_responders_is_resent_once_then_fails() {
    if let Some(url) = switchboard_test_support::broker::env_or_skip("SWITCHBOARD_NATS_URL") {
        no_consumer(&url).await;
    }
}

async fn no_consumer(url: &str) {
    let broker = Broker::connect(url).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let seen = FirstRefused::new(None);
    let client = ReachQueueClient::new(&broker).layer(policy()).layer(seen.clone());
    let err = client.create(Request::new("order-3".into())).await.expect_err("nobody consumes the service");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(client::never_reached(&err), "{err:?}");
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 2, "one transparent resend, no more");

    // Without the policy layer nothing is sent again.
    let seen = FirstRefused::new(None);
    let client = ReachQueueClient::new(&broker).layer(seen.clone());
    assert!(client.create(Request::new("order-4".into())).await.is_err());
    assert_eq!(seen.attempts.load(Ordering::SeqCst), 1);
}
