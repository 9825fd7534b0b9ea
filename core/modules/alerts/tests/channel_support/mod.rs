//! What the syslog and email channel tests share: temporary directories,
//! processes killed when dropped, free loopback ports, a test PKI, and
//! alerts (plain and hostile).
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use honeybee_alerts::alert::{Alert, Digest, Severity};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A directory under the target dir, removed when dropped unless the test
/// failed (then kept and its path printed, for the logs in it).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "alerts-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process, killed (by its own pid) and reaped when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free for both TCP and UDP right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// Polls `f` every 50 ms until it gives `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
        .is_ok()
}

/// The full path of `program` (PATH, then /usr/sbin and /sbin).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// A CA, a server certificate it signed (`localhost`, `127.0.0.1`), and
/// an unrelated CA, as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, key).expect("self-signed CA")
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let issuer = ca("HoneyBee alerts test CA");
        let other = ca("Somebody else's CA");
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &issuer).expect("sign server cert");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
            other_ca: dir.join("other-ca.pem"),
        };
        std::fs::write(&pki.ca, issuer.pem()).expect("write CA");
        std::fs::write(&pki.other_ca, other.pem()).expect("write CA");
        std::fs::write(&pki.cert, cert.pem()).expect("write cert");
        std::fs::write(&pki.key, key.serialize_pem()).expect("write key");
        pki
    }
}

/// A first alert of rule `tripwire` with the usual fields.
pub fn alert(id: &str, title: &str) -> Alert {
    Alert {
        id: format!("tripwire/{id}"),
        rule: "tripwire".into(),
        severity: Severity::High,
        time: "2025-05-01T12:00:00.123Z".into(),
        title: title.into(),
        fields: vec![
            ("event.type".into(), "cowrie.login.success".into()),
            ("node.id".into(), "node-7".into()),
            ("node.name".into(), "web-1".into()),
            ("pot.id".into(), "cowrie".into()),
            ("source.ip".into(), "203.0.113.9".into()),
            ("source.port".into(), "50123".into()),
            ("destination.port".into(), "22".into()),
            ("user.name".into(), "root".into()),
            ("data.password".into(), "123456".into()),
        ],
        digest: None,
        ecs: serde_json::json!({"event": {"kind": "alert"}}),
    }
}

/// An alert as an attacker would shape it, bypassing the rules' cleaning:
/// CR/LF (with a forged syslog line and mail headers) in the user name,
/// a 64 KiB field, escape sequences, NUL, DEL, U+2028, quotes, brackets,
/// backslashes, pipes and equals signs.
pub fn hostile_alert(id: &str) -> Alert {
    let mut a = alert(
        id,
        "login as \"root]\\\r\nBcc: evil@example.org\r\n.\r\n|x=y",
    );
    a.severity = Severity::Critical;
    a.fields = vec![
        ("event.type".into(), "cowrie.login|success".into()),
        ("node.id".into(), "node-7".into()),
        ("source.ip".into(), "203.0.113.9".into()),
        (
            "user.name".into(),
            "root\r\n<13>1 2025-05-01T00:00:00Z forged - - - - FORGED\r\n.\r\nRCPT TO:<evil@example.org>"
                .into(),
        ),
        ("data.big".into(), "B".repeat(64 * 1024)),
        (
            "data.controls".into(),
            "a\u{1b}[31mred\0nul\u{7f}del\u{2028}ls\ttab\"q\"]b\\s|p=e".into(),
        ),
        ("data.last".into(), "the end".into()),
    ];
    a
}

/// A digest alert.
pub fn digest_alert(id: &str) -> Alert {
    let mut a = alert(id, "tripwire: 41 more logins on web-1");
    a.id = format!("tripwire/203.0.113.9/digest/{id}");
    a.severity = Severity::Medium;
    a.digest = Some(Digest {
        count: 41,
        nodes: 2,
        types: [("cowrie.login.failed".to_string(), 41)].into(),
        window_secs: 600,
    });
    a
}
