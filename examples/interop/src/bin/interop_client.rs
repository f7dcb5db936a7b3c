//! `interop-client --port N [--host H] [--test_case a,b,...]`: runs the interop cases against a
//! TestService server, printing `PASS name` / `FAIL name - reason` and a summary.
//!
//! `interop-client --amqp URL` / `--nats URL` / `--queue URL`: the cases a queue carries (unary
//! and server streaming; see `interop::queue::CASES`) through the broker, against whatever
//! serves grpc.testing.TestService there (interop-server, or the Python server of
//! scripts/queue_check.py). With a port and a broker, both run.

use std::process::ExitCode;

use clap::Parser;
use switchboard::queue::Broker;

#[derive(Parser)]
#[command(about = "gRPC interop test client on switchboard (gRPC, or through a message broker)")]
struct Args {
    /// Server port (gRPC). Required unless a broker is given.
    #[arg(long, alias = "server_port", required_unless_present_any = ["amqp", "nats", "queue"])]
    port: Option<u16>,
    /// Server host.
    #[arg(long, alias = "server_host", default_value = "127.0.0.1")]
    host: String,
    /// Run the queue cases through RabbitMQ, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[arg(long, value_name = "URL")]
    amqp: Option<String>,
    /// Run the queue cases through NATS, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Run the queue cases through the broker at this URL; repeatable.
    #[arg(long, value_name = "URL")]
    queue: Vec<String>,
    /// Comma-separated cases to run (default: all).
    #[arg(long = "test_case", alias = "test-case", value_delimiter = ',')]
    test_case: Vec<String>,
}

fn pick(requested: &[String], all: &[&str]) -> Vec<String> {
    if requested.is_empty() || requested.iter().any(|c| c == "all") {
        all.iter().map(|c| c.to_string()).collect()
    } else {
        requested.to_vec()
    }
}

fn report(label: &str, case: &str, result: Result<(), String>, passed: &mut u32, failed: &mut u32) {
    match result {
        Ok(()) => {
            *passed += 1;
            println!("PASS {label}{case}");
        }
        Err(reason) => {
            *failed += 1;
            println!("FAIL {label}{case} - {reason}");
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (mut passed, mut failed) = (0, 0);
    if let Some(port) = args.port {
        let addr = format!("{}:{}", args.host, port);
        for case in pick(&args.test_case, interop::client::CASES) {
            report("", &case, interop::client::run(&case, &addr).await, &mut passed, &mut failed);
        }
    }
    let urls: Vec<String> = args.amqp.into_iter().chain(args.nats).chain(args.queue).collect();
    for url in &urls {
        let broker = match Broker::connect(url).await {
            Ok(b) => b,
            Err(e) => {
                failed += 1;
                println!("FAIL connect - {e}");
                continue;
            }
        };
        let label = format!("[{}] ", broker.url());
        for case in pick(&args.test_case, interop::queue::CASES) {
            report(&label, &case, interop::queue::run(&case, &broker).await, &mut passed, &mut failed);
        }
        broker.close().await;
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
