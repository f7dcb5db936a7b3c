//! The transports under test: one server per transport for the whole test process (each on a
//! thread of its own, so that it outlives any one test's runtime), and an adapter, [`Caller`],
//! over the three generated clients, so that every case is written once.
//!
//! Readiness is signalled, never slept for: TCP servers report their address once their
//! listener is bound (a connection made after that waits in the backlog until it is accepted),
//! and a queue server reports ready once it has answered a call.

use std::future::Future;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::{Channel, Server};
use switchboard::queue::Broker;
use switchboard::{Code, Request, Response, Status, Streaming};
use tokio::net::TcpListener;

use crate::service::*;

/// Attempts at an event before the queue servers dead-letter it.
pub const MAX_ATTEMPTS: u32 = 3;

/// The transports, by what a caller reaches them with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `ConformanceClient` to a tonic server on 127.0.0.1.
    Grpc,
    /// `ConformanceRestClient` to the REST server on 127.0.0.1.
    Rest,
    /// `ConformanceQueueClient` through the embedded broker (`memory://`).
    Memory,
    /// `ConformanceQueueClient` through RabbitMQ (`SWITCHBOARD_AMQP_URL`).
    Amqp,
    /// `ConformanceQueueClient` through NATS (`SWITCHBOARD_NATS_URL`).
    Nats,
}

/// The calls a case makes, whatever the transport: implemented by each generated client.
/// (Inherent methods are called by path: `client.echo(..)` here would pick this trait's `echo`.)
pub trait Caller: Send + Sync {
    fn echo(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>>;
    fn slow(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>>;
    fn boom(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>>;
    fn ticks(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>>;
    fn boom_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>>;
}

impl Caller for ConformanceClient<Channel> {
    fn echo(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceClient::echo(&mut client, req).await })
    }
    fn slow(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceClient::slow(&mut client, req).await })
    }
    fn boom(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceClient::boom(&mut client, req).await })
    }
    fn ticks(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceClient::ticks(&mut client, req).await })
    }
    fn boom_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceClient::boom_stream(&mut client, req).await })
    }
}

impl Caller for ConformanceRestClient {
    fn echo(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceRestClient::echo(&mut client, req).await })
    }
    fn slow(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceRestClient::slow(&mut client, req).await })
    }
    fn boom(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceRestClient::boom(&mut client, req).await })
    }
    fn ticks(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceRestClient::ticks(&mut client, req).await })
    }
    fn boom_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        let mut client = self.clone();
        Box::pin(async move { ConformanceRestClient::boom_stream(&mut client, req).await })
    }
}

impl Caller for ConformanceQueueClient {
    fn echo(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        Box::pin(ConformanceQueueClient::echo(self, req))
    }
    fn slow(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        Box::pin(ConformanceQueueClient::slow(self, req))
    }
    fn boom(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Msg>, Status>> {
        Box::pin(ConformanceQueueClient::boom(self, req))
    }
    fn ticks(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        Box::pin(ConformanceQueueClient::ticks(self, req))
    }
    fn boom_stream(&self, req: Request<Msg>) -> BoxFuture<'_, Result<Response<Streaming<Msg>>, Status>> {
        Box::pin(ConformanceQueueClient::boom_stream(self, req))
    }
}

/// How a transport tells a running handler that its caller went away (dropped the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerCancel {
    /// At once: gRPC resets the HTTP/2 stream, REST closes the connection.
    Propagated,
    /// Not at all before the deadline: the queue protocol has no cancel message
    /// (docs/queue-protocol.md), so the handler is cancelled when the call's deadline passes.
    AtDeadline,
}

/// One transport, ready to call.
#[derive(Clone)]
pub struct Transport {
    pub name: &'static str,
    pub caller: Arc<dyn Caller>,
    pub caller_cancel: CallerCancel,
    /// Queue transports: the client (for `publish_*`) and the broker (for dead letters).
    pub queue: Option<(ConformanceQueueClient, Broker)>,
}

/// Runs `case` against `kind`, or says why it skips (a broker URL not set). With `CI=true` a
/// broker that is not there fails the test instead: CI must not go green without them.
pub async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Transport) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(transport) = connect(kind).await {
        case(transport).await;
    }
}

/// The broker URL in `var` by the project's one rule (`switchboard_test_support::broker`: skip
/// with a printed reason on a bare machine, fail under `CI=true`), if this build has `feature`.
async fn connect(kind: Kind) -> Option<Transport> {
    let url = match kind {
        Kind::Grpc | Kind::Rest => None,
        Kind::Memory => Some("memory://conformance".to_owned()),
        Kind::Amqp => Some(switchboard_test_support::broker::url_for_feature("SWITCHBOARD_AMQP_URL", cfg!(feature = "amqp"), "amqp")?),
        Kind::Nats => Some(switchboard_test_support::broker::url_for_feature("SWITCHBOARD_NATS_URL", cfg!(feature = "nats"), "nats")?),
    };
    let address = server(kind, url.clone());
    Some(match kind {
        Kind::Grpc => {
            let channel = Channel::from_shared(address).unwrap().connect().await.expect("connect to the gRPC server");
            Transport {
                name: "grpc",
                caller: Arc::new(ConformanceClient::new(channel)),
                caller_cancel: CallerCancel::Propagated,
                queue: None,
            }
        }
        Kind::Rest => Transport {
            name: "rest",
            caller: Arc::new(ConformanceRestClient::new(&address).expect("REST client")),
            caller_cancel: CallerCancel::Propagated,
            queue: None,
        },
        Kind::Memory | Kind::Amqp | Kind::Nats => {
            let broker = Broker::connect(&address).await.unwrap_or_else(|e| panic!("connect to {address}: {e}"));
            let client = ConformanceQueueClient::new(&broker);
            Transport {
                name: match kind {
                    Kind::Memory => "memory",
                    Kind::Amqp => "amqp",
                    _ => "nats",
                },
                caller: Arc::new(client.clone()),
                caller_cancel: CallerCancel::AtDeadline,
                queue: Some((client, broker)),
            }
        }
    })
}

/// The address of `kind`'s server (a URL), started on first use.
fn server(kind: Kind, broker_url: Option<String>) -> String {
    static SERVERS: [OnceLock<Result<String, String>>; 5] = [const { OnceLock::new() }; 5];
    let slot = &SERVERS[kind as usize];
    let ready = slot.get_or_init(move || match kind {
        Kind::Grpc => switchboard_test_support::server::in_background("conformance-grpc", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().unwrap();
            let _ = ready.send(Ok(format!("http://{addr}")));
            let server = Server::builder().add_service(ConformanceServer::new(Impl));
            server.serve_with_incoming(TcpIncoming::from(listener)).await.expect("gRPC server");
        }),
        Kind::Rest => switchboard_test_support::server::in_background("conformance-rest", |ready| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().unwrap();
            let _ = ready.send(Ok(format!("http://{addr}")));
            ConformanceRestServer::new(Impl).serve(listener).await.expect("REST server");
        }),
        Kind::Memory | Kind::Amqp | Kind::Nats => {
            let url = broker_url.expect("a broker URL");
            switchboard_test_support::server::in_background("conformance-queue", |ready| serve_queue(url, ready))
        }
    });
    ready.clone().unwrap_or_else(|e| panic!("the {kind:?} server did not start: {e}"))
}

async fn serve_queue(url: String, ready: std::sync::mpsc::Sender<Result<String, String>>) {
    let broker = match Broker::connect(&url).await {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(format!("connect to {url}: {e}")));
            return;
        }
    };
    let server = ConformanceQueueServer::new(Impl)
        .max_attempts(MAX_ATTEMPTS)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50));
    let b = broker.clone();
    let serving = tokio::spawn(async move { server.serve(&b).await });
    // Ready once a call is answered: the server consumes requests (and, having set up both
    // before it takes any message, events too). UNAVAILABLE means nobody consumes yet.
    let client = ConformanceQueueClient::new(&broker).timeout(Duration::from_secs(10));
    let mut outcome = Err("no answer".to_owned());
    for _ in 0..500 {
        match client.echo(Msg { id: "ready".into(), ..Default::default() }).await {
            Ok(_) => {
                outcome = Ok(url.clone());
                break;
            }
            Err(s) if s.code() == Code::Unavailable && !serving.is_finished() => {
                outcome = Err(format!("{s:?}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(s) => {
                outcome = Err(format!("{s:?}"));
                break;
            }
        }
    }
    let _ = ready.send(outcome);
    let _ = serving.await;
}

/// An id unique to this call, in this process and across runs (brokers keep durable queues).
pub fn call_id(case: &str, t: &Transport) -> String {
    switchboard_test_support::server::unique_id(&format!("{case}-{}", t.name))
}
