//! An agent reconnecting several times in a row registers every time
//! within the core's registration deadline (F9): the TOTP step it presents
//! is chosen, and waited for when the usable ones are spent, before it
//! connects, never on an open connection the core would close after 10 s.

use std::time::{Duration, Instant};

use honeybee_tests::{Agent, Core};
use serde_json::json;

/// Four reconnects within a step spend the current and the next step and
/// then wait up to 30 s twice.
const T: Duration = Duration::from_secs(75);

#[test]
fn an_agent_restarted_four_times_in_a_row_registers_each_time_within_the_deadline() {
    let core = Core::start();
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .heartbeat_interval(1)
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    assert!(
        agent.identity().expect("identity")["totp_key"].is_string(),
        "the node has a TOTP key, so every reconnect presents a code"
    );
    for round in 0..4 {
        let peer = core.api().node(id).expect("node")["peer_address"].clone();
        let asked = Instant::now();
        core.api().command(id, &json!({"Restart": {}}));
        core.api().wait_node(id, T, |n| {
            n["status"] == "Running" && n["peer_address"] != peer && n["connected"] == true
        });
        eprintln!(
            "round {round}: registered again {:.1} s after the Restart",
            asked.elapsed().as_secs_f64()
        );
    }
    let stderr = agent.stderr();
    // A connection the core closed at its deadline shows as a lost one.
    assert!(
        !stderr.contains(" lost: ") && !stderr.contains("refused this node"),
        "a registration did not make it on its connection:\n{stderr}"
    );
    let waits = stderr
        .lines()
        .filter(|l| l.contains("for a fresh TOTP step before connecting"))
        .count();
    assert!(
        waits >= 1,
        "four reconnects in a row must have waited for a step:\n{stderr}"
    );
}
