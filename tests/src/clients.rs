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

/// The OpenSSH client logging in as `user` at `host:port` with password
/// authentication only, typing `passwords` one a prompt (through an
/// `SSH_ASKPASS` script in `dir`, so one connection tries them all), with
/// cipher `cipher` when given; at most 20 s. The host key is not checked
/// or kept. Returns what ssh printed; it never logs in.
pub fn ssh_passwords(
    host: &str,
    port: u16,
    user: &str,
    passwords: &[&str],
    cipher: Option<&str>,
    dir: &std::path::Path,
) -> std::io::Result<Output> {
    use std::os::unix::fs::PermissionsExt;
    let list = dir.join("ssh-passwords");
    let script = dir.join("ssh-askpass");
    std::fs::write(&list, passwords.join("\n") + "\n")?;
    // Each prompt takes the first line and leaves the rest for the next.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nf='{}'\nhead -n 1 \"$f\"\ntail -n +2 \"$f\" > \"$f.rest\" && mv \"$f.rest\" \"$f\"\n",
            list.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))?;
    let prompts = format!("NumberOfPasswordPrompts={}", passwords.len().max(1));
    let mut cmd = Command::new("timeout");
    cmd.args([
        "20",
        "ssh",
        "-F",
        "/dev/null",
        "-T",
        "-p",
        &port.to_string(),
    ])
    .args(["-o", "StrictHostKeyChecking=no"])
    .args(["-o", "UserKnownHostsFile=/dev/null"])
    .args(["-o", "PubkeyAuthentication=no"])
    .args(["-o", "PreferredAuthentications=password"])
    .args(["-o", &prompts]);
    if let Some(c) = cipher {
        cmd.args(["-c", c]);
    }
    cmd.arg(format!("{user}@{host}"))
        .arg("true")
        .env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null())
        .output()
}
