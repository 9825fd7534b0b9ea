//! One page of stored events as JSON, shared by everything that answers an
//! event query: `{"events": [event...], "next_cursor": "..." | null}`, the
//! shape of `GET /api/v1/events` (behaviour.md). Also the module interface's
//! `QueryEvents` filters, checked the same way as the REST parameters.

use honeybee_proto::EventQuery;
use serde_json::{json, Value};

use crate::api::event_query::{self, DEFAULT_LIMIT};
use crate::store::{EventFilter, EventStore, StoreError, StoredEvent};

/// One event as the API shows it.
pub fn event_json(e: &StoredEvent) -> Value {
    json!({
        "id": e.id,
        "node_id": e.node_id,
        "pot_id": e.pot_id,
        "pot_type": e.pot_type,
        "event_type": e.event_type,
        "timestamp": e.timestamp,
        "seq": e.seq,
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
        "geo": e.geo.to_json(),
    })
}

/// The store filter for a `QueryEvents`; errors name the bad field, like the
/// REST API's. `limit` is the page size (default 100, at most 1000).
pub fn filter_from_query(q: &EventQuery) -> Result<EventFilter, String> {
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(l) => event_query::limit(&l.to_string())?,
    };
    let before_id = q.cursor.as_deref().map(event_query::cursor).transpose()?;
    Ok(EventFilter {
        node_id: q.node_id,
        pot_id: q.pot_id.clone(),
        event_type: q.event_type.clone(),
        src_ip: q.src_ip.clone(),
        country: None,
        asn: None,
        since_us: q
            .since
            .as_deref()
            .map(|v| event_query::time("since", v))
            .transpose()?,
        until_us: q
            .until
            .as_deref()
            .map(|v| event_query::time("until", v))
            .transpose()?,
        before_id,
        after_id: None,
        limit,
    })
}

/// Reads one page (`filter.limit` events, newest first) and its cursor.
/// Blocks on the database: call it off the executor.
pub fn page(store: &dyn EventStore, filter: &EventFilter) -> Result<Value, StoreError> {
    let page = filter.limit as usize;
    let mut probe = filter.clone();
    probe.limit = filter.limit.saturating_add(1);
    let mut rows = store.events(&probe)?;
    let next_cursor = if rows.len() > page {
        rows.truncate(page);
        rows.last().map(|e| e.id.to_string())
    } else {
        None
    };
    let events: Vec<Value> = rows.iter().map(event_json).collect();
    Ok(json!({"events": events, "next_cursor": next_cursor}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_fields_map_and_bad_values_name_the_field() {
        let f = filter_from_query(&EventQuery {
            node_id: Some(7),
            pot_id: Some("p".into()),
            event_type: Some("a.b".into()),
            src_ip: Some("1.2.3.4".into()),
            since: Some("2026-01-15T10:30:00Z".into()),
            until: Some("2026-01-15T10:30:01Z".into()),
            limit: Some(5),
            cursor: Some("77".into()),
        })
        .unwrap();
        assert_eq!(f.node_id, Some(7));
        assert_eq!(f.since_us, Some(1_768_473_000_000_000));
        assert_eq!(f.until_us, Some(1_768_473_001_000_000));
        assert_eq!((f.limit, f.before_id), (5, Some(77)));
        assert_eq!(
            filter_from_query(&EventQuery::default()).unwrap().limit,
            DEFAULT_LIMIT
        );
        for (q, name) in [
            (
                EventQuery {
                    limit: Some(0),
                    ..Default::default()
                },
                "limit",
            ),
            (
                EventQuery {
                    limit: Some(1001),
                    ..Default::default()
                },
                "limit",
            ),
            (
                EventQuery {
                    since: Some("yesterday".into()),
                    ..Default::default()
                },
                "since",
            ),
            (
                EventQuery {
                    cursor: Some("-1".into()),
                    ..Default::default()
                },
                "cursor",
            ),
        ] {
            let e = filter_from_query(&q).unwrap_err();
            assert!(e.starts_with(name), "{q:?}: {e}");
        }
    }
}
