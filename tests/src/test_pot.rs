//! Test pots in a temporary potstore, for the Full mode agent tests.
//!
//! [`TestPotstore::new`] makes a potstore directory in the format of
//! `potstore/README.md`: `potstore.json` (the catalogue) and one folder per
//! pot with `manifest.json` and executable `install` and `start` scripts
//! (`#!/bin/sh`). [`TestPot`] describes one pot; its constructors give the
//! kinds the agent tests need:
//!
//! - [`TestPot::emitter`]: `install` writes an `installed` marker into
//!   `$HONEYBEE_POT_DIR` (idempotent); `start` prints [`STDOUT_LINE`] and
//!   [`STDERR_LINE`] (for `GetPotLogs`), writes its pid to
//!   `$HONEYBEE_POT_DIR/pid`, leaves a background child (`sleep 1000 &`) in
//!   its process group, then runs a Python sender that writes a burst of
//!   `burst` events ([`BURST_EVENT`], config key `burst`, default 0) and then
//!   one [`TICK_EVENT`] every `interval` seconds (default 1) to
//!   `$HONEYBEE_EVENT_ADDR`, Cowrie style (`eventid`, `sensor` = pot id,
//!   `src_ip`, `session`, `n`, …), forever, each connection opening with
//!   the token line `{"token": "$HONEYBEE_POT_TOKEN"}` (docs/protocol.md §8);
//! - [`TestPot::stubborn`]: an emitter whose whole group ignores SIGTERM, so
//!   only the agent's SIGKILL after the grace period stops it;
//! - [`TestPot::crasher`]: `start` prints [`CRASH_LINE`] and exits with
//!   [`CRASH_STATUS`] (after `crash_after` seconds, default 0);
//! - [`TestPot::bad_install`]: `install` prints [`BAD_INSTALL_MESSAGE`] on
//!   stderr and exits 1.
//!
//! # Reports
//!
//! Where the agent puts a pot's working dir is the agent's business, so the
//! scripts also report to the test through a directory it knows:
//! `<potstore>/reports/<pot id>/` (world-writable, since pots run as an
//! unprivileged user when the agent is root), read with
//! [`TestPotstore::report`] and its typed helpers:
//!
//! | File          | Written by | Content |
//! |---------------|------------|---------|
//! | `installs`    | `install`  | one line (the pid) per run |
//! | `install-env` | `install`  | the `HONEYBEE_*` environment of the last run, sorted |
//! | `starts`      | `start`    | one line (the pid) per start |
//! | `start-env`   | `start`    | the `HONEYBEE_*` environment of the last start, sorted (with its `HONEYBEE_POT_TOKEN`: [`TestPotstore::wait_token`], [`start_token_pot`]) |
//! | `pid`         | `start`    | the pot's pid (the process group, if the agent made one) |
//! | `bg_pid`      | emitter    | the pid of its background `sleep` |
//! | `sent`        | emitter    | how many events the current run wrote to the socket |
//!
//! A pot left running when a test ends (say the test `kill -9`ed its agent)
//! notices within a second that its working dir or the reports dir is gone
//! (the temporary directories are removed on drop) and exits, taking its
//! background child with it.
//!
//! [`processes_in_group`] and [`process_alive`] read `/proc`, to check that
//! a stopped pot left no process behind.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// `eventid` of the emitter's start-up burst.
pub const BURST_EVENT: &str = "testpot.burst";
/// `eventid` of the emitter's periodic events.
pub const TICK_EVENT: &str = "testpot.tick";
/// What every emitter start prints on stdout (followed by the pot id).
pub const STDOUT_LINE: &str = "testpot stdout: started";
/// What every emitter start prints on stderr (followed by the pot id).
pub const STDERR_LINE: &str = "testpot stderr: hello";
/// What every install of the emitter, stubborn and crasher pots prints.
pub const INSTALL_LINE: &str = "testpot install: ready";
/// What the crasher prints before it exits.
pub const CRASH_LINE: &str = "testpot crasher: exiting with status 3";
/// The crasher's exit status.
pub const CRASH_STATUS: i32 = 3;
/// What the bad_install pot's `install` prints on stderr.
pub const BAD_INSTALL_MESSAGE: &str = "testpot bad_install: deliberate install failure";
/// The emitter's default `src_ip`.
pub const DEFAULT_SRC_IP: &str = "198.51.100.7";

/// The Python sender of the emitter (`emitter.py` in its folder).
const EMITTER_PY: &str = r#"import datetime, json, os, signal, socket, time

POT_ID = os.environ.get("HONEYBEE_POT_ID", "unknown")
HOST, PORT = os.environ["HONEYBEE_EVENT_ADDR"].rsplit(":", 1)
BURST = int(os.environ.get("HONEYBEE_CFG_BURST") or "0")
INTERVAL = float(os.environ.get("HONEYBEE_CFG_INTERVAL") or "1")
SRC_IP = os.environ.get("HONEYBEE_CFG_SRC_IP") or "198.51.100.7"
BG = int(os.environ.get("HONEYBEE_TEST_BG_PID") or "0")
REPORTS = os.environ.get("HONEYBEE_TEST_REPORTS") or ""
# Each connection opens with the pot's token (docs/protocol.md section 8).
TOKEN_LINE = (json.dumps({"token": os.environ.get("HONEYBEE_POT_TOKEN", "")}) + "\n").encode()
SESSION = "%s-%d" % (POT_ID, os.getpid())
conn = None
sent = 0


def abandoned():
    """The test is over: its temporary directories were removed."""
    try:
        if os.stat(".").st_nlink == 0:
            return True
    except OSError:
        return True
    return bool(REPORTS) and not os.path.isdir(REPORTS)


def leave():
    if BG:
        try:
            os.kill(BG, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)


def line(eventid, n):
    now = datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({
        "eventid": eventid,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "sensor": POT_ID,
        "src_ip": SRC_IP,
        "src_port": 40000 + n % 20000,
        "dst_ip": "127.0.0.1",
        "dst_port": 2222,
        "protocol": "ssh",
        "session": SESSION,
        "n": n,
        "message": "test event %d from %s" % (n, POT_ID),
    }) + "\n"


def send(text):
    """Writes text, reconnecting until the agent takes it (at least once)."""
    global conn
    data = text.encode()
    while True:
        if abandoned():
            leave()
        try:
            if conn is None:
                conn = socket.create_connection((HOST, int(PORT)), timeout=5)
                conn.sendall(TOKEN_LINE)
            conn.sendall(data)
            return
        except OSError:
            if conn is not None:
                conn.close()
                conn = None
            time.sleep(0.2)


def record_sent():
    if not REPORTS:
        return
    try:
        tmp = os.path.join(REPORTS, "sent.tmp")
        with open(tmp, "w") as f:
            f.write("%d\n" % sent)
        os.replace(tmp, os.path.join(REPORTS, "sent"))
    except OSError:
        pass


chunk = []
while sent < BURST:
    chunk.append(line("testpot.burst", sent))
    sent += 1
    if len(chunk) == 1000 or sent == BURST:
        send("".join(chunk))
        chunk = []
if BURST > 0:
    record_sent()
    print("testpot: burst of %d events sent" % BURST, flush=True)
while True:
    send(line("testpot.tick", sent))
    sent += 1
    record_sent()
    deadline = time.monotonic() + INTERVAL
    while True:
        if abandoned():
            leave()
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.5, left))
"#;

/// Single-quotes `s` for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The Python 3 to run the emitter with: a system one first, since pots may
/// run as an unprivileged user who cannot enter e.g. `/root/.pyenv`.
pub fn python3() -> PathBuf {
    for p in ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("python3"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The lines every script starts with: strict mode and `R`, its reports dir.
fn prologue(reports: &Path) -> String {
    format!(
        "#!/bin/sh\nset -eu\nR={}/\"$HONEYBEE_POT_ID\"\nmkdir -p \"$R\"\n",
        sh_quote(&reports.to_string_lossy())
    )
}

/// `env | grep` of the `HONEYBEE_*` variables into `$R/<file>`.
fn record_env(file: &str) -> String {
    format!("env | grep '^HONEYBEE_' | sort > \"$R/{file}\"\n")
}

/// What `install` and `start` do, before the reports dir is known.
#[derive(Debug, Clone)]
enum Script {
    /// Records itself, marks `installed`, prints [`INSTALL_LINE`].
    GoodInstall,
    /// Prints [`BAD_INSTALL_MESSAGE`] and exits 1.
    BadInstall,
    /// The emitter's start; `true` makes the group ignore SIGTERM.
    Emitter { ignore_term: bool },
    /// Prints [`CRASH_LINE`] and exits [`CRASH_STATUS`].
    Crasher,
    /// Records its start, then sleeps (a pot that never gets going).
    Sleeper,
    /// Given text, used verbatim.
    Custom(String),
}

impl Script {
    fn render(&self, reports: &Path, folder: &Path) -> String {
        match self {
            Script::Custom(text) => text.clone(),
            Script::GoodInstall => format!(
                "{}{}echo \"$$\" >> \"$R/installs\"\n: > \"$HONEYBEE_POT_DIR/installed\"\n\
                 echo \"{INSTALL_LINE} $HONEYBEE_POT_ID\"\n",
                prologue(reports),
                record_env("install-env"),
            ),
            Script::BadInstall => format!(
                "{}{}echo \"$$\" >> \"$R/installs\"\n\
                 echo \"{BAD_INSTALL_MESSAGE} of $HONEYBEE_POT_ID\" >&2\nexit 1\n",
                prologue(reports),
                record_env("install-env"),
            ),
            Script::Emitter { ignore_term } => format!(
                "{}{}{}echo \"$$\" >> \"$R/starts\"\n\
                 echo \"$$\" > \"$HONEYBEE_POT_DIR/pid\"\n\
                 echo \"$$\" > \"$R/pid.tmp\" && mv \"$R/pid.tmp\" \"$R/pid\"\n\
                 echo \"{STDOUT_LINE} $HONEYBEE_POT_ID\"\n\
                 echo \"{STDERR_LINE} $HONEYBEE_POT_ID\" >&2\n\
                 sleep 1000 &\n\
                 HONEYBEE_TEST_BG_PID=$!\n\
                 echo \"$HONEYBEE_TEST_BG_PID\" > \"$R/bg_pid\"\n\
                 HONEYBEE_TEST_REPORTS=\"$R\"\n\
                 export HONEYBEE_TEST_BG_PID HONEYBEE_TEST_REPORTS\n\
                 exec {} {}\n",
                prologue(reports),
                if *ignore_term { "trap '' TERM\n" } else { "" },
                record_env("start-env"),
                sh_quote(&python3().to_string_lossy()),
                sh_quote(&folder.join("emitter.py").to_string_lossy()),
            ),
            Script::Crasher => format!(
                "{}{}echo \"$$\" >> \"$R/starts\"\n\
                 date +%s%N >> \"$R/start_ns\"\n\
                 echo \"$$\" > \"$R/pid.tmp\" && mv \"$R/pid.tmp\" \"$R/pid\"\n\
                 echo \"{CRASH_LINE}\"\n\
                 sleep \"${{HONEYBEE_CFG_CRASH_AFTER:-0}}\"\n\
                 exit {CRASH_STATUS}\n",
                prologue(reports),
                record_env("start-env"),
            ),
            Script::Sleeper => format!(
                "{}{}echo \"$$\" >> \"$R/starts\"\n\
                 echo \"$$\" > \"$R/pid.tmp\" && mv \"$R/pid.tmp\" \"$R/pid\"\n\
                 echo \"testpot: started $HONEYBEE_POT_ID\"\n\
                 exec sleep 1000\n",
                prologue(reports),
                record_env("start-env"),
            ),
        }
    }
}

/// One pot of a [`TestPotstore`]: its catalogue entry, its manifest and its
/// scripts.
#[derive(Debug, Clone)]
pub struct TestPot {
    id: String,
    name: String,
    version: String,
    pot_type: String,
    description: String,
    protocols: Vec<String>,
    ports: BTreeMap<String, u16>,
    requirements: Vec<String>,
    config: BTreeMap<String, String>,
    install: Script,
    start: Script,
    files: Vec<(String, String, bool)>,
    emitter_py: bool,
}

impl TestPot {
    fn base(id: &str, install: Script, start: Script) -> TestPot {
        TestPot {
            id: id.to_owned(),
            name: format!("Test pot {id}"),
            version: "1.0.0".to_owned(),
            pot_type: "test".to_owned(),
            description: format!("HoneyBee test pot {id}"),
            protocols: vec!["ssh".to_owned()],
            ports: BTreeMap::new(),
            requirements: vec!["python3".to_owned()],
            config: BTreeMap::new(),
            install,
            start,
            files: Vec::new(),
            emitter_py: false,
        }
    }

    /// A pot that sends events: config `burst` (events at start, default
    /// "0"), `interval` (seconds between ticks, default "1"), `src_ip`
    /// (default [`DEFAULT_SRC_IP`]). See the module docs.
    pub fn emitter(id: &str) -> TestPot {
        let mut p = TestPot::base(
            id,
            Script::GoodInstall,
            Script::Emitter { ignore_term: false },
        );
        p.emitter_py = true;
        p.ports.insert("ssh_port".to_owned(), 2222);
        p.config("burst", "0")
            .config("interval", "1")
            .config("src_ip", DEFAULT_SRC_IP)
    }

    /// An emitter whose whole process group ignores SIGTERM.
    pub fn stubborn(id: &str) -> TestPot {
        let mut p = TestPot::emitter(id);
        p.start = Script::Emitter { ignore_term: true };
        p.description = format!("HoneyBee test pot {id} (ignores SIGTERM)");
        p
    }

    /// A pot whose `start` prints [`CRASH_LINE`] and exits
    /// [`CRASH_STATUS`] after `crash_after` seconds (default "0").
    pub fn crasher(id: &str) -> TestPot {
        TestPot::base(id, Script::GoodInstall, Script::Crasher).config("crash_after", "0")
    }

    /// A pot whose `install` prints [`BAD_INSTALL_MESSAGE`] on stderr and
    /// exits 1 (its `start` would just sleep).
    pub fn bad_install(id: &str) -> TestPot {
        TestPot::base(id, Script::BadInstall, Script::Sleeper)
    }

    /// A pot with the good `install` and a `start` that records itself and
    /// sleeps, sending nothing.
    pub fn sleeper(id: &str) -> TestPot {
        TestPot::base(id, Script::GoodInstall, Script::Sleeper)
    }

    /// A pot with the given script texts (each should start with `#!`).
    pub fn custom(id: &str, install: &str, start: &str) -> TestPot {
        TestPot::base(
            id,
            Script::Custom(install.to_owned()),
            Script::Custom(start.to_owned()),
        )
    }

    /// The catalogue id (what `InstallPot`'s `honeypot_type` names).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets (or adds) a config default in the manifest.
    pub fn config(mut self, key: &str, value: &str) -> TestPot {
        self.config.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the `type` (default "test").
    pub fn pot_type(mut self, t: &str) -> TestPot {
        self.pot_type = t.to_owned();
        self
    }

    /// Sets the `name`.
    pub fn name(mut self, n: &str) -> TestPot {
        self.name = n.to_owned();
        self
    }

    /// Sets the `version` (default "1.0.0").
    pub fn version(mut self, v: &str) -> TestPot {
        self.version = v.to_owned();
        self
    }

    /// Adds a protocol (default `["ssh"]`).
    pub fn protocol(mut self, p: &str) -> TestPot {
        self.protocols.push(p.to_owned());
        self
    }

    /// Adds a default port (catalogue and manifest `ports`).
    pub fn port(mut self, key: &str, port: u16) -> TestPot {
        self.ports.insert(key.to_owned(), port);
        self
    }

    /// Adds a file to the pot folder (`executable`: mode 0755, else 0644).
    pub fn file(mut self, name: &str, contents: &str, executable: bool) -> TestPot {
        self.files
            .push((name.to_owned(), contents.to_owned(), executable));
        self
    }

    /// The `potstore.json` entry for this pot.
    pub fn catalogue_entry(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "type": self.pot_type,
            "description": self.description,
            "protocols": self.protocols,
            "ports": self.ports,
            "requirements": self.requirements,
            "directory": self.id,
        })
    }

    /// The `manifest.json` of this pot.
    pub fn manifest(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "type": self.pot_type,
            "protocols": self.protocols,
            "ports": self.ports,
            "config": self.config,
            "install": "install",
            "start": "start",
        })
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn write_json(path: &Path, v: &Value) {
    let text = serde_json::to_string_pretty(v).expect("serialize JSON") + "\n";
    write_file(path, &text, 0o644);
}

/// A potstore directory made for a test (see the module docs).
#[derive(Debug)]
pub struct TestPotstore {
    dir: PathBuf,
    reports: PathBuf,
    pots: Vec<TestPot>,
}

impl TestPotstore {
    /// Creates `dir` (and its parents) with an empty `potstore.json` and a
    /// world-writable `reports/`. The directory is not removed on drop: put
    /// it in a [`crate::TempDir`], e.g. the agent's workspace.
    pub fn new(dir: impl Into<PathBuf>) -> TestPotstore {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create potstore {}: {e}", dir.display()));
        // Pots may run as `nobody`: they must reach their folder and scripts.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", dir.display()));
        let reports = dir.join("reports");
        std::fs::create_dir_all(&reports)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", reports.display()));
        std::fs::set_permissions(&reports, std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", reports.display()));
        let store = TestPotstore {
            dir,
            reports,
            pots: Vec::new(),
        };
        store.write_catalogue();
        store
    }

    /// The potstore directory (pass it as `--potstore`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The folder of pot `id` in the store.
    pub fn folder(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes `pot`'s folder and adds it to `potstore.json` (replacing a pot
    /// with the same id).
    pub fn add(&mut self, pot: TestPot) -> &mut TestPotstore {
        let folder = self.folder(&pot.id);
        std::fs::create_dir_all(&folder)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", folder.display()));
        write_json(&folder.join("manifest.json"), &pot.manifest());
        write_file(
            &folder.join("install"),
            &pot.install.render(&self.reports, &folder),
            0o755,
        );
        write_file(
            &folder.join("start"),
            &pot.start.render(&self.reports, &folder),
            0o755,
        );
        if pot.emitter_py {
            write_file(&folder.join("emitter.py"), EMITTER_PY, 0o644);
        }
        for (name, contents, exec) in &pot.files {
            write_file(
                &folder.join(name),
                contents,
                if *exec { 0o755 } else { 0o644 },
            );
        }
        self.pots.retain(|p| p.id != pot.id);
        self.pots.push(pot);
        self.write_catalogue();
        self
    }

    /// Like [`TestPotstore::add`], by value, for chaining after `new`.
    pub fn with(mut self, pot: TestPot) -> TestPotstore {
        self.add(pot);
        self
    }

    /// Adds [`TestPot::emitter`]`(id)`.
    pub fn emitter(&mut self, id: &str) -> &mut TestPotstore {
        self.add(TestPot::emitter(id))
    }

    /// Adds [`TestPot::stubborn`]`(id)`.
    pub fn stubborn(&mut self, id: &str) -> &mut TestPotstore {
        self.add(TestPot::stubborn(id))
    }

    /// Adds [`TestPot::crasher`]`(id)`.
    pub fn crasher(&mut self, id: &str) -> &mut TestPotstore {
        self.add(TestPot::crasher(id))
    }

    /// Adds [`TestPot::bad_install`]`(id)`.
    pub fn bad_install(&mut self, id: &str) -> &mut TestPotstore {
        self.add(TestPot::bad_install(id))
    }

    /// Makes `repo` a git repository (branch `main`, one commit) holding pot
    /// `id`'s folder at its root, as a pot author publishes a pot, and
    /// returns the commit's id. When the tests run as root the agent clones
    /// as the pot user, and git refuses a local repository owned by somebody
    /// else ("dubious ownership"), as it should: the repository is then
    /// given to `honeybee-pot`, else `nobody` (the agent's default pot user).
    #[track_caller]
    pub fn git_repo(&self, id: &str, repo: &Path) -> String {
        std::fs::create_dir_all(repo)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", repo.display()));
        let run = |program: &str, args: &[&str], cwd: &Path| {
            let out = std::process::Command::new(program)
                .args(args)
                .current_dir(cwd)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
            assert!(
                out.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let from = format!("{}/.", self.folder(id).display());
        run("cp", &["-a", &from, &repo.display().to_string()], repo);
        run("git", &["init", "-q", "-b", "main"], repo);
        run("git", &["add", "."], repo);
        let who = ["-c", "user.name=t", "-c", "user.email=t@t"];
        run(
            "git",
            &[&who[..], &["commit", "-q", "-m", "pot"]].concat(),
            repo,
        );
        let head = run("git", &["rev-parse", "HEAD"], repo);
        if nix::unistd::geteuid().is_root() {
            let owner = ["honeybee-pot", "nobody"]
                .iter()
                .find_map(|n| nix::unistd::User::from_name(n).ok().flatten())
                .expect("a pot user (honeybee-pot or nobody)");
            let uid = owner.uid.to_string();
            run("chown", &["-R", &uid, &repo.display().to_string()], repo);
        }
        head
    }

    /// The pots in the catalogue, in order.
    pub fn pots(&self) -> &[TestPot] {
        &self.pots
    }

    fn write_catalogue(&self) {
        let pots: Vec<Value> = self.pots.iter().map(TestPot::catalogue_entry).collect();
        write_json(&self.dir.join("potstore.json"), &json!({ "pots": pots }));
    }

    /// The reports dir of pot instance `pot_id` (`<store>/reports/<pot_id>`).
    pub fn report_dir(&self, pot_id: &str) -> PathBuf {
        self.reports.join(pot_id)
    }

    /// The text of report `name` of pot instance `pot_id`, if written yet.
    pub fn report(&self, pot_id: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.report_dir(pot_id).join(name)).ok()
    }

    fn report_number(&self, pot_id: &str, name: &str) -> Option<i64> {
        self.report(pot_id, name)?.trim().parse().ok()
    }

    fn report_lines(&self, pot_id: &str, name: &str) -> usize {
        self.report(pot_id, name)
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    }

    /// The pid of the pot's last start (its process group when the agent
    /// made one), if it started.
    pub fn pot_pid(&self, pot_id: &str) -> Option<i32> {
        self.report_number(pot_id, "pid").map(|n| n as i32)
    }

    /// Waits up to `timeout` for the pot to have started (a `pid` report)
    /// and returns the pid; panics naming the pot otherwise.
    #[track_caller]
    pub fn wait_pot_pid(&self, pot_id: &str, timeout: Duration) -> i32 {
        crate::wait_for(
            &format!("pot {pot_id} to start (its pid report)"),
            timeout,
            Duration::from_millis(20),
            || self.pot_pid(pot_id),
        )
    }

    /// The pid of the emitter's background `sleep`, if it started.
    pub fn background_pid(&self, pot_id: &str) -> Option<i32> {
        self.report_number(pot_id, "bg_pid").map(|n| n as i32)
    }

    /// How many times `start` ran for `pot_id`.
    pub fn starts(&self, pot_id: &str) -> usize {
        self.report_lines(pot_id, "starts")
    }

    /// When each start of a crasher began, in nanoseconds since the epoch.
    pub fn start_times_ns(&self, pot_id: &str) -> Vec<u128> {
        self.report(pot_id, "start_ns")
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// How many times `install` ran for `pot_id`.
    pub fn installs(&self, pot_id: &str) -> usize {
        self.report_lines(pot_id, "installs")
    }

    /// How many events the emitter's current run wrote to the socket (0
    /// before the first).
    pub fn events_sent(&self, pot_id: &str) -> u64 {
        self.report_number(pot_id, "sent").unwrap_or(0) as u64
    }

    /// The `HONEYBEE_*` environment of the last `start` of `pot_id`.
    pub fn start_env(&self, pot_id: &str) -> BTreeMap<String, String> {
        parse_env(&self.report(pot_id, "start-env").unwrap_or_default())
    }

    /// The event socket token (`HONEYBEE_POT_TOKEN`) of the last start of
    /// `pot_id`, once it started; waits up to `timeout`, panics otherwise.
    /// This is how a test writing to the event socket itself gets a token:
    /// the way a pot gets it, from a pot the agent started.
    #[track_caller]
    pub fn wait_token(&self, pot_id: &str, timeout: Duration) -> String {
        crate::wait_for(
            &format!("pot {pot_id} to start with HONEYBEE_POT_TOKEN"),
            timeout,
            Duration::from_millis(20),
            || {
                self.pot_pid(pot_id)?;
                self.start_env(pot_id).remove("HONEYBEE_POT_TOKEN")
            },
        )
    }

    /// The `HONEYBEE_*` environment of the last `install` of `pot_id`.
    pub fn install_env(&self, pot_id: &str) -> BTreeMap<String, String> {
        parse_env(&self.report(pot_id, "install-env").unwrap_or_default())
    }
}

/// Has node `node_id` install and start pot type `pot_type` of `store` (a
/// [`TestPot::sleeper`] is enough) as `pot_id`, through `api`, and returns
/// the event socket token that start got ([`TestPotstore::wait_token`]):
/// what a test presents to write events as that pot.
#[track_caller]
pub fn start_token_pot(
    api: &crate::Api,
    node_id: u64,
    store: &TestPotstore,
    pot_type: &str,
    pot_id: &str,
) -> String {
    let before = store.starts(pot_id);
    api.command(
        node_id,
        &json!({"InstallPot": {"pot_id": pot_id, "honeypot_type": pot_type, "auto_start": true}}),
    );
    crate::wait_for(
        &format!("pot {pot_id} to start"),
        Duration::from_secs(30),
        Duration::from_millis(20),
        || (store.starts(pot_id) > before).then_some(()),
    );
    store.wait_token(pot_id, Duration::from_secs(30))
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `(state, ppid, pgrp)` from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Whether `pid` is a live process (zombies, which are dead but not yet
/// reaped, do not count).
pub fn process_alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _, _)| !matches!(state, 'Z' | 'X' | 'x'))
}

/// The process group of a live `pid`.
pub fn process_group_of(pid: i32) -> Option<i32> {
    proc_stat(pid)
        .filter(|(state, _, _)| !matches!(state, 'Z' | 'X' | 'x'))
        .map(|(_, _, pgrp)| pgrp)
}

/// The live processes (zombies excluded) whose process group is `pgid`,
/// found by scanning `/proc/*/stat`; sorted.
pub fn processes_in_group(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            proc_stat(pid)
                .is_some_and(|(state, _, pgrp)| pgrp == pgid && !matches!(state, 'Z' | 'X' | 'x'))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The repository's potstore, for tests that install a shipped pot. When
/// the tests run as root the agent runs pot scripts as an unprivileged user,
/// who must be able to read them: if this checkout is somewhere that user
/// cannot reach (say under /root), the catalogue and the `pot` folder are
/// copied into `workspace` (world-readable) and that copy is returned.
pub fn shipped_potstore(workspace: &Path, pot: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../potstore");
    let repo = repo.canonicalize().unwrap_or(repo);
    let root = nix::unistd::geteuid().is_root();
    if !root || readable_by_others(&repo.join(pot)) {
        return repo;
    }
    let copy = workspace.join("potstore");
    std::fs::create_dir_all(&copy).expect("potstore copy");
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(repo.join("potstore.json"))
        .arg(repo.join(pot))
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(ok.success(), "copying the potstore");
    let ok = std::process::Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(&copy)
        .status()
        .expect("chmod");
    assert!(ok.success(), "chmod of the potstore copy");
    println!(
        "{} is not readable by the pot user: using a copy in {}",
        repo.display(),
        copy.display()
    );
    copy
}

/// Whether every directory down to `dir` can be traversed by others and
/// everything in `dir` read.
fn readable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode());
    let traversable = dir
        .ancestors()
        .all(|a| mode(a).is_ok_and(|m| m & 0o001 != 0));
    let files = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .all(|e| mode(&e.path()).is_ok_and(|m| m & 0o004 != 0))
    });
    traversable && files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o7777
    }

    fn read_json(p: &Path) -> Value {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.display()))
    }

    /// Runs a pot script as the agent would: its own process group, cwd
    /// the working dir, the documented environment.
    fn pot_command(
        store: &TestPotstore,
        kind: &str,
        script: &str,
        pot_id: &str,
        work: &Path,
        event_addr: &str,
        cfg: &[(&str, &str)],
    ) -> Command {
        std::fs::create_dir_all(work).unwrap();
        let mut c = Command::new(store.folder(kind).join(script));
        c.current_dir(work)
            .env("HONEYBEE_POT_ID", pot_id)
            .env("HONEYBEE_POT_DIR", work)
            .env("HONEYBEE_POT_SOURCE", store.folder(kind))
            .env("HONEYBEE_EVENT_ADDR", event_addr)
            .env("HONEYBEE_NODE_ID", "42")
            .env("HONEYBEE_POT_TOKEN", TEST_TOKEN)
            .stdin(Stdio::null())
            .process_group(0);
        for (k, v) in cfg {
            c.env(format!("HONEYBEE_CFG_{}", k.to_uppercase()), v);
        }
        c
    }

    /// The token the supervisor would pass; the pot's first line.
    const TEST_TOKEN: &str = "unit-test-token";

    fn token_line(lines: &mut impl Iterator<Item = std::io::Result<String>>) {
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["token"], TEST_TOKEN, "{first}");
    }

    fn wait_group_empty(pgid: i32) {
        crate::wait_for(
            &format!("process group {pgid} to be empty"),
            Duration::from_secs(5),
            Duration::from_millis(20),
            || processes_in_group(pgid).is_empty().then_some(()),
        );
    }

    #[test]
    fn potstore_files_follow_the_format() {
        let tmp = TempDir::new("testpot");
        let mut store = TestPotstore::new(tmp.path().join("potstore"));
        store
            .emitter("emitter")
            .crasher("crasher")
            .bad_install("bad")
            .stubborn("stubborn");
        store.add(TestPot::emitter("emitter").config("burst", "7"));

        let cat = read_json(&store.path().join("potstore.json"));
        let pots = cat["pots"].as_array().expect("pots is a list");
        let ids: Vec<&str> = pots.iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["crasher", "bad", "stubborn", "emitter"]);
        for entry in pots {
            for key in ["id", "name", "version", "type", "directory"] {
                assert!(entry[key].is_string(), "catalogue {key} in {entry}");
            }
            assert!(entry["protocols"].is_array() && entry["requirements"].is_array());
            assert!(entry["ports"].is_object());
            let folder = store.path().join(entry["directory"].as_str().unwrap());
            let m = read_json(&folder.join("manifest.json"));
            assert_eq!(m["id"], entry["id"]);
            for key in ["name", "version", "type", "install", "start"] {
                assert!(m[key].is_string(), "manifest {key} in {m}");
            }
            assert!(m["config"].is_object() && m["protocols"].is_array());
            for script in ["install", "start"] {
                let p = folder.join(m[script].as_str().unwrap());
                assert_eq!(mode(&p), 0o755, "{}", p.display());
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(text.starts_with("#!/bin/sh\n"), "{}", p.display());
            }
        }
        let m = read_json(&store.folder("emitter").join("manifest.json"));
        assert_eq!(m["config"]["burst"], "7", "the replaced pot's config");
        assert_eq!(m["config"]["interval"], "1");
        assert_eq!(m["ports"]["ssh_port"], 2222);
        assert!(store.folder("emitter").join("emitter.py").is_file());
        assert_eq!(mode(&tmp.path().join("potstore/reports")), 0o777);
        assert_eq!(store.pots().len(), 4);
    }

    #[test]
    fn emitter_installs_idempotently_sends_events_and_dies_as_a_group() {
        let tmp = TempDir::new("testpot");
        let store = TestPotstore::new(tmp.path().join("potstore")).with(TestPot::emitter("em"));
        let work = tmp.path().join("work");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cfg = [("burst", "5"), ("interval", "0.2")];

        for run in 1..=2 {
            let out = pot_command(&store, "em", "install", "em-01", &work, &addr, &cfg)
                .output()
                .unwrap();
            assert!(out.status.success(), "install run {run}: {out:?}");
            assert!(String::from_utf8_lossy(&out.stdout).contains(INSTALL_LINE));
        }
        assert!(work.join("installed").is_file());
        assert_eq!(store.installs("em-01"), 2);
        assert_eq!(store.install_env("em-01")["HONEYBEE_CFG_BURST"], "5");

        let mut child = pot_command(&store, "em", "start", "em-01", &work, &addr, &cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut lines = BufReader::new(conn).lines();
        token_line(&mut lines);
        let events: Vec<Value> = (0..8)
            .map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
            .collect();
        for (i, e) in events.iter().enumerate() {
            let want = if i < 5 { BURST_EVENT } else { TICK_EVENT };
            assert_eq!(e["eventid"], want, "{e}");
            assert_eq!(e["n"], i as u64);
            assert_eq!(e["sensor"], "em-01");
            assert_eq!(e["src_ip"], DEFAULT_SRC_IP);
            assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        assert_eq!(store.pot_pid("em-01"), Some(pid));
        let pid_file = std::fs::read_to_string(work.join("pid")).unwrap();
        assert_eq!(pid_file.trim(), pid.to_string());
        assert_eq!(store.starts("em-01"), 1);
        assert!(store.events_sent("em-01") >= 5);
        let env = store.start_env("em-01");
        assert_eq!(env["HONEYBEE_POT_ID"], "em-01");
        assert_eq!(env["HONEYBEE_NODE_ID"], "42");
        let bg = store.background_pid("em-01").expect("bg_pid report");
        let group = processes_in_group(pid);
        assert!(
            group.contains(&pid) && group.contains(&bg),
            "group {group:?}"
        );
        assert_eq!(process_group_of(bg), Some(pid));

        killpg(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        wait_group_empty(pid);
        assert!(!process_alive(pid) && !process_alive(bg));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(out.contains(&format!("{STDOUT_LINE} em-01")), "{out}");
        assert!(err.contains(&format!("{STDERR_LINE} em-01")), "{err}");
    }

    #[test]
    fn stubborn_ignores_sigterm_and_an_abandoned_emitter_exits() {
        let tmp = TempDir::new("testpot");
        let store = TestPotstore::new(tmp.path().join("potstore")).with(TestPot::stubborn("st"));
        let work = tmp.path().join("work");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut child = pot_command(
            &store,
            "st",
            "start",
            "st-01",
            &work,
            &addr,
            &[("interval", "0.2")],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let pid = child.id() as i32;
        let (_conn, _) = listener.accept().unwrap();
        let bg = store.background_pid("st-01").expect("bg_pid report");
        killpg(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "SIGTERM stopped it");
        assert!(process_alive(bg));

        // The test is over: its directories go; the pot follows.
        let t = Instant::now();
        std::fs::remove_dir_all(&work).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
        assert!(t.elapsed() < Duration::from_secs(3));
        wait_group_empty(pid);
    }

    /// When the tests run as root the agent runs pots as an unprivileged
    /// user: the scripts and the Python sender must work as `nobody`.
    #[test]
    fn emitter_works_as_nobody_when_root() {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            != 0
        {
            return;
        }
        let (nobody_uid, nobody_gid) = (65534, 65534);
        let tmp = TempDir::new("testpot");
        let store = TestPotstore::new(tmp.path().join("potstore")).with(TestPot::emitter("em"));
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        std::os::unix::fs::chown(&work, Some(nobody_uid), Some(nobody_gid)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cfg = [("burst", "2"), ("interval", "0.2")];
        let out = pot_command(&store, "em", "install", "em-n", &work, &addr, &cfg)
            .uid(nobody_uid)
            .gid(nobody_gid)
            .output()
            .unwrap();
        assert!(out.status.success(), "install as nobody: {out:?}");
        let mut child = pot_command(&store, "em", "start", "em-n", &work, &addr, &cfg)
            .uid(nobody_uid)
            .gid(nobody_gid)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut lines = BufReader::new(conn).lines();
        token_line(&mut lines);
        for want in [BURST_EVENT, BURST_EVENT, TICK_EVENT] {
            let e: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            assert_eq!(e["eventid"], want);
        }
        assert_eq!(store.pot_pid("em-n"), Some(pid));
        killpg(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        wait_group_empty(pid);
    }

    #[test]
    fn crasher_exits_3_and_bad_install_fails() {
        let tmp = TempDir::new("testpot");
        let mut store = TestPotstore::new(tmp.path().join("potstore"));
        store.crasher("crash").bad_install("bad");
        let work = tmp.path().join("work");
        let out = pot_command(&store, "crash", "start", "c-01", &work, "127.0.0.1:9", &[])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(CRASH_STATUS), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(CRASH_LINE));
        assert_eq!(store.starts("c-01"), 1);

        let out = pot_command(&store, "bad", "install", "b-01", &work, "127.0.0.1:9", &[])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(BAD_INSTALL_MESSAGE));
        assert_eq!(store.installs("b-01"), 1);
        assert_eq!(store.starts("b-01"), 0);
    }

    #[test]
    fn proc_scan_sees_a_group_and_ignores_others() {
        let me = std::process::id() as i32;
        assert!(process_alive(me));
        let my_group = process_group_of(me).unwrap();
        assert!(processes_in_group(my_group).contains(&me));
        assert!(!process_alive(i32::MAX));
        assert!(processes_in_group(i32::MAX).is_empty());
    }
}
