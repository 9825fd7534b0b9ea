//! The module interface on core port 9003 (docs/protocol.md §7).

use std::fmt;

use serde::de::MapAccess;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::variant::{self, tolerant_enum_serde, Variants};
use crate::{Command, NodeCommand, NodeMessage, NodeStatus};

/// Everything a module (or the dashboard) may send to the core.
#[derive(Clone, Debug, PartialEq)]
pub enum ModuleMessage {
    /// First message: who the module is and its API token.
    BackendRegistration(BackendRegistration),
    /// A request; answered by exactly one [`BackendResponse`].
    BackendCommand(BackendCommand),
    /// The module leaves.
    BackendDrop,
    /// A variant this version does not know.
    Unknown(String),
}

impl ModuleMessage {
    fn name(&self) -> &str {
        match self {
            ModuleMessage::BackendRegistration(_) => "BackendRegistration",
            ModuleMessage::BackendCommand(_) => "BackendCommand",
            ModuleMessage::BackendDrop => "BackendDrop",
            ModuleMessage::Unknown(name) => name,
        }
    }

    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ModuleMessage::BackendRegistration(p) => variant::serialize_variant(s, self.name(), p),
            ModuleMessage::BackendCommand(p) => variant::serialize_variant(s, self.name(), p),
            ModuleMessage::BackendDrop | ModuleMessage::Unknown(_) => {
                variant::serialize_unit(s, self.name())
            }
        }
    }
}

impl Variants for ModuleMessage {
    const EXPECTING: &'static str = "a module message";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "BackendDrop" => Some(ModuleMessage::BackendDrop),
            "BackendRegistration" | "BackendCommand" => None,
            other => Some(ModuleMessage::Unknown(other.to_owned())),
        }
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match name {
            "BackendRegistration" => ModuleMessage::BackendRegistration(variant::payload(map)?),
            "BackendCommand" => ModuleMessage::BackendCommand(variant::payload(map)?),
            "BackendDrop" => {
                variant::unit_payload(map)?;
                ModuleMessage::BackendDrop
            }
            other => {
                variant::skip_payload(map)?;
                ModuleMessage::Unknown(other.to_owned())
            }
        })
    }
}

tolerant_enum_serde!(ModuleMessage);

/// `BackendRegistration`: the module's name, kind and API token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRegistration {
    /// A name for logs and the module list.
    pub backend_name: String,
    /// What kind of client this is.
    pub backend_type: BackendType,
    /// The core's API token.
    pub token: String,
}

// The token is a secret: never in logs.
impl fmt::Debug for BackendRegistration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("BackendRegistration")
            .field("backend_name", &self.backend_name)
            .field("backend_type", &self.backend_type)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The kind of a module client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendType {
    /// A browser.
    Web,
    /// A program using the API.
    Api,
    /// A monitoring system.
    Monitoring,
    /// A command-line tool.
    Cli,
    /// Anything else, named.
    Custom(String),
}

impl BackendType {
    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BackendType::Web => s.serialize_str("Web"),
            BackendType::Api => s.serialize_str("Api"),
            BackendType::Monitoring => s.serialize_str("Monitoring"),
            BackendType::Cli => s.serialize_str("Cli"),
            BackendType::Custom(name) => variant::serialize_variant(s, "Custom", name),
        }
    }
}

impl Variants for BackendType {
    const EXPECTING: &'static str = "a backend type";

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Web" => BackendType::Web,
            "Api" => BackendType::Api,
            "Monitoring" => BackendType::Monitoring,
            "Cli" => BackendType::Cli,
            other => BackendType::Custom(other.to_owned()),
        })
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        if name == "Custom" {
            return Ok(BackendType::Custom(map.next_value()?));
        }
        variant::unit_payload(map)?;
        Ok(BackendType::from_name(name).unwrap_or(BackendType::Custom(name.to_owned())))
    }
}

tolerant_enum_serde!(BackendType);

/// A request from a module.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendCommand {
    /// Send a command to one node.
    NodeCommand(NodeCommand),
    /// Send a command to every connected node.
    BroadcastCommand {
        /// The command.
        command: Command,
    },
    /// List nodes.
    GetNodes,
    /// One node.
    GetNode {
        /// Which.
        node_id: u64,
    },
    /// Nodes in one status.
    GetNodesByStatus {
        /// Which status.
        status: NodeStatus,
    },
    /// How many nodes.
    GetNodeCount,
    /// Forget a node.
    RemoveNode {
        /// Which.
        node_id: u64,
    },
    /// Connected nodes.
    GetActiveConnections,
    /// (ext) Receive live messages.
    Subscribe(Subscribe),
    /// (ext) Query stored events.
    QueryEvents(EventQuery),
    /// A command this version does not know.
    Unknown(String),
}

#[derive(Serialize, Deserialize)]
struct BroadcastPayload {
    command: Command,
}
#[derive(Serialize, Deserialize)]
struct NodeIdPayload {
    node_id: u64,
}
#[derive(Serialize, Deserialize)]
struct StatusPayload {
    status: NodeStatus,
}

impl BackendCommand {
    /// The command name, as on the wire.
    pub fn name(&self) -> &str {
        match self {
            BackendCommand::NodeCommand(_) => "NodeCommand",
            BackendCommand::BroadcastCommand { .. } => "BroadcastCommand",
            BackendCommand::GetNodes => "GetNodes",
            BackendCommand::GetNode { .. } => "GetNode",
            BackendCommand::GetNodesByStatus { .. } => "GetNodesByStatus",
            BackendCommand::GetNodeCount => "GetNodeCount",
            BackendCommand::RemoveNode { .. } => "RemoveNode",
            BackendCommand::GetActiveConnections => "GetActiveConnections",
            BackendCommand::Subscribe(_) => "Subscribe",
            BackendCommand::QueryEvents(_) => "QueryEvents",
            BackendCommand::Unknown(name) => name,
        }
    }

    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = self.name();
        match self {
            BackendCommand::NodeCommand(p) => variant::serialize_variant(s, name, p),
            BackendCommand::BroadcastCommand { command } => variant::serialize_variant(
                s,
                name,
                &BroadcastPayload {
                    command: command.clone(),
                },
            ),
            BackendCommand::GetNode { node_id } | BackendCommand::RemoveNode { node_id } => {
                variant::serialize_variant(s, name, &NodeIdPayload { node_id: *node_id })
            }
            BackendCommand::GetNodesByStatus { status } => {
                variant::serialize_variant(s, name, &StatusPayload { status: *status })
            }
            BackendCommand::Subscribe(p) => variant::serialize_variant(s, name, p),
            BackendCommand::QueryEvents(p) => variant::serialize_variant(s, name, p),
            BackendCommand::GetNodes
            | BackendCommand::GetNodeCount
            | BackendCommand::GetActiveConnections
            | BackendCommand::Unknown(_) => variant::serialize_unit(s, name),
        }
    }
}

impl Variants for BackendCommand {
    const EXPECTING: &'static str = "a backend command";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "GetNodes" => Some(BackendCommand::GetNodes),
            "GetNodeCount" => Some(BackendCommand::GetNodeCount),
            "GetActiveConnections" => Some(BackendCommand::GetActiveConnections),
            "NodeCommand" | "BroadcastCommand" | "GetNode" | "GetNodesByStatus" | "RemoveNode"
            | "Subscribe" | "QueryEvents" => None,
            other => Some(BackendCommand::Unknown(other.to_owned())),
        }
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match name {
            "NodeCommand" => BackendCommand::NodeCommand(variant::payload(map)?),
            "BroadcastCommand" => BackendCommand::BroadcastCommand {
                command: variant::payload::<_, BroadcastPayload>(map)?.command,
            },
            "GetNode" => BackendCommand::GetNode {
                node_id: variant::payload::<_, NodeIdPayload>(map)?.node_id,
            },
            "RemoveNode" => BackendCommand::RemoveNode {
                node_id: variant::payload::<_, NodeIdPayload>(map)?.node_id,
            },
            "GetNodesByStatus" => BackendCommand::GetNodesByStatus {
                status: variant::payload::<_, StatusPayload>(map)?.status,
            },
            "Subscribe" => BackendCommand::Subscribe(variant::payload(map)?),
            "QueryEvents" => {
                let q: Option<EventQuery> = map.next_value()?;
                BackendCommand::QueryEvents(q.unwrap_or_default())
            }
            "GetNodes" | "GetNodeCount" | "GetActiveConnections" => {
                variant::unit_payload(map)?;
                BackendCommand::from_name(name).unwrap_or(BackendCommand::GetNodes)
            }
            other => {
                variant::skip_payload(map)?;
                BackendCommand::Unknown(other.to_owned())
            }
        })
    }
}

tolerant_enum_serde!(BackendCommand);

/// `Subscribe` (ext): which live messages a module wants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Any of `events`, `status`, `nodes`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Narrows `events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<EventFilter>,
    /// (ext) Resume after this cursor: the stored events that came after
    /// it are sent first, then live ones, none twice. Every `PotEvent` the
    /// stream sends carries its cursor in the envelope (`"cursor"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A live-event filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    /// Only this pot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pot_id: Option<String>,
    /// Only event types starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_prefix: Option<String>,
}

/// `QueryEvents` (ext): the REST API's event filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    /// Only this pot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pot_id: Option<String>,
    /// Only this event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Only this source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// Not before (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Not after (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// At most this many (≤ 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Continue after this cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `BackendResponse`: one per command, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendResponse {
    /// It worked.
    Success {
        /// For humans.
        message: Option<String>,
        /// The result.
        data: Option<Value>,
    },
    /// It did not, and why (also `lagged N` on a subscriber overflow).
    Failure(String),
}

/// Both fields are always written, `null` when absent, as the reference
/// core does: modules index `data` without checking it is there.
#[derive(Serialize, Deserialize, Default)]
struct SuccessPayload {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

impl BackendResponse {
    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BackendResponse::Success { message, data } => variant::serialize_variant(
                s,
                "Success",
                &SuccessPayload {
                    message: message.clone(),
                    data: data.clone(),
                },
            ),
            BackendResponse::Failure(why) => variant::serialize_variant(s, "Failure", why),
        }
    }
}

impl Variants for BackendResponse {
    const EXPECTING: &'static str = "a backend response";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "Success" => Some(BackendResponse::Success {
                message: None,
                data: None,
            }),
            _ => None,
        }
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        match name {
            "Success" => {
                let p: Option<SuccessPayload> = map.next_value()?;
                let p = p.unwrap_or_default();
                Ok(BackendResponse::Success {
                    message: p.message,
                    data: p.data,
                })
            }
            "Failure" => Ok(BackendResponse::Failure(map.next_value()?)),
            other => Err(serde::de::Error::unknown_variant(
                other,
                &["Success", "Failure"],
            )),
        }
    }
}

tolerant_enum_serde!(BackendResponse);

/// Everything the core sends to a module: responses, and when subscribed the
/// node-side messages themselves.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamMessage {
    /// The answer to a command, or a `lagged N` notice.
    BackendResponse(BackendResponse),
    /// A node message as it arrived (with its `node_id`).
    Node(NodeMessage),
}

impl StreamMessage {
    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StreamMessage::BackendResponse(p) => {
                variant::serialize_variant(s, "BackendResponse", p)
            }
            StreamMessage::Node(m) => m.serialize(s),
        }
    }
}

impl Variants for StreamMessage {
    const EXPECTING: &'static str = "a stream message";

    fn from_name(name: &str) -> Option<Self> {
        NodeMessage::from_name(name).map(StreamMessage::Node)
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        if name == "BackendResponse" {
            return Ok(StreamMessage::BackendResponse(variant::payload(map)?));
        }
        NodeMessage::from_payload(name, map).map(StreamMessage::Node)
    }
}

tolerant_enum_serde!(StreamMessage);
