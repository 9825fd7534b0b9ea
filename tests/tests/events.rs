//! Events: ingest in both shapes, EventAck, de-duplication, durability and
//! the query API (behaviour.md "Events (step 2, first part)", docs/protocol.md §4
//! and §6).
//!
//! Where the contract leaves a choice open the tests avoid depending on it:
//! every test sends events whose timestamps increase in the order they are
//! stored, so "newest first" means the same by event time and by arrival;
//! no event type is a prefix of another, so `event_type` behaves the same as
//! an exact match or as a prefix. Event timestamps are a little before now,
//! so that the default 90-day retention never removes them mid-test.

use std::collections::BTreeSet;
use std::time::Duration;

use honeybee_proto::time::{format_rfc3339, now_unix, parse_rfc3339};
use honeybee_proto::{EventAck, NodeMessage, CAP_EVENT_ACK};
use honeybee_tests::{poll_until, totp, Api, Core, NodeIdentity, RecvError, TestNode};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);
/// EventAcks come at least every 200 ms while events flow.
const ACK_T: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

const RECEIVED: &str = "honeybee_events_received_total";
const STORED: &str = "honeybee_events_stored_total";
const DUPLICATE: &str = "honeybee_events_duplicate_total";
const ACKS: &str = "honeybee_event_acks_total";
const EXPIRED: &str = "honeybee_events_expired_total";

/// Unix seconds of a whole minute about two hours ago: event times are
/// `base() + offset`.
fn base() -> i64 {
    let (now, _) = now_unix();
    (now - 2 * 3600) / 60 * 60
}

fn ts(base: i64, offset: i64) -> String {
    format_rfc3339(base + offset, 0)
}

/// Enrolls a node that advertises `event-ack`.
fn ack_node(core: &Core, name: &str) -> (TestNode, NodeIdentity) {
    let mut id = NodeIdentity::new(name).with_capabilities(&[CAP_EVENT_ACK]);
    let conn = id.enroll(core.node_addr);
    (conn, id)
}

/// Enrolls a node without capabilities (like the existing Go nodes).
fn plain_node(core: &Core, name: &str) -> (TestNode, NodeIdentity) {
    core.enroll(name)
}

/// The `data` of login event `i`: the well-known keys plus extra keys of
/// every JSON kind, which must come back verbatim.
fn login_data(i: u64) -> Value {
    json!({
        "src_ip": format!("203.0.113.{}", i % 250 + 1),
        "src_port": 40000 + i,
        "dst_port": 2222,
        "protocol": "ssh",
        "username": "root",
        "password": format!("pass-{i}"),
        "tag": format!("t{i}"),
        "extra": {"nested": [1, "two", null, true, {"deep": -7}], "ratio": 0.25},
        "x-custom key \u{fc}": "quotes \" and 'apostrophes' and \\ backslash",
        "empty": {},
        "flag": false,
    })
}

/// A `cowrie.login.failed` event with seq `seq` (if any) at `base + seq`.
fn login_event(id: &NodeIdentity, base: i64, seq: u64, with_seq: bool) -> NodeMessage {
    id.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.login.failed",
        &ts(base, seq as i64),
        with_seq.then_some(seq),
        login_data(seq),
    )
}

/// The same message claiming to come from `node_id`.
fn claiming(mut msg: NodeMessage, node_id: u64) -> NodeMessage {
    if let NodeMessage::PotEvent(e) = &mut msg {
        e.node_id = node_id;
    }
    msg
}

/// Every ack is for `node_id`, covers no more than `max`, and they never go
/// backwards.
#[track_caller]
fn check_acks(acks: &[EventAck], node_id: u64, max: u64) {
    assert!(!acks.is_empty(), "no EventAck");
    for a in acks {
        assert_eq!(
            a.node_id, node_id,
            "EventAck for another node id; all acks: {acks:?}"
        );
        assert!(
            a.seq <= max,
            "EventAck covers seq {} but only 1..={max} were sent: {acks:?}",
            a.seq
        );
    }
    assert!(
        acks.windows(2).all(|w| w[0].seq <= w[1].seq),
        "EventAck seqs go backwards: {acks:?}"
    );
}

fn seq_of(e: &Value) -> Option<u64> {
    e["seq"].as_u64()
}

fn tag_of(e: &Value) -> String {
    e["data"]["tag"].as_str().unwrap_or("<no tag>").to_owned()
}

/// `since`/`until` and stored timestamps compare as instants.
#[track_caller]
fn assert_same_instant(got: &Value, want: &str, ctx: &Value) {
    let g = got
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or_else(|| panic!("timestamp {got} is not RFC 3339 in {ctx}"));
    let w = parse_rfc3339(want).expect("test timestamp parses");
    assert_eq!(g, w, "timestamp {got}, sent {want:?}, in {ctx}");
}

/// Checks one stored event against what was sent.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn assert_event(
    e: &Value,
    node_id: u64,
    pot_id: &str,
    pot_type: &str,
    event_type: &str,
    timestamp: &str,
    seq: Option<u64>,
    data: &Value,
) {
    assert!(e["id"].is_u64(), "event without an integer id: {e}");
    assert_eq!(e["node_id"].as_u64(), Some(node_id), "node_id of {e}");
    assert_eq!(e["pot_id"], pot_id, "pot_id of {e}");
    assert_eq!(e["pot_type"], pot_type, "pot_type of {e}");
    assert_eq!(e["event_type"], event_type, "event_type of {e}");
    assert_same_instant(&e["timestamp"], timestamp, e);
    assert_eq!(seq_of(e), seq, "seq of {e}");
    if seq.is_none() {
        assert!(e["seq"].is_null(), "seq should be null: {e}");
    }
    assert_eq!(&e["data"], data, "data not kept verbatim in {e}");
}

/// Ids strictly decrease down the list (newest first).
#[track_caller]
fn assert_newest_first(events: &[Value], what: &str) {
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "{what}: not newest first, ids {ids:?}"
    );
}

/// Polls until the node has `n` events stored; returns them.
#[track_caller]
fn wait_events(api: &Api, node_id: u64, n: usize) -> Vec<Value> {
    let nid = node_id.to_string();
    let mut last = Vec::new();
    poll_until(T, POLL, || {
        last = api.all_events(&[("node_id", &nid)]);
        (last.len() >= n).then(|| last.clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "node {node_id}: {} events stored after {T:?}, expected {n}: {last:?}",
            last.len()
        )
    })
}

/// Polls `/metrics` until `name` equals `want`; panics with the last value.
#[track_caller]
fn wait_metric_eq(api: &Api, name: &str, want: f64) {
    let mut last = None;
    if poll_until(T, POLL, || {
        last = api.metrics().get(name, &[]);
        (last == Some(want)).then_some(())
    })
    .is_none()
    {
        panic!("metric {name}: expected {want}, last value {last:?}");
    }
}

fn metric(api: &Api, name: &str) -> f64 {
    api.metrics().value(name, &[])
}

// ---------------------------------------------------------------------------
// 1. Canonical shape, EventAck, node id from the connection.

#[test]
fn acknowledged_canonical_events_are_stored_verbatim_newest_first() {
    let core = Core::start();
    let api = core.api();
    let (mut conn, id) = ack_node(&core, "acker");
    let (_other_conn, other) = plain_node(&core, "impersonated");
    let base = base();
    const N: u64 = 20;
    for seq in 1..=N {
        // The message claims to be from the other node: the connection counts.
        conn.must_send(&claiming(login_event(&id, base, seq, true), other.node_id));
    }
    let acks = conn.wait_event_ack(N, ACK_T);
    check_acks(&acks, id.node_id, N);
    assert_eq!(acks.last().unwrap().seq, N);

    let nid = id.node_id.to_string();
    let page = api.events(&[("node_id", &nid)]);
    assert!(page.next_cursor.is_none(), "20 events, one page: {page:?}");
    let events = page.events;
    assert_eq!(
        events.iter().map(seq_of).collect::<Vec<_>>(),
        (1..=N).rev().map(Some).collect::<Vec<_>>(),
        "events of the acking node, newest first: {events:?}"
    );
    assert_newest_first(&events, "node_id filter");
    for e in &events {
        let seq = seq_of(e).unwrap();
        assert_event(
            e,
            id.node_id,
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts(base, seq as i64),
            Some(seq),
            &login_data(seq),
        );
    }
    // Unfiltered: the same 20; the impersonated node has none.
    let all = api.events(&[]).events;
    assert_eq!(all, events, "unfiltered list differs from the node's");
    let oid = other.node_id.to_string();
    let theirs = api.events(&[("node_id", &oid)]).events;
    assert!(
        theirs.is_empty(),
        "events stored under the node id the message claimed: {theirs:?}"
    );
}

// ---------------------------------------------------------------------------
// 2. The other shape.

/// `{"event", "metadata", unix-seconds "timestamp", "message"}` as a raw line.
#[allow(clippy::too_many_arguments)]
fn alt_line(
    claimed_node: u64,
    pot_id: &str,
    pot_type: &str,
    event: &str,
    unix: i64,
    seq: Option<u64>,
    metadata: &Value,
    message: &str,
) -> Vec<u8> {
    let mut payload = json!({
        "node_id": claimed_node,
        "pot_id": pot_id,
        "pot_type": pot_type,
        "event": event,
        "timestamp": unix,
        "metadata": metadata,
        "message": message,
    });
    if let Some(s) = seq {
        payload["seq"] = json!(s);
    }
    let mut line =
        serde_json::to_vec(&json!({"version": 2, "message": {"PotEvent": payload}})).unwrap();
    line.push(b'\n');
    line
}

#[test]
fn the_alternative_shape_is_stored_like_the_canonical_one() {
    let core = Core::start();
    let api = core.api();
    let base = base();

    // A Go-style node: no capabilities, no seq.
    let (mut go, gid) = plain_node(&core, "go-peer");
    let meta1 = json!({"src_ip": "198.51.100.23", "src_port": "51234", "dst_port": "23",
                       "username": "admin", "password": "admin", "session": "abc"});
    let meta2 = json!({"src_ip": "198.51.100.23", "input": "uname -a"});
    go.send_raw(&alt_line(
        gid.node_id,
        "honnypotter-01",
        "honnypotter",
        "honnypotter.login.failed",
        base,
        None,
        &meta1,
        "login failed for admin",
    ))
    .unwrap();
    go.must_send(&gid.pot_event(
        "honnypotter-01",
        "honnypotter",
        "honnypotter.session.connect",
        &ts(base, 30),
        None,
        json!({"src_ip": "198.51.100.23", "src_port": 51234}),
    ));
    go.send_raw(&alt_line(
        gid.node_id + 1,
        "honnypotter-01",
        "honnypotter",
        "honnypotter.command.input",
        base + 60,
        None,
        &meta2,
        "command: uname -a",
    ))
    .unwrap();

    let events = wait_events(api, gid.node_id, 3);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_newest_first(&events, "go-peer events");
    let mut want2 = meta2.clone();
    want2["message"] = json!("command: uname -a");
    assert_event(
        &events[0],
        gid.node_id,
        "honnypotter-01",
        "honnypotter",
        "honnypotter.command.input",
        &ts(base, 60),
        None,
        &want2,
    );
    assert_event(
        &events[1],
        gid.node_id,
        "honnypotter-01",
        "honnypotter",
        "honnypotter.session.connect",
        &ts(base, 30),
        None,
        &json!({"src_ip": "198.51.100.23", "src_port": 51234}),
    );
    let mut want1 = meta1.clone();
    want1["message"] = json!("login failed for admin");
    assert_event(
        &events[2],
        gid.node_id,
        "honnypotter-01",
        "honnypotter",
        "honnypotter.login.failed",
        &ts(base, 0),
        None,
        &want1,
    );
    // Indexed like canonical events: the src_ip filter finds them.
    let by_ip = api.events(&[("src_ip", "198.51.100.23")]).events;
    assert_eq!(
        by_ip.len(),
        3,
        "src_ip filter over the other shape: {by_ip:?}"
    );
    let by_type = api
        .events(&[("event_type", "honnypotter.login.failed")])
        .events;
    assert_eq!(
        by_type.len(),
        1,
        "event_type filter on `event`: {by_type:?}"
    );

    // The other shape with seq, from an event-ack node, is acknowledged too.
    let (mut acker, aid) = ack_node(&core, "alt-acker");
    for seq in 1..=2u64 {
        acker
            .send_raw(&alt_line(
                aid.node_id,
                "cowrie-01",
                "cowrie",
                "cowrie.login.failed",
                base + 100 + seq as i64,
                Some(seq),
                &json!({"src_ip": "192.0.2.1", "username": "pi"}),
                "m",
            ))
            .unwrap();
    }
    let acks = acker.wait_event_ack(2, ACK_T);
    check_acks(&acks, aid.node_id, 2);
    let aid_s = aid.node_id.to_string();
    let stored = api.events(&[("node_id", &aid_s)]).events;
    assert_eq!(
        stored.iter().map(seq_of).collect::<Vec<_>>(),
        vec![Some(2), Some(1)],
        "{stored:?}"
    );
    assert_eq!(
        stored[0]["data"],
        json!({"src_ip": "192.0.2.1", "username": "pi", "message": "m"})
    );
}

// ---------------------------------------------------------------------------
// 3. Replay after a reconnect.

#[test]
fn a_replayed_event_is_acknowledged_again_and_stored_once() {
    let core = Core::start();
    let api = core.api();
    let (mut conn, id) = ack_node(&core, "replayer");
    let base = base();
    const N: u64 = 10;
    for seq in 1..=N {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let acks = conn.wait_event_ack(N, ACK_T);
    check_acks(&acks, id.node_id, N);
    wait_metric_eq(api, STORED, N as f64);
    let dup0 = metric(api, DUPLICATE);
    assert_eq!(dup0, 0.0, "duplicates before any replay");
    drop(conn);

    // Reconnect (a fresh code) and replay the spool, plus one new event.
    totp::wait_for_step_margin(Duration::from_secs(3));
    let (mut conn, ack) = id.login(core.node_addr, 0);
    assert!(ack.accepted, "login refused: {:?}", ack.message);
    for seq in 1..=N + 1 {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let acks = conn.wait_event_ack(N + 1, ACK_T);
    check_acks(&acks, id.node_id, N + 1);

    let nid = id.node_id.to_string();
    let events = api.all_events(&[("node_id", &nid)]);
    assert_eq!(
        events.iter().map(seq_of).collect::<Vec<_>>(),
        (1..=N + 1).rev().map(Some).collect::<Vec<_>>(),
        "each (node, seq) once after a replay: {} events",
        events.len()
    );
    for e in &events {
        let seq = seq_of(e).unwrap();
        assert_eq!(e["data"], login_data(seq), "{e}");
    }
    wait_metric_eq(api, DUPLICATE, N as f64);
    let m = api.metrics();
    assert_eq!(m.value(STORED, &[]), (N + 1) as f64, "{}", m.text);
    assert_eq!(m.value(RECEIVED, &[]), (2 * N + 1) as f64, "{}", m.text);

    // A replay on the same connection is acknowledged again, not stored.
    conn.must_send(&login_event(&id, base, 5, true));
    let acks = conn.wait_event_ack(5, ACK_T);
    check_acks(&acks, id.node_id, N + 1);
    wait_metric_eq(api, DUPLICATE, (N + 1) as f64);
    assert_eq!(api.all_events(&[("node_id", &nid)]).len(), (N + 1) as usize);
    assert_eq!(metric(api, STORED), (N + 1) as f64);
}

/// A node that lost its spool (its identity kept) registers with a new
/// `spool_epoch` and numbers from 1 again: those events are stored, not
/// taken for replays; replays within the new epoch are still caught, also
/// after a restart of the core.
#[test]
fn a_new_spool_epoch_counts_from_one_again_and_its_replays_are_caught_across_a_restart() {
    let mut core = Core::start();
    let mut id = NodeIdentity::new("wiped").with_capabilities(&[CAP_EVENT_ACK]);
    id.spool_epoch = Some(11);
    let mut conn = id.enroll(core.node_addr);
    let base = base();
    for seq in 1..=10 {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    check_acks(&conn.wait_event_ack(10, ACK_T), id.node_id, 10);
    drop(conn);

    id.spool_epoch = Some(22);
    totp::wait_for_step_margin(Duration::from_secs(3));
    let (mut conn, ack) = id.login(core.node_addr, 0);
    assert!(ack.accepted, "login refused: {:?}", ack.message);
    for seq in 1..=5 {
        conn.must_send(&login_event(&id, base + 100, seq, true));
    }
    check_acks(&conn.wait_event_ack(5, ACK_T), id.node_id, 5);
    conn.must_send(&login_event(&id, base + 100, 3, true));
    conn.wait_event_ack(3, ACK_T);
    let api = core.api();
    wait_metric_eq(api, DUPLICATE, 1.0);
    assert_eq!(
        metric(api, STORED),
        15.0,
        "10 of the old epoch, 5 of the new"
    );
    drop(conn);
    core.terminate(Duration::from_secs(10));

    let core = Core::builder().workspace(core.workspace()).start();
    let (mut conn, ack) = id.login(core.node_addr, 1);
    assert!(ack.accepted, "login refused: {:?}", ack.message);
    for seq in 4..=6 {
        conn.must_send(&login_event(&id, base + 100, seq, true));
    }
    check_acks(&conn.wait_event_ack(6, ACK_T), id.node_id, 6);
    let api = core.api();
    wait_metric_eq(api, DUPLICATE, 2.0);
    let nid = id.node_id.to_string();
    let events = api.all_events(&[("node_id", &nid)]);
    assert_eq!(
        events.len(),
        16,
        "the new epoch's mark survived the restart"
    );
}

// ---------------------------------------------------------------------------
// 4. No seq, no ack.

#[test]
fn events_without_seq_are_stored_and_never_acknowledged() {
    let core = Core::start();
    let api = core.api();
    let base = base();
    let (mut go, gid) = plain_node(&core, "no-ack");
    for i in 1..=5u64 {
        go.must_send(&login_event(&gid, base, i, false));
    }
    go.send_raw(&alt_line(
        gid.node_id,
        "honnypotter-01",
        "honnypotter",
        "honnypotter.login.failed",
        base + 6,
        None,
        &json!({"src_ip": "198.51.100.1"}),
        "x",
    ))
    .unwrap();
    let events = wait_events(api, gid.node_id, 6);
    assert_eq!(events.len(), 6, "{events:?}");
    for e in &events {
        assert!(e["seq"].is_null(), "seq should be null: {e}");
    }
    // Committed (visible), so an ack would already be on its way.
    go.expect_open(
        Duration::from_millis(700),
        "events without seq are not acknowledged",
    );

    // Also from a node that advertised event-ack: no seq, no ack; the next
    // event with seq gets an ack for exactly that seq.
    let (mut acker, aid) = ack_node(&core, "mixed");
    acker.must_send(&login_event(&aid, base, 10, false));
    wait_events(api, aid.node_id, 1);
    acker.must_send(&login_event(&aid, base, 11, true));
    let acks = acker.wait_event_ack(11, ACK_T);
    assert!(
        acks.iter().all(|a| a.seq == 11 && a.node_id == aid.node_id),
        "acks other than seq 11: {acks:?}"
    );
    let m = api.metrics();
    assert_eq!(m.value(RECEIVED, &[]), 8.0, "{}", m.text);
    assert_eq!(m.value(STORED, &[]), 8.0, "{}", m.text);
}

// ---------------------------------------------------------------------------
// 5. Durability across a restart.

#[test]
fn acknowledged_events_survive_a_restart_and_are_not_stored_twice_after_it() {
    let mut core = Core::start();
    let (mut conn, id) = ack_node(&core, "durable");
    let base = base();
    const N: u64 = 50;
    for seq in 1..=N {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let acks = conn.wait_event_ack(N, ACK_T);
    check_acks(&acks, id.node_id, N);
    // More in flight while the core stops.
    for seq in N + 1..=2 * N {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let (status, took) = core.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(took <= Duration::from_secs(5), "SIGTERM took {took:?}");
    let (late, closed) = conn.event_acks_until_closed(T);
    assert!(closed, "connection still open after the core exited");
    if !late.is_empty() {
        check_acks(&late, id.node_id, 2 * N);
    }
    let acked = late.iter().map(|a| a.seq).max().unwrap_or(0).max(N);

    let core2 = Core::builder().workspace(core.workspace()).start();
    let api = core2.api();
    let nid = id.node_id.to_string();
    let events = api.all_events(&[("node_id", &nid)]);
    let seqs: Vec<u64> = events.iter().filter_map(seq_of).collect();
    let set: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(set.len(), seqs.len(), "a seq stored twice: {seqs:?}");
    let missing: Vec<u64> = (1..=acked).filter(|s| !set.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged (up to {acked}) but lost across the restart: {missing:?}"
    );
    assert!(
        set.iter().all(|s| (1..=2 * N).contains(s)),
        "unexpected seqs {seqs:?}"
    );
    for e in &events {
        let seq = seq_of(e).unwrap();
        assert_event(
            e,
            id.node_id,
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts(base, seq as i64),
            Some(seq),
            &login_data(seq),
        );
    }

    // The node comes back and replays its whole spool: stored once.
    totp::wait_for_step_margin(Duration::from_secs(3));
    let (mut conn2, ack) = id.login(core2.node_addr, 0);
    assert!(ack.accepted, "login after restart: {:?}", ack.message);
    for seq in 1..=2 * N {
        conn2.must_send(&login_event(&id, base, seq, true));
    }
    let acks = conn2.wait_event_ack(2 * N, ACK_T);
    check_acks(&acks, id.node_id, 2 * N);
    let events = api.all_events(&[("node_id", &nid)]);
    assert_eq!(
        events.iter().map(seq_of).collect::<Vec<_>>(),
        (1..=2 * N).rev().map(Some).collect::<Vec<_>>(),
        "after the replay: every seq once, newest first"
    );
    wait_metric_eq(api, DUPLICATE, set.len() as f64);
}

// ---------------------------------------------------------------------------
// 6. Query.

struct Spec {
    tag: String,
    node: u64,
    pot_id: &'static str,
    event_type: &'static str,
    src_ip: &'static str,
    offset: i64,
}

const POTS: [&str; 3] = ["cowrie-01", "cowrie-02", "honnypotter-01"];
/// None is a prefix of another.
const TYPES: [&str; 5] = [
    "cowrie.login.failed",
    "cowrie.login.success",
    "cowrie.command.input",
    "honnypotter.login.failed",
    "native.telnet.login",
];
/// 203.0.113.7 is a prefix of 203.0.113.70: the filter must match exactly.
const IPS: [&str; 4] = ["203.0.113.7", "203.0.113.70", "198.51.100.1", "192.0.2.5"];

/// Two nodes, 24 + 16 events with every combination spread out; sent
/// node by node so that arrival order is timestamp order.
fn filter_fixture(core: &Core) -> (Vec<Spec>, NodeIdentity, NodeIdentity) {
    let (mut a, aid) = ack_node(core, "a");
    let (mut b, bid) = ack_node(core, "b");
    let base = base();
    let mut specs = Vec::new();
    for k in 0..40usize {
        specs.push(Spec {
            tag: format!("k{k}"),
            node: if k < 24 { aid.node_id } else { bid.node_id },
            pot_id: POTS[k % 3],
            event_type: TYPES[k % 5],
            src_ip: IPS[(k / 2) % 4],
            offset: k as i64 * 10,
        });
    }
    for (conn, id) in [(&mut a, &aid), (&mut b, &bid)] {
        let mut seq = 0;
        for s in specs.iter().filter(|s| s.node == id.node_id) {
            seq += 1;
            conn.must_send(&id.pot_event(
                s.pot_id,
                if s.pot_id.starts_with("cowrie") {
                    "cowrie"
                } else {
                    "honnypotter"
                },
                s.event_type,
                &ts(base, s.offset),
                Some(seq),
                json!({"src_ip": s.src_ip, "src_port": 1000 + seq, "tag": s.tag}),
            ));
        }
        conn.wait_event_ack(seq, ACK_T);
    }
    // Timestamps are needed by the tests: keep them in the tag's spec.
    for s in &mut specs {
        s.offset += base;
    }
    (specs, aid, bid)
}

#[track_caller]
fn assert_query(api: &Api, q: &[(&str, &str)], specs: &[Spec], keep: impl Fn(&Spec) -> bool) {
    let want: Vec<String> = specs
        .iter()
        .rev()
        .filter(|s| keep(s))
        .map(|s| s.tag.clone())
        .collect();
    let got_events = api.all_events(q);
    let got: Vec<String> = got_events.iter().map(tag_of).collect();
    assert_eq!(got, want, "GET /api/v1/events with {q:?}");
    assert_newest_first(&got_events, &format!("{q:?}"));
}

#[test]
fn every_filter_narrows_the_events() {
    let core = Core::start();
    let api = core.api();
    let (specs, aid, bid) = filter_fixture(&core);
    let (a, b) = (aid.node_id.to_string(), bid.node_id.to_string());

    assert_query(api, &[], &specs, |_| true);
    assert_query(api, &[("node_id", &a)], &specs, |s| s.node == aid.node_id);
    assert_query(api, &[("node_id", &b)], &specs, |s| s.node == bid.node_id);
    assert_query(api, &[("node_id", "12345")], &specs, |_| false);
    for p in POTS {
        assert_query(api, &[("pot_id", p)], &specs, |s| s.pot_id == p);
    }
    assert_query(api, &[("pot_id", "cowrie")], &specs, |_| false);
    for t in TYPES {
        assert_query(api, &[("event_type", t)], &specs, |s| s.event_type == t);
    }
    for ip in IPS {
        assert_query(api, &[("src_ip", ip)], &specs, |s| s.src_ip == ip);
    }
    assert_query(api, &[("src_ip", "203.0.113")], &specs, |_| false);

    // since/until are inclusive instants.
    let at = |k: usize| format_rfc3339(specs[k].offset, 0);
    let t10 = at(10);
    assert_query(api, &[("since", &t10)], &specs, |s| {
        s.offset >= specs[10].offset
    });
    assert_query(api, &[("until", &t10)], &specs, |s| {
        s.offset <= specs[10].offset
    });
    let between = format_rfc3339(specs[10].offset + 5, 0);
    assert_query(api, &[("since", &between)], &specs, |s| {
        s.offset > specs[10].offset
    });
    assert_query(api, &[("until", &between)], &specs, |s| {
        s.offset <= specs[10].offset
    });
    let (t20, t30) = (at(20), at(30));
    assert_query(api, &[("since", &t20), ("until", &t30)], &specs, |s| {
        (specs[20].offset..=specs[30].offset).contains(&s.offset)
    });
    assert_query(api, &[("since", &t30), ("until", &t20)], &specs, |_| false);
    // The same instant written with an offset, and with a fraction.
    let t20_plus1 = format_rfc3339(specs[20].offset + 3600, 0).replace('Z', "+01:00");
    assert_query(api, &[("since", &t20_plus1)], &specs, |s| {
        s.offset >= specs[20].offset
    });
    let t20_half = format_rfc3339(specs[20].offset, 500_000_000);
    assert_query(api, &[("since", &t20_half)], &specs, |s| {
        s.offset > specs[20].offset
    });

    // Combinations.
    assert_query(
        api,
        &[
            ("node_id", &a),
            ("event_type", "cowrie.login.failed"),
            ("src_ip", "203.0.113.7"),
        ],
        &specs,
        |s| {
            s.node == aid.node_id
                && s.event_type == "cowrie.login.failed"
                && s.src_ip == "203.0.113.7"
        },
    );
    assert_query(
        api,
        &[("pot_id", "cowrie-01"), ("since", &t10), ("until", &t30)],
        &specs,
        |s| s.pot_id == "cowrie-01" && (specs[10].offset..=specs[30].offset).contains(&s.offset),
    );
    assert_query(
        api,
        &[
            ("node_id", &b),
            ("pot_id", "cowrie-02"),
            ("src_ip", "192.0.2.5"),
        ],
        &specs,
        |s| s.node == bid.node_id && s.pot_id == "cowrie-02" && s.src_ip == "192.0.2.5",
    );

    // A small limit pages through a filtered list; filters are sent again
    // with the cursor.
    let want: Vec<String> = specs
        .iter()
        .rev()
        .filter(|s| s.pot_id == "cowrie-01")
        .map(|s| s.tag.clone())
        .collect();
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut q = vec![("pot_id", "cowrie-01"), ("limit", "3")];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let page = api.events(&q);
        assert!(page.events.len() <= 3, "limit 3: {page:?}");
        got.extend(page.events.iter().map(tag_of));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "still a cursor after 20 pages of 3");
    assert_eq!(got, want, "pot_id=cowrie-01 in pages of 3");
}

#[test]
fn cursor_paging_returns_every_event_once_newest_first() {
    let core = Core::start();
    let api = core.api();
    let (mut conn, id) = ack_node(&core, "pager");
    let base = base();
    // 281 events: 250 in cowrie-01, every 9th (31) in other-01.
    const TOTAL: u64 = 281;
    let pot = |seq: u64| {
        if seq.is_multiple_of(9) {
            "other-01"
        } else {
            "cowrie-01"
        }
    };
    for seq in 1..=TOTAL {
        conn.must_send(&id.pot_event(
            pot(seq),
            "cowrie",
            "cowrie.login.failed",
            &ts(base, seq as i64),
            Some(seq),
            json!({"src_ip": "203.0.113.9", "n": seq}),
        ));
    }
    conn.wait_event_ack(TOTAL, ACK_T);

    let pages = |filter: &[(&str, &str)]| -> (Vec<usize>, Vec<u64>) {
        let mut sizes = Vec::new();
        let mut seqs = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut q: Vec<(&str, &str)> = filter.to_vec();
            q.push(("limit", "100"));
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let page = api.events(&q);
            sizes.push(page.events.len());
            seqs.extend(page.events.iter().map(|e| seq_of(e).unwrap()));
            assert_newest_first(&page.events, "a page");
            cursor = page.next_cursor;
            if cursor.is_none() {
                return (sizes, seqs);
            }
        }
        panic!("more than 10 pages of 100 for {filter:?}: {sizes:?}");
    };

    let (sizes, seqs) = pages(&[("pot_id", "cowrie-01")]);
    assert_eq!(sizes, vec![100, 100, 50], "page sizes for 250 events");
    let want: Vec<u64> = (1..=TOTAL)
        .rev()
        .filter(|s| pot(*s) == "cowrie-01")
        .collect();
    assert_eq!(seqs, want, "pages overlap or leave gaps");

    let (sizes, seqs) = pages(&[]);
    assert_eq!(sizes, vec![100, 100, 81], "page sizes for 281 events");
    assert_eq!(seqs, (1..=TOTAL).rev().collect::<Vec<_>>());

    // Defaults and bounds of limit.
    let page = api.events(&[]);
    assert_eq!(page.events.len(), 100, "default limit is 100");
    assert!(page.next_cursor.is_some(), "more than 100: a next_cursor");
    let page = api.events(&[("limit", "1")]);
    assert_eq!(page.events.len(), 1);
    assert_eq!(seq_of(&page.events[0]), Some(TOTAL), "newest first");
    assert!(page.next_cursor.is_some());
    let page = api.events(&[("limit", "1000")]);
    assert_eq!(page.events.len(), TOTAL as usize);
    assert!(page.next_cursor.is_none(), "everything in one page");

    // New events arriving while a client pages do not shift the pages.
    let first = api.events(&[("pot_id", "cowrie-01"), ("limit", "100")]);
    let mut seqs: Vec<u64> = first.events.iter().map(|e| seq_of(e).unwrap()).collect();
    for seq in TOTAL + 1..=TOTAL + 5 {
        conn.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts(base, seq as i64),
            Some(seq),
            json!({"n": seq}),
        ));
    }
    conn.wait_event_ack(TOTAL + 5, ACK_T);
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let page = api.events(&[("pot_id", "cowrie-01"), ("limit", "100"), ("cursor", &c)]);
        seqs.extend(page.events.iter().map(|e| seq_of(e).unwrap()));
        cursor = page.next_cursor;
        assert!(seqs.len() <= 300, "paging does not end: {seqs:?}");
    }
    assert_eq!(
        seqs, want,
        "paging while new events arrive: no overlap, no gaps"
    );
}

#[test]
fn bad_query_parameters_are_400_naming_the_parameter() {
    let core = Core::start();
    let api = core.api();
    let (mut conn, id) = ack_node(&core, "some");
    let base = base();
    for seq in 1..=3 {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    conn.wait_event_ack(3, ACK_T);

    let cases: &[(&str, &str)] = &[
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "abc"),
        ("limit", "-1"),
        ("limit", "1.5"),
        ("limit", "99999999999999999999999"),
        ("since", "yesterday"),
        ("since", "2026-13-01T00:00:00Z"),
        ("since", "1768473000"),
        ("until", "not-a-time"),
        ("until", "2026-01-15 10:30"),
        ("cursor", "not-a-cursor"),
        ("cursor", "!!!"),
        ("node_id", "abc"),
        ("node_id", "-1"),
    ];
    let mut failures = Vec::new();
    for (k, v) in cases {
        let r = api.events_raw(&[(k, v)]);
        let body = r.text();
        let named = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|j| j["error"].as_str().map(str::to_owned))
            .is_some_and(|m| m.contains(k));
        if r.status != 400 || !named {
            failures.push(format!("{k}={v}: HTTP {} {body}", r.status));
        }
    }
    assert!(
        failures.is_empty(),
        "expected 400 {{\"error\": \"... <parameter> ...\"}}:\n{}",
        failures.join("\n")
    );
    // A valid request next to a bad one is still refused.
    api.events_raw(&[("node_id", &id.node_id.to_string()), ("limit", "0")])
        .expect_error(400);
    api.get_unauth("/api/v1/events").expect_error(401);
    api.call_as(Some("wrong"), "GET", "/api/v1/events")
        .expect_error(401);
    api.delete("/api/v1/events").expect_error(405);
    // Nothing was harmed.
    assert_eq!(api.all_events(&[]).len(), 3);
}

#[test]
fn sql_metacharacters_in_filters_match_literally() {
    let core = Core::start();
    let api = core.api();
    let (mut conn, id) = ack_node(&core, "quoting");
    let base = base();
    for seq in 1..=6 {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let weird_pot = "o'brien\";--%_pot";
    let weird_type = "weird.%_type";
    conn.must_send(&id.pot_event(
        weird_pot,
        "cowrie",
        weird_type,
        &ts(base, 7),
        Some(7),
        json!({"src_ip": "192.0.2.77", "tag": "weird"}),
    ));
    conn.wait_event_ack(7, ACK_T);
    let total = 7;

    // Values that must simply match nothing.
    let nothing: &[(&str, &str)] = &[
        ("event_type", "%"),
        ("event_type", "_"),
        ("event_type", "cowrie.login.fai_ed"),
        ("event_type", "cowrie.login.failed' OR '1'='1"),
        ("pot_id", "\";DROP TABLE events;--"),
        ("pot_id", "';DROP TABLE events;--"),
        ("pot_id", "' OR 1=1 --"),
        ("pot_id", "cowrie-01' --"),
        ("pot_id", "%"),
        ("pot_id", "\\"),
    ];
    let mut failures = Vec::new();
    for (k, v) in nothing {
        let r = api.events_raw(&[(k, v)]);
        if r.status != 200 {
            failures.push(format!("{k}={v:?}: HTTP {} {}", r.status, r.text()));
            continue;
        }
        let n = r.json()["events"].as_array().map(Vec::len);
        if n != Some(0) {
            failures.push(format!("{k}={v:?}: {n:?} events, expected 0: {}", r.text()));
        }
    }
    // src_ip may be refused as not an address (400 naming it), or match
    // nothing; never rows, never 500.
    for v in [
        "1' OR '1'='1",
        "203.0.113.2' --",
        "%",
        "' UNION SELECT * FROM nodes --",
    ] {
        let r = api.events_raw(&[("src_ip", v)]);
        match r.status {
            200 => {
                let n = r.json()["events"].as_array().map(Vec::len);
                if n != Some(0) {
                    failures.push(format!("src_ip={v:?}: {n:?} events, expected 0"));
                }
            }
            400 => {
                let m = r.clone().expect_error(400);
                if !m.contains("src_ip") {
                    failures.push(format!("src_ip={v:?}: 400 without naming src_ip: {m}"));
                }
            }
            s => failures.push(format!("src_ip={v:?}: HTTP {s} {}", r.text())),
        }
    }
    // Numbers and times with SQL in them are bad values.
    for (k, v) in [
        ("node_id", "1 OR 1=1"),
        ("limit", "1; DROP TABLE events"),
        ("since", "2026-01-01T00:00:00Z' OR '1'='1"),
        ("cursor", "1 OR 1=1"),
    ] {
        let r = api.events_raw(&[(k, v)]);
        if r.status != 400 {
            failures.push(format!(
                "{k}={v:?}: HTTP {} {}, expected 400",
                r.status,
                r.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Metacharacters in stored values match exactly themselves.
    for (k, v) in [("pot_id", weird_pot), ("event_type", weird_type)] {
        let got = api.events(&[(k, v)]).events;
        assert_eq!(
            got.iter().map(tag_of).collect::<Vec<_>>(),
            vec!["weird".to_owned()],
            "{k}={v:?}"
        );
        assert_eq!(got[0]["pot_id"], weird_pot);
        assert_eq!(got[0]["event_type"], weird_type);
    }

    // Everything is still there, and the pipeline still works.
    assert_eq!(api.all_events(&[]).len(), total);
    conn.must_send(&login_event(&id, base, 8, true));
    conn.wait_event_ack(8, ACK_T);
    assert_eq!(api.all_events(&[]).len(), total + 1);
    core.assert_serving("after SQL metacharacters in filters");
}

// ---------------------------------------------------------------------------
// 7. Metrics.

#[test]
fn event_metrics_count_received_stored_duplicates_and_acks() {
    let core = Core::start();
    let api = core.api();
    let m = api.metrics();
    for name in [RECEIVED, STORED, DUPLICATE, ACKS, EXPIRED] {
        assert_eq!(m.get(name, &[]), Some(0.0), "{name} at start:\n{}", m.text);
    }
    let base = base();

    // Without seq: received and stored move, acks do not.
    let (mut plain, pid) = plain_node(&core, "plain");
    for i in 1..=3 {
        plain.must_send(&login_event(&pid, base, i, false));
    }
    wait_metric_eq(api, STORED, 3.0);
    let m = api.metrics();
    assert_eq!(m.value(RECEIVED, &[]), 3.0, "{}", m.text);
    assert_eq!(m.value(ACKS, &[]), 0.0, "{}", m.text);
    assert_eq!(m.value(DUPLICATE, &[]), 0.0, "{}", m.text);

    // With seq, one at a time (so no two acks can be merged): one EventAck
    // per event, each counted once.
    let (mut conn, id) = ack_node(&core, "counted");
    for seq in 1..=5 {
        conn.must_send(&login_event(&id, base, seq, true));
        let acks = conn.wait_event_ack(seq, ACK_T);
        assert_eq!(
            acks,
            vec![EventAck {
                node_id: id.node_id,
                seq
            }],
            "one event, one ack"
        );
    }
    wait_metric_eq(api, ACKS, 5.0);
    wait_metric_eq(api, STORED, 8.0);

    // A burst: the core may cover several events with one EventAck (and,
    // as implemented, counts an ack it merged into a waiting one). The
    // counter moves by at least the EventAcks the node got and at most one
    // per event.
    for seq in 6..=10 {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let acks = drain_acks(&mut conn, 10);
    check_acks(&acks, id.node_id, 10);
    wait_metric_eq(api, STORED, 13.0);
    assert_ack_count_between(api, 5 + acks.len(), 10);
    let m = api.metrics();
    assert_eq!(m.value(RECEIVED, &[]), 13.0, "{}", m.text);
    assert_eq!(m.value(DUPLICATE, &[]), 0.0, "{}", m.text);

    // Replayed: received and duplicates move, stored does not, acked again.
    let before = metric(api, ACKS) as usize;
    for seq in 1..=5 {
        conn.must_send(&login_event(&id, base, seq, true));
    }
    let again = drain_acks(&mut conn, 5);
    check_acks(&again, id.node_id, 10);
    wait_metric_eq(api, DUPLICATE, 5.0);
    assert_ack_count_between(api, before + again.len(), before + 5);
    let m = api.metrics();
    assert_eq!(m.value(RECEIVED, &[]), 18.0, "{}", m.text);
    assert_eq!(m.value(STORED, &[]), 13.0, "{}", m.text);
    assert_eq!(m.value(EXPIRED, &[]), 0.0, "{}", m.text);
}

/// The EventAcks up to one covering `seq`, and any that follow within 300 ms.
#[track_caller]
fn drain_acks(conn: &mut TestNode, seq: u64) -> Vec<EventAck> {
    let mut acks = conn.wait_event_ack(seq, ACK_T);
    match conn.try_wait_event_ack(u64::MAX, Duration::from_millis(300)) {
        Err((RecvError::Timeout, more)) => acks.extend(more),
        Err((e, more)) => panic!("after the acks {acks:?} {more:?}: {e}"),
        Ok(_) => unreachable!("no ack covers u64::MAX"),
    }
    acks
}

/// Polls until `honeybee_event_acks_total` is at least `min`, then checks
/// it is at most `max`.
#[track_caller]
fn assert_ack_count_between(api: &Api, min: usize, max: usize) {
    let mut last = 0.0;
    let reached = poll_until(T, POLL, || {
        last = metric(api, ACKS);
        (last >= min as f64).then_some(())
    });
    assert!(
        reached.is_some(),
        "{ACKS} = {last}, but the node received {min} EventAck messages"
    );
    assert!(
        last <= max as f64,
        "{ACKS} = {last}: more than one per event with seq ({max})"
    );
}
