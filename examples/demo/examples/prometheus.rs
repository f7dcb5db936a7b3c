//! Run: cargo run -p demo --example prometheus
//!
//! switchboard's metrics in the Prometheus text format: install the Prometheus exporter as the
//! `metrics` recorder, serve the demo's `Library` over gRPC + REST on one loopback port and over
//! the embedded broker, call it on every transport (with the policy layer retrying a server that
//! fails each book's first lookup), then print what a scrape would read: attempts, calls, retries
//! and server calls, labelled by method, status and transport.

use std::collections::HashSet;
use std::sync::Mutex;

use switchboard::policy::{Policies, PolicyLayer, ServiceConfig};
use switchboard::queue::Broker;
use switchboard::{Request, Response, Status, Streaming};

mod api {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::demo::library::v1::{
    Book, GetBookRequest, Library, LibraryClient, LibraryQueueClient, LibraryQueueServer, LibraryRestClient, LibraryServer, Receipt,
    SearchRequest,
};

/// A library with one book whose lookups fail once per caller's transport (the retry shows in
/// `grpc_client_call_retries`).
#[derive(Default)]
struct Flaky {
    failed: Mutex<HashSet<String>>,
}

impl Library for Flaky {
    async fn add_book(&self, req: Request<Book>) -> Result<Response<Book>, Status> {
        Ok(Response::new(req.into_inner()))
    }

    async fn get_book(&self, req: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let caller = req.metadata().get("x-caller").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if self.failed.lock().unwrap().insert(caller) {
            return Err(Status::unavailable("warming up"));
        }
        Ok(Response::new(Book { id: req.into_inner().id, title: "Dune".into(), ..Default::default() }))
    }

    async fn search_books(&self, _: Request<SearchRequest>) -> Result<Response<Streaming<Book>>, Status> {
        Ok(Response::new(Streaming::iter([])))
    }

    async fn borrow(&self, _: Request<Streaming<GetBookRequest>>) -> Result<Response<Receipt>, Status> {
        Err(Status::unimplemented("not in this example"))
    }

    async fn return_book(&self, _: Request<GetBookRequest>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
}

fn lookup(caller: &str) -> Request<GetBookRequest> {
    let mut request = Request::new(GetBookRequest { id: 1 });
    request.metadata_mut().insert("x-caller", caller.parse().unwrap());
    request
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The recorder first: metrics recorded before it is installed go nowhere.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    // switchboard records its metrics once asked to (as grpc-go's OpenTelemetry plugin does).
    switchboard::observe::record_metrics();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let library = std::sync::Arc::new(Flaky::default());
    tokio::spawn(switchboard::Server::builder().add_service(LibraryServer::from_arc(library.clone())).serve(listener));
    let broker = Broker::connect("memory://prometheus").await?;
    let queue_server = LibraryQueueServer::from_arc(library.clone());
    let b = broker.clone();
    tokio::spawn(async move { queue_server.serve(&b).await });

    // GetBook has no side effects, so the policy may retry it.
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "demo.library.v1.Library"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )?;
    let policy = std::sync::Arc::new(PolicyLayer::new(Policies::new().runtime(config)));

    let mut grpc = LibraryClient::connect(format!("http://{addr}")).await?.layer(policy.clone());
    let mut rest = LibraryRestClient::new(&format!("http://{addr}"))?.layer(policy.clone());
    let queue = LibraryQueueClient::new(&broker).layer(policy);
    grpc.add_book(Book { title: "Dune".into(), ..Default::default() }).await?;
    println!("gRPC:  {}", grpc.get_book(lookup("grpc")).await?.into_inner().title);
    println!("REST:  {}", rest.get_book(lookup("rest")).await?.into_inner().title);
    // The queue server may still be starting: the retry policy covers that too.
    println!("queue: {}", queue.get_book(lookup("queue")).await?.into_inner().title);

    println!("\n# what a Prometheus scrape reads:\n");
    for line in prometheus.render().lines().filter(|l| l.starts_with("grpc_") && !l.contains("quantile")) {
        println!("{line}");
    }
    Ok(())
}
