//! Heartbeats, NodeDrop, lost nodes and replaced connections
//! (docs/protocol.md §5, behaviour.md Port 9001).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_proto::{NodeMessage, NodeStatus};
use honeybee_tests::{totp, Core, TestNode};

const T: Duration = Duration::from_secs(5);

#[test]
fn a_silent_node_becomes_unknown_while_a_heartbeating_one_stays_running() {
    let core = Core::builder().args(["--heartbeat-interval", "1"]).start();
    let (mut silent, sid) = core.enroll("silent");
    let (mut beating, bid) = core.enroll("beating");
    // Any message counts as liveness, not only NodeStatusUpdate.
    let (mut chatty, cid) = core.enroll("chatty");

    let stop = Arc::new(AtomicBool::new(false));
    let beat = {
        let stop = stop.clone();
        let msg = bid.status(NodeStatus::Running);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if beating.send(&msg).is_err() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            true
        })
    };

    let chat = {
        let stop = stop.clone();
        let msg = cid.pot_status("cowrie-01", "cowrie", honeybee_proto::PotStatus::Running);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if chatty.send(&msg).is_err() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            true
        })
    };

    silent.must_send(&sid.status(NodeStatus::Running));
    let last_message = Instant::now();
    core.api().wait_status(sid.node_id, "Running", T);
    let n = core
        .api()
        .wait_status(sid.node_id, "Unknown", Duration::from_secs(8));
    let silence = last_message.elapsed();
    assert!(
        silence >= Duration::from_millis(2500),
        "marked Unknown after only {silence:?} of silence (3 x 1 s heartbeat)"
    );
    assert!(silence <= Duration::from_secs(6), "took {silence:?}");
    assert!(n["last_seen"].is_string(), "last_seen: {n}");
    silent.expect_closed(Duration::from_secs(3), "a lost node's connection is closed");
    core.api()
        .wait_node(sid.node_id, T, |n| n["connected"] == false);

    let b = core.api().node(bid.node_id).unwrap();
    assert_eq!(b["status"], "Running", "the heartbeating node: {b}");
    assert_eq!(b["connected"], true, "the heartbeating node: {b}");
    let m = core.metrics();
    assert!(
        m.labeled("honeybee_nodes", "status", "Unknown") >= 1.0,
        "{}",
        m.text
    );
    assert!(
        m.labeled("honeybee_nodes", "status", "Running") >= 1.0,
        "{}",
        m.text
    );
    assert!(
        m.value("honeybee_heartbeats_total", &[]) >= 5.0,
        "{}",
        m.text
    );

    let c = core.api().node(cid.node_id).unwrap();
    assert_eq!(
        c["status"], "Connected",
        "a node sending only pot updates: {c}"
    );
    assert_eq!(c["connected"], true, "a node sending only pot updates: {c}");

    stop.store(true, Ordering::Relaxed);
    assert!(chat.join().unwrap(), "the chatty node's connection broke");
    assert!(
        beat.join().unwrap(),
        "the heartbeating node's connection broke"
    );
}

#[test]
fn node_drop_marks_the_node_stopped_not_lost() {
    let core = Core::start();
    let (mut conn, id) = core.enroll("leaving");
    conn.must_send(&id.status(NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);
    conn.must_send(&NodeMessage::NodeDrop);
    core.api().wait_status(id.node_id, "Stopped", T);
    drop(conn);
    std::thread::sleep(Duration::from_millis(300));
    let n = core
        .api()
        .wait_node(id.node_id, T, |n| n["connected"] == false);
    assert_eq!(n["status"], "Stopped", "closing after NodeDrop: {n}");
    assert!(
        core.metrics()
            .labeled("honeybee_nodes", "status", "Stopped")
            >= 1.0
    );
}

#[test]
fn a_disconnect_without_node_drop_marks_the_node_unknown() {
    let core = Core::start();
    let (mut conn, id) = core.enroll("vanishing");
    conn.must_send(&id.status(NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);
    drop(conn);
    let n = core.api().wait_status(id.node_id, "Unknown", T);
    assert_eq!(n["connected"], false, "{n}");
}

#[test]
fn a_second_connection_for_the_same_id_replaces_the_first() {
    let core = Core::start();
    let (mut first, id) = core.enroll("twice");
    first.must_send(&id.status(NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);

    totp::wait_for_step_margin(Duration::from_secs(2));
    let (mut second, ack) = id.login(core.node_addr, 0);
    assert!(ack.accepted, "second connection refused: {:?}", ack.message);
    first.expect_closed(T, "the old connection is replaced");

    second.must_send(&id.status(NodeStatus::Deploying));
    let n = core.api().wait_status(id.node_id, "Deploying", T);
    assert_eq!(n["connected"], true, "{n}");
    assert_eq!(
        n["peer_address"].as_str(),
        Some(second.local_addr().to_string().as_str()),
        "{n}"
    );
    // Closing the old one did not disconnect the node.
    second.expect_open(Duration::from_millis(500), "the replacing connection");
    second.must_send(&id.status(NodeStatus::Running));
    let n = core.api().wait_status(id.node_id, "Running", T);
    assert_eq!(n["connected"], true, "{n}");
}

#[test]
fn a_silent_registered_node_does_not_block_others_or_the_api() {
    let core = Core::start();
    // Registered, then silent and never reading.
    let (_silent, _sid) = core.enroll("mute");
    // Unregistered with half a line.
    let mut half = TestNode::connect(core.node_addr).unwrap();
    half.send_raw(b"{\"version\":2,\"message\":{\"NodeReg")
        .unwrap();
    // Registered, sent half a message.
    let (mut partial, _pid) = core.enroll("partial");
    partial.send_raw(b"{\"version\":2,\"mess").unwrap();
    for i in 0..3 {
        core.assert_serving(&format!("round {i} with silent peers"));
    }
}

#[test]
fn the_connection_decides_which_node_a_message_is_for() {
    let core = Core::start();
    let (mut a, aid) = core.enroll("a");
    let (mut b, bid) = core.enroll("b");
    a.must_send(&aid.status(NodeStatus::Running));
    b.must_send(&bid.status(NodeStatus::Running));
    core.api().wait_status(bid.node_id, "Running", T);
    // A claims to speak for B.
    a.must_send(&bid.status(NodeStatus::Failed));
    a.must_send(&bid.pot_status("stolen-01", "cowrie", honeybee_proto::PotStatus::Running));
    let has_stolen = |n: &serde_json::Value| {
        n["pots"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["pot_id"] == "stolen-01"))
    };
    if honeybee_tests::poll_until(T, Duration::from_millis(50), || {
        let n = core.api().node(aid.node_id)?;
        (n["status"] == "Failed" && has_stolen(&n)).then_some(())
    })
    .is_none()
    {
        panic!(
            "A's messages naming B were not applied to A; A: {:?}; B: {:?}",
            core.api().node(aid.node_id),
            core.api().node(bid.node_id)
        );
    }
    let nb = core.api().node(bid.node_id).unwrap();
    assert_eq!(nb["status"], "Running", "B changed by A's message: {nb}");
    assert!(
        !nb["pots"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["pot_id"] == "stolen-01")),
        "B got A's pot: {nb}"
    );
}

/// A node that last reported Failed (or Stopped) and then went silent is
/// lost too: its connection is closed and it becomes Unknown.
#[test]
fn a_silent_node_is_lost_whatever_status_it_last_reported() {
    let core = Core::builder().args(["--heartbeat-interval", "1"]).start();
    let (mut failed, fid) = core.enroll("failed-then-silent");
    failed.must_send(&fid.status(NodeStatus::Failed));
    core.api().wait_status(fid.node_id, "Failed", T);
    failed.expect_closed(Duration::from_secs(8), "a silent connection");
    core.api().wait_status(fid.node_id, "Unknown", T);
}
