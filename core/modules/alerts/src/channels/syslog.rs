//! Syslog: one RFC 5424 message per alert, over UDP, TCP or TLS.
//!
//! ```toml
//! [[channel]]
//! name = "siem"
//! type = "syslog"
//! address = "siem.example.org:6514"
//! transport = "tls"        # "udp" (default), "tcp" or "tls"
//! format = "cef"           # "rfc5424" (default) or "cef"
//! ca_file = "/etc/honeybee/siem-ca.pem"
//! facility = "local3"      # or a number 0-23; default local0
//! ```
//!
//! `format = "rfc5424"` sends `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID
//! MSGID [honeybee@32473 id="…" rule="…" severity="…" event_type="…" …]
//! TITLE`, the alert's fields as structured data and the title (and a
//! digest's summary) as the message. `format = "cef"` carries an ArcSight
//! Common Event Format record (`CEF:0|HoneyBee|honeybee|…`) as the message
//! of the same RFC 5424 line, without structured data.
//!
//! Every value is cleaned again here ([`crate::sanitize::clean`]): a CR or
//! LF from event data is sent as the visible `\r`/`\n`, never raw, so an
//! alert is always exactly one syslog message. A message is at most
//! [`MAX_MESSAGE`] bytes: long values are cut visibly (`…[+N bytes]`) and
//! fields that no longer fit are dropped with a `truncated="N more
//! fields"` parameter (`cs6Label=truncated` in CEF).
//!
//! UDP sends one datagram per alert. TCP and TLS (1.3, rustls, the
//! receiver's certificate checked against `ca_file` or the Mozilla roots)
//! use octet-counting framing (RFC 6587 §3.4.1: `LEN SP MSG`) on a
//! connection that is opened by the first alert, kept, checked before each
//! alert and opened again after any failure. Nothing is connected when the
//! channel is opened, so the receiver may be down at start.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use serde::Deserialize;

use super::{Channel, Common};
use crate::alert::Alert;
use crate::sanitize::{clean, MAX_FIELD, MAX_TITLE};

/// Longest syslog message sent (header, structured data and MSG), in
/// bytes; also the largest UDP datagram. rsyslog's default
/// `maxMessageSize` is 8 KiB too.
pub const MAX_MESSAGE: usize = 8192;

/// The SD-ID of the structured data element (32473 is the private
/// enterprise number RFC 5612 reserves for documentation and examples).
pub const SD_ID: &str = "honeybee@32473";

/// Longest id and rule name carried, in bytes (cut visibly).
const MAX_NAME: usize = 256;

/// The keys of a `type = "syslog"` `[[channel]]` table besides the common
/// ones (`name`, `type`, `max_per_minute`, `timeout`, `min_severity`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// The receiver, `host:port` (`[v6]:port` for an IPv6 address). The
    /// name is resolved at each connection.
    pub address: String,
    /// `"udp"` (the default), `"tcp"` or `"tls"`.
    #[serde(default)]
    pub transport: Option<String>,
    /// `"rfc5424"` (the default) or `"cef"`.
    #[serde(default)]
    pub format: Option<String>,
    /// TLS only: a PEM file of the CA certificates the receiver's
    /// certificate must chain to; the Mozilla roots when absent.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// TLS only: the name the receiver's certificate must carry; the host
    /// part of `address` when absent.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The syslog facility: a name (`kern`, `user`, `mail`, `daemon`,
    /// `auth`, `syslog`, `lpr`, `news`, `uucp`, `cron`, `authpriv`, `ftp`,
    /// `ntp`, `security`, `console`, `clock`, `local0` … `local7`) or a
    /// number 0–23. Default `local0` (16).
    #[serde(default)]
    pub facility: Option<Facility>,
    /// The APP-NAME field: 1–48 printable ASCII characters, no space.
    /// Default `honeybee-alerts`.
    #[serde(default)]
    pub app_name: Option<String>,
    /// The HOSTNAME field: 1–255 printable ASCII characters, no space.
    /// Default this machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// A syslog facility as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Facility {
    /// A number, 0–23.
    Number(i64),
    /// A name such as `local0`.
    Name(String),
}

const FACILITIES: [(&str, u8); 26] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("security", 13),
    ("audit", 13),
    ("console", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
    ("alert", 14),
];

impl Facility {
    /// The facility's number, or an error naming the key.
    pub fn code(&self) -> Result<u8, String> {
        match self {
            Facility::Number(n) => u8::try_from(*n)
                .ok()
                .filter(|n| *n <= 23)
                .ok_or_else(|| format!("facility = {n}: expected a number from 0 to 23")),
            Facility::Name(name) => FACILITIES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, c)| *c)
                .ok_or_else(|| {
                    format!(
                        "facility = {:?}: expected local0 … local7, a name such as daemon or auth, or a number 0-23",
                        clean(name, 64)
                    )
                }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Rfc5424,
    Cef,
}

/// Checks `cfg` and builds the channel. Nothing is connected yet: the
/// first [`Channel::send`] connects.
pub fn open(common: &Common, cfg: &SyslogConfig) -> Result<Box<dyn Channel>, String> {
    let err = |e: String| format!("syslog channel {}: {e}", common.name);
    let transport = match cfg.transport.as_deref().unwrap_or("udp") {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        other => {
            return Err(err(format!(
                "transport = {:?}: expected \"udp\", \"tcp\" or \"tls\"",
                clean(other, 64)
            )))
        }
    };
    let format = match cfg.format.as_deref().unwrap_or("rfc5424") {
        "rfc5424" => Format::Rfc5424,
        "cef" => Format::Cef,
        other => {
            return Err(err(format!(
                "format = {:?}: expected \"rfc5424\" or \"cef\"",
                clean(other, 64)
            )))
        }
    };
    check_address(&cfg.address).map_err(err)?;
    if transport != Transport::Tls {
        for (key, set) in [
            ("ca_file", cfg.ca_file.is_some()),
            ("server_name", cfg.server_name.is_some()),
        ] {
            if set {
                return Err(err(format!("{key} is only used with transport = \"tls\"")));
            }
        }
    }
    let tls = match transport {
        Transport::Tls => Some((
            crate::tls::client_config(cfg.ca_file.as_deref()).map_err(err)?,
            crate::tls::server_name(&cfg.address, cfg.server_name.as_deref())
                .map_err(|e| err(format!("server_name: {e}")))?,
        )),
        _ => None,
    };
    let facility = match &cfg.facility {
        Some(f) => f.code().map_err(err)?,
        None => 16,
    };
    let app_name = match &cfg.app_name {
        Some(a) => header_token("app_name", a, 48).map_err(err)?,
        None => "honeybee-alerts".to_string(),
    };
    let hostname = match &cfg.hostname {
        Some(h) => header_token("hostname", h, 255).map_err(err)?,
        None => local_hostname(),
    };
    Ok(Box::new(Syslog {
        name: common.name.clone(),
        address: cfg.address.clone(),
        timeout: common.timeout,
        transport,
        format,
        facility,
        app_name,
        hostname,
        tls,
        conn: None,
    }))
}

fn check_address(address: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "address = {:?}: expected host:port (or [v6]:port)",
            clean(address, 256)
        )
    };
    let (host, port) = match address.strip_prefix('[') {
        Some(rest) => {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            (h, p)
        }
        None => address.rsplit_once(':').ok_or_else(bad)?,
    };
    if host.is_empty()
        || host.contains(':') && !address.starts_with('[')
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
        || port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(bad());
    }
    Ok(())
}

/// `value` if it is 1..=`max` printable ASCII characters without space
/// (an RFC 5424 header field), else an error naming `key`.
fn header_token(key: &str, value: &str, max: usize) -> Result<String, String> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(format!(
            "{key} = {:?}: expected 1 to {max} printable ASCII characters without spaces",
            clean(value, 300)
        ));
    }
    Ok(value.to_string())
}

/// This machine's host name as an RFC 5424 HOSTNAME, or `-` if unknown.
fn local_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(255)
        .collect();
    if name.is_empty() {
        "-".to_string()
    } else {
        name
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<ClientConnection>, TcpStream),
}

struct Syslog {
    name: String,
    address: String,
    timeout: Duration,
    transport: Transport,
    format: Format,
    facility: u8,
    app_name: String,
    hostname: String,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    conn: Option<Conn>,
}

impl Channel for Syslog {
    fn send(&mut self, alert: &Alert) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let message = render(
            alert,
            self.format,
            self.facility,
            &self.hostname,
            &self.app_name,
            std::process::id(),
        );
        let frame = frame(self.transport, message);
        // A kept connection first; if the receiver closed it or writing
        // fails, a fresh one.
        if let Some(mut conn) = self.conn.take() {
            if alive(&mut conn) && write_frame(&mut conn, &frame, deadline).is_ok() {
                self.conn = Some(conn);
                return Ok(());
            }
        }
        let result = self
            .connect(deadline)
            .and_then(|mut conn| write_frame(&mut conn, &frame, deadline).map(|()| conn));
        match result {
            Ok(conn) => {
                self.conn = Some(conn);
                Ok(())
            }
            Err(e) => Err(format!(
                "syslog channel {}: {} ({}): {e}",
                self.name,
                self.address,
                match self.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                }
            )),
        }
    }
}

impl Syslog {
    fn connect(&self, deadline: Instant) -> Result<Conn, String> {
        let addrs: Vec<SocketAddr> = self
            .address
            .to_socket_addrs()
            .map_err(|e| format!("resolving: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err("resolving: no address".into());
        }
        if self.transport == Transport::Udp {
            let mut last = String::new();
            for addr in &addrs {
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                match UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|()| s)) {
                    Ok(s) => return Ok(Conn::Udp(s)),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            return Err(last);
        }
        let sock = crate::deadline::connect(&addrs, deadline)?;
        let _ = sock.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::Tcp(sock)),
            Some((config, server_name)) => {
                let mut sock = sock;
                let mut conn = ClientConnection::new(config.clone(), server_name.clone())
                    .map_err(|e| format!("TLS: {e}"))?;
                while conn.is_handshaking() {
                    set_timeouts(&sock, deadline)?;
                    conn.complete_io(&mut sock)
                        .map_err(|e| format!("TLS handshake: {}", crate::deadline::io_text(&e)))?;
                }
                Ok(Conn::Tls(Box::new(conn), sock))
            }
        }
    }
}

fn set_timeouts(sock: &TcpStream, deadline: Instant) -> Result<(), String> {
    let left = crate::deadline::remaining(deadline)?;
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|e| e.to_string())
}

/// Whether a kept TCP or TLS connection is still open: the receiver sends
/// nothing in syslog, so readable data or end of stream mean it closed or
/// misbehaves (TLS records such as session tickets are consumed).
fn alive(conn: &mut Conn) -> bool {
    match conn {
        Conn::Udp(_) => true,
        Conn::Tcp(sock) => {
            if sock.set_nonblocking(true).is_err() {
                return false;
            }
            let mut probe = [0u8; 1];
            let open = matches!(sock.peek(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock);
            sock.set_nonblocking(false).is_ok() && open
        }
        Conn::Tls(tls, sock) => {
            if sock.set_nonblocking(true).is_err() {
                return false;
            }
            let mut open = true;
            // At most a few records: a receiver that keeps sending is not
            // a syslog receiver.
            for _ in 0..16 {
                match tls.read_tls(sock) {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(_) => match tls.process_new_packets() {
                        Ok(state) if state.peer_has_closed() => {
                            open = false;
                            break;
                        }
                        Ok(state) => {
                            let pending = state.plaintext_bytes_to_read();
                            if pending > 0 {
                                let mut sink = vec![0u8; pending.min(16 * 1024)];
                                let _ = tls.reader().read(&mut sink);
                            }
                        }
                        Err(_) => {
                            open = false;
                            break;
                        }
                    },
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            }
            sock.set_nonblocking(false).is_ok() && open
        }
    }
}

fn write_frame(conn: &mut Conn, frame: &[u8], deadline: Instant) -> Result<(), String> {
    match conn {
        Conn::Udp(sock) => {
            sock.set_write_timeout(Some(crate::deadline::remaining(deadline)?))
                .map_err(|e| e.to_string())?;
            let sent = sock.send(frame).map_err(|e| crate::deadline::io_text(&e))?;
            if sent != frame.len() {
                return Err(format!("sent {sent} of {} bytes", frame.len()));
            }
            Ok(())
        }
        Conn::Tcp(sock) => {
            let mut rest = frame;
            while !rest.is_empty() {
                set_timeouts(sock, deadline)?;
                match sock.write(rest) {
                    Ok(0) => return Err("connection closed".into()),
                    Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("writing: {}", crate::deadline::io_text(&e))),
                }
            }
            Ok(())
        }
        Conn::Tls(tls, sock) => {
            let mut rest = frame;
            while !rest.is_empty() {
                let n = tls.writer().write(rest).map_err(|e| format!("TLS: {e}"))?;
                rest = rest.get(n..).unwrap_or_default();
                while tls.wants_write() {
                    set_timeouts(sock, deadline)?;
                    tls.write_tls(sock)
                        .map_err(|e| format!("writing: {}", crate::deadline::io_text(&e)))?;
                }
            }
            Ok(())
        }
    }
}

/// What goes on the wire: the message alone in a UDP datagram, `LEN SP
/// MSG` on a stream (octet counting, RFC 6587 §3.4.1), no trailer.
fn frame(transport: Transport, message: String) -> Vec<u8> {
    match transport {
        Transport::Udp => message.into_bytes(),
        Transport::Tcp | Transport::Tls => format!("{} {message}", message.len()).into_bytes(),
    }
}

/// The syslog message (without framing) for `alert`: at most
/// [`MAX_MESSAGE`] bytes, no CR, LF or other control character.
fn render(
    alert: &Alert,
    format: Format,
    facility: u8,
    hostname: &str,
    app_name: &str,
    procid: u32,
) -> String {
    let pri = u32::from(facility) * 8 + u32::from(alert.severity.syslog());
    let timestamp = parse_time(&alert.time).map_or_else(|| "-".to_string(), |t| t.rfc5424());
    let msgid = if alert.digest.is_some() {
        "digest"
    } else {
        "alert"
    };
    let header = format!("<{pri}>1 {timestamp} {hostname} {app_name} {procid} {msgid} ");
    let budget = MAX_MESSAGE.saturating_sub(header.len());
    let rest = match format {
        Format::Rfc5424 => rfc5424_body(alert, budget),
        Format::Cef => format!("- {}", cef(alert, budget.saturating_sub(2))),
    };
    let mut out = header + &rest;
    if out.len() > MAX_MESSAGE {
        // Not reached (the parts are sized to fit); a last guard.
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// `SD SP MSG` within `budget` bytes.
fn rfc5424_body(alert: &Alert, budget: usize) -> String {
    let mut msg = clean(&alert.title, MAX_TITLE);
    if let Some(d) = &alert.digest {
        msg.push_str(" — ");
        msg.push_str(&clean(&d.summary(), MAX_FIELD));
    }
    let sd_budget = budget.saturating_sub(msg.len() + 1);

    let mut params: Vec<String> = vec![
        sd_param("id", &clean(&alert.id, MAX_NAME)),
        sd_param("rule", &clean(&alert.rule, MAX_NAME)),
        sd_param("severity", alert.severity.name()),
    ];
    if let Some(d) = &alert.digest {
        params.push(sd_param("digest_count", &d.count.to_string()));
        params.push(sd_param("digest_nodes", &d.nodes.to_string()));
        params.push(sd_param("digest_window_secs", &d.window_secs.to_string()));
    }
    let mandatory = params.len();
    for (k, v) in &alert.fields {
        params.push(sd_param(&param_name(k), &clean(v, MAX_FIELD)));
    }

    // Room kept for `[SD-ID`, `]` and the truncation note.
    let reserve = SD_ID.len() + 2 + 40;
    let mut sd = format!("[{SD_ID}");
    let mut omitted = 0;
    for (i, p) in params.iter().enumerate() {
        if omitted == 0 && (i < mandatory || sd.len() + p.len() + reserve <= sd_budget) {
            sd.push_str(p);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        sd.push_str(&sd_param("truncated", &format!("{omitted} more fields")));
    }
    sd.push(']');
    format!("{sd} {msg}")
}

/// ` name="value"` with the value escaped (RFC 5424 §6.3.3).
fn sd_param(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 4);
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            // Cleaned values have none; never raw in any case.
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field name as an SD PARAM-NAME: `.` becomes `_` (`event.type` →
/// `event_type`), anything but printable ASCII without `=`, `]`, `"` and
/// space becomes `_`, at most 32 characters.
fn param_name(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| match c {
            '.' | '=' | ']' | '"' => '_',
            c if c.is_ascii_graphic() => c,
            _ => '_',
        })
        .take(32)
        .collect();
    if name.is_empty() {
        "_".into()
    } else {
        name
    }
}

/// The CEF record for `alert`, within `budget` bytes.
fn cef(alert: &Alert, budget: usize) -> String {
    let event_type = alert
        .field("event.type")
        .map_or_else(|| alert.rule.clone(), str::to_string);
    let class = if alert.digest.is_some() {
        "digest".to_string()
    } else {
        event_type.clone()
    };
    let header = format!(
        "CEF:0|HoneyBee|honeybee|{}|{}|{}|{}|",
        env!("CARGO_PKG_VERSION"),
        cef_header(&clean(&class, MAX_NAME)),
        cef_header(&clean(&alert.title, MAX_TITLE)),
        alert.severity.cef()
    );

    let mut ext: Vec<(&str, String)> = Vec::new();
    if let Some(t) = parse_time(&alert.time) {
        ext.push(("rt", t.epoch_millis().to_string()));
    }
    let mut used: Vec<&str> = vec!["event.type"];
    let mut map = |cef_key: &'static str, field: &'static str, ext: &mut Vec<(&str, String)>| {
        if let Some(v) = alert.field(field) {
            let ok = match cef_key {
                "src" => v.parse::<std::net::IpAddr>().is_ok(),
                "spt" | "dpt" => v.parse::<u16>().is_ok(),
                _ => true,
            };
            if ok {
                ext.push((cef_key, clean(v, MAX_FIELD)));
                used.push(field);
            }
        }
    };
    map("src", "source.ip", &mut ext);
    map("spt", "source.port", &mut ext);
    map("dpt", "destination.port", &mut ext);
    map("suser", "user.name", &mut ext);
    map("dvchost", "node.name", &mut ext);
    ext.push(("cat", clean(&event_type, MAX_NAME)));
    ext.push(("externalId", clean(&alert.id, MAX_NAME)));
    ext.push(("cs1Label", "rule".into()));
    ext.push(("cs1", clean(&alert.rule, MAX_NAME)));
    if let Some(v) = alert.field("node.id") {
        ext.push(("cs2Label", "node_id".into()));
        ext.push(("cs2", clean(v, MAX_FIELD)));
        used.push("node.id");
    }
    if let Some(v) = alert.field("pot.id") {
        ext.push(("cs3Label", "pot_id".into()));
        ext.push(("cs3", clean(v, MAX_FIELD)));
        used.push("pot.id");
    }
    if let Some(d) = &alert.digest {
        ext.push(("cnt", d.count.saturating_add(1).to_string()));
    }
    // Everything else as `msg`: the digest summary, then `key: value`.
    let mut rest: Vec<String> = Vec::new();
    if let Some(d) = &alert.digest {
        rest.push(clean(&d.summary(), MAX_FIELD));
    }
    for (k, v) in &alert.fields {
        if !used.contains(&k.as_str()) {
            rest.push(format!("{}: {}", clean(k, 64), clean(v, MAX_FIELD)));
        }
    }

    let mut out = header;
    let reserve = 48;
    let mut omitted = 0;
    for (k, v) in &ext {
        let piece = format!("{k}={}", cef_ext(v));
        if omitted == 0 && out.len() + piece.len() + 1 + reserve <= budget {
            if !out.ends_with('|') {
                out.push(' ');
            }
            out.push_str(&piece);
        } else {
            omitted += 1;
        }
    }
    if !rest.is_empty() && omitted == 0 {
        let prefix = if out.ends_with('|') { "msg=" } else { " msg=" };
        let room = budget.saturating_sub(out.len() + prefix.len() + reserve);
        let text = rest.join("; ");
        // Cut so that the escaped value (the cut mark included) fits.
        let mut max = room.saturating_sub(24);
        let mut value = cef_ext(&clean(&text, max));
        for _ in 0..8 {
            if value.len() <= room {
                break;
            }
            max = max.saturating_sub(value.len() - room + 8);
            value = cef_ext(&clean(&text, max));
        }
        if value.len() <= room && room > 32 {
            out.push_str(prefix);
            out.push_str(&value);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        if !out.ends_with('|') {
            out.push(' ');
        }
        out.push_str(&format!(
            "cs6Label=truncated cs6={omitted} more extensions omitted"
        ));
    }
    out
}

/// A CEF header value: `\` and `|` escaped, no line break.
fn cef_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value: `\` and `=` escaped, line breaks as `\n`/`\r`.
fn cef_ext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An RFC 3339 date-time, as far as syslog needs it.
#[derive(Debug, PartialEq)]
struct Time {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// Up to 6 fraction digits.
    fraction: String,
    /// Offset east of UTC, in minutes.
    offset: i32,
    /// The instant, in milliseconds since the Unix epoch.
    unix_millis: i64,
}

/// Parses an RFC 3339 timestamp with the `time` crate, keeping its offset;
/// `None` for anything else, impossible dates included (the timestamp is
/// then sent as `-`).
fn parse_time(s: &str) -> Option<Time> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339).ok()?;
    // RFC 5424 allows 6 fraction digits; trailing zeros say nothing.
    let micros = format!("{:06}", t.microsecond());
    Some(Time {
        year: i64::from(t.year()),
        month: u32::from(u8::from(t.month())),
        day: u32::from(t.day()),
        hour: u32::from(t.hour()),
        minute: u32::from(t.minute()),
        second: u32::from(t.second()),
        fraction: micros.trim_end_matches('0').to_string(),
        offset: i32::from(t.offset().whole_minutes()),
        unix_millis: t.unix_timestamp() * 1000 + i64::from(t.millisecond()),
    })
}

impl Time {
    /// The RFC 5424 TIMESTAMP (uppercase `T` and `Z`, at most 6 fraction
    /// digits).
    fn rfc5424(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if !self.fraction.is_empty() {
            out.push('.');
            out.push_str(&self.fraction);
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let o = self.offset.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", o / 60, o % 60));
        }
        out
    }

    /// Milliseconds since the Unix epoch (CEF `rt`).
    fn epoch_millis(&self) -> i64 {
        self.unix_millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Digest, Severity};

    fn alert(fields: &[(&str, &str)]) -> Alert {
        Alert {
            id: "tripwire/ev-1".into(),
            rule: "tripwire".into(),
            severity: Severity::High,
            time: "2025-05-01T12:00:00.123456789Z".into(),
            title: "tripwire: root logged in on web-1".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            digest: None,
            ecs: serde_json::Value::Null,
        }
    }

    #[test]
    fn times_are_parsed_and_rendered_for_syslog_and_cef() {
        let t = parse_time("2025-05-01T12:00:00.123456789Z").unwrap();
        assert_eq!(t.rfc5424(), "2025-05-01T12:00:00.123456Z");
        assert_eq!(t.epoch_millis(), 1_746_100_800_123);
        let t = parse_time("1970-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.epoch_millis(), 0);
        assert_eq!(t.rfc5424(), "1970-01-01T01:00:00+01:00");
        // RFC 3339 allows a space for `T`; the output always has `T`.
        let t = parse_time("2025-05-01 12:00:00Z").unwrap();
        assert_eq!(t.rfc5424(), "2025-05-01T12:00:00Z");
        for bad in [
            "",
            "yesterday",
            "2025-02-29T12:00:00Z",
            "2025-05-01T12:00:00+99:99",
            "2025-13-01T12:00:00Z",
            "2025-05-01T12:00:00",
            "2025-05-01T12:00:00Z\n<13>1 forged",
            "2025-05-01T12:00:00.Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_rfc5424_message_carries_fields_as_escaped_structured_data() {
        let mut a = alert(&[
            ("event.type", "cowrie.login.success"),
            ("user.name", "ro\"ot]\\\r\nx"),
        ]);
        a.severity = Severity::Critical;
        let m = render(&a, Format::Rfc5424, 16, "host", "app", 7);
        assert_eq!(
            m,
            "<130>1 2025-05-01T12:00:00.123456Z host app 7 alert [honeybee@32473 \
             id=\"tripwire/ev-1\" rule=\"tripwire\" severity=\"critical\" \
             event_type=\"cowrie.login.success\" user_name=\"ro\\\"ot\\]\\\\\\\\r\\\\nx\"] \
             tripwire: root logged in on web-1"
        );
    }

    #[test]
    fn streams_use_octet_counting() {
        assert_eq!(
            frame(Transport::Udp, "<13>1 é".into()),
            "<13>1 é".as_bytes()
        );
        assert_eq!(
            frame(Transport::Tcp, "<13>1 é".into()),
            "8 <13>1 é".as_bytes()
        );
        assert_eq!(frame(Transport::Tls, "x".into()), b"1 x");
    }

    #[test]
    fn param_names_are_limited() {
        assert_eq!(param_name("event.type"), "event_type");
        assert_eq!(param_name("data.a b=c]\"é"), "data_a_b_c___");
        assert_eq!(param_name(&"x".repeat(40)).len(), 32);
        assert_eq!(param_name(""), "_");
    }

    #[test]
    fn cef_escapes_header_and_extension() {
        let mut a = alert(&[
            ("event.type", "cowrie.login|x"),
            ("source.ip", "203.0.113.5"),
            ("source.port", "4444"),
            ("destination.port", "22"),
            ("user.name", "a=b\\c\nd"),
            ("node.id", "n1"),
            ("data.command", "cat x | sh"),
        ]);
        a.title = "pipe | back\\slash".into();
        let m = render(&a, Format::Cef, 16, "h", "app", 1);
        assert!(
            m.starts_with(&format!(
                "<131>1 2025-05-01T12:00:00.123456Z h app 1 alert - CEF:0|HoneyBee|honeybee|{}|\
                 cowrie.login\\|x|pipe \\| back\\\\slash|8|rt=1746100800123 src=203.0.113.5 \
                 spt=4444 dpt=22 suser=a\\=b\\\\c\\\\nd ",
                env!("CARGO_PKG_VERSION")
            )),
            "{m}"
        );
        assert!(m.ends_with("msg=data.command: cat x | sh"), "{m}");
        assert!(m.contains(" cs1Label=rule cs1=tripwire "), "{m}");
    }

    #[test]
    fn big_alerts_are_cut_to_the_limit_visibly_in_both_formats() {
        let big = "A".repeat(64 * 1024);
        let many: Vec<(String, String)> = (0..40)
            .map(|i| (format!("data.f{i}"), "v".repeat(900)))
            .collect();
        let mut a = alert(&[("user.name", &big)]);
        a.fields.extend(many);
        a.digest = Some(Digest {
            count: 3,
            nodes: 1,
            types: [("x".to_string(), 3)].into(),
            window_secs: 60,
        });
        for format in [Format::Rfc5424, Format::Cef] {
            let m = render(&a, format, 16, "h", "app", 1);
            assert!(m.len() <= MAX_MESSAGE, "{}", m.len());
            assert!(m.len() > MAX_MESSAGE - 1200, "{}", m.len());
            // (`]` is escaped in structured data.)
            assert!(
                m.contains(&format!("…[+{} bytes", 64 * 1024 - MAX_FIELD)),
                "{m}"
            );
            // Fields dropped (rfc5424) or the `msg` extension cut (cef).
            assert!(
                m.contains("more fields") || m.matches("…[+").count() >= 2,
                "{m}"
            );
            assert!(!m.chars().any(|c| c.is_control()));
        }
    }

    #[test]
    fn the_config_is_checked_with_errors_naming_the_key() {
        let common = Common {
            name: "s".into(),
            timeout: Duration::from_secs(1),
        };
        let parse = |t: &str| -> SyslogConfig { toml::from_str(t).unwrap() };
        let e = |t: &str| open(&common, &parse(t)).err().unwrap();
        assert!(e("address = \"h:1\"\ntransport = \"sctp\"").contains("transport"));
        assert!(e("address = \"h:1\"\nformat = \"leef\"").contains("format"));
        assert!(e("address = \"h\"").contains("address"));
        assert!(e("address = \"h:0\"").contains("address"));
        assert!(e("address = \"h:1\"\nfacility = 24").contains("facility"));
        assert!(e("address = \"h:1\"\nfacility = \"local9\"").contains("facility"));
        assert!(e("address = \"h:1\"\nca_file = \"/x\"").contains("ca_file"));
        assert!(e("address = \"h:1\"\nhostname = \"a b\"").contains("hostname"));
        assert!(e("address = \"h:1\"\napp_name = \"\"").contains("app_name"));
        assert!(toml::from_str::<SyslogConfig>("address = \"h:1\"\nport = 1").is_err());
        let ok = parse(
            "address = \"[::1]:514\"\ntransport = \"tcp\"\nformat = \"cef\"\nfacility = \"LOCAL7\"",
        );
        assert!(open(&common, &ok).is_ok());
        assert_eq!(ok.facility.unwrap().code(), Ok(23));
    }
}
