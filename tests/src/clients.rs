//! The real clients that type credentials at Extension-mode tripwires in
//! `tests/tests/deception.rs` and in the `deception-scan` benchmark, which
//! runs them against OpenCanary too: `tests/deception/clients.py` (ftplib,
//! smtplib, poplib, imaplib, Telnet, PyMySQL, python-tds, RFB + DES,
//! impacket's SMB), curl and redis-cli.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `tests/deception/clients.py`: `python clients.py HOST SERVICE=PORT ...`.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deception/clients.py");

/// A Python with the packages `clients.py` imports (as pinned in `.ci/run`):
/// `$HONEYBEE_PYTHON`, else a venv of the tests' own.
pub fn python(what: &str) -> Result<PathBuf, String> {
    crate::python::find(
        what,
        &[
            "PyMySQL==1.1.1",
            "python-tds==1.16.0",
            "pycryptodome==3.21.0",
            "impacket==0.13.1",
        ],
        "pymysql, pytds, Crypto, impacket",
        "deception-venv",
    )
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// curl with `args`, at most 10 s, the body thrown away: the HTTP status
/// it got (`000` when none).
pub fn curl_status(args: &[&str]) -> std::io::Result<String> {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `redis-cli -h HOST -p PORT --user USER --pass PASSWORD PING`: an `AUTH`
/// with both, then PING; what redis-cli printed.
pub fn redis_cli_auth(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
) -> std::io::Result<Output> {
    Command::new("redis-cli")
        .args(["-h", host, "-p", &port.to_string()])
        .args([
            "--user",
            user,
            "--pass",
            password,
            "--no-auth-warning",
            "PING",
        ])
        .output()
}
