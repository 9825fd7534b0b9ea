//! Stopping on a signal: SIGTERM and SIGINT (and SIGHUP where the program
//! reloads on it) are blocked in every thread and taken synchronously by
//! one waiting thread, so no async-signal-safety rules apply to what
//! happens next. A second SIGTERM or SIGINT exits at once, unless it comes
//! within [`SAME_REQUEST`] of the first.
//!
//! On Windows the same two calls take the console's Ctrl-C, Ctrl-Break and
//! close events instead (there is no SIGHUP; nothing reloads there): the
//! console handler only forwards the event to the waiting thread.

use std::time::Duration;

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

/// A stop signal after the first, which came at `first`: ignored as the same
/// request, or the end of the process (status 1).
fn again(sig: impl std::fmt::Display, first: std::time::Instant) {
    if exits_at_once(first.elapsed()) {
        log::warn!("second {sig}: exiting now");
        std::process::exit(1);
    }
    log::debug!("{sig} again at once: the same request, already stopping");
}

#[cfg(unix)]
pub use unix::{block, on_signal};
#[cfg(windows)]
pub use windows::{block, on_signal, SigSet, Signal};

#[cfg(unix)]
mod unix {
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

    /// Starts the thread that calls `on_hangup` for every SIGHUP, `on_stop`
    /// for the first SIGTERM or SIGINT, and exits the process (status 1) on
    /// a second one at least [`super::SAME_REQUEST`] later.
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
                let mut first = std::time::Instant::now();
                while let Ok(sig) = set.wait() {
                    if sig == Signal::SIGHUP {
                        on_hangup();
                        continue;
                    }
                    match on_stop.take() {
                        Some(f) => {
                            first = std::time::Instant::now();
                            f(sig);
                        }
                        None => super::again(sig, first),
                    }
                }
            })
            .map(|_| ())
    }
}

#[cfg(windows)]
mod windows {
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use windows_sys::core::BOOL;
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT,
        CTRL_SHUTDOWN_EVENT,
    };

    /// A console event that asks the program to stop.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Signal {
        /// Ctrl-C, or `GenerateConsoleCtrlEvent(CTRL_C_EVENT)`.
        CtrlC,
        /// Ctrl-Break, what `taskkill`-style tools send a console group.
        CtrlBreak,
        /// The console window is closing.
        Close,
        /// The user logs off.
        Logoff,
        /// The machine shuts down.
        Shutdown,
    }

    impl std::fmt::Display for Signal {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(match self {
                Signal::CtrlC => "Ctrl-C",
                Signal::CtrlBreak => "Ctrl-Break",
                Signal::Close => "console close",
                Signal::Logoff => "logoff",
                Signal::Shutdown => "shutdown",
            })
        }
    }

    /// The console events taken since [`block`], waiting for [`on_signal`].
    #[derive(Debug)]
    pub struct SigSet {
        events: Receiver<Signal>,
    }

    static FORWARD: OnceLock<Mutex<Sender<Signal>>> = OnceLock::new();

    /// Runs on a thread the system starts for each console event.
    unsafe extern "system" fn handler(event: u32) -> BOOL {
        let sig = match event {
            CTRL_C_EVENT => Signal::CtrlC,
            CTRL_BREAK_EVENT => Signal::CtrlBreak,
            CTRL_CLOSE_EVENT => Signal::Close,
            CTRL_LOGOFF_EVENT => Signal::Logoff,
            CTRL_SHUTDOWN_EVENT => Signal::Shutdown,
            _ => return 0,
        };
        if let Some(tx) = FORWARD.get() {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(sig);
            }
        }
        if matches!(sig, Signal::Close | Signal::Logoff | Signal::Shutdown) {
            // The system ends the process as soon as this returns (or after
            // its own grace period): holding on gives the program time to
            // say goodbye and exit by itself first.
            std::thread::sleep(Duration::from_secs(10));
        }
        1
    }

    /// Takes the console's stop events from now on, for [`on_signal`]; `_hangup`
    /// has no Windows counterpart. Call first thing in `main`.
    pub fn block(_hangup: bool) -> std::io::Result<SigSet> {
        let (tx, events) = channel();
        if FORWARD.set(Mutex::new(tx)).is_err() {
            return Err(std::io::Error::other("console events are already taken"));
        }
        // SAFETY: `handler` is a plain function that lives as long as the
        // process and only touches the channel above.
        if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SigSet { events })
    }

    /// Starts the thread that calls `on_stop` for the first stop event and
    /// exits the process (status 1) on a second one at least
    /// [`super::SAME_REQUEST`] later. `_on_hangup` is never
    /// called: Windows has no SIGHUP.
    pub fn on_signal(
        set: SigSet,
        _on_hangup: impl Fn() + Send + 'static,
        on_stop: impl FnOnce(Signal) + Send + 'static,
    ) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("signals".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut on_stop = Some(on_stop);
                let mut first = std::time::Instant::now();
                while let Ok(sig) = set.events.recv() {
                    match on_stop.take() {
                        Some(f) => {
                            first = std::time::Instant::now();
                            f(sig);
                        }
                        None => super::again(sig, first),
                    }
                }
            })
            .map(|_| ())
    }
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
