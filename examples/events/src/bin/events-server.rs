//! Run: `cargo run -p events --bin events-server -- --broker URL [--max-attempts N]`
//!
//! Serves `shop.orders.v1.Orders` through the broker at URL (`kafka://host:9092`,
//! `amqp://…`, `nats://…`; `memory://` only reaches this process): the `Placed` events, at least
//! once, and `GetOrder` calls. Prints `events-server: queue: serving …` once a call through the
//! broker is answered (the consumers are in place), then a line per event handled. SIGINT or
//! SIGTERM stops it: it finishes the events in flight and leaves its consumer groups.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use events::{OrderBook, DEFAULT_MAX_ATTEMPTS, SERVICE};
use switchboard::queue::Broker;

const USAGE: &str = "usage: events-server --broker URL [--max-attempts N]   (default attempts: 3)";

struct Args {
    broker: String,
    max_attempts: u32,
}

fn parse_args() -> Result<Args, String> {
    let (mut broker, mut max_attempts) = (None, DEFAULT_MAX_ATTEMPTS);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--broker" => broker = Some(value()?),
            "--max-attempts" => {
                let v = value()?;
                max_attempts = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| format!("--max-attempts: `{v}` is not a positive number"))?;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args { broker: broker.ok_or("--broker is required")?, max_attempts })
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("events-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let broker = match Broker::connect(&args.broker).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("events-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let book = Arc::new(OrderBook::new());
    let server = events::queue_server(book, args.max_attempts);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut serving = {
        let broker = broker.clone();
        tokio::spawn(async move {
            server
                .serve_with_shutdown(&broker, async {
                    let _ = stop_rx.await;
                })
                .await
        })
    };
    // Ready once a call through the broker is answered; a server that fails first says why.
    let early = tokio::select! {
        ready = events::wait_until_served(&broker, Duration::from_secs(60)) => match ready {
            Ok(()) => None,
            Err(e) => {
                eprintln!("events-server: {e}");
                return ExitCode::FAILURE;
            }
        },
        r = &mut serving => Some(r),
    };
    let outcome = match early {
        Some(r) => Some(r),
        None => {
            println!(
                "events-server: queue: serving {SERVICE} on {} (event Placed, unary GetOrder; {} attempts per event, then sb.dlq.{SERVICE}.Placed)",
                broker.url(),
                args.max_attempts
            );
            tokio::select! {
                r = &mut serving => Some(r),
                _ = stop_signal() => None,
            }
        }
    };
    let code = match outcome {
        Some(Ok(Ok(()))) => {
            eprintln!("events-server: the queue server stopped");
            ExitCode::FAILURE
        }
        Some(Ok(Err(status))) => {
            eprintln!("events-server: queue: {:?}: {}", status.code(), status.message());
            ExitCode::FAILURE
        }
        Some(Err(e)) => {
            eprintln!("events-server: queue: {e}");
            ExitCode::FAILURE
        }
        None => {
            let _ = stop_tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
            println!("events-server: stopped");
            ExitCode::SUCCESS
        }
    };
    broker.close().await;
    code
}
