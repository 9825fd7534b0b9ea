//! Sessions: the events of one connection to a pot, grouped by
//! `data.session` — Cowrie's session id, and the one the native pots give
//! each connection. (An Extension-mode `extension.connection` is the whole
//! connection in one event, so it has none.)
//!
//! `GET /api/v1/sessions` lists the sessions among the newest
//! [`WINDOW`] matching events, newest first; `GET /api/v1/sessions/{id}`
//! returns one session's events in order, with the commands typed and
//! when, for a replay. Both read through the store's ordinary query (the
//! `src_ip` and `node_id` indexes), a page at a time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use honeybee_proto::time::parse_rfc3339;
use serde_json::{json, Value};

use crate::api::event_page::event_json;
use crate::api::event_query;
use crate::api::facts::Facts;
use crate::api::views::{decode_segment, scan};
use crate::api::{error, json_reply, ApiContext, Reply};
use crate::store::{EventFilter, StoredEvent};

/// Matching events read for the list, newest first.
pub const WINDOW: u64 = 50_000;
/// Sessions listed by default, and at most.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 500;
/// Distinct sessions gathered for the list.
const MAX_SESSIONS: usize = 10_000;
/// Events searched for a session when no `src_ip` is given.
pub const SEARCH: u64 = 200_000;
/// Events of the session's source read at most.
pub const SOURCE_SCAN: u64 = 250_000;
/// Events of one session returned at most (the oldest, for a replay).
pub const MAX_EVENTS: usize = 1000;
/// Logins shown per session in the list.
const LOGINS: usize = 10;
/// Longest session id accepted.
const MAX_ID: usize = 1024;
/// A session's events are this close in time: reading a source's events
/// further back than this before the oldest one found stops the search.
const SPAN_US: i64 = 24 * 3_600_000_000;

fn query_of(url: &str) -> &str {
    url.split_once('?').map_or("", |(_, q)| q)
}

fn time_us(ts: &str) -> Option<i64> {
    parse_rfc3339(ts).map(|(s, n)| {
        s.saturating_mul(1_000_000)
            .saturating_add(i64::from(n / 1000))
    })
}

/// A source address parameter, canonical; the error names it.
fn src_ip(v: &str) -> Result<String, String> {
    v.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("src_ip: `{v}` is not an IPv4 or IPv6 address"))
}

/// The text a stored `data` holds for `"session": id` (stored JSON is
/// compact, written by the same serializer): events without it are skipped
/// before they are parsed.
fn needle(id: &str) -> String {
    format!(
        "\"session\":{}",
        serde_json::to_string(id).unwrap_or_default()
    )
}

/// One session as listed.
struct Listed {
    session: String,
    first: StoredEvent,
    last_id: i64,
    last_seen: String,
    events: u64,
    commands: u64,
    /// The oldest [`LOGINS`] seen so far, newest first.
    logins: VecDeque<(String, String, bool)>,
}

/// `GET /api/v1/sessions?src_ip=&node_id=&pot_id=&limit=`.
pub fn list(ctx: &ApiContext, url: &str) -> Reply {
    let mut filter = EventFilter::default();
    let mut limit = DEFAULT_LIMIT;
    let pairs = match event_query::pairs(query_of(url)) {
        Ok(p) => p,
        Err(e) => return error(400, e),
    };
    for (k, v) in pairs {
        match k.as_str() {
            "src_ip" => match src_ip(&v) {
                Ok(ip) => filter.src_ip = Some(ip),
                Err(e) => return error(400, e),
            },
            "node_id" => match v.parse::<u64>() {
                Ok(id) => filter.node_id = Some(id),
                Err(_) => {
                    return error(400, format!("node_id: `{v}` is not an integer 0..=2^64-1"))
                }
            },
            "pot_id" => filter.pot_id = Some(v),
            "limit" => match v
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
            {
                Some(l) => limit = l,
                None => {
                    return error(
                        400,
                        format!("limit: `{v}` is not an integer 1..={MAX_LIMIT}"),
                    )
                }
            },
            other => return error(400, format!("unknown parameter `{other}`")),
        }
    }
    let mut found: HashMap<String, Listed> = HashMap::new();
    let mut capped = false;
    let scanned = scan(ctx.events.as_ref(), &filter, WINDOW, |e| {
        if !e.data.contains("\"session\":") {
            return true;
        }
        let f = Facts::parse(&e.data);
        let Some(id) = f.session.get() else {
            return true;
        };
        let login = e.event_type.contains("login");
        if !found.contains_key(id) {
            if found.len() >= MAX_SESSIONS {
                capped = true;
                return true;
            }
            found.insert(
                id.to_string(),
                Listed {
                    session: id.to_string(),
                    first: e.clone(),
                    last_id: e.id,
                    last_seen: e.timestamp.clone(),
                    events: 0,
                    commands: 0,
                    logins: VecDeque::new(),
                },
            );
        }
        let Some(entry) = found.get_mut(id) else {
            return true;
        };
        entry.events += 1;
        if e.id < entry.first.id {
            entry.first = e.clone();
        }
        if f.input.get().is_some() {
            entry.commands += 1;
        }
        if login {
            if let Some(u) = f.username.get() {
                let ok = e.event_type.contains("success");
                let p = f.password.get().unwrap_or("").to_string();
                entry.logins.push_back((u.to_string(), p, ok));
                if entry.logins.len() > LOGINS {
                    entry.logins.pop_front();
                }
            }
        }
        true
    });
    let scanned = match scanned {
        Ok(s) => s,
        Err(e) => return error(500, e.to_string()),
    };
    let mut all: Vec<Listed> = found.into_values().collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.last_id));
    let total = all.len();
    let sessions: Vec<Value> = all
        .into_iter()
        .take(limit)
        .map(|s| {
            let e = &s.first;
            let f = Facts::parse(&e.data);
            let logins: Vec<Value> = s
                .logins
                .iter()
                .rev()
                .map(|(u, p, ok)| json!({"username": u, "password": p, "success": ok}))
                .collect();
            json!({
                "session": s.session,
                "node_id": e.node_id,
                "node_name": ctx.registry.node_name(e.node_id),
                "pot_id": e.pot_id,
                "pot_type": e.pot_type,
                "src_ip": f.src_ip.get(),
                "src_port": f.src_port(),
                "dst_port": f.dst_port(),
                "protocol": f.protocol.get(),
                "first_seen": e.timestamp,
                "last_seen": s.last_seen,
                "events": s.events,
                "commands": s.commands,
                "logins": logins,
            })
        })
        .collect();
    json_reply(
        200,
        &json!({
            "sessions": sessions,
            "total": total,
            "capped": capped,
            "scanned": scanned.events,
            "complete": scanned.complete,
        }),
    )
}

/// The events of one session gathered from a newest-first read.
struct Gathered {
    /// The oldest [`MAX_EVENTS`] found so far, newest first.
    events: VecDeque<StoredEvent>,
    found: u64,
    oldest_us: Option<i64>,
    connected: bool,
}

impl Gathered {
    fn new() -> Self {
        Gathered {
            events: VecDeque::new(),
            found: 0,
            oldest_us: None,
            connected: false,
        }
    }

    fn add(&mut self, e: &StoredEvent) {
        self.found += 1;
        if let Some(t) = time_us(&e.timestamp) {
            self.oldest_us = Some(self.oldest_us.map_or(t, |o| o.min(t)));
        }
        if e.event_type.ends_with(".session.connect") {
            self.connected = true;
        }
        self.events.push_back(e.clone());
        if self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }

    /// Whether reading further back is pointless: the session's first
    /// event was seen, or `e` is far older than anything found.
    fn done_before(&self, e: &StoredEvent) -> bool {
        if self.connected {
            return true;
        }
        match (self.oldest_us, time_us(&e.timestamp)) {
            (Some(oldest), Some(t)) => t < oldest.saturating_sub(SPAN_US),
            _ => false,
        }
    }
}

/// `GET /api/v1/sessions/{session}[?src_ip=]`.
pub fn one(ctx: &ApiContext, raw: &str, url: &str) -> Reply {
    let Some(id) = decode_segment(raw).filter(|s| !s.is_empty() && s.len() <= MAX_ID) else {
        return error(
            400,
            format!("invalid session id: percent-encoded UTF-8 of 1..={MAX_ID} bytes expected"),
        );
    };
    let mut source = None;
    match event_query::pairs(query_of(url)) {
        Ok(pairs) => {
            for (k, v) in pairs {
                match k.as_str() {
                    "src_ip" => match src_ip(&v) {
                        Ok(ip) => source = Some(ip),
                        Err(e) => return error(400, e),
                    },
                    other => return error(400, format!("unknown parameter `{other}`")),
                }
            }
        }
        Err(e) => return error(400, e),
    }
    let needle = needle(&id);
    let is_it = |e: &StoredEvent| {
        e.data.contains(&needle) && Facts::parse(&e.data).session.get() == Some(id.as_str())
    };
    let mut got = Gathered::new();
    let store = ctx.events.as_ref();
    let mut start_before = None;
    if source.is_none() {
        // The newest event of the session, among the newest SEARCH events;
        // its source then leads to the rest through the src_ip index.
        let mut newest: Option<StoredEvent> = None;
        let found = scan(store, &EventFilter::default(), SEARCH, |e| {
            if is_it(e) {
                newest = Some(e.clone());
                return false;
            }
            true
        });
        if let Err(e) = found {
            return error(500, e.to_string());
        }
        let Some(newest) = newest else {
            return error(
                404,
                format!("no session `{id}` among the newest {SEARCH} events (give src_ip= to search one source's events)"),
            );
        };
        got.add(&newest);
        start_before = Some(newest.id);
        source = Facts::parse(&newest.data).src_ip.get().map(str::to_string);
    }
    let filter = EventFilter {
        src_ip: source.clone(),
        before_id: start_before,
        ..EventFilter::default()
    };
    // Without a source (an event with no src_ip) the rest is searched in
    // the same bounded window.
    let max = if source.is_some() {
        SOURCE_SCAN
    } else {
        SEARCH
    };
    let read = scan(store, &filter, max, |e| {
        if got.done_before(e) {
            return false;
        }
        if is_it(e) {
            got.add(e);
        }
        true
    });
    if let Err(e) = read {
        return error(500, e.to_string());
    }
    if got.found == 0 {
        return error(404, format!("no session `{id}`"));
    }
    let events: Vec<&StoredEvent> = got.events.iter().rev().collect();
    let Some(first) = events.first() else {
        return error(404, format!("no session `{id}`"));
    };
    let f = Facts::parse(&first.data);
    let start = time_us(&first.timestamp);
    let last = events.last().map(|e| e.timestamp.clone());
    let duration = match (start, last.as_deref().and_then(time_us)) {
        (Some(a), Some(b)) => json!((b.saturating_sub(a)) as f64 / 1e6),
        _ => Value::Null,
    };
    let commands: Vec<Value> = events
        .iter()
        .filter_map(|e| {
            let facts = Facts::parse(&e.data);
            let input = facts.input.get()?.to_string();
            let offset = match (start, time_us(&e.timestamp)) {
                (Some(a), Some(t)) => json!((t.saturating_sub(a)) as f64 / 1e6),
                _ => Value::Null,
            };
            Some(
                json!({"input": input, "timestamp": e.timestamp, "event_id": e.id,
                "offset_s": offset}),
            )
        })
        .collect();
    let body = json!({
        "session": id,
        "node_id": first.node_id,
        "node_name": ctx.registry.node_name(first.node_id),
        "pot_id": first.pot_id,
        "pot_type": first.pot_type,
        "src_ip": f.src_ip.get().map(str::to_string).or(source),
        "src_port": f.src_port(),
        "dst_port": f.dst_port(),
        "protocol": f.protocol.get(),
        "first_seen": first.timestamp,
        "last_seen": last,
        "duration_s": duration,
        "event_count": got.found,
        "truncated": got.found > MAX_EVENTS as u64,
        "events": events.iter().map(|e| event_json(e)).collect::<Vec<Value>>(),
        "commands": commands,
    });
    json_reply(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_needle_is_what_compact_json_holds() {
        for id in ["96b308fef0ee", "\"><svg onload=alert(1)>", "a\\b\u{1}é"] {
            let data = json!({"a": 1, "session": id, "z": [1]}).to_string();
            assert!(data.contains(&needle(id)), "{data} lacks {}", needle(id));
        }
        let data = json!({"session": "abc"}).to_string();
        assert!(!data.contains(&needle("ab")));
    }

    #[test]
    fn a_session_search_stops_at_its_start_or_a_day_before_it() {
        let ev = |id: i64, ty: &str, ts: &str| StoredEvent {
            id,
            node_id: 1,
            seq: None,
            pot_id: "p".into(),
            pot_type: "t".into(),
            event_type: ty.into(),
            timestamp: ts.into(),
            data: "{}".into(),
            geo: Default::default(),
        };
        let mut g = Gathered::new();
        g.add(&ev(10, "cowrie.command.input", "2026-01-15T10:30:00Z"));
        assert!(!g.done_before(&ev(9, "x", "2026-01-15T10:00:00Z")));
        assert!(!g.done_before(&ev(9, "x", "2026-01-14T10:30:01Z")));
        assert!(g.done_before(&ev(9, "x", "2026-01-14T10:29:59Z")));
        g.add(&ev(8, "cowrie.session.connect", "2026-01-15T10:29:00Z"));
        assert!(g.done_before(&ev(7, "x", "2026-01-15T10:29:00Z")));
    }
}
