//! The core behind a load balancer (issue 14, item 11): a PROXY protocol
//! header from a trusted proxy names the client on all three ports, for the
//! fleet view, approval bindings, lockouts and per-source limits; the same
//! header from anyone else is never believed; a trusted peer without a valid
//! header is closed. Last, a real HAProxy in front of a core, configured
//! like `configs/haproxy.cfg`.
//!
//! The trusted proxy is 127.0.0.2 ([`TRUSTED_PROXY`]), so that the harness
//! (and the health probes) keep talking to the core directly from 127.0.0.1.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use honeybee_tests::attacks::{connect_from, HealthProbe, ATTACKER};
use honeybee_tests::haproxy::{self, Backend, Haproxy, HAPROXY_SOURCE, TRUSTED_PROXY};
use honeybee_tests::{Api, Core, CoreBuilder, NodeIdentity, Pki, TempDir, TestNode};
use serde_json::json;

const T: Duration = Duration::from_secs(5);

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The proxy's address (127.0.0.2), which the cores here trust.
const PROXY: IpAddr = HAPROXY_SOURCE;

fn builder() -> CoreBuilder {
    Core::builder().args(["--trusted-proxy", TRUSTED_PROXY])
}

/// A PROXY v2 header (TCP over IPv4) for `client` connecting to `to`.
fn v2(client: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (client.ip(), to.ip()) else {
        panic!("IPv4 only")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(&client.port().to_be_bytes());
    h.extend_from_slice(&to.port().to_be_bytes());
    h
}

/// A PROXY v1 line for `client` connecting to `to`.
fn v1(client: SocketAddr, to: SocketAddr) -> Vec<u8> {
    format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        client.ip(),
        to.ip(),
        client.port(),
        to.port()
    )
    .into_bytes()
}

/// A node connection from `from` that starts with `header`.
fn node_with_header(from: IpAddr, addr: SocketAddr, header: &[u8]) -> TestNode {
    let mut s = connect_from(from, addr)
        .unwrap_or_else(|e| panic!("cannot connect from {from} to {addr}: {e}"));
    s.set_nodelay(true).unwrap();
    s.write_all(header).unwrap();
    TestNode::from_tcp(s).unwrap()
}

/// Sends `bytes` from `from` and reads the answer until the core closes
/// (or `T` passes): the text, empty when the core said nothing.
fn exchange_from(from: IpAddr, addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = connect_from(from, addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

fn status(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn get_health() -> Vec<u8> {
    b"GET /health HTTP/1.1\r\nHost: core\r\nConnection: close\r\n\r\n".to_vec()
}

fn peer_of(api: &Api, node_id: u64) -> String {
    let node = api
        .node(node_id)
        .unwrap_or_else(|| panic!("node {node_id} not listed"));
    node["peer_address"].as_str().unwrap_or_default().to_owned()
}

/// Every `peer_address` the API shows.
fn peers(api: &Api) -> Vec<String> {
    api.nodes()
        .iter()
        .filter_map(|n| n["peer_address"].as_str().map(str::to_owned))
        .collect()
}

fn refused(core: &Core, reason: &str) -> f64 {
    core.metrics()
        .labeled("honeybee_connections_refused_total", "reason", reason)
}

#[test]
fn a_malformed_trusted_proxy_is_exit_2_before_any_port_and_print_config_shows_the_list() {
    let dir = TempDir::new("honeybee-proxy-cli");
    // A port the core would fail to bind: the CIDR must be refused first.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let (status, _, err) = honeybee_tests::core_process::run_to_exit(
        &[
            "--node-port",
            &port,
            "--trusted-proxy",
            "127.0.0.1/32",
            "--trusted-proxy",
            "10.0.0.0/33",
        ],
        dir.path(),
        T,
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("--trusted-proxy: `10.0.0.0/33`") && err.contains("0-32"),
        "{err}"
    );
    assert!(!err.contains("in use"), "{err}");
    // The same from the config file names the key.
    let file = dir.path().join("core.toml");
    std::fs::write(&file, "trusted_proxies = [\"10.0.0.1/8\"]\n").unwrap();
    let file = file.display().to_string();
    let (status, _, err) = honeybee_tests::core_process::run_to_exit(
        &["--config", &file, "--node-port", &port],
        dir.path(),
        T,
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("trusted_proxies: `10.0.0.1/8`") && err.contains("did you mean 10.0.0.0/8"),
        "{err}"
    );
    let (status, out, err) = honeybee_tests::core_process::run_to_exit(
        &["--print-config", "--trusted-proxy", "192.0.2.0/24"],
        dir.path(),
        T,
    );
    assert!(status.success(), "{err}");
    assert!(
        out.contains("trusted_proxies = [\"192.0.2.0/24\"]"),
        "{out}"
    );
    let (_, out, _) = honeybee_tests::core_process::run_to_exit(&["--print-config"], dir.path(), T);
    assert!(out.contains("trusted_proxies = []"), "{out}");
}

/// (a) A node behind the trusted proxy is recorded with the client's
/// address, not the proxy's; v1 and v2 alike.
#[test]
fn a_node_through_a_trusted_proxy_is_recorded_with_the_clients_address() {
    let core = builder().start();
    let client: SocketAddr = "127.0.0.77:40000".parse().unwrap();
    let mut id = NodeIdentity::new("behind-v2");
    let mut node = node_with_header(PROXY, core.node_addr, &v2(client, core.node_addr));
    let ack = node.register(&id.first());
    assert!(ack.accepted, "{ack:?}");
    id.learn(&ack);
    assert_eq!(peer_of(core.api(), id.node_id), "127.0.0.77:40000");

    let client: SocketAddr = "127.0.0.78:40001".parse().unwrap();
    let id2 = NodeIdentity::new("behind-v1");
    let mut node2 = node_with_header(PROXY, core.node_addr, &v1(client, core.node_addr));
    assert!(node2.register(&id2.first()).accepted);
    assert_eq!(peer_of(core.api(), id2.node_id), "127.0.0.78:40001");
    assert!(
        !peers(core.api())
            .iter()
            .any(|p| p.starts_with("127.0.0.2:")),
        "the proxy's own address is recorded: {:?}",
        peers(core.api())
    );
    // A LOCAL header (the proxy's own connection) keeps the proxy's address.
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let id3 = NodeIdentity::new("proxy-itself");
    let mut node3 = node_with_header(PROXY, core.node_addr, local);
    assert!(node3.register(&id3.first()).accepted);
    assert!(peer_of(core.api(), id3.node_id).starts_with("127.0.0.2:"));
    // The connection carries on as the node's.
    node.must_send(&id.status(honeybee_proto::NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);
}

/// (a) Approval binds to, and TOTP lockouts count, the client behind the
/// proxy: one client cannot take another's approval or lock it out.
#[test]
fn approvals_and_lockouts_follow_the_client_behind_the_proxy() {
    let core = builder()
        .args(["--enrollment", "approve"])
        .config("lockout_failures = 3\nlockout_base = 60\n")
        .start();
    let seen: SocketAddr = "127.0.0.81:5000".parse().unwrap();
    let other: SocketAddr = "127.0.0.82:5000".parse().unwrap();
    let mut id = NodeIdentity::new("pending-behind");
    let mut first = node_with_header(PROXY, core.node_addr, &v2(seen, core.node_addr));
    assert!(!first.register(&id.first()).accepted);
    let node = core.api().node(id.node_id).expect("pending node listed");
    assert_eq!(node["peer_address"], "127.0.0.81", "{node}");
    let ok = core.api().post(
        &format!("/api/v1/nodes/{}/approve", id.node_id),
        r#"{"peer_address": "127.0.0.81"}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Another client of the same proxy gets no key…
    let mut thief = node_with_header(PROXY, core.node_addr, &v2(other, core.node_addr));
    let ack = thief.register(&id.first());
    assert!(!ack.accepted && ack.totp_key.is_none(), "{ack:?}");
    // …the one the operator saw does.
    let mut real = node_with_header(PROXY, core.node_addr, &v2(seen, core.node_addr));
    let ack = real.register(&id.first());
    assert!(ack.accepted && ack.totp_key.is_some(), "{ack:?}");
    id.learn(&ack);
    drop(real);
    // Wrong codes from the other client lock out only that client.
    for _ in 0..4 {
        let mut n = node_with_header(PROXY, core.node_addr, &v2(other, core.node_addr));
        assert!(!n.register(&id.with_wrong_code()).accepted);
    }
    let mut n = node_with_header(PROXY, core.node_addr, &v2(other, core.node_addr));
    let ack = n.register(&id.with_code(0));
    assert!(
        ack.message
            .as_deref()
            .unwrap_or_default()
            .contains("locked out"),
        "{ack:?}"
    );
    let mut n = node_with_header(PROXY, core.node_addr, &v2(seen, core.node_addr));
    let ack = n.register(&id.with_code(1));
    assert!(ack.accepted, "the real client was locked out: {ack:?}");
}

/// (b) The same header from an address that is not trusted is not
/// interpreted: the node port takes it for a (broken) first line.
#[test]
fn a_header_from_an_untrusted_address_is_refused_and_its_claim_never_shows() {
    let core = builder().start();
    let claimed: SocketAddr = "127.0.0.77:40000".parse().unwrap();
    for header in [v2(claimed, core.node_addr), v1(claimed, core.node_addr)] {
        let id = NodeIdentity::new("spoofer");
        let mut node = node_with_header(ATTACKER, core.node_addr, &header);
        let _ = node.send(&id.first());
        match node.recv_ack(T) {
            Ok(ack) => assert!(!ack.accepted, "accepted through a spoofed header: {ack:?}"),
            Err(e) => assert!(e.is_disconnect(), "{e}"),
        }
        node.expect_closed(T, "a PROXY header from an untrusted peer");
        assert!(core.api().node(id.node_id).is_none(), "registered");
    }
    let seen = peers(core.api());
    assert!(
        !seen.iter().any(|p| p.contains("127.0.0.77")),
        "the claimed address shows: {seen:?}"
    );
    // Nodes from that address without a header are served as ever.
    let id = NodeIdentity::new("plain");
    let mut node = TestNode::connect_from(ATTACKER, core.node_addr).unwrap();
    assert!(node.register(&id.first()).accepted);
    assert!(peer_of(core.api(), id.node_id).starts_with("127.0.0.66:"));
}

/// (c) The API gate reads a trusted proxy's header before the request head;
/// from anyone else a PROXY line is a malformed head: 400.
#[test]
fn the_api_gate_believes_the_header_only_from_the_trusted_proxy() {
    let core = builder().start();
    let client: SocketAddr = "127.0.0.88:5000".parse().unwrap();
    for header in [v1(client, core.api_addr), v2(client, core.api_addr)] {
        let request = [header.clone(), get_health()].concat();
        let answer = exchange_from(PROXY, core.api_addr, &request);
        assert_eq!(status(&answer), Some(200), "{answer}");
        assert!(answer.contains("\"status\":\"ok\""), "{answer}");
        let answer = exchange_from(ATTACKER, core.api_addr, &request);
        assert_eq!(status(&answer), Some(400), "{answer}");
    }
    // A token holder's request with a body comes through whole.
    let token = core.api().token.clone();
    let body = r#"{"peer_address": "127.0.0.9"}"#;
    let post = format!(
        "POST /api/v1/nodes/12345/approve HTTP/1.1\r\nHost: core\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange_from(
        PROXY,
        core.api_addr,
        &[v1(client, core.api_addr), post.into_bytes()].concat(),
    );
    assert_eq!(status(&answer), Some(404), "{answer}");
    // The trusted proxy without a header is closed without an answer.
    let before = core
        .metrics()
        .value("honeybee_api_connections_refused_total", &[]);
    let answer = exchange_from(PROXY, core.api_addr, &get_health());
    assert_eq!(answer, "", "a trusted peer without a header was answered");
    core.api().wait_metric_at_least(
        "honeybee_api_connections_refused_total",
        &[],
        before + 1.0,
        T,
    );
}

/// (d) Per-source limits count the client the header names: one client over
/// its pending limit is refused, another client of the same proxy is not,
/// and the proxy's own address is never the one limited.
#[test]
fn per_source_limits_apply_to_the_client_behind_the_proxy() {
    let core = builder()
        .config("max_pending_per_source = 4\nregistration_timeout = 60\n")
        .start();
    let busy: SocketAddr = "127.0.0.90:1000".parse().unwrap();
    let before = refused(&core, "source_pending");
    let mut held: Vec<TestNode> = (0..7)
        .map(|_| node_with_header(PROXY, core.node_addr, &v2(busy, core.node_addr)))
        .collect();
    // Three of the seven are over the client's limit of four.
    core.api().wait_metric_at_least(
        "honeybee_connections_refused_total",
        &[("reason", "source_pending")],
        before + 3.0,
        T,
    );
    let closed = honeybee_tests::wait_for(
        "three connections of the busy client to be closed",
        T,
        Duration::from_millis(20),
        || {
            let n = held
                .iter()
                .filter(|n| honeybee_tests::test_node::peer_closed(n.tcp()))
                .count();
            (n >= 3).then_some(n)
        },
    );
    assert_eq!(closed, 3);
    held.retain(|n| !honeybee_tests::test_node::peer_closed(n.tcp()));
    assert_eq!(held.len(), 4);
    // Another client of the same proxy registers while the four wait.
    let calm: SocketAddr = "127.0.0.91:1000".parse().unwrap();
    let id = NodeIdentity::new("calm");
    let mut node = node_with_header(PROXY, core.node_addr, &v2(calm, core.node_addr));
    assert!(node.register(&id.first()).accepted);
    assert_eq!(peer_of(core.api(), id.node_id), "127.0.0.91:1000");
    // So does a node straight from the proxy's address (it is not limited
    // by its clients), and the busy client's held connections are live.
    let mut direct = TestNode::connect_from(PROXY, core.node_addr).unwrap();
    direct
        .send_raw(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00")
        .unwrap();
    assert!(
        direct
            .register(&NodeIdentity::new("local").first())
            .accepted
    );
    let id = NodeIdentity::new("busy");
    let ack = held[0].register(&id.first());
    assert!(ack.accepted, "{ack:?}");
    assert_eq!(peer_of(core.api(), id.node_id), "127.0.0.90:1000");
    assert_eq!(refused(&core, "proxy_header"), 0.0);
}

/// (d) The same on the API port: 32 open connections per client, counted
/// for the client, while the proxy carries more than 32 at once.
#[test]
fn the_api_gate_counts_connections_for_the_client_behind_the_proxy() {
    let core = builder().start();
    let busy: SocketAddr = "127.0.0.92:1000".parse().unwrap();
    // 32 idle connections of one client (header sent, no request yet)…
    let idle: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut s = connect_from(PROXY, core.api_addr).unwrap();
            s.write_all(&v2(busy, core.api_addr)).unwrap();
            s
        })
        .collect();
    // …leave that client no room once they are admitted…
    let before = core
        .metrics()
        .value("honeybee_api_connections_refused_total", &[]);
    honeybee_tests::wait_for(
        "the busy client to be over its limit",
        T,
        Duration::from_millis(50),
        || {
            let request = [v2(busy, core.api_addr), get_health()].concat();
            let answer = exchange_from(PROXY, core.api_addr, &request);
            (answer.is_empty()).then_some(())
        },
    );
    assert!(
        core.metrics()
            .value("honeybee_api_connections_refused_total", &[])
            > before
    );
    // …while another client of the same proxy is served.
    let calm: SocketAddr = "127.0.0.93:1000".parse().unwrap();
    let answer = exchange_from(
        PROXY,
        core.api_addr,
        &[v2(calm, core.api_addr), get_health()].concat(),
    );
    assert_eq!(status(&answer), Some(200), "{answer}");
    drop(idle);
}

/// (e) Garbage, an oversized header and a header that never ends, from the
/// trusted address, on every port: closed, counted, and the core serves on.
#[test]
fn garbage_oversized_and_slow_headers_from_the_trusted_proxy_are_closed() {
    let core = builder().start();
    let probe = HealthProbe::start(core.api_addr, Duration::from_millis(50));
    let oversized = {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff".to_vec();
        h.extend_from_slice(&[0u8; 4096]);
        h
    };
    let too_long_v1 = [&b"PROXY UNKNOWN "[..], &[b'a'; 200]].concat();
    let garbage: [&[u8]; 5] = [
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"{\"version\":2,\"message\":{}}\n",
        b"PROXY TCP4 127.0.0.1 nonsense\r\n",
        &oversized,
        &too_long_v1,
    ];
    let ports = [core.node_addr, core.api_addr, core.stream_addr];
    for addr in ports {
        for bytes in garbage {
            let mut conn = node_with_header(PROXY, addr, bytes);
            conn.expect_closed(T, &format!("garbage to {addr}: {bytes:?}"));
        }
    }
    // Slow: the start of a header, then nothing; closed at the header's
    // deadline (5 s), well before the ports' own (10 s).
    let slow: Vec<TestNode> = ports
        .iter()
        .flat_map(|&addr| {
            [&b"PROXY TCP4 127.0.0.5"[..], b"\r\n\r\n\0\r\nQUIT\n\x21"]
                .map(|start| node_with_header(PROXY, addr, start))
        })
        .collect();
    for mut conn in slow {
        conn.expect_closed(Duration::from_secs(15), "a header that never ends");
    }
    let m = core.metrics();
    assert!(
        m.labeled(
            "honeybee_connections_refused_total",
            "reason",
            "proxy_header"
        ) >= 7.0,
        "node port: {}",
        m.labeled(
            "honeybee_connections_refused_total",
            "reason",
            "proxy_header"
        )
    );
    assert!(m.labeled("honeybee_stream_refused_total", "reason", "proxy_header") >= 7.0);
    assert!(m.value("honeybee_api_connections_refused_total", &[]) >= 7.0);
    // Nothing of it reached the node registry or the gate's head parser.
    assert_eq!(m.value("honeybee_api_requests_refused_total", &[]), 0.0);
    let results = probe.finish();
    assert!(
        results.failures.is_empty(),
        "/health failed: {:?}",
        results.failures
    );
    assert!(!results.latencies.is_empty(), "/health never answered");
    // And honest clients behind the proxy still get in.
    let client: SocketAddr = "127.0.0.95:1000".parse().unwrap();
    let id = NodeIdentity::new("after");
    let mut node = node_with_header(PROXY, core.node_addr, &v1(client, core.node_addr));
    assert!(node.register(&id.first()).accepted);
}

/// (e) The stream port: a module behind the proxy registers; one whose
/// header is missing is closed.
#[test]
fn a_module_behind_the_trusted_proxy_uses_the_stream_port() {
    let core = builder().start();
    let client: SocketAddr = "127.0.0.96:1000".parse().unwrap();
    let mut s = connect_from(PROXY, core.stream_addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(&v2(client, core.stream_addr)).unwrap();
    let reg = json!({"version": 2, "message": {"BackendRegistration": {
        "backend_name": "behind", "backend_type": "Monitoring", "token": core.api().token}}});
    s.write_all(format!("{reg}\n").as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line);
    assert!(
        line.contains("Success") && line.contains("backend_id"),
        "{line}"
    );
    // A WebSocket through the proxy too.
    let mut ws = connect_from(PROXY, core.stream_addr).unwrap();
    ws.write_all(&v1(client, core.stream_addr)).unwrap();
    let url = format!("ws://{}/?token={}", core.stream_addr, core.api().token);
    let (mut ws, _) = tungstenite::client(url.as_str(), ws).expect("WebSocket through the proxy");
    ws.send(tungstenite::Message::text(
        r#"{"version":2,"message":{"BackendCommand":{"Subscribe":{"topics":["events"]}}}}"#,
    ))
    .unwrap();
    let answer = ws.read().unwrap();
    assert!(answer.to_string().contains("subscribed"), "{answer}");
}

/// (f) A real HAProxy in front of a core, configured like the shipped
/// `configs/haproxy.cfg`: TLS passes through to the core, the API and the
/// stream answer, and the core records the client's address, not
/// HAProxy's. A stopped core leaves HAProxy's rotation.
#[test]
fn a_real_haproxy_in_front_of_a_core() {
    let dir = TempDir::new("honeybee-proxy-pki");
    let pki = Pki::new(dir.path());
    let mut core = builder().args(pki.server_args()).start();
    let proxy = Haproxy::start(&[Backend::of(&core)]);
    // The config under test has the shipped file's shape.
    assert_eq!(
        haproxy::shape(proxy.config()),
        haproxy::shape(&haproxy::shipped_config()),
        "tests/src/haproxy.rs renders another shape than configs/haproxy.cfg:\n{}",
        proxy.config()
    );
    let through = Api::new(proxy.api_addr, core.api().token.clone());
    assert!(through.healthy(), "/health through HAProxy");

    // A node over TLS, through HAProxy, from its own address.
    let node_ip = lo(3);
    let mut id = NodeIdentity::new("through-haproxy");
    let mut node = TestNode::connect_tls_from(
        Some(node_ip),
        proxy.node_addr,
        pki.client_config(None),
        "localhost",
    )
    .unwrap_or_else(|e| panic!("TLS through HAProxy: {e}\n{}", proxy.stderr()));
    let ack = node.register(&id.first());
    assert!(ack.accepted, "{ack:?}");
    id.learn(&ack);
    let peer = peer_of(&through, id.node_id);
    let local_port = node.local_addr().port();
    assert_eq!(
        peer,
        format!("127.0.0.3:{local_port}"),
        "the core recorded HAProxy instead of the node"
    );
    node.must_send(&id.status(honeybee_proto::NodeStatus::Running));
    through.wait_status(id.node_id, "Running", T);

    // A module on the stream port through HAProxy.
    let mut s = connect_from(lo(4), proxy.stream_addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let reg = json!({"version": 2, "message": {"BackendRegistration": {
        "backend_name": "via-haproxy", "backend_type": "Monitoring", "token": core.api().token}}});
    s.write_all(format!("{reg}\n").as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    let line = String::from_utf8_lossy(&buf[..n]);
    assert!(line.contains("backend_id"), "{line}");

    // HAProxy's own checks carried headers: nothing was refused for lack of one.
    let m = through.metrics();
    assert_eq!(
        m.labeled(
            "honeybee_connections_refused_total",
            "reason",
            "proxy_header"
        ),
        0.0
    );
    assert_eq!(
        m.labeled("honeybee_stream_refused_total", "reason", "proxy_header"),
        0.0
    );
    assert_eq!(m.value("honeybee_api_connections_refused_total", &[]), 0.0);

    // A core that stops leaves the rotation (inter 1s fall 2).
    drop(node);
    let started = Instant::now();
    core.terminate(T);
    proxy.wait_core_status(0, "DOWN", Duration::from_secs(20));
    eprintln!(
        "HAProxy took the stopped core out after {:?}",
        started.elapsed()
    );
}
