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

