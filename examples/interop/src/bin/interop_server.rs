//! `interop-server --port N [--rest-port M]`: serves grpc.testing.TestService on 127.0.0.1:N
//! over gRPC (and on M over REST + JSON) until killed.

use clap::Parser;

#[derive(Parser)]
#[command(about = "gRPC interop test server (grpc.testing.TestService) on switchboard, optionally also over REST")]
struct Args {
    /// gRPC port (127.0.0.1); 0 picks a free one.
    #[arg(long, alias = "server_port", default_value_t = 10000)]
    port: u16,
    /// Also serve TestService over REST (JSON) on this port, e.g.
    /// `curl -d '{"responseSize": 5}' localhost:M/grpc.testing.TestService/UnaryCall`.
    #[arg(long)]
    rest_port: Option<u16>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let grpc = interop::server::serve(listener);
    match args.rest_port {
        Some(port) => {
            let rest = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("REST listening on {}", rest.local_addr()?);
            tokio::select! {
                r = grpc => r?,
                r = interop::server::serve_rest(rest) => r?,
            }
        }
        None => grpc.await?,
    }
    Ok(())
}
