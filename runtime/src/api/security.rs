//! Credentials: what a request carried for its operation's security requirement.
//!
//! The REST server reads them before the handler runs and puts a [`Credentials`] value in the
//! request's extensions; handlers read it with `req.extensions().get::<Credentials>()`.

use std::fmt;

/// One credential, as a security scheme carries it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// `Authorization: Bearer <token>` (`http` / `bearer`, `oauth2`, `openIdConnect`).
    Bearer(String),
    /// `Authorization: Basic ...`, decoded.
    Basic {
        /// The user id.
        user: String,
        /// The password.
        password: String,
    },
    /// An API key from a header, query parameter or cookie.
    ApiKey(String),
}

impl fmt::Debug for Credential {
    /// Names the kind only: secrets stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(..)"),
            Credential::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, .. }}"),
            Credential::ApiKey(_) => f.write_str("ApiKey(..)"),
        }
    }
}

/// The credentials of one request: for each security scheme of the alternative the request
/// satisfied (the first one, in the operation's order), the scheme's name and its credential.
/// Empty when the operation allows anonymous access (an empty alternative) and the request
/// carried nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    // The usual single scheme without a second allocation.
    first: Option<(&'static str, Credential)>,
    more: Vec<(&'static str, Credential)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries().map(|(k, v)| (k, v))).finish()
    }
}

impl Credentials {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> impl Iterator<Item = &(&'static str, Credential)> + '_ {
        self.first.iter().chain(self.more.iter())
    }

    /// Adds the credential of scheme `scheme` (the scheme's name in the document).
    pub fn insert(&mut self, scheme: &'static str, credential: Credential) {
        if let Some(entry) = self.first.iter_mut().chain(self.more.iter_mut()).find(|(s, _)| *s == scheme) {
            entry.1 = credential;
        } else if self.first.is_none() {
            self.first = Some((scheme, credential));
        } else {
            self.more.push((scheme, credential));
        }
    }

    /// The credential for scheme `scheme`.
    pub fn get(&self, scheme: &str) -> Option<&Credential> {
        self.entries().find(|(s, _)| *s == scheme).map(|(_, c)| c)
    }

    /// The first bearer token.
    pub fn bearer(&self) -> Option<&str> {
        self.entries().find_map(|(_, c)| match c {
            Credential::Bearer(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The first Basic user and password.
    pub fn basic(&self) -> Option<(&str, &str)> {
        self.entries().find_map(|(_, c)| match c {
            Credential::Basic { user, password } => Some((user.as_str(), password.as_str())),
            _ => None,
        })
    }

    /// The first API key.
    pub fn api_key(&self) -> Option<&str> {
        self.entries().find_map(|(_, c)| match c {
            Credential::ApiKey(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Every (scheme name, credential).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Credential)> + '_ {
        self.entries().map(|(s, c)| (*s, c))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}


/// What a client (REST or queue) sends to operations that ask for credentials: each goes where
/// the first security alternative it can satisfy wants it.
#[derive(Clone, Default)]
#[cfg_attr(not(any(feature = "rest", feature = "queue")), allow(dead_code))]
pub(crate) struct ClientCredentials {
    pub(crate) bearer: Option<String>,
    pub(crate) basic: Option<(String, String)>,
    pub(crate) api_key: Option<String>,
}

impl ClientCredentials {
    /// No credentials (what a client without any sends).
    #[cfg_attr(not(all(feature = "openapi", feature = "queue")), allow(dead_code))]
    pub(crate) const NONE: ClientCredentials = ClientCredentials { bearer: None, basic: None, api_key: None };
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("bearer", &self.bearer.as_ref().map(|_| ".."))
            .field("basic", &self.basic.as_ref().map(|(u, _)| u))
            .field("api_key", &self.api_key.as_ref().map(|_| ".."))
            .finish()
    }
}

impl ClientCredentials {
    /// The first alternative of `op.security` these credentials satisfy (the REST client puts
    /// its credentials where it wants them).
    #[cfg(feature = "rest")]
    pub(crate) fn alternative(&self, op: &crate::api::Operation) -> Option<&'static [crate::api::SecurityScheme]> {
        use crate::api::{Location, SchemeKind};
        let has = |kind: &SchemeKind| match kind {
            SchemeKind::Bearer => self.bearer.is_some(),
            SchemeKind::Basic => self.basic.is_some(),
            SchemeKind::ApiKey { location, .. } => self.api_key.is_some() && *location != Location::Path,
        };
        op.security.iter().copied().find(|alt| alt.iter().all(|s| has(&s.kind)))
    }
}

// ---------------------------------------------------------------------------------------------
// Checking an operation's security requirement (every transport)
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "openapi")]
#[cfg_attr(not(any(feature = "rest", feature = "queue")), allow(unused_imports))]
pub(crate) use check::{authenticate, prepare, Authorize, CredentialSource, Prepared};

/// The security check of an OpenAPI operation, whatever carried the request: the transport says
/// where its headers (and an HTTP query string) are through [`CredentialSource`]; this finds the
/// first satisfied alternative of the operation's requirement, runs the server's `authorize`
/// hook and answers UNAUTHENTICATED (missing credentials) or the hook's status.
#[cfg(feature = "openapi")]
#[cfg_attr(not(any(feature = "rest", feature = "queue")), allow(dead_code))]
mod check {
    use base64::Engine as _;
    use http::header::{HeaderName, AUTHORIZATION, COOKIE};
    use tonic::Status;

    use super::{Credential, Credentials};
    use crate::api::{Location, Operation, SchemeKind, SecurityScheme};

    /// The server's authorization hook (`RestRouter::authorize`, `QueueServer::authorize`).
    pub(crate) type Authorize =
        std::sync::Arc<dyn Fn(&Operation, &Credentials) -> Result<(), Status> + Send + Sync + 'static>;

    /// Where a transport keeps what a request carried. HTTP: its headers and query string. The
    /// queue transport: its metadata headers, where an API key "in query" travels as the entry
    /// named after the query parameter (docs/queue-protocol.md).
    pub(crate) trait CredentialSource {
        /// The first value of header `name` that `pick` accepts.
        fn header(&self, name: &HeaderName, pick: &mut dyn FnMut(&str) -> Option<String>) -> Option<String>;
        /// The value of the query parameter (HTTP) or its stand-in (queues) `name`.
        fn query(&self, name: &str) -> Option<String>;
    }

    /// A security scheme with what reading it needs, prepared once per operation.
    pub(crate) struct Prepared {
        pub(crate) scheme: &'static SecurityScheme,
        /// The header of an API key in a header.
        header: Option<HeaderName>,
    }

    /// `op.security`, prepared.
    pub(crate) fn prepare(op: &'static Operation) -> Box<[Box<[Prepared]>]> {
        op.security
            .iter()
            .map(|alt| {
                alt.iter()
                    .map(|scheme| {
                        let header = match scheme.kind {
                            SchemeKind::ApiKey { location: Location::Header, name } => HeaderName::from_bytes(name.as_bytes()).ok(),
                            _ => None,
                        };
                        Prepared { scheme, header }
                    })
                    .collect()
            })
            .collect()
    }

    /// The credentials of the first alternative of `op.security` (`prepared`) the request
    /// satisfies, once `authorize` accepts them. Missing credentials: UNAUTHENTICATED naming
    /// what the operation takes; a hook that refuses: its status.
    pub(crate) fn authenticate(
        op: &'static Operation,
        prepared: &[Box<[Prepared]>],
        source: &dyn CredentialSource,
        authorize: Option<&Authorize>,
    ) -> Result<Credentials, Status> {
        let mut found = None;
        'alternatives: for alternative in prepared {
            let mut creds = Credentials::new();
            for p in alternative.iter() {
                match extract(p, source) {
                    Some(c) => creds.insert(p.scheme.name, c),
                    None => continue 'alternatives,
                }
            }
            found = Some(creds);
            break;
        }
        let Some(creds) = found else {
            return Err(Status::unauthenticated(format!("`{}` needs credentials: {}", op.id, expected(op))));
        };
        if let Some(hook) = authorize {
            hook(op, &creds)?;
        }
        Ok(creds)
    }

    /// "a bearer token, or an API key in header `X-Key`".
    fn expected(op: &Operation) -> String {
        let alternatives: Vec<String> =
            op.security.iter().map(|alt| alt.iter().map(describe).collect::<Vec<_>>().join(" and ")).collect();
        alternatives.join(", or ")
    }

    fn describe(scheme: &SecurityScheme) -> String {
        match scheme.kind {
            SchemeKind::Bearer => "a bearer token".to_owned(),
            SchemeKind::Basic => "HTTP Basic credentials".to_owned(),
            SchemeKind::ApiKey { location, name } => {
                let place = match location {
                    Location::Header => "header",
                    Location::Query => "query parameter",
                    Location::Cookie => "cookie",
                    Location::Path => "path parameter",
                };
                format!("an API key in {place} `{name}`")
            }
        }
    }

    fn extract(prepared: &Prepared, source: &dyn CredentialSource) -> Option<Credential> {
        match prepared.scheme.kind {
            SchemeKind::Bearer => authorization(source, "bearer").map(Credential::Bearer),
            SchemeKind::Basic => {
                let encoded = authorization(source, "basic")?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
                let text = String::from_utf8(bytes).ok()?;
                let (user, password) = text.split_once(':')?;
                Some(Credential::Basic { user: user.to_owned(), password: password.to_owned() })
            }
            SchemeKind::ApiKey { location, name } => {
                let value = match location {
                    Location::Header => source.header(prepared.header.as_ref()?, &mut |v| Some(v.trim().to_owned()))?,
                    Location::Query => source.query(name)?,
                    Location::Cookie => cookie(source, name)?,
                    Location::Path => return None,
                };
                (!value.is_empty()).then_some(Credential::ApiKey(value))
            }
        }
    }

    /// The credentials after `Authorization: <scheme> ` (scheme matched case-insensitively).
    fn authorization(source: &dyn CredentialSource, scheme: &str) -> Option<String> {
        source.header(&AUTHORIZATION, &mut |v| {
            let (name, rest) = v.trim().split_once(' ')?;
            let rest = rest.trim();
            (name.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then(|| rest.to_owned())
        })
    }

    /// Cookie `name` from the `Cookie` header(s), percent-decoded.
    fn cookie(source: &dyn CredentialSource, name: &str) -> Option<String> {
        source.header(&COOKIE, &mut |line| {
            line.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k.trim() == name).then(|| {
                    let v = v.trim().trim_matches('"');
                    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
                })
            })
        })
    }
}
