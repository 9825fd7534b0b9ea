//! The narrow interface a database implements to hold the core's state.
//!
//! Everything that is the same for every database lives once, in the
//! [`writer`](crate::store::writer): the bounded queues and their
//! backpressure, batching, replay detection by `seq`, acknowledgement after
//! commit, metrics and the retention timer. A backend only opens a
//! transaction and does what it is told inside it ([`Backend`],
//! [`Transaction`]), and answers reads ([`Reader`]).

use std::collections::HashMap;

use crate::store::event_row::EventRecord;
use crate::store::rollup::Delta;
use crate::store::{
    EventFilter, EventStats, NodeEventRecord, NodeRecord, NodeWrite, StatsQuery, StoreError,
    StoredEvent, StoredNode,
};

/// How long events are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Days; 0 keeps events forever.
    pub days: u64,
    /// Most events kept; 0 is no cap.
    pub max_events: u64,
    /// Most bytes the events may take on disk; 0 is no cap.
    pub max_bytes: u64,
    /// How often the caps are applied while the core runs (and once at
    /// start).
    pub every: std::time::Duration,
}

/// How often retention runs unless configured.
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: 0,
            max_events: 0,
            max_bytes: 0,
            every: RETENTION_EVERY,
        }
    }
}

/// Node events kept per node; older ones are pruned as new ones arrive.
pub const EVENTS_PER_NODE: i64 = 1000;

/// A database the writer thread commits to. Owned by that thread alone.
pub trait Backend: Send {
    /// Opens a transaction for one batch.
    fn begin(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError>;
    /// Whether other cores write to the same database: then every batch
    /// must read the stored `seq` marks of its nodes (under a lock), since
    /// another core may have stored events of the same node meanwhile.
    fn shared(&self) -> bool;
}

/// A node's replay mark: the highest stored `seq` of the spool epoch whose
/// events it stored last. A `seq` of another epoch is never a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqMark {
    /// `NodeRegistration.spool_epoch` (0 when the node sends none).
    pub epoch: u64,
    /// The highest stored `seq` in it.
    pub seq: u64,
}

/// One batch's transaction. Nothing is visible to readers, nor acknowledged,
/// before [`Transaction::commit`] returned.
pub trait Transaction {
    /// Applies one node write.
    fn apply(&mut self, write: &NodeWrite) -> Result<(), StoreError>;
    /// The highest stored `seq` of each of `nodes` that has one. In a shared
    /// database the marks stay locked until the transaction ends, so two
    /// cores storing events of the same node store each `seq` once.
    fn seq_marks(&mut self, nodes: &[u64]) -> Result<HashMap<u64, SeqMark>, StoreError>;
    /// Stores events that are not replays (the writer checked them);
    /// returns their ids, in order. Ids grow in commit order across every
    /// core that writes to the database: they are the live stream's cursors.
    fn insert(&mut self, events: &[&EventRecord]) -> Result<Vec<i64>, StoreError>;
    /// Adds `delta` to the summary tables ([`crate::store::rollup`]): the
    /// counts of every event stored up to id `upto` that were not added
    /// yet. A backend that only this writer uses records `upto`, and when
    /// it opens counts the events stored after it (those a crash kept out
    /// of the summaries).
    fn summarize(&mut self, delta: &Delta, upto: i64) -> Result<(), StoreError>;
    /// Records new marks.
    fn raise_marks(&mut self, marks: &HashMap<u64, SeqMark>) -> Result<(), StoreError>;
    /// Drops what `retention` no longer keeps as of `now_us`, taking each
    /// deleted event out of the summary tables; how many went.
    fn expire(&mut self, now_us: i64, retention: &Retention) -> Result<u64, StoreError>;
    /// Makes the batch durable.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Reads, from any thread (the API's, the stream's).
pub trait Reader: Send + Sync {
    /// Every node with its pots.
    fn load_nodes(&self) -> Result<Vec<StoredNode>, StoreError>;
    /// One node, as stored now.
    fn node(&self, node_id: u64) -> Result<Option<NodeRecord>, StoreError>;
    /// The newest `limit` node events of a node, newest first.
    fn node_events(&self, node_id: u64, limit: usize) -> Result<Vec<NodeEventRecord>, StoreError>;
    /// Events matching `filter`, newest first.
    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError>;
    /// See [`EventStats`].
    fn stats(&self, query: &StatsQuery) -> Result<EventStats, StoreError>;
}
