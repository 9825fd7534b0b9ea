//! SIGTERM/SIGINT handling: the signals are blocked in every thread and
//! taken synchronously by one waiting thread, so no async-signal-safety rules
//! apply to what happens next.

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGTERM and SIGINT in the calling thread and every thread it
/// starts afterwards. Call first thing in `main`.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()?;
    Ok(set)
}

/// Starts a thread that calls `on_signal` for the first signal, and exits
/// the process at once on a second one.
pub fn on_signal(
    set: SigSet,
    on_signal: impl FnOnce(Signal) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(first) = set.wait() else { return };
            on_signal(first);
            if set.wait().is_ok() {
                log::warn!("second signal: exiting now");
                std::process::exit(1);
            }
        })
        .map(|_| ())
}
