//! Locking a node id after repeated failed TOTP checks.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The lockout rule: `failures` within `window` lock for `base`, doubling
/// with each further lockout up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    /// Failures that trigger a lockout.
    pub failures: u32,
    /// The window they must fall in.
    pub window: Duration,
    /// The first lockout.
    pub base: Duration,
    /// The longest lockout.
    pub max: Duration,
}

/// One node id's failure history.
#[derive(Debug, Default)]
pub struct Lockout {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    lockouts: u32,
}

impl Lockout {
    /// How long the id stays locked, if it is.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Records a failure; returns the lockout it started, if any.
    pub fn fail(&mut self, policy: &LockoutPolicy, now: Instant) -> Option<Duration> {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() < policy.failures as usize {
            return None;
        }
        self.failures.clear();
        let factor = 1u32.checked_shl(self.lockouts).unwrap_or(u32::MAX);
        let period = policy.base.saturating_mul(factor).min(policy.max);
        self.lockouts = self.lockouts.saturating_add(1);
        self.locked_until = Some(now + period);
        Some(period)
    }

    /// Forgets failures after a successful check; the growth is kept for a
    /// day so that a slow attacker still meets longer lockouts.
    pub fn succeed(&mut self) {
        self.failures.clear();
        self.locked_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            failures: 5,
            window: Duration::from_secs(300),
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn five_failures_lock_and_the_period_grows() {
        let p = policy();
        let mut l = Lockout::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(l.fail(&p, t0), None);
        }
        assert_eq!(l.fail(&p, t0), Some(Duration::from_secs(60)));
        assert!(l.remaining(t0).is_some());
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(l.remaining(t1), None);
        for _ in 0..4 {
            l.fail(&p, t1);
        }
        assert_eq!(l.fail(&p, t1), Some(Duration::from_secs(120)));
        let mut t = t1;
        for _ in 0..10 {
            t += Duration::from_secs(4000);
            for _ in 0..4 {
                l.fail(&p, t);
            }
            assert!(l.fail(&p, t).unwrap() <= Duration::from_secs(3600));
        }
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let p = policy();
        let mut l = Lockout::default();
        let t0 = Instant::now();
        for i in 0..20u64 {
            assert_eq!(l.fail(&p, t0 + Duration::from_secs(i * 100)), None);
        }
    }
}
