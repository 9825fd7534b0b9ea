//! Extension mode against the real core, probed by real clients: ports in
//! use are left to their service, curl / openssl / OpenSSH / Redis and RDP
//! probes are fingerprinted, an nmap scan from a network namespace the test
//! creates is one `extension.portscan`, a flood becomes summaries with flat
//! memory, and a restarted agent takes its ports again.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{free_ports, port_list};
use honeybee_tests::{Agent, Core};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

fn extension(core: &Core, ports: &[u16], bind: &str) -> honeybee_tests::AgentBuilder {
    Agent::extension(core.node_addr)
        .workspace(core.workspace())
        .heartbeat_interval(1)
        .args([
            "--ports",
            &port_list(ports),
            "--udp-ports",
            "",
            "--bind",
            bind,
        ])
}

/// The Started event's port report.
#[track_caller]
fn port_report(core: &Core, id: u64) -> String {
    let node = core.api().wait_node(id, T, |n| {
        n["events"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["type"] == "Started" && e["description"].is_string())
        })
    });
    node["events"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| e["type"] == "Started" && e["description"].is_string())
        })
        .map(|e| e["description"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[track_caller]
fn wait_event(core: &Core, event_type: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let events = core.api().all_events(&[("event_type", event_type)]);
        if let Some(e) = events.iter().find(|e| pred(&e["data"])) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no matching {event_type} among {} events: {events:?}",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn on_port(port: u16) -> impl Fn(&Value) -> bool {
    move |d: &Value| d["dst_port"] == port
}

#[test]
fn a_port_in_use_is_skipped_and_its_service_still_answers() {
    let core = Core::start();
    let service = TcpListener::bind("127.0.0.1:0").expect("service");
    let busy = service.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = service.accept().expect("accept");
        s.write_all(b"real service\n").expect("write");
    });
    let free = free_ports(1)[0];
    let agent = extension(&core, &[busy, free], "127.0.0.1").start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let node = core.api().node(id).expect("node");
    assert_eq!(node["node_type"], "Agent");
    assert!(
        node["capabilities"].to_string().contains("extension"),
        "{node}"
    );
    let report = port_report(&core, id);
    assert!(
        report.contains(&format!("skipped TCP {busy} (in use)")),
        "{report}"
    );
    assert!(report.contains(&free.to_string()), "{report}");
    // The same, structured, as the details of the `extension` pot's
    // status (the node page shows them); a pot command naming it changes
    // nothing but says why.
    let pot = core
        .api()
        .wait_pot(id, "extension", T, |p| p["details"]["skipped"].is_array());
    assert_eq!(pot["status"], "Running", "{pot}");
    assert_eq!(pot["pot_type"], "extension");
    assert_eq!(pot["details"]["tcp"], json!([free]), "{pot}");
    assert_eq!(
        pot["details"]["skipped"],
        json!([{"protocol": "tcp", "port": busy, "reason": "in use"}])
    );
    core.api().command(id, &json!({"StopPot": "extension"}));
    let after = core.api().wait_pot(id, "extension", T, |p| {
        p["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("StopPot: "))
    });
    assert_eq!(after["status"], "Running", "{after}");
    assert_eq!(after["details"]["tcp"], json!([free]));

    let mut c = TcpStream::connect(("127.0.0.1", busy)).expect("service port");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read");
    assert_eq!(answer, "real service\n", "the real service still answers");
    server.join().expect("server");

    let mut probe = TcpStream::connect(("127.0.0.1", free)).expect("tripwire");
    probe.write_all(b"HELLO there\r\n").expect("write");
    drop(probe);
    let e = wait_event(&core, "extension.connection", on_port(free));
    assert_eq!(e["data"]["src_ip"], "127.0.0.1");
    assert_eq!(e["data"]["first_bytes"], "48454c4c4f2074686572650d0a");
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).expect("status");
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !uid.split_whitespace().skip(1).any(|u| u == "0"),
        "still root after binding: {uid}"
    );
}

#[test]
fn real_clients_are_fingerprinted() {
    let core = Core::start();
    let p = free_ports(5);
    let (http, tls, ssh, redis, rdp) = (p[0], p[1], p[2], p[3], p[4]);
    let agent = extension(&core, &p, "127.0.0.1").start();
    core.api().wait_status(agent.node_id(), "Running", T);
    port_report(&core, agent.node_id());

    let _ = Command::new("curl")
        .args(["-s", "-m", "5", "-A", "hb-test-agent/1.0"])
        .arg(format!("http://127.0.0.1:{http}/wp-login.php?x=1"))
        .output()
        .expect("curl");
    let e = wait_event(&core, "extension.connection", on_port(http));
    let d = &e["data"];
    assert_eq!(d["protocol"], "http", "{d}");
    assert_eq!(d["method"], "GET", "{d}");
    assert_eq!(d["path"], "/wp-login.php?x=1", "{d}");
    assert_eq!(d["user_agent"], "hb-test-agent/1.0", "{d}");
    assert_eq!(d["host"], format!("127.0.0.1:{http}"), "{d}");

    let mut openssl = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{tls}"),
            "-servername",
            "probe.example.test",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl");
    let e = wait_event(&core, "extension.connection", on_port(tls));
    let _ = openssl.kill();
    let _ = openssl.wait();
    let d = &e["data"];
    assert_eq!(d["protocol"], "tls", "{d}");
    assert_eq!(d["sni"], "probe.example.test", "{d}");
    assert_eq!(d["ja3_hash"].as_str().map(str::len), Some(32), "{d}");

    let _ = Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-p",
            &ssh.to_string(),
            "probe@127.0.0.1",
            "true",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ssh");
    let e = wait_event(&core, "extension.connection", on_port(ssh));
    let d = &e["data"];
    assert_eq!(d["protocol"], "ssh", "{d}");
    assert!(
        d["client_version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("SSH-2.0-OpenSSH"),
        "{d}"
    );

    let mut r = TcpStream::connect(("127.0.0.1", redis)).expect("redis port");
    r.write_all(b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n")
        .expect("write");
    drop(r);
    let e = wait_event(&core, "extension.connection", on_port(redis));
    assert_eq!(e["data"]["protocol"], "redis", "{}", e["data"]);
    assert_eq!(e["data"]["command"], "AUTH", "{}", e["data"]);

    // An X.224 connection request with an RDP cookie, as mstsc sends it.
    let cookie = b"Cookie: mstshash=alice\r\n";
    let x224_len = 6 + cookie.len() + 8;
    let mut pdu = vec![0x03, 0x00, 0x00, (4 + 1 + x224_len) as u8];
    pdu.extend_from_slice(&[x224_len as u8, 0xe0, 0, 0, 0, 0, 0]);
    pdu.extend_from_slice(cookie);
    pdu.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]);
    let mut c = TcpStream::connect(("127.0.0.1", rdp)).expect("rdp port");
    c.write_all(&pdu).expect("write");
    drop(c);
    let e = wait_event(&core, "extension.connection", on_port(rdp));
    assert_eq!(e["data"]["protocol"], "rdp", "{}", e["data"]);
    assert_eq!(e["data"]["user"], "alice", "{}", e["data"]);
}

#[test]
fn a_flood_becomes_summaries_and_memory_stays_flat() {
    let core = Core::start();
    let port = free_ports(1)[0];
    let mut agent = extension(&core, &[port], "127.0.0.1").start();
    core.api().wait_status(agent.node_id(), "Running", T);
    port_report(&core, agent.node_id());
    std::thread::sleep(Duration::from_millis(300));
    let before = agent.rss_kb().expect("rss");
    let flooders: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..500 {
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
                    }
                }
            })
        })
        .collect();
    let mut peak = before;
    for f in flooders {
        while !f.is_finished() {
            peak = peak.max(agent.rss_kb().unwrap_or(0));
            std::thread::sleep(Duration::from_millis(20));
        }
        f.join().expect("flooder");
    }
    let summary = wait_event(&core, "extension.flood", |d| d["src_ip"] == "127.0.0.1");
    assert!(
        summary["data"]["connections"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let single = core
        .api()
        .all_events(&[("event_type", "extension.connection")])
        .len();
    assert!(
        single < 200,
        "{single} single events for a 5,000-connection flood"
    );
    assert!(agent.is_running());
    let after = agent.rss_kb().expect("rss");
    assert!(
        peak < before + 4 * 1024,
        "RSS {before} kB before, peak {peak} kB during the flood"
    );
    assert!(
        after < before + 4 * 1024,
        "RSS {before} kB before, {after} kB after the flood"
    );
}

#[test]
fn a_restarted_agent_takes_its_ports_again() {
    let core = Core::start();
    let ports = free_ports(3);
    let mut agent = extension(&core, &ports, "127.0.0.1").start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let report = port_report(&core, id);
    assert!(!report.contains("skipped TCP"), "{report}");
    let mut c = TcpStream::connect(("127.0.0.1", ports[0])).expect("connect");
    c.write_all(b"x").expect("write");
    drop(c);
    assert!(agent.terminate(T).success());
    let again = agent.builder().start();
    core.api().wait_status(id, "Running", T);
    assert!(
        again.wait_stderr_contains("listening on TCP", T),
        "{}",
        again.stderr()
    );
    assert!(
        !again.stderr().contains("skipped TCP"),
        "{}",
        again.stderr()
    );
    let mut c = TcpStream::connect(("127.0.0.1", ports[2])).expect("connect after restart");
    c.write_all(b"after restart\n").expect("write");
    drop(c);
    wait_event(&core, "extension.connection", on_port(ports[2]));
}

/// Runs `ip`/`nmap`, panicking with their output on failure.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect(args[0]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with one veth link to this one, removed on drop.
struct TestHost {
    name: String,
    here: String,
    there: String,
}

impl TestHost {
    fn new() -> TestHost {
        assert!(
            nix::unistd::geteuid().is_root(),
            "network namespaces need root (CI runs as root)"
        );
        let n = std::process::id() % 250 + 1;
        let host = TestHost {
            name: format!("hbscan{}", std::process::id()),
            here: format!("10.231.{n}.1"),
            there: format!("10.231.{n}.2"),
        };
        let (a, b) = (format!("hbv{n}a"), format!("hbv{n}b"));
        let _ = Command::new("ip")
            .args(["netns", "del", &host.name])
            .output();
        let _ = Command::new("ip").args(["link", "del", &a]).output();
        sh(&["ip", "netns", "add", &host.name]);
        sh(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
        sh(&["ip", "link", "set", &b, "netns", &host.name]);
        sh(&["ip", "addr", "add", &format!("{}/30", host.here), "dev", &a]);
        sh(&["ip", "link", "set", &a, "up"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &host.name,
            "ip",
            "addr",
            "add",
            &format!("{}/30", host.there),
            "dev",
            &b,
        ]);
        sh(&[
            "ip", "netns", "exec", &host.name, "ip", "link", "set", &b, "up",
        ]);
        sh(&[
            "ip", "netns", "exec", &host.name, "ip", "link", "set", "lo", "up",
        ]);
        host
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth, and so both.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
fn an_nmap_scan_from_another_host_is_one_portscan_event() {
    let host = TestHost::new();
    let core = Core::start();
    let ports = free_ports(12);
    let agent = extension(&core, &ports, &host.here).start();
    core.api().wait_status(agent.node_id(), "Running", T);
    port_report(&core, agent.node_id());
    sh(&[
        "ip",
        "netns",
        "exec",
        &host.name,
        "nmap",
        "-n",
        "-Pn",
        "-sT",
        "--max-retries",
        "0",
        "-p",
        &port_list(&ports),
        &host.here,
    ]);
    let scan = wait_event(&core, "extension.portscan", |d| {
        d["src_ip"] == host.there.as_str()
    });
    let count = scan["data"]["count"].as_u64().unwrap_or(0);
    assert!(count >= 8, "{scan}");
    std::thread::sleep(Duration::from_secs(2));
    let scans = core
        .api()
        .all_events(&[("event_type", "extension.portscan")]);
    assert_eq!(scans.len(), 1, "one scan, one event: {scans:?}");
}

#[test]
fn a_low_port_is_bound_as_root_then_root_is_dropped_and_udp_is_recorded_unanswered() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "binding port 1 needs root (CI runs as root)"
    );
    let core = Core::start();
    let udp_port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        s.local_addr().expect("addr").port()
    };
    let agent = Agent::extension(core.node_addr)
        .workspace(core.workspace())
        .heartbeat_interval(1)
        .args([
            "--ports",
            "1",
            "--udp-ports",
            &udp_port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let report = port_report(&core, id);
    assert!(report.contains("listening on TCP 1 and UDP"), "{report}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).expect("status");
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !uid.split_whitespace().skip(1).any(|u| u == "0"),
        "still root: {uid}"
    );

    let mut c = TcpStream::connect(("127.0.0.1", 1)).expect("port 1");
    c.write_all(b"probe\n").expect("write");
    drop(c);
    wait_event(&core, "extension.connection", on_port(1));

    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp client");
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    client
        .send_to(
            b"\x30\x26\x02\x01\x01\x04\x06public",
            ("127.0.0.1", udp_port),
        )
        .expect("send");
    let e = wait_event(&core, "extension.connection", on_port(udp_port));
    assert_eq!(e["data"]["transport"], "udp", "{e}");
    let mut buf = [0u8; 64];
    assert!(
        client.recv_from(&mut buf).is_err(),
        "a datagram was answered"
    );
}
