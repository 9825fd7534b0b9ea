//! Events in the Elastic Common Schema (ECS 8): the shape Filebeat, Vector,
//! Fluent Bit and most SIEMs ingest without a custom parser. Used by the
//! core's `GET /api/v1/events/export?format=ecs` and by the alerts module's
//! file channel, so both write the same fields.

use serde_json::{json, Map, Value};

use crate::PotEvent;

/// The ECS version the mapping follows.
pub const ECS_VERSION: &str = "8.11.0";

/// Where an event was seen, besides the event itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin<'a> {
    /// The event's id in the core's store (its cursor), if stored.
    pub id: Option<i64>,
    /// The node's name, if known.
    pub node_name: Option<&'a str>,
}

/// `event` as one ECS document:
/// - `@timestamp`, `ecs.version`, `event.kind` (`alert` for Extension-mode
///   tripwires, else `event`), `event.category`, `event.type`,
///   `event.action` (the HoneyBee event type), `event.outcome` for logins,
///   `event.dataset` (`honeybee.<pot type>`), `event.module` (`honeybee`),
///   `event.id` and `event.sequence`;
/// - `source.ip`/`source.port`, `destination.port`, `network.transport`,
///   `user.name`, `process.command_line` (a typed command), `url.original`,
///   `user_agent.original`, `message`;
/// - `observer.name` (the node), `observer.id`, `observer.type`
///   (`honeypot`), `service.name`/`service.type` (the pot);
/// - everything in `data` under `honeybee.data`, verbatim (the password
///   included: it is what the attacker typed, not a secret of ours).
pub fn document(event: &PotEvent, origin: Origin<'_>) -> Value {
    let data = &event.data;
    let text = |k: &str| data.get(k).and_then(Value::as_str);
    let port = |k: &str| {
        data.get(k).and_then(|v| match v {
            Value::Number(n) => n.as_u64().filter(|p| *p <= 65_535),
            Value::String(s) => s.parse::<u64>().ok().filter(|p| *p <= 65_535),
            _ => None,
        })
    };
    let (kind, category, kind_type, outcome) = classify(&event.event_type);
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), json!(event.timestamp));
    doc.insert("ecs".into(), json!({"version": ECS_VERSION}));
    let mut ev = json!({
        "kind": kind,
        "category": [category],
        "type": [kind_type],
        "action": event.event_type,
        "dataset": format!("honeybee.{}", event.pot_type),
        "module": "honeybee",
    });
    if let Some(o) = outcome {
        ev["outcome"] = json!(o);
    }
    if let Some(id) = origin.id {
        ev["id"] = json!(id.to_string());
    }
    if let Some(seq) = event.seq {
        ev["sequence"] = json!(seq);
    }
    doc.insert("event".into(), ev);
    let mut source = Map::new();
    if let Some(ip) = text("src_ip") {
        source.insert("ip".into(), json!(ip));
        source.insert("address".into(), json!(ip));
    }
    if let Some(p) = port("src_port") {
        source.insert("port".into(), json!(p));
    }
    if !source.is_empty() {
        doc.insert("source".into(), Value::Object(source));
    }
    if let Some(p) = port("dst_port") {
        doc.insert("destination".into(), json!({"port": p}));
    }
    if let Some(proto) = text("protocol") {
        doc.insert(
            "network".into(),
            json!({"transport": proto.to_ascii_lowercase()}),
        );
    }
    if let Some(u) = text("username") {
        doc.insert("user".into(), json!({"name": u}));
    }
    if let Some(cmd) = text("input") {
        doc.insert("process".into(), json!({"command_line": cmd}));
    }
    if let Some(url) = text("url") {
        doc.insert("url".into(), json!({"original": url}));
    }
    if let Some(ua) = text("user_agent") {
        doc.insert("user_agent".into(), json!({"original": ua}));
    }
    if let Some(m) = text("message") {
        doc.insert("message".into(), json!(m));
    }
    let mut observer = json!({
        "id": event.node_id.to_string(),
        "type": "honeypot",
        "vendor": "HoneyBee",
        "product": "honeybee",
    });
    if let Some(name) = origin.node_name {
        observer["name"] = json!(name);
    }
    doc.insert("observer".into(), observer);
    doc.insert(
        "service".into(),
        json!({"name": event.pot_id, "type": event.pot_type}),
    );
    doc.insert(
        "honeybee".into(),
        json!({"data": Value::Object(data.clone())}),
    );
    Value::Object(doc)
}

/// `event.kind`, `event.category`, `event.type` and `event.outcome` for a
/// HoneyBee event type.
fn classify(
    event_type: &str,
) -> (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
) {
    let t = event_type.to_ascii_lowercase();
    let kind = if t.starts_with("extension.") {
        "alert"
    } else {
        "event"
    };
    if t.contains("login") {
        let outcome = if t.contains("success") {
            Some("success")
        } else if t.contains("fail") {
            Some("failure")
        } else {
            None
        };
        return (kind, "authentication", "start", outcome);
    }
    if t.contains("command") || t.contains("input") {
        return (kind, "process", "start", None);
    }
    if t.contains("download") || t.contains("upload") || t.contains("file") {
        return (kind, "file", "creation", None);
    }
    if t.contains("session.closed") || t.contains("disconnect") {
        return (kind, "network", "end", None);
    }
    if t.contains("scan") || t.contains("flood") {
        return (kind, "intrusion_detection", "info", None);
    }
    (kind, "network", "connection", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, data: Value) -> PotEvent {
        PotEvent {
            node_id: 7,
            pot_id: "cowrie-01".into(),
            pot_type: "cowrie".into(),
            event_type: event_type.into(),
            timestamp: "2026-01-15T10:30:00Z".into(),
            seq: Some(42),
            data: data.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn a_failed_login_maps_to_authentication_failure() {
        let e = event(
            "cowrie.login.failed",
            json!({"src_ip": "203.0.113.7", "src_port": 51234, "dst_port": 2222, "username": "root", "password": "123456"}),
        );
        let d = document(
            &e,
            Origin {
                id: Some(17),
                node_name: Some("pi-7"),
            },
        );
        assert_eq!(d["@timestamp"], "2026-01-15T10:30:00Z");
        assert_eq!(d["event"]["kind"], "event");
        assert_eq!(d["event"]["category"][0], "authentication");
        assert_eq!(d["event"]["outcome"], "failure");
        assert_eq!(d["event"]["action"], "cowrie.login.failed");
        assert_eq!(d["event"]["id"], "17");
        assert_eq!(d["event"]["sequence"], 42);
        assert_eq!(d["source"]["ip"], "203.0.113.7");
        assert_eq!(d["source"]["port"], 51234);
        assert_eq!(d["destination"]["port"], 2222);
        assert_eq!(d["user"]["name"], "root");
        assert_eq!(d["observer"]["name"], "pi-7");
        assert_eq!(d["service"]["name"], "cowrie-01");
        assert_eq!(d["honeybee"]["data"]["password"], "123456");
    }

    #[test]
    fn a_tripwire_is_an_alert_and_odd_ports_are_left_out() {
        let e = event(
            "extension.connection",
            json!({"src_ip": "198.51.100.9", "dst_port": "3389", "src_port": 99999}),
        );
        let d = document(&e, Origin::default());
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["destination"]["port"], 3389);
        assert!(d["source"].get("port").is_none());
        assert!(d["observer"].get("name").is_none());
    }
}
