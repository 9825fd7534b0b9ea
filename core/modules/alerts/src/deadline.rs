//! One deadline for a whole exchange with a receiver (connect, TLS, every
//! read and write), so a receiver that trickles a byte now and then cannot
//! hold a channel past its timeout.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The time left before `deadline`, or "timed out".
pub fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) {
        Err("timed out".into())
    } else {
        Ok(left)
    }
}

/// An I/O error as text, a socket timeout as "timed out".
pub fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

/// Connects to the first of `addrs` that answers before `deadline`.
pub fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connecting to {addr}: {}", io_text(&e)),
        }
    }
    Err(last)
}
