//! PostgreSQL, shared by several cores: the same [`Store`] as SQLite, over a
//! backend that several writers may use at once.
//!
//! The client is the blocking `postgres` crate (a `tokio-postgres` with its
//! own small runtime per connection). It fits the smol core the way SQLite
//! does: the writer thread owns one connection, readers share another behind
//! a lock, and no async task ever waits on the database. A connection that
//! breaks is opened again on next use; the writer retries its batch with
//! backoff meanwhile, so nothing is acknowledged that is not committed.

pub mod conn;
pub mod events;
pub mod schema;
pub mod tls;
pub mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use honeybee_proto::{NodeStatus, NodeType, PotStatus};
use postgres::{Client, GenericClient, NoTls};

use crate::fleet::notice::Notice;
use crate::metrics::Metrics;
use crate::store::backend::{Backend, Reader, Retention, SeqMark, Transaction, EVENTS_PER_NODE};
use crate::store::event_row::EventRecord;
use crate::store::rollup::Delta;
use crate::store::writer::Store;
use crate::store::{
    EventFilter, EventStats, NodeEventRecord, NodeRecord, NodeWrite, PotRecord, StatsQuery,
    StoreError, StoredEvent, StoredNode,
};
use conn::{on_connection, Conn};
use events::text;
use url::{PgUrl, SslMode};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between connection attempts at start.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Opens a connection to `url`. The error names the URL without its
/// password, and says what the server answered.
pub fn connect(url: &PgUrl) -> Result<Client, String> {
    connect_as(url, "honeybee-core")
}

/// [`connect`] under another `application_name` (the fleet listener names
/// its core, so that every core can see who holds the leader's lock).
pub fn connect_as(url: &PgUrl, application_name: &str) -> Result<Client, String> {
    let mut config = url.config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name(application_name);
    let result = if url.ssl_mode == SslMode::Disable {
        config.connect(NoTls)
    } else {
        config.connect(tls::connector(url)?)
    };
    result.map_err(|e| format!("connecting to {url}: {}", describe(&e)))
}

/// A postgres error with the server's message when there is one.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Connects (retrying with backoff while the database cannot be reached or
/// refuses us), migrates the schema, and starts the writer. A schema newer
/// than this core's is not retried: that needs an operator.
pub fn open(
    url: &PgUrl,
    core_name: &str,
    retention: Retention,
    metrics: Arc<Metrics>,
    stop: &dyn Fn() -> bool,
) -> Result<Store, StoreError> {
    let mut wait = Duration::from_secs(1);
    let mut client = loop {
        match connect(url) {
            Ok(c) => break c,
            Err(e) if stop() => return Err(StoreError(e)),
            Err(e) => {
                log::error!("store: {e}; retrying in {}s", wait.as_secs());
                let until = std::time::Instant::now() + wait;
                while std::time::Instant::now() < until && !stop() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    };
    schema::migrate(&mut client).map_err(StoreError)?;
    {
        let now_us = honeybee_proto::time::now_unix().0.saturating_mul(1_000_000);
        let mut tx = client
            .transaction()
            .map_err(pg_err("creating partitions"))?;
        events::ensure_partitions(&mut tx, now_us).map_err(pg_err("creating partitions"))?;
        tx.commit().map_err(pg_err("creating partitions"))?;
    }
    log::info!("store: PostgreSQL at {url}");
    let reader = PostgresReader {
        url: url.clone(),
        client: Mutex::new(None),
    };
    Store::start(
        Box::new(PostgresBackend {
            url: url.clone(),
            client: Some(client),
            core_name: core_name.to_string(),
        }),
        Box::new(reader),
        retention,
        metrics,
    )
}

fn pg_err(what: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |e| StoreError(format!("{what}: {}", describe(&e)))
}

/// The writer thread's connection, opened again when it broke.
pub struct PostgresBackend {
    url: PgUrl,
    client: Option<Client>,
    core_name: String,
}

impl Backend for PostgresBackend {
    fn begin(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = None;
            self.client = Some(connect(&self.url).map_err(StoreError)?);
            log::info!("store: connected to {} again", self.url);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(StoreError("no database connection".into()));
        };
        let tx = client
            .transaction()
            .map_err(pg_err("beginning a transaction"))?;
        Ok(Box::new(PostgresTransaction {
            tx,
            core_name: &self.core_name,
        }))
    }

    fn shared(&self) -> bool {
        true
    }
}

struct PostgresTransaction<'c> {
    tx: postgres::Transaction<'c>,
    core_name: &'c str,
}

impl PostgresTransaction<'_> {
    /// Queued until commit, and delivered in commit order: the other cores
    /// hear of a change only once it is durable.
    fn notify(&mut self, notice: Notice) -> Result<(), postgres::Error> {
        let (channel, payload) = notice.encode();
        self.tx
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .map(|_| ())
    }
}

fn node_of(write: &NodeWrite) -> u64 {
    match write {
        NodeWrite::Node(n) => n.node_id,
        NodeWrite::Status { node_id, .. } | NodeWrite::Delete(node_id) => *node_id,
        NodeWrite::Pot(p) => p.node_id,
        NodeWrite::Event(e) => e.node_id,
    }
}

impl Transaction for PostgresTransaction<'_> {
    fn apply(&mut self, write: &NodeWrite) -> Result<(), StoreError> {
        let core = self.core_name.to_string();
        apply(&mut self.tx, write)
            .and_then(|_| {
                self.notify(Notice::Node {
                    core,
                    node_id: node_of(write),
                })
            })
            .map_err(|e| {
                StoreError(format!(
                    "writing {}: {}",
                    describe_write(write),
                    describe(&e)
                ))
            })
    }

    fn seq_marks(&mut self, nodes: &[u64]) -> Result<HashMap<u64, SeqMark>, StoreError> {
        let ids: Vec<i64> = nodes.iter().map(|&n| n as i64).collect();
        let err = pg_err("locking event seqs");
        // A row for every node first, so that there is one to lock: two
        // cores storing a new node's first events then take turns too.
        // Sorted ids, so two cores lock in the same order (no deadlock).
        self.tx
            .execute(
                "INSERT INTO event_seqs (node_id)
                 SELECT n FROM unnest($1::BIGINT[]) AS n ORDER BY n ON CONFLICT DO NOTHING",
                &[&ids],
            )
            .map_err(&err)?;
        let rows = self
            .tx
            .query(
                "SELECT node_id, seq, epoch FROM event_seqs WHERE node_id = ANY($1)
                 ORDER BY node_id FOR UPDATE",
                &[&ids],
            )
            .map_err(&err)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let seq: Option<i64> = r.get(1);
                let epoch = r.get::<_, i64>(2) as u64;
                seq.map(|s| {
                    (
                        r.get::<_, i64>(0) as u64,
                        SeqMark {
                            epoch,
                            seq: s as u64,
                        },
                    )
                })
            })
            .collect())
    }

    fn insert(&mut self, batch: &[&EventRecord]) -> Result<Vec<i64>, StoreError> {
        let now_us = honeybee_proto::time::now_unix().0.saturating_mul(1_000_000);
        let err = pg_err("storing events");
        let first = events::insert(&mut self.tx, batch, now_us).map_err(&err)?;
        self.notify(Notice::Events {
            core: self.core_name.to_string(),
            first,
            count: batch.len() as i64,
        })
        .map_err(&err)?;
        Ok((first..first + batch.len() as i64).collect())
    }

    fn summarize(&mut self, delta: &Delta, _upto: i64) -> Result<(), StoreError> {
        // Every batch summarises its own events (the writer asks for it on
        // a shared database), in its transaction: no mark is needed.
        events::apply_rollup(&mut self.tx, delta)
            .map_err(pg_err("counting events in the summary tables"))
    }

    fn raise_marks(&mut self, marks: &HashMap<u64, SeqMark>) -> Result<(), StoreError> {
        let ids: Vec<i64> = marks.keys().map(|&n| n as i64).collect();
        let seqs: Vec<i64> = marks.values().map(|m| m.seq as i64).collect();
        let epochs: Vec<i64> = marks.values().map(|m| m.epoch as i64).collect();
        self.tx
            .execute(
                "UPDATE event_seqs SET seq = v.seq, epoch = v.epoch
                 FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS v(node_id, seq, epoch)
                 WHERE event_seqs.node_id = v.node_id",
                &[&ids, &seqs, &epochs],
            )
            .map(|_| ())
            .map_err(pg_err("recording event seqs"))
    }

    fn expire(&mut self, now_us: i64, retention: &Retention) -> Result<u64, StoreError> {
        events::expire(&mut self.tx, now_us, retention).map_err(pg_err("expiring old events"))
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().map_err(pg_err("committing a batch"))
    }
}

fn describe_write(w: &NodeWrite) -> String {
    match w {
        NodeWrite::Node(n) => format!("node {}", n.node_id),
        NodeWrite::Status { node_id, .. } => format!("status of node {node_id}"),
        NodeWrite::Pot(p) => format!("pot {} of node {}", p.pot_id, p.node_id),
        NodeWrite::Event(e) => format!("event of node {}", e.node_id),
        NodeWrite::Delete(id) => format!("deletion of node {id}"),
    }
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|s| text(s).into_owned())
}

fn apply(tx: &mut postgres::Transaction, w: &NodeWrite) -> Result<(), postgres::Error> {
    match w {
        NodeWrite::Node(n) => {
            let caps = serde_json::to_string(&n.capabilities).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO nodes (node_id, node_name, address, port, node_type, status, approved,
                     totp_key, last_totp_step, agent_version, capabilities, registered_at, last_seen,
                     approved_for)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (node_id) DO UPDATE SET node_name = EXCLUDED.node_name,
                     address = EXCLUDED.address, port = EXCLUDED.port,
                     node_type = EXCLUDED.node_type, status = EXCLUDED.status,
                     approved = EXCLUDED.approved, totp_key = EXCLUDED.totp_key,
                     last_totp_step = GREATEST(nodes.last_totp_step, EXCLUDED.last_totp_step),
                     agent_version = EXCLUDED.agent_version,
                     capabilities = EXCLUDED.capabilities,
                     registered_at = EXCLUDED.registered_at, last_seen = EXCLUDED.last_seen,
                     approved_for = EXCLUDED.approved_for",
                &[
                    &(n.node_id as i64),
                    &text(&n.node_name),
                    &text(&n.address),
                    &i32::from(n.port),
                    &n.node_type.as_str(),
                    &n.status.as_str(),
                    &n.approved,
                    &n.totp_key,
                    &n.last_totp_step.map(|s| s as i64),
                    &opt(&n.agent_version),
                    &text(&caps),
                    &n.registered_at,
                    &n.last_seen,
                    &opt(&n.approved_for),
                ],
            )?;
        }
        NodeWrite::Status {
            node_id,
            status,
            last_seen,
        } => {
            tx.execute(
                "UPDATE nodes SET status = $2, last_seen = $3 WHERE node_id = $1",
                &[&(*node_id as i64), &status.as_str(), last_seen],
            )?;
        }
        NodeWrite::Pot(p) => {
            tx.execute(
                "INSERT INTO pots (node_id, pot_id, pot_type, status, message, details, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (node_id, pot_id) DO UPDATE SET pot_type = EXCLUDED.pot_type,
                     status = EXCLUDED.status, message = EXCLUDED.message,
                     details = EXCLUDED.details, updated_at = EXCLUDED.updated_at",
                &[
                    &(p.node_id as i64),
                    &text(&p.pot_id),
                    &text(&p.pot_type),
                    &p.status.as_str(),
                    &opt(&p.message),
                    &opt(&p.details),
                    &p.updated_at,
                ],
            )?;
        }
        NodeWrite::Event(e) => {
            let id = e.node_id as i64;
            tx.execute(
                "INSERT INTO node_events (node_id, kind, message, description, time)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id,
                    &text(&e.kind),
                    &opt(&e.message),
                    &opt(&e.description),
                    &e.time,
                ],
            )?;
            tx.execute(
                "DELETE FROM node_events WHERE node_id = $1 AND id <= (
                   SELECT id FROM node_events WHERE node_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&id, &EVENTS_PER_NODE],
            )?;
        }
        NodeWrite::Delete(node_id) => {
            let id = *node_id as i64;
            for table in ["nodes", "pots", "node_events", "presence", "lockouts"] {
                tx.execute(&format!("DELETE FROM {table} WHERE node_id = $1"), &[&id])?;
            }
        }
    }
    Ok(())
}

const NODE_COLUMNS: &str = "node_id, node_name, address, port, node_type, status, approved, \
     totp_key, last_totp_step, agent_version, capabilities, registered_at, last_seen, approved_for";

fn parse_node(row: &postgres::Row) -> Result<NodeRecord, String> {
    let node_type: String = row.get(4);
    let status: String = row.get(5);
    let caps: String = row.get(10);
    let port: i32 = row.get(3);
    Ok(NodeRecord {
        node_id: row.get::<_, i64>(0) as u64,
        node_name: row.get(1),
        address: row.get(2),
        port: u16::try_from(port).unwrap_or(0),
        node_type: NodeType::parse(&node_type)
            .ok_or_else(|| format!("unknown node type `{node_type}`"))?,
        status: NodeStatus::parse(&status).ok_or_else(|| format!("unknown status `{status}`"))?,
        approved: row.get(6),
        totp_key: row.get(7),
        last_totp_step: row.get::<_, Option<i64>>(8).map(|s| s as u64),
        agent_version: row.get(9),
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        registered_at: row.get(11),
        last_seen: row.get(12),
        approved_for: row.get(13),
    })
}

fn parse_pot(row: &postgres::Row) -> Result<PotRecord, String> {
    let status: String = row.get(3);
    Ok(PotRecord {
        node_id: row.get::<_, i64>(0) as u64,
        pot_id: row.get(1),
        pot_type: row.get(2),
        status: PotStatus::parse(&status)
            .ok_or_else(|| format!("unknown pot status `{status}`"))?,
        message: row.get(4),
        details: row.get(5),
        updated_at: row.get(6),
    })
}

/// One node with its pots, as stored now.
pub fn load_stored_node(c: &mut Conn, node_id: u64) -> Result<Option<StoredNode>, postgres::Error> {
    let id = node_id as i64;
    let Some(row) = c.query_opt(
        &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = $1"),
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let Ok(node) = parse_node(&row) else {
        return Ok(None);
    };
    let pots = c
        .query(
            "SELECT node_id, pot_id, pot_type, status, message, details, updated_at
             FROM pots WHERE node_id = $1 ORDER BY pot_id",
            &[&id],
        )?
        .iter()
        .filter_map(|r| parse_pot(r).ok())
        .collect();
    Ok(Some(StoredNode { node, pots }))
}

/// The readers' connection, opened on first use and again after it broke.
pub struct PostgresReader {
    url: PgUrl,
    client: Mutex<Option<Conn>>,
}

impl PostgresReader {
    fn with<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        on_connection(&mut slot, &self.url, what, |c| f(c.client()))
    }
}

impl Reader for PostgresReader {
    fn load_nodes(&self) -> Result<Vec<StoredNode>, StoreError> {
        let (nodes, pots) = self.with("loading nodes", |c| {
            let nodes = c.query(&format!("SELECT {NODE_COLUMNS} FROM nodes"), &[])?;
            let pots = c.query(
                "SELECT node_id, pot_id, pot_type, status, message, details, updated_at
                 FROM pots ORDER BY node_id, pot_id",
                &[],
            )?;
            Ok((nodes, pots))
        })?;
        let mut out = Vec::with_capacity(nodes.len());
        let mut index = HashMap::new();
        for row in &nodes {
            let node = parse_node(row).map_err(|e| StoreError(format!("loading nodes: {e}")))?;
            index.insert(node.node_id, out.len());
            out.push(StoredNode {
                node,
                pots: Vec::new(),
            });
        }
        for row in &pots {
            let pot = parse_pot(row).map_err(|e| StoreError(format!("loading pots: {e}")))?;
            if let Some(n) = index.get(&pot.node_id).and_then(|&i| out.get_mut(i)) {
                n.pots.push(pot);
            }
        }
        Ok(out)
    }

    fn node(&self, node_id: u64) -> Result<Option<NodeRecord>, StoreError> {
        let what = format!("reading node {node_id}");
        let row = self.with(&what, |c| {
            c.query_opt(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = $1"),
                &[&(node_id as i64)],
            )
        })?;
        row.map(|r| parse_node(&r).map_err(|e| StoreError(format!("{what}: {e}"))))
            .transpose()
    }

    fn node_events(&self, node_id: u64, limit: usize) -> Result<Vec<NodeEventRecord>, StoreError> {
        let rows = self.with(&format!("reading events of node {node_id}"), |c| {
            c.query(
                "SELECT kind, message, description, time FROM node_events
                 WHERE node_id = $1 ORDER BY id DESC LIMIT $2",
                &[&(node_id as i64), &(limit as i64)],
            )
        })?;
        Ok(rows
            .iter()
            .map(|row| NodeEventRecord {
                node_id,
                kind: row.get(0),
                message: row.get(1),
                description: row.get(2),
                time: row.get(3),
            })
            .collect())
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        self.with("reading events", |c| events::query(c, filter))
    }

    fn stats(&self, query: &StatsQuery) -> Result<EventStats, StoreError> {
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let mut failed: Option<String> = None;
        let computed = on_connection(&mut slot, &self.url, "computing event statistics", |c| {
            let mut src = events::PgStats {
                conn: c,
                error: None,
            };
            match crate::store::stats::compute(&mut src, query) {
                Ok(s) => Ok(Some(s)),
                Err(why) => match src.error {
                    Some(e) => Err(e),
                    None => {
                        failed = Some(why);
                        Ok(None)
                    }
                },
            }
        })?;
        computed.ok_or_else(|| {
            StoreError(format!(
                "computing event statistics: {}",
                failed.unwrap_or_default()
            ))
        })
    }
}

/// The schema version a database holds (for tools and tests).
pub fn schema_version(client: &mut impl GenericClient) -> Result<Option<i32>, String> {
    schema::version(client).map_err(|e| describe(&e))
}
