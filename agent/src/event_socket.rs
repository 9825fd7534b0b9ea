//! The loopback event socket pots write to (docs/protocol.md §8): one JSON object
//! per line, each mapped to a `PotEvent` and appended to the spool.
//!
//! Only pots write here. The supervisor gives each pot a random token in
//! `HONEYBEE_POT_TOKEN`; the first line of a connection must be a JSON object
//! with that `"token"` (`{"token":"..."}` alone, or an event carrying it).
//! Every event of the connection is then that pot's, whatever `pot_id` or
//! `sensor` its lines name, and a `token` field never reaches the event.
//!
//! Bounded everywhere, so that no local process can starve a pot:
//! - at most [`MAX_PENDING`] connections that did not present a token yet;
//!   a new one pushes out the oldest, and each has [`AUTH_TIMEOUT`] to send
//!   its token line, or it is closed and counted;
//! - at most [`MAX_PER_POT`] connections per pot (a new one pushes out the
//!   pot's oldest), closed after [`IDLE_TIMEOUT`] without a byte;
//! - at most 64 KiB held per line (a longer line is dropped and counted),
//!   and a pot that sends more than `event_rate` lines a second per
//!   connection is simply read less often — TCP pushes back on it, nothing
//!   it sent is lost, memory stays flat.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt};
use honeybee_proto::{FrameError, LineDecoder, PotEvent};
use serde_json::Value;
use smol::LocalExecutor;

use crate::event_map::{has_event_type, map_pot_object, parse_object, PotHint};
use crate::shared::Shared;

/// The longest line a pot may write.
pub const MAX_LINE: usize = 64 * 1024;
/// Connections per pot; a new one closes the pot's oldest.
pub const MAX_PER_POT: usize = 4;
/// Connections that have not presented a token yet; a new one closes the
/// oldest of them.
pub const MAX_PENDING: usize = 16;
/// How long a new connection has to send its token line.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// A pot connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read from a pot at once.
const READ_BYTES: usize = 16 * 1024;
/// How often the drop counters are logged when they moved.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The socket's time limits (the constants above, shorter in unit tests).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// See [`AUTH_TIMEOUT`].
    pub auth: Duration,
    /// See [`IDLE_TIMEOUT`].
    pub idle: Duration,
    /// Lines a second per connection.
    pub rate: u32,
}

impl Limits {
    /// The production limits with `rate` lines a second.
    pub fn new(rate: u32) -> Limits {
        Limits {
            auth: AUTH_TIMEOUT,
            idle: IDLE_TIMEOUT,
            rate,
        }
    }
}

/// Counters of the event socket.
#[derive(Default)]
pub struct EventSocketStats {
    /// Lines that became events.
    pub accepted: Cell<u64>,
    /// Lines over [`MAX_LINE`], dropped.
    pub too_long: Cell<u64>,
    /// Lines that were not a JSON object with an event type, dropped.
    pub unreadable: Cell<u64>,
    /// Connections closed because their first line held no valid token.
    pub bad_token: Cell<u64>,
    /// Connections closed because no token line came within the deadline.
    pub auth_timeout: Cell<u64>,
    /// Connections closed after [`IDLE_TIMEOUT`] without a byte.
    pub idle_closed: Cell<u64>,
    /// Connections pushed out by a newer one (pending pool or pot slots full).
    pub evicted: Cell<u64>,
    /// Lines of an authenticated connection carrying another token, dropped.
    pub spoofed: Cell<u64>,
    /// Times a pot was paused for sending too fast.
    pub throttled: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// Binds `127.0.0.1:port`; always loopback, whatever else is configured.
pub fn bind(port: u16) -> Result<Async<TcpListener>, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Async::<TcpListener>::bind(addr).map_err(|e| format!("binding the event socket {addr}: {e}"))
}

/// One open connection: whose it is (none before its token), and the
/// sender whose drop tells it to close.
struct Slot {
    pot: Option<String>,
    _kick: async_channel::Sender<()>,
}

/// The open connections by age (ids only grow).
#[derive(Default)]
struct Slots {
    next: Cell<u64>,
    open: RefCell<BTreeMap<u64, Slot>>,
}

impl Slots {
    /// Registers a new unauthenticated connection, closing the oldest
    /// pending one if [`MAX_PENDING`] are open; true if one was closed.
    fn admit(&self) -> (u64, async_channel::Receiver<()>, bool) {
        let id = self.next.get();
        self.next.set(id + 1);
        let (kick, kicked) = async_channel::bounded(1);
        let mut open = self.open.borrow_mut();
        let evicted = Self::evict_oldest(&mut open, None, MAX_PENDING);
        open.insert(
            id,
            Slot {
                pot: None,
                _kick: kick,
            },
        );
        (id, kicked, evicted)
    }

    /// Marks `id` as `pot`'s, closing the pot's oldest connection if it has
    /// [`MAX_PER_POT`] already; true if one was closed.
    fn authenticated(&self, id: u64, pot: &str) -> bool {
        let mut open = self.open.borrow_mut();
        let evicted = Self::evict_oldest(&mut open, Some(pot), MAX_PER_POT);
        if let Some(slot) = open.get_mut(&id) {
            slot.pot = Some(pot.to_string());
        }
        evicted
    }

    fn evict_oldest(open: &mut BTreeMap<u64, Slot>, pot: Option<&str>, max: usize) -> bool {
        let mine = open
            .iter()
            .filter(|(_, s)| s.pot.as_deref() == pot)
            .map(|(id, _)| *id);
        let ids: Vec<u64> = mine.collect();
        if ids.len() < max {
            return false;
        }
        if let Some(oldest) = ids.first() {
            open.remove(oldest);
        }
        true
    }

    fn close(&self, id: u64) {
        self.open.borrow_mut().remove(&id);
    }
}

/// Accepts pot connections until the executor stops.
pub async fn serve(
    ex: Rc<LocalExecutor<'static>>,
    listener: Async<TcpListener>,
    shared: Rc<Shared>,
    limits: Limits,
    stats: Rc<EventSocketStats>,
) {
    ex.spawn(report(stats.clone())).detach();
    let slots = Rc::new(Slots::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("event socket: accepting: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Let the connections accepted so far read their token line before
        // a burst of new ones can push them out of the pending pool.
        future::yield_now().await;
        let (id, kicked, evicted) = slots.admit();
        if evicted {
            bump(&stats.evicted, 1);
        }
        let (shared, stats, slots) = (shared.clone(), stats.clone(), slots.clone());
        ex.spawn(async move {
            let ended = future::or(
                async {
                    // Only a dropped sender ends this: an eviction.
                    let _ = kicked.recv().await;
                    "pushed out by a newer connection"
                },
                connection(stream, id, &slots, &shared, limits, &stats),
            )
            .await;
            slots.close(id);
            log::debug!("event socket: {peer} closed: {ended}");
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

/// Reads into `buf` for at most `wait`; `None` on a timeout, 0 at the end.
async fn read_within(
    stream: &mut Async<TcpStream>,
    buf: &mut [u8],
    wait: Duration,
) -> Option<usize> {
    future::or(async { Some(stream.read(buf).await.unwrap_or(0)) }, async {
        Timer::after(wait).await;
        None
    })
    .await
}

/// Serves one connection; says why it ended.
async fn connection(
    mut stream: Async<TcpStream>,
    id: u64,
    slots: &Slots,
    shared: &Shared,
    limits: Limits,
    stats: &EventSocketStats,
) -> &'static str {
    let mut decoder = LineDecoder::dropping_long_lines(MAX_LINE);
    // Large reads: one spool write per read, not per line or two.
    let mut buf = vec![0u8; READ_BYTES];
    let deadline = Instant::now() + limits.auth;
    // First the token line, within the deadline.
    let (pot, first) = loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let n = match read_within(&mut stream, &mut buf, wait).await {
            None => {
                bump(&stats.auth_timeout, 1);
                return "no token line in time";
            }
            Some(0) => return "closed before its token",
            Some(n) => n,
        };
        let _ = decoder.feed(buf.get(..n).unwrap_or_default());
        match decoder.next_frame() {
            Ok(None) => continue,
            Err(FrameError::TooLong { .. }) => {
                bump(&stats.bad_token, 1);
                return "first line too long";
            }
            Ok(Some(line)) => match authenticate(line, shared) {
                Some(found) => break found,
                None => {
                    bump(&stats.bad_token, 1);
                    return "first line without a valid token";
                }
            },
        }
    };
    if slots.authenticated(id, &pot.pot_id) {
        bump(&stats.evicted, 1);
    }
    log::debug!("event socket: a connection of pot {}", pot.pot_id);
    let mut bucket = Bucket {
        rate: f64::from(limits.rate),
        tokens: f64::from(limits.rate),
        at: Instant::now(),
    };
    let mut events: Vec<PotEvent> = Vec::new();
    if let Some(data) = first {
        keep_event(data, &pot, shared, stats, &mut events);
    }
    loop {
        take_events(&mut decoder, &pot, shared, stats, &mut events);
        if !events.is_empty() {
            let count = events.len();
            bump(&stats.accepted, count as u64);
            shared.count_pot_events(&events);
            let batch = std::mem::take(&mut events);
            if let Err(e) = shared.spool.borrow_mut().push_all(shared.node_id, batch) {
                log::error!("spool: writing events: {e}");
            }
            shared.wake();
            let pause = bucket.take(count);
            if !pause.is_zero() {
                bump(&stats.throttled, 1);
                Timer::after(pause).await;
            }
        }
        // A pot with more to send must not keep the thread from the uplink.
        futures_lite::future::yield_now().await;
        let n = match read_within(&mut stream, &mut buf, limits.idle).await {
            None => {
                bump(&stats.idle_closed, 1);
                return "idle";
            }
            Some(0) => return "closed by the pot",
            Some(n) => n,
        };
        // Never fails in the dropping mode: a long line is cut, not refused.
        let _ = decoder.feed(buf.get(..n).unwrap_or_default());
    }
}

/// The pot whose token the first line holds, and the line itself when it
/// is also an event.
fn authenticate(
    line: &[u8],
    shared: &Shared,
) -> Option<(PotHint, Option<serde_json::Map<String, Value>>)> {
    let data = parse_object(line).ok()?;
    let token = data.get("token").and_then(Value::as_str)?;
    let pot_id = shared.pot_for_token(token)?;
    let pot_type = shared
        .pot_hints
        .borrow()
        .iter()
        .find(|h| h.pot_id == pot_id)
        .map(|h| h.pot_type.clone())
        .unwrap_or_default();
    let pot = PotHint {
        pot_id,
        pot_type,
        running: true,
    };
    Some((pot, has_event_type(&data).then_some(data)))
}

/// Maps one line of `pot`'s into `events`, or counts why not.
fn keep_event(
    data: serde_json::Map<String, Value>,
    pot: &PotHint,
    shared: &Shared,
    stats: &EventSocketStats,
    events: &mut Vec<PotEvent>,
) {
    match map_pot_object(data, shared.node_id, pot) {
        Ok(e) => events.push(e),
        Err(e) => {
            bump(&stats.unreadable, 1);
            log::debug!("event socket: {e}");
        }
    }
}

fn take_events(
    decoder: &mut LineDecoder,
    pot: &PotHint,
    shared: &Shared,
    stats: &EventSocketStats,
    events: &mut Vec<PotEvent>,
) {
    loop {
        match decoder.next_frame() {
            Ok(Some(line)) => match parse_object(line) {
                Ok(data) => {
                    // A line naming another token is someone else's words.
                    let claimed = data.get("token").and_then(Value::as_str);
                    if claimed
                        .is_some_and(|t| shared.pot_for_token(t).as_ref() != Some(&pot.pot_id))
                    {
                        bump(&stats.spoofed, 1);
                    } else if claimed.is_some() && !has_event_type(&data) {
                        // A repeated token line: nothing to keep.
                    } else {
                        keep_event(data, pot, shared, stats, events);
                    }
                }
                Err(e) => {
                    bump(&stats.unreadable, 1);
                    log::debug!("event socket: {e}");
                }
            },
            Ok(None) => return,
            Err(FrameError::TooLong { .. }) => bump(&stats.too_long, 1),
        }
    }
}

/// Logs the drop counters when they moved, once a minute at most.
async fn report(stats: Rc<EventSocketStats>) {
    let mut last = [0u64; 8];
    loop {
        Timer::after(REPORT_EVERY).await;
        let now = [
            stats.too_long.get(),
            stats.unreadable.get(),
            stats.bad_token.get(),
            stats.auth_timeout.get(),
            stats.idle_closed.get(),
            stats.evicted.get(),
            stats.spoofed.get(),
            stats.throttled.get(),
        ];
        if now != last {
            let [long, unreadable, bad, late, idle, evicted, spoofed, throttled] = now;
            log::warn!(
                "event socket (since start): {long} lines over {MAX_LINE} bytes and {unreadable} unreadable lines dropped; connections closed: {bad} without a valid token, {late} without a token within {} s, {idle} idle for {} s, {evicted} pushed out by newer ones; {spoofed} lines naming another pot's token dropped; {throttled} pauses of a pot sending over the rate limit",
                AUTH_TIMEOUT.as_secs(), IDLE_TIMEOUT.as_secs()
            );
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Whether the peer closed `s` within `within` (EOF or reset).
    fn closed(s: &mut std::net::TcpStream, within: Duration) -> bool {
        s.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 8];
        !matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut)
    }

    /// The socket with short limits: an idle authenticated connection and
    /// a silent one are both closed, and counted; a busy one stays.
    #[test]
    fn idle_and_silent_connections_are_closed_and_counted() {
        let dir = std::env::temp_dir().join(format!("hb-evsock-{}", std::process::id()));
        let spool = crate::spool::Spool::open(&dir.join("spool"), 1 << 20, 64).unwrap();
        let shared = Rc::new(Shared::new(1, spool, 30));
        let token = shared.issue_pot_token("p1").unwrap();
        let listener = bind(0).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let stats = Rc::new(EventSocketStats::default());
        let limits = Limits {
            auth: Duration::from_millis(300),
            idle: Duration::from_millis(600),
            rate: 1000,
        };
        let ex = Rc::new(LocalExecutor::new());
        ex.spawn(serve(
            ex.clone(),
            listener,
            shared.clone(),
            limits,
            stats.clone(),
        ))
        .detach();
        let client = std::thread::spawn(move || {
            let mut silent = std::net::TcpStream::connect(addr).unwrap();
            let mut idle = std::net::TcpStream::connect(addr).unwrap();
            idle.write_all(format!("{{\"token\":\"{token}\"}}\n").as_bytes())
                .unwrap();
            let mut busy = std::net::TcpStream::connect(addr).unwrap();
            busy.write_all(format!("{{\"token\":\"{token}\"}}\n").as_bytes())
                .unwrap();
            let line = b"{\"eventid\":\"t.x\"}\n";
            for _ in 0..8 {
                std::thread::sleep(Duration::from_millis(150));
                busy.write_all(line).unwrap();
            }
            // 1.2 s in: the silent one went at 0.3 s, the idle one at 0.6 s.
            let silent_closed = closed(&mut silent, Duration::from_millis(100));
            let idle_closed = closed(&mut idle, Duration::from_millis(100));
            let busy_open = !closed(&mut busy, Duration::from_millis(100));
            (silent_closed, idle_closed, busy_open)
        });
        let result = async_io::block_on(ex.run(async {
            loop {
                if client.is_finished() {
                    return client.join().unwrap();
                }
                Timer::after(Duration::from_millis(20)).await;
            }
        }));
        assert_eq!(result, (true, true, true));
        assert_eq!(stats.auth_timeout.get(), 1);
        assert_eq!(stats.idle_closed.get(), 1);
        assert_eq!(stats.accepted.get(), 8);
        let _ = std::fs::remove_dir_all(&dir);
    }

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
