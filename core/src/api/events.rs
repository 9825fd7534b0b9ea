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
use crate::store::rollup::{DAY_US, HOUR_US};
use crate::store::{EventFilter, EventStore, StatsQuery, StoredEvent};

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

/// What `GET /api/v1/stats` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct StatsRequest {
    /// The resolved range.
    pub query: StatsQuery,
    /// `1h`, `24h`, `7d`, `30d`, `custom`, or `hours`.
    pub range: String,
    /// The window in hours, rounded up (the older `window_hours`).
    pub window_hours: i64,
}

/// The named ranges of `range=`.
const RANGES: [(&str, i64); 4] = [
    ("1h", HOUR_US),
    ("24h", 24 * HOUR_US),
    ("7d", 7 * DAY_US),
    ("30d", 30 * DAY_US),
];

/// Parses `range=1h|24h|7d|30d`, `since=…&until=…`, or `hours=N` (1..=720;
/// the default is 24 hours). Errors name the parameter.
pub fn stats_request(query: &str, now_us: i64) -> Result<StatsRequest, String> {
    let (mut hours, mut range, mut since, mut until) = (None, None, None, None);
    for (k, v) in event_query::pairs(query)? {
        let seen = match k.as_str() {
            "hours" => hours.replace(v.clone()).is_some(),
            "range" => range.replace(v.clone()).is_some(),
            "since" => since.replace(v.clone()).is_some(),
            "until" => until.replace(v.clone()).is_some(),
            other => return Err(format!("unknown parameter `{other}`")),
        };
        if seen {
            return Err(format!("{k}: given more than once"));
        }
    }
    let custom = since.is_some() || until.is_some();
    if [hours.is_some(), range.is_some(), custom]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        let name = if range.is_some() { "range" } else { "hours" };
        return Err(format!(
            "{name}: give one of range, hours, or since/until, not several"
        ));
    }
    if let Some(v) = range {
        let span = RANGES
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, span)| *span)
            .ok_or_else(|| format!("range: `{v}` is not one of 1h, 24h, 7d, 30d"))?;
        return Ok(StatsRequest {
            query: StatsQuery::last(now_us, span),
            range: v,
            window_hours: span / HOUR_US,
        });
    }
    if custom {
        let since_v = since.ok_or("since: required with until")?;
        let since_us = event_query::time("since", &since_v)?;
        let until_us = match until {
            Some(v) => event_query::time("until", &v)?,
            None => now_us,
        };
        let query = StatsQuery::custom(now_us, since_us, until_us)?;
        let span = until_us - since_us;
        return Ok(StatsRequest {
            query,
            range: "custom".into(),
            window_hours: (span + HOUR_US - 1) / HOUR_US,
        });
    }
    let h = match hours {
        None => 24,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|h| (1..=720).contains(h))
            .ok_or_else(|| format!("hours: `{v}` is not an integer 1..=720"))?,
    };
    Ok(StatsRequest {
        query: StatsQuery::last(now_us, h * HOUR_US),
        range: "hours".into(),
        window_hours: h,
    })
}

fn rfc3339_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let nanos = (us.rem_euclid(1_000_000) * 1000) as u32;
    honeybee_proto::time::format_rfc3339(secs, nanos)
}

/// `GET /api/v1/stats`: totals, the range's series, events per minute over
/// the last hour, and the top sources, usernames, passwords, commands,
/// credentials, event types, countries and AS numbers of the range
/// (`range=1h|24h|7d|30d`, `since=&until=`, or the older `hours=N`; 24
/// hours by default).
pub fn stats(ctx: &ApiContext, url: &str) -> Reply {
    let now = honeybee_proto::time::now_unix();
    let now_us = now
        .0
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(now.1 / 1000));
    let request = match stats_request(query_of(url), now_us) {
        Ok(r) => r,
        Err(e) => return error(400, e),
    };
    let stats = match ctx.events.stats(&request.query) {
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
        .map(|(minute_us, count)| json!({"minute": rfc3339_us(*minute_us), "count": count}))
        .collect();
    let series: Vec<Value> = stats
        .series
        .iter()
        .map(|(start, count)| json!({"start": rfc3339_us(*start), "count": count}))
        .collect();
    let countries: Vec<Value> = stats
        .top_countries
        .into_iter()
        .map(|(value, name, count)| json!({"value": value, "name": name, "count": count}))
        .collect();
    let asns: Vec<Value> = stats
        .top_asns
        .into_iter()
        .map(|(value, name, count)| json!({"value": value, "name": name, "count": count}))
        .collect();
    json_reply(
        200,
        &json!({
            "window_hours": request.window_hours,
            "range": request.range,
            "since": rfc3339_us(stats.since_us),
            "until": rfc3339_us(stats.until_us),
            "exact_edges": request.query.raw,
            "bucket": stats.bucket.map(|b| b.as_str()),
            "series": series,
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
            "top_countries": countries,
            "top_asns": asns,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_parameters_resolve_or_name_what_is_wrong() {
        let now = 1_000 * DAY_US + 10 * HOUR_US + 7;
        let r = stats_request("", now).unwrap();
        assert_eq!((r.range.as_str(), r.window_hours), ("hours", 24));
        assert_eq!(r.query, StatsQuery::last(now, 24 * HOUR_US));
        let r = stats_request("range=30d", now).unwrap();
        assert_eq!(r.query.bucket, crate::store::stats::Bucket::Day);
        let r = stats_request("hours=2", now).unwrap();
        assert!(r.query.raw);
        let r =
            stats_request("since=2026-01-15T10:30:00Z&until=2026-01-15T11:00:00Z", now).unwrap();
        assert_eq!(r.range, "custom");
        assert!(r.query.raw);
        for (q, name) in [
            ("range=2h", "range"),
            ("range=1h&hours=3", "range"),
            ("range=1h&since=2026-01-15T10:30:00Z", "range"),
            ("hours=0", "hours"),
            ("hours=721", "hours"),
            ("until=2026-01-15T10:30:00Z", "since"),
            ("since=yesterday", "since"),
            (
                "since=2026-01-15T10:30:00Z&until=2026-01-15T10:00:00Z",
                "until",
            ),
            (
                "since=2020-01-01T00:00:00Z&until=2021-01-02T00:00:00Z",
                "until",
            ),
            (
                "since=2026-01-15T10:30:00Z&since=2026-01-15T10:30:00Z",
                "since",
            ),
            ("colour=red", "colour"),
        ] {
            let e = stats_request(q, now).unwrap_err();
            assert!(e.contains(name), "{q}: {e}");
        }
    }
}
