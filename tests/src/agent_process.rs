//! Starting and stopping the real `honeybee-agent` binary, and feeding its
//! event socket.
//!
//! An [`AgentBuilder`] runs `honeybee-agent full|extension` with its state
//! dir in a [`TempDir`] workspace (its own, or one shared with a [`Core`] so
//! that everything of a test sits in one place), `--core` pointing at a core
//! or at a [`LinkProxy`], and in Full mode a free loopback `--event-port`.
//! [`AgentBuilder::start`] returns once a Full agent listens on its event
//! socket (an Extension agent has nothing to wait for); the agent's stdout
//! and stderr are captured, [`Agent::stderr`] returns them, and they are
//! printed when a test panics. Dropping the [`Agent`] sends SIGTERM, waits
//! 5 s, then SIGKILLs.
//!
//! [`send_events`], [`connect_as_pot`] and [`cowrie_line`] play a pot
//! writing to the event socket (docs/protocol.md §8), with a token obtained the
//! way a pot gets it ([`crate::test_pot::start_token_pot`]).
//!
//! [`Core`]: crate::Core
//! [`LinkProxy`]: crate::link_proxy::LinkProxy

use std::fmt::Display;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::child_process::{capture, signal_and_wait, tail};
use crate::temp_dir::TempDir;

/// How long a Full agent may take to listen on its event port after spawn.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Agent::node_id`] waits for `identity.json`.
pub const IDENTITY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`send_events`] retries connecting to the event socket.
pub const EVENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The `honeybee-agent` binary: `$HONEYBEE_AGENT_BIN`, else
/// `<target>/<profile>/honeybee-agent` next to the test executable's
/// `deps/`.
pub fn agent_binary() -> PathBuf {
    crate::binaries::workspace_binary("honeybee-agent", "HONEYBEE_AGENT_BIN")
}

/// The agent's mode (its first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMode {
    /// `full`: pot supervisor with an event socket.
    Full,
    /// `extension`: uplink and tripwires, no pots.
    Extension,
}

impl AgentMode {
    /// The CLI word.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::Full => "full",
            AgentMode::Extension => "extension",
        }
    }
}

/// A free loopback port (bound to `127.0.0.1:0` and released).
pub fn free_port() -> u16 {
    TcpListener::bind((LOOPBACK, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `n` distinct free loopback ports, all held until chosen so that none
/// repeats.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Ports as a config's comma-separated list.
pub fn port_list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether some process listens on TCP `127.0.0.1:port` (or on the IPv4
/// wildcard), read from `/proc/thread-self/net/tcp` without connecting, so
/// that the agent's event socket counters stay untouched. (This thread's
/// view: a test may have moved it into a network namespace of its own,
/// see [`crate::faults::NetNs`].)
pub fn listening_on(port: u16) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/thread-self/net/tcp")
        .or_else(|_| std::fs::read_to_string("/proc/net/tcp"))
    else {
        return false;
    };
    let want = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // sl local_address rem_address st …; 0A is LISTEN.
        f.len() > 3 && f[3] == "0A" && want.iter().any(|w| w == f[1])
    })
}

/// How to start an agent.
#[derive(Debug, Clone)]
pub struct AgentBuilder {
    mode: AgentMode,
    core: Option<String>,
    workspace: Option<Arc<TempDir>>,
    state_dir: Option<PathBuf>,
    event_port: Option<u16>,
    pass_event_port: bool,
    potstore: Option<PathBuf>,
    name: Option<String>,
    enrollment_token: Option<String>,
    args: Vec<String>,
    config: Option<String>,
    env: Vec<(String, String)>,
    binary: Option<PathBuf>,
}

impl AgentBuilder {
    /// An agent in `mode` with no `--core` yet, a fresh workspace and (Full)
    /// a free event port.
    pub fn new(mode: AgentMode) -> AgentBuilder {
        AgentBuilder {
            mode,
            core: None,
            workspace: None,
            state_dir: None,
            event_port: None,
            pass_event_port: true,
            potstore: None,
            name: None,
            enrollment_token: None,
            args: Vec::new(),
            config: None,
            env: Vec::new(),
            binary: None,
        }
    }

    /// Runs the shipped build when there is one
    /// ([`crate::binaries::release_binary`]; CI requires it); else the debug
    /// build, saying so.
    pub fn release(self) -> AgentBuilder {
        match crate::binaries::release_binary("honeybee-agent") {
            Some(bin) => self.binary(bin),
            None => {
                eprintln!("no release honeybee-agent built: running the debug build");
                self
            }
        }
    }

    /// Runs this binary instead of the workspace's debug build.
    pub fn binary(mut self, path: PathBuf) -> AgentBuilder {
        self.binary = Some(path);
        self
    }

    /// A Full mode agent for the core (or proxy) at `core`.
    pub fn full(core: impl Display) -> AgentBuilder {
        AgentBuilder::new(AgentMode::Full).core(core)
    }

    /// An Extension mode agent for the core (or proxy) at `core`.
    pub fn extension(core: impl Display) -> AgentBuilder {
        AgentBuilder::new(AgentMode::Extension).core(core)
    }

    /// Passes `--core addr` (`HOST:PORT`: a `SocketAddr` or e.g.
    /// `"localhost:9001"`).
    pub fn core(mut self, addr: impl Display) -> AgentBuilder {
        self.core = Some(addr.to_string());
        self
    }

    /// Passes no `--core` (the config file's, or the default, applies).
    pub fn no_core(mut self) -> AgentBuilder {
        self.core = None;
        self
    }

    /// Runs in this workspace (e.g. [`crate::Core::workspace`], or an
    /// earlier agent's to start it again on the same state).
    pub fn workspace(mut self, ws: Arc<TempDir>) -> AgentBuilder {
        self.workspace = Some(ws);
        self
    }

    /// Passes `--state-dir dir` (default `<workspace>/agent-state`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> AgentBuilder {
        self.state_dir = Some(dir.into());
        self
    }

    /// Passes `--event-port port` (Full; default a free port).
    pub fn event_port(mut self, port: u16) -> AgentBuilder {
        self.event_port = Some(port);
        self.pass_event_port = true;
        self
    }

    /// Passes no `--event-port` (the config file's, or 9100, applies; the
    /// harness then does not know the port and does not wait for it).
    pub fn no_event_port(mut self) -> AgentBuilder {
        self.event_port = None;
        self.pass_event_port = false;
        self
    }

    /// Passes `--potstore dir` (Full).
    pub fn potstore(mut self, dir: impl Into<PathBuf>) -> AgentBuilder {
        self.potstore = Some(dir.into());
        self
    }

    /// Passes `--name name`.
    pub fn name(mut self, name: &str) -> AgentBuilder {
        self.name = Some(name.to_owned());
        self
    }

    /// Passes `--enrollment-token token`.
    pub fn enrollment_token(mut self, token: &str) -> AgentBuilder {
        self.enrollment_token = Some(token.to_owned());
        self
    }

    /// Passes `--heartbeat-interval secs`.
    pub fn heartbeat_interval(self, secs: u64) -> AgentBuilder {
        self.args(["--heartbeat-interval".to_owned(), secs.to_string()])
    }

    /// Adds one flag or value (after the harness's own flags).
    pub fn arg(mut self, a: impl Into<String>) -> AgentBuilder {
        self.args.push(a.into());
        self
    }

    /// Adds flags and values.
    pub fn args<I, S>(mut self, args: I) -> AgentBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Writes `toml` to a file in the workspace and passes `--config` (flags
    /// still override it).
    pub fn config(mut self, toml: &str) -> AgentBuilder {
        self.config = Some(toml.to_owned());
        self
    }

    /// Sets an environment variable for the agent (e.g. `HONEYBEE_LOG`).
    pub fn env(mut self, k: &str, v: &str) -> AgentBuilder {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Starts the agent; panics (with its stderr) if it exits during
    /// start-up or (Full) does not listen on its event port within 10 s.
    #[track_caller]
    pub fn start(self) -> Agent {
        match self.try_start() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`AgentBuilder::start`], returning the failure text instead.
    pub fn try_start(self) -> Result<Agent, String> {
        let workspace = self
            .workspace
            .clone()
            .unwrap_or_else(|| Arc::new(TempDir::new("honeybee-agent-test")));
        let state_dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| workspace.path().join("agent-state"));
        let config_path = self.config.as_ref().map(|text| {
            let p = workspace
                .path()
                .join(format!("agent-{:08x}.toml", crate::random_u64() as u32));
            std::fs::write(&p, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
            p
        });
        let bin = self.binary.clone().unwrap_or_else(agent_binary);
        let full = self.mode == AgentMode::Full;
        let picked_port = full && self.pass_event_port && self.event_port.is_none();
        let mut last_err = String::new();
        // A port picked free may be taken by a parallel test before the
        // agent binds it: retry with another when the agent exits early.
        for _attempt in 0..3 {
            let event_port = match (full && self.pass_event_port, self.event_port) {
                (false, _) => None,
                (true, Some(p)) => Some(p),
                (true, None) => Some(free_port()),
            };
            let mut cmd = Command::new(&bin);
            cmd.arg(self.mode.as_str());
            if let Some(p) = &config_path {
                cmd.arg("--config").arg(p);
            }
            if let Some(c) = &self.core {
                cmd.args(["--core", c]);
            }
            cmd.arg("--state-dir").arg(&state_dir);
            if let Some(n) = &self.name {
                cmd.args(["--name", n]);
            }
            if let Some(t) = &self.enrollment_token {
                cmd.args(["--enrollment-token", t]);
            }
            if let Some(p) = &self.potstore {
                cmd.arg("--potstore").arg(p);
            }
            if let Some(p) = event_port {
                cmd.args(["--event-port", &p.to_string()]);
            }
            cmd.args(&self.args)
                .current_dir(workspace.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            let echo = std::env::var_os("HONEYBEE_TEST_ECHO").is_some();
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot spawn {}: {e}", bin.display()))?;
            let stdout = capture(child.stdout.take().expect("stdout"), echo, "agent");
            let stderr = capture(child.stderr.take().expect("stderr"), echo, "agent");
            let mut agent = Agent {
                child: Some(child),
                pid: 0,
                mode: self.mode,
                event_port,
                state_dir: state_dir.clone(),
                workspace: workspace.clone(),
                stdout: stdout.0,
                stderr: stderr.0,
                args: cmd
                    .get_args()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                builder: AgentBuilder {
                    workspace: Some(workspace.clone()),
                    state_dir: Some(state_dir.clone()),
                    event_port,
                    ..self.clone()
                },
            };
            agent.pid = agent.child.as_ref().map_or(0, Child::id);
            let deadline = Instant::now() + START_TIMEOUT;
            let mut exited = None;
            let ready = loop {
                if let Some(child) = agent.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        exited = Some(status);
                        break false;
                    }
                }
                match event_port {
                    Some(p) if listening_on(p) => break true,
                    Some(_) => {}
                    None => break true,
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if ready {
                return Ok(agent);
            }
            if exited.is_some() {
                // The pipe is closed: everything the agent wrote is captured.
                let _ = stderr.1.join();
            }
            let text = agent.stderr();
            last_err = match exited {
                Some(status) => format!(
                    "honeybee-agent exited during startup ({status}); args {:?}\n--- stderr ---\n{text}",
                    agent.args
                ),
                None => format!(
                    "honeybee-agent did not listen on its event port {event_port:?} within \
                     {START_TIMEOUT:?}; args {:?}\n--- stderr ---\n{text}",
                    agent.args
                ),
            };
            let port_clash = picked_port
                && exited.is_some()
                && (text.contains("in use") || text.contains("AddrInUse"));
            drop(agent);
            if !port_clash {
                break;
            }
        }
        Err(last_err)
    }
}

/// A running agent.
pub struct Agent {
    child: Option<Child>,
    pid: u32,
    mode: AgentMode,
    event_port: Option<u16>,
    state_dir: PathBuf,
    workspace: Arc<TempDir>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    args: Vec<String>,
    builder: AgentBuilder,
}

impl Agent {
    /// A Full mode agent builder for `core` (see [`AgentBuilder::full`]).
    pub fn full(core: impl Display) -> AgentBuilder {
        AgentBuilder::full(core)
    }

    /// An Extension mode agent builder (see [`AgentBuilder::extension`]).
    pub fn extension(core: impl Display) -> AgentBuilder {
        AgentBuilder::extension(core)
    }

    /// The builder this agent was started with, with its workspace, state
    /// dir and event port fixed: `agent.builder().start()` after a stop
    /// starts it again on the same state.
    pub fn builder(&self) -> AgentBuilder {
        self.builder.clone()
    }

    /// The agent's pid (it stays known after the exit).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The mode it runs in.
    pub fn mode(&self) -> AgentMode {
        self.mode
    }

    /// The event port (Full mode, when the harness passed one).
    #[track_caller]
    pub fn event_port(&self) -> u16 {
        self.event_port.expect(
            "this agent has no event port known to the harness (Extension mode, or no_event_port)",
        )
    }

    /// `127.0.0.1:<event port>`.
    #[track_caller]
    pub fn event_addr(&self) -> SocketAddr {
        SocketAddr::new(LOOPBACK, self.event_port())
    }

    /// The state dir.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The workspace (its cwd; holds the state dir by default).
    pub fn workspace(&self) -> Arc<TempDir> {
        self.workspace.clone()
    }

    /// The flags the agent was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Everything the agent wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the agent wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Waits up to `timeout` for `needle` to appear in stderr.
    pub fn wait_stderr_contains(&self, needle: &str, timeout: Duration) -> bool {
        crate::poll_until(timeout, Duration::from_millis(20), || {
            self.stderr().contains(needle).then_some(())
        })
        .is_some()
    }

    /// `identity.json` of the state dir, if it exists and parses.
    pub fn identity(&self) -> Option<Value> {
        let bytes = std::fs::read(self.state_dir.join("identity.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The node id from `identity.json`, waiting up to 10 s for it; panics
    /// (with the agent's stderr) otherwise.
    #[track_caller]
    pub fn node_id(&self) -> u64 {
        let found = crate::poll_until(IDENTITY_TIMEOUT, Duration::from_millis(20), || {
            self.identity()?["node_id"].as_u64()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no node_id in {} after {IDENTITY_TIMEOUT:?}; agent stderr:\n{}",
                self.state_dir.join("identity.json").display(),
                self.stderr()
            )
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `timeout` for the agent to exit on its own and returns
    /// its status; `None` if it still runs then (it is left running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = crate::poll_until(timeout, Duration::from_millis(20), || {
            child.try_wait().ok().flatten()
        })?;
        self.child = None;
        Some(status)
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit. SIGKILLs and
    /// panics (with stderr) if it does not exit in time.
    #[track_caller]
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.stop_with(Signal::SIGTERM, timeout)
    }

    /// Sends `signal` and waits up to `timeout`, like [`Agent::terminate`].
    #[track_caller]
    pub fn stop_with(&mut self, signal: Signal, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("agent already stopped");
        match signal_and_wait(&mut child, signal, timeout) {
            Some((status, _)) => status,
            None => panic!(
                "honeybee-agent did not exit within {timeout:?} of {signal}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// `kill -9`: the agent gets no chance to clean up (its pots, in their
    /// own process groups, may survive it). Reaps it and returns the status.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("agent already stopped");
        let _ = child.kill();
        child.wait().expect("wait for the killed agent")
    }

    /// Resident memory (VmRSS) in KiB, while it runs.
    pub fn rss_kb(&self) -> Option<u64> {
        self.child.as_ref()?;
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_and_wait(&mut child, Signal::SIGTERM, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            let text = self.stderr();
            let tail = tail(&text);
            eprintln!(
                "--- honeybee-agent stderr (args {:?}) ---\n{tail}\n--- end of agent stderr ---",
                self.args
            );
        }
    }
}

/// Connects to the event socket at `addr`, retrying for up to `timeout`
/// (the agent may still be starting); panics if it never answers.
#[track_caller]
pub fn connect_event_socket(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => return s,
            Err(e) if Instant::now() >= deadline => {
                panic!("cannot connect to the event socket {addr} within {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The line a pot opens each event socket connection with (docs/protocol.md
/// §8): `{"token":"..."}`, no newline.
pub fn token_line(token: &str) -> String {
    json!({ "token": token }).to_string()
}

/// [`connect_event_socket`], then the token line of the pot holding
/// `token` (see [`crate::test_pot::start_token_pot`]).
#[track_caller]
pub fn connect_as_pot(addr: SocketAddr, token: &str, timeout: Duration) -> TcpStream {
    let mut s = connect_event_socket(addr, timeout);
    if let Err(e) = s.write_all(format!("{}\n", token_line(token)).as_bytes()) {
        panic!("writing the token line to {addr}: {e}");
    }
    s
}

/// Writes `lines` to the event socket at `addr` on one connection, as the
/// pot holding `token` (a `\n` is added to each line that lacks one), then
/// closes it. Retries the connect for up to 5 s; panics on a write error.
#[track_caller]
pub fn send_events(addr: SocketAddr, token: &str, lines: &[String]) {
    let s = connect_as_pot(addr, token, EVENT_CONNECT_TIMEOUT);
    let mut w = BufWriter::with_capacity(64 * 1024, s);
    for (i, l) in lines.iter().enumerate() {
        let r = w.write_all(l.as_bytes()).and_then(|()| {
            if l.ends_with('\n') {
                Ok(())
            } else {
                w.write_all(b"\n")
            }
        });
        if let Err(e) = r {
            panic!("writing event line {i} to {addr}: {e}");
        }
    }
    let s = w
        .into_inner()
        .unwrap_or_else(|e| panic!("flushing event lines to {addr}: {}", e.error()));
    let _ = s.shutdown(std::net::Shutdown::Write);
}

/// Sends the lines `line(k)` for each `k` in `range` to the event socket at
/// `addr`, as the pot holding `token`, at about `per_second`, from a thread.
/// Chunk `c` leaves at `c`/20 s by the clock, so slow writes do not add up
/// to a slower pace. Panics (in the thread) on a write error.
pub fn paced_sender(
    addr: SocketAddr,
    token: String,
    range: std::ops::Range<u64>,
    per_second: u64,
    line: impl Fn(u64) -> String + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // A loaded machine under a fault test may be slow to accept.
        let mut sock = connect_as_pot(addr, &token, Duration::from_secs(30));
        let chunk = (per_second / 20).max(1);
        let start = Instant::now();
        let mut i = range.start;
        while i < range.end {
            let end = (i + chunk).min(range.end);
            let mut bytes = String::new();
            for k in i..end {
                bytes.push_str(&line(k));
                bytes.push('\n');
            }
            if let Err(e) = sock.write_all(bytes.as_bytes()) {
                panic!("writing events {i}..{end} to {addr}: {e}");
            }
            i = end;
            let due = start + Duration::from_millis(50 * ((i - range.start) / chunk));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    })
}

/// One Cowrie-style event line (no trailing newline): `eventid`, `sensor`
/// (the pot id, as Cowrie names it), `src_ip`, a timestamp of now, and `n`
/// in `data` so tests can count each event exactly once.
pub fn cowrie_line(pot_id: &str, eventid: &str, src_ip: &str, n: u64) -> String {
    json!({
        "eventid": eventid,
        "timestamp": honeybee_proto::time::now_rfc3339(),
        "sensor": pot_id,
        "src_ip": src_ip,
        "src_port": 40000 + n % 20000,
        "dst_ip": "127.0.0.1",
        "dst_port": 2222,
        "protocol": "ssh",
        "session": format!("{pot_id}-{:x}", n / 100),
        "n": n,
        "message": format!("test event {n}"),
    })
    .to_string()
}
