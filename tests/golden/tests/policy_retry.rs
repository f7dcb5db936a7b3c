//! A generated gRPC client follows its spec's default policy (tests/fixtures/policy: the
//! `echo_grpc_service_config.json` beside echo.proto) with nothing but
//! `PolicyLayer::for_service`: `Say` (idempotent) is retried after UNAVAILABLE, `Shout` (not
//! declared idempotent, no retry policy) is not.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use golden::policy::echo::v1::*;
use switchboard::grpc::transport::Server;
use switchboard::policy::PolicyLayer;
use switchboard::{Code, Request, Response, Status};

/// Fails the first `fail` attempts of every method with UNAVAILABLE; counts attempts.
struct Flaky {
    fail: u32,
    attempts: Arc<AtomicU32>,
}

impl Flaky {
    fn attempt(&self, text: String) -> Result<Response<EchoReply>, Status> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) < self.fail {
            return Err(Status::unavailable("not yet"));
        }
        Ok(Response::new(EchoReply { text }))
    }
}

impl Echo for Flaky {
    async fn say(&self, req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.attempt(req.into_inner().text)
    }
    async fn shout(&self, req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.attempt(req.into_inner().text.to_uppercase())
    }
}

async fn serve(fail: u32) -> (String, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let echo = Flaky { fail, attempts: attempts.clone() };
    tokio::spawn(
        Server::builder()
            .add_service(EchoServer::new(echo))
            .serve_with_incoming(switchboard::grpc::transport::server::TcpIncoming::from(listener)),
    );
    (format!("http://{addr}"), attempts)
}

#[tokio::test]
async fn the_spec_default_retries_an_idempotent_method_and_not_the_others() {
    assert!(std::env::var_os(switchboard::policy::ENV_CONFIG).is_none(), "run without a run-time config");
    let (url, attempts) = serve(2).await;
    let mut client = EchoClient::connect(url).await.unwrap().layer(PolicyLayer::for_service(&ECHO_DESCRIPTOR).unwrap());
    let reply = client.say(EchoRequest { text: "hi".into() }).await.unwrap().into_inner();
    assert_eq!(reply.text, "hi");
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "two failures, then the third attempt");

    let (url, attempts) = serve(1).await;
    let mut client = EchoClient::connect(url).await.unwrap().layer(PolicyLayer::for_service(&ECHO_DESCRIPTOR).unwrap());
    let err = client.shout(EchoRequest { text: "hi".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "not retried");
}
