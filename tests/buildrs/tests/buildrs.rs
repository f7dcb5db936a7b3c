//! The build.rs-generated service works over gRPC, and build.rs asked cargo to rerun when any
//! input changes.

use buildrs::api::buildrs::v1::{Echo, EchoClient, EchoServer, Word};
use switchboard::grpc::transport::server::TcpIncoming;
use switchboard::grpc::transport::Server;
use switchboard::{Request, Response, Status, Streaming};

struct Impl;

impl Echo for Impl {
    async fn say(&self, req: Request<Word>) -> Result<Response<Word>, Status> {
        Ok(Response::new(req.into_inner()))
    }
    async fn count(&self, req: Request<Streaming<Word>>) -> Result<Response<u64>, Status> {
        let mut words = req.into_inner();
        let mut n = 0;
        while let Some(w) = words.message().await? {
            n += w.text.chars().count() as u64;
        }
        Ok(Response::new(n))
    }
}

#[tokio::test]
async fn generated_from_build_rs_serves_and_calls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Server::builder().add_service(EchoServer::new(Impl)).serve_with_incoming(TcpIncoming::from(listener)));
    let mut client = EchoClient::connect(format!("http://{addr}")).await.unwrap();
    assert_eq!(client.say(Word { text: "hi".into() }).await.unwrap().into_inner().text, "hi");
    let words = switchboard::stream::iter(["ab", "cde"].map(|t| Word { text: t.into() }));
    assert_eq!(client.count(words).await.unwrap().into_inner(), 5);
}

#[test]
fn build_script_declared_every_proto_as_an_input() {
    // Cargo records the build script's output next to OUT_DIR.
    let out_dir = std::path::Path::new(env!("OUT_DIR"));
    let output = std::fs::read_to_string(out_dir.parent().unwrap().join("output")).unwrap();
    for proto in ["echo.proto", "types.proto"] {
        assert!(
            output.lines().any(|l| l.starts_with("cargo:rerun-if-changed=") && l.ends_with(proto)),
            "no rerun-if-changed for {proto} in:\n{output}"
        );
    }
    // Built-in well-known types are not files on disk: no line for them.
    assert!(!output.contains("wrappers.proto"), "{output}");
}
