//! `pot-load`: the potstore's pots on a real Full agent, installed through
//! the core's REST API and brute-forced over loopback by 20 concurrent
//! clients, one pot after the other, each on a fresh agent:
//!
//! - `cowrie` (Cowrie 3.1.4, Python): SSH, 20 threads each running
//!   `sshpass -p WRONG ssh … root@127.0.0.1 true` in a loop (the OpenSSH
//!   client; one password per connection), then telnet, 20 threads speaking
//!   raw TCP to its telnet port (one wrong login per connection);
//! - `native-telnet` (compiled into the agent): the same raw TCP telnet
//!   logins (it accepts every password: the client closes at the shell
//!   prompt);
//! - `honnypotter` (PHP, `php -S`) and `native-http`: 20 threads POSTing
//!   `log`/`pwd` to `/wp-login.php` over raw TCP, one request per
//!   connection.
//!
//! Each load runs as fast as the clients go. A native pot runs a second
//! load first, held to the attempts/s its Python/PHP peer managed
//! (native-telnet to Cowrie's telnet rate, native-http to honnypotter's),
//! so that the comparison also covers exactly the same work.
//!
//! Per pot: install time (`InstallPot` posted → the pot `Running` in the
//! core's view and every port in LISTEN in `/proc/net/tcp`); idle RSS
//! `--idle` seconds later; RSS during the load (sampled every 100 ms: peak
//! and mean); CPU per attempt; events/s the core stored during the load
//! (`honeybee_events_stored_total` delta ÷ load seconds) and the login
//! events it holds for the pot afterwards (`/api/v1/events`). The RSS of a
//! Python/PHP pot is the VmRSS summed over its process tree (its process
//! group and descendants, from `GetPotMetrics`' pid); a native pot has no
//! process, so its RSS is the agent's VmRSS with the pot running minus the
//! agent's VmRSS before the install (what the pot adds to the agent). The
//! agent's own VmRSS is shown beside, and the final table also compares the
//! whole node (agent + pot tree against the agent alone). Target of issue 7:
//! native pots need ≥ 20× less memory than the Python/PHP pots on the same
//! work. Asserts nothing.
//!
//!     CARGO_BUILD_JOBS=1 cargo build --release -p honeybee-core -p honeybee-agent -p honeybee-bench
//!     target/release/pot-load [--seconds 10] [--clients 20] [--idle 3] [--only cowrie,native-telnet,…] [--potstore DIR]
//!
//! Needs `sshpass` and `ssh` (Debian `sshpass`, `openssh-client`) for the
//! SSH load, `php` (Debian `php-cli`) for honnypotter, `/usr/bin/python3`
//! with `python3-venv` and PyPI access for Cowrie's install (a fresh venv
//! every run: the install time includes `pip install cowrie`). Binaries are
//! found next to this one, or at `$HONEYBEE_AGENT_BIN` and
//! `$HONEYBEE_CORE_BIN`; the potstore is the repository's `potstore/` (or
//! `--potstore`). Run as root, the agent runs the pots as an unprivileged
//! user: if that user cannot read the potstore, it is copied into a temp dir
//! first. Everything is on 127.0.0.1; at the end the pots are uninstalled
//! through the API and the agents and the core get SIGTERM.
//!
//! Measured on the 2-core dev machine (2026-11-26, glibc release agent,
//! Cowrie 3.1.4, PHP 8.2): Cowrie installs in 10–12 s (venv + pip), idles
//! at 71 MB, 72 MB under SSH (17 attempts/s: Twisted's 1 s delay after a
//! wrong password), 74.5 MB under telnet (1,060–1,360 attempts/s, three
//! events each); honnypotter idles at 14.8 MB, 16.2 MB at ~1,100 POSTs/s;
//! the native pots add 12–72 KB to a 3.3 MB agent idle, 0.13–0.15 MB at
//! the peer's rate and ~0.9 MB at 7,500 telnet logins/s or 15,000 POSTs/s
//! (the agent forwarding that many events). Pot vs pot, the 20× target
//! holds everywhere but native-http at full speed (18×); whole node vs
//! whole node, telnet is 22–23× at the same rate (18.6× at full speed) and
//! HTTP 5–6× (a 3.3 MB agent against a 15 MB PHP process).

use honeybee_bench::child;
use honeybee_bench::procfs::{clock_ticks, stat_fields, status_kb};
use honeybee_bench::report::verdict;
use honeybee_bench::sibling_binary;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use honeybee_bench::core_process::{CoreProcess, TOKEN};
use serde_json::{json, Value};

const MEMORY_RATIO_TARGET: f64 = 20.0;
const STORED: &str = "honeybee_events_stored_total";
/// Creating the venv and `pip install cowrie` take minutes on a slow mirror.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
const T: Duration = Duration::from_secs(30);
/// A client attempt that takes longer than this counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
const USER_AGENT: &str = "pot-load/1.0 (HoneyBee benchmark)";

struct Options {
    seconds: u64,
    clients: u64,
    idle_secs: u64,
    only: Option<Vec<String>>,
    potstore: Option<PathBuf>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        seconds: 10,
        clients: 20,
        idle_secs: 3,
        only: None,
        potstore: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value =
            || -> Result<String, String> { it.next().cloned().ok_or(format!("{a} needs a value")) };
        let num = |v: String| -> Result<u64, String> {
            v.replace(['_', ','], "")
                .parse()
                .map_err(|_| format!("{a} needs a number, not {v:?}"))
        };
        match a.as_str() {
            "--seconds" => o.seconds = num(value()?)?.max(1),
            "--clients" => o.clients = num(value()?)?.clamp(1, 60),
            "--idle" => o.idle_secs = num(value()?)?,
            "--only" => {
                o.only = Some(
                    value()?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "--potstore" => o.potstore = Some(PathBuf::from(value()?)),
            "--help" | "-h" => {
                println!(
                    "pot-load [--seconds S] [--clients N] [--idle S] [--only cowrie,native-telnet,honnypotter,native-http] [--potstore DIR]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------- /proc

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The pot's processes: its process group (the agent starts each pot as a
/// group leader) and anything descending from the leader.
fn pot_tree(leader: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut out: Vec<u32> = Vec::new();
    for pid in all_pids() {
        if let Some(f) = stat_fields(pid) {
            if let Some(&ppid) = f.get(1) {
                children.entry(ppid as u32).or_default().push(pid);
            }
            if f.get(2) == Some(&u64::from(leader)) {
                out.push(pid);
            }
        }
    }
    if !out.contains(&leader) && Path::new(&format!("/proc/{leader}")).exists() {
        out.push(leader);
    }
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            for p in c {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
        i += 1;
    }
    out
}

/// VmRSS summed and utime + stime of a set of processes.
#[derive(Clone, Copy, Default)]
struct Usage {
    rss_kb: u64,
    cpu: Duration,
    procs: usize,
}

fn usage(pids: &[u32]) -> Usage {
    let mut ticks = 0;
    let mut rss_kb = 0;
    let mut procs = 0;
    for &pid in pids {
        let Some(f) = stat_fields(pid) else { continue };
        ticks += f.iter().skip(11).take(2).sum::<u64>();
        rss_kb += status_kb(pid, "VmRSS:");
        procs += 1;
    }
    Usage {
        rss_kb,
        cpu: Duration::from_micros(ticks * 1_000_000 / clock_ticks()),
        procs,
    }
}

fn process_usage(pid: u32) -> Usage {
    usage(&[pid])
}

/// The inodes of the TCP sockets in LISTEN, by local port.
fn listening() -> HashMap<u16, u64> {
    let mut out = HashMap::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if *state != "0A" {
                continue;
            }
            let Some(port) = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            else {
                continue;
            };
            out.insert(port, inode.parse().unwrap_or(0));
        }
    }
    out
}

fn all_listening(ports: &[u16]) -> bool {
    let l = listening();
    ports.iter().all(|p| l.contains_key(p))
}

fn any_listening(ports: &[u16]) -> bool {
    let l = listening();
    ports.iter().any(|p| l.contains_key(p))
}

/// Free ports below the ephemeral range, so that no client connection of
/// the load can be holding one when a pot binds it.
fn pick_ports(n: usize) -> Result<Vec<u16>, String> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".into());
    let mut r = range
        .split_whitespace()
        .filter_map(|v| v.parse::<u32>().ok());
    let (lo, hi) = (r.next().unwrap_or(32768), r.next().unwrap_or(60999));
    let candidates: Vec<u32> = if lo > 22_000 {
        (21_000..lo).collect()
    } else {
        (hi + 1..=65_535).collect()
    };
    let mut used: HashSet<u16> = HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            if let Some(p) = line
                .split_whitespace()
                .nth(1)
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            {
                used.insert(p);
            }
        }
    }
    let mut out = Vec::new();
    for p in candidates {
        let p = p as u16;
        if used.contains(&p) {
            continue;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], p));
        let free = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .and_then(|s| s.bind(&addr.into()))
            .is_ok();
        if free {
            out.push(p);
            if out.len() == n {
                return Ok(out);
            }
        }
    }
    Err(format!("fewer than {n} free TCP ports"))
}

// ---------------------------------------------------------------- the core's API

/// The core's REST API. `CoreProcess` keeps its address private and only
/// GETs, so the API port is found among the core's listening sockets.
struct Api {
    addr: SocketAddr,
}

fn core_pid() -> Option<u32> {
    let me = u64::from(std::process::id());
    all_pids().into_iter().find(|&pid| {
        stat_fields(pid).is_some_and(|f| f.get(1) == Some(&me))
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "honeybee-core")
    })
}

impl Api {
    fn find(core: &CoreProcess) -> Result<Api, String> {
        let pid = core_pid().ok_or("the honeybee-core child process is not in /proc")?;
        let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
            .flatten()
            .filter_map(|e| {
                let link = std::fs::read_link(e.path()).ok()?;
                let l = link.to_str()?;
                l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect();
        let skip = [core.node_addr.port(), core.stream_addr.port()];
        for (port, inode) in listening() {
            if skip.contains(&port) || !inodes.contains(&inode) {
                continue;
            }
            let api = Api {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            if api.request("GET", "/health", None).map(|r| r.0) == Ok(200) {
                return Ok(api);
            }
        }
        Err("no listening socket of the core answers /health".into())
    }

    /// One request with the bench token; (status, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))
            .map_err(|e| format!("API {}: {e}", self.addr))?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("{method} {path}: no header end"))?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
        let mut payload = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            payload = dechunk(&payload);
        }
        Ok((status, String::from_utf8_lossy(&payload).into_owned()))
    }

    fn get_json(&self, path: &str) -> Result<Value, String> {
        let (status, body) = self.request("GET", path, None)?;
        if status != 200 {
            return Err(format!("GET {path}: HTTP {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}"))
    }

    fn command(&self, node: u64, cmd: Value) -> Result<(), String> {
        let path = format!("/api/v1/nodes/{node}/commands");
        let (status, body) = self.request("POST", &path, Some(&cmd.to_string()))?;
        if status != 202 {
            return Err(format!("POST {path} {cmd}: HTTP {status}: {body}"));
        }
        Ok(())
    }

    fn node(&self, node: u64) -> Result<Value, String> {
        self.get_json(&format!("/api/v1/nodes/{node}"))
    }

    fn pot(&self, node: u64, pot_id: &str) -> Result<Option<Value>, String> {
        Ok(self.node(node)?["pots"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["pot_id"] == pot_id).cloned()))
    }

    fn wait_pot(
        &self,
        node: u64,
        pot_id: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let pot = self.pot(node, pot_id)?;
            if let Some(p) = &pot {
                if pred(p) {
                    return Ok(p.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "pot {pot_id} not in the state waited for within {} s; last seen: {}",
                    timeout.as_secs(),
                    pot.unwrap_or(Value::Null)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `cmd` about the pot and returns the `details` of its answer.
    /// A `GetPotStatus` first clears the details of an earlier answer.
    fn ask(
        &self,
        node: u64,
        pot_id: &str,
        cmd: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        self.command(node, json!({ "GetPotStatus": pot_id }))?;
        self.wait_pot(node, pot_id, T, |p| p["details"].is_null())?;
        self.command(node, json!({ cmd: pot_id }))?;
        Ok(self.wait_pot(node, pot_id, T, |p| pred(&p["details"]))?["details"].clone())
    }

    fn pot_logs(&self, node: u64, pot_id: &str) -> String {
        self.ask(node, pot_id, "GetPotLogs", |d| d["lines"].is_array())
            .map(|d| {
                let lines: Vec<&str> = d["lines"]
                    .as_array()
                    .map(|l| l.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                lines[lines.len().saturating_sub(20)..].join("\n")
            })
            .unwrap_or_else(|e| format!("(no logs: {e})"))
    }

    fn metric(&self, name: &str) -> Result<u64, String> {
        let (_, text) = self.request("GET", "/metrics", None)?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.strip_prefix(' '))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .map(|v| v as u64)
            .ok_or_else(|| format!("{name} missing from /metrics"))
    }

    /// How many events of `event_type` the core holds for the pot.
    fn count_events(&self, pot_id: &str, event_type: &str) -> Result<u64, String> {
        let mut n = 0u64;
        let mut cursor: Option<String> = None;
        for _ in 0..2_000 {
            let mut path =
                format!("/api/v1/events?pot_id={pot_id}&event_type={event_type}&limit=1000");
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(&percent(c));
            }
            let page = self.get_json(&path)?;
            n += page["events"].as_array().map_or(0, |e| e.len() as u64);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(n),
            }
        }
        Ok(n)
    }

    /// Stored counter once it has stood still for 2 s (at most `limit`);
    /// the counter and how long after `from` it last grew.
    fn settled_stored(&self, from: Instant, limit: Duration) -> Result<(u64, Duration), String> {
        let deadline = Instant::now() + limit;
        let (mut last, mut grew) = (self.metric(STORED)?, Instant::now());
        while grew.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let n = self.metric(STORED)?;
            if n != last {
                (last, grew) = (n, Instant::now());
            }
        }
        Ok((last, grew.saturating_duration_since(from)))
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

// ---------------------------------------------------------------- the agent

fn temp_dir(tag: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("hb-pot-load-{}-{tag}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The pot user (when started as root) must be able to traverse it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

/// A Full mode agent: SIGTERM (then SIGKILL) and its dir removed on drop.
struct Agent {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    node_id: u64,
}

impl Agent {
    fn start(api: &Api, core: &CoreProcess, potstore: &Path, name: &str) -> Result<Agent, String> {
        let dir = temp_dir(name)?;
        let log = dir.join("agent.log");
        let out = File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let event_port = pick_ports(1)?[0];
        let child = Command::new(sibling_binary("HONEYBEE_AGENT_BIN", "honeybee-agent")?)
            .arg("full")
            .arg("--core")
            .arg(core.node_addr.to_string())
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--event-port")
            .arg(event_port.to_string())
            .arg("--potstore")
            .arg(potstore)
            .arg("--name")
            .arg(name)
            .arg("--heartbeat-interval")
            .arg("1")
            .env("HONEYBEE_LOG", "warn")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting honeybee-agent: {e}"))?;
        let mut agent = Agent {
            child,
            dir,
            log,
            node_id: 0,
        };
        let deadline = Instant::now() + T;
        let identity = agent.dir.join("state").join("identity.json");
        loop {
            agent.alive()?;
            if let Some(id) = std::fs::read(&identity)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["node_id"].as_u64())
            {
                if api.node(id).is_ok_and(|n| n["status"] == "Running") {
                    agent.node_id = id;
                    return Ok(agent);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the agent did not register within {} s:\n{}",
                    T.as_secs(),
                    agent.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "honeybee-agent exited ({status}):\n{}",
                self.tail()
            )),
            _ => Ok(()),
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        child::stop(&mut self.child, Duration::from_secs(15));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- potstore

/// Whether everything under `p` can be read (and dirs traversed) by others,
/// and every dir above it traversed.
fn readable_by_others(p: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode());
    if !p
        .ancestors()
        .skip(1)
        .all(|a| mode(a).is_ok_and(|m| m & 0o001 != 0))
    {
        return false;
    }
    fn walk(p: &Path) -> bool {
        let Ok(m) = std::fs::metadata(p) else {
            return false;
        };
        let bits = m.permissions().mode();
        if m.is_dir() {
            bits & 0o005 == 0o005
                && std::fs::read_dir(p).is_ok_and(|d| d.flatten().all(|e| walk(&e.path())))
        } else {
            bits & 0o004 != 0
        }
    }
    walk(p)
}

/// Whether the effective uid (second field of `Uid:` in
/// `/proc/self/status`) is 0.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The potstore the agents use, and a temp copy to remove at the end.
fn potstore(o: &Options) -> Result<(PathBuf, Option<PathBuf>), String> {
    let repo = o
        .potstore
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../potstore"));
    let repo = repo
        .canonicalize()
        .map_err(|e| format!("{}: {e}", repo.display()))?;
    if !running_as_root() || readable_by_others(&repo) {
        return Ok((repo, None));
    }
    let copy = temp_dir("potstore")?;
    let mut cp = Command::new("cp");
    cp.arg("-a").arg(repo.join("potstore.json"));
    for d in ["cowrie", "honnypotter"] {
        if repo.join(d).exists() {
            cp.arg(repo.join(d));
        }
    }
    let ok = cp.arg(&copy).status().is_ok_and(|s| s.success())
        && Command::new("chmod")
            .arg("-R")
            .arg("a+rX")
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        return Err(format!("copying {} to {}", repo.display(), copy.display()));
    }
    println!(
        "{} is not readable by the pot user: using a copy in {}",
        repo.display(),
        copy.display()
    );
    Ok((copy.clone(), Some(copy)))
}

// ---------------------------------------------------------------- clients

#[derive(Clone, Copy, PartialEq)]
enum LoadKind {
    /// sshpass + OpenSSH, one wrong password per connection.
    Ssh,
    /// Raw TCP telnet, one login per connection.
    Telnet,
    /// Raw TCP POST /wp-login.php, one request per connection.
    Http,
}

impl LoadKind {
    fn label(self) -> &'static str {
        match self {
            LoadKind::Ssh => "SSH (sshpass + OpenSSH ssh)",
            LoadKind::Telnet => "telnet (raw TCP)",
            LoadKind::Http => "HTTP POST /wp-login.php (raw TCP)",
        }
    }
}

/// Reads until one of `needles` shows up; the text read, or why not.
fn read_until(s: &mut TcpStream, needles: &[&str], deadline: Instant) -> Result<String, String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let text = String::from_utf8_lossy(&seen);
        if needles.iter().any(|n| text.contains(n)) {
            return Ok(text.into_owned());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out waiting for {needles:?} after {text:?}"));
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("closed before {needles:?} after {text:?}")),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{e} waiting for {needles:?} after {text:?}")),
        }
    }
}

fn telnet_attempt(port: u16, password: &str) -> Result<(), String> {
    let deadline = Instant::now() + ATTEMPT_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, ATTEMPT_TIMEOUT).map_err(|e| e.to_string())?;
    read_until(&mut s, &["login: "], deadline)?;
    s.write_all(b"root\r\n").map_err(|e| e.to_string())?;
    read_until(&mut s, &["assword:"], deadline)?;
    s.write_all(format!("{password}\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    // Cowrie refuses the password; native-telnet lets everybody in.
    read_until(&mut s, &["incorrect", "# ", "$ "], deadline)?;
    Ok(())
}

fn http_attempt(port: u16, password: &str) -> Result<(), String> {
    let deadline = Instant::now() + ATTEMPT_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, ATTEMPT_TIMEOUT).map_err(|e| e.to_string())?;
    let body = format!("log=admin&pwd={password}&wp-submit=Log+In&testcookie=1");
    let req = format!(
        "POST /wp-login.php HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut page = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out reading the answer".into());
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => page.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&page);
    if text.starts_with("HTTP/1.") && text.contains("is incorrect") {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer: {:?}",
            text.chars().take(200).collect::<String>()
        ))
    }
}

fn ssh_attempt(port: u16, password: &str) -> Result<(), String> {
    let out = Command::new("timeout")
        .arg(ATTEMPT_TIMEOUT.as_secs().to_string())
        .args(["sshpass", "-p", password, "ssh", "-F", "/dev/null"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=10",
            "-p",
        ])
        .arg(port.to_string())
        .arg("root@127.0.0.1")
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("timeout/sshpass/ssh: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    // sshpass exits 5 for a refused password; ssh says "Permission denied".
    if out.status.code() == Some(5) || err.contains("Permission denied") {
        Ok(())
    } else if out.status.success() {
        Err("the wrong password got in".into())
    } else {
        Err(format!("{}: {}", out.status, err.trim()))
    }
}

/// Samples VmRSS (and the count) of the pot tree and the agent every 100 ms.
struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<WatchFigures>>,
}

#[derive(Default)]
struct WatchFigures {
    tree_peak_kb: u64,
    tree_sum_kb: u64,
    agent_peak_kb: u64,
    agent_sum_kb: u64,
    /// Agent + pot tree in the same sample.
    node_peak_kb: u64,
    n: u64,
}

impl Watch {
    fn start(agent: u32, leader: Option<u32>) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut w = WatchFigures::default();
            loop {
                let a = process_usage(agent).rss_kb;
                let t = leader.map_or(0, |l| usage(&pot_tree(l)).rss_kb);
                w.agent_peak_kb = w.agent_peak_kb.max(a);
                w.agent_sum_kb += a;
                w.node_peak_kb = w.node_peak_kb.max(a + t);
                w.tree_peak_kb = w.tree_peak_kb.max(t);
                w.tree_sum_kb += t;
                w.n += 1;
                if s.load(Ordering::Relaxed) {
                    return w;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Watch {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> WatchFigures {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------- the run

struct Spec {
    name: &'static str,
    pot_type: &'static str,
    /// Python/PHP (a process tree) or compiled into the agent.
    external: bool,
    /// Config keys holding the ports (in the order of `ports`).
    port_keys: &'static [&'static str],
    extra: &'static [(&'static str, &'static str)],
    /// Loads, each on the port at that index of `ports`.
    loads: &'static [(LoadKind, usize)],
    login_event: &'static str,
}

const SPECS: [Spec; 4] = [
    Spec {
        name: "cowrie",
        pot_type: "cowrie",
        external: true,
        port_keys: &["ssh_port", "telnet_port"],
        extra: &[
            ("listen_addr", "127.0.0.1"),
            ("hostname", "srv04"),
            ("out_addr", "127.0.0.1"),
        ],
        loads: &[(LoadKind::Ssh, 0), (LoadKind::Telnet, 1)],
        login_event: "cowrie.login.failed",
    },
    Spec {
        name: "native-telnet",
        pot_type: "native-telnet",
        external: false,
        port_keys: &["telnet_port"],
        extra: &[("listen_addr", "127.0.0.1"), ("hostname", "srv04")],
        loads: &[(LoadKind::Telnet, 0)],
        login_event: "native.telnet.login",
    },
    Spec {
        name: "honnypotter",
        pot_type: "honnypotter",
        external: true,
        port_keys: &["http_port"],
        extra: &[("listen_addr", "127.0.0.1")],
        loads: &[(LoadKind::Http, 0)],
        login_event: "honnypotter.login.failed",
    },
    Spec {
        name: "native-http",
        pot_type: "native-http",
        external: false,
        port_keys: &["http_port"],
        extra: &[("listen_addr", "127.0.0.1")],
        loads: &[(LoadKind::Http, 0)],
        login_event: "native.http.login",
    },
];

/// Memory of "the pot": the process tree of a Python/PHP pot, or what a
/// native pot adds to the agent (may be ≤ 0 within page noise).
#[derive(Clone, Copy)]
struct Mem {
    pot_kb: i64,
    agent_kb: u64,
    /// The whole node: agent + pot tree (the agent alone for a native pot).
    node_kb: u64,
}

#[derive(Clone)]
struct LoadFigures {
    kind: LoadKind,
    /// Attempts a second the load was held to (matching a peer's rate).
    pace: Option<f64>,
    wall: Duration,
    attempts: u64,
    failed: u64,
    first_error: Option<String>,
    peak: Mem,
    mean: Mem,
    /// CPU of the pot tree (external) or of the agent (native).
    pot_cpu: Duration,
    agent_cpu: Duration,
    stored_during: u64,
    stored_total: u64,
    settle: Duration,
    logins: u64,
    status_after: String,
}

struct PotFigures {
    install: Duration,
    idle: Mem,
    idle_procs: usize,
    agent_before_kb: u64,
    loads: Vec<LoadFigures>,
    uninstall_note: String,
}

fn mb(kb: i64) -> f64 {
    kb as f64 / 1024.0
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One installed pot being measured.
struct Run<'a> {
    api: &'a Api,
    spec: &'a Spec,
    pot_id: &'a str,
    /// The pot's process group leader (Python/PHP pots).
    leader: Option<u32>,
    /// The agent's VmRSS before the install.
    agent_before_kb: u64,
    o: &'a Options,
}

/// `o.clients` threads attempting logins on `port` for `o.seconds`, as
/// fast as they go or, with `pace`, at most that many attempts a second in
/// all (attempt k starts k / pace seconds after the start, at the earliest).
fn load(
    run: &Run,
    agent: &mut Agent,
    kind: LoadKind,
    port: u16,
    pace: Option<f64>,
) -> Result<LoadFigures, String> {
    let Run {
        api,
        spec,
        pot_id,
        leader,
        agent_before_kb,
        o,
    } = *run;
    let attempts = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let stop = Arc::new(AtomicBool::new(false));
    let tickets = Arc::new(AtomicU64::new(0));
    let logins_before = api.count_events(pot_id, spec.login_event)?;
    let stored_before = api.metric(STORED)?;
    let cpu_of = |agent: u32| {
        (
            leader.map_or(Duration::ZERO, |l| usage(&pot_tree(l)).cpu),
            process_usage(agent).cpu,
        )
    };
    let (tree_cpu0, agent_cpu0) = cpu_of(agent.pid());
    let watch = Watch::start(agent.pid(), leader);
    let start = Instant::now();
    let mut clients = Vec::new();
    for t in 0..o.clients {
        let (attempts, failed, first_error, stop, tickets) = (
            attempts.clone(),
            failed.clone(),
            first_error.clone(),
            stop.clone(),
            tickets.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(rate) = pace {
                    let k = tickets.fetch_add(1, Ordering::Relaxed);
                    let at = start + Duration::from_secs_f64(k as f64 / rate);
                    while Instant::now() < at && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(
                            at.saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(50)),
                        );
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                let password = format!("pl{t}x{i}");
                let r = match kind {
                    LoadKind::Ssh => ssh_attempt(port, &password),
                    LoadKind::Telnet => telnet_attempt(port, &password),
                    LoadKind::Http => http_attempt(port, &password),
                };
                attempts.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = r {
                    failed.fetch_add(1, Ordering::Relaxed);
                    let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    first.get_or_insert(e);
                    // Do not spin on a refused connect.
                    std::thread::sleep(Duration::from_millis(20));
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(o.seconds));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let wall = start.elapsed();
    let stored_end = api.metric(STORED)?;
    let w = watch.finish();
    let (tree_cpu1, agent_cpu1) = cpu_of(agent.pid());
    agent.alive()?;
    let (stored_total, settle) = api.settled_stored(start, Duration::from_secs(120))?;
    let settle = settle.saturating_sub(wall);
    let logins = api
        .count_events(pot_id, spec.login_event)?
        .saturating_sub(logins_before);
    let status_after = api
        .pot(agent.node_id, pot_id)?
        .map(|p| p["status"].as_str().unwrap_or("?").to_string())
        .unwrap_or_else(|| "gone".into());
    let n = w.n.max(1);
    let pot_mem = |tree: u64, agent: u64| -> i64 {
        if spec.external {
            tree as i64
        } else {
            agent as i64 - agent_before_kb as i64
        }
    };
    let agent_cpu = agent_cpu1.saturating_sub(agent_cpu0);
    let f = LoadFigures {
        kind,
        pace,
        wall,
        attempts: attempts.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        first_error: first_error.lock().unwrap_or_else(|p| p.into_inner()).take(),
        peak: Mem {
            pot_kb: pot_mem(w.tree_peak_kb, w.agent_peak_kb),
            agent_kb: w.agent_peak_kb,
            node_kb: w.node_peak_kb,
        },
        mean: Mem {
            pot_kb: pot_mem(w.tree_sum_kb / n, w.agent_sum_kb / n),
            agent_kb: w.agent_sum_kb / n,
            node_kb: (w.agent_sum_kb + w.tree_sum_kb) / n,
        },
        pot_cpu: if spec.external {
            tree_cpu1.saturating_sub(tree_cpu0)
        } else {
            agent_cpu
        },
        agent_cpu,
        stored_during: stored_end.saturating_sub(stored_before),
        stored_total: stored_total.saturating_sub(stored_before),
        settle,
        logins,
        status_after,
    };
    let secs = f.wall.as_secs_f64();
    println!(
        "{}: {} load{}, {} clients for {:.1} s: {} attempts ({:.0}/s, {} failed); RSS {} peak {:.2} MB, mean {:.2} MB \
         (agent peak {:.2} MB); CPU {:.0} ms ({:.2} ms/attempt, agent {:.0} ms); the core stored {} events during the load \
         ({:.0}/s), {} in all (settled {:.1} s after the load); {} {} events for {pot_id}; pot {}",
        spec.name,
        kind.label(),
        pace_note(pace),
        o.clients,
        secs,
        thousands(f.attempts),
        f.attempts as f64 / secs,
        f.failed,
        if spec.external {
            "of the pot's process tree"
        } else {
            "added to the agent"
        },
        mb(f.peak.pot_kb),
        mb(f.mean.pot_kb),
        mb(f.peak.agent_kb as i64),
        f.pot_cpu.as_secs_f64() * 1e3,
        f.pot_cpu.as_secs_f64() * 1e3 / f.attempts.max(1) as f64,
        f.agent_cpu.as_secs_f64() * 1e3,
        thousands(f.stored_during),
        f.stored_during as f64 / secs,
        thousands(f.stored_total),
        f.settle.as_secs_f64(),
        thousands(f.logins),
        spec.login_event,
        f.status_after
    );
    if let Some(e) = &f.first_error {
        println!("{}: first failed attempt: {e}", spec.name);
    }
    Ok(f)
}

fn pace_note(pace: Option<f64>) -> String {
    pace.map(|r| format!(" paced to {r:.0} attempts/s"))
        .unwrap_or_default()
}

/// Installs, idles, loads and uninstalls one pot on a fresh agent. `pace`:
/// the attempts/s of the Python/PHP peer on the same work, for a second,
/// paced load of a native pot.
fn run_pot(
    api: &Api,
    core: &CoreProcess,
    store: &Path,
    spec: &Spec,
    o: &Options,
    pace: Option<f64>,
) -> Result<PotFigures, String> {
    let pot_id = format!("{}-load", spec.name);
    let mut agent = Agent::start(api, core, store, &format!("pot-load-{}", spec.name))?;
    let node = agent.node_id;
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let agent_before_kb = process_usage(agent.pid()).rss_kb;
    println!(
        "{}: fresh agent (node {node}) idle {} s without the pot: VmRSS {:.2} MB",
        spec.name,
        o.idle_secs,
        mb(agent_before_kb as i64)
    );
    let ports = pick_ports(spec.port_keys.len())?;
    let mut config = serde_json::Map::new();
    for (k, p) in spec.port_keys.iter().zip(&ports) {
        config.insert((*k).into(), p.to_string().into());
    }
    for (k, v) in spec.extra {
        config.insert((*k).into(), (*v).into());
    }
    let started = Instant::now();
    api.command(
        node,
        json!({"InstallPot": {"pot_id": pot_id, "honeypot_type": spec.pot_type,
                              "config": config, "auto_start": true}}),
    )?;
    let pot = api.wait_pot(node, &pot_id, INSTALL_TIMEOUT, |p| {
        p["status"] == "Running" || p["status"] == "Failed"
    })?;
    if pot["status"] != "Running" {
        return Err(format!(
            "{} did not install: {pot}\n--- pot logs ---\n{}",
            spec.name,
            api.pot_logs(node, &pot_id)
        ));
    }
    let running = started.elapsed();
    while !all_listening(&ports) {
        agent.alive()?;
        if started.elapsed() > INSTALL_TIMEOUT {
            return Err(format!(
                "{} runs but does not listen on {ports:?}\n--- pot logs ---\n{}",
                spec.name,
                api.pot_logs(node, &pot_id)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let install = started.elapsed();
    println!(
        "{}: InstallPot → Running {:.2} s, → listening on {ports:?} {:.2} s",
        spec.name,
        running.as_secs_f64(),
        install.as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let leader = if spec.external {
        let m = api.ask(node, &pot_id, "GetPotMetrics", |d| d["pid"].is_number())?;
        let pid = m["pid"].as_u64().unwrap_or(0) as u32;
        println!(
            "{}: GetPotMetrics: pid {pid}, {} process(es), rss_bytes {:.1} MB",
            spec.name,
            m["processes"],
            m["rss_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0
        );
        Some(pid)
    } else {
        None
    };
    let agent_idle = process_usage(agent.pid()).rss_kb;
    let (tree_idle, procs) = leader.map_or((0, 0), |l| {
        let u = usage(&pot_tree(l));
        (u.rss_kb, u.procs)
    });
    let idle = Mem {
        pot_kb: if spec.external {
            tree_idle as i64
        } else {
            agent_idle as i64 - agent_before_kb as i64
        },
        agent_kb: agent_idle,
        node_kb: agent_idle + tree_idle,
    };
    if spec.external {
        println!(
            "{}: idle {} s: VmRSS of the pot's process tree {:.2} MB ({procs} process(es)); agent {:.2} MB",
            spec.name,
            o.idle_secs,
            mb(idle.pot_kb),
            mb(agent_idle as i64)
        );
    } else {
        println!(
            "{}: idle {} s: agent VmRSS {:.2} MB with the pot, {:.2} MB before the install: the pot adds {:.0} KB",
            spec.name,
            o.idle_secs,
            mb(agent_idle as i64),
            mb(agent_before_kb as i64),
            idle.pot_kb
        );
    }
    let mut loads = Vec::new();
    for &(kind, i) in spec.loads {
        let run = Run {
            api,
            spec,
            pot_id: &pot_id,
            leader,
            agent_before_kb,
            o,
        };
        // The paced load first: RSS seldom shrinks, so after the faster
        // load its peak would only show that one's high-water mark.
        if let Some(rate) = pace.filter(|_| !spec.external) {
            loads.push(load(&run, &mut agent, kind, ports[i], Some(rate))?);
        }
        loads.push(load(&run, &mut agent, kind, ports[i], None)?);
    }
    if let Some(l) = leader {
        let m = api.ask(node, &pot_id, "GetPotMetrics", |d| d["pid"].is_number())?;
        if m["pid"].as_u64() != Some(u64::from(l)) || m["restarts"].as_u64().unwrap_or(0) > 0 {
            println!(
                "{}: the pot was restarted during the run (pid {l} → {}, restarts {})",
                spec.name, m["pid"], m["restarts"]
            );
        }
    }
    // Uninstall through the API; nothing may be left.
    api.command(node, json!({ "UninstallPot": pot_id }))?;
    api.wait_pot(node, &pot_id, T, |p| p["details"]["uninstalled"] == true)?;
    let mut left = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = leader.map(pot_tree).unwrap_or_default();
        let listen = any_listening(&ports);
        if (procs.is_empty() && !listen) || Instant::now() > deadline {
            if !procs.is_empty() {
                left.push(format!("processes {procs:?}"));
            }
            if listen {
                left.push(format!("a port of {ports:?} in LISTEN"));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let uninstall_note = if left.is_empty() {
        "uninstalled: no process, no listening port left".to_string()
    } else {
        format!("LEFT AFTER UninstallPot: {}", left.join(", "))
    };
    println!("{}: {uninstall_note}", spec.name);
    let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        println!(
            "{}: the agent logged {} line(s) at warn level or above, the last: {}",
            spec.name,
            lines.len(),
            lines[lines.len().saturating_sub(3)..].join(" | ")
        );
    }
    drop(agent);
    Ok(PotFigures {
        install,
        idle,
        idle_procs: procs,
        agent_before_kb,
        loads,
        uninstall_note,
    })
}

// ---------------------------------------------------------------- the table

fn mem_cell(external: bool, kb: i64) -> String {
    if external {
        format!("{:.1} MB", mb(kb))
    } else {
        format!("{kb} KB")
    }
}

fn print_pot_table(o: &Options, results: &[(&Spec, Result<PotFigures, String>)]) {
    println!();
    println!(
        "{} concurrent clients per load for {} s, 127.0.0.1 only, one login attempt per connection (wrong passwords; \
         native-telnet lets every login in and the client closes at the shell prompt), a fresh agent per pot. \
         RSS of a Python/PHP pot: VmRSS summed over its process tree. RSS of a native pot: the agent's VmRSS with the pot \
         running minus the agent's VmRSS before the install (no process of its own).",
        o.clients, o.seconds
    );
    println!();
    println!(
        "| pot | load | install → listening | idle RSS | RSS under load: peak (mean) | agent VmRSS: before → idle → load peak | attempts/s (failed) | CPU per attempt (pot tree; native: the agent) | events/s stored during load | login events stored / attempts |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (spec, r) in results {
        match r {
            Err(e) => println!(
                "| {} | – | not measured: {} | | | | | | | |",
                spec.name,
                e.lines().next().unwrap_or("")
            ),
            Ok(f) => {
                for (i, l) in f.loads.iter().enumerate() {
                    let secs = l.wall.as_secs_f64();
                    println!(
                        "| {} | {}{} | {} | {} | {} ({}) | {:.2} → {:.2} → {:.2} MB | {:.0} ({}) | {:.2} ms | {:.0} | {} / {} |",
                        spec.name,
                        l.kind.label(),
                        pace_note(l.pace),
                        if i == 0 {
                            format!("{:.2} s", f.install.as_secs_f64())
                        } else {
                            "″".into()
                        },
                        if i == 0 {
                            let mut c = mem_cell(spec.external, f.idle.pot_kb);
                            if spec.external {
                                c.push_str(&format!(" ({} proc)", f.idle_procs));
                            }
                            c
                        } else {
                            "″".into()
                        },
                        mem_cell(spec.external, l.peak.pot_kb),
                        mem_cell(spec.external, l.mean.pot_kb),
                        mb(f.agent_before_kb as i64),
                        mb(f.idle.agent_kb as i64),
                        mb(l.peak.agent_kb as i64),
                        l.attempts as f64 / secs,
                        l.failed,
                        l.pot_cpu.as_secs_f64() * 1e3 / l.attempts.max(1) as f64,
                        l.stored_during as f64 / secs,
                        thousands(l.logins),
                        thousands(l.attempts),
                    );
                }
            }
        }
    }
}

/// Ratio of the Python/PHP pot's memory to the native pot's. A native
/// figure under one page (4 KB) is within noise: the ratio is a floor.
fn ratio_cell(python_kb: i64, native_kb: i64) -> (String, bool) {
    if native_kb < 4 {
        let r = python_kb as f64 / 4.0;
        (
            format!("> {r:.0}× (native adds < 4 KB)"),
            r >= MEMORY_RATIO_TARGET,
        )
    } else {
        let r = python_kb as f64 / native_kb as f64;
        (format!("{r:.0}×"), r >= MEMORY_RATIO_TARGET)
    }
}

fn print_comparison(results: &[(&Spec, Result<PotFigures, String>)]) {
    let get = |name: &str| {
        results
            .iter()
            .find(|(s, _)| s.name == name)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    let load_of = |f: &PotFigures, k: LoadKind, paced: bool| {
        f.loads
            .iter()
            .find(|l| l.kind == k && l.pace.is_some() == paced)
            .cloned()
    };
    let rate = |l: &LoadFigures| l.attempts as f64 / l.wall.as_secs_f64();
    let stored_rate = |l: &LoadFigures| l.stored_during as f64 / l.wall.as_secs_f64();
    println!();
    println!(
        "Native vs Python/PHP on the same work (target: the native pot needs ≥ {MEMORY_RATIO_TARGET:.0}× less memory). \
         \"pot\": the Python/PHP pot's process tree against what the native pot adds to the agent; \"whole node\": agent + \
         process tree (summed in the same sample) against the agent running the native pot. Under load, each pot first \
         goes as fast as the clients can make it; the native pot is then also held to the attempts/s its peer managed."
    );
    println!();
    println!("| same work | measure | native | Python/PHP | ratio (pot) | target ≥ {MEMORY_RATIO_TARGET:.0}× | whole node: native | whole node: Python/PHP | ratio (node) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    // (work, native, its load, peer, the peer's load, whether the native
    // pot was paced to this load of the peer)
    let pairs = [
        (
            "telnet logins",
            "native-telnet",
            LoadKind::Telnet,
            "cowrie",
            LoadKind::Telnet,
            true,
        ),
        (
            "SSH logins (cowrie) vs telnet logins (native-telnet; it has no SSH)",
            "native-telnet",
            LoadKind::Telnet,
            "cowrie",
            LoadKind::Ssh,
            false,
        ),
        (
            "WordPress wp-login.php POSTs",
            "native-http",
            LoadKind::Http,
            "honnypotter",
            LoadKind::Http,
            true,
        ),
    ];
    for (work, native, nk, python, pk, paced_pair) in pairs {
        let (Some(n), Some(p)) = (get(native), get(python)) else {
            let state = |f: Option<&PotFigures>| if f.is_some() { "ok" } else { "not measured" };
            println!(
                "| {work} | – | {native}: {} | {python}: {} | – | – | – | – | – |",
                state(get(native)),
                state(get(python))
            );
            continue;
        };
        let (Some(nl), Some(pl)) = (load_of(n, nk, false), load_of(p, pk, false)) else {
            continue;
        };
        let paced = load_of(n, nk, true).filter(|_| paced_pair);
        let mut rows: Vec<(String, Mem, Mem)> = vec![
            ("idle".into(), n.idle, p.idle),
            (
                format!(
                    "under load, peak ({:.0} vs {:.0} attempts/s)",
                    rate(&nl),
                    rate(&pl)
                ),
                nl.peak,
                pl.peak,
            ),
        ];
        if let Some(pn) = &paced {
            rows.push((
                format!(
                    "under load, peak, same attempts/s ({:.0} vs {:.0})",
                    rate(pn),
                    rate(&pl)
                ),
                pn.peak,
                pl.peak,
            ));
        }
        for (measure, nm, pm) in rows {
            let (r, ok) = ratio_cell(pm.pot_kb, nm.pot_kb);
            let node_native = nm.node_kb;
            let node_python = pm.node_kb as i64;
            let node_ratio = node_python as f64 / node_native.max(1) as f64;
            println!(
                "| {work} | {measure} | {} KB | {:.1} MB | {r} | {} | {:.2} MB | {:.1} MB | {node_ratio:.1}× ({}) |",
                nm.pot_kb,
                mb(pm.pot_kb),
                verdict(ok),
                mb(node_native as i64),
                mb(node_python),
                verdict(node_ratio >= MEMORY_RATIO_TARGET)
            );
        }
        let paced_cell = paced
            .as_ref()
            .map(|l| format!(" (paced: {:.0}; {:.0})", rate(l), stored_rate(l)))
            .unwrap_or_default();
        println!(
            "| {work} | attempts/s; events/s stored | {:.0}; {:.0}{paced_cell} | {:.0}; {:.0} | – | – | – | – | – |",
            rate(&nl),
            stored_rate(&nl),
            rate(&pl),
            stored_rate(&pl),
        );
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pot-load: {e}");
            std::process::exit(2);
        }
    };
    honeybee_bench::raise_fd_limit();
    let (store, copy) = match potstore(&o) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pot-load: potstore: {e}");
            std::process::exit(1);
        }
    };
    let core = match CoreProcess::start(false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pot-load: {e}");
            std::process::exit(1);
        }
    };
    let api = match Api::find(&core) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pot-load: {e}");
            std::process::exit(1);
        }
    };
    let mut results: Vec<(&Spec, Result<PotFigures, String>)> = Vec::new();
    for spec in &SPECS {
        if o.only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|n| n == spec.name))
        {
            continue;
        }
        let missing = match spec.name {
            "cowrie" if !(have("sshpass") && have("ssh")) => {
                Some("sshpass and ssh are needed (Debian sshpass, openssh-client)")
            }
            "cowrie" if !Path::new("/usr/bin/python3").exists() => {
                Some("/usr/bin/python3 is missing (Debian python3, python3-venv)")
            }
            "honnypotter" if !have("php") => Some("php is missing (Debian php-cli)"),
            _ if !store.join(spec.name).exists() && spec.external => {
                Some("its folder is not in the potstore")
            }
            _ => None,
        };
        let r = match missing {
            Some(why) => Err(why.to_string()),
            None => {
                // The native pot's Python/PHP peer on the same work.
                let peer = match spec.name {
                    "native-telnet" => Some(("cowrie", LoadKind::Telnet)),
                    "native-http" => Some(("honnypotter", LoadKind::Http)),
                    _ => None,
                };
                let pace = peer.and_then(|(name, kind)| {
                    results
                        .iter()
                        .find(|(s, _)| s.name == name)
                        .and_then(|(_, r)| r.as_ref().ok())
                        .and_then(|f| f.loads.iter().find(|l| l.kind == kind))
                        .map(|l| l.attempts as f64 / l.wall.as_secs_f64())
                        .filter(|r| *r > 0.0)
                });
                run_pot(&api, &core, &store, spec, &o, pace)
            }
        };
        if let Err(e) = &r {
            eprintln!("pot-load: {}: {e}", spec.name);
        }
        results.push((spec, r));
    }
    print_pot_table(&o, &results);
    print_comparison(&results);
    for (spec, r) in &results {
        if let Ok(f) = r {
            for l in &f.loads {
                if let Some(e) = &l.first_error {
                    println!(
                        "\n{} ({}): {} attempts failed, the first: {e}",
                        spec.name,
                        l.kind.label(),
                        l.failed
                    );
                }
                if l.status_after != "Running" {
                    println!(
                        "\n{} ({}): pot status after the load: {}",
                        spec.name,
                        l.kind.label(),
                        l.status_after
                    );
                }
            }
            if !f.uninstall_note.starts_with("uninstalled") {
                println!("\n{}: {}", spec.name, f.uninstall_note);
            }
        }
    }
    drop(core);
    if let Some(c) = copy {
        let _ = std::fs::remove_dir_all(c);
    }
}
