//! The PostgreSQL schema: created and migrated at start under an advisory
//! lock, so that several cores starting at the same moment take turns, and
//! versioned, so that an older core refuses a database a newer one migrated.

use postgres::GenericClient;

/// The schema this core writes.
pub const VERSION: i32 = 4;

/// Advisory lock key ("HoneyBee" in ASCII) held while migrating and while
/// partitions are created or dropped.
pub const LOCK: i64 = 0x486f_6e65_7942_6565;

/// Version 1. Events are partitioned by day of arrival (`received`, the
/// core's clock, never the node's), so retention drops whole tables and a
/// hostile node's timestamps cannot make the core create partitions; a
/// default partition catches what falls outside the ones made ahead.
const V1: &str = "
CREATE TABLE nodes (
    node_id BIGINT PRIMARY KEY,
    node_name TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    approved BOOLEAN NOT NULL,
    totp_key BYTEA,
    last_totp_step BIGINT,
    agent_version TEXT,
    capabilities TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    last_seen TEXT,
    approved_for TEXT
);
CREATE TABLE pots (
    node_id BIGINT NOT NULL,
    pot_id TEXT NOT NULL,
    pot_type TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    details TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (node_id, pot_id)
);
CREATE TABLE node_events (
    id BIGSERIAL PRIMARY KEY,
    node_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT,
    description TEXT,
    time TEXT NOT NULL
);
CREATE INDEX node_events_by_node ON node_events (node_id, id);
CREATE TABLE event_seqs (
    node_id BIGINT PRIMARY KEY,
    seq BIGINT
);
-- One block of ids per batch (events::ID_BLOCK).
CREATE SEQUENCE events_id INCREMENT BY 8192;
CREATE TABLE events (
    id BIGINT NOT NULL DEFAULT nextval('events_id'),
    node_id BIGINT NOT NULL,
    seq BIGINT,
    pot_id TEXT NOT NULL,
    pot_type TEXT NOT NULL,
    event_type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    time BIGINT NOT NULL,
    received BIGINT NOT NULL,
    src_ip TEXT,
    src_port BIGINT,
    dst_port BIGINT,
    protocol TEXT,
    username TEXT,
    password TEXT,
    input TEXT,
    data TEXT NOT NULL
) PARTITION BY RANGE (received);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_by_id ON events (id);
CREATE INDEX events_by_node ON events (node_id, id);
CREATE INDEX events_by_pot ON events (pot_id, id);
CREATE INDEX events_by_type ON events (event_type, id);
CREATE INDEX events_by_src ON events (src_ip, id);
CREATE INDEX events_by_time ON events (time);
CREATE TABLE cores (
    core_name TEXT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until TIMESTAMPTZ NOT NULL,
    health TEXT NOT NULL DEFAULT 'ok'
);
-- Which core holds each node. Every hold takes a new epoch, so a core
-- hearing late that a node moved can tell whether it took the node back since.
CREATE SEQUENCE presence_epoch;
CREATE TABLE presence (
    node_id BIGINT PRIMARY KEY,
    core_name TEXT NOT NULL,
    connection BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    since TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE lockouts (
    node_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    failures INTEGER NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    PRIMARY KEY (node_id, source)
);
";

/// Version 2. Failed TOTP checks are counted for the whole fleet: each
/// source's row keeps how many lockouts it had (they grow). A command for a
/// node another core holds waits in `routed_commands` (a NOTIFY carries only
/// its id: a payload is limited to 8,000 bytes, a command to 1 MiB); rows
/// older than a minute are removed.
const V2: &str = "
ALTER TABLE lockouts ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
CREATE TABLE routed_commands (
    id BIGSERIAL PRIMARY KEY,
    core_name TEXT NOT NULL,
    node_id BIGINT NOT NULL,
    message TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX routed_commands_by_core ON routed_commands (core_name, id);
CREATE INDEX routed_commands_by_created ON routed_commands (created);
";

/// Version 3. Enrichment at ingest: where each event's source is (filters
/// on country and AS number, partial so that cores without enrichment pay
/// nothing), and the summary tables of statistics over long ranges
/// (`crate::store::rollup`), filled from the events already stored.
const V3: &str = "
ALTER TABLE events ADD COLUMN country TEXT, ADD COLUMN country_name TEXT,
    ADD COLUMN city TEXT, ADD COLUMN asn BIGINT, ADD COLUMN as_org TEXT, ADD COLUMN net TEXT;
CREATE INDEX events_by_country ON events (country, id) WHERE country IS NOT NULL;
CREATE INDEX events_by_asn ON events (asn, id) WHERE asn IS NOT NULL;
CREATE TABLE rollup_hour (
    dim INTEGER NOT NULL,
    bucket BIGINT NOT NULL,
    value TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (dim, bucket, value)
);
CREATE INDEX rollup_hour_top ON rollup_hour (dim, bucket, n DESC);
CREATE TABLE rollup_day (
    dim INTEGER NOT NULL,
    bucket BIGINT NOT NULL,
    value TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (dim, bucket, value)
);
CREATE INDEX rollup_day_top ON rollup_day (dim, bucket, n DESC);
CREATE TABLE rollup_labels (
    dim INTEGER NOT NULL,
    value TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (dim, value)
);
";

/// Version 4. Replay marks carry the node's spool epoch: a node that lost
/// its spool numbers its events from 1 again in a new epoch.
const V4: &str = "
ALTER TABLE event_seqs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
";

/// Each version's step from the one before, in order.
const STEPS: [(i32, &str); 4] = [(1, V1), (2, V2), (3, V3), (4, V4)];

/// Creates or checks the schema, migrating an older one step by step. Errors name both versions when the
/// database is newer than this core.
pub fn migrate(client: &mut postgres::Client) -> Result<(), String> {
    let err = |e: postgres::Error| format!("migrating the database schema: {e}");
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS honeybee_schema (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL)",
    )
    .map_err(err)?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM honeybee_schema WHERE id = 1", &[])
        .map_err(err)?
        .map(|row| row.get(0));
    match found {
        Some(v) if v > VERSION => {
            return Err(format!(
                "the database schema is version {v}, newer than this core's version {VERSION}: \
                 a newer core migrated it; upgrade this core"
            ))
        }
        Some(v) if v == VERSION => {}
        _ => {
            let from = found.unwrap_or(0);
            for (_, step) in STEPS.iter().filter(|(v, _)| *v > from) {
                tx.batch_execute(step).map_err(err)?;
            }
            if from > 0 && from < 3 {
                let n = crate::store::postgres::events::backfill(&mut tx).map_err(err)?;
                if n > 0 {
                    log::info!("summary tables filled from {n} stored events");
                }
            }
            tx.execute(
                "INSERT INTO honeybee_schema (id, version) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
                &[&VERSION],
            )
            .map_err(err)?;
            match found {
                None => log::info!("created the database schema (version {VERSION})"),
                Some(v) => log::info!("migrated the database schema from version {v} to {VERSION}"),
            }
        }
    }
    tx.commit().map_err(err)
}

/// The schema version recorded in the database, if any.
pub fn version(client: &mut impl GenericClient) -> Result<Option<i32>, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('honeybee_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    Ok(client
        .query_opt("SELECT version FROM honeybee_schema WHERE id = 1", &[])?
        .map(|row| row.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_has_one_step_in_order() {
        let versions: Vec<i32> = STEPS.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=VERSION).collect::<Vec<_>>());
    }
}
