//! A raw NDJSON live-stream subscriber (docs/protocol.md §7, as the fleet tests'
//! `Subscriber`): registers with the API token, subscribes to `events`, and
//! records when each event arrived.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use honeybee_proto::{
    decode, encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Envelope,
    ModuleMessage, NodeMessage, StreamMessage, Subscribe,
};

pub struct Subscriber {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// What a subscriber heard.
#[derive(Default)]
pub struct Heard {
    /// Per event (`node_id`, `seq`): when it arrived (ns since the epoch the
    /// senders stamp `data.sent_ns` with) and that stamp.
    pub events: HashMap<(u64, u64), (u64, u64)>,
    /// Events the core dropped for this subscriber (`lagged N` notices).
    pub lagged: u64,
}

impl Subscriber {
    /// Connects to a core's stream port and subscribes to events.
    pub fn events(addr: SocketAddr, token: &str) -> Result<Subscriber, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("stream port {addr}: {e}"))?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut s = Subscriber { stream, reader };
        s.send(ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: "bench".into(),
            backend_type: BackendType::Custom("bench".into()),
            token: token.into(),
        }))?;
        s.expect_success("registration")?;
        s.send(ModuleMessage::BackendCommand(BackendCommand::Subscribe(
            Subscribe {
                cursor: None,
                topics: vec!["events".into()],
                filter: None,
            },
        )))?;
        s.expect_success("subscription")?;
        Ok(s)
    }

    fn send(&mut self, m: ModuleMessage) -> Result<(), String> {
        self.stream
            .write_all(&encode(&Envelope::new(m)))
            .map_err(|e| e.to_string())
    }

    fn expect_success(&mut self, what: &str) -> Result<(), String> {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("{what}: {e}"))?;
        match decode::<StreamMessage>(line.trim_end().as_bytes()) {
            Ok(StreamMessage::BackendResponse(BackendResponse::Success { .. })) => Ok(()),
            other => Err(format!("{what}: expected success, got {other:?}")),
        }
    }

    /// Reads until `want` events arrived, or `deadline()` passed (asked
    /// again after each message: the caller may move it), stamping each
    /// with the time since `epoch`.
    pub fn listen(mut self, epoch: Instant, want: u64, deadline: impl Fn() -> Instant) -> Heard {
        let mut heard = Heard::default();
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(200)));
        let mut line = String::new();
        while (heard.events.len() as u64) + heard.lagged < want && Instant::now() < deadline() {
            // read_line keeps a partial line in `line` across a timeout.
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            }
            let now = epoch.elapsed().as_nanos() as u64;
            match decode::<StreamMessage>(line.trim_end().as_bytes()) {
                Ok(StreamMessage::Node(NodeMessage::PotEvent(e))) => {
                    if let (Some(seq), Some(sent)) =
                        (e.seq, e.data.get("sent_ns").and_then(|v| v.as_u64()))
                    {
                        heard.events.insert((e.node_id, seq), (now, sent));
                    }
                }
                Ok(StreamMessage::BackendResponse(BackendResponse::Failure(f))) => {
                    if let Some(n) = f.strip_prefix("lagged ") {
                        heard.lagged += n.parse::<u64>().unwrap_or(0);
                    }
                }
                _ => {}
            }
            line.clear();
        }
        heard
    }
}
