//! TLS for the HTTP transports (cargo feature `tls`): `https://` gRPC and REST servers and
//! clients on rustls (its `ring` provider), client certificates (mTLS), and server certificates
//! swapped without a restart. Plaintext stays the default: nothing here is on the path of a
//! server started with `serve` or a client of an `http://` URL.
//!
//! ```text
//! server: TcpListener ─▶ TlsListener (a handshake task per connection, under a timeout; a
//!         failed handshake is logged at debug and dropped, the listener keeps accepting)
//!           │  ServerTls: certificate chain + key (swapped by reload), optional client CA
//!           │  (mTLS: a client without a certificate signed by it fails the handshake),
//!           │  ALPN h2 + http/1.1
//!           ▼
//!         axum::serve ─▶ Server (gRPC by content-type, REST otherwise) or RestRouter
//!
//! client: ClientTls: root CAs, optional identity (mTLS), optional server name
//!           ▼
//!         Connector (tower Service<Uri>): TCP (hyper-util's HttpConnector, nodelay) ─▶ rustls
//!           ├─ GrpcClient::connect_tls / <Svc>Client::connect_tls: tonic Channel (ALPN h2)
//!           └─ RestClient::with_tls / <Svc>RestClient::with_client: hyper client (ALPN http/1.1)
//! ```
//!
//! Certificates and keys are PEM (a certificate chain leaf first; a PKCS#8, PKCS#1 or SEC1 key).
//! Everything that reads them returns a [`TlsError`] naming what was wrong; nothing here panics.
//!
//! ```no_run
//! # use switchboard::{Request, Response, Status};
//! # #[switchboard::service(package = "hello.v1")]
//! # pub trait Greeter {
//! #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status>;
//! # }
//! # struct Impl;
//! # impl Greeter for Impl {
//! #     async fn say_hello(&self, req: Request<String>) -> Result<Response<String>, Status> {
//! #         Ok(Response::new(req.into_inner()))
//! #     }
//! # }
//! use switchboard::tls::{ClientTls, ServerTls};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The server: its certificate and key; with `client_ca`, callers must present a certificate.
//! let tls = ServerTls::new(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?
//!     .client_ca(&std::fs::read("ca.pem")?)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! tokio::spawn(switchboard::Server::builder().add_service(GreeterServer::new(Impl)).serve_tls(listener, tls.clone()));
//!
//! // Later (a renewed certificate on disk): new connections get it, open ones keep theirs.
//! tls.reload_from_files("server.pem", "server.key")?;
//!
//! // A client trusting the CA and presenting its own certificate.
//! let client_tls = ClientTls::new(&std::fs::read("ca.pem")?)?
//!     .identity(&std::fs::read("client.pem")?, &std::fs::read("client.key")?)?;
//! let mut grpc = GreeterClient::connect_tls("https://localhost:8443", &client_tls).await?;
//! let rest = GreeterRestClient::with_client(switchboard::rest::RestClient::with_tls("https://localhost:8443", &client_tls)?);
//! # let _ = (grpc.say_hello(String::new()).await, rest);
//! # Ok(())
//! # }
//! ```

mod client;
mod server;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

pub use client::{ClientStream, ClientTls, Connector};
#[cfg(feature = "rest")]
pub use server::TlsListener;
pub use server::ServerTls;

/// Why TLS could not be set up or a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// PEM text that does not parse.
    #[error("{what}: not valid PEM ({reason})")]
    Pem {
        /// What was being read (`server certificate chain`, `client CA`, ...).
        what: &'static str,
        /// The parser's words.
        reason: String,
    },
    /// PEM with no certificate in it.
    #[error("{what}: no certificate found (expected a `-----BEGIN CERTIFICATE-----` block)")]
    NoCertificate {
        /// What was being read.
        what: &'static str,
    },
    /// PEM with no private key in it.
    #[error(
        "{what}: no private key found (expected a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
    )]
    NoKey {
        /// What was being read.
        what: &'static str,
    },
    /// A certificate or key rustls refused (a key that does not match the certificate, an
    /// unsupported key type, a CA certificate that does not parse).
    #[error("{what}: {reason}")]
    Rejected {
        /// What was being read.
        what: &'static str,
        /// rustls' words.
        reason: String,
    },
    /// A PEM file that could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A server name (for certificate verification and SNI) that is neither a DNS name nor an
    /// IP address.
    #[error("`{0}` is not a valid server name (a DNS name or an IP address)")]
    ServerName(String),
    /// A URL a TLS client cannot connect to.
    #[error("`{0}` is not an https://host[:port] URL")]
    Url(String),
    /// The connection could not be made: TCP, the TLS handshake (an unknown issuer, a name the
    /// certificate does not cover, a server that wants a client certificate) or HTTP/2.
    #[error("connecting to {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Every cause, outermost first.
        reason: String,
    },
}

/// rustls on ring, for every config here (explicit, so the process-wide default provider,
/// installed or not, does not matter).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM document (at least one).
fn certificates(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { what, reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// A certificate chain and its private key, checked to match.
fn certified_key(what: &'static str, chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(what, chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey { what },
        e => TlsError::Pem { what, reason: e.to_string() },
    })?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Rejected { what, reason: e.to_string() })?;
    Ok(Arc::new(key))
}

/// A root store of the CA certificates in `pem` (every one must parse).
fn roots(what: &'static str, pem: &[u8], into: &mut rustls::RootCertStore) -> Result<(), TlsError> {
    for cert in certificates(what, pem)? {
        into.add(cert).map_err(|e| TlsError::Rejected { what, reason: e.to_string() })?;
    }
    Ok(())
}

/// Reads a PEM file.
fn read(path: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io { path: path.display().to_string(), source })
}

#[cfg(feature = "grpc")]
/// `error` and its sources, outermost first, joined with `: ` (each cause once: a wrapper that
/// only repeats its source's words is skipped).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut source = Some(error);
    while let Some(err) = source {
        let words = err.to_string();
        if !text.ends_with(&words) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&words);
        }
        source = err.source();
    }
    text
}
