//! Stopping the daemons a benchmark started.

use std::process::Child;
use std::time::{Duration, Instant};

/// Sends `child` SIGTERM, waits up to `grace` for it to exit, then kills
/// and reaps it: a daemon gets its graceful shutdown, a stuck one does not
/// hold up the benchmark.
pub fn stop(child: &mut Child, grace: Duration) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
