//! [`FleetChannel`]: a gRPC transport that sends each attempt to the endpoint the balancer picks,
//! over one lazily connected tonic `Channel` per endpoint.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tonic::body::Body;
use super::{Fleet, Outcome};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A gRPC transport over a [`Fleet`]: give it to a generated client
/// (`EchoClient::new(fleet.grpc())`). Each request picks an endpoint; connections are made on
/// first use and kept while the resolver lists the endpoint.
#[derive(Clone, Debug)]
pub struct FleetChannel {
    fleet: Fleet,
}

impl FleetChannel {
    pub(crate) fn new(fleet: Fleet) -> Self {
        FleetChannel { fleet }
    }

    /// The fleet it sends to.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }
}

impl tower_service::Service<http::Request<Body>> for FleetChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let fleet = self.fleet.clone();
        Box::pin(async move {
            let attempt = fleet.start().await?;
            let mut channel = attempt.endpoint().grpc_channel(fleet.connect_options())?;
            let sent = async {
                futures_util::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut channel, cx)).await?;
                tower_service::Service::call(&mut channel, request).await
            };
            match sent.await {
                Ok(response) => {
                    fleet.finish(attempt, outcome_of(&response));
                    Ok(response)
                }
                Err(e) => {
                    // No answer: the connection could not be made or broke.
                    fleet.finish(attempt, Outcome::Unreachable);
                    Err(e.into())
                }
            }
        })
    }
}

/// What a response's head says of its endpoint: a trailers-only error (`grpc-status` in the
/// headers) or an HTTP error is the status's; anything else answered.
fn outcome_of<B>(response: &http::Response<B>) -> Outcome {
    if !response.status().is_success() {
        return match response.status().is_server_error() {
            true => Outcome::Failed,
            false => Outcome::Answered,
        };
    }
    match response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok()) {
        Some(code) if super::balance::server_failure(tonic::Code::from_i32(code)) => Outcome::Failed,
        _ => Outcome::Answered,
    }
}
