//! The node port's accept loop: admission, socket options, the PROXY header
//! of a trusted load balancer, TLS, and one task per connection.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use honeybee_proto::LineDecoder;
use socket2::{SockRef, TcpKeepalive};

use crate::metrics::{Metrics, ProtocolError};
use crate::node::admission::{report_refusal, Admission, Permit, Refusal, RefusalReport};
use crate::node::poller::{Handoff, NodePoller, Wire};
use crate::node::session::{self, Flow, NodeContext, Registered, Session, Warner};
use crate::trusted_proxies::{self, ProxiedRefusal, TrustedProxies};

/// Everything the accept loop needs.
pub struct NodeListener {
    /// The bound socket.
    pub socket: Async<TcpListener>,
    /// Per-connection context.
    pub ctx: Arc<NodeContext>,
    /// Pending-connection limits.
    pub admission: Admission,
    /// TLS, when configured.
    pub tls: Option<TlsAcceptor>,
    /// Time from connect to a registration message.
    pub registration_timeout: Duration,
    /// Where connection tasks run.
    pub executor: Arc<smol::Executor<'static>>,
    /// Where registered plain connections are served.
    pub poller: Arc<NodePoller>,
    /// Load balancers whose PROXY header names the real client.
    pub trusted_proxies: TrustedProxies,
}

impl NodeListener {
    /// Accepts until the future is dropped.
    pub async fn run(self) {
        let this = Arc::new(self);
        let report = Arc::new(Mutex::new(RefusalReport::default()));
        loop {
            this.admission
                .place(|| {
                    this.ctx
                        .metrics
                        .accept_waits
                        .fetch_add(1, Ordering::Relaxed);
                    log::debug!(
                        "node port: max_pending_connections reached; newcomers wait in the backlog"
                    );
                })
                .await;
            let (stream, peer) = accept(&this.socket, "a node connection").await;
            let metrics = &this.ctx.metrics;
            metrics.connections.fetch_add(1, Ordering::Relaxed);
            let proxied = this.trusted_proxies.contains(peer.ip());
            let admitted =
                this.admission
                    .admit_from(peer.ip(), &this.trusted_proxies, Instant::now());
            let permit = match admitted {
                Ok(p) => p,
                Err(refusal) => {
                    this.refused(&report, refusal, peer);
                    continue;
                }
            };
            configure(stream.get_ref());
            let task = Arc::clone(&this);
            let report = report.clone();
            this.executor
                .spawn(async move {
                    if !proxied {
                        return task.connection(stream, peer, permit).await;
                    }
                    match trusted_proxies::client_of(&stream, peer, permit).await {
                        Ok((client, permit)) => {
                            log::debug!(
                                "node connection {client} through the trusted proxy {peer}"
                            );
                            task.connection(stream, client, permit).await
                        }
                        Err(ProxiedRefusal::Header(e)) => {
                            log::debug!(
                                "node connection from the trusted proxy {peer}: {e}; closing"
                            );
                            task.refused(&report, Refusal::ProxyHeader, peer);
                        }
                        Err(ProxiedRefusal::Client(client, refusal)) => {
                            task.refused(&report, refusal, client);
                        }
                    }
                })
                .detach();
        }
    }

    /// Counts and reports a connection closed before it was served.
    fn refused(&self, report: &Mutex<RefusalReport>, refusal: Refusal, peer: SocketAddr) {
        self.ctx.metrics.connection_refused(refusal);
        log::debug!("refused node connection from {peer}: {}", refusal.label());
        report_refusal(report, "node connections", refusal, peer.ip());
    }

    async fn connection(&self, stream: Async<TcpStream>, peer: SocketAddr, permit: Permit) {
        let open = OpenConnection::new(self.ctx.metrics.clone());
        let deadline = Instant::now() + self.registration_timeout;
        // Boxed per branch so that the task does not carry the space the
        // other branch needs.
        match &self.tls {
            None => {
                let registered =
                    Box::pin(self.register(stream, peer, permit, deadline, None)).await;
                if let Some(session) = registered {
                    let (stream, frames, node, warner) = session.into_parts();
                    let wire = stream.into_inner().map(Wire::Plain);
                    self.hand_over(wire, frames, node, warner, open);
                }
            }
            Some(acceptor) => {
                let registered = Box::pin(self.tls(acceptor, stream, peer, permit, deadline)).await;
                if let Some(session) = registered {
                    let (stream, frames, node, warner) = session.into_parts();
                    let (socket, tls) = stream.into_inner();
                    let wire = socket.into_inner().map(|s| Wire::Tls(s, Box::new(tls)));
                    self.hand_over(wire, frames, node, warner, open);
                }
            }
        }
    }

    /// A registered connection leaves the executor for the poller.
    fn hand_over(
        &self,
        wire: std::io::Result<Wire>,
        frames: LineDecoder,
        node: Registered,
        warner: Warner,
        open: OpenConnection,
    ) {
        match wire {
            Ok(wire) => self.poller.adopt(Handoff {
                wire,
                frames,
                node,
                warner,
                open,
            }),
            Err(e) => {
                log::warn!(
                    "node {}: cannot hand its connection over: {e}",
                    node.node_id
                );
                session::finish(&node, Flow::Close, &self.ctx);
            }
        }
    }

    async fn tls(
        &self,
        acceptor: &TlsAcceptor,
        stream: Async<TcpStream>,
        peer: SocketAddr,
        permit: Permit,
        deadline: Instant,
    ) -> Option<Session<TlsStream<Async<TcpStream>>>> {
        let handshake = future::or(async { Some(acceptor.accept(stream).await) }, async {
            Timer::at(deadline).await;
            None
        });
        match handshake.await {
            Some(Ok(tls)) => {
                let cert = client_cert_sha256(tls.get_ref().1);
                self.register(tls, peer, permit, deadline, cert).await
            }
            Some(Err(e)) => {
                self.ctx.metrics.protocol_error(ProtocolError::TlsHandshake);
                log::info!("TLS handshake with {peer} failed: {e}");
                None
            }
            None => {
                self.ctx
                    .metrics
                    .protocol_error(ProtocolError::RegistrationTimeout);
                log::info!("TLS handshake with {peer} timed out");
                None
            }
        }
    }

    /// Reads the first message within the deadline and registers the node.
    async fn register<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        peer: SocketAddr,
        permit: Permit,
        deadline: Instant,
        cert: Option<String>,
    ) -> Option<Session<S>> {
        let first = future::or(
            async { Some(Box::pin(session::first_message(stream, peer, &self.ctx)).await) },
            async {
                Timer::at(deadline).await;
                None
            },
        )
        .await;
        match first {
            Some(Some((stream, frames, msg))) => {
                let session =
                    session::register_node(stream, frames, msg, peer, cert, &self.ctx).await;
                drop(permit);
                session
            }
            Some(None) => None,
            None => {
                self.ctx
                    .metrics
                    .protocol_error(ProtocolError::RegistrationTimeout);
                log::info!("node connection {peer}: no registration within the deadline; closing");
                None
            }
        }
    }
}

/// SHA-256 (hex) of the client certificate of a TLS connection, if any.
fn client_cert_sha256(conn: &rustls::ServerConnection) -> Option<String> {
    let cert = conn.peer_certificates()?.first()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// Counts a node connection as open for as long as it lives.
pub struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    pub(crate) fn new(metrics: Arc<Metrics>) -> OpenConnection {
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The next connection. Errors (out of file descriptors and the like) are
/// logged and retried after a pause: a port keeps serving whatever happens.
pub async fn accept(socket: &Async<TcpListener>, what: &str) -> (Async<TcpStream>, SocketAddr) {
    loop {
        match socket.accept().await {
            Ok(c) => return c,
            Err(e) => {
                log::error!("accepting {what}: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Keepalive finds peers that vanished; no Nagle delay for small messages.
pub fn configure(stream: &TcpStream) {
    let sock = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    if let Err(e) = sock.set_tcp_keepalive(&keepalive) {
        log::debug!("setting keepalive: {e}");
    }
    let _ = sock.set_tcp_nodelay(true);
}

/// Binds the node port with a large backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<Async<TcpListener>> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Async::new(TcpListener::from(socket))
}
