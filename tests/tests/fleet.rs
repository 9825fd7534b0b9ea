//! Several cores over one PostgreSQL (a real cluster per test): a node on
//! one core is seen, commanded and streamed from the other; a TOTP code one
//! core accepted is a replay on the other; a node that moves is closed on
//! the core it left; every `seq` is stored once whichever core took it; a
//! core killed hands its nodes and its leadership over; wrong TOTP codes
//! count toward one lockout whichever core they reach; a routed command of
//! any size a node can read arrives intact, even when its notice was missed;
//! another core's nodes going offline reach this core's status stream.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{
    decode, encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Command,
    CoreMessage, Envelope, ModuleMessage, NodeCommand, NodeMessage, NodeStatus, PotStatus,
    StreamMessage, Subscribe, DEFAULT_MAX_MESSAGE_BYTES,
};
use honeybee_tests::postgres::Postgres;
use honeybee_tests::{totp, Core, NodeIdentity, TestNode};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
/// Seconds between heartbeats the cores expect; leases last twice that.
const HEARTBEAT: u64 = 2;

/// `n` cores named core-a, core-b… over one fresh database, with one token.
fn cores(pg: &Postgres, n: usize) -> Vec<Core> {
    cores_with(pg, n, "")
}

/// Like [`cores`], each with the config file `config` (TOML) when not empty.
fn cores_with(pg: &Postgres, n: usize, config: &str) -> Vec<Core> {
    pg.create_database("fleet");
    let token = format!("fleet-token-{}", std::process::id());
    (0..n)
        .map(|i| {
            let name = format!("core-{}", (b'a' + i as u8) as char);
            let builder = if config.is_empty() {
                Core::builder()
            } else {
                Core::builder().config(config)
            };
            builder
                .api_token(&token)
                .env("HONEYBEE_POSTGRES", &pg.url("fleet"))
                .args(["--core-name", &name])
                .args(["--heartbeat-interval", &HEARTBEAT.to_string()])
                .start()
        })
        .collect()
}

fn view(core: &Core, id: u64) -> Value {
    core.api().node(id).unwrap_or(Value::Null)
}

#[track_caller]
fn wait_view(core: &Core, id: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let v = view(core, id);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: node {id} is {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn on(core_name: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["connected"] == json!(true) && v["core_name"] == json!(core_name)
}

#[track_caller]
fn wait_for(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `core` (named `name`) says it leads.
fn leads(core: &Core, name: &str) -> bool {
    core.metrics()
        .get(
            "honeybee_core_info",
            &[("core_name", name), ("leader", "true")],
        )
        .is_some()
}

fn ts() -> String {
    format_rfc3339(now_unix().0, 0)
}

/// A raw stream subscriber (docs/protocol.md §7) on one core.
struct Subscriber {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Subscriber {
    fn events(core: &Core) -> Subscriber {
        Subscriber::topics(core, &["events"])
    }

    fn topics(core: &Core, topics: &[&str]) -> Subscriber {
        let stream = TcpStream::connect(core.stream_addr).expect("connect to the stream port");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut s = Subscriber { stream, reader };
        s.send(ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: "fleet-test".into(),
            backend_type: BackendType::Custom("test".into()),
            token: core.api().token.clone(),
        }));
        s.response();
        s.send(ModuleMessage::BackendCommand(BackendCommand::Subscribe(
            Subscribe {
                cursor: None,
                topics: topics.iter().map(|t| (*t).into()).collect(),
                filter: None,
            },
        )));
        s.response();
        s
    }

    /// Waits for a `status` message about `node_id` that `pred` takes,
    /// skipping the others.
    #[track_caller]
    fn status_until(
        &mut self,
        node_id: u64,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&NodeMessage) -> bool,
    ) -> Duration {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < timeout {
            let left = timeout.saturating_sub(start.elapsed());
            let msg = self.next(left.min(Duration::from_millis(500)));
            if let Some(StreamMessage::Node(m)) = msg {
                let about = match &m {
                    NodeMessage::NodeStatusUpdate(u) => Some(u.node_id),
                    NodeMessage::PotStatusUpdate(u) => Some(u.node_id),
                    _ => None,
                };
                if about == Some(node_id) {
                    if pred(&m) {
                        return start.elapsed();
                    }
                    seen.push(m);
                }
            }
        }
        panic!("{what}: not on the stream within {timeout:?}; saw {seen:?}")
    }

    fn send(&mut self, m: ModuleMessage) {
        self.stream
            .write_all(&encode(&Envelope::new(m)))
            .expect("write to the stream port");
    }

    fn next(&mut self, timeout: Duration) -> Option<StreamMessage> {
        self.stream.set_read_timeout(Some(timeout)).ok()?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => decode::<StreamMessage>(line.trim_end().as_bytes()).ok(),
            _ => None,
        }
    }

    #[track_caller]
    fn response(&mut self) {
        match self.next(T) {
            Some(StreamMessage::BackendResponse(BackendResponse::Success { .. })) => {}
            other => panic!("expected success, got {other:?}"),
        }
    }

    /// Subscribes again, resuming after `cursor`.
    fn resume(core: &Core, cursor: &str) -> Subscriber {
        let mut s = Subscriber::events(core);
        s.send(ModuleMessage::BackendCommand(BackendCommand::Subscribe(
            Subscribe {
                topics: vec!["events".into()],
                filter: None,
                cursor: Some(cursor.into()),
            },
        )));
        s.response();
        s
    }

    /// (node, seq, cursor) of the next `n` events, read as raw JSON to keep
    /// the envelope's cursor.
    fn raw_events(&mut self, n: usize, timeout: Duration) -> Vec<(u64, u64, i64)> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            self.stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .ok();
            let mut line = String::new();
            if !matches!(self.reader.read_line(&mut line), Ok(k) if k > 0) {
                continue;
            }
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let e = &v["message"]["PotEvent"];
            if let (Some(node), Some(seq), Some(cursor)) = (
                e["node_id"].as_u64(),
                e["seq"].as_u64(),
                v["cursor"].as_str().and_then(|c| c.parse().ok()),
            ) {
                got.push((node, seq, cursor));
            }
        }
        got
    }

    /// The seqs of events received until `want` arrived or `timeout` passed.
    fn seqs_until(&mut self, node_id: u64, want: u64, timeout: Duration) -> Vec<u64> {
        let deadline = Instant::now() + timeout;
        let mut seqs = Vec::new();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left.min(Duration::from_millis(500))) {
                Some(StreamMessage::Node(NodeMessage::PotEvent(e))) if e.node_id == node_id => {
                    let seq = e.seq.unwrap_or(0);
                    seqs.push(seq);
                    if seq == want {
                        break;
                    }
                }
                _ => {}
            }
        }
        seqs
    }
}

fn send_events(node: &mut TestNode, id: &NodeIdentity, seqs: std::ops::RangeInclusive<u64>) {
    for seq in seqs {
        node.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts(),
            Some(seq),
            json!({"src_ip": "198.51.100.9", "username": "root", "n": seq}),
        ));
    }
}

#[test]
fn a_node_on_one_core_is_seen_commanded_and_streamed_from_the_other() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut watcher = Subscriber::events(b);

    let mut id = NodeIdentity::new("roams").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(a.node_addr);
    wait_view(b, id.node_id, "seen from core-b", on("core-a"));
    wait_view(a, id.node_id, "seen from core-a", on("core-a"));

    // A command posted to core-b reaches the node on core-a.
    let started = Instant::now();
    let reply = b
        .api()
        .post(
            &format!("/api/v1/nodes/{}/commands", id.node_id),
            r#"{"GetPotStatus": "cowrie-01"}"#,
        )
        .expect_status(202)
        .json();
    assert_eq!(reply["core_name"], "core-a", "{reply}");
    match node.recv(Duration::from_secs(1)) {
        Ok(CoreMessage::NodeCommand(c)) => assert_eq!(c.node_id, id.node_id),
        other => panic!("no command on core-a within 1 s of the POST to core-b: {other:?}"),
    }
    eprintln!("command core-b → node on core-a: {:?}", started.elapsed());

    // Its answer is visible on both cores.
    node.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Running));
    for core in [a, b] {
        wait_view(core, id.node_id, "pot status visible", |v| {
            v["pots"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["pot_id"] == "cowrie-01" && p["status"] == "Running")
            })
        });
    }

    // Events the node sends to core-a reach core-b's stream, in order, once.
    send_events(&mut node, &id, 1..=20);
    node.wait_event_ack(20, T);
    let seen = watcher.seqs_until(id.node_id, 20, T);
    assert_eq!(seen, (1..=20).collect::<Vec<_>>(), "core-b's stream");

    // A node no core holds: 409 from either.
    drop(node);
    wait_view(b, id.node_id, "released", |v| {
        v["connected"] == json!(false)
    });
    b.api()
        .post(
            &format!("/api/v1/nodes/{}/commands", id.node_id),
            r#"{"GetPotStatus": "cowrie-01"}"#,
        )
        .expect_error(409);

    // Both cores list themselves, alive.
    let cores = a.api().get("/api/v1/cores").expect_status(200).json();
    let names: Vec<&str> = cores["cores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["alive"] == json!(true))
        .filter_map(|c| c["core_name"].as_str())
        .collect();
    assert_eq!(names, vec!["core-a", "core-b"], "{cores}");
    let leaders: Vec<&Value> = cores["cores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["leader"] == json!(true))
        .collect();
    assert_eq!(
        leaders.len(),
        1,
        "one leader, seen alike from any core: {cores}"
    );
}

#[test]
fn a_code_accepted_by_one_core_is_a_replay_on_the_other_and_a_moved_node_is_closed_there() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut id = NodeIdentity::new("twice");
    drop(id.enroll(a.node_addr));
    wait_view(b, id.node_id, "enrolled", |v| {
        v["node_id"] == json!(id.node_id)
    });

    totp::wait_for_step_margin(Duration::from_secs(3));
    let (mut on_a, ack) = id.login(a.node_addr, 0);
    assert!(ack.accepted, "{:?}", ack.message);
    let (_replayed, ack) = id.login(b.node_addr, 0);
    assert!(
        !ack.accepted,
        "the code core-a accepted was accepted again by core-b"
    );
    assert!(
        ack.message
            .as_deref()
            .unwrap_or("")
            .contains("already used"),
        "{:?}",
        ack.message
    );
    let replays = b.metrics().labeled(
        "honeybee_registrations_refused_total",
        "reason",
        "replayed_totp",
    );
    assert!(replays >= 1.0, "{replays}");

    // The next step's code moves the node to core-b: core-a closes its
    // connection and both cores show it on core-b.
    let (_on_b, ack) = id.login(b.node_addr, 1);
    assert!(ack.accepted, "{:?}", ack.message);
    on_a.expect_closed(T, "core-a keeps the connection of a node that moved");
    for core in [a, b] {
        wait_view(core, id.node_id, "moved to core-b", on("core-b"));
    }
}

#[test]
fn events_of_a_node_that_moves_mid_stream_are_stored_once() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut watcher = Subscriber::events(a);
    let mut id = NodeIdentity::new("mover").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(a.node_addr);
    send_events(&mut node, &id, 1..=300);
    node.wait_event_ack(300, T);
    // It reconnects to the other core and sends again what it is not sure
    // of, as an agent's spool does, then more.
    totp::wait_for_step_margin(Duration::from_secs(3));
    let (mut moved, ack) = id.login(b.node_addr, 0);
    assert!(ack.accepted, "{:?}", ack.message);
    send_events(&mut moved, &id, 250..=600);
    moved.wait_event_ack(600, T);
    let counts = pg.sql(
        "fleet",
        &format!(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events WHERE node_id = {}",
            id.node_id as i64
        ),
    );
    assert_eq!(
        counts.trim(),
        "600|600|1|600",
        "stored (count, distinct, min, max)"
    );
    // core-a's stream: 1..300 it stored, then 301..600 that core-b stored.
    let seen = watcher.seqs_until(id.node_id, 600, T);
    assert_eq!(seen, (1..=600).collect::<Vec<_>>(), "core-a's stream");
}

#[test]
fn a_killed_core_hands_over_its_nodes_and_leadership() {
    let pg = Postgres::start();
    let mut fleet = cores(&pg, 2);
    wait_for(T, "core-a leads", || leads(&fleet[0], "core-a"));
    assert!(!leads(&fleet[1], "core-b"), "two leaders");
    let mut id = NodeIdentity::new("orphan");
    let _held = id.enroll(fleet[0].node_addr);
    wait_view(&fleet[1], id.node_id, "on core-a", on("core-a"));

    let killed = Instant::now();
    fleet[0].stop_with(Signal::SIGKILL, T);
    let b = &fleet[1];
    wait_view(b, id.node_id, "core-a's lease expired", |v| {
        v["connected"] == json!(false)
    });
    let gone = killed.elapsed();
    assert!(
        gone <= Duration::from_secs(3 * HEARTBEAT + 2),
        "core-a's nodes still counted connected {gone:?} after it died"
    );
    wait_for(Duration::from_secs(10), "core-b leads", || {
        leads(b, "core-b")
    });
    eprintln!(
        "kill -9 of core-a: its node released after {gone:?}, core-b leads after {:?}",
        killed.elapsed()
    );
    totp::wait_for_step_margin(Duration::from_secs(3));
    let (_n, ack) = id.login(b.node_addr, 0);
    assert!(ack.accepted, "{:?}", ack.message);
    wait_view(b, id.node_id, "back on core-b", on("core-b"));
}

/// Modules run on the leader only: its stream must tell of nodes another
/// core holds — their registration and pots, their connection closing, and
/// their core dying (once its lease is over and the node has not come back
/// within three heartbeat intervals).
#[test]
fn another_cores_nodes_going_offline_are_published_on_this_cores_stream() {
    let pg = Postgres::start();
    let mut fleet = cores(&pg, 2);
    let mut watcher = Subscriber::topics(&fleet[1], &["status"]);
    let is_node = |want: NodeStatus| move |m: &NodeMessage| matches!(m, NodeMessage::NodeStatusUpdate(u) if u.status == want);

    // Registered on core-a, a pot fails there, then the connection closes.
    let mut id = NodeIdentity::new("closes-on-a");
    let mut node = id.enroll(fleet[0].node_addr);
    watcher.status_until(
        id.node_id,
        T,
        "registered on core-a",
        is_node(NodeStatus::Connected),
    );
    node.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Failed));
    watcher.status_until(id.node_id, T, "its pot failed on core-a", |m| {
        matches!(m, NodeMessage::PotStatusUpdate(u)
            if u.pot_id == "cowrie-01" && u.status == PotStatus::Failed)
    });
    drop(node);
    let took = watcher.status_until(
        id.node_id,
        T,
        "closed on core-a",
        is_node(NodeStatus::Unknown),
    );
    assert!(
        took < Duration::from_secs(3),
        "published {took:?} after the close"
    );

    // On core-a when core-a is killed: Unknown once the lease is over and
    // three heartbeat intervals passed without the node coming back.
    let mut id = NodeIdentity::new("orphaned-on-a");
    let _node = id.enroll(fleet[0].node_addr);
    watcher.status_until(
        id.node_id,
        T,
        "registered on core-a",
        is_node(NodeStatus::Connected),
    );
    fleet[0].stop_with(Signal::SIGKILL, T);
    let took = watcher.status_until(
        id.node_id,
        Duration::from_secs(5 * HEARTBEAT + 10),
        "core-a killed",
        is_node(NodeStatus::Unknown),
    );
    assert!(
        took >= Duration::from_secs(3 * HEARTBEAT),
        "Unknown after {took:?}: a failover's grace was not given"
    );
    eprintln!("kill -9 of the holding core: the node published Unknown after {took:?}");
    assert_eq!(view(&fleet[1], id.node_id)["status"], "Unknown");
}

#[test]
fn health_is_503_while_the_database_is_down_and_ok_again_after() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 1);
    let core = &fleet[0];
    let mut id = NodeIdentity::new("patient").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(core.node_addr);
    send_events(&mut node, &id, 1..=10);
    node.wait_event_ack(10, T);
    pg.kill();
    // Events sent now are not acknowledged while nothing can store them.
    send_events(&mut node, &id, 11..=20);
    wait_for(T, "/health 503 while the database is down", || {
        honeybee_tests::http::request(core.api_addr, "GET", "/health", None, None)
            .is_ok_and(|r| r.status == 503)
    });
    let health = honeybee_tests::http::request(core.api_addr, "GET", "/health", None, None)
        .expect("health answers");
    assert!(health.text().contains("database"), "{}", health.text());
    assert!(
        node.try_wait_event_ack(20, Duration::from_secs(2)).is_err(),
        "events acknowledged while the database was down"
    );
    pg.restart();
    node.wait_event_ack(20, Duration::from_secs(30));
    wait_for(T, "/health 200 again", || core.api().healthy());
    let counts = pg.sql("fleet", "SELECT count(*), count(DISTINCT seq) FROM events");
    assert_eq!(counts.trim(), "20|20");
}

#[test]
fn a_subscriber_resumes_on_another_core_after_its_cursor() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut first = Subscriber::events(b);
    let mut ids = Vec::new();
    let mut senders = Vec::new();
    for (i, core) in [a, b].into_iter().enumerate() {
        let mut id = NodeIdentity::new(&format!("n{i}")).with_capabilities(&["event-ack"]);
        let mut node = id.enroll(core.node_addr);
        ids.push(id.node_id);
        senders.push(std::thread::spawn(move || {
            for chunk in 0..15u64 {
                send_events(&mut node, &id, chunk * 20 + 1..=chunk * 20 + 20);
                std::thread::sleep(Duration::from_millis(15));
            }
            node.wait_event_ack(300, T);
        }));
    }
    // core-b's subscriber sees both nodes' events (one node is on core-a),
    // each with a cursor that only grows; it goes away after 200.
    let seen = first.raw_events(200, T);
    assert_eq!(seen.len(), 200, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].2 < w[1].2),
        "cursors out of commit order on core-b: {seen:?}"
    );
    drop(first);
    for s in senders {
        s.join().expect("sender");
    }
    // It comes back on core-a with its last cursor: the rest, once.
    let cursor = seen.last().map(|e| e.2.to_string()).unwrap_or_default();
    let mut back = Subscriber::resume(a, &cursor);
    let rest = back.raw_events(600 - 200, T);
    assert!(
        rest.windows(2).all(|w| w[0].2 < w[1].2),
        "cursors out of order after resuming on core-a"
    );
    for node in &ids {
        let all: Vec<u64> = seen
            .iter()
            .chain(&rest)
            .filter(|e| e.0 == *node)
            .map(|e| e.1)
            .collect();
        assert_eq!(
            all,
            (1..=300).collect::<Vec<_>>(),
            "node {node}: every event once, in order, across the resume"
        );
    }
}

/// A steady stream of events keeps every core's listener turning: leases
/// are renewed (both cores stay alive, commands still find the holder) and
/// the other core's stream gets every event.
#[test]
fn under_a_steady_stream_leases_stay_alive_and_events_cross() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut watcher = Subscriber::events(b);
    let mut id = NodeIdentity::new("steady").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(a.node_addr);
    // Four lease lengths of events at 25 a second, each its own batch.
    let rounds = 4 * 2 * HEARTBEAT * 25;
    for seq in 1..=rounds {
        send_events(&mut node, &id, seq..=seq);
        if seq % 25 == 0 {
            node.must_send(&id.status(honeybee_proto::NodeStatus::Running));
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    node.wait_event_ack(rounds, T);
    let cores = b.api().get("/api/v1/cores").expect_status(200).json();
    let alive = cores["cores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["alive"] == json!(true))
        .count();
    assert_eq!(alive, 2, "a lease ran out under a steady stream: {cores}");
    let seen = watcher.seqs_until(id.node_id, rounds, T);
    assert_eq!(seen, (1..=rounds).collect::<Vec<_>>(), "core-b's stream");
    b.api()
        .post(
            &format!("/api/v1/nodes/{}/commands", id.node_id),
            r#"{"GetPotStatus": "cowrie-01"}"#,
        )
        .expect_status(202);
}

/// The lockout limit both cores are configured with (odd: alternating, one
/// core sees one more wrong code than the other, neither sees the limit).
const LOCKOUT_LIMIT: usize = 5;

/// Wrong codes sent alternately to core-a and core-b are counted in one
/// window: the node is locked out after `lockout_failures` in total, not
/// that many per core, and then on both cores.
#[test]
fn wrong_codes_alternating_between_cores_count_toward_one_lockout() {
    let pg = Postgres::start();
    let fleet = cores_with(
        &pg,
        2,
        &format!("lockout_failures = {LOCKOUT_LIMIT}\nlockout_window = 300\nlockout_base = 60\n"),
    );
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut id = NodeIdentity::new("alternating");
    drop(id.enroll(a.node_addr));
    wait_view(b, id.node_id, "enrolled", |v| {
        v["node_id"] == json!(id.node_id)
    });
    let locked_before = [a, b].map(|c| {
        c.metrics().labeled(
            "honeybee_registrations_refused_total",
            "reason",
            "locked_out",
        )
    });

    // Every one of the limit's wrong codes is judged (none meets a
    // lockout): core-a sees three, core-b two.
    for i in 0..LOCKOUT_LIMIT {
        let (name, core) = if i % 2 == 0 {
            ("core-a", a)
        } else {
            ("core-b", b)
        };
        let mut c = TestNode::connect(core.node_addr).unwrap();
        let ack = c.register(&id.with_wrong_code());
        assert!(!ack.accepted, "a wrong code was accepted on {name}");
        assert_eq!(
            ack.message.as_deref(),
            Some("invalid TOTP code"),
            "wrong code {} of {LOCKOUT_LIMIT}, on {name}",
            i + 1
        );
    }

    // Now the right code is refused on both cores, saying why.
    totp::wait_for_step_margin(Duration::from_secs(3));
    for (name, core) in [("core-a", a), ("core-b", b)] {
        let (mut c, ack) = id.login(core.node_addr, 0);
        assert!(
            !ack.accepted,
            "a correct code was accepted on {name} after {LOCKOUT_LIMIT} wrong ones across both cores"
        );
        let message = ack.message.unwrap_or_default();
        let secs: Option<u64> = message
            .strip_prefix("too many failed TOTP attempts; locked out for ")
            .and_then(|m| m.strip_suffix(" s"))
            .and_then(|m| m.parse().ok());
        assert!(
            secs.is_some_and(|s| (1..=60).contains(&s)),
            "{name}: not the locked-out message of a 60 s lockout: {message:?}"
        );
        c.expect_closed(T, "locked out");
    }
    for (core, before) in [a, b].into_iter().zip(locked_before) {
        core.api().wait_metric_at_least(
            "honeybee_registrations_refused_total",
            &[("reason", "locked_out")],
            before + 1.0,
            T,
        );
    }
}

/// Sources a node's lockouts track one by one (`MAX_SOURCES_PER_NODE`);
/// failures from further sources share one overflow lockout.
const TRACKED_SOURCES: u8 = 16;

/// As on a core alone, sources past the tracked ones share one lockout,
/// counted across cores: it locks every further source on every core, and
/// no source with a count of its own.
#[test]
fn past_the_tracked_sources_further_sources_share_one_lockout_across_cores() {
    let pg = Postgres::start();
    let fleet = cores_with(
        &pg,
        2,
        &format!("lockout_failures = {LOCKOUT_LIMIT}\nlockout_window = 300\nlockout_base = 60\n"),
    );
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut id = NodeIdentity::new("many-sources");
    drop(id.enroll(a.node_addr));
    wait_view(b, id.node_id, "enrolled", |v| {
        v["node_id"] == json!(id.node_id)
    });
    let source = |b: u8, c: u8| IpAddr::V4(Ipv4Addr::new(127, 0, b, c));
    let wrong = |from: IpAddr, core: &Core| {
        let mut n = TestNode::connect_from(from, core.node_addr).unwrap();
        let ack = n.register(&id.with_wrong_code());
        assert_eq!(
            ack.message.as_deref(),
            Some("invalid TOTP code"),
            "a wrong code from {from}"
        );
    };
    // One wrong code from each tracked source, then the limit's from as
    // many further sources, alternating cores.
    for i in 0..TRACKED_SOURCES {
        wrong(source(1, i + 1), &fleet[usize::from(i % 2)]);
    }
    for i in 0..LOCKOUT_LIMIT as u8 {
        wrong(source(2, i + 1), &fleet[usize::from(i % 2)]);
    }
    totp::wait_for_step_margin(Duration::from_secs(3));
    for core in [a, b] {
        let mut n = TestNode::connect_from(source(3, 1), core.node_addr).unwrap();
        let ack = n.register(&id.with_code(0));
        assert!(
            ack.message
                .as_deref()
                .unwrap_or_default()
                .contains("locked out"),
            "a further source is locked out: {:?}",
            ack.message
        );
    }
    let mut n = TestNode::connect_from(source(1, 1), a.node_addr).unwrap();
    let ack = n.register(&id.with_code(0));
    assert!(
        ack.accepted,
        "a tracked source with one failure was locked out: {:?}",
        ack.message
    );
}

/// The `UpdateConfig` command carrying `blob`, as the API takes it and as
/// the node must receive it.
fn config_command(node_id: u64, blob: &str) -> (String, CoreMessage) {
    let body = json!({"UpdateConfig": {"blob": blob}}).to_string();
    let mut settings = serde_json::Map::new();
    settings.insert("blob".into(), json!(blob));
    let message = CoreMessage::NodeCommand(NodeCommand {
        node_id,
        command: Command::UpdateConfig(Some(settings)),
    });
    (body, message)
}

/// Bytes of `message` on the node's wire, without the newline.
fn line_len(message: &CoreMessage) -> usize {
    encode(&Envelope::new(message.clone())).len() - 1
}

/// A command POSTed to the core that does not hold the node reaches it
/// intact within a second, however large: 60 KB, and the largest a node
/// reads (a line of `DEFAULT_MAX_MESSAGE_BYTES`), far past the 8,000 bytes
/// a NOTIFY carries.
#[test]
fn a_large_command_posted_on_the_other_core_reaches_the_node_intact() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut id = NodeIdentity::new("big-commands");
    let mut node = id.enroll(a.node_addr);
    wait_view(b, id.node_id, "seen from core-b", on("core-a"));

    // Text that must survive every step: escapes, multi-byte characters.
    let pattern = "honeybee \"quoted\" \\ tab\t é € 🐝 0123456789 ";
    let blob_of = |chars: usize| -> String { pattern.chars().cycle().take(chars).collect() };
    // The largest a node reads: the longest blob whose line fits.
    let fits = |chars: usize| {
        line_len(&config_command(id.node_id, &blob_of(chars)).1) <= DEFAULT_MAX_MESSAGE_BYTES
    };
    let (mut fit, mut over) = (0, DEFAULT_MAX_MESSAGE_BYTES);
    while over - fit > 1 {
        let mid = (fit + over) / 2;
        if fits(mid) {
            fit = mid;
        } else {
            over = mid;
        }
    }
    for chars in [60_000, fit] {
        let (body, want) = config_command(id.node_id, &blob_of(chars));
        assert!(body.len() <= 1024 * 1024, "the API takes at most 1 MiB");
        let started = Instant::now();
        let reply = b
            .api()
            .post(&format!("/api/v1/nodes/{}/commands", id.node_id), &body)
            .expect_status(202)
            .json();
        assert_eq!(reply["core_name"], "core-a", "{reply}");
        match node.recv(Duration::from_secs(1)) {
            Ok(got) => assert!(
                got == want,
                "a command of {} bytes arrived changed",
                body.len()
            ),
            Err(e) => panic!(
                "no command of {} bytes on core-a within 1 s of the POST to core-b: {}",
                body.len(),
                format!("{e:?}").chars().take(300).collect::<String>()
            ),
        }
        eprintln!(
            "command of {} bytes (a {}-byte line) core-b → node on core-a: {:?}",
            body.len(),
            line_len(&want),
            started.elapsed()
        );
    }
    // Nothing is left waiting once delivered.
    assert_eq!(
        pg.sql("fleet", "SELECT count(*) FROM routed_commands")
            .trim(),
        "0"
    );
}

/// A command routed while the holding core was not listening (its
/// listening session was cut) waits in the database and is delivered once
/// that core listens again.
#[test]
fn a_command_routed_while_the_holder_was_not_listening_is_delivered_after() {
    let pg = Postgres::start();
    let fleet = cores(&pg, 2);
    let (a, b) = (&fleet[0], &fleet[1]);
    let mut id = NodeIdentity::new("deaf-holder");
    let mut node = id.enroll(a.node_addr);
    wait_view(b, id.node_id, "seen from core-b", on("core-a"));

    let cut = pg.sql(
        "fleet",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE application_name = 'honeybee-core/core-a'",
    );
    assert_eq!(cut.trim(), "1", "core-a's listening session");
    // core-a waits 500 ms before listening again: post within that.
    wait_for(T, "core-a noticed", || {
        a.stderr().contains("listening again")
    });
    let (body, want) = config_command(id.node_id, "while deaf");
    b.api()
        .post(&format!("/api/v1/nodes/{}/commands", id.node_id), &body)
        .expect_status(202);
    match node.recv(T) {
        Ok(got) => assert_eq!(got, want),
        other => panic!("the command was not delivered after core-a listened again: {other:?}"),
    }
    assert_eq!(
        pg.sql("fleet", "SELECT count(*) FROM routed_commands")
            .trim(),
        "0"
    );
}
