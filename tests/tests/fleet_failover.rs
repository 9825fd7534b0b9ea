//! Several cores behind a real HAProxy over one real PostgreSQL, as the
//! README's "Several cores" sets them up: ten real agents stream 20,000
//! events through HAProxy, one core is killed with SIGKILL mid-stream, the
//! agents reconnect to the survivor, every `seq` is stored exactly once, and
//! commands still reach every node.

use std::io::Write;
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{connect_as_pot, cowrie_line};
use honeybee_tests::haproxy::{Backend, Haproxy, TRUSTED_PROXY};
use honeybee_tests::postgres::Postgres;
use honeybee_tests::test_pot::start_token_pot;
use honeybee_tests::{Agent, Api, Core, TestPot, TestPotstore};
use nix::sys::signal::Signal;

const AGENTS: usize = 10;
const PER_AGENT: u64 = 2_000;
const T: Duration = Duration::from_secs(60);

fn core(pg: &Postgres, name: &str, token: &str) -> Core {
    Core::builder()
        .api_token(token)
        .env("HONEYBEE_POSTGRES", &pg.url("fleet"))
        .args(["--core-name", name, "--trusted-proxy", TRUSTED_PROXY])
        .args(["--heartbeat-interval", "5"])
        .start()
}

/// Writes `n` events from `first` at about 1,000 per second as the pot.
fn sender(addr: std::net::SocketAddr, token: String, n: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut sock = connect_as_pot(addr, &token, T);
        let mut i = 0;
        while i < n {
            let mut bytes = String::new();
            for k in i..(i + 50).min(n) {
                bytes.push_str(&cowrie_line(
                    "relay-1",
                    "cowrie.login.failed",
                    "203.0.113.5",
                    k,
                ));
                bytes.push('\n');
            }
            sock.write_all(bytes.as_bytes())
                .expect("event socket write");
            i += 50;
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[test]
fn a_core_killed_behind_haproxy_loses_no_event_and_no_node() {
    let pg = Postgres::start();
    pg.create_database("fleet");
    let token = format!("failover-{}", std::process::id());
    let mut cores = [core(&pg, "core-a", &token), core(&pg, "core-b", &token)];
    let lb = Haproxy::start(&[Backend::of(&cores[0]), Backend::of(&cores[1])]);
    let api = Api::new(lb.api_addr, token.clone());

    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let store = TestPotstore::new(cores[0].workspace().path().join(format!("potstore-{i}")))
            .with(TestPot::sleeper("relay"));
        let agent = Agent::full(lb.node_addr)
            .name(&format!("agent-{i}"))
            .potstore(store.path())
            .start();
        let id = agent.node_id();
        api.wait_status(id, "Running", T);
        let pot_token = start_token_pot(&api, id, &store, "relay", "relay-1");
        agents.push((agent, store, id, pot_token));
    }
    let spread: Vec<String> = agents
        .iter()
        .map(|(_, _, id, _)| {
            api.node(*id)
                .and_then(|n| n["core_name"].as_str().map(String::from))
                .unwrap_or_default()
        })
        .collect();
    eprintln!("agents per core before the kill: {spread:?}");
    let victim = if spread.iter().filter(|c| *c == "core-a").count() >= AGENTS / 2 {
        0
    } else {
        1
    };

    let senders: Vec<_> = agents
        .iter()
        .map(|(agent, _, _, t)| sender(agent.event_addr(), t.clone(), PER_AGENT))
        .collect();
    let stored = |pg: &Postgres| -> u64 {
        pg.sql("fleet", "SELECT count(*) FROM events")
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + T;
    while stored(&pg) < 4_000 {
        assert!(Instant::now() < deadline, "the stream did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Instant::now();
    cores[victim].stop_with(Signal::SIGKILL, T);
    let survivor = &cores[1 - victim];
    let survivor_name = if victim == 0 { "core-b" } else { "core-a" };
    for s in senders {
        s.join().expect("sender");
    }

    // Every agent comes back, on the survivor.
    for (_, _, id, _) in &agents {
        survivor.api().wait_node(*id, Duration::from_secs(90), |n| {
            n["connected"] == true && n["core_name"] == survivor_name
        });
    }
    eprintln!(
        "all {AGENTS} agents registered on {survivor_name} {:?} after the kill",
        killed.elapsed()
    );

    // Every event once.
    let want = AGENTS as u64 * PER_AGENT;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored(&pg) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let counts = pg.sql(
        "fleet",
        "SELECT count(*), count(DISTINCT (node_id, seq)), count(DISTINCT node_id) FROM events",
    );
    assert_eq!(
        counts.trim(),
        format!("{want}|{want}|{AGENTS}"),
        "events stored (all, distinct node+seq, nodes)"
    );

    // Commands through HAProxy still reach every node: each installs a
    // second pot, which starts.
    for (_, store, id, _) in &agents {
        let t = start_token_pot(&api, *id, store, "relay", "relay-2");
        assert!(!t.is_empty());
    }
    drop(lb);
}
