//! A throwaway PostgreSQL cluster for the benchmarks (`--postgres auto`):
//! the tests' own cluster ([`honeybee_tests::postgres::Postgres`]), started
//! with **`fsync` on** (the server's default, as is `synchronous_commit`),
//! so that an acknowledged event is on disk, as in production; plus what
//! the figures need: the server's CPU and the database's size.

use std::time::Duration;

/// The database the cores share.
pub const DATABASE: &str = "honeybee";

/// A running cluster, stopped and removed on drop.
pub struct Postgres(honeybee_tests::postgres::Postgres);

impl Postgres {
    /// Creates and starts a durable cluster with database [`DATABASE`].
    pub fn start() -> Result<Postgres, String> {
        let pg = Postgres(honeybee_tests::postgres::Postgres::start_durable());
        pg.sql("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
        let fsync = pg.sql("postgres", "SHOW fsync")?;
        if fsync.trim() != "on" {
            return Err(format!("fsync is {fsync}, expected on"));
        }
        Ok(pg)
    }

    /// The URL of [`DATABASE`] as user `honeybee`, without TLS (loopback).
    pub fn url(&self) -> String {
        self.0.url(DATABASE)
    }

    /// Runs `sql` with psql in `database`; the unaligned output.
    pub fn sql(&self, database: &str, sql: &str) -> Result<String, String> {
        self.0
            .try_sql(database, sql)
            .map_err(|e| format!("psql {sql}: {e}"))
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.0.dir().join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// CPU time of the whole server so far: the postmaster, its live
    /// children (backends, WAL writer, checkpointer …) and those it reaped.
    pub fn cpu(&self) -> Duration {
        self.postmaster_pid()
            .and_then(crate::procfs::server_cpu)
            .unwrap_or_default()
    }

    /// Size of [`DATABASE`] on disk, in bytes.
    pub fn database_bytes(&self) -> u64 {
        self.sql(
            "postgres",
            &format!("SELECT pg_database_size('{DATABASE}')"),
        )
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.0.log()
    }
}
