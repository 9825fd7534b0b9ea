//! When the uplink's writer sends a heartbeat and syncs the spool, decided
//! at times handed in, so that tests need no clock.

use std::time::{Duration, Instant};

/// How often the spool is synced to disk while connected.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The writer's timetable: a heartbeat at once and then every interval (read
/// at each beat, so an `UpdateConfig` applies from the next one), and a
/// spool sync every second.
#[derive(Debug)]
pub(super) struct Cadence {
    next_heartbeat: Instant,
    next_sync: Instant,
}

impl Cadence {
    /// A session that starts at `now`.
    pub(super) fn new(now: Instant) -> Cadence {
        Cadence {
            next_heartbeat: now,
            next_sync: now + SYNC_EVERY,
        }
    }

    /// Whether a heartbeat is due at `now`; if so the next is `every` later.
    pub(super) fn heartbeat_due(&mut self, now: Instant, every: Duration) -> bool {
        if now < self.next_heartbeat {
            return false;
        }
        self.next_heartbeat = now + every;
        true
    }

    /// Whether the spool is due a sync at `now`; if so the next is a second later.
    pub(super) fn sync_due(&mut self, now: Instant) -> bool {
        if now < self.next_sync {
            return false;
        }
        self.next_sync = now + SYNC_EVERY;
        true
    }

    /// When the writer must wake even if nothing is queued.
    pub(super) fn wake_at(&self) -> Instant {
        self.next_heartbeat.min(self.next_sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The seconds (from the start) at which heartbeats go out, the writer
    /// waking whenever the cadence says and `every` returning the interval.
    fn beats(until: u64, mut every: impl FnMut(u64) -> u64) -> Vec<u64> {
        let t0 = Instant::now();
        let mut c = Cadence::new(t0);
        let mut now = t0;
        let mut sent = Vec::new();
        while now <= t0 + secs(until) {
            let at = (now - t0).as_secs();
            if c.heartbeat_due(now, secs(every(at))) {
                sent.push(at);
            }
            c.sync_due(now);
            assert!(c.wake_at() > now, "the writer would spin at {at} s");
            now = c.wake_at();
        }
        sent
    }

    #[test]
    fn a_heartbeat_goes_out_at_once_then_every_interval() {
        assert_eq!(beats(100, |_| 30), [0, 30, 60, 90]);
    }

    #[test]
    fn a_new_interval_applies_from_the_next_heartbeat() {
        // UpdateConfig to 10 s arrives at 45 s: the beat planned for 60 s
        // stands, then every 10 s.
        let every = |at: u64| if at >= 45 { 10 } else { 30 };
        assert_eq!(beats(90, every), [0, 30, 60, 70, 80, 90]);
    }

    #[test]
    fn a_late_writer_sends_one_heartbeat_and_counts_the_interval_from_it() {
        // Busy sending a backlog, the writer looks again only at 45 s: one
        // heartbeat then, the next 30 s later, never a burst to catch up.
        let t0 = Instant::now();
        let mut c = Cadence::new(t0);
        assert!(c.heartbeat_due(t0, secs(30)));
        assert!(c.heartbeat_due(t0 + secs(45), secs(30)));
        assert!(!c.heartbeat_due(t0 + secs(60), secs(30)));
        assert!(!c.heartbeat_due(t0 + secs(74), secs(30)));
        assert!(c.heartbeat_due(t0 + secs(75), secs(30)));
    }

    #[test]
    fn the_writer_wakes_every_second_to_sync_and_not_before() {
        let t0 = Instant::now();
        let mut c = Cadence::new(t0);
        assert!(c.heartbeat_due(t0, secs(30)));
        assert!(!c.sync_due(t0), "nothing to sync yet");
        assert_eq!(c.wake_at(), t0 + secs(1));
        assert!(!c.sync_due(t0 + Duration::from_millis(999)));
        assert!(c.sync_due(t0 + secs(1)));
        assert!(!c.heartbeat_due(t0 + secs(29), secs(30)));
        assert_eq!(c.wake_at(), t0 + secs(2));
    }
}
