//! Stopping on a signal: SIGTERM and SIGINT (and SIGHUP where the program
//! reloads on it) are blocked in every thread and taken synchronously by
//! one waiting thread, so no async-signal-safety rules apply to what
//! happens next. A second SIGTERM or SIGINT exits at once, unless it comes
//! within [`SAME_REQUEST`] of the first.

use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGTERM and SIGINT, and SIGHUP when `hangup`, in the calling
/// thread and every thread it starts afterwards. Call first thing in
/// `main`. Children inherit the mask: clear it in each child before exec.
pub fn block(hangup: bool) -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    if hangup {
        set.add(Signal::SIGHUP);
    }
    set.thread_block()?;
    Ok(set)
}

/// A stop signal this soon after the first is the same request, not an
/// impatient second one: a child told by `PR_SET_PDEATHSIG` (the core's
/// modules) gets its signal once for each thread of its dying parent that
/// it is handed to, all within a few milliseconds, and must still stop
/// cleanly (save its state) rather than exit at once.
pub const SAME_REQUEST: Duration = Duration::from_secs(1);

/// Whether a stop signal `since_first` after the first one ends the
/// process at once.
fn exits_at_once(since_first: Duration) -> bool {
    since_first >= SAME_REQUEST
}

/// Starts the thread that calls `on_hangup` for every SIGHUP, `on_stop` for
/// the first SIGTERM or SIGINT, and exits the process (status 1) on a
/// second one at least [`SAME_REQUEST`] later.
pub fn on_signal(
    set: SigSet,
    on_hangup: impl Fn() + Send + 'static,
    on_stop: impl FnOnce(Signal) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut on_stop = Some(on_stop);
            let mut first = None;
            while let Ok(sig) = set.wait() {
                if sig == Signal::SIGHUP {
                    on_hangup();
                    continue;
                }
                match (on_stop.take(), first) {
                    (Some(f), _) => {
                        first = Some(std::time::Instant::now());
                        f(sig);
                    }
                    (None, Some(at)) if !exits_at_once(at.elapsed()) => {
                        log::debug!("{sig} again at once: the same request, already stopping");
                    }
                    (None, _) => {
                        log::warn!("second signal: exiting now");
                        std::process::exit(1);
                    }
                }
            }
        })
        .map(|_| ())
}

/// Ends the process if a shutdown takes longer than its limit; disarmed
/// when dropped. Only a program's `main` arms one: a library never exits
/// its host.
#[derive(Debug)]
pub struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    /// Exits the process with status 1 unless dropped within `limit`.
    pub fn arm(limit: Duration) -> std::io::Result<Watchdog> {
        let (disarm, armed) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("shutdown-watchdog".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                // A drop disconnects the channel: the shutdown finished.
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(limit) {
                    log::error!("shutdown took longer than {limit:?}; exiting");
                    std::process::exit(1);
                }
            })?;
        Ok(Watchdog { _disarm: disarm })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_later_second_signal_exits_at_once() {
        assert!(!exits_at_once(Duration::ZERO));
        assert!(!exits_at_once(Duration::from_millis(5)));
        assert!(exits_at_once(SAME_REQUEST));
        assert!(exits_at_once(Duration::from_secs(3)));
    }

    #[test]
    fn a_disarmed_watchdog_never_fires() {
        let w = Watchdog::arm(Duration::from_millis(50)).unwrap();
        drop(w);
        // Had it fired, this test process would have exited with status 1.
        std::thread::sleep(Duration::from_millis(200));
    }
}
