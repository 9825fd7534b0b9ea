//! The agent's config loader: TOML text over the defaults
//! (`Config::from_toml`), its checks (`validate`, which includes the
//! `[extension]` section's `settings`), and `--print-config`.
//!
//! Promises checked: no panic; a loaded config prints as TOML that loads back
//! as exactly the same config; `core_host_port` of an accepted config is a
//! host and a non-zero port.
#![no_main]

use honeybee_agent::config::{core_host_port, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let printed = config.to_toml();
    match Config::from_toml(&printed) {
        Ok(again) => assert_eq!(again, config, "--print-config does not load back the same"),
        Err(e) => panic!("--print-config output does not load: {e}\n{printed}"),
    }
    if config.validate().is_ok() {
        let hp = core_host_port(&config.core);
        assert!(
            hp.is_some_and(|(h, p)| !h.is_empty() && p != 0),
            "{:?}",
            config.core
        );
    }
});
