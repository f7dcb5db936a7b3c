//! A small HTTP/1.1 client for tests.
//!
//! [`Http::request`] goes through hyper's client on a fresh connection per request (so each
//! request is independent, as with curl): the client frames the request, hyper parses the answer
//! and undoes chunked encoding. [`Http::raw`] writes bytes exactly as given, for the tests that
//! send malformed or hand-framed HTTP on purpose, and parses the answer with `httparse`.
//!
//! ```no_run
//! # async fn run() {
//! use switchboard_test_support::http::Http;
//! let server = Http::new("http://127.0.0.1:8080");
//! let answer = server.post("/v1/pets").header("x-api-key", "k").json(&serde_json::json!({"name": "Rex"})).send().await;
//! assert_eq!(answer.status, 201, "{}", answer.text());
//! # }
//! ```

use std::fmt::Display;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An answer: status, headers in the order received (names lowercased by hyper; compare with
/// [`Answer::header`]), and the body with any transfer encoding undone.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Every header line, repeated names included.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header named `name` (any case), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}); status {}: {}", self.status, self.text()))
    }
}

/// A server to talk to, by address.
#[derive(Debug, Clone)]
pub struct Http {
    authority: String,
}

impl Http {
    /// `target`: `http://host:port` (any path is ignored), `host:port`, or a `SocketAddr`.
    pub fn new(target: impl Display) -> Self {
        let target = target.to_string();
        let rest = target.strip_prefix("http://").unwrap_or(&target);
        let authority = rest.split('/').next().unwrap_or(rest).to_owned();
        Http { authority }
    }

    /// `host:port`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// A request: `method` (`GET`, `POST`, ... or any token) and `target` (path and query).
    pub fn request(&self, method: &str, target: &str) -> RequestBuilder {
        RequestBuilder {
            authority: self.authority.clone(),
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `GET target`.
    pub fn get(&self, target: &str) -> RequestBuilder {
        self.request("GET", target)
    }

    /// `POST target`.
    pub fn post(&self, target: &str) -> RequestBuilder {
        self.request("POST", target)
    }

    /// `PUT target`.
    pub fn put(&self, target: &str) -> RequestBuilder {
        self.request("PUT", target)
    }

    /// `PATCH target`.
    pub fn patch(&self, target: &str) -> RequestBuilder {
        self.request("PATCH", target)
    }

    /// `DELETE target`.
    pub fn delete(&self, target: &str) -> RequestBuilder {
        self.request("DELETE", target)
    }

    /// Writes `request` as given on a fresh connection, half-closes it, reads the answer to the
    /// end and parses it. The bytes should ask for `connection: close` (or the server must close
    /// on its own). For requests a well-behaved client cannot send.
    pub async fn raw(&self, request: impl AsRef<[u8]>) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.authority));
        stream.write_all(request.as_ref()).await.unwrap_or_else(|e| panic!("write to {}: {e}", self.authority));
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap_or_else(|e| panic!("read from {}: {e}", self.authority));
        parse_response(&raw)
    }
}

/// A request being built; [`RequestBuilder::send`] sends it.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    authority: String,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl RequestBuilder {
    /// Adds a header (repeatable).
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    /// Adds headers.
    pub fn headers(mut self, headers: &[(&str, &str)]) -> Self {
        self.headers.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// The body, as bytes.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body, with `content-type: application/json` unless one was set.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        if !self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            self.headers.push(("content-type".into(), "application/json".into()));
        }
        self.body = Bytes::from(value.to_string());
        self
    }

    /// Sends it on a fresh HTTP/1.1 connection (hyper's client) and reads the whole answer.
    /// `host` is set to the server's address unless given.
    pub async fn send(self) -> Answer {
        let what = format!("{} {} on {}", self.method, self.target, self.authority);
        let streaming = self.send_streaming().await;
        let (status, headers) = (streaming.status, streaming.headers);
        let body = streaming.body.collect().await.unwrap_or_else(|e| panic!("{what}: body: {e}")).to_bytes();
        Answer { status, headers, body }
    }

    /// Sends it like [`RequestBuilder::send`], and returns once the head has arrived: the body is
    /// read piece by piece ([`StreamingAnswer::next_record`]), for long-lived streams. Dropping
    /// the answer closes the connection.
    pub async fn send_streaming(self) -> StreamingAnswer {
        let what = format!("{} {} on {}", self.method, self.target, self.authority);
        let tcp = tokio::net::TcpStream::connect(&self.authority).await.unwrap_or_else(|e| panic!("{what}: connect: {e}"));
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap_or_else(|e| panic!("{what}: handshake: {e}"));
        tokio::spawn(conn);
        let method = http::Method::from_bytes(self.method.as_bytes()).unwrap_or_else(|e| panic!("{what}: method: {e}"));
        let mut request = http::Request::builder().method(method).uri(&self.target);
        if !self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            request = request.header(http::header::HOST, &self.authority);
        }
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Full::new(self.body)).unwrap_or_else(|e| panic!("{what}: request: {e}"));
        let response = sender.send_request(request).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        StreamingAnswer { status, headers, body: response.into_body(), buf: Vec::new() }
    }
}

/// An answer whose body is still arriving.
#[derive(Debug)]
pub struct StreamingAnswer {
    /// The status code.
    pub status: u16,
    /// Every header line, repeated names included.
    pub headers: Vec<(String, String)>,
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl StreamingAnswer {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The next record of the body up to `separator` (`b"\n"` for NDJSON, `b"\n\n"` for
    /// server-sent events), without the separator; `None` once the body ends. Panics if nothing
    /// arrives within `limit`.
    pub async fn next_record(&mut self, separator: &[u8], limit: std::time::Duration) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.windows(separator.len()).position(|w| w == separator) {
                let record: Vec<u8> = self.buf.drain(..pos + separator.len()).take(pos).collect();
                return Some(String::from_utf8_lossy(&record).into_owned());
            }
            let frame = tokio::time::timeout(limit, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no record within {limit:?}; have {:?}", String::from_utf8_lossy(&self.buf)));
            match frame {
                None => return None,
                Some(frame) => {
                    let frame = frame.unwrap_or_else(|e| panic!("reading the body: {e}"));
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Parses a complete HTTP/1.1 response read to the end of the connection.
fn parse_response(raw: &[u8]) -> Answer {
    let mut header_slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut header_slots);
    let head_len = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => panic!("the connection closed before a whole response head: {:?}", String::from_utf8_lossy(raw)),
        Err(e) => panic!("not an HTTP response ({e}): {:?}", String::from_utf8_lossy(raw)),
    };
    let status = response.code.expect("a status code");
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let rest = &raw[head_len..];
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let body = if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Answer { status, headers, body: Bytes::from(body) }
}

/// The data of a chunked body (trailers dropped).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Ok(httparse::Status::Complete((used, size))) = httparse::parse_chunk_size(rest) else {
            panic!("a bad chunk: {:?}", String::from_utf8_lossy(rest));
        };
        let size = usize::try_from(size).expect("a chunk size that fits");
        if size == 0 {
            return out;
        }
        let data = &rest[used..];
        assert!(data.len() >= size + 2, "a chunk cut short");
        out.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_answers_are_parsed_with_either_framing() {
        let a = parse_response(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\nAllow: GET\r\nallow: POST\r\n\r\n{}");
        assert_eq!((a.status, a.text().as_str()), (413, "{}"));
        assert_eq!(a.headers_named("ALLOW"), ["GET", "POST"]);
        let a = parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        assert_eq!(a.text(), "abcde");
    }

    #[test]
    fn targets_are_read_as_authorities() {
        assert_eq!(Http::new("http://127.0.0.1:5/v1").authority(), "127.0.0.1:5");
        assert_eq!(Http::new("127.0.0.1:5").authority(), "127.0.0.1:5");
        assert_eq!(Http::new(std::net::SocketAddr::from(([127, 0, 0, 1], 7))).authority(), "127.0.0.1:7");
    }

    #[tokio::test]
    async fn a_request_and_a_raw_request_reach_a_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0; 4096];
                let n = s.read(&mut buf).await.unwrap();
                let first = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned();
                let body = format!("saw {first}");
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(body.as_bytes()).await.unwrap();
            }
        });
        let server = Http::new(addr);
        let a = server.get("/x?y=1").send().await;
        assert_eq!((a.status, a.text().as_str()), (200, "saw GET /x?y=1 HTTP/1.1"));
        let a = server.raw("BREW /pot HTTP/1.1\r\nconnection: close\r\n\r\n").await;
        assert_eq!(a.text(), "saw BREW /pot HTTP/1.1");
    }
}
