//! State survives a restart; files are private (behaviour.md, Startup).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use honeybee_proto::{NodeStatus, PotStatus};
use honeybee_tests::{totp, Core, TestNode};
use serde_json::Value;

const T: Duration = Duration::from_secs(5);

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data dir is 0700 and the database (with its WAL/SHM files, which
/// hold the same secrets) 0600.
fn assert_private_files(data_dir: &Path) {
    assert_eq!(
        mode(data_dir),
        0o700,
        "data dir {} mode",
        data_dir.display()
    );
    let db = data_dir.join("honeybee.db");
    assert_eq!(mode(&db), 0o600, "{} mode", db.display());
    for extra in ["honeybee.db-wal", "honeybee.db-shm", "honeybee.db-journal"] {
        let p = data_dir.join(extra);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
        }
    }
}

fn pot<'a>(node: &'a Value, pot_id: &str) -> Option<&'a Value> {
    node["pots"]
        .as_array()?
        .iter()
        .find(|p| p["pot_id"] == pot_id)
}

#[test]
fn nodes_status_pots_and_keys_survive_a_restart() {
    let mut core = Core::start();
    let (mut conn, id) = core.enroll("persistent");
    conn.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Running));
    conn.must_send(&id.pot_status("honnypotter-01", "honnypotter", PotStatus::Stopped));
    conn.must_send(&id.status(NodeStatus::Running));
    let before = core.api().wait_node(id.node_id, T, |n| {
        n["status"] == "Running"
            && pot(n, "cowrie-01").is_some_and(|p| p["status"] == "Running")
            && pot(n, "honnypotter-01").is_some_and(|p| p["status"] == "Stopped")
    });
    assert_private_files(core.data_dir());

    let (status, took) = core.terminate(Duration::from_secs(10));
    assert!(
        took <= Duration::from_secs(5),
        "SIGTERM took {took:?}, must exit within 5 s"
    );
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; stderr:\n{}",
        core.stderr()
    );
    conn.expect_closed(T, "the core stopped");
    assert_private_files(core.data_dir());

    let core2 = Core::builder().workspace(core.workspace()).start();
    let after = core2
        .api()
        .node(id.node_id)
        .unwrap_or_else(|| panic!("node lost across a restart; before: {before}"));
    assert_eq!(after["node_name"], "persistent", "{after}");
    assert_eq!(after["node_type"], "Full", "{after}");
    assert_eq!(after["connected"], false, "{after}");
    assert!(
        after["status"] == "Running" || after["status"] == "Unknown",
        "status after restart should be the last known (Running) or Unknown: {after}"
    );
    let cowrie = pot(&after, "cowrie-01").unwrap_or_else(|| panic!("pot lost: {after}"));
    assert_eq!(cowrie["status"], "Running", "{after}");
    assert_eq!(cowrie["pot_type"], "cowrie", "{after}");
    let hp = pot(&after, "honnypotter-01").unwrap_or_else(|| panic!("pot lost: {after}"));
    assert_eq!(hp["status"], "Stopped", "{after}");
    assert!(
        core2
            .api()
            .nodes()
            .iter()
            .any(|n| n["node_id"].as_u64() == Some(id.node_id)),
        "node missing from the list after restart"
    );

    // Still a known node: no code, no entry; the old key works, and no new
    // key is handed out.
    let mut c = TestNode::connect(core2.node_addr).unwrap();
    let ack = c.register(&id.first());
    assert!(
        !ack.accepted,
        "a known node re-enrolled without a code after restart"
    );
    assert_eq!(
        ack.message.as_deref(),
        Some("totp_code required for a registered node")
    );
    assert!(ack.totp_key.is_none(), "a new key was issued after restart");
    c.expect_closed(T, "refused");

    totp::wait_for_step_margin(Duration::from_secs(2));
    let (mut conn2, ack) = id.login(core2.node_addr, 0);
    assert!(
        ack.accepted,
        "old key refused after restart: {:?}",
        ack.message
    );
    assert!(ack.totp_key.is_none(), "a new key was issued after restart");
    conn2.must_send(&id.status(NodeStatus::Running));
    core2.api().wait_node(id.node_id, T, |n| {
        n["connected"] == true && n["status"] == "Running"
    });
    assert_private_files(core2.data_dir());
}

#[test]
fn sigint_also_stops_the_core_cleanly() {
    let mut core = Core::start();
    let (mut conn, id) = core.enroll("interrupted");
    conn.must_send(&id.status(NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);
    let (status, took) = core.stop_with(nix::sys::signal::Signal::SIGINT, Duration::from_secs(10));
    assert!(took <= Duration::from_secs(5), "SIGINT took {took:?}");
    assert!(
        status.success(),
        "exit after SIGINT: {status}; stderr:\n{}",
        core.stderr()
    );
    conn.expect_closed(T, "the core stopped");
}
