//! The queue transport's brokers over TLS (features `tls` and `amqp` / `nats`), with certificates
//! this test makes (rcgen) and brokers it starts itself: a private nats-server with `--tls` (and
//! one with `--tlsverify`: mTLS), and a private RabbitMQ node (started by `scripts/brokers.sh` in
//! a directory of its own) whose TLS listener requires a client certificate. A call round-trips
//! through `Broker::connect_tls` with the test CA; a client without the CA, with another CA's, for
//! another name, or (mTLS) without a certificate is refused with an error that says why. Without
//! nats-server or RabbitMQ installed the cases skip with the reason (under `CI=true` they fail).
#![cfg(all(feature = "tls", any(feature = "amqp", feature = "nats")))]

#[path = "common/certs.rs"]
mod certs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use certs::{Ca, Leaf};
use switchboard::queue::Broker;
use switchboard::tls::ClientTls;
use switchboard::{Request, Response, Status};
use switchboard_test_support::ready::retry_until;

#[switchboard::service(package = "test.brokertls.v1")]
pub trait Hello {
    /// Greets.
    async fn hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
}

struct Impl;

impl Hello for Impl {
    async fn hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
        Ok(Response::new(format!("hello, {}", req.into_inner())))
    }
}

// ---- certificates ------------------------------------------------------------------------------

/// The test's certificates, also written as files for the brokers.
struct Pki {
    ca: Ca,
    /// Signs a client certificate the brokers do not trust, and is trusted by no broker.
    other: Ca,
    client: Leaf,
    dir: TempDir,
}

impl Pki {
    fn new(case: &str) -> Pki {
        let (ca, other) = (Ca::new("switchboard broker test CA"), Ca::new("another CA"));
        let dir = TempDir::new(case);
        // The brokers' certificate: 127.0.0.1, localhost and `broker.test` (a name the clients
        // only reach through `ClientTls::server_name`).
        let server = ca.server(&["127.0.0.1", "localhost", "broker.test"]);
        for (name, pem) in [("ca.pem", &ca.pem()), ("server.pem", &server.cert), ("server.key", &server.key)] {
            std::fs::write(dir.0.join(name), pem).unwrap();
        }
        let client = ca.client();
        Pki { ca, other, client, dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.0.join(name).display().to_string()
    }

    /// Trusts the test CA; no client certificate.
    fn trusting(&self) -> ClientTls {
        ClientTls::new(self.ca.pem().as_bytes()).unwrap()
    }

    /// Trusts the test CA, presents a client certificate it signed.
    fn with_identity(&self) -> ClientTls {
        self.trusting().identity(self.client.cert.as_bytes(), self.client.key.as_bytes()).unwrap()
    }

    /// Trusts another CA only.
    fn trusting_another_ca(&self) -> ClientTls {
        ClientTls::new(self.other.pem().as_bytes()).unwrap()
    }

    /// Trusts the test CA, presents a certificate another CA signed.
    fn with_anothers_identity(&self) -> ClientTls {
        let leaf = self.other.client();
        self.trusting().identity(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap()
    }
}

/// A directory under the system's temp dir, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(case: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sb-broker-tls-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `Broker::connect_tls`'s error, as text (the call must fail).
async fn refused(url: &str, tls: &ClientTls) -> String {
    match Broker::connect_tls(url, tls).await {
        Ok(_) => panic!("{url} accepted a client it should refuse ({tls:?})"),
        Err(e) => e.to_string(),
    }
}

/// A queue server on one connection and a client on another (both with `server`'s and
/// `client`'s settings): the client's call round-trips.
async fn round_trip(server: &str, client: &str, tls: &ClientTls) {
    let server_broker = Broker::connect_tls(server, tls).await.unwrap_or_else(|e| panic!("the server's connection: {e}"));
    let serving = tokio::spawn(async move { HelloQueueServer::new(Impl).serve(&server_broker).await });
    let broker = Broker::connect_tls(client, tls).await.unwrap_or_else(|e| panic!("the client's connection: {e}"));
    let hello = HelloQueueClient::new(&broker);
    // Ready once a call goes through (the server has subscribed).
    let answer = retry_until("a call over TLS", Duration::from_secs(10), || hello.hello(Request::new("tls".into()))).await;
    assert_eq!(answer.into_inner(), "hello, tls");
    serving.abort();
    broker.close().await;
}

// ---- NATS --------------------------------------------------------------------------------------

/// A private nats-server on 127.0.0.1, killed on drop.
#[cfg(feature = "nats")]
struct NatsServer {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "nats")]
impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nats-server binary (`SB_NATS_SERVER`, else Debian's), or `None` after the skip rule.
#[cfg(feature = "nats")]
fn nats_server_binary() -> Option<String> {
    let found = std::env::var("SB_NATS_SERVER").ok().or_else(|| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(str::to_owned)
    });
    if found.is_none() {
        switchboard_test_support::ci::skip_or_fail("nats-server not found (Debian: apt-get install nats-server)");
    }
    found
}

/// Starts nats-server with `args` (TLS options) on a free port; returns once it accepts TCP
/// connections (the callers' first TLS connection is the real readiness check).
#[cfg(feature = "nats")]
async fn start_nats(binary: &str, args: &[&str]) -> NatsServer {
    let port = free_port();
    let child = std::process::Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nats-server");
    let server = NatsServer { child, port };
    switchboard_test_support::ready::connect_until(&format!("127.0.0.1:{port}"), Duration::from_secs(10)).await;
    server
}

/// nats-server with `--tls`: a call round-trips with the test CA (`tls://` and `nats://` URLs);
/// no CA (the system's roots), another CA or another name is refused; `connect_tls` to a
/// plaintext server is refused rather than made in plaintext.
#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_tls_with_a_private_ca() {
    let Some(binary) = nats_server_binary() else { return };
    let pki = Pki::new("nats");
    let nats = start_nats(&binary, &["--tls", "--tlscert", &pki.file("server.pem"), "--tlskey", &pki.file("server.key")]).await;
    let url = format!("tls://127.0.0.1:{}", nats.port);

    // The server on tls://, the client on nats:// (TLS required all the same).
    round_trip(&url, &format!("nats://127.0.0.1:{}", nats.port), &pki.trusting()).await;
    // The server's certificate verified for the name ClientTls::server_name gives, not the host.
    round_trip(&url, &url, &pki.trusting().server_name("broker.test").unwrap()).await;

    let no_ca = match Broker::connect(&url).await {
        Ok(_) => panic!("a client without the CA connected"),
        Err(e) => e.to_string(),
    };
    eprintln!("without the CA: {no_ca}");
    assert!(no_ca.contains("UnknownIssuer"), "{no_ca}");
    let other_ca = refused(&url, &pki.trusting_another_ca()).await;
    eprintln!("with another CA: {other_ca}");
    assert!(other_ca.contains("UnknownIssuer"), "{other_ca}");
    let other_name = refused(&url, &pki.trusting().server_name("other.test").unwrap()).await;
    eprintln!("for another name: {other_name}");
    assert!(other_name.contains("not valid for name \"other.test\""), "{other_name}");

    let plain = start_nats(&binary, &[]).await;
    let plaintext = refused(&format!("nats://127.0.0.1:{}", plain.port), &pki.trusting()).await;
    eprintln!("to a plaintext server: {plaintext}");
    assert!(plaintext.contains("the server does not speak TLS on that port?"), "{plaintext}");
}

/// nats-server with `--tlsverify`: a client without a certificate, or with one another CA
/// signed, is refused; with one the test CA signed, a call round-trips.
#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_mtls_refuses_a_client_without_a_certificate() {
    let Some(binary) = nats_server_binary() else { return };
    let pki = Pki::new("nats-mtls");
    let args = ["--tlsverify", "--tlscert", &pki.file("server.pem"), "--tlskey", &pki.file("server.key"), "--tlscacert", &pki.file("ca.pem")];
    let nats = start_nats(&binary, &args).await;
    let url = format!("tls://127.0.0.1:{}", nats.port);

    round_trip(&url, &url, &pki.with_identity()).await;

    let anonymous = refused(&url, &pki.trusting()).await;
    eprintln!("without a client certificate: {anonymous}");
    // Go's TLS (nats-server 2.9) answers a missing certificate with bad_certificate, newer
    // releases with certificate_required.
    assert!(anonymous.contains("received fatal alert: BadCertificate") || anonymous.contains("received fatal alert: CertificateRequired"), "{anonymous}");
    let stranger = refused(&url, &pki.with_anothers_identity()).await;
    eprintln!("with another CA's certificate: {stranger}");
    assert!(stranger.contains("alert"), "{stranger}");
}

// ---- RabbitMQ ----------------------------------------------------------------------------------

/// A private RabbitMQ node (`scripts/brokers.sh` in a directory of its own), stopped and deleted
/// on drop.
#[cfg(feature = "amqp")]
struct RabbitNode {
    script: PathBuf,
    dir: PathBuf,
}

#[cfg(feature = "amqp")]
impl Drop for RabbitNode {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(&self.script)
            .arg("clean")
            .env("SB_BROKERS_DIR", &self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One RabbitMQ node whose TLS listener requires a client certificate the test CA signed: a
/// call round-trips over `amqps://` with the CA and a certificate; without a certificate, with
/// another CA's, without the CA or for another name, the connection is refused.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_a_private_ca_and_mtls() {
    if !Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
        switchboard_test_support::ci::skip_or_fail("RabbitMQ not installed (Debian: apt-get install rabbitmq-server)");
        return;
    }
    let pki = Pki::new("amqp");
    let (port, tls_port) = (free_port(), free_port());
    let config = [
        format!("listeners.ssl.default = 127.0.0.1:{tls_port}"),
        format!("ssl_options.cacertfile = {}", pki.file("ca.pem")),
        format!("ssl_options.certfile = {}", pki.file("server.pem")),
        format!("ssl_options.keyfile = {}", pki.file("server.key")),
        "ssl_options.verify = verify_peer".into(),
        "ssl_options.fail_if_no_peer_cert = true".into(),
    ]
    .join("\n");
    let node = RabbitNode {
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/brokers.sh"),
        dir: pki.dir.0.join("brokers"),
    };
    let mut start = std::process::Command::new("bash");
    start.arg(&node.script).args(["start", "amqp"]).env("SB_BROKERS_DIR", &node.dir).env("SB_AMQP_PORT", port.to_string());
    start.env("SB_AMQP_CONFIG", &config);
    let start = tokio::task::spawn_blocking(move || start.output()).await.unwrap().expect("run scripts/brokers.sh");
    assert!(start.status.success(), "the RabbitMQ node did not start:\n{}", String::from_utf8_lossy(&start.stderr));

    let url = format!("amqps://guest:guest@127.0.0.1:{tls_port}/%2f");
    // Ready once a TLS connection is accepted (brokers.sh waited for the node's startup).
    let tls = pki.with_identity();
    let ready = retry_until("RabbitMQ's TLS listener", Duration::from_secs(30), || Broker::connect_tls(&url, &tls)).await;
    ready.close().await;

    round_trip(&url, &url, &pki.with_identity()).await;
    round_trip(&url, &url, &pki.with_identity().server_name("broker.test").unwrap()).await;

    // RabbitMQ gives its verdict on the client's certificate after a TLS 1.3 handshake, which
    // lapin may see as a reset connection: the error says what the broker asked.
    let anonymous = refused(&url, &pki.trusting()).await;
    eprintln!("without a client certificate: {anonymous}");
    assert!(anonymous.contains("the broker asked for a client certificate and this ClientTls has none"), "{anonymous}");
    let stranger = refused(&url, &pki.with_anothers_identity()).await;
    eprintln!("with another CA's certificate: {stranger}");
    assert!(stranger.contains("the broker asked for a client certificate: it may have refused this one"), "{stranger}");
    let other_ca = refused(&url, &pki.trusting_another_ca().identity(pki.client.cert.as_bytes(), pki.client.key.as_bytes()).unwrap()).await;
    eprintln!("with another CA: {other_ca}");
    assert!(other_ca.contains("UnknownIssuer"), "{other_ca}");
    let other_name = refused(&url, &pki.with_identity().server_name("other.test").unwrap()).await;
    eprintln!("for another name: {other_name}");
    assert!(other_name.contains("not valid for name \"other.test\""), "{other_name}");
    let no_ca = match Broker::connect(&url).await {
        Ok(_) => panic!("a client without the CA connected"),
        Err(e) => e.to_string(),
    };
    eprintln!("without the CA: {no_ca}");
    assert!(no_ca.contains("UnknownIssuer"), "{no_ca}");
    let plain_url = refused(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), &pki.with_identity()).await;
    assert!(plain_url.contains("amqps://"), "{plain_url}");
    drop(node);
}
