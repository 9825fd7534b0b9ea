//! The Full agent against commands and files it must not trust, with the
//! real core and agent: git installs only from the URL prefixes of the
//! agent's own config (re-checked after a restart), and state and pot
//! directories that are symlinks are refused, not followed.

use std::time::Duration;

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
