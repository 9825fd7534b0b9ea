//! Locking a node id after repeated failed TOTP checks, per source
//! address: whoever knows a node's id can fail its checks, and must not lock
//! the real node out by doing so.
//!
//! A core alone counts failures here, in memory ([`SourceLockouts`]). Cores
//! sharing a database count them there, for the whole fleet
//! (`fleet::shared`): the database keeps the count and the window, and
//! [`LockoutPolicy::verdict`] decides from what it returns.

use std::collections::VecDeque;
use std::net::IpAddr;
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

impl LockoutPolicy {
    /// The lockout that follows `earlier` ones: `base`, doubled for each
    /// earlier lockout, at most `max`.
    pub fn period(&self, earlier: u32) -> Duration {
        let factor = 1u32.checked_shl(earlier).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A failure counted by the fleet's database: `failures` is the count
    /// in the current window, this one included, and `earlier` the lockouts
    /// the source already had. The lockout to impose on every core, when the
    /// count reached the limit.
    pub fn verdict(&self, failures: u32, earlier: u32) -> Option<Duration> {
        (failures >= self.failures).then(|| self.period(earlier))
    }
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
        let period = policy.period(self.lockouts);
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

impl Lockout {
    /// Neither locked nor holding a failure inside the window: safe to forget.
    fn idle(&self, policy: &LockoutPolicy, now: Instant) -> bool {
        self.remaining(now).is_none()
            && self
                .failures
                .back()
                .is_none_or(|t| now.duration_since(*t) > policy.window)
    }
}

/// Sources tracked per node id; failures from further sources share one
/// overflow lockout (an attacker with many addresses locks only that).
pub const MAX_SOURCES_PER_NODE: usize = 16;

/// One node id's lockouts, one per source address.
#[derive(Debug, Default)]
pub struct SourceLockouts {
    by_source: Vec<(IpAddr, Lockout)>,
    overflow: Lockout,
}

impl SourceLockouts {
    /// How long `source` stays locked out of this node id, if it is.
    pub fn remaining(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        match self.by_source.iter().find(|(ip, _)| *ip == source) {
            Some((_, l)) => l.remaining(now),
            None if self.by_source.len() >= MAX_SOURCES_PER_NODE => self.overflow.remaining(now),
            None => None,
        }
    }

    /// Records a failure from `source`; returns the lockout it started.
    pub fn fail(
        &mut self,
        source: IpAddr,
        policy: &LockoutPolicy,
        now: Instant,
    ) -> Option<Duration> {
        if let Some(i) = self.by_source.iter().position(|(ip, _)| *ip == source) {
            return self.by_source.get_mut(i)?.1.fail(policy, now);
        }
        if self.by_source.len() >= MAX_SOURCES_PER_NODE {
            self.by_source.retain(|(_, l)| !l.idle(policy, now));
        }
        if self.by_source.len() >= MAX_SOURCES_PER_NODE {
            return self.overflow.fail(policy, now);
        }
        let mut lockout = Lockout::default();
        let period = lockout.fail(policy, now);
        self.by_source.push((source, lockout));
        period
    }

    /// A successful check from `source`.
    pub fn succeed(&mut self, source: IpAddr) {
        if let Some((_, l)) = self.by_source.iter_mut().find(|(ip, _)| *ip == source) {
            l.succeed();
        }
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
    fn the_fleet_verdict_locks_at_the_limit_like_a_core_alone() {
        let p = policy();
        // Counted anywhere: below the limit nothing, at it the lockout a core
        // alone would impose after as many failures and earlier lockouts.
        for earlier in 0..8 {
            let mut alone = Lockout::default();
            let t = Instant::now();
            for _ in 0..earlier {
                for _ in 0..p.failures {
                    alone.fail(&p, t);
                }
            }
            for failures in 1..p.failures {
                assert_eq!(p.verdict(failures, earlier), None);
                assert_eq!(alone.fail(&p, t), None);
            }
            let period = alone.fail(&p, t);
            assert!(period.is_some());
            assert_eq!(p.verdict(p.failures, earlier), period, "after {earlier}");
        }
        // Failures counted past the limit (cores failing at the same moment)
        // still lock; growth stops at `max`, however many came before.
        assert_eq!(p.verdict(p.failures + 3, 0), Some(p.base));
        assert_eq!(p.verdict(p.failures, u32::MAX), Some(p.max));
        assert_eq!(p.period(1), Duration::from_secs(120));
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

    #[test]
    fn failures_from_one_source_do_not_lock_out_another() {
        let p = policy();
        let t0 = Instant::now();
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        let node: IpAddr = "198.51.100.4".parse().unwrap();
        let mut l = SourceLockouts::default();
        let mut locked = None;
        for _ in 0..p.failures {
            locked = l.fail(attacker, &p, t0);
        }
        assert!(locked.is_some(), "the attacker is locked out");
        assert!(l.remaining(attacker, t0).is_some());
        assert_eq!(l.remaining(node, t0), None, "the real node is not");
    }

    #[test]
    fn sources_past_the_bound_share_one_lockout() {
        let p = policy();
        let t0 = Instant::now();
        let mut l = SourceLockouts::default();
        for i in 0..MAX_SOURCES_PER_NODE as u8 {
            l.fail(IpAddr::from([10, 0, 0, i]), &p, t0);
        }
        assert_eq!(l.by_source.len(), MAX_SOURCES_PER_NODE);
        // Each new address is one failure of the shared overflow lockout.
        let mut period = None;
        for i in 0..p.failures as u8 {
            period = l.fail(IpAddr::from([10, 1, 0, i]), &p, t0);
        }
        assert!(period.is_some());
        assert!(l.remaining(IpAddr::from([10, 2, 0, 0]), t0).is_some());
        assert_eq!(l.by_source.len(), MAX_SOURCES_PER_NODE);
        // Once the window has passed, idle sources make room again.
        let later = t0 + p.window + Duration::from_secs(1);
        assert_eq!(l.fail(IpAddr::from([10, 3, 0, 0]), &p, later), None);
        assert_eq!(l.by_source.len(), 1);
    }
}
