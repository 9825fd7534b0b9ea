//! A tiny blocking HTTP/1.1 client for the core's REST API.
//!
//! One request per connection (`Connection: close`); the response body is
//! read by `Content-Length`, as chunks, or to the end of the stream.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::metrics::Metrics;

/// Time allowed for one whole request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order; names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Panics unless the status is `want`; returns self for chaining.
    #[track_caller]
    pub fn expect_status(self, want: u16) -> Response {
        assert_eq!(
            self.status,
            want,
            "unexpected HTTP status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts an error response: status `want` and a JSON `{"error": "..."}`
    /// body with a non-empty message. Returns the message.
    #[track_caller]
    pub fn expect_error(self, want: u16) -> String {
        let r = self.expect_status(want);
        let v = r.json();
        match v.get("error").and_then(Value::as_str) {
            Some(msg) if !msg.is_empty() => msg.to_owned(),
            _ => panic!(
                "HTTP {want} body should be {{\"error\": \"...\"}}, got {}",
                r.text()
            ),
        }
    }
}

/// Sends one request and reads the response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
) -> io::Result<Response> {
    let deadline = Instant::now() + HTTP_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n");
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{method} {path}: no complete response within {HTTP_TIMEOUT:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if let Some(r) = parse_response(&raw, false)? {
                    return Ok(r);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A reset after a complete response still leaves a response.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    parse_response(&raw, true)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{method} {path}: incomplete response: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        )
    })
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Parses `raw` if it holds a whole response; `eof` says no more will come.
fn parse_response(raw: &[u8], eof: bool) -> io::Result<Option<Response>> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("response head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if let Some(len) = header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        if rest.len() < len {
            return Ok(None);
        }
        rest[..len].to_vec()
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest)? {
            Some(b) => b,
            None => return Ok(None),
        }
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response {
        status,
        headers,
        body,
    }))
}

fn dechunk(mut rest: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..nl]).map_err(|_| bad("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        rest = &rest[nl + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Percent-encodes `s` for a query string (everything but RFC 3986
/// unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?k=v&...` with keys and values percent-encoded; empty for no pairs.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

/// One page of `GET /api/v1/events`.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The `events` array, as sent (newest first).
    pub events: Vec<Value>,
    /// `next_cursor` (None when it is null).
    pub next_cursor: Option<String>,
}

/// The core's HTTP API at one address, with its bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    /// `bind:api_port`.
    pub addr: SocketAddr,
    /// The bearer token sent with every request but [`Api::get_unauth`].
    pub token: String,
}

/// The pot `pot_id` in a node object of the API.
pub fn pot_of(node: &Value, pot_id: &str) -> Option<Value> {
    node["pots"]
        .as_array()?
        .iter()
        .find(|p| p["pot_id"] == pot_id)
        .cloned()
}

impl Api {
    /// A client for `addr` using `token`.
    pub fn new(addr: SocketAddr, token: impl Into<String>) -> Api {
        Api {
            addr,
            token: token.into(),
        }
    }

    /// Any request with the token; panics on a transport error.
    #[track_caller]
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        request(
            self.addr,
            method,
            path,
            Some(&self.token),
            body.map(str::as_bytes),
        )
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// Any request with a chosen (or no) token; panics on a transport error.
    #[track_caller]
    pub fn call_as(&self, token: Option<&str>, method: &str, path: &str) -> Response {
        request(self.addr, method, path, token, None)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// `GET path` with the token.
    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        self.call("GET", path, None)
    }

    /// `GET path` without a token.
    #[track_caller]
    pub fn get_unauth(&self, path: &str) -> Response {
        self.call_as(None, "GET", path)
    }

    /// `POST path` with a JSON body.
    #[track_caller]
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.call("POST", path, Some(body))
    }

    /// `DELETE path`.
    #[track_caller]
    pub fn delete(&self, path: &str) -> Response {
        self.call("DELETE", path, None)
    }

    /// Whether `GET /health` answers 200 right now.
    pub fn healthy(&self) -> bool {
        matches!(request(self.addr, "GET", "/health", None, None), Ok(r) if r.status == 200)
    }

    /// `GET /api/v1/nodes` → the `nodes` array.
    #[track_caller]
    pub fn nodes(&self) -> Vec<Value> {
        let v = self.get("/api/v1/nodes").expect_status(200).json();
        v.get("nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| panic!("GET /api/v1/nodes: no \"nodes\" array in {v}"))
    }

    /// `GET /api/v1/nodes/{id}`: `Some(node)` on 200, `None` on 404.
    #[track_caller]
    pub fn node(&self, id: u64) -> Option<Value> {
        let r = self.get(&format!("/api/v1/nodes/{id}"));
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("GET /api/v1/nodes/{id}: HTTP {s}: {}", r.text()),
        }
    }

    /// Polls the node until `pred` holds; returns it or panics with the last
    /// state seen.
    #[track_caller]
    pub fn wait_node(&self, id: u64, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let node = self.node(id);
            if let Some(n) = &node {
                if pred(n) {
                    return n.clone();
                }
            }
            if Instant::now() >= deadline {
                panic!("node {id} did not reach the expected state within {timeout:?}; last seen: {node:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until the node's `status` is `status`.
    #[track_caller]
    pub fn wait_status(&self, id: u64, status: &str, timeout: Duration) -> Value {
        self.wait_node(id, timeout, |n| n["status"] == status)
    }

    /// `POST /api/v1/nodes/{id}/commands` with `command`; panics unless the
    /// core queued it (202).
    #[track_caller]
    pub fn command(&self, node_id: u64, command: &Value) {
        self.post(
            &format!("/api/v1/nodes/{node_id}/commands"),
            &command.to_string(),
        )
        .expect_status(202);
    }

    /// Polls until node `node_id` shows pot `pot_id` matching `pred`;
    /// returns that pot.
    #[track_caller]
    pub fn wait_pot(
        &self,
        node_id: u64,
        pot_id: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let node = self.wait_node(node_id, timeout, |n| {
            pot_of(n, pot_id).is_some_and(|p| pred(&p))
        });
        pot_of(&node, pot_id).unwrap_or_default()
    }

    /// `GET /api/v1/events` with `pairs` as the (encoded) query.
    #[track_caller]
    pub fn events_raw(&self, pairs: &[(&str, &str)]) -> Response {
        self.get(&format!("/api/v1/events{}", query_string(pairs)))
    }

    /// `GET /api/v1/events`: one page; panics unless it is 200 with an
    /// `events` array and a string or null `next_cursor`.
    #[track_caller]
    pub fn events(&self, pairs: &[(&str, &str)]) -> EventPage {
        let r = self.events_raw(pairs);
        if r.status != 200 {
            panic!(
                "GET /api/v1/events{}: HTTP {}: {}",
                query_string(pairs),
                r.status,
                r.text()
            );
        }
        let v = r.json();
        let events = v
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| panic!("GET /api/v1/events: no \"events\" array in {v}"));
        let next_cursor = match v.get("next_cursor") {
            Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c.clone()),
            other => panic!(
                "GET /api/v1/events: next_cursor must be a string or null, got {other:?} in {v}"
            ),
        };
        EventPage {
            events,
            next_cursor,
        }
    }

    /// Every event matching `pairs` (no `limit`/`cursor` in them), following
    /// `next_cursor` with `limit=1000`; panics after 1000 pages.
    #[track_caller]
    pub fn all_events(&self, pairs: &[(&str, &str)]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut q: Vec<(&str, &str)> = pairs.to_vec();
            q.push(("limit", "1000"));
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let page = self.events(&q);
            out.extend(page.events);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
        panic!("GET /api/v1/events: still a next_cursor after 1000 pages");
    }

    /// `GET /metrics`, parsed.
    #[track_caller]
    pub fn metrics(&self) -> Metrics {
        let r = self.get("/metrics").expect_status(200);
        Metrics::parse(&r.text())
    }

    /// Polls `/metrics` until the sample `name{labels}` is at least `min`;
    /// returns its value or panics with the last one seen.
    #[track_caller]
    pub fn wait_metric_at_least(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        min: f64,
        timeout: Duration,
    ) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metrics().get(name, labels);
            if v.is_some_and(|v| v >= min) {
                return v.unwrap_or_default();
            }
            if Instant::now() >= deadline {
                panic!(
                    "metric {} did not reach {min} within {timeout:?}; last value {v:?}",
                    Metrics::key(name, labels)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
