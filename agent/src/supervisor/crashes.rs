//! The crash policy: when a pot that died on its own is started again, and
//! when it is given up on. Time is an argument, so that tests need no pot
//! and no waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Crashes within [`CRASH_WINDOW`] that mark a pot Failed.
pub(super) const MAX_CRASHES: usize = 5;
/// The window crashes are counted in.
pub(super) const CRASH_WINDOW: Duration = Duration::from_secs(300);
/// A pot that ran this long before dying was healthy: its crash count restarts.
pub(super) const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What follows a crash.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AfterCrash {
    /// Start the pot again after this delay.
    RestartIn(Duration),
    /// [`MAX_CRASHES`] within [`CRASH_WINDOW`]: leave it Failed.
    GiveUp,
}

/// One pot's recent crashes.
#[derive(Debug, Default)]
pub(super) struct Crashes {
    at: VecDeque<Instant>,
}

impl Crashes {
    /// Forgets every crash (the operator deployed the pot again).
    pub(super) fn clear(&mut self) {
        self.at.clear();
    }

    /// A crash at `now` of a run that lasted `ran`.
    pub(super) fn record(&mut self, ran: Option<Duration>, now: Instant) -> AfterCrash {
        if ran.is_some_and(|r| r >= HEALTHY_RUN) {
            // A pot that ran a while and then died (an attacker's crafted
            // request, say) starts its crash count afresh: only pots that
            // keep dying soon after starting are given up on.
            self.at.clear();
        }
        self.at.push_back(now);
        while self
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.at.pop_front();
        }
        if self.at.len() >= MAX_CRASHES {
            return AfterCrash::GiveUp;
        }
        AfterCrash::RestartIn(Duration::from_secs(1 << (self.at.len() - 1).min(5)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Option<Duration> = Some(Duration::from_secs(2));

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn quick_crashes_wait_longer_each_time_then_give_up_at_the_fifth() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        let verdicts: Vec<AfterCrash> =
            (0..5).map(|i| c.record(SHORT, t0 + secs(i * 10))).collect();
        assert_eq!(
            verdicts,
            [
                AfterCrash::RestartIn(secs(1)),
                AfterCrash::RestartIn(secs(2)),
                AfterCrash::RestartIn(secs(4)),
                AfterCrash::RestartIn(secs(8)),
                AfterCrash::GiveUp,
            ]
        );
    }

    #[test]
    fn crashes_older_than_five_minutes_are_forgotten() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        for i in 0..4 {
            c.record(SHORT, t0 + secs(i));
        }
        // The first four fell out of the window: this is a first crash again.
        let later = t0 + secs(3) + CRASH_WINDOW + secs(1);
        assert_eq!(c.record(SHORT, later), AfterCrash::RestartIn(secs(1)));
        // Exactly at the edge of the window a crash still counts.
        let mut c = Crashes::default();
        for i in 0..4 {
            c.record(SHORT, t0 + secs(i));
        }
        assert_eq!(c.record(SHORT, t0 + CRASH_WINDOW), AfterCrash::GiveUp);
    }

    #[test]
    fn a_healthy_run_starts_the_count_afresh() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        for i in 0..4 {
            c.record(SHORT, t0 + secs(i));
        }
        let healthy = Some(HEALTHY_RUN);
        assert_eq!(
            c.record(healthy, t0 + secs(70)),
            AfterCrash::RestartIn(secs(1))
        );
        // A run just short of healthy does not.
        let mut c = Crashes::default();
        for i in 0..4 {
            c.record(SHORT, t0 + secs(i));
        }
        let almost = Some(HEALTHY_RUN - Duration::from_millis(1));
        assert_eq!(c.record(almost, t0 + secs(70)), AfterCrash::GiveUp);
    }

    #[test]
    fn a_cleared_history_starts_from_the_first_delay() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        for i in 0..4 {
            c.record(SHORT, t0 + secs(i));
        }
        c.clear();
        assert_eq!(
            c.record(SHORT, t0 + secs(5)),
            AfterCrash::RestartIn(secs(1))
        );
    }
}
