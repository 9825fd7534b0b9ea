//! Making hostile event text safe to put in a mail header, a syslog line,
//! a chat message or a file: an attacker chooses usernames, commands and
//! banners, and CR/LF in them must not become a header or a line.

/// Longest field value carried in an alert, in bytes.
pub const MAX_FIELD: usize = 1024;
/// Longest alert title, in bytes.
pub const MAX_TITLE: usize = 200;

/// `s` with every control character (CR, LF, TAB, ESC, NUL, DEL, C1 and
/// the Unicode line/paragraph separators) replaced by a visible escape
/// (`\r`, `\n`, `\t`, `\x1b`, `\u{2028}`), cut at `max` bytes on a
/// character boundary with a visible `…[+N bytes]` saying how much was
/// dropped.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 16);
    let mut consumed = 0;
    for c in s.chars() {
        let piece = escape(c);
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
        consumed += c.len_utf8();
    }
    if consumed < s.len() {
        out.push_str(&format!("…[+{} bytes]", s.len() - consumed));
    }
    out
}

fn escape(c: char) -> String {
    match c {
        '\r' => "\\r".into(),
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        '\u{2028}' | '\u{2029}' | '\u{85}' => format!("\\u{{{:x}}}", c as u32),
        c if c.is_control() => format!("\\x{:02x}", c as u32),
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_become_visible() {
        assert_eq!(clean("root\r\nBcc: x@y", 100), "root\\r\\nBcc: x@y");
        assert_eq!(clean("a\u{1b}[31mb\0", 100), "a\\x1b[31mb\\x00");
        assert_eq!(clean("x\u{2028}y", 100), "x\\u{2028}y");
    }

    #[test]
    fn long_values_are_cut_visibly_on_a_char_boundary() {
        let s = "é".repeat(40_000);
        let c = clean(&s, 11);
        assert!(c.starts_with("ééééé…[+"), "{c}");
        assert!(c.ends_with(&format!("[+{} bytes]", 80_000 - 10)), "{c}");
        assert!(!clean(&s, 1024).contains('\n'));
    }
}
