//! An agent that cannot write its own state refuses to start (F15): as
//! root in Extension mode it binds its ports and becomes an unprivileged
//! user; if that user cannot reach the state dir (a 0700 parent owned by
//! root), it would lose its TOTP key and every spooled event while looking
//! alive. It must exit with status 2 and say which path and which user.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use honeybee_tests::agent_process::free_port;
use honeybee_tests::{Agent, Core};

#[test]
fn an_extension_agent_that_cannot_write_its_state_after_the_drop_refuses_to_start() {
    if honeybee_tests::skip::skip_unless_root(
        "an_extension_agent_that_cannot_write_its_state_after_the_drop_refuses_to_start",
        "the drop to an unprivileged user only happens as root",
    ) {
        return;
    }
    let core = Core::start();
    let locked = core.workspace().path().join("locked");
    std::fs::create_dir_all(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let state = locked.join("agent-state");
    let port = free_port().to_string();
    let mut agent = Agent::extension(core.node_addr)
        .workspace(core.workspace())
        .state_dir(&state)
        .args([
            "--ports",
            port.as_str(),
            "--udp-ports",
            "",
            "--bind",
            "127.0.0.1",
        ])
        .start();
    let Some(status) = agent.wait_exit(Duration::from_secs(15)) else {
        panic!(
            "the agent kept running with a state dir it cannot write; stderr:\n{}",
            agent.stderr()
        );
    };
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("creating a file in {}", state.display())),
        "the path is named: {stderr}"
    );
    assert!(
        stderr.contains("not writable by user ") && stderr.contains("(uid "),
        "the user is named: {stderr}"
    );
    assert!(!stderr.contains("(uid 0)"), "{stderr}");

    // The same agent with a state dir that user can reach starts and stays.
    let reachable = core.workspace().path().join("agent-state-ok");
    let port = free_port().to_string();
    let mut ok = Agent::extension(core.node_addr)
        .workspace(core.workspace())
        .state_dir(&reachable)
        .args([
            "--ports",
            port.as_str(),
            "--udp-ports",
            "",
            "--bind",
            "127.0.0.1",
        ])
        .start();
    let id = ok.node_id();
    core.api()
        .wait_status(id, "Running", Duration::from_secs(30));
    assert!(
        ok.wait_exit(Duration::from_secs(1)).is_none(),
        "{}",
        ok.stderr()
    );
}
