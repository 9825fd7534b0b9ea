//! What the core keeps: nodes, their pots and node events, and attack events.
//!
//! The rest of the core sees [`NodeStore`] and [`EventStore`], both served by
//! one [`Store`]: bounded queues in front of the one batching [`writer`]
//! thread. Under it a [`backend`] is a database: the embedded [`sqlite`]
//! (the default) or a PostgreSQL server shared by several cores.

pub mod backend;
pub mod event_row;
pub mod postgres;
pub mod rollup;
pub mod sqlite;
pub mod stats;
pub mod writer;

pub use backend::Retention;
pub use stats::{EventStats, StatsQuery};
pub use writer::Store;

use std::fmt;

use honeybee_proto::{NodeStatus, NodeType, PotStatus};

/// A node as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Any u64.
    pub node_id: u64,
    /// Name the node gave.
    pub node_name: String,
    /// Address the node reported.
    pub address: String,
    /// Port the node reported.
    pub port: u16,
    /// Full or Agent.
    pub node_type: NodeType,
    /// Last known status.
    pub status: NodeStatus,
    /// False while waiting for an operator (approve policy).
    pub approved: bool,
    /// The TOTP key; `None` until the first accepted registration.
    pub totp_key: Option<Vec<u8>>,
    /// Newest TOTP step accepted; older and equal steps are replays.
    pub last_totp_step: Option<u64>,
    /// Version string the agent sent.
    pub agent_version: Option<String>,
    /// Capabilities the node advertised.
    pub capabilities: Vec<String>,
    /// First registration (RFC 3339).
    pub registered_at: String,
    /// Last message seen (RFC 3339), as of the last write.
    pub last_seen: Option<String>,
    /// What an operator's approval binds to, until the node has its key:
    /// the address it asked from, and under mTLS ` sha256:<hex>` of its
    /// client certificate after it. Kept so that a core restart between the
    /// approval and the node's registration does not lift the binding.
    pub approved_for: Option<String>,
}

// The TOTP key is a secret: never in logs.
impl fmt::Debug for NodeRecord {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("NodeRecord")
            .field("node_id", &self.node_id)
            .field("node_name", &self.node_name)
            .field("status", &self.status)
            .field("approved", &self.approved)
            .field("totp_key", &self.totp_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A pot on a node.
#[derive(Clone, Debug, PartialEq)]
pub struct PotRecord {
    /// The node.
    pub node_id: u64,
    /// The pot.
    pub pot_id: String,
    /// Its type.
    pub pot_type: String,
    /// Its state.
    pub status: PotStatus,
    /// The node's message.
    pub message: Option<String>,
    /// Command details, as JSON text.
    pub details: Option<String>,
    /// When this was reported (RFC 3339).
    pub updated_at: String,
}

/// A `NodeEvent` as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEventRecord {
    /// The node.
    pub node_id: u64,
    /// `Started`, `Stopped`, `Alarm`, `Error` or what the node sent.
    pub kind: String,
    /// The node's message.
    pub message: Option<String>,
    /// The node's description.
    pub description: Option<String>,
    /// When it arrived (RFC 3339).
    pub time: String,
}

/// A node with its pots, as loaded at startup.
#[derive(Clone, Debug)]
pub struct StoredNode {
    /// The node.
    pub node: NodeRecord,
    /// Its pots.
    pub pots: Vec<PotRecord>,
}

/// One change to stored state.
#[derive(Clone, Debug)]
pub enum NodeWrite {
    /// Insert or replace a node.
    Node(NodeRecord),
    /// Update status and last seen.
    Status {
        /// The node.
        node_id: u64,
        /// New status.
        status: NodeStatus,
        /// When (RFC 3339).
        last_seen: String,
    },
    /// Insert or replace a pot.
    Pot(PotRecord),
    /// Append a node event (older ones beyond the per-node bound are pruned).
    Event(NodeEventRecord),
    /// Forget a node, its pots and events.
    Delete(u64),
}

/// A store failure, with what was being done.
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// Proof that a write was handed to the store; await it for durability.
#[derive(Debug)]
pub struct Receipt(pub(crate) async_channel::Receiver<Result<(), StoreError>>);

impl Receipt {
    /// Waits until the write's transaction has committed.
    pub async fn committed(self) -> Result<(), StoreError> {
        match self.0.recv().await {
            Ok(r) => r,
            Err(_) => Err(StoreError(
                "store stopped before the write committed".into(),
            )),
        }
    }

    /// Blocking form of [`Receipt::committed`], for API threads.
    pub fn wait(self) -> Result<(), StoreError> {
        match self.0.recv_blocking() {
            Ok(r) => r,
            Err(_) => Err(StoreError(
                "store stopped before the write committed".into(),
            )),
        }
    }
}

/// Nodes, their pots and their events.
pub trait NodeStore: Send + Sync {
    /// Every node with its pots.
    fn load_nodes(&self) -> Result<Vec<StoredNode>, StoreError>;
    /// Queues a write; the receipt resolves once it is committed. Writes are
    /// applied in submission order.
    fn submit(&self, write: NodeWrite) -> Receipt;
    /// The newest `limit` events of a node, newest first.
    fn node_events(&self, node_id: u64, limit: usize) -> Result<Vec<NodeEventRecord>, StoreError>;
    /// Commits everything queued and stops the writer.
    fn close(&self);
}

/// Which events to read (the REST API's filters), newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this node.
    pub node_id: Option<u64>,
    /// Only this pot.
    pub pot_id: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this source address.
    pub src_ip: Option<String>,
    /// Only sources in this country (ISO code, upper case).
    pub country: Option<String>,
    /// Only sources in this autonomous system.
    pub asn: Option<i64>,
    /// Not before (unix microseconds).
    pub since_us: Option<i64>,
    /// Not after (unix microseconds).
    pub until_us: Option<i64>,
    /// Only events older than this id (the paging cursor).
    pub before_id: Option<i64>,
    /// Only events newer than this id, oldest first (a stream resuming
    /// after a cursor); the order is then reversed.
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// An event as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Store-assigned, increasing in arrival order.
    pub id: i64,
    /// The node.
    pub node_id: u64,
    /// The node's sequence number.
    pub seq: Option<u64>,
    /// The pot.
    pub pot_id: String,
    /// The pot's type.
    pub pot_type: String,
    /// Event type.
    pub event_type: String,
    /// As sent.
    pub timestamp: String,
    /// `data` as JSON text.
    pub data: String,
    /// Where the source is, as stored at ingest.
    pub geo: crate::geo::Geo,
}

/// Called after a commit with each node, spool epoch and the highest `seq`
/// committed in it.
pub type AckSink = Box<dyn Fn(u64, u64, u64) + Send + Sync>;

/// Called after a commit with the events it stored (replays left out) and
/// their ids, in the order they were stored: what the live stream publishes.
pub type StoredSink = Box<dyn Fn(&[(&crate::store::event_row::EventRecord, i64)]) + Send + Sync>;

/// Attack events.
pub trait EventStore: Send + Sync {
    /// Queues an event for the writer. Blocks while the queue is full: the
    /// caller (the node poller) then stops reading from nodes, which is the
    /// backpressure. Fails only once the store is closed.
    fn append(&self, event: crate::store::event_row::EventRecord) -> Result<(), StoreError>;
    /// Events matching `filter`, newest first.
    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError>;
    /// Sets where commit acknowledgements go (once, at startup).
    fn on_commit(&self, sink: AckSink);
    /// Sets where stored events go after each commit (once, at startup).
    fn on_stored(&self, sink: StoredSink);
    /// Totals, the range's series, the last hour per minute, and the top
    /// values of the range.
    fn stats(&self, query: &StatsQuery) -> Result<EventStats, StoreError>;
}
