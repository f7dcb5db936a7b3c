//! Run: `cargo run -p events --bin events-publish -- --broker URL [--count N] [--prefix P] [--amount CENTS]`
//!
//! Publishes N `Placed` events (default 5) to `shop.orders.v1.Orders` through the generated
//! client's `publish_placed`: order ids `P-1` … `P-N` (P: `ord-` and a per-run hex id unless
//! given), amounts CENTS, CENTS+1, … (default 1250; negative ones are declined and end in the
//! dead letters), each with message id `<order id>.placed`. Prints one line per event once the
//! broker holds it: `published order_id=… message_id=… amount=…`.

use std::process::ExitCode;

use switchboard::queue::Broker;

const USAGE: &str = "usage: events-publish --broker URL [--count N] [--prefix P] [--amount CENTS]";

struct Args {
    broker: String,
    count: usize,
    prefix: String,
    amount: i64,
}

fn parse_args() -> Result<Args, String> {
    let (mut broker, mut count, mut prefix, mut amount) = (None, 5, None, 1250);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--broker" => broker = Some(value()?),
            "--count" | "-n" => {
                let v = value()?;
                count = v.parse().map_err(|_| format!("--count: `{v}` is not a count"))?;
            }
            "--prefix" => prefix = Some(value()?).filter(|p| !p.is_empty()),
            "--amount" => {
                let v = value()?;
                amount = v.parse().map_err(|_| format!("--amount: `{v}` is not a number of cents"))?;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let prefix = prefix.unwrap_or_else(events::run_prefix);
    Ok(Args { broker: broker.ok_or("--broker is required")?, count, prefix, amount })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("events-publish: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let broker = match Broker::connect(&args.broker).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("events-publish: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = events::publish(&broker, &args.prefix, args.count, args.amount).await;
    broker.close().await;
    match result {
        Ok(published) => {
            for p in &published {
                println!("{p}");
            }
            ExitCode::SUCCESS
        }
        Err(status) => {
            eprintln!("events-publish: {:?}: {}", status.code(), status.message());
            ExitCode::FAILURE
        }
    }
}
