//! SIGTERM/SIGINT: blocked in every thread and taken by one waiting thread,
//! which tells the agent's executor through a channel.

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGTERM and SIGINT in this thread and every thread started after.
/// Call first thing in `main`. (Children inherit the mask: pot_process
/// clears it in every pot.)
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()?;
    Ok(set)
}

/// Closes-and-sends on `tx` at the first signal; exits at once on a second.
pub fn on_signal(set: SigSet, tx: async_channel::Sender<()>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let Ok(first) = set.wait() else { return };
            log::info!("{first}: stopping");
            let _ = tx.try_send(());
            tx.close();
            if set.wait().is_ok() {
                log::warn!("second signal: exiting now");
                std::process::exit(1);
            }
        })
        .map(|_| ())
}
