//! Extension mode's settings: the `[extension]` section alone, as TOML
//! (`ExtensionConfig`), checked and parsed by `settings()` (port lists and
//! ranges, listen addresses, profile, bounds).
//!
//! Promises checked: no panic; accepted settings are within their documented
//! bounds (some port to listen on, at least one address, `max_read`
//! 16..=`MAX_READ`, a scan threshold of at least 2); the section prints as
//! TOML that loads back as itself; a port list is sorted, without
//! duplicates, at most `MAX_PORTS` long, and its compact form
//! (`format_ports`) parses back to the same list.
#![no_main]

use honeybee_extension::config::{ExtensionConfig, MAX_READ};
use honeybee_extension::ports::{format_ports, parse_ports, MAX_PORTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<ExtensionConfig>(text) else {
        return;
    };
    if let Ok(printed) = toml::to_string(&config) {
        let again = toml::from_str::<ExtensionConfig>(&printed);
        assert_eq!(again.as_ref().ok(), Some(&config), "{printed}");
    }
    if let Ok(s) = config.settings() {
        assert!(!s.tcp.is_empty() || !s.udp.is_empty());
        assert!(!s.bind.is_empty());
        assert!((16..=MAX_READ).contains(&s.max_read));
        assert!(s.scan.scan_ports >= 2);
    }
    for spec in [&config.ports, &config.udp_ports] {
        if let Ok(list) = parse_ports(spec) {
            assert!(list.len() <= MAX_PORTS);
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            assert!(!list.contains(&0));
            let again = parse_ports(&format_ports(&list));
            assert_eq!(again.as_deref().ok(), Some(list.as_slice()), "{spec:?}");
        }
    }
});
