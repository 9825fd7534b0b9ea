//! Connection and node limits (behaviour.md, Port 9001): per-source pending
//! cap, global pending cap, per-source connect rate, node limit.

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use honeybee_tests::test_node::{peer_closed, tcp_connect};
use honeybee_tests::{poll_until, raise_fd_limit, Core, Metrics, NodeIdentity, TestNode};

const T: Duration = Duration::from_secs(5);

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn refused(m: &Metrics, reason: &str) -> f64 {
    m.labeled("honeybee_connections_refused_total", "reason", reason)
}

fn open_count(conns: &[TcpStream]) -> usize {
    conns.iter().filter(|s| !peer_closed(s)).count()
}

/// Registers a fresh node from `source`, retrying while the core still
/// refuses connections (slots free up asynchronously).
fn register_from(core: &Core, source: IpAddr, timeout: Duration) {
    let mut last = String::new();
    let ok = poll_until(timeout, Duration::from_millis(100), || {
        let id = NodeIdentity::new("after-the-storm");
        let mut n = match TestNode::connect_from(source, core.node_addr) {
            Ok(n) => n,
            Err(e) => {
                last = format!("connect: {e}");
                return None;
            }
        };
        match n.try_register(&id.first()) {
            Ok(ack) if ack.accepted => Some(()),
            Ok(ack) => {
                last = format!("refused: {:?}", ack.message);
                None
            }
            Err(e) => {
                last = e.to_string();
                None
            }
        }
    });
    assert!(ok.is_some(), "no node could register from {source}: {last}");
}

#[test]
fn two_thousand_idle_connections_from_one_source_are_capped() {
    let fds = raise_fd_limit(8192);
    let n: usize = 2000.min(fds.saturating_sub(300) as usize);
    assert!(n >= 500, "open-file limit {fds} too low for this test");
    let core = Core::start();
    let m0 = core.metrics();
    let addr = core.node_addr;

    let flood = std::thread::spawn(move || {
        let mut conns = Vec::with_capacity(n);
        let mut errors = 0usize;
        for _ in 0..n {
            match tcp_connect(Some(lo(1)), addr, None) {
                Ok(s) => conns.push(s),
                Err(_) => errors += 1,
            }
        }
        (conns, errors)
    });
    // During the flood: another source registers, the API answers.
    register_from(&core, lo(2), T);
    core.assert_serving("during a flood from 127.0.0.1");
    let (conns, errors) = flood.join().unwrap();

    let open = poll_until(T, Duration::from_millis(100), || {
        let open = open_count(&conns);
        (open <= 32).then_some(open)
    });
    assert!(
        open.is_some(),
        "{} of {n} idle connections from one source still open; max_pending_per_source is 32",
        open_count(&conns)
    );
    let m = core.metrics();
    let capped = refused(&m, "source_pending") + refused(&m, "source_rate")
        - refused(&m0, "source_pending")
        - refused(&m0, "source_rate");
    let expected = (n - errors).saturating_sub(32) as f64;
    eprintln!(
        "{n} connections from 127.0.0.1: {} still open, {capped} refused by per-source caps, {errors} connects failed",
        open_count(&conns)
    );
    assert!(
        capped >= expected,
        "refused by per-source caps: {capped}, expected at least {expected} ({errors} connects failed)"
    );
    register_from(&core, lo(2), T);
    core.assert_serving("after a flood from 127.0.0.1");
    drop(conns);
}

/// The global cap is a queue: beyond it the core stops accepting, the
/// newcomers wait in the listen backlog (bounded by the kernel), and each
/// is served in turn as places free, not refused. That is what a failover
/// needs (a dead core's nodes all arriving at one survivor) and it still
/// bounds what idle connections can make the core hold.
#[test]
fn beyond_the_global_pending_cap_newcomers_wait_and_are_then_served() {
    let core = Core::builder()
        .config("max_pending_connections = 50\n")
        .start();
    let m0 = core.metrics();
    let accepted = |m: &Metrics| m.get("honeybee_connections_total", &[]).unwrap_or(0.0);
    let mut conns = Vec::new();
    // Four networks (127.N.0.1): one network alone is held to a quarter.
    for src in 2..=5 {
        for _ in 0..20 {
            let source = IpAddr::V4(Ipv4Addr::new(127, src, 0, 1));
            conns.push(tcp_connect(Some(source), core.node_addr, None).expect("connect"));
        }
    }
    core.api()
        .wait_metric_at_least("honeybee_connections_accept_waits_total", &[], 1.0, T);
    // Held at the cap: the core took 50 and no more, refused none.
    let at_cap = poll_until(T, Duration::from_millis(100), || {
        let m = core.metrics();
        (accepted(&m) - accepted(&m0) >= 50.0).then_some(m)
    })
    .expect("the core did not accept up to its cap of 50");
    std::thread::sleep(Duration::from_millis(500));
    let m1 = core.metrics();
    assert_eq!(
        accepted(&m1) - accepted(&m0),
        50.0,
        "accepted beyond max_pending_connections = 50"
    );
    assert_eq!(
        refused(&m1, "too_many_pending"),
        refused(&at_cap, "too_many_pending"),
        "a connection beyond the cap was refused instead of waiting"
    );
    assert_eq!(
        core.api().get("/api/v1/nodes").status,
        200,
        "API while full"
    );
    // A newcomer waits (not closed) while the cap is full...
    let id = NodeIdentity::new("waiting");
    let mut late = TestNode::connect_from(lo(9), core.node_addr).unwrap();
    late.send(&id.first()).expect("send the registration");
    late.expect_open(Duration::from_secs(1), "a newcomer beyond the cap waits");
    // ... and is served on the same connection once places free.
    drop(conns);
    let ack = late.recv_ack(T).expect("an answer once the cap had room");
    assert!(ack.accepted, "the newcomer was refused: {:?}", ack.message);
    core.assert_serving("after the pending connections left");
}

#[test]
fn the_connect_rate_per_source_is_limited() {
    let core = Core::builder()
        .config("connect_rate_per_source = 5\n")
        .start();
    let before = refused(&core.metrics(), "source_rate");
    for _ in 0..40 {
        let s = tcp_connect(Some(lo(7)), core.node_addr, None);
        drop(s);
    }
    // burst is 2 x 5 = 10; the 40 connects take well under a second.
    core.api().wait_metric_at_least(
        "honeybee_connections_refused_total",
        &[("reason", "source_rate")],
        before + 25.0,
        T,
    );
    // Another source is not affected, and the first recovers.
    register_from(&core, lo(8), Duration::from_secs(1));
    register_from(&core, lo(7), T);
}

#[test]
fn the_node_limit_refuses_new_nodes_but_not_known_ones() {
    let core = Core::builder().config("max_nodes = 2\n").start();
    let (c1, id1) = core.enroll("one");
    let (_c2, _id2) = core.enroll("two");
    drop(c1);
    let before = core.metrics().labeled(
        "honeybee_registrations_refused_total",
        "reason",
        "node_limit",
    );
    let third = NodeIdentity::new("three");
    let mut c = TestNode::connect(core.node_addr).unwrap();
    let ack = c.register(&third.first());
    assert!(
        !ack.accepted,
        "a third node was accepted with max_nodes = 2"
    );
    assert_eq!(ack.message.as_deref(), Some("node limit reached"));
    c.expect_closed(T, "node limit");
    core.api().wait_metric_at_least(
        "honeybee_registrations_refused_total",
        &[("reason", "node_limit")],
        before + 1.0,
        T,
    );
    honeybee_tests::totp::wait_for_step_margin(Duration::from_secs(2));
    let (_c1, ack) = id1.login(core.node_addr, 0);
    assert!(
        ack.accepted,
        "a known node refused at the node limit: {:?}",
        ack.message
    );
}

#[test]
fn registered_connections_do_not_count_as_pending() {
    let core = Core::builder()
        .config("max_pending_per_source = 4\nmax_pending_connections = 8\n")
        .start();
    let mut held = Vec::new();
    for i in 0..12 {
        let mut id = NodeIdentity::new(&format!("held-{i}"));
        held.push(id.enroll(core.node_addr));
    }
    assert_eq!(core.api().nodes().len(), 12);
    core.assert_serving("with 12 registered connections and a pending cap of 4");
}
