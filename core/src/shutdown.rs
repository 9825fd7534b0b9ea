//! Signal handling: SIGTERM, SIGINT and SIGHUP are blocked in every thread
//! and taken synchronously by one waiting thread, so no async-signal-safety
//! rules apply to what happens next.

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread
/// it starts afterwards. Call first thing in `main`.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set.thread_block()?;
    Ok(set)
}

/// Starts a thread that calls `on_hangup` for every SIGHUP, `on_signal` for
/// the first SIGTERM or SIGINT, and exits the process at once on a second.
pub fn on_signal(
    set: SigSet,
    on_hangup: impl Fn() + Send + 'static,
    on_signal: impl FnOnce(Signal) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut on_signal = Some(on_signal);
            while let Ok(sig) = set.wait() {
                if sig == Signal::SIGHUP {
                    on_hangup();
                    continue;
                }
                match on_signal.take() {
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

/// Ends the process if a shutdown takes longer than its limit; disarmed when
/// dropped. Only the binary arms one: a library never exits its host.
#[derive(Debug)]
pub struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    /// Exits the process with status 1 unless dropped within `limit`.
    pub fn arm(limit: std::time::Duration) -> std::io::Result<Watchdog> {
        let (disarm, armed) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("shutdown-watchdog".into())
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
