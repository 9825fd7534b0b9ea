//! Every bad input of behaviour.md (Port 9001): the connection is closed (or
//! the message dropped, where so promised), the matching counter moves, and
//! the core keeps serving everyone else.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use honeybee_proto::{encode, Envelope, NodeStatus};
use honeybee_tests::test_node::tcp_connect;
use honeybee_tests::{Core, NodeIdentity, RecvError, TestNode};

const T: Duration = Duration::from_secs(5);

fn protocol_errors(core: &Core, kind: &str) -> f64 {
    core.metrics()
        .labeled("honeybee_protocol_errors_total", "kind", kind)
}

fn refused(core: &Core, reason: &str) -> f64 {
    core.metrics()
        .labeled("honeybee_registrations_refused_total", "reason", reason)
}

fn wait_protocol_error(core: &Core, kind: &str, at_least: f64) {
    core.api().wait_metric_at_least(
        "honeybee_protocol_errors_total",
        &[("kind", kind)],
        at_least,
        T,
    );
}

fn wait_refused(core: &Core, reason: &str, at_least: f64) {
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", reason)],
        at_least,
        T,
    );
}

/// The core must close without sending anything.
#[track_caller]
fn expect_closed_without_ack(c: &mut TestNode, why: &str) {
    match c.recv(T) {
        Ok(m) => panic!("{why}: expected a close without an ack, got {m:?}"),
        Err(RecvError::Timeout) => panic!("{why}: connection still open after {T:?}"),
        Err(_) => {}
    }
}

/// Writes one endless line until the core closes; returns bytes written.
fn write_until_refused(core: &Core, first: &[u8]) -> (usize, io::Error) {
    // A small send buffer keeps what the kernel queues for us small, so the
    // byte count says how much the core had to take before closing.
    let s = tcp_connect(None, core.node_addr, Some(8 * 1024)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    let mut sent = 0usize;
    let mut w = &s;
    w.write_all(first).unwrap();
    sent += first.len();
    let chunk = vec![b'x'; 16 * 1024];
    let limit = 64 << 20;
    while sent < limit {
        match w.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (sent, e),
        }
    }
    panic!("the core took {sent} bytes of one line without closing the connection");
}

#[test]
fn an_over_long_line_is_cut_off_early() {
    let core = Core::builder().config("max_message_bytes = 4096\n").start();
    let before = protocol_errors(&core, "too_long");
    let (sent, err) = write_until_refused(
        &core,
        b"{\"version\":2,\"message\":{\"NodeRegistration\":{\"node_name\":\"",
    );
    assert!(
        !matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "the core stopped reading after {sent} bytes but kept the connection open"
    );
    eprintln!("one endless line: the core closed after {sent} bytes were written ({err})");
    assert!(
        sent < 4 << 20,
        "the core read {sent} bytes of a line limited to 4096 before closing"
    );
    wait_protocol_error(&core, "too_long", before + 1.0);
    core.assert_serving("after an over-long first line");
}

#[test]
fn an_over_long_line_after_registration_closes_the_connection() {
    let core = Core::builder().config("max_message_bytes = 4096\n").start();
    let before = protocol_errors(&core, "too_long");
    let (mut conn, id) = core.enroll("long-liner");
    // Exactly at the limit is fine.
    let prefix = format!(
        "{{\"version\":2,\"message\":{{\"NodeStatusUpdate\":{{\"node_id\":{},\"status\":\"Deploying\",\"pad\":\"",
        id.node_id
    );
    let suffix = "\"}}}";
    let mut ok_line = prefix.into_bytes();
    ok_line.extend(std::iter::repeat_n(
        b'p',
        4096 - ok_line.len() - suffix.len(),
    ));
    ok_line.extend_from_slice(suffix.as_bytes());
    assert_eq!(ok_line.len(), 4096);
    let mut with_nl = ok_line.clone();
    with_nl.push(b'\n');
    conn.send_raw(&with_nl).unwrap();
    core.api().wait_status(id.node_id, "Deploying", T);

    let mut long = vec![b'y'; 5000];
    long.push(b'\n');
    let _ = conn.send_raw(&long);
    expect_closed_without_ack(&mut conn, "line over max_message_bytes");
    wait_protocol_error(&core, "too_long", before + 1.0);
    core.api().wait_status(id.node_id, "Unknown", T);
    core.assert_serving("after an over-long line");
}

#[test]
fn non_utf8_closes_the_connection() {
    let core = Core::start();
    let before = protocol_errors(&core, "not_utf8");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    c.send_raw(b"{\"version\":2,\"message\":\"\xff\xfe\xfd\"}\n")
        .unwrap();
    expect_closed_without_ack(&mut c, "non-UTF-8 first line");
    wait_protocol_error(&core, "not_utf8", before + 1.0);

    let (mut conn, id) = core.enroll("latin1");
    conn.send_raw(b"{\"version\":2,\"message\":{\"NodeEvent\":{\"type\":\"Alarm\",\"description\":\"caf\xe9\"}}}\n")
        .unwrap();
    expect_closed_without_ack(&mut conn, "non-UTF-8 after registration");
    wait_protocol_error(&core, "not_utf8", before + 2.0);
    core.api().wait_status(id.node_id, "Unknown", T);
    core.assert_serving("after non-UTF-8");
}

#[test]
fn invalid_json_closes_the_connection() {
    let core = Core::start();
    let before = protocol_errors(&core, "invalid_json");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    c.send_raw(b"{this is not json\n").unwrap();
    expect_closed_without_ack(&mut c, "invalid JSON first line");
    wait_protocol_error(&core, "invalid_json", before + 1.0);

    let (mut conn, id) = core.enroll("garbler");
    conn.send_raw(b"[1, 2,\n").unwrap();
    expect_closed_without_ack(&mut conn, "invalid JSON after registration");
    wait_protocol_error(&core, "invalid_json", before + 2.0);
    core.api().wait_status(id.node_id, "Unknown", T);
    core.assert_serving("after invalid JSON");
}

#[test]
fn a_wrong_version_registration_gets_an_ack_naming_both_versions() {
    let core = Core::start();
    let before = refused(&core, "wrong_version");
    let id = NodeIdentity::new("from-the-future");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    c.send_raw(&encode(&Envelope {
        version: 3,
        message: id.first(),
    }))
    .unwrap();
    let ack = c.recv_ack(T).expect("an ack for a wrong version");
    assert!(!ack.accepted, "version 3 accepted");
    assert_eq!(
        ack.message.as_deref(),
        Some("protocol version 3 is not supported; this core speaks version 2")
    );
    c.expect_closed(T, "wrong version");
    wait_refused(&core, "wrong_version", before + 1.0);
    assert!(
        core.api().node(id.node_id).is_none(),
        "a refused node was recorded"
    );
    core.assert_serving("after a wrong version");
}

#[test]
fn after_registration_wrong_versions_bad_payloads_and_unknown_variants_are_skipped() {
    let core = Core::start();
    let m0 = core.metrics();
    let (mut conn, id) = core.enroll("sloppy");
    conn.must_send(&id.status(NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);

    conn.send_raw(&encode(&Envelope {
        version: 3,
        message: id.status(NodeStatus::Failed),
    }))
    .unwrap();
    conn.send_raw(b"{\"version\":2,\"message\":{\"NodeStatusUpdate\":{\"node_id\":1,\"status\":\"Bogus\"}}}\n")
        .unwrap();
    conn.send_raw(b"{\"version\":2,\"message\":{\"FutureThing\":{\"x\":[1,2,3]}}}\n")
        .unwrap();
    conn.send_raw(b"{\"version\":2,\"message\":\"AnotherFutureThing\"}\n")
        .unwrap();
    conn.must_send(&id.status(NodeStatus::Deploying));
    let n = core.api().wait_status(id.node_id, "Deploying", T);
    assert_eq!(n["connected"], true, "{n}");
    conn.expect_open(Duration::from_millis(300), "skipped messages never close");

    let get = |k: &str| m0.labeled("honeybee_protocol_errors_total", "kind", k);
    wait_protocol_error(&core, "wrong_version", get("wrong_version") + 1.0);
    wait_protocol_error(&core, "invalid_message", get("invalid_message") + 1.0);
    wait_protocol_error(&core, "unknown_variant", get("unknown_variant") + 2.0);
    let n = core.api().node(id.node_id).unwrap();
    assert_eq!(
        n["status"], "Deploying",
        "the v3 `Failed` must be dropped: {n}"
    );
}

#[test]
fn a_message_before_registration_is_refused() {
    let core = Core::start();
    let before = refused(&core, "not_registration");
    let id = NodeIdentity::new("impatient");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    c.must_send(&id.status(NodeStatus::Running));
    let ack = c.recv_ack(T).expect("an ack refusing the first message");
    assert!(!ack.accepted);
    assert_eq!(
        ack.message.as_deref(),
        Some("expected NodeRegistration as the first message, got NodeStatusUpdate")
    );
    c.expect_closed(T, "first message not a registration");
    wait_refused(&core, "not_registration", before + 1.0);
    core.assert_serving("after a message before registration");
}

#[test]
fn an_invalid_registration_payload_is_refused() {
    let core = Core::start();
    let m0 = core.metrics();
    let mut c = TestNode::connect(core.node_addr).unwrap();
    c.send_raw(b"{\"version\":2,\"message\":{\"NodeRegistration\":{\"node_id\":\"abc\",\"node_name\":7}}}\n")
        .unwrap();
    match c.recv(T) {
        Ok(honeybee_proto::CoreMessage::RegistrationAck(ack)) => {
            assert!(!ack.accepted, "an invalid registration was accepted");
            c.expect_closed(T, "invalid registration");
        }
        Ok(other) => panic!("unexpected {other:?}"),
        Err(RecvError::Timeout) => panic!("invalid registration: connection still open"),
        Err(_) => {}
    }
    let counted = honeybee_tests::poll_until(T, Duration::from_millis(50), || {
        let m = core.metrics();
        let grew = |name: &str, label: &str, v: &str| {
            m.labeled(name, label, v) > m0.labeled(name, label, v)
        };
        (grew(
            "honeybee_registrations_refused_total",
            "reason",
            "invalid_registration",
        ) || grew("honeybee_protocol_errors_total", "kind", "invalid_message"))
        .then_some(())
    });
    assert!(
        counted.is_some(),
        "neither registrations_refused{{invalid_registration}} nor protocol_errors{{invalid_message}} counted it"
    );
    core.assert_serving("after an invalid registration");
}

#[test]
fn no_complete_line_within_the_registration_timeout_closes() {
    let core = Core::start();
    let before = protocol_errors(&core, "registration_timeout");
    let start = Instant::now();
    // Sends nothing.
    let mut idle = TestNode::connect(core.node_addr).unwrap();
    // Sends a few bytes, no newline.
    let mut half = TestNode::connect(core.node_addr).unwrap();
    half.send_raw(b"{\"version\":2,").unwrap();
    // Trickles a byte every 500 ms: still no complete line.
    let mut slow = TestNode::connect(core.node_addr).unwrap();
    let mut w = slow.tcp().try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if w.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });

    // Meanwhile the core serves others.
    core.assert_serving("during slow connections");

    for (name, c) in [
        ("idle", &mut idle),
        ("half", &mut half),
        ("slow", &mut slow),
    ] {
        let left = Duration::from_secs(14).saturating_sub(start.elapsed());
        let closed = c.wait_closed(left);
        let at = start.elapsed();
        assert!(closed.is_some(), "{name}: still open {at:?} after connect");
        assert!(
            at >= Duration::from_millis(9_000) && at <= Duration::from_millis(12_500),
            "{name}: closed {at:?} after connect; registration_timeout is 10 s"
        );
    }
    trickle.join().unwrap();
    wait_protocol_error(&core, "registration_timeout", before + 3.0);
    core.assert_serving("after slow connections");
}

#[test]
fn the_registration_timeout_is_configurable() {
    let core = Core::builder().config("registration_timeout = 2\n").start();
    let before = protocol_errors(&core, "registration_timeout");
    let start = Instant::now();
    let mut idle = TestNode::connect(core.node_addr).unwrap();
    idle.send_raw(b"{").unwrap();
    idle.expect_closed(Duration::from_secs(5), "registration_timeout = 2");
    let at = start.elapsed();
    assert!(
        at >= Duration::from_millis(1_500) && at <= Duration::from_millis(4_000),
        "closed {at:?} after connect; registration_timeout is 2 s"
    );
    wait_protocol_error(&core, "registration_timeout", before + 1.0);
    // A registered node is not subject to it.
    let (mut conn, _id) = core.enroll("past-the-timeout");
    conn.expect_open(Duration::from_millis(2_500), "registered connection");
}
