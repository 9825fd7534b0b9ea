//! DER (X.690) elements of our own making: the SPNEGO wrappers of SMB's
//! NTLM and the self-signed certificates of the TLS ports.

/// Appends a DER element of `tag` around `content` (definite length, up to
/// 64 KiB: everything we build is far smaller).
pub fn der(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    let [_, _, hi, lo] = u32::try_from(len).unwrap_or(0).to_be_bytes();
    match len {
        0..=0x7f => out.push(lo),
        0x80..=0xff => out.extend_from_slice(&[0x81, lo]),
        _ => out.extend_from_slice(&[0x82, hi, lo]),
    }
    out.extend_from_slice(content);
}

/// A DER element as a new vector.
pub fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(content.len() + 4);
    der(tag, content, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(element(0x04, b"ab"), b"\x04\x02ab");
        assert_eq!(element(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(element(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
