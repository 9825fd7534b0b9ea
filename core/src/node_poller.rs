//! Registered plain-TCP node connections, served by one level-triggered
//! epoll loop that batches wake-ups.
//!
//! A registered node mostly sends a heartbeat now and then. Served as an
//! async task, every heartbeat costs a thread wake-up, two reads and an
//! epoll re-arm. Here, after a round that handled any event, the thread
//! sleeps for [`COALESCE`] so that the next `epoll_wait` returns many ready
//! sockets at once; level-triggered interest needs no re-arming; and a
//! connection costs its socket, its line buffer and a few words. When
//! nothing happens the thread blocks and costs nothing.
//!
//! Registration (and TLS connections, whose state machine is async) stays
//! on the executor; a plain connection is handed over once registered.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use honeybee_proto::{encode_into, Envelope, LineDecoder};
use polling::{Event, Events, PollMode, Poller};

use crate::listener::OpenConnection;
use crate::session::{drain_frames, finish, Flow, NodeContext, Registered, Warner};

/// How long a busy loop lets I/O pile up before the next poll.
pub const COALESCE: Duration = Duration::from_millis(2);
/// Reads per connection per round, so one chatty node cannot starve others
/// (level-triggered: what is left is reported again next round).
const READS_PER_ROUND: usize = 4;

/// A registered connection handed over by the executor.
pub struct Handoff {
    /// The socket (non-blocking).
    pub stream: TcpStream,
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
    stream: TcpStream,
    frames: LineDecoder,
    node: Registered,
    warner: Warner,
    waker: Waker,
    /// Bytes for the node not yet written.
    out: Vec<u8>,
    _open: OpenConnection,
}

struct Shared {
    poller: Poller,
    adopted: Mutex<Vec<Handoff>>,
    /// Connections whose inbox has news.
    woken: Mutex<Vec<usize>>,
    stop: AtomicBool,
}

/// The poller thread; cheap to share.
pub struct NodePoller {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NodePoller {
    /// Starts the thread.
    pub fn start(ctx: Arc<NodeContext>) -> std::io::Result<NodePoller> {
        let shared = Arc::new(Shared {
            poller: Poller::new()?,
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
        let _ = self.shared.poller.notify();
    }

    /// Closes every connection (recording each node as disconnected) and
    /// stops the thread.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.shared.poller.notify();
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
            let _ = shared.poller.notify();
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

struct Loop {
    shared: Arc<Shared>,
    ctx: Arc<NodeContext>,
    conns: Slots,
}

impl Loop {
    fn new(shared: Arc<Shared>, ctx: Arc<NodeContext>) -> Loop {
        Loop {
            shared,
            ctx,
            conns: Slots::default(),
        }
    }

    fn run(mut self) {
        let mut events = Events::new();
        let mut busy = false;
        loop {
            events.clear();
            let timeout = busy.then_some(Duration::ZERO);
            if let Err(e) = self.shared.poller.wait(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    log::error!("node poller: {e}");
                    std::thread::sleep(COALESCE);
                }
            }
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            self.adopt_new();
            for ev in events.iter() {
                self.ready(ev);
            }
            self.deliver();
            busy = !events.is_empty();
            if busy {
                std::thread::sleep(COALESCE);
            }
        }
        for key in self.conns.keys() {
            self.close(key, Flow::Close);
        }
    }

    fn adopt_new(&mut self) {
        let adopted = std::mem::take(&mut *lock(&self.shared.adopted));
        for h in adopted {
            let node_id = h.node.node_id;
            let key = self.conns.insert(Conn {
                stream: h.stream,
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
            // SAFETY: the socket is removed from the poller (`close`) before
            // it is dropped, and the loop owns it until then.
            let added = unsafe {
                self.shared.poller.add_with_mode(
                    &conn.stream,
                    Event::readable(key),
                    PollMode::Level,
                )
            };
            if let Err(e) = added {
                log::error!("node {node_id}: cannot watch its connection: {e}");
                if let Some(conn) = self.conns.remove(key) {
                    finish(&conn.node, Flow::Close, &self.ctx);
                }
                continue;
            }
            // Lines that came in with the registration, and commands queued
            // before the hand-over.
            self.after(key, Flow::Continue);
            lock(&self.shared.woken).push(key);
        }
    }

    fn ready(&mut self, ev: Event) {
        let Some(conn) = self.conns.get_mut(ev.key) else {
            return;
        };
        let mut flow = Flow::Continue;
        if ev.writable {
            flow = flush(conn);
        }
        if ev.readable && flow == Flow::Continue {
            flow = read_round(conn, &self.ctx);
        }
        self.after(ev.key, flow);
    }

    /// Handles lines and closes the connection if `flow` says so.
    fn after(&mut self, key: usize, flow: Flow) {
        let flow = match (flow, self.conns.get_mut(key)) {
            (Flow::Continue, Some(c)) => {
                drain_frames(&mut c.frames, &c.node, &mut c.warner, &self.ctx)
            }
            (other, _) => other,
        };
        if flow != Flow::Continue {
            self.close(key, flow);
        }
    }

    /// Writes commands queued for woken connections; closes those whose
    /// inbox was closed (replaced, deleted, lost, shutdown).
    fn deliver(&mut self) {
        let woken = std::mem::take(&mut *lock(&self.shared.woken));
        for key in woken {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let mut cx = Context::from_waker(&conn.waker);
            let mut flow = Flow::Continue;
            loop {
                match conn.node.inbox.poll_recv(&mut cx) {
                    Poll::Ready(Some(message)) => {
                        encode_into(&Envelope::new(message), &mut conn.out)
                    }
                    Poll::Ready(None) => {
                        flow = Flow::Close;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if flow == Flow::Continue && !conn.out.is_empty() {
                flow = flush(conn);
                let interest = if conn.out.is_empty() {
                    Event::readable(key)
                } else {
                    Event::all(key)
                };
                if let Err(e) =
                    self.shared
                        .poller
                        .modify_with_mode(&conn.stream, interest, PollMode::Level)
                {
                    log::warn!("node {}: {e}", conn.node.node_id);
                    flow = Flow::Close;
                }
            }
            if flow != Flow::Continue {
                self.close(key, flow);
            }
        }
    }

    fn close(&mut self, key: usize, flow: Flow) {
        if let Some(conn) = self.conns.remove(key) {
            let _ = self.shared.poller.delete(&conn.stream);
            finish(&conn.node, flow, &self.ctx);
        }
    }
}

fn read_round(conn: &mut Conn, ctx: &NodeContext) -> Flow {
    for _ in 0..READS_PER_ROUND {
        let window = conn.frames.window();
        let room = window.len();
        if room == 0 {
            return Flow::Close;
        }
        match conn.stream.read(window) {
            Ok(0) => return Flow::Close,
            Ok(n) => {
                conn.frames.filled(n);
                let flow = drain_frames(&mut conn.frames, &conn.node, &mut conn.warner, ctx);
                if flow != Flow::Continue || n < room {
                    return flow;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Flow::Continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Flow::Close,
        }
    }
    Flow::Continue
}

fn flush(conn: &mut Conn) -> Flow {
    while !conn.out.is_empty() {
        match conn.stream.write(&conn.out) {
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
    Flow::Continue
}
