//! Where a method's policy comes from, most specific first.

use std::sync::Arc;

use super::config::{MethodConfig, RetryBudget, RetryThrottling, ServiceConfig};
use super::json::PolicyError;
use super::PolicyLayer;

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

impl ServiceConfig {
    /// The spec's default config of `service`: the service config JSON its descriptor embeds
    /// (`#[service(policy = CONST)]`, written by codegen), read and checked; `Ok(None)` when it
    /// embeds none. An error names where it came from: the spec default of the service.
    ///
    /// ```
    /// use switchboard::policy::ServiceConfig;
    /// use switchboard::{CallShape, MethodDescriptor, ServiceDescriptor};
    /// static ECHO: ServiceDescriptor = ServiceDescriptor::new("demo", "Echo", "demo.Echo",
    ///     &[MethodDescriptor::new("Say", "say", "/demo.Echo/Say", CallShape::Unary)])
    ///     .policy(r#"{"methodConfig": [{"name": [{}], "timeout": "2"}]}"#);
    /// let err = ServiceConfig::spec_default(&ECHO).unwrap_err();
    /// assert_eq!(err.file(), Some("the spec default policy of `demo.Echo`"));
    /// assert_eq!(err.path(), "$.methodConfig[0].timeout");
    /// ```
    pub fn spec_default(service: &crate::ServiceDescriptor) -> Result<Option<Self>, PolicyError> {
        match service.policy {
            None => Ok(None),
            Some(text) => Self::from_json(text).map(Some).map_err(|e| e.in_file(spec_source(service))),
        }
    }
}

/// Which config an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Runtime,
    Spec,
}

/// How errors name a service's embedded default.
fn spec_source(service: &crate::ServiceDescriptor) -> String {
    format!("the spec default policy of `{}`", service.full_name)
}

/// How errors name the run-time config: the variable, or the file it names.
fn runtime_source() -> String {
    match std::env::var_os(ENV_CONFIG_FILE).filter(|f| !f.is_empty()) {
        Some(file) if std::env::var_os(ENV_CONFIG).is_none_or(|t| t.is_empty()) => file.to_string_lossy().into_owned(),
        _ => ENV_CONFIG.to_owned(),
    }
}

impl PolicyLayer {
    /// The layer of [`Policies::for_service`]: a service's spec default under the run-time
    /// config from the environment, checked. Install it on any of the service's clients.
    ///
    /// ```
    /// use switchboard::policy::PolicyLayer;
    /// use switchboard::{Request, Response, Status};
    ///
    /// const POLICY: &str = r#"{"methodConfig": [{"name": [{"service": "demo.Echo"}],
    ///     "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
    ///                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    ///
    /// #[switchboard::service(package = "demo", policy = POLICY)]
    /// pub trait Echo {
    ///     #[rpc(idempotent)]
    ///     async fn say(&self, req: Request<String>) -> Result<Response<String>, Status>;
    /// }
    ///
    /// let layer = PolicyLayer::for_service(&ECHO_DESCRIPTOR).unwrap();
    /// // EchoClient::new(channel).layer(layer)
    /// # let _ = layer;
    /// ```
    pub fn for_service(service: &crate::ServiceDescriptor) -> Result<Self, PolicyError> {
        Ok(PolicyLayer::new(Policies::for_service(service)?))
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

    /// The policies of a service's clients: the run-time config from the environment
    /// ([`ServiceConfig::from_env`]) over the spec's default the service's descriptor embeds
    /// ([`ServiceConfig::spec_default`]: what codegen found in the `.proto`'s directory or the
    /// OpenAPI document), [checked](Policies::check) against the service. Each call reads the
    /// environment and parses the configs again: call it once per client (or share the
    /// [`PolicyLayer`] built from it).
    ///
    /// ```
    /// use switchboard::policy::Policies;
    /// use switchboard::{Request, Response, Status};
    ///
    /// const POLICY: &str = r#"{"methodConfig": [{"name": [{"service": "demo.Echo"}], "timeout": "2s"}]}"#;
    ///
    /// #[switchboard::service(package = "demo", policy = POLICY)]
    /// pub trait Echo {
    ///     async fn say(&self, req: Request<String>) -> Result<Response<String>, Status>;
    /// }
    ///
    /// let policies = Policies::for_service(&ECHO_DESCRIPTOR).unwrap();
    /// # if std::env::var_os(switchboard::policy::ENV_CONFIG).is_none() && std::env::var_os(switchboard::policy::ENV_CONFIG_FILE).is_none() {
    /// assert_eq!(policies.method_config("demo.Echo", "Say").unwrap().timeout.unwrap().as_secs(), 2);
    /// # }
    /// // EchoClient::new(channel).layer(PolicyLayer::new(policies))
    /// ```
    pub fn for_service(service: &crate::ServiceDescriptor) -> Result<Self, PolicyError> {
        Self::for_service_with(service, ServiceConfig::from_env()?)
    }

    /// [`Policies::for_service`] with the run-time config given.
    pub(crate) fn for_service_with(service: &crate::ServiceDescriptor, runtime: Option<ServiceConfig>) -> Result<Self, PolicyError> {
        let mut policies = Policies::new();
        if let Some(spec) = ServiceConfig::spec_default(service)? {
            policies = policies.spec_default(spec);
        }
        if let Some(runtime) = runtime {
            policies = policies.runtime(runtime);
        }
        match policies.unsafe_hedge(service) {
            None => Ok(policies),
            Some((Source::Spec, error)) => Err(error.in_file(spec_source(service))),
            // `from_env` named the variable or file on its own errors; this one is about the
            // combination, so it says where the run-time config comes from.
            Some((Source::Runtime, error)) => Err(error.in_file(runtime_source())),
        }
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
        match self.unsafe_hedge(service) {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// The first method of `service` the policies would hedge though it is not declared
    /// idempotent: which config says so, and the error.
    fn unsafe_hedge(&self, service: &crate::ServiceDescriptor) -> Option<(Source, PolicyError)> {
        for method in service.methods {
            let Some(config) = self.method_config(service.full_name, method.name) else { continue };
            if config.hedging.is_none() || method.idempotency != crate::Idempotency::Unknown {
                continue;
            }
            let holds = |c: &Option<Arc<ServiceConfig>>| c.as_ref().and_then(|c| c.method_configs().iter().position(|m| std::ptr::eq(m, config)));
            let (source, index) = match (holds(&self.runtime), holds(&self.spec)) {
                (Some(i), _) => (Source::Runtime, i),
                (None, i) => (Source::Spec, i.unwrap_or(0)),
            };
            let error = PolicyError::new(
                format!("$.methodConfig[{index}].hedgingPolicy"),
                format!(
                    "hedges `{}/{}`, which is not declared idempotent: its copies could run it twice (declare it idempotent, or retry it instead: retries of calls with an idempotency key run once)",
                    service.full_name, method.name
                ),
            );
            return Some((source, error));
        }
        None
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallShape, Idempotency, MethodDescriptor, ServiceDescriptor};

    static METHODS: [MethodDescriptor; 2] = [
        MethodDescriptor::new("Get", "get", "/demo.Echo/Get", CallShape::Unary).idempotency(Idempotency::NoSideEffects),
        MethodDescriptor::new("Create", "create", "/demo.Echo/Create", CallShape::Unary),
    ];

    fn echo(policy: &'static str) -> ServiceDescriptor {
        ServiceDescriptor::new("demo", "Echo", "demo.Echo", &METHODS).policy(policy)
    }

    #[test]
    fn the_spec_default_is_read_and_the_runtime_config_overrides_it() {
        let service = echo(r#"{"methodConfig": [{"name": [{"service": "demo.Echo"}], "timeout": "2s"}], "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.5}}"#);
        let policies = Policies::for_service_with(&service, None).unwrap();
        assert_eq!(policies.method_config("demo.Echo", "Get").unwrap().timeout, Some(std::time::Duration::from_secs(2)));
        assert_eq!(policies.retry_throttling().unwrap().max_tokens, 10);

        let runtime = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "demo.Echo", "method": "Get"}], "timeout": "9s"}]}"#).unwrap();
        let policies = Policies::for_service_with(&service, Some(runtime)).unwrap();
        assert_eq!(policies.method_config("demo.Echo", "Get").unwrap().timeout, Some(std::time::Duration::from_secs(9)));
        assert_eq!(policies.method_config("demo.Echo", "Create").unwrap().timeout, Some(std::time::Duration::from_secs(2)));

        let none = ServiceDescriptor::new("demo", "Echo", "demo.Echo", &METHODS);
        assert!(Policies::for_service_with(&none, None).unwrap().method_config("demo.Echo", "Get").is_none());
    }

    #[test]
    fn errors_name_the_config_they_are_about() {
        let broken = echo(r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 1}}]}"#);
        assert_eq!(
            Policies::for_service_with(&broken, None).unwrap_err().to_string(),
            "the spec default policy of `demo.Echo`: $.methodConfig[0].retryPolicy.maxAttempts: must be greater than 1 (the first attempt counts)"
        );
        let not_json = echo("{");
        assert!(Policies::for_service_with(&not_json, None).unwrap_err().to_string().starts_with("the spec default policy of `demo.Echo`: $: not JSON"));

        // Hedging a method not declared idempotent: checked, and the config that does it named.
        let hedges = echo(r#"{"methodConfig": [{"name": [{"service": "demo.Echo", "method": "Get"}], "timeout": "1s"},
            {"name": [{"service": "demo.Echo"}], "hedgingPolicy": {"maxAttempts": 2}}]}"#);
        let err = Policies::for_service_with(&hedges, None).unwrap_err();
        assert_eq!((err.file(), err.path()), (Some("the spec default policy of `demo.Echo`"), "$.methodConfig[1].hedgingPolicy"));
        let runtime = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "demo.Echo", "method": "Create"}], "hedgingPolicy": {"maxAttempts": 2}}]}"#).unwrap();
        let err = Policies::for_service_with(&echo(r#"{}"#), Some(runtime)).unwrap_err();
        assert_eq!(err.path(), "$.methodConfig[0].hedgingPolicy");
        assert_ne!(err.file(), Some("the spec default policy of `demo.Echo`"));
    }
}
