//! Registered node connections (plain TCP or TLS), served by one thread
//! over edge-triggered epoll that lets heartbeats wait for each other.
//!
//! ## What costs
//!
//! A registered node mostly sends a heartbeat now and then: 10,000 nodes at
//! the default 30 s interval send 333 a second. Handling one is a read, a
//! JSON decode and a few atomics: a few µs. Waking the thread that does it
//! costs more: measured on the project's 2-core virtual machine, a wake-up
//! by a socket costs the woken thread 15-30 µs of CPU, one by a timer about
//! twice that, and a system call a µs or more (`tests/bench`
//! `heartbeat-cost`). Served one wake-up each, a heartbeat cannot cost less
//! than that; the loop therefore lets heartbeats pile up, and spends as few
//! system calls as it can:
//!
//! - **Heartbeats wait, other messages do not.** After a round that read
//!   only heartbeats, the thread waits [`MAX_WINDOW`] before it polls the
//!   sockets again, so that a round serves every heartbeat that came in
//!   meanwhile (33 at 333 a second, 500 at 5,000). A heartbeat needs no
//!   promptness: a node is declared lost after three silent intervals.
//!   (Measured, 5,000 nodes at 333 heartbeats a second: a 50 ms window
//!   left the core 7-8 µs of CPU per heartbeat, 100 ms 5-7.)
//!   After a round that read anything else (pot events, pot states, node
//!   events: what a subscriber or an operator waits for), the wait is
//!   [`MIN_WINDOW`], as it always was under load. When even the longest
//!   window would gather fewer than two messages, a timer would save no
//!   wake-up, and the thread blocks in `epoll_wait`: at low rates one
//!   wake-up, one `epoll_wait` and one read per message. When nothing
//!   happens it blocks and costs nothing.
//! - **Commands do not wait for heartbeats.** The long window is spent in
//!   `poll` on the eventfd through which other threads (the registry, the
//!   store writer) hand over connections, commands, acknowledgements and
//!   closings: those end it. The short one is a plain sleep, as before:
//!   under event load the store writer acknowledges every commit, and
//!   rounds would otherwise come as fast as commits. The eventfd is written
//!   only by the first notification since the loop last looked.
//! - **epoll directly**: one `epoll_wait` per round. (The `polling` crate,
//!   used before, arms a timerfd and re-arms its notifier around every
//!   wait: five system calls per wait, and a busy round made two waits.)
//! - **Edge-triggered interest**: no re-arming, and a read shorter than the
//!   buffer means the socket is drained, so no second read to see EAGAIN.
//! - **No allocation per round**: the event and work lists are reused.
//!
//! The price: the first pot event after a spell of heartbeats alone may
//! wait up to [`MAX_WINDOW`] before it is read; those after it, as long as
//! they keep coming, at most [`MIN_WINDOW`].
//!
//! Everything else is as it was: a connection costs its socket, its line
//! buffer and a few words; lines are bounded by the decoder; output is
//! bounded by the outbox; a full store queue blocks this thread (the
//! store's backpressure: nothing more is read from any node until it
//! drains). Registration and the TLS handshake run on the executor; a
//! connection is handed over once registered, TLS session included
//! (rustls' own non-async API drives it from here).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use honeybee_proto::{encode_into, CoreMessage, Envelope, LineDecoder};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use rustls::ServerConnection;

use crate::node::listener::OpenConnection;
use crate::node::session::{drain_frames, finish, Flow, NodeContext, Registered, Tally, Warner};

/// The wait after a round that read anything but heartbeats: under load a
/// message waits at most this long to be read.
pub const MIN_WINDOW: Duration = Duration::from_millis(2);
/// The wait after a round that read heartbeats only.
pub const MAX_WINDOW: Duration = Duration::from_millis(100);
/// Reads per connection per round, so one chatty node cannot starve others;
/// a connection with more to read is read again next round.
const READS_PER_ROUND: usize = 8;
/// Readiness events taken per `epoll_wait`; more wait for the next one.
const EVENTS_PER_WAIT: usize = 1024;
/// The eventfd's key; connection keys are slot indices.
const NOTIFY: u64 = u64::MAX;

/// A registered connection's socket: plain, or with its TLS session.
pub enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS 1.3; the session as the handshake left it.
    Tls(TcpStream, Box<ServerConnection>),
}

impl Wire {
    fn socket(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) | Wire::Tls(s, _) => s,
        }
    }
}

/// A registered connection handed over by the executor.
pub struct Handoff {
    /// The socket (non-blocking), with TLS if any.
    pub wire: Wire,
    /// Its decoder, possibly holding lines already read.
    pub frames: LineDecoder,
    /// The node.
    pub node: Registered,
    /// Its warning limiter.
    pub warner: Warner,
    /// Keeps the connection counted as open.
    pub open: OpenConnection,
}

struct Conn {
    wire: Wire,
    frames: LineDecoder,
    node: Registered,
    warner: Warner,
    waker: Waker,
    /// Bytes for the node not yet written (plain; TLS buffers in rustls).
    out: Vec<u8>,
    _open: OpenConnection,
}

struct Shared {
    epoll: Epoll,
    /// Wakes the loop for `adopted`, `woken` and `stop`.
    notifier: EventFd,
    /// The notifier was written and the loop has not looked since: later
    /// notifications need no system call.
    notified: AtomicBool,
    adopted: Mutex<Vec<Handoff>>,
    /// Connections whose inbox has news.
    woken: Mutex<Vec<usize>>,
    stop: AtomicBool,
}

impl Shared {
    /// Wakes the loop, unless a wake-up is pending already. The loop empties
    /// the eventfd, then clears `notified`, then looks at the lists and the
    /// stop flag: whoever finds `notified` set (no write) is seen by that
    /// look; whoever finds it clear writes, and the loop wakes again.
    fn notify(&self) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            // Cannot fail short of a full counter (2^64 - 2 writes).
            let _ = self.notifier.write(1);
        }
    }
}

/// The poller thread; cheap to share.
pub struct NodePoller {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NodePoller {
    /// Starts the thread.
    pub fn start(ctx: Arc<NodeContext>) -> std::io::Result<NodePoller> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let notifier =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        // Edge-triggered: every write is reported, read or not.
        epoll.add(
            &notifier,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, NOTIFY),
        )?;
        let shared = Arc::new(Shared {
            epoll,
            notifier,
            notified: AtomicBool::new(false),
            adopted: Mutex::new(Vec::new()),
            woken: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("node-poller".into())
                .spawn(move || Loop::new(shared, ctx).run())?
        };
        Ok(NodePoller {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Takes over a registered connection.
    pub fn adopt(&self, handoff: Handoff) {
        lock(&self.shared.adopted).push(handoff);
        self.shared.notify();
    }

    /// Closes every connection (recording each node as disconnected) and
    /// stops the thread.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.notify();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wakes the loop when a connection's inbox gets a command or is closed.
struct InboxWaker {
    key: usize,
    shared: Weak<Shared>,
}

impl Wake for InboxWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.woken).push(self.key);
            shared.notify();
        }
    }
}

/// Connections by key; a key is a slot index, reused once freed.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, conn: Conn) -> usize {
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(conn);
                key
            }
            None => {
                self.slots.push(Some(conn));
                self.slots.len() - 1
            }
        }
    }

    fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.slots.get_mut(key).and_then(Option::as_mut)
    }

    fn remove(&mut self, key: usize) -> Option<Conn> {
        let conn = self.slots.get_mut(key).and_then(Option::take);
        if conn.is_some() {
            self.free.push(key);
        }
        conn
    }

    fn keys(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&k| self.slots[k].is_some())
            .collect()
    }
}

/// Decides how long the loop waits before polling the sockets again.
#[derive(Debug)]
struct Pace {
    /// When the last round's `epoll_wait` returned: the start of the span
    /// over which the next round's messages arrive.
    since: Instant,
}

impl Pace {
    fn new(now: Instant) -> Pace {
        Pace { since: now }
    }

    /// The round whose wait returned at `now` read what `tally` says: how
    /// long to wait before polling the sockets again, or `None` to block
    /// until something happens.
    fn window(&mut self, tally: Tally, now: Instant) -> Option<Duration> {
        let span = now.saturating_duration_since(self.since);
        self.since = now;
        if tally.messages == 0 {
            None
        } else if tally.urgent > 0 {
            Some(MIN_WINDOW)
        } else if tally.messages as f64 * MAX_WINDOW.as_secs_f64() >= 2.0 * span.as_secs_f64() {
            // Heartbeats at a rate that brings two or more per window.
            Some(MAX_WINDOW)
        } else {
            None
        }
    }
}

struct Loop {
    shared: Arc<Shared>,
    ctx: Arc<NodeContext>,
    conns: Slots,
    /// Connections that had more to read when their round ended (edge
    /// triggering will not report them again).
    backlog: Vec<usize>,
    /// The backlog being served (kept for its allocation).
    serving: Vec<usize>,
    /// `Shared::woken`, taken (kept for its allocation).
    delivering: Vec<usize>,
    /// What this round read.
    tally: Tally,
}

impl Loop {
    fn new(shared: Arc<Shared>, ctx: Arc<NodeContext>) -> Loop {
        Loop {
            shared,
            ctx,
            conns: Slots::default(),
            backlog: Vec::new(),
            serving: Vec::new(),
            delivering: Vec::new(),
            tally: Tally::default(),
        }
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        let mut pace = Pace::new(Instant::now());
        let mut timeout = EpollTimeout::NONE;
        loop {
            let ready = match self.shared.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    log::error!("node poller: {e}");
                    std::thread::sleep(MIN_WINDOW);
                    0
                }
            };
            let now = Instant::now();
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            self.tally = Tally::default();
            let mut notified = false;
            std::mem::swap(&mut self.backlog, &mut self.serving);
            for i in 0..self.serving.len() {
                self.ready(self.serving[i], true, false);
            }
            self.serving.clear();
            for ev in &events[..ready] {
                if ev.data() == NOTIFY {
                    notified = true;
                    continue;
                }
                let flags = ev.events();
                let hangup = flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
                self.ready(
                    ev.data() as usize,
                    hangup || flags.contains(EpollFlags::EPOLLIN),
                    hangup || flags.contains(EpollFlags::EPOLLOUT),
                );
            }
            if notified {
                // Emptied, then cleared, then the lists taken: a
                // notification after the clear writes the eventfd again, and
                // that write's edge is not lost to this read (emptied
                // after it, the eventfd would not be reported again).
                let _ = self.shared.notifier.read();
                self.shared.notified.store(false, Ordering::SeqCst);
                if self.shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                self.adopt_new();
                self.deliver();
            }
            let window = if ready == events.len() {
                // More are ready already.
                Some(Duration::ZERO)
            } else {
                let window = pace.window(self.tally, now);
                if self.backlog.is_empty() {
                    window
                } else {
                    Some(window.map_or(MIN_WINDOW, |w| w.min(MIN_WINDOW)))
                }
            };
            timeout = match window {
                None => EpollTimeout::NONE,
                Some(w) => {
                    if !w.is_zero() {
                        self.wait(w);
                    }
                    EpollTimeout::ZERO
                }
            };
        }
        for key in self.conns.keys() {
            self.close(key, Flow::Close);
        }
    }

    /// Waits `window`; the long one ends early for a notification (sockets
    /// are left to the next `epoll_wait`).
    fn wait(&self, window: Duration) {
        if window <= MIN_WINDOW {
            // Under event load the store writer acknowledges every commit:
            // were those to end the short waits, rounds would come as fast
            // as commits (measured: event-load at 10,000 events/s took 96%
            // of a core instead of 55-75%).
            std::thread::sleep(window);
            return;
        }
        let mut notifier = [PollFd::new(self.shared.notifier.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(window.as_millis()).unwrap_or(u16::MAX);
        // EINTR ends the wait early, which is harmless.
        let _ = poll(&mut notifier, ms);
    }

    fn adopt_new(&mut self) {
        let adopted = std::mem::take(&mut *lock(&self.shared.adopted));
        for h in adopted {
            let node_id = h.node.node_id;
            let key = self.conns.insert(Conn {
                wire: h.wire,
                frames: h.frames,
                node: h.node,
                warner: h.warner,
                waker: Waker::noop().clone(),
                out: Vec::new(),
                _open: h.open,
            });
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.waker = Waker::from(Arc::new(InboxWaker {
                key,
                shared: Arc::downgrade(&self.shared),
            }));
            // The socket is removed from the epoll set (`close`) before it
            // is dropped, and the loop owns it until then.
            let added = self
                .shared
                .epoll
                .add(conn.wire.socket(), interest(key, false));
            if let Err(e) = added {
                log::error!("node {node_id}: cannot watch its connection: {e}");
                if let Some(conn) = self.conns.remove(key) {
                    finish(&conn.node, Flow::Close, &self.ctx);
                }
                continue;
            }
            // Lines (and TLS records) that came in with the registration,
            // and commands queued before the hand-over.
            self.ready(key, true, false);
            lock(&self.shared.woken).push(key);
        }
    }

    fn ready(&mut self, key: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut flow = Flow::Continue;
        if writable {
            flow = flush(conn);
        }
        if readable && flow == Flow::Continue {
            let (read, more) = read_round(conn, &self.ctx, &mut self.tally);
            flow = read;
            if more && flow == Flow::Continue {
                self.backlog.push(key);
            }
        }
        self.after(key, flow);
    }

    /// Handles lines and closes the connection if `flow` says so.
    fn after(&mut self, key: usize, flow: Flow) {
        let flow = match (flow, self.conns.get_mut(key)) {
            (Flow::Continue, Some(c)) => drain_frames(
                &mut c.frames,
                &c.node,
                &mut c.warner,
                &self.ctx,
                &mut self.tally,
            ),
            (other, _) => other,
        };
        if flow != Flow::Continue {
            self.close(key, flow);
        }
    }

    /// Writes commands queued for woken connections; closes those whose
    /// inbox was closed (replaced, deleted, lost, shutdown).
    fn deliver(&mut self) {
        std::mem::swap(&mut *lock(&self.shared.woken), &mut self.delivering);
        for i in 0..self.delivering.len() {
            let key = self.delivering[i];
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let waker = conn.waker.clone();
            let mut cx = Context::from_waker(&waker);
            let mut flow = Flow::Continue;
            loop {
                match conn.node.inbox.poll_recv(&mut cx) {
                    Poll::Ready(Some(message)) => queue(conn, &message),
                    Poll::Ready(None) => {
                        flow = Flow::Close;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if flow == Flow::Continue && has_output(conn) {
                flow = flush(conn);
                let mut event = interest(key, has_output(conn));
                if let Err(e) = self.shared.epoll.modify(conn.wire.socket(), &mut event) {
                    log::warn!("node {}: {e}", conn.node.node_id);
                    flow = Flow::Close;
                }
            }
            if flow != Flow::Continue {
                self.close(key, flow);
            }
        }
        self.delivering.clear();
    }

    fn close(&mut self, key: usize, flow: Flow) {
        if let Some(conn) = self.conns.remove(key) {
            let _ = self.shared.epoll.delete(conn.wire.socket());
            finish(&conn.node, flow, &self.ctx);
        }
    }
}

/// Edge-triggered interest in reading, and in writing while output waits.
fn interest(key: usize, writing: bool) -> EpollEvent {
    let mut flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
    if writing {
        flags |= EpollFlags::EPOLLOUT;
    }
    EpollEvent::new(flags, key as u64)
}

/// A connection's lines and what handling them needs.
struct Lines<'a> {
    frames: &'a mut LineDecoder,
    node: &'a Registered,
    warner: &'a mut Warner,
    ctx: &'a NodeContext,
    /// What the round read, added to.
    tally: &'a mut Tally,
}

impl Lines<'_> {
    /// Handles every complete line.
    fn drain(&mut self) -> Flow {
        drain_frames(self.frames, self.node, self.warner, self.ctx, self.tally)
    }
}

/// Reads until the socket is drained or the round's budget is spent; says
/// whether more may be waiting.
fn read_round(conn: &mut Conn, ctx: &NodeContext, tally: &mut Tally) -> (Flow, bool) {
    let mut lines = Lines {
        frames: &mut conn.frames,
        node: &conn.node,
        warner: &mut conn.warner,
        ctx,
        tally,
    };
    match &mut conn.wire {
        Wire::Plain(stream) => read_plain(stream, &mut lines),
        Wire::Tls(stream, tls) => {
            let (flow, more) = read_tls(stream, tls, &mut lines);
            // Alerts, key updates and replies rustls wants sent.
            if flow == Flow::Continue && tls.wants_write() {
                return (flush(conn), more);
            }
            (flow, more)
        }
    }
}

fn read_plain(stream: &mut TcpStream, lines: &mut Lines) -> (Flow, bool) {
    for _ in 0..READS_PER_ROUND {
        let window = lines.frames.window();
        let room = window.len();
        if room == 0 {
            return (Flow::Close, false);
        }
        match stream.read(window) {
            Ok(0) => return (Flow::Close, false),
            Ok(n) => {
                lines.frames.filled(n);
                let flow = lines.drain();
                // A short read means the socket is drained: the next data
                // brings a new edge.
                if flow != Flow::Continue || n < room {
                    return (flow, false);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (Flow::Continue, false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (Flow::Close, false),
        }
    }
    (Flow::Continue, true)
}

fn read_tls(stream: &mut TcpStream, tls: &mut ServerConnection, lines: &mut Lines) -> (Flow, bool) {
    for _ in 0..READS_PER_ROUND {
        // Plaintext rustls already holds comes first (some may have arrived
        // with the handshake or the registration).
        let flow = read_plaintext(tls, lines);
        if flow != Flow::Continue {
            return (flow, false);
        }
        match tls.read_tls(stream) {
            Ok(0) => return (Flow::Close, false),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    lines.warner.warn(format_args!("TLS: {e}"));
                    let _ = tls.write_tls(stream);
                    return (Flow::Close, false);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (Flow::Continue, false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (Flow::Close, false),
        }
    }
    let flow = read_plaintext(tls, lines);
    (flow, flow == Flow::Continue)
}

fn read_plaintext(tls: &mut ServerConnection, lines: &mut Lines) -> Flow {
    loop {
        let window = lines.frames.window();
        if window.is_empty() {
            return Flow::Close;
        }
        match tls.reader().read(window) {
            // The peer sent close_notify.
            Ok(0) => return Flow::Close,
            Ok(n) => {
                lines.frames.filled(n);
                let flow = lines.drain();
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Flow::Continue,
            Err(_) => return Flow::Close,
        }
    }
}

fn queue(conn: &mut Conn, message: &CoreMessage) {
    match &mut conn.wire {
        Wire::Plain(_) => encode_into(&Envelope::new(message), &mut conn.out),
        Wire::Tls(_, tls) => {
            let mut line = Vec::with_capacity(256);
            encode_into(&Envelope::new(message), &mut line);
            // Bounded by the outbox (16 messages) and rustls' buffer limit.
            if let Err(e) = tls.writer().write_all(&line) {
                conn.warner
                    .warn(format_args!("TLS: cannot queue a message: {e}"));
            }
        }
    }
}

fn has_output(conn: &Conn) -> bool {
    match &conn.wire {
        Wire::Plain(_) => !conn.out.is_empty(),
        Wire::Tls(_, tls) => tls.wants_write(),
    }
}

fn flush(conn: &mut Conn) -> Flow {
    match &mut conn.wire {
        Wire::Plain(stream) => {
            while !conn.out.is_empty() {
                match stream.write(&conn.out) {
                    Ok(0) => return Flow::Close,
                    Ok(n) => {
                        conn.out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Flow::Continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Flow::Close,
                }
            }
            conn.out = Vec::new();
        }
        Wire::Tls(stream, tls) => {
            while tls.wants_write() {
                match tls.write_tls(stream) {
                    Ok(0) => return Flow::Close,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Flow::Continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Flow::Close,
                }
            }
        }
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::metrics::Metrics;
    use crate::node::registry::{Policy, Registry};
    use crate::store::sqlite;
    use crate::store::NodeStore;
    use honeybee_proto::{
        decode, encode, Command, CoreMessage, NodeCommand, NodeMessage, NodeRegistration,
        NodeStatus, NodeStatusUpdate, NodeType,
    };
    use std::io::BufRead;
    use std::net::TcpListener;

    fn context(dir: &std::path::Path) -> Arc<NodeContext> {
        let store = Arc::new(sqlite::open(&dir.join("t.db")).unwrap());
        let events = store.clone() as Arc<dyn crate::store::EventStore>;
        let mut policy = Policy::for_tests();
        policy.max_nodes = 1000;
        let metrics = Arc::new(Metrics::default());
        let bus = Arc::new(crate::bus::Bus::new());
        let registry = Registry::load(
            store as Arc<dyn NodeStore>,
            metrics.clone(),
            bus.clone(),
            policy,
            Clock::new(),
            Arc::new(crate::fleet::Alone::new("test".into())),
        )
        .unwrap();
        Arc::new(NodeContext {
            registry: Arc::new(registry),
            events,
            bus,
            metrics,
            max_message_bytes: 4096,
            fleet: Arc::new(crate::fleet::Alone::new("test".into())),
        })
    }

    /// The window after a round that read `messages` (`urgent` of them
    /// not heartbeats) over `span_ms`.
    fn window_after(messages: usize, urgent: usize, span_ms: f64) -> Option<Duration> {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        let tally = Tally { messages, urgent };
        pace.window(tally, start + Duration::from_secs_f64(span_ms / 1e3))
    }

    #[test]
    fn heartbeats_wait_and_other_messages_do_not() {
        // Nothing read: block.
        assert_eq!(window_after(0, 0, 3.0), None);
        // Heartbeats at 333 a second (10,000 nodes every 30 s), 1,000 and
        // 5,000: the longest window.
        assert_eq!(window_after(1, 0, 3.0), Some(MAX_WINDOW));
        assert_eq!(window_after(100, 0, 100.0), Some(MAX_WINDOW));
        assert_eq!(window_after(500, 0, 100.0), Some(MAX_WINDOW));
        // 20 a second: two per window, still worth a timer; 5 a second is
        // not: block.
        assert_eq!(window_after(1, 0, 50.0), Some(MAX_WINDOW));
        assert_eq!(window_after(1, 0, 200.0), None);
        // Anything else among them: the shortest window.
        assert_eq!(window_after(500, 1, 100.0), Some(MIN_WINDOW));
        assert_eq!(window_after(20, 20, 2.0), Some(MIN_WINDOW));
        // A lone event after a quiet spell is read at once and the next
        // round soon after.
        assert_eq!(window_after(1, 1, 10_000.0), Some(MIN_WINDOW));
    }

    #[test]
    fn the_span_starts_when_the_last_wait_returned() {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        assert_eq!(
            pace.window(Tally::default(), start + Duration::from_secs(5)),
            None
        );
        // One heartbeat 3 ms after the last return, not 5 s after the start.
        let one = Tally {
            messages: 1,
            urgent: 0,
        };
        assert_eq!(
            pace.window(one, start + Duration::from_millis(5003)),
            Some(MAX_WINDOW)
        );
    }

    fn register(ctx: &NodeContext, id: u64, peer: std::net::SocketAddr) -> Registered {
        let reg = NodeRegistration {
            node_id: id,
            node_name: format!("n{id}"),
            address: "127.0.0.1".into(),
            port: 1,
            node_type: NodeType::Full,
            totp_code: None,
            enrollment_token: None,
            agent_version: None,
            capabilities: vec![],
            spool_epoch: None,
        };
        let accepted = ctx.registry.register(&reg, peer).unwrap();
        smol::block_on(accepted.receipt.committed()).unwrap();
        Registered {
            node_id: id,
            conn_id: accepted.conn_id,
            inbox: accepted.outbox,
            live: accepted.live,
            epoch: 0,
        }
    }

    /// A command does not wait for the heartbeat window to end.
    #[test]
    fn commands_end_the_heartbeat_window() {
        let dir = std::env::temp_dir().join(format!("hb-poller-window-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let ctx = context(&dir);
        let poller = NodePoller::start(ctx.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        poller.adopt(Handoff {
            wire: Wire::Plain(server),
            frames: LineDecoder::new(4096),
            node: register(&ctx, 9, peer),
            warner: Warner::new(peer),
            open: OpenConnection::new(ctx.metrics.clone()),
        });
        // Heartbeats at 500 a second: the loop spends its time in
        // MAX_WINDOW waits.
        let stop = Arc::new(AtomicBool::new(false));
        let beats = {
            let (stop, mut client) = (stop.clone(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let beat = encode(&Envelope::new(NodeMessage::NodeStatusUpdate(
                    NodeStatusUpdate {
                        node_id: 9,
                        status: NodeStatus::Running,
                    },
                )));
                while !stop.load(Ordering::Relaxed) {
                    client.write_all(&beat).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        std::thread::sleep(MAX_WINDOW * 3);
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
        let mut slowest = Duration::ZERO;
        for i in 0..5 {
            // Somewhere in a window.
            std::thread::sleep(MAX_WINDOW / 5 * (i + 1));
            let command = CoreMessage::NodeCommand(NodeCommand {
                node_id: 9,
                command: Command::GetPotStatus("p".into()),
            });
            let sent = std::time::Instant::now();
            ctx.registry.send(9, command).unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            slowest = slowest.max(sent.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        beats.join().unwrap();
        // Waiting the window out would take 50 ms on average.
        assert!(slowest < MAX_WINDOW / 2, "a command took {slowest:?}");
        poller.stop();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Connections adopted from several threads at once are all watched,
    /// and commands queued from several threads all delivered: no
    /// notification is lost between the loop's look and its next wait.
    #[test]
    fn every_connection_adopted_at_once_is_served() {
        let dir = std::env::temp_dir().join(format!("hb-poller-many-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let ctx = context(&dir);
        let poller = Arc::new(NodePoller::start(ctx.clone()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const THREADS: u64 = 4;
        const EACH: u64 = 50;
        let mut clients = Vec::new();
        let mut handoffs: Vec<Vec<Handoff>> = (0..THREADS).map(|_| Vec::new()).collect();
        for id in 1..=THREADS * EACH {
            let client = TcpStream::connect(addr).unwrap();
            let (server, peer) = listener.accept().unwrap();
            server.set_nonblocking(true).unwrap();
            handoffs[(id % THREADS) as usize].push(Handoff {
                wire: Wire::Plain(server),
                frames: LineDecoder::new(4096),
                node: register(&ctx, id, peer),
                warner: Warner::new(peer),
                open: OpenConnection::new(ctx.metrics.clone()),
            });
            clients.push((id, client));
        }
        let adopters: Vec<_> = handoffs
            .into_iter()
            .map(|batch| {
                let poller = poller.clone();
                std::thread::spawn(move || {
                    for h in batch {
                        poller.adopt(h);
                    }
                })
            })
            .collect();
        for a in adopters {
            a.join().unwrap();
        }
        // Each sends its heartbeat only now: read on an edge, not at
        // adoption.
        for (id, client) in &mut clients {
            let beat = NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: *id,
                status: NodeStatus::Running,
            });
            client.write_all(&encode(&Envelope::new(beat))).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ctx.metrics.heartbeats.load(Ordering::Relaxed) < THREADS * EACH {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {} heartbeats handled",
                ctx.metrics.heartbeats.load(Ordering::Relaxed),
                THREADS * EACH
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Commands from several threads: each wakes the loop through the
        // notifier; one lost wake-up would leave the rest undelivered.
        const COMMANDS: u64 = 200;
        let senders: Vec<_> = (0..THREADS)
            .map(|t| {
                let ctx = ctx.clone();
                std::thread::spawn(move || {
                    for _ in 0..COMMANDS {
                        for id in (1..=THREADS * EACH).filter(|id| id % THREADS == t) {
                            let command = CoreMessage::NodeCommand(NodeCommand {
                                node_id: id,
                                command: Command::GetPotStatus("p".into()),
                            });
                            while ctx.registry.send(id, command.clone()).is_err() {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        for (id, client) in &clients {
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = std::io::BufReader::new(client);
            let mut line = String::new();
            for n in 0..COMMANDS {
                line.clear();
                reader
                    .read_line(&mut line)
                    .unwrap_or_else(|e| panic!("node {id}: command {n}: {e}"));
            }
        }
        poller.stop();
        assert_eq!(ctx.metrics.connections_open.load(Ordering::Relaxed), 0);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A node handed to the poller gets its commands, its heartbeats count,
    /// and deleting the node closes the socket.
    #[test]
    fn commands_heartbeats_and_close_through_the_poller() {
        let dir = std::env::temp_dir().join(format!("hb-poller-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let ctx = context(&dir);
        let poller = NodePoller::start(ctx.clone()).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let reg = NodeRegistration {
            node_id: 7,
            node_name: "n".into(),
            address: "127.0.0.1".into(),
            port: 1,
            node_type: NodeType::Full,
            totp_code: None,
            enrollment_token: None,
            agent_version: None,
            capabilities: vec![],
            spool_epoch: None,
        };
        let accepted = ctx.registry.register(&reg, peer).unwrap();
        smol::block_on(accepted.receipt.committed()).unwrap();
        // A heartbeat already buffered at hand-over time is handled too.
        let mut frames = LineDecoder::new(4096);
        let beat = NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
            node_id: 7,
            status: NodeStatus::Running,
        });
        frames.feed(&encode(&Envelope::new(beat))).unwrap();
        poller.adopt(Handoff {
            wire: Wire::Plain(server),
            frames,
            node: Registered {
                node_id: 7,
                conn_id: accepted.conn_id,
                inbox: accepted.outbox,
                live: accepted.live,
                epoch: 0,
            },
            warner: Warner::new(peer),
            open: OpenConnection::new(ctx.metrics.clone()),
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ctx.registry.get(7).map(|v| v.status) != Some("Running") {
            assert!(
                std::time::Instant::now() < deadline,
                "heartbeat not handled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }

        let command = CoreMessage::NodeCommand(NodeCommand {
            node_id: 7,
            command: Command::GetPotStatus("cowrie-01".into()),
        });
        ctx.registry.send(7, command.clone()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(
            decode::<CoreMessage>(line.trim_end().as_bytes()).unwrap(),
            command
        );

        ctx.registry.delete(7).unwrap().unwrap();
        line.clear();
        assert_eq!(
            reader.read_line(&mut line).unwrap(),
            0,
            "socket closed after delete"
        );
        while ctx.metrics.connections_open.load(Ordering::Relaxed) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "connection still counted open"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        poller.stop();
        std::fs::remove_dir_all(&dir).ok();
    }
}
