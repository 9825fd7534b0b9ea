//! The alerts module's config loader (`honeybee_alerts::config::parse`):
//! TOML with channels, rules (globs, CIDRs, thresholds) and durations.
//!
//! Promises checked: no panic; a refused config says why; an accepted one
//! has unique channel and rule names, every rule's channels exist, and the
//! outbox and report interval are within their bounds.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match honeybee_alerts::config::parse(text) {
        Err(e) => assert!(!e.is_empty()),
        Ok(c) => {
            assert!(c.max_outbox >= 1);
            assert!(c.report_interval >= Duration::from_secs(1));
            for (i, ch) in c.channels.iter().enumerate() {
                assert!(
                    !c.channels
                        .iter()
                        .skip(i + 1)
                        .any(|o| o.common.name == ch.common.name),
                    "channel {:?} twice",
                    ch.common.name
                );
            }
            for (i, r) in c.rules.iter().enumerate() {
                assert!(
                    !c.rules.iter().skip(i + 1).any(|o| o.name == r.name),
                    "rule {:?} twice",
                    r.name
                );
                for name in &r.channels {
                    assert!(c.channels.iter().any(|ch| &ch.common.name == name));
                }
            }
        }
    }
});
