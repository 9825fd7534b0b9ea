//! The connection to the core, shared by both modes: connect, register
//! (TOTP, enrollment token), heartbeat, send the spool and control messages,
//! take acknowledgements and commands, reconnect with backoff, and say
//! goodbye on shutdown.
//!
//! One session is two loops raced on the agent's thread: the reader takes
//! `EventAck`s and commands, the writer sends whatever is queued. Either
//! ending (an error, a `Restart` command) ends the session; the spool then
//! rewinds so that the next session sends every unacknowledged event again.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use honeybee_proto::{
    decode, encode_into, Command, CoreMessage, Envelope, LineDecoder, NodeEventKind, NodeMessage,
    NodeRegistration, NodeStatus, NodeStatusUpdate, NodeType, CAP_EVENT_ACK,
    DEFAULT_MAX_MESSAGE_BYTES,
};

use crate::backoff::Backoff;
use cadence::Cadence;

mod cadence;
use crate::config::Config;
use crate::connect::{Connector, Stream};
use crate::shared::Shared;
use crate::state::IdentityFile;
use crate::totp;

/// The core must answer a registration within this.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Events per write while catching up.
const BATCH_EVENTS: usize = 1024;
/// How long shutdown waits for the core to acknowledge the last events.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// What this node tells the core about itself.
pub struct NodeInfo {
    /// `Full` or `Agent`.
    pub node_type: NodeType,
    /// Capabilities beyond `event-ack` (which every agent has).
    pub capabilities: Vec<String>,
    /// The port reported in the registration (Full: the event port).
    pub port: u16,
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq)]
enum End {
    Lost(String),
    Refused(String),
    Restart,
    Stop,
}

/// What the uplink does once a session ended.
#[derive(Debug, PartialEq)]
enum Next {
    /// Nothing more: the agent is stopping.
    Stop,
    /// Connect again at once (the core asked for it).
    Now,
    /// Connect again after this delay.
    After(Duration),
}

/// The reconnect policy: delays grow while sessions fail, and start from
/// the first again once a session got as far as a registration.
struct Reconnect {
    backoff: Backoff,
}

impl Reconnect {
    fn new() -> Reconnect {
        Reconnect {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }

    /// The core accepted this node: the connection works again.
    fn registered(&mut self) {
        self.backoff.reset();
    }

    /// What follows a session that ended with `end`; `unit` is the random
    /// draw for the delay's jitter (see [`Backoff::next_delay_with`]).
    fn after(&mut self, end: &End, unit: f64) -> Next {
        match end {
            End::Stop => Next::Stop,
            // Asked for by a core that works: no reason to wait.
            End::Restart => Next::Now,
            End::Lost(_) | End::Refused(_) => Next::After(self.backoff.next_delay_with(unit)),
        }
    }
}

/// The uplink task.
pub struct Uplink {
    config: Rc<Config>,
    connector: Connector,
    identity: IdentityFile,
    shared: Rc<Shared>,
    info: NodeInfo,
    started_reported: bool,
}

type Reader = ReadHalf<Box<dyn Stream>>;
type Writer = WriteHalf<Box<dyn Stream>>;

impl Uplink {
    /// An uplink for this node.
    pub fn new(
        config: Rc<Config>,
        connector: Connector,
        identity: IdentityFile,
        shared: Rc<Shared>,
        info: NodeInfo,
    ) -> Uplink {
        Uplink {
            config,
            connector,
            identity,
            shared,
            info,
            started_reported: false,
        }
    }

    /// Runs sessions until [`Shared::stop`]; returns after the goodbye.
    pub async fn run(mut self) {
        let mut reconnect = Reconnect::new();
        loop {
            if self.shared.stopping() {
                return;
            }
            let end = self.session(&mut reconnect).await;
            match &end {
                End::Stop => {}
                End::Restart => log::info!("restart requested by the core: reconnecting"),
                End::Lost(why) => log::warn!("connection to {} lost: {why}", self.config.core),
                End::Refused(why) => {
                    log::warn!("core {} refused this node: {why}", self.config.core)
                }
            }
            let delay = match reconnect.after(&end, crate::backoff::random_unit()) {
                Next::Stop => return,
                Next::Now => continue,
                Next::After(delay) => delay,
            };
            log::info!("reconnecting in {:.1} s", delay.as_secs_f64());
            future::or(Timer::after(delay), async {
                self.shared.stopped().await;
                Instant::now()
            })
            .await;
        }
    }

    async fn session(&mut self, reconnect: &mut Reconnect) -> End {
        // The TOTP step is chosen, and waited for if need be, before the
        // connection exists: the core gives a connection only 10 s to
        // register, and a wait on an open one would be closed for it.
        let planned = match self.plan_totp().await {
            Ok(p) => p,
            Err(end) => return end,
        };
        let (stream, local) = match self.connector.connect().await {
            Ok(c) => c,
            Err(e) => return End::Lost(e),
        };
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let mut decoder = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
        if let Err(end) = self
            .register(&mut reader, &mut writer, &mut decoder, local, planned)
            .await
        {
            return end;
        }
        reconnect.registered();
        self.on_registered();
        let shared = self.shared.clone();
        let end = future::or(
            future::or(
                read_loop(&shared, &mut reader, &mut decoder),
                write_loop(&shared, &mut writer),
            ),
            async {
                shared.stopped().await;
                End::Stop
            },
        )
        .await;
        match end {
            End::Stop => {
                self.goodbye(&mut reader, &mut writer, &mut decoder).await;
                End::Stop
            }
            End::Restart => {
                let mut out = Vec::new();
                self.status(NodeStatus::Stopped, &mut out);
                let _ = writer.write_all(&out).await;
                let _ = writer.close().await;
                End::Restart
            }
            other => other,
        }
    }

    fn status(&self, status: NodeStatus, out: &mut Vec<u8>) {
        let m = NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
            node_id: self.shared.node_id,
            status,
        });
        encode_into(&Envelope::new(m), out);
    }

    async fn register(
        &mut self,
        reader: &mut Reader,
        writer: &mut Writer,
        decoder: &mut LineDecoder,
        local: SocketAddr,
        planned: Option<u64>,
    ) -> Result<(), End> {
        let totp_code = match (self.identity.identity.totp_key.clone(), planned) {
            (Some(key), Some(step)) => Some(self.spend_totp_step(&key, step)?),
            _ => None,
        };
        let mut capabilities = vec![CAP_EVENT_ACK.to_string()];
        capabilities.extend(self.info.capabilities.iter().cloned());
        let registration = NodeMessage::NodeRegistration(NodeRegistration {
            node_id: self.shared.node_id,
            node_name: self.config.name.clone(),
            address: local.ip().to_string(),
            port: self.info.port,
            node_type: self.info.node_type,
            totp_code,
            enrollment_token: self.config.enrollment_token.clone(),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            capabilities,
            spool_epoch: Some(self.shared.spool.borrow().epoch()),
        });
        let mut out = Vec::new();
        encode_into(&Envelope::new(registration), &mut out);
        writer
            .write_all(&out)
            .await
            .map_err(|e| End::Lost(format!("sending the registration: {e}")))?;
        let answer = future::or(next_message(reader, decoder), async {
            Timer::after(REGISTRATION_TIMEOUT).await;
            Err("no registration answer within 10 s".to_string())
        })
        .await
        .map_err(End::Lost)?;
        let ack = match answer {
            CoreMessage::RegistrationAck(ack) => ack,
            other => {
                return Err(End::Lost(format!(
                    "expected RegistrationAck, got {other:?}"
                )))
            }
        };
        if !ack.accepted {
            let why = ack.message.unwrap_or_else(|| "no reason given".into());
            return Err(End::Refused(why));
        }
        if let Some(key) = ack.totp_key {
            self.identity.identity.totp_key = Some(key);
            if let Err(e) = self.identity.save() {
                // The core now expects codes from a key we could not keep.
                log::error!("saving the TOTP key: {e}; this node will have to enroll again");
            }
        }
        log::info!(
            "registered with {} as node {} ({})",
            self.config.core,
            self.shared.node_id,
            self.config.name
        );
        Ok(())
    }

    /// The TOTP step the next registration presents (`None` before the
    /// node has a key): one never used before (the core refuses replays),
    /// after waiting here, unconnected, if the usable ones are spent.
    async fn plan_totp(&mut self) -> Result<Option<u64>, End> {
        if self.identity.identity.totp_key.is_none() {
            return Ok(None);
        }
        let last = self.identity.identity.last_totp_step;
        let (step, wait) = totp::next_step(last, totp::unix_now());
        let wait = totp::spread(wait, crate::backoff::random_unit());
        if !wait.is_zero() {
            log::info!(
                "waiting {} s for a fresh TOTP step before connecting",
                wait.as_secs()
            );
            future::or(
                async {
                    Timer::after(wait).await;
                    Ok(())
                },
                async {
                    self.shared.stopped().await;
                    Err(End::Stop)
                },
            )
            .await?;
        }
        Ok(Some(step))
    }

    /// The code for the planned `step`, which is recorded as used (one step
    /// per registration sent). Never waits: should the connect have taken
    /// so long that the core no longer takes the step, the one due now is
    /// used instead (a plan waits only while later steps are spent, and
    /// time has only moved on since).
    fn spend_totp_step(&mut self, key: &str, step: u64) -> Result<String, End> {
        let last = self.identity.identity.last_totp_step;
        let step = totp::step_to_send(step, last, totp::unix_now())
            .ok_or_else(|| End::Lost("the clock went back while connecting".into()))?;
        let code = totp::code(key, step).map_err(End::Refused)?;
        self.identity.identity.last_totp_step = step;
        if let Err(e) = self.identity.save() {
            log::warn!("saving the TOTP step: {e}");
        }
        Ok(code)
    }

    fn on_registered(&mut self) {
        self.shared.spool.borrow_mut().rewind();
        self.shared
            .send(NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: self.shared.node_id,
                status: NodeStatus::Running,
            }));
        if !self.started_reported {
            self.started_reported = true;
            let description = self.shared.started_description.borrow().clone();
            self.shared.node_event(
                NodeEventKind::Started,
                Some(format!(
                    "honeybee-agent {} started",
                    env!("CARGO_PKG_VERSION")
                )),
                description,
            );
        }
        // The mode's handler re-reports its pots on every connection.
        let _ = self.shared.commands.0.try_send(Command::GetInstalledPots);
    }

    /// Sends what is left, then Stopped, then NodeDrop, and reads the last
    /// acknowledgements so that the next start does not send them again.
    async fn goodbye(
        &mut self,
        reader: &mut Reader,
        writer: &mut Writer,
        decoder: &mut LineDecoder,
    ) {
        let shared = self.shared.clone();
        let mut out = Vec::new();
        shared.drain_outbox(&mut out);
        while shared.spool.borrow_mut().next_batch(&mut out, BATCH_EVENTS) > 0 {
            if out.len() > 1 << 20 {
                if writer.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
        }
        self.status(NodeStatus::Stopped, &mut out);
        shared.node_event(NodeEventKind::Stopped, Some("agent stopping".into()), None);
        shared.drain_outbox(&mut out);
        encode_into(&Envelope::new(NodeMessage::NodeDrop), &mut out);
        if writer.write_all(&out).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        let _ = writer.close().await;
        let pending = shared.spool.borrow().pending();
        if pending > 0 {
            let _ = future::or(
                async {
                    let _ = read_loop(&shared, reader, decoder).await;
                },
                async {
                    Timer::after(GOODBYE_TIMEOUT).await;
                },
            )
            .await;
        }
        shared.spool.borrow_mut().sync();
    }
}

/// Reads one message from the core.
async fn next_message(
    reader: &mut Reader,
    decoder: &mut LineDecoder,
) -> Result<CoreMessage, String> {
    loop {
        match decoder.next_frame() {
            Ok(Some(line)) => match decode::<CoreMessage>(line) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    log::warn!("unreadable message from the core: {e}");
                    // Lines after it may be buffered already: take them
                    // before waiting for more bytes.
                    continue;
                }
            },
            Ok(None) => {}
            Err(e) => return Err(format!("from the core: {e}")),
        }
        let n = reader
            .read(decoder.window())
            .await
            .map_err(|e| format!("reading: {e}"))?;
        if n == 0 {
            return Err("closed by the core".into());
        }
        decoder.filled(n);
    }
}

async fn read_loop(shared: &Shared, reader: &mut Reader, decoder: &mut LineDecoder) -> End {
    loop {
        let message = match next_message(reader, decoder).await {
            Ok(m) => m,
            Err(e) => return End::Lost(e),
        };
        match message {
            CoreMessage::EventAck(ack) => shared.spool.borrow_mut().ack(ack.seq),
            CoreMessage::NodeCommand(c) => {
                if let Some(end) = command(shared, c.command) {
                    return end;
                }
            }
            CoreMessage::RegistrationAck(_) => log::debug!("ignoring a late RegistrationAck"),
            other => log::debug!("ignoring {other:?}"),
        }
    }
}

/// Handles what the uplink itself answers; hands the rest to the mode.
fn command(shared: &Shared, command: Command) -> Option<End> {
    log::info!("command from the core: {}", command.name());
    match command {
        Command::Restart => return Some(End::Restart),
        Command::UpdateConfig(settings) => {
            if let Some(s) = settings.as_ref().and_then(|s| s.get("heartbeat_interval")) {
                match s.as_u64().filter(|v| (1..=3600).contains(v)) {
                    Some(v) => shared.heartbeat_secs.set(v),
                    None => log::warn!("UpdateConfig: heartbeat_interval {s} is not 1..3600"),
                }
            }
            shared.send(NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: shared.node_id,
                status: NodeStatus::Running,
            }));
            // The mode may have settings of its own (Extension ports).
            if let Some(s) = settings {
                let _ = shared.commands.0.try_send(Command::UpdateConfig(Some(s)));
            }
        }
        other => {
            if let Err(e) = shared.commands.0.try_send(other) {
                let c = e.into_inner();
                log::warn!(
                    "command {} dropped: {} queued already",
                    c.name(),
                    crate::shared::COMMAND_QUEUE
                );
                crate::answers::failed(shared, &c, "the agent is busy: too many commands queued");
            }
        }
    }
    None
}

async fn write_loop(shared: &Shared, writer: &mut Writer) -> End {
    let mut out: Vec<u8> = Vec::new();
    let mut cadence = Cadence::new(Instant::now());
    loop {
        out.clear();
        let now = Instant::now();
        let every = Duration::from_secs(shared.heartbeat_secs.get());
        if cadence.heartbeat_due(now, every) {
            encode_into(
                &Envelope::new(NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                    node_id: shared.node_id,
                    status: NodeStatus::Running,
                })),
                &mut out,
            );
        }
        report_drops(shared);
        shared.drain_outbox(&mut out);
        shared.spool.borrow_mut().next_batch(&mut out, BATCH_EVENTS);
        if !out.is_empty() {
            if let Err(e) = writer.write_all(&out).await {
                return End::Lost(format!("sending: {e}"));
            }
            if let Err(e) = writer.flush().await {
                return End::Lost(format!("sending: {e}"));
            }
        }
        if cadence.sync_due(now) {
            shared.spool.borrow_mut().sync();
        }
        if shared.spool.borrow().has_unsent() {
            // Let the reader take acknowledgements between batches.
            future::yield_now().await;
            continue;
        }
        let until = cadence.wake_at();
        future::or(shared.woken(), async {
            Timer::at(until).await;
        })
        .await;
    }
}

/// Turns counted losses into one Alarm each time they happen.
fn report_drops(shared: &Shared) {
    let (spooled, why) = shared.spool.borrow_mut().take_dropped_why();
    if spooled > 0 {
        let total = shared.spool.borrow().dropped_total();
        shared.node_event(
            NodeEventKind::Alarm,
            Some(format!("spool full: {spooled} events dropped")),
            Some(format!(
                "{spooled} unacknowledged events dropped, oldest first, last because {why} (the spool's bound is spool.max_bytes); {total} since the agent started"
            )),
        );
    }
    let damaged = shared.spool.borrow_mut().take_damaged();
    if damaged > 0 {
        shared.node_event(
            NodeEventKind::Alarm,
            Some(format!("spool damaged: {damaged} records dropped")),
            Some(format!(
                "{damaged} spooled records were torn (the agent died mid-write) or damaged on disk and were dropped instead of sent"
            )),
        );
    }
    let control = shared.take_outbox_dropped();
    if control > 0 {
        shared.node_event(
            NodeEventKind::Alarm,
            Some(format!("outbox full: {control} control messages dropped")),
            None,
        );
    }
}

#[cfg(test)]
mod tests;
