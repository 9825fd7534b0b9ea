//! The two sides `extension-load` and `deception-scan` compare on the same
//! ports of this machine: `honeybee-agent extension` reporting to a real
//! core, and OpenCanary (PyPI `opencanary`, the peer of issue 6) from a
//! venv of its own.
//!
//! OpenCanary runs from a venv made with Debian's `/usr/bin/python3` at
//! `<target dir>/bench-venv` (or `$HONEYBEE_OPENCANARY_VENV`); it is created
//! with `python3 -m venv` and `pip install opencanary` when missing. It runs
//! as `opencanaryd --dev` would run it (`twistd -noy opencanary.tac`, here
//! with the pid file in its temp dir instead of /var/run), from a temp dir
//! that holds its `opencanary.conf`: the TCP modules asked for on
//! 127.0.0.1, JSON log to `opencanary.log` in that dir.

use crate::core_process::CoreProcess;
use crate::daemon::{temp_dir, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The OpenCanary modules of issue 6's baseline, which need nothing beyond
/// `pip install opencanary`, with their usual port.
pub const OPENCANARY_MODULES: [(&str, u16); 10] = [
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("http", 80),
    ("mssql", 1433),
    ("mysql", 3306),
    ("rdp", 3389),
    ("vnc", 5900),
    ("redis", 6379),
    ("httpproxy", 8080),
];

/// How to start one `honeybee-agent extension`.
pub struct AgentSpec<'a> {
    /// `--name`; also its own `--state-dir` in its temp dir, so agents
    /// started one after the other register at once (a node registers once
    /// per 30 s TOTP step).
    pub name: &'a str,
    pub ports: &'a [u16],
    /// `--profile`, else the agent's default.
    pub profile: Option<&'a str>,
}

/// `honeybee-agent extension` on `spec.ports` of 127.0.0.1 (no UDP),
/// reporting to `core`; its log is the daemon's log.
pub fn start_agent(bin: &Path, core: &CoreProcess, spec: &AgentSpec) -> Result<Daemon, String> {
    let dir = temp_dir(&format!("agent-{}", spec.name))?;
    let log = dir.join("agent.log");
    let list: Vec<String> = spec.ports.iter().map(|p| p.to_string()).collect();
    let mut cmd = Command::new(bin);
    cmd.arg("extension")
        .arg("--core")
        .arg(core.node_addr.to_string())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--name")
        .arg(spec.name)
        .arg("--ports")
        .arg(list.join(","))
        .arg("--udp-ports")
        .arg("")
        .arg("--bind")
        .arg("127.0.0.1")
        .current_dir(&dir);
    let mut label = "honeybee-agent extension".to_string();
    if let Some(p) = spec.profile {
        cmd.arg("--profile").arg(p);
        label = format!("{label} --profile {p}");
    }
    Daemon::spawn(label, cmd, dir, log)
}

pub struct OpenCanary {
    twistd: PathBuf,
    tac: PathBuf,
    /// The installed version (from its `.dist-info`).
    pub version: String,
}

fn venv_dir() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("HONEYBEE_OPENCANARY_VENV") {
        return Ok(PathBuf::from(p));
    }
    // target/release/extension-load -> target/bench-venv
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.parent()
        .and_then(Path::parent)
        .map(|t| t.join("bench-venv"))
        .ok_or_else(|| "no target dir above this binary".into())
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    Err(format!(
        "{what} failed ({}):\n{}",
        out.status,
        lines[lines.len().saturating_sub(10)..].join("\n")
    ))
}

/// The venv with OpenCanary, made when missing.
pub fn opencanary_setup() -> Result<OpenCanary, String> {
    let venv = venv_dir()?;
    let twistd = venv.join("bin").join("twistd");
    let tac = venv.join("bin").join("opencanary.tac");
    if !twistd.exists() || !tac.exists() {
        let python = Path::new("/usr/bin/python3");
        if !python.exists() {
            return Err(
                "/usr/bin/python3 is missing (apt-get install python3 python3-venv)".into(),
            );
        }
        eprintln!(
            "installing OpenCanary into {} (python3 -m venv, pip install opencanary)",
            venv.display()
        );
        run_quiet(
            Command::new(python).arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
        run_quiet(
            Command::new(venv.join("bin").join("pip"))
                .arg("install")
                .arg("--quiet")
                .arg("opencanary"),
            "pip install opencanary",
        )?;
        if !twistd.exists() || !tac.exists() {
            return Err(format!(
                "pip install opencanary left no bin/twistd and bin/opencanary.tac in {}",
                venv.display()
            ));
        }
    }
    // OpenCanary reads /etc/opencanaryd/opencanary.conf before ./opencanary.conf.
    if Path::new("/etc/opencanaryd/opencanary.conf").exists() {
        return Err("/etc/opencanaryd/opencanary.conf exists and would be read instead of the bench's config".into());
    }
    let mut version = String::from("?");
    for lib in std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for e in std::fs::read_dir(lib.path().join("site-packages"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().to_string();
            if let Some(v) = n
                .strip_prefix("opencanary-")
                .and_then(|v| v.strip_suffix(".dist-info"))
            {
                version = v.to_string();
            }
        }
    }
    Ok(OpenCanary {
        twistd,
        tac,
        version,
    })
}

impl OpenCanary {
    /// OpenCanary with each `(module, port)` enabled on 127.0.0.1; its JSON
    /// log is [`OpenCanary::log_of`] the daemon.
    pub fn start(&self, node_id: &str, modules: &[(&str, u16)]) -> Result<Daemon, String> {
        let dir = temp_dir("opencanary")?;
        let log = dir.join("twistd.out");
        let mut conf = serde_json::json!({
            "device.node_id": node_id,
            "device.listen_addr": "127.0.0.1",
            "ip.ignorelist": [],
            "logtype.ignorelist": [],
            "ftp.banner": "FTP server ready",
            "http.banner": "Apache/2.2.22 (Ubuntu)",
            "http.skin": "nasLogin",
            "httpproxy.skin": "squid",
            "ssh.version": "SSH-2.0-OpenSSH_5.1p1 Debian-4",
            "ssh.key_path": dir.display().to_string(),
            "telnet.banner": "",
            "telnet.honeycreds": [{"username": "admin", "password": "admin1"}],
            "mysql.banner": "5.5.43-0ubuntu0.14.04.1",
            "mssql.version": "2012",
            "logger": {
                "class": "PyLogger",
                "kwargs": {
                    "formatters": {"plain": {"format": "%(message)s"}},
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "filename": dir.join("opencanary.log").display().to_string()
                        }
                    }
                }
            }
        });
        let map = conf.as_object_mut().expect("an object");
        for (module, port) in modules {
            map.insert(format!("{module}.enabled"), true.into());
            map.insert(format!("{module}.port"), (*port).into());
        }
        std::fs::write(
            dir.join("opencanary.conf"),
            serde_json::to_string_pretty(&conf).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.twistd);
        cmd.arg("-noy")
            .arg(&self.tac)
            .arg("--pidfile")
            .arg(dir.join("twistd.pid"))
            .current_dir(&dir)
            // No ~/.opencanary.conf either: only ./opencanary.conf.
            .env("HOME", &dir);
        Daemon::spawn("OpenCanary", cmd, dir, log)
    }

    /// The JSON log (one object a line) of an OpenCanary [`OpenCanary::start`]ed.
    pub fn log_of(d: &Daemon) -> PathBuf {
        d.dir.join("opencanary.log")
    }
}
