//! The PostgreSQL store against a real server (Debian's `postgresql`, one
//! throwaway cluster per test): the URL checked before anything is bound,
//! passwords kept out of every output, a wrong password retried until it is
//! fixed, a newer schema refused, an older one migrated, cores racing to
//! create the schema, TLS to
//! the database in each `sslmode`, and a database crash in the middle of a
//! stream of events with nothing lost, nothing stored twice and nothing
//! acknowledged that was not committed.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{EventAck, CAP_EVENT_ACK};
use honeybee_tests::core_process::{run_to_exit, run_to_exit_with_env};
use honeybee_tests::postgres::Postgres;
use honeybee_tests::{http, totp, wait_for, Core, NodeIdentity, Pki, RecvError, TempDir, TestNode};
use serde_json::json;

const T: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// The core waits 1, 2, 4, 8, 16, then 30 s between attempts at start.
const RETRY_T: Duration = Duration::from_secs(40);

/// The schema version this core creates (`store/postgres/schema.rs`).
const SCHEMA: &str = "4";

/// The password the URLs carry: it must appear in no output.
const SECRET: &str = "Hb-s3cret-Qx9vT2mK";
/// The role's password before a test fixes it.
const OTHER: &str = "Hb-other-Lp4zW8nR";

/// Asserts that no text in `outputs` contains a password.
#[track_caller]
fn assert_no_password(what: &str, outputs: &[&str]) {
    for out in outputs {
        for pw in [SECRET, OTHER] {
            assert!(
                !out.contains(pw),
                "{what}: the password {pw:?} shows in:\n{out}"
            );
        }
    }
}

/// A login role `hbpw` with password `OTHER`, owning database `hbpw`; TCP
/// connections authenticate with scram-sha-256.
fn password_cluster() -> Postgres {
    let pg = Postgres::start();
    pg.sql(
        "postgres",
        &format!("CREATE ROLE hbpw LOGIN PASSWORD '{OTHER}'"),
    );
    pg.sql("postgres", "CREATE DATABASE hbpw OWNER hbpw");
    pg.set_hba(&["host all all 127.0.0.1/32 scram-sha-256"]);
    pg
}

/// Waits until the core's stderr contains `text`.
#[track_caller]
fn wait_stderr(core: &Core, text: &str, timeout: Duration) -> String {
    let mut last = String::new();
    honeybee_tests::poll_until(timeout, POLL, || {
        last = core.stderr();
        last.contains(text).then_some(())
    })
    .unwrap_or_else(|| panic!("no {text:?} in the core's stderr after {timeout:?}:\n{last}"));
    last
}

/// Unix seconds of a whole minute about two hours ago (inside retention).
fn base() -> i64 {
    let (now, _) = now_unix();
    (now - 2 * 3600) / 60 * 60
}

/// Event `seq` of `id`, acknowledged by seq.
fn event(id: &NodeIdentity, base: i64, seq: u64) -> honeybee_proto::NodeMessage {
    id.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.login.failed",
        &format_rfc3339(base + seq as i64, 0),
        Some(seq),
        json!({"src_ip": "203.0.113.9", "username": "root", "password": format!("p{seq}")}),
    )
}

// ---------------------------------------------------------------------------
// a. The URL is checked before anything happens.

/// Three loopback ports held (listening) by the test: a core that tried to
/// bind one would fail with "in use" and exit 1, not 2.
struct HeldPorts {
    _listeners: Vec<TcpListener>,
    args: Vec<String>,
}

fn held_ports(dir: &TempDir) -> HeldPorts {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local_addr").port();
    let args = vec![
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--node-port".into(),
        port(0).to_string(),
        "--api-port".into(),
        port(1).to_string(),
        "--stream-port".into(),
        port(2).to_string(),
    ];
    HeldPorts {
        _listeners: listeners,
        args,
    }
}

#[test]
fn a_bad_database_url_exits_2_before_anything_is_bound_and_never_shows_the_password() {
    let pg = Postgres::start();
    let dir = TempDir::new("honeybee-pg-url");
    let held = held_ports(&dir);
    // Stands in for the database in the URLs that parse: a core that got as
    // far as connecting would show up here.
    let fake_db = TcpListener::bind("127.0.0.1:0").expect("bind");
    fake_db.set_nonblocking(true).expect("nonblocking");
    let fake = fake_db.local_addr().expect("addr").port();
    let missing = dir.path().join("no-such-ca.pem");
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").expect("write");
    let a_dir = dir.path().join("a-directory");
    std::fs::create_dir(&a_dir).expect("mkdir");
    let verify = |ca: &std::path::Path| {
        format!(
            "postgres://hb:{SECRET}@127.0.0.1:{fake}/hb?sslmode=verify-full&sslrootcert={}",
            ca.display()
        )
    };

    // (how the URL is given, the URL, what stderr must say)
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "flag",
            "postgres://hb@db:notaport/x".into(),
            vec![
                "postgres URL postgres://hb@db:notaport/x".into(),
                "`port`".into(),
            ],
        ),
        (
            "flag",
            format!("postgres://hb:{SECRET}@db:notaport/x"),
            vec![
                "postgres URL postgres://hb:<redacted>@db:notaport/x".into(),
                "invalid".into(),
            ],
        ),
        (
            "env",
            format!("postgres://hb:{SECRET}@127.0.0.1:{fake}/hb?sslmode=maybe"),
            vec!["unknown sslmode `maybe`".into()],
        ),
        (
            "config",
            format!("postgres://hb:{SECRET}@127.0.0.1:{fake}/hb?sslmode=verify-full"),
            vec!["sslrootcert".into(), "verify-full".into()],
        ),
        ("env", verify(&missing), vec![missing.display().to_string()]),
        (
            "flag",
            verify(&not_pem),
            vec![not_pem.display().to_string(), "no certificate".into()],
        ),
        ("config", verify(&a_dir), vec![a_dir.display().to_string()]),
    ];
    for (how, url, want) in &cases {
        let mut args = held.args.clone();
        let mut env = Vec::new();
        let cfg = dir.path().join("core.toml");
        match *how {
            "flag" => args.extend(["--postgres".to_string(), url.clone()]),
            "env" => env.push(("HONEYBEE_POSTGRES", url.as_str())),
            _ => {
                std::fs::write(&cfg, format!("[store]\npostgres = \"{url}\"\n")).expect("write");
                args.extend(["--config".to_string(), cfg.display().to_string()]);
            }
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, out, err) = run_to_exit_with_env(&a, &env, dir.path(), T);
        let ctx = format!("{url} by {how}: {status}\n--- stderr ---\n{err}");
        assert_eq!(status.code(), Some(2), "{ctx}");
        for w in want {
            assert!(err.contains(w.as_str()), "stderr should say {w:?}: {ctx}");
        }
        assert!(
            !err.contains("in use"),
            "the core got as far as binding: {ctx}"
        );
        assert_no_password(&format!("{url} by {how}"), &[&out, &err]);
        assert!(
            !dir.path().join("data").exists(),
            "the data dir was created: {ctx}"
        );
        match fake_db.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("the core connected to the database: {other:?}; {ctx}"),
        }
        let _ = std::fs::remove_file(&cfg);
    }

    // The control: with a good URL the same flags get past the store and
    // fail on the held ports, exit 1. So exit 2 above was the URL.
    let good = pg.url("postgres");
    let mut args = held.args.clone();
    args.extend(["--postgres".to_string(), good]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, _, err) = run_to_exit(&a, dir.path(), T);
    assert_eq!(
        status.code(),
        Some(1),
        "good URL, held ports: {status}\n{err}"
    );
    assert!(
        err.contains("in use"),
        "good URL, held ports: should fail binding: {err}"
    );

    // --print-config shows the URL with the password redacted, whether it
    // came by flag, environment or file.
    let url = pg.url_as("hbpw", Some(SECRET), "hbpw", "sslmode=require");
    let cfg = dir.path().join("print.toml");
    std::fs::write(&cfg, format!("[store]\npostgres = \"{url}\"\n")).expect("write");
    let cfg_s = cfg.display().to_string();
    for (args, env) in [
        (vec!["--print-config", "--postgres", url.as_str()], vec![]),
        (
            vec!["--print-config"],
            vec![("HONEYBEE_POSTGRES", url.as_str())],
        ),
        (vec!["--print-config", "--config", cfg_s.as_str()], vec![]),
    ] {
        let (status, out, err) = run_to_exit_with_env(&args, &env, dir.path(), T);
        assert!(status.success(), "{args:?}: {status}\n{err}");
        let shown = format!(
            "postgres = \"postgres://hbpw:<redacted>@127.0.0.1:{}/hbpw?sslmode=require\"",
            pg.port
        );
        assert!(
            out.contains(&shown),
            "{args:?}: --print-config should show {shown}:\n{out}"
        );
        assert_no_password("--print-config", &[&out, &err]);
    }
}

// ---------------------------------------------------------------------------
// b. A wrong password is retried, with backoff, until it is fixed.

#[test]
fn a_wrong_password_is_retried_without_showing_it_until_it_is_fixed() {
    let pg = password_cluster();
    let url = pg.url_as("hbpw", Some(SECRET), "hbpw", "sslmode=disable");
    let mut core = Core::builder().env("HONEYBEE_POSTGRES", &url).spawn();
    // Two refusals: the second waits 2 s.
    let err = wait_stderr(&core, "retrying in 2s", RETRY_T);
    assert!(!core.api().healthy(), "healthy without a database:\n{err}");
    assert!(core.is_running(), "the core gave up:\n{err}");
    assert!(
        err.contains("password authentication failed"),
        "stderr should say authentication failed:\n{err}"
    );
    assert!(
        err.contains("retrying in 1s"),
        "stderr should say it retries:\n{err}"
    );
    assert!(
        err.contains("postgres://hbpw:<redacted>@127.0.0.1"),
        "stderr should name the server without the password:\n{err}"
    );
    assert_no_password("while retrying", &[&err, &core.stdout()]);

    // The operator fixes the role's password: the core comes up on its own.
    pg.sql("postgres", &format!("ALTER ROLE hbpw PASSWORD '{SECRET}'"));
    assert!(
        core.wait_healthy(RETRY_T),
        "not healthy {RETRY_T:?} after the password was fixed:\n{}",
        core.stderr()
    );
    let (_conn, id) = core.enroll("after-the-fix");
    let stored = pg.sql(
        "hbpw",
        &format!("SELECT count(*) FROM nodes WHERE node_id = {}", id.node_id),
    );
    assert_eq!(stored.trim(), "1", "the node is not in the database");
    let metrics = core.metrics().text;
    let (status, _) = core.terminate(T);
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert_no_password("after the fix", &[&core.stderr(), &core.stdout(), &metrics]);
}

#[test]
fn sigterm_stops_a_core_that_waits_for_the_database() {
    let pg = password_cluster();
    let url = pg.url_as("hbpw", Some(SECRET), "hbpw", "sslmode=disable");
    let mut core = Core::builder().env("HONEYBEE_POSTGRES", &url).spawn();
    // Three refusals: the core now waits 8 s, longer than we allow it to
    // take to stop.
    wait_stderr(&core, "retrying in 8s", RETRY_T);
    let (status, took) = core.terminate(Duration::from_secs(5));
    let err = core.stderr();
    println!("SIGTERM while waiting for the database: {status} after {took:?}");
    assert!(
        status.success(),
        "a stop asked for is a clean stop (exit 0), also while waiting: {status}\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "the core panicked while stopping:\n{err}"
    );
    assert_no_password("stopping while retrying", &[&err, &core.stdout()]);
}

// ---------------------------------------------------------------------------
// c. A schema newer than the core's.

#[test]
fn a_database_with_a_newer_schema_is_refused_naming_both_versions() {
    let pg = Postgres::start();
    pg.create_database("hbnewer");
    let url = pg.url("hbnewer");
    let mut first = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    first.terminate(T);
    assert_eq!(
        pg.sql("hbnewer", "SELECT version FROM honeybee_schema")
            .trim(),
        SCHEMA,
        "the schema a core creates"
    );
    pg.sql("hbnewer", "UPDATE honeybee_schema SET version = 99");

    let mut second = Core::builder().env("HONEYBEE_POSTGRES", &url).spawn();
    let status = second.wait_exit(T).unwrap_or_else(|| {
        panic!(
            "a core on a newer schema still runs after {T:?}:\n{}",
            second.stderr()
        )
    });
    let err = second.stderr();
    assert!(!status.success(), "exit status {status}:\n{err}");
    assert!(
        err.contains("version 99") && err.contains(&format!("version {SCHEMA}")),
        "stderr should name the database's version 99 and the core's {SCHEMA}:\n{err}"
    );
    assert_eq!(
        pg.sql("hbnewer", "SELECT version FROM honeybee_schema")
            .trim(),
        "99",
        "the refused core changed the schema version"
    );
}

/// What schema version 4 added (spool epochs in the replay marks).
const UNDO_V4: &str = "ALTER TABLE event_seqs DROP COLUMN epoch";

/// What schema version 3 added (enrichment columns, summary tables).
const UNDO_V3: &str = "DROP TABLE rollup_hour; DROP TABLE rollup_day; DROP TABLE rollup_labels;
     ALTER TABLE events DROP COLUMN country, DROP COLUMN country_name, DROP COLUMN city,
         DROP COLUMN asn, DROP COLUMN as_org, DROP COLUMN net";

/// A version-2 database with events (before enrichment and the summary
/// tables) is migrated: the summaries are filled from the stored events, so
/// statistics over any range count them at once.
#[test]
fn a_version_2_database_gets_summaries_of_the_events_it_holds() {
    let pg = Postgres::start();
    pg.create_database("hbv2");
    let url = pg.url("hbv2");
    let mut first = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    let mut id = NodeIdentity::new("v2").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(first.node_addr);
    let now = now_unix().0;
    for (seq, ago) in [
        (1u64, 60i64),
        (2, 3 * 3600),
        (3, 3 * 86_400),
        (4, 3 * 86_400),
    ] {
        conn.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &format_rfc3339(now - ago, 0),
            Some(seq),
            json!({"src_ip": "203.0.113.9", "username": format!("u{}", seq.min(3))}),
        ));
    }
    conn.wait_event_ack(4, T);
    drop(conn);
    first.terminate(T);
    pg.sql("hbv2", UNDO_V4);
    pg.sql("hbv2", UNDO_V3);
    pg.sql("hbv2", "UPDATE honeybee_schema SET version = 2");
    let second = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    let err = wait_stderr(
        &second,
        &format!("migrated the database schema from version 2 to {SCHEMA}"),
        T,
    );
    assert!(
        err.contains("summary tables filled from 4 stored events"),
        "{err}"
    );
    let s = second
        .api()
        .get("/api/v1/stats?range=7d")
        .expect_status(200)
        .json();
    assert_eq!(s["totals"]["events"], 4, "{s}");
    assert_eq!(s["totals"]["events_in_window"], 4, "{s}");
    assert_eq!(
        s["top_usernames"][0],
        json!({"value": "u3", "count": 2}),
        "{s}"
    );
    let s = second
        .api()
        .get("/api/v1/stats?range=24h")
        .expect_status(200)
        .json();
    assert_eq!(s["totals"]["events_in_window"], 2, "{s}");
    let events = second.api().all_events(&[]);
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e["geo"].is_null()), "{events:?}");
}

/// A version-3 database (replay marks without spool epochs) is migrated:
/// its marks count as epoch 0, so a replay is still caught, and a node
/// with a new spool epoch is stored from seq 1 again.
#[test]
fn a_version_3_database_keeps_its_replay_marks() {
    let pg = Postgres::start();
    pg.create_database("hbv3");
    let url = pg.url("hbv3");
    let mut first = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    let mut id = NodeIdentity::new("v3").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(first.node_addr);
    let event = |id: &NodeIdentity, seq: u64| {
        id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.login.failed",
            &format_rfc3339(now_unix().0, 0),
            Some(seq),
            json!({"src_ip": "203.0.113.9"}),
        )
    };
    for seq in 1..=4 {
        conn.must_send(&event(&id, seq));
    }
    conn.wait_event_ack(4, T);
    drop(conn);
    first.terminate(T);
    pg.sql("hbv3", UNDO_V4);
    pg.sql("hbv3", "UPDATE honeybee_schema SET version = 3");
    let second = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    wait_stderr(
        &second,
        &format!("migrated the database schema from version 3 to {SCHEMA}"),
        T,
    );
    let (mut conn, ack) = id.login(second.node_addr, 0);
    assert!(ack.accepted, "{:?}", ack.message);
    conn.must_send(&event(&id, 4));
    conn.wait_event_ack(4, T);
    drop(conn);
    id.spool_epoch = Some(5);
    let (mut conn, ack) = id.login(second.node_addr, 1);
    assert!(ack.accepted, "{:?}", ack.message);
    conn.must_send(&event(&id, 1));
    conn.wait_event_ack(1, T);
    let nid = id.node_id.to_string();
    let deadline = std::time::Instant::now() + T;
    while second.api().all_events(&[("node_id", &nid)]).len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new epoch's seq 1 was not stored"
        );
        std::thread::sleep(POLL);
    }
    assert_eq!(
        pg.sql(
            "hbv3",
            &format!(
                "SELECT epoch, seq FROM event_seqs WHERE node_id = {}",
                id.node_id as i64
            )
        )
        .trim(),
        "5|1"
    );
    let dup = second
        .api()
        .metrics()
        .get("honeybee_events_duplicate_total", &[])
        .unwrap_or(0.0);
    assert_eq!(dup, 1.0, "the epoch-0 replay of seq 4");
}

/// A database a version-1 core made (what version 2 added taken away again,
/// a lockout recorded the version-1 way) is migrated by the next core,
/// keeping what it held.
#[test]
fn a_database_with_an_older_schema_is_migrated() {
    let pg = Postgres::start();
    pg.create_database("hbolder");
    let url = pg.url("hbolder");
    let mut first = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    first.terminate(T);
    pg.sql("hbolder", UNDO_V4);
    pg.sql("hbolder", UNDO_V3);
    pg.sql(
        "hbolder",
        "DROP TABLE routed_commands;
         ALTER TABLE lockouts DROP COLUMN lockouts;
         INSERT INTO lockouts (node_id, source, failures, window_start, locked_until)
             VALUES (7, '192.0.2.7', 0, 0,
                     (extract(epoch FROM now()) * 1000)::BIGINT + 3600000);
         UPDATE honeybee_schema SET version = 1",
    );
    let mut second = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    let err = wait_stderr(
        &second,
        &format!("migrated the database schema from version 1 to {SCHEMA}"),
        T,
    );
    assert!(!err.contains("created the database schema"), "{err}");
    assert_eq!(
        pg.sql("hbolder", "SELECT version FROM honeybee_schema")
            .trim(),
        SCHEMA
    );
    assert_eq!(
        pg.sql(
            "hbolder",
            "SELECT source, locked_until > 0, lockouts FROM lockouts WHERE node_id = 7"
        )
        .trim(),
        "192.0.2.7|t|0",
        "the version-1 lockout is kept"
    );
    assert_eq!(
        pg.sql("hbolder", "SELECT count(*) FROM routed_commands")
            .trim(),
        "0"
    );
    second.terminate(T);
    // The next start finds it current.
    let mut third = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    third.terminate(T);
    assert!(!third.stderr().contains("migrated"), "{}", third.stderr());
}

// ---------------------------------------------------------------------------
// d. Cores starting together on a fresh database.

#[test]
fn two_cores_starting_together_on_a_fresh_database_both_come_up() {
    let pg = Postgres::start();
    // A few rounds, each on a fresh database, for a few chances of a race.
    for round in 0..3 {
        let db = format!("hbrace{round}");
        pg.create_database(&db);
        let url = pg.url(&db);
        let mut cores: Vec<Core> = ["core-a", "core-b"]
            .iter()
            .map(|name| {
                Core::builder()
                    .env("HONEYBEE_POSTGRES", &url)
                    .args(["--core-name", name])
                    .spawn()
            })
            .collect();
        for (i, core) in cores.iter_mut().enumerate() {
            assert!(
                core.wait_healthy(T),
                "round {round}: core {i} did not come up:\n{}",
                core.stderr()
            );
        }
        assert_eq!(
            pg.sql(&db, "SELECT count(*), min(version) FROM honeybee_schema")
                .trim(),
            format!("1|{SCHEMA}"),
            "round {round}: one schema row, version {SCHEMA}"
        );
        let creators = cores
            .iter()
            .filter(|c| c.stderr().contains("created the database schema"))
            .count();
        assert_eq!(creators, 1, "round {round}: the schema is created once");
        // Both serve, into the one database.
        let ids: Vec<u64> = cores
            .iter()
            .map(|c| c.enroll(&format!("via-{round}")).1.node_id)
            .collect();
        let stored = pg.sql(
            &db,
            &format!(
                "SELECT count(*) FROM nodes WHERE node_id IN ({}, {})",
                ids[0], ids[1]
            ),
        );
        assert_eq!(stored.trim(), "2", "round {round}: both cores' nodes");
    }
}

// ---------------------------------------------------------------------------
// e. TLS to the database.

/// Waits until no core session is left on the server.
fn wait_no_core_sessions(pg: &Postgres) {
    wait_for("the core's sessions to end", T, POLL, || {
        pg.core_sessions().is_empty().then_some(())
    });
}

/// Starts a core on `url`, which must come up, and checks that every one of
/// its sessions on the server is encrypted; stops it.
#[track_caller]
fn assert_core_over_tls(pg: &Postgres, url: &str) {
    let mut core = Core::builder().env("HONEYBEE_POSTGRES", url).start();
    // A read, so that the readers' connection is open too.
    core.api().get("/api/v1/events").expect_status(200);
    let sessions = pg.core_sessions();
    println!("{url}: sessions (database, ssl, version) {sessions:?}");
    assert!(!sessions.is_empty(), "{url}: no session of the core");
    assert!(
        sessions
            .iter()
            .all(|(db, ssl, version)| *ssl && version == "TLSv1.3" && db == "hbtls"),
        "{url}: a session without TLS 1.3: {sessions:?}"
    );
    core.terminate(T);
    wait_no_core_sessions(pg);
}

/// Starts a core on `url`, which must be refused; returns its stderr once
/// it says it retries.
#[track_caller]
fn refused_core(url: &str) -> String {
    let mut core = Core::builder().env("HONEYBEE_POSTGRES", url).spawn();
    let err = wait_stderr(&core, "retrying in", RETRY_T);
    assert!(!core.api().healthy(), "{url}: healthy:\n{err}");
    if let Some(line) = err.lines().find(|l| l.contains("retrying in")) {
        println!("{line}");
    }
    core.terminate(T);
    err
}

#[test]
fn tls_to_the_database_in_each_sslmode() {
    let pg = Postgres::start();
    let dir = TempDir::new("honeybee-pg-tls");
    let pki = Pki::new(dir.path());
    pg.enable_tls(&pki.server.cert_path, &pki.server.key_path);
    pg.create_database("hbtls");
    pg.set_hba(&["hostssl hbtls all 127.0.0.1/32 trust"]);
    let ca = pki.server_ca_path.display().to_string();
    let url =
        |host: &str, query: &str| format!("postgres://honeybee@{host}:{}/hbtls{query}", pg.port);

    assert_core_over_tls(&pg, &url("127.0.0.1", "?sslmode=require"));
    // libpq's default, prefer, takes TLS when the server offers it.
    assert_core_over_tls(&pg, &url("127.0.0.1", ""));
    assert_core_over_tls(
        &pg,
        &url(
            "localhost",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
    );
    assert_core_over_tls(
        &pg,
        &url(
            "127.0.0.1",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
    );
    assert_core_over_tls(
        &pg,
        &url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}")),
    );

    // A CA that did not sign the server's certificate.
    let other_ca = pki.client_ca_path.display().to_string();
    for mode in ["verify-full", "verify-ca"] {
        let u = url(
            "localhost",
            &format!("?sslmode={mode}&sslrootcert={other_ca}"),
        );
        let err = refused_core(&u);
        assert!(
            err.to_lowercase().contains("certificate"),
            "{u}: the error should mention the certificate:\n{err}"
        );
    }

    // Without TLS the server's hostssl-only rule refuses the core.
    let u = url("127.0.0.1", "?sslmode=disable");
    let err = refused_core(&u);
    assert!(
        err.contains("pg_hba.conf") && err.contains("no encryption"),
        "{u}: the error should be the server's refusal of a plain connection:\n{err}"
    );
}

// ---------------------------------------------------------------------------
// f. The database crashes in the middle of a stream.

/// Reads EventAcks for `window`; every one must be for `node_id`.
fn acks_for(conn: &mut TestNode, node_id: u64, window: Duration) -> (Vec<EventAck>, bool) {
    let deadline = std::time::Instant::now() + window;
    let mut acks = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match conn.recv(left) {
            Ok(honeybee_proto::CoreMessage::EventAck(a)) => {
                assert_eq!(a.node_id, node_id, "EventAck for another node: {a:?}");
                acks.push(a);
            }
            Ok(_) => {}
            Err(RecvError::Timeout) => return (acks, true),
            Err(_) => return (acks, false),
        }
    }
}

#[test]
fn a_database_crash_mid_stream_loses_nothing_and_acknowledges_only_what_is_committed() {
    let pg = Postgres::start();
    pg.create_database("hbcrash");
    let core = Core::builder()
        .env("HONEYBEE_POSTGRES", &pg.url("hbcrash"))
        .start();
    let mut id = NodeIdentity::new("through-a-crash").with_capabilities(&[CAP_EVENT_ACK]);
    let mut conn = id.enroll(core.node_addr);
    let node_id = id.node_id;
    let base = base();
    const K: u64 = 100;
    const N: u64 = 300;
    let count = |upto: u64| {
        pg.sql(
            "hbcrash",
            &format!("SELECT count(*) FROM events WHERE node_id = {node_id} AND seq <= {upto}"),
        )
        .trim()
        .parse::<u64>()
        .expect("a count")
    };

    for seq in 1..=K {
        conn.must_send(&event(&id, base, seq));
    }
    let acks = conn.wait_event_ack(K, T);
    assert!(acks.iter().all(|a| a.seq <= K), "acks beyond K: {acks:?}");
    assert_eq!(count(K), K, "acknowledged but not in the database");

    pg.kill();
    for seq in K + 1..=N {
        if let Err(e) = conn.send(&event(&id, base, seq)) {
            println!("send of seq {seq} while the database was down failed: {e}");
            break;
        }
    }
    // While the database is down nothing more can be committed, so no
    // EventAck may cover more than K.
    let (down_acks, open) = acks_for(&mut conn, id.node_id, Duration::from_secs(3));
    assert!(
        down_acks.iter().all(|a| a.seq <= K),
        "acknowledged while the database was down: {down_acks:?}"
    );
    // A load balancer routes around a core that cannot store: 503, with
    // the reason.
    let deadline = Instant::now() + T;
    let health = loop {
        let health = http::request(core.api_addr, "GET", "/health", None, None);
        if health.as_ref().is_ok_and(|r| r.status == 503) || Instant::now() > deadline {
            break health;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match &health {
        Ok(r) => {
            println!(
                "GET /health while the database is down: {} {}",
                r.status,
                r.text()
            );
            assert_eq!(r.status, 503, "{}", r.text());
            assert!(r.text().contains("database"), "{}", r.text());
        }
        Err(e) => panic!("GET /health while the database is down: no answer: {e}"),
    }
    let events = http::request(
        core.api_addr,
        "GET",
        "/api/v1/events",
        Some(&core.api().token),
        None,
    );
    match &events {
        Ok(r) => println!(
            "GET /api/v1/events while the database is down: {} {}",
            r.status,
            r.text()
        ),
        Err(e) => println!("GET /api/v1/events while the database is down: no answer: {e}"),
    }
    assert!(
        health.is_ok(),
        "/health did not answer while the database was down"
    );
    println!("node connection open while the database was down: {open}");

    pg.restart();
    assert_eq!(
        count(K),
        K,
        "events acknowledged before the crash are gone after it"
    );

    // Until every event is acknowledged: on a closed connection the node
    // logs in again and resends what is not acknowledged, as an agent does.
    let mut acked = K;
    let mut logins = 0;
    let mut conn = Some(conn).filter(|_| open);
    wait_for(
        "every event acknowledged",
        Duration::from_secs(60),
        POLL,
        || {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => {
                    logins += 1;
                    assert!(logins <= 3, "the node had to log in again {logins} times");
                    totp::wait_for_step_margin(Duration::from_secs(3));
                    let (mut c, ack) = id.login(core.node_addr, 0);
                    assert!(ack.accepted, "login again: {:?}", ack.message);
                    id.learn(&ack);
                    for seq in acked + 1..=N {
                        c.must_send(&event(&id, base, seq));
                    }
                    conn.insert(c)
                }
            };
            match c.try_wait_event_ack(N, Duration::from_secs(2)) {
                Ok(acks) => {
                    acked = acked.max(acks.iter().map(|a| a.seq).max().unwrap_or(0));
                    Some(())
                }
                Err((e, acks)) => {
                    acked = acked.max(acks.iter().map(|a| a.seq).max().unwrap_or(0));
                    if !matches!(e, RecvError::Timeout) {
                        println!("node connection ended ({e}); acknowledged up to {acked}");
                        conn = None;
                    }
                    None
                }
            }
        },
    );
    println!("the node logged in again {logins} times");

    let row = pg.sql(
        "hbcrash",
        &format!(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events WHERE node_id = {}",
            id.node_id
        ),
    );
    assert_eq!(
        row.trim(),
        format!("{N}|{N}|1|{N}"),
        "every seq 1..={N} stored exactly once (count|distinct|min|max)"
    );
    let nid = id.node_id.to_string();
    let listed: BTreeSet<u64> = core
        .api()
        .all_events(&[("node_id", &nid)])
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(
        listed,
        (1..=N).collect::<BTreeSet<u64>>(),
        "the API lists every seq once"
    );
    // The fleet listener retries on its own back-off (at most 5 s apart), so
    // /health may lag the writer by that much, never more.
    let back = Instant::now();
    wait_for(
        "/health is 200 again",
        Duration::from_secs(15),
        POLL,
        || {
            let h = http::request(core.api_addr, "GET", "/health", None, None).ok()?;
            (h.status == 200).then_some(())
        },
    );
    println!(
        "/health was 200 again {:?} after every event was acknowledged",
        back.elapsed()
    );
    core.assert_serving("after the database came back");
    let err = core.stderr();
    assert!(
        err.contains("store: writing again"),
        "the writer never failed and recovered: the crash was not tested:\n{err}"
    );
    assert!(!err.contains("panicked"), "the core panicked:\n{err}");
}

// ---------------------------------------------------------------------------
// g. Passwords in normal operation.

#[test]
fn the_database_password_never_shows_in_metrics_or_logs() {
    let pg = password_cluster();
    pg.sql("postgres", &format!("ALTER ROLE hbpw PASSWORD '{SECRET}'"));
    let url = pg.url_as("hbpw", Some(SECRET), "hbpw", "sslmode=disable");
    // From the environment, and from the command line (which warns).
    let by_env = Core::builder().env("HONEYBEE_POSTGRES", &url).start();
    let by_flag = Core::builder().args(["--postgres", &url]).start();
    let mut texts = Vec::new();
    for (how, core) in [("env", &by_env), ("flag", &by_flag)] {
        let mut id = NodeIdentity::new(how).with_capabilities(&[CAP_EVENT_ACK]);
        let mut conn = id.enroll(core.node_addr);
        let base = base();
        for seq in 1..=10 {
            conn.must_send(&event(&id, base, seq));
        }
        conn.wait_event_ack(10, T);
        for path in [
            "/api/v1/nodes",
            "/api/v1/events",
            "/api/v1/stats",
            "/api/v1/modules",
        ] {
            texts.push(core.api().get(path).expect_status(200).text());
        }
        texts.push(core.metrics().text);
        let health =
            http::request(core.api_addr, "GET", "/health", None, None).expect("GET /health");
        texts.push(health.text());
        let err = core.stderr();
        assert!(
            err.contains("postgres://hbpw:<redacted>@127.0.0.1"),
            "{how}: the log should name the database without its password:\n{err}"
        );
    }
    let warning = "--postgres carries a password on the command line";
    assert!(
        by_flag.stderr().contains(warning),
        "a password in --postgres should be warned about:\n{}",
        by_flag.stderr()
    );
    assert!(
        !by_env.stderr().contains(warning),
        "HONEYBEE_POSTGRES is not the command line:\n{}",
        by_env.stderr()
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", by_env.pid().expect("pid")))
        .expect("read cmdline");
    texts.push(String::from_utf8_lossy(&cmdline).into_owned());
    for mut core in [by_env, by_flag] {
        core.terminate(T);
        texts.push(core.stderr());
        texts.push(core.stdout());
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_no_password("normal operation", &refs);
}

/// PostgreSQL text cannot hold NUL; a node that sends one in its name, a
/// pot id or an event type must not make the batch fail (and the writer
/// retry it forever, holding every other node's events back).
#[test]
fn nul_characters_from_a_node_do_not_stop_the_store() {
    let pg = Postgres::start();
    pg.create_database("nul");
    let core = Core::builder()
        .env("HONEYBEE_POSTGRES", &pg.url("nul"))
        .start();
    let mut id = NodeIdentity::new("nul\u{0}name").with_capabilities(&[CAP_EVENT_ACK]);
    let mut node = id.enroll(core.node_addr);
    let ts = format_rfc3339(now_unix().0, 0);
    node.must_send(&id.pot_event(
        "pot\u{0}1",
        "t\u{0}",
        "x.\u{0}y",
        &ts,
        Some(1),
        json!({"src_ip": "198.51.100.1", "username": "a\u{0}b"}),
    ));
    node.must_send(&id.pot_event("pot-2", "t", "x.y", &ts, Some(2), json!({})));
    let acks = node.wait_event_ack(2, T);
    assert!(acks.iter().any(|a| a.seq == 2), "{acks:?}");
    let stored = pg.sql(
        "nul",
        &format!(
            "SELECT string_agg(pot_id, ',' ORDER BY seq) FROM events WHERE node_id = {}",
            id.node_id as i64
        ),
    );
    assert_eq!(stored.trim(), "pot\u{fffd}1,pot-2");
    let name = pg.sql(
        "nul",
        &format!(
            "SELECT node_name FROM nodes WHERE node_id = {}",
            id.node_id as i64
        ),
    );
    assert_eq!(name.trim(), "nul\u{fffd}name");
    assert!(core.api().healthy(), "the store keeps writing");
}
