//! The native pots compiled into the agent, installed through the REST API
//! from the shipped potstore and attacked by real clients: a telnet login
//! and a command, a WordPress login POST, a banner probe; stopping and
//! uninstalling leaves no listening port.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use honeybee_tests::{Agent, Core};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

fn potstore() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../potstore")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn command(core: &Core, node_id: u64, cmd: Value) {
    core.api().command(node_id, &cmd);
}

fn wait_pot_status(core: &Core, id: u64, pot_id: &str, status: &str) {
    core.api().wait_node(id, T, |n| {
        n["pots"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["pot_id"] == pot_id && p["status"] == status)
        })
    });
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
            "no {event_type} like that: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads until `needle` shows up (or panics after a while).
fn read_until(s: &mut TcpStream, needle: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = s.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn install(core: &Core, id: u64, pot_id: &str, pot_type: &str, config: Value) {
    command(
        core,
        id,
        json!({"InstallPot": {"pot_id": pot_id, "honeypot_type": pot_type,
                              "config": config, "auto_start": true}}),
    );
    wait_pot_status(core, id, pot_id, "Running");
}

#[test]
fn native_pots_record_logins_commands_and_probes_and_stop_cleanly() {
    let core = Core::start();
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(potstore())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let (telnet, http, banner) = (free_port(), free_port(), free_port());

    install(
        &core,
        id,
        "tn-01",
        "native-telnet",
        json!({"telnet_port": telnet.to_string(), "listen_addr": "127.0.0.1", "hostname": "gw01"}),
    );
    let mut s = TcpStream::connect(("127.0.0.1", telnet)).expect("telnet");
    read_until(&mut s, "gw01 login: ");
    s.write_all(b"root\r\n").expect("user");
    read_until(&mut s, "Password: ");
    s.write_all(b"vizxv\r\n").expect("password");
    read_until(&mut s, "# ");
    s.write_all(b"uname -a\r\n").expect("command");
    let out = read_until(&mut s, "# ");
    assert!(out.contains("Linux gw01"), "{out}");
    drop(s);
    let login = wait_event(&core, "native.telnet.login", |d| d["dst_port"] == telnet);
    assert_eq!(login["data"]["username"], "root");
    assert_eq!(login["data"]["password"], "vizxv");
    assert_eq!(login["data"]["src_ip"], "127.0.0.1");
    assert_eq!(login["pot_id"], "tn-01");
    let cmd = wait_event(&core, "native.telnet.command", |d| d["dst_port"] == telnet);
    assert_eq!(cmd["data"]["input"], "uname -a");
    // One connection, one session id in each of its events; the session
    // view replays it.
    let session = login["data"]["session"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        session.len() == 12 && session.bytes().all(|b| b.is_ascii_hexdigit()),
        "session id {session:?}"
    );
    assert_eq!(cmd["data"]["session"], session.as_str());
    let replay = core
        .api()
        .get(&format!("/api/v1/sessions/{session}"))
        .expect_status(200)
        .json();
    assert_eq!(replay["event_count"], 2, "{replay}");
    assert_eq!(replay["commands"][0]["input"], "uname -a");
    // The dashboard's top-commands and top-credentials charts read these.
    let stats = core.api().get("/api/v1/stats").expect_status(200).json();
    let has = |key: &str, value: &str| {
        stats[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["value"] == value))
    };
    assert!(has("top_commands", "uname -a"), "{stats}");
    assert!(has("top_credentials", "root:vizxv"), "{stats}");

    install(
        &core,
        id,
        "wp-01",
        "native-http",
        json!({"http_port": http.to_string(), "listen_addr": "127.0.0.1"}),
    );
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-A",
            "wpscan/3.8",
            "--data",
            "log=admin&pwd=hunter2&wp-submit=Log+In",
        ])
        .arg(format!("http://127.0.0.1:{http}/wp-login.php"))
        .output()
        .expect("curl");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains("is incorrect"), "{page}");
    let e = wait_event(&core, "native.http.login", |d| d["dst_port"] == http);
    assert_eq!(e["data"]["username"], "admin");
    assert_eq!(e["data"]["password"], "hunter2");
    assert_eq!(e["data"]["user_agent"], "wpscan/3.8");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-m",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{http}/wp-admin/"))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(
        head.starts_with("302") && head.contains("/wp-login.php"),
        "{head}"
    );

    install(
        &core,
        id,
        "bn-01",
        "native-banner",
        json!({"port": banner.to_string(), "listen_addr": "127.0.0.1", "banner": "220 ProFTPD Server ready."}),
    );
    let mut s = TcpStream::connect(("127.0.0.1", banner)).expect("banner");
    read_until(&mut s, "220 ProFTPD Server ready.");
    s.write_all(b"USER anonymous\r\n").expect("write");
    drop(s);
    let e = wait_event(&core, "native.banner.connection", |d| {
        d["dst_port"] == banner
    });
    assert_eq!(e["data"]["input"], "USER anonymous");

    command(&core, id, json!({"GetPotMetrics": "tn-01"}));
    core.api().wait_node(id, T, |n| {
        n["pots"].as_array().is_some_and(|p| {
            p.iter().any(|p| {
                p["pot_id"] == "tn-01" && p["details"]["events"].as_u64().unwrap_or(0) >= 2
            })
        })
    });

    for (pot, port) in [("tn-01", telnet), ("wp-01", http), ("bn-01", banner)] {
        command(&core, id, json!({"StopPot": pot}));
        wait_pot_status(&core, id, pot, "Stopped");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{pot} still listens"
        );
        command(&core, id, json!({"UninstallPot": pot}));
        core.api().wait_node(id, T, |n| {
            n["pots"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["pot_id"] == pot && p["details"]["uninstalled"] == true)
            })
        });
    }
}

#[test]
fn potstore_list_prints_the_catalogue() {
    let out = Command::new(honeybee_tests::agent_process::agent_binary())
        .args(["potstore", "list", "--potstore"])
        .arg(potstore())
        .output()
        .expect("potstore list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in [
        "cowrie",
        "honnypotter",
        "native-telnet",
        "native-http",
        "native-banner",
    ] {
        assert!(text.contains(id), "{id} missing from:\n{text}");
    }
    let bad = Command::new(honeybee_tests::agent_process::agent_binary())
        .args(["potstore", "list", "--potstore", "/nonexistent"])
        .output()
        .expect("potstore list");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent"));
}

/// The pot's status and when it last changed.
fn pot_state(core: &Core, id: u64, pot_id: &str) -> Option<(String, String)> {
    let node = core.api().node(id)?;
    let pot = node["pots"]
        .as_array()?
        .iter()
        .find(|p| p["pot_id"] == pot_id)?
        .clone();
    Some((
        pot["status"].as_str()?.to_string(),
        pot["updated_at"].as_str()?.to_string(),
    ))
}

#[test]
fn a_running_native_pot_restarted_or_reinstalled_takes_its_port_again() {
    let core = Core::start();
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(potstore())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let port = free_port();
    let config =
        json!({"telnet_port": port.to_string(), "listen_addr": "127.0.0.1", "hostname": "gw02"});
    install(&core, id, "tn-02", "native-telnet", config.clone());
    let commands = [
        json!({"RestartPot": "tn-02"}),
        json!({"InstallPot": {"pot_id": "tn-02", "honeypot_type": "native-telnet",
            "auto_start": true, "config": config}}),
    ];
    for cmd in commands {
        let (_, before) = pot_state(&core, id, "tn-02").expect("the pot is listed");
        command(&core, id, cmd.clone());
        // Until the pot's status changed after the command and settled.
        let (status, _) = honeybee_tests::poll_until(T, Duration::from_millis(50), || {
            let (status, at) = pot_state(&core, id, "tn-02")?;
            (at != before && (status == "Running" || status == "Failed")).then_some((status, at))
        })
        .unwrap_or_else(|| panic!("{cmd}: the pot never settled"));
        let node = core.api().node(id).unwrap_or_default();
        assert_eq!(status, "Running", "{cmd}: {}", node["pots"]);
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the pot listens again");
        read_until(&mut s, "gw02 login: ");
    }
}
