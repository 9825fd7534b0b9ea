//! The node port's accept loop: admission, socket options, TLS, and one task
//! per connection.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use socket2::{SockRef, TcpKeepalive};

use crate::admission::{Admission, Permit};
use crate::metrics::ProtocolError;
use crate::session::{self, NodeContext};

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
}

impl NodeListener {
    /// Accepts until the future is dropped.
    pub async fn run(self) {
        let this = Arc::new(self);
        loop {
            let (stream, peer) = match this.socket.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    log::error!("accepting a node connection: {e}");
                    Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = &this.ctx.metrics;
            metrics.connections.fetch_add(1, Ordering::Relaxed);
            let permit = match this.admission.admit(peer.ip(), Instant::now()) {
                Ok(p) => p,
                Err(refusal) => {
                    metrics.connection_refused(refusal);
                    log::debug!("refused node connection from {peer}: {}", refusal.label());
                    continue;
                }
            };
            configure(stream.get_ref());
            let task = Arc::clone(&this);
            this.executor
                .spawn(async move { task.connection(stream, peer, permit).await })
                .detach();
        }
    }

    async fn connection(&self, stream: Async<TcpStream>, peer: SocketAddr, permit: Permit) {
        let metrics = self.ctx.metrics.clone();
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.registration_timeout;
        // Boxed per branch so that the task of an idle plain-TCP node does
        // not carry the space a TLS session's future needs.
        match &self.tls {
            None => Box::pin(self.registered(stream, peer, permit, deadline)).await,
            Some(acceptor) => Box::pin(self.tls(acceptor, stream, peer, permit, deadline)).await,
        }
        metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    async fn tls(
        &self,
        acceptor: &TlsAcceptor,
        stream: Async<TcpStream>,
        peer: SocketAddr,
        permit: Permit,
        deadline: Instant,
    ) {
        let handshake = future::or(async { Some(acceptor.accept(stream).await) }, async {
            Timer::at(deadline).await;
            None
        });
        match handshake.await {
            Some(Ok(tls)) => self.registered(tls, peer, permit, deadline).await,
            Some(Err(e)) => {
                self.ctx.metrics.protocol_error(ProtocolError::TlsHandshake);
                log::info!("TLS handshake with {peer} failed: {e}");
            }
            None => {
                self.ctx
                    .metrics
                    .protocol_error(ProtocolError::RegistrationTimeout);
                log::info!("TLS handshake with {peer} timed out");
            }
        }
    }

    async fn registered<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        peer: SocketAddr,
        permit: Permit,
        deadline: Instant,
    ) {
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
                Box::pin(session::serve(stream, frames, msg, peer, permit, &self.ctx)).await
            }
            Some(None) => {}
            None => {
                self.ctx
                    .metrics
                    .protocol_error(ProtocolError::RegistrationTimeout);
                log::info!("node connection {peer}: no registration within the deadline; closing");
            }
        }
    }
}

/// Keepalive finds peers that vanished; no Nagle delay for small messages.
fn configure(stream: &TcpStream) {
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
