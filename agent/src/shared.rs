//! What the uplink, the event socket and the pot supervisor share. They all
//! run as tasks on the agent's one executor thread, so sharing is `Rc` and
//! `RefCell`, never a lock; a borrow is never held across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use honeybee_proto::{
    encode_into, Command, Envelope, NodeEvent, NodeEventKind, NodeMessage, PotEvent,
};

use crate::event_map::PotHint;

use crate::spool::Spool;

/// Control messages (status updates, command answers, node events) waiting
/// for the uplink. Bounded: while the core is away for long, the oldest are
/// dropped and counted; events never pass through here (they have the spool).
pub const OUTBOX_MAX: usize = 1024;

/// Commands from the core waiting for the mode's handler.
pub const COMMAND_QUEUE: usize = 64;

/// State shared by the agent's tasks.
pub struct Shared {
    /// This node's id.
    pub node_id: u64,
    /// The event spool.
    pub spool: RefCell<Spool>,
    outbox: RefCell<VecDeque<NodeMessage>>,
    outbox_dropped: Cell<u64>,
    wake_tx: async_channel::Sender<()>,
    wake_rx: async_channel::Receiver<()>,
    stop_tx: async_channel::Sender<()>,
    stop_rx: async_channel::Receiver<()>,
    /// Commands from the core, for the mode's handler.
    pub commands: (
        async_channel::Sender<Command>,
        async_channel::Receiver<Command>,
    ),
    /// Seconds between heartbeats; `UpdateConfig` may change it.
    pub heartbeat_secs: Cell<u64>,
    /// The installed pots, for attributing event lines (Full mode).
    pub pot_hints: RefCell<Vec<PotHint>>,
    /// Events per installed pot since the agent started.
    pub pot_events: RefCell<HashMap<String, u64>>,
    /// Said with the first NodeEvent Started (Extension mode: its ports).
    pub started_description: RefCell<Option<String>>,
    /// Extension mode: the ports taken and skipped, reported as the
    /// details of the `extension` pot's status on every connection.
    pub extension_ports: RefCell<Option<serde_json::Map<String, serde_json::Value>>>,
    /// The event socket token of each running pot (pot id, token); at most
    /// one per installed pot, so bounded by the supervisor's pot limit.
    pot_tokens: RefCell<Vec<(String, String)>>,
}

impl Shared {
    /// Shared state for node `node_id` around `spool`.
    pub fn new(node_id: u64, spool: Spool, heartbeat_secs: u64) -> Shared {
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        Shared {
            node_id,
            spool: RefCell::new(spool),
            outbox: RefCell::new(VecDeque::new()),
            outbox_dropped: Cell::new(0),
            wake_tx,
            wake_rx,
            stop_tx,
            stop_rx,
            commands: async_channel::bounded(COMMAND_QUEUE),
            heartbeat_secs: Cell::new(heartbeat_secs),
            pot_hints: RefCell::new(Vec::new()),
            pot_events: RefCell::new(HashMap::new()),
            started_description: RefCell::new(None),
            extension_ports: RefCell::new(None),
            pot_tokens: RefCell::new(Vec::new()),
        }
    }

    /// A fresh random token for `pot_id`'s event socket connections
    /// (docs/protocol.md §8), replacing the one of its last start. The caller
    /// hands it to the pot in `HONEYBEE_POT_TOKEN`; it is never logged.
    pub fn issue_pot_token(&self, pot_id: &str) -> Result<String, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| format!("choosing the event token of pot {pot_id}: {e}"))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut tokens = self.pot_tokens.borrow_mut();
        tokens.retain(|(id, _)| id != pot_id);
        tokens.push((pot_id.to_string(), token.clone()));
        Ok(token)
    }

    /// Forgets `pot_id`'s token: new connections cannot present it.
    pub fn revoke_pot_token(&self, pot_id: &str) {
        self.pot_tokens.borrow_mut().retain(|(id, _)| id != pot_id);
    }

    /// The pot whose token `token` is. Every token is compared in full, in
    /// time that depends only on the lengths, so a local process cannot
    /// guess one byte by byte from how fast it is refused.
    pub fn pot_for_token(&self, token: &str) -> Option<String> {
        let mut found = None;
        for (id, t) in self.pot_tokens.borrow().iter() {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some(id.clone());
            }
        }
        found
    }

    /// Counts events per pot, for installed pots only (the map stays as
    /// small as the list of pots, whatever ids lines make up).
    pub fn count_pot_events(&self, events: &[PotEvent]) {
        let hints = self.pot_hints.borrow();
        let mut counts = self.pot_events.borrow_mut();
        for e in events {
            if hints.iter().any(|h| h.pot_id == e.pot_id) {
                *counts.entry(e.pot_id.clone()).or_insert(0) += 1;
            }
        }
    }

    /// Queues a control message for the core.
    pub fn send(&self, message: NodeMessage) {
        let mut q = self.outbox.borrow_mut();
        if q.len() >= OUTBOX_MAX {
            q.pop_front();
            self.outbox_dropped.set(self.outbox_dropped.get() + 1);
        }
        q.push_back(message);
        drop(q);
        self.wake();
    }

    /// Queues a NodeEvent.
    pub fn node_event(
        &self,
        kind: NodeEventKind,
        message: Option<String>,
        description: Option<String>,
    ) {
        self.send(NodeMessage::NodeEvent(NodeEvent {
            node_id: Some(self.node_id),
            kind,
            message,
            description,
        }));
    }

    /// Encodes every queued control message into `out`.
    pub fn drain_outbox(&self, out: &mut Vec<u8>) -> usize {
        let mut q = self.outbox.borrow_mut();
        let n = q.len();
        for m in q.drain(..) {
            encode_into(&Envelope::new(m), out);
        }
        n
    }

    /// Control messages dropped because the outbox was full; reading resets it.
    pub fn take_outbox_dropped(&self) -> u64 {
        self.outbox_dropped.replace(0)
    }

    /// Tells the uplink there is something to send.
    pub fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// Waits until [`Shared::wake`] is called.
    pub async fn woken(&self) {
        let _ = self.wake_rx.recv().await;
    }

    /// Asks every task to finish (SIGTERM/SIGINT).
    pub fn stop(&self) {
        self.stop_tx.close();
        self.wake();
    }

    /// True once [`Shared::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop_tx.is_closed()
    }

    /// Waits for [`Shared::stop`].
    pub async fn stopped(&self) {
        let _ = self.stop_rx.recv().await;
    }
}

/// `a == b`, looking at every byte of both whatever differs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
