//! The service config: its types, read and checked from JSON.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};
use tonic::Code;

use super::code::failure_codes;
use super::json::{array, boolean, duration, kind, number, string, uint32, Obj, PolicyError, Result};

/// gRPC's limit on attempts: larger `maxAttempts` values are read as this.
const MAX_ATTEMPTS: u32 = 5;

/// A checked service config (see the [module docs](super)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceConfig {
    methods: Vec<MethodConfig>,
    /// (service, method) → index in `methods`; `("", "")` is the default entry, `(s, "")` the
    /// service's.
    index: HashMap<(String, String), usize>,
    retry_throttling: Option<RetryThrottling>,
    retry_budget: Option<RetryBudget>,
    load_balancing: Vec<LoadBalancingConfig>,
    health_check: Option<HealthCheckConfig>,
    max_connections_per_subchannel: Option<u32>,
}

/// One `methodConfig` entry: what applies to the methods it names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodConfig {
    /// The methods it applies to.
    pub names: Vec<MethodName>,
    /// Whether calls wait for a ready endpoint instead of failing at once (`waitForReady`).
    pub wait_for_ready: Option<bool>,
    /// The default deadline of a call (`timeout`).
    pub timeout: Option<Duration>,
    /// The largest request message a call may send (`maxRequestMessageBytes`).
    pub max_request_message_bytes: Option<u32>,
    /// The largest response message a call accepts (`maxResponseMessageBytes`).
    pub max_response_message_bytes: Option<u32>,
    /// `retryPolicy`.
    pub retry: Option<RetryPolicy>,
    /// `hedgingPolicy` (never together with `retry`).
    pub hedging: Option<HedgingPolicy>,
    /// `x-switchboard.circuitBreaker`: one breaker for the calls this entry covers.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `x-switchboard.rateLimit`: one limiter for the calls this entry covers.
    pub rate_limit: Option<RateLimit>,
    /// `x-switchboard.concurrencyLimit`: one limit for the calls this entry covers.
    pub concurrency_limit: Option<ConcurrencyLimit>,
}

/// One `name` of a `methodConfig`: a method, every method of a service (`method` empty), or
/// every method (both empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MethodName {
    /// The full service name, package included (`demo.library.v1.Library`).
    pub service: String,
    /// The method name as the wire spells it (`AddBook`); empty for the whole service.
    pub method: String,
}

/// `retryPolicy` (gRPC A6): which failures to try again, how often and how far apart.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: 2 to 5 (larger values are read as 5).
    pub max_attempts: u32,
    /// The first retry waits a random time up to this.
    pub initial_backoff: Duration,
    /// No retry waits longer than a random time up to this.
    pub max_backoff: Duration,
    /// Each retry's bound is the previous one's times this.
    pub backoff_multiplier: f64,
    /// The failures that are tried again.
    pub retryable_status_codes: Vec<Code>,
}

/// `hedgingPolicy`: send copies of a call, the first answer wins.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgingPolicy {
    /// Copies in all, the first included: 2 to 5 (larger values are read as 5).
    pub max_attempts: u32,
    /// The time between one copy and the next (zero: all at once).
    pub hedging_delay: Duration,
    /// Failures after which the other copies keep going (any other failure ends the call).
    pub non_fatal_status_codes: Vec<Code>,
}

/// `retryThrottling`: retries and hedges stop while the client's failures outweigh its successes.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryThrottling {
    /// Tokens at the start, and at most (1 to 1000); each failure takes one, and below half of
    /// this, nothing is retried or hedged.
    pub max_tokens: u32,
    /// Tokens each success gives back (more than 0; three decimals count).
    pub token_ratio: f64,
}

/// `x-switchboard.retryBudget` (Finagle's): retries may add at most `percent` % to the calls made
/// over the last `ttl`, plus `min_retries_per_second` in any case.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryBudget {
    /// Retries allowed per hundred calls (0 to 1000).
    pub percent: f64,
    /// Retries allowed per second whatever the traffic.
    pub min_retries_per_second: u32,
    /// The window calls are counted over (1 to 60 s).
    pub ttl: Duration,
}

/// `x-switchboard.circuitBreaker` (resilience4j's settings and names): after enough failed or
/// slow calls in a sliding window, calls fail at once with UNAVAILABLE for a while, then a few
/// probes decide whether to close again.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreaker {
    /// What the window counts over.
    pub sliding_window: SlidingWindow,
    /// The window: that many calls, or that many seconds.
    pub sliding_window_size: u32,
    /// No verdict before this many calls in the window.
    pub minimum_number_of_calls: u32,
    /// Opens when this percentage of the window failed (1 to 100).
    pub failure_rate_threshold: f64,
    /// Opens when this percentage of the window was slow (1 to 100; 100 when not given).
    pub slow_call_rate_threshold: f64,
    /// A call slower than this is slow (60 s when not given).
    pub slow_call_duration_threshold: Duration,
    /// How long it stays open before letting probes through.
    pub wait_duration_in_open_state: Duration,
    /// Probes while half open.
    pub permitted_number_of_calls_in_half_open_state: u32,
}

/// The kind of a breaker's sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last N calls (`COUNT_BASED`, the default).
    CountBased,
    /// The calls of the last N seconds (`TIME_BASED`).
    TimeBased,
}

/// `x-switchboard.rateLimit`: calls per second with a burst (GCRA); calls over it fail at once
/// with RESOURCE_EXHAUSTED and are never retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second (more than 0).
    pub per_second: f64,
    /// Calls allowed at once after a quiet period (at least 1; 1 when not given).
    pub burst: u32,
}

/// `x-switchboard.concurrencyLimit`: calls in flight at most; more fail at once with
/// RESOURCE_EXHAUSTED and are never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    /// Calls in flight at most (at least 1).
    pub max_in_flight: u32,
}

/// One `loadBalancingConfig` entry: a policy name and its config, kept as written (the client's
/// endpoint picking reads the ones it knows).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancingConfig {
    /// The policy, e.g. `round_robin`, `pick_first`.
    pub policy: String,
    /// Its config object.
    pub config: Map<String, Value>,
}

/// `healthCheckConfig`: the service name client-side health checks ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// `serviceName` (empty: the server as a whole).
    pub service_name: String,
}

impl ServiceConfig {
    /// Reads and checks a service config (JSON text).
    ///
    /// ```
    /// let config = switchboard::policy::ServiceConfig::from_json(r#"{"methodConfig": [
    ///     {"name": [{"service": "demo.Echo"}], "timeout": "1.5s"}]}"#).unwrap();
    /// let m = config.method_config("demo.Echo", "Say").unwrap();
    /// assert_eq!(m.timeout, Some(std::time::Duration::from_millis(1500)));
    ///
    /// let err = switchboard::policy::ServiceConfig::from_json(r#"{"methodConfig": [
    ///     {"name": [{}], "retryPolicy": {"maxAttempts": 1}}]}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "$.methodConfig[0].retryPolicy.maxAttempts: must be greater than 1 (the first attempt counts)");
    /// ```
    pub fn from_json(text: &str) -> std::result::Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| PolicyError::new("$", format!("not JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Reads and checks a service config that is already JSON.
    pub fn from_value(value: &Value) -> std::result::Result<Self, PolicyError> {
        let mut top = Obj::new(value, "$")?;
        let mut config = ServiceConfig::default();
        if let Some((v, path)) = top.field("loadBalancingPolicy")? {
            let name = string(v, &path)?;
            if !matches!(name.to_ascii_lowercase().as_str(), "round_robin" | "pick_first" | "unspecified") {
                return Err(PolicyError::new(path, format!("expected \"round_robin\" or \"pick_first\", found {name:?}")));
            }
        }
        if let Some((v, path)) = top.field("loadBalancingConfig")? {
            config.load_balancing = load_balancing(v, &path)?;
        }
        if let Some((v, path)) = top.field("methodConfig")? {
            for (i, entry) in array(v, &path)?.iter().enumerate() {
                let at = format!("{path}[{i}]");
                let method = method_config(entry, &at)?;
                let index = config.methods.len();
                for (j, name) in method.names.iter().enumerate() {
                    let key = (name.service.clone(), name.method.clone());
                    if config.index.insert(key, index).is_some() {
                        return Err(PolicyError::new(format!("{at}.name[{j}]"), format!("{} is named by an earlier methodConfig entry too; name it once", describe(name))));
                    }
                }
                config.methods.push(method);
            }
        }
        if let Some((v, path)) = top.field("retryThrottling")? {
            config.retry_throttling = Some(retry_throttling(v, &path)?);
        }
        if let Some((v, path)) = top.field("healthCheckConfig")? {
            let mut o = Obj::new(v, &path)?;
            let service_name = match o.field("serviceName")? {
                Some((v, p)) => string(v, &p)?.to_owned(),
                None => String::new(),
            };
            o.finish()?;
            config.health_check = Some(HealthCheckConfig { service_name });
        }
        if let Some((v, path)) = top.field("connectionScaling")? {
            let mut o = Obj::new(v, &path)?;
            if let Some((v, p)) = o.field("maxConnectionsPerSubchannel")? {
                config.max_connections_per_subchannel = Some(uint32(v, &p)?);
            }
            o.finish()?;
        }
        if let Some(v) = value.get("x-switchboard") {
            let mut o = Obj::new(v, "$.x-switchboard")?;
            if let Some((v, p)) = o.field("retryBudget")? {
                config.retry_budget = Some(retry_budget(v, &p)?);
            }
            o.finish()?;
        }
        top.finish()?;
        Ok(config)
    }

    /// Reads and checks a service config file; errors name the file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::result::Result<Self, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::new("$", format!("cannot read it: {e}")).in_file(path.display().to_string()))?;
        Self::from_json(&text).map_err(|e| e.in_file(path.display().to_string()))
    }

    /// The entry for `service`'s `method` (the wire name): the one naming the method, else the
    /// one naming the service, else the default one (`"name": [{}]`).
    pub fn method_config(&self, service: &str, method: &str) -> Option<&MethodConfig> {
        let find = |s: &str, m: &str| self.index.get(&(s.to_owned(), m.to_owned())).map(|&i| &self.methods[i]);
        find(service, method).or_else(|| find(service, "")).or_else(|| find("", ""))
    }

    /// Every `methodConfig` entry, in document order.
    pub fn method_configs(&self) -> &[MethodConfig] {
        &self.methods
    }

    /// `retryThrottling`.
    pub fn retry_throttling(&self) -> Option<&RetryThrottling> {
        self.retry_throttling.as_ref()
    }

    /// `x-switchboard.retryBudget`.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        self.retry_budget.as_ref()
    }

    /// `loadBalancingConfig`, in order of preference.
    pub fn load_balancing(&self) -> &[LoadBalancingConfig] {
        &self.load_balancing
    }

    /// `healthCheckConfig`.
    pub fn health_check(&self) -> Option<&HealthCheckConfig> {
        self.health_check.as_ref()
    }

    /// `connectionScaling.maxConnectionsPerSubchannel`.
    pub fn max_connections_per_subchannel(&self) -> Option<u32> {
        self.max_connections_per_subchannel
    }
}

fn describe(name: &MethodName) -> String {
    match (name.service.as_str(), name.method.as_str()) {
        ("", _) => "the default (every method)".to_owned(),
        (s, "") => format!("every method of `{s}`"),
        (s, m) => format!("`{s}/{m}`"),
    }
}

fn method_config(value: &Value, path: &str) -> Result<MethodConfig> {
    let mut o = Obj::new(value, path)?;
    let mut m = MethodConfig::default();
    if let Some((v, p)) = o.field("name")? {
        for (i, n) in array(v, &p)?.iter().enumerate() {
            let at = format!("{p}[{i}]");
            let mut no = Obj::new(n, &at)?;
            let service = match no.field("service")? {
                Some((v, p)) => string(v, &p)?.to_owned(),
                None => String::new(),
            };
            let method = match no.field("method")? {
                Some((v, p)) => string(v, &p)?.to_owned(),
                None => String::new(),
            };
            no.finish()?;
            if service.is_empty() && !method.is_empty() {
                return Err(PolicyError::new(at, format!("method {method:?} without a service; name the service too (an empty name is the default for every method)")));
            }
            m.names.push(MethodName { service, method });
        }
    }
    if let Some((v, p)) = o.field("waitForReady")? {
        m.wait_for_ready = Some(boolean(v, &p)?);
    }
    if let Some((v, p)) = o.field("timeout")? {
        m.timeout = Some(duration(v, &p)?);
    }
    if let Some((v, p)) = o.field("maxRequestMessageBytes")? {
        m.max_request_message_bytes = Some(uint32(v, &p)?);
    }
    if let Some((v, p)) = o.field("maxResponseMessageBytes")? {
        m.max_response_message_bytes = Some(uint32(v, &p)?);
    }
    let retry = o.field("retryPolicy")?;
    let hedging = o.field("hedgingPolicy")?;
    if let (Some(_), Some((_, p))) = (&retry, &hedging) {
        return Err(PolicyError::new(p.clone(), "a method has a retryPolicy or a hedgingPolicy, not both"));
    }
    if let Some((v, p)) = retry {
        m.retry = Some(retry_policy(v, &p)?);
    }
    if let Some((v, p)) = hedging {
        m.hedging = Some(hedging_policy(v, &p)?);
    }
    if let Some(v) = value.get("x-switchboard") {
        let mut x = Obj::new(v, &format!("{path}.x-switchboard"))?;
        if let Some((v, p)) = x.field("circuitBreaker")? {
            m.circuit_breaker = Some(circuit_breaker(v, &p)?);
        }
        if let Some((v, p)) = x.field("rateLimit")? {
            m.rate_limit = Some(rate_limit(v, &p)?);
        }
        if let Some((v, p)) = x.field("concurrencyLimit")? {
            let mut c = Obj::new(v, &p)?;
            let max_in_flight = required(&mut c, "maxInFlight", uint32)?;
            c.finish()?;
            if max_in_flight == 0 {
                return Err(PolicyError::new(format!("{p}.maxInFlight"), "must be at least 1"));
            }
            m.concurrency_limit = Some(ConcurrencyLimit { max_in_flight });
        }
        x.finish()?;
    }
    o.finish()?;
    Ok(m)
}

/// A field the format requires, read with `read`.
fn required<T>(o: &mut Obj<'_>, name: &'static str, read: impl Fn(&Value, &str) -> Result<T>) -> Result<T> {
    match o.field(name)? {
        Some((v, p)) => read(v, &p),
        None => Err(PolicyError::new(o.path.clone(), format!("`{name}` is required"))),
    }
}

fn attempts(o: &mut Obj<'_>) -> Result<u32> {
    let path = format!("{}.maxAttempts", o.path);
    let n = required(o, "maxAttempts", uint32)?;
    if n <= 1 {
        return Err(PolicyError::new(path, "must be greater than 1 (the first attempt counts)"));
    }
    Ok(n.min(MAX_ATTEMPTS))
}

fn positive(d: Duration, path: String) -> Result<Duration> {
    if d.is_zero() {
        return Err(PolicyError::new(path, "must be greater than zero"));
    }
    Ok(d)
}

fn retry_policy(value: &Value, path: &str) -> Result<RetryPolicy> {
    let mut o = Obj::new(value, path)?;
    let max_attempts = attempts(&mut o)?;
    let initial_backoff = positive(required(&mut o, "initialBackoff", duration)?, format!("{path}.initialBackoff"))?;
    let max_backoff = positive(required(&mut o, "maxBackoff", duration)?, format!("{path}.maxBackoff"))?;
    let backoff_multiplier = required(&mut o, "backoffMultiplier", number)?;
    if backoff_multiplier <= 0.0 {
        return Err(PolicyError::new(format!("{path}.backoffMultiplier"), "must be greater than zero"));
    }
    let retryable_status_codes = required(&mut o, "retryableStatusCodes", failure_codes)?;
    if retryable_status_codes.is_empty() {
        return Err(PolicyError::new(format!("{path}.retryableStatusCodes"), "must list at least one status code"));
    }
    o.finish()?;
    Ok(RetryPolicy { max_attempts, initial_backoff, max_backoff, backoff_multiplier, retryable_status_codes })
}

fn hedging_policy(value: &Value, path: &str) -> Result<HedgingPolicy> {
    let mut o = Obj::new(value, path)?;
    let max_attempts = attempts(&mut o)?;
    let hedging_delay = match o.field("hedgingDelay")? {
        Some((v, p)) => duration(v, &p)?,
        None => Duration::ZERO,
    };
    let non_fatal_status_codes = match o.field("nonFatalStatusCodes")? {
        Some((v, p)) => failure_codes(v, &p)?,
        None => Vec::new(),
    };
    o.finish()?;
    Ok(HedgingPolicy { max_attempts, hedging_delay, non_fatal_status_codes })
}

fn retry_throttling(value: &Value, path: &str) -> Result<RetryThrottling> {
    let mut o = Obj::new(value, path)?;
    let max_tokens = required(&mut o, "maxTokens", uint32)?;
    if max_tokens == 0 || max_tokens > 1000 {
        return Err(PolicyError::new(format!("{path}.maxTokens"), format!("must be from 1 to 1000, found {max_tokens}")));
    }
    let token_ratio = required(&mut o, "tokenRatio", number)?;
    if token_ratio <= 0.0 {
        return Err(PolicyError::new(format!("{path}.tokenRatio"), "must be greater than zero"));
    }
    o.finish()?;
    // Three decimals count (gRPC keeps tokens in thousandths).
    Ok(RetryThrottling { max_tokens, token_ratio: (token_ratio * 1000.0).trunc() / 1000.0 })
}

fn retry_budget(value: &Value, path: &str) -> Result<RetryBudget> {
    let mut o = Obj::new(value, path)?;
    let percent = required(&mut o, "percent", number)?;
    if !(0.0..=1000.0).contains(&percent) {
        return Err(PolicyError::new(format!("{path}.percent"), format!("must be from 0 to 1000, found {percent}")));
    }
    let min_retries_per_second = match o.field("minRetriesPerSecond")? {
        Some((v, p)) => uint32(v, &p)?,
        None => 10,
    };
    let ttl = match o.field("ttl")? {
        Some((v, p)) => {
            let ttl = duration(v, &p)?;
            if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
                return Err(PolicyError::new(p, "must be from 1s to 60s"));
            }
            ttl
        }
        None => Duration::from_secs(10),
    };
    o.finish()?;
    Ok(RetryBudget { percent, min_retries_per_second, ttl })
}

/// An optional count of at least 1, `default` when absent.
fn at_least_one(o: &mut Obj<'_>, name: &'static str, default: u32) -> Result<u32> {
    match o.field(name)? {
        Some((v, p)) => match uint32(v, &p)? {
            0 => Err(PolicyError::new(p, "must be at least 1")),
            n => Ok(n),
        },
        None => Ok(default),
    }
}

fn percentage(o: &mut Obj<'_>, name: &'static str, default: Option<f64>) -> Result<f64> {
    let path = format!("{}.{name}", o.path);
    let value = match (o.field(name)?, default) {
        (Some((v, p)), _) => number(v, &p)?,
        (None, Some(d)) => return Ok(d),
        (None, None) => return Err(PolicyError::new(o.path.clone(), format!("`{name}` is required"))),
    };
    if !(value > 0.0 && value <= 100.0) {
        return Err(PolicyError::new(path, format!("must be more than 0 and at most 100, found {value}")));
    }
    Ok(value)
}

fn circuit_breaker(value: &Value, path: &str) -> Result<CircuitBreaker> {
    let mut o = Obj::new(value, path)?;
    let sliding_window = match o.field("slidingWindowType")? {
        Some((v, p)) => match string(v, &p)? {
            "COUNT_BASED" => SlidingWindow::CountBased,
            "TIME_BASED" => SlidingWindow::TimeBased,
            other => return Err(PolicyError::new(p, format!("expected \"COUNT_BASED\" or \"TIME_BASED\", found {other:?}"))),
        },
        None => SlidingWindow::CountBased,
    };
    let sliding_window_size = required(&mut o, "slidingWindowSize", uint32)?;
    if sliding_window_size == 0 {
        return Err(PolicyError::new(format!("{path}.slidingWindowSize"), "must be at least 1"));
    }
    let minimum_number_of_calls = at_least_one(&mut o, "minimumNumberOfCalls", sliding_window_size)?;
    if sliding_window == SlidingWindow::CountBased && minimum_number_of_calls > sliding_window_size {
        return Err(PolicyError::new(
            format!("{path}.minimumNumberOfCalls"),
            format!("is more than the window holds ({minimum_number_of_calls} > slidingWindowSize {sliding_window_size}), so it would never open"),
        ));
    }
    let failure_rate_threshold = percentage(&mut o, "failureRateThreshold", Some(50.0))?;
    let slow_call_rate_threshold = percentage(&mut o, "slowCallRateThreshold", Some(100.0))?;
    let slow_call_duration_threshold = match o.field("slowCallDurationThreshold")? {
        Some((v, p)) => positive(duration(v, &p)?, p)?,
        None => Duration::from_secs(60),
    };
    let wait_duration_in_open_state = positive(required(&mut o, "waitDurationInOpenState", duration)?, format!("{path}.waitDurationInOpenState"))?;
    let permitted_number_of_calls_in_half_open_state = at_least_one(&mut o, "permittedNumberOfCallsInHalfOpenState", 10)?;
    o.finish()?;
    Ok(CircuitBreaker {
        sliding_window,
        sliding_window_size,
        minimum_number_of_calls,
        failure_rate_threshold,
        slow_call_rate_threshold,
        slow_call_duration_threshold,
        wait_duration_in_open_state,
        permitted_number_of_calls_in_half_open_state,
    })
}

fn rate_limit(value: &Value, path: &str) -> Result<RateLimit> {
    let mut o = Obj::new(value, path)?;
    let per_second = required(&mut o, "perSecond", number)?;
    if per_second <= 0.0 {
        return Err(PolicyError::new(format!("{path}.perSecond"), "must be greater than zero"));
    }
    let burst = at_least_one(&mut o, "burst", 1)?;
    o.finish()?;
    Ok(RateLimit { per_second, burst })
}

fn load_balancing(value: &Value, path: &str) -> Result<Vec<LoadBalancingConfig>> {
    let mut out = Vec::new();
    for (i, entry) in array(value, path)?.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Value::Object(map) = entry else {
            return Err(PolicyError::new(at, format!("expected an object with one policy name, found {}", kind(entry))));
        };
        let mut fields = map.iter();
        let (Some((policy, config)), None) = (fields.next(), fields.next()) else {
            return Err(PolicyError::new(at, format!("expected exactly one policy name, found {}", map.len())));
        };
        let Value::Object(config) = config else {
            return Err(PolicyError::new(format!("{at}.{policy}"), format!("expected the policy's config object, found {}", kind(config))));
        };
        out.push(LoadBalancingConfig { policy: policy.clone(), config: config.clone() });
    }
    Ok(out)
}
