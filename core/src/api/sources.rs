//! `GET /api/v1/sources/{ip}`: the attacker's story. Everything one source
//! address did, read through the store's `src_ip` index newest first, a
//! page at a time, and gathered here into bounded lists: the nodes and pots
//! it touched in the order it first touched them, the ports it probed, the
//! credentials it tried, the commands it typed, the fingerprints of its
//! tools, and its newest events.

use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;

use serde_json::{json, Value};

use crate::api::event_page::event_json;
use crate::api::facts::Facts;
use crate::api::views::{decode_segment, scan};
use crate::api::{error, json_reply, ApiContext, Reply};
use crate::node::registry::Registry;
use crate::store::{EventFilter, StoredEvent};

/// When an event happened, for ordering: its timestamp (unix µs; events
/// whose timestamp does not parse sort last), then its id.
type When = (i64, i64);

fn when(e: &StoredEvent) -> When {
    let t = honeybee_proto::time::parse_rfc3339(&e.timestamp).map_or(i64::MAX, |(s, n)| {
        s.saturating_mul(1_000_000)
            .saturating_add(i64::from(n / 1000))
    });
    (t, e.id)
}

/// Items shown per list.
pub const LIST: usize = 100;
/// Distinct values counted per list; past this, new values are not
/// counted (the list says `capped`) so memory stays bounded.
pub const MAX_DISTINCT: usize = 10_000;
/// Events in the timeline (newest first).
pub const TIMELINE: usize = 200;
/// Events of one source read at most; past this the story is of the newest
/// this many (`complete: false`).
pub const MAX_SCAN: u64 = 250_000;

/// Counts per distinct value, bounded.
struct Counter<K> {
    counts: HashMap<K, u64>,
    capped: bool,
}

impl<K: Hash + Eq + Clone + Ord> Counter<K> {
    fn new() -> Self {
        Counter {
            counts: HashMap::new(),
            capped: false,
        }
    }

    fn add(&mut self, key: K) {
        self.add_ref(&key);
    }

    /// Counts `key`, copying it only when it is new.
    fn add_ref<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
        } else if self.counts.len() < MAX_DISTINCT {
            self.counts.insert(key.to_owned(), 1);
        } else {
            self.capped = true;
        }
    }

    /// The most frequent [`LIST`], ties in key order.
    fn top(&self) -> Vec<(&K, u64)> {
        let mut all: Vec<(&K, u64)> = self.counts.iter().map(|(k, n)| (k, *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(LIST);
        all
    }

    fn json(&self, item: impl Fn(&K, u64) -> Value) -> Value {
        let items: Vec<Value> = self.top().into_iter().map(|(k, n)| item(k, n)).collect();
        json!({"total": self.counts.len(), "capped": self.capped, "items": items})
    }
}

/// Where a source went first and last.
struct Touch {
    first: When,
    first_seen: String,
    last: When,
    last_seen: String,
    count: u64,
    pot_type: String,
}

/// Touches in the order first touched, bounded.
struct Touches<K> {
    seen: HashMap<K, Touch>,
    capped: bool,
}

impl<K: Hash + Eq + Clone> Touches<K> {
    fn new() -> Self {
        Touches {
            seen: HashMap::new(),
            capped: false,
        }
    }

    fn add<Q>(&mut self, key: &Q, e: &StoredEvent, w: When)
    where
        K: std::borrow::Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        if let Some(t) = self.seen.get_mut(key) {
            if w < t.first {
                t.first = w;
                t.first_seen.clone_from(&e.timestamp);
            }
            if w > t.last {
                t.last = w;
                t.last_seen.clone_from(&e.timestamp);
            }
            t.count += 1;
        } else if self.seen.len() < MAX_DISTINCT {
            self.seen.insert(
                key.to_owned(),
                Touch {
                    first: w,
                    first_seen: e.timestamp.clone(),
                    last: w,
                    last_seen: e.timestamp.clone(),
                    count: 1,
                    pot_type: e.pot_type.clone(),
                },
            );
        } else {
            self.capped = true;
        }
    }

    /// The first [`LIST`] touched, in that order.
    fn in_order(&self) -> Vec<(&K, &Touch)> {
        let mut all: Vec<(&K, &Touch)> = self.seen.iter().collect();
        all.sort_by_key(|(_, t)| t.first);
        all.truncate(LIST);
        all
    }
}

/// A command typed.
struct Typed {
    when: When,
    id: i64,
    node_id: u64,
    pot_id: String,
    input: String,
    timestamp: String,
    session: Option<String>,
}

impl PartialEq for Typed {
    fn eq(&self, other: &Self) -> bool {
        self.when == other.when
    }
}

impl Eq for Typed {}

impl PartialOrd for Typed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Typed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.when.cmp(&other.when)
    }
}

/// The story being gathered, fed one event at a time, newest first.
pub struct Story {
    events: u64,
    last: Option<(When, String)>,
    first: Option<(When, String)>,
    timeline: Vec<Value>,
    more: bool,
    geo: Value,
    types: Counter<String>,
    nodes: Touches<u64>,
    /// Keyed by `node_id:pot_id`.
    pots: Touches<String>,
    ports: Counter<u16>,
    /// Keyed by [`credential_key`].
    credentials: Counter<String>,
    /// The earliest [`LIST`] commands seen so far (the latest on top).
    commands: BinaryHeap<Typed>,
    commands_total: u64,
    ssh: Counter<String>,
    hassh: Counter<String>,
    user_agents: Counter<String>,
    /// Keyed by [`credential_key`] of the JA3 string and its hash.
    ja3: Counter<String>,
    sni: Counter<String>,
    sessions: Counter<String>,
    /// Reused to build keys.
    key: String,
}

/// Two strings as one key, `len(a):ab`: unambiguous whatever they hold.
fn credential_key(out: &mut String, a: &str, b: &str) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{}:{a}{b}", a.len());
}

/// The two strings of a [`credential_key`].
fn split_key(key: &str) -> (&str, &str) {
    let Some((len, rest)) = key.split_once(':') else {
        return (key, "");
    };
    let n = len.parse::<usize>().unwrap_or(0);
    match (rest.get(..n), rest.get(n..)) {
        (Some(a), Some(b)) => (a, b),
        _ => (rest, ""),
    }
}

impl Default for Story {
    fn default() -> Self {
        Story::new()
    }
}

impl Story {
    /// An empty story.
    pub fn new() -> Story {
        Story {
            events: 0,
            last: None,
            first: None,
            timeline: Vec::new(),
            more: false,
            geo: Value::Null,
            types: Counter::new(),
            nodes: Touches::new(),
            pots: Touches::new(),
            ports: Counter::new(),
            credentials: Counter::new(),
            commands: BinaryHeap::new(),
            commands_total: 0,
            ssh: Counter::new(),
            hassh: Counter::new(),
            user_agents: Counter::new(),
            ja3: Counter::new(),
            sni: Counter::new(),
            sessions: Counter::new(),
            key: String::new(),
        }
    }

    /// Adds one event; events come newest first.
    pub fn add(&mut self, e: &StoredEvent) {
        self.events += 1;
        if self.timeline.len() < TIMELINE {
            let j = event_json(e);
            if self.geo.is_null() {
                if let Some(g) = j.get("geo").filter(|g| !g.is_null()) {
                    self.geo = g.clone();
                }
            }
            self.timeline.push(j);
        } else {
            self.more = true;
        }
        let w = when(e);
        if self.last.as_ref().is_none_or(|(l, _)| w > *l) {
            self.last = Some((w, e.timestamp.clone()));
        }
        if self.first.as_ref().is_none_or(|(f, _)| w < *f) {
            self.first = Some((w, e.timestamp.clone()));
        }
        self.types.add_ref(e.event_type.as_str());
        self.nodes.add(&e.node_id, e, w);
        {
            use std::fmt::Write;
            self.key.clear();
            let _ = write!(self.key, "{}:{}", e.node_id, e.pot_id);
        }
        self.pots.add(self.key.as_str(), e, w);
        let f = Facts::parse(&e.data);
        if let Some(p) = f.dst_port() {
            self.ports.add(p);
        }
        if let (Some(u), Some(p)) = (f.username.0.as_deref(), f.password.0.as_deref()) {
            credential_key(&mut self.key, u, p);
            self.credentials.add_ref(self.key.as_str());
        } else if let Some(u) = f.username.0.as_deref() {
            // A username alone (a login that sent no password) still counts.
            if e.event_type.contains("login") {
                credential_key(&mut self.key, u, "");
                self.credentials.add_ref(self.key.as_str());
            }
        }
        if let Some(input) = f.input.get() {
            self.commands_total += 1;
            self.commands.push(Typed {
                when: w,
                id: e.id,
                node_id: e.node_id,
                pot_id: e.pot_id.clone(),
                input: input.to_string(),
                timestamp: e.timestamp.clone(),
                session: f.session.get().map(str::to_string),
            });
            if self.commands.len() > LIST {
                self.commands.pop();
            }
        }
        if let Some(v) = f.ssh_client() {
            self.ssh.add_ref(v);
        }
        if let Some(v) = f.hassh.get() {
            self.hassh.add_ref(v);
        }
        if let Some(v) = f.user_agent.get() {
            self.user_agents.add_ref(v);
        }
        if let Some(v) = f.ja3.get() {
            credential_key(&mut self.key, v, f.ja3_hash.get().unwrap_or(""));
            self.ja3.add_ref(self.key.as_str());
        }
        if let Some(v) = f.sni.get() {
            self.sni.add_ref(v);
        }
        if let Some(v) = f.session.get() {
            self.sessions.add_ref(v);
        }
    }

    /// Whether any event was added.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The story as JSON; `complete` says whether every event of the source
    /// was read, `first_seen` is the oldest event's time when it was not.
    pub fn json(
        &self,
        ip: &str,
        complete: bool,
        first_seen: Option<String>,
        registry: &Registry,
    ) -> Value {
        let name = |id: u64| registry.node_name(id).map_or(Value::Null, Value::String);
        let nodes: Vec<Value> = self
            .nodes
            .in_order()
            .into_iter()
            .map(|(id, t)| {
                json!({"node_id": id, "node_name": name(*id), "first_seen": t.first_seen,
                    "last_seen": t.last_seen, "count": t.count})
            })
            .collect();
        let pots: Vec<Value> = self
            .pots
            .in_order()
            .into_iter()
            .map(|(key, t)| {
                let (node, pot) = key.split_once(':').unwrap_or(("0", key));
                let node = node.parse::<u64>().unwrap_or(0);
                json!({"node_id": node, "node_name": name(node), "pot_id": pot,
                    "pot_type": t.pot_type, "first_seen": t.first_seen,
                    "last_seen": t.last_seen, "count": t.count})
            })
            .collect();
        let mut typed: Vec<&Typed> = self.commands.iter().collect();
        typed.sort();
        let commands: Vec<Value> = typed
            .into_iter()
            .map(|c| {
                json!({"input": c.input, "timestamp": c.timestamp, "session": c.session,
                    "event_id": c.id, "node_id": c.node_id, "pot_id": c.pot_id})
            })
            .collect();
        let value = |k: &String, n: u64| json!({"value": k, "count": n});
        let first_seen = first_seen.or_else(|| self.first.as_ref().map(|(_, t)| t.clone()));
        json!({
            "ip": ip,
            "first_seen": first_seen,
            "last_seen": self.last.as_ref().map(|(_, t)| t),
            "event_count": self.events,
            "complete": complete,
            "geo": self.geo,
            "event_types": self.types.json(value),
            "nodes": {"total": self.nodes.seen.len(), "capped": self.nodes.capped, "items": nodes},
            "pots": {"total": self.pots.seen.len(), "capped": self.pots.capped, "items": pots},
            "ports": self.ports.json(|p, n| json!({"port": p, "count": n})),
            "credentials": self.credentials.json(|k, n| {
                let (u, p) = split_key(k);
                json!({"username": u, "password": p, "count": n})
            }),
            "commands": {"total": self.commands_total, "items": commands},
            "sessions": self.sessions.json(|s, n| json!({"session": s, "events": n})),
            "fingerprints": {
                "ssh_client_versions": self.ssh.json(value),
                "hassh": self.hassh.json(value),
                "user_agents": self.user_agents.json(value),
                "ja3": self.ja3.json(|k, n| {
                    let (s, h) = split_key(k);
                    json!({"value": s, "hash": h, "count": n})
                }),
                "sni": self.sni.json(value),
            },
            "timeline": {
                "events": self.timeline,
                "next_cursor": if self.more {
                    self.timeline.last().and_then(|e| e.get("id")).map(|id| id.to_string())
                } else {
                    None
                },
            },
        })
    }
}

/// `GET /api/v1/sources/{ip}`.
pub fn source(ctx: &ApiContext, raw: &str) -> Reply {
    let Some(ip) = decode_segment(raw)
        .and_then(|s| s.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string())
    else {
        return error(
            400,
            format!("invalid address `{raw}`: expected an IPv4 or IPv6 address"),
        );
    };
    let filter = EventFilter {
        src_ip: Some(ip.clone()),
        ..EventFilter::default()
    };
    let mut story = Story::new();
    let scanned = match scan(ctx.events.as_ref(), &filter, MAX_SCAN, |e| {
        story.add(e);
        true
    }) {
        Ok(s) => s,
        Err(e) => return error(500, e.to_string()),
    };
    if story.is_empty() {
        return error(404, format!("no event from {ip}"));
    }
    let first_seen = if scanned.complete {
        None
    } else {
        // The oldest event of all, not only of those read.
        let oldest = EventFilter {
            after_id: Some(0),
            limit: 1,
            ..filter
        };
        match ctx.events.events(&oldest) {
            Ok(rows) => rows.into_iter().next().map(|e| e.timestamp),
            Err(e) => return error(500, e.to_string()),
        }
    };
    json_reply(
        200,
        &story.json(&ip, scanned.complete, first_seen, &ctx.registry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, node: u64, pot: &str, ty: &str, ts: &str, data: Value) -> StoredEvent {
        StoredEvent {
            id,
            node_id: node,
            seq: None,
            pot_id: pot.into(),
            pot_type: "cowrie".into(),
            event_type: ty.into(),
            timestamp: ts.into(),
            data: data.to_string(),
            geo: Default::default(),
        }
    }

    #[test]
    fn counters_stay_bounded_and_say_so() {
        let mut c = Counter::new();
        for i in 0..MAX_DISTINCT + 50 {
            c.add(i as u64);
        }
        c.add(0);
        assert_eq!(c.counts.len(), MAX_DISTINCT);
        assert!(c.capped);
        let top = c.top();
        assert_eq!(top.len(), LIST);
        assert_eq!(top[0], (&0, 2));
    }

    #[test]
    fn touches_keep_first_order_and_commands_the_oldest() {
        let mut s = Story::new();
        // Newest first, as the scan feeds them: node 2 was touched last.
        let mut events = Vec::new();
        for i in (1..=150i64).rev() {
            let node = if i > 140 { 2 } else { 1 };
            events.push(ev(
                i,
                node,
                "p",
                "cowrie.command.input",
                &honeybee_proto::time::format_rfc3339(1_768_473_000 + i, 0),
                json!({"input": format!("cmd {i}"), "session": "s1", "dst_port": 22}),
            ));
        }
        for e in &events {
            s.add(e);
        }
        assert_eq!(
            s.nodes
                .in_order()
                .iter()
                .map(|(k, _)| **k)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        let mut typed: Vec<&Typed> = s.commands.iter().collect();
        typed.sort();
        let first: Vec<&str> = typed.iter().map(|c| c.input.as_str()).collect();
        assert_eq!(first.len(), LIST);
        assert_eq!(first[0], "cmd 1");
        assert_eq!(first[LIST - 1], "cmd 100");
        assert_eq!(s.commands_total, 150);
        assert_eq!(s.timeline.len(), 150);
        assert_eq!(s.ports.top(), [(&22, 150)]);
    }
}
