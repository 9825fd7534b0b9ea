//! The registry: every known node, enrollment, TOTP checks, lockouts, status,
//! liveness and the route to each connected node.
//!
//! All state sits behind one mutex that is held only for in-memory work;
//! writes go to the store's queue and registration waits for the commit
//! outside the lock. A connected node's heartbeat touches only atomics.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use honeybee_proto::{
    CoreMessage, EventAck, NodeEvent, NodeMessage, NodeRegistration, NodeStatus, NodeStatusUpdate,
    PotStatusUpdate,
};
use serde::Serialize;

use crate::bus::{Bus, Live, Topic};
use crate::clock::{Clock, Now};
use crate::config::Enrollment;
use crate::fleet::{Fleet, SharedNode};
use crate::metrics::{Metrics, RegistrationRefusal};
use crate::node::budget::{self, MAX_MESSAGE, MAX_NAME, MAX_POTS_PER_NODE};
use crate::node::lockout::{LockoutPolicy, SourceLockouts};
use crate::node::outbox::{self, Inbox, Outbox, PushError};
use crate::node::totp;
use crate::store::{
    NodeEventRecord, NodeRecord, NodeStore, NodeWrite, PotRecord, Receipt, StoreError,
};

/// Unapproved nodes waiting under the approve policy.
pub const MAX_PENDING_APPROVALS: usize = 1024;

/// The registry's settings.
#[derive(Clone, Debug)]
pub struct Policy {
    /// First-registration policy.
    pub enrollment: Enrollment,
    /// Token for the token policy.
    pub enrollment_token: String,
    /// Most known nodes.
    pub max_nodes: usize,
    /// Expected heartbeat.
    pub heartbeat_interval: Duration,
    /// TOTP lockouts.
    pub lockout: LockoutPolicy,
}

#[cfg(test)]
impl Policy {
    /// Open enrollment, 10 nodes, 30 s heartbeats, the default lockouts.
    pub(crate) fn for_tests() -> Policy {
        Policy {
            enrollment: Enrollment::Open,
            enrollment_token: String::new(),
            max_nodes: 10,
            heartbeat_interval: Duration::from_secs(30),
            lockout: LockoutPolicy {
                failures: 5,
                window: Duration::from_secs(300),
                base: Duration::from_secs(60),
                max: Duration::from_secs(3600),
            },
        }
    }
}

/// What a connection and the registry share about a registered node.
#[derive(Debug)]
pub struct Liveness {
    last_seen_ms: AtomicU64,
    status: AtomicU8,
}

impl Liveness {
    fn new(now_ms: u64, status: NodeStatus) -> Liveness {
        Liveness {
            last_seen_ms: AtomicU64::new(now_ms),
            status: AtomicU8::new(status_code(status)),
        }
    }

    /// Records that the node said something.
    pub fn touch(&self, now_ms: u64) {
        self.last_seen_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether `status` is what the registry already has.
    pub fn is_status(&self, status: NodeStatus) -> bool {
        self.status.load(Ordering::Relaxed) == status_code(status)
    }

    fn last_seen(&self) -> u64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }
}

fn status_code(s: NodeStatus) -> u8 {
    NodeStatus::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

#[derive(Debug)]
struct Connection {
    id: u64,
    outbox: Outbox,
    live: Arc<Liveness>,
    peer: SocketAddr,
    /// The spool epoch its `seq`s count in: an `EventAck` for another
    /// epoch's seqs must not reach it.
    epoch: u64,
}

#[derive(Debug)]
struct Entry {
    record: NodeRecord,
    pots: BTreeMap<String, PotRecord>,
    conn: Option<Connection>,
    lockout: SourceLockouts,
    /// When the node was last heard of while it had no connection.
    idle_since_ms: u64,
    /// Where the node last asked for approval from (shown to the operator).
    pending_peer: Option<IpAddr>,
    /// SHA-256 of the client certificate the node asked with (mTLS).
    pending_cert: Option<String>,
}

/// What an approval binds to, as stored in [`NodeRecord::approved_for`]:
/// `IP`, or `IP sha256:HEX` under mTLS.
fn binding(peer: Option<IpAddr>, cert: Option<&str>) -> Option<String> {
    let peer = peer?;
    Some(match cert {
        Some(c) => format!("{peer} sha256:{c}"),
        None => peer.to_string(),
    })
}

/// Whether a registration from `peer` with `cert` is the one approved.
fn binding_matches(binding: &str, peer: IpAddr, cert: Option<&str>) -> bool {
    binding == self::binding(Some(peer), cert).unwrap_or_default()
}

impl Entry {
    fn last_seen_ms(&self) -> u64 {
        self.conn
            .as_ref()
            .map_or(self.idle_since_ms, |c| c.live.last_seen())
    }
}

/// A registration the registry accepted; send the ack once `receipt` commits.
#[derive(Debug)]
pub struct Accepted {
    /// The node.
    pub node_id: u64,
    /// This connection's id (a later connection replaces it).
    pub conn_id: u64,
    /// Messages for the node.
    pub outbox: Inbox,
    /// Shared liveness.
    pub live: Arc<Liveness>,
    /// The new key, on first registration only.
    pub totp_key: Option<String>,
    /// The write that records the registration.
    pub receipt: Receipt,
}

/// A refused registration: the metric and the message for the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// For `/metrics`.
    pub reason: RegistrationRefusal,
    /// For the node's `RegistrationAck.message`.
    pub message: String,
    /// A failed TOTP check. A core alone counted it toward the source's
    /// lockout here; with a shared database the caller counts it there,
    /// for every core, outside the registry's lock.
    pub failed_check: bool,
}

/// A refusal.
pub fn refuse(reason: RegistrationRefusal, message: impl Into<String>) -> Refused {
    Refused {
        reason,
        message: message.into(),
        failed_check: false,
    }
}

/// A node as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// Id.
    pub node_id: u64,
    /// Name.
    pub node_name: String,
    /// Reported address.
    pub address: String,
    /// Reported port.
    pub port: u16,
    /// Full or Agent.
    pub node_type: &'static str,
    /// Status.
    pub status: &'static str,
    /// Has a connection now, to this core or another.
    pub connected: bool,
    /// The core the node is connected to.
    pub core_name: Option<String>,
    /// Approved (always true except under the approve policy).
    pub approved: bool,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Capabilities.
    pub capabilities: Vec<String>,
    /// The connection's remote address.
    pub peer_address: Option<String>,
    /// SHA-256 (hex) of the client certificate a pending node asked with
    /// under mTLS: what an approval binds to besides the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_sha256: Option<String>,
    /// First registration.
    pub registered_at: String,
    /// Last message.
    pub last_seen: Option<String>,
    /// Pots.
    pub pots: Vec<PotView>,
}

/// A pot as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PotView {
    /// Id on the node.
    pub pot_id: String,
    /// Type.
    pub pot_type: String,
    /// Status.
    pub status: &'static str,
    /// The node's message.
    pub message: Option<String>,
    /// Command details.
    pub details: Option<serde_json::Value>,
    /// When reported.
    pub updated_at: String,
}

/// Why a command could not be delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such node.
    UnknownNode,
    /// The node has no connection.
    NotConnected,
    /// The node is not reading its commands.
    Busy,
}

/// The node-event kind under which the core records a node's status
/// changes (message: the new status; description: how, e.g. `registered
/// from 203.0.113.5:41000`).
pub const STATUS_EVENT: &str = "Status";

/// The registry. See the module docs.
pub struct Registry {
    nodes: Mutex<HashMap<u64, Box<Entry>>>,
    /// Nodes waiting for approval; changed only under the `nodes` lock.
    pending_approvals: AtomicUsize,
    store: Arc<dyn NodeStore>,
    metrics: Arc<Metrics>,
    bus: Arc<Bus>,
    policy: Policy,
    clock: Clock,
    next_conn: AtomicU64,
    fleet: Arc<dyn Fleet>,
}

impl Registry {
    /// A registry holding what the store has.
    pub fn load(
        store: Arc<dyn NodeStore>,
        metrics: Arc<Metrics>,
        bus: Arc<Bus>,
        policy: Policy,
        clock: Clock,
        fleet: Arc<dyn Fleet>,
    ) -> Result<Registry, StoreError> {
        let mut nodes = HashMap::new();
        for stored in store.load_nodes()? {
            // Databases written before the budgets may hold more: the same
            // bounds apply to what is loaded.
            let pots = stored
                .pots
                .into_iter()
                .take(MAX_POTS_PER_NODE)
                .map(|mut p| {
                    p.message = p.message.map(|m| budget::clip(&m, MAX_MESSAGE));
                    if p.details
                        .as_ref()
                        .is_some_and(|d| d.len() > budget::MAX_DETAILS)
                    {
                        p.details = None;
                    }
                    (p.pot_id.clone(), p)
                })
                .collect();
            let (pending_peer, pending_cert) = asks_from(&stored.node);
            nodes.insert(
                stored.node.node_id,
                Box::new(Entry {
                    record: stored.node,
                    pots,
                    conn: None,
                    lockout: SourceLockouts::default(),
                    // Nodes that were live get three intervals to come back.
                    idle_since_ms: clock.now_ms(),
                    pending_peer,
                    pending_cert,
                }),
            );
        }
        Ok(Registry {
            pending_approvals: AtomicUsize::new(
                nodes.values().filter(|e| !e.record.approved).count(),
            ),
            nodes: Mutex::new(nodes),
            store,
            metrics,
            bus,
            policy,
            clock,
            next_conn: AtomicU64::new(1),
            fleet,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Box<Entry>>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock the registry runs on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The lockout rule.
    pub fn lockout_policy(&self) -> LockoutPolicy {
        self.policy.lockout
    }

    /// Decides a registration. On acceptance the node is connected in memory
    /// and its record queued; the caller awaits the receipt, then acks.
    pub fn register(&self, reg: &NodeRegistration, peer: SocketAddr) -> Result<Accepted, Refused> {
        self.register_with_cert(reg, peer, None)
    }

    /// [`Registry::register`] for a connection that presented a client
    /// certificate (mTLS) with SHA-256 fingerprint `cert`.
    pub fn register_with_cert(
        &self,
        reg: &NodeRegistration,
        peer: SocketAddr,
        cert: Option<String>,
    ) -> Result<Accepted, Refused> {
        self.register_at(reg, peer, cert, self.clock.now())
    }

    /// [`Registry::register_with_cert`] at the time `at` (tests pass their
    /// own, so lockout windows and TOTP steps need no waiting).
    pub(crate) fn register_at(
        &self,
        reg: &NodeRegistration,
        peer: SocketAddr,
        cert: Option<String>,
        at: Now,
    ) -> Result<Accepted, Refused> {
        let (now, now_ms, unix) = (at.instant, at.ms, at.unix);
        let mut nodes = self.lock();
        let pending = self.pending_approvals.load(Ordering::Relaxed);
        let known_count = nodes.len();
        let mut new_key = None;
        let entry = match nodes.get_mut(&reg.node_id) {
            Some(entry) if entry.record.totp_key.is_some() => {
                self.check_totp(entry, reg, peer, unix, now)?;
                entry
            }
            Some(entry) => {
                // Known but never accepted: waiting for approval, or approved.
                if !entry.record.approved {
                    if let Err(r) = self.check_enrollment(reg) {
                        if r.reason == RegistrationRefusal::PendingApproval {
                            self.ask_approval(entry, peer.ip(), cert.clone());
                        }
                        return Err(r);
                    }
                    entry.record.approved = true;
                    self.pending_approvals.fetch_sub(1, Ordering::Relaxed);
                }
                let bound = entry.record.approved_for.as_deref();
                if bound.is_some_and(|b| !binding_matches(b, peer.ip(), cert.as_deref())) {
                    log::warn!(
                        "node {} registered from {peer}, but the operator approved {}; refused",
                        reg.node_id,
                        bound.unwrap_or_default()
                    );
                    return Err(refuse(
                        RegistrationRefusal::PendingApproval,
                        "approved for another address or client certificate",
                    ));
                }
                new_key = Some(totp::generate_key().map_err(|e| {
                    refuse(
                        RegistrationRefusal::Internal,
                        format!("cannot generate a key: {e}"),
                    )
                })?);
                entry
            }
            None => {
                if known_count >= self.policy.max_nodes {
                    return Err(refuse(RegistrationRefusal::NodeLimit, "node limit reached"));
                }
                let approved = match self.check_enrollment(reg) {
                    Ok(()) => true,
                    Err(r) if r.reason == RegistrationRefusal::PendingApproval => {
                        if pending >= MAX_PENDING_APPROVALS {
                            return Err(refuse(
                                RegistrationRefusal::NodeLimit,
                                "node limit reached",
                            ));
                        }
                        false
                    }
                    Err(r) => return Err(r),
                };
                let record = self.new_record(reg, approved, now_ms);
                let entry = nodes.entry(reg.node_id).or_insert(Box::new(Entry {
                    record,
                    pots: BTreeMap::new(),
                    conn: None,
                    lockout: SourceLockouts::default(),
                    idle_since_ms: now_ms,
                    pending_peer: None,
                    pending_cert: None,
                }));
                if !approved {
                    self.pending_approvals.fetch_add(1, Ordering::Relaxed);
                    self.ask_approval(entry, peer.ip(), cert.clone());
                    log::info!(
                        "node {} ({}) from {peer} is waiting for approval",
                        reg.node_id,
                        reg.node_name
                    );
                    return Err(refuse(
                        RegistrationRefusal::PendingApproval,
                        "pending approval",
                    ));
                }
                new_key = Some(totp::generate_key().map_err(|e| {
                    refuse(
                        RegistrationRefusal::Internal,
                        format!("cannot generate a key: {e}"),
                    )
                })?);
                entry
            }
        };
        if let Some(key) = &new_key {
            entry.record.totp_key = Some(key.clone());
            entry.record.last_totp_step = None;
            // The key went to the approved node: the binding is spent.
            entry.record.approved_for = None;
        }
        self.update_from_registration(&mut entry.record, reg, now_ms);
        if let Some(old) = entry.conn.take() {
            log::info!(
                "node {} reconnected from {peer}; closing its connection from {}",
                reg.node_id,
                old.peer
            );
            old.outbox.close();
        }
        let (outbox, inbox) = outbox::outbox();
        let live = Arc::new(Liveness::new(now_ms, NodeStatus::Connected));
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        entry.conn = Some(Connection {
            id: conn_id,
            outbox,
            live: live.clone(),
            peer,
            epoch: reg.spool_epoch.unwrap_or(0),
        });
        let receipt = self.store.submit(NodeWrite::Node(entry.record.clone()));
        self.record_status(
            reg.node_id,
            NodeStatus::Connected,
            Some(format!("registered from {peer}")),
            now_ms,
        );
        self.publish_status(reg.node_id, NodeStatus::Connected);
        Ok(Accepted {
            node_id: reg.node_id,
            conn_id,
            outbox: inbox,
            live,
            totp_key: new_key.as_deref().map(totp::encode_key),
            receipt,
        })
    }

    /// A node waits for approval from `peer` (with `cert` under mTLS). The
    /// address is stored with it (as `approved_for`, which an approval
    /// keeps), so that an operator on any core sees and binds the same one.
    fn ask_approval(&self, entry: &mut Entry, peer: IpAddr, cert: Option<String>) {
        let asks_from = binding(Some(peer), cert.as_deref());
        let changed = entry.record.approved_for != asks_from;
        entry.pending_peer = Some(peer);
        entry.pending_cert = cert;
        if changed {
            entry.record.approved_for = asks_from;
            self.store.submit(NodeWrite::Node(entry.record.clone()));
        }
    }

    fn check_enrollment(&self, reg: &NodeRegistration) -> Result<(), Refused> {
        match self.policy.enrollment {
            Enrollment::Open => Ok(()),
            Enrollment::Token => match &reg.enrollment_token {
                None => Err(refuse(
                    RegistrationRefusal::BadEnrollmentToken,
                    "enrollment token required",
                )),
                Some(t)
                    if crate::secret::equal(
                        t.as_bytes(),
                        self.policy.enrollment_token.as_bytes(),
                    ) =>
                {
                    Ok(())
                }
                Some(_) => Err(refuse(
                    RegistrationRefusal::BadEnrollmentToken,
                    "invalid enrollment token",
                )),
            },
            Enrollment::Approve => Err(refuse(
                RegistrationRefusal::PendingApproval,
                "pending approval",
            )),
        }
    }

    fn check_totp(
        &self,
        entry: &mut Entry,
        reg: &NodeRegistration,
        peer: SocketAddr,
        unix: u64,
        now: Instant,
    ) -> Result<(), Refused> {
        let source = peer.ip();
        if let Some(left) = entry.lockout.remaining(source, now) {
            return Err(locked(left));
        }
        let key = entry.record.totp_key.as_deref().unwrap_or_default();
        let failure = match reg.totp_code.as_deref() {
            None => refuse(
                RegistrationRefusal::MissingTotp,
                "totp_code required for a registered node",
            ),
            Some(code) => match totp::verify(key, code, unix) {
                Some(step) if entry.record.last_totp_step.is_some_and(|last| step <= last) => {
                    refuse(RegistrationRefusal::ReplayedTotp, "TOTP code already used")
                }
                Some(step) => {
                    entry.record.last_totp_step = Some(step);
                    entry.lockout.succeed(source);
                    return Ok(());
                }
                None => refuse(RegistrationRefusal::BadTotp, "invalid TOTP code"),
            },
        };
        let mut failure = failure;
        failure.failed_check = true;
        if self.fleet.shared() {
            // Counted in the database, toward the same lockout on every core.
            return Err(failure);
        }
        if let Some(period) = entry.lockout.fail(source, &self.policy.lockout, now) {
            log::warn!(
                "node {} from {source}: {} failed TOTP checks; this address is locked out for {} s",
                reg.node_id,
                self.policy.lockout.failures,
                period.as_secs()
            );
        }
        Err(failure)
    }

    fn new_record(&self, reg: &NodeRegistration, approved: bool, now_ms: u64) -> NodeRecord {
        NodeRecord {
            node_id: reg.node_id,
            node_name: budget::clip(&reg.node_name, MAX_NAME),
            address: budget::clip(&reg.address, MAX_NAME),
            port: reg.port,
            node_type: reg.node_type,
            status: NodeStatus::Unknown,
            approved,
            totp_key: None,
            last_totp_step: None,
            agent_version: reg
                .agent_version
                .as_deref()
                .map(|v| budget::clip(v, MAX_NAME)),
            capabilities: budget::capabilities(&reg.capabilities),
            registered_at: self.clock.rfc3339(now_ms),
            last_seen: Some(self.clock.rfc3339(now_ms)),
            approved_for: None,
        }
    }

    fn update_from_registration(&self, r: &mut NodeRecord, reg: &NodeRegistration, now_ms: u64) {
        r.node_name = budget::clip(&reg.node_name, MAX_NAME);
        r.address = budget::clip(&reg.address, MAX_NAME);
        r.port = reg.port;
        r.node_type = reg.node_type;
        r.agent_version = reg
            .agent_version
            .as_deref()
            .map(|v| budget::clip(v, MAX_NAME));
        r.capabilities = budget::capabilities(&reg.capabilities);
        r.status = NodeStatus::Connected;
        r.last_seen = Some(self.clock.rfc3339(now_ms));
    }

    /// Sets a connected node's status (heartbeats with an unchanged status
    /// never get here: the connection checks [`Liveness::is_status`]).
    pub fn set_status(&self, node_id: u64, conn_id: u64, status: NodeStatus) {
        let now_ms = self.clock.now_ms();
        let mut nodes = self.lock();
        let Some(entry) = current(&mut nodes, node_id, conn_id) else {
            return;
        };
        if let Some(c) = &entry.conn {
            c.live.status.store(status_code(status), Ordering::Relaxed);
        }
        self.write_status(entry, status, now_ms);
    }

    fn write_status(&self, entry: &mut Entry, status: NodeStatus, now_ms: u64) {
        let changed = entry.record.status != status;
        entry.record.status = status;
        entry.record.last_seen = Some(self.clock.rfc3339(entry.last_seen_ms().min(now_ms)));
        if changed {
            log::info!("node {} is {status}", entry.record.node_id);
            self.record_status(entry.record.node_id, status, None, now_ms);
            self.publish_status(entry.record.node_id, status);
        }
        self.store.submit(NodeWrite::Status {
            node_id: entry.record.node_id,
            status,
            last_seen: entry.record.last_seen.clone().unwrap_or_default(),
        });
    }

    /// A status change in the node's history (its node events, kind
    /// [`STATUS_EVENT`]), for the node's page.
    fn record_status(&self, node_id: u64, status: NodeStatus, note: Option<String>, now_ms: u64) {
        self.store.submit(NodeWrite::Event(NodeEventRecord {
            node_id,
            kind: STATUS_EVENT.to_string(),
            message: Some(status.as_str().to_string()),
            description: note.map(|n| budget::clip(&n, MAX_MESSAGE)),
            time: self.clock.rfc3339(now_ms),
        }));
    }

    fn publish_status(&self, node_id: u64, status: NodeStatus) {
        if self.bus.active() {
            let update = NodeStatusUpdate { node_id, status };
            let message = NodeMessage::NodeStatusUpdate(update);
            self.bus.publish(Live::new(Topic::Status, node_id, message));
        }
    }

    /// Records a `PotStatusUpdate` from a connected node.
    pub fn pot_status(&self, node_id: u64, conn_id: u64, update: PotStatusUpdate) {
        let now_ms = self.clock.now_ms();
        let mut nodes = self.lock();
        let Some(entry) = current(&mut nodes, node_id, conn_id) else {
            return;
        };
        if !entry.pots.contains_key(&update.pot_id) && entry.pots.len() >= MAX_POTS_PER_NODE {
            log::warn!(
                "node {node_id}: more than {MAX_POTS_PER_NODE} pots; ignoring pot {:?}",
                update.pot_id
            );
            return;
        }
        if update.pot_id.len() > MAX_NAME || update.pot_type.len() > MAX_NAME {
            log::warn!("node {node_id}: pot id or type over {MAX_NAME} bytes; ignoring the update");
            return;
        }
        let record = PotRecord {
            node_id,
            pot_id: update.pot_id.clone(),
            pot_type: update.pot_type.clone(),
            status: update.status,
            message: update
                .message
                .as_deref()
                .map(|m| budget::clip(m, MAX_MESSAGE)),
            details: update.details.as_ref().map(budget::details),
            updated_at: self.clock.rfc3339(now_ms),
        };
        entry.pots.insert(record.pot_id.clone(), record.clone());
        self.publish_pot(&record);
        self.store.submit(NodeWrite::Pot(record));
    }

    /// A pot's state on the stream's `status` topic.
    fn publish_pot(&self, record: &PotRecord) {
        if self.bus.active() {
            let message = NodeMessage::PotStatusUpdate(PotStatusUpdate {
                node_id: record.node_id,
                pot_id: record.pot_id.clone(),
                pot_type: record.pot_type.clone(),
                status: record.status,
                message: record.message.clone(),
                details: record
                    .details
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok()),
            });
            self.bus
                .publish(Live::new(Topic::Status, record.node_id, message));
        }
    }

    /// Records a `NodeEvent`.
    pub fn node_event(&self, node_id: u64, event: &NodeEvent) {
        let now_ms = self.clock.now_ms();
        let text = |t: &Option<String>| t.as_deref().map(|m| budget::clip(m, MAX_MESSAGE));
        let event = NodeEvent {
            node_id: Some(node_id),
            kind: event.kind.clone(),
            message: text(&event.message),
            description: text(&event.description),
        };
        // The kind the core records status changes under is the core's: a
        // node's own event of that kind is stored as the node's.
        let kind = match event.kind.as_str() {
            STATUS_EVENT => format!("{STATUS_EVENT} (from the node)"),
            other => budget::clip(other, MAX_NAME),
        };
        self.store.submit(NodeWrite::Event(NodeEventRecord {
            node_id,
            kind,
            message: event.message.clone(),
            description: event.description.clone(),
            time: self.clock.rfc3339(now_ms),
        }));
        if self.bus.active() {
            let message = NodeMessage::NodeEvent(event);
            self.bus.publish(Live::new(Topic::Nodes, node_id, message));
        }
    }

    /// The node said `NodeDrop`: it left on purpose.
    pub fn dropped(&self, node_id: u64, conn_id: u64) {
        self.connection_ended(node_id, conn_id, NodeStatus::Stopped);
    }

    /// The connection ended; a node that did not say `NodeDrop` is lost.
    pub fn disconnected(&self, node_id: u64, conn_id: u64) {
        self.connection_ended(node_id, conn_id, NodeStatus::Unknown);
    }

    /// Forgets connection `conn_id` of the node, if it is still the node's
    /// current one (a replaced connection changes nothing).
    fn connection_ended(&self, node_id: u64, conn_id: u64, status: NodeStatus) {
        let now_ms = self.clock.now_ms();
        let mut nodes = self.lock();
        if let Some(entry) = current(&mut nodes, node_id, conn_id) {
            if let Some(c) = entry.conn.take() {
                entry.idle_since_ms = c.live.last_seen();
            }
            self.write_status(entry, status, now_ms);
        }
    }

    /// Another core took the node over: its connection here is closed
    /// without a status write (the other core's status is the true one).
    pub fn moved_away(&self, node_id: u64) {
        let mut nodes = self.lock();
        if let Some(entry) = nodes.get_mut(&node_id) {
            if let Some(c) = entry.conn.take() {
                log::info!("node {node_id} moved to another core; closing its connection here");
                entry.idle_since_ms = c.live.last_seen();
                c.outbox.close();
            }
        }
    }

    /// Takes the node as the shared database holds it now (another core
    /// changed it, or a registration is about to be decided). A connection
    /// here, and this core's lockout counts, stay.
    pub fn merge_shared(&self, node_id: u64, shared: Option<SharedNode>) {
        let now_ms = self.clock.now_ms();
        let mut nodes = self.lock();
        let Some(shared) = shared else {
            if nodes.get(&node_id).is_some_and(|e| e.conn.is_none()) {
                if let Some(e) = nodes.remove(&node_id) {
                    if !e.record.approved {
                        self.pending_approvals.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            return;
        };
        let record = shared.node.node;
        let pots: BTreeMap<String, PotRecord> = shared
            .node
            .pots
            .into_iter()
            .take(MAX_POTS_PER_NODE)
            .map(|p| (p.pot_id.clone(), p))
            .collect();
        let (pending_peer, pending_cert) = asks_from(&record);
        match nodes.get_mut(&node_id) {
            Some(entry) => {
                if entry.record.approved != record.approved {
                    if record.approved {
                        self.pending_approvals.fetch_sub(1, Ordering::Relaxed);
                    } else {
                        self.pending_approvals.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let status_changed = entry.record.status != record.status;
                if entry.conn.is_none() {
                    // Another core holds it: what it wrote is news here
                    // too (this core's modules and dashboards).
                    if status_changed {
                        self.publish_status(node_id, record.status);
                    }
                    for p in pots.values() {
                        let known = entry
                            .pots
                            .get(&p.pot_id)
                            .is_some_and(|o| o.updated_at == p.updated_at && o.status == p.status);
                        if !known {
                            self.publish_pot(p);
                        }
                    }
                    entry.record = record;
                } else {
                    // Connected here: this core's view of status and name
                    // is the live one; keys and approvals are shared.
                    entry.record.totp_key = record.totp_key;
                    entry.record.last_totp_step = record.last_totp_step;
                    entry.record.approved = record.approved;
                    entry.record.approved_for = record.approved_for;
                }
                if !pots.is_empty() {
                    entry.pots = pots;
                }
                if pending_peer.is_some() {
                    entry.pending_peer = pending_peer;
                    entry.pending_cert = pending_cert;
                }
            }
            None => {
                if !record.approved {
                    self.pending_approvals.fetch_add(1, Ordering::Relaxed);
                }
                // New here (it registered on another core): its status and
                // pots are news.
                self.publish_status(node_id, record.status);
                pots.values().for_each(|p| self.publish_pot(p));
                nodes.insert(
                    node_id,
                    Box::new(Entry {
                        record,
                        pots,
                        conn: None,
                        lockout: SourceLockouts::default(),
                        idle_since_ms: now_ms,
                        pending_peer,
                        pending_cert,
                    }),
                );
            }
        }
    }

    /// Marks nodes that sent nothing for three heartbeat intervals as
    /// Unknown and closes their connections. Returns how many were marked.
    pub fn sweep(&self) -> usize {
        self.sweep_at(self.clock.now_ms())
    }

    /// [`Registry::sweep`] at `now_ms` on the registry's clock.
    pub(crate) fn sweep_at(&self, now_ms: u64) -> usize {
        let limit = self.policy.heartbeat_interval.as_millis() as u64 * 3;
        let mut nodes = self.lock();
        let mut lost = 0;
        for entry in nodes.values_mut() {
            // A connected node that went silent is lost whatever status it
            // last reported; so is a live one that never came back.
            let watched = entry.conn.is_some() || entry.record.status.is_live();
            if !watched || now_ms.saturating_sub(entry.last_seen_ms()) <= limit {
                continue;
            }
            if entry.conn.is_none() && self.fleet.holder(entry.record.node_id).is_some() {
                // Another live core holds it and keeps its status.
                entry.idle_since_ms = now_ms;
                continue;
            }
            if let Some(c) = entry.conn.take() {
                log::warn!(
                    "node {} sent nothing for {} s; closing its connection",
                    entry.record.node_id,
                    limit / 1000
                );
                entry.idle_since_ms = c.live.last_seen();
                c.outbox.close();
            }
            self.write_status(entry, NodeStatus::Unknown, now_ms);
            lost += 1;
        }
        lost
    }

    /// Queues a message for a connected node.
    pub fn send(&self, node_id: u64, message: CoreMessage) -> Result<(), SendError> {
        let nodes = self.lock();
        let entry = nodes.get(&node_id).ok_or(SendError::UnknownNode)?;
        let conn = entry.conn.as_ref().ok_or(SendError::NotConnected)?;
        conn.outbox.push(message).map_err(|e| match e {
            PushError::Closed => SendError::NotConnected,
            PushError::Full => SendError::Busy,
        })
    }

    /// Queues an `EventAck` for a connected node, or raises the one waiting;
    /// says whether a new message was queued.
    pub fn ack_events(&self, node_id: u64, epoch: u64, seq: u64) -> Result<bool, SendError> {
        let nodes = self.lock();
        let entry = nodes.get(&node_id).ok_or(SendError::UnknownNode)?;
        let conn = entry.conn.as_ref().ok_or(SendError::NotConnected)?;
        if conn.epoch != epoch {
            // Seqs of the node's previous spool, stored after it lost it:
            // they say nothing about the current one's.
            return Ok(false);
        }
        conn.outbox
            .push_ack(EventAck { node_id, seq })
            .map_err(|e| match e {
                PushError::Closed => SendError::NotConnected,
                PushError::Full => SendError::Busy,
            })
    }

    /// Approves a node (approve policy) for the address it asked from, or
    /// refuses when `expected` (what the operator saw) is no longer that
    /// address. Waits for the write.
    pub fn approve(
        &self,
        node_id: u64,
        expected: Option<IpAddr>,
    ) -> Option<Result<Result<NodeView, String>, StoreError>> {
        let (view, receipt) = {
            let mut nodes = self.lock();
            let entry = nodes.get_mut(&node_id)?;
            if let Some(want) = expected {
                if entry.pending_peer != Some(want) {
                    let now = entry
                        .pending_peer
                        .map_or_else(|| "no address".to_string(), |ip| ip.to_string());
                    return Some(Ok(Err(format!(
                        "node {node_id} now asks for approval from {now}, not {want}; look again"
                    ))));
                }
            }
            if !entry.record.approved {
                entry.record.approved = true;
                entry.record.approved_for =
                    binding(entry.pending_peer, entry.pending_cert.as_deref());
                self.pending_approvals.fetch_sub(1, Ordering::Relaxed);
            }
            log::info!(
                "node {node_id} approved for {}",
                entry
                    .record
                    .approved_for
                    .as_deref()
                    .unwrap_or("any address")
            );
            (
                self.view(entry),
                self.store.submit(NodeWrite::Node(entry.record.clone())),
            )
        };
        Some(receipt.wait().map(|_| Ok(view)))
    }

    /// Forgets a node and disconnects it. Waits for the write.
    pub fn delete(&self, node_id: u64) -> Option<Result<(), StoreError>> {
        let receipt = {
            let mut nodes = self.lock();
            let entry = nodes.remove(&node_id)?;
            if !entry.record.approved {
                self.pending_approvals.fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(c) = entry.conn {
                c.outbox.close();
            }
            log::info!("node {node_id} deleted");
            self.store.submit(NodeWrite::Delete(node_id))
        };
        Some(receipt.wait())
    }

    /// Every node, by id.
    pub fn list(&self) -> Vec<NodeView> {
        let nodes = self.lock();
        let mut views: Vec<NodeView> = nodes.values().map(|e| self.view(e)).collect();
        views.sort_by_key(|v| v.node_id);
        views
    }

    /// One node.
    pub fn get(&self, node_id: u64) -> Option<NodeView> {
        self.lock().get(&node_id).map(|e| self.view(e))
    }

    /// A node's name, if the node is known.
    pub fn node_name(&self, node_id: u64) -> Option<String> {
        self.lock()
            .get(&node_id)
            .map(|e| e.record.node_name.clone())
    }

    /// Nodes connected to this core.
    pub fn connected_here(&self) -> u64 {
        self.lock().values().filter(|e| e.conn.is_some()).count() as u64
    }

    /// Connected nodes per core (this one and the others), by name.
    pub fn connected_by_core(&self) -> Vec<(String, u64)> {
        let here = self.fleet.core_name().to_string();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        counts.insert(here.clone(), 0);
        for e in self.lock().values() {
            let core = match &e.conn {
                Some(_) => Some(here.clone()),
                None => self.fleet.holder(e.record.node_id),
            };
            if let Some(core) = core {
                *counts.entry(core).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// Node counts per status, every status listed.
    pub fn status_counts(&self) -> Vec<(NodeStatus, u64)> {
        let nodes = self.lock();
        let mut counts = [0u64; 6];
        for e in nodes.values() {
            counts[status_code(e.record.status) as usize % 6] += 1;
        }
        NodeStatus::ALL.into_iter().zip(counts).collect()
    }

    /// Closes every node connection (shutdown).
    pub fn close_all(&self) {
        for entry in self.lock().values_mut() {
            if let Some(c) = &entry.conn {
                c.outbox.close();
            }
        }
    }

    /// The node events of a node, newest first.
    pub fn node_events(
        &self,
        node_id: u64,
        limit: usize,
    ) -> Result<Vec<NodeEventRecord>, StoreError> {
        self.store.node_events(node_id, limit)
    }

    /// Counts store failures reported by receipts.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn view(&self, e: &Entry) -> NodeView {
        let r = &e.record;
        let remote = match &e.conn {
            Some(_) => None,
            None => self.fleet.holder(r.node_id),
        };
        let last_seen = match &e.conn {
            Some(c) => Some(self.clock.rfc3339(c.live.last_seen())),
            None => r.last_seen.clone(),
        };
        NodeView {
            node_id: r.node_id,
            node_name: r.node_name.clone(),
            address: r.address.clone(),
            port: r.port,
            node_type: r.node_type.as_str(),
            status: r.status.as_str(),
            connected: e.conn.is_some() || remote.is_some(),
            core_name: match &e.conn {
                Some(_) => Some(self.fleet.core_name().to_string()),
                None => remote,
            },
            approved: r.approved,
            agent_version: r.agent_version.clone(),
            capabilities: r.capabilities.clone(),
            peer_address: e.conn.as_ref().map(|c| c.peer.to_string()).or_else(|| {
                // A pending node shows where it asks from: what approval binds to.
                e.pending_peer
                    .filter(|_| !r.approved || r.totp_key.is_none())
                    .map(|ip| ip.to_string())
            }),
            client_cert_sha256: e
                .pending_cert
                .clone()
                .filter(|_| !r.approved || r.totp_key.is_none()),
            registered_at: r.registered_at.clone(),
            last_seen,
            pots: e
                .pots
                .values()
                .map(|p| PotView {
                    pot_id: p.pot_id.clone(),
                    pot_type: p.pot_type.clone(),
                    status: p.status.as_str(),
                    message: p.message.clone(),
                    details: p
                        .details
                        .as_deref()
                        .and_then(|d| serde_json::from_str(d).ok()),
                    updated_at: p.updated_at.clone(),
                })
                .collect(),
        }
    }
}

/// Where an unapproved node asks from, as stored in `approved_for`.
fn asks_from(record: &NodeRecord) -> (Option<IpAddr>, Option<String>) {
    if record.approved && record.totp_key.is_some() {
        return (None, None);
    }
    let Some(binding) = record.approved_for.as_deref() else {
        return (None, None);
    };
    let mut parts = binding.splitn(2, ' ');
    let peer = parts.next().and_then(|p| p.parse().ok());
    let cert = parts
        .next()
        .and_then(|c| c.strip_prefix("sha256:"))
        .map(String::from);
    (peer, cert)
}

fn current(nodes: &mut HashMap<u64, Box<Entry>>, node_id: u64, conn_id: u64) -> Option<&mut Entry> {
    nodes
        .get_mut(&node_id)
        .filter(|e| e.conn.as_ref().is_some_and(|c| c.id == conn_id))
        .map(|e| &mut **e)
}

/// A refusal for a source locked out for `left` more.
pub fn locked(left: Duration) -> Refused {
    refuse(
        RegistrationRefusal::LockedOut,
        format!(
            "too many failed TOTP attempts; locked out for {} s",
            (left.as_millis() as u64).div_ceil(1000).max(1)
        ),
    )
}

#[cfg(test)]
mod tests;
