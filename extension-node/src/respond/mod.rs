//! The first exchanges of each protocol, answered as the profile's product
//! would, so that scanners name the service and people go on to type
//! credentials, which are recorded.
//!
//! A [`Dialogue`] is one connection's responder: [`Dialogue::greet`] gives
//! the bytes to send on connect (for protocols where the server speaks
//! first), and [`Dialogue::input`] takes everything the client sent so far
//! and appends the answer to an [`Out`]. Responders are sans-I/O state
//! machines over byte slices, so they are unit tested and fuzzed without
//! sockets (`fuzz/`: `respond`). Each holds a few fixed-size fields; what
//! the client sent stays in the tripwire's one read buffer (at most
//! [`crate::config::MAX_READ`] bytes), answers are built from fixed
//! templates into an [`Out`] of at most [`MAX_REPLY`] bytes, and attacker
//! bytes are never copied into an answer except through a strict filter
//! (an IMAP tag, a MySQL user name).
//!
//! Credentials are kept as [`Login`]s, at most [`MAX_LOGINS`] a connection;
//! the tripwire turns each into an `extension.login` event.

mod base64;
mod credssp;
mod der;
mod ftp;
mod http;
mod line;
mod mail;
mod mssql;
mod mysql;
mod ntlm;
mod printer;
mod rdp;
mod redis;
mod smb;
mod ssh;
mod telnet;
mod tls;
mod vnc;

pub use ssh::HostKey;
pub use tls::Identity;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::banner::service_name;
use crate::fingerprint::clean;
use crate::profile::Profile;

/// Most bytes of one answer.
pub const MAX_REPLY: usize = 4096;
/// Most login attempts recorded from one connection (real servers hang up
/// after about three failures too).
pub const MAX_LOGINS: usize = 3;
/// Longest credential field kept.
pub const MAX_CREDENTIAL: usize = 128;
/// Longest banner override accepted.
pub const MAX_BANNER: usize = 200;
/// Most client messages answered in one [`Dialogue::input`] call, so that
/// one read full of pipelined commands costs a bounded amount of work.
const MAX_MESSAGES_PER_READ: usize = 32;

/// An answer under construction, never longer than [`MAX_REPLY`]: writes
/// past it are dropped (and counted by [`Out::truncated`]).
#[derive(Debug, Default)]
pub struct Out {
    buf: Vec<u8>,
    truncated: bool,
}

impl Out {
    /// An empty answer.
    pub fn new() -> Out {
        Out::default()
    }

    /// Appends `bytes`, or as much of them as fits.
    pub fn push(&mut self, bytes: &[u8]) {
        let room = MAX_REPLY.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.buf
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
    }

    /// Appends text.
    pub fn text(&mut self, s: &str) {
        self.push(s.as_bytes());
    }

    /// The answer so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether something did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Empties the answer, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.truncated = false;
    }
}

/// What the connection does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep reading: the protocol expects the client to say more.
    More,
    /// The client has said what it will say before it hears something we
    /// cannot give (a TLS handshake, say): read what follows within a
    /// moment, then close.
    Linger,
    /// Send the answer, then close.
    Close,
}

/// Credentials a client tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// "ftp", "telnet", "smtp", "pop3", "imap", "http", "http-proxy", "redis",
    /// "mysql", "mssql", "vnc", "rdp", "smb".
    pub protocol: &'static str,
    /// The user name, cleaned of control characters; may be empty where
    /// the protocol has none (Redis `AUTH password`, VNC).
    pub username: String,
    /// Further fields: `password`, or a hash or challenge-response
    /// (`password_hash`, `challenge`, `response`), `domain`, …
    pub fields: Vec<(&'static str, String)>,
}

impl Login {
    /// A login of `protocol` by `username` (cleaned and cut).
    pub fn new(protocol: &'static str, username: &[u8]) -> Login {
        Login {
            protocol,
            username: clean(username, MAX_CREDENTIAL),
            fields: Vec::new(),
        }
    }

    /// Adds a field from client bytes (cleaned and cut), at most four.
    pub fn with(mut self, name: &'static str, value: &[u8]) -> Login {
        if self.fields.len() < 4 {
            self.fields.push((name, clean(value, MAX_CREDENTIAL)));
        }
        self
    }

    /// Adds a field as lowercase hex (hashes, challenges), at most four.
    pub fn with_hex(mut self, name: &'static str, value: &[u8]) -> Login {
        if self.fields.len() < 4 {
            let v = value.get(..MAX_CREDENTIAL / 2).unwrap_or(value);
            self.fields
                .push((name, v.iter().map(|b| format!("{b:02x}")).collect()));
        }
        self
    }

    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The login as event data (without addresses).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("protocol".into(), self.protocol.into());
        m.insert("username".into(), self.username.clone().into());
        for (k, v) in &self.fields {
            m.insert((*k).into(), v.clone().into());
        }
        m
    }
}

/// Banner overrides by port: the product line an operator wants instead of
/// the profile's (see [`Dialogue::new`] for what it replaces per protocol).
pub type Banners = BTreeMap<u16, String>;

/// Checks a banner override: printable ASCII, one line, at most
/// [`MAX_BANNER`] bytes, not empty.
pub fn check_banner(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty".into());
    }
    if text.len() > MAX_BANNER {
        return Err(format!("longer than {MAX_BANNER} bytes"));
    }
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "{c:?} is not printable ASCII (a banner is one line of plain text)"
        ));
    }
    Ok(())
}

/// What a responder knows about its connection.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Which machine we imitate.
    pub profile: Profile,
    /// The port the client connected to.
    pub port: u16,
    /// The operator's banner override for this port.
    pub banner: Option<&'a str>,
    /// The client's address, as servers show it in their errors.
    pub peer: IpAddr,
    /// Seconds since the Unix epoch, for `Date:` headers.
    pub now: u64,
    /// Per-connection randomness (challenges, connection ids).
    pub seed: u64,
    /// Randomness fixed for the agent's run, for what a real server keeps
    /// from one connection to the next (the SMB server GUID).
    pub host_id: u64,
    /// Redis answers `PING` and `INFO` without a password (an open server)
    /// instead of `-NOAUTH`.
    pub redis_open: bool,
    /// The TLS certificate, where this connection may speak TLS (`None`:
    /// no identity, or too many TLS sessions at once; the client's hello
    /// is then only fingerprinted).
    pub tls: Option<&'a Identity>,
    /// The SSH host key (`None`: SSH ports send their banner only).
    pub ssh_key: Option<&'a HostKey>,
}

/// One connection's responder.
#[derive(Debug)]
pub struct Dialogue {
    kind: Kind,
    consumed: usize,
    logins: Vec<Login>,
    messages: u32,
}

#[derive(Debug)]
enum Kind {
    Ftp(ftp::Ftp),
    Telnet(telnet::Telnet),
    Smtp(mail::Smtp),
    Pop3(mail::Pop3),
    Imap(mail::Imap),
    Http(http::Http),
    Redis(redis::Redis),
    Mysql(mysql::Mysql),
    Mssql(mssql::Mssql),
    Vnc(vnc::Vnc),
    Rdp(rdp::Rdp),
    Smb(smb::Smb),
    Lpd(printer::Lpd),
    Pjl(printer::Pjl),
    Tls(Box<tls::TlsLayer>),
    Ssh(Box<ssh::Ssh>),
    CredSsp(credssp::CredSsp),
    /// SSH without a host key, rsync, and others that speak first but whose next step we cannot take.
    Banner,
    /// Client-first protocols we do not answer (TLS, unknown ports).
    Silent,
}

/// Where a responder records logins, bounded by [`MAX_LOGINS`].
#[derive(Debug)]
pub struct Logins<'a> {
    pub(crate) list: &'a mut Vec<Login>,
}

impl Logins<'_> {
    /// Records `login` unless [`MAX_LOGINS`] were recorded already.
    pub fn add(&mut self, login: Login) {
        if self.list.len() < MAX_LOGINS {
            self.list.push(login);
        }
    }

    /// How many were recorded.
    pub fn count(&self) -> usize {
        self.list.len()
    }
}

/// Counts a refused login; the connection ends after [`MAX_LOGINS`] of
/// them, as real servers hang up after about three.
pub(super) fn failed(failures: &mut u8) -> Step {
    *failures = failures.saturating_add(1);
    if usize::from(*failures) >= MAX_LOGINS {
        Step::Close
    } else {
        Step::More
    }
}

/// SplitMix64's finalizer, to derive several values from one seed.
pub(super) fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether `port` has a responder (a port where a silent server would be
/// a giveaway); elsewhere the tripwire only listens.
pub fn answers(port: u16) -> bool {
    matches!(
        service_name(port),
        "ftp"
            | "telnet"
            | "smtp"
            | "pop3"
            | "imap"
            | "http"
            | "http-proxy"
            | "winrm"
            | "ipp"
            | "printer"
            | "jetdirect"
            | "https"
            | "redis"
            | "mysql"
            | "mssql"
            | "vnc"
            | "rdp"
            | "smb"
            | "netbios-ssn"
            | "ssh"
            | "rsync"
    )
}

impl Dialogue {
    /// The responder for a connection to `cx.port`, chosen by the port's
    /// usual service.
    pub fn new(cx: &Context<'_>) -> Dialogue {
        let kind = match service_name(cx.port) {
            "ftp" => Kind::Ftp(ftp::Ftp::default()),
            "telnet" => Kind::Telnet(telnet::Telnet::default()),
            "smtp" => Kind::Smtp(mail::Smtp::default()),
            "pop3" => Kind::Pop3(mail::Pop3::default()),
            "imap" => Kind::Imap(mail::Imap::default()),
            "http" | "http-proxy" | "winrm" | "ipp" => Kind::Http(http::Http::new(cx)),
            "printer" => Kind::Lpd(printer::Lpd::default()),
            // HTTPS: the profile's web server (that of port 80) inside TLS.
            "https" => match cx.tls {
                Some(id) => {
                    let inner = Dialogue::new(&Context { port: 80, ..*cx });
                    tls::TlsLayer::new(id, inner).map_or(Kind::Silent, |l| Kind::Tls(Box::new(l)))
                }
                None => Kind::Silent,
            },
            "jetdirect" => Kind::Pjl(printer::Pjl::default()),
            "redis" => Kind::Redis(redis::Redis::default()),
            "mysql" => Kind::Mysql(mysql::Mysql::default()),
            "mssql" => Kind::Mssql(mssql::Mssql::default()),
            "vnc" => Kind::Vnc(vnc::Vnc::default()),
            "rdp" => Kind::Rdp(rdp::Rdp::default()),
            "smb" | "netbios-ssn" => Kind::Smb(smb::Smb::default()),
            "ssh" if cx.ssh_key.is_some() => Kind::Ssh(Box::new(ssh::Ssh::new(cx))),
            "ssh" | "rsync" => Kind::Banner,
            _ => Kind::Silent,
        };
        Dialogue {
            kind,
            consumed: 0,
            logins: Vec::new(),
            messages: 0,
        }
    }

    /// The bytes to send on connect (none where the client speaks first),
    /// and whether to go on reading ([`Step::Close`]: a server that refuses
    /// the client outright).
    pub fn greet(&mut self, cx: &Context<'_>, out: &mut Out) -> Step {
        let mut step = Step::More;
        match &mut self.kind {
            Kind::Ftp(_) => ftp::greet(cx, out),
            Kind::Telnet(_) => telnet::greet(cx, out),
            Kind::Smtp(_) => mail::smtp_greet(cx, out),
            Kind::Pop3(_) => mail::pop3_greet(cx, out),
            Kind::Imap(_) => mail::imap_greet(cx, out),
            Kind::Mysql(m) => step = m.greet(cx, out),
            Kind::Vnc(_) => vnc::greet(out),
            Kind::Banner | Kind::Ssh(_) => banner_line(cx, out),
            Kind::Http(_)
            | Kind::Redis(_)
            | Kind::Mssql(_)
            | Kind::Rdp(_)
            | Kind::Smb(_)
            | Kind::Lpd(_)
            | Kind::Pjl(_)
            | Kind::Tls(_)
            | Kind::CredSsp(_)
            | Kind::Silent => {}
        }
        step
    }

    /// Takes everything the client sent so far (`all`, of which the first
    /// bytes were seen by earlier calls) and appends the answer to `out`.
    pub fn input(&mut self, cx: &Context<'_>, all: &[u8], out: &mut Out) -> Step {
        for _ in 0..MAX_MESSAGES_PER_READ {
            let rest = all.get(self.consumed..).unwrap_or_default();
            if rest.is_empty() {
                return Step::More;
            }
            let mut logins = Logins {
                list: &mut self.logins,
            };
            let (used, step) = match &mut self.kind {
                Kind::Ftp(s) => s.input(cx, rest, out, &mut logins),
                Kind::Telnet(s) => s.input(cx, rest, out, &mut logins),
                Kind::Smtp(s) => s.input(cx, rest, out, &mut logins),
                Kind::Pop3(s) => s.input(cx, rest, out, &mut logins),
                Kind::Imap(s) => s.input(cx, rest, out, &mut logins),
                Kind::Http(s) => s.input(cx, rest, out, &mut logins),
                Kind::Redis(s) => s.input(cx, rest, out, &mut logins),
                Kind::Mysql(s) => s.input(cx, rest, out, &mut logins),
                Kind::Mssql(s) => s.input(cx, rest, out, &mut logins),
                Kind::Vnc(s) => s.input(cx, rest, out, &mut logins),
                Kind::Rdp(s) => s.input(cx, rest, out, &mut logins),
                Kind::Smb(s) => s.input(cx, rest, out, &mut logins),
                Kind::Lpd(s) => s.input(cx, rest, out, &mut logins),
                Kind::Pjl(s) => s.input(cx, rest, out, &mut logins),
                Kind::Tls(s) => s.input(cx, rest, out, &mut logins),
                Kind::Ssh(s) => s.input(cx, rest, out, &mut logins),
                Kind::CredSsp(s) => s.input(cx, rest, out, &mut logins),
                Kind::Banner | Kind::Silent => (rest.len(), Step::Linger),
            };
            self.consumed = self.consumed.saturating_add(used).min(all.len());
            if used > 0 {
                self.messages = self.messages.saturating_add(1);
            }
            self.start_tls(cx);
            if step != Step::More || used == 0 {
                return step;
            }
        }
        Step::More
    }

    /// Remote Desktop goes on in TLS once its negotiation is confirmed:
    /// the rest of the connection is a TLS session around CredSSP (Network
    /// Level Authentication, up to the password).
    fn start_tls(&mut self, cx: &Context<'_>) {
        let (Kind::Rdp(rdp), Some(id)) = (&self.kind, cx.tls) else {
            return;
        };
        if !rdp.confirmed() {
            return;
        }
        let nla = Dialogue {
            kind: Kind::CredSsp(credssp::CredSsp::default()),
            consumed: 0,
            logins: Vec::new(),
            messages: 0,
        };
        if let Some(layer) = tls::TlsLayer::new(id, nla) {
            self.kind = Kind::Tls(Box::new(layer));
        }
    }

    /// Whether this responder only listens.
    pub fn is_silent(&self) -> bool {
        matches!(self.kind, Kind::Silent)
    }

    /// The logins recorded so far.
    pub fn logins(&self) -> &[Login] {
        &self.logins
    }

    /// The logins recorded so far, handed over (a TLS layer passes its
    /// inner responder's on).
    fn take_logins(&mut self) -> Vec<Login> {
        std::mem::take(&mut self.logins)
    }

    /// Client messages answered so far.
    pub fn messages(&self) -> u32 {
        self.messages
    }
}

/// The banner line of SSH and rsync ports (the operator's override or the
/// profile's).
fn banner_line(cx: &Context<'_>, out: &mut Out) {
    match (cx.banner, crate::banner::banner(cx.port, cx.profile)) {
        (Some(text), _) => {
            out.text(text);
            out.push(if cx.port == 873 { b"\n" } else { b"\r\n" });
        }
        (None, Some(b)) => out.push(b),
        (None, None) => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A context on loopback at a fixed time.
    pub fn cx(port: u16, profile: Profile) -> Context<'static> {
        Context {
            profile,
            port,
            banner: None,
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
            now: 1_796_665_800,
            seed: 0x5eed_1234_abcd_0001,
            host_id: 0x4057_1d00_0000_0001,
            redis_open: false,
            tls: None,
            ssh_key: None,
        }
    }

    /// Greets, then feeds `chunks` as the tripwire does (everything so far
    /// each time); returns all answers, the logins and the last step.
    pub fn run_bytes(cx: &Context<'_>, chunks: &[&[u8]]) -> (Vec<u8>, Vec<Login>, Step) {
        let mut d = Dialogue::new(cx);
        let mut out = Out::new();
        let mut all = Vec::new();
        let mut step = d.greet(cx, &mut out);
        let mut answers = out.bytes().to_vec();
        if step == Step::Close {
            return (answers, d.logins().to_vec(), step);
        }
        for chunk in chunks {
            all.extend_from_slice(chunk);
            out.clear();
            step = d.input(cx, &all, &mut out);
            answers.extend_from_slice(out.bytes());
            if step != Step::More {
                break;
            }
        }
        (answers, d.logins().to_vec(), step)
    }

    /// [`run_bytes`] with the answers as text.
    pub fn run(cx: &Context<'_>, chunks: &[&[u8]]) -> (String, Vec<Login>, Step) {
        let (out, logins, step) = run_bytes(cx, chunks);
        (String::from_utf8_lossy(&out).into_owned(), logins, step)
    }

    #[test]
    fn answers_names_exactly_the_ports_with_a_responder() {
        let id = Identity::new("WS01", 0).unwrap();
        for port in 0..=u16::MAX {
            let c = Context {
                tls: Some(&id),
                ..cx(port, Profile::WindowsWorkstation)
            };
            if !answers(port) {
                assert!(Dialogue::new(&c).is_silent(), "{port}");
            } else if service_name(port) != "https" {
                assert!(!Dialogue::new(&c).is_silent(), "{port}");
            }
        }
    }

    #[test]
    fn out_never_grows_past_its_cap() {
        let mut out = Out::new();
        out.push(&[b'x'; MAX_REPLY - 1]);
        assert!(!out.truncated());
        out.push(b"abc");
        assert!(out.truncated());
        assert_eq!(out.bytes().len(), MAX_REPLY);
        out.clear();
        assert!(out.bytes().is_empty() && !out.truncated());
    }

    #[test]
    fn banner_overrides_are_one_printable_line() {
        assert!(check_banner("220 ProFTPD 1.3.8 Server").is_ok());
        assert!(check_banner("").is_err());
        assert!(check_banner("a\r\nb").unwrap_err().contains("printable"));
        assert!(check_banner(&"x".repeat(MAX_BANNER + 1)).is_err());
        assert!(check_banner("caf\u{e9}").is_err());
    }

    #[test]
    fn logins_are_bounded_per_connection() {
        let lines: Vec<u8> = (0..20)
            .flat_map(|i| format!("USER u{i}\r\nPASS p\r\n").into_bytes())
            .collect();
        let (_, logins, _) = run(&cx(21, Profile::Nas), &[&lines]);
        assert_eq!(logins.len(), MAX_LOGINS);
    }

    #[test]
    fn pipelined_commands_are_answered_a_bounded_number_at_a_time() {
        let lines = b"NOOP\r\n".repeat(100);
        let c = cx(21, Profile::LinuxServer);
        let mut d = Dialogue::new(&c);
        let mut out = Out::new();
        assert_eq!(d.input(&c, &lines, &mut out), Step::More);
        assert_eq!(d.messages(), MAX_MESSAGES_PER_READ as u32);
        out.clear();
        d.input(&c, &lines, &mut out);
        assert_eq!(d.messages(), 2 * MAX_MESSAGES_PER_READ as u32);
    }

    /// Every responder of every profile, fed each truncation of hostile
    /// and random input, a megabyte of one byte, and control sequences:
    /// answers stay within their cap and text protocols send back no
    /// control character the client sent. (The `respond` fuzz target
    /// searches further.)
    #[test]
    fn every_responder_survives_truncated_oversized_and_random_input() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut random = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: [&[u8]; 6] = [
            b"USER \x1b[2J\r\nPASS \x1b]0;x\x07\r\n",
            b"GET /\x1b[31m HTTP/1.1\r\nAuthorization: Basic \x1b\r\n\r\n",
            b"*2\r\n$4\r\nAUTH\r\n$3\r\n\x1b[H\r\n",
            b"a1 LOGIN \"\x1b\" \"\x1b\"\r\n",
            b"\x03\0\0*%\xe0\0\0\0\0\0Cookie: mstshash=\x1b[2J\r\n\x01\0\x08\0\x03\0\0\0",
            b"\0\0\0\xa4\xffSMBr\0\0\0\0\x08\x01\x40",
        ];
        let text_ports = [21, 23, 25, 80, 110, 143, 3128, 5985, 6379];
        let host_key = HostKey::new().unwrap();
        // An SSH client's version line, KEXINIT and key share.
        let ssh_seed = ssh::tests::client_hello();
        for profile in crate::profile::PROFILES {
            for port in [
                21, 22, 23, 25, 80, 110, 139, 143, 445, 515, 631, 1433, 3128, 3306, 3389, 5900,
                5985, 6379, 9100,
            ] {
                let c = Context {
                    profile,
                    ssh_key: Some(&host_key),
                    ..cx(port, profile)
                };
                let mut inputs: Vec<Vec<u8>> = Vec::new();
                for seed in seeds.iter().copied().chain([&ssh_seed[..]]) {
                    for end in 0..=seed.len() {
                        inputs.push(seed[..end].to_vec());
                    }
                }
                for _ in 0..50 {
                    let len = (random() % 300) as usize;
                    inputs.push((0..len).map(|_| random() as u8).collect());
                }
                inputs.push(vec![b'A'; 1 << 20]);
                for input in &inputs {
                    let mut d = Dialogue::new(&c);
                    let mut out = Out::new();
                    d.greet(&c, &mut out);
                    for chunk in [&input[..input.len() / 2], &input[..]] {
                        out.clear();
                        d.input(&c, chunk, &mut out);
                        assert!(out.bytes().len() <= MAX_REPLY);
                        if text_ports.contains(&port) {
                            assert!(
                                !out.bytes().contains(&0x1b),
                                "{profile} {port} reflected ESC: {:?}",
                                String::from_utf8_lossy(out.bytes())
                            );
                        }
                    }
                    assert!(d.logins().len() <= MAX_LOGINS);
                }
            }
        }
    }

    #[test]
    fn ssh_and_unknown_ports_linger_after_the_first_bytes() {
        let (out, _, step) = run(&cx(22, Profile::Router), &[b"SSH-2.0-Go\r\n"]);
        assert_eq!(out, "SSH-2.0-dropbear_2022.83\r\n");
        assert_eq!(step, Step::Linger);
        let (out, _, step) = run(&cx(4444, Profile::Router), &[b"x"]);
        assert_eq!((out.as_str(), step), ("", Step::Linger));
        let mut c = cx(22, Profile::LinuxServer);
        c.banner = Some("SSH-2.0-OpenSSH_8.4");
        assert_eq!(run(&c, &[]).0, "SSH-2.0-OpenSSH_8.4\r\n");
    }
}
