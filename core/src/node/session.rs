//! One node connection: registration, and the handling of every later line.
//!
//! Registration is generic over the byte stream so that plain TCP and TLS
//! share one path; the registered connection is then served by the
//! [`crate::node::poller`].
//! Framing is the sans-I/O [`LineDecoder`]: lines are split by newline, never
//! by read, and a line never grows past `max_message_bytes`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use honeybee_proto::{
    decode, encode, CoreMessage, DecodeError, Envelope, LineDecoder, NodeMessage, NodeRegistration,
    RegistrationAck,
};

use crate::bus::Bus;
use crate::fleet::Fleet;
use crate::metrics::{Metrics, ProtocolError, RegistrationRefusal};
use crate::node::outbox::Inbox;
use crate::node::registry::{locked, refuse, Accepted, Liveness, Refused, Registry};
use crate::node::totp;
use crate::store::event_row::EventRecord;
use crate::store::EventStore;

/// Warnings logged per connection before they go quiet (a noisy peer must
/// not flood the log).
const WARNINGS_PER_CONNECTION: u32 = 5;

/// What every node connection needs.
pub struct NodeContext {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Where attack events go.
    pub events: Arc<dyn EventStore>,
    /// Live subscribers (port 9003).
    pub bus: Arc<Bus>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// Line limit.
    pub max_message_bytes: usize,
    /// The other cores sharing the database, if any.
    pub fleet: Arc<dyn Fleet>,
}

/// Rate-limits the warnings one connection may log.
#[derive(Debug)]
pub struct Warner {
    peer: SocketAddr,
    count: u32,
    /// Not registered yet: warnings share a process-wide budget, since
    /// anyone can open such connections.
    unregistered: bool,
}

/// Warnings about unregistered connections logged per second, all together;
/// the rest are counted and said in the next one logged.
const UNREGISTERED_WARNINGS_PER_SECOND: u64 = 10;

/// Whether an unregistered connection's warning may be logged now, and
/// how many were held back before it.
fn unregistered_budget() -> Option<u64> {
    static BUDGET: Budget = Budget::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    BUDGET.take(now)
}

/// [`UNREGISTERED_WARNINGS_PER_SECOND`] warnings each second, shared by
/// every unregistered connection (lock-free: any connection task may ask).
#[derive(Debug)]
struct Budget {
    second: AtomicU64,
    used: AtomicU64,
    held: AtomicU64,
}

impl Budget {
    const fn new() -> Budget {
        Budget {
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// A warning at unix second `now`: `Some(held back before it)` if it
    /// may be logged, `None` (and counted) if this second's share is spent.
    fn take(&self, now: u64) -> Option<u64> {
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < UNREGISTERED_WARNINGS_PER_SECOND {
            Some(self.held.swap(0, Ordering::Relaxed))
        } else {
            self.held.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Warner {
    pub(crate) fn new(peer: SocketAddr) -> Warner {
        Warner {
            peer,
            count: 0,
            unregistered: true,
        }
    }

    /// Logs a warning, unless this connection already logged its share
    /// (or, before registration, all such connections logged theirs).
    pub fn warn(&mut self, text: std::fmt::Arguments) {
        self.count += 1;
        if self.count > WARNINGS_PER_CONNECTION {
            return;
        }
        if !self.unregistered {
            log::warn!("node connection {}: {text}", self.peer);
            return;
        }
        match unregistered_budget() {
            Some(0) => log::warn!("node connection {}: {text}", self.peer),
            Some(held) => log::warn!(
                "node connection {}: {text} ({held} such warnings about unregistered connections held back)",
                self.peer
            ),
            None => {}
        }
    }
}

/// A stream with its frame decoder.
struct Link<S> {
    stream: S,
    frames: LineDecoder,
    warner: Warner,
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
        self.warner.warn(text)
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
        // Until it is registered, a peer gets a small line: 1,024 such
        // connections hold at most 64 MiB.
        frames: LineDecoder::new(ctx.max_message_bytes.min(MAX_REGISTRATION_BYTES)),
        warner: Warner::new(peer),
    };
    match link.next().await {
        Read::Line(Ok(msg)) => Some((link.stream, link.frames, msg)),
        Read::Line(Err(e)) => {
            ctx.metrics.protocol_error(ProtocolError::from_decode(&e));
            // A payload error may quote a field of the registration, and
            // that may be a secret (a TOTP code, a token): the peer gets the
            // details, the log only the kind.
            match &e {
                DecodeError::InvalidMessage(_) => link.warn(format_args!(
                    "invalid first message (details sent to the peer)"
                )),
                other => link.warn(format_args!("{other}")),
            }
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
                "first message longer than {} bytes; closing",
                link.frames.max_message_bytes()
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
#[derive(Debug)]
pub struct Registered {
    /// The node.
    pub node_id: u64,
    /// This connection (a newer one for the same node replaces it).
    pub conn_id: u64,
    /// Commands for the node; closed when the registry ends the connection.
    pub inbox: Inbox,
    /// Shared with the registry's liveness sweep.
    pub live: Arc<Liveness>,
    /// The spool epoch the node's `seq`s count in on this connection.
    pub epoch: u64,
}

/// A node connection that passed registration.
pub struct Session<S> {
    link: Link<S>,
    node: Registered,
}

impl<S> Session<S> {
    /// The parts, for serving the connection elsewhere: the stream, the
    /// decoder (it may hold lines that arrived after the registration), the
    /// node and the warning limiter.
    pub fn into_parts(self) -> (S, LineDecoder, Registered, Warner) {
        (
            self.link.stream,
            self.link.frames,
            self.node,
            self.link.warner,
        )
    }
}

/// Longest first line (the registration) read from a connection that is
/// not yet registered.
pub const MAX_REGISTRATION_BYTES: usize = 64 * 1024;

/// Registers the node that sent `first` (ack sent, registration recorded).
/// `None` means refused or gone; the caller closes the connection.
pub async fn register_node<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    frames: LineDecoder,
    first: NodeMessage,
    peer: SocketAddr,
    cert: Option<String>,
    ctx: &NodeContext,
) -> Option<Session<S>> {
    let mut link = Link {
        stream,
        frames,
        warner: Warner::new(peer),
    };
    // Boxed: registration needs far more space than the long idle life of a
    // connection, and that space is freed once it is done.
    let node = Box::pin(register(&mut link, first, cert, ctx)).await?;
    link.frames.set_max_message_bytes(ctx.max_message_bytes);
    link.warner.unregistered = false;
    Some(Session { link, node })
}

/// Before a registration is decided on a core that shares its database:
/// the node as stored now (another core may have approved it, given it a
/// key, accepted a later TOTP step), its source's lockout, and the claim of
/// the TOTP step the code is for, which only one core can win.
async fn shared_state(
    reg: &NodeRegistration,
    peer: SocketAddr,
    ctx: &NodeContext,
) -> Result<(), Refused> {
    if !ctx.fleet.shared() {
        return Ok(());
    }
    let (fleet, id, source) = (ctx.fleet.clone(), reg.node_id, peer.ip());
    let shared = smol::unblock(move || fleet.load_node(id, source))
        .await
        .map_err(|e| {
            log::error!("node {id}: {e}");
            refuse(
                RegistrationRefusal::Internal,
                "the core cannot reach its database; try again",
            )
        })?;
    if let Some(until) = shared.as_ref().and_then(|s| s.locked_until_ms) {
        let now = clock_ms();
        if until > now {
            return Err(locked(Duration::from_millis(until - now)));
        }
    }
    let step = shared.as_ref().and_then(|s| {
        let key = s.node.node.totp_key.as_deref()?;
        totp::verify(
            key,
            reg.totp_code.as_deref()?,
            ctx.registry.clock().unix_secs(),
        )
    });
    ctx.registry.merge_shared(id, shared);
    if let Some(step) = step {
        let fleet = ctx.fleet.clone();
        let won = smol::unblock(move || fleet.claim_step(id, step, source))
            .await
            .map_err(|e| {
                log::error!("node {id}: {e}");
                refuse(
                    RegistrationRefusal::Internal,
                    "the core cannot reach its database",
                )
            })?;
        if !won {
            // A replay is a failed check, as on a core alone.
            let mut replay = refuse(RegistrationRefusal::ReplayedTotp, "TOTP code already used");
            replay.failed_check = true;
            return Err(replay);
        }
    }
    Ok(())
}

/// Counts a failed TOTP check in the database the cores share; logs the
/// lockout it imposed on every core, if it did.
async fn count_failure(id: u64, source: IpAddr, ctx: &NodeContext) {
    let (fleet, policy) = (ctx.fleet.clone(), ctx.registry.lockout_policy());
    match smol::unblock(move || fleet.count_failure(id, source, &policy, clock_ms())).await {
        Ok(None) => {}
        Ok(Some(period)) => log::warn!(
            "node {id} from {source}: {} failed TOTP checks across the fleet; this address is \
             locked out for {} s on every core",
            policy.failures,
            period.as_secs()
        ),
        Err(e) => log::warn!("node {id}: a failed TOTP check not counted: {e}"),
    }
}

fn clock_ms() -> u64 {
    let (secs, nanos) = honeybee_proto::time::now_unix();
    (secs.max(0) as u64)
        .saturating_mul(1000)
        .saturating_add(u64::from(nanos / 1_000_000))
}

/// Records how a registered connection ended.
pub fn finish(node: &Registered, flow: Flow, ctx: &NodeContext) {
    if ctx.fleet.shared() {
        let (fleet, id, conn) = (ctx.fleet.clone(), node.node_id, node.conn_id);
        smol::unblock(move || fleet.release(id, conn)).detach();
    }
    if flow == Flow::Dropped {
        ctx.registry.dropped(node.node_id, node.conn_id);
        log::info!("node {} left (NodeDrop)", node.node_id);
    } else {
        ctx.registry.disconnected(node.node_id, node.conn_id);
    }
}

/// What the connection does after the lines read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read on.
    Continue,
    /// The node said `NodeDrop`.
    Dropped,
    /// Close it: framing broken, or the peer is gone.
    Close,
}

/// What the lines handled in a round were: the node poller decides by it
/// how long the next round may wait.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Lines handled.
    pub messages: usize,
    /// Of those, messages other than heartbeats (`NodeStatusUpdate`): pot
    /// events, pot states, node events, which someone may be waiting for.
    pub urgent: usize,
}

/// Handles every complete line in `frames`, counting them in `tally`.
pub fn drain_frames(
    frames: &mut LineDecoder,
    node: &Registered,
    warner: &mut Warner,
    ctx: &NodeContext,
    tally: &mut Tally,
) -> Flow {
    loop {
        let msg = match frames.next_frame() {
            Ok(Some(line)) => decode::<NodeMessage>(line),
            Ok(None) => return Flow::Continue,
            Err(_) => {
                ctx.metrics.protocol_error(ProtocolError::TooLong);
                warner.warn(format_args!("message too long; closing"));
                return Flow::Close;
            }
        };
        tally.messages += 1;
        match msg {
            Ok(msg) => {
                if !matches!(msg, NodeMessage::NodeStatusUpdate(_)) {
                    tally.urgent += 1;
                }
                node.live.touch(ctx.registry.clock().now_ms());
                if handle(msg, node, ctx) {
                    return Flow::Dropped;
                }
            }
            Err(e) => {
                ctx.metrics.protocol_error(ProtocolError::from_decode(&e));
                warner.warn(format_args!("node {}: {e}", node.node_id));
                if matches!(e, DecodeError::NotUtf8 | DecodeError::InvalidJson(_)) {
                    return Flow::Close;
                }
            }
        }
    }
}

/// Registration: the registry's decision, the commit, the ack.
async fn register<S: AsyncRead + AsyncWrite + Unpin>(
    link: &mut Link<S>,
    first: NodeMessage,
    cert: Option<String>,
    ctx: &NodeContext,
) -> Option<Registered> {
    let peer = link.warner.peer;
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
    let decided = match shared_state(&reg, peer, ctx).await {
        Ok(()) => ctx.registry.register_with_cert(&reg, peer, cert),
        Err(refused) => Err(refused),
    };
    let accepted = match decided {
        Ok(a) => a,
        Err(refused) => {
            if refused.failed_check && ctx.fleet.shared() {
                // Counted before the refusal is sent: the next try, on any
                // core, sees this one.
                count_failure(reg.node_id, peer.ip(), ctx).await;
            }
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
    if ctx.fleet.shared() {
        let fleet = ctx.fleet.clone();
        if let Err(e) = smol::unblock(move || fleet.hold(node_id, conn_id)).await {
            ctx.metrics
                .registration_refused(RegistrationRefusal::Internal);
            log::error!("node {node_id}: {e}");
            ctx.registry.disconnected(node_id, conn_id);
            let _ = link
                .send(refusal_ack(
                    node_id,
                    "the core could not record where the node is".into(),
                ))
                .await;
            return None;
        }
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
        epoch: reg.spool_epoch.unwrap_or(0),
    })
}

/// Handles one message; returns true on `NodeDrop`.
fn handle(msg: NodeMessage, node: &Registered, ctx: &NodeContext) -> bool {
    let (node_id, conn_id) = (node.node_id, node.conn_id);
    match msg {
        NodeMessage::NodeStatusUpdate(update) => {
            ctx.metrics.heartbeats.fetch_add(1, Ordering::Relaxed);
            if !node.live.is_status(update.status) {
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
        NodeMessage::PotEvent(mut event) => {
            event.node_id = node_id;
            // Published once committed (server.rs), replays left out: every
            // core's stream then shows each stored event once.
            // Blocks while the writer is behind: no more reading from any
            // node until it catches up, and nothing read is dropped.
            let mut record = EventRecord::new(node_id, event);
            record.epoch = node.epoch;
            if let Err(e) = ctx.events.append(record) {
                log::warn!("node {node_id}: event not stored: {e}");
            }
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

#[cfg(test)]
mod tests;
