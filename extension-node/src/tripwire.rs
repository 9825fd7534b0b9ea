//! The tripwires: accept on every port taken, let the port's responder
//! ([`crate::respond`]) answer as the profile's product would, read what the
//! client sends, fingerprint it and report it, with one `extension.login`
//! per credential tried. A source that floods is still answered (a server
//! that falls silent gives the tripwire away) but only counted and
//! summarised. UDP datagrams are recorded and never answered (a reply could
//! be used to amplify an attack on a third party).
//!
//! Fixed capacity throughout: at most [`MAX_IN_FLIGHT`] connections are read
//! at once, half of them at most from flooding sources (more are closed
//! unread and counted), each for at most a minute, each reads into one buffer
//! of at most `max_read` bytes, and the scan detector tracks a fixed number
//! of sources. Whatever arrives, memory does not grow.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use serde_json::{Map, Value};

use crate::banner::service_name;
use crate::bind::{self, Skipped};
use crate::config::{Settings, MAX_READ};
use crate::fingerprint::fingerprint;
use crate::ports::format_ports;
use crate::respond::{Context, Dialogue, HostKey, Identity, Out, Step};
use crate::scan::{Detector, Verdict};

/// Connections being read at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Of those, TLS sessions (each holds some 30 KiB of rustls buffers).
pub const MAX_TLS_IN_FLIGHT: usize = 8;
/// First bytes kept in an event, as hex.
pub const FIRST_BYTES: usize = 64;
/// After the first bytes arrived, how long to wait for more.
const MORE_BYTES: Duration = Duration::from_millis(200);
/// Writing an answer may take this long.
const BANNER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a flooding source's connection may stay silent: longer than a
/// scanner waits before it calls a port "tcpwrapped" (3 s), shorter than
/// the usual wait, so that a flood holds its places briefly.
const QUIET_IDLE: Duration = Duration::from_secs(5);
/// The longest a connection is read and answered, whatever it sends, in
/// idle timeouts (a minute with the default 10 s): slow clients cannot
/// hold one of the [`MAX_IN_FLIGHT`] places longer.
const DIALOGUE_IDLES: u32 = 6;
/// How often flood summaries are cut and counters checked.
const TICK: Duration = Duration::from_secs(1);
/// Least time between two overflow notices.
const NOTICE_EVERY: Duration = Duration::from_secs(60);

/// Where the tripwires send what they see.
pub trait Sink {
    /// An attack event (`extension.connection`, `extension.portscan`, `extension.flood`).
    fn event(&self, event_type: &'static str, data: Map<String, Value>);
    /// Something for the operator: ports taken or skipped, overflows.
    fn notice(&self, alarm: bool, message: String);
    /// The ports taken and skipped changed (see [`Extension::ports_report`]).
    fn ports(&self, _report: Map<String, Value>) {}
}

/// Counters, for reports and tests.
#[derive(Default, Debug)]
pub struct Counters {
    /// TCP connections accepted.
    pub connections: Cell<u64>,
    /// Connections and datagrams reported one by one.
    pub reported: Cell<u64>,
    /// Connections of flooding sources: answered, only counted.
    pub suppressed: Cell<u64>,
    /// Connections closed unread because [`MAX_IN_FLIGHT`] were being read.
    pub overflow: Cell<u64>,
    /// UDP datagrams received.
    pub datagrams: Cell<u64>,
    /// Credentials recorded (`extension.login` events).
    pub logins: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// The ports taken and the ones skipped, per protocol.
#[derive(Default)]
struct Ports {
    tcp: Taken,
    udp: Taken,
}

/// The ports of one protocol taken, and the ones skipped with the reason.
#[derive(Default)]
struct Taken {
    bound: BTreeSet<u16>,
    skipped: BTreeMap<u16, Skipped>,
}

impl Taken {
    /// Binds each of `wanted` not bound yet (all its addresses or none, see
    /// [`bind`]); queues the sockets on `pending`; returns the ports newly
    /// taken.
    fn take<S>(
        &mut self,
        wanted: &[u16],
        bind: impl Fn(u16) -> Result<Vec<S>, Skipped>,
        pending: &mut Vec<(u16, S)>,
    ) -> Vec<u16> {
        let mut new = Vec::new();
        for &port in wanted {
            if self.bound.contains(&port) {
                continue;
            }
            match bind(port) {
                Ok(sockets) => {
                    self.skipped.remove(&port);
                    self.bound.insert(port);
                    new.push(port);
                    pending.extend(sockets.into_iter().map(|s| (port, s)));
                }
                Err(why) => {
                    self.skipped.insert(port, why);
                }
            }
        }
        new
    }

    /// Each skipped port as `{"protocol", "port", "reason"}`.
    fn skipped_json(&self, protocol: &str, out: &mut Vec<Value>) {
        for (port, why) in &self.skipped {
            let mut m = Map::new();
            m.insert("protocol".into(), protocol.into());
            m.insert("port".into(), (*port).into());
            m.insert("reason".into(), why.as_str().into());
            out.push(Value::Object(m));
        }
    }

    fn report_skipped(&self, protocol: &str, out: &mut String) {
        if self.skipped.is_empty() {
            return;
        }
        let list: Vec<String> = self
            .skipped
            .iter()
            .map(|(port, why)| format!("{port} ({})", why.as_str()))
            .collect();
        out.push_str(&format!("; skipped {protocol} {}", list.join(", ")));
    }
}

/// Extension mode, bound and ready to run.
pub struct Extension {
    settings: Settings,
    sink: Rc<dyn Sink>,
    detector: RefCell<Detector>,
    in_flight: Cell<usize>,
    /// Of those, connections of flooding sources (answered, not reported).
    quiet_in_flight: Cell<usize>,
    /// What happened so far.
    pub counters: Counters,
    ports: RefCell<Ports>,
    pending_tcp: RefCell<Vec<(u16, Async<TcpListener>)>>,
    pending_udp: RefCell<Vec<(u16, Async<UdpSocket>)>>,
    /// The state of [`Extension::next_seed`].
    seed: Cell<u64>,
    /// Fixed for this run: [`Context::host_id`].
    host_id: u64,
    /// The TLS certificate of the HTTPS and Remote Desktop ports, made at
    /// the first connection that needs it (an idle agent keeps neither the
    /// key nor the code that makes it in memory); `None` inside if it could
    /// not be made: those ports then only fingerprint.
    identity: std::cell::OnceCell<Option<Identity>>,
    /// TLS sessions open now, at most [`MAX_TLS_IN_FLIGHT`].
    tls_in_flight: Cell<usize>,
    /// The SSH host key, made at the first SSH connection (as the TLS
    /// certificate is); `None` inside if it could not be made: SSH ports
    /// then send their banner only.
    ssh_key: std::cell::OnceCell<Option<HostKey>>,
}

impl Extension {
    /// Binds every configured port that is free (call before dropping
    /// privileges); [`Extension::run`] then serves them.
    pub fn bind(settings: Settings, sink: Rc<dyn Sink>) -> Rc<Extension> {
        let ext = Extension {
            detector: RefCell::new(Detector::new(settings.scan)),
            settings,
            sink,
            in_flight: Cell::new(0),
            quiet_in_flight: Cell::new(0),
            counters: Counters::default(),
            ports: RefCell::default(),
            pending_tcp: RefCell::default(),
            pending_udp: RefCell::default(),
            seed: Cell::new(random_seed()),
            host_id: random_seed(),
            identity: std::cell::OnceCell::new(),
            tls_in_flight: Cell::new(0),
            ssh_key: std::cell::OnceCell::new(),
        };
        ext.take_ports();
        Rc::new(ext)
    }

    /// Binds what is not bound yet; returns the ports newly taken.
    fn take_ports(&self) -> (Vec<u16>, Vec<u16>) {
        let mut ports = self.ports.borrow_mut();
        let addrs = &self.settings.bind;
        let tcp = ports.tcp.take(
            &self.settings.tcp,
            |port| bind::tcp(port, addrs),
            &mut self.pending_tcp.borrow_mut(),
        );
        let udp = ports.udp.take(
            &self.settings.udp,
            |port| bind::udp(port, addrs),
            &mut self.pending_udp.borrow_mut(),
        );
        (tcp, udp)
    }

    /// One line on what is taken and what was skipped, and why.
    pub fn report(&self) -> String {
        let p = self.ports.borrow();
        let list = |t: &Taken| format_ports(&t.bound.iter().copied().collect::<Vec<_>>());
        let mut s = format!(
            "listening on TCP {} and UDP {}",
            or_none(list(&p.tcp)),
            or_none(list(&p.udp))
        );
        p.tcp.report_skipped("TCP", &mut s);
        p.udp.report_skipped("UDP", &mut s);
        s
    }

    /// The ports taken and the ones skipped and why, for the core:
    /// `{"tcp": [21, 22], "udp": [53], "skipped": [{"protocol": "tcp",
    /// "port": 22, "reason": "in use"}]}`. Bounded by the configured ports.
    pub fn ports_report(&self) -> Map<String, Value> {
        let p = self.ports.borrow();
        let list = |t: &Taken| Value::Array(t.bound.iter().map(|&p| p.into()).collect());
        let mut skipped = Vec::new();
        p.tcp.skipped_json("tcp", &mut skipped);
        p.udp.skipped_json("udp", &mut skipped);
        let mut m = Map::new();
        m.insert("tcp".into(), list(&p.tcp));
        m.insert("udp".into(), list(&p.udp));
        m.insert("skipped".into(), Value::Array(skipped));
        m
    }

    /// TCP ports taken.
    pub fn tcp_ports(&self) -> Vec<u16> {
        self.ports.borrow().tcp.bound.iter().copied().collect()
    }

    /// Serves every port taken, retries the skipped ones, cuts flood
    /// summaries. Never returns; drop the task to stop.
    pub async fn run(self: Rc<Self>, ex: Rc<LocalExecutor<'static>>) {
        self.start_pending(&ex);
        let mut last_retry = Instant::now();
        let mut last_notice = Instant::now() - NOTICE_EVERY;
        let mut noticed = (0u64, 0u64);
        loop {
            Timer::after(TICK).await;
            let now = Instant::now();
            let summaries = self.detector.borrow_mut().tick(now);
            for f in summaries {
                let mut d = Map::new();
                d.insert("src_ip".into(), f.src.to_string().into());
                d.insert("connections".into(), f.connections.into());
                d.insert("ports".into(), f.ports.into());
                d.insert("window_s".into(), f.since_secs.into());
                self.sink.event("extension.flood", d);
            }
            let counts = (
                self.counters.overflow.get(),
                self.detector.borrow().evicted(),
            );
            if counts != noticed && now.duration_since(last_notice) >= NOTICE_EVERY {
                self.sink.notice(
                    true,
                    format!(
                        "extension limits reached: {} connections closed unread ({} being read at most), {} sources forgotten (tracking a fixed number)",
                        counts.0, MAX_IN_FLIGHT, counts.1
                    ),
                );
                noticed = counts;
                last_notice = now;
            }
            if now.duration_since(last_retry) >= self.settings.retry {
                last_retry = now;
                let (tcp, udp) = self.take_ports();
                if !tcp.is_empty() || !udp.is_empty() {
                    self.sink.notice(
                        false,
                        format!(
                            "now also listening on TCP {} and UDP {}",
                            or_none(format_ports(&tcp)),
                            or_none(format_ports(&udp))
                        ),
                    );
                    self.start_pending(&ex);
                    self.sink.ports(self.ports_report());
                }
            }
        }
    }

    fn start_pending(self: &Rc<Self>, ex: &Rc<LocalExecutor<'static>>) {
        for (port, listener) in self.pending_tcp.borrow_mut().drain(..) {
            let (me, ex2) = (self.clone(), ex.clone());
            ex.spawn(async move { me.accept_loop(ex2, port, listener).await })
                .detach();
        }
        for (port, socket) in self.pending_udp.borrow_mut().drain(..) {
            let me = self.clone();
            ex.spawn(async move { me.udp_loop(port, socket).await })
                .detach();
        }
    }

    async fn accept_loop(
        self: Rc<Self>,
        ex: Rc<LocalExecutor<'static>>,
        port: u16,
        listener: Async<TcpListener>,
    ) {
        loop {
            let (stream, peer) = match accept(&listener).await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait, never spin.
                    log::warn!("extension: accepting on port {port}: {e}");
                    Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            bump(&self.counters.connections);
            // A flooding source is still answered (a server that stops
            // answering a busy client gives the tripwire away), quietly,
            // and with at most half the places.
            let report = self.observe(peer, port);
            let quiet = self.quiet_in_flight.get();
            if !report && !crate::respond::answers(port) {
                continue; // nothing to imitate there: closed at once
            }
            if self.in_flight.get() >= MAX_IN_FLIGHT || (!report && quiet >= MAX_IN_FLIGHT / 2) {
                bump(&self.counters.overflow);
                continue; // dropping `stream` closes it
            }
            self.in_flight.set(self.in_flight.get() + 1);
            if !report {
                self.quiet_in_flight.set(quiet + 1);
            }
            let Ok(stream) = Async::new(stream) else {
                continue;
            };
            let me = self.clone();
            ex.spawn(async move {
                me.connection(stream, peer, port, report).await;
                me.in_flight.set(me.in_flight.get() - 1);
                if !report {
                    me.quiet_in_flight.set(me.quiet_in_flight.get() - 1);
                }
            })
            .detach();
        }
    }

    /// Feeds the scan detector; false when the source floods.
    fn observe(&self, peer: SocketAddr, port: u16) -> bool {
        let (verdict, scan) = self
            .detector
            .borrow_mut()
            .observe(peer.ip(), port, Instant::now());
        if let Some(s) = scan {
            let mut d = Map::new();
            d.insert("src_ip".into(), s.src.to_string().into());
            d.insert("ports".into(), s.ports.into());
            d.insert("count".into(), s.count.into());
            d.insert("window_s".into(), s.window_secs.into());
            self.sink.event("extension.portscan", d);
        }
        match verdict {
            Verdict::Report => true,
            Verdict::Suppress => {
                bump(&self.counters.suppressed);
                false
            }
        }
    }

    /// Answers one connection; `report`: one event for it (and one per
    /// login), else it only counts towards its source's flood summary.
    async fn connection(
        &self,
        mut stream: Async<TcpStream>,
        peer: SocketAddr,
        port: u16,
        report: bool,
    ) {
        let tls = matches!(service_name(port), "https" | "rdp")
            && self.tls_in_flight.get() < MAX_TLS_IN_FLIGHT
            && self
                .identity
                .get_or_init(|| tls_identity(self.settings.profile))
                .is_some();
        if tls {
            self.tls_in_flight.set(self.tls_in_flight.get() + 1);
        }
        let _tls_place = Release(&self.tls_in_flight, tls);
        // A key exchange costs a key agreement and a signature: a flooding
        // source gets the banner only.
        let ssh_key = if report && service_name(port) == "ssh" {
            self.ssh_key
                .get_or_init(|| ssh_host_key(self.settings.ssh_host_key.as_deref()))
                .as_ref()
        } else {
            None
        };
        let cx = Context {
            tls: self.identity.get().and_then(Option::as_ref).filter(|_| tls),
            ssh_key,
            profile: self.settings.profile,
            port,
            banner: self.settings.banners.get(&port).map(String::as_str),
            peer: peer.ip(),
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            seed: self.next_seed(),
            host_id: self.host_id,
            redis_open: self.settings.redis_open,
        };
        let mut dialogue = Dialogue::new(&cx);
        let mut out = Out::new();
        let refused = dialogue.greet(&cx, &mut out) == Step::Close;
        let mut buf = vec![0u8; MAX_READ];
        let n = if send(&mut stream, &out).await && !refused {
            converse(
                &mut stream,
                &mut buf,
                &mut dialogue,
                &cx,
                &mut out,
                self.settings.max_read,
                if report {
                    self.settings.read_timeout
                } else {
                    self.settings.read_timeout.min(QUIET_IDLE)
                },
            )
            .await
        } else {
            0
        };
        if !report {
            return;
        }
        let first = buf.get(..n).unwrap_or_default();
        let fp = fingerprint(port, first);
        let mut d = Map::new();
        d.insert("src_ip".into(), peer.ip().to_string().into());
        d.insert("src_port".into(), peer.port().into());
        d.insert("dst_port".into(), port.into());
        d.insert("transport".into(), "tcp".into());
        for (k, v) in fp.to_json() {
            d.insert(k, v);
        }
        d.insert("bytes".into(), n.into());
        d.insert(
            "first_bytes".into(),
            hex(first.get(..n.min(FIRST_BYTES)).unwrap_or_default()).into(),
        );
        bump(&self.counters.reported);
        self.sink.event("extension.connection", d);
        for login in dialogue.logins() {
            let mut d = Map::new();
            d.insert("src_ip".into(), peer.ip().to_string().into());
            d.insert("src_port".into(), peer.port().into());
            d.insert("dst_port".into(), port.into());
            for (k, v) in login.to_json() {
                d.insert(k, v);
            }
            bump(&self.counters.logins);
            self.sink.event("extension.login", d);
        }
    }

    /// A fresh value per connection for challenges and connection ids
    /// (SplitMix64 over a random start: cheap, and not guessable from
    /// outside).
    fn next_seed(&self) -> u64 {
        let mut z = self.seed.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.seed.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    async fn udp_loop(self: Rc<Self>, port: u16, socket: Async<UdpSocket>) {
        let mut buf = vec![0u8; self.settings.max_read];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(_) => {
                    Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            bump(&self.counters.datagrams);
            if !self.observe(peer, port) {
                continue;
            }
            let first = buf.get(..n).unwrap_or_default();
            let mut d = Map::new();
            d.insert("src_ip".into(), peer.ip().to_string().into());
            d.insert("src_port".into(), peer.port().into());
            d.insert("dst_port".into(), port.into());
            d.insert("transport".into(), "udp".into());
            d.insert("protocol".into(), service_name(port).into());
            d.insert("bytes".into(), n.into());
            d.insert(
                "first_bytes".into(),
                hex(first.get(..n.min(FIRST_BYTES)).unwrap_or_default()).into(),
            );
            bump(&self.counters.reported);
            self.sink.event("extension.connection", d);
        }
    }
}

/// The next connection, not yet registered with the reactor: most of a
/// flood is closed at once, and a connection that is never read costs no
/// registration (two `epoll_ctl` calls and an allocation) that way.
async fn accept(listener: &Async<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    loop {
        match listener.get_ref().accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => listener.readable().await?,
            accepted => return accepted,
        }
    }
}

/// Gives back a place of a counter when dropped (`taken`: whether one was
/// taken), whichever way the connection ends.
struct Release<'a>(&'a Cell<usize>, bool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.set(self.0.get().saturating_sub(1));
        }
    }
}

/// The TLS certificate for `profile`'s host name, or `None` (logged).
fn tls_identity(profile: crate::profile::Profile) -> Option<Identity> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match Identity::new(profile.host_name(), now) {
        Ok(id) => Some(id),
        Err(e) => {
            log::warn!("extension: no TLS on the HTTPS and RDP ports: {e}");
            None
        }
    }
}

/// The SSH host key kept in `path` (made there at the first run), else a
/// new one for this run, else `None`; each fallback logged.
fn ssh_host_key(path: Option<&std::path::Path>) -> Option<HostKey> {
    if let Some(path) = path {
        match HostKey::load_or_create(path) {
            Ok(key) => return Some(key),
            Err(e) => log::warn!("extension: {e}; a new SSH host key serves this run"),
        }
    }
    HostKey::new()
        .map_err(|e| log::warn!("extension: SSH ports send their banner only: {e}"))
        .ok()
}

/// A random start for [`Extension::next_seed`] (the clock if the system
/// has no randomness to give, which only makes challenges guessable).
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64;
    }
    u64::from_le_bytes(b)
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

/// Sends `out` within [`BANNER_TIMEOUT`]; false if the peer is gone.
async fn send(stream: &mut Async<TcpStream>, out: &Out) -> bool {
    if out.bytes().is_empty() {
        return true;
    }
    future::or(
        async { stream.write_all(out.bytes()).await.is_ok() },
        async {
            Timer::after(BANNER_TIMEOUT).await;
            false
        },
    )
    .await
}

/// Reads what the client sends and lets `dialogue` answer, until `limit`
/// bytes were read, the dialogue ends, the client closes or is silent for
/// `idle`, or [`DIALOGUE_IDLES`] times `idle` pass; returns the bytes read. Where the
/// dialogue has nothing more to say ([`Step::Linger`]) the read goes on
/// only while bytes keep coming ([`MORE_BYTES`]), so that a TLS
/// ClientHello is read whole (up to the buffer's end) for its JA3.
async fn converse(
    stream: &mut Async<TcpStream>,
    buf: &mut [u8],
    dialogue: &mut Dialogue,
    cx: &Context<'_>,
    out: &mut Out,
    limit: usize,
    idle: Duration,
) -> usize {
    let end = Instant::now() + idle * DIALOGUE_IDLES;
    let mut limit = limit.min(buf.len());
    let mut n = 0;
    let mut lingering = false;
    while n < limit {
        let wait = if lingering { MORE_BYTES } else { idle };
        let deadline = (Instant::now() + wait).min(end);
        let Some(rest) = buf.get_mut(n..limit) else {
            break;
        };
        let read = future::or(async { Some(stream.read(rest).await) }, async {
            Timer::at(deadline).await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | Some(Err(_)) | None => break,
            Some(Ok(k)) => n += k,
        }
        let all = buf.get(..n).unwrap_or_default();
        if let Some(record) = tls_record_len(all) {
            limit = limit.max(record.min(buf.len()));
        }
        if lingering {
            continue;
        }
        out.clear();
        let step = dialogue.input(cx, all, out);
        if !send(stream, out).await {
            break;
        }
        match step {
            Step::More => {}
            Step::Linger => lingering = true,
            Step::Close => break,
        }
    }
    n
}

/// The length of a TLS handshake record (header included) that `first`
/// starts with.
fn tls_record_len(first: &[u8]) -> Option<usize> {
    match first {
        [0x16, 0x03, _, hi, lo, ..] => Some(5 + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}
