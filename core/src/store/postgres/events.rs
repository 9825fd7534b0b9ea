//! The events table in PostgreSQL: binary `COPY` for batches, the filtered
//! query, statistics, and retention by whole daily partitions.

use std::borrow::Cow;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::GenericClient;

use crate::store::backend::Retention;
use crate::store::event_row::EventRecord;
use crate::store::postgres::schema::LOCK;
use crate::store::{EventFilter, EventStats, StoredEvent};

const DAY_US: i64 = 86_400_000_000;
/// Partitions made ahead of today, so that a core whose clock runs a little
/// ahead never writes into the default partition.
const DAYS_AHEAD: i64 = 2;
/// How many values the top lists hold.
const TOP: i64 = 10;
/// Past this many events (as estimated), statistics show the estimate as
/// the total instead of counting.
const ESTIMATE_FROM: i64 = 1_000_000;

/// PostgreSQL text cannot hold NUL; a node that sends one must not be able
/// to make a batch fail forever, so it is stored as U+FFFD.
pub fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(text)
}

/// Ids one batch may take: the sequence steps by this much, so that each
/// batch's ids are one block no other core's batch interleaves with, and a
/// core hearing of the batch fetches exactly it. Larger than any batch.
pub const ID_BLOCK: i64 = 8192;
/// The advisory lock held from taking a block of ids to commit.
const ID_LOCK: i64 = LOCK + 2;
const _: () = assert!(crate::store::writer::EVENT_BATCH as i64 <= ID_BLOCK);

/// Stores `events` in one `COPY`, stamped with `received_us`, under ids from
/// one block; returns the block's first id.
pub fn insert(
    tx: &mut postgres::Transaction,
    events: &[&EventRecord],
    received_us: i64,
) -> Result<i64, postgres::Error> {
    // Ids in commit order across cores: the lock is taken last in the
    // transaction (after the seq marks; nothing else is locked after it)
    // and held until commit, so a batch that takes its block later commits
    // later. Cores take turns only for this last part of their batches.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ID_LOCK])?;
    let first: i64 = tx.query_one("SELECT nextval('events_id')", &[])?.get(0);
    let sink = tx.copy_in(
        "COPY events (id, node_id, seq, pot_id, pot_type, event_type, timestamp, time, received,
                      src_ip, src_port, dst_port, protocol, username, password, input, data)
         FROM STDIN BINARY",
    )?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for (i, e) in events.iter().enumerate() {
        let id = first + i as i64;
        let node_id = e.node_id as i64;
        let seq = e.seq.map(|s| s as i64);
        let (pot_id, pot_type, event_type) =
            (text(&e.pot_id), text(&e.pot_type), text(&e.event_type));
        let (timestamp, data) = (text(&e.timestamp), text(&e.data));
        let (src_ip, protocol) = (opt_text(&e.src_ip), opt_text(&e.protocol));
        let (username, password, input) = (
            opt_text(&e.username),
            opt_text(&e.password),
            opt_text(&e.input),
        );
        let row: [&(dyn ToSql + Sync); 17] = [
            &id,
            &node_id,
            &seq,
            &pot_id,
            &pot_type,
            &event_type,
            &timestamp,
            &e.time_us,
            &received_us,
            &src_ip,
            &e.src_port,
            &e.dst_port,
            &protocol,
            &username,
            &password,
            &input,
            &data,
        ];
        writer.write(&row)?;
    }
    writer.finish()?;
    Ok(first)
}

/// Events matching `f`, newest first; values bound as parameters.
pub fn query(
    client: &mut impl GenericClient,
    f: &EventFilter,
) -> Result<Vec<StoredEvent>, postgres::Error> {
    let mut sql = String::from(
        "SELECT id, node_id, seq, pot_id, pot_type, event_type, timestamp, data FROM events WHERE true",
    );
    let node = f.node_id.map(|v| v as i64);
    let limit = i64::from(f.limit);
    let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut clause = |sql_part: &str, value: &'static str, arg| {
        args.push(arg);
        sql.push_str(&format!(" AND {sql_part} {value} ${}", args.len()));
    };
    if let Some(v) = &node {
        clause("node_id", "=", v as &(dyn ToSql + Sync));
    }
    if let Some(v) = &f.pot_id {
        clause("pot_id", "=", v);
    }
    if let Some(v) = &f.event_type {
        clause("event_type", "=", v);
    }
    if let Some(v) = &f.src_ip {
        clause("src_ip", "=", v);
    }
    if let Some(v) = &f.since_us {
        clause("time", ">=", v);
    }
    if let Some(v) = &f.until_us {
        clause("time", "<=", v);
    }
    if let Some(v) = &f.before_id {
        clause("id", "<", v);
    }
    if let Some(v) = &f.after_id {
        clause("id", ">", v);
    }
    args.push(&limit);
    let order = if f.after_id.is_some() { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY id {order} LIMIT ${}", args.len()));
    let rows = client.query(sql.as_str(), &args)?;
    Ok(rows
        .iter()
        .map(|row| StoredEvent {
            id: row.get(0),
            node_id: row.get::<_, i64>(1) as u64,
            seq: row.get::<_, Option<i64>>(2).map(|s| s as u64),
            pot_id: row.get(3),
            pot_type: row.get(4),
            event_type: row.get(5),
            timestamp: row.get(6),
            data: row.get(7),
        })
        .collect())
}

/// See [`EventStats`].
pub fn stats(
    client: &mut impl GenericClient,
    now_us: i64,
    hours: u32,
) -> Result<EventStats, postgres::Error> {
    let minute = 60_000_000i64;
    let since = now_us - i64::from(hours) * 3_600_000_000;
    let hour_start = (now_us / minute - 59) * minute;
    // Counting a hundred million rows takes seconds: past a million the
    // planner's estimate (kept by autovacuum) is the total shown.
    let estimate: i64 = client
        .query_one(
            "SELECT COALESCE(SUM(GREATEST(c.reltuples, 0)), 0)::BIGINT
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )?
        .get(0);
    let total: i64 = if estimate > ESTIMATE_FROM {
        estimate
    } else {
        client.query_one("SELECT COUNT(*) FROM events", &[])?.get(0)
    };
    let in_window: i64 = client
        .query_one("SELECT COUNT(*) FROM events WHERE time >= $1", &[&since])?
        .get(0);
    let mut counts = std::collections::HashMap::new();
    for row in client.query(
        "SELECT time / $1, COUNT(*) FROM events WHERE time >= $2 GROUP BY 1",
        &[&minute, &hour_start],
    )? {
        counts.insert(row.get::<_, i64>(0) * minute, row.get::<_, i64>(1) as u64);
    }
    let top = |column: &str| -> Result<Vec<(String, u64)>, postgres::Error> {
        // `column` is one of the constant expressions below, never input.
        let sql = format!(
            "SELECT {column}, COUNT(*) AS n FROM events WHERE time >= $1 AND {column} IS NOT NULL
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT $2"
        );
        Ok(client
            .query(sql.as_str(), &[&since, &TOP])?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect())
    };
    EventStats::assemble(total as u64, in_window as u64, hour_start, &counts, top)
}

/// The partition holding day `day` (days since the epoch).
fn partition_name(day: i64) -> String {
    format!("events_d{day}")
}

/// Creates the daily partitions from today to [`DAYS_AHEAD`] days ahead.
/// Rows the default partition holds for such a day move into it first.
pub fn ensure_partitions(
    tx: &mut postgres::Transaction,
    now_us: i64,
) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
    let today = now_us.div_euclid(DAY_US);
    for day in today..=today + DAYS_AHEAD {
        let name = partition_name(day);
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])?
            .get(0);
        if exists {
            continue;
        }
        let (lo, hi) = (day * DAY_US, (day + 1) * DAY_US);
        // Names and bounds are numbers this function made, never input.
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE moving ON COMMIT DROP AS
                 SELECT * FROM events_default WHERE received >= {lo} AND received < {hi};
             DELETE FROM events_default WHERE received >= {lo} AND received < {hi};
             CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ({lo}) TO ({hi});
             INSERT INTO events SELECT * FROM moving;
             DROP TABLE moving;"
        ))?;
    }
    Ok(())
}

/// Drops what `r` no longer keeps: whole days past `r.days`, then the
/// oldest days while over `max_events` or `max_bytes` (today's partition is
/// never dropped). Returns how many events went.
pub fn expire(
    tx: &mut postgres::Transaction,
    now_us: i64,
    r: &Retention,
) -> Result<u64, postgres::Error> {
    ensure_partitions(tx, now_us)?;
    let today = now_us.div_euclid(DAY_US);
    // Oldest first: (day, name, bytes).
    let mut parts: Vec<(i64, String, i64)> = Vec::new();
    for row in tx.query(
        "SELECT c.relname, pg_total_relation_size(c.oid)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events\\_d%'",
        &[],
    )? {
        let name: String = row.get(0);
        if let Some(day) = name
            .strip_prefix("events_d")
            .and_then(|d| d.parse::<i64>().ok())
        {
            parts.push((day, name, row.get(1)));
        }
    }
    parts.sort();
    let mut gone = 0u64;
    let mut kept = Vec::new();
    for (day, name, bytes) in parts {
        let past = r.days > 0 && day + r.days as i64 <= today;
        if past && day < today {
            gone += drop_partition(tx, &name)?;
        } else {
            kept.push((day, name, bytes));
        }
    }
    if r.days > 0 {
        // Whole days by arrival, then what arrived recently but is dated
        // older (a node sending its spool late): retention is by the
        // event's own time, as with SQLite. The time index finds those few.
        let cutoff = now_us.saturating_sub((r.days as i64).saturating_mul(DAY_US));
        gone += tx.execute("DELETE FROM events_default WHERE received < $1", &[&cutoff])?;
        gone += tx.execute("DELETE FROM events WHERE time < $1", &[&cutoff])?;
    }
    if r.max_bytes > 0 {
        let mut total: i64 = kept.iter().map(|p| p.2).sum();
        for (day, name, bytes) in &kept {
            if total as u64 <= r.max_bytes || *day >= today {
                break;
            }
            gone += drop_partition(tx, name)?;
            total -= bytes;
        }
    }
    if r.max_events > 0 {
        let max = r.max_events as i64;
        let count: i64 = tx.query_one("SELECT COUNT(*) FROM events", &[])?.get(0);
        if count > max {
            gone += tx.execute(
                "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1)",
                &[&max],
            )?;
        }
    }
    Ok(gone)
}

/// Drops one daily partition; how many events it held.
fn drop_partition(tx: &mut postgres::Transaction, name: &str) -> Result<u64, postgres::Error> {
    // `name` came from the catalogue and matched `events_d<number>`.
    let n: i64 = tx
        .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])?
        .get(0);
    tx.batch_execute(&format!("DROP TABLE {name}"))?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_stored_as_a_replacement_character_and_other_text_untouched() {
        assert_eq!(text("a\0b"), "a\u{fffd}b");
        assert!(matches!(text("plain ü"), Cow::Borrowed("plain ü")));
    }
}
