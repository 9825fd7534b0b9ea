//! Starting and stopping the real `honeybee-core` binary.
//!
//! Each [`Core`] gets three free loopback ports (picked by binding
//! `127.0.0.1:0` and releasing), a data dir inside its own [`TempDir`]
//! (`<workspace>/data`, created by the core itself), its flags and an
//! optional TOML config file. [`CoreBuilder::start`] returns once
//! `GET /health` answers; dropping the `Core` sends SIGTERM, then SIGKILL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::child_process::{capture, signal_and_wait, tail};
use crate::http::Api;
use crate::metrics::Metrics;
use crate::temp_dir::TempDir;
use crate::test_node::{NodeIdentity, TestNode};

/// How long the core may take to answer `/health` after spawn.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The `honeybee-core` binary: `$HONEYBEE_CORE_BIN`, else
/// `<target>/<profile>/honeybee-core` next to the test executable's `deps/`.
pub fn core_binary() -> PathBuf {
    let bin = crate::binaries::workspace_binary("honeybee-core", "HONEYBEE_CORE_BIN");
    warn_if_stale(&bin);
    bin
}

/// `cargo test -p honeybee-tests` alone does not rebuild the core: say so
/// when its sources are newer than the binary under test.
fn warn_if_stale(bin: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if crate::binaries::is_stale(bin) {
            eprintln!(
                "warning: {} is older than the core's sources; run `cargo build -p honeybee-core` \
                 (the workspace test command does)",
                bin.display()
            );
        }
    });
}

/// Three distinct free loopback ports.
fn free_ports() -> [u16; 3] {
    let ls: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    let p: Vec<u16> = ls
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect();
    [p[0], p[1], p[2]]
}

/// Runs the binary with `args` (no ports, no data dir) until it exits, for
/// CLI tests. Returns (status, stdout, stderr); kills it after `timeout`.
pub fn run_to_exit(args: &[&str], cwd: &Path, timeout: Duration) -> (ExitStatus, String, String) {
    run_to_exit_with_env(args, &[], cwd, timeout)
}

/// Like [`run_to_exit`], with extra environment variables for the child.
pub fn run_to_exit_with_env(
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
    timeout: Duration,
) -> (ExitStatus, String, String) {
    run_program_to_exit(&core_binary(), args, env, cwd, timeout)
}

/// Runs `program` to its exit and returns its status, stdout and stderr;
/// kills it (through its own handle, so never another process that got its
/// pid) and panics if it runs past `timeout`.
pub fn run_program_to_exit(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
    timeout: Duration,
) -> (ExitStatus, String, String) {
    let name = program
        .file_name()
        .map_or("program".into(), |n| n.to_string_lossy().into_owned());
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let out = capture(child.stdout.take().expect("stdout"), false, "core");
    let err = capture(child.stderr.take().expect("stderr"), false, "core");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let s = child.wait().expect("wait");
            let text = String::from_utf8_lossy(&err.0.lock().unwrap()).into_owned();
            panic!("{name} {args:?} did not exit within {timeout:?} ({s}); stderr:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = out.1.join();
    let _ = err.1.join();
    let o = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    let e = String::from_utf8_lossy(&err.0.lock().unwrap()).into_owned();
    (status, o, e)
}

/// How to start a core.
#[derive(Debug, Clone)]
pub struct CoreBuilder {
    args: Vec<String>,
    config: Option<String>,
    api_token: Option<String>,
    workspace: Option<Arc<TempDir>>,
    env: Vec<(String, String)>,
    binary: Option<PathBuf>,
}

impl Default for CoreBuilder {
    fn default() -> Self {
        CoreBuilder {
            args: Vec::new(),
            config: None,
            api_token: Some(format!("test-token-{:016x}", crate::random_u64())),
            workspace: None,
            env: Vec::new(),
            binary: None,
        }
    }
}

impl CoreBuilder {
    /// Defaults: a random `--api-token`, a fresh workspace, no config.
    pub fn new() -> CoreBuilder {
        CoreBuilder::default()
    }

    /// Adds one flag or value.
    pub fn arg(mut self, a: impl Into<String>) -> CoreBuilder {
        self.args.push(a.into());
        self
    }

    /// Adds flags and values.
    pub fn args<I, S>(mut self, args: I) -> CoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Writes `toml` to `<workspace>/core.toml` and passes `--config`.
    pub fn config(mut self, toml: &str) -> CoreBuilder {
        self.config = Some(toml.to_owned());
        self
    }

    /// Passes `--api-token token`.
    pub fn api_token(mut self, token: &str) -> CoreBuilder {
        self.api_token = Some(token.to_owned());
        self
    }

    /// Passes no API token: the core generates `<data_dir>/api-token`.
    pub fn generated_api_token(mut self) -> CoreBuilder {
        self.api_token = None;
        self
    }

    /// Reuses a workspace (and so the data dir) of an earlier core.
    pub fn workspace(mut self, ws: Arc<TempDir>) -> CoreBuilder {
        self.workspace = Some(ws);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, k: &str, v: &str) -> CoreBuilder {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Runs the shipped build when there is one
    /// ([`crate::binaries::release_binary`]; CI requires it), as an attacker
    /// meets it; else the debug build, saying so.
    pub fn release(self) -> CoreBuilder {
        match crate::binaries::release_binary("honeybee-core") {
            Some(bin) => self.binary(bin),
            None => {
                eprintln!("no release honeybee-core built: running the debug build");
                self
            }
        }
    }

    /// Runs this binary instead of the workspace's debug build.
    pub fn binary(mut self, path: PathBuf) -> CoreBuilder {
        self.binary = Some(path);
        self
    }

    /// Whether the test picked the store itself (then test mode leaves it).
    fn chooses_store(&self) -> bool {
        self.args.iter().any(|a| a.starts_with("--postgres"))
            || self.env.iter().any(|(k, _)| k == "HONEYBEE_POSTGRES")
            || self.config.as_ref().is_some_and(|c| c.contains("postgres"))
    }

    /// Starts the core and waits for `/health`; panics (with the core's
    /// stderr) if it does not come up within 10 s.
    #[track_caller]
    pub fn start(self) -> Core {
        match self.try_start() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`CoreBuilder::start`], returning the failure text instead.
    pub fn try_start(self) -> Result<Core, String> {
        let mut last_err = String::new();
        // A port picked free may be taken by a parallel test before the
        // core binds it: retry with new ports when the core exits early.
        for _attempt in 0..3 {
            let (mut core, stderr_reader) = self.launch()?;
            let deadline = Instant::now() + START_TIMEOUT;
            let mut exited = None;
            let healthy = loop {
                if core.api.healthy() {
                    break true;
                }
                if let Some(child) = core.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        exited = Some(status);
                        break false;
                    }
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(25));
            };
            if healthy {
                if self.api_token.is_none() {
                    let token = core.read_generated_token()?;
                    core.api.token = token;
                }
                return Ok(core);
            }
            if exited.is_some() {
                // The pipe is closed: everything the core wrote is captured.
                let _ = stderr_reader.join();
            }
            let text = core.stderr();
            let api_addr = core.api_addr;
            last_err = match exited {
                Some(status) => format!(
                    "honeybee-core exited during startup ({status}); args {:?}\n--- stderr ---\n{text}",
                    core.args
                ),
                None => format!(
                    "honeybee-core did not answer GET /health on {api_addr} within {START_TIMEOUT:?}; args {:?}\n--- stderr ---\n{text}",
                    core.args
                ),
            };
            let port_clash =
                exited.is_some() && (text.contains("in use") || text.contains("AddrInUse"));
            drop(core);
            if !port_clash {
                break;
            }
        }
        Err(last_err)
    }

    /// Spawns the core and returns at once, without waiting for `/health`:
    /// for tests of a core that must not (or not yet) come up. Wait with
    /// [`Core::wait_healthy`] or [`Core::wait_exit`]. An API token the core
    /// generates is not read.
    pub fn spawn(self) -> Core {
        match self.launch() {
            Ok((core, _stderr_reader)) => core,
            Err(e) => panic!("{e}"),
        }
    }

    /// Spawns the core on fresh ports; the `Core` and the thread that reads
    /// its stderr (joined once it exited, to have all of it).
    fn launch(&self) -> Result<(Core, std::thread::JoinHandle<()>), String> {
        let workspace = self
            .workspace
            .clone()
            .unwrap_or_else(|| Arc::new(TempDir::new("honeybee-test")));
        let config_path = self.config.as_ref().map(|text| {
            let p = workspace.path().join("core.toml");
            std::fs::write(&p, text).expect("write core.toml");
            p
        });
        let data_dir = workspace.path().join("data");
        let bin = self.binary.clone().unwrap_or_else(core_binary);
        let [node_port, api_port, stream_port] = free_ports();
        let mut cmd = Command::new(&bin);
        if let Some(p) = &config_path {
            cmd.arg("--config").arg(p);
        }
        cmd.arg("--data-dir")
            .arg(&data_dir)
            .args(["--bind", "127.0.0.1"])
            .args(["--node-port", &node_port.to_string()])
            .args(["--api-port", &api_port.to_string()])
            .args(["--stream-port", &stream_port.to_string()]);
        if let Some(t) = &self.api_token {
            cmd.args(["--api-token", t]);
        }
        cmd.args(&self.args)
            .current_dir(workspace.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if crate::postgres::enabled() && !self.chooses_store() {
            cmd.env(
                "HONEYBEE_POSTGRES",
                crate::postgres::database_for(workspace.path()),
            );
        }
        let echo = std::env::var_os("HONEYBEE_TEST_ECHO").is_some();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", bin.display()))?;
        let stdout = capture(child.stdout.take().expect("stdout"), echo, "core");
        let stderr = capture(child.stderr.take().expect("stderr"), echo, "core");
        let api_addr = SocketAddr::new(LOOPBACK, api_port);
        let core = Core {
            child: Some(child),
            node_addr: SocketAddr::new(LOOPBACK, node_port),
            api_addr,
            stream_addr: SocketAddr::new(LOOPBACK, stream_port),
            api: Api::new(api_addr, self.api_token.clone().unwrap_or_default()),
            workspace,
            data_dir,
            stdout: stdout.0,
            stderr: stderr.0,
            args: cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            canary_token: self
                .args
                .iter()
                .position(|a| a == "--enrollment-token")
                .and_then(|i| self.args.get(i + 1).cloned()),
        };
        Ok((core, stderr.1))
    }
}

/// The resident memory (VmRSS) of process `pid` in KiB, while it lives.
pub fn rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
}

/// A running core.
pub struct Core {
    child: Option<Child>,
    /// Node port (Protocol v2).
    pub node_addr: SocketAddr,
    /// HTTP port.
    pub api_addr: SocketAddr,
    /// Stream port.
    pub stream_addr: SocketAddr,
    api: Api,
    workspace: Arc<TempDir>,
    data_dir: PathBuf,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    args: Vec<String>,
    /// `--enrollment-token`, for the canary of [`Core::assert_serving`].
    canary_token: Option<String>,
}

impl Core {
    /// A builder with defaults.
    pub fn builder() -> CoreBuilder {
        CoreBuilder::new()
    }

    /// A core with defaults (open enrollment, explicit API token).
    #[track_caller]
    pub fn start() -> Core {
        CoreBuilder::new().start()
    }

    /// The REST client, with this core's token.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The data dir (`<workspace>/data`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The workspace, to start another core on the same data dir.
    pub fn workspace(&self) -> Arc<TempDir> {
        self.workspace.clone()
    }

    /// The child's pid (None once it was reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The flags the core was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Everything the core wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the core wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// `GET /metrics`, parsed.
    #[track_caller]
    pub fn metrics(&self) -> Metrics {
        self.api.metrics()
    }

    fn read_generated_token(&self) -> Result<String, String> {
        let path = self.data_dir.join("api-token");
        let found = crate::poll_until(Duration::from_secs(2), Duration::from_millis(20), || {
            std::fs::read_to_string(&path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        found.ok_or_else(|| {
            format!(
                "no API token was passed, and {} holds none; stderr:\n{}",
                path.display(),
                self.stderr()
            )
        })
    }

    /// Resident memory (VmRSS) in KiB; panics once the process is gone.
    #[track_caller]
    pub fn rss_kb(&self) -> u64 {
        let pid = self.pid().expect("core pid");
        rss_kb(pid).unwrap_or_else(|| panic!("core {pid} is gone; stderr:\n{}", self.stderr()))
    }

    /// Waits up to `timeout` for `GET /health` to answer 200; false if it
    /// did not, or the core exited first.
    pub fn wait_healthy(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.api.healthy() {
                return true;
            }
            if !self.is_running() || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for the core to exit on its own; its status,
    /// or `None` while it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                // Reaped: nothing left to signal on drop.
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the
    /// status and how long it took. SIGKILLs and panics if it does not exit.
    #[track_caller]
    pub fn terminate(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        self.stop_with(Signal::SIGTERM, timeout)
    }

    /// Sends `signal` and waits up to `timeout` for the exit, like
    /// [`Core::terminate`].
    #[track_caller]
    pub fn stop_with(&mut self, signal: Signal, timeout: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("core already stopped");
        match signal_and_wait(&mut child, signal, timeout) {
            Some((status, took)) => (status, took),
            None => panic!(
                "honeybee-core did not exit within {timeout:?} of {signal}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Connects a node, enrolls it (first registration, open policy) and
    /// returns the connection and its identity with the TOTP key.
    #[track_caller]
    pub fn enroll(&self, name: &str) -> (TestNode, NodeIdentity) {
        let mut id = NodeIdentity::new(name);
        let node = id.enroll(self.node_addr);
        (node, id)
    }

    /// Proves the core still serves: `/health` and `/api/v1/nodes` answer,
    /// and a fresh node (from a loopback address of its own, so per-source
    /// limits of the test do not apply) registers, all quickly.
    #[track_caller]
    pub fn assert_serving(&self, why: &str) {
        let t = Instant::now();
        let h = crate::http::request(self.api_addr, "GET", "/health", None, None)
            .unwrap_or_else(|e| panic!("GET /health failed ({why}): {e}"));
        assert_eq!(h.status, 200, "GET /health ({why}): {}", h.text());
        let n = self.api.get("/api/v1/nodes");
        assert_eq!(n.status, 200, "GET /api/v1/nodes ({why}): {}", n.text());
        let api_time = t.elapsed();
        assert!(
            api_time < Duration::from_secs(3),
            "the API took {api_time:?} ({why})"
        );
        let source = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            1 + (crate::random_u64() % 200) as u8,
            1 + (crate::random_u64() % 250) as u8,
        ));
        let mut id = NodeIdentity::new("canary");
        id.enrollment_token = self.canary_token.clone();
        let t = Instant::now();
        let mut node = TestNode::connect_from(source, self.node_addr)
            .unwrap_or_else(|e| panic!("canary cannot connect from {source} ({why}): {e}"));
        let ack = node
            .try_register(&id.first())
            .unwrap_or_else(|e| panic!("canary got no ack ({why}): {e}"));
        assert!(
            ack.accepted,
            "canary node refused ({why}): {:?}",
            ack.message
        );
        let reg_time = t.elapsed();
        assert!(
            reg_time < Duration::from_secs(3),
            "registration took {reg_time:?} ({why})"
        );
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_and_wait(&mut child, Signal::SIGTERM, Duration::from_secs(3));
        }
        if std::thread::panicking() {
            let text = self.stderr();
            let tail = tail(&text);
            eprintln!(
                "--- honeybee-core stderr (args {:?}) ---\n{tail}\n--- end of core stderr ---",
                self.args
            );
        }
    }
}
