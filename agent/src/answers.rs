//! Building the answers to the core's commands (docs/protocol.md §3): every
//! pot command is answered with a `PotStatusUpdate`.

use honeybee_proto::{Command, NodeMessage, PotStatus, PotStatusUpdate};

use crate::shared::Shared;

/// A `PotStatusUpdate` for `pot_id`.
pub fn pot_status(
    shared: &Shared,
    pot_id: &str,
    pot_type: &str,
    status: PotStatus,
    message: Option<String>,
    details: Option<serde_json::Value>,
) {
    shared.send(NodeMessage::PotStatusUpdate(PotStatusUpdate {
        node_id: shared.node_id,
        pot_id: pot_id.to_string(),
        pot_type: pot_type.to_string(),
        status,
        message,
        details,
    }));
}

/// Answers `command` with `Failed` and why.
pub fn failed(shared: &Shared, command: &Command, why: &str) {
    let (pot_id, pot_type) = match command {
        Command::InstallPot(p) => (p.pot_id.as_str(), p.honeypot_type.as_str()),
        other => (other.pot_id().unwrap_or(""), ""),
    };
    pot_status(
        shared,
        pot_id,
        pot_type,
        PotStatus::Failed,
        Some(format!("{}: {why}", command.name())),
        None,
    );
}
