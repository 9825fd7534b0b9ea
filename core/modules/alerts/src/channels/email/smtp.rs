//! A small SMTP client (RFC 5321): one message per connection, bounded in
//! time (one deadline for the whole conversation) and in what it reads
//! (reply lines, lines per reply).
//!
//! Greeting, `EHLO`, `STARTTLS` then `EHLO` again (or TLS from the first
//! byte), `AUTH PLAIN` (or `AUTH LOGIN` when PLAIN is not offered) only
//! over TLS or to a loopback peer, `MAIL FROM`, one `RCPT TO` per
//! recipient, `DATA` with dot-stuffing, `QUIT`. Errors say which step
//! failed and what the server answered (cleaned); they never carry the
//! password, which is only ever written to the socket: a server that
//! echoes it has it (and its base64 forms) replaced before its text is
//! cleaned, cut or quoted, so neither an escape nor a cut can leave a
//! piece of it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::sanitize::clean;
use crate::secret::Secret;

/// Longest reply line read (RFC 5321 allows 512 bytes).
const MAX_LINE: usize = 2048;
/// Most lines in one (multi-line) reply.
const MAX_LINES: usize = 64;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Security {
    /// Plain text throughout.
    None,
    /// Plain text, then `STARTTLS` (required: never downgraded).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// What one delivery needs.
pub(super) struct Params<'a> {
    /// `host:port`.
    pub server: &'a str,
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// For STARTTLS and implicit TLS.
    pub tls: Option<&'a (Arc<ClientConfig>, ServerName<'static>)>,
    /// The `EHLO` name.
    pub helo: &'a str,
    /// `AUTH` user name and password.
    pub credentials: Option<(&'a str, &'a Secret)>,
    /// When the whole conversation must be over.
    pub deadline: Instant,
}

/// Delivers `message` (headers and body, CRLF line endings, not yet
/// dot-stuffed) from `from` to every address in `to`.
pub(super) fn send_mail(
    p: &Params<'_>,
    from: &str,
    to: &[String],
    message: &str,
) -> Result<(), String> {
    let sock = connect(p.server, p.deadline)?;
    let peer_loopback = sock.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    let _ = sock.set_nodelay(true);
    let mut s = Session {
        stream: Stream::Plain(sock),
        buf: Vec::new(),
        deadline: p.deadline,
        secrets: p.credentials.map(secret_forms).unwrap_or_default(),
    };
    if p.security == Security::Implicit {
        s.start_tls(tls_of(p)?)?;
    }
    s.expect_reply("greeting", &[220])?;
    let mut ext = s.ehlo(p.helo)?;
    if p.security == Security::StartTls {
        if !ext.iter().any(|e| keyword(e) == "STARTTLS") {
            return Err("the server does not offer STARTTLS (tls = \"starttls\")".into());
        }
        s.command("STARTTLS", "STARTTLS", &[220])?;
        if !s.buf.is_empty() {
            return Err("the server sent data after its STARTTLS reply".into());
        }
        s.start_tls(tls_of(p)?)?;
        ext = s.ehlo(p.helo)?;
    }
    if let Some((user, password)) = p.credentials {
        if !s.is_tls() && !peer_loopback {
            return Err(
                "refusing to send the password in clear text to a server that is not on a \
                 loopback address: set tls = \"starttls\" or \"implicit\""
                    .into(),
            );
        }
        s.auth(&ext, user, password)?;
    }
    s.command(&format!("MAIL FROM:<{from}>"), "MAIL FROM", &[250])?;
    for rcpt in to {
        s.command(&format!("RCPT TO:<{rcpt}>"), "RCPT TO", &[250, 251])
            .map_err(|e| format!("recipient {rcpt}: {e}"))?;
    }
    s.command("DATA", "DATA", &[354])?;
    s.write_all(&dot_stuff(message), "sending the message")?;
    s.expect_reply("end of DATA", &[250])?;
    // Delivered; the goodbye is a courtesy.
    let _ = s.command("QUIT", "QUIT", &[221]);
    Ok(())
}

fn tls_of<'a>(p: &Params<'a>) -> Result<&'a (Arc<ClientConfig>, ServerName<'static>), String> {
    p.tls.ok_or_else(|| "TLS is not configured".to_string())
}

fn connect(server: &str, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(|e| format!("resolving: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err("resolving: no address".into());
    }
    crate::deadline::connect(&addrs, deadline)
}

/// The first word of an EHLO line, uppercased.
fn keyword(line: &str) -> String {
    line.split([' ', '='])
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Gone,
}

impl Stream {
    fn sock(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(t) => Some(&t.sock),
            Stream::Gone => None,
        }
    }
}

struct Reply {
    code: u16,
    lines: Vec<String>,
}

/// The password as it may come back: itself and the base64 forms `AUTH
/// PLAIN` and `AUTH LOGIN` send it in.
fn secret_forms((user, password): (&str, &Secret)) -> Vec<String> {
    let p = password.expose();
    [
        base64(format!("\0{user}\0{p}").as_bytes()),
        base64(p.as_bytes()),
        p.to_string(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

struct Session {
    stream: Stream,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
    deadline: Instant,
    /// Never shown in an error (see [`secret_forms`]).
    secrets: Vec<String>,
}

impl Session {
    /// Server text for an error: secrets replaced, then cleaned and cut
    /// at `max` bytes.
    fn shown(&self, text: &str, max: usize) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "<redacted>");
        }
        clean(&out, max)
    }

    /// `code text` of a reply's first line, for errors.
    fn reply_text(&self, r: &Reply) -> String {
        let first = r.lines.first().map_or("", String::as_str);
        format!("{} {}", r.code, self.shown(first, 200))
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    fn set_timeouts(&self, what: &str) -> Result<(), String> {
        let left = crate::deadline::remaining(self.deadline).map_err(|e| format!("{what}: {e}"))?;
        let sock = self
            .stream
            .sock()
            .ok_or_else(|| format!("{what}: connection lost"))?;
        sock.set_read_timeout(Some(left))
            .and_then(|()| sock.set_write_timeout(Some(left)))
            .map_err(|e| format!("{what}: {e}"))
    }

    fn write_all(&mut self, data: &[u8], what: &str) -> Result<(), String> {
        for chunk in data.chunks(16 * 1024) {
            self.set_timeouts(what)?;
            let r = match &mut self.stream {
                Stream::Plain(s) => s.write_all(chunk).and_then(|()| s.flush()),
                Stream::Tls(t) => t.write_all(chunk).and_then(|()| t.flush()),
                Stream::Gone => Err(ErrorKind::NotConnected.into()),
            };
            r.map_err(|e| format!("{what}: {}", crate::deadline::io_text(&e)))?;
        }
        Ok(())
    }

    /// One reply line without its CRLF, at most [`MAX_LINE`] bytes.
    fn read_line(&mut self, what: &str) -> Result<String, String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                return Ok(String::from_utf8_lossy(line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err(format!("{what}: reply line longer than {MAX_LINE} bytes"));
            }
            self.set_timeouts(what)?;
            let mut chunk = [0u8; 1024];
            let r = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk),
                Stream::Tls(t) => t.read(&mut chunk),
                Stream::Gone => Err(ErrorKind::NotConnected.into()),
            };
            match r {
                Ok(0) => return Err(format!("{what}: the server closed the connection")),
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{what}: {}", crate::deadline::io_text(&e))),
            }
        }
    }

    /// A whole reply: `250-…` lines up to the `250 …` one.
    fn reply(&mut self, what: &str) -> Result<Reply, String> {
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(what)?;
            let bytes = line.as_bytes();
            let this: u16 = match line.get(..3).and_then(|c| c.parse().ok()) {
                Some(c) if (200..=599).contains(&c) && bytes.len() >= 3 => c,
                _ => {
                    return Err(format!(
                        "{what}: not an SMTP reply: {:?}",
                        self.shown(&line, 100)
                    ))
                }
            };
            if code.is_some_and(|c| c != this) {
                return Err(format!("{what}: reply codes differ within one reply"));
            }
            code = Some(this);
            let more = bytes.get(3) == Some(&b'-');
            if !more && !matches!(bytes.get(3), None | Some(b' ')) {
                return Err(format!(
                    "{what}: not an SMTP reply: {:?}",
                    self.shown(&line, 100)
                ));
            }
            lines.push(line.get(4..).unwrap_or_default().to_string());
            if !more {
                return Ok(Reply { code: this, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(format!("{what}: reply longer than {MAX_LINES} lines"));
            }
        }
    }

    fn expect_reply(&mut self, what: &str, ok: &[u16]) -> Result<Reply, String> {
        let reply = self.reply(what)?;
        if ok.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(format!(
                "{what}: the server answered {}",
                self.reply_text(&reply)
            ))
        }
    }

    /// Sends `line` (no CR or LF in it) and reads the reply.
    fn command(&mut self, line: &str, what: &str, ok: &[u16]) -> Result<Reply, String> {
        if line.contains(['\r', '\n']) {
            return Err(format!("{what}: line break in a command"));
        }
        self.write_all(format!("{line}\r\n").as_bytes(), what)?;
        self.expect_reply(what, ok)
    }

    /// `EHLO`; the extension lines of the reply.
    fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, String> {
        let reply = self.command(&format!("EHLO {helo}"), "EHLO", &[250])?;
        Ok(reply.lines.into_iter().skip(1).collect())
    }

    /// Turns the connection into TLS (handshake bounded by the deadline).
    fn start_tls(&mut self, tls: &(Arc<ClientConfig>, ServerName<'static>)) -> Result<(), String> {
        let mut sock = match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(s) => s,
            other => {
                self.stream = other;
                return Err("TLS requested twice".into());
            }
        };
        let mut conn =
            ClientConnection::new(tls.0.clone(), tls.1.clone()).map_err(|e| format!("TLS: {e}"))?;
        while conn.is_handshaking() {
            let left = crate::deadline::remaining(self.deadline)
                .map_err(|e| format!("TLS handshake: {e}"))?;
            sock.set_read_timeout(Some(left))
                .and_then(|()| sock.set_write_timeout(Some(left)))
                .map_err(|e| format!("TLS handshake: {e}"))?;
            conn.complete_io(&mut sock)
                .map_err(|e| format!("TLS handshake: {}", crate::deadline::io_text(&e)))?;
        }
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, sock)));
        Ok(())
    }

    fn auth(&mut self, ext: &[String], user: &str, password: &Secret) -> Result<(), String> {
        let mechanisms: Vec<String> = ext
            .iter()
            .filter(|l| keyword(l) == "AUTH")
            .flat_map(|l| {
                l.get(5..)
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_ascii_uppercase)
                    .collect::<Vec<_>>()
            })
            .collect();
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let token = base64(format!("\0{user}\0{}", password.expose()).as_bytes());
            let line = format!("AUTH PLAIN {token}");
            self.write_all(format!("{line}\r\n").as_bytes(), "AUTH PLAIN")?;
            let reply = self.reply("AUTH PLAIN")?;
            if reply.code != 235 {
                return Err(format!(
                    "AUTH PLAIN: authentication failed: the server answered {}",
                    self.reply_text(&reply)
                ));
            }
            Ok(())
        } else if mechanisms.iter().any(|m| m == "LOGIN") {
            self.command("AUTH LOGIN", "AUTH LOGIN", &[334])?;
            self.command(&base64(user.as_bytes()), "AUTH LOGIN (user name)", &[334])?;
            self.write_all(
                format!("{}\r\n", base64(password.expose().as_bytes())).as_bytes(),
                "AUTH LOGIN (password)",
            )?;
            let reply = self.reply("AUTH LOGIN (password)")?;
            if reply.code != 235 {
                return Err(format!(
                    "AUTH LOGIN: authentication failed: the server answered {}",
                    self.reply_text(&reply)
                ));
            }
            Ok(())
        } else if mechanisms.is_empty() {
            Err("a username is set but the server offers no AUTH".into())
        } else {
            Err(format!(
                "the server offers neither AUTH PLAIN nor AUTH LOGIN (only {})",
                self.shown(&mechanisms.join(" "), 100)
            ))
        }
    }
}

/// `message` as DATA: every line ending CRLF (a lone CR or LF becomes
/// one), a `.` doubled at the start of a line, then the `.` line.
pub(super) fn dot_stuff(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    let mut bytes = message.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            b => {
                if at_line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                at_line_start = false;
            }
        }
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Standard base64 with padding (RFC 4648).
pub(super) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("\0u\0p", "AHUAcA=="),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn an_echoed_password_is_replaced_before_the_text_is_cut_or_quoted() {
        let password = Secret::new(r#"pa"ss\w0rd-0123456789"#.into());
        let s = Session {
            stream: Stream::Gone,
            buf: Vec::new(),
            deadline: Instant::now(),
            secrets: secret_forms(("user", &password)),
        };
        let plain = base64(format!("\0user\0{}", password.expose()).as_bytes());
        let login = base64(password.expose().as_bytes());
        for echo in [
            format!("{}{}", ".".repeat(190), password.expose()),
            format!("wanted {} got {plain} or {login}", password.expose()),
        ] {
            let shown = format!("{:?}", s.shown(&echo, 200));
            assert!(shown.contains("<redacted>"), "{shown}");
            for piece in ["pa\\\"ss", "pa\"ss", "w0rd", &plain[8..16], &login[..8]] {
                assert!(!shown.contains(piece), "{piece:?} in {shown}");
            }
        }
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf_line_endings() {
        assert_eq!(
            dot_stuff("a\r\n.\r\n..b\nc\r.d"),
            b"a\r\n..\r\n...b\r\nc\r\n..d\r\n.\r\n".to_vec()
        );
        assert_eq!(dot_stuff("x\r\n"), b"x\r\n.\r\n".to_vec());
    }
}
