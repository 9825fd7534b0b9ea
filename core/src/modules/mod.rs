//! Extension modules: child processes the core starts, watches and stops.
//!
//! Each `[[modules]]` entry of the config is a command the core runs in its
//! own process group with `HONEYBEE_STREAM_ADDR`, `HONEYBEE_API_ADDR` (plus
//! `HONEYBEE_API_TLS=1` when the API speaks TLS) and `HONEYBEE_API_TOKEN` in
//! its environment (plus the entry's `env`: see [`CoreAccess`]). A module that exits while it
//! should run is started again after a backoff that doubles from 1 s to
//! 60 s and starts over once a run lasted 60 s. Its stdout and stderr are
//! logged at info with its name, and the last lines are kept for the API.
//! Stopping sends SIGTERM to the whole group, then SIGKILL after a grace
//! period. One supervisor thread does the restarts; the API starts, stops
//! and adds modules at run time.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::metrics::Metrics;

/// Lines of output kept per module.
pub const OUTPUT_LINES: usize = 200;
/// Longest kept output line in bytes; the rest of the line is dropped.
const MAX_LINE: usize = 4096;
/// How often the supervisor looks at its children (while it has any, or
/// a restart to make).
const TICK: Duration = Duration::from_millis(100);

/// One `[[modules]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// Unique name: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// The program (a path, or a name looked up in `PATH`).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables (values may be secrets: never shown).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Whether the core starts it when it starts (or when it is added).
    #[serde(default = "default_autostart")]
    pub autostart: bool,
}

fn default_autostart() -> bool {
    true
}

/// Whether `name` is 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ModuleConfig {
    /// Checks one entry on its own.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_name(&self.name) {
            return Err(format!(
                "module name `{}` must be 1 to 64 of A-Z a-z 0-9 _ -",
                self.name
            ));
        }
        // Anything else the system refuses (a missing program, a NUL byte)
        // shows as a failed start, tried again with backoff.
        if self.command.is_empty() {
            return Err(format!("module {}: command must not be empty", self.name));
        }
        Ok(())
    }
}

/// Checks every entry and that names are unique.
pub fn validate_all(modules: &[ModuleConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for m in modules {
        m.validate()?;
        if !seen.insert(m.name.as_str()) {
            return Err(format!("module name `{}` is used twice", m.name));
        }
    }
    Ok(())
}

/// Restart and stop timings (the defaults in production; short in tests).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// First restart delay.
    pub min_backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
    /// A run this long resets the delay to `min_backoff`.
    pub reset_after: Duration,
    /// Time between SIGTERM and SIGKILL on a stop through the API.
    pub grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
            grace: Duration::from_secs(5),
        }
    }
}

impl Timing {
    /// The delay before the next start after a run of `ran`, given the
    /// delay `current` that is due now; returns (delay, the following one).
    pub fn next_backoff(&self, current: Duration, ran: Duration) -> (Duration, Duration) {
        let delay = if ran >= self.reset_after {
            self.min_backoff
        } else {
            current.clamp(self.min_backoff, self.max_backoff)
        };
        (delay, (delay * 2).min(self.max_backoff))
    }
}

/// What a module is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its process runs.
    Running,
    /// Not running and not wanted.
    Stopped,
    /// Being stopped (SIGTERM sent).
    Stopping,
    /// Exited; restarts when its backoff ends.
    Backoff,
    /// Could not be spawned; tried again when its backoff ends.
    Failed,
}

impl State {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Stopped => "stopped",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
            State::Failed => "failed",
        }
    }
}

type Output = Arc<Mutex<VecDeque<String>>>;

struct Module {
    config: ModuleConfig,
    /// Whether it should run (restarted when it exits).
    wanted: bool,
    state: State,
    child: Option<Child>,
    pid: Option<u32>,
    started: Instant,
    restarts: u64,
    last_exit: Option<String>,
    /// When a module in Backoff or Failed is started again.
    next_start: Instant,
    /// The delay after the next exit.
    backoff: Duration,
    output: Output,
}

/// How a module reaches the core: what the core puts in its environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreAccess {
    /// `HONEYBEE_STREAM_ADDR`: `host:port` of the stream port (9003).
    pub stream_addr: String,
    /// `HONEYBEE_API_ADDR`: `host:port` of the REST API (9002).
    pub api_addr: String,
    /// `HONEYBEE_API_TLS=1` when the REST API speaks TLS (unset otherwise).
    pub api_tls: bool,
    /// `HONEYBEE_API_TOKEN`: the API token (stream registration, REST).
    pub api_token: String,
}

impl CoreAccess {
    /// Access for the tests: a stream and an API address and a token.
    pub fn new(stream_addr: &str, api_addr: &str, api_token: &str) -> CoreAccess {
        CoreAccess {
            stream_addr: stream_addr.into(),
            api_addr: api_addr.into(),
            api_tls: false,
            api_token: api_token.into(),
        }
    }
}

struct Inner {
    modules: Mutex<Vec<Module>>,
    wake: Condvar,
    closed: AtomicBool,
    access: CoreAccess,
    timing: Timing,
    metrics: Arc<Metrics>,
}

/// Errors of [`Modules`] calls, mapped to HTTP statuses by the API.
#[derive(Debug, PartialEq, Eq)]
pub enum ModuleError {
    /// No module has that name.
    NotFound,
    /// A module already has that name.
    Exists,
    /// The entry is invalid.
    Invalid(String),
    /// The core is shutting down.
    Closed,
}

/// The supervisor of every module.
pub struct Modules {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Modules {
    /// Starts the supervisor; [`Modules::autostart`] then starts the
    /// `autostart` modules. `access` goes into each module's environment.
    pub fn start(
        configs: &[ModuleConfig],
        access: CoreAccess,
        timing: Timing,
        metrics: Arc<Metrics>,
    ) -> Result<Modules, String> {
        validate_all(configs)?;
        let now = Instant::now();
        let modules = configs
            .iter()
            .map(|c| Module {
                config: c.clone(),
                wanted: false,
                state: State::Stopped,
                child: None,
                pid: None,
                started: now,
                restarts: 0,
                last_exit: None,
                next_start: now,
                backoff: timing.min_backoff,
                output: Arc::new(Mutex::new(VecDeque::new())),
            })
            .collect();
        let inner = Arc::new(Inner {
            modules: Mutex::new(modules),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            access,
            timing,
            metrics,
        });
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("modules".into())
                .spawn(move || inner.supervise())
                .map_err(|e| format!("starting the module supervisor: {e}"))?
        };
        Ok(Modules {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Starts every module whose config says `autostart`.
    pub fn autostart(&self) {
        let mut modules = self.inner.lock();
        for m in modules
            .iter_mut()
            .filter(|m| m.config.autostart && !m.wanted)
        {
            m.wanted = true;
            self.inner.spawn(m);
        }
    }

    /// Every module as the API shows it.
    pub fn list(&self) -> Vec<Value> {
        self.inner.lock().iter().map(view).collect()
    }

    /// One module as the API shows it.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.inner
            .lock()
            .iter()
            .find(|m| m.config.name == name)
            .map(view)
    }

    /// Adds a module at run time (not written to the config file); starts
    /// it when `autostart` is set.
    pub fn add(&self, config: ModuleConfig) -> Result<Value, ModuleError> {
        config.validate().map_err(ModuleError::Invalid)?;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(ModuleError::Closed);
        }
        let mut modules = self.inner.lock();
        if modules.iter().any(|m| m.config.name == config.name) {
            return Err(ModuleError::Exists);
        }
        let now = Instant::now();
        let mut m = Module {
            wanted: config.autostart,
            config,
            state: State::Stopped,
            child: None,
            pid: None,
            started: now,
            restarts: 0,
            last_exit: None,
            next_start: now,
            backoff: self.inner.timing.min_backoff,
            output: Arc::new(Mutex::new(VecDeque::new())),
        };
        if m.wanted {
            self.inner.spawn(&mut m);
        }
        let shown = view(&m);
        modules.push(m);
        Ok(shown)
    }

    /// Starts a module now (its backoff starts over); a running one is left
    /// alone.
    pub fn start_module(&self, name: &str) -> Result<Value, ModuleError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(ModuleError::Closed);
        }
        let mut modules = self.inner.lock();
        let m = modules
            .iter_mut()
            .find(|m| m.config.name == name)
            .ok_or(ModuleError::NotFound)?;
        m.wanted = true;
        m.backoff = self.inner.timing.min_backoff;
        if m.child.is_none() && m.state != State::Stopping {
            self.inner.spawn(m);
        }
        Ok(view(m))
    }

    /// Stops a module: SIGTERM to its process group, SIGKILL after the
    /// grace period. Returns once it is gone.
    pub fn stop_module(&self, name: &str) -> Result<Value, ModuleError> {
        let child = {
            let mut modules = self.inner.lock();
            let m = modules
                .iter_mut()
                .find(|m| m.config.name == name)
                .ok_or(ModuleError::NotFound)?;
            m.wanted = false;
            match m.child.take() {
                Some(child) => {
                    m.state = State::Stopping;
                    Some(child)
                }
                None => {
                    if m.state != State::Stopping {
                        m.state = State::Stopped;
                    }
                    None
                }
            }
        };
        if let Some(child) = child {
            let exit = stop_children(vec![child], self.inner.timing.grace)
                .pop()
                .unwrap_or_default();
            let mut modules = self.inner.lock();
            if let Some(m) = modules.iter_mut().find(|m| m.config.name == name) {
                log::info!("module {name}: stopped ({exit})");
                m.last_exit = Some(exit);
                m.pid = None;
                m.state = State::Stopped;
                // A start during the stop is honoured now.
                if m.wanted && !self.inner.closed.load(Ordering::SeqCst) {
                    self.inner.spawn(m);
                }
            }
        }
        self.get(name).ok_or(ModuleError::NotFound)
    }

    /// Stops the supervisor and every module, giving them `grace` together
    /// after SIGTERM before SIGKILL.
    pub fn stop_all(&self, grace: Duration) {
        {
            // Under the lock: the supervisor is then either waiting (and
            // hears the notification) or has yet to look at `closed`.
            let _modules = self.inner.lock();
            self.inner.closed.store(true, Ordering::SeqCst);
        }
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        let (names, children): (Vec<String>, Vec<Child>) = {
            let mut modules = self.inner.lock();
            modules
                .iter_mut()
                .filter_map(|m| {
                    m.wanted = false;
                    m.state = State::Stopped;
                    m.pid = None;
                    m.child.take().map(|c| (m.config.name.clone(), c))
                })
                .unzip()
        };
        if children.is_empty() {
            return;
        }
        let exits = stop_children(children, grace);
        for (name, exit) in names.iter().zip(exits) {
            log::info!("module {name}: stopped ({exit})");
        }
    }
}

impl Drop for Modules {
    fn drop(&mut self) {
        self.stop_all(self.inner.timing.grace);
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Vec<Module>> {
        self.modules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `m`'s process; on failure schedules another try.
    fn spawn(&self, m: &mut Module) {
        let c = &m.config;
        let mut cmd = Command::new(&c.command);
        cmd.args(&c.args)
            .env("HONEYBEE_STREAM_ADDR", &self.access.stream_addr)
            .env("HONEYBEE_API_ADDR", &self.access.api_addr)
            .env("HONEYBEE_API_TOKEN", &self.access.api_token)
            .env_remove("HONEYBEE_API_TLS");
        if self.access.api_tls {
            cmd.env("HONEYBEE_API_TLS", "1");
        }
        cmd.envs(&c.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own group, signals unblocked, SIGTERM should the core die
        // (Linux: when the thread that spawned it ends; those live until
        // the modules are stopped).
        honeybee_process::child::prepare(&mut cmd, honeybee_process::child::Limits::default());
        let now = Instant::now();
        match cmd.spawn() {
            Ok(mut child) => {
                log::info!("module {}: started, pid {}", c.name, child.id());
                for (r, stream) in [
                    (
                        child
                            .stdout
                            .take()
                            .map(|s| Box::new(s) as Box<dyn Read + Send>),
                        "stdout",
                    ),
                    (
                        child
                            .stderr
                            .take()
                            .map(|s| Box::new(s) as Box<dyn Read + Send>),
                        "stderr",
                    ),
                ] {
                    if let Some(r) = r {
                        capture(r, c.name.clone(), stream, m.output.clone());
                    }
                }
                m.pid = Some(child.id());
                m.child = Some(child);
                m.state = State::Running;
                m.started = now;
            }
            Err(e) => {
                let (delay, next) = self.timing.next_backoff(m.backoff, Duration::ZERO);
                log::warn!(
                    "module {}: cannot start `{}`: {e}; trying again in {delay:?}",
                    c.name,
                    c.command
                );
                push_line(&m.output, format!("[core] cannot start: {e}"));
                m.last_exit = Some(format!("spawn failed: {e}"));
                m.state = State::Failed;
                m.pid = None;
                m.next_start = now + delay;
                m.backoff = next;
            }
        }
        // The supervisor watches it from now on. Callers hold the lock, so
        // the supervisor is waiting and hears this.
        self.wake.notify_all();
    }

    /// Restarts exited modules until closed.
    fn supervise(&self) {
        let mut modules = self.lock();
        while !self.closed.load(Ordering::SeqCst) {
            let now = Instant::now();
            for m in modules.iter_mut() {
                if let Some(child) = m.child.as_mut() {
                    let status = match child.try_wait() {
                        Ok(Some(status)) => status,
                        Ok(None) => continue,
                        Err(e) => {
                            log::warn!("module {}: waiting for it: {e}", m.config.name);
                            continue;
                        }
                    };
                    // Whatever it left behind in its group goes with it.
                    if let Some(pid) = m.pid {
                        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    }
                    m.child = None;
                    m.pid = None;
                    let exit = status.to_string();
                    m.last_exit = Some(exit.clone());
                    if m.wanted {
                        let (delay, next) = self.timing.next_backoff(m.backoff, now - m.started);
                        log::warn!(
                            "module {}: exited ({exit}); restarting in {delay:?}",
                            m.config.name
                        );
                        push_line(&m.output, format!("[core] exited ({exit})"));
                        m.state = State::Backoff;
                        m.next_start = now + delay;
                        m.backoff = next;
                    } else {
                        log::info!("module {}: exited ({exit})", m.config.name);
                        m.state = State::Stopped;
                    }
                } else if m.wanted
                    && matches!(m.state, State::Backoff | State::Failed)
                    && now >= m.next_start
                {
                    m.restarts += 1;
                    self.metrics.module_restarts.fetch_add(1, Ordering::Relaxed);
                    self.spawn(m);
                }
            }
            let running = modules.iter().filter(|m| m.child.is_some()).count();
            self.metrics
                .modules_running
                .store(running as u64, Ordering::Relaxed);
            // With nothing to watch, no tick: the core stays asleep (a
            // spawn or `stop_all` wakes this thread).
            let watching = modules.iter().any(|m| {
                m.child.is_some() || (m.wanted && matches!(m.state, State::Backoff | State::Failed))
            });
            modules = if watching {
                self.wake
                    .wait_timeout(modules, TICK)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            } else {
                self.wake.wait(modules).unwrap_or_else(|e| e.into_inner())
            };
        }
    }
}

/// SIGTERM to each child's group, then SIGKILL to those still there after
/// `grace`; returns each exit status as text, in order.
fn stop_children(mut children: Vec<Child>, grace: Duration) -> Vec<String> {
    let group = |c: &Child| Pid::from_raw(c.id() as i32);
    for c in &children {
        let _ = killpg(group(c), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut exits: Vec<Option<String>> = vec![None; children.len()];
    loop {
        for (c, exit) in children.iter_mut().zip(exits.iter_mut()) {
            if exit.is_none() {
                if let Ok(Some(status)) = c.try_wait() {
                    *exit = Some(status.to_string());
                    // The leader is gone; so is the rest of its group.
                    let _ = killpg(group(c), Signal::SIGKILL);
                }
            }
        }
        if exits.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children
        .iter_mut()
        .zip(exits)
        .map(|(c, exit)| {
            exit.unwrap_or_else(|| {
                let _ = killpg(group(c), Signal::SIGKILL);
                let status = c.wait().map(|s| s.to_string()).unwrap_or_default();
                format!("killed after {grace:?}: {status}")
            })
        })
        .collect()
}

fn push_line(output: &Output, line: String) {
    let mut lines = output.lock().unwrap_or_else(|e| e.into_inner());
    if lines.len() == OUTPUT_LINES {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// Reads `r` line by line into the module's log and recent output.
fn capture(r: Box<dyn Read + Send>, name: String, stream: &'static str, output: Output) {
    let spawned = std::thread::Builder::new()
        .name(format!("module-{stream}"))
        .spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let full = buf.ends_with(b"\n");
                if !full {
                    // Drop the rest of an over-long line.
                    loop {
                        let mut rest = Vec::new();
                        match r
                            .by_ref()
                            .take(MAX_LINE as u64)
                            .read_until(b'\n', &mut rest)
                        {
                            Ok(0) | Err(_) => break,
                            Ok(_) if rest.ends_with(b"\n") => break,
                            Ok(_) => {}
                        }
                    }
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                log::info!("module {name}: {line}");
                push_line(&output, line);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot read the output of a module: {e}");
    }
}

fn view(m: &Module) -> Value {
    let output: Vec<String> = m
        .output
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    json!({
        "name": m.config.name,
        "command": m.config.command,
        "args": m.config.args,
        "env_keys": m.config.env.keys().collect::<Vec<_>>(),
        "autostart": m.config.autostart,
        "status": m.state.as_str(),
        "pid": m.pid,
        "restarts": m.restarts,
        "last_exit": m.last_exit,
        "recent_output": output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Timing {
        Timing {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            reset_after: Duration::from_secs(60),
            grace: Duration::from_millis(500),
        }
    }

    fn sh(name: &str, script: &str) -> ModuleConfig {
        ModuleConfig {
            name: name.into(),
            command: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: BTreeMap::new(),
            autostart: true,
        }
    }

    fn access() -> CoreAccess {
        CoreAccess::new("a", "b", "t")
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(pid: i32) -> bool {
        // Signal 0 checks existence; a zombie is not "alive" for us, so
        // also look at /proc.
        nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let t = Timing::default();
        let s = Duration::from_secs;
        assert_eq!(t.next_backoff(s(1), s(0)), (s(1), s(2)));
        assert_eq!(t.next_backoff(s(2), s(5)), (s(2), s(4)));
        assert_eq!(t.next_backoff(s(32), s(5)), (s(32), s(60)));
        assert_eq!(t.next_backoff(s(60), s(5)), (s(60), s(60)));
        assert_eq!(t.next_backoff(s(60), s(60)), (s(1), s(2)));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("csv-log_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(65)));
        let twice = [sh("a", "true"), sh("a", "true")];
        assert!(validate_all(&twice).is_err());
    }

    #[test]
    fn environment_and_output_reach_the_module() {
        let mut c = sh(
            "env",
            "echo addr=$HONEYBEE_STREAM_ADDR api=$HONEYBEE_API_ADDR tls=${HONEYBEE_API_TLS-unset} tok=$HONEYBEE_API_TOKEN x=$X; sleep 30",
        );
        c.env.insert("X".into(), "y".into());
        let mut tls = c.clone();
        tls.name = "env-tls".into();
        let m = Modules::start(
            &[c],
            CoreAccess::new("127.0.0.1:1", "127.0.0.1:2", "t0k"),
            fast(),
            Default::default(),
        )
        .unwrap();
        m.autostart();
        wait_for("output", || {
            m.get("env").unwrap()["recent_output"]
                .as_array()
                .is_some_and(|a| {
                    a.iter()
                        .any(|l| l == "addr=127.0.0.1:1 api=127.0.0.1:2 tls=unset tok=t0k x=y")
                })
        });
        let v = m.get("env").unwrap();
        assert_eq!(v["status"], "running");
        assert_eq!(v["env_keys"], json!(["X"]));
        assert!(!v.to_string().contains("\"y\""), "{v}");
        m.stop_all(Duration::from_secs(1));
        // An API behind TLS: the module is told so.
        let m = Modules::start(
            &[tls],
            CoreAccess {
                api_tls: true,
                ..CoreAccess::new("[::1]:1", "[::1]:2", "t0k")
            },
            fast(),
            Default::default(),
        )
        .unwrap();
        m.autostart();
        wait_for("output with TLS", || {
            m.get("env-tls").unwrap()["recent_output"]
                .as_array()
                .is_some_and(|a| {
                    a.iter()
                        .any(|l| l == "addr=[::1]:1 api=[::1]:2 tls=1 tok=t0k x=y")
                })
        });
        m.stop_all(Duration::from_secs(1));
    }

    #[test]
    fn output_is_bounded() {
        let c = sh(
            "chatty",
            "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done; sleep 30",
        );
        let m = Modules::start(&[c], access(), fast(), Default::default()).unwrap();
        m.autostart();
        wait_for("the last line", || {
            m.get("chatty").unwrap()["recent_output"]
                .as_array()
                .is_some_and(|a| a.last().is_some_and(|l| l == "line 499"))
        });
        let v = m.get("chatty").unwrap();
        let lines = v["recent_output"].as_array().unwrap();
        assert_eq!(lines.len(), OUTPUT_LINES);
        assert_eq!(lines[0], "line 300");
        m.stop_all(Duration::from_secs(1));
    }

    #[test]
    fn a_dying_module_is_restarted_with_backoff() {
        let m = Modules::start(
            &[sh("dies", "exit 3")],
            access(),
            fast(),
            Default::default(),
        )
        .unwrap();
        m.autostart();
        wait_for("three restarts", || {
            m.get("dies").unwrap()["restarts"].as_u64() >= Some(3)
        });
        let v = m.get("dies").unwrap();
        assert!(
            v["last_exit"].as_str().is_some_and(|s| s.contains('3')),
            "{v}"
        );
        // Stopped, it stays stopped.
        m.stop_module("dies").unwrap();
        let restarts = m.get("dies").unwrap()["restarts"].as_u64();
        std::thread::sleep(Duration::from_millis(600));
        let v = m.get("dies").unwrap();
        assert_eq!(v["status"], "stopped");
        assert_eq!(v["restarts"].as_u64(), restarts);
        m.stop_all(Duration::from_secs(1));
    }

    #[test]
    fn a_missing_program_is_failed_and_retried() {
        let c = ModuleConfig {
            command: "/nonexistent/honeybee-module".into(),
            args: vec![],
            ..sh("missing", "")
        };
        let m = Modules::start(&[c], access(), fast(), Default::default()).unwrap();
        m.autostart();
        assert_eq!(m.get("missing").unwrap()["status"], "failed");
        wait_for("a retry", || {
            m.get("missing").unwrap()["restarts"].as_u64() >= Some(1)
        });
        m.stop_all(Duration::from_secs(1));
    }

    #[test]
    fn stop_kills_the_whole_group_even_if_it_ignores_sigterm() {
        // The shell ignores TERM; its background child writes its pid.
        let c = sh(
            "stubborn",
            "trap '' TERM; sleep 300 & echo child=$!; while true; do sleep 0.05; done",
        );
        let m = Modules::start(&[c], access(), fast(), Default::default()).unwrap();
        m.autostart();
        let mut child = 0;
        wait_for("the child pid", || {
            let v = m.get("stubborn").unwrap();
            child = v["recent_output"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|l| l.as_str()?.strip_prefix("child=")?.parse().ok())
                .unwrap_or(0);
            child != 0
        });
        let leader = m.get("stubborn").unwrap()["pid"].as_i64().unwrap() as i32;
        assert!(alive(leader) && alive(child));
        let started = Instant::now();
        let v = m.stop_module("stubborn").unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "grace honoured"
        );
        assert_eq!(v["status"], "stopped");
        assert!(v["last_exit"].as_str().unwrap().contains("killed"), "{v}");
        wait_for("the group gone", || !alive(leader) && !alive(child));
        // Started again through the API, it runs again.
        let v = m.start_module("stubborn").unwrap();
        assert_eq!(v["status"], "running");
        m.stop_all(Duration::from_millis(200));
        assert_eq!(m.get("stubborn").unwrap()["status"], "stopped");
    }

    #[test]
    fn add_refuses_duplicates_and_bad_names() {
        let m = Modules::start(&[], access(), fast(), Default::default()).unwrap();
        m.autostart();
        let c = ModuleConfig {
            autostart: false,
            ..sh("late", "sleep 30")
        };
        assert_eq!(m.add(c.clone()).unwrap()["status"], "stopped");
        assert_eq!(m.add(c.clone()), Err(ModuleError::Exists));
        let bad = ModuleConfig {
            name: "no spaces".into(),
            ..c
        };
        assert!(matches!(m.add(bad), Err(ModuleError::Invalid(_))));
        assert_eq!(m.start_module("nope"), Err(ModuleError::NotFound));
        assert_eq!(m.list().len(), 1);
    }
}
