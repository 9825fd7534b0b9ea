//! Exponential backoff with jitter for retries (an agent reconnecting, a
//! module restarted): each delay doubles up to a cap and is drawn between
//! half and all of its step, so that a fleet cut off together does not
//! come back together.

use std::time::Duration;

/// Retry delays.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Delays from `first` doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            step: first,
        }
    }

    /// After a success: start from `first` again.
    pub fn reset(&mut self) {
        self.step = self.first;
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        step.mul_f64(0.5 + random_unit() / 2.0)
    }
}

/// A random number in 0..=1 (0.5 if the system has no randomness to give).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<f64> = (0..10).map(|_| b.next_delay().as_secs_f64()).collect();
        for (i, d) in delays.iter().enumerate() {
            let step = (1u64 << i).min(60) as f64;
            assert!(
                *d >= step / 2.0 && *d <= step,
                "delay {i}: {d} for step {step}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
