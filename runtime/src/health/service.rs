//! The `grpc.health.v1.Health` service: the trait (through `#[service]`, so it is served by the
//! same dispatch table and call path as every other service, on gRPC and REST) and its one
//! implementation, on [`HealthReporter`].

use futures_util::stream;

use super::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse, HealthReporter, ServingStatus};
use crate::{Request, Response, Status, Streaming};

/// The most services `List` answers with; past it, RESOURCE_EXHAUSTED (the proto lets a server
/// set such a limit; grpc-go's is the same).
pub const MAX_LISTED: usize = 100;

/// gRPC's standard health service, `grpc.health.v1.Health` (`grpc/health/v1/health.proto`).
///
/// [`HealthReporter`] implements it; serve one with `HealthServer::new(reporter)` (gRPC) or
/// `HealthRestServer::new(reporter)` (REST), or let [`switchboard::Server`](crate::Server) add
/// it. Over REST each method has the default binding: `POST /grpc.health.v1.Health/<Method>`
/// with the request as JSON.
#[crate::service(package = "grpc.health.v1")]
pub trait Health {
    /// The status of `service` (`""`: the server as a whole); NOT_FOUND for a service the
    /// server has no status for.
    #[rpc(no_side_effects)]
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status>;

    /// Every service's status (`""` included); RESOURCE_EXHAUSTED past [`MAX_LISTED`] services.
    #[rpc(no_side_effects)]
    async fn list(&self, request: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status>;

    /// The status of `service` at once, then every change, until the caller goes away or the
    /// server stops. A service the server has no status for is `SERVICE_UNKNOWN` (not an error:
    /// it may be registered later).
    #[rpc(no_side_effects)]
    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Streaming<HealthCheckResponse>>, Status>;
}

impl Health for HealthReporter {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match self.status(&service) {
            Some(status) => Ok(Response::new(status.into())),
            None => Err(Status::not_found(format!("unknown service `{service}`"))),
        }
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        let statuses = self.statuses();
        if statuses.len() > MAX_LISTED {
            return Err(Status::resource_exhausted(format!(
                "{} services have a status, more than the {MAX_LISTED} List answers with",
                statuses.len()
            )));
        }
        let statuses = statuses.into_iter().map(|(service, status)| (service, status.into())).collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Streaming<HealthCheckResponse>>, Status> {
        let service = request.into_inner().service;
        let changes = self.subscribe();
        // Each step sends the status if it differs from the last one sent; else it ends the
        // stream if the reporter is closed, or waits for the next change.
        let statuses = stream::unfold((changes, service, None), |(mut changes, service, sent)| async move {
            loop {
                let (status, closed) = {
                    let state = changes.borrow_and_update();
                    (state.statuses.get(&service).copied().unwrap_or(ServingStatus::ServiceUnknown), state.closed)
                };
                if sent != Some(status) {
                    return Some((Ok(HealthCheckResponse::from(status)), (changes, service, Some(status))));
                }
                if closed || changes.changed().await.is_err() {
                    return None;
                }
            }
        });
        Ok(Response::new(Streaming::new(statuses)))
    }
}
