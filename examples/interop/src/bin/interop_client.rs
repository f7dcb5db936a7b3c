//! `interop-client --port N [--host H] [--test_case a,b,...]`: runs the interop cases against a
//! TestService server, printing `PASS name` / `FAIL name - reason` and a summary.

use std::process::ExitCode;

use clap::Parser;
use interop::client::{run, CASES};

#[derive(Parser)]
#[command(about = "gRPC interop test client on switchboard")]
struct Args {
    /// Server port.
    #[arg(long, alias = "server_port")]
    port: u16,
    /// Server host.
    #[arg(long, alias = "server_host", default_value = "127.0.0.1")]
    host: String,
    /// Comma-separated cases to run (default: all).
    #[arg(long = "test_case", alias = "test-case", value_delimiter = ',')]
    test_case: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let cases: Vec<String> = if args.test_case.is_empty() || args.test_case.iter().any(|c| c == "all") {
        CASES.iter().map(|c| c.to_string()).collect()
    } else {
        args.test_case
    };
    let addr = format!("{}:{}", args.host, args.port);
    let (mut passed, mut failed) = (0, 0);
    for case in &cases {
        match run(case, &addr).await {
            Ok(()) => {
                passed += 1;
                println!("PASS {case}");
            }
            Err(reason) => {
                failed += 1;
                println!("FAIL {case} - {reason}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
