//! The REST routes beyond nodes and events: node commands, honeypots, the
//! NDJSON export and the statistics (core/docs/behaviour.md, Port 9002).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{Command, CoreMessage, NodeStatus, PotStatus, CAP_EVENT_ACK};
use honeybee_tests::{poll_until, Core, NodeIdentity};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);

/// A core with one connected node that sent `n` login events.
fn core_with_events(n: u64) -> (Core, honeybee_tests::TestNode, NodeIdentity) {
    let core = Core::start();
    let mut id = NodeIdentity::new("rest").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    conn.must_send(&id.status(NodeStatus::Running));
    conn.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Running));
    let now = now_unix().0;
    for i in 1..=n {
        let data = json!({
            "src_ip": format!("203.0.113.{}", i % 3),
            "username": if i % 2 == 0 { "root" } else { "admin" },
            "password": format!("p{}", i % 4),
        });
        let ts = format_rfc3339(now - i as i64, 0);
        conn.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts,
            Some(i),
            data,
        ));
    }
    poll_until(T, Duration::from_millis(50), || {
        let body = core.api().get("/api/v1/events?limit=1").json();
        (body["events"][0]["seq"] == json!(n)).then_some(())
    })
    .expect("events stored");
    (core, conn, id)
}

#[test]
fn commands_reach_connected_nodes_and_refuse_clearly() {
    let (core, mut conn, id) = core_with_events(1);
    let path = format!("/api/v1/nodes/{}/commands", id.node_id);
    let r = core
        .api()
        .post(&path, r#"{"GetPotStatus": "cowrie-01"}"#)
        .expect_status(202);
    assert_eq!(r.json()["command"], "GetPotStatus");
    let delivered = poll_until(T, Duration::from_millis(10), || {
        match conn.recv(Duration::from_millis(200)) {
            Ok(CoreMessage::NodeCommand(c)) => Some(c),
            _ => None,
        }
    })
    .expect("the command reaches the node");
    assert_eq!(delivered.command, Command::GetPotStatus("cowrie-01".into()));
    assert_eq!(delivered.node_id, id.node_id);

    core.api().post(&path, "{not json").expect_error(400);
    let e = core
        .api()
        .post(&path, r#"{"Frobnicate": {}}"#)
        .expect_error(400);
    assert!(e.contains("Frobnicate"), "{e}");
    core.api()
        .post("/api/v1/nodes/424242/commands", r#""Restart""#)
        .expect_error(404);
    core.api()
        .post("/api/v1/nodes/x/commands", r#""Restart""#)
        .expect_error(400);

    // Over 1 MiB: 413, whatever the content.
    let big = format!("\"{}\"", "a".repeat(1024 * 1024 + 10));
    core.api().post(&path, &big).expect_error(413);

    // A node that left: 409.
    conn.must_send(&honeybee_proto::NodeMessage::NodeDrop);
    core.api().wait_status(id.node_id, "Stopped", T);
    let e = core
        .api()
        .post(&path, r#"{"StopPot": "cowrie-01"}"#)
        .expect_error(409);
    assert!(e.contains("not connected"), "{e}");
}

#[test]
fn honeypots_lists_every_pot_with_its_node() {
    let (core, _conn, id) = core_with_events(1);
    let body = core
        .api()
        .get("/api/v1/honeypots")
        .expect_status(200)
        .json();
    assert_eq!(body["count"], 1, "{body}");
    let pot = &body["honeypots"][0];
    assert_eq!(
        (pot["pot_id"].as_str(), pot["status"].as_str()),
        (Some("cowrie-01"), Some("Running"))
    );
    assert_eq!(pot["node_id"], json!(id.node_id));
}

/// Reads a chunked or plain HTTP body from a raw GET.
fn raw_get(core: &Core, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(core.api_addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        core.api().token
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (head.to_string(), body)
}

#[test]
fn export_streams_every_matching_event_as_ndjson() {
    let (core, _conn, _id) = core_with_events(2300);
    let (head, body) = raw_get(&core, "/api/v1/events/export");
    assert!(
        head.to_ascii_lowercase().contains("application/x-ndjson"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "streamed: {head}"
    );
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2300);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );

    let (_, body) = raw_get(&core, "/api/v1/events/export?src_ip=203.0.113.1&limit=1500");
    let filtered: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(filtered.len(), 767, "i % 3 == 1 for i in 1..=2300");
    assert!(filtered
        .iter()
        .all(|e| e["data"]["src_ip"] == "203.0.113.1"));
    let (_, body) = raw_get(&core, "/api/v1/events/export?limit=1001");
    assert_eq!(body.lines().count(), 1001, "limit caps the export");
    core.api()
        .get("/api/v1/events/export?limit=0")
        .expect_error(400);
    core.api()
        .get("/api/v1/events/export?since=never")
        .expect_error(400);
}

/// `format=ecs`: the same events, filters and cap, each written as the
/// Elastic Common Schema document `honeybee_proto::ecs` makes of it, with
/// the node's name.
#[test]
fn export_writes_elastic_common_schema_on_request() {
    let (core, mut conn, id) = core_with_events(1100);
    conn.must_send(&id.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.command.input",
        &format_rfc3339(now_unix().0, 0),
        Some(1101),
        json!({"src_ip": "198.51.100.4", "src_port": 40022, "dst_port": 2222,
               "protocol": "TCP", "input": "uname -a"}),
    ));
    poll_until(T, Duration::from_millis(50), || {
        let body = core.api().get("/api/v1/events?limit=1").json();
        (body["events"][0]["seq"] == json!(1101)).then_some(())
    })
    .expect("the command stored");

    let (head, ecs) = raw_get(&core, "/api/v1/events/export?format=ecs");
    assert!(
        head.to_ascii_lowercase().contains("application/x-ndjson"),
        "{head}"
    );
    let (_, plain) = raw_get(&core, "/api/v1/events/export");
    let (_, explicit) = raw_get(&core, "/api/v1/events/export?format=ndjson");
    assert_eq!(plain, explicit, "format=ndjson is the default");
    let docs: Vec<Value> = ecs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<Value> = plain
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 1101, "every event, across export pages");
    assert_eq!(events.len(), docs.len());
    for (doc, e) in docs.iter().zip(&events) {
        // The shared mapping, nothing re-mapped by the core.
        let event = honeybee_proto::PotEvent {
            node_id: e["node_id"].as_u64().unwrap(),
            pot_id: e["pot_id"].as_str().unwrap().into(),
            pot_type: e["pot_type"].as_str().unwrap().into(),
            event_type: e["event_type"].as_str().unwrap().into(),
            timestamp: e["timestamp"].as_str().unwrap().into(),
            seq: e["seq"].as_u64(),
            data: e["data"].as_object().unwrap().clone(),
        };
        let want = honeybee_proto::ecs::document(
            &event,
            honeybee_proto::ecs::Origin {
                id: e["id"].as_i64(),
                node_name: Some(&id.name),
            },
        );
        assert_eq!(doc, &want, "event {}", e["id"]);
    }
    let first = &docs[0];
    assert_eq!(first["ecs"]["version"], "8.11.0");
    assert_eq!(first["event"]["action"], "cowrie.command.input");
    assert_eq!(first["event"]["id"], events[0]["id"].to_string());
    assert_eq!(first["observer"]["name"], id.name.as_str());
    assert_eq!(first["observer"]["id"], id.node_id.to_string());
    assert_eq!(first["source"]["ip"], "198.51.100.4");
    assert_eq!(first["destination"]["port"], 2222);
    assert_eq!(first["network"]["transport"], "tcp");
    assert_eq!(first["process"]["command_line"], "uname -a");
    let login = &docs[1];
    assert_eq!(login["event"]["category"][0], "authentication");
    assert_eq!(login["event"]["outcome"], "failure");
    assert!(login["user"]["name"].is_string(), "{login}");

    // The export's filters and cap hold.
    let (_, body) = raw_get(
        &core,
        "/api/v1/events/export?src_ip=203.0.113.1&format=ecs&limit=5",
    );
    let docs: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 5);
    assert!(docs.iter().all(|d| d["source"]["ip"] == "203.0.113.1"));

    // A node the core no longer knows: no observer.name, the rest as before.
    core.api()
        .delete(&format!("/api/v1/nodes/{}", id.node_id))
        .expect_status(200);
    let (_, body) = raw_get(&core, "/api/v1/events/export?format=ecs&limit=1");
    let doc: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert!(doc["observer"].get("name").is_none(), "{doc}");
    assert_eq!(doc["observer"]["id"], id.node_id.to_string());

    for bad in ["csv", "", "ECS", "ecs%00"] {
        let e = core
            .api()
            .get(&format!("/api/v1/events/export?format={bad}"))
            .expect_error(400);
        assert!(e.starts_with("format"), "format={bad}: {e}");
    }
}

#[test]
fn stats_count_and_rank_what_nodes_saw() {
    let (core, _conn, _id) = core_with_events(12);
    let s = core.api().get("/api/v1/stats").expect_status(200).json();
    assert_eq!(s["totals"]["events"], 12, "{s}");
    assert_eq!(s["totals"]["pots"], 1, "{s}");
    assert_eq!(s["totals"]["nodes_by_status"]["Running"], 1, "{s}");
    let per_minute = s["events_per_minute"].as_array().unwrap();
    assert_eq!(per_minute.len(), 60);
    let last_hour: u64 = per_minute
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    assert_eq!(last_hour, 12, "all 12 are from the last seconds");
    assert_eq!(s["top_usernames"][0], json!({"value": "admin", "count": 6}));
    assert_eq!(
        s["top_event_types"][0],
        json!({"value": "cowrie.login.failed", "count": 12})
    );
    let passwords: u64 = s["top_passwords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .sum();
    assert_eq!(passwords, 12);
    assert_eq!(s["top_source_ips"].as_array().unwrap().len(), 3);
    core.api().get("/api/v1/stats?hours=0").expect_error(400);
    core.api().get("/api/v1/stats?bogus=1").expect_error(400);
}

#[test]
fn retention_drops_expired_events_and_keeps_recent_ones() {
    let config = "retention_days = 1\n";
    let core = Core::builder().config(config).start();
    let mut id = NodeIdentity::new("old-and-new").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    let now = now_unix().0;
    let old = format_rfc3339(now - 3 * 86_400, 0);
    let new = format_rfc3339(now - 60, 0);
    conn.must_send(&id.pot_event("p", "t", "x.old", &old, Some(1), json!({})));
    conn.must_send(&id.pot_event("p", "t", "x.new", &new, Some(2), json!({})));
    conn.wait_event_ack(2, T);
    let ws = core.workspace();
    drop(conn);
    drop(core);
    // Retention runs when the core starts (then every minute).
    let core = Core::builder().config(config).workspace(ws).start();
    let types = poll_until(T, Duration::from_millis(50), || {
        let body = core.api().get("/api/v1/events").json();
        let types: Vec<String> = body["events"]
            .as_array()?
            .iter()
            .filter_map(|e| e["event_type"].as_str().map(String::from))
            .collect();
        (types.len() == 1).then_some(types)
    })
    .expect("the expired event is dropped after the restart");
    assert_eq!(types, vec!["x.new".to_string()]);
    let text = core.api().get("/metrics").expect_status(200).text();
    assert!(text.contains("honeybee_events_expired_total 1"), "{text}");
}

/// The event types the API lists, newest first.
fn listed_types(core: &Core) -> Option<Vec<String>> {
    let body = core.api().get("/api/v1/events?limit=1000").json();
    Some(
        body["events"]
            .as_array()?
            .iter()
            .filter_map(|e| e["event_type"].as_str().map(String::from))
            .collect(),
    )
}

#[test]
fn retention_runs_periodically_while_the_core_runs() {
    // retention_interval = 1: an event that expires while the core runs is
    // dropped within seconds, with no restart.
    let config = "retention_days = 1\nretention_interval = 1\n";
    let core = Core::builder().config(config).start();
    let mut id = NodeIdentity::new("expiring").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    let now = now_unix().0;
    // Four seconds short of a day old: kept now, expired in four seconds.
    let soon = format_rfc3339(now - 86_400 + 4, 0);
    let fresh = format_rfc3339(now - 60, 0);
    conn.must_send(&id.pot_event("p", "t", "x.soon", &soon, Some(1), json!({})));
    conn.must_send(&id.pot_event("p", "t", "x.fresh", &fresh, Some(2), json!({})));
    conn.wait_event_ack(2, T);
    let first = listed_types(&core).expect("events");
    assert_eq!(first.len(), 2, "both kept while young: {first:?}");
    let started = std::time::Instant::now();
    let types = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        let t = listed_types(&core)?;
        (t.len() == 1).then_some(t)
    })
    .expect("the event that expired while the core ran is dropped");
    println!(
        "expired event dropped {:?} after both were stored",
        started.elapsed()
    );
    assert_eq!(types, vec!["x.fresh".to_string()]);
    let text = core.api().get("/metrics").expect_status(200).text();
    assert!(text.contains("honeybee_events_expired_total 1"), "{text}");
}

#[test]
fn max_events_keeps_only_the_newest_events() {
    let config = "max_events = 5\nretention_interval = 1\n";
    let core = Core::builder().config(config).start();
    let mut id = NodeIdentity::new("capped").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    let now = now_unix().0;
    for seq in 1..=12u64 {
        // Oldest first, one second apart: the newest five are 8..=12.
        let ts = format_rfc3339(now - 100 + seq as i64, 0);
        conn.must_send(&id.pot_event("p", "t", &format!("x.{seq}"), &ts, Some(seq), json!({})));
    }
    conn.wait_event_ack(12, T);
    let types = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        let t = listed_types(&core)?;
        (t.len() == 5).then_some(t)
    })
    .expect("the cap of 5 events is applied");
    let mut kept: Vec<String> = types;
    kept.sort();
    let mut want: Vec<String> = (8..=12).map(|s| format!("x.{s}")).collect();
    want.sort();
    assert_eq!(kept, want, "the newest five are kept");
    let text = core.api().get("/metrics").expect_status(200).text();
    assert!(text.contains("honeybee_events_expired_total 7"), "{text}");
    // More events: still five, still the newest.
    for seq in 13..=15u64 {
        let ts = format_rfc3339(now - 50 + seq as i64, 0);
        conn.must_send(&id.pot_event("p", "t", &format!("x.{seq}"), &ts, Some(seq), json!({})));
    }
    conn.wait_event_ack(15, T);
    poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        let t = listed_types(&core)?;
        (t.len() == 5 && t.contains(&"x.15".to_string()) && !t.contains(&"x.10".to_string()))
            .then_some(())
    })
    .expect("the cap holds as events arrive");
}

#[test]
fn a_retention_interval_out_of_range_is_refused() {
    for bad in ["retention_interval = 0\n", "retention_interval = 86401\n"] {
        let ws = honeybee_tests::TempDir::new("bad-interval");
        let cfg = ws.path().join("core.toml");
        std::fs::write(&cfg, bad).unwrap();
        let (status, _, err) = honeybee_tests::core_process::run_to_exit(
            &["--config", cfg.to_str().unwrap()],
            ws.path(),
            Duration::from_secs(10),
        );
        assert_eq!(status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("retention_interval"), "{bad}: {err}");
    }
}

/// Sends `n` events dated `secs_ago`, each with `username`; returns the
/// next seq.
fn send_dated(
    conn: &mut honeybee_tests::TestNode,
    id: &NodeIdentity,
    seq: &mut u64,
    n: u64,
    secs_ago: i64,
    username: &str,
) {
    let ts = format_rfc3339(now_unix().0 - secs_ago, 0);
    for _ in 0..n {
        *seq += 1;
        conn.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts,
            Some(*seq),
            json!({"src_ip": "203.0.113.50", "username": username, "password": "pw"}),
        ));
    }
    conn.wait_event_ack(*seq, T);
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Events of several ages: (count, seconds ago, username).
const AGES: [(u64, i64, &str); 6] = [
    (3, 30, "now"),
    (2, 90 * 60, "ninety-minutes"),
    (4, 5 * HOUR, "five-hours"),
    (5, 3 * DAY, "three-days"),
    (6, 20 * DAY, "twenty-days"),
    (7, 40 * DAY, "forty-days"),
];

fn core_with_ages(config: &str) -> (Core, honeybee_tests::TestNode, NodeIdentity) {
    let core = Core::builder().config(config).start();
    let mut id = NodeIdentity::new("ages").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    let mut seq = 0;
    for (n, ago, user) in AGES {
        send_dated(&mut conn, &id, &mut seq, n, ago, user);
    }
    (core, conn, id)
}

fn stats(core: &Core, query: &str) -> Value {
    core.api()
        .get(&format!("/api/v1/stats?{query}"))
        .expect_status(200)
        .json()
}

fn series_sum(s: &Value) -> u64 {
    s["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum()
}

fn users(s: &Value) -> Vec<(String, u64)> {
    s["top_usernames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["value"].as_str().unwrap().to_string(),
                u["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `range=`, `hours=` and `since=&until=`: each window counts what it
/// holds, in buckets that fit its length, from the events (two hours or
/// less, to the second) or from the summary tables (whole hours).
#[test]
fn stats_ranges_count_each_window_in_fitting_buckets() {
    let (core, _conn, _id) = core_with_ages("");
    let total: u64 = AGES.iter().map(|a| a.0).sum();
    for (query, in_window, bucket, buckets) in [
        ("range=1h", 3, "minute", 61),
        ("hours=2", 5, "minute", 121),
        ("range=24h", 9, "hour", 25),
        ("", 9, "hour", 25),
        ("hours=24", 9, "hour", 25),
        ("range=7d", 14, "hour", 169),
        ("range=30d", 20, "day", 31),
        ("hours=720", 20, "day", 31),
    ] {
        let s = stats(&core, query);
        assert_eq!(s["totals"]["events"], json!(total), "{query}: {s}");
        assert_eq!(s["totals"]["events_in_window"], in_window, "{query}");
        assert_eq!(s["bucket"], bucket, "{query}");
        assert_eq!(s["series"].as_array().unwrap().len(), buckets, "{query}");
        assert_eq!(series_sum(&s), in_window, "{query}: the series adds up");
        assert_eq!(s["events_per_minute"].as_array().unwrap().len(), 60);
        let listed: u64 = users(&s).iter().map(|u| u.1).sum();
        assert_eq!(listed, in_window, "{query}: {:?}", users(&s));
    }
    let s = stats(&core, "range=30d");
    assert_eq!(
        users(&s),
        vec![
            ("twenty-days".into(), 6),
            ("three-days".into(), 5),
            ("five-hours".into(), 4),
            ("now".into(), 3),
            ("ninety-minutes".into(), 2),
        ]
    );
    assert_eq!(s["range"], "30d");
    assert_eq!(s["window_hours"], 720);
    // The series' buckets start on day boundaries and are in order.
    let starts: Vec<&str> = s["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]));
    assert!(
        starts.iter().all(|s| s.ends_with("T00:00:00Z")),
        "{starts:?}"
    );

    // Custom, longer than two hours: widened to whole hours.
    let now = now_unix().0;
    let since = format_rfc3339(now - 3 * DAY - 2 * HOUR, 0);
    let until = format_rfc3339(now - 2 * DAY, 0);
    let s = stats(&core, &format!("since={since}&until={until}"));
    assert_eq!(s["range"], "custom");
    assert_eq!(s["totals"]["events_in_window"], 5, "{s}");
    assert_eq!(users(&s), vec![("three-days".into(), 5)]);
    assert_eq!(s["exact_edges"], false);
    let (got_since, got_until) = (s["since"].as_str().unwrap(), s["until"].as_str().unwrap());
    assert!(
        got_since <= since.as_str() && got_since.ends_with(":00:00Z"),
        "{got_since}"
    );
    assert!(
        got_until >= until.as_str() && got_until.ends_with(":59:59.999999Z"),
        "{got_until}"
    );
    // Custom, two hours or less: exact to the second.
    let since = format_rfc3339(now - 100 * 60, 0);
    let until = format_rfc3339(now - 80 * 60, 0);
    let s = stats(&core, &format!("since={since}&until={until}"));
    assert_eq!(s["totals"]["events_in_window"], 2, "{s}");
    assert_eq!(s["exact_edges"], true);
    assert_eq!(
        (s["since"].as_str(), s["until"].as_str()),
        (Some(since.as_str()), Some(until.as_str()))
    );
    // Since alone runs to now.
    let since = format_rfc3339(now - 6 * HOUR, 0);
    let s = stats(&core, &format!("since={since}"));
    assert_eq!(s["totals"]["events_in_window"], 9, "{s}");

    // Bad or contradictory values: 400 naming the parameter.
    let a_year_and_more = format_rfc3339(now - 368 * DAY, 0);
    let later = format_rfc3339(now - DAY, 0);
    let earlier = format_rfc3339(now - 2 * DAY, 0);
    for (query, name) in [
        ("range=2h".to_string(), "range"),
        ("range=".to_string(), "range"),
        ("range=1h&hours=2".to_string(), "range"),
        (format!("range=24h&since={earlier}"), "range"),
        (format!("hours=3&since={earlier}"), "hours"),
        ("hours=0".to_string(), "hours"),
        (format!("until={later}"), "since"),
        ("since=last-week".to_string(), "since"),
        (format!("since={earlier}&until=soon"), "until"),
        (format!("since={later}&until={earlier}"), "until"),
        (format!("since={a_year_and_more}&until={later}"), "until"),
        ("range=1h&range=1h".to_string(), "range"),
    ] {
        let e = core
            .api()
            .get(&format!("/api/v1/stats?{query}"))
            .expect_error(400);
        assert!(e.starts_with(name), "{query}: {e}");
    }
}

/// Retention takes what it deletes out of the statistics too: by age and
/// by count, the summaries stay equal to the events kept.
#[test]
fn stats_stay_exact_when_retention_deletes() {
    let (core, conn, _id) = core_with_ages("retention_days = 10\n");
    let ws = core.workspace();
    drop(conn);
    drop(core);
    // Retention runs when the core starts.
    let core = Core::builder()
        .config("retention_days = 10\n")
        .workspace(ws)
        .start();
    let kept: u64 = AGES.iter().filter(|a| a.1 < 10 * DAY).map(|a| a.0).sum();
    let s = poll_until(T, Duration::from_millis(100), || {
        let s = stats(&core, "range=30d");
        (s["totals"]["events"] == json!(kept)).then_some(s)
    })
    .expect("expired events leave the totals");
    assert_eq!(s["totals"]["events_in_window"], json!(kept));
    assert!(!users(&s)
        .iter()
        .any(|u| u.0.contains("days") && u.0 != "three-days"));
    assert_eq!(core.api().all_events(&[]).len() as u64, kept);
    let ws = core.workspace();
    drop(core);
    // By count: the newest 5 stay.
    let core = Core::builder()
        .config("retention_days = 10\nmax_events = 5\n")
        .workspace(ws)
        .start();
    let s = poll_until(T, Duration::from_millis(100), || {
        let s = stats(&core, "range=30d");
        (s["totals"]["events"] == json!(5)).then_some(s)
    })
    .expect("events over the cap leave the totals");
    assert_eq!(s["totals"]["events_in_window"], 5);
    assert_eq!(series_sum(&s), 5);
    let listed: u64 = users(&s).iter().map(|u| u.1).sum();
    assert_eq!(listed, 5, "{:?}", users(&s));
    assert_eq!(core.api().all_events(&[]).len(), 5);
}

/// Summaries are written about every five seconds, not with every batch: a core
/// killed in between counts the events it stored when it starts again, and
/// statistics asked for in between count them at once.
#[test]
fn stats_count_events_stored_just_before_a_crash() {
    let core = Core::start();
    let mut id = NodeIdentity::new("crash").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    let mut seq = 0;
    send_dated(&mut conn, &id, &mut seq, 40, 3 * HOUR, "before");
    let s = stats(&core, "range=24h");
    assert_eq!(
        s["totals"]["events_in_window"], 40,
        "asked right after: {s}"
    );
    send_dated(&mut conn, &id, &mut seq, 25, 5 * HOUR, "killed");
    let ws = core.workspace();
    let mut core = core;
    core.stop_with(nix::sys::signal::Signal::SIGKILL, T);
    drop(conn);
    let core = Core::builder().workspace(ws).start();
    if !honeybee_tests::postgres::enabled() {
        // (PostgreSQL summarises every batch: several cores read them.)
        assert!(
            core.stderr()
                .contains("25 events stored before a stop were added to the summary tables"),
            "{}",
            core.stderr()
        );
    }
    let s = stats(&core, "range=24h");
    assert_eq!(s["totals"]["events"], 65, "{s}");
    assert_eq!(s["totals"]["events_in_window"], 65, "{s}");
    assert_eq!(
        users(&s),
        vec![("before".into(), 40), ("killed".into(), 25)],
        "{s}"
    );
}
