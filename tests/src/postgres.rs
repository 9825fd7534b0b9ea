//! Throwaway PostgreSQL clusters for the tests: Debian's real server in a
//! temp dir, on a free loopback port, removed afterwards. No mocks.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to the
//! `postgres` system user (`runuser`). [`Postgres::start`] gives a test its
//! own cluster, stopped and removed on drop. With `HONEYBEE_TEST_POSTGRES=1`
//! every core a test starts through [`crate::CoreBuilder`] keeps its state in
//! a database of one cluster per test process ([`shared`]), one database per
//! workspace, so a core restarted on the same workspace finds its state.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The switch CI turns on for its second pass.
pub const TEST_SWITCH: &str = "HONEYBEE_TEST_POSTGRES";

/// Whether cores started by the harness use PostgreSQL.
pub fn enabled() -> bool {
    std::env::var(TEST_SWITCH).is_ok_and(|v| v == "1")
}

/// A running cluster.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// Where it listens (127.0.0.1).
    pub port: u16,
    as_postgres: bool,
}

fn server_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    })
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Postgres {
    /// Creates and starts a cluster; panics with PostgreSQL's output if it
    /// cannot.
    pub fn start() -> Postgres {
        let base = std::env::temp_dir().join(format!(
            "honeybee-pg-{}-{:016x}",
            std::process::id(),
            crate::random_u64()
        ));
        std::fs::create_dir(&base).expect("create the cluster dir");
        let as_postgres = nix::unistd::geteuid().is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown postgres {}", base.display());
        }
        let pg = Postgres {
            dir: base,
            bin: server_bin(),
            port: free_port(),
            as_postgres,
        };
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
        );
        assert!(out.status.success(), "initdb: {}", text(&out));
        pg.pg_ctl_start();
        pg
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
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
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let out = self.run(
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
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            text(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn kill(&self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
        );
    }

    /// Starts it again after [`Postgres::kill`], on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// A URL for `database` as user `honeybee`, without TLS.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://honeybee@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Creates a database (no error if it exists).
    pub fn create_database(&self, name: &str) {
        let exists = self.sql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        );
        if exists.trim() != "1" {
            self.sql("postgres", &format!("CREATE DATABASE {name}"));
        }
    }

    /// Runs `sql` with psql in `database`; the unaligned output. Panics on
    /// an error.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = self.try_sql(database, sql);
        match out {
            Ok(s) => s,
            Err(e) => panic!("psql {sql}: {e}"),
        }
    }

    /// Like [`Postgres::sql`], returning psql's error text.
    pub fn try_sql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
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
            Err(text(&out))
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn remove(&self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.remove();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

static SHARED: OnceLock<Postgres> = OnceLock::new();
static CREATING: Mutex<()> = Mutex::new(());

extern "C" fn remove_shared() {
    if let Some(pg) = SHARED.get() {
        pg.remove();
    }
}

/// The cluster of this test process, started on first use and removed when
/// the process exits.
pub fn shared() -> &'static Postgres {
    SHARED.get_or_init(|| {
        let pg = Postgres::start();
        // SAFETY: registers a plain `extern "C"` function with no arguments.
        unsafe {
            nix::libc::atexit(remove_shared);
        }
        pg
    })
}

/// The database URL for a core on `workspace` in test mode: one database per
/// workspace, created on first use.
pub fn database_for(workspace: &Path) -> String {
    let _one_at_a_time = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let pg = shared();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in workspace.to_string_lossy().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let name = format!("hb_{h:016x}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match pg.try_sql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        ) {
            Ok(found) if found.trim() == "1" => break,
            Ok(_) => match pg.try_sql("postgres", &format!("CREATE DATABASE {name}")) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => panic!("CREATE DATABASE {name}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            },
            Err(e) => panic!("psql: {e}"),
        }
    }
    pg.url(&name)
}
