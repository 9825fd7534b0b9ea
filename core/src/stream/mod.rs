//! The stream port (9003, docs/protocol.md §7): the accept loop, the split into
//! WebSocket and raw NDJSON sessions by their first bytes, and the task that
//! serves one session.
//!
//! Each session is one task on the core's executor. It reads the module's
//! messages, answers each command in order, and writes the live messages of
//! its subscription; all writing happens in that task, so a module that does
//! not read only ever stalls itself. What waits for it is bounded: the bus
//! queue (oldest dropped, reported as `lagged N`), the socket buffers, and for
//! WebSocket one message in tungstenite's write buffer. Commands that wait on
//! the database run on the blocking pool.
//!
//! A connection from a trusted load balancer ([`crate::trusted_proxies`])
//! starts with a PROXY header naming the client; it is read before the first
//! bytes are sniffed, and the session is the client's from then on.

pub mod origin;
pub mod resume;
pub mod session;

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt, StreamExt};
use honeybee_proto::{
    decode, encode, BackendResponse, DecodeError, Envelope, LineDecoder, ModuleMessage,
    StreamMessage,
};

use crate::bus::{Delivery, Subscription};
use crate::metrics::{Metrics, StreamRefusal};
use crate::node::admission::{report_refusal, Admission, Limits, Permit, Refusal, RefusalReport};
use crate::stream::resume::{Replay, Resumed};
use crate::stream::session::{url_token, ModuleContext, ModuleSession, Step, INVALID_TOKEN};
use crate::trusted_proxies::{self, ProxiedRefusal, TrustedProxies};

/// Stream sessions open at once; more are closed at accept.
pub const MAX_SESSIONS: usize = 256;
/// Longest message a module may send (an NDJSON line or a WebSocket message).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Unregistered stream connections at once, all sources: registered
/// modules and dashboards always find [`MAX_SESSIONS`]` - MAX_PENDING` places.
pub const MAX_PENDING: usize = 64;
/// Unregistered stream connections from one source address.
pub const MAX_PENDING_PER_SOURCE: usize = 8;
/// New stream connections per second from one source (bursts of twice this).
pub const RATE_PER_SOURCE: u32 = 20;
/// Longest NDJSON line read before a session has shown the API token.
pub const MAX_UNREGISTERED_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest response the core writes; a larger one is replaced by a failure.
pub const MAX_OUTPUT_BYTES: usize = 32 * 1024 * 1024;
/// How long a closing session waits for the peer to take its last words.
const CLOSE_LINGER: Duration = Duration::from_millis(500);
/// Input drained (and discarded) while lingering.
const LINGER_BYTES: usize = 64 * 1024;
/// The bytes that start a WebSocket handshake.
const HTTP_GET: &[u8] = b"GET ";

/// Everything the accept loop needs.
pub struct StreamListener {
    /// The bound socket.
    pub socket: Async<TcpListener>,
    /// What sessions use.
    pub ctx: Arc<ModuleContext>,
    /// Time from connect to a valid API token.
    pub registration_timeout: Duration,
    /// Where session tasks run.
    pub executor: Arc<smol::Executor<'static>>,
    /// The API port: a browser may open the WebSocket only from a page
    /// served there (the dashboard).
    pub api_port: u16,
    /// Load balancers whose PROXY header names the real client.
    pub trusted_proxies: TrustedProxies,
}

/// Holds one of the [`MAX_SESSIONS`] places while a session lives.
struct Slot {
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Slot {
    fn take(open: &Arc<AtomicUsize>, metrics: &Arc<Metrics>) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_SESSIONS).then_some(n + 1)
        })
        .ok()?;
        metrics.stream_sessions_open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            open: open.clone(),
            metrics: metrics.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics
            .stream_sessions_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// `f`, unless `deadline` passes first.
async fn before<T>(deadline: Instant, f: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await
}

impl StreamListener {
    /// Accepts until the future is dropped.
    pub async fn run(self) {
        let this = Arc::new(self);
        let open = Arc::new(AtomicUsize::new(0));
        let admission = Admission::new(Limits {
            max_pending: MAX_PENDING,
            max_pending_per_source: MAX_PENDING_PER_SOURCE,
            rate_per_source: RATE_PER_SOURCE,
        });
        let report = Arc::new(Mutex::new(RefusalReport::default()));
        loop {
            let (stream, peer) =
                crate::node::listener::accept(&this.socket, "a stream connection").await;
            let metrics = &this.ctx.metrics;
            metrics.stream_connections.fetch_add(1, Ordering::Relaxed);
            let proxied = this.trusted_proxies.contains(peer.ip());
            let admitted = admission.admit_from(peer.ip(), &this.trusted_proxies, Instant::now());
            let permit = match admitted {
                Ok(p) => p,
                Err(refusal) => {
                    this.refused(&report, refusal, peer);
                    continue;
                }
            };
            let Some(slot) = Slot::take(&open, metrics) else {
                metrics.stream_refused(StreamRefusal::TooManySessions);
                log::debug!("refused stream connection from {peer}: {MAX_SESSIONS} sessions open");
                continue;
            };
            crate::node::listener::configure(stream.get_ref());
            let task = Arc::clone(&this);
            let report = report.clone();
            this.executor
                .spawn(async move {
                    let (peer, permit) = if proxied {
                        match trusted_proxies::client_of(&stream, peer, permit).await {
                            Ok(admitted) => admitted,
                            Err(ProxiedRefusal::Header(e)) => {
                                task.ctx.metrics.stream_refused(StreamRefusal::ProxyHeader);
                                log::debug!(
                                    "stream connection from the trusted proxy {peer}: {e}; closing"
                                );
                                return;
                            }
                            Err(ProxiedRefusal::Client(client, refusal)) => {
                                return task.refused(&report, refusal, client);
                            }
                        }
                    } else {
                        (peer, permit)
                    };
                    task.connection(stream, peer, permit).await;
                    drop(slot);
                })
                .detach();
        }
    }

    /// Counts and reports a connection over its source's limits.
    fn refused(&self, report: &Mutex<RefusalReport>, refusal: Refusal, peer: SocketAddr) {
        self.ctx.metrics.stream_refused(StreamRefusal::Pending);
        log::debug!("refused stream connection from {peer}: {}", refusal.label());
        report_refusal(report, "stream connections", refusal, peer.ip());
    }

    async fn connection(&self, stream: Async<TcpStream>, peer: SocketAddr, permit: Permit) {
        let mut permit = Some(permit);
        let deadline = Instant::now() + self.registration_timeout;
        let websocket = match before(deadline, sniff(&stream)).await {
            Some(Ok(Some(ws))) => ws,
            Some(Ok(None) | Err(_)) => return,
            None => {
                self.timed_out(peer);
                return;
            }
        };
        if websocket {
            Box::pin(self.websocket(stream, peer, deadline, &mut permit)).await;
        } else {
            let mut wire = RawWire {
                stream,
                frames: LineDecoder::new(MAX_UNREGISTERED_MESSAGE_BYTES),
            };
            let session = ModuleSession::new();
            Box::pin(self.serve(&mut wire, session, peer, deadline, &mut permit)).await;
        }
    }

    fn timed_out(&self, peer: SocketAddr) {
        self.ctx
            .metrics
            .stream_refused(StreamRefusal::RegistrationTimeout);
        log::info!("stream connection {peer}: no registration within the deadline; closing");
    }

    async fn websocket(
        &self,
        stream: Async<TcpStream>,
        peer: SocketAddr,
        deadline: Instant,
        permit: &mut Option<Permit>,
    ) {
        let mut token = None;
        let mut foreign = None;
        // The callback's signature is tungstenite's.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            if let Err(origin) = origin::check(req.headers(), self.api_port) {
                foreign = Some(origin);
                let mut refusal = ErrorResponse::new(Some("origin not allowed".into()));
                *refusal.status_mut() = async_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
                return Err(refusal);
            }
            token = url_token(req.uri().query());
            Ok(resp)
        };
        let handshake =
            async_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config()));
        let ws = match before(deadline, handshake).await {
            Some(Ok(ws)) => ws,
            Some(Err(_)) if foreign.is_some() => {
                self.ctx.metrics.stream_refused(StreamRefusal::Origin);
                log::info!(
                    "stream connection {peer}: WebSocket from a page of another origin ({}); refused",
                    foreign.as_deref().unwrap_or_default()
                );
                return;
            }
            Some(Err(e)) => {
                self.ctx.metrics.stream_refused(StreamRefusal::Handshake);
                log::info!("stream connection {peer}: WebSocket handshake failed: {e}");
                return;
            }
            None => {
                self.timed_out(peer);
                return;
            }
        };
        let mut wire = WsWire { ws };
        let session = match token {
            None => ModuleSession::new(),
            Some(t) if self.ctx.token_ok(&t) => {
                self.ctx
                    .metrics
                    .stream_registrations
                    .fetch_add(1, Ordering::Relaxed);
                log::info!("WebSocket client {peer} registered with a URL token");
                ModuleSession::authorised()
            }
            Some(_) => {
                self.ctx.metrics.stream_refused(StreamRefusal::InvalidToken);
                log::info!("WebSocket client {peer}: invalid API token; closing");
                let _ = wire
                    .send(&response_line(BackendResponse::Failure(
                        INVALID_TOKEN.into(),
                    )))
                    .await;
                wire.close().await;
                return;
            }
        };
        self.serve(&mut wire, session, peer, deadline, permit).await;
    }

    /// Serves one session until it ends.
    async fn serve<W: Wire>(
        &self,
        wire: &mut W,
        mut session: ModuleSession,
        peer: SocketAddr,
        deadline: Instant,
        permit: &mut Option<Permit>,
    ) {
        let ctx = &self.ctx;
        let mut sub: Option<Subscription> = None;
        // Where the last replay ended: live events up to it were sent.
        let mut resumed: Option<Resumed> = None;
        loop {
            if session.registered() && permit.take().is_some() {
                // Registered (by a URL token or a message): its pending
                // place is free, its lines may be long.
                wire.registered();
            }
            let event = {
                let input = async { Event::Input(wire.recv().await) };
                let live = async {
                    match &sub {
                        Some(s) => Event::Live(s.recv().await),
                        None => future::pending().await,
                    }
                };
                let registered = session.registered();
                let timer = async {
                    if registered {
                        future::pending().await
                    } else {
                        Timer::at(deadline).await;
                        Event::Deadline
                    }
                };
                // Random order: a module that floods commands does not
                // starve its own deliveries, nor the other way round.
                future::or(timer, future::race(input, live)).await
            };
            let response = match event {
                Event::Deadline => {
                    self.timed_out(peer);
                    return;
                }
                Event::Live(Some(Delivery::Line(line, cursor))) => {
                    if resumed.as_ref().is_some_and(|r| r.skips(cursor)) {
                        continue;
                    }
                    if wire.send(line.as_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                Event::Live(Some(Delivery::Lagged(n))) => {
                    ctx.metrics.stream_dropped.fetch_add(n, Ordering::Relaxed);
                    BackendResponse::Failure(format!("lagged {n}"))
                }
                Event::Live(None) => {
                    sub = None;
                    continue;
                }
                Event::Input(Input::Closed) => return,
                Event::Input(Input::TooLong) => {
                    ctx.metrics.stream_refused(StreamRefusal::TooLong);
                    log::info!(
                        "stream connection {peer}: message longer than {MAX_MESSAGE_BYTES} bytes; closing"
                    );
                    return;
                }
                Event::Input(Input::Message(msg)) => match session.on_message(msg, ctx) {
                    Step::Reply(r) => r,
                    Step::ReplyAndClose(r) => {
                        let _ = wire.send(&response_line(r)).await;
                        wire.close().await;
                        return;
                    }
                    Step::Close => {
                        wire.close().await;
                        return;
                    }
                    Step::Subscribe(interest, cursor) => {
                        // Replaces the old subscription and what it had
                        // queued; made before the replay, so nothing
                        // committed meanwhile is missed.
                        sub = Some(ctx.bus.subscribe(interest.clone()));
                        ctx.metrics
                            .stream_subscriptions
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        resumed = None;
                        let subscribed = BackendResponse::Success {
                            message: Some("subscribed".into()),
                            data: None,
                        };
                        let Some(cursor) =
                            cursor.filter(|_| crate::stream::resume::wants_events(&interest))
                        else {
                            if wire.send(&response_line(subscribed)).await.is_err() {
                                return;
                            }
                            continue;
                        };
                        if wire.send(&response_line(subscribed)).await.is_err() {
                            return;
                        }
                        let mut replay = Replay::after(cursor);
                        let replayed = loop {
                            match replay.next_page(&ctx.events, &interest).await {
                                Ok(Some(page)) => {
                                    for live in page {
                                        if wire.send(live.line.as_bytes()).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                                Ok(None) => break Ok(replay.finish()),
                                Err(e) => break Err(e),
                            }
                        };
                        match replayed {
                            Ok(r) if r.cut => {
                                // More is stored than one replay sends: the
                                // subscriber goes on from where it stopped.
                                sub = None;
                                BackendResponse::Failure(format!(
                                    "replay stopped after {} events at cursor {}; subscribe again with it",
                                    crate::stream::resume::MAX_REPLAY,
                                    r.last
                                ))
                            }
                            Ok(r) => {
                                resumed = Some(r);
                                continue;
                            }
                            Err(e) => {
                                sub = None;
                                BackendResponse::Failure(e)
                            }
                        }
                    }
                    Step::Blocking(work) => {
                        let ctx = ctx.clone();
                        smol::unblock(move || work.run(&ctx)).await
                    }
                },
            };
            if wire.send(&response_line(response)).await.is_err() {
                return;
            }
        }
    }
}

enum Event {
    Input(Input),
    Live(Option<Delivery>),
    Deadline,
}

/// What a module sent.
enum Input {
    /// One message (or why it did not decode).
    Message(Result<ModuleMessage, DecodeError>),
    /// A message over [`MAX_MESSAGE_BYTES`].
    TooLong,
    /// The peer closed, or the connection failed.
    Closed,
}

/// One kind of session transport.
trait Wire {
    /// The next message; cancel-safe (nothing read is lost when the future
    /// is dropped).
    async fn recv(&mut self) -> Input;
    /// Writes one NDJSON line (`\n` included).
    async fn send(&mut self, line: &[u8]) -> io::Result<()>;
    /// Closes politely, waiting at most [`CLOSE_LINGER`].
    async fn close(&mut self);
    /// The session showed the API token: lift the unregistered limits.
    fn registered(&mut self) {}
}

/// Raw NDJSON over TCP.
struct RawWire {
    stream: Async<TcpStream>,
    frames: LineDecoder,
}

impl Wire for RawWire {
    fn registered(&mut self) {
        self.frames.set_max_message_bytes(MAX_MESSAGE_BYTES);
    }

    async fn recv(&mut self) -> Input {
        loop {
            match self.frames.next_frame() {
                Ok(Some(line)) => return Input::Message(decode::<ModuleMessage>(line)),
                Ok(None) => {}
                Err(_) => return Input::TooLong,
            }
            let window = self.frames.window();
            if window.is_empty() {
                return Input::TooLong;
            }
            match (&self.stream).read(window).await {
                Ok(0) | Err(_) => return Input::Closed,
                Ok(n) => self.frames.filled(n),
            }
        }
    }

    async fn send(&mut self, line: &[u8]) -> io::Result<()> {
        (&self.stream).write_all(line).await
    }

    async fn close(&mut self) {
        // Send FIN first and read what is still coming: closing with unread
        // input would reset the connection and could destroy the last reply
        // before the module read it.
        let _ = self.stream.get_ref().shutdown(std::net::Shutdown::Write);
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        let _ = before(Instant::now() + CLOSE_LINGER, async {
            while drained < LINGER_BYTES {
                match (&self.stream).read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
    }
}

/// WebSocket: one text message per envelope.
struct WsWire {
    ws: WebSocketStream<Async<TcpStream>>,
}

impl Wire for WsWire {
    async fn recv(&mut self) -> Input {
        loop {
            return match self.ws.next().await {
                None => Input::Closed,
                Some(Ok(Message::Text(text))) => Input::Message(decode(text.as_bytes())),
                Some(Ok(Message::Binary(bytes))) => Input::Message(decode(&bytes)),
                Some(Ok(Message::Close(_))) => Input::Closed,
                // Pings are answered by tungstenite.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(WsError::Capacity(_))) => Input::TooLong,
                Some(Err(_)) => Input::Closed,
            };
        }
    }

    async fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let text = String::from_utf8_lossy(line).into_owned();
        self.ws
            .send(Message::text(text))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let _ = before(Instant::now() + CLOSE_LINGER, self.ws.close(None)).await;
    }
}

/// Bounded buffers: 8 KiB to read into, nothing kept back on write (each
/// send waits for its flush), incoming messages up to [`MAX_MESSAGE_BYTES`].
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_OUTPUT_BYTES + 64 * 1024)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// A response as one line; one over [`MAX_OUTPUT_BYTES`] becomes a failure.
fn response_line(response: BackendResponse) -> Vec<u8> {
    let line = encode(&Envelope::new(StreamMessage::BackendResponse(response)));
    if line.len() <= MAX_OUTPUT_BYTES {
        return line;
    }
    encode(&Envelope::new(StreamMessage::BackendResponse(
        BackendResponse::Failure(format!(
            "the response is {} bytes, over the limit of {MAX_OUTPUT_BYTES}; ask for less",
            line.len()
        )),
    )))
}

/// Whether the first bytes are an HTTP `GET` (WebSocket); `None` when the
/// peer closed first. Waits without consuming anything.
async fn sniff(stream: &Async<TcpStream>) -> io::Result<Option<bool>> {
    let mut buf = [0u8; HTTP_GET.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if !HTTP_GET.starts_with(&buf[..n]) {
            return Ok(Some(false));
        }
        if n == HTTP_GET.len() {
            return Ok(Some(true));
        }
        // A prefix of "GET " so far: the rest is on its way.
        Timer::after(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_responses_become_failures() {
        let small = response_line(BackendResponse::Failure("x".into()));
        assert!(small.ends_with(b"\n"));
        let big = response_line(BackendResponse::Success {
            message: None,
            data: Some(serde_json::Value::String("x".repeat(MAX_OUTPUT_BYTES))),
        });
        let text = String::from_utf8(big).unwrap();
        assert!(text.contains("over the limit"), "{text}");
    }

    #[test]
    fn slots_are_bounded_and_returned() {
        let open = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(Metrics::default());
        let slots: Vec<_> = (0..MAX_SESSIONS)
            .map(|_| Slot::take(&open, &metrics).unwrap())
            .collect();
        assert!(Slot::take(&open, &metrics).is_none());
        assert_eq!(
            metrics.stream_sessions_open.load(Ordering::Relaxed),
            MAX_SESSIONS as u64
        );
        drop(slots);
        assert_eq!(open.load(Ordering::Relaxed), 0);
        assert!(Slot::take(&open, &metrics).is_some());
    }

    #[test]
    fn first_bytes_decide() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for (bytes, want) in [
            (&b"GET /?token=x HTTP/1.1\r\n"[..], Some(true)),
            (&b"{\"version\":2}\n"[..], Some(false)),
            (&b"GEX"[..], Some(false)),
            (&b""[..], None),
        ] {
            let mut client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            let server = Async::new(server).unwrap();
            std::io::Write::write_all(&mut client, bytes).unwrap();
            drop(client);
            let got = smol::block_on(sniff(&server)).unwrap();
            assert_eq!(got, want, "{bytes:?}");
            // Nothing was consumed.
            let mut rest = Vec::new();
            smol::block_on((&server).read_to_end(&mut rest)).unwrap();
            assert_eq!(rest, bytes);
        }
    }
}
