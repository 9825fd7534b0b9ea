//! Extension fingerprinter, TLS ClientHello (SNI, ALPN, JA3) and SSLv2 hellos: the bytes a client sends to port 443.
//! Detection goes by content first, so every parser is reachable from here;
//! the seeds (real client captures) and the port keep the fuzzer on this one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| honeybee_fuzz::check_fingerprint(443, data));
