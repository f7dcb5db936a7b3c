//! `bench-client`: a closed-loop load through switchboard's *generated clients* (the other load
//! generator, `bench-load`, drives servers with plain tonic / hyper): `bench.Echo/Unary` over
//! gRPC (`EchoClient`) or REST (`EchoRestClient`), `--concurrency` calls in flight, `--calls`
//! calls, against `bench-server`. With `--fleet` the client goes through a `switchboard::fleet`
//! over one static endpoint (`static:///host:port`) instead of a plain channel or base URL: the
//! client side of "no cost when unused". Prints one JSON line:
//! `{"calls":N,"errors":E,"seconds":S,"rps":R}`.
//!
//! Run: `bench-client --grpc http://127.0.0.1:50051 --calls 100000`
//!      `bench-client --rest http://127.0.0.1:8080 --fleet --calls 100000`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use switchboard::Request;

mod api {
    #![allow(dead_code)]
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}
use api::bench::{EchoClient, EchoMsg, EchoRestClient};

#[derive(Parser)]
struct Args {
    /// gRPC server, e.g. http://127.0.0.1:50051.
    #[arg(long, conflicts_with = "rest")]
    grpc: Option<String>,
    /// REST server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    rest: Option<String>,
    /// Go through a fleet of one static endpoint.
    #[arg(long)]
    fleet: bool,
    /// Calls to make (after 1,000 warm-up calls).
    #[arg(long, default_value_t = 100_000)]
    calls: usize,
    /// Calls in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Request payload bytes.
    #[arg(long, default_value_t = 32)]
    payload: usize,
}

#[derive(Clone)]
enum Client {
    Grpc(EchoClient<switchboard::grpc::transport::Channel>),
    // fleet-begin
    GrpcFleet(EchoClient<switchboard::fleet::FleetChannel>),
    // fleet-end
    Rest(EchoRestClient),
}

impl Client {
    async fn call(&self, body: &[u8]) -> bool {
        let req = Request::new(EchoMsg { body: body.to_vec() });
        let answer = match self {
            Client::Grpc(c) => c.clone().unary(req).await,
            // fleet-begin
            Client::GrpcFleet(c) => c.clone().unary(req).await,
            // fleet-end
            Client::Rest(c) => c.clone().unary(req).await,
        };
        answer.is_ok_and(|r| r.get_ref().body == body)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = match (&args.grpc, &args.rest, args.fleet) {
        (Some(addr), None, false) => {
            Client::Grpc(EchoClient::new(switchboard::grpc::transport::Endpoint::from_shared(addr.clone())?.tcp_nodelay(true).connect().await?))
        }
        (None, Some(addr), false) => Client::Rest(EchoRestClient::new(addr)?),
        // fleet-begin
        (Some(addr), None, true) => {
            let fleet = switchboard::fleet::Fleet::builder(&addr.replacen("http://", "static:///", 1)).build()?;
            Client::GrpcFleet(EchoClient::new(fleet.grpc()))
        }
        (None, Some(addr), true) => {
            let fleet = switchboard::fleet::Fleet::builder(&addr.replacen("http://", "static:///", 1)).build()?;
            Client::Rest(EchoRestClient::with_client(switchboard::rest::RestClient::fleet(fleet)))
        }
        // fleet-end
        _ => return Err("give --grpc or --rest".into()),
    };
    let body = vec![7u8; args.payload];
    let run = |calls: usize| {
        let next = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (client, next, errors, body) = (client.clone(), next.clone(), errors.clone(), body.clone());
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < calls {
                        if !client.call(&body).await {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        async move {
            for w in workers {
                let _ = w.await;
            }
            errors.load(Ordering::Relaxed)
        }
    };
    run(1_000).await;
    let started = Instant::now();
    let errors = run(args.calls).await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"calls\":{},\"errors\":{errors},\"seconds\":{seconds:.3},\"rps\":{:.0}}}",
        args.calls,
        args.calls as f64 / seconds
    );
    Ok(())
}
