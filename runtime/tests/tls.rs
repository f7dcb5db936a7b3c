//! TLS (feature `tls`) on real servers on loopback, with certificates this test makes (rcgen):
//! gRPC and REST clients over `https://` on one port, mTLS (a client without a certificate, or
//! with one another CA signed, is refused), the errors a wrong CA or name gives, a certificate
//! reloaded while the server runs, bad handshakes that leave the server serving, PEM errors, and
//! Python's grpcio and `requests` calling the TLS server (`tls_peer.py`; skipped with the reason
//! when python3, grpcio or requests is missing, failed instead under `CI=true`).
#![cfg(feature = "tls")]

#[path = "common/certs.rs"]
mod certs;

use std::time::Duration;

use certs::Ca;
use switchboard::rest::RestClient;
use switchboard::tls::{ClientTls, ServerTls, TlsError};
use switchboard::{Code, Request, Response, Status};
use switchboard_test_support::server::{in_background, unique_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The names of the servers' certificates.
const LOCAL: &[&str] = &["localhost", "127.0.0.1"];

#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Greeting {
    #[prost(string, tag = "1")]
    pub text: String,
}

#[switchboard::service(package = "test.tls.v1")]
pub trait Echo {
    /// Answers `hello, <text>`.
    async fn say(&self, req: Request<Greeting>) -> Result<Response<Greeting>, Status>;
}

struct Impl;

impl Echo for Impl {
    async fn say(&self, req: Request<Greeting>) -> Result<Response<Greeting>, Status> {
        Ok(Response::new(Greeting { text: format!("hello, {}", req.into_inner().text) }))
    }
}

fn greeting(text: &str) -> Greeting {
    Greeting { text: text.to_owned() }
}

// ---- servers and clients -----------------------------------------------------------------------

/// `Echo` over gRPC and REST on one TLS port, on a thread and runtime of its own; its address.
fn serve(tls: ServerTls) -> String {
    in_background("tls-server", |ready| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _ = ready.send(Ok(listener.local_addr().unwrap().to_string()));
        let served = switchboard::Server::builder().add_service(EchoServer::new(Impl)).serve_tls(listener, tls).await;
        panic!("the TLS server stopped: {served:?}");
    })
    .unwrap()
}

fn client_tls(ca: &Ca) -> ClientTls {
    ClientTls::new(ca.pem().as_bytes()).unwrap()
}

async fn grpc(addr: &str, tls: &ClientTls) -> Result<EchoClient, TlsError> {
    EchoClient::connect_tls(&format!("https://{addr}"), tls).await
}

fn rest(addr: &str, tls: &ClientTls) -> EchoRestClient {
    EchoRestClient::with_client(RestClient::with_tls(&format!("https://{addr}"), tls).unwrap())
}

/// One unary call over gRPC: its answer, or the status.
async fn grpc_say(addr: &str, tls: &ClientTls, text: &str) -> Result<String, String> {
    let mut client = grpc(addr, tls).await.map_err(|e| e.to_string())?;
    client.say(greeting(text)).await.map(|r| r.into_inner().text).map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// One unary call over REST: its answer, or the status.
async fn rest_say(addr: &str, tls: &ClientTls, text: &str) -> Result<String, String> {
    let mut client = rest(addr, tls);
    client.say(greeting(text)).await.map(|r| r.into_inner().text).map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// The certificate the server at `addr` presents to a new connection (DER), through the
/// connector both clients use.
async fn presented_certificate(addr: &str, tls: &ClientTls) -> Result<Vec<u8>, String> {
    use tower::ServiceExt;
    let uri: http::Uri = format!("https://{addr}").parse().unwrap();
    let io = tls.connector().oneshot(uri).await.map_err(|e| e.to_string())?;
    Ok(io.inner().peer_certificates().expect("the server's certificates")[0].to_vec())
}

// ---- tests -------------------------------------------------------------------------------------

#[tokio::test]
async fn grpc_and_rest_clients_call_one_tls_port() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(LOCAL);
    let addr = serve(ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap());
    let tls = client_tls(&ca);

    let mut client = grpc(&addr, &tls).await.unwrap();
    for text in ["one", "two"] {
        assert_eq!(client.say(greeting(text)).await.unwrap().into_inner().text, format!("hello, {text}"));
    }
    assert_eq!(rest_say(&addr, &tls, "rest").await.unwrap(), "hello, rest");

    // By name: the certificate names localhost (the connect goes to ::1 or 127.0.0.1).
    let port = addr.rsplit(':').next().unwrap();
    assert_eq!(grpc_say(&format!("localhost:{port}"), &tls, "by name").await.unwrap(), "hello, by name");
    // An address reached under another name: the override is what is verified.
    let renamed = client_tls(&ca).server_name("localhost").unwrap();
    assert_eq!(rest_say(&addr, &renamed, "renamed").await.unwrap(), "hello, renamed");
    assert_eq!(presented_certificate(&addr, &tls).await.unwrap(), leaf.der);
}

#[tokio::test]
async fn rest_alone_over_tls_and_a_tls_server_that_shuts_down() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(LOCAL);
    let tls = ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap();
    let client = client_tls(&ca);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(EchoRestServer::new(Impl).serve_tls(listener, tls.clone()));
    assert_eq!(rest_say(&addr, &client, "rest alone").await.unwrap(), "hello, rest alone");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = switchboard::Server::builder().add_service(EchoServer::new(Impl));
    let served = tokio::spawn(server.serve_tls_with_shutdown(listener, tls, async move {
        let _ = stopped.await;
    }));
    assert_eq!(grpc_say(&addr, &client, "before").await.unwrap(), "hello, before");
    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), served).await.expect("the server stops after its signal");
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
    assert!(grpc(&addr, &client).await.is_err(), "a stopped server takes no connection");
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_the_ca_signed() {
    let ca = Ca::new("test CA");
    let clients_ca = Ca::new("clients CA");
    let leaf = ca.server(LOCAL);
    let server = ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap().client_ca(clients_ca.pem().as_bytes()).unwrap();
    assert!(server.requires_client_certificate());
    let addr = serve(server);

    // No certificate: TLS 1.3 completes the client's side of the handshake before the server
    // decides; the client waits for the server's verdict, so its alert is the error.
    let handshake = format!("TLS handshake with {addr} (server name `127.0.0.1`) failed: received fatal alert: ");
    let anonymous = client_tls(&ca);
    let err = grpc_say(&addr, &anonymous, "x").await.unwrap_err();
    assert_eq!(err, format!("connecting to https://{addr}: transport error: {handshake}CertificateRequired"));
    let err = rest_say(&addr, &anonymous, "x").await.unwrap_err();
    assert_eq!(err, format!("Unavailable: REST call failed: client error (Connect): {handshake}CertificateRequired"));

    // A certificate another CA signed.
    let stranger = ca.client();
    let wrong = client_tls(&ca).identity(stranger.cert.as_bytes(), stranger.key.as_bytes()).unwrap();
    let err = grpc_say(&addr, &wrong, "x").await.unwrap_err();
    assert_eq!(err, format!("connecting to https://{addr}: transport error: {handshake}UnknownCA"));

    // A certificate the clients' CA signed.
    let member = clients_ca.client();
    let trusted = client_tls(&ca).identity(member.cert.as_bytes(), member.key.as_bytes()).unwrap();
    assert_eq!(grpc_say(&addr, &trusted, "mtls").await.unwrap(), "hello, mtls");
    assert_eq!(rest_say(&addr, &trusted, "mtls").await.unwrap(), "hello, mtls");
}

#[tokio::test]
async fn a_wrong_ca_or_name_is_a_clear_error() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(LOCAL);
    let addr = serve(ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap());

    let other = client_tls(&Ca::new("other CA"));
    let err = grpc(&addr, &other).await.unwrap_err();
    assert!(matches!(err, TlsError::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("connecting to https://{addr}: "))
            && text.contains(&format!("TLS handshake with {addr} (server name `127.0.0.1`) failed: invalid peer certificate: UnknownIssuer")),
        "gRPC with the wrong CA: {text}"
    );
    let err = rest_say(&addr, &other, "x").await.unwrap_err();
    assert!(
        err.starts_with("Unavailable: REST call failed: ") && err.contains("failed: invalid peer certificate: UnknownIssuer"),
        "REST with the wrong CA: {err}"
    );

    let misnamed = client_tls(&ca).server_name("api.example").unwrap();
    let text = grpc(&addr, &misnamed).await.unwrap_err().to_string();
    assert!(text.contains("(server name `api.example`) failed: invalid peer certificate: certificate not valid for name"), "{text}");
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections_without_a_restart() {
    let first_ca = Ca::new("first CA");
    let next_ca = Ca::new("next CA");
    let first = first_ca.server(LOCAL);
    let next = next_ca.server(LOCAL);
    let tls = ServerTls::new(first.cert.as_bytes(), first.key.as_bytes()).unwrap();
    let addr = serve(tls.clone());
    let trusts_first = client_tls(&first_ca);
    let trusts_next = client_tls(&next_ca);

    let mut open = grpc(&addr, &trusts_first).await.unwrap();
    assert_eq!(open.say(greeting("before")).await.unwrap().into_inner().text, "hello, before");
    assert_eq!(presented_certificate(&addr, &trusts_first).await.unwrap(), first.der);
    assert!(grpc(&addr, &trusts_next).await.is_err());

    // A reload that fails changes nothing.
    let err = tls.reload(next.cert.as_bytes(), first.key.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::Rejected { .. }), "{err:?}");
    assert_eq!(presented_certificate(&addr, &trusts_first).await.unwrap(), first.der);

    tls.reload(next.cert.as_bytes(), next.key.as_bytes()).unwrap();
    // New connections get the new certificate (the next CA's) ...
    assert_eq!(presented_certificate(&addr, &trusts_next).await.unwrap(), next.der);
    assert_eq!(grpc_say(&addr, &trusts_next, "after").await.unwrap(), "hello, after");
    assert_eq!(rest_say(&addr, &trusts_next, "after").await.unwrap(), "hello, after");
    let err = presented_certificate(&addr, &trusts_first).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // ... and the connection made before the reload goes on, on the same server.
    assert_eq!(open.say(greeting("still")).await.unwrap().into_inner().text, "hello, still");
}

#[tokio::test]
async fn bad_handshakes_leave_the_server_serving() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(LOCAL);
    let tls = ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap().handshake_timeout(Duration::from_millis(300));
    let addr = serve(tls);
    let good = client_tls(&ca);

    // A plaintext HTTP/1.1 request, garbage, a connection closed at once: each is dropped.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await.expect("the server closes it");
    assert!(!answer.starts_with(b"HTTP/"), "a plaintext request got an HTTP answer");
    let mut garbage = tokio::net::TcpStream::connect(&addr).await.unwrap();
    garbage.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]).await.unwrap();
    drop(tokio::net::TcpStream::connect(&addr).await.unwrap());
    // Plaintext clients of the TLS port fail the call, not the server.
    let err = EchoRestClient::new(&format!("http://{addr}")).unwrap().say(greeting("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    // A client that connects and says nothing delays no one, and is dropped at the timeout.
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert_eq!(grpc_say(&addr, &good, "meanwhile").await.unwrap(), "hello, meanwhile");
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut [0; 16])).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the silent connection is closed after the handshake timeout: {read:?}");

    assert_eq!(rest_say(&addr, &good, "still serving").await.unwrap(), "hello, still serving");
}

#[tokio::test]
async fn bad_pem_and_urls_are_errors_that_say_what_is_wrong() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(LOCAL);
    let other = ca.server(LOCAL);

    let err = ServerTls::new(b"not a certificate", leaf.key.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "server certificate and key: no certificate found (expected a `-----BEGIN CERTIFICATE-----` block)"
    );
    let err = ServerTls::new(leaf.cert.as_bytes(), leaf.cert.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::NoKey { what: "server certificate and key" }), "{err:?}");
    let err = ServerTls::new(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", leaf.key.as_bytes()).unwrap_err();
    assert!(err.to_string().starts_with("server certificate and key: not valid PEM ("), "{err}");
    let err = ServerTls::new(leaf.cert.as_bytes(), other.key.as_bytes()).unwrap_err();
    assert!(err.to_string().starts_with("server certificate and key: ") && err.to_string().contains("key"), "{err}");
    let err = ServerTls::from_files("/nonexistent/server.pem", "/nonexistent/server.key").unwrap_err();
    assert!(err.to_string().starts_with("reading /nonexistent/server.pem: "), "{err}");
    let err = ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap().client_ca(b"").unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { what: "client CA" }), "{err:?}");

    let err = ClientTls::new(b"").unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { what: "root CA" }), "{err:?}");
    let err = client_tls(&ca).identity(leaf.cert.as_bytes(), b"").unwrap_err();
    assert!(matches!(err, TlsError::NoKey { what: "client certificate and key" }), "{err:?}");
    let err = client_tls(&ca).server_name("not a name!").unwrap_err();
    assert_eq!(err.to_string(), "`not a name!` is not a valid server name (a DNS name or an IP address)");

    let tls = client_tls(&ca);
    let err = EchoClient::connect_tls("http://127.0.0.1:1", &tls).await.unwrap_err();
    assert_eq!(err.to_string(), "`http://127.0.0.1:1` is not an https://host[:port] URL");
    let err = RestClient::new("https://127.0.0.1:1").unwrap_err();
    assert_eq!(err.to_string(), "invalid base URL `https://127.0.0.1:1` is an https:// URL: TLS needs RestClient::with_tls");
    let err = RestClient::with_tls("http://127.0.0.1:1", &tls).unwrap_err();
    assert_eq!(err.to_string(), "invalid base URL `http://127.0.0.1:1` is not an https://host[:port][/prefix] URL");
}

#[tokio::test]
async fn python_grpcio_and_requests_call_the_tls_server() {
    let has_modules = std::process::Command::new("python3")
        .args(["-c", "import grpc, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_modules {
        switchboard_test_support::ci::skip_or_fail("python3 with grpcio and requests not available (pip install grpcio requests)");
        return;
    }
    let ca = Ca::new("test CA");
    let leaf = ca.server(LOCAL);
    let clients_ca = Ca::new("clients CA");
    let member = clients_ca.client();
    let plain = serve(ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap());
    let mtls = serve(
        ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap().client_ca(clients_ca.pem().as_bytes()).unwrap(),
    );

    let dir = std::env::temp_dir().join(unique_id("switchboard-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_path = write("ca.pem", &ca.pem());
    let cert_path = write("client.pem", &member.cert);
    let key_path = write("client.key", &member.key);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_peer.py");

    let run = |args: Vec<String>| {
        let script = script.clone();
        tokio::task::spawn_blocking(move || std::process::Command::new("python3").arg(&script).args(&args).output().expect("run python3"))
    };
    let tls_out = run(vec![plain.clone(), ca_path.clone()]).await.unwrap();
    let mtls_out = run(vec![mtls.clone(), ca_path, cert_path, key_path]).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    for (what, out, expected) in [
        ("TLS", tls_out, ["grpc: hello, python grpc", "rest: hello, python requests", "2 passed, 0 failed"].as_slice()),
        (
            "mTLS",
            mtls_out,
            [
                "grpc: hello, python grpc",
                "rest: hello, python requests",
                "grpc without a client certificate: refused (UNAVAILABLE)",
                "rest without a client certificate: refused (SSLError)",
                "4 passed, 0 failed",
            ]
            .as_slice(),
        ),
    ] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "python over {what} failed ({}):\n{stdout}\n{stderr}", out.status);
        for line in expected {
            assert!(stdout.lines().any(|l| l == *line), "python over {what}: no line {line:?} in:\n{stdout}\n{stderr}");
        }
    }
}
