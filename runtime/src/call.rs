//! The shared call path: the one place where a handler runs under its call's rules.
//!
//! ```text
//! transport decodes ─▶ CallContext::request (metadata, extensions, Deadline, Cancellation)
//!                  ─▶ run(handler future)        deadline → DEADLINE_EXCEEDED, panic → INTERNAL,
//!                                                dropped before the end → Cancellation fires
//!                  ─▶ guard_stream(response)     the same rules for each message of a stream
//!                  ─▶ take_trailers(response)    trailers the handler set, for the transport
//! transport encodes and frames
//! ```
//!
//! Every transport (gRPC, REST, queues) goes through these functions, so a rule changes in one
//! place for all of them.

#![cfg_attr(not(any(feature = "grpc", feature = "rest", feature = "queue")), allow(dead_code))]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use tonic::metadata::MetadataMap;
#[cfg(any(feature = "grpc", feature = "rest", feature = "queue"))]
use tonic::Request;
use tonic::{Response, Status};

use crate::context::CancelOnDrop;
#[cfg(any(feature = "grpc", feature = "rest", feature = "queue"))]
use crate::Deadline;
use crate::{Cancellation, Trailers};

/// What a handler runs with besides its message, as a transport collected it (REST and queues;
/// gRPC's server keeps it in the request's extensions: `state_of`).
#[cfg(any(feature = "rest", feature = "queue"))]
pub(crate) struct CallContext {
    pub(crate) metadata: MetadataMap,
    pub(crate) extensions: http::Extensions,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancellation: Cancellation,
}

#[cfg(any(feature = "rest", feature = "queue"))]
impl CallContext {
    /// Call state from the transport's metadata, extensions and deadline (the handler finds the
    /// [`Deadline`] and a fresh [`Cancellation`] in its request's extensions) for a call observed
    /// as one of `method` (`package.Service/Method`) on `transport`: a server span, a
    /// [`TraceContext`](crate::observe::TraceContext) from the metadata's `traceparent` in the
    /// handler's extensions, and the server metrics ([`crate::observe`]), kept with the call's
    /// [`Cancellation`].
    pub(crate) fn served(
        metadata: MetadataMap,
        mut extensions: http::Extensions,
        deadline: Option<Instant>,
        method: &str,
        transport: crate::client::TransportKind,
    ) -> Self {
        let observed = crate::observe::server::ServerCall::of_metadata(&metadata, method, transport);
        if let Some(t) = observed.as_ref().and_then(crate::observe::server::ServerCall::trace) {
            extensions.insert(t.clone());
        }
        let cancellation = Cancellation::serving(observed);
        extensions.insert(cancellation.clone());
        if let Some(d) = deadline {
            extensions.insert(Deadline(d));
        }
        CallContext { metadata, extensions, deadline, cancellation }
    }

    /// The handler's request (takes the metadata and extensions).
    pub(crate) fn request<T>(&mut self, message: T) -> Request<T> {
        Request::from_parts(std::mem::take(&mut self.metadata), std::mem::take(&mut self.extensions), message)
    }

    /// Runs `handler` on `message` (with this call's metadata and extensions) under the call's
    /// rules: [`run`] with this call's deadline and cancellation. (The dispatch table calls the
    /// handler's method inside the future `handler` returns, so a method that panics before it
    /// returns its own future panics in [`run`]'s poll too.)
    pub(crate) fn run<M, T, Fut>(
        &mut self,
        message: M,
        handler: impl FnOnce(Request<M>) -> Fut,
    ) -> impl Future<Output = Result<T, Status>>
    where
        Fut: Future<Output = Result<T, Status>>,
    {
        let fut = handler(self.request(message));
        run(self.deadline, &self.cancellation, fut)
    }
}

/// The state a transport already put into a request's extensions (gRPC's server does, for the
/// whole HTTP/2 exchange).
#[cfg(feature = "grpc")]
pub(crate) fn state_of<T>(request: &Request<T>) -> (Option<Instant>, Cancellation) {
    let deadline = request.extensions().get::<Deadline>().map(|d| d.0);
    let cancellation = request.extensions().get::<Cancellation>().cloned().unwrap_or_default();
    (deadline, cancellation)
}

/// Runs codec code outside the handler (the decoding of a request, the encoding of an answer:
/// a service's own types' serde impls run there): a panic fails the call with INTERNAL, as the
/// handler's own does, and the server goes on. A plain call, not a future: nothing to wrap.
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
#[inline]
pub(crate) fn caught<T>(f: impl FnOnce() -> Result<T, Status>) -> Result<T, Status> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked()))
}

/// The status a call gets when its handler panics. The panic itself goes to the panic hook
/// (stderr by default); the caller learns only that the call failed.
pub(crate) fn panicked() -> Status {
    Status::internal(PANICKED)
}

/// The message of [`panicked`]'s status.
const PANICKED: &str = "internal error: the handler panicked";

/// Whether `status` is [`panicked`]'s (a server that remembers answers, such as the queue
/// server's dedupe window, must not remember this one: a retry should run again).
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
pub(crate) fn is_panicked(status: &Status) -> bool {
    status.code() == tonic::Code::Internal && status.message() == PANICKED
}

/// The status of a call still running at its deadline.
pub(crate) fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

/// Runs a handler's future under the call's rules: past `deadline` it is dropped and the call
/// fails with DEADLINE_EXCEEDED; a panic fails the call with INTERNAL (the server goes on); if
/// this future is dropped before it finishes (the caller went away), `cancellation` fires.
///
/// A hand-written future rather than an `async fn` around `FutureExt::catch_unwind`: the
/// handler's future is moved once, into [`Run`], instead of into the `async fn`'s state and again
/// into the wrapper it awaits, and its output is not passed through two more layers (each move is
/// a `memcpy`, on every call).
pub(crate) fn run<T>(
    deadline: Option<Instant>,
    cancellation: &Cancellation,
    fut: impl Future<Output = Result<T, Status>>,
) -> impl Future<Output = Result<T, Status>> {
    let served = cancellation.served().is_some().then(|| cancellation.clone());
    Run { inner: fut, deadline, timer: None, guard: cancellation.guard(), served }
}

/// The status code of a handler's result (for the call's metrics and span).
fn code_of<T>(result: &Result<T, Status>) -> tonic::Code {
    result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok)
}

pin_project_lite::pin_project! {
    /// See [`run`].
    struct Run<F> {
        #[pin]
        inner: F,
        deadline: Option<Instant>,
        // Boxed, and made only once the handler has returned Pending under a deadline: the timer
        // is large and deadlines are the exception.
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        guard: CancelOnDrop,
        // The call's state when a server observes it (crate::observe): polled in its span.
        served: Option<Cancellation>,
    }
}

impl<F, T> Future for Run<F>
where
    F: Future<Output = Result<T, Status>>,
{
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        // Calls the handler makes while it is polled inherit its deadline.
        let deadline = *this.deadline;
        let served = this.served.as_ref().and_then(Cancellation::served);
        let poll = || crate::context::handling(deadline, || inner.poll(cx));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| match served {
            Some(s) => s.polling(poll),
            None => poll(),
        }));
        match polled {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(result)) => {
                this.guard.disarm();
                if let Some(s) = served {
                    s.ended(code_of(&result));
                }
                return Poll::Ready(result);
            }
            Err(_) => {
                this.guard.disarm();
                if let Some(s) = served {
                    s.ended(tonic::Code::Internal);
                }
                return Poll::Ready(Err(panicked()));
            }
        }
        if let Some(d) = *this.deadline {
            let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(d.into())));
            if timer.as_mut().poll(cx).is_ready() {
                // The call is over for the handler: anything it spawned should stop too. (The
                // handler's future is dropped with this one, right after.)
                drop(std::mem::replace(this.guard, CancelOnDrop::disarmed()));
                if let Some(s) = served {
                    s.ended(tonic::Code::DeadlineExceeded);
                }
                return Poll::Ready(Err(deadline_exceeded()));
            }
        }
        Poll::Pending
    }
}

/// A handler's response stream under the call's rules: past `deadline` it ends with
/// DEADLINE_EXCEEDED, a panic while producing a message ends it with INTERNAL, an error ends it,
/// and dropping it before its end fires `cancellation`.
pub(crate) fn guard_stream<S, T>(stream: S, deadline: Option<Instant>, cancellation: &Cancellation) -> Guarded<S>
where
    S: Stream<Item = Result<T, Status>>,
{
    let served = cancellation.served().map(|s| {
        // The call now ends with the stream.
        s.streams();
        cancellation.clone()
    });
    Guarded {
        inner: stream,
        deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
        guard: cancellation.guard(),
        done: false,
        served,
    }
}

pin_project_lite::pin_project! {
    /// See [`guard_stream`].
    pub(crate) struct Guarded<S> {
        #[pin]
        inner: S,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        guard: CancelOnDrop,
        done: bool,
        served: Option<Cancellation>,
    }
}

impl<S, T> Stream for Guarded<S>
where
    S: Stream<Item = Result<T, Status>>,
{
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let inner = this.inner;
        let deadline = this.deadline.as_ref().map(|d| d.deadline().into_std());
        let served = this.served.as_ref().and_then(Cancellation::served);
        let poll = || crate::context::handling(deadline, || inner.poll_next(cx));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| match served {
            Some(s) => s.polling(poll),
            None => poll(),
        }));
        let item = match polled {
            Ok(Poll::Pending) => {
                if let Some(d) = this.deadline {
                    if d.as_mut().poll(cx).is_ready() {
                        *this.done = true;
                        // Over for the producer too: fire the cancellation.
                        drop(std::mem::replace(this.guard, CancelOnDrop::disarmed()));
                        if let Some(s) = served {
                            s.ended(tonic::Code::DeadlineExceeded);
                        }
                        return Poll::Ready(Some(Err(deadline_exceeded())));
                    }
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(item)) => item,
            Err(_) => Some(Err(panicked())),
        };
        if !matches!(item, Some(Ok(_))) {
            // The end, or an error (which ends the call): the handler finished normally.
            *this.done = true;
            this.guard.disarm();
            if let Some(s) = served {
                // An OK status carrying trailers ends a stream as OK.
                s.ended(match &item {
                    Some(Err(status)) => status.code(),
                    _ => tonic::Code::Ok,
                });
            }
        }
        Poll::Ready(item)
    }
}

/// Takes the [`Trailers`] a handler put into its response's extensions.
pub(crate) fn take_trailers<T>(response: &mut Response<T>) -> Option<MetadataMap> {
    response.extensions_mut().remove::<Trailers>().map(|Trailers(md)| md)
}

/// An OK status carrying trailers: how a stream of `Result<M, Status>` ends with them (gRPC
/// sends a stream's final status, metadata included, as HTTP/2 trailers).
#[cfg(any(feature = "grpc", feature = "queue"))]
pub(crate) fn ok_with_trailers(trailers: MetadataMap) -> Status {
    Status::with_metadata(tonic::Code::Ok, "", trailers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::Duration;

    #[tokio::test]
    async fn a_panicking_handler_is_internal_and_not_cancelled() {
        let c = Cancellation::new();
        let result: Result<(), Status> = run(None, &c, async { panic!("boom") }).await;
        assert_eq!(result.unwrap_err().code(), tonic::Code::Internal);
        assert!(!c.is_cancelled());
    }

    #[tokio::test]
    async fn deadline_drops_the_handler_and_cancels() {
        let c = Cancellation::new();
        let at = Instant::now() + Duration::from_millis(20);
        let result: Result<(), Status> = run(Some(at), &c, std::future::pending()).await;
        assert_eq!(result.unwrap_err().code(), tonic::Code::DeadlineExceeded);
        assert!(c.is_cancelled());
    }

    #[tokio::test]
    async fn dropping_a_running_call_cancels() {
        let c = Cancellation::new();
        let mut fut = Box::pin(run::<()>(None, &c, std::future::pending()));
        assert!(tokio::time::timeout(Duration::from_millis(10), fut.as_mut()).await.is_err());
        drop(fut);
        assert!(c.is_cancelled());
    }

    #[tokio::test]
    async fn streams_end_on_panic_and_deadline() {
        let c = Cancellation::new();
        let s = futures_util::stream::iter([1, 2]).map(|i| if i == 2 { panic!("two") } else { Ok::<_, Status>(i) });
        let got: Vec<_> = guard_stream(s, None, &c).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &1);
        assert_eq!(got[1].as_ref().unwrap_err().code(), tonic::Code::Internal);
        assert!(!c.is_cancelled());

        let c = Cancellation::new();
        let at = Instant::now() + Duration::from_millis(20);
        let s = futures_util::stream::pending::<Result<u8, Status>>();
        let got: Vec<_> = guard_stream(s, Some(at), &c).collect().await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap_err().code(), tonic::Code::DeadlineExceeded);
        assert!(c.is_cancelled());
    }

    #[tokio::test]
    async fn a_stream_dropped_early_cancels() {
        let c = Cancellation::new();
        let s = guard_stream(futures_util::stream::iter([Ok::<_, Status>(1), Ok(2)]), None, &c);
        let mut s = Box::pin(s);
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        drop(s);
        assert!(c.is_cancelled());
    }
}
