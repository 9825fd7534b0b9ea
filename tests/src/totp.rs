//! RFC 6238 codes as the core checks them: SHA-1, 6 digits, 30 s steps.
//!
//! Tests pick a step offset (`-1`, `0`, `+1`, `+2` …) instead of waiting for
//! the clock, and call [`wait_for_step_margin`] first so that the step does
//! not change between computing a code and the core checking it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
pub const STEP: u64 = 30;

fn now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs_f64()
}

/// The current time step.
pub fn current_step() -> u64 {
    now_secs_f64() as u64 / STEP
}

fn totp(key_base32: &str) -> TOTP {
    let secret = Secret::Encoded(key_base32.to_owned())
        .to_bytes()
        .unwrap_or_else(|e| panic!("TOTP key {key_base32:?} is not base32: {e:?}"));
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP, secret)
}

/// The code for time step `step`.
pub fn code_at_step(key_base32: &str, step: u64) -> String {
    totp(key_base32).generate(step * STEP)
}

/// The code for the current step plus `offset`.
pub fn code(key_base32: &str, offset: i64) -> String {
    let step = current_step() as i64 + offset;
    code_at_step(key_base32, step as u64)
}

/// A 6-digit code that matches none of the steps `-3..=3` around now.
pub fn wrong_code(key_base32: &str) -> String {
    let near: Vec<String> = (-3..=3).map(|o| code(key_base32, o)).collect();
    (0..1000)
        .map(|i| format!("{:06}", (i * 7919 + 123_456) % 1_000_000))
        .find(|c| !near.contains(c))
        .expect("some 6-digit code differs from seven codes")
}

/// Sleeps, if needed, so that at least `margin` remains in the current step.
pub fn wait_for_step_margin(margin: Duration) {
    let now = now_secs_f64();
    let into = now % STEP as f64;
    let left = STEP as f64 - into;
    if left < margin.as_secs_f64() {
        std::thread::sleep(Duration::from_secs_f64(left + 0.05));
    }
}

/// Whether `key` looks like what the core issues: 32 base32 characters
/// (RFC 4648 alphabet, no padding) that decode to 160 bits.
pub fn is_valid_key(key: &str) -> bool {
    key.len() == 32
        && key.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
        && Secret::Encoded(key.to_owned())
            .to_bytes()
            .is_ok_and(|b| b.len() == 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 → 94287082 (8 digits).
        let key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert!(is_valid_key(key));
        assert_eq!(code_at_step(key, 59 / STEP), "287082");
    }
}
