//! Messages from the core to a node (docs/protocol.md §3).

use std::fmt;

use serde::de::MapAccess;
use serde::{Deserialize, Serialize, Serializer};

use crate::variant::{self, tolerant_enum_serde, Variants};
use crate::Command;

/// Everything the core may send to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum CoreMessage {
    /// The answer to `NodeRegistration`.
    RegistrationAck(RegistrationAck),
    /// A command for the node.
    NodeCommand(NodeCommand),
    /// (ext) Events up to `seq` are durably stored.
    EventAck(EventAck),
    /// A variant this version does not know.
    Unknown(String),
}

impl CoreMessage {
    /// The variant name, as on the wire.
    pub fn name(&self) -> &str {
        match self {
            CoreMessage::RegistrationAck(_) => "RegistrationAck",
            CoreMessage::NodeCommand(_) => "NodeCommand",
            CoreMessage::EventAck(_) => "EventAck",
            CoreMessage::Unknown(name) => name,
        }
    }

    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CoreMessage::RegistrationAck(p) => variant::serialize_variant(s, self.name(), p),
            CoreMessage::NodeCommand(p) => variant::serialize_variant(s, self.name(), p),
            CoreMessage::EventAck(p) => variant::serialize_variant(s, self.name(), p),
            CoreMessage::Unknown(_) => variant::serialize_unit(s, self.name()),
        }
    }
}

impl Variants for CoreMessage {
    const EXPECTING: &'static str = "a core message";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "RegistrationAck" | "NodeCommand" | "EventAck" => None,
            other => Some(CoreMessage::Unknown(other.to_owned())),
        }
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match name {
            "RegistrationAck" => CoreMessage::RegistrationAck(variant::payload(map)?),
            "NodeCommand" => CoreMessage::NodeCommand(variant::payload(map)?),
            "EventAck" => CoreMessage::EventAck(variant::payload(map)?),
            other => {
                variant::skip_payload(map)?;
                CoreMessage::Unknown(other.to_owned())
            }
        })
    }
}

tolerant_enum_serde!(CoreMessage);

/// `RegistrationAck`: accepted or not, and why.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationAck {
    /// The node's id.
    pub node_id: u64,
    /// Whether the node may go on.
    pub accepted: bool,
    /// Why, for humans; always set on a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The node's TOTP key, base32, sent once on first registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_key: Option<String>,
}

// The TOTP key is a secret: never in logs.
impl fmt::Debug for RegistrationAck {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("RegistrationAck")
            .field("node_id", &self.node_id)
            .field("accepted", &self.accepted)
            .field("message", &self.message)
            .field("totp_key", &self.totp_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `NodeCommand`: a command for one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeCommand {
    /// The node's id.
    pub node_id: u64,
    /// What to do.
    pub command: Command,
}

/// `EventAck` (ext): every `PotEvent` with `seq` ≤ this is durably stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    /// The node's id.
    pub node_id: u64,
    /// The highest acknowledged sequence number.
    pub seq: u64,
}
