//! Where did each metadata key arrive: headers or trailers?
//!
//! `switchboard::Streaming` does not expose a response's trailers, and a unary
//! `Response::metadata()` is headers and trailers merged. [`RecordMetadata`], a tower layer
//! around the channel (the kind of wrapping generated clients are built for), records each
//! response's headers and trailers separately so the `custom_metadata` case can check where each
//! key arrived. (Servers send trailers with the `switchboard::Trailers` response extension.)

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use switchboard::metadata::MetadataMap;

/// The headers and trailers of the latest response through a [`RecordMetadata`].
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Initial metadata (response headers).
    pub headers: MetadataMap,
    /// Trailing metadata, once the body has ended with a trailers frame.
    pub trailers: Option<MetadataMap>,
}

/// Wraps a client transport (e.g. a `Channel`) and records the headers and trailers of each
/// response into a shared slot. Meant for one call at a time.
#[derive(Debug, Clone)]
pub struct RecordMetadata<C> {
    inner: C,
    slot: Arc<Mutex<Recorded>>,
}

impl<C> RecordMetadata<C> {
    /// Records responses sent through `inner`.
    pub fn new(inner: C) -> Self {
        RecordMetadata { inner, slot: Arc::default() }
    }

    /// What the latest response carried so far.
    pub fn recorded(&self) -> Recorded {
        self.slot.lock().unwrap().clone()
    }
}

impl<C, B, RB> tower_service::Service<http::Request<B>> for RecordMetadata<C>
where
    C: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    C::Future: Send + 'static,
    RB: HttpBody<Data = Bytes> + Send + 'static,
{
    type Response = http::Response<RecordTrailers<RB>>;
    type Error = C::Error;
    type Future = BoxFuture<'static, Result<Self::Response, C::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        let slot = self.slot.clone();
        Box::pin(async move {
            let resp = fut.await?;
            *slot.lock().unwrap() = Recorded {
                headers: MetadataMap::from_headers(resp.headers().clone()),
                trailers: None,
            };
            Ok(resp.map(|inner| RecordTrailers { inner, slot }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that copies its trailers into a [`RecordMetadata`] slot.
    pub struct RecordTrailers<B> {
        #[pin]
        inner: B,
        slot: Arc<Mutex<Recorded>>,
    }
}

impl<B: HttpBody<Data = Bytes>> HttpBody for RecordTrailers<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(trailers) = frame.trailers_ref() {
                this.slot.lock().unwrap().trailers = Some(MetadataMap::from_headers(trailers.clone()));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
