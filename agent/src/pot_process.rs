//! Running a pot's `install` or `start` executable: its own process group,
//! a clean environment, an unprivileged user when the agent is root,
//! rlimits, stdout/stderr into a bounded ring, and a stop that leaves no
//! process of the group behind.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{future, AsyncRead, AsyncReadExt};
use honeybee_process::child;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use smol::LocalExecutor;

/// Lines kept per pot for `GetPotLogs`.
pub const LOG_LINES: usize = 200;
/// Longest line kept; the rest of a longer one is cut.
pub const LOG_LINE_BYTES: usize = 1024;
/// The PATH pots get (the agent's own environment is not passed on).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Open files per pot process.
const NOFILE: u64 = 4096;

/// The last lines a pot wrote to stdout or stderr.
#[derive(Default)]
pub struct LogRing {
    lines: VecDeque<String>,
}

impl LogRing {
    /// Adds a line, forgetting the oldest past [`LOG_LINES`].
    pub fn push(&mut self, line: String) {
        if self.lines.len() >= LOG_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

pub use crate::users::RunAs;

/// What to run.
pub struct Spec<'a> {
    /// The executable.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [std::ffi::OsString],
    /// Working directory.
    pub cwd: &'a Path,
    /// Environment on top of PATH, HOME (= cwd) and LANG.
    pub env: &'a [(String, String)],
    /// Who to run as; `None` keeps the agent's user (never root: the
    /// supervisor refuses that before).
    pub run_as: Option<RunAs>,
    /// Where output lines go.
    pub logs: Rc<RefCell<LogRing>>,
    /// Prefix of the log lines (`install`, `start`).
    pub label: &'static str,
}

/// A running process group.
pub struct Running {
    /// The leader's pid, which is also the group id.
    pub pid: i32,
    /// When it started.
    pub started: Instant,
    exited: async_channel::Receiver<()>,
}

/// Starts `spec`; `on_exit` is called with the leader's status once it
/// exited and the rest of its group was killed.
pub fn spawn(
    ex: &LocalExecutor<'static>,
    spec: Spec<'_>,
    on_exit: impl FnOnce(ExitStatus) + 'static,
) -> io::Result<Running> {
    let mut cmd = std::process::Command::new(spec.program);
    cmd.args(spec.args)
        .current_dir(spec.cwd)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", spec.cwd)
        .env("LANG", "C.UTF-8")
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(who) = spec.run_as {
        // std drops supplementary groups when it changes the uid.
        cmd.uid(who.uid).gid(who.gid);
    }
    child::prepare(
        &mut cmd,
        child::Limits {
            open_files: Some(NOFILE),
            no_core_dumps: true,
        },
    );
    let mut child = smol::process::Command::from(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as i32;
    if let Some(out) = child.stdout.take() {
        ex.spawn(collect_lines(out, spec.logs.clone(), spec.label))
            .detach();
    }
    if let Some(err) = child.stderr.take() {
        ex.spawn(collect_lines(err, spec.logs.clone(), spec.label))
            .detach();
    }
    let (done, exited) = async_channel::bounded::<()>(1);
    ex.spawn(async move {
        let status = child
            .status()
            .await
            .unwrap_or_else(|_| ExitStatus::from_raw(-1));
        // Whatever the leader left behind goes with it: no orphans.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        drop(done);
        on_exit(status);
    })
    .detach();
    Ok(Running {
        pid,
        started: Instant::now(),
        exited,
    })
}

impl Running {
    /// SIGTERM to the group, `grace`, then SIGKILL; returns once the leader
    /// is gone (or after a last 5 s if even SIGKILL did not reap it).
    pub async fn stop(&self, grace: Duration) {
        let group = Pid::from_raw(self.pid);
        if killpg(group, Signal::SIGTERM).is_err() {
            return;
        }
        if !self.wait(grace).await {
            log::warn!(
                "pot process group {} ignored SIGTERM for {grace:?}: SIGKILL",
                self.pid
            );
            let _ = killpg(group, Signal::SIGKILL);
            self.wait(Duration::from_secs(5)).await;
        }
    }

    /// Waits for the leader to exit; false on timeout.
    pub async fn wait(&self, timeout: Duration) -> bool {
        future::or(
            async {
                let _ = self.exited.recv().await;
                true
            },
            async {
                Timer::after(timeout).await;
                false
            },
        )
        .await
    }

    /// True once the leader exited.
    pub fn has_exited(&self) -> bool {
        self.exited.is_closed()
    }
}

/// Reads output lines into the ring, each cut to [`LOG_LINE_BYTES`];
/// holds at most one line plus one read in memory.
async fn collect_lines(
    mut out: impl AsyncRead + Unpin,
    logs: Rc<RefCell<LogRing>>,
    label: &'static str,
) {
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match out.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in buf.get(..n).unwrap_or_default() {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&line).into_owned();
                logs.borrow_mut().push(format!("[{label}] {text}"));
                line.clear();
            } else if line.len() < LOG_LINE_BYTES {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        let text = String::from_utf8_lossy(&line).into_owned();
        logs.borrow_mut().push(format!("[{label}] {text}"));
    }
}

pub use honeybee_process::child::describe;
