//! Stopping on a signal: SIGTERM and SIGINT (and SIGHUP where the program
//! reloads on it) are blocked in every thread and taken synchronously by
//! one waiting thread, so no async-signal-safety rules apply to what
//! happens next. A second SIGTERM or SIGINT exits at once.

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

/// Starts the thread that calls `on_hangup` for every SIGHUP, `on_stop` for
/// the first SIGTERM or SIGINT, and exits the process (status 1) on a
/// second.
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
            while let Ok(sig) = set.wait() {
                if sig == Signal::SIGHUP {
                    on_hangup();
                    continue;
                }
                match on_stop.take() {
                    Some(f) => f(sig),
                    None => {
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
    fn a_disarmed_watchdog_never_fires() {
        let w = Watchdog::arm(Duration::from_millis(50)).unwrap();
        drop(w);
        // Had it fired, this test process would have exited with status 1.
        std::thread::sleep(Duration::from_millis(200));
    }
}
