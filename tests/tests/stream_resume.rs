//! Resuming the live stream with a cursor (docs/protocol.md §7, `Subscribe.cursor`):
//! every `PotEvent` the stream sends carries its cursor; a subscriber that
//! comes back with the last one it saw gets everything stored after it, then
//! live events, in order and none twice, also while events keep arriving.
//! With `HONEYBEE_TEST_POSTGRES=1` the same runs on PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_proto::{
    encode, BackendCommand, BackendRegistration, BackendType, Envelope, ModuleMessage, Subscribe,
};
use honeybee_tests::{Core, NodeIdentity, TestNode};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

/// A raw NDJSON subscriber that keeps each event's cursor.
struct Subscriber {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Subscriber {
    fn new(core: &Core, cursor: Option<String>) -> Subscriber {
        let stream = TcpStream::connect(core.stream_addr).expect("connect to the stream port");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut s = Subscriber { stream, reader };
        s.send(ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: "resume-test".into(),
            backend_type: BackendType::Custom("test".into()),
            token: core.api().token.clone(),
        }));
        s.expect_success();
        s.send(ModuleMessage::BackendCommand(BackendCommand::Subscribe(
            Subscribe {
                topics: vec!["events".into()],
                filter: None,
                cursor,
            },
        )));
        s.expect_success();
        s
    }

    fn send(&mut self, m: ModuleMessage) {
        self.stream
            .write_all(&encode(&Envelope::new(m)))
            .expect("write");
    }

    fn line(&mut self, timeout: Duration) -> Option<Value> {
        self.stream.set_read_timeout(Some(timeout)).ok()?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).ok(),
            _ => None,
        }
    }

    #[track_caller]
    fn expect_success(&mut self) {
        let v = self.line(T).expect("a response");
        assert!(
            v["message"]["BackendResponse"].get("Success").is_some(),
            "expected success: {v}"
        );
    }

    /// (seq, cursor) of each event until `last_seq` arrived.
    #[track_caller]
    fn events_until(&mut self, last_seq: u64) -> Vec<(u64, String)> {
        let deadline = Instant::now() + T;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let Some(v) = self.line(Duration::from_millis(500)) else {
                continue;
            };
            let e = &v["message"]["PotEvent"];
            if e.is_null() {
                panic!("unexpected message while waiting for events: {v}");
            }
            let seq = e["seq"].as_u64().expect("seq");
            let cursor = v["cursor"].as_str().expect("every event carries a cursor");
            got.push((seq, cursor.to_string()));
            if seq == last_seq {
                return got;
            }
        }
        panic!("seq {last_seq} not received; got {got:?}");
    }
}

fn send(node: &mut TestNode, id: &NodeIdentity, seqs: std::ops::RangeInclusive<u64>) {
    let ts = format_rfc3339(now_unix().0, 0);
    for seq in seqs {
        node.must_send(&id.pot_event(
            "cowrie-01",
            "cowrie",
            "cowrie.session.connect",
            &ts,
            Some(seq),
            json!({"src_ip": "198.51.100.4", "n": seq}),
        ));
    }
}

fn seqs(events: &[(u64, String)]) -> Vec<u64> {
    events.iter().map(|e| e.0).collect()
}

#[test]
fn a_subscriber_resumes_after_its_cursor_with_nothing_missed_and_nothing_twice() {
    let core = Core::start();
    let mut id = NodeIdentity::new("resumer").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(core.node_addr);

    let mut first = Subscriber::new(&core, None);
    send(&mut node, &id, 1..=100);
    let seen = first.events_until(100);
    assert_eq!(seqs(&seen), (1..=100).collect::<Vec<_>>());
    let cursors: Vec<i64> = seen.iter().map(|e| e.1.parse().expect("numeric")).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors grow in commit order"
    );
    // It goes away after event 40; 41..100 were sent to it but it did not
    // process them, and 101..400 arrive while it is gone.
    let resume_at = seen[39].1.clone();
    drop(first);
    send(&mut node, &id, 101..=400);
    node.wait_event_ack(400, T);

    // Back with the cursor of event 40: 41..400 from the store, then live.
    let mut back = Subscriber::new(&core, Some(resume_at));
    send(&mut node, &id, 401..=450);
    let got = back.events_until(450);
    assert_eq!(
        seqs(&got),
        (41..=450).collect::<Vec<_>>(),
        "replay then live, in order, none twice"
    );

    // Events keep arriving during a resume: still none missed, none twice.
    let sender = {
        let mut node = node;
        let id = id.clone();
        std::thread::spawn(move || {
            for chunk in 0..20u64 {
                let from = 451 + chunk * 50;
                send(&mut node, &id, from..=from + 49);
                std::thread::sleep(Duration::from_millis(20));
            }
            node.wait_event_ack(1450, T);
            node
        })
    };
    let mut during = Subscriber::new(&core, Some(got[9].1.clone())); // after seq 50
    let all = during.events_until(1450);
    assert_eq!(seqs(&all), (51..=1450).collect::<Vec<_>>());
    sender.join().expect("sender");

    // A subscriber without a cursor gets live events only; a bad cursor is
    // refused with a reason.
    let mut s = Subscriber::new(&core, None);
    s.send(ModuleMessage::BackendCommand(BackendCommand::Subscribe(
        Subscribe {
            topics: vec!["events".into()],
            filter: None,
            cursor: Some("yesterday".into()),
        },
    )));
    let v = s.line(T).expect("an answer");
    let why = v["message"]["BackendResponse"]["Failure"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("invalid cursor"), "{v}");
}
