//! A node connection's decisions over an in-memory stream: what a first
//! message gets, and what each later line does to the node.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::future;
use honeybee_proto::{encode, NodeStatus, NodeStatusUpdate, NodeType};

use super::*;
use crate::clock::Clock;
use crate::config::Enrollment;
use crate::node::registry::Policy;
use crate::store::{sqlite, NodeStore, NodeWrite};

/// A connection: the node's lines to read, and what the core wrote.
struct Pipe {
    input: futures_lite::io::Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Pipe {
    fn new(input: Vec<u8>) -> Pipe {
        Pipe {
            input: futures_lite::io::Cursor::new(input),
            output: Vec::new(),
        }
    }

    /// The messages the core sent.
    fn sent(&self) -> Vec<CoreMessage> {
        self.output
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| decode::<CoreMessage>(l).unwrap())
            .collect()
    }
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Fixture {
    ctx: NodeContext,
    store: Arc<dyn NodeStore>,
    dir: std::path::PathBuf,
}

impl Fixture {
    /// The node's status changes as its page shows them, newest first.
    fn status_history(&self, node_id: u64) -> Vec<String> {
        // Writes commit in order: once this one has, every earlier one has.
        self.store
            .submit(NodeWrite::Delete(u64::MAX))
            .wait()
            .unwrap();
        let events = self.ctx.registry.node_events(node_id, 100).unwrap();
        events
            .into_iter()
            .filter(|e| e.kind == crate::node::registry::STATUS_EVENT)
            .filter_map(|e| e.message)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn fixture(name: &str, policy: Policy) -> Fixture {
    let dir = std::env::temp_dir().join(format!("hb-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    honeybee_process::private_files::create_private_dir(&dir).unwrap();
    let store = Arc::new(sqlite::open(&dir.join("t.db")).unwrap());
    let metrics = Arc::new(Metrics::default());
    let bus = Arc::new(Bus::new());
    let fleet: Arc<dyn Fleet> = Arc::new(crate::fleet::Alone::new("test".into()));
    let registry = Registry::load(
        store.clone() as Arc<dyn NodeStore>,
        metrics.clone(),
        bus.clone(),
        policy,
        Clock::new(),
        fleet.clone(),
    )
    .unwrap();
    Fixture {
        store: store.clone(),
        ctx: NodeContext {
            registry: Arc::new(registry),
            events: store as Arc<dyn EventStore>,
            bus,
            metrics,
            max_message_bytes: 4096,
            fleet,
        },
        dir,
    }
}

const PEER: &str = "198.51.100.4:41000";

fn line(m: NodeMessage) -> Vec<u8> {
    encode(&Envelope::new(m))
}

fn registration(node_id: u64) -> NodeMessage {
    NodeMessage::NodeRegistration(NodeRegistration {
        node_id,
        node_name: "n".into(),
        address: "10.0.0.1".into(),
        port: 0,
        node_type: NodeType::Agent,
        totp_code: None,
        enrollment_token: None,
        agent_version: None,
        capabilities: Vec::new(),
        spool_epoch: None,
    })
}

fn heartbeat(node_id: u64, status: NodeStatus) -> NodeMessage {
    NodeMessage::NodeStatusUpdate(NodeStatusUpdate { node_id, status })
}

/// Reads the first line and registers with it, as a listener does.
fn connect(f: &Fixture, input: Vec<u8>) -> (Option<Session<Pipe>>, Vec<CoreMessage>) {
    let peer: SocketAddr = PEER.parse().unwrap();
    future::block_on(async {
        let Some((mut pipe, frames, first)) = first_message(Pipe::new(input), peer, &f.ctx).await
        else {
            return (None, Vec::new());
        };
        // Only what registration writes is of interest.
        pipe.output.clear();
        let mut session = register_node(pipe, frames, first, peer, None, &f.ctx).await;
        let sent = match &mut session {
            Some(s) => s.link.stream.sent(),
            None => Vec::new(),
        };
        (session, sent)
    })
}

/// What a connection whose registration is refused was sent.
fn refusal(f: &Fixture, input: Vec<u8>) -> Vec<CoreMessage> {
    let peer: SocketAddr = PEER.parse().unwrap();
    future::block_on(async {
        let mut pipe = Pipe::new(input);
        let (_, frames, first) = first_message(&mut pipe, peer, &f.ctx)
            .await
            .expect("a first message");
        let mut link = Link {
            stream: &mut pipe,
            frames,
            warner: Warner::new(peer),
        };
        assert!(register(&mut link, first, None, &f.ctx).await.is_none());
        pipe.sent()
    })
}

fn refused_with(sent: &[CoreMessage]) -> (bool, Option<String>) {
    match sent {
        [CoreMessage::RegistrationAck(a)] => (a.accepted, a.message.clone()),
        other => panic!("expected one RegistrationAck, got {other:?}"),
    }
}

#[test]
fn a_first_message_that_is_not_a_registration_is_refused_with_why() {
    let f = fixture("not-reg", Policy::for_tests());
    let sent = refusal(&f, line(heartbeat(1, NodeStatus::Running)));
    assert_eq!(
        refused_with(&sent),
        (
            false,
            Some("expected NodeRegistration as the first message, got NodeStatusUpdate".into())
        )
    );
    assert_eq!(
        f.ctx
            .metrics
            .protocol_errors(ProtocolError::NotRegistration),
        1
    );
    assert!(f.ctx.registry.list().is_empty());
}

/// Whether the first line got through, and what the core answered.
fn first_line(f: &Fixture, input: Vec<u8>) -> (bool, Vec<CoreMessage>) {
    let peer: SocketAddr = PEER.parse().unwrap();
    let mut pipe = Pipe::new(input);
    let got = future::block_on(first_message(&mut pipe, peer, &f.ctx)).is_some();
    (got, pipe.sent())
}

#[test]
fn a_first_line_that_is_not_json_or_too_long_closes_without_an_answer() {
    let f = fixture("garbage", Policy::for_tests());
    assert_eq!(first_line(&f, b"{not json\n".to_vec()), (false, vec![]));
    assert_eq!(f.ctx.metrics.protocol_errors(ProtocolError::InvalidJson), 1);
    let long = [vec![b'x'; MAX_REGISTRATION_BYTES + 10], b"\n".to_vec()].concat();
    assert_eq!(first_line(&f, long), (false, vec![]));
    assert_eq!(f.ctx.metrics.protocol_errors(ProtocolError::TooLong), 1);
    assert_eq!(first_line(&f, Vec::new()), (false, vec![]), "closed first");
}

#[test]
fn a_first_line_of_another_protocol_version_is_refused_with_why() {
    let f = fixture("version", Policy::for_tests());
    let mut v1 = line(registration(1));
    let at = v1.windows(11).position(|w| w == b"\"version\":2").unwrap();
    v1[at + 10] = b'1';
    let (got, sent) = first_line(&f, v1);
    assert!(!got);
    let (accepted, message) = refused_with(&sent);
    assert!(!accepted);
    assert!(message
        .unwrap()
        .starts_with("protocol version 1 is not supported"));
    assert_eq!(
        f.ctx.metrics.protocol_errors(ProtocolError::WrongVersion),
        1
    );
}

#[test]
fn an_accepted_registration_is_acked_with_the_key_after_it_is_stored() {
    let f = fixture("accept", Policy::for_tests());
    let (session, sent) = connect(&f, line(registration(5)));
    let session = session.expect("registered");
    match sent.as_slice() {
        [CoreMessage::RegistrationAck(a)] => {
            assert!(a.accepted);
            assert_eq!(a.node_id, 5);
            assert_eq!(a.totp_key.as_ref().map(String::len), Some(32));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.node.node_id, 5);
    assert_eq!(
        f.ctx.metrics.registrations_accepted.load(Ordering::Relaxed),
        1
    );
    assert!(f.ctx.registry.get(5).unwrap().connected);
}

#[test]
fn a_refused_registration_is_answered_with_the_reason() {
    let mut policy = Policy::for_tests();
    policy.enrollment = Enrollment::Token;
    policy.enrollment_token = "t".into();
    let f = fixture("token", policy);
    let sent = refusal(&f, line(registration(5)));
    assert_eq!(
        refused_with(&sent),
        (false, Some("enrollment token required".into()))
    );
}

/// A registered node and the lines it sends next.
fn drain(f: &Fixture, node_id: u64, lines: Vec<u8>) -> (Flow, Tally, Registered) {
    let (session, _) = connect(f, line(registration(node_id)));
    let (_, _, node, mut warner) = session.unwrap().into_parts();
    let mut frames = LineDecoder::new(f.ctx.max_message_bytes);
    frames.feed(&lines).unwrap();
    let mut tally = Tally::default();
    let flow = drain_frames(&mut frames, &node, &mut warner, &f.ctx, &mut tally);
    (flow, tally, node)
}

fn status(f: &Fixture, node_id: u64) -> &'static str {
    f.ctx.registry.get(node_id).unwrap().status
}

#[test]
fn heartbeats_are_counted_and_a_status_change_is_in_the_history_once() {
    let f = fixture("heartbeats", Policy::for_tests());
    let lines = [
        line(heartbeat(1, NodeStatus::Connected)),
        line(heartbeat(1, NodeStatus::Running)),
        line(heartbeat(1, NodeStatus::Running)),
    ]
    .concat();
    let (flow, tally, node) = drain(&f, 1, lines);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        tally,
        Tally {
            messages: 3,
            urgent: 0
        }
    );
    assert_eq!(f.ctx.metrics.heartbeats.load(Ordering::Relaxed), 3);
    assert_eq!(status(&f, 1), NodeStatus::Running.as_str());
    assert!(node.live.is_status(NodeStatus::Running));
    assert_eq!(f.status_history(1), ["Running", "Connected"]);
}

#[test]
fn node_drop_ends_the_session_as_stopped_and_later_lines_are_not_read() {
    let f = fixture("drop", Policy::for_tests());
    // An agent's goodbye: Stopped, then NodeDrop.
    let lines = [
        line(heartbeat(1, NodeStatus::Stopped)),
        line(NodeMessage::NodeDrop),
        line(heartbeat(1, NodeStatus::Running)),
    ]
    .concat();
    let (flow, tally, node) = drain(&f, 1, lines);
    assert_eq!(flow, Flow::Dropped);
    assert_eq!(
        tally,
        Tally {
            messages: 2,
            urgent: 1
        }
    );
    assert_eq!(f.ctx.metrics.heartbeats.load(Ordering::Relaxed), 1);
    finish(&node, flow, &f.ctx);
    assert_eq!(status(&f, 1), NodeStatus::Stopped.as_str());
    assert!(!f.ctx.registry.get(1).unwrap().connected);
    // Said twice, recorded once.
    assert_eq!(f.status_history(1), ["Stopped", "Connected"]);
}

#[test]
fn a_connection_that_just_ends_leaves_the_node_unknown() {
    let f = fixture("lost", Policy::for_tests());
    let (flow, _, node) = drain(&f, 1, Vec::new());
    assert_eq!(flow, Flow::Continue);
    finish(&node, Flow::Close, &f.ctx);
    assert_eq!(status(&f, 1), NodeStatus::Unknown.as_str());
}

#[test]
fn broken_json_closes_but_an_unknown_message_is_skipped() {
    let f = fixture("broken", Policy::for_tests());
    let unknown = br#"{"version":2,"message":{"FutureThing":{}}}"#;
    let lines = [
        unknown.to_vec(),
        b"\n".to_vec(),
        line(heartbeat(1, NodeStatus::Running)),
        b"{not json\n".to_vec(),
        line(heartbeat(1, NodeStatus::Failed)),
    ]
    .concat();
    let (flow, tally, _) = drain(&f, 1, lines);
    assert_eq!(flow, Flow::Close);
    assert_eq!(tally.messages, 3, "nothing after the broken line");
    assert_eq!(
        f.ctx.metrics.protocol_errors(ProtocolError::UnknownVariant),
        1
    );
    assert_eq!(status(&f, 1), NodeStatus::Running.as_str());
}

#[test]
fn a_line_over_the_limit_closes_the_connection() {
    let f = fixture("long", Policy::for_tests());
    let lines = [
        line(heartbeat(1, NodeStatus::Running)),
        vec![b' '; 5000],
        b"\n".to_vec(),
        line(heartbeat(1, NodeStatus::Failed)),
    ]
    .concat();
    let (flow, tally, _) = drain(&f, 1, lines);
    assert_eq!(flow, Flow::Close);
    assert_eq!(tally.messages, 1);
    assert_eq!(f.ctx.metrics.protocol_errors(ProtocolError::TooLong), 1);
    assert_eq!(status(&f, 1), NodeStatus::Running.as_str());
}

#[test]
fn unregistered_warnings_are_limited_per_second_and_the_held_back_counted() {
    let budget = Budget::new();
    let per_second = UNREGISTERED_WARNINGS_PER_SECOND;
    let first: Vec<Option<u64>> = (0..per_second + 3).map(|_| budget.take(100)).collect();
    assert!(first[..per_second as usize].iter().all(|t| *t == Some(0)));
    assert_eq!(first[per_second as usize..], [None, None, None]);
    // The next second: the first warning says how many were held back.
    assert_eq!(budget.take(101), Some(3));
    assert_eq!(budget.take(101), Some(0));
    for _ in 2..per_second {
        budget.take(101);
    }
    assert_eq!(budget.take(101), None);
    assert_eq!(budget.take(102), Some(1));
}
