//! The API port's gate. tiny_http gives every connection a thread, reads
//! header lines without a bound, and drains an unread body with
//! `vec![0; Content-Length]`; so no client ever talks to it directly.
//!
//! Each TCP connection is admitted against fixed limits (overall, per
//! source, per-source rate). The gate then reads one request head (at most
//! [`MAX_HEAD`] bytes within [`HEAD_TIMEOUT`]) and parses it without I/O
//! ([`crate::api::head`]). A body is read only when it is announced by a
//! `Content-Length` of at most [`MAX_BODY`], carries the API token (no public
//! route takes a body), fits the gate's overall body budget, and arrives
//! within [`BODY_TIMEOUT`]; anything else is answered by the gate itself
//! (413, 401, 431, 400, 408, 503) without reading or allocating more. Only a
//! complete request, with a head the gate wrote, goes to tiny_http over a
//! Unix socket in the 0700 data dir, so its threads never wait on a client.
//! One request per connection: the forwarded head says `Connection: close`.
//!
//! A connection from a trusted load balancer ([`crate::trusted_proxies`])
//! starts with a PROXY header naming the client; the gate reads it before
//! the head and counts the connection for that client. From anyone else
//! such a header is only a malformed request head: 400.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use crate::api::head::{self, HeadError, RequestHead, MAX_HEAD};
use crate::api::MAX_BODY;
use crate::metrics::Metrics;
use crate::node::admission::{Admission, Limits};
use crate::trusted_proxies::{self, ProxiedRefusal, TrustedProxies};

/// Open API connections, all sources.
pub const MAX_CONNECTIONS: usize = 1024;
/// Open API connections from one source address.
pub const MAX_PER_SOURCE: usize = 32;
/// New API connections per second from one source (bursts of twice this).
pub const RATE_PER_SOURCE: u32 = 500;
/// Time a client has to send its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send its whole body once the head is in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// While the answer flows, a connection with no byte either way for this
/// long is closed.
pub const IDLE: Duration = Duration::from_secs(60);
/// Request bodies held by the gate at once, all connections together.
pub const BODY_BUDGET: usize = 16 * 1024 * 1024;

/// The accept loop in front of tiny_http.
pub struct HttpGate {
    /// The public TCP port.
    pub socket: Async<TcpListener>,
    /// tiny_http's Unix socket.
    pub backend: PathBuf,
    /// The API token: a body is read only from a client that has it.
    pub token: String,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where connection tasks run.
    pub executor: Arc<smol::Executor<'static>>,
    /// Load balancers whose PROXY header names the real client.
    pub trusted_proxies: TrustedProxies,
}

/// What every connection task shares.
struct Shared {
    backend: PathBuf,
    token: String,
    metrics: Arc<Metrics>,
    bodies: AtomicUsize,
}

impl HttpGate {
    /// Accepts until the future is dropped.
    pub async fn run(self) {
        let admission = Admission::new(Limits {
            max_pending: MAX_CONNECTIONS,
            max_pending_per_source: MAX_PER_SOURCE,
            rate_per_source: RATE_PER_SOURCE,
        });
        let shared = Arc::new(Shared {
            backend: self.backend,
            token: self.token,
            metrics: self.metrics,
            bodies: AtomicUsize::new(0),
        });
        loop {
            let (client, peer) =
                crate::node::listener::accept(&self.socket, "an API connection").await;
            let proxied = self.trusted_proxies.contains(peer.ip());
            let admitted = admission.admit_from(peer.ip(), &self.trusted_proxies, Instant::now());
            let permit = match admitted {
                Ok(p) => p,
                Err(refusal) => {
                    shared.metrics.api_refused.fetch_add(1, Ordering::Relaxed);
                    log::debug!("refused API connection from {peer}: {}", refusal.label());
                    continue;
                }
            };
            let shared = shared.clone();
            self.executor
                .spawn(async move {
                    let (peer, permit) = if proxied {
                        match trusted_proxies::client_of(&client, peer, permit).await {
                            Ok(admitted) => admitted,
                            Err(refused) => return shared.proxy_refused(peer, refused),
                        }
                    } else {
                        (peer, permit)
                    };
                    if let Err(e) = serve(client, &shared).await {
                        log::debug!("API connection {peer}: {e}");
                    }
                    drop(permit);
                })
                .detach();
        }
    }
}

impl Shared {
    /// Counts and logs a trusted proxy's connection closed before its
    /// request: no valid PROXY header, or its client is over its limits.
    fn proxy_refused(&self, proxy: SocketAddr, refused: ProxiedRefusal) {
        self.metrics.api_refused.fetch_add(1, Ordering::Relaxed);
        match refused {
            ProxiedRefusal::Header(e) => {
                log::debug!("API connection from the trusted proxy {proxy}: {e}; closing")
            }
            ProxiedRefusal::Client(client, refusal) => log::debug!(
                "refused API connection from {client} (through {proxy}): {}",
                refusal.label()
            ),
        }
    }
}

/// Why the gate answers a request itself.
enum Refused {
    Head(HeadError),
    Timeout,
    TooLarge,
    Unauthorized,
    Busy,
}

impl Refused {
    fn status(&self) -> (u16, &'static str) {
        match self {
            Refused::Head(e) => e.status(),
            Refused::Timeout => (408, "request not received in time"),
            Refused::TooLarge => (413, "request body over 1 MiB"),
            Refused::Unauthorized => (401, "a request body needs the API token"),
            Refused::Busy => (503, "too many request bodies in flight; try again"),
        }
    }
}

/// One request: read, checked, forwarded, answered.
async fn serve(mut client: Async<TcpStream>, shared: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = match deadline(HEAD_TIMEOUT, read_head(&mut client, &mut buf)).await {
        // Silent clients are closed silently, as before a request.
        None if buf.is_empty() => return Ok(()),
        None => Err(Refused::Timeout),
        Some(Ok(None)) => return Ok(()), // closed before a full head
        Some(Ok(Some(head))) => Ok(head),
        Some(Err(HeadReadError::Io(e))) => return Err(e),
        Some(Err(HeadReadError::Head(e))) => Err(Refused::Head(e)),
    };
    let (head, budget) = match head.and_then(|h| admit_body(h, shared)) {
        Ok(admitted) => admitted,
        Err(refused) => return refuse(client, refused, shared).await,
    };
    // The body begins with whatever followed the head in `buf`.
    let body_len = budget.len;
    if head.expect_continue && buf.len() < body_len {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    match deadline(BODY_TIMEOUT, read_body(&mut client, &mut buf, body_len)).await {
        None => return refuse(client, Refused::Timeout, shared).await,
        Some(Err(e)) => return Err(e),
        Some(Ok(())) => {}
    }
    let mut server = Async::<UnixStream>::connect(&shared.backend).await?;
    let mut request = head.forwarded();
    request.extend_from_slice(&buf[..body_len]);
    drop(std::mem::take(&mut buf));
    server.write_all(&request).await?;
    drop(request);
    answer(&server, &client).await
}

enum HeadReadError {
    Io(std::io::Error),
    Head(HeadError),
}

/// Reads until a whole head is in `buf`; what follows it stays in `buf`.
/// `Ok(None)`: the client closed first.
async fn read_head(
    client: &mut Async<TcpStream>,
    buf: &mut Vec<u8>,
) -> Result<Option<RequestHead>, HeadReadError> {
    let mut chunk = [0u8; 2048];
    loop {
        match head::parse(buf) {
            Ok(Some((head, n))) => {
                buf.drain(..n);
                return Ok(Some(head));
            }
            Ok(None) => {}
            Err(e) => return Err(HeadReadError::Head(e)),
        }
        // Never more than MAX_HEAD (+ one chunk of body) in memory.
        let room = (MAX_HEAD + 1).saturating_sub(buf.len()).min(chunk.len());
        let n = client
            .read(&mut chunk[..room.max(1)])
            .await
            .map_err(HeadReadError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Decides whether a body may be read, and reserves room for it.
fn admit_body(
    head: RequestHead,
    shared: &Shared,
) -> Result<(RequestHead, BodyBudget<'_>), Refused> {
    if head.body_len == 0 {
        return Ok((head, BodyBudget::none(&shared.bodies)));
    }
    if head.body_len > MAX_BODY as u64 {
        return Err(Refused::TooLarge);
    }
    let authorized = head
        .bearer()
        .is_some_and(|given| crate::secret::equal(given, shared.token.as_bytes()));
    if !authorized {
        return Err(Refused::Unauthorized);
    }
    match BodyBudget::take(&shared.bodies, head.body_len as usize) {
        Some(budget) => Ok((head, budget)),
        None => Err(Refused::Busy),
    }
}

/// Reads until `buf` holds `len` bytes of body; extra bytes (a pipelined
/// second request) are ignored, since the connection closes after this one.
async fn read_body(
    client: &mut Async<TcpStream>,
    buf: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<()> {
    if buf.len() < len {
        buf.reserve_exact(len - buf.len());
    }
    let mut chunk = [0u8; 8192];
    while buf.len() < len {
        let want = (len - buf.len()).min(chunk.len());
        let n = client.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Bytes of body the gate holds for one request; given back on drop.
struct BodyBudget<'a> {
    held: &'a AtomicUsize,
    len: usize,
}

impl<'a> BodyBudget<'a> {
    /// `len` bytes, if they fit within [`BODY_BUDGET`].
    fn take(held: &'a AtomicUsize, len: usize) -> Option<BodyBudget<'a>> {
        held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
            h.checked_add(len).filter(|&total| total <= BODY_BUDGET)
        })
        .ok()?;
        Some(BodyBudget { held, len })
    }

    fn none(held: &'a AtomicUsize) -> BodyBudget<'a> {
        BodyBudget { held, len: 0 }
    }
}

impl Drop for BodyBudget<'_> {
    fn drop(&mut self) {
        self.held.fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// Answers a refused request and closes: the unread rest is discarded
/// after a short linger, so the answer is not lost to a reset.
async fn refuse(
    mut client: Async<TcpStream>,
    refused: Refused,
    shared: &Shared,
) -> std::io::Result<()> {
    shared
        .metrics
        .api_requests_refused
        .fetch_add(1, Ordering::Relaxed);
    let (status, reason) = refused.status();
    let body = serde_json::json!({ "error": reason }).to_string();
    let mut extra = "";
    if matches!(refused, Refused::Unauthorized) {
        extra = "WWW-Authenticate: Bearer realm=\"honeybee\"\r\n";
    }
    let reply = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len()
    );
    let _ = deadline(Duration::from_secs(5), client.write_all(reply.as_bytes())).await;
    let _ = client.get_ref().shutdown(std::net::Shutdown::Write);
    // Drain a little of what the client still sends, briefly.
    let mut sink = [0u8; 4096];
    let _ = deadline(Duration::from_secs(1), async {
        let mut total = 0usize;
        while total < 64 * 1024 {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    Ok(())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Copies tiny_http's answer to the client until tiny_http closes, the
/// client goes away, or nothing moved for [`IDLE`].
async fn answer(server: &Async<UnixStream>, client: &Async<TcpStream>) -> std::io::Result<()> {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let copy = async {
        let mut buf = vec![0u8; 16 * 1024];
        let (mut from, mut to) = (server, client);
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return to.get_ref().shutdown(std::net::Shutdown::Write);
            }
            to.write_all(&buf[..n]).await?;
            last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    };
    let watchdog = async {
        loop {
            Timer::after(Duration::from_secs(1)).await;
            let now = start.elapsed().as_millis() as u64;
            if now.saturating_sub(last.load(Ordering::Relaxed)) > IDLE.as_millis() as u64 {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    };
    future::or(copy, watchdog).await
}

/// `Some(output)`, or `None` if `fut` took longer than `limit`.
async fn deadline<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        Timer::after(limit).await;
        None
    })
    .await
}

/// Binds the API port.
pub fn bind(addr: SocketAddr) -> std::io::Result<Async<TcpListener>> {
    crate::node::listener::bind(addr)
}
