//! `interop-server --port N`: serves grpc.testing.TestService on 127.0.0.1:N until killed.

use clap::Parser;

#[derive(Parser)]
#[command(about = "gRPC interop test server (grpc.testing.TestService) on switchboard")]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, alias = "server_port", default_value_t = 10000)]
    port: u16,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    interop::server::serve(listener).await?;
    Ok(())
}
