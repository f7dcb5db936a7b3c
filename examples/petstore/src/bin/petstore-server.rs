//! Run: `cargo run -p petstore --bin petstore-server -- --port 8080 [--api-key KEY] [--queue URL]`
//!
//! The in-memory pet store over REST on 127.0.0.1 (`--port 0` picks a free port; the address is
//! printed either way). Operations live under the document's base path `/v1`; the document
//! itself is at `/openapi.json`. Writes need `X-API-Key`: `--api-key`, else `$PETSTORE_API_KEY`,
//! else `secret`. With `--queue amqp://…` or `--queue nats://…` the same store is also served
//! through that broker (docs/queue-protocol.md, "OpenAPI operations"), with the same checks.

use std::process::ExitCode;

const USAGE: &str = "usage: petstore-server [--port PORT] [--api-key KEY] [--queue BROKER_URL]   \
                     (defaults: 8080, $PETSTORE_API_KEY or `secret`; port 0 picks a free one)";

struct Args {
    port: u16,
    api_key: String,
    queue: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut port = 8080;
    let mut api_key = std::env::var("PETSTORE_API_KEY").ok().filter(|k| !k.is_empty());
    let mut queue = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" | "-p" => {
                let v = value()?;
                port = v.parse().map_err(|_| format!("--port: `{v}` is not a port number"))?;
            }
            "--api-key" => {
                let v = value()?;
                if v.is_empty() {
                    return Err("--api-key: the key must not be empty".into());
                }
                api_key = Some(v);
            }
            "--queue" => queue = Some(value()?),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args { port, api_key: api_key.unwrap_or_else(|| petstore::DEFAULT_API_KEY.to_owned()), queue })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("petstore-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("petstore-server: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("a bound socket has an address");
    println!("petstore-server: Petstore on http://{addr}/v1 (document at http://{addr}/openapi.json; try `curl http://{addr}/v1/pets`)");
    let store = std::sync::Arc::new(petstore::InMemoryPetstore::seeded());
    let rest = petstore::petstore::PetstoreRestServer::from_arc(store.clone()).authorize(petstore::check_api_key(args.api_key.clone()));
    let queue = match &args.queue {
        None => None,
        Some(url) => match switchboard::queue::Broker::connect(url).await {
            Ok(broker) => {
                let server = petstore::queue_server(store, args.api_key);
                let desc = &petstore::petstore::PETSTORE_DESCRIPTOR;
                let methods: Vec<&str> = desc.methods.iter().map(|m| m.name).collect();
                println!("petstore-server: queue: serving {} on {} (methods: {})", desc.full_name, broker.url(), methods.join(", "));
                Some(tokio::spawn(async move { server.serve(&broker).await }))
            }
            Err(e) => {
                eprintln!("petstore-server: --queue: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    // The queue server, if any, runs until it fails; the REST server until the process ends.
    let queue_ended = async {
        match queue {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let served = tokio::select! {
        r = rest.serve(listener) => r.map_err(|e| e.to_string()),
        r = queue_ended => match r {
            Ok(Ok(())) => Err("the queue server stopped".to_owned()),
            Ok(Err(status)) => Err(format!("queue: {}", status.message())),
            Err(e) => Err(format!("queue: {e}")),
        },
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("petstore-server: {e}");
            ExitCode::FAILURE
        }
    }
}
