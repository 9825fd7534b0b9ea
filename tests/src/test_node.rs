//! A Protocol v2 node for tests: TCP or TLS 1.3, optional source address,
//! NDJSON envelopes out, [`CoreMessage`]s in, TOTP codes for a chosen step.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_proto::{
    decode, encode, CoreMessage, DecodeError, Envelope, EventAck, FrameError, LineDecoder,
    NodeMessage, NodeRegistration, NodeStatus, NodeStatusUpdate, NodeType, PotEvent, PotStatus,
    PotStatusUpdate, RegistrationAck, DEFAULT_MAX_MESSAGE_BYTES,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, StreamOwned};
use socket2::{Domain, Protocol, Socket, Type};

use crate::totp;

/// How long a test waits for an answer it expects.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no message came.
#[derive(Debug)]
pub enum RecvError {
    /// Nothing complete arrived in time; the connection is still open.
    Timeout,
    /// The core closed the connection (EOF).
    Closed,
    /// A transport error: reset, TLS alert …
    Io(io::Error),
    /// The core sent a line over 1 MiB.
    Frame(FrameError),
    /// The core sent a line that is not a valid core message.
    Decode(DecodeError, String),
    /// A message came, but not the one expected.
    Unexpected(Box<CoreMessage>),
}

impl RecvError {
    /// Whether the connection is gone (closed, reset or failed TLS).
    pub fn is_disconnect(&self) -> bool {
        matches!(self, RecvError::Closed | RecvError::Io(_))
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("timed out"),
            RecvError::Closed => f.write_str("connection closed by the core"),
            RecvError::Io(e) => write!(f, "I/O error: {e}"),
            RecvError::Frame(e) => write!(f, "framing error: {e}"),
            RecvError::Decode(e, line) => write!(f, "cannot decode {line:?}: {e}"),
            RecvError::Unexpected(m) => write!(f, "unexpected message {m:?}"),
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Opens a TCP connection to `addr`, from `source` (port 0) if given, with
/// an optional small send buffer (set before connecting).
pub fn tcp_connect(
    source: Option<IpAddr>,
    addr: SocketAddr,
    send_buffer: Option<usize>,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(size) = send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(ip) = source {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    Ok(stream)
}

/// Whether the peer has closed (or reset) `stream`, checked without blocking
/// and without consuming data.
pub fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let closed = match stream.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
        Err(_) => true,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// One connection to the core's node port.
pub struct TestNode {
    stream: Stream,
    decoder: LineDecoder,
    local_addr: SocketAddr,
}

impl fmt::Debug for TestNode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("TestNode")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl TestNode {
    /// Wraps a connected TCP stream.
    pub fn from_tcp(stream: TcpStream) -> io::Result<TestNode> {
        let local_addr = stream.local_addr()?;
        Ok(TestNode {
            stream: Stream::Plain(stream),
            decoder: LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES),
            local_addr,
        })
    }

    /// Plain TCP to `addr` from 127.0.0.1.
    pub fn connect(addr: SocketAddr) -> io::Result<TestNode> {
        Self::from_tcp(tcp_connect(None, addr, None)?)
    }

    /// Plain TCP to `addr` from the loopback address `source` (127.0.0.x).
    pub fn connect_from(source: IpAddr, addr: SocketAddr) -> io::Result<TestNode> {
        Self::from_tcp(tcp_connect(Some(source), addr, None)?)
    }

    /// TLS to `addr` with `config`, checking the server as `server_name`.
    /// Returns once the client side of the handshake is complete; with TLS
    /// 1.3 a refused client certificate shows only on the first read.
    pub fn connect_tls(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<TestNode> {
        Self::connect_tls_from(None, addr, config, server_name)
    }

    /// Like [`TestNode::connect_tls`], from the loopback address `source`.
    pub fn connect_tls_from(
        source: Option<IpAddr>,
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<TestNode> {
        let mut tcp = tcp_connect(source, addr, None)?;
        tcp.set_read_timeout(Some(ACK_TIMEOUT))?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        while conn.wants_write() {
            conn.complete_io(&mut tcp)?;
        }
        let local_addr = tcp.local_addr()?;
        Ok(TestNode {
            stream: Stream::Tls(Box::new(StreamOwned::new(conn, tcp))),
            decoder: LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES),
            local_addr,
        })
    }

    /// The negotiated TLS version (None on plain TCP).
    pub fn tls_version(&self) -> Option<ProtocolVersion> {
        match &self.stream {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.conn.protocol_version(),
        }
    }

    /// Our end of the connection, as the core sees it as `peer_address`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The underlying socket.
    pub fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Sends one message as a v2 envelope.
    pub fn send(&mut self, msg: &NodeMessage) -> io::Result<()> {
        self.send_raw(&encode(&Envelope::new(msg)))
    }

    /// Sends raw bytes and flushes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends a message; panics on failure.
    #[track_caller]
    pub fn must_send(&mut self, msg: &NodeMessage) {
        if let Err(e) = self.send(msg) {
            panic!("sending {} failed: {e}", msg.name());
        }
    }

    /// The next message from the core within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<CoreMessage, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.decoder.next_frame() {
                Ok(Some(line)) => {
                    return decode::<CoreMessage>(line).map_err(|e| {
                        RecvError::Decode(e, String::from_utf8_lossy(line).into_owned())
                    })
                }
                Ok(None) => {}
                Err(e) => return Err(RecvError::Frame(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            if let Err(e) = self
                .stream
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            {
                return Err(RecvError::Io(e));
            }
            let window = self.decoder.window();
            match self.stream.read(window) {
                Ok(0) => return Err(RecvError::Closed),
                Ok(n) => self.decoder.filled(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
    }

    /// The next message, which must be a `RegistrationAck`.
    pub fn recv_ack(&mut self, timeout: Duration) -> Result<RegistrationAck, RecvError> {
        match self.recv(timeout)? {
            CoreMessage::RegistrationAck(ack) => Ok(ack),
            other => Err(RecvError::Unexpected(Box::new(other))),
        }
    }

    /// Sends `registration` and returns the core's answer.
    pub fn try_register(
        &mut self,
        registration: &NodeMessage,
    ) -> Result<RegistrationAck, RecvError> {
        self.send(registration).map_err(RecvError::Io)?;
        self.recv_ack(ACK_TIMEOUT)
    }

    /// Sends `registration` and returns the ack; panics if none comes.
    #[track_caller]
    pub fn register(&mut self, registration: &NodeMessage) -> RegistrationAck {
        match self.try_register(registration) {
            Ok(ack) => ack,
            Err(e) => panic!("no RegistrationAck for {registration:?}: {e}"),
        }
    }

    /// Reads and discards until the core closes the connection; returns how
    /// long that took, or `None` if it is still open after `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if self
                .stream
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .is_err()
            {
                return Some(start.elapsed());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(start.elapsed()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Some(start.elapsed()),
            }
        }
    }

    /// Panics unless the core closes the connection within `timeout`.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration, why: &str) -> Duration {
        match self.wait_closed(timeout) {
            Some(d) => d,
            None => panic!("the core did not close the connection within {timeout:?} ({why})"),
        }
    }

    /// Panics if the core closes the connection (or sends anything) within
    /// `window`.
    #[track_caller]
    pub fn expect_open(&mut self, window: Duration, why: &str) {
        match self.recv(window) {
            Err(RecvError::Timeout) => {}
            Ok(m) => panic!("unexpected message while expecting silence ({why}): {m:?}"),
            Err(e) => panic!("connection ended but should stay open ({why}): {e}"),
        }
    }

    /// Reads `EventAck`s until one covers `seq` (its `seq` ≥ `seq`) or
    /// `timeout` passes. Returns every `EventAck` read, in order; on failure
    /// also the reason (another message, a timeout, a close …).
    pub fn try_wait_event_ack(
        &mut self,
        seq: u64,
        timeout: Duration,
    ) -> Result<Vec<EventAck>, (RecvError, Vec<EventAck>)> {
        let deadline = Instant::now() + timeout;
        let mut acks = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(CoreMessage::EventAck(a)) => {
                    acks.push(a);
                    if a.seq >= seq {
                        return Ok(acks);
                    }
                }
                Ok(other) => return Err((RecvError::Unexpected(Box::new(other)), acks)),
                Err(e) => return Err((e, acks)),
            }
        }
    }

    /// Like [`TestNode::try_wait_event_ack`]; panics (with the acks seen) on
    /// failure.
    #[track_caller]
    pub fn wait_event_ack(&mut self, seq: u64, timeout: Duration) -> Vec<EventAck> {
        match self.try_wait_event_ack(seq, timeout) {
            Ok(acks) => acks,
            Err((e, acks)) => panic!(
                "no EventAck covering seq {seq} within {timeout:?}: {e}; EventAcks seen: {acks:?}"
            ),
        }
    }

    /// Reads until the core closes the connection (or `timeout`), keeping
    /// the `EventAck`s; returns them and whether the close was seen.
    pub fn event_acks_until_closed(&mut self, timeout: Duration) -> (Vec<EventAck>, bool) {
        let deadline = Instant::now() + timeout;
        let mut acks = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(CoreMessage::EventAck(a)) => acks.push(a),
                Ok(_) => {}
                Err(RecvError::Timeout) => return (acks, false),
                Err(RecvError::Decode(..)) => {}
                Err(_) => return (acks, true),
            }
        }
    }

    /// Half-closes our side (no more writes).
    pub fn shutdown_write(&self) {
        let _ = self.stream.tcp().shutdown(Shutdown::Write);
    }
}

/// A node's identity and secrets, as an agent keeps them in its state dir.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The node id.
    pub node_id: u64,
    /// The node name.
    pub name: String,
    /// Full or Agent.
    pub node_type: NodeType,
    /// The TOTP key from the first `RegistrationAck`.
    pub totp_key: Option<String>,
    /// The token for the `token` enrollment policy.
    pub enrollment_token: Option<String>,
    /// `capabilities` sent in every registration (none by default).
    pub capabilities: Vec<String>,
    /// `spool_epoch` sent in every registration (none by default).
    pub spool_epoch: Option<u64>,
}

impl NodeIdentity {
    /// A Full node with a random id.
    pub fn new(name: &str) -> NodeIdentity {
        NodeIdentity {
            node_id: crate::random_node_id(),
            name: name.to_owned(),
            node_type: NodeType::Full,
            totp_key: None,
            enrollment_token: None,
            capabilities: Vec::new(),
            spool_epoch: None,
        }
    }

    /// The same, advertising `caps` (e.g. `"event-ack"`) when registering.
    pub fn with_capabilities(mut self, caps: &[&str]) -> NodeIdentity {
        self.capabilities = caps.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// The same, with an enrollment token.
    pub fn with_token(mut self, token: &str) -> NodeIdentity {
        self.enrollment_token = Some(token.to_owned());
        self
    }

    /// A `NodeRegistration` with the given code (or none).
    pub fn registration(&self, totp_code: Option<String>) -> NodeMessage {
        NodeMessage::NodeRegistration(NodeRegistration {
            node_id: self.node_id,
            node_name: self.name.clone(),
            address: "127.0.0.1".into(),
            port: 8080,
            node_type: self.node_type,
            totp_code,
            enrollment_token: self.enrollment_token.clone(),
            agent_version: Some("0.1.0-test".into()),
            capabilities: self.capabilities.clone(),
            spool_epoch: self.spool_epoch,
        })
    }

    /// A registration without a code.
    pub fn first(&self) -> NodeMessage {
        self.registration(None)
    }

    /// The TOTP key; panics if the node has none yet.
    #[track_caller]
    pub fn key(&self) -> &str {
        self.totp_key
            .as_deref()
            .expect("node has no TOTP key yet (register first)")
    }

    /// The code for the current step plus `offset`.
    #[track_caller]
    pub fn code(&self, offset: i64) -> String {
        totp::code(self.key(), offset)
    }

    /// A registration with the code for the current step plus `offset`.
    #[track_caller]
    pub fn with_code(&self, offset: i64) -> NodeMessage {
        self.registration(Some(self.code(offset)))
    }

    /// A registration with a code that is certainly wrong.
    #[track_caller]
    pub fn with_wrong_code(&self) -> NodeMessage {
        self.registration(Some(totp::wrong_code(self.key())))
    }

    /// Stores the key an accepted ack carries.
    pub fn learn(&mut self, ack: &RegistrationAck) {
        if let Some(k) = &ack.totp_key {
            self.totp_key = Some(k.clone());
        }
    }

    /// `NodeStatusUpdate` with `status`.
    pub fn status(&self, status: NodeStatus) -> NodeMessage {
        NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
            node_id: self.node_id,
            status,
        })
    }

    /// `PotStatusUpdate` for one pot.
    pub fn pot_status(&self, pot_id: &str, pot_type: &str, status: PotStatus) -> NodeMessage {
        NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: self.node_id,
            pot_id: pot_id.into(),
            pot_type: pot_type.into(),
            status,
            message: Some(format!("{pot_id} is {status}")),
            details: None,
        })
    }

    /// A canonical `PotEvent` (docs/protocol.md §4) claiming this node's id.
    /// `data` must be a JSON object.
    #[track_caller]
    pub fn pot_event(
        &self,
        pot_id: &str,
        pot_type: &str,
        event_type: &str,
        timestamp: &str,
        seq: Option<u64>,
        data: serde_json::Value,
    ) -> NodeMessage {
        let serde_json::Value::Object(data) = data else {
            panic!("PotEvent data must be a JSON object, got {data}");
        };
        NodeMessage::PotEvent(PotEvent {
            node_id: self.node_id,
            pot_id: pot_id.into(),
            pot_type: pot_type.into(),
            event_type: event_type.into(),
            timestamp: timestamp.into(),
            seq,
            data,
        })
    }

    /// Connects from 127.0.0.1, registers for the first time, asserts the
    /// ack is accepted with a key, and keeps the key.
    #[track_caller]
    pub fn enroll(&mut self, addr: SocketAddr) -> TestNode {
        let mut node = TestNode::connect(addr)
            .unwrap_or_else(|e| panic!("cannot connect to the node port {addr}: {e}"));
        let ack = node.register(&self.first());
        assert!(
            ack.accepted,
            "first registration of {} refused: {:?}",
            self.node_id, ack.message
        );
        assert_eq!(ack.node_id, self.node_id, "ack for another node id");
        let key = ack
            .totp_key
            .as_deref()
            .unwrap_or_else(|| panic!("first registration ack without totp_key: {ack:?}"));
        assert!(
            totp::is_valid_key(key),
            "totp_key is not 32 base32 chars: len {}",
            key.len()
        );
        self.learn(&ack);
        node
    }

    /// Connects and registers again with the code for step `offset`;
    /// returns the connection and the ack (accepted or not).
    #[track_caller]
    pub fn login(&self, addr: SocketAddr, offset: i64) -> (TestNode, RegistrationAck) {
        let mut node = TestNode::connect(addr)
            .unwrap_or_else(|e| panic!("cannot connect to the node port {addr}: {e}"));
        let ack = node.register(&self.with_code(offset));
        (node, ack)
    }
}
