//! Turning what happened into alert text: ids, titles and fields, every
//! piece of event text cleaned ([`crate::sanitize`]) on the way in, so no
//! channel ever sees raw attacker bytes.

use serde_json::{json, Value};

use crate::alert::{Alert, Digest, Severity};
use crate::noise::HeldBack;
use crate::observed::Observed;
use crate::rules::Rule;
use crate::sanitize::{clean, MAX_FIELD, MAX_TITLE};

/// Data fields carried per alert at most (the well-known ones first).
const MAX_FIELDS: usize = 32;

/// RFC 3339 for `ms` since the epoch.
pub fn time(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    honeybee_proto::time::format_rfc3339(secs, ((ms % 1000) * 1_000_000) as u32)
}

/// The alert for `o` under `rule`.
pub fn alert(rule: &Rule, o: &Observed, now_ms: u64) -> Alert {
    let id = match &o.id {
        Some(event_id) => format!("{}/{}", rule.name, clean(event_id, 40)),
        None => format!(
            "{}/{}/{}/{now_ms}",
            rule.name,
            o.node_id,
            clean(o.pot_id.as_deref().unwrap_or("node"), 64)
        ),
    };
    Alert {
        id,
        rule: rule.name.clone(),
        severity: rule.severity,
        time: time(now_ms),
        title: clean(&title(rule, o), MAX_TITLE),
        fields: fields(o),
        digest: None,
        ecs: ecs(o),
    }
}

fn node_label(o: &Observed) -> String {
    match &o.node_name {
        Some(n) => n.clone(),
        None => format!("node {}", o.node_id),
    }
}

fn title(rule: &Rule, o: &Observed) -> String {
    let text = |k: &str| o.text(k).unwrap_or_default();
    match o.event_type.as_str() {
        "node.status" => format!(
            "{}: {} is {} (was {})",
            rule.name,
            node_label(o),
            text("status"),
            o.text("previous").unwrap_or_else(|| "unknown".into())
        ),
        "pot.status" => format!(
            "{}: pot {} on {} is {} (was {})",
            rule.name,
            o.pot_id.clone().unwrap_or_default(),
            node_label(o),
            text("status"),
            o.text("previous").unwrap_or_else(|| "unknown".into())
        ),
        _ => {
            let mut t = format!("{}: {}", rule.name, o.event_type);
            if let Some(ip) = o.source {
                t.push_str(&format!(" from {ip}"));
            }
            t.push_str(&format!(" on {}", node_label(o)));
            if let Some(p) = o.text("dst_port") {
                t.push_str(&format!(" port {p}"));
            }
            if let Some(u) = o.text("username") {
                t.push_str(&format!(" user {u}"));
            }
            t
        }
    }
}

fn fields(o: &Observed) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k.to_string(), clean(&v, MAX_FIELD)));
        }
    };
    push("event.type", Some(o.event_type.clone()));
    push("event.time", Some(o.time.clone()));
    push("node.id", Some(o.node_id.to_string()));
    push("node.name", o.node_name.clone());
    push("pot.id", o.pot_id.clone());
    push("pot.type", o.pot_type.clone());
    push("source.ip", o.source.map(|ip| ip.to_string()));
    push("source.port", o.text("src_port"));
    push("destination.port", o.text("dst_port"));
    push("user.name", o.text("username"));
    let mut keys: Vec<&String> = o.fields.keys().collect();
    keys.sort();
    for k in keys.into_iter().take(MAX_FIELDS) {
        let v = match o.fields.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => continue,
            Some(other) => other.to_string(),
        };
        out.push((format!("data.{}", clean(k, 64)), clean(&v, MAX_FIELD)));
    }
    if o.fields.len() > MAX_FIELDS {
        out.push((
            "data".into(),
            format!("…[+{} more fields]", o.fields.len() - MAX_FIELDS),
        ));
    }
    out
}

fn ecs(o: &Observed) -> Value {
    match &o.event {
        Some(e) => honeybee_proto::ecs::document(
            e,
            honeybee_proto::ecs::Origin {
                id: o.id.as_deref().and_then(|c| c.parse().ok()),
                node_name: o.node_name.as_deref(),
            },
        ),
        None => {
            let mut observer = json!({"id": o.node_id.to_string(), "type": "honeypot", "vendor": "HoneyBee", "product": "honeybee"});
            if let Some(n) = &o.node_name {
                observer["name"] = json!(n);
            }
            json!({
                "@timestamp": o.time,
                "ecs": {"version": honeybee_proto::ecs::ECS_VERSION},
                "event": {"kind": "state", "category": ["host"], "type": ["change"], "action": o.event_type, "module": "honeybee"},
                "observer": observer,
                "service": o.pot_id.as_ref().map(|p| json!({"name": p, "type": o.pot_type})),
                "honeybee": {"data": Value::Object(o.fields.clone())},
            })
        }
    }
}

/// The digest of a window of `rule` for `source` that opened at
/// `start_ms`; `last_title` is the last folded event's title, if kept.
pub fn digest(
    rule: &Rule,
    source: &str,
    start_ms: u64,
    d: Digest,
    last_title: Option<&str>,
    now_ms: u64,
) -> Alert {
    let title = format!("{}: {} from {}", rule.name, d.summary(), source);
    let mut fields = vec![("digest.source".to_string(), clean(source, 64))];
    if let Some(t) = last_title {
        fields.push(("digest.last".to_string(), clean(t, MAX_TITLE)));
    }
    let mut ecs = json!({
        "@timestamp": time(now_ms),
        "ecs": {"version": honeybee_proto::ecs::ECS_VERSION},
        "event": {"kind": "alert", "action": "digest", "module": "honeybee", "count": d.count},
    });
    if let Ok(ip) = source.parse::<std::net::IpAddr>() {
        ecs["source"] = json!({"ip": ip.to_string(), "address": ip.to_string()});
    }
    Alert {
        id: format!("{}/{}/digest/{start_ms}", rule.name, clean(source, 64)),
        rule: rule.name.clone(),
        severity: rule.severity,
        time: time(now_ms),
        title: clean(&title, MAX_TITLE),
        fields,
        digest: Some(d),
        ecs,
    }
}

/// The one alert saying how many were held back by `channel`'s ceiling.
pub fn held_back(channel: &str, max: u32, held: &HeldBack, now_ms: u64) -> Alert {
    let total: u64 = held.held.values().sum();
    let per_rule: Vec<String> = held.held.iter().map(|(r, n)| format!("{n} {r}")).collect();
    Alert {
        id: format!("ceiling/{channel}/{}", held.minute_start_ms),
        rule: "ceiling".into(),
        severity: Severity::High,
        time: time(now_ms),
        title: clean(
            &format!(
                "{total} more alerts held back on {channel} (at most {max} a minute): {}",
                per_rule.join(", ")
            ),
            MAX_TITLE,
        ),
        fields: held
            .held
            .iter()
            .map(|(r, n)| (format!("held.{r}"), n.to_string()))
            .collect(),
        digest: None,
        ecs: Value::Null,
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_ms(t: &str) -> Option<u64> {
    let (secs, nanos) = honeybee_proto::time::parse_rfc3339(t)?;
    u64::try_from(secs)
        .ok()
        .map(|s| s * 1000 + u64::from(nanos / 1_000_000))
}
