//! Module sessions on the stream port (docs/protocol.md §7): each input line is
//! decoded as a `ModuleMessage` and handed to `ModuleSession::on_message`
//! against a core with one registered node (SQLite store in a temporary
//! directory, made once per process).
//!
//! Promises checked: no panic; nothing but a refusal reaches a session that
//! has not presented the API token; a wrong token always closes; a session
//! is closed after `BackendDrop`; blocking work (node removal, event pages)
//! is only ever asked for by a registered session, with a page size within
//! 1..=1000. Blocking steps are not run: they are store calls covered by the
//! store's own tests, and removing the node would make runs depend on order.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use honeybee_core::bus::Bus;
use honeybee_core::clock::Clock;
use honeybee_core::config::Enrollment;
use honeybee_core::metrics::Metrics;
use honeybee_core::node::lockout::LockoutPolicy;
use honeybee_core::node::registry::{Policy, Registry};
use honeybee_core::store::{sqlite, EventStore, NodeStore};
use honeybee_core::stream::session::{Blocking, ModuleContext, ModuleSession, Step};
use honeybee_proto::{decode, BackendResponse, ModuleMessage, NodeRegistration, NodeType};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "secret-token";

fn context() -> ModuleContext {
    let dir = std::env::temp_dir().join(format!("honeybee-fuzz-module-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let store = Arc::new(sqlite::open(&dir.join("fuzz.db")).expect("sqlite store"));
    let metrics = Arc::new(Metrics::default());
    let bus = Arc::new(Bus::new());
    let policy = Policy {
        enrollment: Enrollment::Open,
        enrollment_token: String::new(),
        max_nodes: 10,
        heartbeat_interval: Duration::from_secs(30),
        lockout: LockoutPolicy {
            failures: 5,
            window: Duration::from_secs(300),
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        },
    };
    let registry = Registry::load(
        store.clone() as Arc<dyn NodeStore>,
        metrics.clone(),
        bus.clone(),
        policy,
        Clock::new(),
        Arc::new(honeybee_core::fleet::Alone::new("fuzz".into())),
    )
    .expect("registry");
    let reg = NodeRegistration {
        node_id: 42,
        node_name: "edge-42".into(),
        address: "127.0.0.1".into(),
        port: 8080,
        node_type: NodeType::Full,
        totp_code: None,
        enrollment_token: None,
        agent_version: None,
        capabilities: vec![],
        spool_epoch: None,
    };
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);
    let accepted = registry.register(&reg, peer).expect("registration");
    futures_lite::future::block_on(accepted.receipt.committed()).expect("committed");
    // The outbox is dropped: node 42 is known but not connected.
    ModuleContext {
        registry: Arc::new(registry),
        events: store as Arc<dyn EventStore>,
        bus,
        metrics,
        token: TOKEN.into(),
    }
}

thread_local! {
    static CTX: &'static ModuleContext = Box::leak(Box::new(context()));
}

fn refusal(step: &Step) -> bool {
    matches!(
        step,
        Step::Close | Step::ReplyAndClose(BackendResponse::Failure(_))
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((first, lines)) = data.split_first() else {
        return;
    };
    CTX.with(|ctx| {
        let mut session = if first & 1 == 1 {
            ModuleSession::authorised()
        } else {
            ModuleSession::new()
        };
        for line in lines.split(|&b| b == b'\n') {
            let msg = decode::<ModuleMessage>(line);
            let was_registered = session.registered();
            let kind = match &msg {
                Ok(ModuleMessage::BackendRegistration(r)) => Some(r.token == TOKEN),
                _ => None,
            };
            let is_drop = matches!(msg, Ok(ModuleMessage::BackendDrop));
            let step = session.on_message(msg, ctx);
            match kind {
                Some(true) => {
                    assert!(session.registered());
                    assert!(matches!(step, Step::Reply(BackendResponse::Success { .. })));
                }
                Some(false) => assert!(refusal(&step), "a wrong token got {step:?}"),
                None if !was_registered => {
                    assert!(refusal(&step), "an unregistered session got {step:?}");
                    assert!(!session.registered());
                }
                None => {}
            }
            if is_drop {
                assert!(matches!(step, Step::Close));
            }
            if let Step::Blocking(Blocking::Query(f)) = &step {
                assert!((1..=1000).contains(&f.limit), "limit {}", f.limit);
            }
            if matches!(step, Step::Close | Step::ReplyAndClose(_)) {
                return;
            }
        }
    });
});
