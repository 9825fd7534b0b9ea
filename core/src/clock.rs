//! Monotonic milliseconds for liveness, and wall time for records.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use honeybee_proto::time::format_rfc3339;

/// The time a decision is taken at, read once ([`Clock::now`]).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic, for lockout windows.
    pub instant: Instant,
    /// [`Clock::now_ms`], for liveness.
    pub ms: u64,
    /// Unix seconds, for TOTP steps.
    pub unix: u64,
}

/// Maps a monotonic clock (for timeouts) onto wall time (for humans).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    start_unix_ms: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            start: Instant::now(),
            start_unix_ms: unix.as_millis() as u64,
        }
    }

    /// Milliseconds since the clock started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The wall time of a `now_ms` reading, as RFC 3339.
    pub fn rfc3339(&self, ms: u64) -> String {
        let unix = self.start_unix_ms + ms;
        format_rfc3339((unix / 1000) as i64, ((unix % 1000) * 1_000_000) as u32)
    }

    /// One reading of every clock a decision needs. Deciders take it as an
    /// argument, so that tests can hand them any moment instead of waiting.
    pub fn now(&self) -> Now {
        Now {
            instant: Instant::now(),
            ms: self.now_ms(),
            unix: self.unix_secs(),
        }
    }

    /// Current unix seconds (for TOTP).
    pub fn unix_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }
}
