//! Spec-default policies (tests/fixtures/policy) reach the generated descriptors: a `.proto`
//! directory's `echo_grpc_service_config.json`, and an OpenAPI document's `x-switchboard-policy`
//! at its root, a path and an operation; `Policies::for_service` reads them under the run-time
//! config from the environment, which overrides them. One test: it sets the environment.

use std::time::Duration;

use golden::policy::echo::v1::{ECHO_DESCRIPTOR, QUIET_DESCRIPTOR};
use golden::policy::orders::ORDERS_DESCRIPTOR;
use switchboard::policy::{Policies, ENV_CONFIG};
use switchboard::Idempotency;

fn timeout(policies: &Policies, service: &str, method: &str) -> Option<Duration> {
    policies.method_config(service, method).and_then(|m| m.timeout)
}

#[test]
fn spec_defaults_reach_the_descriptors_and_the_environment_overrides_them() {
    // This binary's only test: no other thread reads the environment.
    std::env::remove_var(ENV_CONFIG);

    // proto: the file beside echo.proto names `echo.v1.Echo` (the service, and `Say` on its own).
    let echo = Policies::for_service(&ECHO_DESCRIPTOR).unwrap();
    assert_eq!(timeout(&echo, "echo.v1.Echo", "Say"), Some(Duration::from_secs(2)));
    assert_eq!(echo.method_config("echo.v1.Echo", "Say").unwrap().retry.as_ref().unwrap().max_attempts, 4);
    assert_eq!(timeout(&echo, "echo.v1.Echo", "Shout"), Some(Duration::from_secs(5)));
    assert_eq!(echo.retry_throttling().unwrap().max_tokens, 10);
    // A service of the same directory the file does not name gets none.
    assert_eq!(QUIET_DESCRIPTOR.policy, None);

    // OpenAPI: the operation's entry, then the path's, then the root's, each whole.
    let orders = Policies::for_service(&ORDERS_DESCRIPTOR).unwrap();
    let method = |name: &str| ORDERS_DESCRIPTOR.methods.iter().find(|m| m.name == name).unwrap();
    assert_eq!(timeout(&orders, "orders.Orders", "CreateOrder"), Some(Duration::from_secs(1)));
    assert_eq!(timeout(&orders, "orders.Orders", "ListOrders"), Some(Duration::from_secs(3)));
    assert!(orders.method_config("orders.Orders", "ListOrders").unwrap().retry.is_some());
    assert!(orders.method_config("orders.Orders", "CreateOrder").unwrap().retry.is_none());
    assert_eq!(timeout(&orders, "orders.Orders", "GetOrder"), Some(Duration::from_secs(10)));
    assert_eq!(orders.method_config("orders.Orders", "GetOrder").unwrap().concurrency_limit.as_ref().unwrap().max_in_flight, 16);
    assert_eq!(orders.retry_throttling().unwrap().max_tokens, 20);
    assert_eq!(orders.retry_budget().unwrap().min_retries_per_second, 5);
    // Every method is covered under its wire name.
    for m in ORDERS_DESCRIPTOR.methods {
        assert!(orders.method_config("orders.Orders", m.name).is_some(), "{}", m.name);
    }
    // Idempotency: HTTP's, unless `x-switchboard-idempotent` says otherwise.
    assert_eq!(method("ListOrders").idempotency, Idempotency::NoSideEffects);
    assert_eq!(method("CreateOrder").idempotency, Idempotency::Idempotent);
    assert_eq!(method("ReplaceOrder").idempotency, Idempotency::Unknown);

    // The run-time config comes first, entry by entry.
    std::env::set_var(ENV_CONFIG, r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo", "method": "Say"}], "timeout": "30s"}]}"#);
    let echo = Policies::for_service(&ECHO_DESCRIPTOR);
    let broken = {
        std::env::set_var(ENV_CONFIG, r#"{"methodConfig": [{"name": [{}], "timeout": "soon"}]}"#);
        Policies::for_service(&ECHO_DESCRIPTOR)
    };
    std::env::remove_var(ENV_CONFIG);
    let echo = echo.unwrap();
    assert_eq!(timeout(&echo, "echo.v1.Echo", "Say"), Some(Duration::from_secs(30)));
    assert_eq!(timeout(&echo, "echo.v1.Echo", "Shout"), Some(Duration::from_secs(5)));
    let err = broken.unwrap_err();
    assert_eq!((err.file(), err.path()), (Some(ENV_CONFIG), "$.methodConfig[0].timeout"));
}
