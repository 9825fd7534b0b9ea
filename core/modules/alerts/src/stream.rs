//! The core's stream port, as a module reads it: register with the API
//! token, subscribe to events, status and nodes from a cursor, and hand
//! every message to a [`Handler`]. On `lagged N` or a stopped replay it
//! subscribes again from the last cursor handled, so nothing is missed;
//! the handler skips what it already handled. Events of the old
//! subscription still on their way (the core writes what it queued until
//! it reads the new `Subscribe`) are not handled: they come after the gap,
//! and handling them would move the cursor past the events the replay is
//! about to send. The core's `subscribed` answer marks where the new
//! subscription starts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use honeybee_proto::{
    encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Envelope,
    LineDecoder, ModuleMessage, NodeMessage, NodeStatusUpdate, PotEvent, PotStatusUpdate,
    StreamMessage, Subscribe,
};
use serde::Deserialize;

use crate::secret::Secret;

/// Longest line read (the core sends at most 1 MiB per message).
const MAX_LINE: usize = 1024 * 1024 + 64 * 1024;
/// How often the handler gets [`Handler::idle`] when nothing arrives.
const IDLE: Duration = Duration::from_millis(500);

/// One message from the stream.
#[derive(Debug)]
pub enum Input {
    /// A stored event and its cursor.
    Event(PotEvent, Option<String>),
    /// A node's status changed.
    NodeStatus(NodeStatusUpdate),
    /// A pot's status changed.
    PotStatus(PotStatusUpdate),
}

/// What the stream feeds.
pub trait Handler {
    /// One message.
    fn input(&mut self, input: Input);
    /// Nothing arrived for a while (or between messages, at least every
    /// [`IDLE`]): time to send digests and save state.
    fn idle(&mut self);
    /// The cursor to resume after.
    fn cursor(&self) -> Option<String>;
    /// Whether to stop.
    fn stopping(&self) -> bool;
    /// The core refused the cursor (a database replaced, say): start from
    /// the live events.
    fn forget_cursor(&mut self);
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    cursor: Option<String>,
    message: StreamMessage,
}

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    /// The handler asked to stop.
    Stopped,
    /// The core refused the token: retrying will not help until it changes.
    BadToken,
    /// Anything else (connection lost, core restarting): retry.
    Lost(String),
}

/// One session: connects to `addr`, registers as `name` and runs until
/// the connection ends or the handler stops.
pub fn session(addr: &str, token: &Secret, name: &str, h: &mut dyn Handler) -> End {
    let deadline = Instant::now() + Duration::from_secs(5);
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']'),
            p.parse().unwrap_or(0),
        ),
        None => return End::Lost(format!("stream address {addr:?} is not host:port")),
    };
    let mut s = match crate::http::connect(host, port, deadline) {
        Ok(s) => s,
        Err(e) => return End::Lost(format!("stream {addr}: {e}")),
    };
    let register = ModuleMessage::BackendRegistration(BackendRegistration {
        backend_name: name.to_string(),
        backend_type: BackendType::Monitoring,
        token: token.expose().to_string(),
    });
    if let Err(e) = send(&mut s, &register).and_then(|_| subscribe(&mut s, h.cursor())) {
        return End::Lost(format!("stream {addr}: {e}"));
    }
    let _ = s.set_read_timeout(Some(IDLE));
    let mut frames = LineDecoder::new(MAX_LINE);
    let mut subscribed = false;
    let mut last_idle = Instant::now();
    loop {
        if h.stopping() {
            return End::Stopped;
        }
        if last_idle.elapsed() >= IDLE {
            h.idle();
            last_idle = Instant::now();
        }
        loop {
            let line = match frames.next_frame() {
                Ok(Some(line)) => serde_json::from_slice::<Line>(line),
                Ok(None) => break,
                Err(e) => return End::Lost(format!("stream {addr}: {e}")),
            };
            let again = match line {
                Ok(l) => handle(l, h, &mut subscribed),
                // A message this module does not know: not its business.
                Err(e) => {
                    log::debug!("stream: skipping a line: {e}");
                    Ok(false)
                }
            };
            match again {
                Ok(true) => {
                    subscribed = false;
                    if let Err(e) = subscribe(&mut s, h.cursor()) {
                        return End::Lost(format!("stream {addr}: {e}"));
                    }
                }
                Ok(false) => {}
                Err(end) => return end,
            }
        }
        match s.read(frames.window()) {
            Ok(0) => return End::Lost(format!("stream {addr}: the core closed the connection")),
            Ok(n) => frames.filled(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return End::Lost(format!("stream {addr}: {e}")),
        }
    }
}

/// Handles one line; `Ok(true)` when the subscription must be renewed
/// from the last cursor. Events before the core said `subscribed` belong
/// to a subscription being replaced, and are left to its replay.
fn handle(line: Line, h: &mut dyn Handler, subscribed: &mut bool) -> Result<bool, End> {
    match line.message {
        StreamMessage::Node(NodeMessage::PotEvent(e)) => {
            if *subscribed {
                h.input(Input::Event(e, line.cursor));
            }
        }
        StreamMessage::Node(NodeMessage::NodeStatusUpdate(u)) => h.input(Input::NodeStatus(u)),
        StreamMessage::Node(NodeMessage::PotStatusUpdate(u)) => h.input(Input::PotStatus(u)),
        StreamMessage::Node(_) => {}
        StreamMessage::BackendResponse(BackendResponse::Failure(why)) => {
            if why.contains("invalid API token") {
                return Err(End::BadToken);
            }
            if why.starts_with("lagged") || why.starts_with("replay stopped") {
                log::warn!("stream: {why}; resuming from the last event handled");
                return Ok(true);
            }
            if why.starts_with("invalid cursor") {
                log::warn!("stream: {why}; continuing with live events");
                h.forget_cursor();
                return Ok(true);
            }
            log::warn!("stream: the core answered: {why}");
        }
        StreamMessage::BackendResponse(BackendResponse::Success { message, .. }) => {
            if message.as_deref() == Some("subscribed") {
                *subscribed = true;
            }
        }
    }
    Ok(false)
}

fn subscribe(s: &mut TcpStream, cursor: Option<String>) -> std::io::Result<()> {
    let sub = ModuleMessage::BackendCommand(BackendCommand::Subscribe(Subscribe {
        topics: vec!["events".into(), "status".into(), "nodes".into()],
        filter: None,
        cursor,
    }));
    send(s, &sub)
}

fn send(s: &mut TcpStream, m: &ModuleMessage) -> std::io::Result<()> {
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    s.write_all(&encode(&Envelope::new(m.clone())))?;
    s.flush()
}
