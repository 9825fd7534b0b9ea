//! A daemon under test as a process tree with a temp dir and a log file,
//! and the TCP ports the machine listens on (`/proc/net/tcp`): what
//! `extension-load` and `deception-scan` need to start the agent and
//! OpenCanary (which forks) and to know when their ports are up.

use crate::child;
use crate::procfs::stat_fields;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `root` and every process descending from it.
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(pid) {
                if let Some(&ppid) = f.get(1) {
                    children.entry(ppid as u32).or_default().push(pid);
                }
            }
        }
    }
    let mut out = Vec::new();
    if Path::new(&format!("/proc/{root}")).exists() {
        out.push(root);
    }
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// Local ports of the TCP sockets in `/proc/net/tcp` and `tcp6`.
#[derive(Default)]
pub struct TcpPorts {
    /// In LISTEN on 127.0.0.1 or 0.0.0.0 (where a loopback client reaches).
    pub listening: HashSet<u16>,
    /// In LISTEN on any address, IPv6 included (where another daemon
    /// would make the agent skip the port).
    pub listening_anywhere: HashSet<u16>,
    /// Any socket at all, TIME_WAIT included.
    pub used: HashSet<u16>,
}

pub fn proc_net_tcp() -> TcpPorts {
    let mut ports = TcpPorts::default();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut f = line.split_whitespace();
            let (Some(local), Some(_remote), Some(state)) = (f.nth(1), f.next(), f.next()) else {
                continue;
            };
            let Some((addr, port)) = local.split_once(':') else {
                continue;
            };
            let Ok(port) = u16::from_str_radix(port, 16) else {
                continue;
            };
            ports.used.insert(port);
            if state == "0A" {
                ports.listening_anywhere.insert(port);
                if addr == "0100007F" || addr == "00000000" {
                    ports.listening.insert(port);
                }
            }
        }
    }
    ports
}

/// A fresh dir under the system temp dir, named after this benchmark, its
/// pid and `tag`.
pub fn temp_dir(tag: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let bench = std::env::current_exe()
        .ok()
        .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "bench".into());
    let dir = std::env::temp_dir().join(format!("hb-{bench}-{}-{tag}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// A daemon under test: its process tree is stopped (SIGTERM, then SIGKILL)
/// and its temp dir removed when dropped.
pub struct Daemon {
    pub name: String,
    child: Child,
    /// Its temp dir (removed on drop).
    pub dir: PathBuf,
    /// Its stdout and stderr.
    pub log: PathBuf,
    spawned: Instant,
}

impl Daemon {
    /// Spawns `cmd` with stdout and stderr to `log`; `dir` is removed
    /// when the daemon is dropped (or fails to start).
    pub fn spawn(
        name: impl Into<String>,
        mut cmd: Command,
        dir: PathBuf,
        log: PathBuf,
    ) -> Result<Daemon, String> {
        let name = name.into();
        let out = File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let spawned = Instant::now();
        match cmd.spawn() {
            Ok(child) => Ok(Daemon {
                name,
                child,
                dir,
                log,
                spawned,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!("starting {name}: {e}"))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error with the end of its output once it has exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); the end of its output:\n{}",
                self.name,
                self.tail()
            )),
            _ => Ok(()),
        }
    }

    /// Time from spawn until every port is in LISTEN (polled, no probe
    /// connections).
    pub fn wait_listening(&mut self, ports: &[u16], limit: Duration) -> Result<Duration, String> {
        loop {
            let listening = proc_net_tcp().listening;
            let at = self.spawned.elapsed();
            let missing: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|p| !listening.contains(p))
                .collect();
            if missing.is_empty() {
                return Ok(at);
            }
            self.alive()?;
            if at > limit {
                return Err(format!(
                    "{} did not listen on {missing:?} within {} s; the end of its output:\n{}",
                    self.name,
                    limit.as_secs(),
                    self.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The last 15 lines of its output.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// SIGTERM to the whole tree (OpenCanary's twistd forks), then SIGKILL
    /// to what is left after 5 s.
    pub fn stop(&mut self) {
        let root = self.pid();
        let pids = tree(root);
        let signal = |pids: &[u32], sig| {
            for &p in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), sig);
            }
        };
        let children: Vec<u32> = pids.iter().copied().filter(|&p| p != root).collect();
        signal(&children, nix::sys::signal::Signal::SIGTERM);
        child::stop(&mut self.child, Duration::from_secs(5));
        let left: Vec<u32> = pids
            .into_iter()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        signal(&left, nix::sys::signal::Signal::SIGKILL);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
