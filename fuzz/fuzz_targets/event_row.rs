//! A Protocol v2 line from a node, decoded as a `PotEvent` and turned into
//! the row the event store keeps (`store::event_row::EventRecord::new`).
//!
//! Promises checked: no panic; stored `data` is a JSON object of at most
//! `MAX_DATA_BYTES`; ports are 0..=65535; names are cut to the budget; the
//! row reads back as an event with the same names.
#![no_main]

use honeybee_core::node::budget::MAX_NAME;
use honeybee_core::store::event_row::{EventRecord, MAX_DATA_BYTES};
use honeybee_proto::{decode, NodeMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(NodeMessage::PotEvent(event)) = decode::<NodeMessage>(data) else {
        return;
    };
    let row = EventRecord::new(3, event);
    assert_eq!(row.node_id, 3);
    assert!(
        row.data.len() <= MAX_DATA_BYTES,
        "{} bytes of data",
        row.data.len()
    );
    assert!(
        matches!(
            serde_json::from_str(&row.data),
            Ok(serde_json::Value::Object(_))
        ),
        "stored data is not an object: {}",
        row.data
    );
    for p in [row.src_port, row.dst_port].into_iter().flatten() {
        assert!((0..=65_535).contains(&p));
    }
    for name in [&row.pot_id, &row.pot_type, &row.event_type, &row.timestamp] {
        assert!(name.len() <= MAX_NAME, "{} bytes", name.len());
    }
    let back = row.to_pot_event();
    assert_eq!(back.pot_id, row.pot_id);
    assert_eq!(back.event_type, row.event_type);
    assert_eq!(back.seq, row.seq);
});
