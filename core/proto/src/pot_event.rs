//! `PotEvent`: attack data, in the canonical shape and the one older nodes send.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::{format_rfc3339, now_rfc3339};

/// One thing a pot saw (docs/protocol.md §4).
///
/// Reading also accepts the other shape peers send: `event` for
/// `event_type`, `metadata` for `data`, a unix-seconds `timestamp`, and a
/// top-level `message` (kept as `data.message`). Writing is always canonical.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PotEvent {
    /// The node that saw it (the core trusts the connection, not this field).
    pub node_id: u64,
    /// The pot on that node.
    pub pot_id: String,
    /// The pot's type.
    pub pot_type: String,
    /// Dotted, source first: `cowrie.login.failed`.
    pub event_type: String,
    /// RFC 3339 UTC.
    pub timestamp: String,
    /// (ext) Per-node sequence number, with `event-ack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The event's fields; see the well-known keys in docs/protocol.md §4.
    pub data: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Text(String),
    Seconds(i64),
    Float(f64),
}

#[derive(Deserialize)]
struct AnyShape {
    #[serde(default)]
    node_id: u64,
    #[serde(default)]
    pot_id: Option<String>,
    #[serde(default)]
    pot_type: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    message: Option<String>,
}

impl<'de> Deserialize<'de> for PotEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = AnyShape::deserialize(d)?;
        let event_type = raw
            .event_type
            .or(raw.event)
            .ok_or_else(|| de::Error::missing_field("event_type"))?;
        let mut data = raw.data.or(raw.metadata).unwrap_or_default();
        if let Some(message) = raw.message {
            data.entry("message").or_insert(Value::String(message));
        }
        let timestamp = match raw.timestamp {
            Some(Timestamp::Text(t)) => t,
            Some(Timestamp::Seconds(s)) => format_rfc3339(s, 0),
            Some(Timestamp::Float(f)) if f.is_finite() => {
                let secs = f.floor();
                let nanos = ((f - secs) * 1e9) as u32;
                format_rfc3339(secs as i64, nanos.min(999_999_999))
            }
            _ => now_rfc3339(),
        };
        Ok(PotEvent {
            node_id: raw.node_id,
            pot_id: raw.pot_id.unwrap_or_else(|| "unknown".into()),
            pot_type: raw.pot_type.unwrap_or_else(|| "unknown".into()),
            event_type,
            timestamp,
            seq: raw.seq,
            data,
        })
    }
}
