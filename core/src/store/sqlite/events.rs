//! The events table: schema, batched inserts with de-duplication, the
//! filtered query, and retention. Functions over a connection; the writer
//! thread and the reader connection in `store::sqlite` call them.

use std::collections::HashMap;

use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::geo::Geo;
use crate::store::backend::SeqMark;
use crate::store::event_row::EventRecord;
use crate::store::rollup::{Delta, Dim, Keys, Pending, Tier, DAY_US, HOUR_US};
use crate::store::stats::{StatsSource, MINUTE_US};
use crate::store::{EventFilter, StoredEvent};

/// Tables and one index per API filter. A replayed event is recognised by
/// `event_seqs`, each node's highest stored `seq` (docs/protocol.md §6: seqs are
/// strictly increasing per node and acknowledged cumulatively), rather than
/// by a unique index on `(node_id, seq)`: that index cost a tenth of the
/// writer's time per event.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    node_id INTEGER NOT NULL,
    seq INTEGER,
    pot_id TEXT NOT NULL,
    pot_type TEXT NOT NULL,
    event_type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    time INTEGER NOT NULL,
    src_ip TEXT,
    src_port INTEGER,
    dst_port INTEGER,
    protocol TEXT,
    username TEXT,
    password TEXT,
    input TEXT,
    data TEXT NOT NULL,
    country TEXT,
    country_name TEXT,
    city TEXT,
    asn INTEGER,
    as_org TEXT,
    net TEXT
);
CREATE TABLE IF NOT EXISTS event_seqs (
    node_id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_node ON events (node_id, id);
CREATE INDEX IF NOT EXISTS events_by_pot ON events (pot_id, id);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, id);
CREATE INDEX IF NOT EXISTS events_by_src ON events (src_ip, id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
CREATE TABLE IF NOT EXISTS rollup_hour (
    dim INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    value TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dim, bucket, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_hour_top ON rollup_hour (dim, bucket, n DESC);
CREATE TABLE IF NOT EXISTS rollup_day (
    dim INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    value TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dim, bucket, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_day_top ON rollup_day (dim, bucket, n DESC);
CREATE TABLE IF NOT EXISTS rollup_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_event INTEGER NOT NULL
);
INSERT OR IGNORE INTO rollup_mark (id, last_event) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS rollup_labels (
    dim INTEGER NOT NULL,
    value TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (dim, value)
) WITHOUT ROWID;
";

/// The version of the events schema this core writes (`PRAGMA
/// user_version`): 2 added enrichment columns and the summary tables.
pub const VERSION: i64 = 2;

/// Columns enrichment added (version 2).
const GEO_COLUMNS: [(&str, &str); 6] = [
    ("country", "TEXT"),
    ("country_name", "TEXT"),
    ("city", "TEXT"),
    ("asn", "INTEGER"),
    ("as_org", "TEXT"),
    ("net", "TEXT"),
];

/// Filters on country and AS number; partial, so that a core without
/// enrichment pays nothing for them.
const GEO_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS events_by_country ON events (country, id) WHERE country IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_asn ON events (asn, id) WHERE asn IS NOT NULL;
";

/// Brings an older database up to [`VERSION`]: columns added since, the
/// high-water marks of databases that de-duplicated with a unique index,
/// and (version 2) the summary tables filled from the events already
/// stored, in one transaction.
///
/// Events a crash kept out of the summaries are counted into them here;
/// on a full disk that cannot be written, and the core starts all the
/// same: the id up to which they still wait is returned, for the writer to
/// count them in its first summary ([`catch_up_in`]).
pub fn migrate(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    // Step 5 added `input` (a command typed into a pot).
    let has_input: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'input'",
        [],
        |r| r.get(0),
    )?;
    if has_input == 0 {
        conn.execute_batch("ALTER TABLE events ADD COLUMN input TEXT")?;
    }
    for (column, kind) in GEO_COLUMNS {
        let has: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = ?1",
            params![column],
            |r| r.get(0),
        )?;
        if has == 0 {
            // Names and types are the constants above.
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {column} {kind}"))?;
        }
    }
    conn.execute_batch(GEO_INDEXES)?;
    // Spool epochs (a node that lost its spool numbers from 1 again).
    let has_epoch: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('event_seqs') WHERE name = 'epoch'",
        [],
        |r| r.get(0),
    )?;
    if has_epoch == 0 {
        conn.execute_batch("ALTER TABLE event_seqs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")?;
    }
    let old_index: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_node_seq'",
        [],
        |r| r.get(0),
    )?;
    if old_index > 0 {
        conn.execute_batch(
            "BEGIN;
             INSERT OR REPLACE INTO event_seqs (node_id, seq)
                 SELECT node_id, MAX(seq) FROM events WHERE seq IS NOT NULL GROUP BY node_id;
             DROP INDEX events_node_seq;
             COMMIT;",
        )?;
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < VERSION {
        let any: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM events)", [], |r| r.get(0))?;
        if any {
            log::info!(
                "store: filling the summary tables from the events already stored \
                 (once, at the first start of this version)"
            );
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let filled = backfill(conn).and_then(|n| {
            conn.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
            Ok(n)
        });
        match filled {
            Ok(n) => {
                conn.execute_batch("COMMIT")?;
                if n > 0 {
                    log::info!("store: summary tables filled from {n} stored events");
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    } else if let Err(e) = catch_up(conn) {
        let full = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull);
        if !full {
            return Err(e);
        }
        let newest: Option<i64> = conn.query_row("SELECT MAX(id) FROM events", [], |r| r.get(0))?;
        log::warn!(
            "store: the disk is full: the events stored before a crash are counted into the \
             summary tables once it has room ({e})"
        );
        return Ok(newest);
    }
    if version > VERSION {
        log::warn!(
            "store: the database's events schema is version {version}, newer than this core's \
             {VERSION}; reading it anyway"
        );
    }
    Ok(None)
}

/// Records that the summaries count every event up to id `upto`.
pub fn set_mark(conn: &Connection, upto: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE rollup_mark SET last_event = max(last_event, ?1) WHERE id = 1")?
        .execute(params![upto])?;
    Ok(())
}

/// Counts the events stored after the mark: those the writer had not yet
/// summarised when the core stopped without committing them (a crash).
fn catch_up(conn: &Connection) -> rusqlite::Result<()> {
    let mark: i64 = conn.query_row("SELECT last_event FROM rollup_mark WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let newest: Option<i64> = conn.query_row("SELECT MAX(id) FROM events", [], |r| r.get(0))?;
    if newest.is_none_or(|n| n <= mark) {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let counted = count_after_mark(conn, mark, None);
    match counted {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            log::info!("store: {n} events stored before a stop were added to the summary tables");
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Sums the events after `mark` (up to id `upto`, if given) into the
/// summary tables and moves the mark past them; inside a transaction.
fn count_after_mark(conn: &Connection, mark: i64, upto: Option<i64>) -> rusqlite::Result<u64> {
    // `upto` is an integer: nothing to escape.
    let condition = match upto {
        Some(u) => format!("id > ?1 AND id <= {u}"),
        None => "id > ?1".to_owned(),
    };
    let (mut after, mut total) = (mark, 0u64);
    loop {
        let (delta, last, n) = unroll_chunk(conn, &condition, after, 1)?;
        if n == 0 {
            break;
        }
        apply_rollup(conn, &delta)?;
        set_mark(conn, last)?;
        total += n;
        after = last;
    }
    Ok(total)
}

/// The catch-up [`migrate`] could not write (a full disk), inside the
/// writer's transaction: the events after the mark up to id `upto`.
pub fn catch_up_in(conn: &Connection, upto: i64) -> rusqlite::Result<u64> {
    let mark: i64 = conn.query_row("SELECT last_event FROM rollup_mark WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let n = count_after_mark(conn, mark, Some(upto))?;
    if n > 0 {
        log::info!("store: {n} events stored before a crash were added to the summary tables");
    }
    Ok(n)
}

/// Events read per step when summing stored events into the summaries.
const CHUNK: i64 = 50_000;

/// Fills the summary tables from every stored event (they start empty).
fn backfill(conn: &Connection) -> rusqlite::Result<u64> {
    conn.execute_batch(
        "DELETE FROM rollup_hour; DELETE FROM rollup_day; UPDATE rollup_mark SET last_event = 0;",
    )?;
    let mut after = 0i64;
    let mut total = 0u64;
    loop {
        let (delta, last, n) = unroll_chunk(conn, "id > ?1", after, 1)?;
        if n == 0 {
            break;
        }
        apply_rollup(conn, &delta)?;
        set_mark(conn, last)?;
        total += n;
        after = last;
    }
    Ok(total)
}

/// The columns the summaries count, for one row of `events`.
const KEY_COLUMNS: &str = "id, time, src_ip, username, password, input, event_type, country, asn";

/// Sums up to [`CHUNK`] events matching `condition` (on `?1`) in id order,
/// each `sign` times: the delta, the last id, and how many.
fn unroll_chunk(
    conn: &Connection,
    condition: &str,
    arg: i64,
    sign: i64,
) -> rusqlite::Result<(Delta, i64, u64)> {
    // `condition` is one of this file's constant clauses.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM events WHERE {condition} ORDER BY id LIMIT {CHUNK}"
    ))?;
    let mut rows = stmt.query(params![arg])?;
    let mut delta = Delta::default();
    let (mut last, mut n) = (arg, 0u64);
    while let Some(r) = rows.next()? {
        last = r.get(0)?;
        n += 1;
        add_row(&mut delta, r, sign, &[Tier::Hour, Tier::Day])?;
    }
    Ok((delta, last, n))
}

/// Counts one row of [`KEY_COLUMNS`] (starting at column 1) into `delta`.
fn add_row(
    delta: &mut Delta,
    r: &rusqlite::Row,
    sign: i64,
    tiers: &[Tier],
) -> rusqlite::Result<()> {
    let src_ip: Option<String> = r.get(2)?;
    let username: Option<String> = r.get(3)?;
    let password: Option<String> = r.get(4)?;
    let input: Option<String> = r.get(5)?;
    let event_type: Option<String> = r.get(6)?;
    let country: Option<String> = r.get(7)?;
    let keys = Keys {
        time_us: r.get(1)?,
        src_ip: src_ip.as_deref(),
        username: username.as_deref(),
        password: password.as_deref(),
        input: input.as_deref(),
        event_type: event_type.as_deref(),
        country: country.as_deref(),
        asn: r.get(8)?,
    };
    delta.add_to(&keys, sign, tiers);
    Ok(())
}

/// Adds `delta` to the summary tables (rows that reach 0 go) and records
/// the names it carries.
pub fn apply_rollup(conn: &Connection, delta: &Delta) -> rusqlite::Result<()> {
    const UPSERT: [&str; 2] = [
        "INSERT INTO rollup_hour (dim, bucket, value, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (dim, bucket, value) DO UPDATE SET n = n + excluded.n",
        "INSERT INTO rollup_day (dim, bucket, value, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (dim, bucket, value) DO UPDATE SET n = n + excluded.n",
    ];
    const PRUNE: [&str; 2] = [
        "DELETE FROM rollup_hour WHERE dim = ?1 AND bucket = ?2 AND value = ?3 AND n <= 0",
        "DELETE FROM rollup_day WHERE dim = ?1 AND bucket = ?2 AND value = ?3 AND n <= 0",
    ];
    let mut upsert = [
        conn.prepare_cached(UPSERT[0])?,
        conn.prepare_cached(UPSERT[1])?,
    ];
    for (tier, dim, bucket, value, n) in delta.sorted() {
        let t = usize::from(tier == Tier::Day);
        if let Some(stmt) = upsert.get_mut(t) {
            stmt.execute(params![dim.id(), bucket, value, n])?;
        }
        if n < 0 {
            if let Some(sql) = PRUNE.get(t) {
                conn.prepare_cached(sql)?
                    .execute(params![dim.id(), bucket, value])?;
            }
        }
    }
    for ((dim, value), label) in &delta.labels {
        conn.prepare_cached(
            "INSERT INTO rollup_labels (dim, value, label) VALUES (?1, ?2, ?3)
             ON CONFLICT (dim, value) DO UPDATE SET label = excluded.label
             WHERE label <> excluded.label",
        )?
        .execute(params![dim.id(), value, label])?;
    }
    Ok(())
}

/// The replay mark of each of `nodes` that has one.
pub fn load_seqs(conn: &Connection, nodes: &[u64]) -> rusqlite::Result<HashMap<u64, SeqMark>> {
    let mut stmt = conn.prepare_cached("SELECT epoch, seq FROM event_seqs WHERE node_id = ?1")?;
    let mut marks = HashMap::new();
    for &node in nodes {
        let mut rows = stmt.query(params![node as i64])?;
        if let Some(row) = rows.next()? {
            let epoch = row.get::<_, i64>(0)? as u64;
            let seq = row.get::<_, i64>(1)? as u64;
            marks.insert(node, SeqMark { epoch, seq });
        }
    }
    Ok(marks)
}

/// Records `mark` as `node_id`'s replay mark.
pub fn save_seq(tx: &Transaction, node_id: u64, mark: SeqMark) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO event_seqs (node_id, seq, epoch) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch",
    )?
    .execute(params![node_id as i64, mark.seq as i64, mark.epoch as i64])?;
    Ok(())
}

/// Inserts one event; the caller has ruled out a replay.
pub fn insert(tx: &Transaction, e: &EventRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (node_id, seq, pot_id, pot_type, event_type, timestamp, time,
             src_ip, src_port, dst_port, protocol, username, password, data, input,
             country, country_name, city, asn, as_org, net)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     ?16, ?17, ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        e.node_id as i64,
        e.seq.map(|s| s as i64),
        e.pot_id,
        e.pot_type,
        e.event_type,
        e.timestamp,
        e.time_us,
        e.src_ip,
        e.src_port,
        e.dst_port,
        e.protocol,
        e.username,
        e.password,
        e.data,
        e.input,
        e.geo().country,
        e.geo().country_name,
        e.geo().city,
        e.geo().asn,
        e.geo().as_org,
        e.geo().net,
    ])?;
    Ok(())
}

/// Events matching `f`, newest first. Values are bound as parameters,
/// never spliced into the SQL.
pub fn query(conn: &Connection, f: &EventFilter) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut sql = String::from(
        "SELECT id, node_id, seq, pot_id, pot_type, event_type, timestamp, data,
                country, country_name, city, asn, as_org, net FROM events WHERE 1=1",
    );
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    let mut clause = |sql_part: &str, value: Box<dyn ToSql>| {
        sql.push_str(sql_part);
        args.push(value);
    };
    if let Some(v) = f.node_id {
        clause(" AND node_id = ?", Box::new(v as i64));
    }
    if let Some(v) = &f.pot_id {
        clause(" AND pot_id = ?", Box::new(v.clone()));
    }
    if let Some(v) = &f.event_type {
        clause(" AND event_type = ?", Box::new(v.clone()));
    }
    if let Some(v) = &f.src_ip {
        clause(" AND src_ip = ?", Box::new(v.clone()));
    }
    if let Some(v) = &f.country {
        clause(" AND country = ?", Box::new(v.clone()));
    }
    if let Some(v) = f.asn {
        clause(" AND asn = ?", Box::new(v));
    }
    if let Some(v) = f.since_us {
        clause(" AND time >= ?", Box::new(v));
    }
    if let Some(v) = f.until_us {
        clause(" AND time <= ?", Box::new(v));
    }
    if let Some(v) = f.before_id {
        clause(" AND id < ?", Box::new(v));
    }
    if let Some(v) = f.after_id {
        clause(" AND id > ?", Box::new(v));
    }
    let order = if f.after_id.is_some() { "ASC" } else { "DESC" };
    clause(
        &format!(" ORDER BY id {order} LIMIT ?"),
        Box::new(i64::from(f.limit)),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let rows = stmt.query_map(params.as_slice(), |row| {
        Ok(StoredEvent {
            id: row.get(0)?,
            node_id: row.get::<_, i64>(1)? as u64,
            seq: row.get::<_, Option<i64>>(2)?.map(|s| s as u64),
            pot_id: row.get(3)?,
            pot_type: row.get(4)?,
            event_type: row.get(5)?,
            timestamp: row.get(6)?,
            data: row.get(7)?,
            geo: Geo {
                country: row.get(8)?,
                country_name: row.get(9)?,
                city: row.get(10)?,
                asn: row.get(11)?,
                as_org: row.get(12)?,
                net: row.get(13)?,
            },
        })
    })?;
    rows.collect()
}

/// Deletes events older than `retention_days` (0: keep), beyond the newest
/// `max_events` (0: no cap), and the oldest while the database's used pages
/// exceed `max_bytes` (0: no cap), taking each out of the summary tables;
/// returns how many went.
pub fn expire(
    tx: &Transaction,
    now_us: i64,
    retention_days: u64,
    max_events: u64,
    max_bytes: u64,
) -> rusqlite::Result<usize> {
    let mut gone = 0;
    if retention_days > 0 {
        let cutoff = now_us.saturating_sub((retention_days as i64).saturating_mul(86_400_000_000));
        gone += expire_before(tx, cutoff)?;
    }
    if max_events > 0 {
        let last: Option<i64> = tx
            .prepare_cached("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1")?
            .query_row(params![max_events as i64], |r| r.get(0))
            .optional()?;
        if let Some(last) = last {
            gone += delete_through(tx, last)?;
        }
    }
    if max_bytes > 0 {
        gone += expire_bytes(tx, max_bytes)?;
    }
    Ok(gone)
}

/// Deletes the events dated before `cutoff`. Summary rows of hours and days
/// wholly before it go whole; the events of the hour and the day the cutoff
/// falls in are taken out one by one.
fn expire_before(tx: &Transaction, cutoff: i64) -> rusqlite::Result<usize> {
    let hour = cutoff.div_euclid(HOUR_US);
    let day = cutoff.div_euclid(DAY_US);
    tx.prepare_cached("DELETE FROM rollup_hour WHERE bucket < ?1")?
        .execute(params![hour])?;
    tx.prepare_cached("DELETE FROM rollup_day WHERE bucket < ?1")?
        .execute(params![day])?;
    let mut delta = Delta::default();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM events WHERE time >= ?1 AND time < ?2"
        ))?;
        let mut rows = stmt.query(params![day * DAY_US, cutoff])?;
        while let Some(r) = rows.next()? {
            let time: i64 = r.get(1)?;
            let tiers: &[Tier] = if time >= hour * HOUR_US {
                &[Tier::Hour, Tier::Day]
            } else {
                &[Tier::Day]
            };
            add_row(&mut delta, r, -1, tiers)?;
        }
    }
    apply_rollup(tx, &delta)?;
    tx.prepare_cached("DELETE FROM events WHERE time < ?1")?
        .execute(params![cutoff])
}

/// Deletes every event with an id up to `last`, taking each out of the
/// summary tables, a chunk at a time.
fn delete_through(tx: &Transaction, last: i64) -> rusqlite::Result<usize> {
    let mut gone = 0;
    loop {
        let (delta, upto, n) = unroll_chunk(tx, "id <= ?1", last, -1)?;
        if n == 0 {
            break;
        }
        apply_rollup(tx, &delta)?;
        gone += tx
            .prepare_cached("DELETE FROM events WHERE id <= ?1")?
            .execute(params![upto])?;
    }
    Ok(gone)
}

/// Bytes in use: pages that are not on the free list. Cheap (two pragmas),
/// and freed pages are reused, so the file stops growing at the cap.
pub fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((pages.saturating_sub(free) as u64).saturating_mul(size as u64))
}

/// Deletes the oldest events, a slice at a time, until the used bytes are
/// under `max_bytes` (or no event is left).
fn expire_bytes(tx: &Transaction, max_bytes: u64) -> rusqlite::Result<usize> {
    let mut gone = 0;
    for _ in 0..32 {
        let used = used_bytes(tx)?;
        if used <= max_bytes {
            break;
        }
        let count: i64 = tx.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        if count == 0 {
            break;
        }
        // The share of events that the excess is, plus a margin; at least 100.
        let excess = (used - max_bytes) as f64 / used as f64;
        let n = ((count as f64 * excess * 1.1) as i64).clamp(100, count);
        let last: Option<i64> = tx
            .prepare_cached("SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?1")?
            .query_row(params![n - 1], |r| r.get(0))
            .optional()?;
        let Some(last) = last else { break };
        let deleted = delete_through(tx, last)?;
        gone += deleted;
        if deleted == 0 {
            break;
        }
    }
    Ok(gone)
}

/// The statistics' reads, on one connection.
pub struct SqliteStats<'c>(pub &'c Connection);

fn text(e: rusqlite::Error) -> String {
    e.to_string()
}

impl StatsSource for SqliteStats<'_> {
    fn total(&mut self) -> Result<u64, String> {
        self.0
            .query_row(
                "SELECT COALESCE(SUM(n), 0) FROM rollup_day WHERE dim = 0",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(text)
    }

    fn raw_count(&mut self, since: i64, until: i64) -> Result<u64, String> {
        self.0
            .prepare_cached("SELECT COUNT(*) FROM events WHERE time >= ?1 AND time <= ?2")
            .and_then(|mut s| s.query_row(params![since, until], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(text)
    }

    fn raw_minutes(&mut self, since: i64, until: i64) -> Result<Vec<(i64, u64)>, String> {
        // Minutes by floor division, before 1970 too.
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT (time - (((time % ?1) + ?1) % ?1)) / ?1, COUNT(*) FROM events
                 WHERE time >= ?2 AND time <= ?3 GROUP BY 1",
            )
            .map_err(text)?;
        let rows = stmt
            .query_map(params![MINUTE_US, since, until], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(text)?;
        rows.collect::<Result<_, _>>().map_err(text)
    }

    fn raw_top(
        &mut self,
        dim: Dim,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        let column = dim.expression();
        let sql = format!(
            "SELECT {column}, COUNT(*) AS n FROM events
             WHERE time >= ?1 AND time <= ?2 AND {column} IS NOT NULL
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?3"
        );
        let mut stmt = self.0.prepare_cached(&sql).map_err(text)?;
        let rows = stmt
            .query_map(params![since, until, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(text)?;
        // The same keys as the summaries: long values cut alike.
        let mut out: Vec<(String, u64)> = Vec::new();
        for row in rows {
            let (v, n) = row.map_err(text)?;
            out.push((crate::store::rollup::value_key(&v), n));
        }
        Ok(out)
    }

    fn raw_delta(&mut self, since: i64, until: i64) -> Result<Pending, String> {
        let mut stmt = self
            .0
            .prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM events WHERE time >= ?1 AND time <= ?2"
            ))
            .map_err(text)?;
        let mut rows = stmt.query(params![since, until]).map_err(text)?;
        let mut counts = Pending::default();
        while let Some(r) = rows.next().map_err(text)? {
            // Strings are read in place (no copy per row).
            let t = |i: usize| {
                r.get_ref(i)
                    .ok()
                    .and_then(|v| v.as_str_or_null().ok().flatten())
            };
            let keys = Keys {
                time_us: r.get(1).map_err(text)?,
                src_ip: t(2),
                username: t(3),
                password: t(4),
                input: t(5),
                event_type: t(6),
                country: t(7),
                asn: r.get(8).map_err(text)?,
            };
            counts.count_keys(&keys, 1);
        }
        Ok(counts)
    }

    fn hours(&mut self, h0: i64, h1: i64) -> Result<Vec<(i64, u64)>, String> {
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT bucket, n FROM rollup_hour WHERE dim = 0 AND bucket >= ?1 AND bucket < ?2",
            )
            .map_err(text)?;
        let rows = stmt
            .query_map(params![h0, h1], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .map_err(text)?;
        rows.collect::<Result<_, _>>().map_err(text)
    }

    fn bucket_tops(
        &mut self,
        tier: Tier,
        dim: Dim,
        buckets: &[i64],
        m: usize,
    ) -> Result<Vec<(i64, String, u64)>, String> {
        let table = tier.table();
        let mut stmt = self
            .0
            .prepare_cached(&format!(
                "SELECT value, n FROM {table} WHERE dim = ?1 AND bucket = ?2
                 ORDER BY n DESC LIMIT ?3"
            ))
            .map_err(text)?;
        let mut out = Vec::new();
        for &b in buckets {
            let rows = stmt
                .query_map(params![dim.id(), b, m as i64], |r| {
                    Ok((b, r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
                })
                .map_err(text)?;
            for row in rows {
                out.push(row.map_err(text)?);
            }
        }
        Ok(out)
    }

    fn points(
        &mut self,
        tier: Tier,
        dim: Dim,
        pairs: &[(i64, String)],
    ) -> Result<Vec<(i64, String, u64)>, String> {
        let table = tier.table();
        let mut stmt = self
            .0
            .prepare_cached(&format!(
                "SELECT n FROM {table} WHERE dim = ?1 AND bucket = ?2 AND value = ?3"
            ))
            .map_err(text)?;
        let mut out = Vec::new();
        for (b, v) in pairs {
            let n: Option<i64> = stmt
                .query_row(params![dim.id(), b, v], |r| r.get(0))
                .optional()
                .map_err(text)?;
            if let Some(n) = n {
                out.push((*b, v.clone(), n.max(0) as u64));
            }
        }
        Ok(out)
    }

    fn group(
        &mut self,
        dim: Dim,
        spans: &[(Tier, i64, i64)],
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let union = crate::store::rollup::spans_sql(dim, spans);
        // Every piece is a number or a constant of this file.
        let sql = format!(
            "SELECT value, SUM(n) AS s FROM ({}) GROUP BY value ORDER BY s DESC, value LIMIT ?1",
            union
        );
        let mut stmt = self.0.prepare(&sql).map_err(text)?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .map_err(text)?;
        rows.collect::<Result<_, _>>().map_err(text)
    }

    fn labels(&mut self, dim: Dim, values: &[String]) -> Result<HashMap<String, String>, String> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT label FROM rollup_labels WHERE dim = ?1 AND value = ?2")
            .map_err(text)?;
        let mut out = HashMap::new();
        for v in values {
            let label: Option<String> = stmt
                .query_row(params![dim.id(), v], |r| r.get(0))
                .optional()
                .map_err(text)?;
            if let Some(l) = label {
                out.insert(v.clone(), l);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_without_the_input_column_gets_it() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&SCHEMA.replace("    input TEXT,\n", ""))
            .unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row(
                "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'input'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(count(&conn), 0);
        assert_eq!(migrate(&conn).unwrap(), None);
        assert_eq!(count(&conn), 1);
        assert_eq!(migrate(&conn).unwrap(), None);
    }
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    #[test]
    fn retention_by_bytes_keeps_the_newest_under_the_cap() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let tx = conn.transaction().unwrap();
        let blob = "x".repeat(10_000);
        for i in 0..2000i64 {
            tx.execute(
                "INSERT INTO events (node_id, pot_id, pot_type, event_type, timestamp, time, data)
                 VALUES (1, 'p', 't', 'e', '', ?1, ?2)",
                params![i, blob],
            )
            .unwrap();
        }
        let before = used_bytes(&tx).unwrap();
        assert!(before > 20_000_000, "{before}");
        let cap = 5_000_000;
        let gone = expire(&tx, 0, 0, 0, cap).unwrap();
        assert!(used_bytes(&tx).unwrap() <= cap);
        assert!((1400..2000).contains(&gone), "{gone} deleted");
        let newest: i64 = tx
            .query_row("SELECT MAX(time) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(newest, 1999, "the newest event is kept");
        // Under the cap nothing goes.
        assert_eq!(expire(&tx, 0, 0, 0, cap).unwrap(), 0);
    }
}
