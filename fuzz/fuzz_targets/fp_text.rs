//! Extension fingerprinter, text protocols (FTP, Telnet with option
//! negotiation, SMTP, POP3, IMAP): the first byte picks the port, which
//! decides between protocols whose bytes look alike; the rest is what the
//! client sent.
#![no_main]

use libfuzzer_sys::fuzz_target;

const PORTS: [u16; 6] = [21, 23, 25, 110, 143, 2323];

fuzz_target!(|data: &[u8]| {
    let Some((sel, first)) = data.split_first() else {
        return;
    };
    let port = PORTS
        .get(usize::from(*sel) % PORTS.len())
        .copied()
        .unwrap_or(23);
    honeybee_fuzz::check_fingerprint(port, first);
});
