//! One node connection: registration, then messages until it ends.
//!
//! Generic over the byte stream so that plain TCP and TLS share one path.
//! Framing is the sans-I/O [`LineDecoder`]: lines are split by newline, never
//! by read, and a line never grows past `max_message_bytes`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use honeybee_proto::{
    decode, encode, CoreMessage, DecodeError, Envelope, LineDecoder, NodeMessage, RegistrationAck,
};

use crate::admission::Permit;
use crate::metrics::{Metrics, ProtocolError, RegistrationRefusal};
use crate::outbox::Inbox;
use crate::registry::{Accepted, Liveness, Registry};

/// Warnings logged per connection before they go quiet (a noisy peer must
/// not flood the log).
const WARNINGS_PER_CONNECTION: u32 = 5;

/// What every node connection needs.
pub struct NodeContext {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// Line limit.
    pub max_message_bytes: usize,
}

/// A stream with its frame decoder.
struct Link<S> {
    stream: S,
    frames: LineDecoder,
    peer: SocketAddr,
    warnings: u32,
}

/// How reading the next line ended.
enum Read {
    Line(Result<NodeMessage, DecodeError>),
    Closed,
    TooLong,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    async fn next(&mut self) -> Read {
        loop {
            match self.frames.next_frame() {
                Ok(Some(line)) => return Read::Line(decode(line)),
                Ok(None) => {}
                Err(_) => return Read::TooLong,
            }
            match self.stream.read(self.frames.window()).await {
                Ok(0) | Err(_) => return Read::Closed,
                Ok(n) => self.frames.filled(n),
            }
        }
    }

    async fn send(&mut self, message: CoreMessage) -> std::io::Result<()> {
        let bytes = encode(&Envelope::new(message));
        self.stream.write_all(&bytes).await?;
        self.stream.flush().await
    }

    fn warn(&mut self, text: std::fmt::Arguments) {
        self.warnings += 1;
        if self.warnings <= WARNINGS_PER_CONNECTION {
            log::warn!("node connection {}: {text}", self.peer);
        }
    }
}

/// Reads the first line and registers the node. The caller bounds this
/// with the registration deadline.
pub async fn first_message<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    ctx: &NodeContext,
) -> Option<(S, LineDecoder, NodeMessage)> {
    let mut link = Link {
        stream,
        frames: LineDecoder::new(ctx.max_message_bytes),
        peer,
        warnings: 0,
    };
    match link.next().await {
        Read::Line(Ok(msg)) => Some((link.stream, link.frames, msg)),
        Read::Line(Err(e)) => {
            ctx.metrics.protocol_error(ProtocolError::from_decode(&e));
            link.warn(format_args!("{e}"));
            let refusal = match e {
                DecodeError::WrongVersion(_) => Some(RegistrationRefusal::WrongVersion),
                DecodeError::InvalidMessage(_) => Some(RegistrationRefusal::InvalidRegistration),
                DecodeError::NotUtf8 | DecodeError::InvalidJson(_) => None,
            };
            if let Some(reason) = refusal {
                ctx.metrics.registration_refused(reason);
                let _ = link.send(refusal_ack(0, e.to_string())).await;
            }
            None
        }
        Read::TooLong => {
            ctx.metrics.protocol_error(ProtocolError::TooLong);
            link.warn(format_args!(
                "message longer than {} bytes; closing",
                ctx.max_message_bytes
            ));
            None
        }
        Read::Closed => None,
    }
}

fn refusal_ack(node_id: u64, message: String) -> CoreMessage {
    CoreMessage::RegistrationAck(RegistrationAck {
        node_id,
        accepted: false,
        message: Some(message),
        totp_key: None,
    })
}

/// A registered connection: what the message loop needs.
struct Registered {
    node_id: u64,
    conn_id: u64,
    inbox: Inbox,
    live: Arc<Liveness>,
}

/// Registers the node that sent `first`, then serves it until the
/// connection ends. `permit` (the pending-connection slot) is released once
/// the node is registered.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    frames: LineDecoder,
    first: NodeMessage,
    peer: SocketAddr,
    permit: Permit,
    ctx: &NodeContext,
) {
    let mut link = Link {
        stream,
        frames,
        peer,
        warnings: 0,
    };
    // Boxed: registration needs far more space than the long idle life of a
    // connection, and that space is freed once it is done.
    let Some(node) = Box::pin(register(&mut link, first, ctx)).await else {
        return;
    };
    drop(permit);
    let dropped = run_registered(&mut link, &node, ctx).await;
    if dropped {
        ctx.registry.dropped(node.node_id, node.conn_id);
        log::info!("node {} left (NodeDrop)", node.node_id);
    } else {
        ctx.registry.disconnected(node.node_id, node.conn_id);
    }
}

/// Registration: the registry's decision, the commit, the ack.
async fn register<S: AsyncRead + AsyncWrite + Unpin>(
    link: &mut Link<S>,
    first: NodeMessage,
    ctx: &NodeContext,
) -> Option<Registered> {
    let peer = link.peer;
    let reg = match first {
        NodeMessage::NodeRegistration(reg) => reg,
        other => {
            ctx.metrics.protocol_error(ProtocolError::NotRegistration);
            ctx.metrics
                .registration_refused(RegistrationRefusal::NotRegistration);
            let why = format!(
                "expected NodeRegistration as the first message, got {}",
                other.name()
            );
            link.warn(format_args!("{why}"));
            let _ = link.send(refusal_ack(0, why)).await;
            return None;
        }
    };
    let accepted = match ctx.registry.register(&reg, peer) {
        Ok(a) => a,
        Err(refused) => {
            ctx.metrics.registration_refused(refused.reason);
            log::info!(
                "node {} ({}) from {peer} refused: {}",
                reg.node_id,
                reg.node_name,
                refused.message
            );
            let _ = link.send(refusal_ack(reg.node_id, refused.message)).await;
            return None;
        }
    };
    let Accepted {
        node_id,
        conn_id,
        outbox,
        live,
        totp_key,
        receipt,
    } = accepted;
    if let Err(e) = receipt.committed().await {
        ctx.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
        ctx.metrics
            .registration_refused(RegistrationRefusal::Internal);
        log::error!("node {node_id}: registration not recorded: {e}");
        ctx.registry.disconnected(node_id, conn_id);
        let _ = link
            .send(refusal_ack(
                node_id,
                "the core could not record the registration".into(),
            ))
            .await;
        return None;
    }
    let first_time = totp_key.is_some();
    let ack = CoreMessage::RegistrationAck(RegistrationAck {
        node_id,
        accepted: true,
        message: None,
        totp_key,
    });
    if link.send(ack).await.is_err() {
        ctx.registry.disconnected(node_id, conn_id);
        return None;
    }
    ctx.metrics
        .registrations_accepted
        .fetch_add(1, Ordering::Relaxed);
    log::info!(
        "node {node_id} ({}, {}) registered from {peer}{}",
        reg.node_name,
        reg.node_type.as_str(),
        if first_time {
            " for the first time"
        } else {
            ""
        }
    );
    Some(Registered {
        node_id,
        conn_id,
        inbox: outbox,
        live,
    })
}

enum Wake {
    Read(std::io::Result<usize>),
    Outbox(Option<CoreMessage>),
}

/// Serves a registered node; returns whether it said `NodeDrop`.
async fn run_registered<S: AsyncRead + AsyncWrite + Unpin>(
    link: &mut Link<S>,
    node: &Registered,
    ctx: &NodeContext,
) -> bool {
    let Registered {
        node_id,
        conn_id,
        ref inbox,
        ref live,
    } = *node;
    loop {
        loop {
            let msg = match link.frames.next_frame() {
                Ok(Some(line)) => decode::<NodeMessage>(line),
                Ok(None) => break,
                Err(_) => {
                    ctx.metrics.protocol_error(ProtocolError::TooLong);
                    link.warn(format_args!("message too long; closing"));
                    return false;
                }
            };
            match msg {
                Ok(msg) => {
                    live.touch(ctx.registry.clock().now_ms());
                    if handle(msg, node_id, conn_id, live, ctx) {
                        return true;
                    }
                }
                Err(e) => {
                    ctx.metrics.protocol_error(ProtocolError::from_decode(&e));
                    link.warn(format_args!("node {node_id}: {e}"));
                    if matches!(e, DecodeError::NotUtf8 | DecodeError::InvalidJson(_)) {
                        return false;
                    }
                }
            }
        }
        let wake = {
            let Link { stream, frames, .. } = &mut *link;
            future::or(
                async { Wake::Read(stream.read(frames.window()).await) },
                async { Wake::Outbox(inbox.recv().await) },
            )
            .await
        };
        match wake {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => return false,
            Wake::Read(Ok(n)) => link.frames.filled(n),
            // Closed: replaced by a newer connection, deleted, lost, or shutdown.
            Wake::Outbox(None) => return false,
            Wake::Outbox(Some(message)) => {
                if link.send(message).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Handles one message; returns true on `NodeDrop`.
fn handle(
    msg: NodeMessage,
    node_id: u64,
    conn_id: u64,
    live: &Liveness,
    ctx: &NodeContext,
) -> bool {
    match msg {
        NodeMessage::NodeStatusUpdate(update) => {
            ctx.metrics.heartbeats.fetch_add(1, Ordering::Relaxed);
            if !live.is_status(update.status) {
                ctx.registry.set_status(node_id, conn_id, update.status);
            }
        }
        NodeMessage::PotStatusUpdate(update) => ctx.registry.pot_status(node_id, conn_id, update),
        NodeMessage::NodeEvent(event) => {
            log::info!(
                "node {node_id}: {} {}",
                event.kind.as_str(),
                event.text().unwrap_or("")
            );
            ctx.registry.node_event(node_id, &event);
        }
        NodeMessage::NodeDrop => return true,
        NodeMessage::PotEvent(_) => {
            // Stored from step 2 on (the event pipeline); counted meanwhile.
            log::debug!("node {node_id}: PotEvent not stored by this core version");
        }
        NodeMessage::NodeRegistration(_) => {
            log::debug!("node {node_id}: NodeRegistration on a registered connection ignored");
        }
        NodeMessage::Unknown(name) => {
            ctx.metrics.protocol_error(ProtocolError::UnknownVariant);
            log::debug!("node {node_id}: unknown message {name} skipped");
        }
    }
    false
}
