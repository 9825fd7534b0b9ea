//! The events table in PostgreSQL: binary `COPY` for batches, the filtered
//! query, statistics, and retention by whole daily partitions.

use std::borrow::Cow;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::GenericClient;

use std::collections::HashMap;

use crate::geo::Geo;
use crate::store::backend::Retention;
use crate::store::event_row::EventRecord;
use crate::store::postgres::conn::Conn;
use crate::store::postgres::schema::LOCK;
use crate::store::rollup::{Delta, Dim, Keys, Pending, Tier};
use crate::store::stats::{StatsSource, MINUTE_US};
use crate::store::{EventFilter, StoredEvent};

const DAY_US: i64 = 86_400_000_000;
/// Partitions made ahead of today, so that a core whose clock runs a little
/// ahead never writes into the default partition.
const DAYS_AHEAD: i64 = 2;

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
                      src_ip, src_port, dst_port, protocol, username, password, input, data,
                      country, country_name, city, asn, as_org, net)
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
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
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
        let g = e.geo();
        let (country, country_name, city) = (
            opt_text(&g.country),
            opt_text(&g.country_name),
            opt_text(&g.city),
        );
        let (as_org, net) = (opt_text(&g.as_org), opt_text(&g.net));
        let row: [&(dyn ToSql + Sync); 23] = [
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
            &country,
            &country_name,
            &city,
            &g.asn,
            &as_org,
            &net,
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
        "SELECT id, node_id, seq, pot_id, pot_type, event_type, timestamp, data,
                country, country_name, city, asn, as_org, net FROM events WHERE true",
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
    if let Some(v) = &f.country {
        clause("country", "=", v);
    }
    if let Some(v) = &f.asn {
        clause("asn", "=", v);
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
            geo: Geo {
                country: row.get(8),
                country_name: row.get(9),
                city: row.get(10),
                asn: row.get(11),
                as_org: row.get(12),
                net: row.get(13),
            },
        })
        .collect())
}

/// Adds `delta` to the summary tables (rows that reach 0 go) and records
/// the names it carries; rows in sorted order. Called after `insert`, so
/// under the id lock: cores add to the summaries one at a time.
pub fn apply_rollup(tx: &mut postgres::Transaction, delta: &Delta) -> Result<(), postgres::Error> {
    for tier in [Tier::Hour, Tier::Day] {
        let rows: Vec<_> = delta.sorted().into_iter().filter(|r| r.0 == tier).collect();
        if rows.is_empty() {
            continue;
        }
        let dims: Vec<i32> = rows.iter().map(|r| r.1.id() as i32).collect();
        let buckets: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let values: Vec<String> = rows.iter().map(|r| text(r.3).into_owned()).collect();
        let ns: Vec<i64> = rows.iter().map(|r| r.4).collect();
        let table = tier.table();
        tx.execute(
            &format!(
                "INSERT INTO {table} (dim, bucket, value, n)
                 SELECT * FROM unnest($1::INTEGER[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[])
                 ON CONFLICT (dim, bucket, value) DO UPDATE SET n = {table}.n + EXCLUDED.n"
            ),
            &[&dims, &buckets, &values, &ns],
        )?;
        if ns.iter().any(|&n| n < 0) {
            tx.execute(
                &format!(
                    "DELETE FROM {table} t USING unnest($1::INTEGER[], $2::BIGINT[], $3::TEXT[])
                         AS v(dim, bucket, value)
                     WHERE t.dim = v.dim AND t.bucket = v.bucket AND t.value = v.value
                       AND t.n <= 0"
                ),
                &[&dims, &buckets, &values],
            )?;
        }
    }
    if !delta.labels.is_empty() {
        let mut labels: Vec<_> = delta.labels.iter().collect();
        labels.sort();
        let dims: Vec<i32> = labels.iter().map(|((d, _), _)| d.id() as i32).collect();
        let values: Vec<String> = labels
            .iter()
            .map(|((_, v), _)| text(v).into_owned())
            .collect();
        let names: Vec<String> = labels.iter().map(|(_, l)| text(l).into_owned()).collect();
        tx.execute(
            "INSERT INTO rollup_labels (dim, value, label)
             SELECT * FROM unnest($1::INTEGER[], $2::TEXT[], $3::TEXT[])
             ON CONFLICT (dim, value) DO UPDATE SET label = EXCLUDED.label
             WHERE rollup_labels.label <> EXCLUDED.label",
            &[&dims, &values, &names],
        )?;
    }
    Ok(())
}

/// The columns the summaries count, as read back.
const KEY_COLUMNS: &str = "time, src_ip, username, password, input, event_type, country, asn";

/// Counts rows of [`KEY_COLUMNS`] into `delta`, `sign` times.
fn add_rows(delta: &mut Delta, rows: &[postgres::Row], sign: i64) {
    add_rows_to(delta, rows, sign, &[Tier::Hour, Tier::Day]);
}

/// [`add_rows`] into these tables only.
fn add_rows_to(delta: &mut Delta, rows: &[postgres::Row], sign: i64, tiers: &[Tier]) {
    for r in rows {
        let src_ip: Option<String> = r.get(1);
        let username: Option<String> = r.get(2);
        let password: Option<String> = r.get(3);
        let input: Option<String> = r.get(4);
        let event_type: Option<String> = r.get(5);
        let country: Option<String> = r.get(6);
        let keys = Keys {
            time_us: r.get(0),
            src_ip: src_ip.as_deref(),
            username: username.as_deref(),
            password: password.as_deref(),
            input: input.as_deref(),
            event_type: event_type.as_deref(),
            country: country.as_deref(),
            asn: r.get(7),
        };
        delta.add_to(&keys, sign, tiers);
    }
}

/// Rows per step when reading events for the summaries.
const CHUNK: i64 = 50_000;

/// Fills the summary tables from every stored event (schema version 3).
pub fn backfill(tx: &mut postgres::Transaction) -> Result<u64, postgres::Error> {
    let mut after = i64::MIN;
    let mut total = 0u64;
    loop {
        let rows = tx.query(
            &format!(
                "SELECT {KEY_COLUMNS}, id FROM events WHERE id > $1 ORDER BY id LIMIT {CHUNK}"
            ),
            &[&after],
        )?;
        let Some(last) = rows.last() else { break };
        after = last.get(8);
        total += rows.len() as u64;
        let mut delta = Delta::default();
        add_rows(&mut delta, &rows, 1);
        apply_rollup(tx, &delta)?;
    }
    Ok(total)
}

/// Deletes events matching `condition` (constant SQL on `$1`), a chunk at a
/// time, taking each out of the summary tables; how many went.
fn delete_counted(
    tx: &mut postgres::Transaction,
    table: &str,
    condition: &str,
    arg: i64,
) -> Result<u64, postgres::Error> {
    let mut gone = 0;
    loop {
        // `table` and `condition` are constants or catalogue names.
        let rows = tx.query(
            &format!(
                "DELETE FROM {table} WHERE id IN
                     (SELECT id FROM {table} WHERE {condition} ORDER BY id LIMIT {CHUNK})
                 RETURNING {KEY_COLUMNS}"
            ),
            &[&arg],
        )?;
        if rows.is_empty() {
            return Ok(gone);
        }
        gone += rows.len() as u64;
        let mut delta = Delta::default();
        add_rows(&mut delta, &rows, -1);
        apply_rollup(tx, &delta)?;
    }
}

/// The statistics' reads on one connection; the first database error is
/// kept, so that a broken connection is opened again.
pub struct PgStats<'c> {
    /// The connection.
    pub conn: &'c mut Conn,
    /// The first error met.
    pub error: Option<postgres::Error>,
}

impl PgStats<'_> {
    fn fail(&mut self, e: postgres::Error) -> String {
        let text = crate::store::postgres::describe(&e);
        if self.error.is_none() {
            self.error = Some(e);
        }
        text
    }

    fn rows(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, String> {
        match self.conn.query(sql, params) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.fail(e)),
        }
    }
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl StatsSource for PgStats<'_> {
    fn total(&mut self) -> Result<u64, String> {
        let rows = self.rows(
            "SELECT COALESCE(SUM(n), 0)::BIGINT FROM rollup_day WHERE dim = 0",
            &[],
        )?;
        Ok(rows.first().map_or(0, |r| count(r.get(0))))
    }

    fn raw_count(&mut self, since: i64, until: i64) -> Result<u64, String> {
        let rows = self.rows(
            "SELECT COUNT(*) FROM events WHERE time >= $1 AND time <= $2",
            &[&since, &until],
        )?;
        Ok(rows.first().map_or(0, |r| count(r.get(0))))
    }

    fn raw_minutes(&mut self, since: i64, until: i64) -> Result<Vec<(i64, u64)>, String> {
        let rows = self.rows(
            "SELECT floor(time::NUMERIC / $1::BIGINT)::BIGINT, COUNT(*) FROM events
             WHERE time >= $2 AND time <= $3 GROUP BY 1",
            &[&MINUTE_US, &since, &until],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), count(r.get(1)))).collect())
    }

    fn raw_top(
        &mut self,
        dim: Dim,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        let column = dim.expression();
        let limit = limit as i64;
        let rows = self.rows(
            &format!(
                "SELECT {column}, COUNT(*) AS n FROM events
                 WHERE time >= $1 AND time <= $2 AND {column} IS NOT NULL
                 GROUP BY {column} ORDER BY n DESC, {column} LIMIT $3"
            ),
            &[&since, &until, &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let v: String = r.get(0);
                (crate::store::rollup::value_key(&v), count(r.get(1)))
            })
            .collect())
    }

    fn raw_delta(&mut self, since: i64, until: i64) -> Result<Pending, String> {
        let rows = self.rows(
            &format!("SELECT {KEY_COLUMNS} FROM events WHERE time >= $1 AND time <= $2"),
            &[&since, &until],
        )?;
        let mut counts = Pending::default();
        for r in &rows {
            let keys = Keys {
                time_us: r.get(0),
                src_ip: r.get(1),
                username: r.get(2),
                password: r.get(3),
                input: r.get(4),
                event_type: r.get(5),
                country: r.get(6),
                asn: r.get(7),
            };
            counts.count_keys(&keys, 1);
        }
        Ok(counts)
    }

    fn hours(&mut self, h0: i64, h1: i64) -> Result<Vec<(i64, u64)>, String> {
        let rows = self.rows(
            "SELECT bucket, n FROM rollup_hour WHERE dim = 0 AND bucket >= $1 AND bucket < $2",
            &[&h0, &h1],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), count(r.get(1)))).collect())
    }

    fn bucket_tops(
        &mut self,
        tier: Tier,
        dim: Dim,
        buckets: &[i64],
        m: usize,
    ) -> Result<Vec<(i64, String, u64)>, String> {
        let table = tier.table();
        let (dim, m) = (dim.id() as i32, m as i64);
        let rows = self.rows(
            &format!(
                "SELECT b, t.value, t.n FROM unnest($1::BIGINT[]) AS b,
                 LATERAL (SELECT value, n FROM {table} WHERE dim = $2 AND bucket = b
                          ORDER BY n DESC LIMIT $3) AS t"
            ),
            &[&buckets, &dim, &m],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), count(r.get(2))))
            .collect())
    }

    fn points(
        &mut self,
        tier: Tier,
        dim: Dim,
        pairs: &[(i64, String)],
    ) -> Result<Vec<(i64, String, u64)>, String> {
        let table = tier.table();
        let dim = dim.id() as i32;
        let buckets: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let values: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
        let rows = self.rows(
            &format!(
                "SELECT t.bucket, t.value, t.n FROM unnest($2::BIGINT[], $3::TEXT[]) AS v(bucket, value)
                 JOIN {table} t ON t.dim = $1 AND t.bucket = v.bucket AND t.value = v.value"
            ),
            &[&dim, &buckets, &values],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), count(r.get(2))))
            .collect())
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
        let limit = limit as i64;
        // Every piece is a number or a constant of this file; not prepared
        // (the numbers change with every range).
        let sql = format!(
            "SELECT value, SUM(n)::BIGINT AS s FROM ({}) AS r GROUP BY value
             ORDER BY s DESC, value LIMIT $1",
            union
        );
        let rows = match self.conn.client().query(sql.as_str(), &[&limit]) {
            Ok(r) => r,
            Err(e) => return Err(self.fail(e)),
        };
        Ok(rows.iter().map(|r| (r.get(0), count(r.get(1)))).collect())
    }

    fn labels(&mut self, dim: Dim, values: &[String]) -> Result<HashMap<String, String>, String> {
        let dim = dim.id() as i32;
        let rows = self.rows(
            "SELECT value, label FROM rollup_labels WHERE dim = $1 AND value = ANY($2)",
            &[&dim, &values],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
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
        gone += delete_counted(tx, "events_default", "received < $1", cutoff)?;
        gone += delete_counted(tx, "events", "time < $1", cutoff)?;
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
            let last: Option<i64> = tx
                .query_opt(
                    "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1",
                    &[&max],
                )?
                .map(|r| r.get(0));
            if let Some(last) = last {
                gone += delete_counted(tx, "events", "id <= $1", last)?;
            }
        }
    }
    Ok(gone)
}

/// Drops one daily partition, taking its events out of the summary tables
/// first; how many events it held.
fn drop_partition(tx: &mut postgres::Transaction, name: &str) -> Result<u64, postgres::Error> {
    // `name` came from the catalogue and matched `events_d<number>`.
    let mut after = i64::MIN;
    let mut n = 0u64;
    loop {
        let rows = tx.query(
            &format!(
                "SELECT {KEY_COLUMNS}, id FROM {name} WHERE id > $1 ORDER BY id LIMIT {CHUNK}"
            ),
            &[&after],
        )?;
        let Some(last) = rows.last() else { break };
        after = last.get(8);
        n += rows.len() as u64;
        let mut delta = Delta::default();
        add_rows(&mut delta, &rows, -1);
        apply_rollup(tx, &delta)?;
    }
    tx.batch_execute(&format!("DROP TABLE {name}"))?;
    Ok(n)
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
