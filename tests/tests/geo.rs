//! Enrichment at ingest (`--geoip`, `--asn`): what the real core stores and
//! shows for each kind of source, its filters and statistics, reloads, and
//! every bad database file, against MaxMind-format databases written with
//! known networks (`tests/geo/make_mmdb.py`) and the real GeoLite2 City
//! database of PyPI's `maxminddb-geolite2`.

use std::io::Write as _;
use std::time::Duration;

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::CAP_EVENT_ACK;
use honeybee_tests::core_process::run_to_exit;
use honeybee_tests::geo::{geolite2_city, python_lookup, TestDbs};
use honeybee_tests::{poll_until, Core, NodeIdentity, TempDir, TestNode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

fn enriched_core(dbs: &TestDbs) -> Core {
    Core::builder()
        .arg("--geoip")
        .arg(dbs.city().display().to_string())
        .arg("--asn")
        .arg(dbs.asn().display().to_string())
        .start()
}

struct Sender {
    id: NodeIdentity,
    conn: TestNode,
    seq: u64,
}

impl Sender {
    fn new(core: &Core) -> Sender {
        let mut id = NodeIdentity::new("geo").with_capabilities(&[CAP_EVENT_ACK]);
        let conn = id.enroll(core.node_addr);
        Sender { id, conn, seq: 0 }
    }

    /// Sends one event with `data` and waits until it is stored; its seq.
    fn send_at(&mut self, data: Value, secs_ago: i64) -> u64 {
        self.seq += 1;
        let ts = format_rfc3339(now_unix().0 - secs_ago, 0);
        self.conn.must_send(&self.id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &ts,
            Some(self.seq),
            data,
        ));
        self.conn.wait_event_ack(self.seq, T);
        self.seq
    }

    fn send(&mut self, data: Value) -> u64 {
        self.send_at(data, 1)
    }
}

/// The stored event with `seq`, as the API shows it.
fn event(core: &Core, seq: u64) -> Value {
    core.api()
        .all_events(&[])
        .into_iter()
        .find(|e| e["seq"] == json!(seq))
        .unwrap_or_else(|| panic!("no event with seq {seq}"))
}

fn geo_of(core: &Core, src: Option<&str>, sender: &mut Sender) -> Value {
    let data = match src {
        Some(s) => json!({"src_ip": s, "username": "root"}),
        None => json!({"username": "root"}),
    };
    let seq = sender.send(data);
    event(core, seq)["geo"].clone()
}

fn full(country: &str, name: &str, city: Option<&str>, asn: i64, org: &str) -> Value {
    json!({"country": country, "country_name": name, "city": city, "asn": asn,
           "as_org": org, "net": null})
}

#[test]
fn each_kind_of_source_is_stored_shown_and_filtered() {
    let dbs = TestDbs::new();
    let core = enriched_core(&dbs);
    let mut s = Sender::new(&core);
    let cases: Vec<(Option<&str>, Value)> = vec![
        (
            Some("81.2.69.160"),
            full(
                "GB",
                "United Kingdom",
                Some("London"),
                20712,
                "Andrews & Arnold Ltd",
            ),
        ),
        (
            Some("89.160.20.112"),
            full("SE", "Sweden", Some("Linköping"), 29518, "Bredband2 AB"),
        ),
        // IPv6 is looked up like IPv4.
        (
            Some("2003:e0:1::7"),
            full("DE", "Germany", Some("Berlin"), 3320, "Deutsche Telekom AG"),
        ),
        // Mapped IPv4 is looked up as IPv4.
        (
            Some("::ffff:81.2.69.161"),
            full(
                "GB",
                "United Kingdom",
                Some("London"),
                20712,
                "Andrews & Arnold Ltd",
            ),
        ),
        // A country without a city.
        (
            Some("193.0.0.1"),
            full(
                "NL",
                "Netherlands",
                None,
                3333,
                "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)",
            ),
        ),
        // Only the ASN database knows it.
        (
            Some("1.1.1.1"),
            json!({"country": null, "country_name": null, "city": null, "asn": 13335,
                   "as_org": "Cloudflare, Inc.", "net": null}),
        ),
        // Special ranges are labelled, never looked up.
        (Some("10.1.2.3"), json!({"net": "private"})),
        (Some("fd00::5"), json!({"net": "private"})),
        (Some("127.0.0.1"), json!({"net": "loopback"})),
        (Some("203.0.113.9"), json!({"net": "documentation"})),
        (Some("2001:db8::1"), json!({"net": "documentation"})),
        (Some("100.64.1.1"), json!({"net": "cgnat"})),
        (Some("169.254.0.9"), json!({"net": "link-local"})),
        (Some("224.0.0.251"), json!({"net": "multicast"})),
        // Public, but in neither database: nothing known.
        (Some("8.8.8.8"), Value::Null),
        (Some("2a00:1450::1"), Value::Null),
        // Not an address, or none: stored, shown, not enriched.
        (Some("not-an-address"), Value::Null),
        (Some("81.2.69.160:22"), Value::Null),
        (None, Value::Null),
    ];
    for (src, want) in &cases {
        assert_eq!(&geo_of(&core, *src, &mut s), want, "src_ip {src:?}");
    }
    assert_eq!(
        core.api().all_events(&[]).len(),
        cases.len(),
        "every event stored"
    );

    // Filters: country (any case) and AS number, on the list and the export.
    let gb = core.api().all_events(&[("country", "gb")]);
    assert_eq!(gb.len(), 2, "{gb:?}");
    assert!(gb.iter().all(|e| e["geo"]["country"] == "GB"));
    let dtag = core.api().all_events(&[("asn", "3320")]);
    assert_eq!(dtag.len(), 1);
    assert_eq!(dtag[0]["data"]["src_ip"], "2003:e0:1::7");
    assert_eq!(core.api().all_events(&[("asn", "AS20712")]).len(), 2);
    assert_eq!(
        core.api()
            .all_events(&[("country", "DE"), ("asn", "20712")])
            .len(),
        0
    );
    let export = core
        .api()
        .get("/api/v1/events/export?country=SE")
        .expect_status(200)
        .text();
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{export}");
    assert_eq!(lines[0]["geo"]["city"], "Linköping");
    for (q, name) in [
        ("country=GBR", "country"),
        ("country=1", "country"),
        ("asn=x", "asn"),
        ("asn=-3", "asn"),
        ("asn=99999999999", "asn"),
    ] {
        let e = core
            .api()
            .get(&format!("/api/v1/events?{q}"))
            .expect_error(400);
        assert!(e.starts_with(name), "{q}: {e}");
        let e = core
            .api()
            .get(&format!("/api/v1/events/export?{q}"))
            .expect_error(400);
        assert!(e.starts_with(name), "export {q}: {e}");
    }

    // Statistics: every country with its name, top ASNs, for short and
    // long ranges alike.
    for range in ["1h", "24h", "7d", "30d"] {
        let st = core
            .api()
            .get(&format!("/api/v1/stats?range={range}"))
            .expect_status(200)
            .json();
        assert_eq!(
            st["top_countries"],
            json!([
                {"value": "GB", "name": "United Kingdom", "count": 2},
                {"value": "DE", "name": "Germany", "count": 1},
                {"value": "NL", "name": "Netherlands", "count": 1},
                {"value": "SE", "name": "Sweden", "count": 1},
            ]),
            "range={range}: {st}"
        );
        assert_eq!(
            st["top_asns"][0],
            json!({"value": 20712, "name": "Andrews & Arnold Ltd", "count": 2}),
            "range={range}"
        );
        assert_eq!(st["top_asns"].as_array().unwrap().len(), 5, "range={range}");
        assert_eq!(
            st["totals"]["events_in_window"],
            json!(cases.len()),
            "range={range}"
        );
    }
}

#[test]
fn without_databases_nothing_is_enriched() {
    let core = Core::start();
    let mut s = Sender::new(&core);
    assert_eq!(geo_of(&core, Some("81.2.69.160"), &mut s), Value::Null);
    assert_eq!(geo_of(&core, Some("10.0.0.1"), &mut s), Value::Null);
    let st = core.api().get("/api/v1/stats").expect_status(200).json();
    assert_eq!(st["top_countries"], json!([]));
    assert_eq!(st["top_asns"], json!([]));
    assert_eq!(core.api().all_events(&[("country", "GB")]).len(), 0);
}

fn must_refuse(args: &[&str], cwd: &std::path::Path, says: &[&str]) {
    let (status, _out, err) = run_to_exit(args, cwd, Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: stderr lacks {s:?}:\n{err}");
    }
    assert!(
        !err.contains("serving nodes"),
        "{args:?}: the core started serving:\n{err}"
    );
}

#[test]
fn a_bad_database_at_start_exits_2_naming_the_file_before_binding() {
    let dbs = TestDbs::new();
    let dir = TempDir::new("honeybee-geo-bad");
    let city = std::fs::read(dbs.city()).unwrap();
    let truncated = dir.path().join("truncated.mmdb");
    std::fs::write(&truncated, &city[..city.len() / 2]).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a database\n").unwrap();
    let empty = dir.path().join("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.mmdb");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let s = |p: &std::path::Path| p.display().to_string();
    // Ports 1 would be refused: nothing must get that far.
    let base = ["--data-dir", data, "--api-port", "1", "--node-port", "1"];
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["--geoip".into(), s(&missing)],
            vec![s(&missing), "cannot read".into()],
        ),
        (
            vec!["--geoip".into(), s(&truncated)],
            vec![s(&truncated), "truncated".into()],
        ),
        (
            vec!["--asn".into(), s(&text)],
            vec![s(&text), "not a MaxMind DB".into()],
        ),
        (
            vec!["--asn".into(), s(&empty)],
            vec![s(&empty), "empty".into()],
        ),
        (
            vec!["--geoip".into(), s(&dbs.asn())],
            vec![s(&dbs.asn()), "GeoLite2-ASN".into()],
        ),
        (
            vec!["--asn".into(), s(&dbs.city())],
            vec![s(&dbs.city()), "GeoLite2-City".into()],
        ),
    ];
    for (args, says) in cases {
        let all: Vec<&str> = base
            .iter()
            .copied()
            .chain(args.iter().map(String::as_str))
            .collect();
        let says: Vec<&str> = says.iter().map(String::as_str).collect();
        must_refuse(&all, dir.path(), &says);
    }
    // The same from the config file.
    let config = dir.path().join("core.toml");
    std::fs::write(
        &config,
        format!("[enrichment]\ngeoip = \"{}\"\n", missing.display()),
    )
    .unwrap();
    let config = s(&config);
    let all: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--config", config.as_str()])
        .collect();
    must_refuse(&all, dir.path(), &[&s(&missing)]);
}

fn city_of_next(core: &Core, s: &mut Sender) -> Value {
    geo_of(core, Some("81.2.69.160"), s)["city"].clone()
}

fn hangup(core: &Core) {
    let pid = core.pid().expect("core pid") as i32;
    kill(Pid::from_raw(pid), Signal::SIGHUP).expect("SIGHUP");
}

/// Waits until events from 81.2.69.160 are enriched with `city`.
fn wait_city(core: &Core, s: &mut Sender, city: &str, timeout: Duration) {
    let got = poll_until(timeout, Duration::from_millis(200), || {
        (city_of_next(core, s) == city).then_some(())
    });
    assert!(got.is_some(), "lookups never said {city}");
}

#[test]
fn databases_reload_on_sighup_and_on_change_and_a_bad_file_keeps_the_old_one() {
    let dbs = TestDbs::new();
    let core = enriched_core(&dbs);
    let mut s = Sender::new(&core);
    assert_eq!(city_of_next(&core, &mut s), "London");

    // A new file and SIGHUP: read at once.
    dbs.write(2);
    hangup(&core);
    wait_city(&core, &mut s, "Manchester", Duration::from_secs(3));
    assert_eq!(
        geo_of(&core, Some("81.2.69.160"), &mut s)["as_org"],
        "Andrews & Arnold Ltd (reloaded)"
    );

    // A truncated file (cut in place), then one that is not a database:
    // a warning, and the database loaded before keeps answering.
    let good = std::fs::read(dbs.city()).unwrap();
    std::fs::write(dbs.city(), &good[..good.len() / 3]).unwrap();
    hangup(&core);
    poll_until(T, Duration::from_millis(50), || {
        core.stderr()
            .contains("keeping the database loaded before")
            .then_some(())
    })
    .expect("a warning for the truncated file");
    assert_eq!(city_of_next(&core, &mut s), "Manchester");
    let mut f = std::fs::File::create(dbs.city()).unwrap();
    f.write_all(b"<html>not found</html>").unwrap();
    drop(f);
    hangup(&core);
    poll_until(T, Duration::from_millis(50), || {
        (core
            .stderr()
            .matches("keeping the database loaded before")
            .count()
            >= 2)
            .then_some(())
    })
    .expect("a warning for the file that is not a database");
    assert_eq!(city_of_next(&core, &mut s), "Manchester");
    // A missing file too.
    std::fs::remove_file(dbs.city()).unwrap();
    hangup(&core);
    poll_until(T, Duration::from_millis(50), || {
        (core
            .stderr()
            .matches("keeping the database loaded before")
            .count()
            >= 3)
            .then_some(())
    })
    .expect("a warning for the missing file");
    assert_eq!(city_of_next(&core, &mut s), "Manchester");
    assert!(core.stderr().contains(&dbs.city().display().to_string()));

    // No signal: the changed file is noticed within about 10 s.
    dbs.write(1);
    wait_city(&core, &mut s, "London", Duration::from_secs(25));
    core.assert_serving("after reloads");
}

/// The real GeoLite2 City database that `maxminddb-geolite2` ships: the
/// core finds what MaxMind's own Python reader finds.
#[test]
fn the_real_geolite2_city_database_agrees_with_maxminds_reader() {
    let db = geolite2_city();
    let core = Core::builder()
        .arg("--geoip")
        .arg(db.display().to_string())
        .start();
    let mut s = Sender::new(&core);
    let mut checked = 0;
    for ip in [
        "81.2.69.160",
        "89.160.20.112",
        "216.160.83.56",
        "8.8.8.8",
        "1.1.1.1",
        "2001:4860:4860::8888",
        "2a02:2770::1",
    ] {
        let want = python_lookup(&db, ip);
        let got = geo_of(&core, Some(ip), &mut s);
        let country = want["country"]["iso_code"]
            .as_str()
            .or(want["registered_country"]["iso_code"].as_str());
        match country {
            None => assert!(got.is_null() || got["country"].is_null(), "{ip}: {got}"),
            Some(c) => {
                checked += 1;
                assert_eq!(got["country"], c, "{ip}: {got} vs {want}");
                let city = &want["city"]["names"]["en"];
                assert_eq!(&got["city"], city, "{ip}: {got} vs {want}");
                assert_eq!(got["asn"], Value::Null, "no ASN database: {got}");
            }
        }
    }
    assert!(
        checked >= 3,
        "only {checked} addresses were in the database"
    );
}
