//! TOTP on registration (docs/protocol.md §5, behaviour.md Port 9001).

use std::time::{Duration, Instant};

use honeybee_tests::test_node::ACK_TIMEOUT;
use honeybee_tests::{totp, Core, NodeIdentity, TestNode};

const T: Duration = Duration::from_secs(5);

fn refused(core: &Core, reason: &str) -> f64 {
    core.metrics()
        .labeled("honeybee_registrations_refused_total", "reason", reason)
}

#[test]
fn first_registration_issues_a_key_and_ignores_the_code_the_node_sent() {
    let core = Core::start();
    let mut id = NodeIdentity::new("brings-own-code");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let ack = c.register(&id.registration(Some("123456".into())));
    assert!(ack.accepted, "refused: {:?}", ack.message);
    let key = ack.totp_key.clone().expect("first ack without totp_key");
    assert!(
        totp::is_valid_key(&key),
        "totp_key must be 32 base32 chars (160 bits), got {} chars",
        key.len()
    );
    id.learn(&ack);
    drop(c);

    totp::wait_for_step_margin(Duration::from_secs(2));
    let (_c, ack) = id.login(core.node_addr, 0);
    assert!(
        ack.accepted,
        "login with the issued key refused: {:?}",
        ack.message
    );
    assert!(
        ack.totp_key.is_none(),
        "key sent again on a later registration"
    );
}

#[test]
fn go_peer_fixture_is_accepted_and_recorded() {
    const ID: u64 = 8026213383729478583;
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/peer-node-v2.ndjson"
    ))
    .expect("read fixture");
    let lines: Vec<&[u8]> = fixture
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.len() > 1)
        .collect();
    assert_eq!(lines.len(), 8, "fixture changed");

    let core = Core::start();
    let heartbeats_before = core.metrics().value("honeybee_heartbeats_total", &[]);
    let mut c = TestNode::connect(core.node_addr).unwrap();
    c.send_raw(lines[0]).unwrap();
    let ack = c.recv_ack(ACK_TIMEOUT).expect("ack for the Go peer");
    assert!(ack.accepted, "Go peer refused: {:?}", ack.message);
    assert_eq!(ack.node_id, ID);
    let key = ack
        .totp_key
        .as_deref()
        .expect("no totp_key for the Go peer");
    assert!(
        totp::is_valid_key(key),
        "the Go peer accepts only a 32-char base32 key"
    );

    for line in &lines[1..] {
        c.send_raw(line).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let n = core.api().wait_status(ID, "Stopped", T);
    assert_eq!(
        n["node_id"].as_u64(),
        Some(ID),
        "u64 id above 2^53 must survive: {n}"
    );
    assert_eq!(n["node_name"], "ref-go-node");
    let events = n["events"].as_array().expect("node has an events array");
    let errors: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "Error")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        errors,
        vec![
            "GetPotLogs not yet implemented",
            "Failed to stop pot: honeypot nosuch-01 not found",
            "Failed to get pot status: pot nosuch-01 not found",
        ],
        "NodeEvents, newest first: {events:?}"
    );
    core.api()
        .wait_metric_at_least("honeybee_heartbeats_total", &[], heartbeats_before + 3.0, T);
}

#[test]
fn known_node_without_a_code_is_refused() {
    let core = Core::start();
    let (conn, id) = core.enroll("no-code");
    drop(conn);
    let before = refused(&core, "missing_totp");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let ack = c.register(&id.first());
    assert!(!ack.accepted, "known node accepted without a code");
    assert_eq!(
        ack.message.as_deref(),
        Some("totp_code required for a registered node")
    );
    assert!(ack.totp_key.is_none(), "a known node got a key again");
    c.expect_closed(T, "refused registration");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "missing_totp")],
        before + 1.0,
        T,
    );
    core.assert_serving("after a missing code");
}

#[test]
fn wrong_code_is_refused() {
    let core = Core::start();
    let (conn, id) = core.enroll("wrong-code");
    drop(conn);
    let before = refused(&core, "bad_totp");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let ack = c.register(&id.with_wrong_code());
    assert!(!ack.accepted, "wrong code accepted");
    assert_eq!(ack.message.as_deref(), Some("invalid TOTP code"));
    c.expect_closed(T, "refused registration");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "bad_totp")],
        before + 1.0,
        T,
    );
    core.assert_serving("after a wrong code");
}

#[test]
fn one_step_of_skew_is_accepted_two_are_not_and_used_steps_are_refused() {
    let core = Core::start();
    let (conn, id) = core.enroll("skew");
    drop(conn);
    let addr = core.node_addr;
    totp::wait_for_step_margin(Duration::from_secs(4));

    let (_a, ack) = id.login(addr, -1);
    assert!(ack.accepted, "step -1 refused: {:?}", ack.message);
    assert!(ack.totp_key.is_none());

    let replayed_before = refused(&core, "replayed_totp");
    let (mut r, ack) = id.login(addr, -1);
    assert!(!ack.accepted, "a replayed code was accepted");
    assert_eq!(ack.message.as_deref(), Some("TOTP code already used"));
    r.expect_closed(T, "replayed code");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "replayed_totp")],
        replayed_before + 1.0,
        T,
    );

    let (_b, ack) = id.login(addr, 0);
    assert!(ack.accepted, "step 0 refused: {:?}", ack.message);
    let (_c, ack) = id.login(addr, 1);
    assert!(ack.accepted, "step +1 refused: {:?}", ack.message);

    let bad_before = refused(&core, "bad_totp");
    let (mut d, ack) = id.login(addr, 2);
    assert!(!ack.accepted, "step +2 accepted");
    assert_eq!(ack.message.as_deref(), Some("invalid TOTP code"));
    d.expect_closed(T, "step +2");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "bad_totp")],
        bad_before + 1.0,
        T,
    );

    // Step 0 is older than the last accepted step (+1): a replay.
    let (mut e, ack) = id.login(addr, 0);
    assert!(
        !ack.accepted,
        "an older step was accepted after a newer one"
    );
    assert_eq!(ack.message.as_deref(), Some("TOTP code already used"));
    e.expect_closed(T, "older step");
    core.assert_serving("after replayed and skewed codes");
}

/// Parses `N` out of `too many failed TOTP attempts; locked out for N s`.
fn lockout_secs(message: Option<&str>) -> Option<u64> {
    let m = message?;
    let rest = m.strip_prefix("too many failed TOTP attempts; locked out for ")?;
    rest.strip_suffix(" s")?.parse().ok()
}

#[test]
fn five_failures_lock_the_node_out_for_a_growing_period() {
    // lockout_base = 2 s, so the test sees it expire and double quickly.
    let core = Core::builder()
        .config("lockout_failures = 5\nlockout_window = 300\nlockout_base = 2\nlockout_max = 60\n")
        .start();
    let (conn, id) = core.enroll("locked");
    drop(conn);
    let addr = core.node_addr;
    let locked_before = refused(&core, "locked_out");

    // Five failures.
    let mut locked_at = Instant::now();
    for i in 0..5 {
        let mut c = TestNode::connect(addr).unwrap();
        let ack = c.register(&id.with_wrong_code());
        assert!(!ack.accepted);
        let msg = ack.message.as_deref();
        if i < 4 {
            assert_eq!(msg, Some("invalid TOTP code"), "failure {}", i + 1);
        } else {
            assert!(
                msg == Some("invalid TOTP code") || lockout_secs(msg).is_some(),
                "5th failure: {msg:?}"
            );
        }
        locked_at = Instant::now();
    }

    // Now even the right code is refused, saying why.
    totp::wait_for_step_margin(Duration::from_secs(1));
    let (mut c, ack) = id.login(addr, 0);
    assert!(
        !ack.accepted,
        "a correct code was accepted during the lockout"
    );
    let first = lockout_secs(ack.message.as_deref())
        .unwrap_or_else(|| panic!("not the locked-out message: {:?}", ack.message));
    assert!(
        (1..=2).contains(&first),
        "first lockout {first} s, base is 2 s"
    );
    c.expect_closed(T, "locked out");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "locked_out")],
        locked_before + 1.0,
        T,
    );

    // It expires: the next wrong code is judged again (and, the window still
    // holding five failures, locks the node again, for twice as long).
    let expiry = locked_at + Duration::from_millis(2_400);
    std::thread::sleep(expiry.saturating_duration_since(Instant::now()));
    for i in 0..5 {
        let mut c = TestNode::connect(addr).unwrap();
        let ack = c.register(&id.with_wrong_code());
        assert!(!ack.accepted);
        locked_at = Instant::now();
        let msg = ack.message.as_deref();
        if i == 0 {
            assert_eq!(
                msg,
                Some("invalid TOTP code"),
                "the first lockout did not expire after 2 s"
            );
        }
        if lockout_secs(msg).is_some() {
            break;
        }
    }

    totp::wait_for_step_margin(Duration::from_secs(1));
    let (_c, ack) = id.login(addr, 0);
    let second = lockout_secs(ack.message.as_deref())
        .unwrap_or_else(|| panic!("not locked out the second time: {ack:?}"));
    eprintln!("lockouts: first {first} s, second {second} s");
    assert!(
        second > first && (3..=4).contains(&second),
        "second lockout {second} s should double the first ({first} s)"
    );

    // After it expires the right code is accepted.
    let expiry = locked_at + Duration::from_millis(4_400);
    std::thread::sleep(expiry.saturating_duration_since(Instant::now()));
    totp::wait_for_step_margin(Duration::from_secs(1));
    let (_c, ack) = id.login(addr, 1);
    assert!(
        ack.accepted,
        "refused after the lockout expired: {:?}",
        ack.message
    );
    core.assert_serving("after lockouts");
}
