//! The web dashboard in a real browser (core/docs/behaviour.md, Dashboard): headless
//! Chromium driven by `tests/browser/dashboard.mjs` (Playwright) against a
//! real core with two nodes whose ids exceed 2^53.
//!
//! The core runs with `--enrollment approve`. Node A is approved through the
//! API beforehand and sends a pot status and events; node B stays pending
//! until the script clicks "Approve". An alerts module's report (a hostile
//! title and error) is posted before the page loads, another one while it
//! is open: the Alerts panel shows both as text. The script and this test take turns:
//! the script prints `step NAME` and waits for `go` on its stdin.
//!
//! Then the analyst's views: the test sends an attacker's story from a
//! public address (event data only: nothing leaves loopback) through node A
//! and through node C, an Extension node with a hostile name; the script
//! opens the source page, both sessions (one with a hostile id), an event's
//! detail, node A's page (it asks the pot for logs and metrics, which the
//! test answers) and node C's (its tripwire ports), then the map and the
//! time range; hostile usernames, commands, user agents, node names and
//! session ids must show as text everywhere. Screenshots of each page go to
//! `target/dashboard-views/`.
//!
//! Needs `node`, `tests/browser/node_modules` (`npm ci --prefix
//! tests/browser`) and Chromium (`/usr/bin/chromium`, or `HB_CHROMIUM`).
//! Without them the test is skipped with a message, except under `CI=true`,
//! where it fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{
    Command as NodeCmd, CoreMessage, NodeMessage, NodeStatus, NodeType, PotStatus, PotStatusUpdate,
};
use honeybee_tests::{random_u64, Core, NodeIdentity, TempDir, TestNode};
use serde_json::json;

const T: Duration = Duration::from_secs(5);
/// The whole browser run, Chromium start included.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);
const XSS: &str = "<img src=x onerror=alert(1)>";
/// The last error of the reported alert channel: hostile too.
const ALERT_ERROR: &str = "\"><script>alert(3)</script> connect refused";
/// The attacker of the analyst's views: a public address, as event data.
const SRC: &str = "81.2.69.142";
/// Its first session, and a second one with a hostile id.
const SESSION: &str = "5e55104a11ce";
const HOSTILE_SESSION: &str = "\"><svg onload=alert(6)>";
/// A command typed, a user agent and node C's name: hostile.
const HOSTILE_CMD: &str = "\"><svg onload=alert(5)>";
const HOSTILE_UA: &str = "<img src=x onerror=alert(7)>";
const NODE_C_NAME: &str = "<img src=x onerror=alert(8)>";
/// A log line the pot reports.
const HOSTILE_LOG: &str = "<script>alert(9)</script> log line";

/// An alerts module's report: channel `hook` (`sent` alerts) and alert
/// `id` titled `title`.
fn alert_report(sent: u64, id: &str, outcome: &str, title: &str) -> String {
    json!({
        "module": "alerts",
        "channels": [{"name": "hook", "type": "webhook", "sent": sent, "failed": 1,
            "retries": 3, "dropped": 0, "queued": 2, "latency_ms_p50": 40,
            "latency_ms_p99": 180, "last_error": ALERT_ERROR}],
        "recent": [{"id": id, "time": format_rfc3339(now_unix().0 - 5, 0), "rule": "tripwire",
            "severity": "high", "channel": "hook", "outcome": outcome, "title": title,
            "error": "refused"}],
    })
    .to_string()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// What the browser test needs, or why it cannot run.
fn browser_setup() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("HB_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Err(format!("no Chromium at {}", chromium.display()));
    }
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_ok {
        return Err("no `node` on PATH".into());
    }
    let browser = workspace_root().join("tests/browser");
    if !browser.join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "no {}/node_modules/playwright-core (run `npm ci --prefix tests/browser`)",
            browser.display()
        ));
    }
    Ok((chromium, browser))
}

/// The script's stdout, line by line, and its stdin.
struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    deadline: Instant,
}

impl Script {
    /// Waits for `want` (a whole line); panics on anything else, on exit or
    /// when the run's time is up.
    #[track_caller]
    fn expect(&mut self, want: &str) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) if line == want => {}
            Ok(line) => {
                self.kill();
                panic!("dashboard.mjs said `{line}`, expected `{want}`")
            }
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                panic!("dashboard.mjs: no `{want}` within {SCRIPT_LIMIT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                panic!("dashboard.mjs exited ({status:?}) before `{want}`; see its stderr above")
            }
        }
    }

    #[track_caller]
    fn go(&mut self) {
        self.stdin
            .write_all(b"go\n")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("writing to dashboard.mjs: {e}"));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The next command node A receives (skipping event acks).
#[track_caller]
fn next_command(conn: &mut TestNode) -> NodeCmd {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.recv(left) {
            Ok(CoreMessage::NodeCommand(c)) => return c.command,
            Ok(_) => continue,
            Err(e) => panic!("node A: no command from the dashboard: {e:?}"),
        }
    }
}

#[test]
fn dashboard_in_headless_chromium() {
    let (chromium, browser_dir) = match browser_setup() {
        Ok(s) => s,
        Err(why) => {
            honeybee_tests::skip::skip("dashboard_in_headless_chromium", &why);
            return;
        }
    };

    let token = format!("dash-token-{:016x}", random_u64());
    let core = Core::builder()
        .api_token(&token)
        .args(["--enrollment", "approve"])
        .start();
    let api = core.api();

    // Node A: pending, approved through the API, then enrolled.
    let mut a = NodeIdentity::new("dash-node-a");
    a.node_id = random_u64() | (1 << 63);
    let mut first = TestNode::connect(core.node_addr).expect("connect node A");
    let ack = first.register(&a.first());
    assert!(!ack.accepted, "node A accepted before approval: {ack:?}");
    drop(first);
    api.post(&format!("/api/v1/nodes/{}/approve", a.node_id), "")
        .expect_status(200);
    let mut conn_a = a.enroll(core.node_addr);
    conn_a.must_send(&a.status(NodeStatus::Running));
    conn_a.must_send(&a.pot_status("cowrie-01", "cowrie", PotStatus::Running));
    api.wait_node(a.node_id, T, |n| {
        n["pots"].as_array().is_some_and(|p| !p.is_empty())
    });

    // Node B: pending, for the browser to approve.
    let b_id = random_u64() | (1 << 62) | (1 << 63);
    let b = {
        let mut b = NodeIdentity::new("dash-node-b");
        b.node_id = b_id;
        b
    };
    let mut conn_b = TestNode::connect(core.node_addr).expect("connect node B");
    let ack = conn_b.register(&b.first());
    assert_eq!(ack.message.as_deref(), Some("pending approval"), "{ack:?}");
    drop(conn_b);
    api.wait_node(b_id, T, |n| n["approved"] == false);

    // Node C: an Extension node with a hostile name, approved through the
    // API, reporting its tripwire ports.
    let mut c = NodeIdentity::new(NODE_C_NAME).with_capabilities(&["extension"]);
    c.node_type = NodeType::Agent;
    let mut first = TestNode::connect(core.node_addr).expect("connect node C");
    assert!(!first.register(&c.first()).accepted);
    drop(first);
    api.post(&format!("/api/v1/nodes/{}/approve", c.node_id), "")
        .expect_status(200);
    let mut conn_c = c.enroll(core.node_addr);
    conn_c.must_send(&c.status(NodeStatus::Running));
    conn_c.must_send(&pot_update(
        c.node_id,
        "extension",
        "extension",
        json!({"tcp": [21, 80], "udp": [53],
            "skipped": [{"protocol": "tcp", "port": 22, "reason": "in use"}]}),
    ));
    api.wait_node(c.node_id, T, |n| {
        n["pots"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["details"]["skipped"].is_array()))
    });

    // What the alerts module reported: a hostile title and error.
    api.post(
        "/api/v1/alerts/report",
        &alert_report(12, "tripwire/8193", "failed", XSS),
    )
    .expect_status(200);

    let profile = TempDir::new("honeybee-chromium");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    std::fs::create_dir_all(&target).expect("target dir");
    let screenshot = target.join("dashboard.png");
    let shots = target.join("dashboard-views");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let marker = format!("marker-{:08x}", random_u64() as u32);

    let mut child = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .current_dir(&browser_dir)
        .env("HB_URL", format!("http://{}/", core.api_addr))
        .env("HB_TOKEN", &token)
        .env("HB_NODE_A", a.node_id.to_string())
        .env("HB_NODE_A_NAME", &a.name)
        .env("HB_NODE_B", b_id.to_string())
        .env("HB_MARKER", &marker)
        .env("HB_XSS", XSS)
        .env("HB_ALERT_ERROR", ALERT_ERROR)
        .env("HB_SCREENSHOT", &screenshot)
        .env("HB_SHOTS", &shots)
        .env("HB_SRC", SRC)
        .env("HB_SESSION", SESSION)
        .env("HB_HOSTILE_SESSION", HOSTILE_SESSION)
        .env("HB_HOSTILE_CMD", HOSTILE_CMD)
        .env("HB_HOSTILE_UA", HOSTILE_UA)
        .env("HB_HOSTILE_LOG", HOSTILE_LOG)
        .env("HB_NODE_C", c.node_id.to_string())
        .env("HB_NODE_C_NAME", NODE_C_NAME)
        .env("HB_CHROMIUM", &chromium)
        .env("HB_PROFILE", profile.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node dashboard.mjs");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut script = Script {
        child,
        stdin,
        lines,
        deadline: Instant::now() + SCRIPT_LIMIT,
    };

    // Live events: one ordinary, one hostile.
    script.expect("step ready");
    let ts = format_rfc3339(now_unix().0 - 1, 0);
    conn_a.must_send(&a.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.login.success",
        &ts,
        None,
        json!({"src_ip": "203.0.113.7", "src_port": 51234, "username": "root", "password": marker, "input": "cat /etc/passwd"}),
    ));
    conn_a.must_send(&a.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.login.failed",
        &ts,
        None,
        json!({"src_ip": "198.51.100.66", "src_port": 40000, "username": XSS, "password": "\"><script>alert(2)</script>"}),
    ));
    // A second report, for the Alerts panel's own refresh.
    api.post(
        "/api/v1/alerts/report",
        &alert_report(13, "tripwire/8200", "sent", &format!("{marker}-alert")),
    )
    .expect_status(200);
    script.go();

    // After the page reconnects by itself: one more event.
    script.expect("step reconnected");
    conn_a.must_send(&a.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.login.success",
        &format_rfc3339(now_unix().0, 0),
        None,
        json!({"src_ip": "203.0.113.8", "username": "admin", "password": format!("{marker}-again")}),
    ));
    script.go();

    // Node B approved by a click.
    script.expect("step approved");
    let n = api.node(b_id).expect("node B listed");
    assert_eq!(n["approved"], true, "node B after the click: {n}");
    assert_eq!(n["node_id"].as_u64(), Some(b_id), "{n}");
    script.go();

    // Stop: node A receives StopPot and answers Stopped.
    script.expect("step stop-clicked");
    match next_command(&mut conn_a) {
        NodeCmd::StopPot(p) => assert_eq!(p, "cowrie-01"),
        other => panic!("expected StopPot, got {other:?}"),
    }
    conn_a.must_send(&a.pot_status("cowrie-01", "cowrie", PotStatus::Stopped));
    script.go();

    // Install: node A receives InstallPot and answers Running.
    script.expect("step install-clicked");
    match next_command(&mut conn_a) {
        NodeCmd::InstallPot(i) => {
            assert_eq!(i.pot_id, "cowrie-02");
            assert_eq!(i.honeypot_type, "cowrie");
            assert!(i.auto_start, "{i:?}");
        }
        other => panic!("expected InstallPot, got {other:?}"),
    }
    conn_a.must_send(&a.pot_status("cowrie-02", "cowrie", PotStatus::Running));
    script.go();

    // The analyst's views: an attacker's story through nodes A and C.
    script.expect("step views");
    let base = now_unix().0 - 120;
    let at = |s: i64| format_rfc3339(base + s, 0);
    let cowrie = |extra: serde_json::Value, session: &str| {
        let mut d = json!({"src_ip": SRC, "src_port": 50100, "dst_port": 2222, "protocol": "ssh", "session": session});
        if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        d
    };
    for (s, ty, extra) in [
        (0, "cowrie.session.connect", json!({})),
        (1, "cowrie.client.version", json!({"version": "SSH-2.0-Go"})),
        (
            2,
            "cowrie.login.failed",
            json!({"username": "root", "password": "123456"}),
        ),
        (
            3,
            "cowrie.login.success",
            json!({"username": XSS, "password": "admin"}),
        ),
        (5, "cowrie.command.input", json!({"input": "uname -a"})),
        (7, "cowrie.command.input", json!({"input": HOSTILE_CMD})),
        (
            9,
            "cowrie.command.input",
            json!({"input": "cat /etc/shadow"}),
        ),
        (10, "cowrie.session.closed", json!({"duration": 10.0})),
    ] {
        conn_a.must_send(&a.pot_event(
            "cowrie-01",
            "cowrie",
            ty,
            &at(s),
            None,
            cowrie(extra, SESSION),
        ));
    }
    wait_story(api, 8);
    conn_c.must_send(&c.pot_event(
        "extension",
        "extension",
        "extension.connection",
        &at(12),
        None,
        json!({"src_ip": SRC, "src_port": 50200, "dst_port": 80, "transport": "tcp",
            "protocol": "http", "method": "GET", "path": "/", "user_agent": HOSTILE_UA}),
    ));
    wait_story(api, 9);
    conn_a.must_send(&a.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.session.connect",
        &at(20),
        None,
        cowrie(json!({"src_port": 50300}), HOSTILE_SESSION),
    ));
    conn_a.must_send(&a.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.command.input",
        &at(21),
        None,
        cowrie(json!({"src_port": 50300, "input": "id"}), HOSTILE_SESSION),
    ));
    wait_story(api, 11);
    script.go();

    // Node A's page asks its pot for logs, then metrics.
    script.expect("step logs-clicked");
    match next_command(&mut conn_a) {
        NodeCmd::GetPotLogs(p) => assert_eq!(p, "cowrie-01"),
        other => panic!("expected GetPotLogs, got {other:?}"),
    }
    conn_a.must_send(&pot_update(
        a.node_id,
        "cowrie-01",
        "cowrie",
        json!({"lines": ["cowrie started", HOSTILE_LOG]}),
    ));
    script.go();
    script.expect("step metrics-clicked");
    match next_command(&mut conn_a) {
        NodeCmd::GetPotMetrics(p) => assert_eq!(p, "cowrie-01"),
        other => panic!("expected GetPotMetrics, got {other:?}"),
    }
    conn_a.must_send(&pot_update(
        a.node_id,
        "cowrie-01",
        "cowrie",
        json!({"pid": 4242, "processes": 2, "cpu_seconds": 1.5, "rss_bytes": 12_345_678,
            "uptime_s": 600, "restarts": 0, "events": 11}),
    ));
    script.go();

    script.expect("done");
    let status = script.child.wait().expect("waiting for dashboard.mjs");
    assert!(status.success(), "dashboard.mjs: {status}");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    for page in [
        "source",
        "session",
        "detail",
        "node",
        "node-extension",
        "map",
    ] {
        let shot = shots.join(format!("{page}.png"));
        assert!(shot.is_file(), "no screenshot at {}", shot.display());
    }
    eprintln!("screenshots of the analyst's views: {}", shots.display());
}

/// A pot's status (Running) with `details`: what a node answers to a pot
/// command.
fn pot_update(
    node_id: u64,
    pot_id: &str,
    pot_type: &str,
    details: serde_json::Value,
) -> NodeMessage {
    NodeMessage::PotStatusUpdate(PotStatusUpdate {
        node_id,
        pot_id: pot_id.into(),
        pot_type: pot_type.into(),
        status: PotStatus::Running,
        message: None,
        details: Some(details),
    })
}

/// Waits until the story's source has `n` events stored.
#[track_caller]
fn wait_story(api: &honeybee_tests::Api, n: u64) {
    let deadline = Instant::now() + T;
    loop {
        let r = api.get(&format!("/api/v1/sources/{SRC}"));
        if r.status == 200 && r.json()["event_count"].as_u64() == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{SRC} has not {n} events stored: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
