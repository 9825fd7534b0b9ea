//! TOTP codes for registration (RFC 6238: SHA-1, 6 digits, 30 s steps).
//! The core refuses a step it has already accepted for this node, so the
//! agent never presents the same step twice, even across restarts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, Secret, TOTP};

const STEP_SECONDS: u64 = 30;

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The step to use after `last_used` at `unix_secs`, and how long to wait
/// first. The core accepts one step ahead, so a reconnect within the same
/// step uses the next one; only a third try within a step has to wait.
pub fn next_step(last_used: u64, unix_secs: u64) -> (u64, Duration) {
    let now = unix_secs / STEP_SECONDS;
    if last_used < now {
        (now, Duration::ZERO)
    } else if last_used == now {
        (now + 1, Duration::ZERO)
    } else {
        // Wait until `last_used` is the current step, then use the one after.
        let wait = (last_used * STEP_SECONDS).saturating_sub(unix_secs);
        (last_used + 1, Duration::from_secs(wait))
    }
}

/// The code for `step` with the base32 `key`.
pub fn code(key_base32: &str, step: u64) -> Result<String, String> {
    let secret = Secret::Encoded(key_base32.to_owned())
        .to_bytes()
        .map_err(|_| "the stored TOTP key is not base32".to_string())?;
    Ok(
        TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret)
            .generate(step * STEP_SECONDS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_never_reused() {
        assert_eq!(next_step(0, 3000), (100, Duration::ZERO));
        assert_eq!(next_step(100, 3010), (101, Duration::ZERO));
        assert_eq!(next_step(101, 3010), (102, Duration::from_secs(20)));
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → 287082.
        let key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
        assert_eq!(code(key, 1).unwrap(), "287082");
        assert!(code("not base32 !", 1).is_err());
    }
}
