//! Extension mode as the people who probe it see it: real clients type
//! credentials at the tripwires of a profile, and each attempt arrives at
//! the core as one `extension.login` event with the user and password
//! tried (or, for challenge-response protocols, what cracks it offline).
//!
//! The tripwires take the well-known ports (21, 25, 80, …) on 127.0.0.1,
//! where clients find them by default; the tests of this file take turns
//! ([`WELL_KNOWN`]) since an agent skips a port another one holds, and no
//! other test binary binds these ports.
//!
//! The clients: Python's ftplib, smtplib, poplib and imaplib, a Telnet
//! client on a socket, PyMySQL, python-tds and an RFB 3.8 client with
//! pycryptodome's DES (`tests/deception/clients.py`), curl for HTTP Basic
//! and a proxy, redis-cli. `.ci/run` installs them; elsewhere a missing one
//! skips the test ([`honeybee_tests::skip`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use honeybee_tests::skip::skip;
use honeybee_tests::{Agent, Core};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// Held by each test while its agent owns well-known ports.
static WELL_KNOWN: Mutex<()> = Mutex::new(());

fn python(test: &str) -> Option<PathBuf> {
    match honeybee_tests::python::find(
        "the deception tests",
        &[
            "PyMySQL==1.1.1",
            "python-tds==1.16.0",
            "pycryptodome==3.21.0",
        ],
        "pymysql, pytds, Crypto",
        "deception-venv",
    ) {
        Ok(p) => Some(p),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// An Extension agent of `profile` on `ports` of 127.0.0.1, running.
fn agent(core: &Core, profile: &str, ports: &str) -> honeybee_tests::Agent {
    let agent = Agent::extension(core.node_addr)
        .workspace(core.workspace())
        .heartbeat_interval(1)
        .args([
            "--ports",
            ports,
            "--udp-ports",
            "",
            "--bind",
            "127.0.0.1",
            "--profile",
            profile,
        ])
        .start();
    core.api().wait_status(agent.node_id(), "Running", T);
    assert!(
        agent.wait_stderr_contains("listening on TCP", T),
        "{}",
        agent.stderr()
    );
    assert!(
        !agent.stderr().contains("skipped TCP"),
        "{}",
        agent.stderr()
    );
    agent
}

/// The `extension.login` events, waiting until `n` arrived.
fn logins(core: &Core, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + T;
    loop {
        let events = core.api().all_events(&[("event_type", "extension.login")]);
        if events.len() >= n || Instant::now() > deadline {
            return events.into_iter().map(|e| e["data"].clone()).collect();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The login of `protocol` by `user`, failing with all logins seen.
#[track_caller]
fn login<'a>(all: &'a [Value], protocol: &str, user: &str) -> &'a Value {
    all.iter()
        .find(|l| l["protocol"] == protocol && l["username"] == user)
        .unwrap_or_else(|| panic!("no {protocol} login by {user:?} among {all:#?}"))
}

#[test]
fn real_clients_type_credentials_and_each_attempt_is_one_login_event() {
    const TEST: &str = "real_clients_type_credentials_and_each_attempt_is_one_login_event";
    let Some(python) = python(TEST) else {
        return;
    };
    for tool in ["curl", "redis-cli"] {
        if !have(tool) {
            skip(
                TEST,
                &format!("{tool} is not installed (apt-get install curl redis-tools)"),
            );
            return;
        }
    }
    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let _linux = agent(
        &core,
        "linux-server",
        "21,23,25,80,110,143,3128,3306,5900,6379",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deception/clients.py");
    let out = Command::new(&python)
        .args([
            script,
            "127.0.0.1",
            "ftp=21",
            "smtp=25",
            "pop3=110",
            "imap=143",
            "telnet=23",
            "mysql=3306",
            "vnc=5900",
        ])
        .output()
        .expect("clients.py");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let curl = |args: &[&str]| {
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
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        curl(&["-u", "webuser:http-Secret9", "http://127.0.0.1:80/"]),
        "401"
    );
    assert_eq!(
        curl(&[
            "-x",
            "http://127.0.0.1:3128",
            "-U",
            "proxyuser:proxy-Secret10",
            "http://intranet.invalid/"
        ]),
        "407"
    );
    let redis = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "--user",
            "redisuser",
            "--pass",
            "redis-Secret11",
            "--no-auth-warning",
            "PING",
        ])
        .output()
        .expect("redis-cli");
    let redis_said = String::from_utf8_lossy(&redis.stdout).into_owned()
        + &String::from_utf8_lossy(&redis.stderr);
    assert!(
        redis_said.contains("WRONGPASS") || redis_said.contains("NOAUTH"),
        "{redis_said}"
    );

    // smtplib tries each mechanism offered (PLAIN, then LOGIN), as other
    // clients do: two attempts, two events.
    let all = logins(&core, 11);
    let expected = [
        ("ftp", "ftpuser", "ftp-Secret1"),
        ("smtp", "mailuser", "smtp-Secret2"),
        ("pop3", "popuser", "pop-Secret3"),
        ("imap", "imapuser", "imap Secret4"),
        ("telnet", "telnetuser", "telnet-Secret5"),
        ("http", "webuser", "http-Secret9"),
        ("http-proxy", "proxyuser", "proxy-Secret10"),
        ("redis", "redisuser", "redis-Secret11"),
    ];
    for (protocol, user, password) in expected {
        let l = login(&all, protocol, user);
        assert_eq!(l["password"], password, "{l}");
        assert_eq!(l["src_ip"], "127.0.0.1");
        assert!(l["dst_port"].is_u64());
    }
    // MySQL sends a scramble of the password with our salt; VNC a DES
    // response to our challenge: both recorded with the challenge, so the
    // password can be checked offline.
    let m = login(&all, "mysql", "dbuser");
    assert_eq!(m["password_hash"].as_str().map(str::len), Some(40), "{m}");
    assert_eq!(m["challenge"].as_str().map(str::len), Some(40), "{m}");
    assert_eq!(m["database"], "shop");
    let v = login(&all, "vnc", "");
    let vnc_line = said
        .lines()
        .find(|l| l.starts_with("vnc "))
        .unwrap_or_default();
    let (challenge, response) = vnc_line
        .rsplit(':')
        .take(2)
        .collect::<Vec<_>>()
        .split_first()
        .map(|(r, c)| (c.first().copied().unwrap_or_default(), *r))
        .unwrap_or_default();
    assert_eq!(v["challenge"], challenge, "{v} / {vnc_line}");
    assert_eq!(v["response"], response, "{v} / {vnc_line}");
    // One event per attempt, nothing twice.
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for l in &all {
        *per.entry(format!("{}/{}", l["protocol"], l["username"]))
            .or_default() += 1;
    }
    assert_eq!(per.remove("\"smtp\"/\"mailuser\""), Some(2), "{all:#?}");
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    assert_eq!(all.len(), 11, "{all:#?}");
}

#[test]
fn sql_server_logins_on_the_windows_profile_are_recorded() {
    const TEST: &str = "sql_server_logins_on_the_windows_profile_are_recorded";
    let Some(python) = python(TEST) else {
        return;
    };
    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let _windows = agent(&core, "windows-workstation", "1433");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deception/clients.py");
    let out = Command::new(&python)
        .args([script, "127.0.0.1", "mssql=1433"])
        .output()
        .expect("clients.py");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let all = logins(&core, 1);
    let l = login(&all, "mssql", "sa");
    assert_eq!(l["password"], "mssql-Secret7");
}
