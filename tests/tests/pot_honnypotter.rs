//! HonnyPotter end to end, with the real PHP pot from `potstore/`: a Full
//! agent installs it through the core's REST API, curl brute-forces
//! `wp-login.php` and `xmlrpc.php` (one call and a `system.multicall` of
//! two), and the core ends up with one `honnypotter.login.failed` per
//! attempt, credentials, user agent and source address included. StopPot
//! leaves no process and no listening port, UninstallPot no directory.
//!
//! Slow (it runs PHP, and installs `php-cli` with apt when it is missing and
//! the test runs as root): set `HONEYBEE_SKIP_SLOW` to skip it locally. CI
//! never sets it.

use std::process::Command;
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{free_port, listening_on};
use honeybee_tests::test_pot::{processes_in_group, shipped_potstore};
use honeybee_tests::{Agent, Core};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);
const POT: &str = "hp-01";
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) HoneyBee-e2e wp-login";
const XMLRPC_UA: &str = "HoneyBee-e2e xmlrpc/1.0";

fn skip_slow() -> bool {
    honeybee_tests::skip::skip_slow("pot_honnypotter")
}

fn has_php() -> bool {
    Command::new("php")
        .args(["-n", "-r", "exit(0);"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs Debian's `php-cli` when `php` is missing (as root only).
fn ensure_php() {
    if has_php() {
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "php is missing: install Debian's php-cli (apt-get install php-cli)"
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "-qq", "--no-install-recommends", "php-cli"];
    if !apt(&install) {
        assert!(apt(&["update", "-qq"]), "apt-get update failed");
        assert!(apt(&install), "apt-get install php-cli failed");
    }
    assert!(has_php(), "php still missing after installing php-cli");
}

fn command(core: &Core, node_id: u64, cmd: Value) {
    core.api().command(node_id, &cmd);
}

#[track_caller]
fn wait_pot(core: &Core, node_id: u64, pred: impl Fn(&Value) -> bool) -> Value {
    core.api().wait_pot(node_id, POT, T, pred)
}

#[track_caller]
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP answer as curl saw it.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Runs curl (never following redirects) and splits its `-i` output.
#[track_caller]
fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("curl {args:?}: no header end in {text}"));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("curl {args:?}: no status in {headers}"));
    Answer {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

fn xml_string(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn get_users_blogs(user: &str, pass: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<methodCall><methodName>wp.getUsersBlogs</methodName><params>\
         <param><value><string>{}</string></value></param>\
         <param><value><string>{}</string></value></param>\
         </params></methodCall>",
        xml_string(user),
        xml_string(pass)
    )
}

fn multicall(creds: &[(&str, &str)]) -> String {
    let calls: String = creds
        .iter()
        .map(|(u, p)| {
            format!(
                "<value><struct>\
                 <member><name>methodName</name><value><string>wp.getUsersBlogs</string></value></member>\
                 <member><name>params</name><value><array><data>\
                 <value><string>{}</string></value><value><string>{}</string></value>\
                 </data></array></value></member>\
                 </struct></value>",
                xml_string(u),
                xml_string(p)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n<methodCall><methodName>system.multicall</methodName><params>\
         <param><value><array><data>{calls}</data></array></value></param></params></methodCall>"
    )
}

fn pot_metrics(core: &Core, id: u64, previous_at: Option<&Value>) -> Value {
    command(core, id, json!({"GetPotMetrics": POT}));
    let pot = wait_pot(core, id, |p| {
        p["details"]["rss_bytes"].is_number()
            && previous_at.is_none_or(|at| p["details"]["events"] != *at)
    });
    pot["details"].clone()
}

#[test]
fn honnypotter_records_wp_login_and_xmlrpc_brute_force_and_stops_clean() {
    if skip_slow() {
        return;
    }
    let started = Instant::now();
    ensure_php();
    let core = Core::start();
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(shipped_potstore(core.workspace().path(), "honnypotter"))
        .heartbeat_interval(1)
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);

    let port = free_port();
    command(
        &core,
        id,
        json!({"InstallPot": {"pot_id": POT, "honeypot_type": "honnypotter", "auto_start": true,
                              "config": {"http_port": port.to_string(), "listen_addr": "127.0.0.1",
                                         "site_name": "Test Blog"}}}),
    );
    let pot = wait_pot(&core, id, |p| {
        p["status"] == "Running" || p["status"] == "Failed"
    });
    assert_eq!(pot["status"], "Running", "{pot}");
    wait_until(&format!("the pot listening on {port}"), || {
        listening_on(port)
    });

    // The server is the pot's process itself (start execs php), not as root.
    let idle = pot_metrics(&core, id, None);
    let pid = idle["pid"].as_i64().expect("pot pid") as i32;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("php\0"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    if nix::unistd::geteuid().is_root() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default();
        assert!(
            !uid.split_whitespace().skip(1).any(|u| u == "0"),
            "the pot runs as root: {uid}"
        );
    }
    let idle_rss = idle["rss_bytes"].as_u64().unwrap_or(0);
    eprintln!("honnypotter: idle RSS {} KiB (pid {pid})", idle_rss / 1024);

    let base = format!("http://127.0.0.1:{port}");
    let login_url = format!("{base}/wp-login.php");
    let xmlrpc_url = format!("{base}/xmlrpc.php");

    // The login page, as a browser sees it: only our own resources.
    let page = curl(&["-A", BROWSER_UA, &login_url]);
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "<title>Log In &lsaquo; Test Blog &#8212; WordPress</title>",
        "name=\"log\"",
        "name=\"pwd\"",
        "Lost your password?",
        "wp-login.php?action=lostpassword",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle:?} not in\n{}",
            page.body
        );
    }
    assert!(!page.body.contains("<script src"), "{}", page.body);
    for href in page
        .body
        .split("href='")
        .skip(1)
        .filter_map(|s| s.split('\'').next())
    {
        assert!(href.starts_with(&base), "a resource from elsewhere: {href}");
        let css = curl(&[href]);
        assert_eq!(css.status, 200, "{href}");
        assert!(css
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/css")));
    }

    // Attempt 1: the login form.
    let failed = curl(&[
        "-A",
        BROWSER_UA,
        "--data-urlencode",
        "log=admin",
        "--data-urlencode",
        "pwd=hunter2 & <friends>",
        "--data-urlencode",
        "wp-submit=Log In",
        &login_url,
    ]);
    assert_eq!(failed.status, 200);
    assert!(
        failed.body.contains(
            "<strong>Error:</strong> The password you entered for the username \
             <strong>admin</strong> is incorrect."
        ),
        "{}",
        failed.body
    );
    assert!(failed.body.contains("id=\"login_error\""));
    assert!(failed.body.contains("value=\"admin\""));

    // Attempt 2: XML-RPC wp.getUsersBlogs.
    let body = get_users_blogs("editor", "xmlrpc<pass>1");
    let answer = curl(&[
        "-A",
        XMLRPC_UA,
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        &body,
        &xmlrpc_url,
    ]);
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/xml")));
    for needle in [
        "<fault>",
        "<name>faultCode</name>",
        "<value><int>403</int></value>",
        "<value><string>Incorrect username or password.</string></value>",
    ] {
        assert!(
            answer.body.contains(needle),
            "{needle:?} not in\n{}",
            answer.body
        );
    }

    // Attempts 3 and 4: one system.multicall bundle of two.
    let body = multicall(&[("multi-1", "pass-one"), ("multi-2", "pass-two")]);
    let answer = curl(&[
        "-A",
        XMLRPC_UA,
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        &body,
        &xmlrpc_url,
    ]);
    assert_eq!(answer.status, 200);
    assert!(!answer.body.contains("<fault>"), "{}", answer.body);
    assert_eq!(
        answer.body.matches("<int>403</int>").count(),
        2,
        "{}",
        answer.body
    );

    // Not attempts: the method list, /wp-admin/ and an unknown page.
    let methods = curl(&[
        "--data-binary",
        "<?xml version=\"1.0\"?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>",
        &xmlrpc_url,
    ]);
    assert!(
        methods
            .body
            .contains("<value><string>wp.getUsersBlogs</string></value>"),
        "{}",
        methods.body
    );
    let admin = curl(&[&format!("{base}/wp-admin/")]);
    assert_eq!(admin.status, 302, "{}", admin.headers);
    let location = admin.header("Location").unwrap_or_default();
    assert!(
        location.starts_with(&format!(
            "{login_url}?redirect_to={}",
            "http%3A%2F%2F127.0.0.1%3A"
        )) && location.ends_with("%2Fwp-admin%2F&reauth=1"),
        "{location}"
    );
    let missing = curl(&[&format!("{base}/no-such-page/")]);
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page Not Found"), "{}", missing.body);

    // One event per attempt, with what the attacker sent.
    let mut want = vec![
        ("admin", "hunter2 & <friends>", BROWSER_UA, "wp-login"),
        ("editor", "xmlrpc<pass>1", XMLRPC_UA, "xmlrpc"),
        ("multi-1", "pass-one", XMLRPC_UA, "xmlrpc"),
        ("multi-2", "pass-two", XMLRPC_UA, "xmlrpc"),
    ];
    let mut events = Vec::new();
    wait_until("4 honnypotter.login.failed events in the core", || {
        events = core.api().all_events(&[("pot_id", POT)]);
        events.len() >= want.len()
    });
    std::thread::sleep(Duration::from_millis(500));
    let events = core.api().all_events(&[("pot_id", POT)]);
    assert_eq!(events.len(), want.len(), "{events:#?}");
    let mut got: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["event_type"], "honnypotter.login.failed", "{e}");
            assert_eq!(e["pot_type"], "honnypotter", "{e}");
            assert_eq!(e["node_id"], id, "{e}");
            let d = &e["data"];
            assert_eq!(d["src_ip"], "127.0.0.1", "{e}");
            assert!(d["src_port"].as_u64().is_some_and(|p| p > 0), "{e}");
            assert_eq!(d["dst_port"], port, "{e}");
            assert_eq!(d["protocol"], "http", "{e}");
            let url = d["url"].as_str().unwrap_or_default();
            assert!(url == "/wp-login.php" || url == "/xmlrpc.php", "{e}");
            (
                d["username"].as_str().unwrap_or_default(),
                d["password"].as_str().unwrap_or_default(),
                d["user_agent"].as_str().unwrap_or_default(),
                d["method"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);

    let busy = pot_metrics(&core, id, Some(&idle["events"]));
    assert!(busy["events"].as_u64().unwrap_or(0) >= 4, "{busy}");
    eprintln!(
        "honnypotter: RSS after the attacks {} KiB",
        busy["rss_bytes"].as_u64().unwrap_or(0) / 1024
    );
    let pot_dir = agent.state_dir().join(format!("pots/{POT}"));
    assert!(
        !pot_dir.join("unsent-events.ndjson").exists(),
        "events were spilled to a file while the agent was up"
    );

    command(&core, id, json!({"StopPot": POT}));
    wait_pot(&core, id, |p| p["status"] == "Stopped");
    wait_until(&format!("port {port} closed"), || !listening_on(port));
    assert!(
        processes_in_group(pid).is_empty(),
        "processes left: {:?}",
        processes_in_group(pid)
    );

    command(&core, id, json!({"UninstallPot": POT}));
    wait_pot(&core, id, |p| p["details"]["uninstalled"] == true);
    assert!(!pot_dir.exists(), "{} left behind", pot_dir.display());
    eprintln!(
        "honnypotter: end to end in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
