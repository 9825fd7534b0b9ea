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
    /// `fsync` on (the server's default), for benchmark figures; tests run
    /// with it off.
    durable: bool,
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
        Postgres::start_with(false)
    }

    /// Like [`Postgres::start`], with `fsync` and `synchronous_commit` on,
    /// so that an acknowledged write is on disk: for benchmark figures.
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(durable: bool) -> Postgres {
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
            durable,
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
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{}",
            self.port,
            self.dir.display(),
            if self.durable { "" } else { " -c fsync=off" }
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

    /// A URL for `database` as `user` with `password` (when given), and
    /// the query (`sslmode=…&…`, without `?`) as given.
    pub fn url_as(
        &self,
        user: &str,
        password: Option<&str>,
        database: &str,
        query: &str,
    ) -> String {
        let auth = match password {
            Some(pw) => format!("{user}:{pw}"),
            None => user.to_owned(),
        };
        let mut url = format!("postgres://{auth}@127.0.0.1:{}/{database}", self.port);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Writes `contents` to `name` in the data directory, owned by the
    /// server's user, mode 0600 (what PostgreSQL wants of a key file).
    pub fn write_data_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join("data").join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        if self.as_postgres {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("the postgres user");
            nix::unistd::chown(&path, Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("chown postgres {}: {e}", path.display()));
        }
        path
    }

    /// Replaces `pg_hba.conf` with `lines` after `local all all trust` (the
    /// harness's own psql uses the Unix socket), and reloads.
    pub fn set_hba(&self, lines: &[&str]) {
        let mut text = String::from("local all all trust\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.write_data_file("pg_hba.conf", text.as_bytes());
        let errors = self.sql(
            "postgres",
            "SELECT line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL",
        );
        assert!(errors.trim().is_empty(), "pg_hba.conf {lines:?}: {errors}");
        self.reload();
    }

    /// Turns TLS on with the PEM certificate and key `cert` and `key`
    /// (copied into the data directory, owned by the server, key 0600),
    /// and reloads.
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        self.write_data_file("server.crt", &read(cert));
        self.write_data_file("server.key", &read(key));
        for setting in [
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
            "ssl = on",
        ] {
            self.sql("postgres", &format!("ALTER SYSTEM SET {setting}"));
        }
        self.reload();
        let on = self.sql("postgres", "SHOW ssl");
        assert_eq!(on.trim(), "on", "ssl after reload; log:\n{}", self.log());
    }

    /// Reloads the configuration and waits until the server has (new
    /// sessions see the new load time).
    pub fn reload(&self) {
        let before = self.sql("postgres", "SELECT pg_conf_load_time()");
        self.sql("postgres", "SELECT pg_reload_conf()");
        crate::wait_for(
            "PostgreSQL to reload its configuration",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || (self.sql("postgres", "SELECT pg_conf_load_time()") != before).then_some(()),
        );
    }

    /// Every session of a core (`application_name` `honeybee-core`) as
    /// `(database, encrypted, TLS version or "")`.
    pub fn core_sessions(&self) -> Vec<(String, bool, String)> {
        self.sql(
            "postgres",
            "SELECT datname, ssl, coalesce(version, '') \
             FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'honeybee-core' ORDER BY pid",
        )
        .lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            Some((f.next()?.to_owned(), f.next()? == "t", f.next()?.to_owned()))
        })
        .collect()
    }

    /// Runs `sql` with psql (as `honeybee`, a superuser) in `database`; the
    /// unaligned output. Panics on an error.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = self.try_sql(database, sql);
        match out {
            Ok(s) => s,
            Err(e) => panic!("psql {sql}: {e}"),
        }
    }

    /// Like [`Postgres::sql`], returning psql's error text.
    pub fn try_sql(&self, database: &str, sql: &str) -> Result<String, String> {
        // Over the Unix socket, which `local all all trust` keeps open to
        // the harness whatever a test makes of the TCP rules.
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
