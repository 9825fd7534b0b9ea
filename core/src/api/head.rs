//! Request heads as the API gate reads them, without I/O: bounded, parsed by
//! `httparse`, and turned into the one canonical form tiny_http is given.
//!
//! The gate and tiny_http must never disagree about where a request ends
//! (request smuggling), so the gate accepts only what it can frame itself —
//! a body announced by exactly one `Content-Length`, no `Transfer-Encoding` —
//! and forwards a head it wrote: the client's request line and headers, minus
//! the hop-by-hop ones, plus its own `Content-Length` and `Connection: close`.

/// Longest request head (request line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines in one head.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target as sent (`/api/v1/events?limit=5`).
    pub target: String,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of body announced by `Content-Length` (0 without one).
    pub body_len: u64,
    /// Whether the client waits for `100 Continue` before its body.
    pub expect_continue: bool,
}

/// Why a head is refused; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Head over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] lines: 431.
    TooLarge,
    /// Not an HTTP/1.x request head: 400.
    Malformed,
    /// `Content-Length` missing a number, or two that differ: 400.
    BadLength,
    /// `Transfer-Encoding` (chunked bodies): 411, send a `Content-Length`.
    LengthRequired,
    /// `Expect` other than `100-continue`: 417.
    Expectation,
}

impl HeadError {
    /// The status and the reason sent to the client.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            HeadError::TooLarge => (431, "request head over 16 KiB or 64 header lines"),
            HeadError::Malformed => (400, "malformed HTTP request head"),
            HeadError::BadLength => (400, "invalid or conflicting Content-Length"),
            HeadError::LengthRequired => (
                411,
                "Transfer-Encoding is not accepted; send a Content-Length",
            ),
            HeadError::Expectation => (417, "only Expect: 100-continue is understood"),
        }
    }
}

/// Headers the gate owns: framing and connection management are its own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "content-length",
    "transfer-encoding",
];

/// Parses the head at the start of `buf`: `Ok(None)` while more bytes are
/// needed, `Ok(Some((head, n)))` with the head's length `n` once complete.
pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if n > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HeadError::Malformed);
    };
    let mut head = RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::with_capacity(req.headers.len()),
        body_len: 0,
        expect_continue: false,
    };
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "transfer-encoding" => return Err(HeadError::LengthRequired),
            "content-length" => {
                let value = content_length(h.value)?;
                if length.is_some_and(|l| l != value) {
                    return Err(HeadError::BadLength);
                }
                length = Some(value);
            }
            "expect" => {
                if !h.value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(HeadError::Expectation);
                }
                head.expect_continue = true;
            }
            _ => {}
        }
        head.headers.push((h.name.to_string(), h.value.to_vec()));
    }
    head.body_len = length.unwrap_or(0);
    Ok(Some((head, n)))
}

/// A `Content-Length` value: digits only. Values too large for a `u64` are
/// clamped to `u64::MAX` so that they are refused as too large, not as
/// malformed.
fn content_length(value: &[u8]) -> Result<u64, HeadError> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::BadLength);
    }
    Ok(value.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

impl RequestHead {
    /// The value of the first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The bearer token of the `Authorization` header, if any.
    pub fn bearer(&self) -> Option<&[u8]> {
        let value = self.header("authorization")?;
        let token = value.strip_prefix(b"Bearer ")?;
        Some(token.trim_ascii())
    }

    /// The head given to tiny_http: one request per connection, framed by
    /// the gate's own `Content-Length`.
    pub fn forwarded(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n", self.body_len).as_bytes());
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> RequestHead {
        match parse(text.as_bytes()) {
            Ok(Some((h, n))) => {
                assert_eq!(n, text.len());
                h
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(parse(b"GET /health HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
    }

    #[test]
    fn a_head_that_never_ends_is_refused_at_the_bound() {
        let mut long = b"GET /health HTTP/1.1\r\nX-A: ".to_vec();
        long.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse(&long), Ok(None));
        long.push(b'a');
        assert_eq!(parse(&long), Err(HeadError::TooLarge));
    }

    #[test]
    fn too_many_header_lines_are_refused() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            text.push_str(&format!("X-{i}: 1\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(parse(text.as_bytes()), Err(HeadError::TooLarge));
    }

    #[test]
    fn content_length_is_read_and_huge_values_saturate() {
        let h = head("POST /x HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(h.body_len, 12);
        let h = head("GET /health HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n");
        assert_eq!(h.body_len, u64::MAX);
        let h = head("GET /health HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert_eq!(h.body_len, u64::MAX);
        assert_eq!(head("GET / HTTP/1.1\r\n\r\n").body_len, 0);
    }

    #[test]
    fn framing_the_gate_cannot_check_is_refused() {
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert_eq!(parse(bad.as_bytes()), Err(HeadError::BadLength), "{bad:?}");
        }
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HeadError::LengthRequired)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nExpect: something\r\n\r\n"),
            Err(HeadError::Expectation)
        );
        assert_eq!(
            parse(b"\x16\x03\x01\x00\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        assert_eq!(parse(b"GET / SPDY/3\r\n\r\n"), Err(HeadError::Malformed));
    }

    #[test]
    fn the_forwarded_head_is_canonical() {
        let h = head(
            "POST /api/v1/x?a=1 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\
             Expect: 100-continue\r\nContent-Length: 2\r\nAuthorization: Bearer  t0k \r\n\r\n",
        );
        assert!(h.expect_continue);
        assert_eq!(h.bearer(), Some(&b"t0k"[..]));
        assert_eq!(
            String::from_utf8(h.forwarded()).unwrap(),
            "POST /api/v1/x?a=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer  t0k\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        const ALPHABET: &[u8] = b"GET /\r\n: HTP1.0-Cntelg9 ";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ALPHABET[(seed % ALPHABET.len() as u64) as usize]
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}
