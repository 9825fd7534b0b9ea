//! A real HAProxy in front of cores, configured in the shape of the shipped
//! `configs/haproxy.cfg`: TCP passthrough for the node port, HTTP for the
//! API, TCP with a tunnel timeout for the stream, `send-proxy-v2` to every
//! core, `/health` checks every second.
//!
//! [`Haproxy::start`] takes the cores to put behind it ([`Backend::of`]),
//! renders the config ([`render`]) with three free loopback ports for its
//! frontends, runs `haproxy -db -f FILE`, and returns once every server
//! passed its health check (read from HAProxy's stats socket). HAProxy
//! connects to the cores from [`HAPROXY_SOURCE`] (127.0.0.2), so each core
//! must trust [`TRUSTED_PROXY`] (`--trusted-proxy`), and clients of the test
//! keep 127.0.0.1 and the rest of 127.0.0.0/8 to themselves. Dropping it
//! stops HAProxy.
//!
//! HAProxy must be installed (`apt-get install haproxy`; `.ci/run` does);
//! `HONEYBEE_HAPROXY_BIN` names another binary. Without it the tests fail
//! and say so: they are not skipped.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::child_process::{capture, signal_and_wait, tail};
use crate::core_process::Core;
use crate::temp_dir::TempDir;

/// The address HAProxy connects to the cores from.
pub const HAPROXY_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// What each core behind HAProxy must trust: `--trusted-proxy` this.
pub const TRUSTED_PROXY: &str = "127.0.0.2/32";
/// How long HAProxy may take to start and see every core healthy.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One core behind HAProxy: its three ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Node port (TCP passthrough).
    pub node: SocketAddr,
    /// API port (HTTP; health checks go here).
    pub api: SocketAddr,
    /// Stream port (TCP, WebSocket or NDJSON).
    pub stream: SocketAddr,
}

impl Backend {
    /// The ports of a running test core.
    pub fn of(core: &Core) -> Backend {
        Backend {
            node: core.node_addr,
            api: core.api_addr,
            stream: core.stream_addr,
        }
    }
}

/// Where HAProxy listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frontends {
    /// In front of the node ports.
    pub node: SocketAddr,
    /// In front of the API ports.
    pub api: SocketAddr,
    /// In front of the stream ports.
    pub stream: SocketAddr,
}

/// The HAProxy binary: `$HONEYBEE_HAPROXY_BIN`, else `haproxy` on `PATH`
/// or in `/usr/sbin`; panics with what to install when there is none.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HONEYBEE_HAPROXY_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "HONEYBEE_HAPROXY_BIN={} does not exist",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "haproxy is not installed: `apt-get install haproxy` (CI installs it in .ci/run), \
                 or set HONEYBEE_HAPROXY_BIN"
            )
        })
}

/// The shipped example, `configs/haproxy.cfg`.
pub fn shipped_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/haproxy.cfg");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The config for `backends` behind `front`, connecting from `source`,
/// with a stats socket at `stats` and at most `maxconn` connections: the
/// shipped shape with test addresses (the benchmarks render it too).
pub fn render(
    front: &Frontends,
    backends: &[Backend],
    source: IpAddr,
    stats: &Path,
    maxconn: u64,
) -> String {
    let servers = |port: fn(&Backend) -> SocketAddr, options: &str| -> String {
        backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let options = options.replace("API_PORT", &b.api.port().to_string());
                format!("    server core{} {} {options}\n", i + 1, port(b))
            })
            .collect()
    };
    format!(
        "\
global
    log stderr format raw local0 notice
    maxconn {maxconn}
    stats socket {stats} mode 600 level user

defaults
    log global
    timeout connect 2s
    retries 2
    option redispatch
    timeout client 60s
    timeout server 60s
    default-server inter 1s fall 2 rise 2
    source {source}

frontend honeybee_nodes
    mode tcp
    bind {node}
    default_backend honeybee_nodes

backend honeybee_nodes
    mode tcp
    balance leastconn
    timeout tunnel 5m
    option httpchk GET /health
    http-check expect status 200
{node_servers}
frontend honeybee_api
    mode http
    bind {api}
    timeout http-request 10s
    default_backend honeybee_api

backend honeybee_api
    mode http
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
{api_servers}
frontend honeybee_stream
    mode tcp
    bind {stream}
    timeout client 60s
    default_backend honeybee_stream

backend honeybee_stream
    mode tcp
    balance leastconn
    timeout tunnel 1h
    option httpchk GET /health
    http-check expect status 200
{stream_servers}",
        stats = stats.display(),
        node = front.node,
        api = front.api,
        stream = front.stream,
        node_servers = servers(
            |b| b.node,
            "check port API_PORT check-send-proxy send-proxy-v2"
        ),
        api_servers = servers(|b| b.api, "check send-proxy-v2"),
        stream_servers = servers(
            |b| b.stream,
            "check port API_PORT check-send-proxy send-proxy-v2"
        ),
    )
}

/// The directives of a config with addresses, ports, `maxconn` and server
/// names masked, comments, the test-only lines (`stats socket`, `source`) and
/// repeated server lines left out: equal for [`render`] and the shipped
/// file exactly when they have the same shape.
pub fn shape(config: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in config.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("stats socket") || line.starts_with("source ") {
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"server") && words.len() > 1 {
            words[1] = "NAME";
        }
        let masked: Vec<&str> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // A port, or a connection limit (smaller in tests, whose
                // descriptor limit may be low).
                let after = |key: &str| i > 0 && words[i - 1] == key;
                let number = w.parse::<u16>().is_ok();
                if w.parse::<SocketAddr>().is_ok() || (after("port") || after("maxconn")) && number
                {
                    "N"
                } else {
                    w
                }
            })
            .collect();
        let masked = masked.join(" ");
        if out.last() != Some(&masked) {
            out.push(masked);
        }
    }
    out
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

/// One server as HAProxy's stats show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerState {
    /// The backend (`honeybee_nodes`, `honeybee_api`, `honeybee_stream`).
    pub backend: String,
    /// The server (`core1`, …, in the order of the backends given).
    pub server: String,
    /// `UP`, `DOWN`, `UP 1/2` (going down) …
    pub status: String,
    /// The last check's result (`L7OK`, `L4CON`, `L7STS` …).
    pub check_status: String,
}

/// A running HAProxy; dropping it stops it.
pub struct Haproxy {
    child: Option<Child>,
    /// In front of the node ports.
    pub node_addr: SocketAddr,
    /// In front of the API ports.
    pub api_addr: SocketAddr,
    /// In front of the stream ports.
    pub stream_addr: SocketAddr,
    config: String,
    stats: PathBuf,
    stderr: Arc<Mutex<Vec<u8>>>,
    _workspace: TempDir,
}

impl Haproxy {
    /// Starts HAProxy in front of `backends` and waits until every server
    /// passed a health check; panics with HAProxy's stderr otherwise.
    #[track_caller]
    pub fn start(backends: &[Backend]) -> Haproxy {
        assert!(!backends.is_empty(), "HAProxy needs at least one core");
        let bin = binary();
        let mut last_err = String::new();
        // A port picked free may be taken before HAProxy binds it: retry.
        for _attempt in 0..3 {
            let workspace = TempDir::new("honeybee-haproxy");
            let stats = workspace.path().join("stats.sock");
            let [n, a, s] = free_ports();
            let front = Frontends {
                node: SocketAddr::new(LOOPBACK, n),
                api: SocketAddr::new(LOOPBACK, a),
                stream: SocketAddr::new(LOOPBACK, s),
            };
            let config = render(&front, backends, HAPROXY_SOURCE, &stats, 1000);
            let file = workspace.path().join("haproxy.cfg");
            std::fs::write(&file, &config).expect("write haproxy.cfg");
            let echo = std::env::var_os("HONEYBEE_TEST_ECHO").is_some();
            let mut child = Command::new(&bin)
                .arg("-db")
                .arg("-f")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
            let _stdout = capture(child.stdout.take().expect("stdout"), echo, "haproxy");
            let stderr = capture(child.stderr.take().expect("stderr"), echo, "haproxy");
            let mut proxy = Haproxy {
                child: Some(child),
                node_addr: front.node,
                api_addr: front.api,
                stream_addr: front.stream,
                config,
                stats,
                stderr: stderr.0,
                _workspace: workspace,
            };
            let expected = backends.len() * 3;
            let deadline = Instant::now() + START_TIMEOUT;
            let outcome = loop {
                if let Some(status) = proxy.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                    let _ = stderr.1.join();
                    break Err(format!("haproxy exited during startup ({status})"));
                }
                let states = proxy.servers();
                let healthy = states
                    .iter()
                    .filter(|s| s.status == "UP" && s.check_status.starts_with("L7OK"))
                    .count();
                if healthy == expected {
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    break Err(format!(
                        "not every core passed HAProxy's health check within {START_TIMEOUT:?}: {states:?}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            match outcome {
                Ok(()) => return proxy,
                Err(e) => {
                    let text = proxy.stderr();
                    let clash = text.contains("cannot bind") || text.contains("in use");
                    last_err = format!(
                        "{e}\n--- config ---\n{}\n--- haproxy stderr ---\n{}",
                        proxy.config,
                        tail(&text)
                    );
                    drop(proxy);
                    if !clash {
                        break;
                    }
                }
            }
        }
        panic!("{last_err}");
    }

    /// The config HAProxy runs with.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Everything HAProxy wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Every server of every backend, from the stats socket (empty while
    /// HAProxy is not answering there).
    pub fn servers(&self) -> Vec<ServerState> {
        let Ok(mut sock) = UnixStream::connect(&self.stats) else {
            return Vec::new();
        };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        if sock.write_all(b"show stat\n").is_err() {
            return Vec::new();
        }
        let mut text = String::new();
        if sock.take(1 << 20).read_to_string(&mut text).is_err() {
            return Vec::new();
        }
        let mut lines = text.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return Vec::new();
        };
        let columns: Vec<&str> = header.split(',').collect();
        let col = |name: &str| columns.iter().position(|c| *c == name);
        let (Some(px), Some(sv), Some(st), Some(ck)) = (
            col("pxname"),
            col("svname"),
            col("status"),
            col("check_status"),
        ) else {
            return Vec::new();
        };
        lines
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                let server = f.get(sv)?.to_string();
                if server == "FRONTEND" || server == "BACKEND" {
                    return None;
                }
                Some(ServerState {
                    backend: f.get(px)?.to_string(),
                    server,
                    status: f.get(st)?.to_string(),
                    check_status: f.get(ck)?.to_string(),
                })
            })
            .collect()
    }

    /// Waits until every server of core number `index` (0-based, in the
    /// order given to [`Haproxy::start`]) has `status` (`UP`, `DOWN`);
    /// panics after `timeout`.
    #[track_caller]
    pub fn wait_core_status(&self, index: usize, status: &str, timeout: Duration) {
        let name = format!("core{}", index + 1);
        crate::wait_for(
            &format!("HAProxy to see {name} {status}"),
            timeout,
            Duration::from_millis(100),
            || {
                let states = self.servers();
                let mine: Vec<_> = states.iter().filter(|s| s.server == name).collect();
                (mine.len() == 3 && mine.iter().all(|s| s.status == status)).then_some(())
            },
        )
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_and_wait(&mut child, Signal::SIGTERM, Duration::from_secs(3));
        }
        if std::thread::panicking() {
            eprintln!(
                "--- haproxy stderr ---\n{}\n--- end of haproxy stderr ---",
                tail(&self.stderr())
            );
        }
    }
}
