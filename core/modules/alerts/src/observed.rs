//! What rules look at: a stored `PotEvent`, or a node or pot status change
//! turned into an event of type `node.status` / `pot.status` so that
//! `event_type = "node.*"` alerts when a canary dies.

use std::net::IpAddr;

use honeybee_proto::PotEvent;
use serde_json::{Map, Value};

/// One thing that happened, as rules see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The stored event's id (its stream cursor); `None` for status changes.
    pub id: Option<String>,
    /// `cowrie.login.failed`, `extension.connection`, `node.status`, …
    pub event_type: String,
    /// The node.
    pub node_id: u64,
    /// The node's name, when known.
    pub node_name: Option<String>,
    /// The pot, if any.
    pub pot_id: Option<String>,
    /// The pot's type, if any.
    pub pot_type: Option<String>,
    /// Who did it (`data.src_ip`), if it parses as an address.
    pub source: Option<IpAddr>,
    /// The event's `data`; for status changes `status`, `previous`,
    /// `node_id`, `node_name` (and `pot_id`, `message`).
    pub fields: Map<String, Value>,
    /// When (RFC 3339), as the event says; status changes: when seen.
    pub time: String,
    /// The event itself, for the ECS mapping.
    pub event: Option<PotEvent>,
}

impl Observed {
    /// A stored event with its cursor.
    pub fn from_event(event: PotEvent, cursor: Option<String>) -> Observed {
        let source = event
            .data
            .get("src_ip")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().parse().ok());
        Observed {
            id: cursor,
            event_type: event.event_type.clone(),
            node_id: event.node_id,
            node_name: None,
            pot_id: Some(event.pot_id.clone()),
            pot_type: Some(event.pot_type.clone()),
            source,
            fields: event.data.clone(),
            time: event.timestamp.clone(),
            event: Some(event),
        }
    }

    /// A node's status changing from `previous` (if known) to `status`.
    pub fn node_status(
        node_id: u64,
        status: &str,
        previous: Option<&str>,
        time: String,
    ) -> Observed {
        let mut fields = Map::new();
        fields.insert("status".into(), Value::from(status));
        fields.insert("previous".into(), previous.map_or(Value::Null, Value::from));
        fields.insert("node_id".into(), Value::from(node_id));
        Observed {
            id: None,
            event_type: "node.status".into(),
            node_id,
            node_name: None,
            pot_id: None,
            pot_type: None,
            source: None,
            fields,
            time,
            event: None,
        }
    }

    /// A pot's status changing.
    #[allow(clippy::too_many_arguments)]
    pub fn pot_status(
        node_id: u64,
        pot_id: &str,
        pot_type: &str,
        status: &str,
        previous: Option<&str>,
        message: Option<&str>,
        time: String,
    ) -> Observed {
        let mut o = Observed::node_status(node_id, status, previous, time);
        o.event_type = "pot.status".into();
        o.pot_id = Some(pot_id.to_string());
        o.pot_type = Some(pot_type.to_string());
        o.fields.insert("pot_id".into(), Value::from(pot_id));
        if let Some(m) = message {
            o.fields.insert("message".into(), Value::from(m));
        }
        o
    }

    /// Sets the node's name (also as the `node_name` field of status events).
    pub fn with_node_name(mut self, name: Option<String>) -> Observed {
        if let Some(n) = &name {
            if self.event.is_none() {
                self.fields
                    .insert("node_name".into(), Value::from(n.as_str()));
            }
        }
        self.node_name = name;
        self
    }

    /// The value of field `key` as text (strings as they are, numbers and
    /// booleans printed), if present. `node_name`, `node_id`, `pot_id`,
    /// `pot_type` and `event_type` are fields of every event.
    pub fn text(&self, key: &str) -> Option<String> {
        match key {
            "event_type" => return Some(self.event_type.clone()),
            "node_id" => return Some(self.node_id.to_string()),
            "node_name" => return self.node_name.clone(),
            "pot_id" if self.pot_id.is_some() => return self.pot_id.clone(),
            "pot_type" => return self.pot_type.clone(),
            _ => {}
        }
        match self.fields.get(key.strip_prefix("data.").unwrap_or(key))? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}
