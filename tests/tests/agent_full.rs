//! The Full-mode agent against the real core, driven through the REST API as
//! an operator would: a test pot installed from a temporary potstore, its
//! events in the API and on the WebSocket, logs and metrics, stop without
//! orphans, crash handling, and pots that come back after an agent restart.

use std::time::{Duration, Instant};

use honeybee_proto::{
    decode, encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Envelope,
    ModuleMessage, NodeMessage, StreamMessage, Subscribe,
};
use honeybee_tests::http::pot_of;
use honeybee_tests::test_pot::{
    process_alive, processes_in_group, BAD_INSTALL_MESSAGE, DEFAULT_SRC_IP, STDERR_LINE,
    STDOUT_LINE,
};
use honeybee_tests::{Agent, Core, TestPot, TestPotstore};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

const T: Duration = Duration::from_secs(20);

fn potstore(core: &Core, pots: Vec<TestPot>) -> TestPotstore {
    let mut store = TestPotstore::new(core.workspace().path().join("potstore"));
    for p in pots {
        store.add(p);
    }
    store
}

fn full_agent(core: &Core, store: &TestPotstore) -> (Agent, u64) {
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(store.path())
        .heartbeat_interval(1)
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    (agent, id)
}

fn command(core: &Core, node_id: u64, cmd: Value) {
    core.api().command(node_id, &cmd);
}

#[track_caller]
fn wait_pot(core: &Core, node_id: u64, pot_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    core.api().wait_pot(node_id, pot_id, T, pred)
}

#[track_caller]
fn wait_events(core: &Core, pot_id: &str, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + T;
    loop {
        let events = core.api().all_events(&[("pot_id", pot_id)]);
        if events.len() >= at_least {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {at_least} events of {pot_id} arrived",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn install(core: &Core, node_id: u64, pot_id: &str, pot_type: &str, config: Value) {
    command(
        core,
        node_id,
        json!({"InstallPot": {"pot_id": pot_id, "honeypot_type": pot_type,
                              "config": config, "auto_start": true}}),
    );
}

/// Subscribes to events over the WebSocket, as the dashboard does.
fn subscribe(core: &Core) -> tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>> {
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/", core.stream_addr)).expect("ws");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(T)).expect("timeout");
    }
    for m in [
        ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: "agent-test".into(),
            backend_type: BackendType::Monitoring,
            token: core.api().token.clone(),
        }),
        ModuleMessage::BackendCommand(BackendCommand::Subscribe(Subscribe {
            cursor: None,
            topics: vec!["events".into()],
            filter: None,
        })),
    ] {
        let line = String::from_utf8(encode(&Envelope::new(m))).expect("utf8");
        ws.send(Message::text(line.trim_end())).expect("ws send");
    }
    ws
}

fn next_ws_event(
    ws: &mut tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>>,
) -> honeybee_proto::PotEvent {
    loop {
        match ws.read().expect("ws read") {
            Message::Text(t) => match decode::<StreamMessage>(t.as_bytes()).expect("envelope") {
                StreamMessage::Node(NodeMessage::PotEvent(e)) => return e,
                StreamMessage::BackendResponse(BackendResponse::Failure(f)) => panic!("{f}"),
                _ => continue,
            },
            _ => continue,
        }
    }
}

#[test]
fn a_pot_installed_through_the_api_runs_reports_and_stops_without_orphans() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::emitter("emitter")]);
    let (agent, id) = full_agent(&core, &store);
    let node = core.api().node(id).expect("node");
    assert_eq!(node["node_type"], "Full");
    let mut ws = subscribe(&core);

    install(
        &core,
        id,
        "emit-01",
        "emitter",
        json!({"burst": "5", "interval": "0.2"}),
    );
    wait_pot(&core, id, "emit-01", |p| p["status"] == "Running");
    let events = wait_events(&core, "emit-01", 5);
    for e in &events {
        assert_eq!(e["node_id"], id);
        assert_eq!(e["data"]["src_ip"], DEFAULT_SRC_IP);
        assert!(e["seq"].as_u64().is_some(), "events carry a seq: {e}");
    }
    let live = next_ws_event(&mut ws);
    assert_eq!((live.node_id, live.pot_id.as_str()), (id, "emit-01"));

    command(&core, id, json!({"GetPotLogs": "emit-01"}));
    let logs = wait_pot(&core, id, "emit-01", |p| p["details"]["lines"].is_array());
    let lines = logs["details"]["lines"].to_string();
    assert!(
        lines.contains(STDOUT_LINE) && lines.contains(STDERR_LINE),
        "{lines}"
    );

    let pid = store.wait_pot_pid("emit-01", T);
    let env = store.start_env("emit-01");
    assert_eq!(
        env.get("HONEYBEE_POT_ID").map(String::as_str),
        Some("emit-01")
    );
    assert_eq!(env.get("HONEYBEE_NODE_ID"), Some(&id.to_string()));
    assert_eq!(env.get("HONEYBEE_CFG_BURST").map(String::as_str), Some("5"));
    assert_eq!(
        env.get("HONEYBEE_EVENT_ADDR"),
        Some(&agent.event_addr().to_string())
    );
    let pot_dir = agent.state_dir().join("pots/emit-01");
    assert_eq!(
        env.get("HONEYBEE_POT_DIR"),
        Some(&pot_dir.display().to_string())
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let blocked = status
        .lines()
        .find(|l| l.starts_with("SigBlk:"))
        .unwrap_or_default();
    assert!(
        blocked
            .trim_start_matches("SigBlk:")
            .trim()
            .trim_start_matches('0')
            .is_empty(),
        "the pot inherited blocked signals: {blocked}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max core file size") && l.contains(" 0 ")),
        "{limits}"
    );
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains("4096")),
        "{limits}"
    );
    if nix::unistd::geteuid().is_root() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default();
        assert!(
            !uid.split_whitespace().skip(1).any(|u| u == "0"),
            "a pot runs as root: {uid}"
        );
    }
    command(&core, id, json!({"GetPotMetrics": "emit-01"}));
    let m = wait_pot(&core, id, "emit-01", |p| p["details"]["pid"].is_number())["details"].clone();
    assert_eq!(m["pid"], pid);
    assert!(m["rss_bytes"].as_u64().unwrap_or(0) > 0, "{m}");
    assert!(m["events"].as_u64().unwrap_or(0) >= 5, "{m}");
    assert_eq!(m["restarts"], 0);

    command(&core, id, json!({"GetPotInfo": "emit-01"}));
    let info = wait_pot(&core, id, "emit-01", |p| p["details"]["name"].is_string());
    let manifest = store.pots()[0].manifest();
    assert_eq!(info["details"]["type"], manifest["type"]);
    assert_eq!(info["details"]["version"], manifest["version"]);

    let background = store
        .background_pid("emit-01")
        .expect("the pot's background child");
    command(&core, id, json!({"StopPot": "emit-01"}));
    wait_pot(&core, id, "emit-01", |p| p["status"] == "Stopped");
    assert!(
        processes_in_group(pid).is_empty(),
        "processes left: {:?}",
        processes_in_group(pid)
    );
    assert!(
        !process_alive(background),
        "the pot's child {background} survived the stop"
    );
    assert!(
        !agent.stderr().contains("ignored SIGTERM"),
        "the pot did not stop on SIGTERM: {}",
        agent.stderr()
    );

    command(&core, id, json!({"UninstallPot": "emit-01"}));
    wait_pot(&core, id, "emit-01", |p| {
        p["details"]["uninstalled"] == true
    });
    assert!(
        !agent.state_dir().join("pots/emit-01").exists(),
        "working dir left behind"
    );
}

#[test]
fn a_crashing_pot_is_restarted_with_backoff_then_failed() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::crasher("crasher")]);
    let (_agent, id) = full_agent(&core, &store);
    install(&core, id, "crash-01", "crasher", json!({}));
    let pot = core.api().wait_node(id, Duration::from_secs(60), |n| {
        pot_of(n, "crash-01").is_some_and(|p| p["status"] == "Failed")
    });
    let pot = pot_of(&pot, "crash-01").unwrap_or_default();
    let message = pot["message"].as_str().unwrap_or_default();
    assert!(message.contains("5 times"), "{pot}");
    assert!(message.contains("status 3"), "{pot}");
    assert_eq!(
        store.starts("crash-01"),
        5,
        "started once and restarted 4 times"
    );
    // The waits between starts double: 1, 2, 4, 8 s. Each is at least its
    // step (a shorter one is a broken backoff); the upper bound only allows
    // for a loaded machine.
    let times = store.start_times_ns("crash-01");
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1].saturating_sub(w[0])) as f64 / 1e9)
        .collect();
    println!("restart delays: {gaps:.2?} s");
    assert_eq!(gaps.len(), 4, "start times: {times:?}");
    for (gap, step) in gaps.iter().zip([1.0, 2.0, 4.0, 8.0]) {
        assert!(
            *gap >= step * 0.95 && *gap < step + 5.0,
            "a restart {gap:.2} s after the crash, the backoff step is {step} s: {gaps:.2?}"
        );
    }
}

#[test]
fn a_failing_install_and_unknown_pots_are_answered_failed_with_why() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::bad_install("broken")]);
    let (agent, id) = full_agent(&core, &store);
    install(&core, id, "broken-01", "broken", json!({}));
    let pot = wait_pot(&core, id, "broken-01", |p| p["status"] == "Failed");
    assert!(
        pot["message"].to_string().contains(BAD_INSTALL_MESSAGE),
        "{pot}"
    );
    install(&core, id, "nope-01", "no-such-type", json!({}));
    let pot = wait_pot(&core, id, "nope-01", |p| p["status"] == "Failed");
    assert!(pot["message"].to_string().contains("no-such-type"), "{pot}");
    command(&core, id, json!({"StopPot": "ghost"}));
    let pot = wait_pot(&core, id, "ghost", |p| p["status"] == "Failed");
    assert!(pot["message"].to_string().contains("no pot"), "{pot}");
    install(&core, id, "../escape", "broken", json!({}));
    let pot = wait_pot(&core, id, "../escape", |p| p["status"] == "Failed");
    assert!(pot["message"].to_string().contains("pot_id"), "{pot}");
    assert!(!agent.state_dir().join("escape").exists());
}

#[test]
fn sigterm_shows_the_node_stopped_and_a_restarted_agent_brings_its_pot_back() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::emitter("emitter")]);
    let (mut agent, id) = full_agent(&core, &store);
    install(&core, id, "emit-02", "emitter", json!({"burst": "3"}));
    wait_pot(&core, id, "emit-02", |p| p["status"] == "Running");
    wait_events(&core, "emit-02", 3);
    let pid = store.wait_pot_pid("emit-02", T);

    let status = agent.terminate(T);
    assert!(status.success(), "SIGTERM must exit 0: {status:?}");
    let node = core.api().wait_status(id, "Stopped", T);
    assert_eq!(node["connected"], false);
    let kinds = node["events"].to_string();
    assert!(
        kinds.contains("\"Started\"") && kinds.contains("\"Stopped\""),
        "node events: {kinds}"
    );
    assert!(
        processes_in_group(pid).is_empty(),
        "pot left running after the agent stopped"
    );

    let _again = agent.builder().start();
    wait_pot(&core, id, "emit-02", |p| p["status"] == "Running");
    core.api().wait_status(id, "Running", T);
    let pid2 = store.wait_pot_pid("emit-02", T);
    let deadline = Instant::now() + T;
    while store.pot_pid("emit-02") == Some(pid) {
        assert!(Instant::now() < deadline, "the pot was not started again");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        process_alive(store.wait_pot_pid("emit-02", T)),
        "pot {pid2} not running"
    );
    wait_events(&core, "emit-02", 6);
}

#[test]
fn cowrie_json_lines_arrive_unchanged_and_restart_reconnects() {
    let core = Core::start();
    // The test writes Cowrie's lines itself, as a pot of type cowrie.
    let store = potstore(&core, vec![TestPot::sleeper("cowrie")]);
    let (agent, id) = full_agent(&core, &store);
    let token =
        honeybee_tests::test_pot::start_token_pot(core.api(), id, &store, "cowrie", "cowrie-01");
    let fixture = include_str!("../fixtures/cowrie-socketlog.ndjson");
    let lines: Vec<String> = fixture.lines().map(String::from).collect();
    honeybee_tests::agent_process::send_events(agent.event_addr(), &token, &lines);
    let events = wait_events(&core, "cowrie-01", lines.len());
    assert!(events.iter().all(|e| e["pot_type"] == "cowrie"));
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "cowrie.login.failed")
        .collect();
    assert!(!failed.is_empty(), "the fixture has failed logins");
    for e in failed {
        assert!(
            e["data"]["username"].is_string() && e["data"]["password"].is_string(),
            "{e}"
        );
        assert_eq!(e["data"]["src_ip"], "127.0.0.1");
    }
    let peer = core.api().node(id).expect("node")["peer_address"].clone();
    command(&core, id, json!({"Restart": {}}));
    core.api().wait_node(id, T, |n| {
        n["status"] == "Running" && n["peer_address"] != peer && n["connected"] == true
    });
}

#[test]
fn a_pot_installs_from_a_git_repository() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::emitter("emitter")]);
    // A repository holding one pot at its root, as a pot author publishes it.
    let repo = core.workspace().path().join("pot-repo");
    store.git_repo("emitter", &repo);
    // Git installs are off unless the agent's own config allows the URL.
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(store.path())
        .heartbeat_interval(1)
        .args(["--git-allow", &format!("file://{}", repo.display())])
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let url = format!("file://{}", repo.display());
    command(
        &core,
        id,
        json!({"InstallPot": {"pot_id": "git-01", "honeypot_type": "emitter", "git_url": url,
                              "git_branch": "main", "config": {"burst": "2"}, "auto_start": true}}),
    );
    let pot = wait_pot(&core, id, "git-01", |p| {
        p["status"] == "Running" || p["status"] == "Failed"
    });
    assert_eq!(pot["status"], "Running", "{pot}");
    wait_events(&core, "git-01", 2);
}

#[test]
fn a_pot_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::stubborn("stubborn")]);
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(store.path())
        .config("[full]\nstop_grace_secs = 1\n")
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    install(&core, id, "stub-01", "stubborn", json!({}));
    wait_pot(&core, id, "stub-01", |p| p["status"] == "Running");
    let pid = store.wait_pot_pid("stub-01", T);
    let background = store.background_pid("stub-01");
    command(&core, id, json!({"StopPot": "stub-01"}));
    wait_pot(&core, id, "stub-01", |p| p["status"] == "Stopped");
    assert!(
        processes_in_group(pid).is_empty(),
        "left: {:?}",
        processes_in_group(pid)
    );
    if let Some(b) = background {
        assert!(!process_alive(b), "the pot's child {b} survived");
    }
}

#[test]
fn an_enrollment_token_is_presented_and_a_wrong_one_refused() {
    let core = Core::builder()
        .args([
            "--enrollment",
            "token",
            "--enrollment-token",
            "s3cret-token",
        ])
        .start();
    let store = potstore(&core, vec![]);
    let wrong = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .state_dir(core.workspace().path().join("wrong-state"))
        .potstore(store.path())
        .enrollment_token("not-it")
        .start();
    assert!(
        wrong.wait_stderr_contains("invalid enrollment token", T),
        "{}",
        wrong.stderr()
    );
    assert!(
        core.api().node(wrong.node_id()).is_none(),
        "a node enrolled with a wrong token"
    );
    let right = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(store.path())
        .enrollment_token("s3cret-token")
        .start();
    core.api().wait_status(right.node_id(), "Running", T);
    assert!(
        !right.stderr().contains("s3cret-token"),
        "the token was logged"
    );
}

#[test]
fn a_pot_does_not_outlive_an_agent_killed_with_sigkill() {
    let core = Core::start();
    let store = potstore(&core, vec![TestPot::emitter("emitter")]);
    let (mut agent, id) = full_agent(&core, &store);
    install(&core, id, "orphan-01", "emitter", json!({}));
    wait_pot(&core, id, "orphan-01", |p| p["status"] == "Running");
    let pid = store.wait_pot_pid("orphan-01", T);
    agent.kill9();
    let deadline = Instant::now() + T;
    while process_alive(pid) {
        assert!(Instant::now() < deadline, "pot {pid} outlived its agent");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A restarted agent can take the pot's place again.
    let _again = agent.builder().start();
    wait_pot(&core, id, "orphan-01", |p| p["status"] == "Running");
    let deadline = Instant::now() + T;
    while store.pot_pid("orphan-01") == Some(pid) {
        assert!(Instant::now() < deadline, "the pot was not started again");
        std::thread::sleep(Duration::from_millis(50));
    }
}
