//! PROXY protocol v1/v2 headers from a trusted proxy: every promise of
//! `proxy_protocol::parse`, as its own `check` states them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| honeybee_core::proxy_protocol::check(data));
