//! Enrollment policies: open, token, approve (behaviour.md, Port 9001).

use std::time::Duration;

use honeybee_tests::{totp, Core, NodeIdentity, TestNode};

const T: Duration = Duration::from_secs(5);

fn refused_total(core: &Core, reason: &str) -> f64 {
    core.metrics()
        .labeled("honeybee_registrations_refused_total", "reason", reason)
}

#[test]
fn open_policy_accepts_a_new_node_and_lists_it() {
    let core = Core::start();
    let accepted_before = core
        .metrics()
        .value("honeybee_registrations_accepted_total", &[]);
    let (node, id) = core.enroll("open-1");
    let n = core
        .api()
        .wait_node(id.node_id, T, |n| n["connected"] == true);
    assert_eq!(n["node_id"].as_u64(), Some(id.node_id), "{n}");
    assert_eq!(n["node_name"], "open-1", "{n}");
    assert_eq!(n["node_type"], "Full", "{n}");
    assert_eq!(n["status"], "Connected", "fresh registration: {n}");
    assert_eq!(n["approved"], true, "{n}");
    assert_eq!(n["agent_version"], "0.1.0-test", "{n}");
    assert_eq!(
        n["peer_address"].as_str(),
        Some(node.local_addr().to_string().as_str()),
        "{n}"
    );
    core.api().wait_metric_at_least(
        "honeybee_registrations_accepted_total",
        &[],
        accepted_before + 1.0,
        T,
    );
}

#[test]
fn token_policy_refuses_missing_and_wrong_tokens_and_accepts_the_right_one() {
    let core = Core::builder()
        .args([
            "--enrollment",
            "token",
            "--enrollment-token",
            "s3cret-enrol",
        ])
        .start();
    let addr = core.node_addr;
    let id = NodeIdentity::new("tok");
    let before =
        refused_total(&core, "bad_enrollment_token") + refused_total(&core, "invalid_registration");

    // Missing token.
    let mut c = TestNode::connect(addr).unwrap();
    let ack = c.register(&id.first());
    assert!(!ack.accepted, "registration without a token accepted");
    assert_eq!(ack.message.as_deref(), Some("enrollment token required"));
    assert!(ack.totp_key.is_none(), "refusal carries a totp_key");
    c.expect_closed(T, "refused registration");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "bad_enrollment_token")],
        1.0,
        T,
    );

    // Wrong token.
    let wrong_before = refused_total(&core, "bad_enrollment_token");
    let mut c = TestNode::connect(addr).unwrap();
    let ack = c.register(&id.clone().with_token("not-it").first());
    assert!(!ack.accepted, "a wrong token was accepted");
    assert_eq!(ack.message.as_deref(), Some("invalid enrollment token"));
    c.expect_closed(T, "refused registration");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "bad_enrollment_token")],
        wrong_before + 1.0,
        T,
    );
    let after =
        refused_total(&core, "bad_enrollment_token") + refused_total(&core, "invalid_registration");
    assert!(
        after >= before + 2.0,
        "two refusals counted as {}",
        after - before
    );

    // The right one.
    let mut good = id.clone().with_token("s3cret-enrol");
    let _conn = good.enroll(addr);
    core.api()
        .wait_node(id.node_id, T, |n| n["connected"] == true);
}

#[test]
fn approve_policy_keeps_a_node_pending_until_the_operator_approves_it() {
    let core = Core::builder().args(["--enrollment", "approve"]).start();
    let addr = core.node_addr;
    let mut id = NodeIdentity::new("needs-approval");

    for attempt in 0..2 {
        let mut c = TestNode::connect(addr).unwrap();
        let ack = c.register(&id.first());
        assert!(!ack.accepted, "attempt {attempt}: accepted before approval");
        assert_eq!(ack.message.as_deref(), Some("pending approval"));
        assert!(ack.totp_key.is_none(), "pending ack carries a totp_key");
        c.expect_closed(T, "pending node");
    }
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "pending_approval")],
        2.0,
        T,
    );

    // Listed as pending.
    let n = core.api().wait_node(id.node_id, T, |_| true);
    assert_eq!(n["approved"], false, "{n}");
    assert_eq!(n["connected"], false, "{n}");
    assert!(
        core.api()
            .nodes()
            .iter()
            .any(|n| n["node_id"].as_u64() == Some(id.node_id)),
        "pending node missing from GET /api/v1/nodes"
    );

    // Approve (twice: idempotent).
    for _ in 0..2 {
        let r = core
            .api()
            .post(&format!("/api/v1/nodes/{}/approve", id.node_id), "")
            .expect_status(200)
            .json();
        assert_eq!(r["node_id"].as_u64(), Some(id.node_id), "{r}");
        assert_eq!(r["approved"], true, "{r}");
    }

    // Next try is accepted and gets its key.
    let _conn = id.enroll(addr);
    assert!(totp::is_valid_key(id.key()));
    let n = core
        .api()
        .wait_node(id.node_id, T, |n| n["connected"] == true);
    assert_eq!(n["approved"], true, "{n}");
}
