//! TOTP codes for registration, with the parameters of
//! [`honeybee_proto::totp`] (RFC 6238: SHA-1, 6 digits, 30 s steps).
//! The core refuses a step it has already accepted for this node, so the
//! agent never presents the same step twice, even across restarts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use honeybee_proto::totp::{DIGITS, SKEW_STEPS, STEP_SECONDS};
use totp_rs::{Algorithm, Secret, TOTP};

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

/// A wait for a fresh step, spread over the first `STEP_SECONDS` after it
/// starts by `unit` (uniform in 0..1): a fleet refused together (one NAT
/// address over the core's rate limit) must not come back together at the
/// step boundary. The step stays valid: the core takes `last_used + 1`
/// until two steps after the boundary, so a spread wait plus a 10 s connect
/// still arrives in time.
pub fn spread(wait: Duration, unit: f64) -> Duration {
    if wait.is_zero() {
        return wait;
    }
    wait + Duration::from_secs(STEP_SECONDS).mul_f64(unit.clamp(0.0, 0.99))
}

/// Whether `step`, chosen before connecting, is still one the core takes at
/// `unix_secs` (it accepts one step either side of its own).
pub fn still_accepted(step: u64, unix_secs: u64) -> bool {
    let now = unix_secs / STEP_SECONDS;
    step + SKEW_STEPS >= now && step <= now + SKEW_STEPS
}

/// The step a registration sends at `unix_secs`: the `planned` one while
/// the core still takes it, else the one due now after `last_used` (time
/// only moved on since the plan). `None` when that would mean waiting: the
/// clock went back.
pub fn step_to_send(planned: u64, last_used: u64, unix_secs: u64) -> Option<u64> {
    if still_accepted(planned, unix_secs) {
        return Some(planned);
    }
    match next_step(last_used, unix_secs) {
        (fresh, wait) if wait.is_zero() => Some(fresh),
        _ => None,
    }
}

/// The code for `step` with the base32 `key`.
pub fn code(key_base32: &str, step: u64) -> Result<String, String> {
    let secret = Secret::Encoded(key_base32.to_owned())
        .to_bytes()
        .map_err(|_| "the stored TOTP key is not base32".to_string())?;
    Ok(
        TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, STEP_SECONDS, secret)
            .generate(step * STEP_SECONDS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_wait_still_lands_on_an_accepted_step() {
        assert_eq!(spread(Duration::ZERO, 0.7), Duration::ZERO);
        for start in [3000u64, 3014, 3029] {
            let (step, wait) = next_step(start / STEP_SECONDS + 1, start);
            for unit in [0.0, 0.5, 0.99, 1.0] {
                let w = spread(wait, unit);
                assert!(w >= wait && w < wait + Duration::from_secs(STEP_SECONDS));
                for connect in [0, 10] {
                    let sent = start + w.as_secs() + connect;
                    assert!(
                        still_accepted(step, sent),
                        "start {start} unit {unit} connect {connect}"
                    );
                }
            }
        }
    }

    #[test]
    fn steps_are_never_reused() {
        assert_eq!(next_step(0, 3000), (100, Duration::ZERO));
        assert_eq!(next_step(100, 3010), (101, Duration::ZERO));
        assert_eq!(next_step(101, 3010), (102, Duration::from_secs(20)));
    }

    /// Reconnects in a row, each `gap` seconds after the last one was
    /// sent: every attempt presents a new step, one step per attempt, and
    /// whatever it had to wait for it waited before connecting: at the time
    /// it sends, after a connect of up to 10 s, the core still takes it.
    #[test]
    fn reconnects_in_a_row_spend_one_step_each_and_wait_only_before_connecting() {
        for start in [3000u64, 3014, 3028, 3029] {
            for gap in [0u64, 1, 5] {
                let mut t = start;
                let mut last = 0;
                for attempt in 0..8 {
                    let (step, wait) = next_step(last, t);
                    assert!(step > last, "attempt {attempt}: a step used twice");
                    assert!(wait <= Duration::from_secs(30));
                    t += wait.as_secs();
                    // The step does not change while it connects.
                    for connect in [0, 1, 10] {
                        assert!(
                            still_accepted(step, t + connect),
                            "start {start} gap {gap} attempt {attempt}: step {step} refused at {}",
                            t + connect
                        );
                    }
                    assert_eq!(next_step(last, t).1, Duration::ZERO, "no second wait");
                    last = step;
                    t += gap;
                }
            }
        }
    }

    #[test]
    fn a_plan_made_before_a_long_connect_may_be_stale() {
        assert!(still_accepted(100, 3000));
        assert!(still_accepted(101, 3000));
        assert!(still_accepted(100, 3059));
        assert!(!still_accepted(100, 3060));
        assert!(!still_accepted(102, 3000));
    }

    #[test]
    fn a_stale_plan_sends_the_step_due_now_never_an_old_one() {
        // Planned step 100 (3000..3029 s), last used 99.
        assert_eq!(step_to_send(100, 99, 3010), Some(100));
        // Still taken one step later.
        assert_eq!(step_to_send(100, 99, 3059), Some(100));
        // A connect that took past that: the step due now instead.
        assert_eq!(step_to_send(100, 99, 3060), Some(102));
        assert_eq!(step_to_send(100, 99, 9000), Some(300));
        // The clock went back below the plan and the steps used: no step
        // can be sent without waiting, so none is.
        assert_eq!(step_to_send(100, 105, 1000), None);
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → 287082.
        let key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
        assert_eq!(code(key, 1).unwrap(), "287082");
        assert!(code("not base32 !", 1).is_err());
    }
}
