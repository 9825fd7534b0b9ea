//! The node port (9001), the stream port (9003) and the approval and token
//! paths under the attacks of issue step 7 (F7–F9, F11, F13, F14), against
//! the release core when one is built. Each attack comes from another
//! loopback address than the honest node or module, which must keep working.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use honeybee_proto::{NodeMessage, PotStatus, PotStatusUpdate};
use honeybee_tests::attacks::{connect_from, HealthProbe};
use honeybee_tests::{Core, CoreBuilder, NodeIdentity, TempDir, TestNode};
use serde_json::json;

const T: Duration = Duration::from_secs(10);
/// RSS an attack may add to the core.
const RSS_BUDGET_KB: u64 = 64 * 1024;

fn lo(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

fn assert_healthy(probe: HealthProbe, what: &str) {
    probe.finish().assert_healthy(what);
}

fn builder() -> CoreBuilder {
    Core::builder().release()
}

#[test]
fn f7_one_node_cannot_pin_memory_with_pot_status_text() {
    let core = builder().start();
    let mut id = NodeIdentity::new("big-talker");
    let mut node = id.enroll(core.node_addr);
    let before = core.rss_kb();
    let probe = HealthProbe::start(core.api_addr, Duration::from_millis(20));
    let text = "m".repeat(500_000);
    for i in 0..256 {
        node.must_send(&NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: id.node_id,
            pot_id: format!("pot-{i}"),
            pot_type: "cowrie".into(),
            status: PotStatus::Running,
            message: Some(text.clone()),
            details: Some(json!({ "blob": text })),
        }));
    }
    // Everything sent has been read once the status sent after it shows.
    node.must_send(&id.status(honeybee_proto::NodeStatus::Running));
    core.api()
        .wait_status(id.node_id, "Running", Duration::from_secs(10));
    let r = core.api().get(&format!("/api/v1/nodes/{}", id.node_id));
    assert_eq!(r.status, 200);
    let body = r.json();
    let pots = body["pots"].as_array().expect("pots");
    assert_eq!(pots.len(), 64, "pots kept per node");
    for p in pots {
        let m = p["message"].as_str().unwrap_or_default();
        assert!(m.len() <= 2048, "a message of {} bytes kept", m.len());
        assert_eq!(p["details"]["truncated"], true, "{}", p["details"]);
    }
    let list = core.api().get("/api/v1/nodes");
    assert!(
        list.body.len() < 1024 * 1024,
        "GET /api/v1/nodes: {} bytes",
        list.body.len()
    );
    let grew = core.rss_kb().saturating_sub(before);
    assert!(grew < RSS_BUDGET_KB, "RSS grew by {grew} KiB");
    assert_healthy(probe, "256 pot updates of 1 MB");
    drop(node);
}

#[test]
fn f8_partial_lines_from_forty_addresses_hold_little_and_honest_nodes_get_in() {
    honeybee_tests::raise_fd_limit(8192);
    let core = builder().start();
    let before = core.rss_kb();
    let probe = HealthProbe::start(core.api_addr, Duration::from_millis(20));
    // 40 addresses × 32 connections, each sending an endless first line.
    let attackers: Vec<_> = (1..=40u8)
        .map(|host| {
            let addr = core.node_addr;
            std::thread::spawn(move || {
                let chunk = vec![b'x'; 64 * 1024];
                let mut conns: Vec<TcpStream> = (0..32)
                    .filter_map(|_| connect_from(lo(0, 0, 100 + host), addr).ok())
                    .collect();
                for c in &mut conns {
                    let _ = c.set_write_timeout(Some(Duration::from_millis(200)));
                    let _ = c.write_all(
                        b"{\"version\":2,\"message\":{\"NodeRegistration\":{\"node_name\":\"",
                    );
                    for _ in 0..16 {
                        if c.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                }
                conns
            })
        })
        .collect();
    // Meanwhile an honest node from another network enrolls and logs in.
    let mut id = NodeIdentity::new("honest");
    let mut honest = TestNode::connect_from(lo(9, 0, 1), core.node_addr).unwrap();
    let ack = honest.register(&id.first());
    assert!(ack.accepted, "honest node refused: {:?}", ack.message);
    id.learn(&ack);
    let held: Vec<_> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    let grew = core.rss_kb().saturating_sub(before);
    assert!(
        grew < RSS_BUDGET_KB,
        "RSS grew by {grew} KiB with partial lines held"
    );
    let m = core.metrics();
    let network = m.labeled(
        "honeybee_connections_refused_total",
        "reason",
        "network_pending",
    );
    let too_long = m.labeled("honeybee_protocol_errors_total", "kind", "too_long");
    assert!(
        network + too_long > 0.0,
        "neither network caps nor line limits acted (network_pending {network}, too_long {too_long})"
    );
    if network > 0.0 {
        // The operator can see why: one summary line, not one per refusal.
        let lines = core.stderr().matches("node connections (").count();
        assert!(
            (1..=5).contains(&lines),
            "{lines} refusal lines:\n{}",
            core.stderr()
        );
    }
    let mut again = TestNode::connect_from(lo(9, 0, 1), core.node_addr).unwrap();
    let ack = again.register(&id.with_code(0));
    assert!(ack.accepted, "honest login refused: {:?}", ack.message);
    assert_healthy(probe, "partial lines from 40 addresses");
    drop(held);
}

#[test]
fn f8_idle_stream_connections_cannot_lock_out_a_module() {
    let core = builder().start();
    let idle: Vec<TcpStream> = (0..256)
        .filter_map(|_| connect_from(lo(0, 0, 77), core.stream_addr).ok())
        .collect();
    assert!(idle.len() > 200, "the flood could not connect");
    std::thread::sleep(Duration::from_millis(500));
    // A module with the token still registers and is answered.
    let mut s = TcpStream::connect(core.stream_addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let reg = json!({"version": 2, "message": {"BackendRegistration": {
        "backend_name": "honest", "backend_type": "Monitoring", "token": core.api().token}}});
    s.write_all(format!("{reg}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(line.contains("Success"), "module registration: {line}");
    let refused =
        core.metrics()
            .labeled("honeybee_stream_refused_total", "reason", "pending_limit");
    assert!(refused >= 200.0, "idle connections refused: {refused}");
    drop(idle);
}

#[test]
fn f9_failures_from_another_address_do_not_lock_out_the_node() {
    let core = builder()
        .config("lockout_failures = 3\nlockout_base = 60\n")
        .start();
    let mut id = NodeIdentity::new("target");
    drop(id.enroll(core.node_addr));
    let attacker = lo(0, 0, 50);
    for _ in 0..6 {
        let mut n = TestNode::connect_from(attacker, core.node_addr).unwrap();
        let ack = n.register(&id.with_wrong_code());
        assert!(!ack.accepted);
    }
    let mut n = TestNode::connect_from(attacker, core.node_addr).unwrap();
    let ack = n.register(&id.with_code(0));
    assert!(
        ack.message
            .as_deref()
            .unwrap_or_default()
            .contains("locked out"),
        "the attacking address is locked out: {:?}",
        ack.message
    );
    // The real node, from its own address, logs in at once.
    let (_conn, ack) = id.login(core.node_addr, 1);
    assert!(
        ack.accepted,
        "the real node was locked out: {:?}",
        ack.message
    );
}

#[test]
fn f11_approval_binds_to_the_address_the_operator_saw() {
    let core = builder().arg("--enrollment").arg("approve").start();
    let mut id = NodeIdentity::new("pending");
    let mut first = TestNode::connect_from(lo(0, 0, 1), core.node_addr).unwrap();
    let ack = first.register(&id.first());
    assert!(!ack.accepted);
    let node = core.api().node(id.node_id).expect("pending node listed");
    assert_eq!(node["approved"], false);
    assert_eq!(node["peer_address"], "127.0.0.1", "{node}");
    // An approval for an address the node no longer asks from is refused.
    let stale = core.api().post(
        &format!("/api/v1/nodes/{}/approve", id.node_id),
        r#"{"peer_address": "127.0.0.9"}"#,
    );
    assert_eq!(stale.status, 409, "{}", stale.text());
    let ok = core.api().post(
        &format!("/api/v1/nodes/{}/approve", id.node_id),
        r#"{"peer_address": "127.0.0.1"}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    // The binding is kept across a restart of the core.
    let mut core = core;
    core.terminate(T);
    let core = builder()
        .arg("--enrollment")
        .arg("approve")
        .workspace(core.workspace())
        .start();
    // Someone else presenting the id gets no key…
    let mut thief = TestNode::connect_from(lo(0, 0, 66), core.node_addr).unwrap();
    let ack = thief.register(&id.first());
    assert!(!ack.accepted && ack.totp_key.is_none(), "{ack:?}");
    // …the node the operator saw does.
    let mut real = TestNode::connect_from(lo(0, 0, 1), core.node_addr).unwrap();
    let ack = real.register(&id.first());
    assert!(ack.accepted && ack.totp_key.is_some(), "{ack:?}");
    id.learn(&ack);
}

/// A core whose data dir holds a decoy `api-token` (what the harness's
/// client uses), so that only the token source under test can work.
fn core_with_decoy(setup: impl FnOnce(CoreBuilder, &std::path::Path) -> CoreBuilder) -> Core {
    let ws = std::sync::Arc::new(TempDir::new("hb-secret"));
    let data = ws.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_secret(&data.join("api-token"), "decoy");
    let b = builder().generated_api_token().workspace(ws.clone());
    setup(b, ws.path()).start()
}

fn write_secret(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn answers(core: &Core, token: &str) -> u16 {
    core.api()
        .call_as(Some(token), "GET", "/api/v1/nodes")
        .status
}

#[test]
fn f11_under_mtls_approval_binds_to_the_client_certificate_too() {
    let dir = TempDir::new("hb-mtls-approve");
    let pki = honeybee_tests::Pki::new(dir.path());
    let core = builder()
        .args(pki.mtls_server_args())
        .arg("--enrollment")
        .arg("approve")
        .start();
    let connect = |leaf: &honeybee_tests::certs::Leaf| {
        TestNode::connect_tls(core.node_addr, pki.client_config(Some(leaf)), "localhost").unwrap()
    };
    let mut id = NodeIdentity::new("pending-mtls");
    let ack = connect(&pki.client).register(&id.first());
    assert!(!ack.accepted);
    let node = core.api().node(id.node_id).expect("pending node listed");
    let shown = node["client_cert_sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("no fingerprint: {node}"))
        .to_string();
    assert_eq!(shown.len(), 64, "{node}");
    let ok = core
        .api()
        .post(&format!("/api/v1/nodes/{}/approve", id.node_id), "");
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Another valid certificate, same address, same id: no key.
    let ack = connect(&pki.other_client).register(&id.first());
    assert!(!ack.accepted && ack.totp_key.is_none(), "{ack:?}");
    // The certificate the operator saw: the key.
    let ack = connect(&pki.client).register(&id.first());
    assert!(ack.accepted && ack.totp_key.is_some(), "{ack:?}");
    id.learn(&ack);
}

#[test]
fn f13_tokens_come_from_files_and_the_environment_and_flags_warn() {
    let from_file = core_with_decoy(|b, dir| {
        let file = dir.join("token-file");
        write_secret(&file, "from-a-file");
        b.arg("--api-token-file").arg(file.display().to_string())
    });
    assert_eq!(answers(&from_file, "from-a-file"), 200);
    assert_eq!(answers(&from_file, "decoy"), 401);
    assert!(
        !from_file.stderr().contains("command line"),
        "{}",
        from_file.stderr()
    );

    let from_env = core_with_decoy(|b, _| b.env("HONEYBEE_API_TOKEN", "from-the-env"));
    assert_eq!(answers(&from_env, "from-the-env"), 200);
    assert_eq!(answers(&from_env, "decoy"), 401);

    // A token file others can read works, with a warning.
    let loose = core_with_decoy(|b, dir| {
        let file = dir.join("loose");
        write_secret(&file, "loose-token");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        b.arg("--api-token-file").arg(file.display().to_string())
    });
    assert_eq!(answers(&loose, "loose-token"), 200);
    assert!(
        loose.stderr().contains("readable by other users"),
        "{}",
        loose.stderr()
    );

    // The harness passes --api-token: the core says what that exposes.
    let flag = builder().start();
    let said = honeybee_tests::poll_until(T, Duration::from_millis(50), || {
        let e = flag.stderr();
        e.contains("--api-token puts a secret on the command line")
            .then_some(())
    });
    assert!(said.is_some(), "{}", flag.stderr());
}

#[test]
fn f14_websockets_from_pages_of_other_origins_are_refused() {
    let core = builder().start();
    let probe = HealthProbe::start(core.api_addr, Duration::from_millis(50));
    let handshake = |origin: &str| -> String {
        let mut s = TcpStream::connect(core.stream_addr).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let host = core.stream_addr;
        write!(
            s,
            "GET /?token={} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n",
            core.api().token
        )
        .unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        line
    };
    assert!(handshake("Origin: http://evil.example\r\n").contains(" 403 "));
    let dashboard = format!("Origin: http://127.0.0.1:{}\r\n", core.api_addr.port());
    assert!(handshake(&dashboard).contains(" 101 "));
    assert!(
        handshake("").contains(" 101 "),
        "non-browser clients send no Origin"
    );
    let refused = core
        .metrics()
        .labeled("honeybee_stream_refused_total", "reason", "origin");
    assert_eq!(refused, 1.0);
    assert_healthy(probe, "WebSocket handshakes");
}

/// A registration line of `len` bytes: a valid registration padded with
/// spaces inside the JSON (whitespace is allowed between tokens).
fn padded_registration(id: &NodeIdentity, len: usize) -> Vec<u8> {
    let msg = honeybee_proto::encode(&honeybee_proto::Envelope::new(id.first()));
    let body = msg.strip_suffix(b"\n").unwrap_or(&msg).to_vec();
    let pad = len.saturating_sub(body.len());
    let mut line = body[..body.len() - 1].to_vec();
    line.extend(std::iter::repeat_n(b' ', pad));
    line.push(b'}');
    line.push(b'\n');
    line
}

#[test]
fn the_registration_line_is_taken_at_64_kib_and_refused_one_byte_past() {
    let core = builder().start();
    let at = 64 * 1024;
    for (len, accepted) in [(at, true), (at + 1, false)] {
        let id = NodeIdentity::new("padded");
        let mut n = TestNode::connect(core.node_addr).unwrap();
        // The bound counts the line without its newline.
        n.send_raw(&padded_registration(&id, len)).unwrap();
        match n.recv_ack(T) {
            Ok(ack) => assert_eq!(ack.accepted, accepted, "{len} bytes: {ack:?}"),
            Err(e) => assert!(!accepted, "a {len}-byte registration was not answered: {e}"),
        }
    }
}

#[test]
fn unregistered_stream_connections_from_one_address_stop_at_eight() {
    let core = builder().start();
    let src = lo(0, 0, 88);
    let held: Vec<TcpStream> = (0..8)
        .map(|_| connect_from(src, core.stream_addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        held.iter()
            .all(|s| !honeybee_tests::test_node::peer_closed(s)),
        "the eighth was refused"
    );
    let ninth = connect_from(src, core.stream_addr).unwrap();
    let closed = honeybee_tests::poll_until(T, Duration::from_millis(50), || {
        honeybee_tests::test_node::peer_closed(&ninth).then_some(())
    });
    assert!(
        closed.is_some(),
        "the ninth unregistered connection stayed open"
    );
}
