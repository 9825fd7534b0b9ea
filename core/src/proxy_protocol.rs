//! The PROXY protocol (HAProxy's, versions 1 and 2), parsed without I/O.
//!
//! Behind a load balancer every TCP connection to the core comes from the
//! balancer's address. Unless the core learns who the client really is, the
//! whole fleet would share one source's admission budgets and TOTP lockouts,
//! approvals would bind to the balancer, and logs and the fleet view would
//! record the wrong peer. A balancer that speaks the PROXY protocol sends,
//! before anything of its client's, one header naming the client's address.
//!
//! Anybody can send such a header, so the core interprets one only from the
//! peers an operator listed in `trusted_proxies`; that decision, and the
//! reading from a socket, live in [`crate::trusted_proxies`]. This module is
//! the parser alone: [`parse`] looks at the bytes received so far and says
//! whether they hold a complete header, and how long it is. It never needs a
//! byte past the header's end (the TLS handshake or HTTP head that follows is
//! left where it is), never asks for more than [`MAX_HEADER`] bytes in all,
//! and does not panic on any input ([`check`] states these promises for a
//! fuzzer: `fuzz/`'s `proxy_protocol` target).
//!
//! What is understood:
//!
//! - **v1**, text: `PROXY TCP4 SRC DST SPORT DPORT\r\n` (and `TCP6`), or
//!   `PROXY UNKNOWN …\r\n`; at most [`V1_MAX`] bytes with the CRLF.
//! - **v2**, binary: the 12-byte signature `\r\n\r\n\0\r\nQUIT\n`, a
//!   version/command byte (version 2; `LOCAL` or `PROXY`), a family/protocol
//!   byte, a big-endian length, then that many bytes: the addresses (TCP over
//!   IPv4 or IPv6) and any TLVs, which are skipped. The length is bounded by
//!   [`V2_MAX_PAYLOAD`]; a longer header is refused rather than read.
//!
//! `LOCAL` (v2), `UNKNOWN` (v1) and the unspecified family (v2) mean the
//! connection is the balancer's own (a health check, say): the header names
//! no client, and the connection's own address counts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest v1 header, `PROXY` to CRLF included (the specification's bound).
pub const V1_MAX: usize = 107;
/// The start of every v1 header.
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The 12 bytes that start every v2 header.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version/command, family, length.
pub const V2_FIXED: usize = 16;
/// Most bytes accepted after the fixed part of a v2 header (addresses and
/// TLVs). HAProxy's own TLVs (ALPN, authority, unique id, SSL details) fit
/// easily; anything longer is refused, not read.
pub const V2_MAX_PAYLOAD: usize = 512;
/// Longest header of either version: no reader ever holds more than this.
pub const MAX_HEADER: usize = V2_FIXED + V2_MAX_PAYLOAD;

/// v2 address block sizes for TCP over IPv4 and IPv6.
const V2_INET_LEN: usize = 12;
const V2_INET6_LEN: usize = 36;

/// What the bytes received so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The valid beginning of a header, not yet the whole of it. Every byte
    /// given belongs to the header, so a reader may consume them all and
    /// wait for more.
    Incomplete,
    /// A complete header.
    Done {
        /// The client the balancer speaks for; `None` when the header names
        /// none (v2 `LOCAL`, v1 `UNKNOWN`, v2 unspecified family): use the
        /// connection's own address. An IPv4-mapped IPv6 address is given
        /// as IPv4.
        source: Option<SocketAddr>,
        /// The header's length: the client's own bytes start here.
        consumed: usize,
    },
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// The bytes start neither with `PROXY ` nor with the v2 signature.
    NotProxy,
    /// A v1 line without its CRLF within [`V1_MAX`] bytes.
    V1TooLong,
    /// A v1 line that is not `PROXY TCP4|TCP6 SRC DST SPORT DPORT` or
    /// `PROXY UNKNOWN …`; the text says what is wrong.
    V1Malformed(&'static str),
    /// A v2 header of another version (the high nibble of byte 13).
    V2Version(u8),
    /// A v2 command other than `LOCAL` (0) or `PROXY` (1).
    V2Command(u8),
    /// A v2 header announcing more than [`V2_MAX_PAYLOAD`] bytes.
    V2TooLong(usize),
    /// A v2 `PROXY` header for a family and protocol other than TCP over
    /// IPv4 or IPv6 (or unspecified): the byte as sent.
    V2Unsupported(u8),
    /// A v2 length shorter than the addresses of its family.
    V2Truncated,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("not a PROXY protocol header"),
            ProxyError::V1TooLong => write!(f, "PROXY v1 line without CRLF in {V1_MAX} bytes"),
            ProxyError::V1Malformed(why) => write!(f, "malformed PROXY v1 line: {why}"),
            ProxyError::V2Version(v) => write!(f, "PROXY v2 header with version {v}"),
            ProxyError::V2Command(c) => write!(f, "PROXY v2 header with unknown command {c}"),
            ProxyError::V2TooLong(n) => write!(
                f,
                "PROXY v2 header announcing {n} bytes (at most {V2_MAX_PAYLOAD} accepted)"
            ),
            ProxyError::V2Unsupported(b) => write!(
                f,
                "PROXY v2 header for family/protocol {b:#04x} (only TCP over IPv4/IPv6)"
            ),
            ProxyError::V2Truncated => f.write_str("PROXY v2 header shorter than its addresses"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Parses the header at the start of `buf`, the bytes received so far.
///
/// `Ok(Incomplete)` while more bytes are needed (only ever for fewer than
/// [`MAX_HEADER`] bytes, all of them part of the header); `Ok(Done)` once
/// the header is complete, whatever follows it; an error as soon as the
/// bytes cannot become a header.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    if starts_like(buf, V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if starts_like(buf, V1_PREFIX) {
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

/// Whether `buf` and `magic` agree on their common length.
fn starts_like(buf: &[u8], magic: &[u8]) -> bool {
    let n = buf.len().min(magic.len());
    buf.get(..n) == magic.get(..n)
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let (Some(&ver_cmd), Some(&family), Some(&len_hi), Some(&len_lo)) =
        (buf.get(12), buf.get(13), buf.get(14), buf.get(15))
    else {
        return Ok(Parsed::Incomplete);
    };
    let version = ver_cmd >> 4;
    if version != 2 {
        return Err(ProxyError::V2Version(version));
    }
    let command = ver_cmd & 0x0f;
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if len > V2_MAX_PAYLOAD {
        return Err(ProxyError::V2TooLong(len));
    }
    let total = V2_FIXED + len;
    // Decided on the fixed part alone, before the payload arrives.
    let addresses = match command {
        // LOCAL: the balancer's own connection; the family is ignored.
        0 => None,
        1 => match family {
            0x00 => None,
            0x11 if len >= V2_INET_LEN => Some(V2_INET_LEN),
            0x21 if len >= V2_INET6_LEN => Some(V2_INET6_LEN),
            0x11 | 0x21 => return Err(ProxyError::V2Truncated),
            other => return Err(ProxyError::V2Unsupported(other)),
        },
        other => return Err(ProxyError::V2Command(other)),
    };
    let Some(payload) = buf.get(V2_FIXED..total) else {
        return Ok(Parsed::Incomplete);
    };
    let source = match addresses {
        None => None,
        Some(V2_INET_LEN) => {
            let ip = payload.get(0..4).and_then(|b| <[u8; 4]>::try_from(b).ok());
            let port = payload.get(8..10).and_then(|b| <[u8; 2]>::try_from(b).ok());
            match (ip, port) {
                (Some(ip), Some(port)) => Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from(ip)),
                    u16::from_be_bytes(port),
                )),
                _ => return Err(ProxyError::V2Truncated),
            }
        }
        Some(_) => {
            let ip = payload
                .get(0..16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok());
            let port = payload
                .get(32..34)
                .and_then(|b| <[u8; 2]>::try_from(b).ok());
            match (ip, port) {
                (Some(ip), Some(port)) => Some(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(ip)).to_canonical(),
                    u16::from_be_bytes(port),
                )),
                _ => return Err(ProxyError::V2Truncated),
            }
        }
    };
    // What follows the addresses (TLVs) is skipped.
    Ok(Parsed::Done {
        source,
        consumed: total,
    })
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = buf.get(..buf.len().min(V1_MAX)).unwrap_or(buf);
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        // No CRLF yet: refuse what can never become a line at once.
        if let Some(pos) = window.iter().position(|&b| !(0x20..0x7f).contains(&b)) {
            let last = pos + 1 == window.len();
            if !(last && window.get(pos) == Some(&b'\r')) {
                return Err(ProxyError::V1Malformed(
                    "a byte that is not printable ASCII",
                ));
            }
        }
        return if buf.len() >= V1_MAX {
            Err(ProxyError::V1TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = window.get(..end).unwrap_or_default();
    if !line.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(ProxyError::V1Malformed(
            "a byte that is not printable ASCII",
        ));
    }
    let text = std::str::from_utf8(line)
        .map_err(|_| ProxyError::V1Malformed("a byte that is not printable ASCII"))?;
    let consumed = end + 2;
    // UNKNOWN: whatever follows up to the CRLF is ignored.
    if text == "PROXY UNKNOWN" || text.starts_with("PROXY UNKNOWN ") {
        return Ok(Parsed::Done {
            source: None,
            consumed,
        });
    }
    let mut fields = text.split(' ');
    let (Some("PROXY"), Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::V1Malformed(
            "not PROXY TCP4|TCP6 SRC DST SPORT DPORT",
        ));
    };
    let (src, dst) = match proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>().map(IpAddr::V4),
            dst.parse::<Ipv4Addr>().map(IpAddr::V4),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map(IpAddr::V6),
            dst.parse::<Ipv6Addr>().map(IpAddr::V6),
        ),
        _ => {
            return Err(ProxyError::V1Malformed(
                "protocol not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    let (Ok(src), Ok(_)) = (src, dst) else {
        return Err(ProxyError::V1Malformed(
            "an address not of the protocol's family",
        ));
    };
    let (Some(sport), Some(_)) = (v1_port(sport), v1_port(dport)) else {
        return Err(ProxyError::V1Malformed("a port not in 0-65535"));
    };
    Ok(Parsed::Done {
        source: Some(SocketAddr::new(src.to_canonical(), sport)),
        consumed,
    })
}

/// A v1 port: decimal digits without a sign or leading zeros, 0-65535.
fn v1_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits || leading_zero {
        return None;
    }
    text.parse().ok()
}

/// Checks every promise of [`parse`] on `data`, panicking when one is
/// broken. A cargo-fuzz target is one line:
/// `fuzz_target!(|data: &[u8]| honeybee_core::proxy_protocol::check(data));`
///
/// The promises: `Incomplete` only below [`MAX_HEADER`] bytes; a complete
/// header is no longer than the input nor than [`MAX_HEADER`], parses the
/// same without what follows it, and every shorter prefix of it is
/// `Incomplete` (so a reader that consumes the bytes of an `Incomplete`
/// answer never consumes a byte past the header).
pub fn check(data: &[u8]) {
    match parse(data) {
        Ok(Parsed::Incomplete) => assert!(
            data.len() < MAX_HEADER,
            "Incomplete after {} bytes",
            data.len()
        ),
        Ok(done @ Parsed::Done { consumed, .. }) => {
            assert!(
                consumed <= data.len(),
                "consumed {consumed} of {}",
                data.len()
            );
            assert!(consumed <= MAX_HEADER, "consumed {consumed}");
            let header = data.get(..consumed).unwrap_or_default();
            assert_eq!(
                parse(header),
                Ok(done),
                "the header alone parses differently"
            );
            for n in 0..consumed {
                let prefix = header.get(..n).unwrap_or_default();
                assert_eq!(parse(prefix), Ok(Parsed::Incomplete), "prefix of {n} bytes");
            }
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    /// A v2 header: command, family byte, payload.
    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn inet(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = src.to_vec();
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p
    }

    fn inet6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = src.octets().to_vec();
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p
    }

    /// Parses `header` followed by application bytes, checks the result and
    /// that every shorter prefix is Incomplete.
    fn parses_to(header: &[u8], source: Option<SocketAddr>) {
        let mut with_data = header.to_vec();
        with_data.extend_from_slice(b"\x16\x03\x01GET / HTTP/1.1\r\n\r\n");
        let want = Parsed::Done {
            source,
            consumed: header.len(),
        };
        assert_eq!(parse(header), Ok(want), "{header:?}");
        assert_eq!(parse(&with_data), Ok(want), "{with_data:?}");
        for n in 0..header.len() {
            assert_eq!(
                parse(&header[..n]),
                Ok(Parsed::Incomplete),
                "truncated at {n}: {:?}",
                &header[..n]
            );
        }
        check(&with_data);
    }

    #[test]
    fn v1_tcp4_and_tcp6() {
        parses_to(
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 9001\r\n",
            addr("192.0.2.7:56324"),
        );
        parses_to(
            b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 9002\r\n",
            addr("[2001:db8::7]:65535"),
        );
        parses_to(
            b"PROXY TCP6 ::ffff:192.0.2.9 ::1 0 9002\r\n",
            addr("192.0.2.9:0"),
        );
        parses_to(
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
            addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        );
    }

    #[test]
    fn v1_unknown_names_no_client() {
        parses_to(b"PROXY UNKNOWN\r\n", None);
        // The specification's worst case is exactly the bound.
        let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(longest.len(), V1_MAX);
        parses_to(longest, None);
    }

    #[test]
    fn v1_malformed_lines_are_refused() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n"[..],
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 9001 extra\r\n",
            b"PROXY TCP4  192.0.2.7 198.51.100.1 56324 9001\r\n",
            b"PROXY TCP4 2001:db8::7 198.51.100.1 56324 9001\r\n",
            b"PROXY TCP6 192.0.2.7 2001:db8::1 56324 9001\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 9001\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +1 9001\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 080 9001\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 80 x\r\n",
            b"PROXY TCP4 192.0.2.007 198.51.100.1 80 9001\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 80 9001\r\n",
            b"PROXY tcp4 192.0.2.7 198.51.100.1 80 9001\r\n",
            b"PROXY \r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 80 9001 \r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ProxyError::V1Malformed(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(bad),
                parse(bad)
            );
            check(bad);
        }
    }

    #[test]
    fn v1_garbage_is_refused_before_the_line_ends() {
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4\n"),
            Err(ProxyError::V1Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 \x00"),
            Err(ProxyError::V1Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY \xff"),
            Err(ProxyError::V1Malformed(_))
        ));
        // A CR may be the last byte so far: its LF is on the way.
        assert_eq!(parse(b"PROXY UNKNOWN\r"), Ok(Parsed::Incomplete));
        assert!(matches!(
            parse(b"PROXY UNKNOWN\rx"),
            Err(ProxyError::V1Malformed(_))
        ));
    }

    #[test]
    fn v1_without_crlf_in_107_bytes_is_too_long() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX - 1, b'a');
        assert_eq!(parse(&line), Ok(Parsed::Incomplete));
        line.push(b'\r');
        assert_eq!(parse(&line), Err(ProxyError::V1TooLong));
        line.push(b'\n');
        assert_eq!(parse(&line), Err(ProxyError::V1TooLong));
        // One byte less fits.
        let mut ok = b"PROXY UNKNOWN ".to_vec();
        ok.resize(V1_MAX - 2, b'a');
        ok.extend_from_slice(b"\r\n");
        parses_to(&ok, None);
    }

    #[test]
    fn v2_inet_and_inet6() {
        parses_to(
            &v2(1, 0x11, &inet([127, 0, 0, 77], [127, 0, 0, 1], 40000, 9001)),
            addr("127.0.0.77:40000"),
        );
        let src: Ipv6Addr = "2001:db8::77".parse().unwrap();
        parses_to(
            &v2(1, 0x21, &inet6(src, Ipv6Addr::LOCALHOST, 5, 9002)),
            addr("[2001:db8::77]:5"),
        );
        let mapped: Ipv6Addr = "::ffff:10.1.2.3".parse().unwrap();
        parses_to(
            &v2(1, 0x21, &inet6(mapped, Ipv6Addr::LOCALHOST, 5, 9002)),
            addr("10.1.2.3:5"),
        );
    }

    #[test]
    fn v2_local_and_unspecified_name_no_client() {
        parses_to(&v2(0, 0x00, &[]), None);
        // LOCAL ignores the family and whatever the block holds.
        parses_to(&v2(0, 0x11, &inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), None);
        parses_to(&v2(0, 0x31, &[0u8; 216]), None);
        parses_to(&v2(1, 0x00, &[]), None);
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut payload = inet([192, 0, 2, 1], [192, 0, 2, 2], 1234, 9001);
        // PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "core.example", a NOOP.
        payload.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
        payload.extend_from_slice(&[0x02, 0x00, 0x0c]);
        payload.extend_from_slice(b"core.example");
        payload.extend_from_slice(&[0x04, 0x00, 0x03, 0, 0, 0]);
        parses_to(&v2(1, 0x11, &payload), addr("192.0.2.1:1234"));
        // Up to the bound, whatever the TLVs are.
        let mut big = inet([192, 0, 2, 1], [192, 0, 2, 2], 1234, 9001);
        big.resize(V2_MAX_PAYLOAD, 0xee);
        let header = v2(1, 0x11, &big);
        assert_eq!(header.len(), MAX_HEADER);
        parses_to(&header, addr("192.0.2.1:1234"));
    }

    #[test]
    fn v2_oversized_is_refused_from_the_fixed_part() {
        let mut header = v2(1, 0x11, &inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        header[14..16].copy_from_slice(&((V2_MAX_PAYLOAD + 1) as u16).to_be_bytes());
        assert_eq!(
            parse(&header[..V2_FIXED]),
            Err(ProxyError::V2TooLong(V2_MAX_PAYLOAD + 1))
        );
        header[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            parse(&header),
            Err(ProxyError::V2TooLong(usize::from(u16::MAX)))
        );
    }

    #[test]
    fn v2_bad_fields_are_refused() {
        let good = v2(1, 0x11, &inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        let mut version = good.clone();
        version[12] = 0x11;
        assert_eq!(parse(&version), Err(ProxyError::V2Version(1)));
        let mut command = good.clone();
        command[12] = 0x22;
        assert_eq!(parse(&command), Err(ProxyError::V2Command(2)));
        // UDP, AF_UNIX and unknown families.
        for family in [0x12, 0x22, 0x31, 0x32, 0x41, 0x01, 0x10] {
            let mut h = good.clone();
            h[13] = family;
            assert_eq!(parse(&h), Err(ProxyError::V2Unsupported(family)));
        }
        // A length shorter than the addresses.
        assert_eq!(
            parse(&v2(1, 0x11, &[0u8; 11])),
            Err(ProxyError::V2Truncated)
        );
        assert_eq!(
            parse(&v2(1, 0x21, &[0u8; 35])[..V2_FIXED]),
            Err(ProxyError::V2Truncated)
        );
    }

    #[test]
    fn bad_signatures_and_garbage_are_refused() {
        let mut sig = v2(1, 0x11, &inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        sig[4] = b'x';
        assert_eq!(parse(&sig), Err(ProxyError::NotProxy));
        assert_eq!(parse(&sig[..5]), Err(ProxyError::NotProxy));
        for garbage in [
            &b"GET /health HTTP/1.1\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"{\"version\":2}\n",
            b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXYTCP4",
            b"\r\n\r\n\r\n",
            b"\0",
        ] {
            assert_eq!(parse(garbage), Err(ProxyError::NotProxy), "{garbage:?}");
        }
        // Prefixes of either start are not refused yet.
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"PROX"), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"\r\n\r\n\0"), Ok(Parsed::Incomplete));
    }

    #[test]
    fn errors_read_well() {
        let e = ProxyError::V2TooLong(600).to_string();
        assert!(e.contains("600") && e.contains("512"), "{e}");
        assert!(ProxyError::NotProxy.to_string().contains("not a PROXY"));
    }

    /// A small deterministic generator (xorshift64*): arbitrary input
    /// without a dependency, the same on every run.
    struct Bytes(u64);

    impl Bytes {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn fill(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
            (0..len)
                .map(|_| match alphabet {
                    [] => self.next() as u8,
                    a => a[self.below(a.len())],
                })
                .collect()
        }
    }

    #[test]
    fn arbitrary_bytes_keep_the_promises() {
        let mut r = Bytes(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let len = r.below(700);
            check(&r.fill(len, &[]));
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_v2_start_keep_the_promises() {
        let mut r = Bytes(0x0123_4567_89ab_cdef);
        for _ in 0..3000 {
            let mut data = V2_SIGNATURE.to_vec();
            data.push(0x20 | r.below(3) as u8);
            // Mostly the families that parse, sometimes any byte.
            let family = [0x00, 0x11, 0x21, r.next() as u8][r.below(4)];
            data.push(family);
            data.extend_from_slice(&(r.below(600) as u16).to_be_bytes());
            let len = r.below(700);
            data.extend(r.fill(len, &[]));
            check(&data);
        }
    }

    #[test]
    fn arbitrary_v1_text_keeps_the_promises() {
        let mut r = Bytes(0xfeed_f00d_dead_beef);
        let text: Vec<u8> = (b' '..=b'~').collect();
        let likely = b"PROXY TCP4 TCP6 UNKNOWN 0123456789.:abcdef \r\n";
        for _ in 0..3000 {
            let mut data = b"PROXY ".to_vec();
            let len = r.below(120);
            let alphabet: &[u8] = if r.below(2) == 0 { &text } else { likely };
            data.extend(r.fill(len, alphabet));
            if r.below(2) == 0 {
                data.extend_from_slice(b"\r\n");
            }
            let len = r.below(8);
            data.extend(r.fill(len, &text));
            check(&data);
        }
    }

    #[test]
    fn every_v4_client_comes_through() {
        let mut r = Bytes(42);
        for _ in 0..1000 {
            let ip = (r.next() as u32).to_be_bytes();
            let port = r.next() as u16;
            let want = Some(SocketAddr::new(IpAddr::from(ip), port));
            let v1 = format!(
                "PROXY TCP4 {} 127.0.0.1 {port} 9001\r\n",
                Ipv4Addr::from(ip)
            );
            let done = |consumed| {
                Ok(Parsed::Done {
                    source: want,
                    consumed,
                })
            };
            assert_eq!(parse(v1.as_bytes()), done(v1.len()), "{v1}");
            let v2h = v2(1, 0x11, &inet(ip, [127, 0, 0, 1], port, 9001));
            assert_eq!(parse(&v2h), done(v2h.len()));
        }
    }
}
