//! The registry's decisions (PROTOCOL.md §5) at injected times: no sockets,
//! no database, no waiting for lockouts to expire or TOTP steps to pass.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use honeybee_proto::{NodeRegistration, NodeStatus, NodeType};
use totp_rs::{Algorithm, Secret, TOTP};

use super::*;
use crate::store::{NodeStore, NodeWrite, StoredNode};

mod fleet;

/// A store that commits every write at once and keeps them for inspection.
#[derive(Default)]
struct Memory {
    writes: Mutex<Vec<NodeWrite>>,
}

impl NodeStore for Memory {
    fn load_nodes(&self) -> Result<Vec<StoredNode>, StoreError> {
        Ok(Vec::new())
    }
    fn submit(&self, write: NodeWrite) -> Receipt {
        self.writes.lock().unwrap().push(write);
        let (tx, rx) = async_channel::bounded(1);
        tx.try_send(Ok(())).unwrap();
        Receipt(rx)
    }
    fn node_events(&self, _: u64, _: usize) -> Result<Vec<NodeEventRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn close(&self) {}
}

/// A registry and the moment its tests start at.
struct Fixture {
    registry: Registry,
    store: Arc<Memory>,
    t0: Now,
}

impl Fixture {
    fn new(policy: Policy) -> Fixture {
        Fixture::with_fleet(policy, Arc::new(crate::fleet::Alone::new("test".into())))
    }

    /// A registry that shares its database through `fleet`.
    fn with_fleet(policy: Policy, fleet: Arc<dyn Fleet>) -> Fixture {
        let store = Arc::new(Memory::default());
        let registry = Registry::load(
            store.clone(),
            Arc::new(Metrics::default()),
            Arc::new(Bus::new()),
            policy,
            Clock::new(),
            fleet,
        )
        .unwrap();
        let t0 = Now {
            instant: Instant::now(),
            ms: 0,
            // The middle of a TOTP step: ±1 step is then ±30 s exactly.
            unix: 1_800_000_015,
        };
        Fixture {
            registry,
            store,
            t0,
        }
    }

    /// `secs` after the start.
    fn at(&self, secs: u64) -> Now {
        Now {
            instant: self.t0.instant + Duration::from_secs(secs),
            ms: self.t0.ms + secs * 1000,
            unix: self.t0.unix + secs,
        }
    }

    fn register(&self, reg: &NodeRegistration, peer: &str, at: Now) -> Result<Accepted, Refused> {
        self.registry.register_at(reg, addr(peer), None, at)
    }

    /// A first registration under the open policy; returns the node's key.
    fn enroll(&self, node_id: u64) -> Vec<u8> {
        let accepted = self.register(&reg(node_id), NODE, self.t0).unwrap();
        decode_key(&accepted.totp_key.unwrap())
    }

    fn status(&self, node_id: u64) -> &'static str {
        self.registry.get(node_id).unwrap().status
    }
}

const NODE: &str = "198.51.100.4:41000";
const ATTACKER: &str = "203.0.113.9:50000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn reg(node_id: u64) -> NodeRegistration {
    NodeRegistration {
        node_id,
        node_name: format!("node-{node_id}"),
        address: "10.0.0.1".into(),
        port: 9100,
        node_type: NodeType::Agent,
        totp_code: None,
        enrollment_token: None,
        agent_version: None,
        capabilities: Vec::new(),
        spool_epoch: None,
    }
}

fn with_code(node_id: u64, code: &str) -> NodeRegistration {
    NodeRegistration {
        totp_code: Some(code.into()),
        ..reg(node_id)
    }
}

fn with_token(node_id: u64, token: &str) -> NodeRegistration {
    NodeRegistration {
        enrollment_token: Some(token.into()),
        ..reg(node_id)
    }
}

fn decode_key(base32: &str) -> Vec<u8> {
    Secret::Encoded(base32.into()).to_bytes().unwrap()
}

/// The code a node with `key` shows at unix time `unix`.
fn code_at(key: &[u8], unix: u64) -> String {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, key.to_vec()).generate(unix)
}

/// A code that is none of the three accepted around `unix`.
fn wrong_code(key: &[u8], unix: u64) -> String {
    let valid: Vec<String> = [unix - 30, unix, unix + 30]
        .iter()
        .map(|t| code_at(key, *t))
        .collect();
    (0..4u32)
        .map(|i| format!("{:06}", 123_456 + i))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn reason(r: Result<Accepted, Refused>) -> RegistrationRefusal {
    r.map(|_| ()).unwrap_err().reason
}

/// Whether the connection the registry handed out was closed.
fn is_closed(inbox: &Inbox) -> bool {
    matches!(
        future::block_on(future::poll_once(inbox.recv())),
        Some(None)
    )
}

#[test]
fn open_enrollment_accepts_a_new_node_and_gives_it_a_key_once() {
    let f = Fixture::new(Policy::for_tests());
    let first = f.register(&reg(7), NODE, f.t0).unwrap();
    let key = first.totp_key.expect("a key on first registration");
    assert_eq!(key.len(), 32, "160 bits in base32");
    assert_eq!(f.status(7), NodeStatus::Connected.as_str());
    let stored = f.store.writes.lock().unwrap().iter().any(|w| {
        matches!(w, NodeWrite::Node(r) if r.node_id == 7 && r.totp_key.as_deref() == Some(&decode_key(&key)[..]))
    });
    assert!(stored, "the key is stored before the ack is sent");
    // The node is known now: without a code it is refused, never re-keyed.
    assert_eq!(
        reason(f.register(&reg(7), NODE, f.at(1))),
        RegistrationRefusal::MissingTotp
    );
}

#[test]
fn the_token_policy_wants_the_token_and_nothing_else() {
    let mut policy = Policy::for_tests();
    policy.enrollment = Enrollment::Token;
    policy.enrollment_token = "s3cret".into();
    let f = Fixture::new(policy);
    let missing = f.register(&reg(1), NODE, f.t0).unwrap_err();
    assert_eq!(missing.reason, RegistrationRefusal::BadEnrollmentToken);
    assert_eq!(missing.message, "enrollment token required");
    let wrong = f.register(&with_token(1, "s3cre"), NODE, f.t0).unwrap_err();
    assert_eq!(wrong.reason, RegistrationRefusal::BadEnrollmentToken);
    assert_eq!(wrong.message, "invalid enrollment token");
    assert!(
        f.registry.list().is_empty(),
        "refused nodes are not recorded"
    );
    let ok = f.register(&with_token(1, "s3cret"), NODE, f.t0).unwrap();
    assert!(ok.totp_key.is_some());
}

#[test]
fn the_approve_policy_holds_a_node_until_approved_for_its_address() {
    let mut policy = Policy::for_tests();
    policy.enrollment = Enrollment::Approve;
    let f = Fixture::new(policy);
    let pending = f.register(&reg(3), NODE, f.t0).unwrap_err();
    assert_eq!(pending.reason, RegistrationRefusal::PendingApproval);
    assert_eq!(pending.message, "pending approval");
    let view = f.registry.get(3).unwrap();
    assert!(!view.approved);
    assert_eq!(view.peer_address.as_deref(), Some("198.51.100.4"));
    // Still pending on the next try, even with a token.
    assert_eq!(
        reason(f.register(&with_token(3, "x"), NODE, f.at(5))),
        RegistrationRefusal::PendingApproval
    );
    // The operator saw another address than the node asks from: refused.
    let seen: IpAddr = "192.0.2.1".parse().unwrap();
    assert!(f.registry.approve(3, Some(seen)).unwrap().unwrap().is_err());
    let asked: IpAddr = "198.51.100.4".parse().unwrap();
    assert!(f.registry.approve(3, Some(asked)).unwrap().unwrap().is_ok());
    // Approved for that address only.
    assert_eq!(
        reason(f.register(&reg(3), ATTACKER, f.at(10))),
        RegistrationRefusal::PendingApproval
    );
    let accepted = f.register(&reg(3), NODE, f.at(10)).unwrap();
    assert!(accepted.totp_key.is_some());
}

#[test]
fn max_nodes_bounds_new_nodes_but_not_known_ones() {
    let mut policy = Policy::for_tests();
    policy.max_nodes = 2;
    let f = Fixture::new(policy);
    let key = f.enroll(1);
    f.enroll(2);
    let refused = f.register(&reg(3), NODE, f.t0).unwrap_err();
    assert_eq!(refused.reason, RegistrationRefusal::NodeLimit);
    assert_eq!(f.registry.list().len(), 2);
    let code = code_at(&key, f.at(60).unix);
    assert!(f.register(&with_code(1, &code), NODE, f.at(60)).is_ok());
}

#[test]
fn a_totp_code_is_accepted_once_within_one_step_of_skew() {
    let f = Fixture::new(Policy::for_tests());
    let key = f.enroll(1);
    let now = f.at(300);
    // One step behind: accepted.
    let behind = code_at(&key, now.unix - 30);
    assert!(f.register(&with_code(1, &behind), NODE, now).is_ok());
    // The same code again: a replay, whatever the time.
    let again = f.register(&with_code(1, &behind), NODE, f.at(301));
    let replay = again.map(|_| ()).unwrap_err();
    assert_eq!(replay.reason, RegistrationRefusal::ReplayedTotp);
    assert!(replay.failed_check, "a replay counts toward the lockout");
    // One step ahead: accepted, and then the current step is old news.
    let ahead = code_at(&key, now.unix + 30);
    assert!(f.register(&with_code(1, &ahead), NODE, now).is_ok());
    let current = code_at(&key, now.unix);
    assert_eq!(
        reason(f.register(&with_code(1, &current), NODE, now)),
        RegistrationRefusal::ReplayedTotp
    );
    // Two steps away either side: not a valid code at all.
    let later = f.at(600);
    for skew in [later.unix - 60, later.unix + 60] {
        let code = code_at(&key, skew);
        if [later.unix - 30, later.unix, later.unix + 30]
            .iter()
            .any(|t| code_at(&key, *t) == code)
        {
            continue; // a chance collision (1e-6)
        }
        assert_eq!(
            reason(f.register(&with_code(1, &code), NODE, later)),
            RegistrationRefusal::BadTotp
        );
    }
    let bad = wrong_code(&key, later.unix);
    assert_eq!(
        reason(f.register(&with_code(1, &bad), NODE, later)),
        RegistrationRefusal::BadTotp
    );
}

#[test]
fn five_failures_in_the_window_lock_the_source_out_until_it_expires() {
    let f = Fixture::new(Policy::for_tests());
    let key = f.enroll(1);
    let start = 120;
    for i in 0..4 {
        let at = f.at(start + i);
        let bad = wrong_code(&key, at.unix);
        assert_eq!(
            reason(f.register(&with_code(1, &bad), ATTACKER, at)),
            RegistrationRefusal::BadTotp
        );
    }
    // The fifth failure (no code at all counts too) starts a 60 s lockout.
    assert_eq!(
        reason(f.register(&reg(1), ATTACKER, f.at(start + 4))),
        RegistrationRefusal::MissingTotp
    );
    let locked_at = f.at(start + 5);
    let good = code_at(&key, locked_at.unix);
    let refused = f
        .register(&with_code(1, &good), ATTACKER, locked_at)
        .unwrap_err();
    assert_eq!(refused.reason, RegistrationRefusal::LockedOut);
    assert_eq!(
        refused.message,
        "too many failed TOTP attempts; locked out for 59 s"
    );
    assert!(
        !refused.failed_check,
        "a locked-out try is not another failure"
    );
    // The real node, from its own address, is not locked out.
    assert!(f.register(&with_code(1, &good), NODE, locked_at).is_ok());
    // The lockout ends 60 s after the fifth failure.
    let still = f.at(start + 4 + 59);
    let code = code_at(&key, still.unix + 30);
    assert_eq!(
        reason(f.register(&with_code(1, &code), ATTACKER, still)),
        RegistrationRefusal::LockedOut
    );
    let after = f.at(start + 4 + 61);
    assert!(f.register(&with_code(1, &code), ATTACKER, after).is_ok());
}

#[test]
fn a_second_lockout_lasts_twice_as_long() {
    let f = Fixture::new(Policy::for_tests());
    let key = f.enroll(1);
    let fail_five = |from: u64| {
        for i in 0..5 {
            let _ = f.register(&reg(1), ATTACKER, f.at(from + i));
        }
    };
    fail_five(100);
    fail_five(200);
    let refused = f.register(&reg(1), ATTACKER, f.at(204)).unwrap_err();
    assert_eq!(
        refused.message,
        "too many failed TOTP attempts; locked out for 120 s"
    );
    let code = code_at(&key, f.at(204 + 119).unix);
    assert_eq!(
        reason(f.register(&with_code(1, &code), ATTACKER, f.at(204 + 119))),
        RegistrationRefusal::LockedOut
    );
    assert!(f
        .register(&with_code(1, &code), ATTACKER, f.at(204 + 121))
        .is_ok());
}

#[test]
fn failures_spread_wider_than_the_window_never_lock() {
    let f = Fixture::new(Policy::for_tests());
    f.enroll(1);
    // One failure every 80 s: never 5 within 300 s.
    for i in 1..20 {
        assert_eq!(
            reason(f.register(&reg(1), ATTACKER, f.at(i * 80))),
            RegistrationRefusal::MissingTotp,
            "failure {i}"
        );
    }
}

#[test]
fn registering_again_replaces_the_old_connection() {
    let f = Fixture::new(Policy::for_tests());
    let first = f.register(&reg(1), NODE, f.t0).unwrap();
    let key = decode_key(first.totp_key.as_deref().unwrap());
    let code = code_at(&key, f.at(40).unix);
    let second = f.register(&with_code(1, &code), NODE, f.at(40)).unwrap();
    assert_ne!(first.conn_id, second.conn_id);
    assert!(is_closed(&first.outbox), "the old connection is closed");
    assert!(!is_closed(&second.outbox));
    assert_eq!(second.totp_key, None, "no new key for a known node");
    // The old connection ending says nothing about the node.
    f.registry.disconnected(1, first.conn_id);
    assert_eq!(f.status(1), NodeStatus::Connected.as_str());
    f.registry.disconnected(1, second.conn_id);
    assert_eq!(f.status(1), NodeStatus::Unknown.as_str());
}

#[test]
fn a_node_that_says_goodbye_is_stopped_not_lost() {
    let f = Fixture::new(Policy::for_tests());
    let a = f.register(&reg(1), NODE, f.t0).unwrap();
    f.registry.dropped(1, a.conn_id);
    assert_eq!(f.status(1), NodeStatus::Stopped.as_str());
    assert!(!f.registry.get(1).unwrap().connected);
}

#[test]
fn three_missed_heartbeats_lose_a_node_and_close_its_connection() {
    let f = Fixture::new(Policy::for_tests());
    let a = f.register(&reg(1), NODE, f.t0).unwrap();
    // 30 s heartbeats: silent for exactly 90 s is still alive.
    assert_eq!(f.registry.sweep_at(90_000), 0);
    assert_eq!(f.status(1), NodeStatus::Connected.as_str());
    // A heartbeat at 60 s moves the deadline.
    a.live.touch(60_000);
    assert_eq!(f.registry.sweep_at(150_000), 0);
    assert_eq!(f.registry.sweep_at(150_001), 1);
    assert_eq!(f.status(1), NodeStatus::Unknown.as_str());
    assert!(is_closed(&a.outbox));
    // Counted once.
    assert_eq!(f.registry.sweep_at(300_000), 0);
}

#[test]
fn waiting_approvals_are_bounded() {
    let mut policy = Policy::for_tests();
    policy.enrollment = Enrollment::Approve;
    policy.max_nodes = MAX_PENDING_APPROVALS + 10;
    let f = Fixture::new(policy);
    for id in 0..MAX_PENDING_APPROVALS as u64 {
        assert_eq!(
            reason(f.register(&reg(id), NODE, f.t0)),
            RegistrationRefusal::PendingApproval
        );
    }
    let id = MAX_PENDING_APPROVALS as u64;
    assert_eq!(
        reason(f.register(&reg(id), NODE, f.t0)),
        RegistrationRefusal::NodeLimit
    );
    // An approval makes room for one more.
    let ip: IpAddr = "198.51.100.4".parse().unwrap();
    assert!(f.registry.approve(0, Some(ip)).unwrap().unwrap().is_ok());
    assert_eq!(
        reason(f.register(&reg(id), NODE, f.t0)),
        RegistrationRefusal::PendingApproval
    );
}
