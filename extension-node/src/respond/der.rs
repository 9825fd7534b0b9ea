//! DER (X.690) elements of our own making (the SPNEGO wrappers of SMB's
//! NTLM, the self-signed certificates of the TLS ports, CredSSP's
//! TSRequest), and the reading of a client's (CredSSP's TSRequest).

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

/// The first element of some bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A whole element: its tag, its content, and the bytes it took.
    Whole(u8, &'a [u8], usize),
    /// Not all of it yet.
    Partial,
    /// A length form DER does not have or that no client message needs
    /// (indefinite, or more than three length bytes).
    Bad,
}

/// Reads the first element of `input`.
pub fn read(input: &[u8]) -> Read<'_> {
    let (Some(&tag), Some(&first)) = (input.first(), input.get(1)) else {
        return Read::Partial;
    };
    let (len, header) = match first {
        0..=0x7f => (usize::from(first), 2),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7f);
            let Some(bytes) = input.get(2..2 + n) else {
                return Read::Partial;
            };
            (bytes.iter().fold(0, |a, &b| a << 8 | usize::from(b)), 2 + n)
        }
        _ => return Read::Bad,
    };
    match input.get(header..header + len) {
        Some(content) => Read::Whole(tag, content, header + len),
        None => Read::Partial,
    }
}

/// The elements of a constructed element's `content`, in order, up to
/// the first that is not whole.
pub fn children(mut content: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || match read(content) {
        Read::Whole(tag, inner, used) => {
            content = content.get(used..).unwrap_or_default();
            Some((tag, inner))
        }
        Read::Partial | Read::Bad => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_short_input_waits() {
        for n in [0, 5, 200, 300, 65_535] {
            let e = element(0x30, &vec![7; n]);
            assert_eq!(read(&e), Read::Whole(0x30, &e[e.len() - n..], e.len()));
            assert_eq!(read(&e[..e.len() - 1]), Read::Partial);
        }
        assert_eq!(read(&[0x30, 0x80, 0, 0]), Read::Bad, "indefinite length");
        assert_eq!(read(&[0x30, 0x84, 1, 0, 0, 0]), Read::Bad);
        let seq = [element(0x02, &[5]), element(0x04, b"ab")].concat();
        let kids: Vec<_> = children(&seq).collect();
        assert_eq!(kids, [(0x02, &[5][..]), (0x04, &b"ab"[..])]);
    }

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(element(0x04, b"ab"), b"\x04\x02ab");
        assert_eq!(element(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(element(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
