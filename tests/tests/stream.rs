//! The stream port (docs/protocol.md §7): raw NDJSON modules and WebSocket
//! clients against the real core — registration, every command answered in
//! order, live events with filters, slow subscribers told `lagged N`
//! without slowing anyone else, and garbage or silence closed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{
    decode, encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Command,
    CoreMessage, Envelope, EventFilter, EventQuery, ModuleMessage, NodeCommand, NodeMessage,
    NodeStatus, PotStatus, StreamMessage, Subscribe,
};
use honeybee_tests::{poll_until, Core, NodeIdentity};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const T: Duration = Duration::from_secs(5);

/// A raw NDJSON module connection.
struct RawModule {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawModule {
    fn connect(core: &Core) -> RawModule {
        RawModule::from_tcp(TcpStream::connect(core.stream_addr).expect("connect to 9003"))
    }

    fn from_tcp(stream: TcpStream) -> RawModule {
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        RawModule { stream, reader }
    }

    /// Connected and registered with the core's token.
    fn registered(core: &Core) -> RawModule {
        let mut m = RawModule::connect(core);
        m.send(&registration(&core.api().token));
        let id = success_data(m.response())["backend_id"].clone();
        assert!(id.as_u64().is_some(), "no backend_id: {id}");
        m
    }

    fn send(&mut self, msg: &ModuleMessage) {
        self.stream
            .write_all(&encode(&Envelope::new(msg.clone())))
            .expect("write to the stream port");
    }

    fn command(&mut self, c: BackendCommand) {
        self.send(&ModuleMessage::BackendCommand(c));
    }

    /// The next message; None once the core closed the connection.
    fn recv(&mut self, timeout: Duration) -> Option<StreamMessage> {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(
                decode::<StreamMessage>(line.trim_end().as_bytes())
                    .unwrap_or_else(|e| panic!("bad line from the core: {e}: {line}")),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("no message within {timeout:?}: {e}"),
        }
    }

    /// The next message, which must be a response.
    #[track_caller]
    fn response(&mut self) -> BackendResponse {
        match self.recv(T) {
            Some(StreamMessage::BackendResponse(r)) => r,
            other => panic!("expected a BackendResponse, got {other:?}"),
        }
    }

    /// Reads until the core closes; panics if it does not within `timeout`.
    #[track_caller]
    fn expect_closed(&mut self, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            assert!(!left.is_zero(), "still open after {timeout:?}");
            if self.recv(left).is_none() {
                return start.elapsed();
            }
        }
    }
}

fn registration(token: &str) -> ModuleMessage {
    ModuleMessage::BackendRegistration(BackendRegistration {
        backend_name: "test-module".into(),
        backend_type: BackendType::Custom("test".into()),
        token: token.into(),
    })
}

fn subscribe(topics: &[&str], filter: Option<EventFilter>) -> BackendCommand {
    BackendCommand::Subscribe(Subscribe {
        cursor: None,
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        filter,
    })
}

#[track_caller]
fn success_data(r: BackendResponse) -> Value {
    match r {
        BackendResponse::Success { data, .. } => data.unwrap_or(Value::Null),
        other => panic!("expected success, got {other:?}"),
    }
}

#[track_caller]
fn failure(r: BackendResponse) -> String {
    match r {
        BackendResponse::Failure(why) => why,
        other => panic!("expected failure, got {other:?}"),
    }
}

fn ts() -> String {
    format_rfc3339(now_unix().0 - 60, 0)
}

fn event(id: &NodeIdentity, event_type: &str, data: Value) -> NodeMessage {
    id.pot_event("cowrie-01", "cowrie", event_type, &ts(), None, data)
}

/// Waits for the next PotEvent, skipping other node messages.
#[track_caller]
fn next_event(m: &mut RawModule) -> honeybee_proto::PotEvent {
    loop {
        match m.recv(T) {
            Some(StreamMessage::Node(NodeMessage::PotEvent(e))) => return e,
            Some(StreamMessage::Node(_)) => continue,
            other => panic!("expected a PotEvent, got {other:?}"),
        }
    }
}

#[test]
fn raw_registration_accepted_and_refused() {
    let core = Core::start();
    let token = core.api().token.clone();

    let mut m = RawModule::connect(&core);
    m.send(&registration("not-the-token"));
    assert_eq!(failure(m.response()), "invalid API token");
    m.expect_closed(T);

    // A command before the registration: no token.
    let mut m = RawModule::connect(&core);
    m.command(BackendCommand::GetNodes);
    assert_eq!(failure(m.response()), "invalid API token");
    m.expect_closed(T);

    let mut m = RawModule::connect(&core);
    m.send(&registration(&token));
    assert!(matches!(m.response(), BackendResponse::Success { .. }));
    m.command(BackendCommand::GetNodeCount);
    assert_eq!(success_data(m.response()), json!({"count": 0}));
    // BackendDrop ends the session.
    m.send(&ModuleMessage::BackendDrop);
    m.expect_closed(T);

    let metrics = core.metrics();
    assert_eq!(
        metrics.labeled("honeybee_stream_refused_total", "reason", "invalid_token"),
        2.0
    );
    assert_eq!(
        metrics.value("honeybee_stream_registrations_total", &[]),
        1.0
    );
}

/// Sends `line` as a module written for the reference core would, and
/// returns the `BackendResponse` it reads back, as plain JSON.
fn reference_ask(m: &mut RawModule, line: &str) -> Value {
    m.stream
        .write_all(format!("{line}\n").as_bytes())
        .expect("write to the stream port");
    m.stream.set_read_timeout(Some(T)).unwrap();
    let mut got = String::new();
    m.reader.read_line(&mut got).expect("a reply line");
    let v: Value = serde_json::from_str(&got).unwrap_or_else(|e| panic!("{e}: {got}"));
    assert_eq!(v["version"], 2, "{got}");
    v["message"]["BackendResponse"].clone()
}

/// The reply's `Success` object, which always carries both `message` and
/// `data` (null when empty), as the reference core writes them.
#[track_caller]
fn reference_success(r: &Value) -> &serde_json::Map<String, Value> {
    let ok = r["Success"]
        .as_object()
        .unwrap_or_else(|| panic!("not a Success: {r}"));
    assert!(ok.contains_key("message") && ok.contains_key("data"), "{r}");
    ok
}

#[test]
fn a_module_written_for_the_reference_core_reads_every_reply() {
    // Golden shapes (PROTOCOL.md §7), read as raw JSON the way a Python or
    // Go module does, one command at a time.
    let core = Core::start();
    let (_node, id) = core.enroll("reference-shapes");
    let n = id.node_id;
    let other = n.wrapping_add(1);
    let mut m = RawModule::connect(&core);
    let token = core.api().token.clone();
    let reg = reference_ask(
        &mut m,
        &json!({"version": 2, "message": {"BackendRegistration":
            {"backend_name": "legacy", "backend_type": "Cli", "token": token}}})
        .to_string(),
    );
    assert!(
        reference_success(&reg)["data"]["backend_id"].is_u64(),
        "{reg}"
    );
    let ask = |m: &mut RawModule, cmd: Value| {
        reference_ask(
            m,
            &json!({"version": 2, "message": {"BackendCommand": cmd}}).to_string(),
        )
    };

    let nodes = ask(&mut m, json!("GetNodes"));
    assert_eq!(reference_success(&nodes)["data"], json!({"nodes": [n]}));
    let count = ask(&mut m, json!("GetNodeCount"));
    assert_eq!(reference_success(&count)["data"], json!({"count": 1}));
    let active = ask(&mut m, json!("GetActiveConnections"));
    assert_eq!(reference_success(&active)["data"]["count"], 1, "{active}");
    let node = ask(&mut m, json!({"GetNode": {"node_id": n}}));
    let node = &reference_success(&node)["data"];
    assert_eq!(node["node_id"], n, "{node}");
    assert_eq!(node["node_name"], "reference-shapes", "{node}");
    assert_eq!(
        ask(&mut m, json!({"GetNode": {"node_id": other}})),
        json!({"Failure": format!("Node {other} not found")})
    );
    let by_status = ask(&mut m, json!({"GetNodesByStatus": {"status": "Connected"}}));
    let listed = &reference_success(&by_status)["data"]["nodes"];
    assert_eq!(listed[0]["node_id"], n, "{by_status}");
    let sent = ask(
        &mut m,
        json!({"NodeCommand": {"node_id": n, "command": "GetInstalledPots"}}),
    );
    assert_eq!(reference_success(&sent)["data"], Value::Null, "{sent}");
    let broadcast = ask(
        &mut m,
        json!({"BroadcastCommand": {"command": "GetInstalledPots"}}),
    );
    assert_eq!(reference_success(&broadcast)["data"], Value::Null);
    let removed = ask(&mut m, json!({"RemoveNode": {"node_id": n}}));
    assert_eq!(
        reference_success(&removed)["data"],
        Value::Null,
        "{removed}"
    );
    assert_eq!(
        ask(&mut m, json!({"RemoveNode": {"node_id": n}})),
        json!({"Failure": format!("Node {n} not found")})
    );
    let count = ask(&mut m, json!("GetNodeCount"));
    assert_eq!(reference_success(&count)["data"], json!({"count": 0}));
}

#[test]
fn raw_every_command_is_answered_in_order() {
    let core = Core::start();
    let (mut node, id) = core.enroll("stream-cmds");
    let other = id.node_id.wrapping_add(1);
    let mut m = RawModule::registered(&core);

    // Everything at once; the answers come back one per command, in order.
    let commands = vec![
        BackendCommand::NodeCommand(NodeCommand {
            node_id: id.node_id,
            command: Command::GetPotStatus("cowrie-01".into()),
        }),
        BackendCommand::NodeCommand(NodeCommand {
            node_id: other,
            command: Command::Restart,
        }),
        BackendCommand::BroadcastCommand {
            command: Command::GetInstalledPots,
        },
        BackendCommand::GetNodes,
        BackendCommand::GetNode {
            node_id: id.node_id,
        },
        BackendCommand::GetNode { node_id: other },
        BackendCommand::GetNodesByStatus {
            status: NodeStatus::Connected,
        },
        BackendCommand::GetNodesByStatus {
            status: NodeStatus::Failed,
        },
        BackendCommand::GetNodeCount,
        BackendCommand::GetActiveConnections,
        subscribe(&["events", "weather"], None),
        subscribe(&["status"], None),
        BackendCommand::QueryEvents(EventQuery {
            limit: Some(0),
            ..Default::default()
        }),
        BackendCommand::QueryEvents(EventQuery::default()),
        BackendCommand::Unknown("Frobnicate".into()),
        BackendCommand::RemoveNode { node_id: other },
        BackendCommand::RemoveNode {
            node_id: id.node_id,
        },
        BackendCommand::GetNodeCount,
    ];
    let mut batch = Vec::new();
    for c in &commands {
        batch.extend(encode(&Envelope::new(ModuleMessage::BackendCommand(
            c.clone(),
        ))));
    }
    m.stream.write_all(&batch).unwrap();

    let mut answers = Vec::new();
    while answers.len() < commands.len() {
        match m.recv(T) {
            Some(StreamMessage::BackendResponse(r)) => answers.push(r),
            // Subscribed to status: the node's removal may show up.
            Some(StreamMessage::Node(_)) => continue,
            None => panic!("closed after {} answers: {answers:?}", answers.len()),
        }
    }
    let mut a = answers.into_iter();
    let mut next = || a.next().unwrap();
    assert!(matches!(next(), BackendResponse::Success { .. }));
    assert_eq!(failure(next()), format!("Node {other} not found"));
    assert_eq!(
        next(),
        BackendResponse::Success {
            message: Some("Command broadcast to 1 nodes".into()),
            data: None
        }
    );
    assert_eq!(success_data(next()), json!({"nodes": [id.node_id]}));
    assert_eq!(success_data(next())["node_name"], "stream-cmds");
    assert_eq!(failure(next()), format!("Node {other} not found"));
    assert_eq!(success_data(next())["nodes"][0]["node_id"], id.node_id);
    assert_eq!(success_data(next()), json!({"nodes": []}));
    assert_eq!(success_data(next()), json!({"count": 1}));
    assert_eq!(
        success_data(next()),
        json!({"count": 1, "nodes": [id.node_id]})
    );
    assert!(failure(next()).contains("unknown topic `weather`"));
    assert!(matches!(next(), BackendResponse::Success { .. }));
    assert!(failure(next()).starts_with("limit:"));
    assert_eq!(
        success_data(next()),
        json!({"events": [], "next_cursor": null})
    );
    assert_eq!(failure(next()), "unknown command Frobnicate");
    assert_eq!(failure(next()), format!("Node {other} not found"));
    assert_eq!(
        next(),
        BackendResponse::Success {
            message: Some(format!("Node {} removed", id.node_id)),
            data: None
        }
    );
    assert_eq!(success_data(next()), json!({"count": 0}));

    // The node got the command and the broadcast, then was disconnected.
    let want = [
        Command::GetPotStatus("cowrie-01".into()),
        Command::GetInstalledPots,
    ];
    for w in want {
        match node.recv(T) {
            Ok(CoreMessage::NodeCommand(c)) => {
                assert_eq!((c.node_id, c.command), (id.node_id, w))
            }
            other => panic!("expected a command, got {other:?}"),
        }
    }
    node.expect_closed(T, "removed through the stream port");
    assert_eq!(
        core.metrics().value("honeybee_stream_commands_total", &[]),
        commands.len() as f64
    );
}

#[test]
fn raw_subscriber_gets_live_events_with_filters() {
    let core = Core::start();
    let (mut node, id) = core.enroll("stream-live");
    let mut all = RawModule::registered(&core);
    all.command(subscribe(&["events"], None));
    assert!(matches!(all.response(), BackendResponse::Success { .. }));
    let mut logins = RawModule::registered(&core);
    logins.command(subscribe(
        &["events"],
        Some(EventFilter {
            node_id: Some(id.node_id),
            pot_id: None,
            event_type_prefix: Some("cowrie.login".into()),
        }),
    ));
    assert!(matches!(logins.response(), BackendResponse::Success { .. }));
    let mut elsewhere = RawModule::registered(&core);
    elsewhere.command(subscribe(
        &["events"],
        Some(EventFilter {
            node_id: Some(id.node_id.wrapping_add(1)),
            ..Default::default()
        }),
    ));
    assert!(matches!(
        elsewhere.response(),
        BackendResponse::Success { .. }
    ));

    let types = [
        "cowrie.command.input",
        "cowrie.login.failed",
        "cowrie.session.closed",
        "cowrie.login.success",
    ];
    for (i, t) in types.iter().enumerate() {
        node.must_send(&event(&id, t, json!({"src_ip": "203.0.113.9", "i": i})));
    }
    for (i, t) in types.iter().enumerate() {
        let e = next_event(&mut all);
        assert_eq!((e.event_type.as_str(), e.node_id), (*t, id.node_id));
        assert_eq!(e.data["i"], i);
    }
    for t in ["cowrie.login.failed", "cowrie.login.success"] {
        let e = next_event(&mut logins);
        assert_eq!((e.event_type.as_str(), e.node_id), (t, id.node_id));
        assert_eq!(e.pot_id, "cowrie-01");
    }
    // Nothing else is queued for the filtered subscribers: the next message
    // is the answer to a command sent now.
    std::thread::sleep(Duration::from_millis(300));
    for m in [&mut logins, &mut elsewhere] {
        m.command(BackendCommand::GetNodeCount);
        assert_eq!(success_data(m.response()), json!({"count": 1}));
    }

    // A new Subscribe replaces the old one: status only.
    all.command(subscribe(&["status"], None));
    assert!(matches!(all.response(), BackendResponse::Success { .. }));
    node.must_send(&event(&id, "cowrie.login.failed", json!({})));
    node.must_send(&id.status(NodeStatus::Running));
    match all.recv(T) {
        Some(StreamMessage::Node(NodeMessage::NodeStatusUpdate(u))) => {
            assert_eq!((u.node_id, u.status), (id.node_id, NodeStatus::Running))
        }
        other => panic!("expected the status update, got {other:?}"),
    }

    // The stored events through QueryEvents, in the REST API's shape.
    let mut q = RawModule::registered(&core);
    let page = poll_until(T, Duration::from_millis(50), || {
        q.command(BackendCommand::QueryEvents(EventQuery {
            node_id: Some(id.node_id),
            event_type: Some("cowrie.login.success".into()),
            ..Default::default()
        }));
        let page = success_data(q.response());
        (page["events"].as_array().unwrap().len() == 1).then_some(page)
    })
    .expect("the event is stored");
    assert_eq!(page["events"][0]["data"]["i"], 3);
    assert_eq!(page["next_cursor"], Value::Null);
    let rest = core.api().events(&[
        ("node_id", &id.node_id.to_string()),
        ("event_type", "cowrie.login.success"),
    ]);
    assert_eq!(rest.events, page["events"].as_array().unwrap().clone());
    q.command(BackendCommand::QueryEvents(EventQuery {
        node_id: Some(id.node_id),
        limit: Some(2),
        ..Default::default()
    }));
    let first = success_data(q.response());
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    q.command(BackendCommand::QueryEvents(EventQuery {
        node_id: Some(id.node_id),
        limit: Some(2),
        cursor: Some(cursor),
        ..Default::default()
    }));
    assert_eq!(
        success_data(q.response())["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// A module that does not read loses the oldest messages and is told how
/// many; a module that reads, and the node, are not slowed.
#[test]
fn a_slow_subscriber_is_told_it_lagged_and_slows_nobody() {
    const EVENTS: usize = 6000;
    let core = Core::start();
    let (mut node, id) = core.enroll("stream-flood");

    // The slow one: a tiny receive window, so the core's socket fills fast.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&core.stream_addr.into()).unwrap();
    let mut slow = RawModule::from_tcp(socket.into());
    slow.send(&registration(&core.api().token));
    assert!(matches!(slow.response(), BackendResponse::Success { .. }));
    slow.command(subscribe(&["events"], None));
    assert!(matches!(slow.response(), BackendResponse::Success { .. }));

    let mut fast = RawModule::registered(&core);
    fast.command(subscribe(&["events"], None));
    assert!(matches!(fast.response(), BackendResponse::Success { .. }));
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(EVENTS);
        let mut lagged = Vec::new();
        while got.len() < EVENTS {
            match fast.recv(Duration::from_secs(30)) {
                Some(StreamMessage::Node(NodeMessage::PotEvent(e))) => {
                    got.push(e.data["i"].as_u64().unwrap())
                }
                Some(StreamMessage::BackendResponse(r)) => lagged.push(r),
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("closed after {} events", got.len()),
            }
        }
        (got, lagged)
    });

    let pad = "x".repeat(2000);
    let start = Instant::now();
    for i in 0..EVENTS {
        node.must_send(&event(&id, "flood.event", json!({"i": i, "pad": pad})));
        if i % 500 == 499 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (got, lagged) = reader.join().unwrap();
    assert!(lagged.is_empty(), "the reading module lagged: {lagged:?}");
    assert_eq!(got, (0..EVENTS as u64).collect::<Vec<_>>());
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    // The node was never held up: still connected, every event stored.
    core.api()
        .wait_metric_at_least("honeybee_events_stored_total", &[], EVENTS as f64, T * 6);
    assert_eq!(
        core.api().node(id.node_id).expect("node")["connected"],
        true
    );

    // Now the slow module reads: what fitted in the socket, then `lagged N`
    // for what was dropped, then the newest. Nothing is lost silently.
    let mut seen = 0usize;
    let mut dropped = 0usize;
    let mut last = None;
    while seen + dropped < EVENTS {
        match slow.recv(T) {
            Some(StreamMessage::Node(NodeMessage::PotEvent(e))) => {
                let i = e.data["i"].as_u64().unwrap();
                assert!(last < Some(i), "out of order: {i} after {last:?}");
                last = Some(i);
                seen += 1;
            }
            Some(StreamMessage::BackendResponse(BackendResponse::Failure(why))) => {
                let n: usize = why
                    .strip_prefix("lagged ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected failure {why}"));
                assert!(n > 0);
                dropped += n;
            }
            other => panic!("unexpected {other:?} after {seen} events"),
        }
    }
    assert!(dropped > 0, "the slow module never lagged");
    assert_eq!(last, Some(EVENTS as u64 - 1), "the newest is delivered");
    assert_eq!(seen + dropped, EVENTS);
    assert_eq!(
        core.metrics().value("honeybee_stream_dropped_total", &[]),
        dropped as f64
    );
}

#[test]
fn garbage_and_silence_are_closed() {
    let core = Core::start();
    // Garbage: closed at once.
    let mut m = RawModule::connect(&core);
    m.stream.write_all(b"hello, is this the core?\n").unwrap();
    assert!(m.expect_closed(T) < Duration::from_secs(2));
    let mut m = RawModule::registered(&core);
    m.stream.write_all(b"{\"version\":2,\"mess").unwrap();
    m.stream.write_all(b"\xff\xfe\n").unwrap();
    m.expect_closed(T);

    // Silence, a half message, or a WebSocket without a token: closed at the
    // 10 s registration deadline, not before.
    let addr = core.stream_addr;
    let silent = std::thread::spawn(move || {
        let mut m = RawModule::from_tcp(TcpStream::connect(addr).unwrap());
        m.expect_closed(Duration::from_secs(15))
    });
    let partial = std::thread::spawn(move || {
        let mut m = RawModule::from_tcp(TcpStream::connect(addr).unwrap());
        m.stream.write_all(b"{\"version\":2,").unwrap();
        m.expect_closed(Duration::from_secs(15))
    });
    let ws = std::thread::spawn(move || {
        let start = Instant::now();
        let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
        set_timeout(&ws, Duration::from_secs(15));
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => start.elapsed(),
            Ok(other) => panic!("unexpected {other:?}"),
        }
    });
    for (what, t) in [
        ("silent", silent.join().unwrap()),
        ("partial", partial.join().unwrap()),
        ("websocket", ws.join().unwrap()),
    ] {
        assert!(
            t >= Duration::from_secs(9) && t < Duration::from_secs(13),
            "{what}: closed after {t:?}"
        );
    }
    let metrics = core.metrics();
    assert!(metrics.labeled("honeybee_stream_refused_total", "reason", "invalid_json") >= 2.0);
    assert_eq!(
        metrics.labeled(
            "honeybee_stream_refused_total",
            "reason",
            "registration_timeout"
        ),
        3.0
    );
    assert_eq!(metrics.value("honeybee_stream_sessions_open", &[]), 0.0);
    core.assert_serving("after garbage on the stream port");
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn set_timeout(ws: &Ws, t: Duration) {
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(t)).unwrap();
    }
}

fn ws_send(ws: &mut Ws, msg: ModuleMessage) {
    let line = encode(&Envelope::new(msg));
    let text = String::from_utf8(line).unwrap();
    ws.send(Message::text(text.trim_end())).unwrap();
}

#[track_caller]
fn ws_recv(ws: &mut Ws) -> StreamMessage {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                assert!(!t.ends_with('\n'), "one envelope per message, no newline");
                return decode(t.as_bytes()).unwrap_or_else(|e| panic!("{e}: {t}"));
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

#[track_caller]
fn ws_response(ws: &mut Ws) -> BackendResponse {
    match ws_recv(ws) {
        StreamMessage::BackendResponse(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn websocket_with_url_token_subscribes_and_queries() {
    let core = Core::start();
    let token = core.api().token.clone();
    let (mut node, id) = core.enroll("stream-ws");
    let addr = core.stream_addr;

    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/stream?token={token}")).unwrap();
    set_timeout(&ws, T);
    ws_send(
        &mut ws,
        ModuleMessage::BackendCommand(subscribe(&["events", "status"], None)),
    );
    assert!(matches!(
        ws_response(&mut ws),
        BackendResponse::Success { .. }
    ));
    node.must_send(&event(
        &id,
        "cowrie.login.failed",
        json!({"src_ip": "203.0.113.5"}),
    ));
    match ws_recv(&mut ws) {
        StreamMessage::Node(NodeMessage::PotEvent(e)) => {
            assert_eq!(e.node_id, id.node_id);
            assert_eq!(e.event_type, "cowrie.login.failed");
            assert_eq!(e.data["src_ip"], "203.0.113.5");
        }
        other => panic!("expected the event, got {other:?}"),
    }
    ws_send(
        &mut ws,
        ModuleMessage::BackendCommand(BackendCommand::GetNodes),
    );
    let nodes = success_data(ws_response(&mut ws));
    assert_eq!(nodes, json!({"nodes": [id.node_id]}));
    ws.close(None).unwrap();

    // Wrong URL token: refused, then closed.
    let (mut bad, _) = tungstenite::connect(format!("ws://{addr}/?token=nope")).unwrap();
    set_timeout(&bad, T);
    assert_eq!(failure(ws_response(&mut bad)), "invalid API token");
    assert!(matches!(bad.read(), Ok(Message::Close(_)) | Err(_)));

    // No URL token: BackendRegistration in the first message instead.
    let (mut reg, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    set_timeout(&reg, T);
    ws_send(&mut reg, registration(&token));
    assert!(matches!(
        ws_response(&mut reg),
        BackendResponse::Success { .. }
    ));
    ws_send(
        &mut reg,
        ModuleMessage::BackendCommand(BackendCommand::GetNodeCount),
    );
    assert_eq!(success_data(ws_response(&mut reg)), json!({"count": 1}));
    let (mut unreg, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    set_timeout(&unreg, T);
    ws_send(
        &mut unreg,
        ModuleMessage::BackendCommand(BackendCommand::GetNodeCount),
    );
    assert_eq!(failure(ws_response(&mut unreg)), "invalid API token");

    // A message over 1 MiB closes the session.
    ws_send(
        &mut reg,
        ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: "x".repeat(1024 * 1024 + 1),
            backend_type: BackendType::Web,
            token: token.clone(),
        }),
    );
    let closed = loop {
        match reg.read() {
            Ok(Message::Close(_)) | Err(_) => break true,
            Ok(_) => continue,
        }
    };
    assert!(closed);
    let metrics = core.metrics();
    assert_eq!(
        metrics.labeled("honeybee_stream_refused_total", "reason", "too_long"),
        1.0
    );
    assert_eq!(
        metrics.value("honeybee_stream_registrations_total", &[]),
        2.0
    );
    core.assert_serving("after WebSocket sessions");
}

/// The next `status` message about node `node_id` (other nodes' skipped);
/// panics on anything else or when nothing comes within `timeout`.
#[track_caller]
fn next_status(m: &mut RawModule, node_id: u64, timeout: Duration) -> NodeMessage {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no status message about node {node_id} within {timeout:?}"
        );
        match m.recv(left) {
            Some(StreamMessage::Node(
                msg @ (NodeMessage::NodeStatusUpdate(_) | NodeMessage::PotStatusUpdate(_)),
            )) => {
                let about = match &msg {
                    NodeMessage::NodeStatusUpdate(u) => u.node_id,
                    NodeMessage::PotStatusUpdate(u) => u.node_id,
                    _ => unreachable!(),
                };
                if about == node_id {
                    return msg;
                }
            }
            other => panic!("expected a status message, got {other:?}"),
        }
    }
}

#[track_caller]
fn expect_node_status(m: &mut RawModule, node_id: u64, want: NodeStatus, timeout: Duration) {
    match next_status(m, node_id, timeout) {
        NodeMessage::NodeStatusUpdate(u) => assert_eq!(u.status, want, "node {node_id}"),
        other => panic!("expected node {node_id} to be {want}, got {other:?}"),
    }
}

/// What the alerts module's rules need to see a node go offline: a
/// subscriber to `status` is told the node's status when it registers, a
/// pot's change, and the offline status when the node goes away — its
/// connection simply closing (`Unknown`), `NodeDrop` (`Stopped`), or
/// silence past three heartbeat intervals (`Unknown`, connection closed).
#[test]
fn status_subscribers_see_a_node_go_offline() {
    let core = Core::builder().args(["--heartbeat-interval", "1"]).start();
    let mut m = RawModule::registered(&core);
    m.command(subscribe(&["status"], None));
    assert!(matches!(m.response(), BackendResponse::Success { .. }));

    // Registered, a pot changes, then the connection just closes.
    let (mut node, id) = core.enroll("status-closes");
    expect_node_status(&mut m, id.node_id, NodeStatus::Connected, T);
    node.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Failed));
    match next_status(&mut m, id.node_id, T) {
        NodeMessage::PotStatusUpdate(u) => {
            assert_eq!(
                (u.pot_id.as_str(), u.status),
                ("cowrie-01", PotStatus::Failed)
            )
        }
        other => panic!("expected the pot's status, got {other:?}"),
    }
    drop(node);
    let closed = Instant::now();
    expect_node_status(&mut m, id.node_id, NodeStatus::Unknown, T);
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "the closed connection was published only after {:?} (the heartbeat timeout, not the close)",
        closed.elapsed()
    );
    assert_eq!(core.api().node(id.node_id).unwrap()["status"], "Unknown");

    // NodeDrop: it left on purpose.
    let (mut node, id) = core.enroll("status-drops");
    expect_node_status(&mut m, id.node_id, NodeStatus::Connected, T);
    node.must_send(&NodeMessage::NodeDrop);
    expect_node_status(&mut m, id.node_id, NodeStatus::Stopped, T);

    // Silent past 3 x 1 s: lost, and the core closes the connection.
    let (mut node, id) = core.enroll("status-silent");
    expect_node_status(&mut m, id.node_id, NodeStatus::Connected, T);
    let silent = Instant::now();
    expect_node_status(
        &mut m,
        id.node_id,
        NodeStatus::Unknown,
        Duration::from_secs(8),
    );
    assert!(
        silent.elapsed() >= Duration::from_millis(2900),
        "lost after {:?}, before 3 heartbeat intervals",
        silent.elapsed()
    );
    node.expect_closed(T, "a lost node's connection is closed");
}
