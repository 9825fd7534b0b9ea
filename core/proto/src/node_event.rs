//! `NodeEvent`: lifecycle and alarms, read in both forms peers use.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What happened on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEventKind {
    /// The node started.
    Started,
    /// The node is stopping.
    Stopped,
    /// Something needs an operator's attention.
    Alarm,
    /// Something failed.
    Error,
    /// A kind this version does not know, kept as written.
    Other(String),
}

impl NodeEventKind {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            NodeEventKind::Started => "Started",
            NodeEventKind::Stopped => "Stopped",
            NodeEventKind::Alarm => "Alarm",
            NodeEventKind::Error => "Error",
            NodeEventKind::Other(s) => s,
        }
    }

    fn parse(s: &str) -> NodeEventKind {
        match s {
            "Started" => NodeEventKind::Started,
            "Stopped" => NodeEventKind::Stopped,
            "Alarm" => NodeEventKind::Alarm,
            "Error" => NodeEventKind::Error,
            other => NodeEventKind::Other(other.to_owned()),
        }
    }
}

/// A lifecycle event or alarm.
///
/// Written as `{"type": "Alarm", "description": "..."}`; also read as
/// `"Started"`, `{"Alarm": {"description": ...}}` or `{"Error": {"message": ...}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    /// The node, added by the core when it forwards the event to modules.
    pub node_id: Option<u64>,
    /// What happened.
    pub kind: NodeEventKind,
    /// A message (errors use this).
    pub message: Option<String>,
    /// A description (alarms use this).
    pub description: Option<String>,
}

impl NodeEvent {
    /// An event of `kind` with no text.
    pub fn new(kind: NodeEventKind) -> Self {
        NodeEvent {
            node_id: None,
            kind,
            message: None,
            description: None,
        }
    }

    /// The text of the event, whichever field holds it.
    pub fn text(&self) -> Option<&str> {
        self.message.as_deref().or(self.description.as_deref())
    }
}

impl Serialize for NodeEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = 1
            + self.node_id.is_some() as usize
            + self.message.is_some() as usize
            + self.description.is_some() as usize;
        let mut map = s.serialize_map(Some(len))?;
        if let Some(id) = self.node_id {
            map.serialize_entry("node_id", &id)?;
        }
        map.serialize_entry("type", self.kind.as_str())?;
        if let Some(m) = &self.message {
            map.serialize_entry("message", m)?;
        }
        if let Some(d) = &self.description {
            map.serialize_entry("description", d)?;
        }
        map.end()
    }
}

#[derive(Deserialize, Default)]
struct Texts {
    message: Option<String>,
    description: Option<String>,
}

struct NodeEventVisitor;

impl<'de> Visitor<'de> for NodeEventVisitor {
    type Value = NodeEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a NodeEvent: {\"type\": ...} or {\"Kind\": {...}} or \"Kind\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeEvent, E> {
        Ok(NodeEvent::new(NodeEventKind::parse(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeEvent, A::Error> {
        let mut kind = None;
        let mut node_id = None;
        let mut texts = Texts::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "node_id" => node_id = map.next_value()?,
                "type" => kind = Some(NodeEventKind::parse(&map.next_value::<String>()?)),
                "message" => texts.message = map.next_value()?,
                "description" => texts.description = map.next_value()?,
                "Started" | "Stopped" | "Alarm" | "Error" if kind.is_none() => {
                    // Enum form: the kind is the key, the texts its payload.
                    kind = Some(NodeEventKind::parse(&key));
                    texts = map.next_value::<Option<Texts>>()?.unwrap_or_default();
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(NodeEvent {
            node_id,
            kind,
            message: texts.message,
            description: texts.description,
        })
    }
}

impl<'de> Deserialize<'de> for NodeEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeEventVisitor)
    }
}
