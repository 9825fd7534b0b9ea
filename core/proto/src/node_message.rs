//! Messages from a node to the core (docs/protocol.md §2).

use std::fmt;

use serde::de::MapAccess;
use serde::{Deserialize, Serialize, Serializer};

use crate::variant::{self, tolerant_enum_serde, Variants};
use crate::{NodeEvent, NodeStatus, NodeType, PotEvent, PotStatus};

/// Capability: the node keeps a spool and wants `EventAck`s.
pub const CAP_EVENT_ACK: &str = "event-ack";
/// Capability: the node runs pots compiled into the agent.
pub const CAP_NATIVE_POTS: &str = "native-pots";
/// Capability: the node runs Extension mode.
pub const CAP_EXTENSION: &str = "extension";

/// Everything a node may send.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeMessage {
    /// First message on every connection.
    NodeRegistration(NodeRegistration),
    /// Heartbeat and status change.
    NodeStatusUpdate(NodeStatusUpdate),
    /// A pot's state; also the answer to pot commands.
    PotStatusUpdate(PotStatusUpdate),
    /// Attack data.
    PotEvent(PotEvent),
    /// Lifecycle and alarms.
    NodeEvent(NodeEvent),
    /// The node leaves on purpose.
    NodeDrop,
    /// A variant this version does not know; skipped by readers.
    Unknown(String),
}

impl NodeMessage {
    /// The variant name, as on the wire.
    pub fn name(&self) -> &str {
        match self {
            NodeMessage::NodeRegistration(_) => "NodeRegistration",
            NodeMessage::NodeStatusUpdate(_) => "NodeStatusUpdate",
            NodeMessage::PotStatusUpdate(_) => "PotStatusUpdate",
            NodeMessage::PotEvent(_) => "PotEvent",
            NodeMessage::NodeEvent(_) => "NodeEvent",
            NodeMessage::NodeDrop => "NodeDrop",
            NodeMessage::Unknown(name) => name,
        }
    }

    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeMessage::NodeRegistration(p) => variant::serialize_variant(s, self.name(), p),
            NodeMessage::NodeStatusUpdate(p) => variant::serialize_variant(s, self.name(), p),
            NodeMessage::PotStatusUpdate(p) => variant::serialize_variant(s, self.name(), p),
            NodeMessage::PotEvent(p) => variant::serialize_variant(s, self.name(), p),
            NodeMessage::NodeEvent(p) => variant::serialize_variant(s, self.name(), p),
            NodeMessage::NodeDrop | NodeMessage::Unknown(_) => {
                variant::serialize_unit(s, self.name())
            }
        }
    }
}

impl Variants for NodeMessage {
    const EXPECTING: &'static str = "a node message";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "NodeDrop" => Some(NodeMessage::NodeDrop),
            "NodeRegistration" | "NodeStatusUpdate" | "PotStatusUpdate" | "PotEvent" => None,
            // `"NodeEvent"` alone carries no kind; treat like any unknown name.
            other => Some(NodeMessage::Unknown(other.to_owned())),
        }
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match name {
            "NodeRegistration" => NodeMessage::NodeRegistration(variant::payload(map)?),
            "NodeStatusUpdate" => NodeMessage::NodeStatusUpdate(variant::payload(map)?),
            "PotStatusUpdate" => NodeMessage::PotStatusUpdate(variant::payload(map)?),
            "PotEvent" => NodeMessage::PotEvent(variant::payload(map)?),
            "NodeEvent" => NodeMessage::NodeEvent(variant::payload(map)?),
            "NodeDrop" => {
                variant::unit_payload(map)?;
                NodeMessage::NodeDrop
            }
            other => {
                variant::skip_payload(map)?;
                NodeMessage::Unknown(other.to_owned())
            }
        })
    }
}

tolerant_enum_serde!(NodeMessage);

/// `NodeRegistration`: who the node is and how it proves it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistration {
    /// The node's id; any u64.
    pub node_id: u64,
    /// A human name.
    pub node_name: String,
    /// The address the node reports for itself.
    pub address: String,
    /// The port the node reports for itself.
    pub port: u16,
    /// Full or Agent.
    pub node_type: NodeType,
    /// RFC 6238 code from the key the core issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    /// (ext) Token for the `token` enrollment policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
    /// (ext) The agent's version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// (ext) What the node can do, e.g. [`CAP_EVENT_ACK`]. `null` reads as
    /// empty (Go peers write a nil slice that way).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub capabilities: Vec<String>,
    /// (ext) Which run of the node's spool its `seq`s count in: a node that
    /// loses its spool starts a new epoch and numbers from 1 again, and the
    /// core de-duplicates by (epoch, seq) instead of dropping the new events
    /// as replays. Absent: epoch 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_epoch: Option<u64>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl NodeRegistration {
    /// Whether the node advertised `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

// Codes and tokens are secrets: never in logs.
impl fmt::Debug for NodeRegistration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("NodeRegistration")
            .field("node_id", &self.node_id)
            .field("node_name", &self.node_name)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("node_type", &self.node_type)
            .field("totp_code", &self.totp_code.as_ref().map(|_| "<redacted>"))
            .field(
                "enrollment_token",
                &self.enrollment_token.as_ref().map(|_| "<redacted>"),
            )
            .field("agent_version", &self.agent_version)
            .field("capabilities", &self.capabilities)
            .field("spool_epoch", &self.spool_epoch)
            .finish()
    }
}

/// `NodeStatusUpdate`: heartbeat and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatusUpdate {
    /// The node's id.
    pub node_id: u64,
    /// Its status.
    pub status: NodeStatus,
}

/// `PotStatusUpdate`: a pot's state, or the answer to a pot command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PotStatusUpdate {
    /// The node's id.
    pub node_id: u64,
    /// The pot's id on that node.
    pub pot_id: String,
    /// The pot type (`cowrie`, `native-telnet` …).
    pub pot_type: String,
    /// The pot's state.
    pub status: PotStatus,
    /// Why, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// (ext) Command-specific details (logs, metrics, manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}
