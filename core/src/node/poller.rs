//! Registered node connections (plain TCP or TLS), served by one edge-triggered
//! epoll loop that batches wake-ups.
//!
//! A registered node mostly sends a heartbeat now and then. Served as an
//! async task, every heartbeat costs a thread wake-up, two reads and an
//! epoll re-arm. Here, after a round that handled any event, the thread
//! sleeps for [`COALESCE`] so that the next `epoll_wait` returns many ready
//! sockets at once; edge-triggered interest needs no re-arming and no second
//! look at a drained socket; and a connection costs its socket, its line
//! buffer and a few words. When
//! nothing happens the thread blocks and costs nothing.
//!
//! Registration and the TLS handshake run on the executor; a connection is
//! handed over once registered, TLS session included (rustls' own
//! non-async API drives it from here).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use honeybee_proto::{encode_into, CoreMessage, Envelope, LineDecoder};
use polling::{Event, Events, PollMode, Poller};
use rustls::ServerConnection;

use crate::node::listener::OpenConnection;
use crate::node::session::{drain_frames, finish, Flow, NodeContext, Registered, Warner};

/// How long a busy loop lets I/O pile up before the next poll.
pub const COALESCE: Duration = Duration::from_millis(2);
/// Reads per connection per round, so one chatty node cannot starve others;
/// a connection with more to read is read again next round.
const READS_PER_ROUND: usize = 8;

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
    /// Connections that had more to read when their round ended (edge
    /// triggering will not report them again).
    backlog: Vec<usize>,
}

impl Loop {
    fn new(shared: Arc<Shared>, ctx: Arc<NodeContext>) -> Loop {
        Loop {
            shared,
            ctx,
            conns: Slots::default(),
            backlog: Vec::new(),
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
            for key in std::mem::take(&mut self.backlog) {
                self.ready(Event::readable(key));
            }
            for ev in events.iter() {
                self.ready(ev);
            }
            self.deliver();
            busy = !events.is_empty() || !self.backlog.is_empty();
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
            // SAFETY: the socket is removed from the poller (`close`) before
            // it is dropped, and the loop owns it until then.
            let added = unsafe {
                self.shared.poller.add_with_mode(
                    conn.wire.socket(),
                    Event::readable(key),
                    PollMode::Edge,
                )
            };
            if let Err(e) = added {
                log::error!("node {node_id}: cannot watch its connection: {e}");
                if let Some(conn) = self.conns.remove(key) {
                    finish(&conn.node, Flow::Close, &self.ctx);
                }
                continue;
            }
            // Lines (and TLS records) that came in with the registration,
            // and commands queued before the hand-over.
            self.ready(Event::readable(key));
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
            let (read, more) = read_round(conn, &self.ctx);
            flow = read;
            if more && flow == Flow::Continue {
                self.backlog.push(ev.key);
            }
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
                let interest = if has_output(conn) {
                    Event::all(key)
                } else {
                    Event::readable(key)
                };
                if let Err(e) = self.shared.poller.modify_with_mode(
                    conn.wire.socket(),
                    interest,
                    PollMode::Edge,
                ) {
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
            let _ = self.shared.poller.delete(conn.wire.socket());
            finish(&conn.node, flow, &self.ctx);
        }
    }
}

/// Reads until the socket is drained or the round's budget is spent; says
/// whether more may be waiting.
fn read_round(conn: &mut Conn, ctx: &NodeContext) -> (Flow, bool) {
    match &mut conn.wire {
        Wire::Plain(stream) => {
            read_plain(stream, &mut conn.frames, &conn.node, &mut conn.warner, ctx)
        }
        Wire::Tls(stream, tls) => {
            let (flow, more) = read_tls(
                stream,
                tls,
                &mut conn.frames,
                &conn.node,
                &mut conn.warner,
                ctx,
            );
            // Alerts, key updates and replies rustls wants sent.
            if flow == Flow::Continue && tls.wants_write() {
                return (flush(conn), more);
            }
            (flow, more)
        }
    }
}

fn read_plain(
    stream: &mut TcpStream,
    frames: &mut LineDecoder,
    node: &Registered,
    warner: &mut Warner,
    ctx: &NodeContext,
) -> (Flow, bool) {
    for _ in 0..READS_PER_ROUND {
        let window = frames.window();
        let room = window.len();
        if room == 0 {
            return (Flow::Close, false);
        }
        match stream.read(window) {
            Ok(0) => return (Flow::Close, false),
            Ok(n) => {
                frames.filled(n);
                let flow = drain_frames(frames, node, warner, ctx);
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

fn read_tls(
    stream: &mut TcpStream,
    tls: &mut ServerConnection,
    frames: &mut LineDecoder,
    node: &Registered,
    warner: &mut Warner,
    ctx: &NodeContext,
) -> (Flow, bool) {
    for _ in 0..READS_PER_ROUND {
        // Plaintext rustls already holds comes first (some may have arrived
        // with the handshake or the registration).
        let flow = read_plaintext(tls, frames, node, warner, ctx);
        if flow != Flow::Continue {
            return (flow, false);
        }
        match tls.read_tls(stream) {
            Ok(0) => return (Flow::Close, false),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    warner.warn(format_args!("TLS: {e}"));
                    let _ = tls.write_tls(stream);
                    return (Flow::Close, false);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (Flow::Continue, false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (Flow::Close, false),
        }
    }
    let flow = read_plaintext(tls, frames, node, warner, ctx);
    (flow, flow == Flow::Continue)
}

fn read_plaintext(
    tls: &mut ServerConnection,
    frames: &mut LineDecoder,
    node: &Registered,
    warner: &mut Warner,
    ctx: &NodeContext,
) -> Flow {
    loop {
        let window = frames.window();
        if window.is_empty() {
            return Flow::Close;
        }
        match tls.reader().read(window) {
            // The peer sent close_notify.
            Ok(0) => return Flow::Close,
            Ok(n) => {
                frames.filled(n);
                let flow = drain_frames(frames, node, warner, ctx);
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
        let policy = Policy::for_tests();
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

    /// A node handed to the poller gets its commands, its heartbeats count,
    /// and deleting the node closes the socket.
    #[test]
    fn commands_heartbeats_and_close_through_the_poller() {
        let dir = std::env::temp_dir().join(format!("hb-poller-{}", std::process::id()));
        crate::files::create_private_dir(&dir).unwrap();
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
