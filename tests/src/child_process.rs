//! What the core and agent harnesses do alike with the child they spawn:
//! capture its output, stop it with a signal and a deadline, and show the
//! end of its stderr when a test fails.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A child's output as it arrives, and the thread that reads it.
pub type Captured = (Arc<Mutex<Vec<u8>>>, JoinHandle<()>);

/// Reads `r` into a buffer on a thread; with `echo`, also to stderr
/// prefixed with `[label]`.
pub fn capture(mut r: impl Read + Send + 'static, echo: bool, label: &'static str) -> Captured {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let h = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if echo {
                        eprint!("[{label}] {}", String::from_utf8_lossy(&chunk[..n]));
                    }
                    b.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            }
        }
    });
    (buf, h)
}

/// Sends `signal` and waits up to `timeout` for the exit: the status and
/// how long it took, or `None` after SIGKILLing a child that did not exit.
pub fn signal_and_wait(
    child: &mut Child,
    signal: Signal,
    timeout: Duration,
) -> Option<(ExitStatus, Duration)> {
    let start = Instant::now();
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some((status, start.elapsed()));
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last 16 KiB of `text` (on a char boundary).
pub fn tail(text: &str) -> &str {
    let mut cut = text.len().saturating_sub(16 * 1024);
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    &text[cut..]
}
