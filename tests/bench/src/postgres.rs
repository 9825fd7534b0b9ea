//! A throwaway PostgreSQL cluster for the benchmarks (`--postgres auto`):
//! Debian's real server in a temp dir, on a free loopback port, stopped and
//! removed on drop. The same recipe as the tests' `tests/src/postgres.rs`,
//! with one difference that matters for figures: **`fsync` stays on** (the
//! server's default, as is `synchronous_commit`), so an acknowledged event
//! is on disk, as in production. Only `initdb` runs with `--no-sync` (it
//! syncs nothing the benchmark measures).
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to the
//! `postgres` system user (`runuser`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The database the cores share.
pub const DATABASE: &str = "honeybee";

/// A running cluster.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// Where it listens (127.0.0.1).
    pub port: u16,
    as_postgres: bool,
}

fn server_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    versions.pop().ok_or_else(|| {
        "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)".to_string()
    })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free loopback port: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Postgres {
    /// Creates and starts a cluster with database [`DATABASE`].
    pub fn start() -> Result<Postgres, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("hb-bench-pg-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let as_postgres = nix::unistd::geteuid().is_root();
        let mut pg = Postgres {
            dir,
            bin: PathBuf::new(),
            port: free_port()?,
            as_postgres,
        };
        // From here on, drop removes the directory.
        pg.bin = server_bin()?;
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("chown postgres {}", pg.dir.display()));
            }
        }
        let data = pg.dir.join("data");
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "honeybee",
                "--no-sync",
            ],
        )?;
        if !out.status.success() {
            return Err(format!("initdb: {}", text(&out)));
        }
        // fsync and synchronous_commit are left at their defaults: on.
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            pg.port,
            pg.dir.display()
        );
        let log = pg.dir.join("log");
        let out = pg.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start: {}\n{}",
                text(&out),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        pg.sql("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
        let fsync = pg.sql("postgres", "SHOW fsync")?;
        if fsync.trim() != "on" {
            return Err(format!("fsync is {fsync}, expected on"));
        }
        Ok(pg)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))
    }

    /// The URL of [`DATABASE`] as user `honeybee`, without TLS (loopback).
    pub fn url(&self) -> String {
        format!(
            "postgres://honeybee@127.0.0.1:{}/{DATABASE}?sslmode=disable",
            self.port
        )
    }

    /// Runs `sql` with psql over the Unix socket in `database`; the
    /// unaligned output.
    pub fn sql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string()])
            .args([
                "-U",
                "honeybee",
                "-d",
                database,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("psql {sql}: {}", text(&out)))
        }
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
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
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = self.run(
                "pg_ctl",
                &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
