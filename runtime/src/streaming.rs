//! [`Streaming`]: the one stream type for requests and responses on every transport.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use sync_wrapper::SyncWrapper;
use tonic::Status;

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream of messages, each a `Result<T, Status>`.
///
/// Handlers receive one for client-streaming calls (`Request<Streaming<In>>`) and return one for
/// server-streaming calls (`Response<Streaming<Out>>`); clients get one back from
/// server-streaming calls. Build one from any `Stream` with [`Streaming::new`], from items with
/// [`Streaming::iter`], or push into it with [`Streaming::channel`].
pub struct Streaming<T> {
    inner: SyncWrapper<Boxed<T>>,
}

impl<T> Streaming<T> {
    /// Wraps any stream of results.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, Status>> + Send + 'static,
    {
        Streaming { inner: SyncWrapper::new(Box::pin(stream)) }
    }

    /// A stream that yields the given messages, then ends.
    pub fn iter<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: 'static,
    {
        Self::new(futures_util::stream::iter(items.into_iter().map(Ok)))
    }

    /// A stream that ends at once.
    pub fn empty() -> Self
    where
        T: Send + 'static,
    {
        Self::new(futures_util::stream::empty())
    }

    /// A stream fed through the returned sender; it ends when every sender is dropped.
    pub fn channel(buffer: usize) -> (StreamSender<T>, Self)
    where
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (StreamSender(tx), Self::new(stream))
    }

    /// The next message: `Ok(None)` at the end of the stream.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        futures_util::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }
}

impl<T> Stream for Streaming<T> {
    type Item = Result<T, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.get_mut().as_mut().poll_next(cx)
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming").finish_non_exhaustive()
    }
}

/// The sending half of [`Streaming::channel`].
#[derive(Debug)]
pub struct StreamSender<T>(tokio::sync::mpsc::Sender<Result<T, Status>>);

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        StreamSender(self.0.clone())
    }
}

impl<T> StreamSender<T> {
    /// Sends a message; fails (returning it) once the receiver is gone, e.g. the caller cancelled.
    pub async fn send(&self, item: Result<T, Status>) -> Result<(), Result<T, Status>> {
        self.0.send(item).await.map_err(|e| e.0)
    }
    /// Whether the receiving side has gone away.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
    /// Completes when the receiving side has gone away.
    pub async fn closed(&self) {
        self.0.closed().await
    }
}
