//! Email: one plain-text message per alert, over SMTP with STARTTLS,
//! implicit TLS or (to a relay on this machine) plain text.
//!
//! ```toml
//! [[channel]]
//! name = "oncall-mail"
//! type = "email"
//! server = "smtp.example.org:587"
//! tls = "starttls"              # "starttls" (default), "implicit" or "none"
//! from = "honeybee@example.org"
//! to = ["soc@example.org", "oncall@example.org"]
//! username = "honeybee"
//! password = { file = "/etc/honeybee/smtp-password" }
//! ```
//!
//! The subject is `[HoneyBee] HIGH <rule>: <title>` (the prefix is
//! `subject_prefix`), encoded as RFC 2047 words when it is not ASCII. The
//! body is [`Alert::text`] of the alert with every value cleaned again
//! ([`crate::sanitize::clean`]), sent as UTF-8 quoted-printable: each
//! field stays on its line, no line is longer than 76 bytes and nothing
//! from an event can add a header, a recipient or end the message early.
//!
//! The SMTP client is our own (the private `smtp` module): each alert opens a
//! connection, the whole conversation is bounded by the channel's
//! `timeout`, and STARTTLS is required when asked for (never downgraded).
//! A password is only sent over TLS, or in clear text to a server on a
//! loopback address; it never appears in a log line or an error.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use serde::Deserialize;

use super::{Channel, Common};
use crate::alert::{Alert, Digest};
use crate::sanitize::{clean, MAX_FIELD, MAX_TITLE};
use crate::secret::{Secret, SecretSource};

mod smtp;

use smtp::Security;

/// Most recipients in `to`.
const MAX_RECIPIENTS: usize = 100;
/// Longest rule name put in a subject, in bytes (cut visibly).
const MAX_RULE: usize = 128;

/// The keys of a `type = "email"` `[[channel]]` table besides the common
/// ones (`name`, `type`, `max_per_minute`, `timeout`, `min_severity`).
/// `Debug` shows `password` as `<redacted>` (an inline password would
/// otherwise be printed by [`SecretSource`]'s derived `Debug`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server, `host:port` (`[v6]:port` for an IPv6 address):
    /// typically port 587 with `starttls`, 465 with `implicit`.
    pub server: String,
    /// `"starttls"` (the default: plain text, then STARTTLS, which the
    /// server must offer), `"implicit"` (TLS from the first byte) or
    /// `"none"` (plain text; with a password only to a loopback server).
    #[serde(default)]
    pub tls: Option<String>,
    /// The envelope sender and `From:` address (`user@domain`, ASCII).
    pub from: String,
    /// The recipients (1 to 100 `user@domain` addresses, ASCII).
    pub to: Vec<String>,
    /// The `AUTH` user name; requires `password`.
    #[serde(default)]
    pub username: Option<String>,
    /// The `AUTH` password: a string, `{ file = "…" }` or
    /// `{ env = "…" }`; requires `username`. Read when the channel is
    /// opened, never logged.
    #[serde(default)]
    pub password: Option<SecretSource>,
    /// TLS only: a PEM file of the CA certificates the server's
    /// certificate must chain to; the Mozilla roots when absent.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// TLS only: the name the server's certificate must carry; the host
    /// part of `server` when absent.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Put before every subject; default `[HoneyBee]` (at most 64 bytes,
    /// no control characters; may be empty).
    #[serde(default)]
    pub subject_prefix: Option<String>,
    /// The name given in `EHLO`: a domain name or an address literal such
    /// as `[192.0.2.1]`. Default this machine's host name (`localhost`
    /// when it is not a valid domain name).
    #[serde(default)]
    pub helo: Option<String>,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("server_name", &self.server_name)
            .field("subject_prefix", &self.subject_prefix)
            .field("helo", &self.helo)
            .finish()
    }
}

/// Checks `cfg`, reads the password, and builds the channel. Nothing is
/// connected yet: every [`Channel::send`] makes its own connection.
pub fn open(common: &Common, cfg: &EmailConfig) -> Result<Box<dyn Channel>, String> {
    let err = |e: String| format!("email channel {}: {e}", common.name);
    let security = match cfg.tls.as_deref().unwrap_or("starttls") {
        "none" => Security::None,
        "starttls" => Security::StartTls,
        "implicit" => Security::Implicit,
        other => {
            return Err(err(format!(
                "tls = {:?}: expected \"starttls\", \"implicit\" or \"none\"",
                clean(other, 64)
            )))
        }
    };
    check_server(&cfg.server).map_err(err)?;
    check_mailbox("from", &cfg.from).map_err(err)?;
    if cfg.to.is_empty() {
        return Err(err("to: at least one recipient is needed".into()));
    }
    if cfg.to.len() > MAX_RECIPIENTS {
        return Err(err(format!("to: at most {MAX_RECIPIENTS} recipients")));
    }
    for (i, to) in cfg.to.iter().enumerate() {
        check_mailbox(&format!("to[{i}]"), to).map_err(err)?;
    }
    let tls = match security {
        Security::None => {
            for (key, set) in [
                ("ca_file", cfg.ca_file.is_some()),
                ("server_name", cfg.server_name.is_some()),
            ] {
                if set {
                    return Err(err(format!(
                        "{key} is only used with tls = \"starttls\" or \"implicit\""
                    )));
                }
            }
            None
        }
        Security::StartTls | Security::Implicit => Some((
            crate::tls::client_config(cfg.ca_file.as_deref()).map_err(err)?,
            crate::tls::server_name(&cfg.server, cfg.server_name.as_deref())
                .map_err(|e| err(format!("server_name: {e}")))?,
        )),
    };
    let credentials = match (&cfg.username, &cfg.password) {
        (None, None) => None,
        (Some(_), None) => return Err(err("username is set but password is not".into())),
        (None, Some(_)) => return Err(err("password is set but username is not".into())),
        (Some(user), Some(source)) => {
            if user.is_empty() || user.chars().any(|c| c.is_control()) {
                return Err(err(
                    "username: must be non-empty, without control characters".into(),
                ));
            }
            let password = source.load().map_err(|e| err(format!("password: {e}")))?;
            if password.expose().is_empty() || password.expose().contains(['\0', '\r', '\n']) {
                return Err(err(
                    "password: must be non-empty, without NUL, CR or LF".into()
                ));
            }
            if security == Security::None && !is_loopback_host(crate::tls::host_of(&cfg.server)) {
                return Err(err(format!(
                    "username/password with tls = \"none\": refusing to send the password in \
                     clear text to {}, which is not a loopback address; set tls = \"starttls\" \
                     or \"implicit\"",
                    crate::tls::host_of(&cfg.server)
                )));
            }
            Some((user.clone(), password))
        }
    };
    let subject_prefix = match &cfg.subject_prefix {
        None => "[HoneyBee]".to_string(),
        Some(p) if p.len() <= 64 && !p.chars().any(char::is_control) => p.clone(),
        Some(p) => {
            return Err(err(format!(
                "subject_prefix = {:?}: at most 64 bytes, no control characters",
                clean(p, 80)
            )))
        }
    };
    let helo = match &cfg.helo {
        Some(h) if is_helo_name(h) => h.clone(),
        Some(h) => {
            return Err(err(format!(
                "helo = {:?}: expected a domain name or an address literal like [192.0.2.1]",
                clean(h, 80)
            )))
        }
        None => local_helo(),
    };
    Ok(Box::new(Email {
        name: common.name.clone(),
        server: cfg.server.clone(),
        timeout: common.timeout,
        security,
        tls,
        from: cfg.from.clone(),
        to: cfg.to.clone(),
        credentials,
        subject_prefix,
        helo,
    }))
}

fn check_server(server: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "server = {:?}: expected host:port (or [v6]:port)",
            clean(server, 256)
        )
    };
    let (host, port) = match server.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").ok_or_else(bad)?,
        None => server.rsplit_once(':').ok_or_else(bad)?,
    };
    if host.is_empty()
        || host.contains(':') && !server.starts_with('[')
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
        || port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(bad());
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a `user@domain` address: ASCII, no space, control character,
/// `<`, `>`, quote, comma and the like, which could break out of
/// `MAIL FROM:<…>` or a header.
fn check_mailbox(key: &str, addr: &str) -> Result<(), String> {
    let bad = |why: &str| format!("{key} = {:?}: {why}", clean(addr, 300));
    if addr.len() > 254 {
        return Err(bad("longer than 254 bytes"));
    }
    if let Some(c) = addr
        .chars()
        .find(|c| !c.is_ascii_graphic() || "<>()[]\\,;:\"".contains(*c))
    {
        return Err(bad(&format!(
            "{} is not allowed in an address (ASCII user@domain only)",
            clean(&c.to_string(), 10)
        )));
    }
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or_else(|| bad("expected user@domain"))?;
    if local.is_empty()
        || domain.is_empty()
        || local.contains('@')
        || !domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(bad("expected user@domain"));
    }
    Ok(())
}

fn is_helo_name(h: &str) -> bool {
    if let Some(lit) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return lit.parse::<IpAddr>().is_ok()
            || lit
                .strip_prefix("IPv6:")
                .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !h.is_empty()
        && h.len() <= 255
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// This machine's host name if it is a valid EHLO name, else `localhost`.
fn local_helo() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name = raw.trim();
    if is_helo_name(name) && !name.starts_with('[') {
        name.to_string()
    } else {
        "localhost".to_string()
    }
}

struct Email {
    name: String,
    server: String,
    timeout: Duration,
    security: Security,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    from: String,
    to: Vec<String>,
    credentials: Option<(String, Secret)>,
    subject_prefix: String,
    helo: String,
}

impl Channel for Email {
    fn send(&mut self, alert: &Alert) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let message = self.message(alert, now, &message_id(&self.from, now));
        let params = smtp::Params {
            server: &self.server,
            security: self.security,
            tls: self.tls.as_ref(),
            helo: &self.helo,
            credentials: self.credentials.as_ref().map(|(u, p)| (u.as_str(), p)),
            deadline,
        };
        smtp::send_mail(&params, &self.from, &self.to, &message).map_err(|e| {
            let text = format!("email channel {}: {}: {e}", self.name, self.server);
            match &self.credentials {
                Some((user, password)) => redact(&text, user, password),
                None => text,
            }
        })
    }
}

/// `text` with the password, and the base64 forms it was sent in,
/// replaced by `<redacted>` (the client never puts them in an error; this
/// guards against a server that echoes them).
fn redact(text: &str, user: &str, password: &Secret) -> String {
    let p = password.expose();
    let mut out = text.to_string();
    for needle in [
        smtp::base64(format!("\0{user}\0{p}").as_bytes()),
        smtp::base64(p.as_bytes()),
        p.to_string(),
    ] {
        if !needle.is_empty() {
            out = out.replace(&needle, "<redacted>");
        }
    }
    out
}

impl Email {
    /// The whole message, headers and quoted-printable body, with CRLF
    /// line endings (not yet dot-stuffed).
    fn message(&self, alert: &Alert, now: u64, message_id: &str) -> String {
        let subject = {
            let mut s = String::new();
            if !self.subject_prefix.is_empty() {
                s.push_str(&clean(&self.subject_prefix, 64));
                s.push(' ');
            }
            s.push_str(&alert.severity.name().to_ascii_uppercase());
            s.push(' ');
            s.push_str(&clean(&alert.rule, MAX_RULE));
            s.push_str(": ");
            s.push_str(&clean(&alert.title, MAX_TITLE));
            s
        };
        let mut out = String::with_capacity(2048);
        out.push_str(&header("Date", &rfc5322_date(now)));
        out.push_str(&header("From", &self.from));
        out.push_str(&header("To", &self.to.join(", ")));
        out.push_str(&header("Subject", &encode_header_text(&subject)));
        out.push_str(&header("Message-ID", message_id));
        out.push_str("MIME-Version: 1.0\r\n");
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        out.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
        out.push_str("Auto-Submitted: auto-generated\r\n");
        out.push_str(&header("X-HoneyBee-Severity", alert.severity.name()));
        out.push_str("\r\n");
        out.push_str(&quoted_printable(&cleaned(alert).text()));
        out
    }
}

/// A copy of `alert` with every string cleaned again: one line each.
fn cleaned(alert: &Alert) -> Alert {
    Alert {
        id: clean(&alert.id, MAX_FIELD),
        rule: clean(&alert.rule, MAX_RULE),
        severity: alert.severity,
        time: clean(&alert.time, 64),
        title: clean(&alert.title, MAX_TITLE),
        fields: alert
            .fields
            .iter()
            .map(|(k, v)| (clean(k, 128), clean(v, MAX_FIELD)))
            .collect(),
        digest: alert.digest.as_ref().map(|d| Digest {
            types: d.types.iter().map(|(t, n)| (clean(t, 128), *n)).collect(),
            ..d.clone()
        }),
        ecs: serde_json::Value::Null,
    }
}

/// `Name: value` CRLF, folded at spaces so that lines stay within 78
/// bytes where the words allow it. `value` must be ASCII without control
/// characters (callers make sure).
fn header(name: &str, value: &str) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 && line_len + 1 + word.len() > 78 {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(word);
        line_len += 1 + word.len();
    }
    out.push_str("\r\n");
    out
}

/// `text` as is when it is printable ASCII, else as RFC 2047 `B` encoded
/// words (UTF-8, at most 75 characters each, separated by spaces).
fn encode_header_text(text: &str) -> String {
    if text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return text.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 39 bytes encode to 52 characters: 64 with `=?utf-8?B?…?=`, a
        // line of 73 after `Subject: `.
        if chunk.len() + c.len_utf8() > 39 {
            words.push(format!("=?utf-8?B?{}?=", smtp::base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", smtp::base64(chunk.as_bytes())));
    }
    words.join(" ")
}

/// Quoted-printable (RFC 2045 §6.7) of `text`, whose lines end with LF:
/// CRLF line endings, encoded lines at most 76 bytes (soft breaks),
/// `=`, non-ASCII, control characters and trailing spaces encoded.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut col = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal = ((33..=126).contains(&b) && b != b'=') || (b == b' ' && !last);
            let piece = if literal {
                char::from(b).to_string()
            } else {
                format!("={b:02X}")
            };
            // 75 plus the soft break's `=`.
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            out.push_str(&piece);
            col += piece.len();
        }
    }
    out
}

/// `Thu, 01 May 2025 12:00:00 +0000` for `secs` since the Unix epoch.
fn rfc5322_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS.get((days % 7) as usize).copied().unwrap_or("Thu"),
        d,
        MONTHS
            .get((m as usize).saturating_sub(1))
            .copied()
            .unwrap_or("Jan"),
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month (1–12) and day of `days` since 1970-01-01 (H. Hinnant).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `<random.time@domain-of-from>`.
fn message_id(from: &str, now: u64) -> String {
    let mut random = [0u8; 12];
    if getrandom::fill(&mut random).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        random[..4].copy_from_slice(&nanos.to_be_bytes());
        random[4..8].copy_from_slice(&std::process::id().to_be_bytes());
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{hex}.{now}@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

    fn config(extra: &str) -> EmailConfig {
        toml::from_str(&format!(
            "server = \"127.0.0.1:2525\"\nfrom = \"hb@example.org\"\nto = [\"soc@example.org\"]\n{extra}"
        ))
        .unwrap()
    }

    fn common() -> Common {
        Common {
            name: "mail".into(),
            timeout: Duration::from_secs(1),
        }
    }

    fn channel(extra: &str) -> Email {
        let cfg = config(extra);
        Email {
            name: "mail".into(),
            server: cfg.server,
            timeout: Duration::from_secs(1),
            security: Security::None,
            tls: None,
            from: cfg.from,
            to: cfg.to,
            credentials: None,
            subject_prefix: "[HoneyBee]".into(),
            helo: "localhost".into(),
        }
    }

    fn alert() -> Alert {
        Alert {
            id: "tripwire/1".into(),
            rule: "tripwire".into(),
            severity: Severity::High,
            time: "2025-05-01T12:00:00Z".into(),
            title: "root logged in".into(),
            fields: vec![("user.name".into(), "root".into())],
            digest: None,
            ecs: serde_json::Value::Null,
        }
    }

    #[test]
    fn dates_follow_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_746_100_800),
            "Thu, 01 May 2025 12:00:00 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_encodes_what_it_must() {
        assert_eq!(quoted_printable("a=b é \nx"), "a=3Db =C3=A9=20\r\nx");
        let long = quoted_printable(&"é".repeat(500));
        assert!(long.split("\r\n").all(|l| l.len() <= 76));
    }

    #[test]
    fn subjects_are_one_header_and_non_ascii_is_encoded() {
        let mut a = alert();
        a.title = "x\r\nBcc: evil@example.org é".into();
        let m = channel("").message(&a, 0, "<id@x>");
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains("\r\nBcc"), "{head}");
        assert!(head.contains("Subject: =?utf-8?B?"), "{head}");
        assert!(head.lines().all(|l| l.len() <= 78 && l.is_ascii()));
        let plain = channel("").message(&alert(), 0, "<id@x>");
        assert!(plain.contains("\r\nSubject: [HoneyBee] HIGH tripwire: root logged in\r\n"));
    }

    #[test]
    fn the_config_is_checked_with_errors_naming_the_key() {
        let e = |extra: &str| open(&common(), &config(extra)).err().unwrap();
        assert!(e("tls = \"ssl\"").contains("tls"));
        assert!(e("username = \"u\"").contains("password"));
        assert!(e("password = \"p\"").contains("username"));
        assert!(e("tls = \"none\"\nca_file = \"/x\"").contains("ca_file"));
        assert!(e("helo = \"bad name\"").contains("helo"));
        assert!(e("subject_prefix = \"a\\nb\"").contains("subject_prefix"));
        let bad_to = |to: &str| {
            let cfg: EmailConfig = toml::from_str(&format!(
                "server = \"127.0.0.1:25\"\nfrom = \"a@b\"\nto = [\"ok@x\", {to:?}]"
            ))
            .unwrap();
            open(&common(), &cfg).err().unwrap()
        };
        for to in ["x@y\r\nRCPT TO:<evil@z>", "a>b@c", "nobody", "a@b c", "é@x"] {
            assert!(bad_to(to).contains("to[1]"), "{to}");
        }
        let mut cfg = config("");
        cfg.server = "mail.example.org".into();
        assert!(open(&common(), &cfg).err().unwrap().contains("server"));
        cfg.server = "mail.example.org:25".into();
        cfg.tls = Some("none".into());
        cfg.username = Some("u".into());
        cfg.password = Some(SecretSource::Value("hunter2hunter2".into()));
        let e = open(&common(), &cfg).err().unwrap();
        assert!(e.contains("clear text") && !e.contains("hunter2"), "{e}");
        cfg.server = "127.0.0.1:25".into();
        assert!(open(&common(), &cfg).is_ok());
        assert!(open(&common(), &config("helo = \"[127.0.0.1]\"")).is_ok());
    }

    #[test]
    fn the_config_never_shows_the_password() {
        let cfg = config("username = \"u\"\npassword = \"hunter2-inline\"");
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn redaction_covers_the_encoded_forms() {
        let p = Secret::new("s3cr3t-pw".into());
        let token = smtp::base64(b"\0u\0s3cr3t-pw");
        let text = format!("x s3cr3t-pw {token} {}", smtp::base64(b"s3cr3t-pw"));
        assert_eq!(redact(&text, "u", &p), "x <redacted> <redacted> <redacted>");
    }
}
