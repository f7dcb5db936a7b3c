//! The rule for a test whose outside requirement is missing (a broker, python3, grpcio): on a
//! bare machine it skips and says why; under `CI=true` it fails, so a green CI run has really
//! run it. [`crate::broker`] applies this rule to the broker URLs.

use std::fmt::Display;
use std::io::Write as _;

/// Whether `CI` holds a true value (`true`, `1`, `yes`; any case), as CI services set it.
pub fn is_ci_value(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// Whether this process runs under `CI=true`.
pub fn is_ci() -> bool {
    is_ci_value(std::env::var("CI").ok().as_deref())
}

/// Prints that the current test skips because `reason` (straight to the process's stderr, past
/// libtest's capture, so it shows in a plain `cargo test`), naming the test. The caller returns
/// after it.
pub fn print_skip(reason: impl Display) {
    let test = std::thread::current().name().map(|n| format!("{n}: ")).unwrap_or_default();
    let _ = writeln!(std::io::stderr(), "{test}skipped: {reason}");
}

/// A requirement of the current test is missing: skip (print why) on a bare machine, panic
/// under `CI=true`. The caller returns after it.
///
/// ```no_run
/// # let have_python = false;
/// if !have_python {
///     switchboard_test_support::ci::skip_or_fail("python3 not found");
///     return;
/// }
/// ```
pub fn skip_or_fail(reason: impl Display) {
    if is_ci() {
        panic!("{reason}, and CI=true: this test must run in CI (.ci/run installs what it needs)");
    }
    print_skip(format_args!("{reason} (under CI=true this test fails instead)"));
}
