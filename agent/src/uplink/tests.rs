//! The uplink's decisions without a core: what follows a session, and what
//! the reader does with each message, fed from memory.

use std::path::PathBuf;

use futures_lite::io::Cursor;
use honeybee_proto::{encode, EventAck, NodeCommand, PotEvent};

use super::*;
use crate::spool::Spool;

mod register;

/// Jitter draws at the top of the range: each delay is its whole step.
const LONGEST: f64 = 1.0;

fn lost() -> End {
    End::Lost("closed by the core".into())
}

fn delay(next: Next) -> f64 {
    match next {
        Next::After(d) => d.as_secs_f64(),
        other => panic!("expected a delay, got {other:?}"),
    }
}

#[test]
fn failed_sessions_wait_longer_each_time_up_to_a_minute() {
    let mut r = Reconnect::new();
    let refused = End::Refused("invalid TOTP code".into());
    let delays: Vec<f64> = (0..8)
        .map(|i| {
            let end = if i % 2 == 0 { lost() } else { refused.clone() };
            delay(r.after(&end, LONGEST))
        })
        .collect();
    assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]);
}

#[test]
fn a_registered_session_starts_the_delays_again() {
    let mut r = Reconnect::new();
    for _ in 0..5 {
        r.after(&lost(), LONGEST);
    }
    r.registered();
    assert_eq!(delay(r.after(&lost(), LONGEST)), 1.0);
    assert_eq!(delay(r.after(&lost(), LONGEST)), 2.0);
    // Jitter takes at most half a step off.
    assert_eq!(delay(r.after(&lost(), 0.0)), 2.0);
}

#[test]
fn a_restart_reconnects_at_once_and_a_stop_never() {
    let mut r = Reconnect::new();
    r.after(&lost(), LONGEST);
    assert_eq!(r.after(&End::Restart, LONGEST), Next::Now);
    assert_eq!(r.after(&End::Stop, LONGEST), Next::Stop);
    // Neither counts as a failure.
    assert_eq!(delay(r.after(&lost(), LONGEST)), 2.0);
}

/// Shared state around a fresh spool holding events 1..=`events`, all sent.
fn shared_with_sent(name: &str, events: u64) -> (Shared, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hb-uplink-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spool = Spool::open(&dir, 1 << 20, 1024).unwrap();
    spool.push_all(9, (0..events).map(event).collect()).unwrap();
    let mut out = Vec::new();
    while spool.next_batch(&mut out, 100) > 0 {}
    (Shared::new(9, spool, 30), dir)
}

fn event(i: u64) -> PotEvent {
    let mut data = serde_json::Map::new();
    data.insert("i".into(), i.into());
    PotEvent {
        node_id: 0,
        pot_id: "p".into(),
        pot_type: "t".into(),
        event_type: "t.x".into(),
        timestamp: "2026-11-26T00:00:00Z".into(),
        seq: None,
        data,
    }
}

fn ack(seq: u64) -> Vec<u8> {
    encode(&Envelope::new(CoreMessage::EventAck(EventAck {
        node_id: 9,
        seq,
    })))
}

fn command(c: Command) -> Vec<u8> {
    encode(&Envelope::new(CoreMessage::NodeCommand(NodeCommand {
        node_id: 9,
        command: c,
    })))
}

/// Runs the reader over `input` (then end of stream) as the core's side.
fn read_all(shared: &Shared, input: Vec<u8>) -> End {
    let stream: Box<dyn Stream> = Box::new(Cursor::new(input));
    let (mut reader, _writer) = futures_lite::io::split(stream);
    let mut decoder = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    future::block_on(read_loop(shared, &mut reader, &mut decoder))
}

/// The seqs the spool sends next, in order.
fn unsent(shared: &Shared) -> Vec<u64> {
    let mut out = Vec::new();
    while shared.spool.borrow_mut().next_batch(&mut out, 100) > 0 {}
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| match decode::<NodeMessage>(l).unwrap() {
            NodeMessage::PotEvent(e) => e.seq.unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn acks_trim_the_spool_and_the_rest_is_sent_again_in_order() {
    let (shared, dir) = shared_with_sent("acks", 10);
    let input = [ack(3), ack(6)].concat();
    assert_eq!(read_all(&shared, input), lost());
    assert_eq!(shared.spool.borrow().acked(), 6);
    assert_eq!(shared.spool.borrow().pending(), 4);
    assert!(unsent(&shared).is_empty(), "sent once per connection");
    // The next connection rewinds: what was not acknowledged, in order.
    shared.spool.borrow_mut().rewind();
    assert_eq!(unsent(&shared), [7, 8, 9, 10]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_old_or_duplicate_ack_changes_nothing() {
    let (shared, dir) = shared_with_sent("old-ack", 10);
    let input = [ack(7), ack(7), ack(2), ack(0)].concat();
    read_all(&shared, input);
    assert_eq!(shared.spool.borrow().acked(), 7);
    shared.spool.borrow_mut().rewind();
    assert_eq!(unsent(&shared), [8, 9, 10]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_ack_past_what_was_sent_covers_only_what_exists() {
    let (shared, dir) = shared_with_sent("future-ack", 4);
    read_all(&shared, ack(1000));
    assert_eq!(shared.spool.borrow().acked(), 4);
    // Events spooled later still get sent.
    shared
        .spool
        .borrow_mut()
        .push_all(9, vec![event(5)])
        .unwrap();
    assert_eq!(unsent(&shared), [5]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unreadable_line_is_skipped_not_fatal() {
    let (shared, dir) = shared_with_sent("junk", 5);
    let input = [b"{not json\n".to_vec(), ack(5)].concat();
    assert_eq!(read_all(&shared, input), lost());
    assert_eq!(shared.spool.borrow().acked(), 5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_restart_command_ends_the_session_before_later_lines() {
    let (shared, dir) = shared_with_sent("restart", 5);
    let input = [ack(1), command(Command::Restart), ack(5)].concat();
    assert_eq!(read_all(&shared, input), End::Restart);
    assert_eq!(shared.spool.borrow().acked(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

fn heartbeat(value: serde_json::Value) -> Vec<u8> {
    let mut settings = serde_json::Map::new();
    settings.insert("heartbeat_interval".into(), value);
    command(Command::UpdateConfig(Some(settings)))
}

#[test]
fn update_config_takes_a_heartbeat_only_within_one_second_to_an_hour() {
    let (shared, dir) = shared_with_sent("heartbeat", 0);
    read_all(&shared, heartbeat(10.into()));
    assert_eq!(shared.heartbeat_secs.get(), 10);
    for refused in [0.into(), 3601.into(), (-5).into(), "20".into()] {
        read_all(&shared, heartbeat(refused));
        assert_eq!(shared.heartbeat_secs.get(), 10);
    }
    read_all(&shared, heartbeat(3600.into()));
    assert_eq!(shared.heartbeat_secs.get(), 3600);
    // Each UpdateConfig is answered with the node's status.
    let mut out = Vec::new();
    assert_eq!(shared.drain_outbox(&mut out), 6);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pot_commands_go_to_the_mode_and_overflow_is_answered_failed() {
    let (shared, dir) = shared_with_sent("commands", 0);
    let input: Vec<u8> = (0..crate::shared::COMMAND_QUEUE + 1)
        .flat_map(|i| command(Command::GetPotStatus(format!("p{i}"))))
        .collect();
    read_all(&shared, input);
    assert_eq!(shared.commands.1.len(), crate::shared::COMMAND_QUEUE);
    let mut out = Vec::new();
    assert_eq!(shared.drain_outbox(&mut out), 1, "one Failed answer");
    let answer = decode::<NodeMessage>(out.strip_suffix(b"\n").unwrap()).unwrap();
    match answer {
        NodeMessage::PotStatusUpdate(u) => {
            assert_eq!(u.pot_id, format!("p{}", crate::shared::COMMAND_QUEUE));
            assert_eq!(u.status, honeybee_proto::PotStatus::Failed);
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}
