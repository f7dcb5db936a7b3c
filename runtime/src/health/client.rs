//! The client side: [`watch`] follows one endpoint's health for a load balancer, as gRPC's
//! client-side health checking (gRFC A17) does.

use std::time::Duration;

use futures_core::Stream;
use futures_util::stream;

use super::{HealthCheckRequest, HealthCheckResponse, HealthClient, ServingStatus};
use crate::grpc::GrpcTransport;
use crate::{Code, Streaming};

/// The pause before the first retry of a `Watch` that failed before any answer; each further
/// one is 1.6 times longer, up to [`MAX_BACKOFF`] (gRPC's connection backoff), ±20 % jitter.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// Follows `service`'s health on the server behind `transport` (one endpoint's `Channel`, or
/// any layered gRPC transport): a stream of its status, yielding each change.
///
/// Only [`ServingStatus::Serving`] means "send calls"; skip the endpoint on anything else. As
/// gRFC A17 says:
///
/// - the first item is the status the server reports at once, then each change;
/// - a server that does not serve `grpc.health.v1.Health` (UNIMPLEMENTED) is healthy: the
///   stream yields `Serving` and ends;
/// - a `Watch` that fails or ends (the server stopped, the connection broke) yields
///   [`ServingStatus::Unknown`] and is made again: at once if it had answered, else after a
///   backoff (1 s, growing 1.6 times per failure up to 120 s, ±20 %).
///
/// The stream never ends otherwise; drop it to stop watching.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::health::ServingStatus;
/// use switchboard::stream::StreamExt as _;
///
/// let channel = switchboard::grpc::transport::Endpoint::from_static("http://10.0.0.7:50051").connect_lazy();
/// let mut statuses = std::pin::pin!(switchboard::health::watch(channel, "shop.v1.Orders"));
/// while let Some(status) = statuses.next().await {
///     let healthy = status == ServingStatus::Serving;
///     # let _ = healthy;
/// }
/// # Ok(())
/// # }
/// ```
pub fn watch<C>(transport: C, service: impl Into<String>) -> impl Stream<Item = ServingStatus> + Send + 'static
where
    C: GrpcTransport + Sync + 'static,
{
    let watcher = Watcher {
        client: HealthClient::new(transport),
        request: HealthCheckRequest::new(service),
        stream: None,
        answered: false,
        pause: None,
        backoff: INITIAL_BACKOFF,
        last: None,
        done: false,
    };
    stream::unfold(watcher, Watcher::next)
}

struct Watcher<C> {
    client: HealthClient<C>,
    request: HealthCheckRequest,
    /// The `Watch` call in progress.
    stream: Option<Streaming<HealthCheckResponse>>,
    /// Whether the call in progress has answered.
    answered: bool,
    /// The wait before the next call.
    pause: Option<Duration>,
    /// The next backoff.
    backoff: Duration,
    /// The status yielded last.
    last: Option<ServingStatus>,
    /// UNIMPLEMENTED: `Serving` was the last word.
    done: bool,
}

impl<C: GrpcTransport + Sync + 'static> Watcher<C> {
    /// The next status that differs from the last one yielded.
    async fn next(mut self) -> Option<(ServingStatus, Self)> {
        loop {
            if self.done {
                return None;
            }
            let status = match self.stream.as_mut() {
                None => {
                    if let Some(pause) = self.pause.take() {
                        tokio::time::sleep(pause).await;
                    }
                    match self.client.watch(self.request.clone()).await {
                        Ok(response) => {
                            self.stream = Some(response.into_inner());
                            self.answered = false;
                            continue;
                        }
                        Err(status) if status.code() == Code::Unimplemented => self.unimplemented(),
                        Err(_) => self.lost(),
                    }
                }
                Some(stream) => match stream.message().await {
                    Ok(Some(response)) => {
                        self.answered = true;
                        self.backoff = INITIAL_BACKOFF;
                        response.status()
                    }
                    Err(status) if status.code() == Code::Unimplemented => self.unimplemented(),
                    Ok(None) | Err(_) => self.lost(),
                },
            };
            if self.last != Some(status) {
                self.last = Some(status);
                return Some((status, self));
            }
        }
    }

    /// No health service: healthy for good.
    fn unimplemented(&mut self) -> ServingStatus {
        self.done = true;
        ServingStatus::Serving
    }

    /// The call failed or ended: unknown until the next call answers, made at once if this one
    /// had answered, else after the backoff.
    fn lost(&mut self) -> ServingStatus {
        self.stream = None;
        if !self.answered {
            let jitter = 0.8 + 0.4 * fastrand::f64();
            self.pause = Some(self.backoff.mul_f64(jitter));
            self.backoff = self.backoff.mul_f64(1.6).min(MAX_BACKOFF);
        }
        self.answered = false;
        ServingStatus::Unknown
    }
}
