//! A small HTTP/1.1 client for webhooks and the core's REST API: one
//! request per connection, plain or TLS 1.3, every step under one
//! deadline, and the answer bounded. Enough for a JSON POST and GET; no
//! redirects, no proxies.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// Largest response head and body read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Whether TLS is used.
    pub tls: bool,
    /// Host name or address (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http[s]://host[:port][/path]`.
    pub fn parse(s: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("the URL must start with http:// or https://".into());
        };
        if rest.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("the URL contains spaces or control characters".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not supported; use headers".into());
        }
        let default = if tls { 443 } else { 80 };
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed [ in the URL")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| "bad port in the URL")?,
                None => default,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| "bad port in the URL")?),
                None => (authority.to_string(), default),
            }
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        Ok(Url {
            tls,
            host,
            port,
            path,
        })
    }

    /// `host:port` for errors and logs (never the path: it may be secret,
    /// as Slack's and Teams' webhook URLs are).
    pub fn origin(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The answer.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body (at most 1 MiB).
    pub body: Vec<u8>,
}

/// Sends one request and reads the answer, all within `timeout`. The
/// error names `url.origin()` only.
pub fn request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let origin = url.origin();
    let at = |e: String| format!("{method} {origin}: {e}");
    let tcp = connect(&url.host, url.port, deadline).map_err(at)?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: honeybee-alerts/{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.path,
        origin,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        if k.bytes().chain(v.bytes()).any(|b| b == b'\r' || b == b'\n') {
            return Err(at(format!("header {k:?} contains a line break")));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = |s: &mut dyn ReadWrite| -> Result<Response, String> {
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body).map_err(|e| e.to_string())?;
        s.flush().map_err(|e| e.to_string())?;
        read_response(s)
    };
    if url.tls {
        let config = tls.ok_or_else(|| at("no TLS configuration".into()))?;
        let name = crate::tls::server_name(&url.host, Some(&url.host)).map_err(at)?;
        let conn = ClientConnection::new(config.clone(), name).map_err(|e| at(e.to_string()))?;
        let mut s = Deadline {
            inner: StreamOwned::new(conn, tcp),
            deadline,
        };
        exchange(&mut s).map_err(at)
    } else {
        let mut s = Deadline {
            inner: tcp,
            deadline,
        };
        exchange(&mut s).map_err(at)
    }
}

/// Connects to the first address of `host:port` that answers before
/// `deadline`.
pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    let s = crate::deadline::connect(&addrs, deadline)?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A stream whose every read and write ends by `deadline`: a receiver
/// that trickles a byte now and then cannot hold the channel.
struct Deadline<S> {
    inner: S,
    deadline: Instant,
}

/// Access to the TCP socket under a stream, to set its timeouts.
trait Socket {
    fn socket(&self) -> &TcpStream;
}
impl Socket for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}
impl Socket for StreamOwned<ClientConnection, TcpStream> {
    fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

impl<S: Socket> Deadline<S> {
    fn arm(&self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            ));
        }
        self.inner.socket().set_read_timeout(Some(left))?;
        self.inner.socket().set_write_timeout(Some(left))
    }
}

impl<S: Socket + Read> Read for Deadline<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.inner.read(buf)
    }
}

impl<S: Socket + Write> Write for Deadline<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.arm()?;
        self.inner.flush()
    }
}

fn read_response(s: &mut dyn ReadWrite) -> Result<Response, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("response head over 64 KiB".into());
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("not an HTTP response")?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                length = v.trim().parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = buf.get(head_end..).unwrap_or_default().to_vec();
    let wanted = if chunked { None } else { length };
    loop {
        if wanted.is_some_and(|w| body.len() >= w) || body.len() > MAX_BODY {
            break;
        }
        if chunked && find(&body, b"\r\n0\r\n").is_some() || body.starts_with(b"0\r\n") {
            break;
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            // A body cut short still carries the status we need.
            Err(_) if wanted.is_none() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(w) = wanted {
        body.truncate(w);
    }
    if chunked {
        body = dechunk(&body);
    }
    body.truncate(MAX_BODY);
    Ok(Response { status, body })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(b, b"\r\n") {
        let size_text = String::from_utf8_lossy(b.get(..i).unwrap_or_default()).to_string();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = i + 2;
        let Some(data) = b.get(start..start.saturating_add(size)) else {
            out.extend_from_slice(b.get(start..).unwrap_or_default());
            break;
        };
        out.extend_from_slice(data);
        b = b.get(start + size + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_their_paths() {
        let u = Url::parse("https://hooks.slack.com/services/T000/B000/XXXX").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port), ("hooks.slack.com", 443));
        assert_eq!(u.origin(), "hooks.slack.com:443");
        let u = Url::parse("http://[::1]:8088/alert?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8088, "/alert?x=1")
        );
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://user:pw@x/").is_err());
        assert!(Url::parse("http://x/a\r\nHost: y").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
        assert_eq!(dechunk(b"zz\r\n"), b"");
    }
}
