//! What the analyst's views share: reading many events a page at a time
//! through the store's ordinary filtered query (and so through its indexes:
//! by source address, by node, by id), decoding a path segment, and
//! `GET /api/v1/events/{id}`.

use serde_json::Value;

use crate::api::event_page::event_json;
use crate::api::{error, json_reply, ApiContext, Reply};
use crate::store::{EventFilter, EventStore, StoreError, StoredEvent};

/// Events read from the store per query of a scan.
pub const SCAN_PAGE: u32 = 5000;

/// How a scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Events read.
    pub events: u64,
    /// True when every matching event was read (neither `max` nor the
    /// visitor stopped it).
    pub complete: bool,
}

/// What the reading side of a scan hands over.
enum Read {
    Page(Vec<StoredEvent>),
    End { complete: bool },
    Failed(StoreError),
}

/// Reads the pages of a scan in order into `out` until the end, `max`
/// events, or `out` is gone; what [`scan`] runs beside its visitor.
fn read_pages(
    store: &dyn EventStore,
    filter: &EventFilter,
    max: u64,
    mut out: impl FnMut(Read) -> bool,
) {
    let mut f = filter.clone();
    f.after_id = None;
    let mut read = 0u64;
    loop {
        let left = max.saturating_sub(read);
        if left == 0 {
            // Complete only if nothing is left beyond the cap.
            f.limit = 1;
            let _ = match store.events(&f) {
                Ok(rows) => out(Read::End {
                    complete: rows.is_empty(),
                }),
                Err(e) => out(Read::Failed(e)),
            };
            return;
        }
        f.limit = SCAN_PAGE.min(u32::try_from(left).unwrap_or(SCAN_PAGE));
        let rows = match store.events(&f) {
            Ok(rows) => rows,
            Err(e) => {
                out(Read::Failed(e));
                return;
            }
        };
        read += rows.len() as u64;
        let next = match rows.last() {
            Some(last) if rows.len() == f.limit as usize => Some(last.id),
            _ => None,
        };
        if !out(Read::Page(rows)) {
            return;
        }
        match next {
            Some(id) => f.before_id = Some(id),
            None => {
                out(Read::End { complete: true });
                return;
            }
        }
    }
}

/// Reads the events of `filter` newest first, [`SCAN_PAGE`] at a time, at
/// most `max` of them; `visit` returns false to stop. `filter.limit` and
/// `filter.after_id` are ignored; `filter.before_id` is where it starts.
/// The next page is read on another thread while `visit` works through
/// this one (at most two pages wait).
pub fn scan(
    store: &dyn EventStore,
    filter: &EventFilter,
    max: u64,
    mut visit: impl FnMut(&StoredEvent) -> bool,
) -> Result<Scanned, StoreError> {
    let mut events = 0u64;
    let mut consume = |r: Read| -> Option<Result<Scanned, StoreError>> {
        match r {
            Read::Page(rows) => {
                for e in &rows {
                    events += 1;
                    if !visit(e) {
                        return Some(Ok(Scanned {
                            events,
                            complete: false,
                        }));
                    }
                }
                None
            }
            Read::End { complete } => Some(Ok(Scanned { events, complete })),
            Read::Failed(e) => Some(Err(e)),
        }
    };
    std::thread::scope(|sc| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Read>(1);
        let reader = std::thread::Builder::new()
            .name("api-scan".into())
            .spawn_scoped(sc, move || {
                read_pages(store, filter, max, |r| tx.send(r).is_ok())
            });
        if reader.is_err() {
            // No thread to be had: read and visit in turn.
            let mut result = None;
            read_pages(store, filter, max, |r| {
                result = consume(r);
                result.is_none()
            });
            return result.unwrap_or(Err(StoreError("a scan ended without its end".into())));
        }
        while let Ok(r) = rx.recv() {
            if let Some(done) = consume(r) {
                // Dropping `rx` stops the reader at its next page.
                return done;
            }
        }
        Err(StoreError("the scan's reader stopped".into()))
    })
}

/// A path segment percent-decoded (no `+` rule: that is for query
/// strings); `None` when an escape is malformed or the result is not UTF-8.
pub fn decode_segment(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One event by id, if stored.
pub fn event_by_id(store: &dyn EventStore, id: i64) -> Result<Option<StoredEvent>, StoreError> {
    let rows = store.events(&EventFilter {
        before_id: Some(id.saturating_add(1)),
        limit: 1,
        ..EventFilter::default()
    })?;
    Ok(rows.into_iter().next().filter(|e| e.id == id))
}

/// `GET /api/v1/events/{id}`: one event with every field, and the name of
/// its node when the core knows it.
pub fn event(ctx: &ApiContext, id: &str) -> Reply {
    let Some(id) = id.parse::<i64>().ok().filter(|i| *i > 0) else {
        return error(
            400,
            format!("invalid event id `{id}`: expected a positive integer"),
        );
    };
    match event_by_id(ctx.events.as_ref(), id) {
        Ok(Some(e)) => {
            let mut body = event_json(&e);
            body["node_name"] = ctx
                .registry
                .node_name(e.node_id)
                .map_or(Value::Null, Value::String);
            json_reply(200, &body)
        }
        Ok(None) => error(404, format!("no event {id}")),
        Err(e) => error(500, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode_percent_escapes_only() {
        assert_eq!(
            decode_segment("2001%3Adb8%3A%3A1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(decode_segment("a+b").as_deref(), Some("a+b"));
        assert_eq!(decode_segment("%3Cimg%3E").as_deref(), Some("<img>"));
        assert_eq!(decode_segment("%zz"), None);
        assert_eq!(decode_segment("%4"), None);
        assert_eq!(decode_segment("%ff"), None);
    }
}
