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
        self.next_delay_with(random_unit())
    }

    /// The next delay for the random draw `unit` (0..=1): half the step at
    /// 0, all of it at 1. Split out so that tests can choose the draw.
    pub fn next_delay_with(&mut self, unit: f64) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        step.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
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

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    fn reconnect() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = reconnect();
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

    #[test]
    fn the_longest_draws_are_the_steps_doubling_to_the_cap() {
        let mut b = reconnect();
        let delays: Vec<f64> = (0..9).map(|_| secs(b.next_delay_with(1.0))).collect();
        assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]);
    }

    #[test]
    fn the_shortest_draws_are_half_the_steps() {
        let mut b = reconnect();
        let delays: Vec<f64> = (0..8).map(|_| secs(b.next_delay_with(0.0))).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
    }

    #[test]
    fn the_draw_places_the_delay_linearly_between_half_and_all() {
        let mut b = reconnect();
        for _ in 0..3 {
            b.next_delay_with(0.0);
        }
        // The fourth step is 8 s: a quarter of the way is 5 s.
        assert_eq!(secs(b.next_delay_with(0.25)), 5.0);
        // Out-of-range draws stay within the step: all of the 16 s one,
        // half of the 32 s one.
        assert_eq!(secs(b.next_delay_with(7.0)), 16.0);
        assert_eq!(secs(b.next_delay_with(-1.0)), 16.0);
    }

    #[test]
    fn a_reset_starts_again_from_the_first_step() {
        let mut b = reconnect();
        for _ in 0..20 {
            b.next_delay_with(1.0);
        }
        assert_eq!(secs(b.next_delay_with(1.0)), 60.0);
        b.reset();
        let delays: Vec<f64> = (0..3).map(|_| secs(b.next_delay_with(1.0))).collect();
        assert_eq!(delays, [1.0, 2.0, 4.0]);
    }
}
