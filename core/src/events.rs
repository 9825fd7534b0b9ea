//! Turning a `PotEvent` into the row the event store keeps: the indexed
//! columns pulled out of `data`, the rest verbatim. Pure, so that it can be
//! tested and fuzzed without a database.

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

impl EventRecord {
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
            src_ip: text(d, "src_ip"),
            src_port: port(d, "src_port"),
            dst_port: port(d, "dst_port"),
            protocol: text(d, "protocol"),
            username: text(d, "username"),
            password: text(d, "password"),
            input: text(d, "input"),
            data: Value::Object(event.data).to_string(),
            pot_id: event.pot_id,
            pot_type: event.pot_type,
            event_type: event.event_type,
            timestamp: event.timestamp,
            time_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
