//! Base64 as SMTP `AUTH`, IMAP `AUTHENTICATE` and HTTP `Basic` carry
//! credentials (RFC 4648, standard alphabet, padding optional).

/// Decodes `text` into at most `N` bytes; `None` for a character outside
/// the alphabet or a result longer than `N`. Blanks around it are ignored.
pub fn decode<const N: usize>(text: &[u8]) -> Option<heapless::Vec<u8, N>> {
    let text = text.trim_ascii();
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut out = heapless::Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8).ok()?;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_with_and_without_padding() {
        assert_eq!(decode::<64>(b"YWRtaW46c2VjcmV0").unwrap(), b"admin:secret");
        assert_eq!(decode::<64>(b"YQ==").unwrap(), b"a");
        assert_eq!(decode::<64>(b"YQ").unwrap(), b"a");
        assert_eq!(decode::<64>(b"YWI=").unwrap(), b"ab");
        assert_eq!(
            decode::<64>(b" AHVzZXIAcGFzcw== \r").unwrap(),
            b"\0user\0pass"
        );
        assert_eq!(decode::<64>(b"").unwrap(), b"");
    }

    #[test]
    fn rejects_foreign_characters_and_oversized_results() {
        assert!(decode::<64>(b"YW*h").is_none());
        assert!(decode::<64>(b"YQ=a").is_none());
        assert!(decode::<2>(b"YWJj").is_none());
        assert!(decode::<3>(b"YWJj").is_some());
    }
}
