//! Envelope decoding of every message set, both directions, and the
//! re-encoding promise.
//!
//! Each input is read as one line of each direction: `NodeMessage` (node →
//! core), `CoreMessage` (core → node), `ModuleMessage` (module → core) and
//! `StreamMessage` (core → module). Whatever decodes must encode to exactly
//! one NDJSON line that decodes back to the same value (`decode(encode(x)) ==
//! x` for every `x` that `decode` can produce), and encoding is canonical:
//! that line re-encodes byte for byte.
#![no_main]

use std::fmt::Debug;

use honeybee_proto::{
    decode, encode, CoreMessage, DecodeError, Envelope, ModuleMessage, NodeMessage, StreamMessage,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<M>(line: &[u8])
where
    M: DeserializeOwned + Serialize + PartialEq + Debug + Clone,
{
    let msg = match decode::<M>(line) {
        Ok(m) => m,
        Err(e) => {
            // Errors carry a stable label and a printable message.
            assert!(!e.kind().is_empty());
            let _ = e.to_string();
            if let DecodeError::WrongVersion(v) = e {
                assert_ne!(v, honeybee_proto::PROTOCOL_VERSION);
            }
            return;
        }
    };
    let encoded = encode(&Envelope::new(msg.clone()));
    let Some((b'\n', body)) = encoded.split_last() else {
        panic!("encoding does not end in a newline");
    };
    assert!(
        !body.contains(&b'\n'),
        "an encoded message spans lines: {}",
        String::from_utf8_lossy(body)
    );
    let again = decode::<M>(body).unwrap_or_else(|e| {
        panic!(
            "encoding of {msg:?} does not decode: {e}\n{}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(again, msg, "decode(encode(x)) != x");
    assert_eq!(
        encode(&Envelope::new(again)),
        encoded,
        "encoding is not canonical"
    );
}

fuzz_target!(|data: &[u8]| {
    round_trip::<NodeMessage>(data);
    round_trip::<CoreMessage>(data);
    round_trip::<ModuleMessage>(data);
    round_trip::<StreamMessage>(data);
});
