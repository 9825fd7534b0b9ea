//! The OpenAPI document at /api/v1/openapi.json describes the routes as they
//! behave: schemathesis (PyPI) fuzzes every operation against a running core
//! with every check it has. CI installs it (.ci/run); elsewhere set
//! `HONEYBEE_SCHEMATHESIS` or put `schemathesis` on PATH.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{NodeStatus, PotStatus, CAP_EVENT_ACK};
use honeybee_tests::{poll_until, Core, NodeIdentity};
use serde_json::{json, Value};

fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HONEYBEE_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("schemathesis"))
        .find(|p| p.is_file())
}

#[test]
fn every_documented_operation_is_routed_and_nothing_else_is() {
    // The document is generated from nothing: the router's table is compared
    // with it in core's unit tests; here the running core proves each
    // documented operation reaches a handler (no 404 "no route", no 405).
    let core = Core::start();
    let api = core.api();
    let doc: Value = api
        .get_unauth("/api/v1/openapi.json")
        .expect_status(200)
        .json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        // Parameters get values that exist in no store: a handler answers
        // 400 or 404 with its own message, never the router's.
        let concrete = path
            .replace("{id}", "1")
            .replace("{ip}", "192.0.2.1")
            .replace("{session}", "nope")
            .replace("{name}", "nope");
        for method in item.as_object().expect("path item").keys() {
            let method = method.to_uppercase();
            if !["GET", "POST", "DELETE", "PUT", "PATCH"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let body = (method == "POST").then_some("{}");
            let r = api.call(&method, &concrete, body);
            let text = r.text();
            assert_ne!(
                r.status, 405,
                "{method} {path} is documented but not routed: {text}"
            );
            assert!(
                !(r.status == 404 && text.contains("no route for")),
                "{method} {path} is documented but not routed: {text}"
            );
        }
    }
    assert!(operations >= 20, "only {operations} operations documented");
    // An undocumented path is not served.
    let r = api.get("/api/v1/undocumented");
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn schemathesis_finds_nothing() {
    let Some(tool) = schemathesis() else {
        honeybee_tests::skip::skip(
            "schemathesis_finds_nothing",
            "schemathesis is not installed (CI installs it)",
        );
        return;
    };
    let core = Core::start();
    // Data for the operations to find: a node, a pot, events.
    let mut id = NodeIdentity::new("fuzzed").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    conn.must_send(&id.status(NodeStatus::Running));
    conn.must_send(&id.pot_status("cowrie-01", "cowrie", PotStatus::Running));
    let now = now_unix().0;
    for i in 1..=30u64 {
        let data = json!({"src_ip": "203.0.113.9", "username": "root", "password": format!("p{i}"), "session": format!("s{}", i % 3)});
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
    poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let body = core.api().get("/api/v1/events?limit=1").json();
        (body["events"][0]["seq"] == json!(30)).then_some(())
    })
    .expect("events stored");
    let url = format!("http://{}/api/v1/openapi.json", core.api_addr);
    let auth = format!("Authorization: Bearer {}", core.api().token);
    // `GET /api/v1/stats` takes one of `range`, `hours` or `since`/`until`,
    // and `until` not before `since`, at most 366 days apart: an OpenAPI
    // document cannot say that parameters exclude each other, so 400 is a
    // right answer to the combinations generated as "valid" there (the
    // rejections are tested in rest.rs). Every other check stays on.
    let config = core.workspace().path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[[operations]]\n\
         include-path = \"/api/v1/stats\"\n\
         checks.positive_data_acceptance.expected-statuses = \
         [\"2xx\", \"400\", \"401\", \"403\", \"404\", \"409\", \"429\", \"5xx\"]\n",
    )
    .expect("write schemathesis.toml");
    let out = Command::new(&tool)
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &url,
            "-H",
            &auth,
            "--checks",
            "all",
            "--max-examples",
            "60",
            "--seed",
            "20261126",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    assert!(text.contains("passed"), "schemathesis ran no test:\n{text}");
}
