//! Keyed dedupe for the HTTP transports (gRPC and REST): a unary call that carries an
//! `idempotency-key` runs once per method, key and caller within the window, as the queue
//! server runs a message id once.
//!
//! ```text
//! request with `idempotency-key: K` to method M ─▶ key = M + K + hash(authorization)
//!   ─▶ claim: first time ─▶ run the call, collect its (unary) response ─▶ kept for duplicates,
//!                           unless it says "try again" (`remembered`) or is too large to keep
//!             running    ─▶ wait for the first run, then its answer
//!             done       ─▶ the first answer again (status, headers, body, trailers)
//! ```
//!
//! What is kept is the response as the transport framed it, so the same code serves gRPC
//! (length-prefixed message, `grpc-status` trailers) and REST (JSON body, HTTP status). The
//! caller's `authorization` header is part of the key (hashed with this window's random keys), so
//! one caller's key never answers another's request. Streams are not deduped here: their answers
//! are not kept whole.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;

use super::{Claim, Dedupe, Kept};
use crate::client::IDEMPOTENCY_KEY;

/// The longest idempotency key accepted (longer ones are not deduped: a key is an id, not data).
const MAX_KEY_LEN: usize = 255;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A unary HTTP answer kept for duplicates.
pub(crate) struct HttpReply {
    status: StatusCode,
    headers: HeaderMap,
    data: Vec<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Kept for HttpReply {
    fn kept_size(&self) -> usize {
        let headers = |h: &HeaderMap| h.iter().map(|(k, v)| k.as_str().len() + v.len() + 32).sum::<usize>();
        std::mem::size_of::<Self>()
            + headers(&self.headers)
            + self.trailers.as_ref().map_or(0, headers)
            + self.data.iter().map(|d| d.len() + 32).sum::<usize>()
    }
}

impl HttpReply {
    /// The answer's status line and headers, and trailers (gRPC's status travels there).
    pub(crate) fn parts(&self) -> (StatusCode, &HeaderMap, Option<&HeaderMap>) {
        (self.status, &self.headers, self.trailers.as_ref())
    }

    /// The body, whole (REST reads an error answer's status from it).
    #[cfg(feature = "rest")]
    pub(crate) fn body(&self) -> Bytes {
        match self.data.as_slice() {
            [one] => one.clone(),
            many => many.concat().into(),
        }
    }

    /// A fresh response for a duplicate.
    fn replay(&self) -> http::Response<Replay> {
        let mut response = http::Response::new(Replay {
            frames: self.data.iter().cloned().map(Frame::data).chain(self.trailers.clone().map(Frame::trailers)).collect(),
            rest: None,
            error: None,
        });
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// How one HTTP transport frames answers, for [`Window::once`].
pub(crate) struct Framing<B> {
    /// The status a kept answer stands for (whether it is [`super::remembered`]).
    pub status_of: fn(&HttpReply) -> Status,
    /// A response body from a replayed or passed-through one.
    pub wrap: fn(Replay) -> B,
    /// An error answer (a duplicate of a call whose answer was too large to keep).
    pub error: fn(&Status) -> http::Response<B>,
}

/// The dedupe window of an HTTP server (shared by its clones and by every method it serves).
#[derive(Clone)]
pub(crate) struct Window {
    inner: Arc<Dedupe<HttpReply>>,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").field("enabled", &self.inner.enabled()).finish_non_exhaustive()
    }
}

impl Default for Window {
    /// Five minutes, 100,000 keys, 64 MiB of kept answers: the queue server's defaults.
    fn default() -> Self {
        Window::new(Duration::from_secs(300), 100_000, 64 * 1024 * 1024)
    }
}

impl Window {
    /// A window keeping keys for `window`, at most `capacity` of them and `max_bytes` of answers;
    /// a zero window or capacity turns dedupe off.
    pub(crate) fn new(window: Duration, capacity: usize, max_bytes: usize) -> Self {
        Window { inner: Arc::new(Dedupe::new(window, capacity, max_bytes)), hasher: std::hash::RandomState::new() }
    }

    /// The key of a call to `method` (its gRPC path) with these request headers: `None` when the
    /// call has no usable `idempotency-key` or dedupe is off.
    pub(crate) fn key(&self, method: &str, headers: &HeaderMap) -> Option<String> {
        if !self.inner.enabled() {
            return None;
        }
        static NAME: http::HeaderName = http::HeaderName::from_static(IDEMPOTENCY_KEY);
        let [key] = crate::context::find_headers(headers, [&NAME]);
        let key = key?.to_str().ok().filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)?;
        let caller = headers.get(http::header::AUTHORIZATION).map_or(0, |v| self.hasher.hash_one(v.as_bytes()));
        Some(format!("{method}\n{caller:016x}\n{key}"))
    }

    /// Runs `call` once for `key`: a duplicate waits for the first run and gets its answer.
    pub(crate) async fn once<B>(self, key: String, call: impl Future<Output = http::Response<B>>, framing: Framing<B>) -> http::Response<B>
    where
        B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let running = match self.inner.claim(&key).await {
            Claim::Done(Some(reply)) => return reply.replay().map(framing.wrap),
            Claim::Done(None) => {
                let status = Status::aborted("a duplicate of a call already answered (its answer was too large to keep)");
                return (framing.error)(&status);
            }
            Claim::Fresh(running) => running,
        };
        let (parts, mut body) = call.await.into_parts();
        let max = self.inner.max_reply_bytes();
        let mut kept = HttpReply { status: parts.status, headers: parts.headers.clone(), data: Vec::new(), trailers: None };
        let mut size = kept.kept_size();
        let mut frames = VecDeque::new();
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => break,
                Some(Ok(frame)) => {
                    let frame = match frame.into_data() {
                        Ok(data) => {
                            size += data.len() + 32;
                            kept.data.push(data.clone());
                            Frame::data(data)
                        }
                        Err(frame) => match frame.into_trailers() {
                            Ok(trailers) => {
                                kept.trailers = Some(trailers.clone());
                                Frame::trailers(trailers)
                            }
                            // Neither data nor trailers: not something a unary answer has.
                            Err(_) => continue,
                        },
                    };
                    frames.push_back(frame);
                    if size > max {
                        // Too large to keep: recorded as answered, without the answer; this one
                        // goes out as it comes.
                        running.finish(None);
                        let body = Replay { frames, rest: Some(tonic::body::Body::new(body)), error: None };
                        return http::Response::from_parts(parts, (framing.wrap)(body));
                    }
                }
                Some(Err(e)) => {
                    // The answer broke off: not an answer to keep (the guard releases the key).
                    drop(running);
                    let body = Replay { frames, rest: None, error: Some(e.into()) };
                    return http::Response::from_parts(parts, (framing.wrap)(body));
                }
            }
        }
        if super::remembered(&(framing.status_of)(&kept)) {
            let body = Replay { frames, rest: None, error: None };
            running.finish(Some(Arc::new(kept)));
            http::Response::from_parts(parts, (framing.wrap)(body))
        } else {
            drop(running);
            http::Response::from_parts(parts, (framing.wrap)(Replay { frames, rest: None, error: None }))
        }
    }
}

/// A response body from frames at hand, then (when the answer was too large to keep) the rest of
/// the original body.
pub(crate) struct Replay {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<tonic::body::Body>,
    error: Option<BoxError>,
}

impl HttpBody for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = self.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.error.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.rest.is_none() && self.error.is_none() {
            let n = self.frames.iter().filter_map(Frame::data_ref).map(|d| d.len() as u64).sum();
            return SizeHint::with_exact(n);
        }
        SizeHint::default()
    }
}
