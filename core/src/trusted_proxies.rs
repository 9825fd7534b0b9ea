//! Trusted proxies: the load balancers whose PROXY protocol header names the
//! real client of a connection, and reading that header off a socket.
//!
//! Behind a load balancer (HAProxy, see `configs/haproxy.cfg`) every
//! connection comes from the balancer's address. The operator lists the
//! balancers in `trusted_proxies` (or `--trusted-proxy`); on all three ports
//! a connection from one of them must start with a PROXY header (v1 or v2,
//! parsed by [`crate::proxy_protocol`]), and the client it names is the
//! connection's peer from then on: for admission and per-source limits,
//! lockouts, approval bindings, the fleet view and the logs. A trusted peer
//! that sends no valid header within [`HEADER_TIMEOUT`] is closed. Anyone
//! else's header is never interpreted: their bytes are taken for the
//! protocol of the port, which a PROXY line is not, so they fail as any
//! garbage would. The list is empty by default: no header is ever read.
//!
//! The header is read without consuming a byte of what follows (the TLS
//! handshake on the node port, the HTTP head on the API port): the socket is
//! peeked, and only bytes the parser has placed inside the header are
//! taken. At most [`crate::proxy_protocol::MAX_HEADER`] bytes are held.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt};

use crate::config::ConfigError;
use crate::node::admission::{Permit, Refusal};
use crate::proxy_protocol::{self, Parsed, ProxyError, MAX_HEADER};

/// Time a trusted proxy has to send its whole PROXY header. A balancer sends
/// it with the connection, at once.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/BITS`, or a bare address (all its bits). Bits set
    /// beyond the prefix (`10.0.0.1/8`) are refused as a likely mistake.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!("`{text}` is not ADDRESS/BITS (e.g. 10.0.0.0/8, 2001:db8::/32)")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max && b.bytes().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0-{max}"))?,
        };
        let cidr = Cidr { net: ip, prefix };
        if cidr.masked(ip) != ip {
            let net = cidr.masked(ip);
            return Err(format!(
                "`{text}` has bits set beyond /{prefix}; did you mean {net}/{prefix}?"
            ));
        }
        // An IPv4-mapped block matches IPv4 peers (which are compared as IPv4).
        if let (IpAddr::V6(v6), true) = (ip, prefix >= 96) {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Ok(Cidr {
                    net: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Ok(cidr)
    }

    /// `ip` with the bits beyond the prefix cleared.
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && self.masked(ip) == self.net
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The peers whose PROXY headers are believed; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[Cidr]>);

impl TrustedProxies {
    /// Parses the `trusted_proxies` setting; the error names it and the
    /// entry at fault.
    pub fn parse(list: &[String]) -> Result<TrustedProxies, ConfigError> {
        list.iter()
            .map(|text| Cidr::parse(text).map_err(|e| ConfigError(format!("trusted_proxies: {e}"))))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| TrustedProxies(v.into()))
    }

    /// Whether a connection from `ip` must start with a PROXY header.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A line for the start-up log, with a warning when a block trusts
    /// every address (then anyone can claim any source).
    pub fn log_start(&self) {
        if self.is_empty() {
            return;
        }
        let list: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        log::info!(
            "trusted proxies: {}; connections from them must start with a PROXY header",
            list.join(", ")
        );
        if self.0.iter().any(|c| c.prefix == 0) {
            log::warn!(
                "trusted_proxies includes a /0: every peer may claim any source address; \
                 list only your load balancers"
            );
        }
    }
}

/// Why a trusted proxy's connection yielded no client address.
#[derive(Debug)]
pub enum HeaderFailure {
    /// The proxy closed before a complete header.
    Closed,
    /// Reading failed.
    Io(io::Error),
    /// No complete header within [`HEADER_TIMEOUT`].
    Timeout,
    /// The bytes are not a valid header.
    Invalid(ProxyError),
}

impl fmt::Display for HeaderFailure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            HeaderFailure::Closed => f.write_str("closed before a complete PROXY header"),
            HeaderFailure::Io(e) => write!(f, "reading the PROXY header: {e}"),
            HeaderFailure::Timeout => write!(
                f,
                "no complete PROXY header within {} s",
                HEADER_TIMEOUT.as_secs()
            ),
            HeaderFailure::Invalid(e) => e.fmt(f),
        }
    }
}

/// Why a trusted proxy's connection is closed before it is served.
#[derive(Debug)]
pub enum ProxiedRefusal {
    /// No valid PROXY header: the connection is not believed at all.
    Header(HeaderFailure),
    /// The client the header names is over its own limits.
    Client(SocketAddr, Refusal),
}

/// Reads the PROXY header a trusted `proxy` starts `stream` with, and moves
/// `permit` (admitted with [`crate::node::admission::Admission::admit_unattributed`])
/// to the client it names. Returns the client's address (the proxy's own
/// for a header that names none) with the permit; nothing after the header
/// has been read.
pub async fn client_of(
    stream: &Async<TcpStream>,
    proxy: SocketAddr,
    permit: Permit,
) -> Result<(SocketAddr, Permit), ProxiedRefusal> {
    let header = future::or(async { Some(read_header(stream).await) }, async {
        Timer::after(HEADER_TIMEOUT).await;
        None
    })
    .await;
    let client = match header {
        Some(Ok(source)) => source.unwrap_or(proxy),
        Some(Err(e)) => return Err(ProxiedRefusal::Header(e)),
        None => return Err(ProxiedRefusal::Header(HeaderFailure::Timeout)),
    };
    match permit.attribute(client.ip(), Instant::now()) {
        Ok(permit) => Ok((client, permit)),
        Err(refusal) => Err(ProxiedRefusal::Client(client, refusal)),
    }
}

/// Reads one PROXY header and nothing past it: the socket is peeked, and
/// only the bytes the parser places inside the header are consumed. Waits
/// for the peer without a deadline; [`client_of`] sets one.
pub async fn read_header(stream: &Async<TcpStream>) -> Result<Option<SocketAddr>, HeaderFailure> {
    let mut buf = [0u8; MAX_HEADER];
    // Bytes of the header consumed so far (all of `buf[..taken]`).
    let mut taken = 0usize;
    let mut reader = stream;
    loop {
        let room = match buf.get_mut(taken..) {
            Some(room) if !room.is_empty() => room,
            // The parser refuses before this; a bound regardless.
            _ => return Err(HeaderFailure::Invalid(ProxyError::V1TooLong)),
        };
        let n = stream.peek(room).await.map_err(HeaderFailure::Io)?;
        if n == 0 {
            return Err(HeaderFailure::Closed);
        }
        let seen = taken + n;
        let parsed = proxy_protocol::parse(buf.get(..seen).unwrap_or_default())
            .map_err(HeaderFailure::Invalid)?;
        // Every byte up to `upto` belongs to the header: take them off the
        // socket (they are there: they were just peeked).
        let (upto, done) = match parsed {
            Parsed::Incomplete => (seen, None),
            Parsed::Done { source, consumed } => (consumed, Some(source)),
        };
        let Some(rest) = buf.get_mut(taken..upto) else {
            return Err(HeaderFailure::Invalid(ProxyError::NotProxy));
        };
        reader.read_exact(rest).await.map_err(HeaderFailure::Io)?;
        taken = upto;
        if let Some(source) = done {
            return Ok(source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let lan = cidr("10.0.0.0/8");
        assert!(lan.contains(ip("10.255.1.2")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(lan.contains(ip("::ffff:10.1.2.3")), "mapped IPv4 is IPv4");
        assert!(!lan.contains(ip("::1")));
        let one = cidr("127.0.0.2");
        assert_eq!(one.to_string(), "127.0.0.2/32");
        assert!(one.contains(ip("127.0.0.2")) && !one.contains(ip("127.0.0.1")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert_eq!(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
        assert!(cidr("::1/128").contains(ip("::1")));
    }

    #[test]
    fn malformed_cidrs_say_why() {
        for (bad, says) in [
            ("10.0.0.0/33", "0-32"),
            ("::/129", "0-128"),
            ("10.0.0.0/", "0-32"),
            ("10.0.0.0/+8", "0-32"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("10.0.0/8", "not ADDRESS/BITS"),
            ("lb.example/32", "not ADDRESS/BITS"),
            ("", "not ADDRESS/BITS"),
            (" 10.0.0.0/8", "not ADDRESS/BITS"),
        ] {
            let e = Cidr::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = TrustedProxies::parse(&["127.0.0.1/32".into(), "nope".into()]).unwrap_err();
        assert!(e.0.starts_with("trusted_proxies: `nope`"), "{}", e.0);
        let t = TrustedProxies::parse(&["127.0.0.2/32".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(t.contains(ip("10.1.1.1")) && t.contains(ip("127.0.0.2")));
        assert!(!t.contains(ip("127.0.0.1")));
        assert!(TrustedProxies::default().is_empty());
    }

    /// Sends `chunks` (pausing between them) and returns what
    /// [`read_header`] made of them, and what is left on the socket.
    fn read_from(chunks: &[&[u8]]) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let writer = std::thread::spawn(move || {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            for c in chunks {
                client.write_all(&c).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let (server, _) = listener.accept().unwrap();
        let server = Async::new(server).unwrap();
        let got = smol::block_on(read_header(&server)).map_err(|e| e.to_string());
        writer.join().unwrap();
        let mut rest = Vec::new();
        smol::block_on((&server).read_to_end(&mut rest)).unwrap();
        (got, rest)
    }

    #[test]
    fn the_header_is_read_and_nothing_after_it() {
        let v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 9002\r\nGET /health HTTP/1.1\r\n\r\n";
        let (got, rest) = read_from(&[v1]);
        assert_eq!(got, Ok(Some("192.0.2.7:4000".parse().unwrap())));
        assert_eq!(rest, b"GET /health HTTP/1.1\r\n\r\n");
        // In pieces, the application's bytes right behind the last one.
        let (got, rest) = read_from(&[
            b"PRO",
            b"XY TCP4 192.0.2.7 ",
            b"127.0.0.1 4000 9002\r",
            b"\n\x16\x03",
        ]);
        assert_eq!(got, Ok(Some("192.0.2.7:4000".parse().unwrap())));
        assert_eq!(rest, b"\x16\x03");
        let mut v2 = proxy_protocol::V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 15, 127, 0, 0, 77, 127, 0, 0, 1, 0x9c, 0x40, 0x23, 0x29,
        ]);
        v2.extend_from_slice(&[0x04, 0, 0]); // a NOOP TLV
        let (got, rest) = read_from(&[&v2[..5], &v2[5..20], &[&v2[20..], b"{\"v\":2}\n"].concat()]);
        assert_eq!(got, Ok(Some("127.0.0.77:40000".parse().unwrap())));
        assert_eq!(rest, b"{\"v\":2}\n");
        let local = [&proxy_protocol::V2_SIGNATURE[..], &[0x20, 0, 0, 0], b"rest"].concat();
        let (got, rest) = read_from(&[&local]);
        assert_eq!(got, Ok(None));
        assert_eq!(rest, b"rest");
    }

    #[test]
    fn bad_or_missing_headers_fail() {
        let (got, _) = read_from(&[b"GET /health HTTP/1.1\r\n\r\n"]);
        assert!(got.unwrap_err().contains("not a PROXY"));
        let (got, _) = read_from(&[b"PROXY TCP4 1.2.3.4"]);
        assert!(got.unwrap_err().contains("closed before"));
        let (got, _) = read_from(&[&[b'P'; 1]]);
        assert!(got.unwrap_err().contains("closed before"));
        let long = [&b"PROXY UNKNOWN "[..], &[b'a'; 200]].concat();
        let (got, _) = read_from(&[&long]);
        assert!(got.unwrap_err().contains("without CRLF"));
    }
}
