//! Turning one line a honeypot writes to the event socket into a `PotEvent`.
//!
//! Pots write Cowrie-style JSON objects (docs/protocol.md §8): an `eventid`, a
//! `timestamp`, and whatever fields the pot knows. This module decides which
//! fields name the event, the pot and the time, and keeps every other field
//! verbatim as `data`. What a pot leaves out is filled in from what the agent
//! knows about its installed pots. Pure: no I/O, so that any byte string can be
//! thrown at it in tests and by the `agent_event_line` fuzz target (`fuzz/`).

use std::fmt;

use honeybee_proto::time::{format_rfc3339, now_rfc3339, parse_rfc3339};
use honeybee_proto::PotEvent;
use serde_json::{Map, Value};

/// The latest unix time accepted as a numeric `timestamp` (9999-12-31T23:59:59Z);
/// beyond that a number is not a time a pot could mean.
const MAX_UNIX_SECONDS: f64 = 253_402_300_799.0;

/// What the agent knows about one installed pot, for attributing lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PotHint {
    /// The pot's id on this node.
    pub pot_id: String,
    /// The pot's type (`cowrie`, …).
    pub pot_type: String,
    /// Whether the pot is running now.
    pub running: bool,
}

/// Why a line was not an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The line is not JSON (or not UTF-8); the parser's message.
    NotJson(String),
    /// The line is JSON but not an object.
    NotObject,
    /// The object has no non-empty string `eventid` or `event_type`.
    NoEventType,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            MapError::NotJson(e) => write!(f, "pot event line is not JSON: {e}"),
            MapError::NotObject => write!(f, "pot event line is not a JSON object"),
            MapError::NoEventType => {
                write!(f, "pot event line has no string `eventid` or `event_type`")
            }
        }
    }
}

impl std::error::Error for MapError {}

/// Maps one line from the event socket to a [`PotEvent`] seen by `node_id`.
///
/// - `event_type`: string `eventid`, else string `event_type`.
/// - `pot_id`: string `pot_id`, else string `sensor`, else the one running
///   pot in `pots` (only if exactly one runs), else `"unknown"`.
/// - `pot_type`: string `pot_type`, else the type `pots` gives that pot_id,
///   else the part of `event_type` before its first `.`.
/// - `timestamp`: an RFC 3339 string as written, else unix seconds (may be
///   fractional) as RFC 3339 UTC, else now.
/// - `data`: every other key, verbatim. A naming key is taken out of `data`
///   only when its value was used, so a pot's odd `timestamp` or numeric
///   `pot_id` is kept rather than lost. `sensor` always stays.
///
/// Empty strings count as absent. `seq` is left for the spool to assign.
pub fn map_line(line: &[u8], node_id: u64, pots: &[PotHint]) -> Result<PotEvent, MapError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| MapError::NotJson(e.to_string()))?;
    let Value::Object(mut data) = value else {
        return Err(MapError::NotObject);
    };
    let event_type = take_string(&mut data, "eventid")
        .or_else(|| take_string(&mut data, "event_type"))
        .ok_or(MapError::NoEventType)?;
    let pot_id = take_string(&mut data, "pot_id")
        .or_else(|| non_empty_str(data.get("sensor")).map(str::to_owned))
        .or_else(|| only_running(pots).map(|p| p.pot_id.clone()))
        .unwrap_or_else(|| "unknown".to_owned());
    let pot_type = take_string(&mut data, "pot_type")
        .or_else(|| {
            pots.iter()
                .find(|p| p.pot_id == pot_id && !p.pot_type.is_empty())
                .map(|p| p.pot_type.clone())
        })
        .unwrap_or_else(|| type_from_event(&event_type));
    let timestamp = take_timestamp(&mut data).unwrap_or_else(now_rfc3339);
    Ok(PotEvent {
        node_id,
        pot_id,
        pot_type,
        event_type,
        timestamp,
        seq: None,
        data,
    })
}

/// Parses one line into a JSON object (the first step of every mapping).
pub fn parse_object(line: &[u8]) -> Result<Map<String, Value>, MapError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| MapError::NotJson(e.to_string()))?;
    match value {
        Value::Object(data) => Ok(data),
        _ => Err(MapError::NotObject),
    }
}

/// Whether `data` names an event type (else it is only a token line).
pub fn has_event_type(data: &Map<String, Value>) -> bool {
    non_empty_str(data.get("eventid")).is_some() || non_empty_str(data.get("event_type")).is_some()
}

/// Maps a line of a connection that authenticated as `pot` (docs/protocol.md §8):
/// as [`map_line`], except that the event is the pot's whatever the line
/// says. A `pot_id` in the line is a claim the connection cannot make, so it
/// is dropped; a `token` is a secret and never reaches `data`.
pub fn map_pot_object(
    mut data: Map<String, Value>,
    node_id: u64,
    pot: &PotHint,
) -> Result<PotEvent, MapError> {
    data.remove("token");
    data.remove("pot_id");
    let event_type = take_string(&mut data, "eventid")
        .or_else(|| take_string(&mut data, "event_type"))
        .ok_or(MapError::NoEventType)?;
    let pot_type = take_string(&mut data, "pot_type")
        .or_else(|| Some(pot.pot_type.clone()).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| type_from_event(&event_type));
    let timestamp = take_timestamp(&mut data).unwrap_or_else(now_rfc3339);
    Ok(PotEvent {
        node_id,
        pot_id: pot.pot_id.clone(),
        pot_type,
        event_type,
        timestamp,
        seq: None,
        data,
    })
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Removes `key` from `data` if it holds a non-empty string, and returns it.
fn take_string(data: &mut Map<String, Value>, key: &str) -> Option<String> {
    non_empty_str(data.get(key))?;
    match data.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The running pot, if exactly one runs: then it must be the writer.
fn only_running(pots: &[PotHint]) -> Option<&PotHint> {
    let mut running = pots.iter().filter(|p| p.running);
    match (running.next(), running.next()) {
        (Some(p), None) => Some(p),
        _ => None,
    }
}

/// Event types are dotted, source first (`cowrie.login.failed` → `cowrie`).
fn type_from_event(event_type: &str) -> String {
    match event_type.split('.').next() {
        Some(source) if !source.is_empty() => source.to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// Removes `timestamp` from `data` if it is a usable time, and returns it as
/// RFC 3339.
fn take_timestamp(data: &mut Map<String, Value>) -> Option<String> {
    let text = match data.get("timestamp")? {
        // Kept as written: it is the pot's own wording of its clock.
        Value::String(s) => parse_rfc3339(s).map(|_| s.clone()),
        Value::Number(n) => n.as_f64().and_then(unix_seconds_to_rfc3339),
        _ => None,
    }?;
    data.remove("timestamp");
    Some(text)
}

fn unix_seconds_to_rfc3339(secs: f64) -> Option<String> {
    if !(0.0..=MAX_UNIX_SECONDS).contains(&secs) {
        return None;
    }
    let whole = secs.floor();
    // Rounding to whole microseconds (what format_rfc3339 prints) avoids
    // showing 0.277635 as .277634 after the float's binary error.
    let micros = ((secs - whole) * 1e6).round() as u32;
    let (whole, micros) = if micros >= 1_000_000 {
        (whole + 1.0, 0)
    } else {
        (whole, micros)
    };
    Some(format_rfc3339(whole as i64, micros * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COWRIE: &str = include_str!("../../tests/fixtures/cowrie-socketlog.ndjson");

    fn hint(pot_id: &str, pot_type: &str, running: bool) -> PotHint {
        PotHint {
            pot_id: pot_id.into(),
            pot_type: pot_type.into(),
            running,
        }
    }

    fn map(line: &str, pots: &[PotHint]) -> PotEvent {
        map_line(line.as_bytes(), 7, pots).unwrap()
    }

    #[test]
    fn a_pot_line_is_the_pots_whatever_it_claims_and_keeps_no_token() {
        let pot = hint("real", "cowrie", true);
        let line = r#"{"eventid":"cowrie.login.failed","pot_id":"other","sensor":"other","token":"s3cret","src_ip":"192.0.2.1"}"#;
        let data = parse_object(line.as_bytes()).unwrap();
        assert!(has_event_type(&data));
        let ev = map_pot_object(data, 7, &pot).unwrap();
        assert_eq!(ev.pot_id, "real");
        assert_eq!(ev.pot_type, "cowrie");
        assert!(!ev.data.contains_key("token"));
        assert!(!ev.data.contains_key("pot_id"));
        assert_eq!(ev.data["sensor"], "other");
        let only_token = parse_object(br#"{"token":"s3cret"}"#).unwrap();
        assert!(!has_event_type(&only_token));
        assert!(parse_object(b"[1]").is_err());
    }

    #[test]
    fn every_cowrie_line_maps() {
        let pots = [hint("cowrie-01", "cowrie", true)];
        let mut logins = 0;
        let mut count = 0;
        for line in COWRIE.lines() {
            count += 1;
            let ev = map(line, &pots);
            assert!(ev.event_type.starts_with("cowrie."), "{line}");
            assert_eq!(ev.pot_id, "cowrie-01");
            assert_eq!(ev.pot_type, "cowrie");
            assert_eq!(ev.node_id, 7);
            assert_eq!(ev.seq, None);
            assert!(parse_rfc3339(&ev.timestamp).is_some(), "{}", ev.timestamp);
            assert!(ev.data.contains_key("src_ip"), "{line}");
            assert_eq!(ev.data["sensor"], "cowrie-01");
            for gone in ["eventid", "event_type", "pot_id", "pot_type", "timestamp"] {
                assert!(!ev.data.contains_key(gone), "{gone} in {line}");
            }
            if ev.event_type.starts_with("cowrie.login.") {
                logins += 1;
                assert!(ev.data["username"].is_string(), "{line}");
                assert!(ev.data["password"].is_string(), "{line}");
            }
        }
        assert_eq!(count, 30);
        assert_eq!(logins, 3);
    }

    #[test]
    fn cowrie_fields_are_kept_verbatim() {
        let line = COWRIE.lines().next().unwrap();
        let ev = map(line, &[]);
        let raw: Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(ev.timestamp, raw["timestamp"].as_str().unwrap());
        assert_eq!(ev.event_type, "cowrie.session.connect");
        for (k, v) in &raw {
            if k != "eventid" && k != "timestamp" {
                assert_eq!(ev.data.get(k), Some(v), "{k}");
            }
        }
        assert_eq!(ev.data.len(), raw.len() - 2);
    }

    #[test]
    fn event_type_falls_back_to_event_type_key() {
        let ev = map(
            r#"{"event_type":"native.telnet.login","src_ip":"1.2.3.4"}"#,
            &[],
        );
        assert_eq!(ev.event_type, "native.telnet.login");
        assert_eq!(ev.pot_type, "native");
        assert!(!ev.data.contains_key("event_type"));
        let ev = map(r#"{"eventid":"a.b","event_type":"c.d"}"#, &[]);
        assert_eq!(ev.event_type, "a.b", "eventid wins");
        assert_eq!(ev.data["event_type"], "c.d");
        let ev = map(r#"{"eventid":5,"event_type":"c.d"}"#, &[]);
        assert_eq!(ev.event_type, "c.d");
        assert_eq!(ev.data["eventid"], 5, "an unused value is kept");
    }

    #[test]
    fn pot_id_fallbacks() {
        let two = [hint("a", "cowrie", true), hint("b", "dionaea", true)];
        let one = [hint("a", "cowrie", false), hint("b", "dionaea", true)];
        let pot_id = |line: &str, pots: &[PotHint]| map(line, pots).pot_id;
        assert_eq!(
            pot_id(r#"{"eventid":"x.y","pot_id":"p","sensor":"s"}"#, &one),
            "p"
        );
        assert_eq!(pot_id(r#"{"eventid":"x.y","sensor":"s"}"#, &one), "s");
        assert_eq!(pot_id(r#"{"eventid":"x.y","sensor":""}"#, &one), "b");
        assert_eq!(pot_id(r#"{"eventid":"x.y"}"#, &one), "b");
        assert_eq!(pot_id(r#"{"eventid":"x.y"}"#, &two), "unknown");
        assert_eq!(pot_id(r#"{"eventid":"x.y"}"#, &[]), "unknown");
        let none_running = [hint("a", "cowrie", false)];
        assert_eq!(pot_id(r#"{"eventid":"x.y"}"#, &none_running), "unknown");
        let ev = map(r#"{"eventid":"x.y","pot_id":"p","sensor":"s"}"#, &one);
        assert!(!ev.data.contains_key("pot_id"));
        assert_eq!(ev.data["sensor"], "s", "sensor stays in data");
    }

    #[test]
    fn pot_type_fallbacks() {
        let pots = [hint("a", "cowrie", false), hint("b", "dionaea", true)];
        let pot_type = |line: &str| map(line, &pots).pot_type;
        assert_eq!(
            pot_type(r#"{"eventid":"x.y","pot_id":"a","pot_type":"t"}"#),
            "t"
        );
        assert_eq!(pot_type(r#"{"eventid":"x.y","pot_id":"a"}"#), "cowrie");
        assert_eq!(pot_type(r#"{"eventid":"x.y","sensor":"a"}"#), "cowrie");
        assert_eq!(
            pot_type(r#"{"eventid":"x.y"}"#),
            "dionaea",
            "the running one"
        );
        assert_eq!(pot_type(r#"{"eventid":"x.y","pot_id":"zz"}"#), "x");
        assert_eq!(pot_type(r#"{"eventid":"plain","pot_id":"zz"}"#), "plain");
        assert_eq!(pot_type(r#"{"eventid":".odd","pot_id":"zz"}"#), "unknown");
        let ev = map(r#"{"eventid":"x.y","pot_type":"t"}"#, &pots);
        assert!(!ev.data.contains_key("pot_type"));
    }

    #[test]
    fn timestamp_fallbacks() {
        let ts = |line: &str| map(line, &[]);
        let ev = ts(r#"{"eventid":"x.y","timestamp":"2026-01-15T11:30:00+01:00"}"#);
        assert_eq!(ev.timestamp, "2026-01-15T11:30:00+01:00", "kept verbatim");
        assert!(!ev.data.contains_key("timestamp"));
        let ev = ts(r#"{"eventid":"x.y","timestamp":1768473000}"#);
        assert_eq!(ev.timestamp, "2026-01-15T10:30:00Z");
        assert!(!ev.data.contains_key("timestamp"));
        let ev = ts(r#"{"eventid":"x.y","timestamp":1795645079.277635}"#);
        assert_eq!(ev.timestamp, "2026-11-25T22:17:59.277635Z");
        let ev = ts(r#"{"eventid":"x.y","timestamp":1768473000.9999999}"#);
        assert_eq!(
            ev.timestamp, "2026-01-15T10:30:01Z",
            "rounds into the next second"
        );

        let secs = |t: &str| parse_rfc3339(t).unwrap();
        let before = secs(&now_rfc3339());
        for bad in [
            r#"{"eventid":"x.y"}"#,
            r#"{"eventid":"x.y","timestamp":"yesterday"}"#,
            r#"{"eventid":"x.y","timestamp":-5}"#,
            r#"{"eventid":"x.y","timestamp":1e300}"#,
            r#"{"eventid":"x.y","timestamp":null}"#,
        ] {
            let ev = ts(bad);
            let at = secs(&ev.timestamp);
            assert!(before <= at && at <= secs(&now_rfc3339()), "{bad}: {at:?}");
        }
        let ev = ts(r#"{"eventid":"x.y","timestamp":"yesterday"}"#);
        assert_eq!(ev.data["timestamp"], "yesterday", "an unused value is kept");
    }

    #[test]
    fn garbage_is_an_error() {
        let err = |line: &[u8]| map_line(line, 1, &[]).unwrap_err();
        assert!(matches!(err(b"not json"), MapError::NotJson(_)));
        assert!(matches!(err(b""), MapError::NotJson(_)));
        assert!(matches!(err(b"{\"eventid\":"), MapError::NotJson(_)));
        assert!(matches!(
            err(b"{\"eventid\":\"a\xff\"}"),
            MapError::NotJson(_)
        ));
        assert_eq!(err(b"[1,2]"), MapError::NotObject);
        assert_eq!(err(b"42"), MapError::NotObject);
        assert_eq!(err(b"\"cowrie.login\""), MapError::NotObject);
        assert_eq!(err(b"null"), MapError::NotObject);
        assert_eq!(err(b"{}"), MapError::NoEventType);
        assert_eq!(err(b"{\"eventid\":\"\"}"), MapError::NoEventType);
        assert_eq!(
            err(b"{\"eventid\":1,\"message\":\"m\"}"),
            MapError::NoEventType
        );
        assert!(err(b"[]").to_string().contains("not a JSON object"));
        let deep = "[".repeat(100_000);
        assert!(matches!(err(deep.as_bytes()), MapError::NotJson(_)));
    }

    #[test]
    fn random_bytes_never_panic() {
        // Half the inputs come from JSON-ish bytes, so that parsing gets past
        // the first character often enough to exercise the mapping.
        const ALPHABET: &[u8] = b"{}[]\":,.0123456789eE+-tfnul \\abcdiopstvy_\xff";
        let pots = [hint("a", "cowrie", true)];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let mut mapped = 0;
        for i in 0..10_000 {
            let len = next() % 64;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if i % 2 == 0 {
                        r as u8
                    } else {
                        ALPHABET[r % ALPHABET.len()]
                    }
                })
                .collect();
            if map_line(&line, 1, &pots).is_ok() {
                mapped += 1;
            }
        }
        // Number-ish timestamps in a valid object: the time conversion must
        // hold up for whatever a float can be.
        const NUMBER: &[u8] = b"0123456789.eE+-";
        for i in 0..2_000 {
            let len = 1 + next() % 24;
            let number: String = (0..len)
                .map(|_| char::from(NUMBER[next() % NUMBER.len()]))
                .collect();
            let line = format!("{{\"eventid\":\"e{i}\",\"timestamp\":{number}}}");
            if let Ok(ev) = map_line(line.as_bytes(), 1, &pots) {
                assert!(parse_rfc3339(&ev.timestamp).is_some(), "{line}");
                mapped += 1;
            }
        }
        assert!(mapped > 0, "the mapping was never reached");
    }
}
