//! The broker suites' one rule for a missing broker.
//!
//! The RabbitMQ and NATS tests read their broker's URL from the environment
//! (`SWITCHBOARD_AMQP_URL`, `SWITCHBOARD_NATS_URL`, as printed by `scripts/brokers.sh start`).
//! On a developer's bare machine a missing URL skips the test, with the reason on stderr. Under
//! `CI=true` a missing URL fails the test: a green CI run must not carry zero broker coverage.

/// The RabbitMQ URL variable.
pub const AMQP_URL: &str = "SWITCHBOARD_AMQP_URL";
/// The NATS URL variable.
pub const NATS_URL: &str = "SWITCHBOARD_NATS_URL";
/// The broker control script variable (`$SWITCHBOARD_BROKER_CTL restart amqp|nats`), used by the
/// fault tests that restart a broker.
pub const BROKER_CTL: &str = "SWITCHBOARD_BROKER_CTL";

/// How to get the brokers, for the messages.
const HINT: &str = "start the brokers: eval \"$(bash scripts/brokers.sh start)\"";

/// What a test does about its environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The variable is set: run with this value.
    Run(String),
    /// Not set, not in CI: skip, for this reason.
    Skip(String),
    /// Not set in CI: fail, for this reason.
    Fail(String),
}

/// The rule, without reading the environment: `value` is the variable's value, `ci` the value
/// of `CI`. An empty value counts as unset.
pub fn decide(var: &str, value: Option<&str>, ci: Option<&str>) -> Decision {
    match value {
        Some(v) if !v.trim().is_empty() => Decision::Run(v.to_owned()),
        _ if crate::ci::is_ci_value(ci) => Decision::Fail(format!(
            "{var} is not set and CI=true: the broker tests must run in CI, not skip ({HINT}; .ci/run does it)"
        )),
        _ => Decision::Skip(format!("{var} is not set ({HINT}); under CI=true this test fails instead")),
    }
}

/// The value of `var`, or `None` after printing why the test skips (bare machine; on stderr,
/// visible without `--nocapture`), or a panic (under `CI=true`).
///
/// ```no_run
/// let Some(url) = switchboard_test_support::broker::env_or_skip(switchboard_test_support::broker::AMQP_URL) else { return };
/// # let _ = url;
/// ```
pub fn env_or_skip(var: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    let ci = std::env::var("CI").ok();
    match decide(var, value.as_deref(), ci.as_deref()) {
        Decision::Run(v) => Some(v),
        Decision::Skip(reason) => {
            crate::ci::print_skip(reason);
            None
        }
        Decision::Fail(reason) => panic!("{reason}"),
    }
}

/// `SWITCHBOARD_AMQP_URL` by [`env_or_skip`]'s rule.
pub fn amqp_url() -> Option<String> {
    env_or_skip(AMQP_URL)
}

/// `SWITCHBOARD_NATS_URL` by [`env_or_skip`]'s rule.
pub fn nats_url() -> Option<String> {
    env_or_skip(NATS_URL)
}

/// `SWITCHBOARD_BROKER_CTL` by [`env_or_skip`]'s rule (`scripts/brokers.sh start` exports it).
pub fn broker_ctl() -> Option<String> {
    env_or_skip(BROKER_CTL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_url_runs_in_and_out_of_ci() {
        assert_eq!(decide(AMQP_URL, Some("amqp://h/%2f"), None), Decision::Run("amqp://h/%2f".into()));
        assert_eq!(decide(AMQP_URL, Some("amqp://h/%2f"), Some("true")), Decision::Run("amqp://h/%2f".into()));
    }

    #[test]
    fn a_missing_url_skips_on_a_bare_machine_and_says_why() {
        for ci in [None, Some(""), Some("false"), Some("0")] {
            let Decision::Skip(reason) = decide(NATS_URL, None, ci) else { panic!("not a skip for CI={ci:?}") };
            assert!(reason.contains(NATS_URL) && reason.contains("brokers.sh"), "{reason}");
        }
        assert!(matches!(decide(NATS_URL, Some("  "), None), Decision::Skip(_)), "blank is unset");
    }

    #[test]
    fn a_missing_url_fails_under_ci() {
        for ci in ["true", "TRUE", "1", "yes"] {
            let Decision::Fail(reason) = decide(AMQP_URL, None, Some(ci)) else { panic!("not a failure for CI={ci}") };
            assert!(reason.contains(AMQP_URL) && reason.contains("CI=true"), "{reason}");
        }
        assert!(matches!(decide(AMQP_URL, Some(""), Some("true")), Decision::Fail(_)));
    }
}

/// [`env_or_skip`] for a suite that also needs a cargo feature of the runtime for that broker:
/// the URL, or `None` (printed) when the variable is unset or the build lacks `feature`
/// (`feature_on` is the caller's `cfg!(feature = "...")`); under `CI=true` either is a failure.
pub fn url_for_feature(var: &str, feature_on: bool, feature: &str) -> Option<String> {
    let url = env_or_skip(var)?;
    if !feature_on {
        let why = format!("this build lacks the `{feature}` feature (cargo test -p switchboard --features {feature})");
        assert!(!crate::ci::is_ci(), "CI=true, but the {feature} cases cannot run: {why}");
        eprintln!("skipped: {why}");
        return None;
    }
    Some(url)
}
