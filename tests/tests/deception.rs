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
//! client on a socket, PyMySQL, python-tds, impacket's SMB client and an
//! RFB 3.8 client with pycryptodome's DES (`tests/deception/clients.py`),
//! curl for HTTP Basic and a proxy, redis-cli, the OpenSSH client; and nmap, whose `-sV` must
//! name every port of every profile as the profile's product. `.ci/run` installs them; elsewhere a missing one
//! skips the test ([`honeybee_tests::skip`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use honeybee_tests::clients::{self, have};
use honeybee_tests::skip::skip;
use honeybee_tests::{Agent, Core};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// Held by each test while its agent owns well-known ports.
static WELL_KNOWN: Mutex<()> = Mutex::new(());

fn python(test: &str) -> Option<PathBuf> {
    match clients::python("the deception tests") {
        Ok(p) => Some(p),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

/// An Extension agent of `profile` on `ports` of 127.0.0.1, running.
fn agent(core: &Core, profile: &str, ports: &str) -> honeybee_tests::Agent {
    agent_with(core, profile, ports, None)
}

/// [`agent`] with a config file holding `config`.
fn agent_with(
    core: &Core,
    profile: &str,
    ports: &str,
    config: Option<&str>,
) -> honeybee_tests::Agent {
    // One node per profile: a node registers once per TOTP step, so an
    // agent restarted at once under the same identity would wait.
    let mut agent = Agent::extension(core.node_addr);
    if let Some(config) = config {
        agent = agent.config(config);
    }
    let agent = agent
        .workspace(core.workspace())
        .state_dir(core.workspace().path().join(profile))
        .name(profile)
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
    for tool in ["curl", "redis-cli", "ssh"] {
        if !have(tool) {
            skip(
                TEST,
                &format!(
                    "{tool} is not installed (apt-get install curl redis-tools openssh-client)"
                ),
            );
            return;
        }
    }
    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let _linux = agent(
        &core,
        "linux-server",
        "21,23,25,80,110,143,443,2222,3128,3306,5900,6379",
    );
    let out = Command::new(&python)
        .args([
            clients::SCRIPT,
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
    let curl = |args: &[&str]| clients::curl_status(args).expect("curl");
    assert_eq!(
        curl(&["-u", "webuser:http-Secret9", "http://127.0.0.1:80/"]),
        "401"
    );
    // HTTPS: the same server inside TLS, with a certificate made at start.
    assert_eq!(
        curl(&[
            "-k",
            "-u",
            "tlsuser:https-Secret13",
            "https://127.0.0.1:443/"
        ]),
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
    let redis = clients::redis_cli_auth("127.0.0.1", 6379, "redisuser", "redis-Secret11")
        .expect("redis-cli");
    let redis_said = String::from_utf8_lossy(&redis.stdout).into_owned()
        + &String::from_utf8_lossy(&redis.stderr);
    assert!(
        redis_said.contains("WRONGPASS") || redis_said.contains("NOAUTH"),
        "{redis_said}"
    );

    // SSH: a real key exchange first (chacha20-poly1305 by default, then
    // AES-GCM), then every password typed in the one connection.
    let ssh = |user, passwords: &[&str], cipher| {
        let o = clients::ssh_passwords(
            "127.0.0.1",
            2222,
            user,
            passwords,
            cipher,
            core.workspace().path(),
        )
        .expect("ssh");
        let said = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(said.contains("Permission denied"), "{said}");
    };
    ssh(
        "sshuser",
        &["ssh-Secret14", "ssh Secret15", "ssh-Secret16"],
        None,
    );
    ssh("gcmuser", &["ssh-Secret17"], Some("aes256-gcm@openssh.com"));
    // The host key the clients saw is the one kept (0600) in the agent's
    // state directory for the next start.
    let kept = core
        .workspace()
        .path()
        .join("linux-server/ssh_host_ed25519_key");
    let mode = std::fs::metadata(&kept)
        .expect("host key file")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let scan = Command::new("ssh-keyscan")
        .args(["-p", "2222", "-t", "ed25519", "127.0.0.1"])
        .output()
        .expect("ssh-keyscan");
    let line = String::from_utf8_lossy(&scan.stdout).into_owned();
    let shown = line.split_whitespace().nth(2).unwrap_or_default();
    let public = Command::new(&python)
        .args([
            "-c",
            "import base64,sys; print(base64.b64decode(sys.argv[1])[-32:].hex())",
            shown,
        ])
        .output()
        .expect("python");
    let file = std::fs::read(&kept).expect("host key file");
    let file_public: String = file
        .get(file.len().saturating_sub(32)..)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&public.stdout).trim(),
        file_public,
        "ssh-keyscan: {line}"
    );

    // smtplib tries each mechanism offered (PLAIN, then LOGIN), as other
    // clients do: two attempts, two events.
    let all = logins(&core, 16);
    let expected = [
        ("ftp", "ftpuser", "ftp-Secret1"),
        ("smtp", "mailuser", "smtp-Secret2"),
        ("pop3", "popuser", "pop-Secret3"),
        ("imap", "imapuser", "imap Secret4"),
        ("telnet", "telnetuser", "telnet-Secret5"),
        ("http", "webuser", "http-Secret9"),
        ("http", "tlsuser", "https-Secret13"),
        ("http-proxy", "proxyuser", "proxy-Secret10"),
        ("redis", "redisuser", "redis-Secret11"),
        ("ssh", "gcmuser", "ssh-Secret17"),
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
    let mut typed: Vec<(u64, &str)> = all
        .iter()
        .filter(|l| l["protocol"] == "ssh" && l["username"] == "sshuser")
        .map(|l| {
            let port = l["src_port"].as_u64().unwrap_or_default();
            (port, l["password"].as_str().unwrap_or_default())
        })
        .collect();
    typed.sort_unstable();
    assert_eq!(typed.len(), 3, "{all:#?}");
    assert!(typed.iter().all(|t| t.0 == typed[0].0), "one connection");
    let mut typed: Vec<&str> = typed.into_iter().map(|t| t.1).collect();
    typed.sort_unstable();
    assert_eq!(
        typed,
        ["ssh Secret15", "ssh-Secret14", "ssh-Secret16"],
        "{all:#?}"
    );
    per.remove("\"ssh\"/\"sshuser\"");
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    assert_eq!(all.len(), 16, "{all:#?}");
}

#[test]
fn sql_server_and_smb_logins_on_the_windows_profile_are_recorded() {
    const TEST: &str = "sql_server_and_smb_logins_on_the_windows_profile_are_recorded";
    let Some(python) = python(TEST) else {
        return;
    };
    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let _windows = agent(&core, "windows-workstation", "445,1433,3389");
    let out = Command::new(&python)
        .args([clients::SCRIPT, "127.0.0.1", "mssql=1433", "smb=445"])
        .output()
        .expect("clients.py");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Remote Desktop with Network Level Authentication: impacket's
    // rdp_check (TLS, then CredSSP with NTLM), always on port 3389.
    let rdp_check = python.with_file_name("rdp_check.py");
    let out = Command::new(&python)
        .arg(&rdp_check)
        .arg("CORP/rdpuser:rdp-Secret18@127.0.0.1")
        .output()
        .expect("rdp_check.py");
    let rdp_said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!rdp_said.contains("Access Granted"), "{rdp_said}");
    let all = logins(&core, 3);
    let l = login(&all, "mssql", "sa");
    assert_eq!(l["password"], "mssql-Secret7");
    // NTLM: the password never crosses the wire; the challenge and the
    // client's LMv2 response crack it offline (hashcat mode 5600): checked
    // here by computing the LMv2 response from the password typed.
    for (protocol, user, password) in [
        ("smb", "smbuser", "smb-Secret12"),
        ("rdp", "rdpuser", "rdp-Secret18"),
    ] {
        let s = login(&all, protocol, user);
        assert_eq!(s["domain"], "CORP", "{s}");
        assert_eq!(s["challenge"].as_str().map(str::len), Some(16), "{s}");
        let lmv2 = s["lmv2"].as_str().unwrap_or_default();
        assert_eq!(lmv2.len(), 48, "{s}");
        let check = Command::new(&python)
            .args(["-c", LMV2_CHECK, password, user, "CORP"])
            .args([s["challenge"].as_str().unwrap_or_default(), lmv2])
            .output()
            .expect("python");
        assert_eq!(
            String::from_utf8_lossy(&check.stdout).trim(),
            "cracked",
            "{protocol}: {s} {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// `python -c LMV2_CHECK PASSWORD USER DOMAIN CHALLENGE LMV2`: prints
/// "cracked" when the recorded LMv2 response is the one `PASSWORD` gives
/// (MS-NLMP 3.3.2), as a word-list attack would find it.
const LMV2_CHECK: &str = "
import hmac, sys
from Crypto.Hash import MD4
password, user, domain, challenge, lmv2 = sys.argv[1:]
nt = MD4.new(password.encode('utf-16-le')).digest()
v2 = hmac.new(nt, (user.upper() + domain).encode('utf-16-le'), 'md5').digest()
given = bytes.fromhex(lmv2)
client = given[16:]
proof = hmac.new(v2, bytes.fromhex(challenge) + client, 'md5').digest()
print('cracked' if proof == given[:16] else 'no')
";

/// What `nmap -sV` must call each port of each profile: the product it
/// names (a prefix of nmap's `product`).
const NAMED: &[(&str, &[(u16, &str)])] = &[
    (
        "windows-workstation",
        &[
            (21, "Microsoft ftpd"),
            (22, "OpenSSH"),
            (80, "Microsoft IIS httpd"),
            (443, "Microsoft IIS httpd"),
            (445, "Microsoft Windows"),
            (1433, "Microsoft SQL Server"),
            (3306, "MySQL"),
            (3389, "Microsoft Terminal Services"),
            (5900, "VNC"),
            (5985, "Microsoft HTTPAPI httpd"),
            (6379, "Redis key-value store"),
            (8080, "Microsoft IIS httpd"),
            (8443, "Microsoft IIS httpd"),
        ],
    ),
    (
        "linux-server",
        &[
            (21, "vsftpd"),
            (22, "OpenSSH"),
            (23, "Linux telnetd"),
            (25, "Postfix smtpd"),
            (80, "Apache httpd"),
            (110, "Dovecot pop3d"),
            (143, "Dovecot imapd"),
            (443, "Apache httpd"),
            (445, "Samba smbd"),
            (3128, "Squid http proxy"),
            (3306, "MySQL"),
            (5900, "VNC"),
            (6379, "Redis key-value store"),
            (8080, "Squid http proxy"),
        ],
    ),
    (
        "router",
        &[
            (21, "vsftpd"),
            (22, "Dropbear sshd"),
            (23, "BusyBox telnetd"),
            (80, "TP-LINK WR841N WAP http config"),
            (8080, "TP-LINK WR841N WAP http config"),
        ],
    ),
    (
        "nas",
        &[
            (21, "Synology DiskStation NAS ftpd"),
            (22, "OpenSSH"),
            (80, "nginx"),
            (139, "Samba smbd"),
            (445, "Samba smbd"),
            (3306, "MariaDB"),
            (5000, "nginx"),
            (5001, "nginx"),
        ],
    ),
    (
        "printer",
        &[
            (21, "HP JetDirect ftpd"),
            (23, "HP JetDirect telnetd"),
            (80, "HP LaserJet Pro M404n printer http config"),
            (443, "HP LaserJet Pro M404n printer http config"),
            (515, "lpd"),
            (631, "HP LaserJet Pro M404n printer http config"),
            (9100, "HP LaserJet Pro M404n"),
        ],
    ),
];

/// `nmap -sV` (with `--allports`: nmap leaves the printer's 9100 out of
/// version detection by default) names every port of every profile as the
/// product the profile claims: no `tcpwrapped`, no `unknown`, no port
/// without a product. A `FIGURES` line gives ports named / open per
/// profile.
#[test]
fn nmap_names_every_port_of_every_profile_as_the_profiles_product() {
    const TEST: &str = "nmap_names_every_port_of_every_profile_as_the_profiles_product";
    if !have("nmap") {
        skip(TEST, "nmap is not installed (apt-get install nmap)");
        return;
    }
    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let mut figures = Vec::new();
    let mut wrong = Vec::new();
    for (profile, expected) in NAMED {
        let ports: Vec<String> = expected.iter().map(|(p, _)| p.to_string()).collect();
        let ports = ports.join(",");
        let mut agent = agent(&core, profile, &ports);
        let started = Instant::now();
        let out = honeybee_tests::nmap::version_scan(&ports).expect("nmap");
        let secs = started.elapsed().as_secs();
        let xml = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{xml}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = honeybee_tests::nmap::ports(&xml);
        let open = seen.iter().filter(|p| p.state == "open").count();
        let mut named = 0;
        for (port, product) in *expected {
            match seen.iter().find(|p| p.port == *port) {
                Some(p)
                    if p.state == "open"
                        && p.product.starts_with(product)
                        && p.name != "tcpwrapped" =>
                {
                    named += 1
                }
                other => wrong.push(format!(
                    "{profile} {port}: expected {product:?}, nmap says {other:?}"
                )),
            }
        }
        figures.push(format!("{profile} {named}/{open} named ({secs} s)"));
        assert!(agent.terminate(T).success());
    }
    println!("FIGURES nmap -sV: {}", figures.join("; "));
    assert!(
        wrong.is_empty(),
        "{}\n{}",
        wrong.join("\n"),
        figures.join("; ")
    );
    // nmap's TerminalServerCookie probe carries the cookie "nmap": the
    // user name an RDP client would log in as is recorded.
    let all = logins(&core, 1);
    login(&all, "rdp", "nmap");
}

/// Attacks on the responders from outside: an endless stream is cut off
/// at the read cap, a silent client at the idle timeout, a client that
/// trickles one byte at a time at six idle timeouts, and control sequences
/// typed into a user name or a URL never come back.
#[test]
fn hostile_clients_are_cut_off_and_nothing_they_send_is_reflected() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let _agent = agent_with(
        &core,
        "linux-server",
        "21,80,6379",
        Some("[extension]\nread_timeout_ms = 1000\nflood_connections = 1000\n"),
    );

    // Endless: a megabyte at the web server. The agent reads at most 4 KiB
    // and closes.
    let mut c = TcpStream::connect("127.0.0.1:80").expect("connect 80");
    c.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let chunk = vec![b'A'; 64 * 1024];
    let mut sent = 0usize;
    while sent < (1 << 20) {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    drop(c);
    let endless = wait_connection(&core, 80);
    assert!(
        endless["bytes"].as_u64().is_some_and(|b| b <= 4096),
        "{endless}"
    );

    // Silent: closed after the idle timeout (1 s here), not held.
    let started = Instant::now();
    let mut c = TcpStream::connect("127.0.0.1:6379").expect("connect 6379");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "closed without a word");
    let silent = started.elapsed();
    assert!(
        silent >= Duration::from_millis(900) && silent < Duration::from_secs(5),
        "{silent:?}"
    );

    // Trickle: a byte every 300 ms never ends a line; the dialogue ends
    // after six idle timeouts whatever arrives.
    let started = Instant::now();
    let mut c = TcpStream::connect("127.0.0.1:21").expect("connect 21");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut greeting = Vec::new();
    let closed = loop {
        if c.write_all(b"x").is_err() {
            break started.elapsed();
        }
        match c.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => greeting.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still open");
    };
    assert!(greeting.starts_with(b"220 "), "{greeting:?}");
    assert!(
        closed >= Duration::from_secs(5) && closed < Duration::from_secs(10),
        "{closed:?}"
    );

    // Control sequences in what the client types are not sent back.
    let mut c = TcpStream::connect("127.0.0.1:21").expect("connect 21");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(b"USER \x1b[2J\x1b]0;pwned\x07\r\nPASS x\r\nQUIT\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    assert!(
        answer.ends_with(b"221 Goodbye.\r\n"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(!answer.contains(&0x1b) && !answer.contains(&0x07));
    let mut c = TcpStream::connect("127.0.0.1:80").expect("connect 80");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(b"GET /\x1b[31m<script> HTTP/1.0\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 401"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(!answer.contains(&0x1b));
    assert!(!answer.windows(8).any(|w| w == b"<script>"));
    // The user name typed is recorded, with its control characters made
    // harmless.
    let all = logins(&core, 1);
    let l = all
        .iter()
        .find(|l| l["protocol"] == "ftp")
        .expect("ftp login");
    let user = l["username"].as_str().unwrap_or_default();
    assert!(
        !user.contains('\u{1b}') && !user.contains('\u{7}') && user.contains("[2J"),
        "{user:?}"
    );
}

/// The `extension.connection` event of the last connection to `port`.
/// SSH under attack: a client that sends a megabyte after its version is
/// read for at most 4 KiB and closed; a flooding source gets the banner but
/// no key exchange (each costs a key agreement and a signature), while a
/// source that is not flooding does.
#[test]
fn ssh_floods_and_endless_input_cost_no_key_exchanges() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let _turn = WELL_KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let core = Core::start();
    let _agent = agent_with(
        &core,
        "linux-server",
        "2222",
        Some(
            "[extension]\nread_timeout_ms = 1000\nflood_connections = 4\nflood_window_secs = 120\n",
        ),
    );
    // What the server says after our version line, until it closes or
    // stays silent for 2 s.
    let after_version = |extra: &[u8]| {
        let mut c = TcpStream::connect("127.0.0.1:2222").expect("connect 2222");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        c.set_write_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut heard = Vec::new();
        let mut buf = [0u8; 4096];
        while !heard.ends_with(b"\r\n") {
            match c.read(&mut buf) {
                Ok(n) if n > 0 => heard.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        assert_eq!(heard, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        let _ = c.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n");
        let mut sent = 0;
        while sent < extra.len() {
            match c.write(&extra[sent..]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        let mut after = Vec::new();
        // Closed: an end of stream, or a reset (the agent closed with
        // unread bytes); still open: silent for the read timeout.
        let closed = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => after.extend_from_slice(&buf[..n]),
                Err(e) => {
                    break !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        };
        (after, closed)
    };
    // A KEXINIT: packet length, padding length, message 20.
    let is_kexinit = |b: &[u8]| b.get(5) == Some(&20);
    let (first, _) = after_version(b"");
    assert!(is_kexinit(&first), "{first:?}");

    // Endless: a megabyte of garbage after the version line (its first
    // four bytes, read as a packet length, are 1 GiB): our KEXINIT, then
    // closed at once.
    let (answer, closed) = after_version(&vec![0x41; 1 << 20]);
    assert!(closed && is_kexinit(&answer), "{answer:?}");
    let endless = wait_connection(&core, 2222);
    assert!(
        endless["bytes"].as_u64().is_some_and(|b| b <= 4096),
        "{endless}"
    );

    // From the fifth connection within the window on, 127.0.0.1 floods.
    let mut flooded = Vec::new();
    for _ in 0..4 {
        flooded.push(after_version(b""));
    }
    let (last, closed) = flooded.last().cloned().unwrap_or_default();
    assert!(!is_kexinit(&last), "a flooding source got a key exchange");
    assert!(last.is_empty() && closed, "{last:?}");
}

fn wait_connection(core: &Core, port: u16) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let events = core
            .api()
            .all_events(&[("event_type", "extension.connection")]);
        if let Some(e) = events.iter().find(|e| e["data"]["dst_port"] == port) {
            return e["data"].clone();
        }
        assert!(Instant::now() < deadline, "no connection event on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
