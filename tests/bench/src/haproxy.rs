//! A real HAProxy in front of several bench cores, in the shape of the
//! shipped `configs/haproxy.cfg`, rendered by the tests' own
//! [`honeybee_tests::haproxy::render`]: TCP passthrough with `balance leastconn` for the node port,
//! HTTP for the API, TCP for the stream, `send-proxy-v2` to every core,
//! `/health` checks every second (`fall 2 rise 2`).
//!
//! HAProxy connects to the cores from [`SOURCE`] (127.0.0.2), so each core
//! runs with `--trusted-proxy` [`TRUSTED_PROXY`]. Only `maxconn` differs
//! from the tests' rendering: the benchmarks hold tens of thousands of node
//! connections (HAProxy, started as root, raises its own descriptor limit
//! to fit; otherwise it inherits the bench's).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use honeybee_tests::haproxy::{render, Backend, Frontends};

/// The address HAProxy connects to the cores from.
pub const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// What each core behind HAProxy trusts (`--trusted-proxy`).
pub const TRUSTED_PROXY: &str = "127.0.0.2/32";

/// One server as the stats socket shows it.
#[derive(Clone, Debug)]
pub struct ServerState {
    pub backend: String,
    pub server: String,
    /// `UP`, `DOWN`, `UP 1/2` …
    pub status: String,
    /// Current sessions.
    pub sessions: u64,
}

/// The HAProxy binary: `$HONEYBEE_HAPROXY_BIN`, else `haproxy` on `PATH` or
/// in `/usr/sbin`.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("HONEYBEE_HAPROXY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|p| p.is_file())
        .ok_or_else(|| "haproxy is not installed (apt-get install haproxy)".to_string())
}

/// A running HAProxy; dropping it stops it.
pub struct Haproxy {
    child: Child,
    dir: PathBuf,
    stats: PathBuf,
    pub front: Frontends,
    servers: usize,
}

fn free_ports() -> Result<[u16; 3], String> {
    let ls: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let p: Vec<u16> = ls
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0))
        .collect();
    Ok([p[0], p[1], p[2]])
}

impl Haproxy {
    /// Starts HAProxy in front of `backends` and waits (15 s at most) until
    /// every server passed its health check.
    pub fn start(backends: &[Backend], maxconn: u64) -> Result<Haproxy, String> {
        let bin = binary()?;
        let dir = std::env::temp_dir().join(format!(
            "hb-bench-haproxy-{}-{}",
            std::process::id(),
            free_ports()?[0]
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let stats = dir.join("stats.sock");
        let [n, a, s] = free_ports()?;
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let front = Frontends {
            node: SocketAddr::new(lo, n),
            api: SocketAddr::new(lo, a),
            stream: SocketAddr::new(lo, s),
        };
        let config = render(&front, backends, SOURCE, &stats, maxconn);
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, &config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("stderr")).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", bin.display()))?;
        let mut proxy = Haproxy {
            child,
            dir,
            stats,
            front,
            servers: backends.len(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                return Err(format!(
                    "haproxy exited during startup ({status}): {}",
                    proxy.stderr()
                ));
            }
            let states = proxy.servers();
            let up = states.iter().filter(|s| s.status == "UP").count();
            if up == proxy.servers * 3 {
                return Ok(proxy);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not every core passed HAProxy's health check within 15 s: {states:?}\n{}",
                    proxy.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// HAProxy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What HAProxy wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Every server of every backend, from the stats socket.
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
        let (Some(px), Some(sv), Some(st), Some(scur)) =
            (col("pxname"), col("svname"), col("status"), col("scur"))
        else {
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
                    sessions: f.get(scur)?.parse().unwrap_or(0),
                })
            })
            .collect()
    }

    /// The counters `names` of every row (server, BACKEND, FRONTEND) of
    /// `proxy`, as "row: name=value …" lines with the non-zero ones.
    pub fn counters(&self, proxy: &str, names: &[&str]) -> Vec<String> {
        let Ok(mut sock) = UnixStream::connect(&self.stats) else {
            return Vec::new();
        };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let mut text = String::new();
        if sock.write_all(b"show stat\n").is_err()
            || sock.take(1 << 20).read_to_string(&mut text).is_err()
        {
            return Vec::new();
        }
        let mut lines = text.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return Vec::new();
        };
        let columns: Vec<&str> = header.split(',').collect();
        lines
            .filter(|l| l.split(',').next() == Some(proxy))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let value = |name: &str| {
                    columns
                        .iter()
                        .position(|c| *c == name)
                        .and_then(|i| f.get(i))
                        .copied()
                        .unwrap_or("")
                };
                let shown: Vec<String> = names
                    .iter()
                    .filter(|n| !matches!(value(n), "" | "0"))
                    .map(|n| format!("{n}={}", value(n)))
                    .collect();
                format!("{}: {}", value("svname"), shown.join(" "))
            })
            .collect()
    }

    /// The status of core `index` (0-based) in the node backend.
    pub fn node_server_status(&self, index: usize) -> Option<String> {
        let name = format!("core{}", index + 1);
        self.servers()
            .into_iter()
            .find(|s| s.backend == "honeybee_nodes" && s.server == name)
            .map(|s| s.status)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        crate::child::stop(&mut self.child, Duration::from_secs(3));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The bench's HAProxy has the shipped file's shape (the tests' own
    /// comparison, which masks ports, `maxconn` and server names).
    #[test]
    fn same_shape_as_the_shipped_config() {
        let b = |p: u16| Backend {
            node: SocketAddr::from(([127, 0, 0, 1], p)),
            api: SocketAddr::from(([127, 0, 0, 1], p + 1)),
            stream: SocketAddr::from(([127, 0, 0, 1], p + 2)),
        };
        let front = Frontends {
            node: SocketAddr::from(([127, 0, 0, 1], 9001)),
            api: SocketAddr::from(([127, 0, 0, 1], 9002)),
            stream: SocketAddr::from(([127, 0, 0, 1], 9003)),
        };
        let ours = render(
            &front,
            &[b(9101), b(9201)],
            SOURCE,
            Path::new("/tmp/s"),
            60_000,
        );
        let shipped = honeybee_tests::haproxy::shipped_config();
        assert_eq!(
            honeybee_tests::haproxy::shape(&ours),
            honeybee_tests::haproxy::shape(&shipped)
        );
    }
}
