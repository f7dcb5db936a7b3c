//! Where a method's policy comes from, most specific first.

use std::sync::Arc;

use super::config::{MethodConfig, RetryBudget, RetryThrottling, ServiceConfig};
use super::json::PolicyError;

/// The environment variable holding a run-time service config as JSON text.
pub const ENV_CONFIG: &str = "SWITCHBOARD_SERVICE_CONFIG";
/// The environment variable naming a run-time service config file.
pub const ENV_CONFIG_FILE: &str = "SWITCHBOARD_SERVICE_CONFIG_FILE";

impl ServiceConfig {
    /// The run-time config from the environment: the JSON in `SWITCHBOARD_SERVICE_CONFIG`, else
    /// the file `SWITCHBOARD_SERVICE_CONFIG_FILE` names; `Ok(None)` when neither is set. Setting
    /// both is an error (which one was meant is unclear).
    pub fn from_env() -> Result<Option<Self>, PolicyError> {
        Self::from_vars(std::env::var(ENV_CONFIG).ok(), std::env::var_os(ENV_CONFIG_FILE))
    }

    /// [`ServiceConfig::from_env`] with the two variables' values given.
    pub(crate) fn from_vars(text: Option<String>, file: Option<std::ffi::OsString>) -> Result<Option<Self>, PolicyError> {
        let text = text.filter(|t| !t.trim().is_empty());
        let file = file.filter(|f| !f.is_empty());
        match (text, file) {
            (Some(_), Some(_)) => Err(PolicyError::new("$", format!("both {ENV_CONFIG} and {ENV_CONFIG_FILE} are set; set one"))),
            (Some(text), None) => Self::from_json(&text).map(Some).map_err(|e| e.in_file(ENV_CONFIG)),
            (None, Some(file)) => Self::from_file(file).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// The configs a client reads its policies from, most specific first: the run-time config
/// (a file or the environment), then the spec's default (what codegen embedded: a proto
/// directory's `*_grpc_service_config.json`, an OpenAPI document's `x-switchboard-policy`).
/// Options given on a call override what these say for that call; without any of them a call
/// gets the built-in defaults (no timeout, one attempt, no limits).
///
/// A method's entry comes whole from the most specific config that has one for it (its
/// method's, else its service's, else the default entry), as gRPC reads one config at a time.
/// `retryThrottling` and the retry budget likewise come from the first config that sets them.
///
/// ```
/// use switchboard::policy::{Policies, ServiceConfig};
/// let spec = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}], "timeout": "5s"}]}"#).unwrap();
/// let ops = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "demo.Echo", "method": "Slow"}], "timeout": "30s"}]}"#).unwrap();
/// let policies = Policies::new().spec_default(spec).runtime(ops);
/// assert_eq!(policies.method_config("demo.Echo", "Slow").unwrap().timeout.unwrap().as_secs(), 30);
/// assert_eq!(policies.method_config("demo.Echo", "Say").unwrap().timeout.unwrap().as_secs(), 5);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policies {
    runtime: Option<Arc<ServiceConfig>>,
    spec: Option<Arc<ServiceConfig>>,
}

impl Policies {
    /// No configs: every call gets the built-in defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The run-time config (from [`ServiceConfig::from_env`], a file, or code).
    pub fn runtime(mut self, config: impl Into<Arc<ServiceConfig>>) -> Self {
        self.runtime = Some(config.into());
        self
    }

    /// The spec's default config.
    pub fn spec_default(mut self, config: impl Into<Arc<ServiceConfig>>) -> Self {
        self.spec = Some(config.into());
        self
    }

    /// The configs, most specific first.
    pub(crate) fn configs(&self) -> impl Iterator<Item = &ServiceConfig> {
        self.runtime.iter().chain(self.spec.iter()).map(|c| &**c)
    }

    /// Checks the policies against a service: a `hedgingPolicy` that would apply to a method not
    /// declared idempotent is an error (its copies could run the method twice; retries are
    /// gated per call instead, by an idempotency key).
    ///
    /// ```
    /// use switchboard::policy::{Policies, ServiceConfig};
    /// use switchboard::{CallShape, MethodDescriptor, ServiceDescriptor};
    /// static ECHO: ServiceDescriptor = ServiceDescriptor::new("demo", "Echo", "demo.Echo",
    ///     &[MethodDescriptor::new("Create", "create", "/demo.Echo/Create", CallShape::Unary)]);
    /// let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "demo.Echo"}],
    ///     "hedgingPolicy": {"maxAttempts": 2}}]}"#).unwrap();
    /// let err = Policies::new().runtime(config).check(&ECHO).unwrap_err();
    /// assert_eq!(err.path(), "$.methodConfig[0].hedgingPolicy");
    /// ```
    pub fn check(&self, service: &crate::ServiceDescriptor) -> Result<(), PolicyError> {
        for method in service.methods {
            let Some(config) = self.method_config(service.full_name, method.name) else { continue };
            if config.hedging.is_none() || method.idempotency != crate::Idempotency::Unknown {
                continue;
            }
            let index = self.configs().find_map(|c| c.method_configs().iter().position(|m| std::ptr::eq(m, config))).unwrap_or(0);
            return Err(PolicyError::new(
                format!("$.methodConfig[{index}].hedgingPolicy"),
                format!(
                    "hedges `{}/{}`, which is not declared idempotent: its copies could run it twice (declare it idempotent, or retry it instead: retries of calls with an idempotency key run once)",
                    service.full_name, method.name
                ),
            ));
        }
        Ok(())
    }

    /// The entry that applies to `service`'s `method` (wire names), if any config has one.
    pub fn method_config(&self, service: &str, method: &str) -> Option<&MethodConfig> {
        self.configs().find_map(|c| c.method_config(service, method))
    }

    /// `retryThrottling` of the most specific config that sets it.
    pub fn retry_throttling(&self) -> Option<&RetryThrottling> {
        self.configs().find_map(ServiceConfig::retry_throttling)
    }

    /// The retry budget of the most specific config that sets one.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        self.configs().find_map(ServiceConfig::retry_budget)
    }
}
