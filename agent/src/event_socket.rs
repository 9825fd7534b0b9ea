//! The loopback event socket pots write to (PROTOCOL.md §8): one JSON object
//! per line, each mapped to a `PotEvent` and appended to the spool.
//!
//! Bounded everywhere: at most [`MAX_CONNECTIONS`] pots at once, at most
//! 64 KiB held per line (a longer line is dropped and counted), and a pot
//! that sends more than `event_rate` lines a second is simply read less
//! often — TCP pushes back on it, nothing it sent is lost, memory stays flat.

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::AsyncReadExt;
use honeybee_proto::{FrameError, LineDecoder};
use smol::LocalExecutor;

use crate::event_map::map_line;
use crate::shared::Shared;

/// The longest line a pot may write.
pub const MAX_LINE: usize = 64 * 1024;
/// Pot connections served at once; more are closed at once and counted.
pub const MAX_CONNECTIONS: usize = 32;
/// Bytes read from a pot at once.
const READ_BYTES: usize = 16 * 1024;
/// How often the drop counters are logged when they moved.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Counters of the event socket.
#[derive(Default)]
pub struct EventSocketStats {
    /// Lines that became events.
    pub accepted: Cell<u64>,
    /// Lines over [`MAX_LINE`], dropped.
    pub too_long: Cell<u64>,
    /// Lines that were not a JSON object with an event type, dropped.
    pub unreadable: Cell<u64>,
    /// Connections refused over [`MAX_CONNECTIONS`].
    pub refused: Cell<u64>,
    /// Times a pot was paused for sending too fast.
    pub throttled: Cell<u64>,
    open: Cell<usize>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// Binds `127.0.0.1:port`; always loopback, whatever else is configured.
pub fn bind(port: u16) -> Result<Async<TcpListener>, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Async::<TcpListener>::bind(addr).map_err(|e| format!("binding the event socket {addr}: {e}"))
}

/// Accepts pot connections until the executor stops.
pub async fn serve(
    ex: Rc<LocalExecutor<'static>>,
    listener: Async<TcpListener>,
    shared: Rc<Shared>,
    rate: u32,
    stats: Rc<EventSocketStats>,
) {
    ex.spawn(report(stats.clone())).detach();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("event socket: accepting: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if stats.open.get() >= MAX_CONNECTIONS {
            bump(&stats.refused, 1);
            continue;
        }
        stats.open.set(stats.open.get() + 1);
        let (shared, stats) = (shared.clone(), stats.clone());
        ex.spawn(async move {
            connection(stream, &shared, rate, &stats).await;
            stats.open.set(stats.open.get() - 1);
            log::debug!("event socket: {peer} closed");
        })
        .detach();
    }
}

/// A token bucket: `rate` lines a second, bursts of one second's worth.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes `n` tokens; how long to pause when that overdrew the bucket.
    fn take(&mut self, n: usize) -> Duration {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate) - n as f64;
        self.at = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

async fn connection(
    mut stream: Async<TcpStream>,
    shared: &Shared,
    rate: u32,
    stats: &EventSocketStats,
) {
    let mut decoder = LineDecoder::dropping_long_lines(MAX_LINE);
    let mut bucket = Bucket {
        rate: f64::from(rate),
        tokens: f64::from(rate),
        at: Instant::now(),
    };
    // Large reads: one spool write per read, not per line or two.
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Never fails in the dropping mode: a long line is cut, not refused.
        let _ = decoder.feed(buf.get(..n).unwrap_or_default());
        let events = take_events(&mut decoder, shared, stats);
        // A pot with more to send must not keep the thread from the uplink.
        futures_lite::future::yield_now().await;
        if events.is_empty() {
            continue;
        }
        let count = events.len();
        bump(&stats.accepted, count as u64);
        shared.count_pot_events(&events);
        if let Err(e) = shared.spool.borrow_mut().push_all(shared.node_id, events) {
            log::error!("spool: writing events: {e}");
        }
        shared.wake();
        let pause = bucket.take(count);
        if !pause.is_zero() {
            bump(&stats.throttled, 1);
            Timer::after(pause).await;
        }
    }
}

fn take_events(
    decoder: &mut LineDecoder,
    shared: &Shared,
    stats: &EventSocketStats,
) -> Vec<honeybee_proto::PotEvent> {
    let hints = shared.pot_hints.borrow();
    let mut events = Vec::new();
    loop {
        match decoder.next_frame() {
            Ok(Some(line)) => match map_line(line, shared.node_id, &hints) {
                Ok(e) => events.push(e),
                Err(e) => {
                    bump(&stats.unreadable, 1);
                    log::debug!("event socket: {e}");
                }
            },
            Ok(None) => return events,
            Err(FrameError::TooLong { .. }) => bump(&stats.too_long, 1),
        }
    }
}

/// Logs the drop counters when they moved, once a minute at most.
async fn report(stats: Rc<EventSocketStats>) {
    let mut last = (0, 0, 0, 0);
    loop {
        Timer::after(REPORT_EVERY).await;
        let now = (
            stats.too_long.get(),
            stats.unreadable.get(),
            stats.refused.get(),
            stats.throttled.get(),
        );
        if now != last {
            log::warn!(
                "event socket: {} lines over {} bytes and {} unreadable lines dropped, {} connections refused, {} pauses of a pot sending over the rate limit (since start)",
                now.0, MAX_LINE, now.1, now.2, now.3
            );
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_rate_and_slows_what_is_over() {
        let mut b = Bucket {
            rate: 100.0,
            tokens: 100.0,
            at: Instant::now(),
        };
        assert_eq!(b.take(100), Duration::ZERO);
        let pause = b.take(50);
        assert!(
            pause >= Duration::from_millis(450) && pause <= Duration::from_millis(500),
            "{pause:?}"
        );
    }
}
