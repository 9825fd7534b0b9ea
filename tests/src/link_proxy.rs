//! A TCP proxy on loopback that a test can cut and restore, to play the
//! network between an agent and its core.
//!
//! [`LinkProxy::start`] listens on a free `127.0.0.1` port and forwards every
//! connection to `target`, both ways, with plain threads and `std::net`. The
//! agent under test is pointed at [`LinkProxy::addr`] instead of the core.
//!
//! - [`LinkProxy::cut`] closes every open connection (both sides see EOF) and,
//!   until [`LinkProxy::restore`], accepts new connections only to reset them
//!   at once: to the agent the core looks unreachable.
//! - [`LinkProxy::stall`] keeps connections open but forwards nothing either
//!   way (new connections too): a link that went silent, which only
//!   heartbeats or acknowledgements that never come can reveal.
//! - [`LinkProxy::restore`] undoes both; stalled bytes then flow again.
//!
//! Dropping the proxy stops it and closes everything it holds.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long the proxy tries to reach the target for each new connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a pump thread looks at the cut/stall flags while idle.
const PUMP_TICK: Duration = Duration::from_millis(50);

/// One proxied connection: the accepted socket and the one to the target
/// (clones, so that [`LinkProxy::cut`] can shut them down under the pumps).
struct Pair {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
}

struct Shared {
    target: SocketAddr,
    cut: AtomicBool,
    stalled: AtomicBool,
    stopping: AtomicBool,
    /// Connections currently forwarded.
    open: Mutex<Vec<Pair>>,
    /// Connections accepted since the start, including refused ones.
    accepted: AtomicUsize,
    /// Bytes forwarded client → target and target → client.
    up_bytes: AtomicU64,
    down_bytes: AtomicU64,
    next_id: AtomicU64,
}

/// A cuttable TCP proxy from a free loopback port to `target`.
pub struct LinkProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl LinkProxy {
    /// Listens on a free `127.0.0.1` port and starts forwarding every
    /// connection to `target`. Panics if it cannot bind.
    pub fn start(target: SocketAddr) -> LinkProxy {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("link proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("link proxy: local_addr");
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            up_bytes: AtomicU64::new(0),
            down_bytes: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("link-proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))
            .expect("link proxy: spawn the accept thread");
        LinkProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect (point the agent's `--core` here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections are forwarded.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Closes every open connection and resets new ones at once, until
    /// [`LinkProxy::restore`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        let pairs = std::mem::take(&mut *self.shared.open.lock().unwrap());
        for p in pairs {
            let _ = p.client.shutdown(Shutdown::Both);
            let _ = p.upstream.shutdown(Shutdown::Both);
        }
    }

    /// Stops forwarding bytes, either way, on every connection (open or
    /// new) without closing any, until [`LinkProxy::restore`].
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Ends a [`LinkProxy::cut`] or a [`LinkProxy::stall`]: new connections
    /// are forwarded again and stalled bytes flow.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.stalled.store(false, Ordering::SeqCst);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// How many connections are being forwarded now.
    pub fn connections(&self) -> usize {
        self.shared.open.lock().unwrap().len()
    }

    /// How many connections were accepted since the start, including those
    /// reset while the link was cut (a growing count shows reconnect tries).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded (client → target, target → client) so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.shared.up_bytes.load(Ordering::SeqCst),
            self.shared.down_bytes.load(Ordering::SeqCst),
        )
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the blocking accept() so the thread sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = conn else {
            // EMFILE and the like: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.cut.load(Ordering::SeqCst) {
            reset(client);
            continue;
        }
        let s = shared.clone();
        // Connecting upstream may take a while: not on the accept thread.
        let spawned = std::thread::Builder::new()
            .name("link-proxy-conn".into())
            .spawn(move || connect_and_pump(client, s));
        if spawned.is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Closes with an RST, as close to "connection refused" as an accepted
/// socket gets.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

fn connect_and_pump(client: TcpStream, shared: Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.target, UPSTREAM_CONNECT_TIMEOUT) else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let clones = (|| {
        Some((
            client.try_clone().ok()?,
            upstream.try_clone().ok()?,
            client.try_clone().ok()?,
            upstream.try_clone().ok()?,
        ))
    })();
    let Some((client_r, upstream_w, client_keep, upstream_keep)) = clones else {
        reset(client);
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    {
        let mut open = shared.open.lock().unwrap();
        // A cut between accept and here must not leave this one through.
        if shared.cut.load(Ordering::SeqCst) {
            drop(open);
            reset(client);
            return;
        }
        open.push(Pair {
            id,
            client: client_keep,
            upstream: upstream_keep,
        });
    }
    let s = shared.clone();
    let down = std::thread::Builder::new()
        .name("link-proxy-down".into())
        .spawn(move || pump(upstream, client, &s, false));
    pump(client_r, upstream_w, &shared, true);
    if let Ok(h) = down {
        let _ = h.join();
    }
    shared.open.lock().unwrap().retain(|p| p.id != id);
}

/// Copies `from` → `to` until EOF or an error, honouring stall and cut;
/// passes a half-close on, and shuts both down on an error.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, up: bool) {
    let _ = from.set_read_timeout(Some(PUMP_TICK));
    let counter = if up {
        &shared.up_bytes
    } else {
        &shared.down_bytes
    };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if shared.cut.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        if shared.stalled.load(Ordering::SeqCst) {
            std::thread::sleep(PUMP_TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                // Stalled while this read was under way: hold the bytes.
                while shared.stalled.load(Ordering::SeqCst)
                    && !shared.cut.load(Ordering::SeqCst)
                    && !shared.stopping.load(Ordering::SeqCst)
                {
                    std::thread::sleep(PUMP_TICK);
                }
                if write_all_unless_cut(&mut to, &buf[..n], shared).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// `write_all`, but gives up once the link is cut (a blocked write is also
/// woken by the shutdown [`LinkProxy::cut`] does).
fn write_all_unless_cut(to: &mut TcpStream, mut data: &[u8], shared: &Shared) -> io::Result<()> {
    while !data.is_empty() {
        if shared.cut.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        match to.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server on a free loopback port; one thread per connection.
    fn echo_server() -> SocketAddr {
        let l = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    }

    fn echo_roundtrip(s: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        s.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got)?;
        Ok(got)
    }

    /// Whether the connection reads EOF or an error (not a timeout) soon.
    fn is_closed(s: &mut TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }

    fn wait_connections(p: &LinkProxy, n: usize) {
        crate::wait_for(
            &format!("{n} proxied connections"),
            Duration::from_secs(3),
            Duration::from_millis(10),
            || (p.connections() == n).then_some(()),
        );
    }

    #[test]
    fn forwards_both_ways_and_counts() {
        let proxy = LinkProxy::start(echo_server());
        assert_eq!(proxy.addr().ip(), LOOPBACK);
        let mut a = connect(proxy.addr());
        let mut b = connect(proxy.addr());
        assert_eq!(echo_roundtrip(&mut a, b"hello\n").unwrap(), b"hello\n");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut b2 = b.try_clone().unwrap();
        let sent = big.clone();
        let writer = std::thread::spawn(move || b2.write_all(&sent).unwrap());
        let mut got = vec![0u8; big.len()];
        b.read_exact(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == big, "200 kB came back altered");
        wait_connections(&proxy, 2);
        assert_eq!(proxy.accepted(), 2);
        // A pump counts after its write returns, which the reader may beat.
        crate::wait_for(
            "the byte counts",
            Duration::from_secs(3),
            Duration::from_millis(5),
            || (proxy.bytes() == (200_006, 200_006)).then_some(()),
        );
        drop(a);
        wait_connections(&proxy, 1);
    }

    #[test]
    fn cut_closes_open_connections_and_refuses_new_ones_until_restore() {
        let proxy = LinkProxy::start(echo_server());
        let mut a = connect(proxy.addr());
        assert_eq!(echo_roundtrip(&mut a, b"before").unwrap(), b"before");
        wait_connections(&proxy, 1);

        proxy.cut();
        assert!(proxy.is_cut());
        assert!(is_closed(&mut a), "an open connection survived the cut");
        assert_eq!(proxy.connections(), 0);
        // A new connection is accepted by the kernel but closed at once.
        let t = Instant::now();
        // The reset may even beat connect() home: then connect fails.
        match TcpStream::connect_timeout(&proxy.addr(), Duration::from_secs(2)) {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Ok(mut b) => {
                b.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let _ = b.write_all(b"during");
                assert!(is_closed(&mut b), "a new connection was served while cut");
            }
        }
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(proxy.connections(), 0);
        assert_eq!(proxy.accepted(), 2);

        proxy.restore();
        assert!(!proxy.is_cut());
        let mut c = connect(proxy.addr());
        assert_eq!(echo_roundtrip(&mut c, b"after").unwrap(), b"after");
        wait_connections(&proxy, 1);
    }

    #[test]
    fn stall_holds_bytes_until_restore() {
        let proxy = LinkProxy::start(echo_server());
        let mut a = connect(proxy.addr());
        assert_eq!(echo_roundtrip(&mut a, b"one").unwrap(), b"one");
        proxy.stall();
        a.write_all(b"two").unwrap();
        a.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 3];
        let err = a
            .read(&mut buf)
            .expect_err("bytes went through a stalled link");
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        assert_eq!(proxy.connections(), 1, "stall must not close connections");
        proxy.restore();
        a.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"two");
    }

    #[test]
    fn unreachable_target_resets_the_client() {
        // A port that was free a moment ago: nothing listens there.
        let dead = TcpListener::bind((LOOPBACK, 0))
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = LinkProxy::start(dead);
        let mut a = connect(proxy.addr());
        assert!(is_closed(&mut a));
        assert_eq!(proxy.connections(), 0);
    }

    #[test]
    fn drop_stops_the_listener() {
        let proxy = LinkProxy::start(echo_server());
        let addr = proxy.addr();
        let mut a = connect(addr);
        drop(proxy);
        assert!(is_closed(&mut a));
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    }
}
