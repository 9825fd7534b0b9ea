//! The event socket only takes a pot's events from the pot (F10,
//! docs/protocol.md §8): a connection must open with the token the supervisor
//! gave the pot in `HONEYBEE_POT_TOKEN`, within a few seconds, or it is
//! closed; its events are that pot's whatever the lines claim; idle and
//! unauthenticated connections cannot fill the socket and starve a pot.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{
    connect_as_pot, connect_event_socket, cowrie_line, send_events, token_line,
};
use honeybee_tests::test_pot::start_token_pot;
use honeybee_tests::{Agent, Core, TestPot, TestPotstore};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);
/// The agent's deadline for the token line is 5 s; this leaves slack.
const CLOSED_WITHIN: Duration = Duration::from_secs(12);

fn store(core: &Core) -> TestPotstore {
    TestPotstore::new(core.workspace().path().join("potstore"))
        .with(TestPot::emitter("emitter"))
        .with(TestPot::sleeper("relay"))
}

/// True once the agent closed `s` (EOF or reset) within `within`; false if
/// it still held it open then.
fn closed_by_agent(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn events_of(core: &Core, key: &str, value: &str) -> Vec<Value> {
    core.api().all_events(&[(key, value)])
}

#[test]
fn idle_connections_and_a_spoofer_cannot_stop_a_real_pots_events() {
    // The shipped builds when there are (CI: dist/), as an attacker meets them.
    let core = Core::builder().release().start();
    let store = store(&core);
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(store.path())
        .release()
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let addr = agent.event_addr();
    let rss_before = agent.rss_kb().expect("agent RSS");

    // 64 connections that never say anything, opened before the pot starts.
    let mut idle: Vec<TcpStream> = (0..64).map(|_| connect_event_socket(addr, T)).collect();
    // A local process writing as the pot: without a token, with a wrong
    // one, and with a token line naming nothing, over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let tries = Arc::new(AtomicU64::new(0));
    let spoofer = {
        let (stop, tries) = (stop.clone(), tries.clone());
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    continue;
                };
                let mut spoof = json!({"eventid": "spoof.event", "pot_id": "em-01",
                                       "sensor": "em-01", "src_ip": "192.0.2.66", "n": k});
                let text = match k % 3 {
                    0 => format!("{spoof}\n{spoof}\n"),
                    1 => format!("{}\n{spoof}\n", token_line(&"0".repeat(64))),
                    _ => {
                        spoof["token"] = json!("not-a-token");
                        format!("{spoof}\n")
                    }
                };
                let _ = s.write_all(text.as_bytes());
                k += 1;
                tries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    core.api().command(
        id,
        &json!({"InstallPot": {"pot_id": "em-01", "honeypot_type": "emitter",
                               "config": {"burst": "50", "interval": "0.2"},
                               "auto_start": true}}),
    );
    // The pot's burst and its ticks arrive, all of them its own.
    let deadline = Instant::now() + T;
    let events = loop {
        let events = events_of(&core, "pot_id", "em-01");
        if events.len() >= 60 {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "only {} events of the real pot arrived",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let burst = events
        .iter()
        .filter(|e| e["event_type"] == "testpot.burst")
        .count();
    assert_eq!(burst, 50, "the whole burst arrived");
    assert!(events.iter().all(|e| e["event_type"]
        .as_str()
        .unwrap_or("")
        .starts_with("testpot.")));

    // Every idle connection was closed by the agent.
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_agent(s, CLOSED_WITHIN),
            "idle connection {i} still open after {CLOSED_WITHIN:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    spoofer.join().expect("spoofer");
    assert!(tries.load(Ordering::Relaxed) > 100, "the spoofer ran");
    // Let the last spoofed lines reach the agent and the core, if they could.
    std::thread::sleep(Duration::from_secs(2));
    let spoofed = events_of(&core, "event_type", "spoof.event");
    assert!(spoofed.is_empty(), "spoofed lines were stored: {spoofed:?}");
    // The attack left the agent's memory where it was (a few MB at most).
    let grew = agent
        .rss_kb()
        .expect("agent RSS")
        .saturating_sub(rss_before);
    assert!(grew < 4 * 1024, "the agent's RSS grew by {grew} KiB");
}

#[test]
fn a_connection_writes_only_as_the_pot_whose_token_it_presented() {
    let core = Core::start();
    let store = store(&core);
    let agent = Agent::full(core.node_addr)
        .workspace(core.workspace())
        .potstore(store.path())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let addr = agent.event_addr();
    let a = start_token_pot(core.api(), id, &store, "relay", "pot-a");
    let b = start_token_pot(core.api(), id, &store, "relay", "pot-b");
    assert_ne!(a, b);

    // pot-a claims to be pot-b, in pot_id and in sensor: it is still pot-a.
    let mut claim = json!({"eventid": "relay.claim", "pot_id": "pot-b", "sensor": "pot-b",
                           "src_ip": "192.0.2.1", "token": a});
    let plain = cowrie_line("pot-b", "relay.plain", "192.0.2.2", 1);
    // A line carrying pot-b's token on pot-a's connection is dropped.
    let mut crossed = claim.clone();
    crossed["eventid"] = json!("relay.crossed");
    crossed["token"] = json!(b);
    send_events(addr, &a, &[claim.to_string(), plain, crossed.to_string()]);
    // The token may also open a connection as a field of the first event.
    claim["eventid"] = json!("relay.first");
    let mut s = connect_event_socket(addr, T);
    s.write_all(format!("{claim}\n").as_bytes()).expect("write");
    drop(s);

    let deadline = Instant::now() + T;
    loop {
        let events = core
            .api()
            .all_events(&[("node_id", id.to_string().as_str())]);
        if events.len() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let events = core
        .api()
        .all_events(&[("node_id", id.to_string().as_str())]);
    let mut types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    types.sort();
    assert_eq!(types, ["relay.claim", "relay.first", "relay.plain"]);
    for e in &events {
        assert_eq!(e["pot_id"], "pot-a", "{e}");
        assert_eq!(e["pot_type"], "relay", "{e}");
        assert!(e["data"].get("token").is_none(), "a token was stored: {e}");
        let text = e.to_string();
        assert!(!text.contains(&a) && !text.contains(&b), "{text}");
    }

    // A pot holds at most 4 connections: a fifth pushes out its oldest,
    // and leaves other pots' connections alone.
    let mut other = connect_as_pot(addr, &b, T);
    let mut mine: Vec<TcpStream> = (0..4).map(|_| connect_as_pot(addr, &a, T)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let _fifth = connect_as_pot(addr, &a, T);
    assert!(
        closed_by_agent(&mut mine[0], Duration::from_secs(5)),
        "the oldest connection of pot-a was not closed"
    );
    assert!(
        !closed_by_agent(&mut mine[1], Duration::from_millis(300)),
        "a newer connection of pot-a was closed"
    );
    assert!(
        !closed_by_agent(&mut other, Duration::from_millis(300)),
        "pot-b lost its connection to pot-a's"
    );
    other
        .write_all(format!("{}\n", cowrie_line("x", "relay.b", "192.0.2.3", 2)).as_bytes())
        .expect("write");
    let b_events = honeybee_tests::wait_for("pot-b's event", T, Duration::from_millis(100), || {
        let e = events_of(&core, "pot_id", "pot-b");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(b_events.len(), 1, "{b_events:?}");
    assert_eq!(b_events[0]["event_type"], "relay.b");
    assert_eq!(b_events[0]["pot_type"], "relay");
}
