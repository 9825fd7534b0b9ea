//! REST API on the HTTP port (behaviour.md, Port 9002).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use honeybee_proto::{NodeStatus, PotStatus};
use honeybee_tests::{totp, Core, TestNode};
use serde_json::Value;

const T: Duration = Duration::from_secs(5);

#[test]
fn health_needs_no_token() {
    let core = Core::start();
    let r = core.api().get_unauth("/health").expect_status(200);
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert!(
        v["version"].as_str().is_some_and(|s| !s.is_empty()),
        "health without a version: {v}"
    );
}

#[test]
fn a_missing_or_wrong_token_is_401_json() {
    let core = Core::start();
    let api = core.api();
    for path in [
        "/api/v1/nodes",
        "/api/v1/nodes/1",
        "/metrics",
        "/api/v1/no-such-route",
    ] {
        api.call_as(None, "GET", path).expect_error(401);
        api.call_as(Some("not-the-token"), "GET", path)
            .expect_error(401);
        api.call_as(Some(""), "GET", path).expect_error(401);
    }
    api.call_as(None, "POST", "/api/v1/nodes/1/approve")
        .expect_error(401);
    api.call_as(None, "DELETE", "/api/v1/nodes/1")
        .expect_error(401);
    // A token that merely starts like the right one.
    let prefix = &api.token[..api.token.len() - 1];
    api.call_as(Some(prefix), "GET", "/api/v1/nodes")
        .expect_error(401);
}

#[test]
fn unknown_routes_and_nodes_are_404_and_bad_ids_400() {
    let core = Core::start();
    let api = core.api();
    api.get("/api/v1/no-such-route").expect_error(404);
    api.get("/api/v2/nodes").expect_error(404);
    api.get("/api/v1/nodes/424242").expect_error(404);
    api.delete("/api/v1/nodes/424242").expect_error(404);
    for bad in ["abc", "-1", "1.5", "18446744073709551616"] {
        api.get(&format!("/api/v1/nodes/{bad}")).expect_error(400);
        api.post(&format!("/api/v1/nodes/{bad}/approve"), "")
            .expect_error(400);
        api.delete(&format!("/api/v1/nodes/{bad}"))
            .expect_error(400);
    }
    api.call("DELETE", "/api/v1/nodes", None).expect_error(405);
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s.ends_with('z') || s[19..].contains('+') || s[19..].contains('-'))
}

fn assert_node_shape(n: &Value) {
    for key in [
        "node_id",
        "node_name",
        "address",
        "port",
        "node_type",
        "status",
        "connected",
        "approved",
        "agent_version",
        "capabilities",
        "peer_address",
        "registered_at",
        "last_seen",
        "pots",
    ] {
        assert!(n.get(key).is_some(), "node object lacks {key:?}: {n}");
    }
    assert!(n["node_id"].is_u64(), "{n}");
    assert!(n["node_name"].is_string(), "{n}");
    assert!(n["address"].is_string(), "{n}");
    assert!(n["port"].is_u64(), "{n}");
    assert!(n["connected"].is_boolean(), "{n}");
    assert!(n["approved"].is_boolean(), "{n}");
    assert!(n["capabilities"].is_array(), "{n}");
    assert!(is_rfc3339(&n["registered_at"]), "registered_at: {n}");
    assert!(
        n["last_seen"].is_null() || is_rfc3339(&n["last_seen"]),
        "last_seen: {n}"
    );
    assert!(n["pots"].is_array(), "{n}");
    let status = n["status"].as_str().unwrap_or_default();
    assert!(
        NodeStatus::parse(status).is_some(),
        "status {status:?} is not a node status: {n}"
    );
}

#[test]
fn nodes_are_listed_with_the_documented_shape() {
    let core = Core::start();
    let api = core.api();
    let empty = api.get("/api/v1/nodes").expect_status(200).json();
    assert_eq!(empty["count"], 0, "{empty}");
    assert_eq!(empty["nodes"].as_array().map(Vec::len), Some(0), "{empty}");

    let (mut conn, id) = core.enroll("shape");
    conn.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Running));
    conn.must_send(&id.status(NodeStatus::Running));
    let n = api.wait_node(id.node_id, T, |n| {
        n["status"] == "Running" && n["pots"].as_array().is_some_and(|p| !p.is_empty())
    });
    assert_node_shape(&n);
    assert_eq!(n["address"], "127.0.0.1");
    assert_eq!(n["port"], 8080);
    assert!(n["last_seen"].is_string(), "{n}");
    assert!(
        n["events"].is_array(),
        "GET /api/v1/nodes/{{id}} has events: {n}"
    );
    let pot = &n["pots"][0];
    for key in ["pot_id", "pot_type", "status", "message", "updated_at"] {
        assert!(pot.get(key).is_some(), "pot lacks {key:?}: {pot}");
    }
    assert_eq!(pot["pot_id"], "cowrie-01");
    assert_eq!(pot["status"], "Running");
    assert_eq!(pot["message"], "cowrie-01 is Running");

    let list = api.get("/api/v1/nodes").expect_status(200).json();
    assert_eq!(list["count"], 1, "{list}");
    let listed = &list["nodes"][0];
    assert_node_shape(listed);
    assert_eq!(listed["node_id"].as_u64(), Some(id.node_id));
}

#[test]
fn deleting_a_connected_node_disconnects_it_and_forces_reenrollment() {
    let core = Core::start();
    let (mut conn, mut id) = core.enroll("doomed");
    let old_key = id.key().to_owned();
    conn.must_send(&id.status(NodeStatus::Running));
    core.api().wait_status(id.node_id, "Running", T);

    let r = core
        .api()
        .delete(&format!("/api/v1/nodes/{}", id.node_id))
        .expect_status(200)
        .json();
    assert_eq!(r["deleted"].as_u64(), Some(id.node_id), "{r}");
    conn.expect_closed(T, "a deleted node is disconnected");
    assert!(
        core.api().node(id.node_id).is_none(),
        "deleted node still listed"
    );
    assert!(
        !core
            .api()
            .nodes()
            .iter()
            .any(|n| n["node_id"].as_u64() == Some(id.node_id)),
        "deleted node still in the list"
    );

    // Its old key is gone: it must enroll again and gets a new key.
    totp::wait_for_step_margin(Duration::from_secs(2));
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let ack = c.register(&id.with_code(0));
    assert!(ack.accepted, "re-enrollment refused: {:?}", ack.message);
    let new_key = ack
        .totp_key
        .clone()
        .expect("re-enrollment without a new key");
    assert!(totp::is_valid_key(&new_key));
    assert_ne!(new_key, old_key, "the same key was issued again");
    id.learn(&ack);
}

#[test]
fn metrics_list_every_documented_sample() {
    let core = Core::start();
    let m = core.metrics();
    for name in [
        "honeybee_connections_total",
        "honeybee_connections_open",
        "honeybee_registrations_accepted_total",
        "honeybee_heartbeats_total",
    ] {
        m.value(name, &[]);
    }
    for reason in ["too_many_pending", "source_pending", "source_rate"] {
        m.labeled("honeybee_connections_refused_total", "reason", reason);
    }
    for reason in [
        "wrong_version",
        "not_registration",
        "invalid_registration",
        "bad_enrollment_token",
        "pending_approval",
        "missing_totp",
        "bad_totp",
        "replayed_totp",
        "locked_out",
        "node_limit",
    ] {
        let v = m.labeled("honeybee_registrations_refused_total", "reason", reason);
        assert_eq!(v, 0.0, "registrations_refused{{{reason}}} on a fresh core");
    }
    for kind in [
        "too_long",
        "not_utf8",
        "invalid_json",
        "wrong_version",
        "invalid_message",
        "not_registration",
        "registration_timeout",
        "tls_handshake",
        "unknown_variant",
    ] {
        let v = m.labeled("honeybee_protocol_errors_total", "kind", kind);
        assert_eq!(v, 0.0, "protocol_errors{{{kind}}} on a fresh core");
    }
    for status in NodeStatus::ALL {
        let v = m.labeled("honeybee_nodes", "status", status.as_str());
        assert_eq!(v, 0.0, "nodes{{{status}}} on a fresh core");
    }

    // They move.
    let (_conn, _id) = core.enroll("counted");
    let m2 = core.metrics();
    assert!(m2.value("honeybee_connections_total", &[]) >= 1.0);
    assert!(m2.value("honeybee_connections_open", &[]) >= 1.0);
    assert!(m2.value("honeybee_registrations_accepted_total", &[]) >= 1.0);
    assert_eq!(
        m2.labeled("honeybee_nodes", "status", "Connected"),
        1.0,
        "{}",
        m2.text
    );
}

#[test]
fn a_generated_api_token_is_private_used_and_kept() {
    let core = Core::builder().generated_api_token().start();
    let path = core.data_dir().join("api-token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} mode", path.display());
    let dir_mode = std::fs::metadata(core.data_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "data dir mode");
    let token = core.api().token.clone();
    assert!(
        token.len() >= 16,
        "generated token too short: {} chars",
        token.len()
    );

    core.api().get("/api/v1/nodes").expect_status(200);
    core.api()
        .call_as(Some("guess"), "GET", "/api/v1/nodes")
        .expect_error(401);
    let err = core.stderr();
    assert!(!err.contains(&token), "the core logged its API token");
    assert!(
        err.contains("api-token"),
        "the core should log where the generated token is:\n{err}"
    );

    // A restart on the same data dir keeps the token.
    let ws = core.workspace();
    drop(core);
    let core2 = Core::builder().workspace(ws).generated_api_token().start();
    assert_eq!(
        core2.api().token,
        token,
        "the token changed across a restart"
    );
    core2.api().get("/api/v1/nodes").expect_status(200);
}

#[test]
fn an_explicit_api_token_is_the_only_one_accepted() {
    let core = Core::builder().api_token("explicit-token-123456").start();
    assert!(
        !core.data_dir().join("api-token").exists()
            || std::fs::read_to_string(core.data_dir().join("api-token"))
                .map(|t| t.trim() == "explicit-token-123456")
                .unwrap_or(false),
        "a different token was generated although one was configured"
    );
    core.api().get("/api/v1/nodes").expect_status(200);
    core.api()
        .call_as(Some("explicit-token-12345"), "GET", "/api/v1/nodes")
        .expect_error(401);
}

/// An alerts module's report, as `POST /api/v1/alerts/report` takes it.
fn alert_report(module: &str, sent: u64, recent: Value) -> String {
    serde_json::json!({
        "module": module,
        "channels": [{"name": "hook", "type": "webhook", "sent": sent, "failed": 1, "retries": 3,
            "dropped": 0, "queued": 2, "latency_ms_p50": 40, "latency_ms_p99": 180,
            "last_error": "connect 127.0.0.1:8088: connection refused"}],
        "recent": recent,
    })
    .to_string()
}

fn alert(id: &str, time: &str, outcome: &str, title: &str) -> Value {
    serde_json::json!({"id": id, "time": time, "rule": "tripwire", "severity": "high",
        "channel": "hook", "outcome": outcome, "title": title,
        "error": if outcome == "sent" { Value::Null } else { "refused".into() }})
}

/// Alert modules report their channels and recent alerts; the core keeps
/// the latest figures, a bounded de-duplicated ring, and exports metrics.
#[test]
fn alert_reports_are_kept_bounded_listed_and_exported() {
    let core = Core::start();
    let api = core.api();
    assert_eq!(
        api.get("/api/v1/alerts").expect_status(200).json(),
        serde_json::json!({"channels": [], "recent": []})
    );
    let report = alert_report(
        "alerts",
        12,
        serde_json::json!([
            alert("tripwire/8193", "2026-12-07T10:00:00Z", "failed", "first"),
            alert(
                "tripwire/8194",
                "2026-12-07T11:00:00+01:00",
                "sent",
                "<img src=x onerror=alert(1)>"
            ),
        ]),
    );
    // The token is needed, like every write.
    honeybee_tests::http::request(
        core.api_addr,
        "POST",
        "/api/v1/alerts/report",
        None,
        Some(report.as_bytes()),
    )
    .unwrap()
    .expect_error(401);
    api.call_as(None, "GET", "/api/v1/alerts").expect_error(401);
    let r = api
        .post("/api/v1/alerts/report", &report)
        .expect_status(200)
        .json();
    assert_eq!(
        r,
        serde_json::json!({"module": "alerts", "channels": 1, "recent_added": 2})
    );

    // Later figures replace earlier ones; an alert reported again is kept
    // once; the same alert with another outcome is a new entry.
    let report = alert_report(
        "alerts",
        13,
        serde_json::json!([
            alert("tripwire/8193", "2026-12-07T10:00:00Z", "failed", "first"),
            alert("tripwire/8193", "2026-12-07T10:00:30Z", "sent", "first"),
        ]),
    );
    let r = api
        .post("/api/v1/alerts/report", &report)
        .expect_status(200)
        .json();
    assert_eq!(r["recent_added"], 1, "{r}");
    let v = api.get("/api/v1/alerts").expect_status(200).json();
    let channels = v["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1, "{v}");
    let c = &channels[0];
    for (k, want) in [
        ("module", serde_json::json!("alerts")),
        ("name", "hook".into()),
        ("type", "webhook".into()),
        ("sent", 13.into()),
        ("failed", 1.into()),
        ("retries", 3.into()),
        ("dropped", 0.into()),
        ("queued", 2.into()),
        ("latency_ms_p50", 40.into()),
        ("latency_ms_p99", 180.into()),
        (
            "last_error",
            "connect 127.0.0.1:8088: connection refused".into(),
        ),
    ] {
        assert_eq!(c[k], want, "{k} in {c}");
    }
    assert!(is_rfc3339(&c["reported_at"]), "{c}");
    let recent: Vec<(String, String, String)> = v["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["time"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        recent,
        [
            (
                "tripwire/8193".into(),
                "2026-12-07T10:00:30Z".into(),
                "sent".into()
            ),
            (
                "tripwire/8194".into(),
                "2026-12-07T10:00:00Z".into(),
                "sent".into()
            ),
            (
                "tripwire/8193".into(),
                "2026-12-07T10:00:00Z".into(),
                "failed".into()
            ),
        ],
        "newest first (at one time, the one heard last first), once each, in UTC: {v}"
    );
    let hostile = &v["recent"][1];
    assert_eq!(hostile["title"], "<img src=x onerror=alert(1)>");
    assert_eq!(hostile["module"], "alerts");
    assert_eq!(hostile["rule"], "tripwire");
    assert_eq!(hostile["severity"], "high");
    assert_eq!(hostile["channel"], "hook");
    assert_eq!(hostile["error"], Value::Null);
    assert_eq!(v["recent"][2]["error"], "refused");

    // /metrics, per channel.
    let m = core.metrics();
    let labels = [("module", "alerts"), ("channel", "hook")];
    for (name, want) in [
        ("honeybee_alerts_sent_total", 13.0),
        ("honeybee_alerts_failed_total", 1.0),
        ("honeybee_alerts_retries_total", 3.0),
        ("honeybee_alerts_dropped_total", 0.0),
        ("honeybee_alerts_queued", 2.0),
    ] {
        assert_eq!(m.value(name, &labels), want, "{name}\n{}", m.text);
    }
    for (q, want) in [("0.5", 40.0), ("0.99", 180.0)] {
        let l = [("module", "alerts"), ("channel", "hook"), ("quantile", q)];
        assert_eq!(
            m.value("honeybee_alerts_latency_ms", &l),
            want,
            "{}",
            m.text
        );
    }
    assert!(m.text.contains("# TYPE honeybee_alerts_queued gauge"));

    // Bad input: 400 naming what is wrong; nothing changes.
    let good = serde_json::json!({"module": "alerts", "channels": [], "recent": []});
    let with = |path: &[&str], v: Value| {
        let mut body = good.clone();
        let mut at = &mut body;
        for k in &path[..path.len() - 1] {
            at = match k.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*k],
            };
        }
        at[path[path.len() - 1]] = v;
        body.to_string()
    };
    let one_alert = |k: &str, v: Value| {
        let mut a = alert("a/1", "2026-12-07T10:00:00Z", "sent", "t");
        a[k] = v;
        with(&["recent"], serde_json::json!([a]))
    };
    let many_channels: Vec<Value> = (0..33)
        .map(|i| {
            serde_json::json!({"name": format!("c{i}"), "type": "file", "sent": 0,
            "failed": 0, "retries": 0, "dropped": 0, "queued": 0})
        })
        .collect();
    for (body, names) in [
        ("not json".to_string(), "JSON"),
        (
            r#"{"module": "alerts", "channels": []}"#.to_string(),
            "recent",
        ),
        (with(&["bogus"], 1.into()), "bogus"),
        (with(&["module"], "a b".into()), "module"),
        (with(&["module"], "x".repeat(65).into()), "module"),
        (with(&["channels"], many_channels.into()), "channels"),
        (
            with(
                &["channels"],
                serde_json::json!([{"name": "hook", "type": "webhook", "sent": -1, "failed": 0,
                    "retries": 0, "dropped": 0, "queued": 0}]),
            ),
            "JSON",
        ),
        (one_alert("time", "yesterday".into()), "recent[0].time"),
        (one_alert("outcome", "maybe".into()), "maybe"),
        (one_alert("channel", "a\nb".into()), "recent[0].channel"),
        (one_alert("id", "".into()), "recent[0].id"),
        (one_alert("title", 5.into()), "JSON"),
    ] {
        let e = api.post("/api/v1/alerts/report", &body).expect_error(400);
        assert!(e.contains(names), "{body}: {e}");
    }
    let huge = alert_report(
        "alerts",
        1,
        serde_json::json!([alert(
            "a/1",
            "2026-12-07T10:00:00Z",
            "sent",
            &"x".repeat(300_000)
        )]),
    );
    api.post("/api/v1/alerts/report", &huge).expect_error(413);
    let allow = api.get("/api/v1/alerts/report");
    assert_eq!(allow.header("allow"), Some("POST"));
    allow.expect_error(405);
    assert_eq!(
        api.get("/api/v1/alerts").expect_status(200).json(),
        v,
        "bad reports changed nothing"
    );

    // Ids are opaque (the alerts module builds some from a source address
    // or a pot id: attack data): any text is taken, cut to 256 bytes.
    let odd_id = format!("new-source/x \"é\" <b>/{}", "9".repeat(300));
    let r = api
        .post(
            "/api/v1/alerts/report",
            &alert_report(
                "alerts",
                13,
                serde_json::json!([alert(&odd_id, "2026-12-07T09:00:00Z", "sent", "t")]),
            ),
        )
        .expect_status(200)
        .json();
    assert_eq!(r["recent_added"], 1, "{r}");
    let v = api.get("/api/v1/alerts").expect_status(200).json();
    let kept = v["recent"][3]["id"].as_str().unwrap();
    assert!(
        kept.len() <= 256 && kept.starts_with("new-source/x \"é\" <b>/999") && kept.ends_with('…'),
        "{kept}"
    );

    // Bounded: long strings are cut, 200 recent alerts at most, 8 modules.
    let many: Vec<Value> = (0..300)
        .map(|i| {
            let mut a = alert(
                &format!("flood/{i}"),
                &format!("2026-12-08T00:{:02}:{:02}Z", i / 60, i % 60),
                "failed",
                &"t".repeat(if i >= 280 { 1000 } else { 10 }),
            );
            a["error"] = "e".repeat(if i >= 280 { 1000 } else { 10 }).into();
            a
        })
        .collect();
    api.post(
        "/api/v1/alerts/report",
        &alert_report("flood", 1, many.into()),
    )
    .expect_status(200);
    let v = api.get("/api/v1/alerts").expect_status(200).json();
    let recent = v["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 200);
    assert_eq!(recent[0]["id"], "flood/299", "newest first");
    assert_eq!(recent[199]["id"], "flood/100");
    assert!(recent.iter().all(|r| {
        r["title"].as_str().unwrap().len() <= 200 && r["error"].as_str().unwrap().len() <= 300
    }));
    let cut = recent[0]["title"].as_str().unwrap();
    assert!(cut.starts_with("ttt") && cut.ends_with('…'), "{cut}");
    for i in 0..9 {
        api.post(
            "/api/v1/alerts/report",
            &alert_report(&format!("m{i}"), i, serde_json::json!([])),
        )
        .expect_status(200);
    }
    let v = api.get("/api/v1/alerts").expect_status(200).json();
    let mut modules: Vec<&str> = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["module"].as_str().unwrap())
        .collect();
    modules.dedup();
    assert_eq!(modules, ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
}
