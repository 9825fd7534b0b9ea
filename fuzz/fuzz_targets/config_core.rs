//! The core's config loader: TOML text over the defaults
//! (`Config::from_toml`), its checks (`validate`), and `--print-config`.
//!
//! Promises checked: no panic; an error names a line when it has one; a
//! loaded config prints as TOML that loads back and prints the same again
//! (what `--print-config` shows can be used as a config file), except that
//! a token set inline is never printed: a `#` note says where it belongs
//! instead, and only the first print has that note (the campaign of
//! 2026-12-07 found the assertion too strong there). The PostgreSQL URL
//! is checked by its own parser here: `validate` would read the CA file it
//! names, and the fuzzer must not open arbitrary paths (`/dev/zero`).
#![no_main]

use honeybee_core::config::Config;
use honeybee_core::store::postgres::url::PgUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut config = match Config::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let _ = PgUrl::parse(config.store.postgres.trim());
    let printed = config.to_toml();
    let without_notes: String = printed
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    match Config::from_toml(&printed) {
        Ok(again) => assert_eq!(again.to_toml(), without_notes, "printing is not stable"),
        Err(e) => panic!("--print-config output does not load: {e}\n{printed}"),
    }
    config.store.postgres.clear();
    let _ = config.validate();
    let _ = config.effective_core_name();
});
