//! Several cores, one fleet: what one core must ask or tell the others.
//!
//! With the embedded SQLite store a core is alone, and [`Alone`] answers
//! every question at once: it holds every node it has a connection to, it
//! runs the modules and retention, and a TOTP step its registry accepted is
//! accepted. With PostgreSQL the cores are interchangeable front-ends over
//! one database and [`shared::SharedFleet`] asks it: which core holds a node
//! (presence, kept alive by each core's lease), who accepted which TOTP step,
//! which source failed how many TOTP checks and is locked out, who is the
//! one core that runs modules and retention (the leader). Cores tell each
//! other through PostgreSQL's LISTEN/NOTIFY: a node moved, a command for a
//! node another core holds (the command itself waits in a table: a NOTIFY
//! carries under 8,000 bytes), a node changed, events committed
//! ([`notice`]).
//!
//! Every method may block on the database: async callers run them with
//! `smol::unblock`, never on an executor thread.

pub mod delivery;
pub mod notice;
pub mod shared;

use std::net::IpAddr;
use std::time::Duration;

use honeybee_proto::CoreMessage;
use serde::Serialize;

use crate::node::lockout::LockoutPolicy;
use crate::store::{PotRecord, StoreError, StoredNode};

/// A core of the fleet as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CoreView {
    /// Its `--core-name`.
    pub core_name: String,
    /// Its lease is current.
    pub alive: bool,
    /// It runs modules and retention for the fleet.
    pub leader: bool,
    /// `ok`, or why it cannot serve (e.g. the database is unreachable).
    pub health: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Nodes it holds.
    pub nodes: u64,
}

/// Where a command went.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed {
    /// Handed to the core holding the node.
    Sent {
        /// That core.
        core_name: String,
    },
    /// No live core holds the node.
    NotHeld,
}

/// The shared state of one node, read before its registration is decided.
#[derive(Debug)]
pub struct SharedNode {
    /// The node and its pots as stored.
    pub node: StoredNode,
    /// Until when (unix ms) the asking source is locked out for it.
    pub locked_until_ms: Option<u64>,
}

/// What a core asks of and tells the other cores.
pub trait Fleet: Send + Sync {
    /// This core's name.
    fn core_name(&self) -> &str;
    /// Whether other cores share the database.
    fn shared(&self) -> bool;
    /// The node as the database holds it now (`None`: unknown there), and
    /// whether `source` is locked out for it.
    fn load_node(&self, node_id: u64, source: IpAddr) -> Result<Option<SharedNode>, StoreError>;
    /// Claims TOTP step `step` of the node for a registration from
    /// `source`: false when this or another core already accepted it or a
    /// later one (a replay). Won, it forgets the failed checks counted for
    /// `source`, as a core alone does after a correct code.
    fn claim_step(&self, node_id: u64, step: u64, source: IpAddr) -> Result<bool, StoreError>;
    /// Counts a failed TOTP check of `source` for the node, at `now_ms`
    /// (unix ms), toward one window shared by every core; at the limit the
    /// source is locked out on every core and the lockout is returned. A
    /// core alone counts in its registry instead (this returns `None`).
    fn count_failure(
        &self,
        node_id: u64,
        source: IpAddr,
        policy: &LockoutPolicy,
        now_ms: u64,
    ) -> Result<Option<Duration>, StoreError>;
    /// This core now holds the node over connection `conn_id`; another core
    /// holding it closes its connection.
    fn hold(&self, node_id: u64, conn_id: u64) -> Result<(), StoreError>;
    /// Connection `conn_id` of the node ended here.
    fn release(&self, node_id: u64, conn_id: u64);
    /// The other live core that holds the node, if one does.
    fn holder(&self, node_id: u64) -> Option<String>;
    /// Hands a command to the core that holds the node (not this one).
    fn route(&self, node_id: u64, message: &CoreMessage) -> Result<Routed, StoreError>;
    /// Whether this core runs modules and retention now.
    fn is_leader(&self) -> bool;
    /// Every core of the fleet.
    fn cores(&self, local_nodes: u64) -> Result<Vec<CoreView>, StoreError>;
    /// Why this core cannot serve, if it cannot (for `/health`).
    fn trouble(&self) -> Option<String>;
}

/// One core alone with its SQLite database.
#[derive(Debug)]
pub struct Alone {
    core_name: String,
    started_at: String,
}

impl Alone {
    /// A fleet of one named `core_name`.
    pub fn new(core_name: String) -> Alone {
        let now = honeybee_proto::time::now_unix();
        Alone {
            core_name,
            started_at: honeybee_proto::time::format_rfc3339(now.0, now.1),
        }
    }
}

impl Fleet for Alone {
    fn core_name(&self) -> &str {
        &self.core_name
    }
    fn shared(&self) -> bool {
        false
    }
    fn load_node(&self, _: u64, _: IpAddr) -> Result<Option<SharedNode>, StoreError> {
        Ok(None)
    }
    fn claim_step(&self, _: u64, _: u64, _: IpAddr) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn count_failure(
        &self,
        _: u64,
        _: IpAddr,
        _: &LockoutPolicy,
        _: u64,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(None)
    }
    fn hold(&self, _: u64, _: u64) -> Result<(), StoreError> {
        Ok(())
    }
    fn release(&self, _: u64, _: u64) {}
    fn holder(&self, _: u64) -> Option<String> {
        None
    }
    fn route(&self, _: u64, _: &CoreMessage) -> Result<Routed, StoreError> {
        Ok(Routed::NotHeld)
    }
    fn is_leader(&self) -> bool {
        true
    }
    fn cores(&self, local_nodes: u64) -> Result<Vec<CoreView>, StoreError> {
        Ok(vec![CoreView {
            core_name: self.core_name.clone(),
            alive: true,
            leader: true,
            health: "ok".into(),
            started_at: self.started_at.clone(),
            nodes: local_nodes,
        }])
    }
    fn trouble(&self) -> Option<String> {
        None
    }
}

/// Pots as a map entry list, for merging a shared node into the registry.
pub fn pots_by_id(pots: Vec<PotRecord>) -> Vec<(String, PotRecord)> {
    pots.into_iter().map(|p| (p.pot_id.clone(), p)).collect()
}
