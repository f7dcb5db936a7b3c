//! Call policies: ONE document, gRPC's service config JSON, that means the same on every
//! transport.
//!
//! ```text
//! JSON text ─(ServiceConfig::from_json / from_file / from_env)─▶ ServiceConfig (checked)
//!     ─(Policies: per call, run-time config, the spec's default, built-in)─▶ &MethodConfig
//!     ─▶ the client call path's layers (deadline, retries, hedging, breaker, limits)
//! ```
//!
//! The format is gRPC's (`grpc/service_config/service_config.proto`, the JSON form grpc-go,
//! grpc-java and grpc-core read): `methodConfig` entries matched by `service` and `method` (the
//! method's entry, then the service's, then the default `{}`), `timeout`, `waitForReady`,
//! `maxRequestMessageBytes` / `maxResponseMessageBytes`, `retryPolicy` or `hedgingPolicy`, and at
//! the top `retryThrottling`, `loadBalancingConfig`, `healthCheckConfig`. What gRPC's format
//! has no field for goes under `x-switchboard`, which gRPC's own clients ignore:
//!
//! ```json
//! {
//!   "methodConfig": [{
//!     "name": [{"service": "demo.library.v1.Library"}],
//!     "timeout": "2s",
//!     "retryPolicy": {
//!       "maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
//!       "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
//!     },
//!     "x-switchboard": {
//!       "circuitBreaker": {"slidingWindowSize": 20, "minimumNumberOfCalls": 10,
//!                          "failureRateThreshold": 50, "waitDurationInOpenState": "2s",
//!                          "permittedNumberOfCallsInHalfOpenState": 3},
//!       "rateLimit": {"perSecond": 100, "burst": 10},
//!       "concurrencyLimit": {"maxInFlight": 8}
//!     }
//!   }],
//!   "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
//!   "x-switchboard": {"retryBudget": {"percent": 20, "minRetriesPerSecond": 10, "ttl": "10s"}}
//! }
//! ```
//!
//! Field names are read as proto3 JSON reads them: lowerCamelCase or the proto's snake_case.
//! A config that breaks a rule of the format (a `maxAttempts` of 1, a retry and a hedging policy
//! on one method, a name listed twice, an unknown field, a duration without its `s`) is rejected
//! with a [`PolicyError`] naming the JSON path, e.g.
//! `$.methodConfig[0].retryPolicy.maxAttempts: must be greater than 1`. Keys starting with `x-`
//! other than `x-switchboard` are ignored, as extensions are.
//!
//! Where a method's policy comes from, most specific first ([`Policies`]): options on the call,
//! the run-time config (a file or the environment: [`ServiceConfig::from_env`]), the spec's
//! default (embedded by codegen), built-in defaults (no timeout, one attempt, no limits).

mod code;
mod config;
mod guard;
mod json;
mod retry;
mod sources;

pub use config::{
    CircuitBreaker, ConcurrencyLimit, HealthCheckConfig, HedgingPolicy, LoadBalancingConfig, MethodConfig, MethodName, RateLimit, RetryBudget,
    RetryPolicy, RetryThrottling, ServiceConfig, SlidingWindow,
};
pub use json::PolicyError;
/// "a string", "an object", ...: a JSON value's kind, as error messages name it.
pub(crate) use json::kind as json_kind;
pub use retry::{PolicyLayer, PREVIOUS_ATTEMPTS_METADATA, PUSHBACK_METADATA};
pub use sources::{Policies, ENV_CONFIG, ENV_CONFIG_FILE};

#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod tests;
