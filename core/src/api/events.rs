//! The event routes of the REST API: the paged list, the streamed NDJSON
//! export (the API's event shape, or Elastic Common Schema), and the
//! statistics.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use honeybee_proto::ecs::{self, Origin};
use honeybee_proto::PotEvent;
use serde_json::{json, Map, Value};
use tiny_http::{Response, StatusCode};

use crate::api::event_page::{self, event_json};
use crate::api::event_query;
use crate::api::{error, header, json_reply, ApiContext, Reply};
use crate::node::registry::Registry;
use crate::store::{EventFilter, EventStore, StoredEvent};

/// Rows read from the database per step of an export.
const EXPORT_PAGE: u32 = 1000;

fn query_of(url: &str) -> &str {
    url.split_once('?').map_or("", |(_, q)| q)
}

/// `GET /api/v1/events`: newest first, one page.
pub fn list(ctx: &ApiContext, url: &str) -> Reply {
    let filter = match event_query::parse(query_of(url)) {
        Ok(f) => f,
        Err(e) => return error(400, e),
    };
    match event_page::page(ctx.events.as_ref(), &filter) {
        Ok(body) => json_reply(200, &body),
        Err(e) => error(500, e.to_string()),
    }
}

/// What an export writes per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// The event as `GET /api/v1/events` shows it (the default).
    Ndjson,
    /// One Elastic Common Schema document ([`honeybee_proto::ecs`]).
    Ecs,
}

/// Distinct node names an ECS export remembers; past this it forgets them
/// all and asks the registry again (events may name any number of nodes).
const NAME_CACHE: usize = 4096;

/// `GET /api/v1/events/export`: every matching event as NDJSON, newest
/// first, read from the database a page at a time while the client reads.
/// `limit`, when given, caps the total; `format` is `ndjson` (the default)
/// or `ecs`.
pub fn export(ctx: &ApiContext, url: &str) -> Reply {
    // `limit` caps the whole export here, so it is not a page size.
    let (mut cap, mut format, mut rest) = (None, ExportFormat::Ndjson, Vec::new());
    for part in query_of(url).split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match event_query::pairs(part) {
            Ok(mut pairs) => pairs.pop().unwrap_or_default(),
            Err(e) => return error(400, e),
        };
        match key.as_str() {
            "limit" => match value
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=i64::MAX as u64).contains(n))
            {
                Some(n) => cap = Some(n),
                None => {
                    return error(
                        400,
                        format!("limit: `{value}` is not an integer 1..=2^63-1"),
                    )
                }
            },
            "format" => match value.as_str() {
                "ndjson" => format = ExportFormat::Ndjson,
                "ecs" => format = ExportFormat::Ecs,
                other => {
                    return error(
                        400,
                        format!("format: `{other}` is not one of `ndjson`, `ecs`"),
                    )
                }
            },
            _ => rest.push(part),
        }
    }
    let mut filter = match event_query::parse(&rest.join("&")) {
        Ok(f) => f,
        Err(e) => return error(400, e),
    };
    filter.limit = EXPORT_PAGE;
    let reader = Export {
        events: ctx.events.clone(),
        registry: ctx.registry.clone(),
        format,
        names: HashMap::new(),
        filter,
        left: cap,
        buf: Vec::new(),
        pos: 0,
        done: false,
    };
    Response::new(
        StatusCode(200),
        vec![header("Content-Type", "application/x-ndjson")],
        Box::new(reader) as Box<dyn Read + Send>,
        None,
        None,
    )
}

struct Export {
    events: Arc<dyn EventStore>,
    registry: Arc<Registry>,
    format: ExportFormat,
    /// Node names already looked up (ECS), at most [`NAME_CACHE`].
    names: HashMap<u64, Option<String>>,
    filter: EventFilter,
    left: Option<u64>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Export {
    fn refill(&mut self) -> std::io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        if let Some(left) = self.left {
            self.filter.limit = self
                .filter
                .limit
                .min(left.min(u64::from(EXPORT_PAGE)) as u32);
        }
        if self.done || self.filter.limit == 0 {
            self.done = true;
            return Ok(());
        }
        let rows = self
            .events
            .events(&self.filter)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if rows.len() < self.filter.limit as usize {
            self.done = true;
        }
        if let Some(left) = self.left.as_mut() {
            *left -= rows.len() as u64;
        }
        self.filter.before_id = rows.last().map(|e| e.id);
        for e in rows {
            let line = match self.format {
                ExportFormat::Ndjson => event_json(&e).to_string(),
                ExportFormat::Ecs => self.ecs_line(&e),
            };
            self.buf.extend_from_slice(line.as_bytes());
            self.buf.push(b'\n');
        }
        Ok(())
    }

    /// One event as an ECS document, with the node's name when known.
    fn ecs_line(&mut self, e: &StoredEvent) -> String {
        if !self.names.contains_key(&e.node_id) {
            if self.names.len() >= NAME_CACHE {
                self.names.clear();
            }
            self.names
                .insert(e.node_id, self.registry.node_name(e.node_id));
        }
        let node_name = self.names.get(&e.node_id).and_then(|n| n.as_deref());
        let event = PotEvent {
            node_id: e.node_id,
            pot_id: e.pot_id.clone(),
            pot_type: e.pot_type.clone(),
            event_type: e.event_type.clone(),
            timestamp: e.timestamp.clone(),
            seq: e.seq,
            data: serde_json::from_str::<Map<String, Value>>(&e.data).unwrap_or_default(),
        };
        ecs::document(
            &event,
            Origin {
                id: Some(e.id),
                node_name,
            },
        )
        .to_string()
    }
}

impl Read for Export {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// `GET /api/v1/stats[?hours=N]`: totals, events per minute over the last
/// hour, and the top sources, usernames, passwords and event types of the
/// last N hours (default 24, at most 720).
pub fn stats(ctx: &ApiContext, url: &str) -> Reply {
    let mut hours = 24u32;
    match event_query::pairs(query_of(url)) {
        Ok(pairs) => {
            for (k, v) in pairs {
                match k.as_str() {
                    "hours" => match v.parse().ok().filter(|h| (1..=720).contains(h)) {
                        Some(h) => hours = h,
                        None => {
                            return error(400, format!("hours: `{v}` is not an integer 1..=720"))
                        }
                    },
                    other => return error(400, format!("unknown parameter `{other}`")),
                }
            }
        }
        Err(e) => return error(400, e),
    }
    let now = honeybee_proto::time::now_unix();
    let now_us = now.0.saturating_mul(1_000_000);
    let stats = match ctx.events.stats(now_us, hours) {
        Ok(s) => s,
        Err(e) => return error(500, e.to_string()),
    };
    let nodes = ctx.registry.status_counts();
    let node_total: u64 = nodes.iter().map(|(_, n)| n).sum();
    let by_status: serde_json::Map<String, Value> = nodes
        .iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let pots: usize = ctx.registry.list().iter().map(|n| n.pots.len()).sum();
    let top = |rows: Vec<(String, u64)>| -> Vec<Value> {
        rows.into_iter()
            .map(|(value, count)| json!({"value": value, "count": count}))
            .collect()
    };
    let per_minute: Vec<Value> = stats
        .per_minute
        .iter()
        .map(|(minute_us, count)| {
            let secs = minute_us / 1_000_000;
            json!({"minute": honeybee_proto::time::format_rfc3339(secs, 0), "count": count})
        })
        .collect();
    json_reply(
        200,
        &json!({
            "window_hours": hours,
            "totals": {
                "events": stats.total,
                "events_in_window": stats.in_window,
                "nodes": node_total,
                "nodes_by_status": by_status,
                "pots": pots,
            },
            "events_per_minute": per_minute,
            "top_source_ips": top(stats.top_src_ips),
            "top_usernames": top(stats.top_usernames),
            "top_passwords": top(stats.top_passwords),
            "top_commands": top(stats.top_commands),
            "top_credentials": top(stats.top_credentials),
            "top_event_types": top(stats.top_event_types),
        }),
    )
}
