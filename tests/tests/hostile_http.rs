//! The API port (9002) under the attacks of issue step 7 (F1–F3, F14),
//! replayed against the release core when one is built (`dist/` or
//! `target/release`, required in CI): an oversized `Content-Length`, endless
//! header lines, slow heads and slow bodies. After each the core still
//! answers `/health` within a second, its RSS grew by less than 64 MB, and
//! the attacker got a clear status, not a hang.

use std::net::SocketAddr;
use std::time::Duration;

use honeybee_tests::attacks::{raw_exchange, HealthProbe, Trickle, ATTACKER};
use honeybee_tests::Core;

/// RSS an attack may add to the core.
const RSS_BUDGET_KB: u64 = 64 * 1024;

fn release_core() -> Core {
    Core::builder().release().start()
}

fn assert_healthy(core: &Core, probe: HealthProbe, what: &str) {
    probe.finish().assert_healthy(what);
    assert_eq!(core.api().get("/health").status, 200, "{what}: core down");
}

fn head(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

fn api(core: &Core) -> SocketAddr {
    core.api_addr
}

#[test]
fn f1_a_content_length_near_memory_is_answered_413_and_the_core_lives() {
    let core = release_core();
    let before = core.rss_kb();
    let token = core.api().token.clone();
    for (method, path, auth) in [
        ("GET", "/health", String::new()),
        ("POST", "/api/v1/nodes/1/commands", String::new()),
        (
            "POST",
            "/api/v1/nodes/1/commands",
            format!("Authorization: Bearer {token}\r\n"),
        ),
    ] {
        for length in [
            "18446744073709551615",
            "99999999999999999999999",
            "17179869184",
            "1048577",
        ] {
            let seen = raw_exchange(
                api(&core),
                &head(method, path, &format!("{auth}Content-Length: {length}\r\n")),
                0,
                Duration::from_secs(5),
            );
            assert_eq!(
                seen.status,
                Some(413),
                "{method} {path} with Content-Length {length}: {}",
                seen.text
            );
        }
    }
    // One byte under the limit is a body the token holder may send.
    let body = format!("{{\"StopPot\": \"{}\"}}", "x".repeat(1024 * 1024 - 20));
    let r = core.api().post("/api/v1/nodes/1/commands", &body);
    assert_eq!(r.status, 404, "a 1 MiB command for an unknown node");
    assert_eq!(core.api().get("/health").status, 200);
    let grew = core.rss_kb().saturating_sub(before);
    assert!(grew < RSS_BUDGET_KB, "RSS grew by {grew} KiB");
    assert!(
        core.metrics()
            .value("honeybee_api_requests_refused_total", &[])
            >= 12.0
    );
}

#[test]
fn f2_endless_header_lines_are_cut_at_16_kib_and_memory_stays_flat() {
    let core = release_core();
    let before = core.rss_kb();
    let probe = HealthProbe::start(api(&core), Duration::from_millis(20));
    let attackers: Vec<_> = (0..3)
        .map(|_| {
            let addr = api(&core);
            std::thread::spawn(move || {
                raw_exchange(
                    addr,
                    b"GET /health HTTP/1.1\r\nX-Long: ",
                    512 * 1024 * 1024,
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    for a in attackers {
        let seen = a.join().unwrap();
        // The core stops reading at 16 KiB; what the kernel's buffers took
        // is all the attacker could send.
        assert!(
            seen.sent < 32 * 1024 * 1024,
            "the core took {} bytes of one header line",
            seen.sent
        );
        assert_eq!(seen.status, Some(431), "{}", seen.text);
    }
    assert_healthy(&core, probe, "endless header lines");
    let grew = core.rss_kb().saturating_sub(before);
    assert!(grew < RSS_BUDGET_KB, "RSS grew by {grew} KiB");
}

#[test]
fn f3_slow_heads_and_slow_bodies_never_block_other_requests() {
    let core = release_core();
    let token = core.api().token.clone();
    let before = core.rss_kb();
    let probe = HealthProbe::start(api(&core), Duration::from_millis(20));
    // Token holders trickling bodies: more than tiny_http has threads.
    let bodies = Trickle::start(
        ATTACKER,
        api(&core),
        8,
        head(
            "POST",
            "/api/v1/nodes/1/commands",
            &format!("Authorization: Bearer {token}\r\nContent-Length: 100000\r\n"),
        ),
        Duration::from_millis(100),
    );
    // Slowloris: heads that never end.
    let heads = Trickle::start(
        ATTACKER,
        api(&core),
        24,
        b"GET /health HTTP/1.1\r\nX-Slow: ".to_vec(),
        Duration::from_millis(100),
    );
    std::thread::sleep(Duration::from_secs(4));
    // Meanwhile the token holder's own command goes through at once.
    let r = core
        .api()
        .post("/api/v1/nodes/1/commands", r#"{"StopPot": "p"}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    // The slow heads are cut at their deadline (10 s) with 408.
    std::thread::sleep(Duration::from_secs(8));
    let heads = heads.finish();
    assert!(
        heads.iter().all(|s| s.status == Some(408)),
        "slow heads: {:?}",
        heads.iter().map(|s| s.status).collect::<Vec<_>>()
    );
    // The slow bodies at theirs (30 s after their heads).
    std::thread::sleep(Duration::from_secs(20));
    let bodies = bodies.finish();
    assert!(
        bodies.iter().all(|s| s.status == Some(408)),
        "slow bodies: {:?}",
        bodies.iter().map(|s| &s.text).collect::<Vec<_>>()
    );
    assert_healthy(&core, probe, "slow heads and bodies");
    let grew = core.rss_kb().saturating_sub(before);
    assert!(grew < RSS_BUDGET_KB, "RSS grew by {grew} KiB");
}

#[test]
fn bodies_without_the_token_and_framing_the_gate_cannot_check_are_refused_unread() {
    let core = release_core();
    let cases: [(&str, Vec<u8>, u16); 6] = [
        // No public route takes a body: it is not even read.
        (
            "unauthenticated body",
            head(
                "POST",
                "/api/v1/nodes/1/commands",
                "Content-Length: 1000\r\n",
            ),
            401,
        ),
        (
            "wrong token",
            head(
                "POST",
                "/api/v1/nodes/1/commands",
                "Authorization: Bearer nope\r\nContent-Length: 10\r\n",
            ),
            401,
        ),
        (
            "chunked",
            head("POST", "/api/v1/modules", "Transfer-Encoding: chunked\r\n"),
            411,
        ),
        (
            "two lengths",
            head("POST", "/x", "Content-Length: 1\r\nContent-Length: 2\r\n"),
            400,
        ),
        (
            "not HTTP",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n".to_vec(),
            400,
        ),
        (
            "too many headers",
            head("GET", "/health", &"X-A: 1\r\n".repeat(100)),
            431,
        ),
    ];
    for (what, bytes, want) in cases {
        let seen = raw_exchange(api(&core), &bytes, 0, Duration::from_secs(5));
        assert_eq!(seen.status, Some(want), "{what}: {}", seen.text);
    }
    // An ordinary request still works, keep-alive asked or not.
    let seen = raw_exchange(
        api(&core),
        &head("GET", "/health", "Connection: keep-alive\r\n"),
        0,
        Duration::from_secs(5),
    );
    assert_eq!(seen.status, Some(200), "{}", seen.text);
    assert!(seen.text.contains("\"status\":\"ok\""), "{}", seen.text);
}

#[test]
fn a_client_that_resets_mid_body_frees_everything_at_once() {
    let core = release_core();
    let token = core.api().token.clone();
    for _ in 0..50 {
        // From the attacker's address: the honest probe below has its own
        // per-source places.
        let mut s = honeybee_tests::attacks::connect_from(ATTACKER, api(&core)).unwrap();
        use std::io::Write;
        // The gate may already have shut an attacker out (per-source caps):
        // a refused write is an outcome, not a test failure.
        let _ = s.write_all(&head(
            "POST",
            "/api/v1/nodes/1/commands",
            &format!("Authorization: Bearer {token}\r\nContent-Length: 500000\r\n"),
        ));
        let _ = s.write_all(&[b'x'; 1000]);
        // A reset, not a close.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    }
    let probe = HealthProbe::start(api(&core), Duration::from_millis(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_healthy(&core, probe, "after 50 resets mid-body");
    let r = core
        .api()
        .post("/api/v1/nodes/1/commands", r#"{"StopPot": "p"}"#);
    assert_eq!(r.status, 404);
}
