//! The TOTP parameters of registration (PROTOCOL.md §5): both ends must use
//! the same, so they are part of the protocol, not of either program.
//!
//! RFC 6238 with HMAC-SHA-1, six digits, 30-second steps; the core accepts
//! a code for one step either side of its own clock, and each step once.

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Steps either side of the core's own that it accepts (clock skew).
pub const SKEW_STEPS: u64 = 1;
/// Key length: 160 bits, as RFC 4226 recommends; 32 base32 characters.
pub const KEY_BYTES: usize = 20;

/// The step that `unix_secs` falls in.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECONDS
}
