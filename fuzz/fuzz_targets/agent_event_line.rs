//! The agent's 9100 event-line mapping (docs/protocol.md §8): one line a pot
//! writes to the loopback event socket, mapped to a `PotEvent` both ways the
//! socket does it (`map_line` for an unattributed line, `parse_object` +
//! `map_pot_object` for a line of an authenticated connection).
//!
//! Promises checked: no panic; the event type is the non-empty string the
//! line named; an authenticated line is always the connection's pot and its
//! `token` never reaches `data`; the timestamp is RFC 3339; the event encodes
//! as one Protocol v2 line that decodes back to itself.
#![no_main]

use honeybee_agent::event_map::{has_event_type, map_line, map_pot_object, parse_object, PotHint};
use honeybee_proto::time::parse_rfc3339;
use honeybee_proto::{decode, encode, Envelope, NodeMessage, PotEvent};
use libfuzzer_sys::fuzz_target;

fn check(event: &PotEvent) {
    assert!(!event.event_type.is_empty());
    assert!(!event.pot_id.is_empty());
    assert!(!event.pot_type.is_empty());
    assert!(
        parse_rfc3339(&event.timestamp).is_some(),
        "timestamp {:?} is not RFC 3339",
        event.timestamp
    );
    let msg = NodeMessage::PotEvent(event.clone());
    let line = encode(&Envelope::new(msg.clone()));
    let body = line.strip_suffix(b"\n").unwrap_or(&line);
    assert!(!body.contains(&b'\n'));
    assert_eq!(decode::<NodeMessage>(body).ok(), Some(msg));
}

fuzz_target!(|data: &[u8]| {
    // Which pots the agent knows: none, one running, or two running.
    let hints_n = data.first().map_or(0, |b| b % 3);
    let pots: Vec<PotHint> = (0..hints_n)
        .map(|i| PotHint {
            pot_id: format!("cowrie-0{i}"),
            pot_type: if i == 0 {
                "cowrie".into()
            } else {
                String::new()
            },
            running: true,
        })
        .collect();
    let line = data.get(1..).unwrap_or_default();

    if let Ok(event) = map_line(line, 7, &pots) {
        assert_eq!(event.node_id, 7);
        check(&event);
    }

    if let Ok(object) = parse_object(line) {
        let named = has_event_type(&object);
        let pot = PotHint {
            pot_id: "pot-a".into(),
            pot_type: "cowrie".into(),
            running: true,
        };
        match map_pot_object(object, 9, &pot) {
            Ok(event) => {
                assert!(named, "mapped a line with no event type");
                assert_eq!(event.pot_id, "pot-a", "a line chose its own pot");
                assert!(
                    !event.data.contains_key("token"),
                    "the token leaked into data"
                );
                check(&event);
            }
            Err(_) => assert!(!named, "a line with an event type was refused"),
        }
    }
});
