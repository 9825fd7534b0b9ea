//! The API gate's request-head parser (`api::head::parse`), which decides
//! where a request ends before tiny_http sees it (request smuggling).
//!
//! Promises checked: no panic; `Ok(None)` only below `MAX_HEAD` bytes; a
//! complete head is no longer than the input nor `MAX_HEAD`, parses the same
//! without what follows it, never carries `Transfer-Encoding`; and the head
//! the gate forwards (`forwarded()`) parses back to the same method, target
//! and body length, ending exactly where it ends.
#![no_main]

use honeybee_core::api::head::{parse, MAX_HEAD, MAX_HEADERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, n) = match parse(data) {
        Ok(Some(done)) => done,
        Ok(None) => {
            assert!(
                data.len() < MAX_HEAD,
                "incomplete after {} bytes",
                data.len()
            );
            return;
        }
        Err(e) => {
            let (status, reason) = e.status();
            assert!((400..500).contains(&status) && !reason.is_empty());
            return;
        }
    };
    assert!(
        n <= data.len() && n <= MAX_HEAD,
        "consumed {n} of {}",
        data.len()
    );
    assert!(head.headers.len() <= MAX_HEADERS);
    assert!(head.header("transfer-encoding").is_none());
    let alone = data.get(..n).unwrap_or_default();
    assert_eq!(
        parse(alone),
        Ok(Some((head.clone(), n))),
        "the head alone parses differently"
    );
    let _ = head.bearer();

    let fwd = head.forwarded();
    if fwd.len() >= MAX_HEAD || head.headers.len() + 2 > MAX_HEADERS {
        // Past the gate's own bounds only because of the two headers it adds.
        return;
    }
    match parse(&fwd) {
        Ok(Some((again, m))) => {
            assert_eq!(m, fwd.len(), "the forwarded head ends early");
            assert_eq!(again.method, head.method);
            assert_eq!(again.target, head.target);
            assert_eq!(again.body_len, head.body_len);
        }
        other => panic!(
            "the forwarded head does not parse: {other:?}\n{}",
            String::from_utf8_lossy(&fwd)
        ),
    }
});
