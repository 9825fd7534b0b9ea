//! The events table: schema, batched inserts with de-duplication, the
//! filtered query, and retention. Functions over a connection; the writer
//! thread and the reader connection in `store::sqlite` call them.

use std::collections::HashMap;

use rusqlite::types::ToSql;
use rusqlite::{params, Connection, Transaction};

use crate::store::event_row::EventRecord;
use crate::store::{EventFilter, EventStats, StoredEvent};

/// Tables and one index per API filter. A replayed event is recognised by
/// `event_seqs`, each node's highest stored `seq` (PROTOCOL.md §6: seqs are
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
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_seqs (
    node_id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_node ON events (node_id, id);
CREATE INDEX IF NOT EXISTS events_by_pot ON events (pot_id, id);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, id);
CREATE INDEX IF NOT EXISTS events_by_src ON events (src_ip, id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
";

/// Databases written before `event_seqs` de-duplicated with a unique index:
/// carry its high-water marks over once, then drop it.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    // Step 5 added `input` (a command typed into a pot).
    let has_input: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'input'",
        [],
        |r| r.get(0),
    )?;
    if has_input == 0 {
        conn.execute_batch("ALTER TABLE events ADD COLUMN input TEXT")?;
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
    Ok(())
}

/// The highest stored `seq` of each of `nodes` that has one.
pub fn load_seqs(conn: &Connection, nodes: &[u64]) -> rusqlite::Result<HashMap<u64, u64>> {
    let mut stmt = conn.prepare_cached("SELECT seq FROM event_seqs WHERE node_id = ?1")?;
    let mut marks = HashMap::new();
    for &node in nodes {
        let mut rows = stmt.query(params![node as i64])?;
        if let Some(row) = rows.next()? {
            marks.insert(node, row.get::<_, i64>(0)? as u64);
        }
    }
    Ok(marks)
}

/// Records `seq` as the highest stored for `node_id`.
pub fn save_seq(tx: &Transaction, node_id: u64, seq: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO event_seqs (node_id, seq) VALUES (?1, ?2)
         ON CONFLICT (node_id) DO UPDATE SET seq = excluded.seq",
    )?
    .execute(params![node_id as i64, seq as i64])?;
    Ok(())
}

/// Inserts one event; the caller has ruled out a replay.
pub fn insert(tx: &Transaction, e: &EventRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (node_id, seq, pot_id, pot_type, event_type, timestamp, time,
             src_ip, src_port, dst_port, protocol, username, password, data, input)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
    ])?;
    Ok(())
}

/// Events matching `f`, newest first. Values are bound as parameters,
/// never spliced into the SQL.
pub fn query(conn: &Connection, f: &EventFilter) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut sql = String::from(
        "SELECT id, node_id, seq, pot_id, pot_type, event_type, timestamp, data FROM events WHERE 1=1",
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
        })
    })?;
    rows.collect()
}

/// Deletes events older than `retention_days` (0: keep), beyond the newest
/// `max_events` (0: no cap), and the oldest while the database's used pages
/// exceed `max_bytes` (0: no cap); returns how many went.
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
        gone += tx
            .prepare_cached("DELETE FROM events WHERE time < ?1")?
            .execute(params![cutoff])?;
    }
    if max_events > 0 {
        gone += tx
            .prepare_cached(
                "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            )?
            .execute(params![max_events as i64])?;
    }
    if max_bytes > 0 {
        gone += expire_bytes(tx, max_bytes)?;
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
        let deleted = tx
            .prepare_cached(
                "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?1)",
            )?
            .execute(params![n])?;
        gone += deleted;
        if deleted == 0 {
            break;
        }
    }
    Ok(gone)
}

/// How many values the top lists hold.
pub const TOP: i64 = 10;

/// See [`EventStats`]; every query uses the time index except the total.
pub fn stats(conn: &Connection, now_us: i64, hours: u32) -> rusqlite::Result<EventStats> {
    let minute = 60_000_000i64;
    let since = now_us - i64::from(hours) * 3_600_000_000;
    let hour_start = (now_us / minute - 59) * minute;
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    let in_window: i64 = conn.query_row(
        "SELECT COUNT(*) FROM events WHERE time >= ?1",
        params![since],
        |r| r.get(0),
    )?;
    let mut counts = std::collections::HashMap::new();
    {
        let mut stmt = conn
            .prepare_cached("SELECT time / ?1, COUNT(*) FROM events WHERE time >= ?2 GROUP BY 1")?;
        let rows = stmt.query_map(params![minute, hour_start], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (m, c) = row?;
            counts.insert(m * minute, c as u64);
        }
    }
    let top = |column: &str| -> rusqlite::Result<Vec<(String, u64)>> {
        // `column` is one of the constant expressions below, never input.
        let sql = format!(
            "SELECT {column}, COUNT(*) AS n FROM events WHERE time >= ?1 AND {column} IS NOT NULL
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![since, TOP], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        rows.collect()
    };
    EventStats::assemble(total as u64, in_window as u64, hour_start, &counts, top)
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
        migrate(&conn).unwrap();
        assert_eq!(count(&conn), 1);
        migrate(&conn).unwrap();
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
