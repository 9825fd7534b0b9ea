//! The agent's side of registration (PROTOCOL.md §5) against a scripted
//! core answer, and what a registered session starts with.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use honeybee_proto::RegistrationAck;

use super::*;
use crate::connect::Connector;
use crate::state::{self, IdentityFile};

/// A connection: the core's answer to read, and what the agent wrote.
struct Pipe {
    input: Cursor<Vec<u8>>,
    output: Rc<RefCell<Vec<u8>>>,
}

impl futures_lite::AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl futures_lite::AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.borrow_mut().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Node {
    uplink: Uplink,
    shared: Rc<Shared>,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ": RFC 6238's "12345678901234567890".
const KEY: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn node(name: &str, token: Option<&str>, key: Option<&str>) -> Node {
    let dir = std::env::temp_dir().join(format!("hb-register-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    state::private_dir(&dir).unwrap();
    let config = Config {
        core: "127.0.0.1:9001".into(),
        state_dir: dir.clone(),
        name: "edge-1".into(),
        enrollment_token: token.map(String::from),
        ..Config::default()
    };
    let connector = Connector::new(&config).unwrap();
    let mut identity = IdentityFile::open(&dir).unwrap();
    identity.identity.totp_key = key.map(String::from);
    let spool = Spool::open(&dir.join("spool"), 1 << 20, 16).unwrap();
    let shared = Rc::new(Shared::new(identity.identity.node_id, spool, 30));
    let info = NodeInfo {
        node_type: NodeType::Agent,
        capabilities: vec!["extension".into()],
        port: 9100,
    };
    let uplink = Uplink::new(Rc::new(config), connector, identity, shared.clone(), info);
    Node {
        uplink,
        shared,
        dir,
    }
}

fn ack(accepted: bool, message: Option<&str>, totp_key: Option<&str>) -> Vec<u8> {
    encode(&Envelope::new(CoreMessage::RegistrationAck(
        RegistrationAck {
            node_id: 1,
            accepted,
            message: message.map(String::from),
            totp_key: totp_key.map(String::from),
        },
    )))
}

/// Registers over a connection on which the core answers `answer`; returns
/// the outcome and the registration the agent sent.
fn register(
    node: &mut Node,
    answer: Vec<u8>,
    planned: Option<u64>,
) -> (Result<(), End>, NodeRegistration) {
    let output = Rc::new(RefCell::new(Vec::new()));
    let stream: Box<dyn Stream> = Box::new(Pipe {
        input: Cursor::new(answer),
        output: output.clone(),
    });
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let mut decoder = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    let local: SocketAddr = "10.0.0.7:50000".parse().unwrap();
    let result = future::block_on(node.uplink.register(
        &mut reader,
        &mut writer,
        &mut decoder,
        local,
        planned,
    ));
    let sent = output.borrow();
    let line = sent.strip_suffix(b"\n").expect("one line");
    match decode::<NodeMessage>(line).unwrap() {
        NodeMessage::NodeRegistration(r) => (result, r),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_first_registration_sends_the_token_and_keeps_the_key_it_gets() {
    let mut n = node("first", Some("enroll-me"), None);
    let (result, sent) = register(&mut n, ack(true, None, Some(KEY)), None);
    assert_eq!(result, Ok(()));
    assert_eq!(sent.enrollment_token.as_deref(), Some("enroll-me"));
    assert_eq!(sent.totp_code, None, "no key yet, no code");
    assert_eq!(
        sent.address, "10.0.0.7",
        "the address the node connects from"
    );
    assert_eq!(sent.capabilities, [CAP_EVENT_ACK, "extension"]);
    assert_eq!(sent.node_id, n.shared.node_id);
    // Kept on disk, mode 0600: the next start presents codes from it.
    let stored = IdentityFile::open(&n.dir).unwrap().identity;
    assert_eq!(stored.totp_key.as_deref(), Some(KEY));
}

#[test]
fn a_known_node_sends_the_code_of_its_planned_step_and_never_reuses_it() {
    let mut n = node("known", None, Some(KEY));
    let step = totp::unix_now() / 30;
    let (result, sent) = register(&mut n, ack(true, None, None), Some(step));
    assert_eq!(result, Ok(()));
    assert_eq!(sent.totp_code, Some(totp::code(KEY, step).unwrap()));
    assert_eq!(
        IdentityFile::open(&n.dir).unwrap().identity.last_totp_step,
        step
    );
    // The next plan is a later step.
    let (next, _) = totp::next_step(n.uplink.identity.identity.last_totp_step, totp::unix_now());
    assert!(next > step);
}

#[test]
fn a_refusal_ends_the_session_with_the_cores_reason() {
    let mut n = node("refused", None, None);
    let (result, _) = register(
        &mut n,
        ack(false, Some("invalid enrollment token"), None),
        None,
    );
    assert_eq!(result, Err(End::Refused("invalid enrollment token".into())));
    let (result, _) = register(&mut n, ack(false, None, None), None);
    assert_eq!(result, Err(End::Refused("no reason given".into())));
    assert_eq!(IdentityFile::open(&n.dir).unwrap().identity.totp_key, None);
}

#[test]
fn no_answer_or_another_message_is_a_lost_connection() {
    let mut n = node("lost", None, None);
    let (result, _) = register(&mut n, Vec::new(), None);
    assert_eq!(result, Err(End::Lost("closed by the core".into())));
    let (result, _) = register(&mut n, [ack_event(3), ack(true, None, None)].concat(), None);
    assert!(
        matches!(&result, Err(End::Lost(why)) if why.starts_with("expected RegistrationAck")),
        "{result:?}"
    );
}

fn ack_event(seq: u64) -> Vec<u8> {
    encode(&Envelope::new(CoreMessage::EventAck(EventAck {
        node_id: 1,
        seq,
    })))
}

/// The control messages queued for the core.
fn queued(shared: &Shared) -> Vec<NodeMessage> {
    let mut out = Vec::new();
    shared.drain_outbox(&mut out);
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| decode::<NodeMessage>(l).unwrap())
        .collect()
}

#[test]
fn every_session_resends_what_is_unacknowledged_and_says_started_only_once() {
    let mut n = node("session", None, None);
    n.shared
        .spool
        .borrow_mut()
        .push_all(1, (0..3).map(event).collect())
        .unwrap();
    for connection in 0..2 {
        // Whatever the last session sent, unacknowledged, goes again.
        let mut out = Vec::new();
        while n.shared.spool.borrow_mut().next_batch(&mut out, 10) > 0 {}
        n.uplink.on_registered();
        assert_eq!(unsent(&n.shared), [1, 2, 3], "connection {connection}");
        let names: Vec<String> = queued(&n.shared)
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let expected: &[&str] = if connection == 0 {
            &["NodeStatusUpdate", "NodeEvent"]
        } else {
            &["NodeStatusUpdate"]
        };
        assert_eq!(names, expected, "connection {connection}");
        // The mode re-reports its pots on every connection.
        assert_eq!(
            n.shared.commands.1.try_recv(),
            Ok(Command::GetInstalledPots)
        );
    }
}
