//! Credentials of OpenAPI operations over HTTP: reading them from headers, query and cookies
//! by the operation's security schemes, and the 401 / hook answers.

use base64::Engine as _;
use http::header::{HeaderValue, AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use tonic::Status;

use crate::api::{Credential, Credentials};
use crate::api::{Location, Operation, SchemeKind, SecurityScheme};
use super::{error_response, HttpResponse};

/// The server's authorization hook (`RestRouter::authorize`).
pub(crate) type Authorize =
    std::sync::Arc<dyn Fn(&Operation, &Credentials) -> Result<(), Status> + Send + Sync + 'static>;

/// A security scheme with what reading it needs, prepared once per operation.
pub(crate) struct Prepared {
    scheme: &'static SecurityScheme,
    /// The header of an API key scheme in a header.
    header: Option<http::HeaderName>,
}

/// `op.security`, prepared.
pub(crate) fn prepare(op: &'static Operation) -> Box<[Box<[Prepared]>]> {
    op.security
        .iter()
        .map(|alt| {
            alt.iter()
                .map(|scheme| {
                    let header = match scheme.kind {
                        SchemeKind::ApiKey { location: Location::Header, name } => {
                            http::HeaderName::from_bytes(name.as_bytes()).ok()
                        }
                        _ => None,
                    };
                    Prepared { scheme, header }
                })
                .collect()
        })
        .collect()
}

/// Reads the credentials of the first alternative of `op.security` (`prepared`) the request
/// satisfies and runs `authorize` on them. Missing credentials, or a hook that refuses,
/// answer the request.
#[allow(clippy::result_large_err)]
pub(crate) fn authenticate(
    op: &'static Operation,
    prepared: &[Box<[Prepared]>],
    parts: &http::request::Parts,
    authorize: Option<&Authorize>,
    realm: &str,
) -> Result<Credentials, HttpResponse> {
    let mut found = None;
    'alternatives: for alternative in prepared {
        let mut creds = Credentials::new();
        for p in alternative.iter() {
            match extract(p, parts) {
                Some(c) => creds.insert(p.scheme.name, c),
                None => continue 'alternatives,
            }
        }
        found = Some(creds);
        break;
    }
    let Some(creds) = found else {
        let status = Status::unauthenticated(format!("`{}` needs credentials: {}", op.id, expected(op)));
        return Err(challenge(error_response(&status), op, realm));
    };
    if let Some(hook) = authorize {
        if let Err(status) = hook(op, &creds) {
            let resp = error_response(&status);
            return Err(if status.code() == tonic::Code::Unauthenticated { challenge(resp, op, realm) } else { resp });
        }
    }
    Ok(creds)
}

/// "a bearer token, or an API key in header `X-Key`".
fn expected(op: &Operation) -> String {
    let alternatives: Vec<String> = op
        .security
        .iter()
        .map(|alt| alt.iter().map(describe).collect::<Vec<_>>().join(" and "))
        .collect();
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

fn extract(prepared: &Prepared, parts: &http::request::Parts) -> Option<Credential> {
    match prepared.scheme.kind {
        SchemeKind::Bearer => authorization(parts, "bearer").map(|t| Credential::Bearer(t.to_owned())),
        SchemeKind::Basic => {
            let encoded = authorization(parts, "basic")?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            let (user, password) = text.split_once(':')?;
            Some(Credential::Basic { user: user.to_owned(), password: password.to_owned() })
        }
        SchemeKind::ApiKey { location, name } => {
            let value = match location {
                Location::Header => match &prepared.header {
                    Some(header) => parts.headers.get(header),
                    None => parts.headers.get(name),
                }?
                .to_str()
                .ok()?
                .trim()
                .to_owned(),
                Location::Query => form_urlencoded::parse(parts.uri.query()?.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())?,
                Location::Cookie => cookie(&parts.headers, name)?,
                Location::Path => return None,
            };
            (!value.is_empty()).then_some(Credential::ApiKey(value))
        }
    }
}

/// The credentials after `Authorization: <scheme> ` (scheme matched case-insensitively).
fn authorization<'a>(parts: &'a http::request::Parts, scheme: &str) -> Option<&'a str> {
    parts.headers.get_all(AUTHORIZATION).iter().find_map(|v| {
        let v = v.to_str().ok()?.trim();
        let (name, rest) = v.split_once(' ')?;
        let rest = rest.trim();
        (name.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
    })
}

fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| {
                let v = v.trim().trim_matches('"');
                percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
