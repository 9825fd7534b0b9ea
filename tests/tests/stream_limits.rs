//! Port 9003 under hostile clients (issue step 2, bad input): a WebSocket
//! subscriber that never reads, and thousands of idle connections. The
//! nodes, the API and well-behaved subscribers go on; memory stays bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use honeybee_proto::time::now_rfc3339;
use honeybee_proto::CAP_EVENT_ACK;
use honeybee_tests::{Core, NodeIdentity};
use serde_json::json;

/// A raw module subscribed to events; returns its reader.
fn raw_subscriber(core: &Core) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(core.stream_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let token = core.api().token.clone();
    let reg = json!({"version": 2, "message": {"BackendRegistration": {
        "backend_name": "reader", "backend_type": "Monitoring", "token": token}}});
    let sub =
        json!({"version": 2, "message": {"BackendCommand": {"Subscribe": {"topics": ["events"]}}}});
    s.write_all(format!("{reg}\n{sub}\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..2 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("Success"), "{line}");
    }
    r
}

/// Sends events `from..=to` of ~1.6 KB each and waits until the node is
/// acknowledged and `reader` saw the last one.
fn flood(
    node: &mut honeybee_tests::TestNode,
    id: &NodeIdentity,
    reader: &mut BufReader<TcpStream>,
    from: u64,
    to: u64,
) {
    let padding = "x".repeat(1500);
    let started = Instant::now();
    for seq in from..=to {
        let data = json!({"src_ip": "203.0.113.5", "username": "root", "pad": padding});
        node.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &now_rfc3339(),
            Some(seq),
            data,
        ));
    }
    node.wait_event_ack(to, Duration::from_secs(30));
    let mut seen_last = false;
    let mut line = String::new();
    while !seen_last && started.elapsed() < Duration::from_secs(30) {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen_last = line.contains(&format!("\"seq\":{to}"));
    }
    assert!(seen_last, "the reading subscriber did not get event {to}");
}

#[test]
fn a_websocket_client_that_never_reads_slows_nobody_and_costs_bounded_memory() {
    let core = Core::start();
    let mut reader = raw_subscriber(&core);
    let mut id = NodeIdentity::new("flood").with_capabilities(&[CAP_EVENT_ACK]);
    let mut node = id.enroll(core.node_addr);
    const N: u64 = 12_000;
    // A first flood with no deaf client fills the store's caches (SQLite
    // keeps 16 MB per connection), so what grows next is the deaf client's.
    let cold = core.rss_kb();
    flood(&mut node, &id, &mut reader, 1, N);
    let warm = core.rss_kb();

    let url = format!("ws://{}/?token={}", core.stream_addr, core.api().token);
    let (mut deaf, _) = tungstenite::connect(url.as_str()).expect("WebSocket handshake");
    let sub = r#"{"version":2,"message":{"BackendCommand":{"Subscribe":{"topics":["events"]}}}}"#;
    deaf.send(tungstenite::Message::text(sub)).unwrap();
    // The node is acknowledged in full and the reading subscriber served
    // while the deaf client reads nothing.
    flood(&mut node, &id, &mut reader, N + 1, 2 * N);
    core.api().get("/health").expect_status(200);
    let grew_kb = core.rss_kb().saturating_sub(warm);
    println!(
        "core RSS: +{} KB for the first {N} events, then +{grew_kb} KB for {N} more \
         (~19 MB) past a client that never reads",
        warm.saturating_sub(cold)
    );
    // What the deaf client may hold: its queue (1024 messages, ~1.7 MB)
    // and what is being written to it; kernel socket buffers are not RSS.
    assert!(
        grew_kb < 6 * 1024,
        "core grew by {grew_kb} KB for a client that never reads"
    );
    drop(deaf);
}

#[test]
fn thousands_of_idle_stream_connections_are_bounded_and_expire() {
    honeybee_tests::raise_fd_limit(4096);
    let core = Core::start();
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| TcpStream::connect(core.stream_addr).ok())
        .collect();
    assert!(idle.len() > 1000);
    std::thread::sleep(Duration::from_millis(300));
    let text = core.api().get("/metrics").expect_status(200).text();
    let open: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("honeybee_stream_sessions_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("honeybee_stream_sessions_open");
    assert!(open <= 256.0, "{open} sessions held at once");
    // Nodes and the API are unaffected.
    let (_conn, _id) = core.enroll("during-the-flood");
    core.api().get("/api/v1/nodes").expect_status(200);
    // Unregistered sessions end at the registration deadline; then a module
    // gets in.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = core.api().get("/metrics").expect_status(200).text();
        let open: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("honeybee_stream_sessions_open "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::MAX);
        if open == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} idle sessions still open");
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(idle);
    let _reader = raw_subscriber(&core);
}
