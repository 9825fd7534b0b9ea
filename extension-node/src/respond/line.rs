//! Command lines of the text protocols (FTP, SMTP, POP3, IMAP, Telnet,
//! Redis inline commands).

/// Longest command line answered; a longer one is consumed and refused.
pub const MAX_LINE: usize = 512;

/// The next line of `input`.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line without its end (`\n`, `\r\n`, and for Telnet a bare `\r`
    /// or `\r\0`), and the bytes it took including the end.
    Complete(&'a [u8], usize),
    /// No line end yet: wait for more.
    Partial,
    /// No line end within [`MAX_LINE`] bytes: this many bytes are dropped.
    TooLong(usize),
}

/// Splits the next line off `input`. `bare_cr`: a lone CR ends a line too
/// (Telnet clients send CR NUL or CR alone).
pub fn next_line(input: &[u8], bare_cr: bool) -> Line<'_> {
    let end = input
        .iter()
        .take(MAX_LINE)
        .position(|&b| b == b'\n' || (bare_cr && (b == b'\r' || b == 0)));
    let Some(end) = end else {
        return if input.len() >= MAX_LINE {
            Line::TooLong(MAX_LINE)
        } else {
            Line::Partial
        };
    };
    let line = input.get(..end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut used = end + 1;
    if bare_cr && input.get(end) == Some(&b'\r') {
        // CR LF and CR NUL end one line. A CR at the end of what arrived
        // may see its LF later, which then reads as an empty line, which
        // every caller ignores.
        if let Some(b'\n' | 0) = input.get(end + 1) {
            used += 1;
        }
    }
    Line::Complete(line, used)
}

/// The first word of `line` (upper-cased into `buf`) and the rest with
/// leading blanks removed.
pub fn command<'a>(line: &'a [u8], buf: &'a mut [u8; 16]) -> (&'a [u8], &'a [u8]) {
    let line = trim_start(line);
    let end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let (word, rest) = line.split_at(end);
    let n = word.len().min(buf.len());
    for (d, s) in buf.iter_mut().zip(word) {
        *d = s.to_ascii_uppercase();
    }
    (buf.get(..n).unwrap_or_default(), trim_start(rest))
}

/// `s` without leading blanks.
pub fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    s.get(start..).unwrap_or_default()
}

/// The first blank-separated word of `s` and what follows it.
pub fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim_start(s);
    let end = s
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(s.len());
    let (w, rest) = s.split_at(end);
    (w, trim_start(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_with_lf_or_crlf() {
        assert_eq!(
            next_line(b"USER a\r\nPASS", false),
            Line::Complete(b"USER a", 8)
        );
        assert_eq!(
            next_line(b"USER a\nPASS", false),
            Line::Complete(b"USER a", 7)
        );
        assert_eq!(next_line(b"USER a", false), Line::Partial);
        assert_eq!(next_line(b"", false), Line::Partial);
        assert_eq!(next_line(b"a\rb\n", false), Line::Complete(b"a\rb", 4));
    }

    #[test]
    fn telnet_lines_may_end_with_a_bare_cr_or_cr_nul() {
        assert_eq!(next_line(b"root\r\0pw", true), Line::Complete(b"root", 6));
        assert_eq!(next_line(b"root\r\npw", true), Line::Complete(b"root", 6));
        assert_eq!(next_line(b"root\rpw", true), Line::Complete(b"root", 5));
        assert_eq!(next_line(b"root\r", true), Line::Complete(b"root", 5));
        assert_eq!(next_line(b"root\0", true), Line::Complete(b"root", 5));
    }

    #[test]
    fn an_endless_line_is_dropped_in_bounded_pieces() {
        let long = vec![b'A'; 5000];
        assert_eq!(next_line(&long, false), Line::TooLong(MAX_LINE));
        let mut almost = vec![b'A'; MAX_LINE - 1];
        assert_eq!(next_line(&almost, false), Line::Partial);
        almost.push(b'\n');
        assert!(matches!(next_line(&almost, false), Line::Complete(_, n) if n == MAX_LINE));
    }

    #[test]
    fn commands_are_upper_cased_and_split_from_their_argument() {
        let mut buf = [0; 16];
        assert_eq!(
            command(b"  user  root ", &mut buf),
            (&b"USER"[..], &b"root "[..])
        );
        let mut buf = [0; 16];
        let (c, rest) = command(b"averyveryverylongcommandword x", &mut buf);
        assert_eq!(c.len(), 16);
        assert_eq!(rest, b"x");
        assert_eq!(word(b" a  b c"), (&b"a"[..], &b"b c"[..]));
        assert_eq!(word(b""), (&b""[..], &b""[..]));
    }
}
