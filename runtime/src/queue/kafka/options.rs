//! [`KafkaOptions`]: what a `kafka://` connection does beyond the URL's brokers; [`KafkaTls`]
//! and SASL credentials: how it authenticates.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of a Kafka connection ([`Broker::connect_kafka`](super::super::Broker::connect_kafka);
/// `Broker::connect` reads the same ones from the URL's query: `kafka://h:9092?partitions=12&create_topics=false`).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::queue::{Broker, KafkaOptions};
/// let options = KafkaOptions::new()
///     .partitions(12)
///     .replication(3)
///     .group_instance_id("billing-0") // static membership: a restart within the session timeout keeps its partitions
///     .config("security.protocol", "plaintext");
/// let broker = Broker::connect_kafka("kafka://k1:9092,k2:9092", options).await?;
/// # let _ = broker; Ok(()) }
/// ```
///
/// Security: [`tls`](Self::tls) (feature `kafka-tls`), [`sasl_plain`](Self::sasl_plain),
/// [`sasl_scram`](Self::sasl_scram) (feature `kafka-tls`), or in the URL:
/// `kafkas://host:9093?ca=/etc/kafka/ca.pem`, `kafka://user:password@host:9092?sasl=SCRAM-SHA-256`
/// (docs/queue-protocol.md, "Kafka", "Security").
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    pub(crate) partitions: i32,
    pub(crate) replication: i32,
    pub(crate) create_topics: bool,
    pub(crate) group: Option<String>,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) session_timeout: Duration,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) reply_lease: Duration,
    pub(crate) reply_sweep: Duration,
    pub(crate) tls: Option<KafkaTls>,
    pub(crate) sasl: Option<Sasl>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            partitions: 6,
            replication: 1,
            create_topics: true,
            group: None,
            group_instance_id: None,
            session_timeout: Duration::from_secs(6),
            config: Vec::new(),
            reply_lease: Duration::from_secs(30),
            reply_sweep: Duration::from_secs(30),
            tls: None,
            sasl: None,
        }
    }
}

impl KafkaOptions {
    /// The defaults: topics created on first use with 6 partitions and replication factor 1,
    /// one consumer group per service, a 6 s session timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Partitions of the topics this connection creates (events, retries, dead letters,
    /// requests). Default 6. URL: `partitions=`.
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n.max(1);
        self
    }

    /// Replication factor of the topics this connection creates. Default 1. URL: `replication=`.
    pub fn replication(mut self, n: i32) -> Self {
        self.replication = n.max(1);
        self
    }

    /// Whether topics are created on first use (default) or must exist: with `false`, serving
    /// or publishing to a missing topic fails with FAILED_PRECONDITION naming the topic. URL:
    /// `create_topics=false`.
    pub fn create_topics(mut self, on: bool) -> Self {
        self.create_topics = on;
        self
    }

    /// The consumer group of every service's event consumers on this connection, instead of
    /// `sb.event.<service>` (the retry topic's consumers use this name and `.retry`). URL:
    /// `group=`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Static group membership (`group.instance.id`, KIP-345): a consumer that restarts within
    /// the session timeout gets its partitions back without a rebalance. Give each replica its
    /// own stable id. URL: `group_instance_id=`.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// `session.timeout.ms` of the consumers. Default 6 s. URL: `session_timeout_ms=`.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Any librdkafka property, set on every client of the connection (producer, consumers,
    /// admin client), after switchboard's own (`security.protocol`, `sasl.*`, `linger.ms`, …).
    /// URL: any query parameter with a `.` in its name.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// TLS to the brokers (`security.protocol=SSL`, or `SASL_SSL` with SASL): the brokers'
    /// certificates are verified against `tls`'s CA (else OpenSSL's default roots) and their
    /// host names. Needs the feature `kafka-tls` (librdkafka built with OpenSSL; Debian:
    /// libssl-dev): without it, connecting fails with an error naming the feature. URL:
    /// `kafkas://`, `tls=true`, `ca=`, `cert=`, `key=`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let tls = KafkaTls::new()
    ///     .ca_file("/etc/kafka/ca.pem")
    ///     .client_cert_files("/etc/kafka/client.pem", "/etc/kafka/client.key"); // mTLS, if the brokers ask
    /// let broker = Broker::connect_kafka("kafka://k1:9093", KafkaOptions::new().tls(tls)).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn tls(mut self, tls: KafkaTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// SASL PLAIN with `username` and `password` (`security.protocol=SASL_PLAINTEXT`, or
    /// `SASL_SSL` with [`tls`](Self::tls): PLAIN sends the password as it is, so use it over
    /// TLS). Needs no feature beyond `kafka`. URL: `kafka://user:password@host:9092`
    /// (percent-encoded; `sasl=PLAIN` is the default with a user).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions};
    /// let options = KafkaOptions::new().sasl_plain("billing", std::env::var("KAFKA_PASSWORD")?);
    /// let broker = Broker::connect_kafka("kafka://k1:9092", options).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn sasl_plain(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.sasl = Some(Sasl { mechanism: "PLAIN".into(), credentials: Some((username.into(), Secret(password.into()))) });
        self
    }

    /// SASL SCRAM (`SCRAM-SHA-256` or `SCRAM-SHA-512`) with `username` and `password`: the
    /// password never crosses the wire. Needs the feature `kafka-tls` (librdkafka's SCRAM is
    /// built on OpenSSL). URL: `kafka://user:password@host:9092?sasl=SCRAM-SHA-256`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaScram, KafkaTls};
    /// let options = KafkaOptions::new()
    ///     .sasl_scram(KafkaScram::Sha512, "billing", std::env::var("KAFKA_PASSWORD")?)
    ///     .tls(KafkaTls::new()); // SASL_SSL, OpenSSL's default roots
    /// let broker = Broker::connect_kafka("kafka://k1:9093", options).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn sasl_scram(mut self, mechanism: KafkaScram, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.sasl = Some(Sasl { mechanism: mechanism.name().into(), credentials: Some((username.into(), Secret(password.into()))) });
        self
    }

    /// Reads `kafka[s]://[user:password@]host:port[,host:port…][?query]`: the bootstrap servers,
    /// and the options in the query over `self`.
    pub(crate) fn parse_url(mut self, url: &str) -> Result<(String, Self), String> {
        let (scheme, rest) = url.split_once("://").unwrap_or(("kafka", url));
        let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
        if scheme.eq_ignore_ascii_case("kafkas") && self.tls.is_none() {
            self.tls = Some(KafkaTls::new());
        }
        let (userinfo, hosts) = match hosts.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, hosts),
        };
        let servers: Vec<&str> = hosts
            .split(',')
            .map(|h| h.trim().trim_start_matches("kafka://").trim_end_matches('/'))
            .filter(|h| !h.is_empty())
            .collect();
        if servers.is_empty() {
            return Err("a kafka:// URL names at least one host:port".into());
        }
        let mut mechanism = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = &*percent_decode(value).map_err(|e| format!("`{key}=`: {e}"))?;
            let number = |v: &str| v.parse::<i64>().map_err(|_| format!("`{key}={v}`: not a number"));
            match key {
                "partitions" => self.partitions = number(value)?.clamp(1, i32::MAX.into()) as i32,
                "replication" => self.replication = number(value)?.clamp(1, i32::MAX.into()) as i32,
                "create_topics" => self.create_topics = !matches!(value, "false" | "0" | "no"),
                "group" => self.group = Some(value.to_owned()),
                "group_instance_id" => self.group_instance_id = Some(value.to_owned()),
                "session_timeout_ms" => self.session_timeout = Duration::from_millis(number(value)?.max(1) as u64),
                "tls" => match value {
                    "true" | "1" | "yes" => {
                        self.tls.get_or_insert_with(KafkaTls::new);
                    }
                    "false" | "0" | "no" => self.tls = None,
                    v => return Err(format!("`tls={v}`: expected true or false")),
                },
                "ca" => self.tls.get_or_insert_with(KafkaTls::new).ca = Some(Source::File(value.into())),
                "cert" => self.tls.get_or_insert_with(KafkaTls::new).cert = Some(Source::File(value.into())),
                "key" => self.tls.get_or_insert_with(KafkaTls::new).key = Some(Source::File(value.into())),
                "sasl" => mechanism = Some(sasl_mechanism(value)?),
                k if k.contains('.') => self.config.push((k.to_owned(), value.to_owned())),
                k => return Err(format!("unknown kafka:// URL parameter `{k}`")),
            }
        }
        let credentials = match userinfo {
            Some(userinfo) => {
                let (user, password) = userinfo
                    .split_once(':')
                    .ok_or("a kafka:// URL's user needs a password: kafka://user:password@host:port")?;
                let user = percent_decode(user).map_err(|e| format!("the URL's user: {e}"))?;
                let password = percent_decode(password).map_err(|e| format!("the URL's password: {e}"))?;
                Some((user, Secret(password)))
            }
            None => None,
        };
        match (mechanism, credentials) {
            (mechanism, Some(credentials)) => {
                let mechanism = mechanism.unwrap_or_else(|| self.sasl.as_ref().map_or("PLAIN".into(), |s| s.mechanism.clone()));
                if !takes_password(&mechanism) {
                    return Err(format!("`sasl={mechanism}` takes no user and password in the URL (librdkafka's sasl.* properties configure it)"));
                }
                self.sasl = Some(Sasl { mechanism, credentials: Some(credentials) });
            }
            (Some(mechanism), None) => match self.sasl.as_mut() {
                Some(sasl) if takes_password(&mechanism) == sasl.credentials.is_some() => sasl.mechanism = mechanism,
                _ if takes_password(&mechanism) => {
                    return Err(format!("`sasl={mechanism}` needs a user and password: kafka://user:password@host:port?sasl={mechanism}"))
                }
                _ => self.sasl = Some(Sasl { mechanism, credentials: None }),
            },
            (None, None) => {}
        }
        Ok((servers.join(","), self))
    }

    /// The librdkafka properties of the security settings (`security.protocol`, `ssl.*`,
    /// `sasl.*`), checked against the features this build has, the caller's own properties
    /// ([`config`](Self::config)) included: asking for TLS or SCRAM without `kafka-tls`, or for
    /// GSSAPI without `kafka-gssapi`, is an error naming the feature, not librdkafka's
    /// "unsupported" at the first connection.
    pub(crate) fn security(&self) -> Result<Vec<(&'static str, String)>, String> {
        self.security_in(cfg!(feature = "kafka-tls"), cfg!(feature = "kafka-gssapi"))
    }

    /// [`security`](Self::security) in a build with (or without) `kafka-tls` and `kafka-gssapi`.
    fn security_in(&self, has_tls: bool, has_gssapi: bool) -> Result<Vec<(&'static str, String)>, String> {
        let mut props: Vec<(&'static str, String)> = Vec::new();
        let protocol = match (&self.tls, &self.sasl) {
            (None, None) => None,
            (Some(_), None) => Some("ssl"),
            (None, Some(_)) => Some("sasl_plaintext"),
            (Some(_), Some(_)) => Some("sasl_ssl"),
        };
        if let Some(protocol) = protocol {
            props.push(("security.protocol", protocol.into()));
        }
        if let Some(tls) = &self.tls {
            tls.properties(&mut props)?;
        }
        if let Some(sasl) = &self.sasl {
            props.push(("sasl.mechanism", sasl.mechanism.clone()));
            if let Some((user, password)) = &sasl.credentials {
                props.push(("sasl.username", user.clone()));
                props.push(("sasl.password", password.0.clone()));
            }
        }
        // What librdkafka will use: the caller's properties come last and win.
        let last = |names: &[&str]| {
            let ours = props.iter().rev().find(|(k, _)| names.contains(k)).map(|(_, v)| v.clone());
            let theirs = self.config.iter().rev().find(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.clone());
            theirs.or(ours)
        };
        let protocol = last(&["security.protocol"]).unwrap_or_default().to_ascii_lowercase();
        if matches!(protocol.as_str(), "ssl" | "sasl_ssl") && !has_tls {
            return Err(format!(
                "TLS to Kafka (security.protocol={protocol}) needs switchboard's `kafka-tls` feature (librdkafka built with OpenSSL; Debian: libssl-dev); this build has none"
            ));
        }
        if protocol.starts_with("sasl_") {
            // librdkafka's default mechanism is GSSAPI.
            let mechanism = last(&["sasl.mechanism", "sasl.mechanisms"]).unwrap_or_else(|| "GSSAPI".into()).to_ascii_uppercase();
            if mechanism.starts_with("SCRAM-") && !has_tls {
                return Err(format!(
                    "SASL {mechanism} needs switchboard's `kafka-tls` feature (librdkafka's SCRAM is built on OpenSSL; Debian: libssl-dev); this build has none (SASL PLAIN needs only `kafka`)"
                ));
            }
            if mechanism == "GSSAPI" && !has_gssapi {
                return Err(
                    "SASL GSSAPI (Kerberos; librdkafka's default sasl.mechanism) needs switchboard's `kafka-gssapi` feature (Cyrus SASL; Debian: libsasl2-dev); this build has none (for PLAIN or SCRAM, name the mechanism: `sasl=PLAIN` in the URL)".into(),
                );
            }
        }
        Ok(props)
    }

    /// How long this connection's reply topic stays leased after each renewal: the client
    /// renews its lease in `sb.reply.leases` every third of it, and request servers delete reply
    /// topics whose lease has run out (docs/queue-protocol.md, "Kafka"). Default 30 s.
    pub fn reply_lease(mut self, lease: Duration) -> Self {
        self.reply_lease = lease.max(Duration::from_millis(300));
        self
    }

    /// How often this connection's request servers look for reply topics whose lease ran out
    /// and delete them. Default 30 s; `Duration::ZERO`: never.
    pub fn reply_sweep(mut self, every: Duration) -> Self {
        self.reply_sweep = every;
        self
    }
}

/// The SCRAM mechanism of [`KafkaOptions::sasl_scram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaScram {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl KafkaScram {
    fn name(self) -> &'static str {
        match self {
            KafkaScram::Sha256 => "SCRAM-SHA-256",
            KafkaScram::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// TLS settings of a Kafka connection ([`KafkaOptions::tls`]; feature `kafka-tls`): which CA
/// the brokers' certificates must chain to, and the client's own certificate if the brokers ask
/// for one (mTLS). Files are read by librdkafka when it connects; PEM given as text is passed as
/// it is. Left empty, the brokers are verified against OpenSSL's default roots.
#[derive(Clone)]
pub struct KafkaTls {
    ca: Option<Source>,
    cert: Option<Source>,
    key: Option<Source>,
    key_password: Option<Secret>,
    verify_hostname: bool,
}

impl Default for KafkaTls {
    fn default() -> Self {
        KafkaTls { ca: None, cert: None, key: None, key_password: None, verify_hostname: true }
    }
}

impl KafkaTls {
    /// TLS with OpenSSL's default roots, host names verified, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificates in the PEM file at `path` (`ssl.ca.location`), and no others.
    /// URL: `ca=/path/ca.pem`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let options = KafkaOptions::new().tls(KafkaTls::new().ca_file("/etc/kafka/ca.pem"));
    /// let broker = Broker::connect_kafka("kafka://k1:9093", options).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(Source::File(path.into()));
        self
    }

    /// Trusts the CA certificates in `pem` (`ssl.ca.pem`), and no others.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let ca = std::fs::read_to_string("/etc/kafka/ca.pem")?;
    /// let broker = Broker::connect_kafka("kafka://k1:9093", KafkaOptions::new().tls(KafkaTls::new().ca_pem(ca))).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca = Some(Source::Pem(pem.into()));
        self
    }

    /// Presents the certificate (chain) in the PEM file `cert` with the private key in the PEM
    /// file `key` (`ssl.certificate.location`, `ssl.key.location`). URL: `cert=…&key=…`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let tls = KafkaTls::new().ca_file("ca.pem").client_cert_files("client.pem", "client.key");
    /// let broker = Broker::connect_kafka("kafka://k1:9093", KafkaOptions::new().tls(tls)).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some(Source::File(cert.into()));
        self.key = Some(Source::File(key.into()));
        self
    }

    /// Presents the certificate (chain) `cert_pem` with the private key `key_pem`
    /// (`ssl.certificate.pem`, `ssl.key.pem`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let (cert, key) = (std::fs::read_to_string("client.pem")?, std::fs::read_to_string("client.key")?);
    /// let broker = Broker::connect_kafka("kafka://k1:9093", KafkaOptions::new().tls(KafkaTls::new().client_cert_pem(cert, key))).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn client_cert_pem(mut self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.cert = Some(Source::Pem(cert_pem.into()));
        self.key = Some(Source::Pem(key_pem.into()));
        self
    }

    /// The password of an encrypted client key (`ssl.key.password`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let tls = KafkaTls::new().client_cert_files("client.pem", "client.key").key_password(std::env::var("KEY_PASSWORD")?);
    /// let broker = Broker::connect_kafka("kafka://k1:9093", KafkaOptions::new().tls(tls)).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn key_password(mut self, password: impl Into<String>) -> Self {
        self.key_password = Some(Secret(password.into()));
        self
    }

    /// Whether the broker's certificate must name the host connected to (default: yes;
    /// `ssl.endpoint.identification.algorithm=https`). Turning it off still verifies the chain.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use switchboard::queue::{Broker, KafkaOptions, KafkaTls};
    /// let tls = KafkaTls::new().ca_file("ca.pem").verify_hostname(false); // certificates without the brokers' names
    /// let broker = Broker::connect_kafka("kafka://10.0.0.7:9093", KafkaOptions::new().tls(tls)).await?;
    /// # let _ = broker; Ok(()) }
    /// ```
    pub fn verify_hostname(mut self, on: bool) -> Self {
        self.verify_hostname = on;
        self
    }

    fn properties(&self, props: &mut Vec<(&'static str, String)>) -> Result<(), String> {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        match &self.ca {
            Some(Source::File(p)) => props.push(("ssl.ca.location", path(p))),
            Some(Source::Pem(pem)) => props.push(("ssl.ca.pem", pem.clone())),
            None => {}
        }
        match (&self.cert, &self.key) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err("a client certificate for Kafka needs both the certificate and its key (`cert=` and `key=`)".into())
            }
            (Some(cert), Some(key)) => {
                match cert {
                    Source::File(p) => props.push(("ssl.certificate.location", path(p))),
                    Source::Pem(pem) => props.push(("ssl.certificate.pem", pem.clone())),
                }
                match key {
                    Source::File(p) => props.push(("ssl.key.location", path(p))),
                    Source::Pem(pem) => props.push(("ssl.key.pem", pem.clone())),
                }
            }
        }
        if let Some(password) = &self.key_password {
            props.push(("ssl.key.password", password.0.clone()));
        }
        props.push(("ssl.endpoint.identification.algorithm", if self.verify_hostname { "https" } else { "none" }.into()));
        Ok(())
    }
}

impl fmt::Debug for KafkaTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaTls")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("key_password", &self.key_password)
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

/// A file librdkafka reads, or PEM text (not shown by `Debug`: it may be a private key).
#[derive(Clone)]
enum Source {
    File(PathBuf),
    Pem(String),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => f.debug_tuple("File").field(p).finish(),
            Source::Pem(_) => f.write_str("Pem(..)"),
        }
    }
}

/// SASL settings: the mechanism, and the user and password of PLAIN and SCRAM.
#[derive(Debug, Clone)]
pub(crate) struct Sasl {
    mechanism: String,
    credentials: Option<(String, Secret)>,
}

/// A password (`Debug` shows `***`).
#[derive(Clone)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A `sasl=` value: one of librdkafka's mechanisms, in upper case.
fn sasl_mechanism(value: &str) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    match upper.as_str() {
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "GSSAPI" | "OAUTHBEARER" => Ok(upper),
        _ => Err(format!("`sasl={value}`: expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or OAUTHBEARER")),
    }
}

/// Whether a mechanism authenticates with a user and password.
fn takes_password(mechanism: &str) -> bool {
    matches!(mechanism, "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512")
}

/// `%XX` escapes decoded (a `%` not followed by two hex digits is kept as it is); the result
/// must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "percent-decoded, not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (servers, o) = KafkaOptions::new().parse_url("kafka://a:9092,b:9093?partitions=3&create_topics=false&linger.ms=0").unwrap();
        assert_eq!(servers, "a:9092,b:9093");
        assert_eq!((o.partitions, o.create_topics), (3, false));
        assert_eq!(o.config, [("linger.ms".to_owned(), "0".to_owned())]);
        assert!(KafkaOptions::new().parse_url("kafka://").is_err());
        assert!(KafkaOptions::new().parse_url("kafka://a:1?bogus=1").is_err());
    }

    /// The properties of `url` over `options` in a build with `kafka-tls` and `kafka-gssapi`.
    fn props(url: &str, options: KafkaOptions) -> Result<Vec<(&'static str, String)>, String> {
        props_in(url, options, true, true)
    }

    fn props_in(url: &str, options: KafkaOptions, has_tls: bool, has_gssapi: bool) -> Result<Vec<(&'static str, String)>, String> {
        options.parse_url(url)?.1.security_in(has_tls, has_gssapi)
    }

    fn get<'a>(props: &'a [(&'static str, String)], key: &str) -> Option<&'a str> {
        props.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn sasl_plain_from_the_url_and_the_builder() {
        // Percent-decoded user and password; PLAIN is the default mechanism with a user.
        let (servers, o) = KafkaOptions::new().parse_url("kafka://app%40corp:p%40ss%3Aw%2Frd@a:9092,b:9092?partitions=2").unwrap();
        assert_eq!(servers, "a:9092,b:9092");
        let p = o.security_in(false, false).unwrap();
        assert_eq!(get(&p, "security.protocol"), Some("sasl_plaintext"));
        assert_eq!(get(&p, "sasl.mechanism"), Some("PLAIN"));
        assert_eq!(get(&p, "sasl.username"), Some("app@corp"));
        assert_eq!(get(&p, "sasl.password"), Some("p@ss:w/rd"));
        assert!(!format!("{o:?}").contains("p@ss"), "Debug shows no password: {o:?}");
        let p = KafkaOptions::new().sasl_plain("u", "pw").security_in(false, false).unwrap();
        assert_eq!((get(&p, "security.protocol"), get(&p, "sasl.username")), (Some("sasl_plaintext"), Some("u")));
        // The URL's mechanism applies to the builder's credentials.
        let err = props("kafka://a:1?sasl=plain", KafkaOptions::new());
        assert!(err.unwrap_err().contains("needs a user and password"));
        assert!(props("kafka://u@a:1", KafkaOptions::new()).unwrap_err().contains("needs a password"));
        assert!(props("kafka://u:p@a:1?sasl=MD5", KafkaOptions::new()).unwrap_err().contains("expected PLAIN"));
        // No security settings: librdkafka's defaults (plaintext), nothing set.
        assert!(props("kafka://a:1", KafkaOptions::new()).unwrap().is_empty());
    }

    #[test]
    fn tls_and_scram_settings() {
        let url = "kafkas://u:p@a:9093?sasl=SCRAM-SHA-256&ca=/etc/ca%20dir/ca.pem&cert=/c.pem&key=/k.pem";
        let (_, o) = KafkaOptions::new().parse_url(url).unwrap();
        assert!(!format!("{o:?}").contains("\"p\""));
        assert!(o.security_in(false, false).unwrap_err().contains("`kafka-tls` feature"));
        let p = o.security_in(true, false).unwrap();
        assert_eq!(get(&p, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(get(&p, "sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(get(&p, "ssl.ca.location"), Some("/etc/ca dir/ca.pem"));
        assert_eq!(get(&p, "ssl.certificate.location"), Some("/c.pem"));
        assert_eq!(get(&p, "ssl.key.location"), Some("/k.pem"));
        assert_eq!(get(&p, "ssl.endpoint.identification.algorithm"), Some("https"));
        let p = props("kafka://a:1?tls=true", KafkaOptions::new()).unwrap();
        assert_eq!(get(&p, "security.protocol"), Some("ssl"));
        let p = KafkaOptions::new()
            .sasl_scram(KafkaScram::Sha512, "u", "p")
            .tls(KafkaTls::new().ca_pem("PEM").verify_hostname(false))
            .security_in(true, false)
            .unwrap();
        assert_eq!(get(&p, "sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get(&p, "ssl.ca.pem"), Some("PEM"));
        assert_eq!(get(&p, "ssl.endpoint.identification.algorithm"), Some("none"));
        assert!(props("kafka://a:1?cert=/c.pem", KafkaOptions::new()).unwrap_err().contains("both the certificate and its key"));
        // `tls=false` after `kafkas://`: plaintext.
        assert!(props("kafkas://a:1?tls=false", KafkaOptions::new()).unwrap().is_empty());
    }

    #[test]
    fn features_named_when_missing() {
        // TLS, given any way, without `kafka-tls`.
        for url in ["kafkas://a:1", "kafka://a:1?tls=true", "kafka://a:1?ca=/ca.pem", "kafka://a:1?security.protocol=SSL"] {
            assert!(props(url, KafkaOptions::new()).is_ok(), "{url}");
            let err = props_in(url, KafkaOptions::new(), false, false).unwrap_err();
            assert!(err.contains("needs switchboard's `kafka-tls` feature"), "{url}: {err}");
        }
        let scram = "kafka://u:p@a:1?sasl=SCRAM-SHA-512";
        assert!(props(scram, KafkaOptions::new()).is_ok());
        assert!(props_in(scram, KafkaOptions::new(), false, false).unwrap_err().contains("SASL SCRAM-SHA-512 needs switchboard's `kafka-tls` feature"));
        // GSSAPI (also librdkafka's default mechanism) without `kafka-gssapi`.
        for url in ["kafka://a:1?sasl=GSSAPI", "kafka://a:1?security.protocol=sasl_plaintext"] {
            assert!(props(url, KafkaOptions::new()).is_ok(), "{url}");
            let err = props_in(url, KafkaOptions::new(), true, false).unwrap_err();
            assert!(err.contains("`kafka-gssapi` feature"), "{url}: {err}");
        }
        // PLAIN needs only `kafka`, and the caller's own sasl.mechanism counts.
        assert!(props_in("kafka://a:1?security.protocol=sasl_plaintext&sasl.mechanism=PLAIN", KafkaOptions::new(), false, false).is_ok());
        // This build's own answer.
        assert_eq!(KafkaOptions::new().parse_url("kafkas://a:1").unwrap().1.security().is_ok(), cfg!(feature = "kafka-tls"));
    }
}
