//! The syslog channel against a real rsyslog (Debian's `rsyslog` and, for
//! TLS, `rsyslog-gnutls`), started by each test in its own directory on a
//! free loopback port. rsyslog writes every message it parsed as one line
//! of a file (severity, facility, the RFC 5424 header fields it parsed,
//! the structured data, the MSG and the raw message); the tests read that
//! file back. Control characters are not escaped by rsyslog here
//! (`parser.escapeControlCharactersOnReceive="off"`), so a raw CR or LF
//! from the channel would break a line and fail the test.

mod channel_support;

use std::io::Write as _;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use channel_support::{
    alert, digest_alert, find_program, free_port, hostile_alert, listening, wait_for, Pki, Proc,
    TempDir,
};
use honeybee_alerts::alert::Alert;
use honeybee_alerts::channels::syslog::{self, SyslogConfig, MAX_MESSAGE};
use honeybee_alerts::channels::{Channel, Common};
use honeybee_alerts::sanitize::{clean, MAX_FIELD, MAX_TITLE};

const INSTALL: &str = "install Debian's rsyslog and rsyslog-gnutls \
    (apt-get install rsyslog rsyslog-gnutls; .ci/run does)";

fn rsyslogd() -> PathBuf {
    find_program("rsyslogd").unwrap_or_else(|| panic!("rsyslogd not found: {INSTALL}"))
}

/// rsyslog's GnuTLS network stream driver, from rsyslog-gnutls.
fn require_gtls() {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("rsyslog/lmnsd_gtls.so"))
        .chain([PathBuf::from("/usr/lib/rsyslog/lmnsd_gtls.so")])
        .any(|p| p.is_file());
    assert!(
        found,
        "rsyslog's gtls driver (lmnsd_gtls.so) not found: {INSTALL}"
    );
}

/// One line of rsyslog's output file.
#[derive(Debug)]
struct Line {
    sev: String,
    fac: String,
    ver: String,
    host: String,
    app: String,
    procid: String,
    msgid: String,
    ts: String,
    sd: String,
    msg: String,
    raw: String,
}

const TEMPLATE: &str = "sev=%syslogseverity% fac=%syslogfacility% ver=%protocol-version% \
    host=%hostname% app=%app-name% procid=%procid% msgid=%msgid% \
    ts=%timereported:::date-rfc3339%\\tSD=%structured-data%\\tMSG=%msg%\\tRAW=%rawmsg%\\n";

fn parse_line(line: &str) -> Option<Line> {
    let mut parts = line.split('\t');
    let head = parts.next()?;
    let sd = parts.next()?.strip_prefix("SD=")?;
    let msg = parts.next()?.strip_prefix("MSG=")?;
    let raw = parts.next()?.strip_prefix("RAW=")?;
    if parts.next().is_some() {
        return None;
    }
    let get = |key: &str| -> Option<String> {
        head.split(' ')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    Some(Line {
        sev: get("sev")?,
        fac: get("fac")?,
        ver: get("ver")?,
        host: get("host")?,
        app: get("app")?,
        procid: get("procid")?,
        msgid: get("msgid")?,
        ts: get("ts")?,
        sd: sd.to_string(),
        msg: msg.to_string(),
        raw: raw.to_string(),
    })
}

struct Rsyslog {
    proc: Proc,
    dir: PathBuf,
    port: u16,
    out: PathBuf,
}

impl Rsyslog {
    /// Starts rsyslogd with UDP and TCP inputs on `port`, or a TLS input
    /// with `pki`'s server certificate.
    fn start(dir: &Path, port: u16, pki: Option<&Pki>) -> Rsyslog {
        let rsyslogd = rsyslogd();
        if pki.is_some() {
            require_gtls();
        }
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        let out = dir.join("out.log");
        let mut conf = String::new();
        match pki {
            None => conf.push_str(&format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"64k\"\n\
                 \x20      parser.escapeControlCharactersOnReceive=\"off\")\n\
                 module(load=\"imudp\")\n\
                 module(load=\"imtcp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n",
                work = work.display()
            )),
            Some(pki) => conf.push_str(&format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"64k\"\n\
                 \x20      parser.escapeControlCharactersOnReceive=\"off\"\n\
                 \x20      defaultNetstreamDriver=\"gtls\"\n\
                 \x20      defaultNetstreamDriverCAFile=\"{ca}\"\n\
                 \x20      defaultNetstreamDriverCertFile=\"{cert}\"\n\
                 \x20      defaultNetstreamDriverKeyFile=\"{key}\")\n\
                 module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\"\n\
                 \x20      streamDriver.authMode=\"anon\" gnutlsPriorityString=\"NORMAL\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n",
                work = work.display(),
                ca = pki.ca.display(),
                cert = pki.cert.display(),
                key = pki.key.display()
            )),
        }
        conf.push_str(&format!(
            "template(name=\"hb\" type=\"string\" string=\"{TEMPLATE}\")\n\
             action(type=\"omfile\" file=\"{}\" template=\"hb\")\n",
            out.display()
        ));
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("write rsyslog.conf");
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
        let child = Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log("rsyslogd.stdout"))
            .stderr(log("rsyslogd.stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting rsyslogd: {e}: {INSTALL}"));
        let mut rs = Rsyslog {
            proc: Proc(child),
            dir: dir.to_path_buf(),
            port,
            out,
        };
        let up = wait_for(Duration::from_secs(15), || {
            if let Ok(Some(status)) = rs.proc.0.try_wait() {
                panic!("rsyslogd exited ({status}): {}", rs.diagnostics());
            }
            listening(port).then_some(())
        });
        assert!(
            up.is_some(),
            "rsyslogd does not listen: {}",
            rs.diagnostics()
        );
        if pki.is_none() {
            // imudp has no connection to wait for: probe until a datagram
            // comes out at the other end.
            let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
            let mut n = 0;
            let seen = wait_for(Duration::from_secs(15), || {
                n += 1;
                let _ = probe.send_to(
                    format!("<14>1 - - probe - - - probe {n}").as_bytes(),
                    ("127.0.0.1", port),
                );
                rs.lines_of("probe").into_iter().next()
            });
            assert!(seen.is_some(), "rsyslogd gets no UDP: {}", rs.diagnostics());
        }
        rs
    }

    fn diagnostics(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        format!(
            "stderr: {} stdout: {} (in {})",
            read("rsyslogd.stderr"),
            read("rsyslogd.stdout"),
            self.dir.display()
        )
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Every line of the output, which must all be well formed: a broken
    /// line means a message carried a raw line break.
    fn lines(&self) -> Vec<Line> {
        let text = self.text();
        text.lines()
            .map(|l| {
                parse_line(l).unwrap_or_else(|| {
                    panic!("a message broke rsyslog's output into extra lines: {l:?}\n{text}")
                })
            })
            .collect()
    }

    fn lines_of(&self, app: &str) -> Vec<Line> {
        self.lines().into_iter().filter(|l| l.app == app).collect()
    }

    /// The lines of `app`, once there are `n` (and no more come within a
    /// moment).
    fn wait_lines(&self, app: &str, n: usize) -> Vec<Line> {
        let got = wait_for(Duration::from_secs(15), || {
            (self.lines_of(app).len() >= n).then_some(())
        });
        assert!(
            got.is_some(),
            "rsyslog got {} messages from {app}, expected {n}: {}\n{}",
            self.lines_of(app).len(),
            self.diagnostics(),
            self.text()
        );
        std::thread::sleep(Duration::from_millis(300));
        let lines = self.lines_of(app);
        assert_eq!(lines.len(), n, "{}", self.text());
        lines
    }
}

fn common(name: &str, timeout: Duration) -> Common {
    Common {
        name: name.into(),
        timeout,
    }
}

fn config(toml_text: &str) -> SyslogConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
}

fn open(toml_text: &str) -> Box<dyn Channel> {
    syslog::open(&common("siem", Duration::from_secs(5)), &config(toml_text))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The params of an RFC 5424 SD-ELEMENT, unescaped; `None` if malformed.
fn parse_sd(sd: &str) -> Option<(String, Vec<(String, String)>)> {
    let inner = sd.strip_prefix('[')?;
    let mut chars = inner.chars().peekable();
    let mut id = String::new();
    while let Some(&c) = chars.peek() {
        if c == ' ' || c == ']' {
            break;
        }
        id.push(c);
        chars.next();
    }
    let mut params = Vec::new();
    loop {
        match chars.next()? {
            ']' => return chars.next().is_none().then_some((id, params)),
            ' ' => {}
            _ => return None,
        }
        let mut name = String::new();
        loop {
            match chars.next()? {
                '=' => break,
                c => name.push(c),
            }
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    c @ ('"' | '\\' | ']') => value.push(c),
                    c => {
                        value.push('\\');
                        value.push(c);
                    }
                },
                '"' => break,
                c => value.push(c),
            }
        }
        params.push((name, value));
        if chars.peek() != Some(&' ') && chars.peek() != Some(&']') {
            return None;
        }
    }
}

fn check_rfc5424(line: &Line, a: &Alert, app: &str, fac: u8, host: &str) {
    let ctx = format!("{line:#?}");
    assert_eq!(line.ver, "1", "rsyslog did not parse RFC 5424: {ctx}");
    assert_eq!(line.sev, a.severity.syslog().to_string(), "{ctx}");
    assert_eq!(line.fac, fac.to_string(), "{ctx}");
    assert_eq!(line.app, app, "{ctx}");
    assert_eq!(line.host, host, "{ctx}");
    assert_eq!(line.procid, std::process::id().to_string(), "{ctx}");
    assert_eq!(
        line.msgid,
        if a.digest.is_some() {
            "digest"
        } else {
            "alert"
        },
        "{ctx}"
    );
    assert_eq!(line.ts, "2025-05-01T12:00:00.123Z", "{ctx}");
    assert!(line.raw.len() <= MAX_MESSAGE, "{ctx}");
    let (id, mut params) = parse_sd(&line.sd).unwrap_or_else(|| panic!("bad SD: {ctx}"));
    assert_eq!(id, "honeybee@32473");
    let mut expected: Vec<(String, String)> = vec![
        ("id".into(), a.id.clone()),
        ("rule".into(), a.rule.clone()),
        ("severity".into(), a.severity.name().into()),
    ];
    if let Some(d) = &a.digest {
        expected.push(("digest_count".into(), d.count.to_string()));
        expected.push(("digest_nodes".into(), d.nodes.to_string()));
        expected.push(("digest_window_secs".into(), d.window_secs.to_string()));
    }
    for (k, v) in &a.fields {
        expected.push((k.replace('.', "_"), clean(v, MAX_FIELD)));
    }
    // An alert too big for one message keeps its first fields and says
    // how many it dropped.
    if let Some((name, note)) = params.last().filter(|(n, _)| n == "truncated") {
        let kept = params.len() - 1;
        assert_eq!(
            note,
            &format!("{} more fields", expected.len() - kept),
            "{name}: {ctx}"
        );
        assert!(line.raw.len() > MAX_MESSAGE - 1100, "{ctx}");
        expected.truncate(kept);
        params.truncate(kept);
    }
    assert_eq!(params, expected, "{ctx}");
    let mut msg = clean(&a.title, MAX_TITLE);
    if let Some(d) = &a.digest {
        msg = format!("{msg} — {}", d.summary());
    }
    assert_eq!(line.msg, msg, "{ctx}");
}

/// Splits on `sep` where it is not escaped by a backslash, into at most
/// `max` parts, unescaping `\sep` and `\\` in all but the last part (the
/// CEF extension, which has its own escaping).
fn split_unescaped(s: &str, sep: char, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if out.len() + 1 == max {
            cur.push(c);
            continue;
        }
        match c {
            '\\' => match chars.next() {
                Some(n) if n == sep || n == '\\' => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            c if c == sep => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// CEF extension `key=value` pairs, values unescaped.
fn parse_cef_extension(ext: &str) -> Vec<(String, String)> {
    // A key starts after a space (or at the start), is [A-Za-z0-9_] and
    // is followed by an unescaped `=`.
    let chars: Vec<char> = ext.chars().collect();
    let mut starts = Vec::new(); // (key start, '=' index)
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == '=' {
            let mut k = i;
            while k > 0 && (chars[k - 1].is_ascii_alphanumeric() || chars[k - 1] == '_') {
                k -= 1;
            }
            if k < i && (k == 0 || chars[k - 1] == ' ') {
                starts.push((k, i));
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (n, &(k, eq)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(chars.len(), |&(next, _)| next - 1);
        let key: String = chars[k..eq].iter().collect();
        let raw: String = chars[eq + 1..end].iter().collect();
        let mut value = String::new();
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some(o) => value.push(o),
                    None => value.push('\\'),
                }
            } else {
                value.push(c);
            }
        }
        out.push((key, value));
    }
    out
}

fn check_cef(line: &Line, a: &Alert, app: &str) {
    let ctx = format!("{line:#?}");
    assert_eq!(line.ver, "1", "{ctx}");
    assert_eq!(line.app, app, "{ctx}");
    assert_eq!(line.sev, a.severity.syslog().to_string(), "{ctx}");
    assert_eq!(line.sd, "-", "{ctx}");
    assert!(line.raw.len() <= MAX_MESSAGE, "{ctx}");
    let parts = split_unescaped(&line.msg, '|', 8);
    assert_eq!(parts.len(), 8, "{ctx}");
    let event_type = a.field("event.type").unwrap_or_default();
    let class = if a.digest.is_some() {
        "digest".to_string()
    } else {
        clean(event_type, 256)
    };
    assert_eq!(
        parts[..7],
        [
            "CEF:0".to_string(),
            "HoneyBee".into(),
            "honeybee".into(),
            env!("CARGO_PKG_VERSION").into(),
            class,
            clean(&a.title, MAX_TITLE),
            a.severity.cef().to_string(),
        ],
        "{ctx}"
    );
    // Every extension key appears once, values are the cleaned fields.
    let ext = parse_cef_extension(&parts[7]);
    let get = |k: &str| -> Option<String> {
        let found: Vec<&String> = ext
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v)
            .collect();
        assert!(found.len() <= 1, "{k} repeated: {ctx}");
        found.first().map(|v| v.to_string())
    };
    assert_eq!(get("rt").as_deref(), Some("1746100800123"), "{ctx}");
    assert_eq!(get("src").as_deref(), a.field("source.ip"), "{ctx}");
    assert_eq!(
        get("suser"),
        a.field("user.name").map(|u| clean(u, MAX_FIELD)),
        "{ctx}"
    );
    assert_eq!(get("externalId"), Some(a.id.clone()), "{ctx}");
    assert_eq!(get("cs1Label").as_deref(), Some("rule"), "{ctx}");
    assert_eq!(get("cs1"), Some(a.rule.clone()), "{ctx}");
    assert_eq!(get("cs2"), a.field("node.id").map(str::to_string), "{ctx}");
    assert_eq!(get("cat"), Some(clean(event_type, 256)), "{ctx}");
    let expected_keys: Vec<&str> = ext.iter().map(|(k, _)| k.as_str()).collect();
    for k in &expected_keys {
        assert!(
            [
                "rt",
                "src",
                "spt",
                "dpt",
                "suser",
                "dvchost",
                "cat",
                "externalId",
                "cs1Label",
                "cs1",
                "cs2Label",
                "cs2",
                "cs3Label",
                "cs3",
                "cnt",
                "msg"
            ]
            .contains(k),
            "unexpected extension key {k} (an `=` from event data was not escaped?): {ctx}"
        );
    }
}

/// RFC 5424 and CEF, over UDP and TCP: every alert arrives as exactly one
/// message, parsed by rsyslog, with its severity, facility, fields and
/// title intact (cleaned), hostile content visible but harmless.
#[test]
fn rfc5424_and_cef_over_udp_and_tcp_arrive_intact_one_line_per_alert() {
    let dir = TempDir::new("syslog");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let local_host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    // (transport, format, app_name, facility, hostname)
    let setups = [
        ("udp", "rfc5424", "hb-udp-5424", 16u8, None),
        ("tcp", "rfc5424", "hb-tcp-5424", 19, Some("hb-test-host")),
        ("udp", "cef", "hb-udp-cef", 16, None),
        ("tcp", "cef", "hb-tcp-cef", 23, None),
    ];
    // Opened while nothing listens: opening never connects.
    let mut channels: Vec<Box<dyn Channel>> = setups
        .iter()
        .map(|(transport, format, app, fac, host)| {
            let mut t = format!(
                "address = \"{address}\"\ntransport = \"{transport}\"\nformat = \"{format}\"\napp_name = \"{app}\"\n"
            );
            match fac {
                16 => {}
                23 => t.push_str("facility = 23\n"),
                _ => t.push_str("facility = \"local3\"\n"),
            }
            if let Some(h) = host {
                t.push_str(&format!("hostname = \"{h}\"\n"));
            }
            open(&t)
        })
        .collect();
    // TCP with no receiver: an error naming the receiver, quickly.
    let started = Instant::now();
    let e = channels[1]
        .send(&alert("lost", "lost"))
        .expect_err("nothing listens yet");
    assert!(e.contains(&address) && e.contains("siem"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let rs = Rsyslog::start(dir.path(), port, None);
    let mut big = alert("b1", "an alert bigger than a syslog message");
    big.fields
        .extend((0..40).map(|i| (format!("data.f{i:02}"), format!("{i:02}").repeat(450))));
    let alerts = [
        alert("a1", "tripwire: root logged in on web-1 (é ✓)"),
        hostile_alert("h1"),
        digest_alert("d1"),
        big,
    ];
    for chan in channels.iter_mut() {
        for a in &alerts {
            chan.send(a).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    for (transport, format, app, fac, host) in &setups {
        let lines = rs.wait_lines(app, alerts.len());
        for (line, a) in lines.iter().zip(&alerts) {
            match *format {
                "rfc5424" => check_rfc5424(line, a, app, *fac, host.unwrap_or(&local_host)),
                _ => check_cef(line, a, app),
            }
            assert_eq!(line.fac, fac.to_string(), "{transport}");
        }
        // The 64 KiB field is cut visibly, in the message as received.
        let hostile = &lines[1];
        assert!(
            hostile
                .raw
                .contains(&format!("…[+{} bytes", 64 * 1024 - MAX_FIELD)),
            "{hostile:#?}"
        );
        // The forged line is inside the one message, shown as text.
        assert!(
            hostile.raw.contains("root\\\\r\\\\n<13>1 2025"),
            "{hostile:#?}"
        );
        // The big one is cut to the limit, visibly.
        let big = &lines[3];
        assert!(
            big.raw.len() > MAX_MESSAGE - 1100 && big.raw.len() <= MAX_MESSAGE,
            "{big:#?}"
        );
        match *format {
            "rfc5424" => assert!(big.sd.contains(" truncated=\""), "{big:#?}"),
            _ => assert!(big.msg.contains("…[+"), "{big:#?}"),
        }
    }
    // One line per message, nothing else, no raw control character.
    let text = rs.text();
    let ours = rs.lines().iter().filter(|l| l.app != "probe").count();
    assert_eq!(ours, setups.len() * alerts.len(), "{text}");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{text}"
    );
    assert!(
        !text.contains("#012") && !text.contains("#015"),
        "rsyslog escaped a control character: {text}"
    );
}

/// A kept TCP connection whose receiver went away is replaced: the alert
/// sent while the receiver is down fails (quickly, naming it), the next
/// one after it is back arrives.
#[test]
fn tcp_reconnects_after_the_receiver_restarts() {
    let dir = TempDir::new("syslog-restart");
    let port = free_port();
    let mut chan = open(&format!(
        "address = \"127.0.0.1:{port}\"\ntransport = \"tcp\"\napp_name = \"hb-restart\""
    ));
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir).expect("dir");
    let mut rs = Rsyslog::start(&first_dir, port, None);
    chan.send(&alert("r1", "before")).expect("first send");
    chan.send(&alert("r2", "same connection"))
        .expect("second send");
    rs.wait_lines("hb-restart", 2);
    rs.proc.kill();
    let started = Instant::now();
    let e = chan
        .send(&alert("r3", "while down"))
        .expect_err("the receiver is down");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "{e}");

    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let rs2 = Rsyslog::start(&second_dir, port, None);
    chan.send(&alert("r4", "after"))
        .expect("send after restart");
    let lines = rs2.wait_lines("hb-restart", 1);
    assert!(lines[0].sd.contains("id=\"tripwire/r4\""), "{lines:#?}");
    let _ = rs2.port;
}

/// TLS 1.3 into rsyslog's gtls driver, the receiver's certificate checked:
/// a CA that did not sign it, or another name, and nothing is sent.
#[test]
fn tls_into_rsyslog_checks_the_server_certificate() {
    let dir = TempDir::new("syslog-tls");
    let pki = Pki::new(dir.path());
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let rs = Rsyslog::start(dir.path(), port, Some(&pki));
    let base = format!(
        "address = \"{address}\"\ntransport = \"tls\"\nca_file = \"{}\"\n",
        pki.ca.display()
    );
    // The certificate is checked against the address (an IP SAN) …
    let mut by_ip = open(&format!("{base}app_name = \"hb-tls-5424\""));
    // … or against server_name.
    let mut by_name = open(&format!(
        "{base}app_name = \"hb-tls-cef\"\nformat = \"cef\"\nserver_name = \"localhost\""
    ));
    let alerts = [
        alert("t1", "over TLS"),
        hostile_alert("t2"),
        digest_alert("t3"),
    ];
    for a in &alerts {
        by_ip.send(a).unwrap_or_else(|e| panic!("{e}"));
        by_name.send(a).unwrap_or_else(|e| panic!("{e}"));
        // Session tickets and the like arrive between alerts: the kept
        // connection must still be usable.
        std::thread::sleep(Duration::from_millis(200));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    for (line, a) in rs.wait_lines("hb-tls-5424", 3).iter().zip(&alerts) {
        check_rfc5424(line, a, "hb-tls-5424", 16, &host);
    }
    for (line, a) in rs.wait_lines("hb-tls-cef", 3).iter().zip(&alerts) {
        check_cef(line, a, "hb-tls-cef");
    }

    let mut wrong_ca = open(&format!(
        "address = \"{address}\"\ntransport = \"tls\"\nca_file = \"{}\"\napp_name = \"hb-wrong\"",
        pki.other_ca.display()
    ));
    let e = wrong_ca
        .send(&alert("w1", "must not arrive"))
        .expect_err("unknown CA");
    assert!(
        e.contains("certificate") || e.contains("Certificate"),
        "{e}"
    );
    let mut wrong_name = open(&format!(
        "{base}app_name = \"hb-wrong\"\nserver_name = \"mail.example.org\""
    ));
    let e = wrong_name
        .send(&alert("w2", "must not arrive"))
        .expect_err("wrong name");
    assert!(
        e.contains("certificate") || e.contains("Certificate"),
        "{e}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(rs.lines_of("hb-wrong").is_empty(), "{}", rs.text());
}

/// A receiver that accepts and then says nothing (no TLS handshake) makes
/// the send fail after about the timeout, not hang.
#[test]
fn a_silent_tls_receiver_fails_within_the_timeout() {
    let dir = TempDir::new("syslog-silent");
    let pki = Pki::new(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        std::thread::sleep(Duration::from_secs(4));
        let _ = sock.flush();
    });
    let timeout = Duration::from_secs(1);
    let mut chan = syslog::open(
        &common("siem", timeout),
        &config(&format!(
            "address = \"127.0.0.1:{port}\"\ntransport = \"tls\"\nca_file = \"{}\"",
            pki.ca.display()
        )),
    )
    .expect("open");
    let started = Instant::now();
    let e = chan
        .send(&alert("s1", "silence"))
        .expect_err("no handshake");
    let took = started.elapsed();
    assert!(e.contains("timed out"), "{e}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    holder.join().expect("holder");
}
