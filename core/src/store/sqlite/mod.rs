//! The embedded store: SQLite in WAL mode. The writer thread owns one
//! connection ([`SqliteBackend`]); reads go through another ([`SqliteReader`]).

pub mod events;

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use honeybee_proto::{NodeStatus, NodeType, PotStatus};
use rusqlite::{params, Connection, OptionalExtension};

use crate::metrics::Metrics;
use crate::store::backend::{Backend, Reader, Retention, SeqMark, Transaction, EVENTS_PER_NODE};
use crate::store::event_row::EventRecord;
use crate::store::rollup::Delta;
use crate::store::writer::Store;
use crate::store::{
    EventFilter, EventStats, NodeEventRecord, NodeRecord, NodeWrite, PotRecord, StatsQuery,
    StoreError, StoredEvent, StoredNode,
};
use honeybee_process::private_files as files;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    node_id INTEGER PRIMARY KEY,
    node_name TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    approved INTEGER NOT NULL,
    totp_key BLOB,
    last_totp_step INTEGER,
    agent_version TEXT,
    capabilities TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    last_seen TEXT,
    approved_for TEXT
);
CREATE TABLE IF NOT EXISTS pots (
    node_id INTEGER NOT NULL,
    pot_id TEXT NOT NULL,
    pot_type TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    details TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (node_id, pot_id)
);
CREATE TABLE IF NOT EXISTS node_events (
    id INTEGER PRIMARY KEY,
    node_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT,
    description TEXT,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_events_by_node ON node_events (node_id, id);
";

// u64 ids are stored as the i64 with the same bits: SQLite integers are signed.
fn to_db(id: u64) -> i64 {
    id as i64
}
fn from_db(id: i64) -> u64 {
    id as u64
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError(format!("opening database {}: {e}", path.display())))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;\n         PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 4000;",
    )
    .map_err(|e| StoreError(format!("configuring database {}: {e}", path.display())))?;
    Ok(conn)
}

/// Opens the database at `path` keeping events forever, with its own
/// counters (tests, tools).
pub fn open(path: &Path) -> Result<Store, StoreError> {
    open_with(path, Retention::default(), Arc::new(Metrics::default()))
}

/// Opens (creating if needed, mode 0600) the database at `path`, migrates
/// it, and starts the writer over it.
pub fn open_with(
    path: &Path,
    retention: Retention,
    metrics: Arc<Metrics>,
) -> Result<Store, StoreError> {
    let existed = path.exists();
    if !existed {
        // Created 0600 before SQLite opens it; SQLite gives its -wal and
        // -shm files the same mode.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError(format!("creating database {}: {e}", path.display())))?;
    }
    let conn = connect(path)?;
    let catch_up = conn
        .execute_batch(SCHEMA)
        .and_then(|_| conn.execute_batch(events::SCHEMA))
        .and_then(|_| events::migrate(&conn))
        .and_then(|pending| migrate_nodes(&conn).map(|()| pending))
        .map_err(|e| StoreError(format!("creating tables in {}: {e}", path.display())))?;
    // The database holds TOTP keys: owner only, including WAL side files.
    for file in [
        path.to_path_buf(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if file.exists() {
            files::restrict_to_owner(&file)
                .map_err(|e| StoreError(format!("restricting {}: {e}", file.display())))?;
        }
    }
    if !existed {
        log::info!("created database {}", path.display());
    }
    let reader = SqliteReader(Mutex::new(connect(path)?));
    Store::start(
        Box::new(SqliteBackend { conn, catch_up }),
        Box::new(reader),
        retention,
        metrics,
    )
}

/// The writer thread's connection.
pub struct SqliteBackend {
    conn: Connection,
    /// Events up to this id, stored before a crash, still to be counted in
    /// the summaries (the disk was full at the start): the first summary
    /// counts them.
    catch_up: Option<i64>,
}

impl Backend for SqliteBackend {
    fn begin(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError(format!("beginning a transaction: {e}")))?;
        Ok(Box::new(SqliteTransaction {
            tx,
            catch_up: &mut self.catch_up,
            caught_up: false,
        }))
    }

    fn shared(&self) -> bool {
        false
    }
}

struct SqliteTransaction<'c> {
    tx: rusqlite::Transaction<'c>,
    catch_up: &'c mut Option<i64>,
    /// This transaction counts the events `catch_up` names.
    caught_up: bool,
}

impl Transaction for SqliteTransaction<'_> {
    fn apply(&mut self, write: &NodeWrite) -> Result<(), StoreError> {
        apply(&self.tx, write).map_err(|e| StoreError(format!("writing {}: {e}", describe(write))))
    }

    fn seq_marks(&mut self, nodes: &[u64]) -> Result<HashMap<u64, SeqMark>, StoreError> {
        events::load_seqs(&self.tx, nodes)
            .map_err(|e| StoreError(format!("reading event seqs: {e}")))
    }

    fn insert(&mut self, batch: &[&EventRecord]) -> Result<Vec<i64>, StoreError> {
        let mut ids = Vec::with_capacity(batch.len());
        for e in batch {
            events::insert(&self.tx, e).map_err(|err| {
                StoreError(format!("storing an event of node {}: {err}", e.node_id))
            })?;
            // One writer: rowids grow in commit order.
            ids.push(self.tx.last_insert_rowid());
        }
        Ok(ids)
    }

    fn summarize(&mut self, delta: &Delta, upto: i64) -> Result<(), StoreError> {
        if let Some(pending) = *self.catch_up {
            events::catch_up_in(&self.tx, pending)
                .map_err(|e| StoreError(format!("counting events stored before a crash: {e}")))?;
            self.caught_up = true;
        }
        events::apply_rollup(&self.tx, delta)
            .and_then(|_| events::set_mark(&self.tx, upto))
            .map_err(|e| StoreError(format!("counting events in the summary tables: {e}")))
    }

    fn raise_marks(&mut self, marks: &HashMap<u64, SeqMark>) -> Result<(), StoreError> {
        for (&node, &mark) in marks {
            events::save_seq(&self.tx, node, mark)
                .map_err(|e| StoreError(format!("recording the seq of node {node}: {e}")))?;
        }
        Ok(())
    }

    fn expire(&mut self, now_us: i64, r: &Retention) -> Result<u64, StoreError> {
        events::expire(&self.tx, now_us, r.days, r.max_events, r.max_bytes)
            .map(|n| n as u64)
            .map_err(|e| StoreError(format!("expiring old events: {e}")))
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let SqliteTransaction {
            tx,
            catch_up,
            caught_up,
        } = *self;
        tx.commit()
            .map_err(|e| StoreError(format!("committing a batch: {e}")))?;
        if caught_up {
            *catch_up = None;
        }
        Ok(())
    }
}

fn describe(w: &NodeWrite) -> String {
    match w {
        NodeWrite::Node(n) => format!("node {}", n.node_id),
        NodeWrite::Status { node_id, .. } => format!("status of node {node_id}"),
        NodeWrite::Pot(p) => format!("pot {} of node {}", p.pot_id, p.node_id),
        NodeWrite::Event(e) => format!("event of node {}", e.node_id),
        NodeWrite::Delete(id) => format!("deletion of node {id}"),
    }
}

/// Databases from before step 7 have no `approved_for` column.
fn migrate_nodes(conn: &Connection) -> rusqlite::Result<()> {
    let has: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('nodes') WHERE name = 'approved_for'",
        [],
        |r| r.get(0),
    )?;
    if has == 0 {
        conn.execute_batch("ALTER TABLE nodes ADD COLUMN approved_for TEXT")?;
    }
    Ok(())
}

fn apply(tx: &rusqlite::Transaction, w: &NodeWrite) -> rusqlite::Result<()> {
    match w {
        NodeWrite::Node(n) => {
            let caps = serde_json::to_string(&n.capabilities).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(
                "INSERT OR REPLACE INTO nodes (node_id, node_name, address, port, node_type, status,
                 approved, totp_key, last_totp_step, agent_version, capabilities, registered_at, last_seen,
                 approved_for)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                to_db(n.node_id),
                n.node_name,
                n.address,
                n.port,
                n.node_type.as_str(),
                n.status.as_str(),
                n.approved,
                n.totp_key,
                n.last_totp_step.map(|s| s as i64),
                n.agent_version,
                caps,
                n.registered_at,
                n.last_seen,
                n.approved_for,
            ])?;
        }
        NodeWrite::Status {
            node_id,
            status,
            last_seen,
        } => {
            tx.prepare_cached("UPDATE nodes SET status = ?2, last_seen = ?3 WHERE node_id = ?1")?
                .execute(params![to_db(*node_id), status.as_str(), last_seen])?;
        }
        NodeWrite::Pot(p) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO pots (node_id, pot_id, pot_type, status, message, details, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                to_db(p.node_id),
                p.pot_id,
                p.pot_type,
                p.status.as_str(),
                p.message,
                p.details,
                p.updated_at
            ])?;
        }
        NodeWrite::Event(e) => {
            let id = to_db(e.node_id);
            tx.prepare_cached(
                "INSERT INTO node_events (node_id, kind, message, description, time) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, e.kind, e.message, e.description, e.time])?;
            tx.prepare_cached(
                "DELETE FROM node_events WHERE node_id = ?1 AND id <= (
                   SELECT id FROM node_events WHERE node_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![id, EVENTS_PER_NODE])?;
        }
        NodeWrite::Delete(node_id) => {
            let id = to_db(*node_id);
            for table in ["nodes", "pots", "node_events"] {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE node_id = ?1"))?
                    .execute(params![id])?;
            }
        }
    }
    Ok(())
}

fn parse_node(row: &rusqlite::Row) -> rusqlite::Result<NodeRecord> {
    let text = |i: usize| -> rusqlite::Result<String> { row.get(i) };
    let bad = |i: usize, what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown {what} `{v}`").into(),
        )
    };
    let node_type = text(4)?;
    let status = text(5)?;
    let caps: String = row.get(10)?;
    Ok(NodeRecord {
        node_id: from_db(row.get(0)?),
        node_name: text(1)?,
        address: text(2)?,
        port: row.get(3)?,
        node_type: NodeType::parse(&node_type).ok_or_else(|| bad(4, "node type", &node_type))?,
        status: NodeStatus::parse(&status).ok_or_else(|| bad(5, "status", &status))?,
        approved: row.get(6)?,
        totp_key: row.get(7)?,
        last_totp_step: row.get::<_, Option<i64>>(8)?.map(|s| s as u64),
        agent_version: row.get(9)?,
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        registered_at: text(11)?,
        last_seen: row.get(12)?,
        approved_for: row.get(13)?,
    })
}

fn parse_pot(row: &rusqlite::Row) -> rusqlite::Result<PotRecord> {
    let status: String = row.get(3)?;
    Ok(PotRecord {
        node_id: from_db(row.get(0)?),
        pot_id: row.get(1)?,
        pot_type: row.get(2)?,
        status: PotStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown pot status `{status}`").into(),
            )
        })?,
        message: row.get(4)?,
        details: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

/// The readers' connection.
pub struct SqliteReader(Mutex<Connection>);

impl SqliteReader {
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reader for SqliteReader {
    fn load_nodes(&self) -> Result<Vec<StoredNode>, StoreError> {
        let conn = self.conn();
        let err = |e: rusqlite::Error| StoreError(format!("loading nodes: {e}"));
        let mut nodes: Vec<StoredNode> = conn
            .prepare("SELECT node_id, node_name, address, port, node_type, status, approved, totp_key,
                      last_totp_step, agent_version, capabilities, registered_at, last_seen, approved_for FROM nodes")
            .map_err(err)?
            .query_map([], parse_node)
            .map_err(err)?
            .map(|r| r.map(|node| StoredNode { node, pots: Vec::new() }))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut index: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            index.insert(n.node.node_id, i);
        }
        let pots: Vec<PotRecord> = conn
            .prepare("SELECT node_id, pot_id, pot_type, status, message, details, updated_at FROM pots ORDER BY node_id, pot_id")
            .map_err(err)?
            .query_map([], parse_pot)
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        for pot in pots {
            if let Some(&i) = index.get(&pot.node_id) {
                nodes[i].pots.push(pot);
            }
        }
        Ok(nodes)
    }

    fn node_events(&self, node_id: u64, limit: usize) -> Result<Vec<NodeEventRecord>, StoreError> {
        let conn = self.conn();
        let err = |e: rusqlite::Error| StoreError(format!("reading events of node {node_id}: {e}"));
        let rows = conn
            .prepare_cached(
                "SELECT kind, message, description, time FROM node_events
                 WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(err)?
            .query_map(params![to_db(node_id), limit as i64], |row| {
                Ok(NodeEventRecord {
                    node_id,
                    kind: row.get(0)?,
                    message: row.get(1)?,
                    description: row.get(2)?,
                    time: row.get(3)?,
                })
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(rows)
    }

    fn node(&self, node_id: u64) -> Result<Option<NodeRecord>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT node_id, node_name, address, port, node_type, status, approved, totp_key,
             last_totp_step, agent_version, capabilities, registered_at, last_seen, approved_for FROM nodes WHERE node_id = ?1",
            params![to_db(node_id)],
            parse_node,
        )
        .optional()
        .map_err(|e| StoreError(format!("reading node {node_id}: {e}")))
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        events::query(&self.conn(), filter).map_err(|e| StoreError(format!("reading events: {e}")))
    }

    fn stats(&self, query: &StatsQuery) -> Result<EventStats, StoreError> {
        let conn = self.conn();
        crate::store::stats::compute(&mut events::SqliteStats(&conn), query)
            .map_err(|e| StoreError(format!("computing event statistics: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::{EVENT_BATCH, EVENT_QUEUE};
    use crate::store::{EventStore, NodeStore};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn record(id: u64) -> NodeRecord {
        NodeRecord {
            node_id: id,
            node_name: "n".into(),
            address: "127.0.0.1".into(),
            port: 1,
            node_type: NodeType::Full,
            status: NodeStatus::Running,
            approved: true,
            totp_key: Some(vec![7; 20]),
            last_totp_step: Some(99),
            agent_version: None,
            capabilities: vec!["event-ack".into()],
            registered_at: "2026-01-01T00:00:00Z".into(),
            last_seen: None,
            approved_for: Some("192.0.2.1 sha256:ab".into()),
        }
    }

    #[test]
    fn survives_reopen_with_u64_ids_and_bounded_events() {
        let dir = std::env::temp_dir().join(format!("hb-store-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let path = dir.join("t.db");
        {
            let s = open(&path).unwrap();
            smol::block_on(s.submit(NodeWrite::Node(record(u64::MAX))).committed()).unwrap();
            for i in 0..(EVENTS_PER_NODE + 5) {
                s.submit(NodeWrite::Event(NodeEventRecord {
                    node_id: u64::MAX,
                    kind: "Alarm".into(),
                    message: Some(i.to_string()),
                    description: None,
                    time: "t".into(),
                }));
            }
            s.close();
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let s = open(&path).unwrap();
        let nodes = s.load_nodes().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].node, record(u64::MAX));
        let events = s.node_events(u64::MAX, 5000).unwrap();
        assert_eq!(events.len() as i64, EVENTS_PER_NODE);
        assert_eq!(
            events[0].message.as_deref(),
            Some((EVENTS_PER_NODE + 4).to_string().as_str())
        );
        s.close();
        std::fs::remove_dir_all(&dir).ok();
    }

    fn event(node_id: u64, seq: Option<u64>, src: &str, time_us: i64) -> EventRecord {
        EventRecord {
            node_id,
            seq,
            epoch: 0,
            pot_id: "p".into(),
            pot_type: "t".into(),
            event_type: "e.x".into(),
            timestamp: "t".into(),
            time_us,
            src_ip: Some(src.into()),
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
    fn events_are_acked_after_commit_stored_once_queried_and_expired() {
        let dir = std::env::temp_dir().join(format!("hb-events-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let metrics = Arc::new(Metrics::default());
        let s = open_with(&dir.join("e.db"), Retention::default(), metrics.clone()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        s.on_commit(Box::new(move |node, _epoch, seq| {
            tx.send((node, seq)).unwrap()
        }));
        for seq in 1..=3 {
            s.append(event(1, Some(seq), "198.51.100.1", 1_000 + seq as i64))
                .unwrap();
        }
        s.append(event(1, Some(2), "198.51.100.1", 0)).unwrap(); // a replay
        s.append(event(2, None, "198.51.100.2", 5_000)).unwrap();
        let mut top = 0;
        while top < 3 {
            let (node, seq) = rx.recv_timeout(Duration::from_secs(5)).expect("an ack");
            assert_eq!(node, 1, "only sequenced events are acknowledged");
            top = top.max(seq);
        }
        let all = |f: EventFilter| s.events(&EventFilter { limit: 100, ..f }).unwrap();
        let mut waited = 0;
        while metrics.events_stored.load(Ordering::Relaxed)
            + metrics.events_duplicate.load(Ordering::Relaxed)
            < 5
        {
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
            assert!(waited < 500, "events not committed");
        }
        assert_eq!(
            all(EventFilter::default()).len(),
            4,
            "the replay is stored once"
        );
        assert_eq!(metrics.events_duplicate.load(Ordering::Relaxed), 1);
        let newest = all(EventFilter::default());
        assert!(newest.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(
            all(EventFilter {
                node_id: Some(2),
                ..Default::default()
            })
            .len(),
            1
        );
        assert_eq!(
            all(EventFilter {
                src_ip: Some("198.51.100.1".into()),
                ..Default::default()
            })
            .len(),
            3
        );
        assert_eq!(
            all(EventFilter {
                since_us: Some(1_002),
                until_us: Some(1_003),
                ..Default::default()
            })
            .len(),
            2
        );
        assert_eq!(
            all(EventFilter {
                before_id: Some(newest[1].id),
                ..Default::default()
            })
            .len(),
            2
        );
        // Retention by count keeps the newest.
        let mut conn = connect(&dir.join("e.db")).unwrap();
        let tx = conn.transaction().unwrap();
        assert_eq!(events::expire(&tx, 0, 0, 2, 0).unwrap(), 2);
        tx.commit().unwrap();
        let left = all(EventFilter::default());
        assert_eq!(
            left.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![newest[0].id, newest[1].id]
        );
        s.close();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A database of a core from before enrichment (no geo columns, no
    /// summary tables, `user_version` 1) holding events: opened by this
    /// core, it gets the columns and summaries of every event it holds.
    #[test]
    fn an_older_database_gets_geo_columns_and_summaries_of_its_events() {
        use crate::store::rollup::HOUR_US;
        let dir = std::env::temp_dir().join(format!("hb-migrate-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let path = dir.join("m.db");
        let now = honeybee_proto::time::now_unix().0 * 1_000_000;
        {
            let old = connect(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, seq INTEGER,
                     pot_id TEXT NOT NULL, pot_type TEXT NOT NULL, event_type TEXT NOT NULL,
                     timestamp TEXT NOT NULL, time INTEGER NOT NULL, src_ip TEXT, src_port INTEGER,
                     dst_port INTEGER, protocol TEXT, username TEXT, password TEXT, input TEXT,
                     data TEXT NOT NULL);
                 CREATE TABLE event_seqs (node_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
            for (ago, user) in [
                (60, "a"),
                (3 * HOUR_US, "b"),
                (3 * HOUR_US, "b"),
                (40 * 86_400 * 1_000_000, "c"),
            ] {
                old.execute(
                    "INSERT INTO events (node_id, pot_id, pot_type, event_type, timestamp, time, src_ip, username, data)
                     VALUES (1, 'p', 't', 'e.x', '', ?1, '198.51.100.1', ?2, '{}')",
                    params![now - ago, user],
                )
                .unwrap();
            }
        }
        let s = open(&path).unwrap();
        let stats = s
            .stats(&crate::store::StatsQuery::last(now, 24 * HOUR_US))
            .unwrap();
        assert_eq!((stats.total, stats.in_window), (4, 3));
        assert_eq!(
            stats.top_usernames,
            vec![("b".to_string(), 2), ("a".to_string(), 1)]
        );
        let all = s
            .events(&EventFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|e| e.geo.is_empty()));
        s.close();
        let conn = connect(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, events::VERSION);
        drop(conn);
        // Opened again: nothing is counted twice.
        let s = open(&path).unwrap();
        let stats = s
            .stats(&crate::store::StatsQuery::last(now, 24 * HOUR_US))
            .unwrap();
        assert_eq!((stats.total, stats.in_window), (4, 3));
        s.close();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A core started again on a full disk after a crash: the events the
    /// crash kept out of the summaries cannot be counted at the start; it
    /// starts all the same and counts them, once, with its first summary.
    #[test]
    fn a_start_on_a_full_disk_counts_a_crash_s_events_later_and_once() {
        use crate::store::rollup::HOUR_US;
        let dir = std::env::temp_dir().join(format!("hb-fullstart-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let path = dir.join("f.db");
        let now = honeybee_proto::time::now_unix().0 * 1_000_000;
        open(&path).unwrap().close();
        {
            // What a crash leaves: events stored, the summaries behind.
            let c = connect(&path).unwrap();
            for i in 0..403 {
                let src = if i < 3 {
                    "203.0.113.7".to_string()
                } else {
                    format!("2001:db8::{i:x}")
                };
                c.execute(
                    "INSERT INTO events (node_id, pot_id, pot_type, event_type, timestamp, time, src_ip, data)
                     VALUES (1, 'p', 't', 'e.x', '', ?1, ?2, '{}')",
                    params![now - 60_000_000, src],
                )
                .unwrap();
            }
        }
        // The disk is full: not one more page.
        let conn = connect(&path).unwrap();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
        let pending = events::migrate(&conn).expect("starts on a full disk");
        assert_eq!(pending, Some(403), "the catch-up waits");
        // Space returns; the writer's first summary counts them.
        conn.execute_batch("PRAGMA max_page_count = 1073741823")
            .unwrap();
        let metrics = Arc::new(Metrics::default());
        let s = Store::start(
            Box::new(SqliteBackend {
                conn,
                catch_up: pending,
            }),
            Box::new(SqliteReader(Mutex::new(connect(&path).unwrap()))),
            Retention::default(),
            metrics.clone(),
        )
        .unwrap();
        let query = crate::store::StatsQuery::last(now, 24 * HOUR_US);
        // (Until then the summaries, and so the stats, miss them.)
        s.append(event(1, None, "203.0.113.7", now)).unwrap();
        settle(&metrics, 1);
        s.close();
        let s = open(&path).unwrap();
        let stats = s.stats(&query).unwrap();
        assert_eq!(stats.total, 404);
        assert_eq!(
            stats.top_src_ips.first(),
            Some(&("203.0.113.7".to_string(), 4)),
            "each counted once"
        );
        s.close();
        std::fs::remove_dir_all(&dir).ok();
    }

    fn settle(metrics: &Metrics, handled: u64) {
        for _ in 0..500 {
            let done = metrics.events_stored.load(Ordering::Relaxed)
                + metrics.events_duplicate.load(Ordering::Relaxed);
            if done >= handled {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("events not committed");
    }

    /// A replay is recognised after a restart, and in a database written
    /// by a core that still de-duplicated with a unique index.
    #[test]
    fn replays_are_stored_once_across_restarts_and_old_databases() {
        let dir = std::env::temp_dir().join(format!("hb-replay-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let path = dir.join("r.db");
        {
            let old = connect(&path).unwrap();
            old.execute_batch(events::SCHEMA).unwrap();
            old.execute_batch(
                "DROP TABLE event_seqs;
                 CREATE UNIQUE INDEX events_node_seq ON events (node_id, seq) WHERE seq IS NOT NULL;
                 INSERT INTO events (node_id, seq, pot_id, pot_type, event_type, timestamp, time, data)
                     VALUES (7, 5, 'p', 't', 'e.x', 't', 1, '{}');",
            )
            .unwrap();
        }
        let stored = |s: &Store| {
            s.events(&EventFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap()
        };
        let metrics = Arc::new(Metrics::default());
        let s = open_with(&path, Retention::default(), metrics.clone()).unwrap();
        for seq in [4, 5, 6] {
            s.append(event(7, Some(seq), "198.51.100.7", 2)).unwrap();
        }
        settle(&metrics, 3);
        let seqs: Vec<_> = stored(&s).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![Some(6), Some(5)], "4 and 5 were stored before");
        s.close();

        let metrics = Arc::new(Metrics::default());
        let s = open_with(&path, Retention::default(), metrics.clone()).unwrap();
        for seq in [6, 7] {
            s.append(event(7, Some(seq), "198.51.100.7", 3)).unwrap();
        }
        s.append(event(8, Some(6), "198.51.100.8", 3)).unwrap();
        settle(&metrics, 3);
        assert_eq!(metrics.events_duplicate.load(Ordering::Relaxed), 1);
        let seqs: Vec<_> = stored(&s).iter().map(|e| (e.node_id, e.seq)).collect();
        assert_eq!(
            seqs,
            vec![(8, Some(6)), (7, Some(7)), (7, Some(6)), (7, Some(5))],
            "another node's seqs are its own"
        );
        s.close();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// When the writer cannot write, appending blocks once the bounded
    /// queue is full (the node poller then stops reading): nothing is
    /// dropped, and everything is stored once the writer can go on.
    #[test]
    fn a_stalled_writer_blocks_appenders_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("hb-backpressure-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let path = dir.join("b.db");
        let metrics = Arc::new(Metrics::default());
        let s = Arc::new(open_with(&path, Retention::default(), metrics.clone()).unwrap());
        // Another connection holds the write lock: the writer's inserts wait.
        let blocker = connect(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let total = (EVENT_QUEUE + EVENT_BATCH + 5000) as u64;
        let appended = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let appender = {
            let (s, appended) = (s.clone(), appended.clone());
            std::thread::spawn(move || {
                for seq in 1..=total {
                    s.append(event(1, Some(seq), "198.51.100.1", seq as i64))
                        .unwrap();
                    appended.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(1500));
        let held = appended.load(Ordering::Relaxed);
        assert!(
            held < total,
            "appending went on while nothing could be written"
        );
        assert!(
            held as usize <= EVENT_QUEUE + EVENT_BATCH + 1,
            "{held} events buffered while the writer is stalled"
        );
        blocker.execute_batch("ROLLBACK").unwrap();
        appender.join().unwrap();
        let mut waited = 0;
        while metrics.events_stored.load(Ordering::Relaxed) < total {
            std::thread::sleep(Duration::from_millis(20));
            waited += 1;
            assert!(
                waited < 1500,
                "stored {}",
                metrics.events_stored.load(Ordering::Relaxed)
            );
        }
        assert_eq!(metrics.events_stored.load(Ordering::Relaxed), total);
        s.close();
        std::fs::remove_dir_all(&dir).ok();
    }
}
