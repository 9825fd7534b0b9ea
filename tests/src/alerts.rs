//! The alerts module (`honeybee-alerts`) as tests and benchmarks run it:
//! started against a core with a config, state directory and token file
//! of its own, and loopback receivers that record what arrives: webhook,
//! syslog over TCP, and a real SMTP server (aiosmtpd).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::binaries::workspace_binary;
use crate::child_process::{capture, signal_and_wait, tail, Captured};
use crate::temp_dir::TempDir;
use crate::Core;

/// The module's binary (`HONEYBEE_ALERTS_BIN` overrides).
pub fn binary() -> PathBuf {
    workspace_binary("honeybee-alerts", "HONEYBEE_ALERTS_BIN")
}

/// A running `honeybee-alerts`.
pub struct AlertsModule {
    child: Option<Child>,
    stderr: Captured,
    /// Its working directory (config, token, state).
    pub dir: Arc<TempDir>,
    config: String,
    stream: SocketAddr,
    api: SocketAddr,
}

impl AlertsModule {
    /// Starts the module against `core` with the config text `config`,
    /// keeping its state in `dir`/state.
    pub fn start(core: &Core, config: &str, dir: Arc<TempDir>) -> AlertsModule {
        AlertsModule::start_at(
            core.stream_addr,
            core.api_addr,
            &core.api().token,
            config,
            dir,
        )
    }

    /// Starts it against explicit addresses.
    pub fn start_at(
        stream: SocketAddr,
        api: SocketAddr,
        token: &str,
        config: &str,
        dir: Arc<TempDir>,
    ) -> AlertsModule {
        std::fs::write(dir.path().join("alerts.toml"), config).expect("write alerts.toml");
        std::fs::write(dir.path().join("token"), token).expect("write token");
        let mut m = AlertsModule {
            child: None,
            stderr: (Arc::new(Mutex::new(Vec::new())), std::thread::spawn(|| {})),
            dir,
            config: config.to_string(),
            stream,
            api,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(d.join("alerts.toml"))
            .arg("--stream")
            .arg(self.stream.to_string())
            .arg("--api")
            .arg(self.api.to_string())
            .arg("--api-token-file")
            .arg(d.join("token"))
            .arg("--state-dir")
            .arg(d.join("state"))
            .env("HONEYBEE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start honeybee-alerts");
        let echo = std::env::var_os("HONEYBEE_TEST_ECHO").is_some();
        self.stderr = capture(child.stderr.take().expect("stderr"), echo, "alerts");
        self.child = Some(child);
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.0.lock().unwrap()).to_string()
    }

    /// Its pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops it with `signal`; its exit status.
    pub fn stop(&mut self, signal: Signal) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal_and_wait(&mut child, signal, Duration::from_secs(10)).map(|(s, _)| s)
    }

    /// Starts it again with the same config and state.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop(Signal::SIGTERM);
        }
        self.spawn();
    }

    /// The config it runs with.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Waits until `core` has applied `n` Subscribe commands in all (this
    /// module's among them): from then on it sees live node statuses.
    #[track_caller]
    pub fn wait_subscribed(&self, core: &Core, n: u64) {
        self.wait_for("the module's subscription", Duration::from_secs(10), || {
            core.metrics()
                .value("honeybee_stream_subscriptions_total", &[])
                >= n as f64
        });
    }

    /// Panics with its stderr unless `cond` becomes true within `timeout`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what} within {timeout:?}\n--- alerts stderr ---\n{}",
            tail(&self.stderr())
        );
    }
}

impl Drop for AlertsModule {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `honeybee-alerts` with `args` to its exit: status and stderr.
pub fn run_to_exit(args: &[&str], cwd: &Path) -> (ExitStatus, String) {
    let out = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env_remove("HONEYBEE_API_TOKEN")
        .env_remove("HONEYBEE_STREAM_ADDR")
        .output()
        .expect("run honeybee-alerts");
    (out.status, String::from_utf8_lossy(&out.stderr).to_string())
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Header names lowercased, with values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (Null if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the receiver does with a request.
pub const ANSWER_OK: u16 = 200;
/// Accept the connection and never answer.
pub const HANG: u16 = 0;

/// An HTTP receiver on loopback recording every request.
pub struct WebhookReceiver {
    /// Its address.
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<AtomicU16>,
    /// Requests seen, whatever the answer.
    pub requests: Arc<AtomicU64>,
}

impl WebhookReceiver {
    /// Starts one answering 200.
    pub fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(AtomicU16::new(ANSWER_OK));
        let requests = Arc::new(AtomicU64::new(0));
        let (g, a, r) = (got.clone(), answer.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (g, a, r) = (g.clone(), a.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &g, &a, &r));
            }
        });
        WebhookReceiver {
            addr,
            got,
            answer,
            requests,
        }
    }

    /// `http://ADDR/alert`.
    pub fn url(&self) -> String {
        format!("http://{}/alert", self.addr)
    }

    /// Answers with `status` from now on ([`HANG`]: never answers).
    pub fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::Relaxed);
    }

    /// Everything recorded (answered 2xx) so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The JSON bodies recorded so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.received().iter().map(Received::json).collect()
    }
}

fn serve(mut s: TcpStream, got: &Mutex<Vec<Received>>, answer: &AtomicU16, requests: &AtomicU64) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let status = answer.load(Ordering::Relaxed);
    if status == HANG {
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    if (200..300).contains(&status) {
        got.lock().unwrap().push(Received {
            headers,
            body: buf[head_end..head_end + len].to_vec(),
            at: Instant::now(),
        });
    }
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// The pid of module `name` as the core that runs it lists it
/// (`GET /api/v1/modules`), while it runs.
pub fn module_pid(core: &Core, name: &str) -> Option<u32> {
    let list = core.api().get("/api/v1/modules").json();
    list["modules"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name && m["status"] == "running")
        .and_then(|m| m["pid"].as_u64())
        .and_then(|p| u32::try_from(p).ok())
}

/// aiosmtpd, pinned as `.ci/run` installs it.
pub const AIOSMTPD: &str = "aiosmtpd==1.4.6";

fn smtp_python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        crate::python::find(
            "the alerts module's email tests",
            &[AIOSMTPD],
            "aiosmtpd",
            "smtp-venv",
        )
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A real SMTP server on loopback: aiosmtpd with the sink of
/// `core/modules/alerts/tests/smtp_server.py`, which writes every message
/// it accepted as `NNNN.eml` and `NNNN.json` (envelope, headers, body).
pub struct SmtpSink {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    out: PathBuf,
    dir: TempDir,
}

impl SmtpSink {
    /// Starts one on `127.0.0.1:port` and waits until it listens.
    pub fn start_on(port: u16) -> SmtpSink {
        let dir = TempDir::new("smtp-sink");
        let out = dir.path().join("received");
        std::fs::create_dir_all(&out).expect("create the SMTP sink's directory");
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/modules/alerts/tests");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).expect("log file");
        let child = Command::new(smtp_python())
            .env("PYTHONPATH", scripts)
            .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
            .args(["-c", "smtp_server.Sink"])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(log("stdout"))
            .stderr(log("stderr"))
            .spawn()
            .expect("start aiosmtpd");
        let mut sink = SmtpSink {
            child,
            addr,
            out,
            dir,
        };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return sink;
            }
            let exited = sink.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > end {
                panic!(
                    "aiosmtpd does not listen on {addr} ({exited:?}): {}",
                    std::fs::read_to_string(sink.dir.path().join("stderr")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The messages accepted so far, in order, as the sink describes them
    /// (`mail_from`, `rcpt_tos`, `headers`, `body`, …).
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A syslog receiver on loopback TCP reading octet-counted messages
/// (RFC 6587 §3.4.1, `LEN SP MSG`), as the syslog channel sends them over
/// TCP. A connection that breaks the framing is closed.
pub struct SyslogReceiver {
    /// Where it listens.
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<String>>>,
}

/// Longest message the receiver takes.
const SYSLOG_MAX: usize = 64 * 1024;

impl SyslogReceiver {
    /// Listens on `addr`.
    pub fn start_on(addr: SocketAddr) -> SyslogReceiver {
        let listener = TcpListener::bind(addr).expect("bind the syslog receiver");
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || read_octet_counted(conn, &g));
            }
        });
        SyslogReceiver { addr, got }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

fn read_octet_counted(s: TcpStream, got: &Mutex<Vec<String>>) {
    let mut r = std::io::BufReader::new(s);
    loop {
        let mut len = 0usize;
        let mut digits = 0;
        loop {
            let mut b = [0u8; 1];
            if r.read_exact(&mut b).is_err() {
                return;
            }
            match b[0] {
                b'0'..=b'9' if digits < 6 => {
                    len = len * 10 + usize::from(b[0] - b'0');
                    digits += 1;
                }
                b' ' if digits > 0 => break,
                _ => return,
            }
        }
        if len > SYSLOG_MAX {
            return;
        }
        let mut msg = vec![0u8; len];
        if r.read_exact(&mut msg).is_err() {
            return;
        }
        got.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&msg).into_owned());
    }
}
