//! Target URIs: which resolver finds a fleet's endpoints.

use super::Address;

/// Where a fleet's endpoints come from, read from a target URI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `static:///10.0.0.1:80,10.0.0.2:80` or a plain `http://host:port`: a fixed list.
    Static(Vec<Address>),
    /// `dns:///name:port` (the system's resolver) or `dns://10.0.0.53:53/name:port` (that name
    /// server): A/AAAA records of `name`, every one on `port` (443 for `https`, else 80 when
    /// omitted).
    Dns {
        /// The name server (`ip:port`), when the URI names one.
        server: Option<std::net::SocketAddr>,
        /// The name looked up.
        name: String,
        /// The port every address is called on.
        port: u16,
    },
    /// `etcd:///services/echo` (etcd at 127.0.0.1:2379) or
    /// `etcd://10.0.0.7:2379,10.0.0.8:2379/services/echo` (those etcd endpoints): one key per
    /// endpoint under the prefix, watched (see [`EtcdResolver`](super::EtcdResolver)).
    Etcd {
        /// etcd's client endpoints (`host:port`, port 2379 when omitted).
        endpoints: Vec<Address>,
        /// The key prefix, without a trailing `/` (`/services/echo`); the endpoints are the
        /// keys under `prefix/`.
        prefix: String,
    },
}

/// etcd's client endpoint for `etcd:///prefix` targets.
pub(crate) const ETCD_DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";

/// A target URI this crate cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target `{target}`: {reason}")]
pub struct TargetError {
    target: String,
    reason: String,
}

impl TargetError {
    pub(crate) fn new(target: &str, reason: impl Into<String>) -> Self {
        TargetError { target: target.to_owned(), reason: reason.into() }
    }
}

impl Target {
    /// Reads a target URI.
    ///
    /// ```
    /// use switchboard::fleet::Target;
    /// assert!(matches!(Target::parse("static:///127.0.0.1:80,127.0.0.2:80").unwrap(), Target::Static(a) if a.len() == 2));
    /// assert!(matches!(Target::parse("dns:///echo.svc:50051").unwrap(), Target::Dns { port: 50051, .. }));
    /// assert!(matches!(Target::parse("http://127.0.0.1:8080").unwrap(), Target::Static(a) if a.len() == 1));
    /// assert!(matches!(Target::parse("etcd:///services/echo").unwrap(),
    ///     Target::Etcd { endpoints, prefix } if endpoints[0].authority() == "127.0.0.1:2379" && prefix == "/services/echo"));
    /// assert!(matches!(Target::parse("etcd://10.0.0.7,10.0.0.8:2380/services/echo/").unwrap(),
    ///     Target::Etcd { endpoints, prefix } if endpoints.len() == 2 && endpoints[0].port == 2379 && prefix == "/services/echo"));
    /// assert_eq!(
    ///     Target::parse("dns:///echo.svc:nope").unwrap_err().to_string(),
    ///     "invalid target `dns:///echo.svc:nope`: `nope` is not a port"
    /// );
    /// ```
    pub fn parse(target: &str) -> Result<Target, TargetError> {
        let (scheme, rest) = target
            .split_once("://")
            .ok_or_else(|| TargetError::new(target, "expected scheme://authority/endpoint (dns, static, etcd, http, https)"))?;
        match scheme {
            "static" => {
                let list = rest
                    .strip_prefix('/')
                    .ok_or_else(|| TargetError::new(target, "static targets have no authority: static:///host:port,host:port"))?;
                let addresses = list
                    .split(',')
                    .filter(|a| !a.trim().is_empty())
                    .map(|a| Address::parse(a.trim()).map_err(|reason| TargetError::new(target, reason)))
                    .collect::<Result<Vec<_>, _>>()?;
                if addresses.is_empty() {
                    return Err(TargetError::new(target, "no endpoint listed"));
                }
                Ok(Target::Static(addresses))
            }
            "dns" => {
                let (authority, endpoint) = rest
                    .split_once('/')
                    .ok_or_else(|| TargetError::new(target, "expected dns:///name:port or dns://server:port/name:port"))?;
                let server = match authority {
                    "" => None,
                    a => Some(a.parse().map_err(|_| TargetError::new(target, format!("name server `{a}` is not ip:port")))?),
                };
                let (name, port) = split_port(endpoint, 80).map_err(|reason| TargetError::new(target, reason))?;
                if name.is_empty() {
                    return Err(TargetError::new(target, "no name to look up"));
                }
                Ok(Target::Dns { server, name, port })
            }
            "http" | "https" => {
                let uri: http::Uri = target.parse().map_err(|e| TargetError::new(target, format!("{e}")))?;
                let authority = uri.authority().ok_or_else(|| TargetError::new(target, "no host"))?;
                let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
                Ok(Target::Static(vec![Address { host: authority.host().trim_matches(['[', ']']).to_owned(), port }]))
            }
            "etcd" => {
                let (authority, path) = rest
                    .split_once('/')
                    .ok_or_else(|| TargetError::new(target, "expected etcd:///prefix or etcd://host:port,host:port/prefix"))?;
                let endpoints = match authority {
                    "" => vec![Address::parse(ETCD_DEFAULT_ENDPOINT).expect("a valid address")],
                    list => list
                        .split(',')
                        .filter(|a| !a.trim().is_empty())
                        .map(|a| {
                            let (host, port) = split_port(a.trim(), 2379).map_err(|reason| TargetError::new(target, reason))?;
                            match host.is_empty() {
                                true => Err(TargetError::new(target, format!("etcd endpoint `{a}` has no host"))),
                                false => Ok(Address { host, port }),
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                };
                if endpoints.is_empty() {
                    return Err(TargetError::new(target, "no etcd endpoint listed"));
                }
                let prefix = format!("/{}", path.trim_end_matches('/'));
                if prefix == "/" {
                    return Err(TargetError::new(target, "no key prefix (etcd:///services/echo)"));
                }
                Ok(Target::Etcd { endpoints, prefix })
            }
            other => Err(TargetError::new(target, format!("unknown scheme `{other}` (dns, static, etcd, http, https)"))),
        }
    }
}

/// `name:port` (`[v6]:port`), with `default` when there is no port.
pub(super) fn split_port(s: &str, default: u16) -> Result<(String, u16), String> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').ok_or_else(|| format!("`{s}`: unclosed `[`"))?;
        return match rest.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), p.parse().map_err(|_| format!("`{p}` is not a port"))?)),
            None if rest.is_empty() => Ok((host.to_owned(), default)),
            None => Err(format!("`{s}`: expected [ip]:port")),
        };
    }
    match s.rsplit_once(':') {
        Some((host, p)) => Ok((host.to_owned(), p.parse().map_err(|_| format!("`{p}` is not a port"))?)),
        None => Ok((s.to_owned(), default)),
    }
}

impl Address {
    /// `host:port` or `[v6]:port` (the port is required).
    pub fn parse(s: &str) -> Result<Address, String> {
        if !s.contains(':') {
            return Err(format!("`{s}` has no port"));
        }
        let (host, port) = split_port(s, 0)?;
        if host.is_empty() {
            return Err(format!("`{s}` has no host"));
        }
        Ok(Address { host, port })
    }

    /// `host:port` as an HTTP authority (`[v6]:port` for IPv6 addresses).
    pub fn authority(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}
