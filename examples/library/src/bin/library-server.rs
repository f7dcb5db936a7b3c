//! `library-server [--host H] [--port N]`: the in-memory library over gRPC and REST on one port.
//!
//! `--port 0` picks a free port; the address is printed either way.

use std::process::ExitCode;

const USAGE: &str =
    "usage: library-server [--host HOST] [--port PORT]   (defaults: 127.0.0.1, 8080; port 0 picks a free one)";

fn parse_args() -> Result<(String, u16), String> {
    let (mut host, mut port) = ("127.0.0.1".to_owned(), 8080);
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
            "--host" => host = value()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((host, port))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (host, port) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("library-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("library-server: cannot listen on {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("a bound socket has an address");
    println!("library-server: example.library.v1.Library on http://{addr} (gRPC and REST; try `curl http://{addr}/v1/shelves`)");
    match library::serve(listener, std::sync::Arc::new(library::InMemoryLibrary::seeded())).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("library-server: {e}");
            ExitCode::FAILURE
        }
    }
}
