//! The peak of a memory figure while a load runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Calls a sampler (VmRSS in kB, say) every `period` on a thread of its own
/// until [`RssWatch::finish`]; keeps the highest value seen.
pub struct RssWatch {
    stop: Arc<AtomicBool>,
    max_kb: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssWatch {
    /// Starts sampling; `sample` returns `None` when it could not read.
    pub fn start(period: Duration, sample: impl Fn() -> Option<u64> + Send + 'static) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kb = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max_kb.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = sample() {
                    m.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(period);
            }
        });
        RssWatch {
            stop,
            max_kb,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the highest value seen.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max_kb.load(Ordering::Relaxed)
    }
}
