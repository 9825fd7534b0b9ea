//! The `native-telnet` pot's session, sans I/O: the client's bytes arrive in
//! reads (cut by the first input byte) into a buffer of at most `LINE` bytes,
//! exactly as the session reads them; lines are taken out with telnet
//! negotiation removed (user name, password, then up to `COMMANDS` commands),
//! and each command gets the fake shell's output.
//!
//! Promises checked: no panic; a line is at most `LINE` characters without a
//! control character; the buffer never holds more than `LINE` bytes and a
//! full buffer always yields a line (a session never stalls on its own
//! buffer); shell output never echoes a control character.
#![no_main]

use honeybee_extension::native::{shell_output, take_line, COMMANDS, LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((cut, mut rest)) = data.split_first() else {
        return;
    };
    let read = usize::from(*cut % 64) + 1;
    let mut buf: Vec<u8> = Vec::with_capacity(LINE);
    let mut lines = 0usize;
    let mut user = String::new();
    loop {
        let Some(line) = take_line(&mut buf) else {
            // More bytes are needed: one read of at most the room left.
            assert!(buf.len() < LINE, "a full buffer gave no line");
            let room = (LINE - buf.len()).min(read).min(rest.len());
            if room == 0 {
                return;
            }
            let (head, tail) = rest.split_at(room);
            buf.extend_from_slice(head);
            rest = tail;
            continue;
        };
        assert!(
            line.chars().count() <= LINE,
            "{} characters",
            line.chars().count()
        );
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(buf.len() <= LINE);
        match lines {
            0 => user = line,
            1 => {}
            _ => {
                let out = shell_output(&line, "router");
                assert!(
                    !out.chars()
                        .any(|c| c.is_control() && c != '\r' && c != '\n'),
                    "{out:?}"
                );
                let _ = &user;
                if lines >= COMMANDS + 2 || matches!(line.as_str(), "exit" | "logout" | "quit") {
                    return;
                }
            }
        }
        lines += 1;
    }
});
