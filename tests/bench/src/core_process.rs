//! The core under test: started from the same target dir, measured via /proc.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The API token every bench core runs with.
pub const TOKEN: &str = "bench-token";

pub struct CoreProcess {
    child: Child,
    dir: PathBuf,
    /// The command line, kept for [`CoreProcess::restart`].
    args: Vec<String>,
    /// Environment beyond the bench's own (`HONEYBEE_POSTGRES`).
    env: Vec<(String, String)>,
    pub node_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// The live stream (port 9003).
    pub stream_addr: SocketAddr,
    pub tls_roots: Option<Arc<rustls::RootCertStore>>,
}

/// CPU time and memory of the core at one moment.
pub struct Sample {
    pub cpu: Duration,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

/// How to start a core, beyond a temp data dir, free ports and the token.
#[derive(Clone, Default)]
pub struct CoreOptions {
    /// TLS 1.3 on the node port, with [`CoreOptions::certificate`] or a
    /// self-signed certificate of its own.
    pub tls: bool,
    /// The certificate to serve (cores behind one balancer share one).
    pub certificate: Option<Certificate>,
    /// A TOML config written to the core's temp dir (`--config`).
    pub config: Option<String>,
    /// A PostgreSQL URL, passed as `HONEYBEE_POSTGRES` (out of `ps`).
    pub postgres: Option<String>,
    /// `--core-name`.
    pub core_name: Option<String>,
    /// `--trusted-proxy`: a balancer whose connections start with a PROXY
    /// header.
    pub trusted_proxy: Option<String>,
    /// More flags, after the others (a later flag wins: `--data-dir DIR`
    /// runs the core on an existing data dir, which is then kept).
    pub extra_args: Vec<String>,
}

/// A self-signed certificate for `localhost` and 127.0.0.1 (PEM files) and
/// the roots a client trusts it with.
#[derive(Clone)]
pub struct Certificate {
    pub cert: String,
    pub key: String,
    pub roots: Arc<rustls::RootCertStore>,
}

impl Certificate {
    /// Generates one into `dir`.
    pub fn generate(dir: &std::path::Path) -> Result<Certificate, String> {
        let (cert, key, roots) = certificates(dir)?;
        Ok(Certificate {
            cert,
            key,
            roots: Arc::new(roots),
        })
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl CoreProcess {
    pub fn start(tls: bool) -> Result<CoreProcess, String> {
        CoreProcess::start_with(tls, None)
    }

    /// Like [`CoreProcess::start`], with `config` (TOML) written to the
    /// core's temp dir and passed as `--config`; the flags still set the
    /// data dir, ports and token.
    pub fn start_with(tls: bool, config: Option<&str>) -> Result<CoreProcess, String> {
        CoreProcess::start_opts(&CoreOptions {
            tls,
            config: config.map(String::from),
            ..CoreOptions::default()
        })
    }

    /// A core started as `o` says; returns once it answers `/health` with
    /// 200 (with PostgreSQL: once it reached the database).
    pub fn start_opts(o: &CoreOptions) -> Result<CoreProcess, String> {
        let dir = std::env::temp_dir().join(format!(
            "hb-bench-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(free_port()?)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let node_port = free_port()?;
        let api_port = free_port()?;
        let stream_port = free_port()?;
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            dir.join("data").display().to_string(),
            "--node-port".into(),
            node_port.to_string(),
            "--api-port".into(),
            api_port.to_string(),
            "--stream-port".into(),
            stream_port.to_string(),
            "--api-token".into(),
            TOKEN.into(),
        ];
        let mut tls_roots = None;
        if o.tls {
            let c = match &o.certificate {
                Some(c) => c.clone(),
                None => Certificate::generate(&dir)?,
            };
            args.extend(["--tls-cert".into(), c.cert, "--tls-key".into(), c.key]);
            tls_roots = Some(c.roots);
        }
        if let Some(toml) = &o.config {
            let path = dir.join("core.toml");
            std::fs::write(&path, toml).map_err(|e| e.to_string())?;
            args.extend(["--config".into(), path.display().to_string()]);
        }
        if let Some(name) = &o.core_name {
            args.extend(["--core-name".into(), name.clone()]);
        }
        if let Some(cidr) = &o.trusted_proxy {
            args.extend(["--trusted-proxy".into(), cidr.clone()]);
        }
        args.extend(o.extra_args.iter().cloned());
        let env: Vec<(String, String)> = o
            .postgres
            .iter()
            .map(|url| ("HONEYBEE_POSTGRES".to_string(), url.clone()))
            .collect();
        let child = spawn(&args, &env)?;
        let core = CoreProcess {
            child,
            dir,
            args,
            env,
            node_addr: SocketAddr::from(([127, 0, 0, 1], node_port)),
            api_addr: SocketAddr::from(([127, 0, 0, 1], api_port)),
            stream_addr: SocketAddr::from(([127, 0, 0, 1], stream_port)),
            tls_roots,
        };
        core.wait_healthy()?;
        Ok(core)
    }

    fn wait_healthy(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.get("/health") {
                Ok(r) if r.starts_with("HTTP/1.1 200") => return Ok(()),
                Ok(r) if Instant::now() > deadline => {
                    return Err(format!(
                        "core's /health not 200 within 30 s: {}",
                        r.lines().next().unwrap_or("")
                    ))
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("core did not answer /health within 30 s: {e}"))
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The core's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the core with SIGKILL (no shutdown of any kind: a crash) and
    /// reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the core with SIGTERM (killed after 10 s) and starts it again
    /// with the same command line: same data dir, ports, token and config.
    /// Returns once the new core answers `/health`.
    pub fn restart(&mut self) -> Result<(), String> {
        crate::child::stop(&mut self.child, Duration::from_secs(10));
        self.child = spawn(&self.args, &self.env)?;
        self.wait_healthy()
    }

    /// A GET with the bench token; the whole response, headers included.
    pub fn get(&self, path: &str) -> Result<String, String> {
        let mut s = TcpStream::connect(self.api_addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut body = String::new();
        s.read_to_string(&mut body).map_err(|e| e.to_string())?;
        Ok(body)
    }

    /// A POST of the JSON `body` with the bench token; the whole response,
    /// headers included.
    pub fn post(&self, path: &str, body: &str) -> Result<String, String> {
        let mut s = TcpStream::connect(self.api_addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        Ok(answer)
    }

    /// A GET with the bench token; the JSON body of a 200, else an error
    /// with the status line.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, String> {
        let r = self.get(path)?;
        if !r.starts_with("HTTP/1.1 200") {
            return Err(format!("GET {path}: {}", r.lines().next().unwrap_or("")));
        }
        Ok(json_body(&r))
    }

    fn metric(&self, prefix: &str) -> Result<u64, String> {
        let text = self.get("/metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(prefix).and_then(|v| v.trim().parse().ok()))
            .ok_or_else(|| format!("{prefix} missing from /metrics"))
    }

    /// The value of the unlabelled metric `name` on `/metrics`.
    pub fn metric_value(&self, name: &str) -> Result<u64, String> {
        let text = self.get("/metrics")?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .ok_or_else(|| format!("{name} missing from /metrics"))
    }

    pub fn heartbeats_seen(&self) -> Result<u64, String> {
        self.metric("honeybee_heartbeats_total ")
    }

    pub fn connected_nodes(&self) -> Result<u64, String> {
        self.metric("honeybee_connections_open ")
    }

    pub fn sample(&self) -> Result<Sample, String> {
        let pid = self.child.id();
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as u64;
        let cpu_ticks = ticks(11) + ticks(12);
        let status =
            std::fs::File::open(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
        let (mut rss_kb, mut hwm_kb) = (0, 0);
        for line in BufReader::new(status).lines().map_while(Result::ok) {
            let kb = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                rss_kb = kb();
            } else if line.starts_with("VmHWM:") {
                hwm_kb = kb();
            }
        }
        Ok(Sample {
            cpu: Duration::from_micros(cpu_ticks * 1_000_000 / hz),
            rss_kb,
            hwm_kb,
        })
    }
}

/// The JSON body of a whole HTTP/1.1 response, chunked or not.
pub fn json_body(response: &str) -> serde_json::Value {
    let Some((head, mut rest)) = response.split_once("\r\n\r\n") else {
        return serde_json::Value::Null;
    };
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return serde_json::from_str(rest).unwrap_or(serde_json::Value::Null);
    }
    let mut text = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        text.push_str(tail.get(..n).unwrap_or(""));
        rest = tail.get(n + 2..).unwrap_or("");
    }
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

fn spawn(args: &[String], env: &[(String, String)]) -> Result<Child, String> {
    Command::new(crate::sibling_binary("HONEYBEE_CORE_BIN", "honeybee-core")?)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("HONEYBEE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting honeybee-core: {e}"))
}

impl Drop for CoreProcess {
    fn drop(&mut self) {
        crate::child::stop(&mut self.child, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certificates(dir: &std::path::Path) -> Result<(String, String, rustls::RootCertStore), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).map_err(|e| e.to_string())?;
    Ok((
        cert_path.display().to_string(),
        key_path.display().to_string(),
        roots,
    ))
}
