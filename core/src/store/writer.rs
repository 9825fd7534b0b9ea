//! The one batching writer every backend sits under, and [`Store`], the
//! handle the rest of the core holds.
//!
//! Node writes (registrations, status changes) and attack events wait in two
//! bounded queues. One thread takes whatever is queued, commits it in one
//! transaction, and only then answers the writes' receipts and acknowledges
//! events to their nodes. A full event queue blocks the node poller, which
//! then stops reading from nodes: that is the backpressure, and nothing is
//! dropped. A batch that fails stays queued and is retried, so an event is
//! never acknowledged before it is durable. Replays (a `seq` at or below the
//! node's stored mark) are acknowledged again and stored once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;

use crate::geo::{Cache, Enricher};
use crate::metrics::Metrics;
use crate::store::backend::{Backend, Reader, Retention, SeqMark, Transaction};
use crate::store::event_row::EventRecord;
use crate::store::rollup::Pending;
use crate::store::{
    AckSink, EventFilter, EventStats, EventStore, NodeEventRecord, NodeRecord, NodeStore,
    NodeWrite, Receipt, StatsQuery, StoreError, StoredEvent, StoredNode, StoredSink,
};

/// Writes queued for the writer (registrations, status changes); a full
/// queue fails the write rather than blocking a connection task. Sized for
/// the thousands of nodes that register at once when a core of a fleet dies
/// (a write holds a node record, well under 1 KiB: at most a few MiB).
const QUEUE: usize = 8192;
/// Most node writes in one transaction.
const BATCH: usize = 512;
/// Attack events queued for the writer; a full queue blocks the node poller.
pub const EVENT_QUEUE: usize = 8192;
/// Most events in one transaction.
pub const EVENT_BATCH: usize = 4096;
/// The longest a failing backend is retried after; the first retry waits
/// 100 ms and each next one twice as long.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// A node write, or `None`: commit the summaries of every stored event now.
type Job = (
    Option<NodeWrite>,
    async_channel::Sender<Result<(), StoreError>>,
);

/// How long events may wait to be counted in the summary tables. Their
/// distinct values are written once per this, not once per batch (a batch
/// of attack traffic touches thousands of rows); statistics ask for the
/// wait to end first, and after a crash the store counts the events it
/// holds beyond its mark (`Transaction::summarize`).
const SUMMARIZE_EVERY: Duration = Duration::from_secs(5);
/// Or as soon as this many summary rows wait.
const SUMMARIZE_ROWS: usize = 100_000;

/// The core's store: queues in front of one writer thread, and a reader.
pub struct Store {
    jobs: async_channel::Sender<Job>,
    events: async_channel::Sender<EventRecord>,
    reader: Box<dyn Reader>,
    writer: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<WriterShared>,
}

/// What the writer thread shares with the store handle.
struct WriterShared {
    acks: OnceLock<AckSink>,
    /// Where sources are looked up, when enrichment is on.
    enricher: OnceLock<Arc<Enricher>>,
    stored: OnceLock<StoredSink>,
    metrics: Arc<Metrics>,
    retention: Retention,
    /// Why the last batch failed; `None` while commits succeed.
    failing: Mutex<Option<String>>,
    /// Whether this core runs retention (one core of a fleet does).
    retention_active: std::sync::atomic::AtomicBool,
    /// Whether stored events wait to be counted in the summaries.
    unsummarized: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Starts the writer thread over `backend`; reads go to `reader`.
    pub fn start(
        backend: Box<dyn Backend>,
        reader: Box<dyn Reader>,
        retention: Retention,
        metrics: Arc<Metrics>,
    ) -> Result<Store, StoreError> {
        let (jobs, job_queue) = async_channel::bounded::<Job>(QUEUE);
        let (events, event_queue) = async_channel::bounded::<EventRecord>(EVENT_QUEUE);
        let shared = Arc::new(WriterShared {
            acks: OnceLock::new(),
            enricher: OnceLock::new(),
            stored: OnceLock::new(),
            metrics,
            retention,
            failing: Mutex::new(None),
            retention_active: std::sync::atomic::AtomicBool::new(true),
            unsummarized: std::sync::atomic::AtomicBool::new(false),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || Writer::new(backend, job_queue, event_queue, shared).run())
                .map_err(|e| StoreError(format!("starting the store writer: {e}")))?
        };
        Ok(Store {
            jobs,
            events,
            reader,
            writer: Mutex::new(Some(writer)),
            shared,
        })
    }

    /// Looks up every stored event's source in `enricher` from now on
    /// (once, at startup). The lookups run on the writer thread, a batch at
    /// a time, never on the threads that read from nodes.
    pub fn set_enricher(&self, enricher: Arc<Enricher>) {
        if self.shared.enricher.set(enricher).is_err() {
            log::warn!("store: enrichment already set");
        }
    }

    /// Looks up one node directly in the database.
    pub fn node(&self, node_id: u64) -> Result<Option<NodeRecord>, StoreError> {
        self.reader.node(node_id)
    }

    /// Runs retention from now on (or not): in a fleet, only the leader does.
    pub fn set_retention_active(&self, active: bool) {
        let was = self.shared.retention_active.swap(active, Ordering::Relaxed);
        if active && !was {
            // A new leader applies what is due now, not at its writer's next
            // tick a minute away: an empty job makes the writer commit.
            let (done, _) = async_channel::bounded(1);
            let _ = self.jobs.try_send((None, done));
        }
    }

    /// Why the last commit failed, while commits fail (for `/health`).
    pub fn failing(&self) -> Option<String> {
        lock(&self.shared.failing).clone()
    }
}

/// Whether retention is due at `now`: at the first commit, then every
/// `every`.
fn retention_due(last: Option<Instant>, now: Instant, every: Duration) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= every)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NodeStore for Store {
    fn load_nodes(&self) -> Result<Vec<StoredNode>, StoreError> {
        self.reader.load_nodes()
    }

    fn submit(&self, write: NodeWrite) -> Receipt {
        let (done, receipt) = async_channel::bounded(1);
        // Never blocks the caller (an executor thread): a full queue fails
        // the write loudly instead.
        if let Err(e) = self.jobs.try_send((Some(write), done)) {
            let why = if e.is_full() {
                "the store's write queue is full"
            } else {
                "the store is shutting down"
            };
            let (_, done) = e.into_inner();
            let _ = done.try_send(Err(StoreError(why.into())));
        }
        Receipt(receipt)
    }

    fn node_events(&self, node_id: u64, limit: usize) -> Result<Vec<NodeEventRecord>, StoreError> {
        self.reader.node_events(node_id, limit)
    }

    fn close(&self) {
        self.jobs.close();
        self.events.close();
        let handle = lock(&self.writer).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl EventStore for Store {
    fn append(&self, event: EventRecord) -> Result<(), StoreError> {
        self.shared
            .metrics
            .events_received
            .fetch_add(1, Ordering::Relaxed);
        self.events
            .send_blocking(event)
            .map_err(|_| StoreError("the store is shutting down".into()))
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        self.reader.events(filter)
    }

    fn stats(&self, query: &StatsQuery) -> Result<EventStats, StoreError> {
        // Events stored but not yet in the summaries are counted first.
        if self.shared.unsummarized.load(Ordering::Relaxed) {
            let (done, receipt) = async_channel::bounded(1);
            if self.jobs.try_send((None, done)).is_ok() {
                // A store that cannot write still answers reads.
                if let Err(e) = Receipt(receipt).wait() {
                    log::debug!("store: writing the summaries before statistics: {e}");
                }
            }
        }
        self.reader.stats(query)
    }

    fn on_stored(&self, sink: StoredSink) {
        if self.shared.stored.set(sink).is_err() {
            log::warn!("store: stored events already routed");
        }
    }

    fn on_commit(&self, sink: AckSink) {
        if self.shared.acks.set(sink).is_err() {
            log::warn!("store: commit acknowledgements already routed");
        }
    }
}

/// The writer thread: waits for node writes or events, commits everything
/// queued in one transaction, then answers receipts and acknowledges events.
struct Writer {
    backend: Box<dyn Backend>,
    jobs: async_channel::Receiver<Job>,
    events: async_channel::Receiver<EventRecord>,
    shared: Arc<WriterShared>,
    /// When retention last ran; `None` before the first run.
    last_retention: Option<Instant>,
    /// Each node's replay mark, as committed by this writer. In a
    /// database no other core writes, this is the truth and the backend is
    /// asked only about nodes not in here.
    seqs: HashMap<u64, SeqMark>,
    /// How long to wait before retrying a failed batch.
    retry_wait: Duration,
    /// Recent sources and what enrichment found for them.
    geo_cache: Cache,
    /// How many of the queued events were looked up already (a failed
    /// batch keeps its events for the next try).
    enriched: usize,
    /// Committed events not yet in the summary tables, and the last id.
    pending: Pending,
    pending_upto: i64,
    /// The batch's events counted into `pending` (taken back if it fails).
    counted: Vec<usize>,
    /// When the oldest of them was committed.
    pending_since: Option<Instant>,
    /// The queues closed: this is the last commit.
    closing: bool,
}

// An event waits here only on its way into the batch.
#[allow(clippy::large_enum_variant)]
enum Work {
    Job(Job),
    Event(EventRecord),
    Tick,
    Closed,
}

/// What one committed batch did.
#[derive(Default)]
struct Outcome {
    /// Highest `seq` per node and spool epoch among the batch's events
    /// (stored or replayed).
    acks: HashMap<(u64, u64), u64>,
    /// Marks the batch raised.
    raised: HashMap<u64, SeqMark>,
    /// Which of the batch's events were stored (not replays).
    fresh: Vec<usize>,
    /// Whether the batch wrote every waiting summary.
    summarized: bool,
    /// Their ids.
    ids: Vec<i64>,
    stored: u64,
    expired: u64,
}

impl Writer {
    fn new(
        backend: Box<dyn Backend>,
        jobs: async_channel::Receiver<Job>,
        events: async_channel::Receiver<EventRecord>,
        shared: Arc<WriterShared>,
    ) -> Writer {
        Writer {
            backend,
            jobs,
            events,
            shared,
            // Retention runs once at start (a core that was down a week must
            // not wait a minute to drop what expired meanwhile).
            last_retention: None,
            seqs: HashMap::new(),
            retry_wait: Duration::ZERO,
            geo_cache: Cache::default(),
            enriched: 0,
            pending: Pending::default(),
            pending_upto: 0,
            counted: Vec::new(),
            pending_since: None,
            closing: false,
        }
    }

    fn run(mut self) {
        let mut jobs: Vec<Job> = Vec::new();
        let mut events: Vec<EventRecord> = Vec::new();
        self.commit(&mut jobs, &mut events);
        loop {
            match async_io::block_on(self.next()) {
                Work::Job(job) => jobs.push(job),
                Work::Event(e) => events.push(e),
                Work::Tick => {}
                Work::Closed => {
                    if !events.is_empty() {
                        // Never acknowledged: their nodes still spool them
                        // and send them again to whichever core they reach.
                        log::warn!(
                            "store: stopping with {} events not stored (not acknowledged)",
                            events.len()
                        );
                    }
                    if self.pending_since.is_some() {
                        self.closing = true;
                        self.commit(&mut jobs, &mut events);
                    }
                    break;
                }
            }
            while jobs.len() < BATCH {
                match self.jobs.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            while events.len() < EVENT_BATCH {
                match self.events.try_recv() {
                    Ok(e) => events.push(e),
                    Err(_) => break,
                }
            }
            self.commit(&mut jobs, &mut events);
        }
    }

    async fn next(&self) -> Work {
        if !self.retry_wait.is_zero() {
            if self.jobs.is_closed() {
                return Work::Closed;
            }
            Timer::after(self.retry_wait).await;
            return Work::Tick;
        }
        let job = async {
            match self.jobs.recv().await {
                Ok(j) => Work::Job(j),
                // Both queues close together: drain events, then stop.
                Err(_) => match self.events.try_recv() {
                    Ok(e) => Work::Event(e),
                    Err(_) => Work::Closed,
                },
            }
        };
        let event = async {
            match self.events.recv().await {
                Ok(e) => Work::Event(e),
                Err(_) => future::pending().await,
            }
        };
        let every = self.shared.retention.every;
        let wait = match self.pending_since {
            Some(since) => SUMMARIZE_EVERY.saturating_sub(since.elapsed()).min(every),
            None => every,
        };
        let tick = async {
            Timer::after(wait).await;
            Work::Tick
        };
        future::or(job, future::or(event, tick)).await
    }

    /// Looks up the sources of the events not looked up yet.
    fn enrich(&mut self, events: &mut [EventRecord]) {
        let Some(enricher) = self.shared.enricher.get() else {
            return;
        };
        for e in events.iter_mut().skip(self.enriched) {
            if let Some(src) = &e.src_ip {
                e.geo = self.geo_cache.lookup(enricher, src);
            }
        }
        self.enriched = events.len();
    }

    fn commit(&mut self, jobs: &mut Vec<Job>, events: &mut Vec<EventRecord>) {
        self.enrich(events);
        let now = Instant::now();
        let retention_due = retention_due(self.last_retention, now, self.shared.retention.every)
            && self.shared.retention_active.load(Ordering::Relaxed);
        let result = self.transaction(jobs, events, retention_due);
        if retention_due {
            self.last_retention = Some(now);
        }
        let m = &self.shared.metrics;
        let receipt = match result {
            Ok(outcome) => {
                if outcome.summarized {
                    self.pending.clear();
                    self.pending_since = None;
                    self.shared.unsummarized.store(false, Ordering::Relaxed);
                } else if !self.counted.is_empty() {
                    self.pending_since.get_or_insert_with(Instant::now);
                    self.shared.unsummarized.store(true, Ordering::Relaxed);
                }
                if let Some(&last) = outcome.ids.last() {
                    self.pending_upto = self.pending_upto.max(last);
                }
                self.counted.clear();
                self.seqs.extend(outcome.raised);
                m.events_stored.fetch_add(outcome.stored, Ordering::Relaxed);
                m.events_duplicate
                    .fetch_add(events.len() as u64 - outcome.stored, Ordering::Relaxed);
                m.events_expired
                    .fetch_add(outcome.expired, Ordering::Relaxed);
                if let Some(sink) = self.shared.stored.get() {
                    let fresh: Vec<(&EventRecord, i64)> = outcome
                        .fresh
                        .iter()
                        .zip(&outcome.ids)
                        .filter_map(|(&i, &id)| Some((events.get(i)?, id)))
                        .collect();
                    if !fresh.is_empty() {
                        sink(&fresh);
                    }
                }
                if let Some(sink) = self.shared.acks.get() {
                    for ((node, epoch), seq) in outcome.acks {
                        sink(node, epoch, seq);
                    }
                }
                events.clear();
                self.enriched = 0;
                if lock(&self.shared.failing).take().is_some() {
                    log::info!("store: writing again");
                }
                self.retry_wait = Duration::ZERO;
                Ok(())
            }
            Err(e) => {
                // The batch is not stored: take its events back out of the
                // waiting summaries (they are counted again on the retry).
                let counted: Vec<&EventRecord> =
                    self.counted.iter().filter_map(|&i| events.get(i)).collect();
                self.pending.count(&counted, -1);
                self.counted.clear();
                m.store_errors.fetch_add(1, Ordering::Relaxed);
                log::error!("store: {e}");
                *lock(&self.shared.failing) = Some(e.0.clone());
                // Events stay queued here (never acknowledged, never lost
                // while the core runs); the next batch retries them. The
                // cache of marks may be stale if the database was replaced.
                if self.backend.shared() {
                    self.seqs.clear();
                }
                self.retry_wait =
                    (self.retry_wait * 2).clamp(Duration::from_millis(100), MAX_RETRY_WAIT);
                Err(e)
            }
        };
        for (_, done) in jobs.drain(..) {
            let _ = done.try_send(receipt.clone());
        }
    }

    /// One batch in one transaction: node writes, events that are not
    /// replays, raised marks, and retention when due.
    fn transaction(
        &mut self,
        jobs: &[Job],
        events: &[EventRecord],
        retention_due: bool,
    ) -> Result<Outcome, StoreError> {
        let shared = self.backend.shared();
        let retention = self.shared.retention;
        let mut tx = self.backend.begin()?;
        let mut asked = false;
        for (write, _) in jobs {
            match write {
                Some(w) => tx.apply(w)?,
                None => asked = true,
            }
        }
        let marks = marks_for(&mut *tx, &self.seqs, shared, events)?;
        let (fresh, outcome) = replay_filter(events, &marks);
        let ids = if fresh.is_empty() {
            Vec::new()
        } else {
            tx.insert(&fresh)?
        };
        if !outcome.raised.is_empty() {
            tx.raise_marks(&outcome.raised)?;
        }
        let mut outcome = outcome;
        self.pending.count(&fresh, 1);
        self.counted.clone_from(&outcome.fresh);
        // Summaries go with this batch when other cores write too (their
        // stats must see it), when asked, before retention (which takes
        // deleted events out of them), or when enough waited.
        let due = shared
            || asked
            || self.closing
            || retention_due
            || self
                .pending_since
                .is_some_and(|t| t.elapsed() >= SUMMARIZE_EVERY)
            || self.pending.len() >= SUMMARIZE_ROWS;
        let upto = ids.last().copied().unwrap_or(0).max(self.pending_upto);
        if due {
            tx.summarize(&self.pending.to_delta(), upto)?;
            outcome.summarized = true;
        }
        outcome.ids = ids;
        if retention_due {
            let now_us = honeybee_proto::time::now_unix().0.saturating_mul(1_000_000);
            outcome.expired = tx.expire(now_us, &retention)?;
        }
        tx.commit()?;
        Ok(outcome)
    }
}

/// The stored marks of the batch's nodes: from the cache where this writer
/// alone writes, otherwise (and for nodes the cache lacks) from the backend.
fn marks_for(
    tx: &mut dyn Transaction,
    cache: &HashMap<u64, SeqMark>,
    shared: bool,
    events: &[EventRecord],
) -> Result<HashMap<u64, SeqMark>, StoreError> {
    let mut nodes: Vec<u64> = events
        .iter()
        .filter(|e| e.seq.is_some())
        .map(|e| e.node_id)
        .filter(|n| shared || !cache.contains_key(n))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut marks = if nodes.is_empty() {
        HashMap::new()
    } else {
        tx.seq_marks(&nodes)?
    };
    if !shared {
        for e in events {
            if let Some(&m) = cache.get(&e.node_id) {
                marks.insert(e.node_id, m);
            }
        }
    }
    Ok(marks)
}

/// Splits a batch into the events to store and the replays (a `seq` at or
/// below the node's mark in the same spool epoch, or repeated within the
/// batch). Pure, so that the rule every backend relies on is tested
/// without a database.
///
/// An event of another epoch than the mark's moves the mark to its epoch:
/// the node lost its spool and numbers from 1 again. Were the old epoch's
/// in-flight events to follow, they would be stored again: a duplicate at
/// worst, never a new event taken for a replay.
fn replay_filter<'a>(
    events: &'a [EventRecord],
    marks: &HashMap<u64, SeqMark>,
) -> (Vec<&'a EventRecord>, Outcome) {
    let mut outcome = Outcome::default();
    let mut fresh = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if let Some(seq) = e.seq {
            let top = outcome.acks.entry((e.node_id, e.epoch)).or_insert(seq);
            *top = (*top).max(seq);
            let mark = outcome.raised.get(&e.node_id).or(marks.get(&e.node_id));
            if mark.is_some_and(|m| m.epoch == e.epoch && seq <= m.seq) {
                continue; // a replay: acknowledged again, stored once
            }
            let epoch = e.epoch;
            outcome.raised.insert(e.node_id, SeqMark { epoch, seq });
        }
        outcome.fresh.push(i);
        fresh.push(e);
    }
    outcome.stored = fresh.len() as u64;
    (fresh, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_runs_at_start_then_every_interval() {
        let every = Duration::from_secs(60);
        let t0 = Instant::now();
        assert!(retention_due(None, t0, every), "at the first commit");
        assert!(!retention_due(Some(t0), t0, every));
        assert!(!retention_due(
            Some(t0),
            t0 + Duration::from_secs(59),
            every
        ));
        assert!(retention_due(Some(t0), t0 + every, every));
        // A clock read before `last` (another thread's) is not due.
        assert!(!retention_due(Some(t0 + every), t0, every));
    }

    fn event(node_id: u64, seq: Option<u64>) -> EventRecord {
        EventRecord {
            node_id,
            seq,
            epoch: 0,
            pot_id: "p".into(),
            pot_type: "t".into(),
            event_type: "e.x".into(),
            timestamp: "t".into(),
            time_us: 0,
            src_ip: None,
            src_port: None,
            dst_port: None,
            protocol: None,
            username: None,
            password: None,
            input: None,
            data: "{}".into(),
            geo: Default::default(),
        }
    }

    #[test]
    fn replays_at_or_below_the_mark_and_within_a_batch_are_acked_but_not_stored() {
        let events = [
            event(1, Some(4)),
            event(1, Some(5)),
            event(1, Some(6)),
            event(1, Some(6)),
            event(2, Some(1)),
            event(3, None),
            event(3, None),
        ];
        let marks = HashMap::from([(1, mark(0, 5))]);
        let (fresh, outcome) = replay_filter(&events, &marks);
        let kept: Vec<_> = fresh.iter().map(|e| (e.node_id, e.seq)).collect();
        assert_eq!(
            kept,
            vec![(1, Some(6)), (2, Some(1)), (3, None), (3, None)],
            "unsequenced events are always stored"
        );
        assert_eq!(outcome.stored, 4);
        assert_eq!(outcome.acks, HashMap::from([((1, 0), 6), ((2, 0), 1)]));
        assert_eq!(
            outcome.raised,
            HashMap::from([(1, mark(0, 6)), (2, mark(0, 1))])
        );
    }

    fn mark(epoch: u64, seq: u64) -> SeqMark {
        SeqMark { epoch, seq }
    }

    fn in_epoch(epoch: u64, seq: u64) -> EventRecord {
        EventRecord {
            epoch,
            ..event(1, Some(seq))
        }
    }

    /// A node that lost its spool numbers from 1 again in a new epoch:
    /// its events are new, not replays of the old epoch's first ones.
    #[test]
    fn a_new_spool_epoch_starts_counting_again_and_its_replays_are_still_caught() {
        let events = [
            in_epoch(9, 1),
            in_epoch(9, 2),
            in_epoch(9, 2),
            in_epoch(9, 1),
        ];
        let marks = HashMap::from([(1, mark(4, 5000))]);
        let (fresh, outcome) = replay_filter(&events, &marks);
        let kept: Vec<_> = fresh.iter().map(|e| (e.epoch, e.seq)).collect();
        assert_eq!(kept, vec![(9, Some(1)), (9, Some(2))]);
        assert_eq!(outcome.raised, HashMap::from([(1, mark(9, 2))]));
        assert_eq!(outcome.acks, HashMap::from([((1, 9), 2)]));

        // The new epoch's mark catches its replays after a reconnect; the
        // old epoch's stragglers are stored (a duplicate at worst) and
        // acknowledged in their own epoch only.
        let stragglers = [in_epoch(9, 2), in_epoch(4, 5001)];
        let (fresh, outcome) = replay_filter(&stragglers, &outcome.raised);
        let kept: Vec<_> = fresh.iter().map(|e| (e.epoch, e.seq)).collect();
        assert_eq!(kept, vec![(4, Some(5001))]);
        assert_eq!(outcome.acks, HashMap::from([((1, 9), 2), ((1, 4), 5001)]));
    }
}
