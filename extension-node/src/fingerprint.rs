//! What a probe said in its first bytes: the protocol it spoke and the few
//! details that identify the tool or the attack (HTTP request line and
//! User-Agent, TLS SNI and JA3, SSH client version, RDP cookie user, SMB
//! dialects, Redis/MySQL/FTP/SMTP/Telnet commands and credentials).
//!
//! [`fingerprint`] is a pure function over the bytes a tripwire read (a few
//! hundred, after its banner where the protocol speaks first), so it can be
//! unit tested and fuzzed without sockets (`fuzz/`: one `fp_*` target per
//! protocol family, seeded with real client captures). The bytes come from attackers:
//! every parser reads through bounds-checked accessors and checked
//! arithmetic, stops quietly where the input ends or lies, and never panics.
//! Detection goes by content first (a TLS ClientHello on port 80 is TLS) and
//! uses the port only where bytes alone are ambiguous (inline Redis versus an
//! FTP command) or say nothing at all.
//!
//! The result is bounded whatever arrives: at most [`MAX_FIELDS`] fields of
//! at most [`MAX_FIELD`] bytes each ([`MAX_JA3`] for the JA3 string), with
//! control characters replaced so values are safe to print in a log line.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::banner::service_name;
use crate::reader::Reader;

/// Longest value kept per field (longer ones are cut, on a char boundary).
pub const MAX_FIELD: usize = 128;

/// Longest JA3 string kept. A JA3 string lists every cipher and extension
/// number, so a common ClientHello already gives 150–300 characters and
/// cutting it at [`MAX_FIELD`] would make it useless; the hash is always
/// computed over the whole string.
pub const MAX_JA3: usize = 1024;

/// Most fields in one [`Fingerprint`].
pub const MAX_FIELDS: usize = 8;

/// At most this many bytes of text are examined for text protocols (after
/// Telnet negotiation is removed); commands and credentials come first.
const TEXT_MAX: usize = 1024;

/// The protocol a probe spoke and what it revealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// "http", "tls", "ssh", "rdp", "x224", "smb", "netbios-ssn", "redis", "mysql",
    /// "ftp", "smtp", "telnet", "pop3", "imap", "text", or the port's usual
    /// service (see [`service_name`]) when the bytes say nothing.
    pub protocol: &'static str,
    /// Field name and value, in the order found; at most [`MAX_FIELDS`],
    /// each name at most once.
    pub fields: Vec<(&'static str, String)>,
}

impl Fingerprint {
    fn new(protocol: &'static str) -> Self {
        Fingerprint {
            protocol,
            fields: Vec::new(),
        }
    }

    /// The value of field `name`, if the probe revealed it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The fingerprint as event data: `"protocol"` and one string per field.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("protocol".into(), self.protocol.into());
        for (k, v) in &self.fields {
            m.insert((*k).into(), v.clone().into());
        }
        m
    }

    /// Adds a field from attacker bytes, cut to [`MAX_FIELD`]. The first
    /// value of a name wins (a second `USER` line does not replace the
    /// first), empty values are left out, and fields past [`MAX_FIELDS`]
    /// are dropped.
    fn push(&mut self, name: &'static str, value: &[u8]) {
        self.push_max(name, value, MAX_FIELD);
    }

    fn push_max(&mut self, name: &'static str, value: &[u8], max: usize) {
        if value.is_empty() || self.fields.len() >= MAX_FIELDS || self.field(name).is_some() {
            return;
        }
        self.fields.push((name, clean(value, max)));
    }
}

/// `bytes` as printable text of at most `max` bytes: invalid UTF-8 and
/// control characters become U+FFFD, so that a value cannot rewrite a
/// terminal or forge a log line when someone prints it.
pub(crate) fn clean(bytes: &[u8], max: usize) -> String {
    // Every input byte gives at least one output byte, so nothing past
    // max + 3 (one more UTF-8 character) can survive the cut: skip it.
    let head = bytes.get(..max.saturating_add(3)).unwrap_or(bytes);
    let mut s: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    cut(&mut s, max);
    s
}

/// Shortens `s` to at most `max` bytes without splitting a character.
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    // Index 0 is always a boundary, so this ends.
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.truncate(end);
}

/// Fingerprints the first bytes `first` a client sent to `dst_port`.
///
/// Never panics and never reads past `first`; an empty `first` (the client
/// connected and said nothing) gives the port's service with `silent:
/// "true"`, and bytes no parser recognises give the port's service with no
/// field.
pub fn fingerprint(dst_port: u16, first: &[u8]) -> Fingerprint {
    if first.is_empty() {
        let mut f = Fingerprint::new(service_name(dst_port));
        f.push("silent", b"true");
        return f;
    }
    // Most specific first: binary formats with magic bytes and lengths that
    // must agree, then text formats, then the port.
    tls(first)
        .or_else(|| ssh(first))
        .or_else(|| http(first))
        .or_else(|| rdp(dst_port, first))
        .or_else(|| smb(first))
        .or_else(|| netbios_session(first))
        .or_else(|| mysql(first))
        .or_else(|| sslv2(first))
        .or_else(|| redis_resp(first))
        .or_else(|| text(dst_port, first))
        .unwrap_or_else(|| Fingerprint::new(service_name(dst_port)))
}

/// Splits at the first `\n`: the line without its `\r\n` or `\n`, and the
/// rest (`None` when no line break arrived: the line was cut).
fn split_line(buf: &[u8]) -> (&[u8], Option<&[u8]>) {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let line = buf.get(..i).unwrap_or_default();
            (
                line.strip_suffix(b"\r").unwrap_or(line),
                buf.get(i.saturating_add(1)..),
            )
        }
        None => (buf, None),
    }
}

/// The lines of `buf`, split at `\n` with a trailing `\r` removed; the last
/// one may be cut.
fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Splits at the first run of spaces: first word and the rest.
fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => {
            let rest = line.get(i..).unwrap_or_default();
            let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
            (
                line.get(..i).unwrap_or_default(),
                rest.get(start..).unwrap_or_default(),
            )
        }
        None => (line, &[]),
    }
}

fn upper(word: &[u8]) -> Vec<u8> {
    word.to_ascii_uppercase()
}

// ---------------------------------------------------------------------------
// TLS

/// GREASE values (RFC 8701) are random placeholders clients insert to keep
/// servers tolerant; JA3 leaves them out so one client gives one hash.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn tls_version_name(v: u16) -> String {
    match v {
        0x0002 => "SSL2.0".into(),
        0x0300 => "SSL3.0".into(),
        0x0301 => "TLS1.0".into(),
        0x0302 => "TLS1.1".into(),
        0x0303 => "TLS1.2".into(),
        0x0304 => "TLS1.3".into(),
        _ => format!("0x{v:04x}"),
    }
}

/// What was read of a ClientHello; a field stays `None` when the capture
/// ended before it.
#[derive(Default)]
struct Hello<'a> {
    version: Option<u16>,
    ciphers: Option<&'a [u8]>,
    /// The extensions block, only when it arrived whole (JA3 needs all).
    extensions: Option<&'a [u8]>,
    sni: Option<&'a [u8]>,
    alpn: Option<String>,
    supported_version: Option<u16>,
    /// The whole ClientHello arrived.
    complete: bool,
}

/// A TLS ClientHello (record type 22, handshake type 1): SNI, version, ALPN
/// and the JA3 fingerprint. A hello cut short still gives what arrived
/// whole, and `truncated: "true"`; JA3 needs every extension, so a cut
/// hello has none.
fn tls(first: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader::new(first);
    if r.u8()? != 0x16 {
        return None;
    }
    let [major, minor] = r.array()?;
    if major != 3 || minor > 4 {
        return None;
    }
    let record_len = usize::from(r.u16be()?);
    let mut record = Reader::new(r.take_up_to(record_len));
    if record.u8()? != 1 {
        return None;
    }
    let mut f = Fingerprint::new("tls");
    let mut hello = Hello::default();
    if let Some(len) = record.u24be() {
        // The hello can continue in a next record or past our read; either
        // way we only see this part.
        let whole = record.remaining() >= len;
        let mut h = Reader::new(record.take_up_to(len));
        // Stops at the first field that did not arrive whole.
        let parsed = client_hello(&mut h, &mut hello);
        hello.complete = whole && parsed.is_some();
    }
    if let Some(sni) = hello.sni {
        f.push("sni", sni);
    }
    let version = hello.supported_version.or(hello.version);
    if let Some(v) = version {
        f.push("tls_version", tls_version_name(v).as_bytes());
    }
    if let Some(alpn) = &hello.alpn {
        f.push("alpn", alpn.as_bytes());
    }
    if let Some(ja3) = ja3(&hello) {
        let hash = Md5::digest(ja3.as_bytes());
        let mut hex = String::with_capacity(32);
        for b in hash {
            let _ = write!(hex, "{b:02x}");
        }
        f.push_max("ja3", ja3.as_bytes(), MAX_JA3);
        f.push("ja3_hash", hex.as_bytes());
    }
    if !hello.complete {
        f.push("truncated", b"true");
    }
    Some(f)
}

/// Reads a ClientHello body into `out` field by field; `None` where it was
/// cut (what was read before stays in `out`).
fn client_hello<'a>(h: &mut Reader<'a>, out: &mut Hello<'a>) -> Option<()> {
    out.version = Some(h.u16be()?);
    h.take(32)?; // random
    let session_id = h.u8()?;
    h.take(usize::from(session_id))?;
    let ciphers = h.u16be()?;
    out.ciphers = Some(h.take(usize::from(ciphers))?);
    let compression = h.u8()?;
    h.take(usize::from(compression))?;
    if h.is_empty() {
        // A hello without extensions (SSL 3.0 style) is complete here.
        out.extensions = Some(&[]);
        return Some(());
    }
    let ext_len = usize::from(h.u16be()?);
    let block = h.take_up_to(ext_len);
    let mut e = Reader::new(block);
    while !e.is_empty() {
        let ty = e.u16be()?;
        let len = e.u16be()?;
        let body = e.take(usize::from(len))?;
        match ty {
            0 => out.sni = out.sni.or_else(|| server_name(body)),
            16 => out.alpn = out.alpn.take().or_else(|| alpn(body)),
            43 => {
                out.supported_version = out.supported_version.or_else(|| supported_versions(body))
            }
            _ => {}
        }
    }
    (block.len() == ext_len).then_some(())?;
    out.extensions = Some(block);
    Some(())
}

/// The first host_name in a server_name extension (RFC 6066 3).
fn server_name(body: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(body);
    let list_len = usize::from(r.u16be()?);
    let mut list = Reader::new(r.take_up_to(list_len));
    while !list.is_empty() {
        let name_type = list.u8()?;
        let len = usize::from(list.u16be()?);
        let name = list.take(len)?;
        if name_type == 0 {
            return Some(name);
        }
    }
    None
}

/// The protocols of an ALPN extension (RFC 7301), comma-separated.
fn alpn(body: &[u8]) -> Option<String> {
    let mut r = Reader::new(body);
    let list_len = usize::from(r.u16be()?);
    let mut list = Reader::new(r.take_up_to(list_len));
    let mut out = String::new();
    while !list.is_empty() && out.len() <= MAX_FIELD {
        let len = usize::from(list.u8()?);
        let proto = list.take(len)?;
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&String::from_utf8_lossy(proto));
    }
    (!out.is_empty()).then_some(out)
}

/// The highest real version a supported_versions extension (RFC 8446
/// 4.2.1) offers: a TLS 1.3 client says 1.2 in the legacy field.
fn supported_versions(body: &[u8]) -> Option<u16> {
    let mut r = Reader::new(body);
    let len = usize::from(r.u8()?);
    let list = r.take_up_to(len);
    list.chunks_exact(2)
        .map(|c| c.iter().fold(0u16, |acc, &b| acc << 8 | u16::from(b)))
        .filter(|&v| !is_grease(v))
        .max()
}

/// The u16 values of a big-endian list, GREASE removed, joined with `-`.
fn join_u16(list: &[u8], out: &mut String) {
    let mut first = true;
    for c in list.chunks_exact(2) {
        let v = c.iter().fold(0u16, |acc, &b| acc << 8 | u16::from(b));
        if is_grease(v) {
            continue;
        }
        if !first {
            out.push('-');
        }
        first = false;
        let _ = write!(out, "{v}");
    }
}

/// The JA3 string (Salesforce, 2017): `SSLVersion,Ciphers,Extensions,
/// EllipticCurves,EllipticCurvePointFormats`, decimal values joined with
/// `-`, GREASE left out. Only for a complete hello: a partial list would
/// give a hash that matches nothing.
fn ja3(hello: &Hello<'_>) -> Option<String> {
    if !hello.complete {
        return None;
    }
    let (version, ciphers, extensions) = (hello.version?, hello.ciphers?, hello.extensions?);
    let mut out = String::new();
    let _ = write!(out, "{version},");
    join_u16(ciphers, &mut out);
    out.push(',');
    let mut groups: &[u8] = &[];
    let mut formats: &[u8] = &[];
    let mut e = Reader::new(extensions);
    let mut first = true;
    while let (Some(ty), Some(len)) = (e.u16be(), e.u16be()) {
        let body = e.take(usize::from(len))?;
        if is_grease(ty) {
            continue;
        }
        if !first {
            out.push('-');
        }
        first = false;
        let _ = write!(out, "{ty}");
        let mut b = Reader::new(body);
        match ty {
            // supported_groups: u16 length, then u16 group ids.
            10 => {
                let n = b.u16be().map_or(0, usize::from);
                groups = b.take_up_to(n);
            }
            // ec_point_formats: u8 length, then u8 formats.
            11 => {
                let n = b.u8().map_or(0, usize::from);
                formats = b.take_up_to(n);
            }
            _ => {}
        }
    }
    out.push(',');
    join_u16(groups, &mut out);
    out.push(',');
    for (i, p) in formats.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        let _ = write!(out, "{p}");
    }
    Some(out)
}

/// An SSL 2.0-format ClientHello (two-byte header with the top bit set,
/// message type 1), which old scanners still send to find SSLv2 and SSLv3
/// servers. JA3 is not defined for it.
fn sslv2(first: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader::new(first);
    let [h0, h1] = r.array()?;
    let len = u16::from(h0 & 0x7f) << 8 | u16::from(h1);
    if h0 & 0x80 == 0 || len < 9 || r.u8()? != 1 {
        return None;
    }
    let version = r.u16be()?;
    if version != 0x0002 && !(0x0300..=0x0303).contains(&version) {
        return None;
    }
    let mut f = Fingerprint::new("tls");
    f.push("tls_version", tls_version_name(version).as_bytes());
    f.push("sslv2_hello", b"true");
    Some(f)
}

// ---------------------------------------------------------------------------
// SSH, HTTP

/// An SSH identification string (RFC 4253 4.2): `SSH-2.0-software comment`.
fn ssh(first: &[u8]) -> Option<Fingerprint> {
    if !first.starts_with(b"SSH-") {
        return None;
    }
    let mut f = Fingerprint::new("ssh");
    f.push("client_version", split_line(first).0);
    Some(f)
}

/// Methods that start an HTTP/1.x request (and `PRI`, the HTTP/2 preface).
const HTTP_METHODS: [&[u8]; 16] = [
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"SEARCH",
    b"PRI",
];

/// An HTTP request: method, path, version, Host and User-Agent.
fn http(first: &[u8]) -> Option<Fingerprint> {
    let (line, rest) = split_line(first);
    let (method, target) = split_word(line);
    if !HTTP_METHODS.contains(&method) || target.is_empty() {
        return None;
    }
    // The version is the last word; without one this is HTTP/0.9 and the
    // whole remainder is the path.
    let (path, version) = match target.iter().rposition(|&b| b == b' ') {
        Some(i) => {
            let v = target.get(i.saturating_add(1)..).unwrap_or_default();
            if v.starts_with(b"HTTP/") {
                (target.get(..i).unwrap_or_default(), Some(v))
            } else {
                (target, None)
            }
        }
        None if target.starts_with(b"HTTP/") => return None,
        None => (target, None),
    };
    let mut f = Fingerprint::new("http");
    f.push("method", method);
    f.push("path", path);
    if let Some(v) = version {
        f.push("version", v);
    }
    for header in lines(rest.unwrap_or_default()) {
        if header.is_empty() {
            break; // end of the headers
        }
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = header.get(..colon).unwrap_or_default();
        let value = header.get(colon.saturating_add(1)..).unwrap_or_default();
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case(b"host") {
            f.push("host", value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            f.push("user_agent", value);
        }
    }
    Some(f)
}

// ---------------------------------------------------------------------------
// RDP, SMB, NetBIOS

/// An RDP connection request: TPKT (RFC 1006) carrying an X.224 Connection
/// Request, with the optional `Cookie: mstshash=USER` line that mstsc and
/// most brute-forcers send and the RDP_NEG_REQ naming the security
/// protocols asked for (MS-RDPBCGR 2.2.1.1).
fn rdp(port: u16, first: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader::new(first);
    if r.u8()? != 3 || r.u8()? != 0 {
        return None;
    }
    let tpkt_len = usize::from(r.u16be()?);
    let _length_indicator = r.u8()?;
    // Connection Request TPDU; the low nibble is a credit, usually 0.
    if tpkt_len < 11 || r.u8()? & 0xf0 != 0xe0 {
        return None;
    }
    r.take(5)?; // destination and source references, class
    let mut data = r.take_up_to(tpkt_len.saturating_sub(11));
    let mut f = Fingerprint::new("rdp");
    let mut rdp_seen = false;
    if let Some(rest) = data.strip_prefix(b"Cookie: ") {
        let (cookie, after) = split_line(rest);
        if let Some(user) = cookie.strip_prefix(b"mstshash=") {
            f.push("user", user);
        } else if let Some(token) = cookie.strip_prefix(b"msts=") {
            f.push("routing_token", token);
        }
        rdp_seen = true;
        data = after.unwrap_or_default();
    }
    let mut neg = Reader::new(data);
    if let (Some(1), Some(_flags), Some(8), Some(protocols)) =
        (neg.u8(), neg.u8(), neg.u16le(), neg.u32le())
    {
        f.push("requested_protocols", rdp_protocols(protocols).as_bytes());
        rdp_seen = true;
    }
    if !rdp_seen {
        // A bare X.224 request is also how S7 PLCs (port 102) are reached.
        f.protocol = match service_name(port) {
            "unknown" => "x224",
            known => known,
        };
    }
    Some(f)
}

/// The requestedProtocols flags of an RDP_NEG_REQ, by name.
fn rdp_protocols(p: u32) -> String {
    if p == 0 {
        return "rdp".into();
    }
    const NAMES: [(u32, &str); 5] = [
        (0x1, "ssl"),
        (0x2, "hybrid"),
        (0x4, "rdstls"),
        (0x8, "hybrid_ex"),
        (0x10, "rdsaad"),
    ];
    let mut out = String::new();
    for (bit, name) in NAMES {
        if p & bit != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
        }
    }
    let unknown = NAMES.iter().fold(p, |acc, (bit, _)| acc & !bit);
    if unknown != 0 {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "0x{unknown:x}");
    }
    out
}

/// An SMB message after a NetBIOS session header (or the same 4-byte
/// header on direct TCP 445): SMB1 or SMB2 Negotiate and its dialects.
fn smb(first: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader::new(first);
    if r.u8()? != 0 {
        return None;
    }
    let len = r.u24be()?;
    let msg = r.take_up_to(len);
    let mut f = Fingerprint::new("smb");
    match msg.get(..4)? {
        b"\xffSMB" => smb1(msg, &mut f),
        b"\xfeSMB" => smb2(msg, &mut f),
        // An encrypted SMB3 message: nothing more to read.
        b"\xfdSMB" => f.push("version", b"3"),
        _ => return None,
    }
    Some(f)
}

/// SMB1 (MS-CIFS 2.2.4.52.1): after the 32-byte header, WordCount, the
/// words, ByteCount, then dialects as 0x02 and a NUL-terminated name.
fn smb1(msg: &[u8], f: &mut Fingerprint) {
    f.push("version", b"1");
    let mut r = Reader::new(msg);
    let Some(header) = r.take(32) else { return };
    let command = header.get(4).copied().unwrap_or_default();
    if command != 0x72 {
        f.push("command", format!("0x{command:02x}").as_bytes());
        return;
    }
    let mut dialects = String::new();
    let _ = (|| -> Option<()> {
        let words = usize::from(r.u8()?);
        r.take(words.checked_mul(2)?)?;
        let count = usize::from(r.u16le()?);
        let mut d = Reader::new(r.take_up_to(count));
        // Stop once past the field limit: the rest would be cut anyway.
        while d.u8()? == 2 && dialects.len() <= MAX_FIELD {
            let name = d.cstr()?;
            if !dialects.is_empty() {
                dialects.push(',');
            }
            dialects.push_str(&String::from_utf8_lossy(name));
        }
        Some(())
    })();
    f.push("dialects", dialects.as_bytes());
}

/// SMB2 (MS-SMB2 2.2.3): a 64-byte header, then the NEGOTIATE request whose
/// dialect list starts 36 bytes into the body.
fn smb2(msg: &[u8], f: &mut Fingerprint) {
    f.push("version", b"2");
    let mut dialects = String::new();
    let _ = (|| -> Option<()> {
        let mut r = Reader::new(msg);
        r.take(12)?; // magic, structure size, credit charge, status
        let command = r.u16le()?;
        if command != 0 {
            f.push("command", format!("0x{command:04x}").as_bytes());
            return None;
        }
        r.take(64 - 14)?; // rest of the header
        let _structure_size = r.u16le()?;
        let count = r.u16le()?;
        r.take(32)?; // security mode, reserved, capabilities, GUID, contexts
        for _ in 0..count {
            if dialects.len() > MAX_FIELD {
                break;
            }
            let d = r.u16le()?;
            if !dialects.is_empty() {
                dialects.push(',');
            }
            let _ = write!(dialects, "0x{d:04x}");
        }
        Some(())
    })();
    f.push("dialects", dialects.as_bytes());
}

/// A NetBIOS session request (RFC 1002 4.3.2), sent first on port 139:
/// the called and calling NetBIOS names.
fn netbios_session(first: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader::new(first);
    if r.u8()? != 0x81 {
        return None;
    }
    let len = r.u24be()?;
    let mut body = Reader::new(r.take_up_to(len));
    let called = netbios_name(&mut body)?;
    let mut f = Fingerprint::new("netbios-ssn");
    f.push("called", called.as_bytes());
    if let Some(calling) = netbios_name(&mut body) {
        f.push("calling", calling.as_bytes());
    }
    Some(f)
}

/// One first-level encoded NetBIOS name (RFC 1001 14.1): 32 letters 'A'–'P',
/// two per byte; shown as `NAME<xx>` with the 16th byte (the service
/// suffix) in hex, as Windows tools do.
fn netbios_name(r: &mut Reader<'_>) -> Option<String> {
    if r.u8()? != 32 {
        return None;
    }
    let encoded = r.take(32)?;
    // Scope labels follow until a zero length.
    loop {
        let label = usize::from(r.u8()?);
        if label == 0 {
            break;
        }
        r.take(label)?;
    }
    let mut raw = [0u8; 16];
    for (out, pair) in raw.iter_mut().zip(encoded.chunks_exact(2)) {
        let (&hi, &lo) = (pair.first()?, pair.get(1)?);
        let (hi, lo) = (hi.checked_sub(b'A')?, lo.checked_sub(b'A')?);
        if hi > 15 || lo > 15 {
            return None;
        }
        *out = hi << 4 | lo;
    }
    let (suffix, name) = raw.split_last()?;
    let name = String::from_utf8_lossy(name.trim_ascii_end()).into_owned();
    Some(format!("{name}<{suffix:02x}>"))
}

// ---------------------------------------------------------------------------
// MySQL, Redis

const MYSQL_CONNECT_WITH_DB: u32 = 0x8;
const MYSQL_PROTOCOL_41: u32 = 0x200;
const MYSQL_SSL: u32 = 0x800;
const MYSQL_SECURE_CONNECTION: u32 = 0x8000;
const MYSQL_PLUGIN_AUTH: u32 = 0x8_0000;
const MYSQL_CONNECT_ATTRS: u32 = 0x10_0000;
const MYSQL_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;

/// A MySQL HandshakeResponse41, the client's answer to our greeting: user,
/// database, auth plugin and the client's self-description (connection
/// attributes). Recognised by sequence 1, the CLIENT_PROTOCOL_41 flag and
/// the zero filler, which random bytes practically never have.
fn mysql(first: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader::new(first);
    let len = r.u24le()?;
    if r.u8()? != 1 || len < 32 {
        return None;
    }
    let mut p = Reader::new(r.take_up_to(len));
    let caps = p.u32le()?;
    if caps & MYSQL_PROTOCOL_41 == 0 {
        return None;
    }
    p.take(5)?; // max packet size, character set
                // 23 reserved bytes; MariaDB clients put capabilities in the last 4.
    if p.take(23)?.iter().take(19).any(|&b| b != 0) {
        return None;
    }
    let mut f = Fingerprint::new("mysql");
    if p.is_empty() {
        // A 32-byte packet is an SSLRequest: TLS follows, the user is inside.
        if caps & MYSQL_SSL != 0 {
            f.push("ssl_request", b"true");
        }
        return Some(f);
    }
    let _ = mysql_login(&mut p, caps, &mut f);
    Some(f)
}

/// The variable part of a HandshakeResponse41; stops where the capture ends.
fn mysql_login(p: &mut Reader<'_>, caps: u32, f: &mut Fingerprint) -> Option<()> {
    let user = p.cstr().or_else(|| Some(p.take_up_to(MAX_FIELD)))?;
    f.push("user", user);
    let auth_len = if caps & MYSQL_PLUGIN_AUTH_LENENC != 0 {
        lenenc(p)?
    } else if caps & MYSQL_SECURE_CONNECTION != 0 {
        usize::from(p.u8()?)
    } else {
        p.cstr()?;
        0
    };
    p.take(auth_len)?;
    if caps & MYSQL_CONNECT_WITH_DB != 0 {
        f.push("database", p.cstr()?);
    }
    if caps & MYSQL_PLUGIN_AUTH != 0 {
        f.push("auth_plugin", p.cstr()?);
    }
    if caps & MYSQL_CONNECT_ATTRS != 0 {
        let total = lenenc(p)?;
        let mut attrs = Reader::new(p.take_up_to(total));
        while !attrs.is_empty() {
            let key = lenenc_str(&mut attrs)?;
            let value = lenenc_str(&mut attrs)?;
            match key {
                b"_client_name" => f.push("client_name", value),
                b"_client_version" => f.push("client_version", value),
                b"program_name" => f.push("program_name", value),
                _ => {}
            }
        }
    }
    Some(())
}

/// A MySQL length-encoded integer.
pub(crate) fn lenenc(r: &mut Reader<'_>) -> Option<usize> {
    match r.u8()? {
        n @ 0..=0xfa => Some(usize::from(n)),
        0xfc => r.u16le().map(usize::from),
        0xfd => r.u24le(),
        0xfe => usize::try_from(u64::from_le_bytes(r.array()?)).ok(),
        _ => None, // 0xfb (NULL) and 0xff (error) are not lengths
    }
}

pub(crate) fn lenenc_str<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let n = lenenc(r)?;
    r.take(n)
}

/// A Redis command in RESP (`*N\r\n$len\r\narg\r\n…`), as redis-cli and
/// client libraries send: the command, its argument count, and AUTH
/// credentials.
fn redis_resp(first: &[u8]) -> Option<Fingerprint> {
    let rest = first.strip_prefix(b"*")?;
    let (count_line, rest) = split_line(rest);
    let count = decimal(count_line)?;
    let rest = rest?;
    // Demand a bulk string next, so that text starting with '*' (an IMAP
    // untagged line, a glob) is not taken for Redis.
    if !rest.is_empty() && !rest.starts_with(b"$") {
        return None;
    }
    let mut f = Fingerprint::new("redis");
    let mut r = Reader::new(rest);
    let mut args: [&[u8]; 3] = [&[]; 3];
    let mut got = 0;
    for slot in args.iter_mut().take(count.min(3)) {
        let Some(bulk) = bulk_string(&mut r) else {
            break;
        };
        *slot = bulk;
        got += 1;
    }
    let [command, a1, a2] = args;
    redis_fields(&mut f, command, count.saturating_sub(1), [a1, a2], got);
    Some(f)
}

/// One RESP bulk string: `$len\r\n` then `len` bytes and `\r\n`.
fn bulk_string<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    if r.u8()? != b'$' {
        return None;
    }
    let end = r.rest.iter().position(|&b| b == b'\n')?;
    let line = r.take(end)?;
    r.u8()?;
    let len = decimal(line.strip_suffix(b"\r").unwrap_or(line))?;
    let value = r.take(len)?;
    // The trailing \r\n may be past the read; the value is whole anyway.
    let _ = r.take(2);
    Some(value)
}

/// A short non-negative decimal (RESP counts and lengths).
fn decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        let d = char::from(d).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(usize::try_from(d).ok()?)
    })
}

/// Redis fields shared by RESP and inline commands. `seen` is how many of
/// command and the two first arguments arrived.
fn redis_fields(f: &mut Fingerprint, command: &[u8], args: usize, first: [&[u8]; 2], seen: usize) {
    let command = upper(command);
    f.push("command", &command);
    f.push("args", args.to_string().as_bytes());
    if command == b"AUTH" {
        let [a1, a2] = first;
        match (args, seen) {
            (1, 2..) => f.push("password", a1),
            (2, 3..) => {
                f.push("user", a1);
                f.push("password", a2);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Text protocols and Telnet

const IAC: u8 = 0xff;
const SB: u8 = 250;
const SE: u8 = 240;

/// Copies `input` into `out` without Telnet commands (RFC 854): option
/// negotiation (IAC WILL/WONT/DO/DONT opt) is listed in `options`,
/// subnegotiation (IAC SB … IAC SE) skipped, IAC IAC kept as one 0xFF.
/// Returns whether `input` starts with a Telnet command, as a Telnet
/// client's first bytes do (an 0xFF later on is as likely binary data).
fn strip_telnet(input: &[u8], out: &mut heapless::Vec<u8, TEXT_MAX>, options: &mut String) -> bool {
    let starts = matches!(input, [IAC, SE..=254, ..]);
    let mut it = input.iter().copied();
    while let Some(b) = it.next() {
        let data = if b != IAC {
            b
        } else {
            match it.next() {
                None => break,
                Some(IAC) => IAC,
                Some(cmd @ 251..=254) => {
                    let verb = match cmd {
                        251 => "WILL",
                        252 => "WONT",
                        253 => "DO",
                        _ => "DONT",
                    };
                    let Some(opt) = it.next() else { break };
                    if options.len() <= MAX_FIELD {
                        if !options.is_empty() {
                            options.push(',');
                        }
                        let _ = write!(options, "{verb} {opt}");
                    }
                    continue;
                }
                Some(SB) => {
                    let mut prev = 0;
                    for c in it.by_ref() {
                        if prev == IAC && c == SE {
                            break;
                        }
                        // IAC IAC inside is data, not the start of IAC SE.
                        prev = if prev == IAC && c == IAC { 0 } else { c };
                    }
                    continue;
                }
                // Two-byte commands (NOP, Data Mark, Break, IP, AO, AYT, EC,
                // EL, GA, SE) and non-commands: dropped, as a lenient server
                // does.
                Some(_) => continue,
            }
        };
        if out.push(data).is_err() {
            break; // enough text
        }
    }
    starts
}

/// What a person or a script types: UTF-8 (the last character may be cut
/// by the read) without control characters other than tab and the line
/// ends Telnet uses (CR, LF, NUL). One binary byte anywhere means binary.
fn is_text(buf: &[u8]) -> bool {
    let valid = match std::str::from_utf8(buf) {
        Ok(s) => s,
        // Only an incomplete last character may be invalid.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(buf.get(..e.valid_up_to()).unwrap_or_default()).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n' | '\0'))
}

/// Line-based text protocols. Telnet negotiation is removed first; the
/// port then says whether the lines are FTP/SMTP/POP3/IMAP commands, Redis
/// inline commands or a Telnet login.
fn text(port: u16, first: &[u8]) -> Option<Fingerprint> {
    let mut buf = heapless::Vec::<u8, TEXT_MAX>::new();
    let mut options = String::new();
    let negotiated = strip_telnet(first, &mut buf, &mut options);
    // Telnet clients end lines with CR LF, CR NUL or a bare CR.
    let mut rest = buf
        .split(|&b| b == b'\r' || b == b'\n' || b == 0)
        .filter(|l| !l.is_empty());
    let first_line = rest
        .next()
        .filter(|l| is_text(&buf) && l.iter().any(u8::is_ascii_alphanumeric));
    let service = service_name(port);
    let protocol = match service {
        "ftp" | "smtp" | "telnet" | "pop3" | "imap" | "redis" => service,
        _ if negotiated => "telnet",
        _ if first_line.is_some() => "text",
        _ => return None,
    };
    let mut f = Fingerprint::new(protocol);
    let Some(first_line) = first_line else {
        // Only negotiation (or nothing readable) on a known port.
        f.push("telnet_options", options.as_bytes());
        return Some(f);
    };
    match protocol {
        // We sent a login prompt: the first line is a user name, and bots
        // that do not wait for "Password:" send the password next.
        "telnet" => {
            f.push("user", first_line);
            if let Some(password) = rest.next() {
                f.push("password", password);
            }
        }
        "redis" => {
            let mut words = first_line.split(|&b| b == b' ').filter(|w| !w.is_empty());
            let command = words.next().unwrap_or_default();
            let (a1, a2) = (words.next(), words.next());
            let args = usize::from(a1.is_some()) + usize::from(a2.is_some()) + words.count();
            let seen = 1 + usize::from(a1.is_some()) + usize::from(a2.is_some());
            redis_fields(
                &mut f,
                command,
                args,
                [a1.unwrap_or_default(), a2.unwrap_or_default()],
                seen,
            );
        }
        _ => {
            // FTP, SMTP, POP3, IMAP and unknown text: a few command lines.
            let imap = protocol == "imap";
            for (i, line) in std::iter::once(first_line).chain(rest).take(8).enumerate() {
                let (word, arg) = split_word(line);
                // IMAP lines start with a client-chosen tag.
                let (word, arg) = if imap { split_word(arg) } else { (word, arg) };
                let word = upper(word);
                if i == 0 {
                    f.push("command", &word);
                }
                match word.as_slice() {
                    b"USER" => f.push("user", arg),
                    b"PASS" => f.push("password", arg),
                    b"EHLO" | b"HELO" => f.push("helo", arg),
                    b"LOGIN" if imap => {
                        let (user, rest) = split_word(arg);
                        let (password, _) = split_word(rest);
                        f.push("user", unquote(user));
                        f.push("password", unquote(password));
                    }
                    _ => {}
                }
            }
        }
    }
    f.push("telnet_options", options.as_bytes());
    Some(f)
}

/// An IMAP quoted string without its quotes.
fn unquote(s: &[u8]) -> &[u8] {
    s.strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Asserts the protocol and exactly these fields, in this order.
    fn check(f: &Fingerprint, protocol: &str, fields: &[(&str, &str)]) {
        assert_eq!(f.protocol, protocol, "{f:?}");
        let got: Vec<(&str, &str)> = f.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, fields, "{f:?}");
    }

    // --- Captures -------------------------------------------------------
    //
    // Recorded on Debian 12 with a Python listener on 127.0.0.1 that kept
    // the first 512 bytes each client sent.

    /// `openssl s_client -connect 127.0.0.1:PORT -servername example.test`
    /// (OpenSSL 3.0): a complete 318-byte ClientHello.
    const OPENSSL_HELLO: &str = "\
        1603010139010001350303784bc8e5cd6591db11d922c21d596849128572ac6b\
        76037168c931abf128e2462056540726b139bae07eb06d7e43be101ffd79587e\
        65ce09a2b667cbb9f1f8e769003e130213031301c02cc030009fcca9cca8ccaa\
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d\
        009c003d003c0035002f00ff010000ae00000011000f00000c6578616d706c65\
        2e74657374000b000403000102000a00160014001d0017001e00190018010001\
        01010201030104002300000016000000170000000d002a002804030503060308\
        0708080809080a080b0804080508060401050106010303030103020402050206\
        02002b0009080304030303020301002d00020101003300260024001d00201e99\
        80339c1994d7023ce067dc2514954c9a2121a30a46897cc6a6aaf5f6e41a";

    /// JA3 of [`OPENSSL_HELLO`], computed with an independent Python
    /// script (struct + hashlib) over the same capture.
    const OPENSSL_JA3: &str = "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-\
        49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-\
        60-53-47-255,0-11-10-35-22-23-13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2";
    const OPENSSL_JA3_HASH: &str = "a3afc2c46ba4a7d7fbe1cfb7a3031c2f";

    /// `curl -k --resolve example.test:PORT:127.0.0.1 https://example.test:PORT/`
    /// (curl 7.88.1, OpenSSL 3.0): curl pads its ClientHello to 512 bytes of
    /// handshake, so the record is 517 bytes and our 512-byte read ends
    /// inside the padding extension. These are the first 340 bytes; the
    /// remaining 172 captured bytes were all zero (padding).
    const CURL_HELLO_HEAD: &str = "\
        1603010200010001fc0303bfdfb5f8e7bb0dc9d5a0228265b380d415c7f300d9\
        4e88d17f3a71c7ce87c39620523f952662571f1c4298b1dae67455aa032009b4\
        eecc17cc2c91076520b707dd003e130213031301c02cc030009fcca9cca8ccaa\
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d\
        009c003d003c0035002f00ff0100017500000011000f00000c6578616d706c65\
        2e74657374000b000403000102000a00160014001d0017001e00190018010001\
        01010201030104001000 0e000c02683208687474702f312e3100160000001700\
        0000310000000d002a0028040305030603080708080809080a080b0804080508\
        0604010501060103030301030204020502060200 2b0009080304030303020301\
        002d00020101003300260024001d0020c9d0833c13e33c148e62ba0d3ec91ed4\
        581741eb9ce55698e2df2f1f5f466f26001500b1";

    fn curl_hello() -> Vec<u8> {
        let mut b = hex(CURL_HELLO_HEAD);
        assert_eq!(b.len(), 340);
        b.resize(512, 0);
        b
    }

    /// `curl http://127.0.0.1:PORT/admin/login.php -H 'Host: example.test'`.
    const CURL_HTTP: &[u8] = b"GET /admin/login.php HTTP/1.1\r\nHost: example.test\r\n\
        User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

    /// `ssh -p PORT root@127.0.0.1` (OpenSSH 9.2p1) after our SSH banner:
    /// its version line, then the start of its binary KEXINIT (512 bytes).
    const OPENSSH_CLIENT: &str = "\
        5353482d322e302d4f70656e5353485f392e3270312044656269616e2d322b64\
        6562313275360d0a000006140814e7a2bdf385b848bcb209fdb7a62ea3c70000\
        0148736e747275703736317832353531392d7368613531322c736e7472757037\
        36317832353531392d736861353132406f70656e7373682e636f6d2c63757276\
        6532353531392d7368613235362c637572766532353531392d73686132353640\
        6c69627373682e6f72672c656364682d736861322d6e697374703235362c6563\
        64682d736861322d6e697374703338342c656364682d736861322d6e69737470\
        3532312c6469666669652d68656c6c6d616e2d67726f75702d65786368616e67\
        652d7368613235362c6469666669652d68656c6c6d616e2d67726f757031362d\
        7368613531322c6469666669652d68656c6c6d616e2d67726f757031382d7368\
        613531322c6469666669652d68656c6c6d616e2d67726f757031342d73686132\
        35362c6578742d696e666f2d632c6b65782d7374726963742d632d763030406f\
        70656e7373682e636f6d000001cf7373682d656432353531392d636572742d76\
        3031406f70656e7373682e636f6d2c65636473612d736861322d6e6973747032\
        35362d636572742d763031406f70656e7373682e636f6d2c65636473612d7368\
        61322d6e697374703338342d636572742d763031406f70656e7373682e636f6d";

    /// PyMySQL 1.2.4 answering our 3306 greeting:
    /// `pymysql.connect(user='root', password='toor', database='wordpress')`.
    const PYMYSQL_LOGIN: &str = "\
        900000010da23a00ffffff002d00000000000000000000000000000000000000\
        00000000726f6f740014c6bf9f6247f022b21a3ca0a2dd794024420fd796776f\
        72647072657373006d7973716c5f6e61746976655f70617373776f726400350c\
        5f636c69656e745f6e616d650770796d7973716c0f5f636c69656e745f766572\
        73696f6e05312e322e34045f7069640434373737";

    /// The SMB1 Negotiate of the widespread MS17-010 (EternalBlue) scanners,
    /// byte for byte as published in their sources.
    const MS17_010_NEGOTIATE: &str = "\
        00000054ff534d4272000000001801280000000000000000000000000000\
        98070000 5d4f 00 3100 024c414e4d414e312e3000 024c4d312e3258303032\
        00 024e54204c414e4d414e20312e3000 024e54204c4d20302e313200";

    /// An SMB2 NEGOTIATE as Windows 10 sends it on 445 (MS-SMB2 2.2.3):
    /// five dialects and two negotiate contexts (preauth integrity SHA-512,
    /// encryption ciphers). Assembled field by field from the spec.
    const SMB2_NEGOTIATE: &str = "\
        000000b2fe534d42400000000000000000001f00000000000000000000000000\
        00000000fffe00000000000000000000000000000000000000000000000000000000\
        000024000500010000007f0000005d6b1e2c9a4f3b4e8e1f0a2b3c4d5e6f700000\
        000200000002021002000302031103000001002600000000000100200001004142\
        434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60000002\
        000a000000000004000200010004000300";

    /// What mstsc sends for user "Administrator": TPKT, X.224 Connection
    /// Request, the cookie (mstsc keeps 9 characters of the name) and an
    /// RDP_NEG_REQ asking for TLS and CredSSP.
    const MSTSC_REQUEST: &str = "0300002f2ae00000000000\
        436f6f6b69653a206d737473686173683d41646d696e697374720d0a\
        0100080003000000";

    fn mstsc() -> Vec<u8> {
        // The cookie line, spelled out (hex above is for the reader).
        let mut b = hex("0300002f2ae00000000000");
        b.extend_from_slice(b"Cookie: mstshash=Administr\r\n");
        b.extend_from_slice(&hex("0100080003000000"));
        b
    }

    /// TPKT and X.224 Connection Request headers around `data`.
    fn x224(data: &[u8]) -> Vec<u8> {
        let total = 11 + data.len();
        let mut b = vec![
            3,
            0,
            (total >> 8) as u8,
            total as u8,
            (total - 5) as u8,
            0xe0,
            0,
            0,
            0,
            0,
            0,
        ];
        b.extend_from_slice(data);
        b
    }

    /// nmap's RDP probe: a Connection Request with RDP_NEG_REQ, no cookie.
    const NMAP_RDP: &str = "030000130ee000000000000100080003000000";

    /// A Mirai-style Telnet login: option answers, a NAWS subnegotiation,
    /// then user and password lines ended with CR NUL and CR LF.
    fn telnet_login() -> Vec<u8> {
        let mut b = hex("fffb18fffb1ffffb20fffb21fffb22fffb27fffd05fffa1f00500018fff0");
        b.extend_from_slice(b"root\r\0xc3511\r\n");
        b
    }

    fn seeds() -> Vec<Vec<u8>> {
        vec![
            hex(OPENSSL_HELLO),
            curl_hello(),
            CURL_HTTP.to_vec(),
            hex(OPENSSH_CLIENT),
            hex(PYMYSQL_LOGIN),
            hex(MS17_010_NEGOTIATE),
            hex(SMB2_NEGOTIATE),
            mstsc(),
            hex(NMAP_RDP),
            telnet_login(),
            netbios_request(),
            sslv2_hello(),
            build_hello(
                0x0303,
                &[0x0a0a, 0x1301],
                &[(0, sni_ext(b"a.test")), (0x1a1a, vec![])],
            ),
            b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$3\r\ndir\r\n".to_vec(),
            b"USER anonymous\r\nPASS guest@\r\n".to_vec(),
            b"a001 LOGIN \"admin\" \"pass\"\r\n".to_vec(),
            b"EHLO x\r\n".to_vec(),
        ]
    }

    // --- Helpers that assemble protocol messages ---------------------------

    /// A TLS record holding one ClientHello with these values (random and
    /// session id fixed, null compression).
    fn build_hello(version: u16, ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend([0x42; 32]);
        body.push(0);
        body.extend((ciphers.len() as u16 * 2).to_be_bytes());
        for c in ciphers {
            body.extend(c.to_be_bytes());
        }
        body.extend([1, 0]);
        let mut e = Vec::new();
        for (ty, data) in exts {
            e.extend(ty.to_be_bytes());
            e.extend((data.len() as u16).to_be_bytes());
            e.extend(data);
        }
        body.extend((e.len() as u16).to_be_bytes());
        body.extend(e);
        let mut hs = vec![1];
        hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut d = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend((name.len() as u16).to_be_bytes());
        d.extend(name);
        d
    }

    fn u16_list_ext(values: &[u16]) -> Vec<u8> {
        let mut d = (values.len() as u16 * 2).to_be_bytes().to_vec();
        for v in values {
            d.extend(v.to_be_bytes());
        }
        d
    }

    fn netbios_encode(name: &str, suffix: u8) -> Vec<u8> {
        let mut raw = format!("{name:<15}").into_bytes();
        raw.push(suffix);
        let mut out = vec![32];
        for b in raw {
            out.push(b'A' + (b >> 4));
            out.push(b'A' + (b & 0xf));
        }
        out.push(0);
        out
    }

    /// A NetBIOS session request from WS01 to *SMBSERVER, as smbclient
    /// sends on port 139.
    fn netbios_request() -> Vec<u8> {
        let mut body = netbios_encode("*SMBSERVER", 0x20);
        body.extend(netbios_encode("WS01", 0x00));
        let mut b = vec![0x81, 0, 0, body.len() as u8];
        b.extend(body);
        b
    }

    /// An SSLv2-compatible ClientHello offering SSL 3.0 (as `sslscan` and
    /// old nmap scripts send): header, type 1, version, lengths, one cipher.
    fn sslv2_hello() -> Vec<u8> {
        let mut body = vec![1, 3, 0, 0, 3, 0, 0, 0, 16, 0x00, 0x00, 0x04];
        body.extend([0x55; 16]);
        let mut b = vec![0x80 | (body.len() >> 8) as u8, body.len() as u8];
        b.extend(body);
        b
    }

    // --- Tests ----------------------------------------------------------------

    #[test]
    fn silence_is_reported_with_the_port_service() {
        check(&fingerprint(22, b""), "ssh", &[("silent", "true")]);
        check(&fingerprint(445, b""), "smb", &[("silent", "true")]);
        check(&fingerprint(4444, b""), "unknown", &[("silent", "true")]);
    }

    #[test]
    fn curl_http_request() {
        let f = fingerprint(8080, CURL_HTTP);
        check(
            &f,
            "http",
            &[
                ("method", "GET"),
                ("path", "/admin/login.php"),
                ("version", "HTTP/1.1"),
                ("host", "example.test"),
                ("user_agent", "curl/7.88.1"),
            ],
        );
        // Content decides, not the port.
        assert_eq!(fingerprint(22, CURL_HTTP), f);
    }

    #[test]
    fn http_variants() {
        check(
            &fingerprint(80, b"GET /\r\n"),
            "http",
            &[("method", "GET"), ("path", "/")],
        );
        let f = fingerprint(
            80,
            b"POST /cgi-bin/luci/;stok=/locale?form=country HTTP/1.0\r\nuSeR-aGeNt:   \
              Mozilla/5.0  \r\nHOST:10.0.0.1:80\r\n\r\nUser-Agent: body\r\n",
        );
        check(
            &f,
            "http",
            &[
                ("method", "POST"),
                ("path", "/cgi-bin/luci/;stok=/locale?form=country"),
                ("version", "HTTP/1.0"),
                ("user_agent", "Mozilla/5.0"),
                ("host", "10.0.0.1:80"),
            ],
        );
        check(
            &fingerprint(443, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            "http",
            &[("method", "PRI"), ("path", "*"), ("version", "HTTP/2.0")],
        );
        // A request cut inside the headers keeps what arrived.
        let cut = &CURL_HTTP[..40];
        assert_eq!(fingerprint(80, cut).field("host"), Some("exa"));
        // Not HTTP: lower-case method, a method alone, a status line.
        assert_eq!(fingerprint(80, b"get / HTTP/1.1\r\n").protocol, "text");
        assert_eq!(fingerprint(80, b"GET\r\n").protocol, "text");
        assert_eq!(fingerprint(80, b"HTTP/1.1 200 OK\r\n").protocol, "text");
    }

    #[test]
    fn openssl_client_hello_gives_sni_version_and_ja3() {
        let f = fingerprint(443, &hex(OPENSSL_HELLO));
        check(
            &f,
            "tls",
            &[
                ("sni", "example.test"),
                ("tls_version", "TLS1.3"),
                ("ja3", OPENSSL_JA3),
                ("ja3_hash", OPENSSL_JA3_HASH),
            ],
        );
        // Content decides: the same bytes on a non-TLS port are TLS.
        assert_eq!(fingerprint(21, &hex(OPENSSL_HELLO)), f);
    }

    #[test]
    fn curl_client_hello_cut_at_512_bytes_keeps_what_is_whole() {
        let f = fingerprint(443, &curl_hello());
        check(
            &f,
            "tls",
            &[
                ("sni", "example.test"),
                ("tls_version", "TLS1.3"),
                ("alpn", "h2,http/1.1"),
                ("truncated", "true"),
            ],
        );
    }

    /// Cutting the capture at every length: the SNI appears exactly when
    /// its extension (the first) is complete, JA3 only for the whole hello.
    #[test]
    fn client_hello_cut_anywhere() {
        let hello = hex(OPENSSL_HELLO);
        let sni_end = hello
            .windows(12)
            .position(|w| w == b"example.test")
            .unwrap()
            + 12;
        for n in 1..=hello.len() {
            let f = fingerprint(443, &hello[..n]);
            if n < 6 {
                assert_eq!(f.protocol, "https", "{n}");
                continue;
            }
            assert_eq!(f.protocol, "tls", "{n}");
            assert_eq!(f.field("sni").is_some(), n >= sni_end, "{n}");
            assert_eq!(f.field("ja3").is_some(), n == hello.len(), "{n}");
            assert_eq!(f.field("ja3_hash").is_some(), n == hello.len(), "{n}");
            assert_eq!(f.field("truncated").is_some(), n < hello.len(), "{n}");
            // Before supported_versions arrives, the legacy version shows.
            let v = f.field("tls_version");
            assert!(
                n < 11 || v == Some("TLS1.2") || v == Some("TLS1.3"),
                "{n} {v:?}"
            );
        }
    }

    /// The example in the JA3 README (github.com/salesforce/ja3): string
    /// and MD5 as published; GREASE values anywhere must not change it.
    #[test]
    fn ja3_known_vector_and_grease() {
        const STRING: &str = "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0";
        const HASH: &str = "ada70206e40642a3e4461f35503241d5";
        let ciphers = [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4];
        let plain = build_hello(
            0x0301,
            &ciphers,
            &[
                (0, sni_ext(b"www.example.com")),
                (10, u16_list_ext(&[23, 24, 25])),
                (11, vec![1, 0]),
            ],
        );
        let f = fingerprint(443, &plain);
        assert_eq!(f.field("ja3"), Some(STRING));
        assert_eq!(f.field("ja3_hash"), Some(HASH));
        assert_eq!(f.field("tls_version"), Some("TLS1.0"));
        assert_eq!(f.field("sni"), Some("www.example.com"));

        let mut greasy_ciphers = vec![0x2a2a];
        greasy_ciphers.extend(ciphers);
        let greasy = build_hello(
            0x0301,
            &greasy_ciphers,
            &[
                (0x0a0a, vec![]),
                (0, sni_ext(b"www.example.com")),
                (10, u16_list_ext(&[0xfafa, 23, 24, 25])),
                (11, vec![1, 0]),
                (43, vec![4, 0x3a, 0x3a, 3, 1]),
                (0x1a1a, vec![0]),
            ],
        );
        let g = fingerprint(443, &greasy);
        // supported_versions (43) is a real extension and is listed.
        assert_eq!(
            g.field("ja3"),
            Some("769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11-43,23-24-25,0")
        );
        assert_eq!(
            g.field("tls_version"),
            Some("TLS1.0"),
            "GREASE is not a version"
        );
    }

    #[test]
    fn grease_values_are_exactly_the_sixteen_of_rfc_8701() {
        let grease: Vec<u16> = (0..=u16::MAX).filter(|&v| is_grease(v)).collect();
        let expected: Vec<u16> = (0..16u16)
            .map(|i| (i << 12) | (0xa << 8) | (i << 4) | 0xa)
            .collect();
        assert_eq!(grease, expected);
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn hello_without_extensions_and_sslv2() {
        // An SSL 3.0-style hello ends after compression methods.
        let mut b = build_hello(0x0300, &[4, 5], &[]);
        // Drop the empty extensions length (2 bytes) and fix the lengths.
        b.truncate(b.len() - 2);
        b[4] -= 2;
        b[8] -= 2;
        let f = fingerprint(443, &b);
        check(
            &f,
            "tls",
            &[
                ("tls_version", "SSL3.0"),
                ("ja3", "768,4-5,,,"),
                ("ja3_hash", &format!("{:x}", Md5::digest(b"768,4-5,,,"))),
            ],
        );
        check(
            &fingerprint(443, &sslv2_hello()),
            "tls",
            &[("tls_version", "SSL3.0"), ("sslv2_hello", "true")],
        );
    }

    #[test]
    fn openssh_client_version() {
        let b = hex(OPENSSH_CLIENT);
        assert_eq!(b.len(), 512);
        check(
            &fingerprint(22, &b),
            "ssh",
            &[("client_version", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6")],
        );
        // A scanner's bare line without CR, and a line cut by the read.
        check(
            &fingerprint(2222, b"SSH-2.0-Go\n"),
            "ssh",
            &[("client_version", "SSH-2.0-Go")],
        );
        check(
            &fingerprint(22, b"SSH-2.0-libssh_0.9"),
            "ssh",
            &[("client_version", "SSH-2.0-libssh_0.9")],
        );
    }

    #[test]
    fn rdp_requests() {
        assert_eq!(hex(MSTSC_REQUEST).len(), 47);
        assert_eq!(mstsc(), hex(MSTSC_REQUEST));
        check(
            &fingerprint(3389, &mstsc()),
            "rdp",
            &[("user", "Administr"), ("requested_protocols", "ssl,hybrid")],
        );
        check(
            &fingerprint(3389, &hex(NMAP_RDP)),
            "rdp",
            &[("requested_protocols", "ssl,hybrid")],
        );
        // Old clients: cookie only; or standard RDP security asked for.
        check(
            &fingerprint(3389, &x224(b"Cookie: mstshash=hello\r\n")),
            "rdp",
            &[("user", "hello")],
        );
        check(
            &fingerprint(
                3389,
                &x224(b"Cookie: mstshash=hello\r\n\x01\x00\x08\x00\0\0\0\0"),
            ),
            "rdp",
            &[("user", "hello"), ("requested_protocols", "rdp")],
        );
        // A load-balancer routing token instead of a user.
        let lb = x224(b"Cookie: msts=3640205228.15629.0000\r\n");
        check(
            &fingerprint(3389, &lb),
            "rdp",
            &[("routing_token", "3640205228.15629.0000")],
        );
        // The TPKT length bounds the cookie: bytes after it are not read.
        let mut two = x224(b"Cookie: mstshash=a");
        two.extend_from_slice(b"bc\r\n");
        assert_eq!(fingerprint(3389, &two).field("user"), Some("a"));
        // A bare X.224 request is not necessarily RDP: S7 on 102.
        let bare = hex("0300000b06e00000000000");
        check(&fingerprint(102, &bare), "s7", &[]);
        check(&fingerprint(40000, &bare), "x224", &[]);
        check(&fingerprint(3389, &bare), "rdp", &[]);
        assert_eq!(rdp_protocols(0x1b), "ssl,hybrid,hybrid_ex,rdsaad");
        assert_eq!(rdp_protocols(0x101), "ssl,0x100");
    }

    #[test]
    fn smb_negotiates() {
        check(
            &fingerprint(445, &hex(MS17_010_NEGOTIATE)),
            "smb",
            &[
                ("version", "1"),
                ("dialects", "LANMAN1.0,LM1.2X002,NT LANMAN 1.0,NT LM 0.12"),
            ],
        );
        check(
            &fingerprint(445, &hex(SMB2_NEGOTIATE)),
            "smb",
            &[
                ("version", "2"),
                ("dialects", "0x0202,0x0210,0x0300,0x0302,0x0311"),
            ],
        );
        // SMB1 negotiate offering SMB2 dialects (Windows 7, smbclient).
        let mut dialects = Vec::new();
        for d in ["NT LM 0.12", "SMB 2.002", "SMB 2.???"] {
            dialects.push(2);
            dialects.extend_from_slice(d.as_bytes());
            dialects.push(0);
        }
        let mut msg = b"\xffSMBr".to_vec();
        msg.resize(32, 0);
        msg.push(0);
        msg.extend((dialects.len() as u16).to_le_bytes());
        msg.extend(dialects);
        let mut b = vec![0, 0, 0, msg.len() as u8];
        b.extend(msg);
        check(
            &fingerprint(139, &b),
            "smb",
            &[
                ("version", "1"),
                ("dialects", "NT LM 0.12,SMB 2.002,SMB 2.???"),
            ],
        );
        // Another SMB1 command (session setup) is still SMB.
        let mut setup = b.clone();
        setup[8] = 0x73;
        check(
            &fingerprint(445, &setup),
            "smb",
            &[("version", "1"), ("command", "0x73")],
        );
        // A negotiate cut inside the dialect list keeps the whole ones.
        let cut = &hex(SMB2_NEGOTIATE)[..4 + 64 + 36 + 5];
        assert_eq!(
            fingerprint(445, cut).field("dialects"),
            Some("0x0202,0x0210")
        );
    }

    #[test]
    fn netbios_session_request() {
        check(
            &fingerprint(139, &netbios_request()),
            "netbios-ssn",
            &[("called", "*SMBSERVER<20>"), ("calling", "WS01<00>")],
        );
    }

    #[test]
    fn pymysql_login() {
        check(
            &fingerprint(3306, &hex(PYMYSQL_LOGIN)),
            "mysql",
            &[
                ("user", "root"),
                ("database", "wordpress"),
                ("auth_plugin", "mysql_native_password"),
                ("client_name", "pymysql"),
                ("client_version", "1.2.4"),
            ],
        );
        // An SSLRequest: 32 bytes of flags, TLS follows.
        let mut ssl = hex("20000001 0daa0f00 00000001 2d");
        ssl.resize(36, 0);
        check(
            &fingerprint(3306, &ssl),
            "mysql",
            &[("ssl_request", "true")],
        );
        // Our banner echoed back is not a login (sequence 0).
        let cx = crate::respond::tests::cx(3306, crate::profile::Profile::LinuxServer);
        let greeting = crate::respond::tests::run_bytes(&cx, &[]).0;
        assert_eq!(fingerprint(3306, &greeting).fields, vec![]);
    }

    #[test]
    fn redis_commands() {
        check(
            &fingerprint(6379, b"*1\r\n$4\r\nPING\r\n"),
            "redis",
            &[("command", "PING"), ("args", "0")],
        );
        check(
            &fingerprint(
                6379,
                b"*4\r\n$6\r\nconfig\r\n$3\r\nset\r\n$3\r\ndir\r\n$16\r\n/var/spool/cron/\r\n",
            ),
            "redis",
            &[("command", "CONFIG"), ("args", "3")],
        );
        check(
            &fingerprint(16379, b"*2\r\n$4\r\nAUTH\r\n$6\r\nfoobar\r\n"),
            "redis",
            &[("command", "AUTH"), ("args", "1"), ("password", "foobar")],
        );
        check(
            &fingerprint(6379, b"*3\r\n$4\r\nauth\r\n$7\r\ndefault\r\n$3\r\npw1\r\n"),
            "redis",
            &[
                ("command", "AUTH"),
                ("args", "2"),
                ("user", "default"),
                ("password", "pw1"),
            ],
        );
        // Inline commands need the port hint.
        check(
            &fingerprint(6379, b"info server\r\n"),
            "redis",
            &[("command", "INFO"), ("args", "1")],
        );
        check(
            &fingerprint(6379, b"AUTH hunter2\r\n"),
            "redis",
            &[("command", "AUTH"), ("args", "1"), ("password", "hunter2")],
        );
        // Not RESP: an IMAP-style untagged line.
        assert_ne!(
            fingerprint(6379, b"* OK ready\r\n").field("args"),
            Some("0")
        );
        assert_eq!(fingerprint(1, b"* OK ready\r\n").protocol, "text");
        assert_eq!(decimal(b"123"), Some(123));
        assert_eq!(decimal(b"1234567890"), None);
        assert_eq!(decimal(b"-1"), None);
        assert_eq!(decimal(b""), None);
    }

    #[test]
    fn ftp_smtp_pop3_imap_commands() {
        check(
            &fingerprint(21, b"USER anonymous\r\nPASS guest@example.com\r\n"),
            "ftp",
            &[
                ("command", "USER"),
                ("user", "anonymous"),
                ("password", "guest@example.com"),
            ],
        );
        check(
            &fingerprint(25, b"ehlo scanner.example\r\nAUTH LOGIN\r\n"),
            "smtp",
            &[("command", "EHLO"), ("helo", "scanner.example")],
        );
        check(
            &fingerprint(587, b"HELO x"),
            "smtp",
            &[("command", "HELO"), ("helo", "x")],
        );
        check(
            &fingerprint(110, b"USER admin\r\nPASS admin\r\nUSER other\r\n"),
            "pop3",
            &[
                ("command", "USER"),
                ("user", "admin"),
                ("password", "admin"),
            ],
        );
        check(
            &fingerprint(143, b"a001 LOGIN \"admin\" \"s3cret\"\r\n"),
            "imap",
            &[
                ("command", "LOGIN"),
                ("user", "admin"),
                ("password", "s3cret"),
            ],
        );
        check(
            &fingerprint(143, b"A1 CAPABILITY\r\n"),
            "imap",
            &[("command", "CAPABILITY")],
        );
        check(
            &fingerprint(4444, b"hello world\n"),
            "text",
            &[("command", "HELLO")],
        );
    }

    #[test]
    fn telnet_login_behind_negotiation() {
        check(
            &fingerprint(23, &telnet_login()),
            "telnet",
            &[
                ("user", "root"),
                ("password", "xc3511"),
                (
                    "telnet_options",
                    "WILL 24,WILL 31,WILL 32,WILL 33,WILL 34,WILL 39,DO 5",
                ),
            ],
        );
        // IAC bytes name the protocol even on another port.
        assert_eq!(fingerprint(8023, &telnet_login()).protocol, "telnet");
        // Raw bots send no negotiation at all.
        check(
            &fingerprint(2323, b"admin\r\n"),
            "telnet",
            &[("user", "admin")],
        );
        // Negotiation only.
        check(
            &fingerprint(23, &hex("fffd03fffb18")),
            "telnet",
            &[("telnet_options", "DO 3,WILL 24")],
        );
        check(
            &fingerprint(4444, &hex("fffd01")),
            "telnet",
            &[("telnet_options", "DO 1")],
        );
        // IAC IAC is a literal 0xFF (not UTF-8, so not a text line).
        let mut buf = heapless::Vec::new();
        let mut opts = String::new();
        assert!(!strip_telnet(b"a\xff\xffb", &mut buf, &mut opts));
        assert_eq!(&buf[..], b"a\xffb");
        // Subnegotiation containing IAC IAC, then text.
        buf.clear();
        assert!(strip_telnet(
            b"\xff\xfa\x18\xff\xff\xf0\xff\xf0ok",
            &mut buf,
            &mut opts
        ));
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn unrecognised_bytes_fall_back_to_the_port() {
        let junk = [0x00, 0x01, 0x02, 0x03, 0x10, 0x20];
        check(&fingerprint(1433, &junk), "mssql", &[]);
        check(&fingerprint(4444, &junk), "unknown", &[]);
        check(&fingerprint(80, b"\r\n\r\n"), "http", &[]);
        // Invalid UTF-8 is not text.
        check(&fingerprint(4444, b"\xc3\x28abc\r\n"), "unknown", &[]);
    }

    #[test]
    fn values_are_cut_cleaned_and_bounded() {
        // 200 two-byte characters: the cut must fall on a boundary.
        let agent = "é".repeat(200);
        let req = format!("GET / HTTP/1.1\r\nUser-Agent: x{agent}\r\n\r\n");
        let ua = fingerprint(80, req.as_bytes())
            .field("user_agent")
            .unwrap()
            .to_owned();
        assert_eq!(ua.len(), MAX_FIELD - 1);
        assert!(ua.starts_with("xé"));
        // Control characters and invalid UTF-8 cannot reach a log line.
        let f = fingerprint(22, b"SSH-2.0-evil\x1b[2J\xff\x07\r\n");
        assert_eq!(
            f.field("client_version"),
            Some("SSH-2.0-evil\u{fffd}[2J\u{fffd}\u{fffd}")
        );
        let mut s = String::from("abc");
        cut(&mut s, 10);
        assert_eq!(s, "abc");
        let mut s = String::from("a€b");
        cut(&mut s, 3);
        assert_eq!(s, "a");
        // First value wins, empty values and a ninth field are dropped.
        let mut f = Fingerprint::new("x");
        f.push("a", b"1");
        f.push("a", b"2");
        f.push("empty", b"");
        for name in ["b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            f.push(name, b"v");
        }
        assert_eq!(f.fields.len(), MAX_FIELDS);
        assert_eq!(f.field("a"), Some("1"));
        assert_eq!(f.field("empty"), None);
        assert_eq!(f.field("i"), None);
    }

    #[test]
    fn to_json_holds_protocol_and_fields() {
        let m = fingerprint(3389, &mstsc()).to_json();
        let expected = serde_json::json!({
            "protocol": "rdp",
            "user": "Administr",
            "requested_protocols": "ssl,hybrid",
        });
        assert_eq!(serde_json::Value::Object(m), expected);
        let m = fingerprint(3389, b"").to_json();
        assert_eq!(m.get("silent"), Some(&serde_json::Value::from("true")));
    }

    /// 100,000 random and mutated inputs: no panic (debug builds also trap
    /// arithmetic overflow), and every result stays within its bounds.
    #[test]
    fn fuzz_never_panics_and_stays_bounded() {
        struct Lcg(u64);
        impl Lcg {
            fn next(&mut self) -> u32 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (self.0 >> 33) as u32
            }
            fn below(&mut self, n: usize) -> usize {
                self.next() as usize % n.max(1)
            }
        }
        let seeds = seeds();
        let ports = [
            21, 22, 23, 25, 80, 110, 139, 143, 443, 445, 3306, 3389, 6379, 4444,
        ];
        let mut rng = Lcg(0x5eed_cafe);
        let mut protocols = std::collections::BTreeSet::new();
        for i in 0..100_000 {
            let mut input = if i % 10 == 0 {
                let n = rng.below(600);
                (0..n).map(|_| rng.next() as u8).collect::<Vec<u8>>()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..1 + rng.below(4) {
                if input.is_empty() {
                    break;
                }
                let at = rng.below(input.len());
                match rng.below(6) {
                    0 => input[at] ^= 1 << rng.below(8),
                    1 => input[at] = rng.next() as u8,
                    2 => input.truncate(at),
                    3 => input.insert(at, rng.next() as u8),
                    // Lengths are where parsers go wrong: max them out.
                    4 => input[at] = 0xff,
                    _ => input[at] = 0,
                }
            }
            let port = if rng.below(4) == 0 {
                rng.next() as u16
            } else {
                ports[rng.below(ports.len())]
            };
            let f = fingerprint(port, &input);
            assert!(!f.protocol.is_empty());
            assert!(f.fields.len() <= MAX_FIELDS, "{f:?}");
            for (k, v) in &f.fields {
                let max = if *k == "ja3" { MAX_JA3 } else { MAX_FIELD };
                assert!(v.len() <= max, "{k}: {}", v.len());
                assert!(!v.chars().any(char::is_control), "{k}: {v:?}");
            }
            protocols.insert(f.protocol);
        }
        // The mutations kept most parsers busy, not just the fallback.
        for p in [
            "tls", "http", "ssh", "mysql", "smb", "rdp", "telnet", "redis", "ftp",
        ] {
            assert!(protocols.contains(p), "{p} never seen: {protocols:?}");
        }
    }
}
