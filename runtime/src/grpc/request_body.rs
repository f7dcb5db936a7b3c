//! A request body that turns the caller's reset into the call's [`Cancellation`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::Cancellation;

pin_project_lite::pin_project! {
    /// A request body whose error (the caller reset the stream) fires the call's
    /// [`Cancellation`] before the decoder sees it. Used for methods whose caller streams.
    pub(crate) struct WatchRequestBody<B> {
        #[pin]
        inner: B,
        cancellation: Cancellation,
    }
}

impl<B> WatchRequestBody<B> {
    pub(crate) fn new(inner: B, cancellation: Cancellation) -> Self {
        WatchRequestBody { inner, cancellation }
    }
}

impl<B> HttpBody for WatchRequestBody<B>
where
    B: HttpBody<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.cancellation.cancel();
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
