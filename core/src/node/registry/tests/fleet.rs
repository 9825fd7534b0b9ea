//! The registry's decisions when cores share a database: what it leaves to
//! the database, and the nodes another core holds.

use std::collections::HashSet;

use crate::fleet::{Alone, CoreView, Routed, SharedNode};
use crate::node::lockout::LockoutPolicy;

use super::*;

/// A fleet whose database is shared, where another core holds `held`.
struct Shared {
    alone: Alone,
    held: Mutex<HashSet<u64>>,
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            alone: Alone::new("core-a".into()),
            held: Mutex::new(HashSet::new()),
        })
    }
}

impl Fleet for Shared {
    fn core_name(&self) -> &str {
        self.alone.core_name()
    }
    fn shared(&self) -> bool {
        true
    }
    fn load_node(&self, id: u64, ip: IpAddr) -> Result<Option<SharedNode>, StoreError> {
        self.alone.load_node(id, ip)
    }
    fn claim_step(&self, id: u64, step: u64, ip: IpAddr) -> Result<bool, StoreError> {
        self.alone.claim_step(id, step, ip)
    }
    fn count_failure(
        &self,
        id: u64,
        ip: IpAddr,
        policy: &LockoutPolicy,
        now_ms: u64,
    ) -> Result<Option<Duration>, StoreError> {
        self.alone.count_failure(id, ip, policy, now_ms)
    }
    fn hold(&self, id: u64, conn: u64) -> Result<(), StoreError> {
        self.alone.hold(id, conn)
    }
    fn release(&self, id: u64, conn: u64) {
        self.alone.release(id, conn)
    }
    fn holder(&self, id: u64) -> Option<String> {
        let held = self.held.lock().unwrap().contains(&id);
        held.then(|| "core-b".to_string())
    }
    fn route(&self, id: u64, m: &CoreMessage) -> Result<Routed, StoreError> {
        self.alone.route(id, m)
    }
    fn is_leader(&self) -> bool {
        false
    }
    fn cores(&self, local: u64) -> Result<Vec<CoreView>, StoreError> {
        self.alone.cores(local)
    }
    fn trouble(&self) -> Option<String> {
        None
    }
}

#[test]
fn with_a_shared_database_failed_checks_are_left_to_it_to_count() {
    let f = Fixture::with_fleet(Policy::for_tests(), Shared::new());
    let key = f.enroll(1);
    for i in 0..8 {
        let refused = f.register(&reg(1), ATTACKER, f.at(i)).unwrap_err();
        assert_eq!(refused.reason, RegistrationRefusal::MissingTotp, "try {i}");
        assert!(refused.failed_check, "the caller counts it in the database");
    }
    // Not locked here: the database decides lockouts for every core.
    let code = code_at(&key, f.at(10).unix);
    assert!(f.register(&with_code(1, &code), ATTACKER, f.at(10)).is_ok());
}

#[test]
fn a_silent_node_another_core_holds_is_not_marked_lost() {
    let fleet = Shared::new();
    let f = Fixture::with_fleet(Policy::for_tests(), fleet.clone());
    f.enroll(1);
    f.enroll(2);
    // Both moved to core-b; only node 1 is still held there.
    f.registry.moved_away(1);
    f.registry.moved_away(2);
    fleet.held.lock().unwrap().insert(1);
    assert_eq!(f.registry.sweep_at(200_000), 1);
    assert_eq!(f.status(1), NodeStatus::Connected.as_str());
    assert_eq!(f.status(2), NodeStatus::Unknown.as_str());
    let view = f.registry.get(1).unwrap();
    assert!(view.connected);
    assert_eq!(view.core_name.as_deref(), Some("core-b"));
    // Once core-b lets it go, three more silent intervals lose it here.
    fleet.held.lock().unwrap().clear();
    assert_eq!(f.registry.sweep_at(290_000), 0);
    assert_eq!(f.registry.sweep_at(290_001), 1);
    assert_eq!(f.status(1), NodeStatus::Unknown.as_str());
}

/// Node `node_id` as the shared database holds it.
fn stored(node_id: u64, approved: bool, key: Option<Vec<u8>>, step: Option<u64>) -> SharedNode {
    SharedNode {
        node: StoredNode {
            node: NodeRecord {
                node_id,
                node_name: format!("node-{node_id}"),
                address: "10.0.0.1".into(),
                port: 9100,
                node_type: NodeType::Agent,
                status: NodeStatus::Stopped,
                approved,
                totp_key: key,
                last_totp_step: step,
                agent_version: None,
                capabilities: Vec::new(),
                registered_at: "2026-12-07T10:00:00Z".into(),
                last_seen: None,
                approved_for: (!approved).then(|| "198.51.100.4".into()),
            },
            pots: Vec::new(),
        },
        locked_until_ms: None,
    }
}

#[test]
fn a_step_another_core_accepted_is_a_replay_here_too() {
    let f = Fixture::with_fleet(Policy::for_tests(), Shared::new());
    let key = f.enroll(1);
    let now = f.at(100);
    let step = totp::step_at(now.unix);
    // core-b accepted this step a moment ago.
    f.registry
        .merge_shared(1, Some(stored(1, true, Some(key.clone()), Some(step))));
    let code = code_at(&key, now.unix);
    assert_eq!(
        reason(f.register(&with_code(1, &code), NODE, now)),
        RegistrationRefusal::ReplayedTotp
    );
    // The next step is fresh.
    let next = code_at(&key, now.unix + 30);
    assert!(f.register(&with_code(1, &next), NODE, now).is_ok());
}

#[test]
fn a_node_approved_on_another_core_is_accepted_here() {
    let mut policy = Policy::for_tests();
    policy.enrollment = Enrollment::Approve;
    let f = Fixture::with_fleet(policy, Shared::new());
    assert_eq!(
        reason(f.register(&reg(4), NODE, f.t0)),
        RegistrationRefusal::PendingApproval
    );
    assert_eq!(f.registry.pending_approvals.load(Ordering::Relaxed), 1);
    let mut approved = stored(4, true, None, None);
    approved.node.node.approved_for = Some("198.51.100.4".into());
    f.registry.merge_shared(4, Some(approved));
    assert_eq!(f.registry.pending_approvals.load(Ordering::Relaxed), 0);
    let accepted = f.register(&reg(4), NODE, f.at(1)).unwrap();
    assert!(accepted.totp_key.is_some());
}

#[test]
fn a_node_gone_from_the_database_is_forgotten_unless_connected_here() {
    let f = Fixture::with_fleet(Policy::for_tests(), Shared::new());
    let here = f.register(&reg(1), NODE, f.t0).unwrap();
    f.enroll(2);
    f.registry.moved_away(2);
    f.registry.merge_shared(1, None);
    f.registry.merge_shared(2, None);
    assert!(f.registry.get(1).is_some(), "its connection here stays");
    assert!(f.registry.get(2).is_none());
    drop(here);
}
