//! The Full agent against commands and files it must not trust, with the
//! real core and agent: git installs only from the URL prefixes of the
//! agent's own config (re-checked after a restart), and state and pot
//! directories that are symlinks are refused, not followed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use honeybee_tests::skip;
use honeybee_tests::test_pot::process_alive;
use honeybee_tests::{Agent, Core, TestPot, TestPotstore};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

fn install_git(core: &Core, node_id: u64, pot_id: &str, url: &str) {
    core.api().command(
        node_id,
        &json!({"InstallPot": {"pot_id": pot_id, "honeypot_type": "emitter", "git_url": url,
                               "git_branch": "main", "auto_start": true}}),
    );
}

/// Waits for `pot_id` to end Running or Failed and returns it.
#[track_caller]
fn settled(core: &Core, node_id: u64, pot_id: &str) -> Value {
    core.api().wait_pot(node_id, pot_id, T, |p| {
        p["status"] == "Running" || p["status"] == "Failed"
    })
}

#[track_caller]
fn assert_failed_with(pot: &Value, why: &str) {
    assert_eq!(pot["status"], "Failed", "{pot}");
    let message = pot["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "expected {why:?} in {pot}");
}

#[test]
fn git_installs_only_from_allowed_prefixes_and_are_rechecked_after_a_restart() {
    let core = Core::start();
    let ws = core.workspace();
    let mut store = TestPotstore::new(ws.path().join("potstore"));
    store.add(TestPot::emitter("emitter"));
    let repos = ws.path().join("repos");
    let head = store.git_repo("emitter", &repos.join("pot"));
    // A look-alike: the allowed prefix's text followed by "-evil".
    store.git_repo("emitter", &ws.path().join("repos-evil").join("pot"));
    let url = format!("file://{}/pot", repos.display());
    let evil = format!("file://{}-evil/pot", repos.display());

    // Default: no git install at all, and the API says why.
    let mut agent = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .potstore(store.path())
        .heartbeat_interval(1)
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    install_git(&core, id, "git-off", &url);
    assert_failed_with(&settled(&core, id, "git-off"), "git installs are disabled");
    assert_eq!(store.installs("git-off"), 0, "the install script ran");
    // The pot type is a catalogue key, never a path out of the potstore.
    core.api().command(
        id,
        &json!({"InstallPot": {"pot_id": "walk-01", "honeypot_type": "../potstore/emitter"}}),
    );
    assert_failed_with(&settled(&core, id, "walk-01"), "honeypot_type must be");
    agent.terminate(T);

    // Allowed by prefix (ending at a '/' boundary).
    let mut agent = agent
        .builder()
        .args(["--git-allow", &format!("file://{}/", repos.display())])
        .start();
    core.api().wait_status(id, "Running", T);
    install_git(&core, id, "git-evil", &evil);
    assert_failed_with(&settled(&core, id, "git-evil"), "not under any prefix");
    assert_eq!(store.installs("git-evil"), 0, "a look-alike URL was cloned");
    install_git(&core, id, "git-01", &url);
    assert_eq!(settled(&core, id, "git-01")["status"], "Running");
    let pid = store.wait_pot_pid("git-01", T);

    // Pinned commits: the right one installs, another is refused.
    install_git(&core, id, "git-pin", &format!("{url}#{head}"));
    assert_eq!(settled(&core, id, "git-pin")["status"], "Running");
    let wrong = "0".repeat(40);
    install_git(&core, id, "git-pin-bad", &format!("{url}#{wrong}"));
    assert_failed_with(&settled(&core, id, "git-pin-bad"), "git");
    assert_eq!(
        store.installs("git-pin-bad"),
        0,
        "an unpinned tree installed"
    );

    // Restarted without the allow list: the installed git pots stay down.
    agent.terminate(T);
    assert!(!process_alive(pid), "the pot outlived its agent");
    let starts = store.starts("git-01");
    // A fresh builder: the old one carries --git-allow.
    let builder = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .state_dir(agent.state_dir())
        .event_port(agent.event_port())
        .potstore(store.path())
        .heartbeat_interval(1);
    drop(agent);
    let _agent = builder.start();
    core.api().wait_status(id, "Running", T);
    core.api().command(id, &json!({"GetInstalledPots": {}}));
    let pot = core
        .api()
        .wait_pot(id, "git-01", T, |p| p["status"] == "Failed");
    assert_failed_with(&pot, "git installs are disabled");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(store.starts("git-01"), starts, "a disallowed pot started");
    core.api().command(id, &json!({"DeployPot": "git-01"}));
    std::thread::sleep(Duration::from_secs(1));
    let pot = core
        .api()
        .wait_pot(id, "git-01", T, |p| p["status"] == "Failed");
    assert_failed_with(&pot, "git installs are disabled");
    assert_eq!(store.starts("git-01"), starts, "DeployPot started it");
}

#[test]
fn a_git_pot_stays_down_when_the_allow_list_pins_another_commit() {
    let core = Core::start();
    let ws = core.workspace();
    let mut store = TestPotstore::new(ws.path().join("potstore"));
    store.add(TestPot::emitter("emitter"));
    let repos = ws.path().join("repos");
    store.git_repo("emitter", &repos.join("pot"));
    let prefix = format!("file://{}/", repos.display());
    let mut agent = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .potstore(store.path())
        .heartbeat_interval(1)
        .args(["--git-allow", &prefix])
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    install_git(&core, id, "git-a", &format!("{prefix}pot"));
    assert_eq!(settled(&core, id, "git-a")["status"], "Running");
    store.wait_pot_pid("git-a", T);
    agent.terminate(T);
    let starts = store.starts("git-a");

    // The operator now pins the prefix to another commit: the pot installed
    // unpinned is not what the list allows, and is not started.
    let other = "1".repeat(40);
    let _agent = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .state_dir(agent.state_dir())
        .event_port(agent.event_port())
        .potstore(store.path())
        .heartbeat_interval(1)
        .args(["--git-allow", &format!("{prefix}#{other}")])
        .start();
    drop(agent);
    core.api().wait_status(id, "Running", T);
    core.api().command(id, &json!({"GetInstalledPots": {}}));
    let pot = core
        .api()
        .wait_pot(id, "git-a", T, |p| p["status"] == "Failed");
    assert_failed_with(&pot, "pins commit");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(store.starts("git-a"), starts, "a pot off its pin started");
}

#[test]
fn a_symlink_planted_at_a_pot_dir_is_refused_not_followed() {
    let core = Core::start();
    let ws = core.workspace();
    let mut store = TestPotstore::new(ws.path().join("potstore"));
    store.add(TestPot::emitter("emitter"));
    // A directory the pot user must never get: root's (when root), 0750.
    let outside = ws.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside dir");
    std::fs::write(outside.join("secret"), "keep me").expect("secret");
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let before = std::fs::metadata(&outside).expect("stat outside");
    let state = ws.path().join("agent-state");
    let pots = state.join("pots");
    std::fs::create_dir_all(&pots).expect("pots dir");
    std::os::unix::fs::symlink(&outside, pots.join("trap-01")).expect("plant the symlink");

    let agent = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .state_dir(&state)
        .potstore(store.path())
        .heartbeat_interval(1)
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    core.api().command(
        id,
        &json!({"InstallPot": {"pot_id": "trap-01", "honeypot_type": "emitter",
                               "auto_start": true}}),
    );
    assert_failed_with(&settled(&core, id, "trap-01"), "symbolic link");
    let after = std::fs::metadata(&outside).expect("stat outside");
    assert_eq!(
        (after.uid(), after.gid(), after.mode() & 0o7777),
        (before.uid(), before.gid(), 0o750),
        "the symlink's target was re-owned or re-moded"
    );
    assert_eq!(
        store.installs("trap-01"),
        0,
        "install ran in the planted dir"
    );

    // Uninstalling removes the link, never what it points to.
    core.api().command(id, &json!({"UninstallPot": "trap-01"}));
    core.api().wait_node(id, T, |n| {
        honeybee_tests::http::pot_of(n, "trap-01").is_none_or(|p| p["status"] == "Stopped")
    });
    let deadline = std::time::Instant::now() + T;
    while pots.join("trap-01").symlink_metadata().is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the link was not removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("secret"))
            .ok()
            .as_deref(),
        Some("keep me"),
        "uninstall followed the link"
    );
}

#[test]
fn a_symlinked_state_dir_is_refused_at_start_with_exit_2() {
    let ws = honeybee_tests::TempDir::new("agent-state-link");
    let real = ws.path().join("real");
    std::fs::create_dir_all(&real).expect("real dir");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let link = ws.path().join("state-link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    for mode in ["full", "extension"] {
        let mut child = std::process::Command::new(honeybee_tests::agent_process::agent_binary())
            .args([mode, "--core", "127.0.0.1:9", "--state-dir"])
            .arg(&link)
            .current_dir(ws.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn honeybee-agent");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{mode}: the agent kept running on a symlinked state dir");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        assert_eq!(status.code(), Some(2), "{mode}: {stderr}");
        assert!(
            stderr.contains("is a symbolic link") && stderr.contains("state-link"),
            "{mode}: {stderr}"
        );
        let meta = std::fs::metadata(&real).expect("stat real");
        assert_eq!(
            meta.mode() & 0o777,
            0o755,
            "{mode}: the target was re-moded"
        );
        assert!(
            !real.join("identity.json").exists(),
            "{mode}: the agent wrote through the link"
        );
    }
}

/// An agent started as `nobody` (through `setpriv`), killed on drop.
struct Unprivileged(std::process::Child);

impl Drop for Unprivileged {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_as_nobody(
    core: &Core,
    store: &TestPotstore,
    state: &std::path::Path,
    extra: &[&str],
) -> Unprivileged {
    let port = honeybee_tests::agent_process::free_port().to_string();
    let agent = honeybee_tests::agent_process::agent_binary();
    let child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(agent)
        .args([
            "full",
            "--core",
            &core.node_addr.to_string(),
            "--event-port",
            &port,
        ])
        .args(["--heartbeat-interval", "1", "--state-dir"])
        .arg(state)
        .arg("--potstore")
        .arg(store.path())
        .args(extra)
        .current_dir(state)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn setpriv honeybee-agent");
    Unprivileged(child)
}

/// The node id the agent wrote to `state/identity.json`.
fn node_id_in(state: &std::path::Path) -> u64 {
    honeybee_tests::wait_for("identity.json", T, Duration::from_millis(50), || {
        let text = std::fs::read_to_string(state.join("identity.json")).ok()?;
        serde_json::from_str::<Value>(&text).ok()?["node_id"].as_u64()
    })
}

#[test]
fn a_non_root_agent_never_runs_pots_as_its_own_user() {
    if skip::skip_unless_root(
        "a_non_root_agent_never_runs_pots_as_its_own_user",
        "becoming nobody to play a non-root agent",
    ) {
        return;
    }
    let core = Core::start();
    let ws = core.workspace();
    let mut store = TestPotstore::new(ws.path().join("potstore"));
    store.add(TestPot::emitter("emitter"));
    let state = ws.path().join("nobody-state");
    std::fs::create_dir_all(&state).expect("state dir");
    nix::unistd::chown(
        &state,
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .expect("chown state dir");

    // No pot_user: refused, since the pot would run as the agent's user.
    let agent = start_as_nobody(&core, &store, &state, &[]);
    let id = node_id_in(&state);
    core.api().wait_status(id, "Running", T);
    core.api().command(
        id,
        &json!({"InstallPot": {"pot_id": "np-01", "honeypot_type": "emitter", "auto_start": true}}),
    );
    assert_failed_with(&settled(&core, id, "np-01"), "full.pot_user is not set");
    drop(agent);
    core.api().wait_node(id, T, |n| n["connected"] == false);

    // pot_user naming the agent's own user: refused all the same.
    let config = ws.path().join("nobody.toml");
    std::fs::write(&config, "[full]\npot_user = \"nobody\"\n").expect("config");
    let _agent = start_as_nobody(
        &core,
        &store,
        &state,
        &["--config", &config.display().to_string()],
    );
    core.api().wait_node(id, T, |n| {
        n["status"] == "Running" && n["connected"] == true
    });
    core.api().command(
        id,
        &json!({"InstallPot": {"pot_id": "np-02", "honeypot_type": "emitter", "auto_start": true}}),
    );
    assert_failed_with(&settled(&core, id, "np-02"), "agent's own user");
    assert_eq!(
        store.installs("np-01") + store.installs("np-02"),
        0,
        "a pot ran as the agent's user"
    );
}

#[test]
fn a_restored_pot_gets_its_folder_back_from_a_previous_pot_user() {
    if skip::skip_unless_root(
        "a_restored_pot_gets_its_folder_back_from_a_previous_pot_user",
        "pots change user only under a root agent",
    ) {
        return;
    }
    let core = Core::start();
    let ws = core.workspace();
    let mut store = TestPotstore::new(ws.path().join("potstore"));
    store.add(TestPot::emitter("emitter"));
    let mut agent = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .potstore(store.path())
        .heartbeat_interval(1)
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    core.api().command(
        id,
        &json!({"InstallPot": {"pot_id": "moved-01", "honeypot_type": "emitter", "auto_start": true}}),
    );
    assert_eq!(settled(&core, id, "moved-01")["status"], "Running");
    store.wait_pot_pid("moved-01", T);
    let dir = agent.state_dir().join("pots").join("moved-01");
    let pot_uid = std::fs::metadata(&dir).expect("pot dir").uid();
    assert_ne!(pot_uid, 0, "the pot dir belongs to root");
    agent.terminate(T);
    // As if pots had run as another user (honeybee, before honeybee-pot).
    let out = std::process::Command::new("chown")
        .args(["-R", "1:1"])
        .arg(&dir)
        .output()
        .expect("chown");
    assert!(out.status.success());
    let starts = store.starts("moved-01");
    let _again = agent.builder().start();
    core.api().wait_status(id, "Running", T);
    let deadline = std::time::Instant::now() + T;
    while store.starts("moved-01") == starts {
        assert!(
            std::time::Instant::now() < deadline,
            "the pot did not come back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let meta = std::fs::metadata(&dir).expect("pot dir");
    assert_eq!(meta.uid(), pot_uid, "the pot dir was not handed back");
    for entry in std::fs::read_dir(&dir).expect("read pot dir").flatten() {
        let m = entry.path().symlink_metadata().expect("stat");
        assert_eq!(
            m.uid(),
            pot_uid,
            "{} kept its owner",
            entry.path().display()
        );
    }
}
