//! One thread per channel takes the oldest alert of its outbox and sends
//! it; a failure is retried with backoff (1 s doubling to 60 s), and after
//! [`ATTEMPTS`] tries the alert is given up and counted as failed. A slow
//! or dead receiver holds back only its own channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channels::Channel;
use crate::outbox::Outbox;
use crate::stats::{Outcome, Stats};

/// Tries per alert before it is given up.
pub const ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A channel's outbox, shared by the engine (which adds) and the worker
/// (which sends and removes).
#[derive(Clone)]
pub struct Queue(Arc<(Mutex<Outbox>, Condvar)>);

impl Queue {
    /// Wraps an outbox.
    pub fn new(o: Outbox) -> Queue {
        Queue(Arc::new((Mutex::new(o), Condvar::new())))
    }

    /// Locks the outbox.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the worker.
    pub fn notify(&self) {
        self.0 .1.notify_all();
    }

    /// Waits until an alert is queued, `stop` is set or `max` passes.
    fn wait(&self, stop: &AtomicBool, max: Duration) {
        let guard = self.lock();
        if guard.is_empty() && !stop.load(Ordering::Relaxed) {
            let _ = self.0 .1.wait_timeout(guard, max);
        }
    }
}

/// Starts channel `index`'s worker.
pub fn spawn(
    index: usize,
    name: String,
    mut channel: Box<dyn Channel>,
    queue: Queue,
    stats: Stats,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("channel-{name}"))
        .spawn(move || {
            let mut attempts = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let next = queue.lock().front();
                let Some((number, alert)) = next else {
                    stats.with(index, |s| s.queued = 0);
                    queue.wait(&stop, Duration::from_secs(1));
                    continue;
                };
                let made = crate::compose::parse_ms(&alert.time);
                let result = channel.send(&alert);
                let outcome = |kind, error: Option<String>| Outcome {
                    id: alert.id.clone(),
                    time: crate::compose::time(crate::compose::now_ms()),
                    rule: alert.rule.clone(),
                    severity: alert.severity.name().into(),
                    channel: name.clone(),
                    outcome: kind,
                    title: alert.title.clone(),
                    error,
                };
                match result {
                    Ok(()) => {
                        attempts = 0;
                        let queued = {
                            let mut q = queue.lock();
                            q.remove(number);
                            q.len() as u64
                        };
                        let latency = made.map_or(0, |m| crate::compose::now_ms().saturating_sub(m));
                        stats.with(index, |s| {
                            s.delivered(latency);
                            s.queued = queued;
                            s.outcome(outcome("sent", None));
                        });
                    }
                    Err(e) => {
                        attempts += 1;
                        log::warn!("channel {name}: alert {} not delivered (try {attempts} of {ATTEMPTS}): {e}", alert.id);
                        if attempts >= ATTEMPTS {
                            attempts = 0;
                            queue.lock().remove(number);
                            stats.with(index, |s| {
                                s.failed += 1;
                                s.last_error = Some(e.clone());
                                s.outcome(outcome("failed", Some(e)));
                            });
                            continue;
                        }
                        stats.with(index, |s| {
                            s.retries += 1;
                            s.last_error = Some(e);
                        });
                        sleep(backoff(attempts), &stop);
                    }
                }
            }
        })
}

/// The wait after the `attempts`-th failure in a row.
pub fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(10))
        .min(MAX_BACKOFF)
}

fn sleep(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        std::thread::sleep(
            Duration::from_millis(100).min(end.saturating_duration_since(Instant::now())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(60));
    }
}
