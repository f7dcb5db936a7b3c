use std::time::Duration;

use tonic::Code;

use super::*;

fn err(json: &str) -> String {
    ServiceConfig::from_json(json).expect_err(json).to_string()
}

#[test]
fn every_grpc_field_and_the_extensions_are_read() {
    let config = ServiceConfig::from_json(
        r#"{
        "loadBalancingPolicy": "round_robin",
        "loadBalancingConfig": [{"outlier_detection": {"interval": "10s", "childPolicy": [{"round_robin": {}}]}}, {"pick_first": {"shuffleAddressList": true}}],
        "methodConfig": [
          {"name": [{"service": "demo.Echo", "method": "Say"}], "waitForReady": true, "timeout": "0.25s",
           "maxRequestMessageBytes": 1024, "maxResponseMessageBytes": "2048",
           "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                           "retryableStatusCodes": ["UNAVAILABLE", "resource_exhausted", 10]}},
          {"name": [{"service": "demo.Echo"}, {"service": "demo.Other", "method": null}],
           "hedgingPolicy": {"maxAttempts": 9, "hedgingDelay": "0.02s", "nonFatalStatusCodes": ["UNAVAILABLE"]},
           "x-switchboard": {
             "circuitBreaker": {"slidingWindowType": "TIME_BASED", "slidingWindowSize": 20, "minimumNumberOfCalls": 10,
                                "failureRateThreshold": 50, "slowCallRateThreshold": 80, "slowCallDurationThreshold": "0.5s",
                                "waitDurationInOpenState": "2s", "permittedNumberOfCallsInHalfOpenState": 3},
             "rateLimit": {"perSecond": 100, "burst": 10},
             "concurrencyLimit": {"maxInFlight": 8}}},
          {"name": [{}], "timeout": "30s", "x-vendor-note": "ignored"}
        ],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1234},
        "healthCheckConfig": {"serviceName": "demo.Echo"},
        "connectionScaling": {"maxConnectionsPerSubchannel": 4},
        "x-switchboard": {"retryBudget": {"percent": 20, "minRetriesPerSecond": 10, "ttl": "10s"}}
    }"#,
    )
    .unwrap();

    let say = config.method_config("demo.Echo", "Say").unwrap();
    assert_eq!(say.wait_for_ready, Some(true));
    assert_eq!(say.timeout, Some(Duration::from_millis(250)));
    assert_eq!((say.max_request_message_bytes, say.max_response_message_bytes), (Some(1024), Some(2048)));
    let retry = say.retry.as_ref().unwrap();
    assert_eq!(retry.max_attempts, 4);
    assert_eq!((retry.initial_backoff, retry.max_backoff), (Duration::from_millis(100), Duration::from_secs(1)));
    assert_eq!(retry.backoff_multiplier, 2.0);
    assert_eq!(retry.retryable_status_codes, vec![Code::Unavailable, Code::ResourceExhausted, Code::Aborted]);

    // The service's entry for its other methods, and for a service named with `"method": null`.
    for (service, method) in [("demo.Echo", "Shout"), ("demo.Other", "Any")] {
        let m = config.method_config(service, method).unwrap();
        let hedging = m.hedging.as_ref().unwrap();
        assert_eq!(hedging.max_attempts, 5, "9 is read as gRPC's limit of 5");
        assert_eq!(hedging.hedging_delay, Duration::from_millis(20));
        let breaker = m.circuit_breaker.as_ref().unwrap();
        assert_eq!(breaker.sliding_window, SlidingWindow::TimeBased);
        assert_eq!((breaker.sliding_window_size, breaker.minimum_number_of_calls, breaker.permitted_number_of_calls_in_half_open_state), (20, 10, 3));
        assert_eq!((breaker.failure_rate_threshold, breaker.slow_call_rate_threshold), (50.0, 80.0));
        assert_eq!((breaker.slow_call_duration_threshold, breaker.wait_duration_in_open_state), (Duration::from_millis(500), Duration::from_secs(2)));
        assert_eq!(m.rate_limit, Some(RateLimit { per_second: 100.0, burst: 10 }));
        assert_eq!(m.concurrency_limit, Some(ConcurrencyLimit { max_in_flight: 8 }));
    }
    // Everything else: the default entry.
    assert_eq!(config.method_config("demo.Third", "X").unwrap().timeout, Some(Duration::from_secs(30)));

    assert_eq!(config.retry_throttling(), Some(&RetryThrottling { max_tokens: 10, token_ratio: 0.123 }));
    assert_eq!(config.retry_budget(), Some(&RetryBudget { percent: 20.0, min_retries_per_second: 10, ttl: Duration::from_secs(10) }));
    let lb: Vec<&str> = config.load_balancing().iter().map(|l| l.policy.as_str()).collect();
    assert_eq!(lb, ["outlier_detection", "pick_first"]);
    assert_eq!(config.health_check().unwrap().service_name, "demo.Echo");
    assert_eq!(config.max_connections_per_subchannel(), Some(4));
    assert_eq!(config.method_configs().len(), 3);
}

#[test]
fn proto_field_names_are_read_too() {
    let config = ServiceConfig::from_json(
        r#"{"method_config": [{"name": [{"service": "s"}], "wait_for_ready": false,
            "retry_policy": {"max_attempts": 2, "initial_backoff": "1s", "max_backoff": "2s", "backoff_multiplier": 1.5,
                             "retryable_status_codes": ["UNAVAILABLE"]}}],
            "retry_throttling": {"max_tokens": 100, "token_ratio": 1}}"#,
    )
    .unwrap();
    let m = config.method_config("s", "m").unwrap();
    assert_eq!(m.wait_for_ready, Some(false));
    assert_eq!(m.retry.as_ref().unwrap().backoff_multiplier, 1.5);
    assert_eq!(config.retry_throttling().unwrap().max_tokens, 100);
    assert!(err(r#"{"methodConfig": [], "method_config": []}"#).contains("are the same field"));
}

#[test]
fn without_a_matching_entry_there_is_no_policy() {
    let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "a.A", "method": "M"}], "timeout": "1s"}]}"#).unwrap();
    assert!(config.method_config("a.A", "N").is_none());
    assert!(config.method_config("b.B", "M").is_none());
    assert!(ServiceConfig::from_json("{}").unwrap().method_config("a.A", "M").is_none());
}

#[test]
fn broken_configs_name_the_json_path() {
    let retry = |body: &str| format!(r#"{{"methodConfig": [{{"name": [{{}}], "retryPolicy": {{{body}}}}}]}}"#);
    let ok = r#""maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]"#;
    assert!(ServiceConfig::from_json(&retry(ok)).is_ok());
    let cases: Vec<(String, &str)> = vec![
        (retry(&ok.replace("\"maxAttempts\": 3", "\"maxAttempts\": 1")), "$.methodConfig[0].retryPolicy.maxAttempts: must be greater than 1"),
        (retry(&ok.replace("\"maxAttempts\": 3, ", "")), "$.methodConfig[0].retryPolicy: `maxAttempts` is required"),
        (retry(&ok.replace("\"0.1s\"", "\"0.1\"")), "$.methodConfig[0].retryPolicy.initialBackoff: expected a duration such as \"1.5s\""),
        (retry(&ok.replace("\"0.1s\"", "\"0s\"")), "$.methodConfig[0].retryPolicy.initialBackoff: must be greater than zero"),
        (retry(&ok.replace("\"1s\"", "\"-1s\"")), "$.methodConfig[0].retryPolicy.maxBackoff: must not be negative"),
        (retry(&ok.replace("2,", "0,")), "$.methodConfig[0].retryPolicy.backoffMultiplier: must be greater than zero"),
        (retry(&ok.replace("[\"UNAVAILABLE\"]", "[]")), "$.methodConfig[0].retryPolicy.retryableStatusCodes: must list at least one"),
        (retry(&ok.replace("[\"UNAVAILABLE\"]", "[\"UNAVAILABLE\", \"NOPE\"]")), "$.methodConfig[0].retryPolicy.retryableStatusCodes[1]: expected a status code name"),
        (retry(&ok.replace("[\"UNAVAILABLE\"]", "[0]")), "$.methodConfig[0].retryPolicy.retryableStatusCodes[0]: OK is not a failure"),
        (retry(&format!("{ok}, \"maxAtempts\": 2")), "$.methodConfig[0].retryPolicy.maxAtempts: unknown field (this object has `maxAttempts`"),
        (
            r#"{"methodConfig": [{"name": [{}], "retryPolicy": {}, "hedgingPolicy": {"maxAttempts": 2}}]}"#.into(),
            "$.methodConfig[0].hedgingPolicy: a method has a retryPolicy or a hedgingPolicy, not both",
        ),
        (
            r#"{"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "t"}, {"service": "s"}]}]}"#.into(),
            "$.methodConfig[1].name[1]: every method of `s` is named by an earlier methodConfig entry too",
        ),
        (r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#.into(), "$.methodConfig[0].name[0]: method \"M\" without a service"),
        (r#"{"methodConfig": [{"name": [{}], "timeout": 5}]}"#.into(), "$.methodConfig[0].timeout: expected a duration such as \"1.5s\""),
        (r#"{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": -1}]}"#.into(), "$.methodConfig[0].maxRequestMessageBytes: expected a whole number"),
        (r#"{"methodConfig": {}}"#.into(), "$.methodConfig: expected an array, found an object"),
        (r#"{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 0.1}}"#.into(), "$.retryThrottling.maxTokens: must be from 1 to 1000, found 1001"),
        (r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0}}"#.into(), "$.retryThrottling.tokenRatio: must be greater than zero"),
        (r#"{"loadBalancingConfig": [{"round_robin": {}, "pick_first": {}}]}"#.into(), "$.loadBalancingConfig[0]: expected exactly one policy name, found 2"),
        (r#"{"loadBalancingPolicy": "random"}"#.into(), "$.loadBalancingPolicy: expected \"round_robin\" or \"pick_first\""),
        (r#"{"methodConfigs": []}"#.into(), "$.methodConfigs: unknown field"),
        (r#"[]"#.into(), "$: expected an object, found an array"),
        (r#"{"methodConfig": [}"#.into(), "$: not JSON: "),
        (
            r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"circuitBreaker": {"slidingWindowSize": 5, "minimumNumberOfCalls": 10, "waitDurationInOpenState": "1s"}}}]}"#.into(),
            "$.methodConfig[0].x-switchboard.circuitBreaker.minimumNumberOfCalls: is more than the window holds",
        ),
        (
            r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"circuitBreaker": {"slidingWindowSize": 5, "failureRateThreshold": 0, "waitDurationInOpenState": "1s"}}}]}"#.into(),
            "$.methodConfig[0].x-switchboard.circuitBreaker.failureRateThreshold: must be more than 0 and at most 100",
        ),
        (r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"rateLimit": {"perSecond": 0}}}]}"#.into(), "$.methodConfig[0].x-switchboard.rateLimit.perSecond: must be greater than zero"),
        (r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"concurrencyLimit": {"maxInFlight": 0}}}]}"#.into(), "$.methodConfig[0].x-switchboard.concurrencyLimit.maxInFlight: must be at least 1"),
        (r#"{"methodConfig": [{"name": [{}], "x-switchboard": {"retries": 3}}]}"#.into(), "$.methodConfig[0].x-switchboard.retries: unknown field"),
        (r#"{"x-switchboard": {"retryBudget": {"percent": 20, "ttl": "0.5s"}}}"#.into(), "$.x-switchboard.retryBudget.ttl: must be from 1s to 60s"),
    ];
    for (json, expected) in cases {
        let message = err(&json);
        assert!(message.starts_with(expected), "{json}\n  gave: {message}\n  expected it to start with: {expected}");
    }
}

#[test]
fn durations_are_proto_json_durations() {
    let timeout = |t: &str| {
        ServiceConfig::from_json(&format!(r#"{{"methodConfig": [{{"name": [{{}}], "timeout": "{t}"}}]}}"#)).map(|c| c.method_config("a", "b").unwrap().timeout.unwrap())
    };
    assert_eq!(timeout("1s").unwrap(), Duration::from_secs(1));
    assert_eq!(timeout("0.000000001s").unwrap(), Duration::from_nanos(1));
    assert_eq!(timeout("2.5s").unwrap(), Duration::from_millis(2500));
    assert_eq!(timeout("0s").unwrap(), Duration::ZERO);
    for bad in ["1", "1.s", ".5s", "1.0000000001s", "1ms", "s", "1e3s", "315576000001s"] {
        assert!(timeout(bad).is_err(), "{bad}");
    }
}

#[test]
fn files_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("switchboard-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"methodConfig": [{"name": [{}], "timeout": "3s"}]}"#).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"methodConfig": [{"name": [{}], "timeout": "3"}]}"#).unwrap();
    assert_eq!(ServiceConfig::from_file(&good).unwrap().method_config("a", "b").unwrap().timeout, Some(Duration::from_secs(3)));
    let e = ServiceConfig::from_file(&bad).unwrap_err();
    assert_eq!(e.file(), Some(bad.display().to_string().as_str()));
    assert_eq!(e.path(), "$.methodConfig[0].timeout");
    assert!(e.to_string().starts_with(&format!("{}: $.methodConfig[0].timeout: expected a duration", bad.display())), "{e}");
    let missing = ServiceConfig::from_file(dir.join("missing.json")).unwrap_err();
    assert!(missing.message().starts_with("cannot read it"), "{missing}");

    // The environment's two variables (given directly: tests run in parallel threads, and
    // changing the process environment under them is not safe).
    let vars = |text: Option<&str>, file: Option<&std::path::Path>| ServiceConfig::from_vars(text.map(str::to_owned), file.map(|f| f.as_os_str().to_owned()));
    assert_eq!(vars(None, None).unwrap(), None);
    assert_eq!(vars(Some("  "), None).unwrap(), None);
    assert!(vars(None, Some(&good)).unwrap().is_some());
    let inline = r#"{"methodConfig": [{"name": [{}], "timeout": "x"}]}"#;
    assert!(vars(Some(inline), Some(&good)).unwrap_err().message().contains("set one"));
    let e = vars(Some(inline), None).unwrap_err();
    assert_eq!((e.file(), e.path()), (Some(ENV_CONFIG), "$.methodConfig[0].timeout"));
    assert_eq!(vars(None, Some(&bad)).unwrap_err().path(), "$.methodConfig[0].timeout");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_most_specific_source_with_an_entry_wins() {
    let spec = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{}], "timeout": "5s"}, {"name": [{"service": "s", "method": "Fast"}], "timeout": "0.1s"}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    )
    .unwrap();
    let runtime = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "s"}], "timeout": "1s"}]}"#).unwrap();
    let policies = Policies::new().spec_default(spec).runtime(runtime);
    // The run-time config's service entry beats the spec's method entry: one config at a time.
    assert_eq!(policies.method_config("s", "Fast").unwrap().timeout, Some(Duration::from_secs(1)));
    assert_eq!(policies.method_config("t", "Any").unwrap().timeout, Some(Duration::from_secs(5)));
    assert_eq!(policies.retry_throttling().unwrap().max_tokens, 10);
    assert!(policies.retry_budget().is_none());
    assert!(Policies::new().method_config("s", "m").is_none());
}
