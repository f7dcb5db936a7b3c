//! Credentials of OpenAPI operations over HTTP: the request's headers and query string as the
//! [`CredentialSource`] of the transport-neutral check (`api::security`), and its answers as HTTP
//! responses: 401 with a `WWW-Authenticate` challenge, or the hook's status.

use http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};

pub(crate) use crate::api::security::{Authorize, Prepared};
#[cfg(test)]
use crate::api::security::prepare;
use crate::api::security::CredentialSource;
use crate::api::{Credentials, Operation, SchemeKind};
use super::{error_response, HttpResponse};

/// An HTTP request as a place credentials travel.
struct Http<'a>(&'a http::request::Parts);

impl CredentialSource for Http<'_> {
    fn header(&self, name: &HeaderName, pick: &mut dyn FnMut(&str) -> Option<String>) -> Option<String> {
        self.0.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).find_map(pick)
    }

    fn query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.0.uri.query()?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// Reads the credentials of the first alternative of `op.security` (`prepared`) the request
/// satisfies and runs `authorize` on them. Missing credentials (401 with a challenge), or a
/// hook that refuses, answer the request.
#[allow(clippy::result_large_err)]
pub(crate) fn authenticate(
    op: &'static Operation,
    prepared: &[Box<[Prepared]>],
    parts: &http::request::Parts,
    authorize: Option<&Authorize>,
    realm: &str,
) -> Result<Credentials, HttpResponse> {
    crate::api::security::authenticate(op, prepared, &Http(parts), authorize).map_err(|status| {
        let resp = error_response(&status);
        if status.code() == tonic::Code::Unauthenticated {
            challenge(resp, op, realm)
        } else {
            resp
        }
    })
}

/// Adds `WWW-Authenticate` for the HTTP schemes the operation accepts.
fn challenge(mut resp: HttpResponse, op: &Operation, realm: &str) -> HttpResponse {
    let mut bearer = false;
    let mut basic = false;
    for scheme in op.security.iter().flat_map(|a| a.iter()) {
        match scheme.kind {
            SchemeKind::Bearer if !bearer => {
                bearer = true;
                resp.headers_mut().append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            SchemeKind::Basic if !basic => {
                basic = true;
                let realm: String = realm.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
                if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")) {
                    resp.headers_mut().append(WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Location, SecurityScheme};
    use tonic::Status;

    const BEARER: SecurityScheme = SecurityScheme { name: "bearerAuth", kind: SchemeKind::Bearer };
    const BASIC: SecurityScheme = SecurityScheme { name: "basicAuth", kind: SchemeKind::Basic };
    const KEY: SecurityScheme =
        SecurityScheme { name: "key", kind: SchemeKind::ApiKey { location: Location::Cookie, name: "k" } };
    const OP: Operation = Operation {
        id: "op",
        method: "GET",
        path: "/x",
        params: &[],
        body: None,
        responses: &[],
        security: &[&[BEARER, KEY], &[BASIC]],
    };

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut req = http::Request::builder().uri("/x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_first_satisfied_alternative_wins() {
        let p = parts(&[("authorization", "bearer t0k"), ("cookie", "a=1; k=s%20ecret")]);
        let creds = authenticate(&OP, &prepare(&OP), &p, None, "r").unwrap();
        assert_eq!(creds.bearer(), Some("t0k"));
        assert_eq!(creds.api_key(), Some("s ecret"));
        let p = parts(&[("authorization", "Basic dXNlcjpwYTpzcw==")]);
        let creds = authenticate(&OP, &prepare(&OP), &p, None, "r").unwrap();
        assert_eq!(creds.basic(), Some(("user", "pa:ss")));
        assert!(format!("{creds:?}").contains("user") && !format!("{creds:?}").contains("pa:ss"));
    }

    #[test]
    fn missing_or_refused_credentials_answer_401_with_a_challenge() {
        let resp = authenticate(&OP, &prepare(&OP), &parts(&[("authorization", "Bearer x")]), None, "pets").unwrap_err();
        assert_eq!(resp.status(), 401);
        let challenges: Vec<_> = resp.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges, ["Bearer", "Basic realm=\"pets\", charset=\"UTF-8\""]);
        let hook: Authorize = std::sync::Arc::new(|_, c| match c.basic() {
            Some(("admin", _)) => Ok(()),
            _ => Err(Status::permission_denied("admins only")),
        });
        let p = parts(&[("authorization", "Basic dXNlcjpwYTpzcw==")]);
        assert_eq!(authenticate(&OP, &prepare(&OP), &p, Some(&hook), "r").unwrap_err().status(), 403);
    }
}
