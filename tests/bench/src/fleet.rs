//! The cores under test and what they stand on: one core with SQLite (the
//! default), or N cores over one PostgreSQL database (`--postgres URL`, or
//! `--postgres auto` for a throwaway cluster with fsync on), with HAProxy in
//! front when N ≥ 2 (`send-proxy-v2`; each core trusts 127.0.0.2, the
//! address HAProxy connects from). With HAProxy, every node connection of
//! a benchmark goes through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::core_process::{Certificate, CoreOptions, CoreProcess};
use crate::haproxy::{Backend, Haproxy, TRUSTED_PROXY};
use crate::postgres::Postgres;

/// Where the state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// Each core's embedded SQLite (only one core then).
    Sqlite,
    /// A throwaway cluster the benchmark starts (fsync on).
    PostgresAuto,
    /// An existing server; its database must be empty.
    PostgresUrl(String),
}

/// `--postgres`, `--cores` and `--proxies`.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub store: Store,
    pub cores: usize,
    /// HAProxy instances in front of the cores (N ≥ 2); `None`: as many as
    /// the descriptor limit needs for the connections (one, unless a
    /// single HAProxy cannot hold two descriptors per connection).
    pub proxies: Option<usize>,
}

impl Default for FleetOptions {
    fn default() -> FleetOptions {
        FleetOptions {
            store: Store::Sqlite,
            cores: 1,
            proxies: None,
        }
    }
}

/// The help text for the flags.
pub const USAGE: &str = "[--postgres URL|auto] [--cores N] [--proxies P]";

impl FleetOptions {
    /// Takes `flag` when it is `--postgres` or `--cores` (its value from
    /// `value`); false for any other flag.
    pub fn take(
        &mut self,
        flag: &str,
        value: impl FnOnce() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--postgres" => {
                let v = value()?;
                self.store = if v == "auto" {
                    Store::PostgresAuto
                } else {
                    Store::PostgresUrl(v)
                };
            }
            "--cores" => {
                self.cores = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or("--cores: a number ≥ 1")?;
            }
            "--proxies" => {
                self.proxies = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or("--proxies: a number ≥ 1")?,
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses what cannot be measured: several cores without a shared
    /// database.
    pub fn check(&self) -> Result<(), String> {
        if self.cores > 1 && self.store == Store::Sqlite {
            return Err("--cores N > 1 needs --postgres (with SQLite each core is alone)".into());
        }
        Ok(())
    }

    /// Whether the cores keep their state in PostgreSQL.
    pub fn postgres(&self) -> bool {
        self.store != Store::Sqlite
    }

    /// A line for the report.
    pub fn describe(&self) -> String {
        let store = match &self.store {
            Store::Sqlite => "SQLite".to_string(),
            Store::PostgresAuto => {
                "PostgreSQL (throwaway local cluster, fsync on, synchronous_commit on)".to_string()
            }
            Store::PostgresUrl(_) => "PostgreSQL (existing server)".to_string(),
        };
        if self.cores > 1 {
            format!(
                "{store}, {} cores behind HAProxy (send-proxy-v2)",
                self.cores
            )
        } else {
            format!("{store}, 1 core")
        }
    }
}

/// The running cores, HAProxy and database; dropped in that order.
pub struct Fleet {
    /// The HAProxy instances (none with one core), each in front of every
    /// core.
    pub proxies: Vec<Haproxy>,
    pub cores: Vec<CoreProcess>,
    pub pg: Option<Postgres>,
    certificate_dir: Option<std::path::PathBuf>,
    tls_roots: Option<Arc<rustls::RootCertStore>>,
}

impl Fleet {
    /// Starts the database (auto), the cores, and HAProxy (N ≥ 2) sized for
    /// `connections` node connections at once.
    pub fn start(o: &FleetOptions, tls: bool, connections: u64) -> Result<Fleet, String> {
        o.check()?;
        // HAProxy holds two descriptors per connection and, with strict
        // limits (its default), refuses to start when it cannot raise its
        // own limit to 2 × maxconn + 40.
        let files = crate::raise_fd_limit_to(1 << 20);
        let pg = match o.store {
            Store::PostgresAuto => Some(Postgres::start()?),
            _ => None,
        };
        let url = match (&o.store, &pg) {
            (Store::PostgresUrl(u), _) => Some(u.clone()),
            (_, Some(pg)) => Some(pg.url()),
            _ => None,
        };
        let mut fleet = Fleet {
            proxies: Vec::new(),
            cores: Vec::new(),
            pg,
            certificate_dir: None,
            tls_roots: None,
        };
        // Cores behind one address serve one certificate.
        let certificate = if tls && o.cores > 1 {
            let dir = std::env::temp_dir().join(format!(
                "hb-bench-cert-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0)
            ));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            fleet.certificate_dir = Some(dir.clone());
            Some(Certificate::generate(&dir)?)
        } else {
            None
        };
        for i in 0..o.cores {
            let core = CoreProcess::start_opts(&CoreOptions {
                tls,
                certificate: certificate.clone(),
                config: None,
                postgres: url.clone(),
                core_name: url.as_ref().map(|_| format!("core{}", i + 1)),
                trusted_proxy: (o.cores > 1).then(|| TRUSTED_PROXY.to_string()),
                extra_args: Vec::new(),
            })?;
            fleet.cores.push(core);
        }
        fleet.tls_roots = fleet.cores[0].tls_roots.clone();
        if matches!(o.store, Store::PostgresUrl(_)) {
            fleet.check_empty()?;
        }
        if o.cores > 1 {
            let backends: Vec<Backend> = fleet
                .cores
                .iter()
                .map(|c| Backend {
                    node: c.node_addr,
                    api: c.api_addr,
                    stream: c.stream_addr,
                })
                .collect();
            let (count, maxconn) = proxy_plan(connections, files, o.proxies);
            if count > 1 {
                println!(
                    "  {count} HAProxy instances (maxconn {maxconn} each): one cannot hold {connections} connections \
                     with {files} descriptors per process (2 per connection + 40); nodes alternate between them"
                );
            }
            for _ in 0..count {
                fleet.proxies.push(Haproxy::start(&backends, maxconn)?);
            }
        }
        Ok(fleet)
    }

    /// A database given by URL must hold no nodes and no events: node ids
    /// and event counts of the benchmarks start from nothing.
    fn check_empty(&self) -> Result<(), String> {
        let totals = stats_totals(&self.cores[0])?;
        let (events, nodes) = (
            totals["events"].as_u64().unwrap_or(0),
            totals["nodes"].as_u64().unwrap_or(0),
        );
        if events > 0 || nodes > 0 {
            return Err(format!(
                "the database of --postgres holds {nodes} nodes and {events} events: give an empty one (or --postgres auto)"
            ));
        }
        Ok(())
    }

    /// Where nodes connect: HAProxy's node frontend (the first HAProxy), or
    /// the one core.
    pub fn node_addr(&self) -> SocketAddr {
        self.node_addrs()[0]
    }

    /// Every HAProxy's node frontend, or the one core's node port.
    pub fn node_addrs(&self) -> Vec<SocketAddr> {
        if self.proxies.is_empty() {
            vec![self.cores[0].node_addr]
        } else {
            self.proxies.iter().map(|p| p.front.node).collect()
        }
    }

    /// The roots that trust the cores' certificate (TLS).
    pub fn tls_roots(&self) -> Option<Arc<rustls::RootCertStore>> {
        self.tls_roots.clone()
    }

    /// PostgreSQL's CPU time so far, when the benchmark runs the server.
    pub fn pg_cpu(&self) -> Option<Duration> {
        self.pg.as_ref().map(|pg| pg.cpu())
    }

    /// HAProxy's own CPU time so far (all instances).
    pub fn proxy_cpu(&self) -> Option<Duration> {
        if self.proxies.is_empty() {
            return None;
        }
        Some(
            self.proxies
                .iter()
                .filter_map(|p| crate::procfs::cpu(p.pid()))
                .sum(),
        )
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.proxies.clear();
        self.cores.clear();
        self.pg.take();
        if let Some(dir) = self.certificate_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The `totals` object of a core's `GET /api/v1/stats`.
pub fn stats_totals(core: &CoreProcess) -> Result<serde_json::Value, String> {
    let r = core.get("/api/v1/stats")?;
    let body = r
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or("no body in /api/v1/stats")?;
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("/api/v1/stats: {e}"))?;
    Ok(v["totals"].clone())
}

/// How many HAProxy instances, and each one's `maxconn`, for `connections`
/// node connections when a process may hold `files` descriptors: HAProxy
/// needs 2 × maxconn + 40 and refuses to start otherwise. Room is left for
/// 10 % more connections than planned (reconnects overlap) and 100 spare.
pub fn proxy_plan(connections: u64, files: u64, asked: Option<usize>) -> (usize, u64) {
    let per_proxy_max = files.saturating_sub(100) / 2;
    let wanted = connections + connections / 10 + 100;
    let count = asked.unwrap_or_else(|| wanted.div_ceil(per_proxy_max.max(1)).max(1) as usize);
    let maxconn = (wanted.div_ceil(count as u64)).min(per_proxy_max).max(100);
    (count, maxconn)
}
