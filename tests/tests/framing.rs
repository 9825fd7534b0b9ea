//! NDJSON framing and tolerant reads (docs/protocol.md §1, §2).

use std::time::Duration;

use honeybee_proto::{encode, Envelope, NodeStatus, PotStatus};
use honeybee_tests::test_node::ACK_TIMEOUT;
use honeybee_tests::{Core, NodeIdentity, TestNode};

const T: Duration = Duration::from_secs(5);

#[test]
fn several_messages_in_one_write_are_all_read() {
    let core = Core::start();
    let mut id = NodeIdentity::new("batcher");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let mut burst = encode(&Envelope::new(id.first()));
    burst.extend(encode(&Envelope::new(id.pot_status(
        "cowrie-01",
        "cowrie",
        PotStatus::Running,
    ))));
    burst.extend(encode(&Envelope::new(id.status(NodeStatus::Running))));
    c.send_raw(&burst).unwrap();
    let ack = c.recv_ack(ACK_TIMEOUT).expect("ack");
    assert!(ack.accepted, "{:?}", ack.message);
    id.learn(&ack);
    let n = core.api().wait_node(id.node_id, T, |n| {
        n["status"] == "Running"
            && n["pots"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["pot_id"] == "cowrie-01"))
    });
    assert_eq!(n["connected"], true);

    // Two more in one write after registration.
    let mut two = encode(&Envelope::new(id.status(NodeStatus::Deploying)));
    two.extend(encode(&Envelope::new(id.pot_status(
        "cowrie-01",
        "cowrie",
        PotStatus::Failed,
    ))));
    c.send_raw(&two).unwrap();
    core.api().wait_node(id.node_id, T, |n| {
        n["status"] == "Deploying"
            && n["pots"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["status"] == "Failed"))
    });
}

#[test]
fn one_message_split_over_many_writes_is_read() {
    let core = Core::start();
    let mut id = NodeIdentity::new("dribbler");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let line = encode(&Envelope::new(id.first()));
    for piece in line.chunks(line.len().div_ceil(12)) {
        c.send_raw(piece).unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    let ack = c.recv_ack(ACK_TIMEOUT).expect("ack after a split line");
    assert!(ack.accepted, "{:?}", ack.message);
    id.learn(&ack);

    let line = encode(&Envelope::new(id.status(NodeStatus::Running)));
    for b in line.chunks(5) {
        c.send_raw(b).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    core.api().wait_status(id.node_id, "Running", T);
}

#[test]
fn crlf_and_every_unit_variant_form_are_accepted() {
    let core = Core::start();
    for (i, drop_form) in [
        &b"\"NodeDrop\""[..],
        b"{\"NodeDrop\":null}",
        b"{\"NodeDrop\":{}}",
    ]
    .into_iter()
    .enumerate()
    {
        let mut id = NodeIdentity::new(&format!("crlf-{i}"));
        let mut c = TestNode::connect(core.node_addr).unwrap();
        let mut line = encode(&Envelope::new(id.first()));
        line.pop();
        line.extend_from_slice(b"\r\n");
        c.send_raw(&line).unwrap();
        let ack = c.recv_ack(ACK_TIMEOUT).expect("ack for a CRLF line");
        assert!(ack.accepted, "{:?}", ack.message);
        id.learn(&ack);
        c.must_send(&id.status(NodeStatus::Running));
        core.api().wait_status(id.node_id, "Running", T);
        let mut drop_line = b"{\"version\":2,\"message\":".to_vec();
        drop_line.extend_from_slice(drop_form);
        drop_line.extend_from_slice(b"}\r\n");
        c.send_raw(&drop_line).unwrap();
        core.api().wait_status(id.node_id, "Stopped", T);
    }
}

#[test]
fn node_events_in_both_forms_are_recorded_newest_first() {
    let core = Core::start();
    let (mut c, id) = core.enroll("eventful");
    for line in [
        &b"{\"version\":2,\"message\":{\"NodeEvent\":{\"type\":\"Alarm\",\"description\":\"spool 90% full\"}}}\n"[..],
        b"{\"version\":2,\"message\":{\"NodeEvent\":{\"Error\":{\"message\":\"pot crashed\"}}}}\n",
        b"{\"version\":2,\"message\":{\"NodeEvent\":{\"Alarm\":{\"description\":\"spool dropped 3\"}}}}\n",
        b"{\"version\":2,\"message\":{\"NodeEvent\":\"Started\"}}\n",
    ] {
        c.send_raw(line).unwrap();
    }
    let n = core.api().wait_node(id.node_id, T, |n| {
        n["events"].as_array().is_some_and(|e| e.len() >= 4)
    });
    let events = n["events"].as_array().unwrap();
    let summary: Vec<(String, Option<String>, Option<String>)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("?").to_owned(),
                e["message"].as_str().map(str::to_owned),
                e["description"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        summary,
        vec![
            ("Started".to_owned(), None, None),
            ("Alarm".to_owned(), None, s("spool dropped 3")),
            ("Error".to_owned(), s("pot crashed"), None),
            ("Alarm".to_owned(), None, s("spool 90% full")),
        ],
        "events newest first: {events:?}"
    );
    for e in events {
        assert!(e["time"].is_string(), "event without time: {e}");
    }
}
