//! `deception-scan`: how `honeybee-agent extension` looks to a scanner and
//! to the clients people type passwords into, beside OpenCanary (PyPI
//! `opencanary`, the peer of issue 6), in one run on the well-known ports
//! of 127.0.0.1:
//!
//! 1. for each profile (linux-server, windows-workstation, router, nas,
//!    printer), an agent with `--profile P --ports <the profile's ports>`
//!    reporting to a real core; the real clients (below) log in at
//!    linux-server's and windows-workstation's ports; then
//!    `nmap -sV --allports -Pn -n -p PORTS -oX - 127.0.0.1`;
//! 2. OpenCanary with the ten TCP modules of issue 6's baseline on their
//!    usual ports (ftp 21, ssh 22, telnet 23, http 80, mssql 1433, mysql
//!    3306, rdp 3389, vnc 5900, redis 6379, httpproxy 8080), the same
//!    clients where it has the service, then the same nmap;
//! 3. tables: ports nmap named / ports open per profile, each port's
//!    product (agent beside OpenCanary), and credentials captured per
//!    protocol: the agent's `extension.login` events from the core's REST
//!    API, OpenCanary's login entries (by `logtype`) from its JSON log.
//!
//! A port counts as named when it is open and nmap gives a product that
//! is not `tcpwrapped`. The clients log in before nmap runs: nmap's few
//! hundred probes make 127.0.0.1 a flooding source, whose logins the agent
//! answers but does not report. They are those of `tests/tests/deception.rs`
//! (`honeybee_tests::clients`): `tests/deception/clients.py` (ftplib,
//! smtplib, poplib, imaplib, Telnet, PyMySQL, python-tds, RFB + DES,
//! impacket's SMB; a Python with them: `$HONEYBEE_PYTHON`, as `.ci/run`
//! installs it into `.ci/venv`), `curl -u` and through a proxy with `-U`,
//! `redis-cli --user --pass`.
//!
//!     cargo build -p honeybee-core -p honeybee-agent -p honeybee-bench
//!     HONEYBEE_PYTHON=.ci/venv/bin/python target/debug/deception-scan [--no-opencanary]
//!
//! A debug build identifies as a release one does (the answers are the
//! same bytes). Needs root (ports below 1024; the agent then drops to an
//! unprivileged user), nmap, curl and redis-cli, and the ports free: while
//! something else listens on one of them (a test run), it waits. Traffic
//! goes to 127.0.0.1 only. The agent and the core are found as in
//! `extension-load`; OpenCanary's venv too (`honeybee_bench::extension`).
//! Prints figures, asserts nothing.

use honeybee_bench::core_process::CoreProcess;
use honeybee_bench::daemon::{proc_net_tcp, Daemon};
use honeybee_bench::extension::{
    opencanary_setup, start_agent, AgentSpec, OpenCanary, OPENCANARY_MODULES,
};
use honeybee_bench::sibling_binary;
use honeybee_extension::profile::PROFILES;
use honeybee_tests::{clients, nmap};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const REGISTERED: &str = "honeybee_registrations_accepted_total";
/// How long to wait for ports another process holds.
const PORTS_WAIT: Duration = Duration::from_secs(20 * 60);

/// How a client types its credentials.
#[derive(Clone, Copy)]
enum How {
    /// `clients.py HOST SERVICE=PORT`.
    Script(&'static str),
    /// `curl -u webuser:http-Secret9 http://127.0.0.1:PORT/`.
    CurlBasic,
    /// `curl -x http://127.0.0.1:PORT -U proxyuser:proxy-Secret10 http://intranet.invalid/`.
    CurlProxy,
    /// `redis-cli -p PORT --user redisuser --pass redis-Secret11 PING`.
    RedisCli,
    /// The OpenSSH client as `sshuser`, password `ssh-Secret14`.
    Ssh,
}

/// One client, run against one profile's agent and against OpenCanary.
struct Client {
    /// The `protocol` of the agent's `extension.login` events.
    protocol: &'static str,
    how: How,
    /// The user name it types (VNC has none).
    user: &'static str,
    /// Login attempts it makes (smtplib tries PLAIN, then LOGIN).
    attempts: usize,
    /// The profile whose agent it logs in at, and the port.
    profile: &'static str,
    agent_port: u16,
    /// OpenCanary's module for it: port and the `logtype`s of its login
    /// entries; `None`: OpenCanary has no such service.
    opencanary: Option<(u16, &'static [u64])>,
}

const fn client(
    protocol: &'static str,
    how: How,
    user: &'static str,
    profile: &'static str,
    agent_port: u16,
    opencanary: Option<(u16, &'static [u64])>,
) -> Client {
    Client {
        protocol,
        how,
        user,
        attempts: 1,
        profile,
        agent_port,
        opencanary,
    }
}

const LINUX: &str = "linux-server";
const WINDOWS: &str = "windows-workstation";
/// OpenCanary's `LOG_REDIS_COMMAND`: a login only when the command is AUTH.
const REDIS_COMMAND: u64 = 17001;

/// The clients of `tests/tests/deception.rs`, with OpenCanary's logtypes
/// (`opencanary/logger.py`): FTP_LOGIN_ATTEMPT 2000, HTTP_POST_LOGIN_ATTEMPT
/// 3001 (its login form; a GET with Basic credentials is an HTTP_GET 3000),
/// TELNET_LOGIN_ATTEMPT 6001, HTTPPROXY_LOGIN_ATTEMPT 7001,
/// MYSQL_LOGIN_ATTEMPT 8001, MSSQL_LOGIN_SQLAUTH / WINAUTH 9001 / 9002,
/// VNC 12001, REDIS_COMMAND 17001 with `AUTH`, SSH_LOGIN_ATTEMPT 4002.
const CLIENTS: [Client; 13] = [
    client("ssh", How::Ssh, "sshuser", LINUX, 22, Some((22, &[4002]))),
    client(
        "ftp",
        How::Script("ftp"),
        "ftpuser",
        LINUX,
        21,
        Some((21, &[2000])),
    ),
    Client {
        attempts: 2,
        ..client("smtp", How::Script("smtp"), "mailuser", LINUX, 25, None)
    },
    client("pop3", How::Script("pop3"), "popuser", LINUX, 110, None),
    client("imap", How::Script("imap"), "imapuser", LINUX, 143, None),
    client(
        "telnet",
        How::Script("telnet"),
        "telnetuser",
        LINUX,
        23,
        Some((23, &[6001])),
    ),
    client(
        "mysql",
        How::Script("mysql"),
        "dbuser",
        LINUX,
        3306,
        Some((3306, &[8001])),
    ),
    client(
        "vnc",
        How::Script("vnc"),
        "",
        LINUX,
        5900,
        Some((5900, &[12001])),
    ),
    client(
        "http",
        How::CurlBasic,
        "webuser",
        LINUX,
        80,
        Some((80, &[3001])),
    ),
    client(
        "http-proxy",
        How::CurlProxy,
        "proxyuser",
        LINUX,
        3128,
        Some((8080, &[7001])),
    ),
    client(
        "redis",
        How::RedisCli,
        "redisuser",
        LINUX,
        6379,
        Some((6379, &[REDIS_COMMAND])),
    ),
    client(
        "mssql",
        How::Script("mssql"),
        "sa",
        WINDOWS,
        1433,
        Some((1433, &[9001, 9002])),
    ),
    // OpenCanary's smb module reads the audit log of a real Samba: it has
    // no listener of its own.
    client("smb", How::Script("smb"), "smbuser", WINDOWS, 445, None),
];

/// What one target (a profile's agent, or OpenCanary) showed.
#[derive(Default)]
struct Scan {
    ports: Vec<u16>,
    /// nmap's view of each port; empty when nmap failed.
    seen: Vec<nmap::Port>,
    secs: f64,
    error: Option<String>,
}

impl Scan {
    fn port(&self, port: u16) -> Option<&nmap::Port> {
        self.seen.iter().find(|p| p.port == port)
    }

    fn open(&self) -> usize {
        self.seen.iter().filter(|p| p.state == "open").count()
    }

    fn named(&self) -> usize {
        self.seen.iter().filter(|p| named(p)).count()
    }
}

fn named(p: &nmap::Port) -> bool {
    p.state == "open" && !p.product.is_empty() && p.name != "tcpwrapped"
}

/// One cell of the per-port table.
fn cell(p: Option<&nmap::Port>) -> String {
    match p {
        None => String::new(),
        Some(p) if p.state != "open" => p.state.clone(),
        Some(p) if named(p) => [p.product.as_str(), p.version.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        Some(p) if p.name.is_empty() => "✗ (no service)".into(),
        Some(p) => format!("✗ {}", p.name),
    }
}

fn scan(ports: &[u16]) -> Scan {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let started = Instant::now();
    let mut s = Scan {
        ports: ports.to_vec(),
        ..Scan::default()
    };
    match nmap::version_scan(&list.join(",")) {
        Ok(out) if out.status.success() => {
            s.seen = nmap::ports(&String::from_utf8_lossy(&out.stdout));
        }
        Ok(out) => {
            s.error = Some(format!(
                "nmap: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(e) => s.error = Some(format!("nmap: {e}")),
    }
    s.secs = started.elapsed().as_secs_f64();
    s
}

/// Returns once none of `ports` is in LISTEN on any address (a test run
/// may hold them for a while), or an error after [`PORTS_WAIT`].
fn wait_ports_free(ports: &[u16]) -> Result<(), String> {
    let start = Instant::now();
    let mut said = None::<Instant>;
    loop {
        let listening = proc_net_tcp().listening_anywhere;
        let held: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| listening.contains(p))
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        if start.elapsed() > PORTS_WAIT {
            return Err(format!(
                "ports {held:?} still in use after {} min",
                PORTS_WAIT.as_secs() / 60
            ));
        }
        if said.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            println!("ports {held:?} are in use by another process; waiting");
            said = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Runs each client against its port on 127.0.0.1: one `clients.py` run
/// for the script's clients, then curl and redis-cli. What each said, one line per
/// client.
fn run_clients(python: &Path, run: &[(&Client, u16)]) -> Vec<String> {
    let mut said = Vec::new();
    let specs: Vec<String> = run
        .iter()
        .filter_map(|(c, port)| match c.how {
            How::Script(s) => Some(format!("{s}={port}")),
            _ => None,
        })
        .collect();
    if !specs.is_empty() {
        match Command::new(python)
            .arg(clients::SCRIPT)
            .arg("127.0.0.1")
            .args(&specs)
            .output()
        {
            Ok(out) => {
                said.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(String::from),
                );
                let err = String::from_utf8_lossy(&out.stderr);
                if !err.trim().is_empty() {
                    said.push(format!("clients.py stderr: {}", err.trim()));
                }
            }
            Err(e) => said.push(format!("clients.py: {e}")),
        }
    }
    for (c, port) in run {
        let r = match c.how {
            How::Script(_) => continue,
            How::CurlBasic => clients::curl_status(&[
                "-u",
                "webuser:http-Secret9",
                &format!("http://127.0.0.1:{port}/"),
            ])
            .map(|s| format!("HTTP {s}")),
            How::CurlProxy => clients::curl_status(&[
                "-x",
                &format!("http://127.0.0.1:{port}"),
                "-U",
                "proxyuser:proxy-Secret10",
                "http://intranet.invalid/",
            ])
            .map(|s| format!("HTTP {s}")),
            How::RedisCli => {
                clients::redis_cli_auth("127.0.0.1", *port, "redisuser", "redis-Secret11").map(
                    |o| {
                        (String::from_utf8_lossy(&o.stdout).into_owned()
                            + &String::from_utf8_lossy(&o.stderr))
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                            .join(" / ")
                    },
                )
            }
            How::Ssh => clients::ssh_passwords(
                "127.0.0.1",
                *port,
                "sshuser",
                &["ssh-Secret14"],
                None,
                &std::env::temp_dir(),
            )
            .map(|o| {
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .filter(|l| !l.starts_with("Warning: Permanently added"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            }),
        };
        said.push(match r {
            Ok(s) => format!("{} {}: {s}", c.protocol, c.user),
            Err(e) => format!("FAIL {} {e}", c.protocol),
        });
    }
    said
}

/// Polls `count` until it reaches `want` or stands still for 3 s (at
/// most 30 s): events cross the uplink, OpenCanary writes its log lines.
fn settled(want: usize, count: &mut dyn FnMut() -> Result<usize, String>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut last, mut since) = (count()?, Instant::now());
    while last < want && since.elapsed() < Duration::from_secs(3) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let n = count()?;
        if n != last {
            (last, since) = (n, Instant::now());
        }
    }
    Ok(())
}

/// The core's `extension.login` events (their `data`): one page of up to
/// 1,000, newest first, more than this run makes (a dozen logins, and the
/// few nmap's probes carry).
fn logins(core: &CoreProcess) -> Result<Vec<Value>, String> {
    let page = core.get_json("/api/v1/events?event_type=extension.login&limit=1000")?;
    Ok(page["events"]
        .as_array()
        .map(|e| e.iter().map(|e| e["data"].clone()).collect())
        .unwrap_or_default())
}

/// The agent's events for `c`: its protocol and user.
fn agent_logins<'a>(all: &'a [Value], c: &Client) -> Vec<&'a Value> {
    all.iter()
        .filter(|l| l["protocol"] == c.protocol && l["username"] == c.user)
        .collect()
}

/// OpenCanary's log, one JSON object a line.
fn opencanary_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// OpenCanary's login entries for `c`: one of its logtypes, on its port
/// (redis: the AUTH commands).
fn opencanary_logins<'a>(log: &'a [Value], c: &Client) -> Vec<&'a Value> {
    let Some((port, types)) = c.opencanary else {
        return Vec::new();
    };
    log.iter()
        .filter(|e| {
            e["dst_port"] == port
                && e["logtype"].as_u64().is_some_and(|t| types.contains(&t))
                && (e["logtype"] != REDIS_COMMAND
                    || e["logdata"]["CMD"]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case("auth")))
        })
        .collect()
}

/// The fields a login record holds beyond addresses and ports.
fn fields(records: &[&Value], of: &dyn Fn(&Value) -> Option<Vec<String>>) -> String {
    let mut keys = BTreeSet::new();
    for r in records {
        keys.extend(of(r).unwrap_or_default());
    }
    keys.into_iter().collect::<Vec<_>>().join(", ")
}

/// Per client: (events, their fields) on the agent, and on OpenCanary.
#[derive(Default)]
struct Captured {
    agent: BTreeMap<&'static str, (usize, String)>,
    opencanary: BTreeMap<&'static str, (usize, String)>,
    said: Vec<String>,
}

struct Agents {
    scans: Vec<(&'static str, Scan)>,
    errors: Vec<String>,
}

/// One profile: agent up, clients (linux-server, windows-workstation),
/// nmap, agent stopped.
fn run_profile(
    agent_bin: &Path,
    core: &CoreProcess,
    profile: &'static str,
    ports: &[u16],
    python: Option<&Path>,
    captured: &mut Captured,
) -> Result<Scan, String> {
    wait_ports_free(ports)?;
    let registered = core.metric_value(REGISTERED).unwrap_or(0);
    let name = format!("deception-scan-{profile}");
    let mut agent: Daemon = start_agent(
        agent_bin,
        core,
        &AgentSpec {
            name: &name,
            ports,
            profile: Some(profile),
        },
    )?;
    agent.wait_listening(ports, Duration::from_secs(30))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while core.metric_value(REGISTERED).unwrap_or(0) <= registered && Instant::now() < deadline {
        agent.alive()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let mine: Vec<(&Client, u16)> = CLIENTS
        .iter()
        .filter(|c| c.profile == profile)
        .map(|c| (c, c.agent_port))
        .collect();
    if let (Some(python), false) = (python, mine.is_empty()) {
        for line in run_clients(python, &mine) {
            captured.said.push(format!("{profile}: {line}"));
        }
        let want: usize = mine.iter().map(|(c, _)| c.attempts).sum();
        settled(want, &mut || {
            let all = logins(core)?;
            Ok(mine.iter().map(|(c, _)| agent_logins(&all, c).len()).sum())
        })?;
        let all = logins(core)?;
        for (c, _) in &mine {
            let got = agent_logins(&all, c);
            let keys = fields(&got, &|v| {
                v.as_object().map(|o| {
                    o.keys()
                        .filter(|k| !matches!(k.as_str(), "src_ip" | "src_port" | "dst_port"))
                        .cloned()
                        .collect()
                })
            });
            captured.agent.insert(c.protocol, (got.len(), keys));
        }
    }
    let s = scan(ports);
    agent.alive()?;
    Ok(s)
}

fn run_agents(agent_bin: &Path, python: Option<&Path>, captured: &mut Captured) -> Agents {
    let mut out = Agents {
        scans: Vec::new(),
        errors: Vec::new(),
    };
    let core = match CoreProcess::start(false) {
        Ok(c) => c,
        Err(e) => {
            out.errors.push(format!("core: {e}"));
            return out;
        }
    };
    for profile in PROFILES {
        let name = profile.as_str();
        println!("{name}: agent on {:?}, scanning…", profile.ports());
        match run_profile(agent_bin, &core, name, profile.ports(), python, captured) {
            Ok(s) => {
                println!(
                    "{name}: {} of {} open ports named ({:.0} s)",
                    s.named(),
                    s.open(),
                    s.secs
                );
                out.scans.push((name, s));
            }
            Err(e) => {
                println!("{name}: {e}");
                out.errors.push(format!("{name}: {e}"));
            }
        }
    }
    out
}

/// OpenCanary on the usual ports: clients, then nmap.
fn run_opencanary(
    oc: &OpenCanary,
    python: Option<&Path>,
    captured: &mut Captured,
) -> Result<Scan, String> {
    let ports: Vec<u16> = OPENCANARY_MODULES.iter().map(|(_, p)| *p).collect();
    wait_ports_free(&ports)?;
    let mut d = oc.start("deception-scan", &OPENCANARY_MODULES)?;
    if let Err(e) = d.wait_listening(&ports, Duration::from_secs(60)) {
        // Scanned all the same: the modules that did start are compared.
        println!("OpenCanary: {e}");
    }
    let log = OpenCanary::log_of(&d);
    let mine: Vec<(&Client, u16)> = CLIENTS
        .iter()
        .filter_map(|c| c.opencanary.map(|(port, _)| (c, port)))
        .collect();
    if let Some(python) = python {
        for line in run_clients(python, &mine) {
            captured.said.push(format!("OpenCanary: {line}"));
        }
        let want: usize = mine.iter().map(|(c, _)| c.attempts).sum();
        settled(want, &mut || {
            let entries = opencanary_log(&log);
            Ok(mine
                .iter()
                .map(|(c, _)| opencanary_logins(&entries, c).len())
                .sum())
        })?;
        let entries = opencanary_log(&log);
        for (c, _) in &mine {
            let got = opencanary_logins(&entries, c);
            let keys = fields(&got, &|v| {
                v["logdata"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
            });
            captured.opencanary.insert(c.protocol, (got.len(), keys));
        }
    }
    let s = scan(&ports);
    d.alive()?;
    Ok(s)
}

fn print_tables(agents: &Agents, oc: &Result<Scan, String>, oc_label: &str, captured: &Captured) {
    println!();
    println!("| target | ports | open | named by nmap -sV | nmap time |");
    println!("|---|---|---|---|---|");
    let row = |label: &str, s: &Scan| {
        println!(
            "| {label} | {} | {} | {} / {} | {:.0} s |",
            s.ports.len(),
            s.open(),
            s.named(),
            s.open(),
            s.secs
        );
    };
    for (profile, s) in &agents.scans {
        row(&format!("agent `{profile}`"), s);
    }
    if let Ok(s) = oc {
        row(oc_label, s);
    }
    let mut all_ports = BTreeSet::new();
    for (_, s) in &agents.scans {
        all_ports.extend(s.ports.iter().copied());
    }
    if let Ok(s) = oc {
        all_ports.extend(s.ports.iter().copied());
    }
    println!();
    let names: Vec<&str> = agents.scans.iter().map(|(p, _)| *p).collect();
    println!("| port | {} | {oc_label} |", names.join(" | "));
    println!("|---|{}---|", "---|".repeat(names.len()));
    for port in all_ports {
        let mut cells: Vec<String> = agents
            .scans
            .iter()
            .map(|(_, s)| cell(s.port(port)))
            .collect();
        cells.push(oc.as_ref().map(|s| cell(s.port(port))).unwrap_or_default());
        println!("| {port} | {} |", cells.join(" | "));
    }
    println!();
    println!(
        "| protocol | client | attempts | agent: profile:port → `extension.login` events (fields) | {oc_label}: port → login entries (logdata) |"
    );
    println!("|---|---|---|---|---|");
    for c in &CLIENTS {
        let tool = match c.how {
            How::Script(s) => format!("clients.py {s}"),
            How::CurlBasic => "curl -u".into(),
            How::CurlProxy => "curl -x -U".into(),
            How::RedisCli => "redis-cli --user --pass".into(),
            How::Ssh => "ssh (OpenSSH, password)".into(),
        };
        let got = |m: &BTreeMap<&str, (usize, String)>| match m.get(c.protocol) {
            Some((n, keys)) if keys.is_empty() => n.to_string(),
            Some((n, keys)) => format!("{n} ({keys})"),
            None => "not run".into(),
        };
        let oc_cell = match c.opencanary {
            None => "no such service".to_string(),
            Some((port, _)) => format!("{port} → {}", got(&captured.opencanary)),
        };
        println!(
            "| {} | {tool} | {} | {}:{} → {} | {oc_cell} |",
            c.protocol,
            c.attempts,
            c.profile,
            c.agent_port,
            got(&captured.agent)
        );
    }
    if !captured.said.is_empty() {
        println!();
        println!("What the clients said (a refused login is the expected end):");
        for l in &captured.said {
            println!("  {l}");
        }
    }
    for e in &agents.errors {
        println!("\nagent not measured: {e}");
    }
    if let Err(e) = oc {
        println!("\nOpenCanary not measured: {e}");
    }
    for (profile, s) in &agents.scans {
        if let Some(e) = &s.error {
            println!("\n{profile}: {e}");
        }
    }
    if let Ok(Scan { error: Some(e), .. }) = oc {
        println!("\nOpenCanary: {e}");
    }
}

fn main() {
    let mut with_opencanary = true;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--no-opencanary" => with_opencanary = false,
            "--help" | "-h" => {
                println!("deception-scan [--no-opencanary]");
                return;
            }
            other => {
                eprintln!("deception-scan: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    for tool in ["nmap", "curl", "redis-cli"] {
        if !clients::have(tool) {
            eprintln!(
                "deception-scan: {tool} is not installed (apt-get install nmap curl redis-tools)"
            );
            std::process::exit(1);
        }
    }
    let agent_bin = match sibling_binary("HONEYBEE_AGENT_BIN", "honeybee-agent") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("deception-scan: {e}");
            std::process::exit(1);
        }
    };
    let python = match clients::python("deception-scan") {
        Ok(p) => Some(p),
        Err(e) => {
            println!("no credentials measured: {e}");
            None
        }
    };
    let mut captured = Captured::default();
    let agents = run_agents(&agent_bin, python.as_deref(), &mut captured);
    let (oc, oc_label) = if with_opencanary {
        match opencanary_setup() {
            Ok(setup) => {
                println!(
                    "OpenCanary {}: modules {:?}, scanning…",
                    setup.version, OPENCANARY_MODULES
                );
                let r = run_opencanary(&setup, python.as_deref(), &mut captured);
                if let Ok(s) = &r {
                    println!(
                        "OpenCanary: {} of {} open ports named ({:.0} s)",
                        s.named(),
                        s.open(),
                        s.secs
                    );
                }
                (r, format!("OpenCanary {}", setup.version))
            }
            Err(e) => (Err(e), "OpenCanary".to_string()),
        }
    } else {
        (Err("--no-opencanary".to_string()), "OpenCanary".to_string())
    };
    print_tables(&agents, &oc, &oc_label, &captured);
}
