//! The REST API's query-string and cursor parsers: `GET /api/v1/events`
//! filters (`event_query::parse`, `pairs`), `GET /api/v1/stats` ranges
//! (`events::stats_request`), the stream's resume cursor
//! (`stream::resume::parse`), the WebSocket `?token=` (`url_token`), path
//! segments (`views::decode_segment`) and the loose event facts the views
//! read from stored `data` (`facts::Facts::parse`).
//!
//! Promises checked: no panic; every accepted filter is within its bounds
//! (limit 1..=1000, cursor > 0, country two upper-case letters); a decoded
//! path segment percent-encoded again decodes to itself.
#![no_main]

use honeybee_core::api::event_query::{self, MAX_LIMIT};
use honeybee_core::api::events::stats_request;
use honeybee_core::api::facts::Facts;
use honeybee_core::api::views::decode_segment;
use honeybee_core::stream::{resume, session::url_token};
use libfuzzer_sys::fuzz_target;

/// 2026-12-01T00:00:00Z in microseconds: a fixed "now" keeps runs repeatable.
const NOW_US: i64 = 1_796_083_200_000_000;

fuzz_target!(|data: &[u8]| {
    let q = String::from_utf8_lossy(data);
    let q = q.as_ref();

    if let Ok(f) = event_query::parse(q) {
        assert!((1..=MAX_LIMIT).contains(&f.limit), "limit {}", f.limit);
        assert!(
            f.before_id.is_none_or(|c| c > 0),
            "cursor {:?}",
            f.before_id
        );
        assert!(f.after_id.is_none());
        if let Some(c) = &f.country {
            assert!(
                c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()),
                "{c:?}"
            );
        }
        if let Some(asn) = f.asn {
            assert!((0..=i64::from(u32::MAX)).contains(&asn));
        }
        // Every parameter of an accepted query is a known one, so the pairs parse.
        assert!(event_query::pairs(q).is_ok());
    }
    let _ = event_query::pairs(q);
    if let Ok(c) = event_query::cursor(q) {
        assert!(c > 0);
    }

    if let Ok(r) = stats_request(q, NOW_US) {
        assert!(r.window_hours >= 0, "window {}", r.window_hours);
        assert!(!r.range.is_empty());
    }

    if let Ok(c) = resume::parse(q) {
        assert!(c >= 0);
        assert_eq!(resume::parse(&c.to_string()), Ok(c));
    }

    let _ = url_token(Some(q));

    if let Some(s) = decode_segment(q) {
        let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(decode_segment(&encoded).as_deref(), Some(s.as_str()));
    }

    let facts = Facts::parse(q);
    let _ = (facts.ssh_client(), facts.dst_port(), facts.src_port());
});
