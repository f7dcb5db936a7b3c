//! The client side: [`ClientTls`] (roots, identity, server name) and the [`Connector`] both
//! HTTP clients connect through.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::client::ResolvesClientCert;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{certified_key, provider, roots, TlsError};
#[cfg(feature = "grpc")]
use super::chain;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a connection waits for the verdict of a TLS 1.3 server that asked for a client
/// certificate but sends no session tickets (see [`Connector`]).
const VERDICT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A client's TLS: the CAs it trusts, optionally its own certificate (for servers that require
/// one: mTLS), optionally the name to verify the server's certificate against. Hand it to
/// [`GrpcClient::connect_tls`](crate::grpc::GrpcClient::connect_tls) (and the generated
/// `<Svc>Client::connect_tls`) or [`RestClient::with_tls`](crate::rest::RestClient::with_tls).
/// Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    roots: Arc<RootCertStore>,
    identity: Option<Arc<CertifiedKey>>,
    server_name: Option<ServerName<'static>>,
    /// Built from the three above (without ALPN: each client sets its own).
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// A client that trusts the CA certificates in `root_ca_pem` (one or more PEM certificates)
    /// and no others, and presents no certificate of its own.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(root_ca_pem: &[u8]) -> Result<Self, TlsError> {
        let mut store = RootCertStore::empty();
        roots("root CA", root_ca_pem, &mut store)?;
        Self::build(Arc::new(store), None, None)
    }

    /// Trusts the CA certificates in `root_ca_pem` as well.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?
    ///     .root_ca(&std::fs::read("next-ca.pem")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_ca(self, root_ca_pem: &[u8]) -> Result<Self, TlsError> {
        let mut store = (*self.roots).clone();
        roots("root CA", root_ca_pem, &mut store)?;
        Self::build(Arc::new(store), self.identity, self.server_name)
    }

    /// Presents this certificate chain (PEM, the client's certificate first) and key (PEM) to
    /// servers that ask for one (mTLS). Fails if either does not parse or the key is not the
    /// certificate's.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?
    ///     .identity(&std::fs::read("client.pem")?, &std::fs::read("client.key")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn identity(self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let key = certified_key("client certificate and key", cert_chain_pem, key_pem)?;
        Self::build(self.roots, Some(key), self.server_name)
    }

    /// Verifies the server's certificate against `name` (and sends it as SNI) instead of the
    /// URL's host: for a server reached by an address its certificate does not name.
    ///
    /// ```no_run
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?
    ///     .server_name("api.internal")?;
    /// // connects to 10.0.0.7, expects a certificate for api.internal
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn server_name(mut self, name: &str) -> Result<Self, TlsError> {
        let name = ServerName::try_from(name).map_err(|_| TlsError::ServerName(name.to_owned()))?;
        self.server_name = Some(name.to_owned());
        Ok(self)
    }

    fn build(
        roots: Arc<RootCertStore>,
        identity: Option<Arc<CertifiedKey>>,
        server_name: Option<ServerName<'static>>,
    ) -> Result<Self, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected { what: "client TLS configuration", reason: e.to_string() })?
            .with_root_certificates(roots.clone());
        let config = match &identity {
            Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone()))),
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls { roots, identity, server_name, config: Arc::new(config) })
    }

    /// A connector for HTTP/2 clients (offers ALPN `h2`): what
    /// [`GrpcClient::connect_tls`](crate::grpc::GrpcClient::connect_tls) connects through. With
    /// tonic's `Endpoint::connect_with_connector` it gives a `Channel` with the endpoint's other
    /// settings (timeouts, keep-alive); the connector makes TLS connections whatever the
    /// endpoint's scheme says, so give the endpoint `http://host:port` and set its `origin` to
    /// the `https://` URL if tonic's own TLS features are on in the build.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::grpc::transport::Endpoint;
    /// let tls = switchboard::tls::ClientTls::new(&std::fs::read("ca.pem")?)?;
    /// let channel = Endpoint::from_static("https://localhost:8443")
    ///     .keep_alive_while_idle(true)
    ///     .connect_with_connector(tls.connector())
    ///     .await?;
    /// # let _ = channel;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connector(&self) -> Connector {
        self.connector_with_alpn(vec![b"h2".to_vec()])
    }

    /// A tonic `Channel` to `url` (`https://host[:port]`) through [`ClientTls::connector`],
    /// connected before it returns.
    #[cfg(feature = "grpc")]
    pub(crate) async fn channel(&self, url: &str) -> Result<tonic::transport::Channel, TlsError> {
        let bad_url = || TlsError::Url(url.to_owned());
        let uri: http::Uri = url.parse().map_err(|_| bad_url())?;
        let authority = match (uri.scheme_str(), uri.authority(), uri.path()) {
            (Some("https"), Some(authority), "" | "/") if uri.query().is_none() => authority.clone(),
            _ => return Err(bad_url()),
        };
        // The connector makes TLS connections whatever the scheme: the endpoint says http:// so
        // that tonic's own TLS, should another crate turn it on, stays out of the way, and its
        // origin says https://, which the requests carry.
        let origin = http::Uri::builder().scheme("https").authority(authority.clone()).path_and_query("/").build().map_err(|_| bad_url())?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}")).map_err(|_| bad_url())?.origin(origin);
        endpoint.connect_with_connector(self.connector()).await.map_err(|e| TlsError::Connect { url: url.to_owned(), reason: chain(&e) })
    }

    /// The rustls configuration (no ALPN), the roots it trusts, and the name to verify instead
    /// of the host: for the broker clients (lapin, async-nats), which make their own connections.
    #[cfg(any(feature = "amqp", feature = "nats"))]
    pub(crate) fn parts(&self) -> (&Arc<ClientConfig>, &Arc<RootCertStore>, Option<&ServerName<'static>>) {
        (&self.config, &self.roots, self.server_name.as_ref())
    }

    /// A connector offering the ALPN protocols `alpn` (`http/1.1` for the REST client).
    pub(crate) fn connector_with_alpn(&self, alpn: Vec<Vec<u8>>) -> Connector {
        let mut config = (*self.config).clone();
        config.alpn_protocols = alpn;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        Connector { http, config: Arc::new(config), server_name: self.server_name.clone() }
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Makes TLS connections: TCP to the URI's host and port, then a rustls handshake verifying the
/// server's certificate against the [`ClientTls`]'s roots and its server name (or the URI's
/// host). A tower `Service<Uri>` for tonic's `Endpoint::connect_with_connector` and
/// hyper-util's client. From [`ClientTls::connector`].
///
/// A TLS 1.3 server that asks for a client certificate says whether it accepts the one sent (or
/// its absence) only after the client's side of the handshake is done, in its first records.
/// On such a connection the connector waits for them before handing the connection over: session
/// tickets or data (accepted), or an alert, which it returns as the handshake's error, so
/// `received fatal alert: CertificateRequired` reaches the caller where hyper would only report
/// a connection closed under its first call. This costs a new connection to such a server one
/// round trip (a server that sends no tickets and waits for the client to speak first: up to
/// 500 ms); connections to servers that ask for no certificate are handed over at once.
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// A handshake that failed: the peer, the name verified, and rustls' reason in one message (so
/// it reads whole however a caller prints errors).
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake with {peer} (server name `{name}`) failed: {reason}")]
struct HandshakeError {
    peer: String,
    name: String,
    reason: io::Error,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<ClientStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<ClientStream>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<http::Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let peer = uri.authority().map_or_else(String::new, ToString::to_string);
        let name = match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => {
                let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(host).map(|n| n.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
            }
        };
        let connect = tower_service::Service::call(&mut self.http, uri);
        // This connection's own config (the rest is shared: roots, sessions to resume), whose
        // certificate resolver notes whether the server asked for a client certificate.
        let asked = Arc::new(AtomicBool::new(false));
        let mut config = (*self.config).clone();
        config.client_auth_cert_resolver = Arc::new(NoteAsked { inner: config.client_auth_cert_resolver.clone(), asked: asked.clone() });
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
        Box::pin(async move {
            let name = name?;
            let tcp = connect.await?.into_inner();
            let failed = |reason| HandshakeError { peer: peer.clone(), name: name.to_str().into_owned(), reason };
            let mut stream = ClientStream { tls: tls.connect(name.clone(), tcp).await.map_err(failed)?, ahead: Vec::new() };
            let (_, session) = stream.tls.get_ref();
            if asked.load(Ordering::Relaxed) && session.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                stream.await_verdict().await.map_err(failed)?;
            }
            Ok(TokioIo::new(stream))
        })
    }
}

/// A connection's client certificate resolver: the configured one, noting that the server asked.
#[derive(Debug)]
struct NoteAsked {
    inner: Arc<dyn ResolvesClientCert>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for NoteAsked {
    fn resolve(&self, root_hint_subjects: &[&[u8]], sigschemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A client's TLS connection (what [`Connector`] yields, inside hyper-util's `TokioIo`).
#[derive(Debug)]
pub struct ClientStream {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    /// What the connector read ahead (the server's first reply), returned before anything else.
    ahead: Vec<u8>,
}

impl ClientStream {
    /// Waits, after a TLS 1.3 handshake in which the server asked for a client certificate, for
    /// the server's first records: session tickets or data (it accepted the certificate, or its
    /// absence; data is kept for the first reads), or an alert (it refused: the error). A server
    /// that sends neither (no tickets, and it waits for the client to speak first) is given
    /// [`VERDICT_WAIT`], then the connection is used as it is.
    async fn await_verdict(&mut self) -> io::Result<()> {
        let mut ahead = vec![0; 4096];
        let verdict = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut ahead);
            match Pin::new(&mut self.tls).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")))
                }
                Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending if self.tls.get_ref().1.tls13_tickets_received() > 0 => Poll::Ready(Ok(0)),
                Poll::Pending => Poll::Pending,
            }
        });
        let verdict = tokio::time::timeout(VERDICT_WAIT, verdict).await;
        if let Ok(read) = verdict {
            let read = read?;
            if read > 0 {
                ahead.truncate(read);
                self.ahead = ahead;
            }
        }
        Ok(())
    }

    /// The certificates the server presented, its own first.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.tls.get_ref().1.peer_certificates()
    }
}

impl Connection for ClientStream {
    fn connected(&self) -> Connected {
        self.tls.get_ref().0.connected()
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.ahead.is_empty() {
            let n = self.ahead.len().min(buf.remaining());
            buf.put_slice(&self.ahead[..n]);
            self.ahead.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}
