//! Turning a `PotEvent` into the row the event store keeps: the indexed
//! columns pulled out of `data`, the rest verbatim. Pure, so that it can be
//! tested and fuzzed without a database (`fuzz/`'s `event_row` target).

use honeybee_proto::time::{now_unix, parse_rfc3339};
use honeybee_proto::PotEvent;
use serde_json::{Map, Value};

/// One event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// The node whose connection carried it (never the id in the message).
    pub node_id: u64,
    /// The node's sequence number, with `event-ack`.
    pub seq: Option<u64>,
    /// The spool epoch `seq` counts in (`NodeRegistration.spool_epoch`, 0
    /// when absent).
    pub epoch: u64,
    /// The pot.
    pub pot_id: String,
    /// The pot's type.
    pub pot_type: String,
    /// Dotted event type.
    pub event_type: String,
    /// The timestamp as sent (RFC 3339).
    pub timestamp: String,
    /// The timestamp in unix microseconds (receive time when unparsable).
    pub time_us: i64,
    /// `data.src_ip`.
    pub src_ip: Option<String>,
    /// `data.src_port`.
    pub src_port: Option<i64>,
    /// `data.dst_port`.
    pub dst_port: Option<i64>,
    /// `data.protocol`.
    pub protocol: Option<String>,
    /// `data.username`.
    pub username: Option<String>,
    /// `data.password`.
    pub password: Option<String>,
    /// `data.input`: a command typed into a pot.
    pub input: Option<String>,
    /// `data`, verbatim, as JSON text.
    pub data: String,
    /// Where `src_ip` is, filled in by the store's writer when enrichment
    /// is on and something is known (shared with the writer's cache).
    pub geo: Option<std::sync::Arc<crate::geo::Geo>>,
}

fn text(data: &Map<String, Value>, key: &str) -> Option<String> {
    match data.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn port(data: &Map<String, Value>, key: &str) -> Option<i64> {
    match data.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|p| (0..=65_535).contains(p))
}

/// Bytes of one event's `data` as stored. A node may send lines up to
/// `max_message_bytes` (1 MiB); what a pot saw fits in far less, and
/// retention by count must bound the database's bytes too.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Bytes of one string inside `data` once the whole is over [`MAX_DATA_BYTES`].
const MAX_DATA_STRING: usize = 2048;

/// `data` as JSON text of at most [`MAX_DATA_BYTES`]: long strings are cut
/// first (with `…`), and if that is not enough the whole becomes a note
/// with its keys and size.
fn bounded_data(data: Map<String, Value>) -> String {
    let text = Value::Object(data).to_string();
    if text.len() <= MAX_DATA_BYTES {
        return text;
    }
    let Ok(Value::Object(mut data)) = serde_json::from_str::<Value>(&text) else {
        return serde_json::json!({ "truncated": true, "bytes": text.len() }).to_string();
    };
    for v in data.values_mut() {
        clip_strings(v);
    }
    data.insert("truncated".into(), Value::Bool(true));
    let clipped = Value::Object(data).to_string();
    if clipped.len() <= MAX_DATA_BYTES {
        return clipped;
    }
    serde_json::json!({ "truncated": true, "bytes": text.len() }).to_string()
}

fn clip_strings(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > MAX_DATA_STRING => {
            *s = crate::node::budget::clip(s, MAX_DATA_STRING);
        }
        Value::Array(a) => a.iter_mut().for_each(clip_strings),
        Value::Object(o) => o.values_mut().for_each(clip_strings),
        _ => {}
    }
}

fn clip(s: String) -> String {
    if s.len() <= crate::node::budget::MAX_NAME {
        s
    } else {
        crate::node::budget::clip(&s, crate::node::budget::MAX_NAME)
    }
}

/// What is known of an event's source when nothing is.
static NO_GEO: crate::geo::Geo = crate::geo::Geo {
    country: None,
    country_name: None,
    city: None,
    asn: None,
    as_org: None,
    net: None,
};

impl EventRecord {
    /// What enrichment found for the source (empty when nothing).
    pub fn geo(&self) -> &crate::geo::Geo {
        self.geo.as_deref().unwrap_or(&NO_GEO)
    }

    /// The event again, as the live stream shows it: `data` is the stored
    /// JSON object (cut as stored when it was too large).
    pub fn to_pot_event(&self) -> PotEvent {
        PotEvent {
            node_id: self.node_id,
            pot_id: self.pot_id.clone(),
            pot_type: self.pot_type.clone(),
            event_type: self.event_type.clone(),
            timestamp: self.timestamp.clone(),
            seq: self.seq,
            data: serde_json::from_str(&self.data).unwrap_or_default(),
        }
    }

    /// The row for `event`, received from `node_id`.
    pub fn new(node_id: u64, event: PotEvent) -> EventRecord {
        let time_us = parse_rfc3339(&event.timestamp)
            .or_else(|| Some(now_unix()))
            .map(|(s, n)| {
                s.saturating_mul(1_000_000)
                    .saturating_add(i64::from(n / 1000))
            })
            .unwrap_or(0);
        let d = &event.data;
        EventRecord {
            node_id,
            seq: event.seq,
            epoch: 0,
            src_ip: text(d, "src_ip"),
            src_port: port(d, "src_port"),
            dst_port: port(d, "dst_port"),
            protocol: text(d, "protocol"),
            username: text(d, "username"),
            password: text(d, "password"),
            input: text(d, "input"),
            data: bounded_data(event.data),
            pot_id: clip(event.pot_id),
            pot_type: clip(event.pot_type),
            event_type: clip(event.event_type),
            timestamp: clip(event.timestamp),
            time_us,
            geo: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_data_is_bounded_and_says_so() {
        let mut big = Map::new();
        big.insert("username".into(), Value::String("root".into()));
        big.insert("blob".into(), Value::String("x".repeat(900_000)));
        let stored = bounded_data(big);
        assert!(stored.len() <= MAX_DATA_BYTES, "{}", stored.len());
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["username"], "root");
        let mut many = Map::new();
        for i in 0..2000 {
            many.insert(format!("k{i}"), Value::String("y".repeat(1000)));
        }
        let stored = bounded_data(many);
        assert!(stored.len() <= MAX_DATA_BYTES);
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["truncated"], true);
        assert!(v["bytes"].as_u64().unwrap() > MAX_DATA_BYTES as u64);
        let mut small = Map::new();
        small.insert("a".into(), Value::from(1));
        assert_eq!(bounded_data(small), r#"{"a":1}"#);
    }
    use honeybee_proto::{decode, NodeMessage};

    fn pot_event(json: &str) -> PotEvent {
        let line = format!("{{\"version\":2,\"message\":{{\"PotEvent\":{json}}}}}");
        match decode::<NodeMessage>(line.as_bytes()).unwrap() {
            NodeMessage::PotEvent(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn well_known_keys_become_columns_and_data_stays_whole() {
        let e = pot_event(
            r#"{"node_id":1,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed",
                "timestamp":"2026-01-15T10:30:00Z","seq":42,
                "data":{"src_ip":"203.0.113.7","src_port":51234,"dst_port":"2222","username":"root","password":"123456","extra":[1,2]}}"#,
        );
        let r = EventRecord::new(99, e);
        assert_eq!(r.node_id, 99);
        assert_eq!(r.seq, Some(42));
        assert_eq!(r.src_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!((r.src_port, r.dst_port), (Some(51234), Some(2222)));
        assert_eq!(
            (r.username.as_deref(), r.password.as_deref()),
            (Some("root"), Some("123456"))
        );
        assert_eq!(r.time_us, 1_768_473_000_000_000);
        let data: Value = serde_json::from_str(&r.data).unwrap();
        assert_eq!(data["extra"], serde_json::json!([1, 2]));
    }

    #[test]
    fn the_older_shape_is_stored_alike() {
        let e = pot_event(
            r#"{"node_id":1,"pot_id":"p","pot_type":"t","event":"x.y","timestamp":1768473000,
                "metadata":{"src_ip":"198.51.100.1"},"message":"hello"}"#,
        );
        let r = EventRecord::new(1, e);
        assert_eq!(r.event_type, "x.y");
        assert_eq!(r.timestamp, "2026-01-15T10:30:00Z");
        assert_eq!(r.src_ip.as_deref(), Some("198.51.100.1"));
        let data: Value = serde_json::from_str(&r.data).unwrap();
        assert_eq!(data["message"], "hello");
    }

    #[test]
    fn odd_values_do_not_become_columns() {
        let e = pot_event(
            r#"{"pot_id":"p","pot_type":"t","event_type":"e","timestamp":"not a time",
                "data":{"src_port":70000,"dst_port":{"a":1},"username":null}}"#,
        );
        let r = EventRecord::new(1, e);
        assert_eq!((r.src_port, r.dst_port, r.username), (None, None, None));
        assert!(
            r.time_us > 1_700_000_000_000_000,
            "unparsable time falls back to now"
        );
    }
}
