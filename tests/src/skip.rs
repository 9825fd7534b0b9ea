//! The one convention for a test that needs what a machine may lack (root,
//! a tool, a built package, a slow download): outside CI it says `SKIPPED`
//! and why, and passes; under CI (`CI` set, as `.ci/run` runs) the same
//! lack fails the test, so nothing is ever skipped silently there.

/// Whether this run is CI's: `CI` set to anything but empty, `0` or
/// `false`, or `HONEYBEE_REQUIRE_DIST` set (the older name for the same).
pub fn in_ci() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    ci || std::env::var_os("HONEYBEE_REQUIRE_DIST").is_some()
}

/// Says that `test` cannot run here and why. Under CI it panics; otherwise
/// it prints `SKIPPED` and returns, and the caller returns too.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if in_ci() {
        panic!("{test} must run under CI but cannot: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Skips (see [`skip`]) when `HONEYBEE_SKIP_SLOW` is set: a developer's way
/// to leave out tests that take minutes. Returns whether to skip.
#[track_caller]
pub fn skip_slow(test: &str) -> bool {
    if std::env::var_os("HONEYBEE_SKIP_SLOW").is_none() {
        return false;
    }
    skip(test, "HONEYBEE_SKIP_SLOW is set");
    true
}

/// Skips (see [`skip`]) unless the test runs as root. Returns whether to
/// skip.
#[track_caller]
pub fn skip_unless_root(test: &str, why_root: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    skip(test, &format!("needs root: {why_root}"));
    true
}
