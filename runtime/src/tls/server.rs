//! The server side: [`ServerTls`] (certificate, client CA, reload) and [`TlsListener`] (the
//! handshakes in front of `axum::serve`).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig};

use super::{certified_key, provider, read, roots, TlsError};

/// How long a client may take to finish its handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's TLS: its certificate chain and key, and optionally the CA its clients'
/// certificates must be signed by (mTLS). Serve with [`Server::serve_tls`](crate::Server::serve_tls)
/// or [`RestRouter::serve_tls`](crate::rest::RestRouter::serve_tls); ALPN offers `h2` and
/// `http/1.1`, so HTTP/2 (gRPC) and HTTP/1.1 (REST) clients share the port.
///
/// Clones share one certificate: [`reload`](ServerTls::reload) on any clone (the one kept after
/// handing another to the server) swaps it for the handshakes that follow, without a restart;
/// connections already open keep theirs.
#[derive(Clone)]
pub struct ServerTls {
    shared: Arc<Shared>,
    handshake_timeout: Duration,
}

struct Shared {
    state: RwLock<State>,
}

struct State {
    key: Arc<CertifiedKey>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// Built from the two above, read once per accepted connection.
    config: Arc<ServerConfig>,
}

impl State {
    fn new(key: Arc<CertifiedKey>, verifier: Option<Arc<dyn ClientCertVerifier>>) -> Result<Self, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected { what: "server TLS configuration", reason: e.to_string() })?;
        let builder = match &verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(State { key, verifier, config: Arc::new(config) })
    }
}

impl ServerTls {
    /// A server's TLS from its certificate chain (PEM, the server's certificate first, then any
    /// intermediates) and private key (PEM: PKCS#8, PKCS#1 or SEC1). Fails if either does not
    /// parse or the key is not the certificate's.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ServerTls::new(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let key = certified_key("server certificate and key", cert_chain_pem, key_pem)?;
        let state = State::new(key, None)?;
        Ok(ServerTls { shared: Arc::new(Shared { state: RwLock::new(state) }), handshake_timeout: HANDSHAKE_TIMEOUT })
    }

    /// [`ServerTls::new`] from two PEM files.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?;
    /// # Ok::<(), switchboard::tls::TlsError>(())
    /// ```
    pub fn from_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::new(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// Requires every client to present a certificate signed by one of the CAs in `ca_pem`
    /// (mTLS): a client without one, or with one these CAs did not sign, fails the handshake
    /// (TLS 1.3 clients see the server's alert on their first read).
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?
    ///     .client_ca(&std::fs::read("clients-ca.pem")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_ca(self, ca_pem: &[u8]) -> Result<Self, TlsError> {
        const WHAT: &str = "client CA";
        let mut store = RootCertStore::empty();
        roots(WHAT, ca_pem, &mut store)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .map_err(|e| TlsError::Rejected { what: WHAT, reason: e.to_string() })?;
        let mut state = self.shared.state.write().unwrap_or_else(PoisonError::into_inner);
        *state = State::new(state.key.clone(), Some(verifier))?;
        drop(state);
        Ok(self)
    }

    /// How long a client may take from its TCP connect to the end of its handshake before the
    /// connection is dropped (default 10 s). Handshakes run beside each other, so a slow client
    /// delays no other.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?
    ///     .handshake_timeout(std::time::Duration::from_secs(3));
    /// # Ok::<(), switchboard::tls::TlsError>(())
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Swaps the certificate chain and key (PEM, as [`ServerTls::new`]) for every clone of this
    /// `ServerTls`: handshakes that start after it returns present the new certificate, those
    /// already done keep the old one, and the server goes on serving. On an error nothing
    /// changes.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?;
    /// // hand `tls.clone()` to the server; later, with a renewed certificate:
    /// tls.reload(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reload(&self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        let key = certified_key("reloaded server certificate and key", cert_chain_pem, key_pem)?;
        let mut state = self.shared.state.write().unwrap_or_else(PoisonError::into_inner);
        *state = State::new(key, state.verifier.clone())?;
        Ok(())
    }

    /// [`reload`](ServerTls::reload) from two PEM files (where a certificate manager renews them).
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ServerTls::from_files("server.pem", "server.key")?;
    /// tls.reload_from_files("server.pem", "server.key")?;
    /// # Ok::<(), switchboard::tls::TlsError>(())
    /// ```
    pub fn reload_from_files(&self, cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<(), TlsError> {
        self.reload(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// Whether clients must present a certificate ([`client_ca`](ServerTls::client_ca)).
    pub fn requires_client_certificate(&self) -> bool {
        self.shared.state.read().unwrap_or_else(PoisonError::into_inner).verifier.is_some()
    }

    /// The rustls configuration new handshakes use now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.shared.state.read().unwrap_or_else(PoisonError::into_inner).config.clone()
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("requires_client_certificate", &self.requires_client_certificate())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "rest")]
pub use listener::TlsListener;

#[cfg(feature = "rest")]
mod listener {
    use std::net::SocketAddr;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinSet;
    use tokio_rustls::server::TlsStream;
    use tokio_rustls::TlsAcceptor;

    use super::ServerTls;

    /// A TCP listener whose connections are TLS streams: an [`axum::serve::Listener`], so
    /// `axum::serve(TlsListener::new(listener, tls), app)` serves any axum app over TLS
    /// ([`Server::serve_tls`](crate::Server::serve_tls) does this for switchboard's services).
    ///
    /// Each accepted connection's handshake runs in a task of its own, under the
    /// [`handshake timeout`](ServerTls::handshake_timeout); a connection whose handshake fails
    /// or times out (a plaintext client, an untrusted or missing client certificate, a port
    /// scan) is dropped and logged at debug level (`tracing` target `switchboard::tls`), and the
    /// listener goes on accepting.
    pub struct TlsListener {
        tcp: TcpListener,
        tls: ServerTls,
        handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
    }

    impl TlsListener {
        /// Serves TLS with `tls` on the connections `tcp` accepts.
        pub fn new(tcp: TcpListener, tls: ServerTls) -> Self {
            TlsListener { tcp, tls, handshakes: JoinSet::new() }
        }

        /// Starts the handshake of a connection just accepted.
        fn handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
            let _ = stream.set_nodelay(true);
            let acceptor = TlsAcceptor::from(self.tls.config());
            let timeout = self.tls.handshake_timeout;
            self.handshakes.spawn(async move {
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => Some((stream, peer)),
                    Ok(Err(e)) => {
                        tracing::debug!(target: "switchboard::tls", %peer, error = %e, "TLS handshake failed; connection dropped");
                        None
                    }
                    Err(_) => {
                        tracing::debug!(target: "switchboard::tls", %peer, ?timeout, "TLS handshake timed out; connection dropped");
                        None
                    }
                }
            });
        }
    }

    impl axum::serve::Listener for TlsListener {
        type Io = TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                tokio::select! {
                    accepted = self.tcp.accept() => match accepted {
                        Ok((stream, peer)) => self.handshake(stream, peer),
                        Err(e) => accept_error(e).await,
                    },
                    Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                        if let Ok(Some(connection)) = done {
                            return connection;
                        }
                    }
                }
            }
        }

        fn local_addr(&self) -> std::io::Result<SocketAddr> {
            self.tcp.local_addr()
        }
    }

    impl std::fmt::Debug for TlsListener {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TlsListener")
                .field("local_addr", &self.tcp.local_addr().ok())
                .field("tls", &self.tls)
                .field("handshakes", &self.handshakes.len())
                .finish()
        }
    }

    /// An accept that failed: a connection reset before it was accepted is nothing; anything
    /// else (out of file descriptors, say) is logged and waited out for a second, as axum's own
    /// listener does.
    async fn accept_error(e: std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
            return;
        }
        tracing::error!(target: "switchboard::tls", error = %e, "accept failed; retrying in 1 s");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
