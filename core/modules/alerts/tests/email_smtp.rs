//! The email channel against a real SMTP server: aiosmtpd (PyPI), run as
//! `python -m aiosmtpd -n -l 127.0.0.1:PORT` for plain SMTP and through
//! `tests/smtp_server.py` for STARTTLS, implicit TLS and AUTH. The server
//! writes every message it accepted (envelope, TLS and AUTH state, the
//! content as received, and the message as Python's email parser reads
//! it) to a directory the tests read back. Plus small hand-made servers
//! that never answer, drip, or answer without end, for the time limits.
//!
//! The Python interpreter is `$HONEYBEE_PYTHON` (set by .ci/run to its
//! venv) or else a venv made once under the target directory; without
//! aiosmtpd the tests fail and say what to install.

mod channel_support;

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use channel_support::{
    alert, digest_alert, free_port, hostile_alert, listening, wait_for, Pki, Proc, TempDir,
};
use honeybee_alerts::alert::{Alert, Digest};
use honeybee_alerts::channels::email::{self, EmailConfig};
use honeybee_alerts::channels::{Channel, Common};
use honeybee_alerts::sanitize::{clean, MAX_FIELD, MAX_TITLE};
use serde::Deserialize;

const AIOSMTPD: &str = "aiosmtpd==1.4.6";
const FROM: &str = "hb@example.org";
const TO: [&str; 2] = ["soc@example.org", "oncall@example.org"];
const USER: &str = "alerts";
const PASSWORD: &str = "c0rrect-h0rse-battery-staple";

/// A Python with aiosmtpd, found or made once per test binary.
fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        honeybee_tests::python::find("the email tests", &[AIOSMTPD], "aiosmtpd", "alerts-venv")
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// One message as the server received it.
#[derive(Debug, Deserialize)]
struct Received {
    mail_from: String,
    rcpt_tos: Vec<String>,
    authenticated: bool,
    auth_user: Option<String>,
    tls_version: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
    defects: Vec<String>,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl Received {
    /// The values of header `name` (any case).
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of header `name`.
    fn one(&self, name: &str) -> &str {
        let v = self.header(name);
        assert_eq!(v.len(), 1, "{name}: {self:#?}");
        v[0]
    }
}

struct Smtp {
    proc: Proc,
    port: u16,
    out: PathBuf,
    dir: PathBuf,
}

impl Smtp {
    /// aiosmtpd's own command line: plain SMTP, no AUTH.
    fn plain(dir: &Path) -> Smtp {
        let port = free_port();
        let out = dir.join("received");
        std::fs::create_dir_all(&out).expect("out dir");
        let mut cmd = Command::new(python());
        cmd.env("PYTHONPATH", tests_dir())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "smtp_server.Sink"])
            .arg(&out);
        Smtp::spawn(cmd, dir, port, out)
    }

    /// `tests/smtp_server.py`: `starttls`, `starttls-login` or `implicit`,
    /// with AUTH as USER / PASSWORD.
    fn tls(dir: &Path, mode: &str, pki: &Pki) -> Smtp {
        let port = free_port();
        let out = dir.join(format!("received-{mode}"));
        std::fs::create_dir_all(&out).expect("out dir");
        let mut cmd = Command::new(python());
        cmd.arg(tests_dir().join("smtp_server.py"))
            .arg(mode)
            .arg(port.to_string())
            .arg(&out)
            .arg(&pki.cert)
            .arg(&pki.key)
            .arg(USER)
            .arg(PASSWORD);
        Smtp::spawn(cmd, dir, port, out)
    }

    fn spawn(mut cmd: Command, dir: &Path, port: u16, out: PathBuf) -> Smtp {
        let log = |name: String| std::fs::File::create(dir.join(name)).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log(format!("smtp-{port}.stdout")))
            .stderr(log(format!("smtp-{port}.stderr")))
            .spawn()
            .expect("start the SMTP server");
        let mut smtp = Smtp {
            proc: Proc(child),
            port,
            out,
            dir: dir.to_path_buf(),
        };
        let up = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = smtp.proc.0.try_wait() {
                panic!("the SMTP server exited ({status}): {}", smtp.diagnostics());
            }
            listening(port).then_some(())
        });
        assert!(
            up.is_some(),
            "the SMTP server does not listen: {}",
            smtp.diagnostics()
        );
        smtp
    }

    fn diagnostics(&self) -> String {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.join(format!("smtp-{}.{ext}", self.port)))
                .unwrap_or_default()
        };
        format!("stdout: {} stderr: {}", read("stdout"), read("stderr"))
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .expect("read out dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("read json");
                let mut r: Received = serde_json::from_str(&text).expect("parse json");
                r.raw = std::fs::read(p.with_extension("eml")).expect("read eml");
                r
            })
            .collect()
    }

    /// The messages received, once there are `n` (and no more come).
    fn wait_messages(&self, n: usize) -> Vec<Received> {
        let got = wait_for(Duration::from_secs(15), || {
            (self.messages().len() >= n).then_some(())
        });
        assert!(
            got.is_some(),
            "{} messages received, expected {n}: {}",
            self.messages().len(),
            self.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(300));
        let m = self.messages();
        assert_eq!(m.len(), n, "{m:#?}");
        m
    }
}

fn open(toml_text: &str, timeout: Duration) -> Result<Box<dyn Channel>, String> {
    let cfg: EmailConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"));
    email::open(
        &Common {
            name: "mail".into(),
            timeout,
        },
        &cfg,
    )
}

fn base_config(server: &str, tls: &str) -> String {
    format!(
        "server = \"{server}\"\ntls = \"{tls}\"\nfrom = \"{FROM}\"\nto = [\"{}\", \"{}\"]\n",
        TO[0], TO[1]
    )
}

/// What the body must read: the alert's text with every value cleaned.
fn expected_body(a: &Alert) -> String {
    Alert {
        id: a.id.clone(),
        rule: clean(&a.rule, 128),
        severity: a.severity,
        time: clean(&a.time, 64),
        title: clean(&a.title, MAX_TITLE),
        fields: a
            .fields
            .iter()
            .map(|(k, v)| (clean(k, 128), clean(v, MAX_FIELD)))
            .collect(),
        digest: a.digest.as_ref().map(|d| Digest {
            types: d.types.iter().map(|(t, n)| (clean(t, 128), *n)).collect(),
            ..d.clone()
        }),
        ecs: serde_json::Value::Null,
    }
    .text()
}

fn expected_subject(a: &Alert) -> String {
    format!(
        "[HoneyBee] {} {}: {}",
        a.severity.name().to_uppercase(),
        clean(&a.rule, 128),
        clean(&a.title, MAX_TITLE)
    )
}

/// Headers, envelope and body as they must be, and the raw message sane:
/// CRLF only, ASCII only, short lines.
fn check_message(m: &Received, a: &Alert) {
    assert_eq!(m.mail_from, FROM, "{m:#?}");
    assert_eq!(m.rcpt_tos, TO, "{m:#?}");
    assert!(m.defects.is_empty(), "{m:#?}");
    let mut names: Vec<String> = m
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "auto-submitted",
            "content-transfer-encoding",
            "content-type",
            "date",
            "from",
            "message-id",
            "mime-version",
            "subject",
            "to",
            "x-honeybee-severity"
        ],
        "{m:#?}"
    );
    assert_eq!(m.one("From"), FROM);
    assert_eq!(m.one("To"), TO.join(", "));
    assert_eq!(m.one("Subject"), expected_subject(a), "{m:#?}");
    assert_eq!(m.one("MIME-Version"), "1.0");
    assert_eq!(m.one("Content-Type"), "text/plain; charset=\"utf-8\"");
    assert_eq!(m.one("Content-Transfer-Encoding"), "quoted-printable");
    assert_eq!(m.one("X-HoneyBee-Severity"), a.severity.name());
    let id = m.one("Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@example.org>"), "{id}");
    let date = m.one("Date");
    assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");
    assert_eq!(m.body.replace("\r\n", "\n"), expected_body(a), "{m:#?}");

    let raw = String::from_utf8(m.raw.clone()).expect("ASCII message");
    assert!(raw.is_ascii(), "{raw}");
    for line in raw.strip_suffix("\r\n").unwrap_or(&raw).split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "bare CR or LF: {raw:?}");
        assert!(line.len() <= 78, "line of {} bytes: {line:?}", line.len());
    }
}

/// Plain SMTP to aiosmtpd's own command line: the channel opens while the
/// server is down (and the send fails, naming it), then delivers each
/// alert as one message with the right envelope, headers (a non-ASCII
/// subject encoded and read back intact) and body; asking for STARTTLS
/// from a server that does not offer it fails instead of sending in clear.
#[test]
fn plain_smtp_delivers_the_right_headers_and_body() {
    let dir = TempDir::new("email-plain");
    let pki = Pki::new(dir.path());
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut chan = open(&base_config(&address, "none"), Duration::from_secs(5)).expect("open");
    let started = Instant::now();
    let e = chan
        .send(&alert("down", "nobody listens"))
        .expect_err("server down");
    assert!(e.contains(&address) && e.contains("mail"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");

    // The same port, now with a server.
    let out = dir.path().join("received");
    std::fs::create_dir_all(&out).expect("out dir");
    let mut cmd = Command::new(python());
    cmd.env("PYTHONPATH", tests_dir())
        .args(["-m", "aiosmtpd", "-n", "-l", &address])
        .args(["-c", "smtp_server.Sink"])
        .arg(&out);
    let smtp = Smtp::spawn(cmd, dir.path(), port, out);

    let mut long = alert("long", "a long field");
    long.fields.push(("data.input".into(), "x=y ".repeat(200)));
    let alerts = [
        alert("a1", "tripwire: root logged in on web-1 (é ✓ 日本)"),
        digest_alert("d1"),
        long,
    ];
    for a in &alerts {
        chan.send(a).unwrap_or_else(|e| panic!("{e}"));
    }
    let got = smtp.wait_messages(alerts.len());
    for (m, a) in got.iter().zip(&alerts) {
        check_message(m, a);
        assert!(!m.authenticated && m.tls_version.is_none(), "{m:#?}");
    }
    let raw = String::from_utf8_lossy(&got[0].raw).into_owned();
    assert!(raw.contains("\r\nSubject: =?utf-8?B?"), "{raw}");
    assert!(got[1].body.contains("and 41 more on 2 nodes in 10 min"));

    let mut wants_tls = open(
        &format!(
            "{}ca_file = \"{}\"",
            base_config(&smtp.address(), "starttls"),
            pki.ca.display()
        ),
        Duration::from_secs(5),
    )
    .expect("open");
    let e = wants_tls
        .send(&alert("s1", "must not go in clear"))
        .expect_err("no STARTTLS offered");
    assert!(e.contains("STARTTLS"), "{e}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.messages().len(), alerts.len());
}

/// CR/LF in a title or a user name cannot add a header (`Bcc:`), a
/// recipient or a command, nor end the message early; a line that is a
/// single `.` is dot-stuffed.
#[test]
fn hostile_text_cannot_add_headers_recipients_or_end_the_message() {
    let dir = TempDir::new("email-hostile");
    let smtp = Smtp::plain(dir.path());
    let mut chan = open(
        &base_config(&smtp.address(), "none"),
        Duration::from_secs(5),
    )
    .expect("open");
    let mut dot_title = alert("dot", ".");
    dot_title.fields.push(("data.dots".into(), ".".into()));
    let mut dot_line = alert("dot-line", "dot lines");
    dot_line.fields.insert(0, (".".into(), ".".into()));
    let alerts = [hostile_alert("h1"), dot_title, dot_line];
    for a in &alerts {
        chan.send(a).unwrap_or_else(|e| panic!("{e}"));
    }
    let got = smtp.wait_messages(alerts.len());
    for (m, a) in got.iter().zip(&alerts) {
        check_message(m, a);
        assert!(m.header("Bcc").is_empty() && m.header("Cc").is_empty());
    }
    // The hostile text is there, visible and harmless.
    let h = &got[0];
    assert!(h
        .one("Subject")
        .contains("\\r\\nBcc: evil@example.org\\r\\n.\\r\\n|x=y"));
    assert!(h.body.contains("user.name: root\\r\\n<13>1"), "{h:#?}");
    assert!(h
        .body
        .contains(&format!("…[+{} bytes]", 64 * 1024 - MAX_FIELD)));
    assert!(
        h.body
            .replace("\r\n", "\n")
            .ends_with("data.last: the end\n"),
        "{h:#?}"
    );
    // The title "." is the first line of the body, whole.
    assert!(got[1].body.starts_with(".\r\n") || got[1].body.starts_with(".\n"));
    assert!(String::from_utf8_lossy(&got[1].raw).contains("\r\n\r\n.\r\n"));
}

fn password_file(dir: &Path, password: &str) -> String {
    let path = dir.join("smtp-password");
    std::fs::write(&path, format!("{password}\n")).expect("write password");
    path.display().to_string()
}

fn auth_config(smtp: &Smtp, tls: &str, ca: &Path, password_path: &str) -> String {
    format!(
        "{}ca_file = \"{}\"\nserver_name = \"localhost\"\nusername = \"{USER}\"\npassword = {{ file = \"{password_path}\" }}\nhelo = \"honeybee.example.org\"\n",
        base_config(&smtp.address(), tls),
        ca.display()
    )
}

/// STARTTLS (TLS 1.3, the server's certificate checked) then AUTH PLAIN,
/// or AUTH LOGIN where PLAIN is not offered; a wrong password fails
/// without showing it and nothing is delivered.
#[test]
fn starttls_with_auth_plain_or_login() {
    let dir = TempDir::new("email-starttls");
    let pki = Pki::new(dir.path());
    let good = password_file(dir.path(), PASSWORD);
    for mode in ["starttls", "starttls-login"] {
        let smtp = Smtp::tls(dir.path(), mode, &pki);
        let mut chan = open(
            &auth_config(&smtp, "starttls", &pki.ca, &good),
            Duration::from_secs(5),
        )
        .expect("open");
        let a = alert(mode, "over STARTTLS");
        chan.send(&a).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let got = smtp.wait_messages(1);
        check_message(&got[0], &a);
        assert!(got[0].authenticated, "{mode}: {got:#?}");
        assert_eq!(got[0].auth_user.as_deref(), Some(USER));
        assert_eq!(got[0].tls_version.as_deref(), Some("TLSv1.3"));

        let wrong_pw = "Wr0ng-Passw0rd-123";
        let bad_dir = dir.path().join(format!("bad-{mode}"));
        std::fs::create_dir_all(&bad_dir).expect("dir");
        let bad = password_file(&bad_dir, wrong_pw);
        let mut chan = open(
            &auth_config(&smtp, "starttls", &pki.ca, &bad),
            Duration::from_secs(5),
        )
        .expect("open");
        let e = chan
            .send(&alert("bad", "wrong password"))
            .expect_err("wrong password");
        assert!(
            e.contains("authentication failed") && e.contains("535"),
            "{e}"
        );
        for secret in [wrong_pw, PASSWORD] {
            assert!(!e.contains(secret), "{e}");
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(smtp.messages().len(), 1, "{mode}");
    }
}

/// Implicit TLS (TLS 1.3 from the first byte) with AUTH; a CA that did
/// not sign the server's certificate fails and nothing is delivered.
#[test]
fn implicit_tls_with_auth() {
    let dir = TempDir::new("email-implicit");
    let pki = Pki::new(dir.path());
    let good = password_file(dir.path(), PASSWORD);
    let smtp = Smtp::tls(dir.path(), "implicit", &pki);
    let mut chan = open(
        &auth_config(&smtp, "implicit", &pki.ca, &good),
        Duration::from_secs(5),
    )
    .expect("open");
    let alerts = [alert("i1", "over implicit TLS"), hostile_alert("i2")];
    for a in &alerts {
        chan.send(a).unwrap_or_else(|e| panic!("{e}"));
    }
    let got = smtp.wait_messages(2);
    for (m, a) in got.iter().zip(&alerts) {
        check_message(m, a);
        assert!(m.authenticated, "{m:#?}");
        assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
    }
    let mut wrong_ca = open(
        &auth_config(&smtp, "implicit", &pki.other_ca, &good),
        Duration::from_secs(5),
    )
    .expect("open");
    let e = wrong_ca
        .send(&alert("w", "must not arrive"))
        .expect_err("unknown CA");
    assert!(
        e.contains("certificate") || e.contains("Certificate"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.messages().len(), 2);
}

/// A hand-made server on a loopback port: `serve` gets each accepted
/// connection (at most `connections`), in a thread.
fn fake_server(
    connections: usize,
    serve: impl Fn(std::net::TcpStream) + Send + 'static,
) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            match listener.accept() {
                Ok((sock, _)) => serve(sock),
                Err(_) => return,
            }
        }
    });
    (port, handle)
}

fn timed_send(config: &str, timeout: Duration) -> (String, Duration) {
    let mut chan = open(config, timeout).expect("open");
    let started = Instant::now();
    let e = chan
        .send(&alert("t", "time limits"))
        .expect_err("must fail");
    (e, started.elapsed())
}

/// Unreachable, silent, dripping and endless servers: every send fails,
/// within about the timeout (one deadline for the whole conversation),
/// having read a bounded amount.
#[test]
fn unreachable_silent_and_endless_servers_fail_within_the_timeout() {
    let dir = TempDir::new("email-limits");
    let pki = Pki::new(dir.path());
    let timeout = Duration::from_secs(1);
    let within =
        |took: Duration| took >= Duration::from_millis(900) && took < Duration::from_millis(2500);

    // Nothing listens.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (e, took) = timed_send(
        &base_config(&format!("127.0.0.1:{closed}"), "none"),
        timeout,
    );
    assert!(
        e.contains("connecting") && took < Duration::from_secs(1),
        "{e} {took:?}"
    );

    // Accepts, never says a word: plain (no greeting) and implicit TLS (no
    // handshake).
    let hold = |sock: std::net::TcpStream| {
        std::thread::sleep(Duration::from_secs(3));
        drop(sock);
    };
    let (port, h1) = fake_server(1, hold);
    let (e, took) = timed_send(&base_config(&format!("127.0.0.1:{port}"), "none"), timeout);
    assert!(
        e.contains("greeting") && e.contains("timed out") && within(took),
        "{e} {took:?}"
    );
    let (port, h2) = fake_server(1, hold);
    let (e, took) = timed_send(
        &format!(
            "{}ca_file = \"{}\"",
            base_config(&format!("127.0.0.1:{port}"), "implicit"),
            pki.ca.display()
        ),
        timeout,
    );
    assert!(
        e.contains("TLS handshake") && e.contains("timed out") && within(took),
        "{e} {took:?}"
    );

    // Drips its greeting a byte every 200 ms: each read is quick, the
    // whole is not.
    let (port, h3) = fake_server(1, |mut sock| {
        for b in b"220 a very slow greeting that never ends" {
            if sock.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (e, took) = timed_send(&base_config(&format!("127.0.0.1:{port}"), "none"), timeout);
    assert!(e.contains("timed out") && within(took), "{e} {took:?}");

    // Answers EHLO without end, then a line without end: bounded reads.
    let (port, h4) = fake_server(2, |mut sock| {
        let _ = sock.write_all(b"220 hi\r\n");
        let mut line = String::new();
        let _ = BufReader::new(sock.try_clone().expect("clone")).read_line(&mut line);
        for _ in 0..10_000 {
            if sock.write_all(b"250-more and more\r\n").is_err() {
                return;
            }
        }
    });
    let config = base_config(&format!("127.0.0.1:{port}"), "none");
    let (e, took) = timed_send(&config, timeout);
    assert!(
        e.contains("longer than 64 lines") && took < timeout,
        "{e} {took:?}"
    );
    let (e, took) = {
        // Second connection of the same server: the same bound.
        timed_send(&config, timeout)
    };
    assert!(
        e.contains("longer than 64 lines") && took < timeout,
        "{e} {took:?}"
    );
    let (port, h5) = fake_server(1, |mut sock| {
        let _ = sock.write_all(b"220 ");
        for _ in 0..1000 {
            if sock.write_all(&[b'a'; 100]).is_err() {
                return;
            }
        }
    });
    let (e, took) = timed_send(&base_config(&format!("127.0.0.1:{port}"), "none"), timeout);
    assert!(
        e.contains("reply line longer than") && took < timeout,
        "{e} {took:?}"
    );

    for h in [h1, h2, h3, h4, h5] {
        h.join().expect("fake server");
    }
}
