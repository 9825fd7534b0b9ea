//! Resuming a live stream after a cursor.
//!
//! Every stored event's id is its place in commit order (across every core
//! of a fleet), and every `PotEvent` the stream sends carries it as the
//! envelope's `"cursor"`. A subscriber that comes back with the last cursor
//! it saw gets, in order: the stored events after it, then live events,
//! none twice. The subscription is made first, so an event committed during
//! the replay is both in the replay and in the live queue; live events at or
//! below the last replayed cursor are skipped ([`Resumed::skips`]).

use std::sync::Arc;

use honeybee_proto::{EventFilter as LiveFilter, PotEvent};

use crate::bus::{Interest, Live, Topic};
use crate::store::{EventFilter, EventStore, StoredEvent};

/// Events read from the store per page while replaying.
const PAGE: u32 = 500;
/// Most events one `Subscribe` replays; a subscriber further behind is told
/// where the replay stopped and subscribes again from there.
pub const MAX_REPLAY: usize = 100_000;

/// Parses a `Subscribe.cursor`.
pub fn parse(cursor: &str) -> Result<i64, String> {
    cursor
        .parse::<i64>()
        .ok()
        .filter(|c| *c >= 0)
        .ok_or_else(|| format!("invalid cursor `{cursor}`: expected the \"cursor\" of an event"))
}

/// Where a replay ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The last cursor sent (or the one asked for, if nothing was newer).
    pub last: i64,
    /// The replay stopped at [`MAX_REPLAY`] events: more are stored.
    pub cut: bool,
}

impl Resumed {
    /// Whether a live delivery with `cursor` was already replayed.
    pub fn skips(&self, cursor: Option<i64>) -> bool {
        cursor.is_some_and(|c| c <= self.last)
    }
}

/// The store query for one page after `after`.
fn page_filter(filter: &LiveFilter, after: i64) -> EventFilter {
    EventFilter {
        node_id: filter.node_id,
        pot_id: filter.pot_id.clone(),
        after_id: Some(after),
        limit: PAGE,
        ..Default::default()
    }
}

/// A stored event as the stream sends it.
pub fn live(e: StoredEvent) -> Live {
    let event = PotEvent {
        node_id: e.node_id,
        pot_id: e.pot_id,
        pot_type: e.pot_type,
        event_type: e.event_type,
        timestamp: e.timestamp,
        seq: e.seq,
        data: serde_json::from_str(&e.data).unwrap_or_default(),
    };
    Live::event(event, e.id)
}

/// Whether `interest` wants events at all.
pub fn wants_events(interest: &Interest) -> bool {
    interest.topics.is_empty() || interest.topics.contains(&Topic::Events)
}

/// A replay in progress: pages of stored events after a cursor.
#[derive(Debug)]
pub struct Replay {
    last: i64,
    sent: usize,
    done: bool,
    cut: bool,
}

impl Replay {
    /// A replay of what was stored after `cursor`.
    pub fn after(cursor: i64) -> Replay {
        Replay {
            last: cursor,
            sent: 0,
            done: false,
            cut: false,
        }
    }

    /// The next page of events `interest` wants, oldest first; `None` once
    /// everything is sent or [`MAX_REPLAY`] events were. Reads the store
    /// off the executor.
    pub async fn next_page(
        &mut self,
        events: &Arc<dyn EventStore>,
        interest: &Interest,
    ) -> Result<Option<Vec<Live>>, String> {
        if self.done {
            return Ok(None);
        }
        let store = events.clone();
        let filter = page_filter(&interest.filter, self.last);
        let page = smol::unblock(move || store.events(&filter))
            .await
            .map_err(|e| format!("replaying after cursor {}: {e}", self.last))?;
        self.done = (page.len() as u32) < PAGE;
        let prefix = interest.filter.event_type_prefix.as_deref();
        let mut lines = Vec::with_capacity(page.len());
        for e in page {
            self.last = e.id;
            if prefix.is_some_and(|p| !e.event_type.starts_with(p)) {
                continue;
            }
            lines.push(live(e));
            self.sent += 1;
            if self.sent >= MAX_REPLAY {
                self.done = true;
                self.cut = true;
                break;
            }
        }
        Ok(Some(lines))
    }

    /// Where it ended.
    pub fn finish(self) -> Resumed {
        Resumed {
            last: self.last,
            cut: self.cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_and_skip() {
        assert_eq!(parse("8192"), Ok(8192));
        for bad in ["", "-1", "x", "1.5", "99999999999999999999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let r = Resumed {
            last: 10,
            cut: false,
        };
        assert!(r.skips(Some(10)) && r.skips(Some(3)));
        assert!(!r.skips(Some(11)) && !r.skips(None));
    }

    #[test]
    fn a_stored_event_carries_its_cursor_in_the_envelope() {
        let e = StoredEvent {
            id: 1 << 60,
            node_id: u64::MAX,
            seq: Some(7),
            pot_id: "p".into(),
            pot_type: "t".into(),
            event_type: "e.x".into(),
            timestamp: "2026-12-07T00:00:00Z".into(),
            data: r#"{"src_ip":"198.51.100.1"}"#.into(),
            geo: Default::default(),
        };
        let line = live(e).line;
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["cursor"], (1i64 << 60).to_string());
        assert_eq!(v["version"], 2);
        assert_eq!(v["message"]["PotEvent"]["seq"], 7);
        let decoded =
            honeybee_proto::decode::<honeybee_proto::StreamMessage>(line.trim_end().as_bytes());
        assert!(
            decoded.is_ok(),
            "clients that ignore the cursor still read it"
        );
    }
}
