//! Extension fingerprinter, HTTP request line, headers, User-Agent: the bytes a client sends to port 80.
//! Detection goes by content first, so every parser is reachable from here;
//! the seeds (real client captures) and the port keep the fuzzer on this one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| honeybee_fuzz::check_fingerprint(80, data));
