//! SSH's data types (RFC 4251 §5) and its binary packet before encryption
//! is on (RFC 4253 §6): read from client bytes with every length checked,
//! and written for the answers.

/// Longest packet taken from a client (`packet_length` and the four bytes
/// before it): the whole connection fits the tripwire's read cap anyway.
pub const MAX_PACKET: usize = crate::config::MAX_READ;

pub(crate) use crate::reader::Reader;

/// A `string` (or `name-list`): its bytes.
pub fn string<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let n = usize::try_from(r.u32be()?).ok()?;
    r.take(n)
}

/// A `boolean`.
pub fn boolean(r: &mut Reader<'_>) -> Option<bool> {
    r.u8().map(|b| b != 0)
}

/// The names of a `name-list`.
pub fn names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == b',').filter(|n| !n.is_empty())
}

/// Appends a `uint32`.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `string`.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_u32(out, u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(s);
}

/// Appends an `mpint` holding the unsigned big-endian number `n`.
pub fn put_mpint(out: &mut Vec<u8>, n: &[u8]) {
    let start = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    let digits = n.get(start..).unwrap_or_default();
    let sign = digits.first().is_some_and(|&b| b & 0x80 != 0);
    put_u32(
        out,
        u32::try_from(digits.len() + usize::from(sign)).unwrap_or(u32::MAX),
    );
    if sign {
        out.push(0);
    }
    out.extend_from_slice(digits);
}

/// What the start of a client's byte stream holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A whole packet: its payload, and the bytes it took.
    Whole(&'a [u8], usize),
    /// Not all of it yet.
    Partial,
    /// A length no real client sends, or padding longer than the packet.
    Bad,
}

/// The first unencrypted packet of `input`.
pub fn plain_packet(input: &[u8]) -> Packet<'_> {
    let mut r = Reader::new(input);
    let Some(len) = r.u32be().and_then(|n| usize::try_from(n).ok()) else {
        return Packet::Partial;
    };
    if !(5..=MAX_PACKET - 4).contains(&len) || len % 8 != 4 {
        return Packet::Bad;
    }
    let Some(body) = r.take(len) else {
        return Packet::Partial;
    };
    match payload(body) {
        Some(p) => Packet::Whole(p, 4 + len),
        None => Packet::Bad,
    }
}

/// The payload of a packet's body (`padding_length`, payload, padding).
pub fn payload(body: &[u8]) -> Option<&[u8]> {
    let (&pad, rest) = body.split_first()?;
    let pad = usize::from(pad);
    if pad < 4 {
        return None;
    }
    rest.get(..rest.len().checked_sub(pad)?)
}

/// A packet's body and length field for `payload`: `packet_length`,
/// `padding_length`, the payload and padding from `fill`, with the part
/// that `aligned` says (the whole packet, or for AEAD ciphers all but the
/// length) a multiple of `block` bytes.
pub fn frame(payload: &[u8], block: usize, length_aligned: bool, fill: u64) -> Vec<u8> {
    let unpadded = 1 + payload.len() + if length_aligned { 4 } else { 0 };
    let mut pad = block - unpadded % block;
    if pad < 4 {
        pad += block;
    }
    let mut p = Vec::with_capacity(4 + 1 + payload.len() + pad + 16);
    put_u32(
        &mut p,
        u32::try_from(1 + payload.len() + pad).unwrap_or(u32::MAX),
    );
    p.push(u8::try_from(pad).unwrap_or(4));
    p.extend_from_slice(payload);
    let mut x = fill | 1;
    for _ in 0..pad {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push(x as u8);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_of_the_payload() {
        let mut r = Reader::new(&[0, 0, 0, 3, b'a', b'b']);
        assert_eq!(string(&mut r), None);
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert_eq!(string(&mut r), None);
        let mut r = Reader::new(&[0, 0, 0, 2, b'a', b'b', 1]);
        assert_eq!(string(&mut r), Some(&b"ab"[..]));
        assert_eq!(boolean(&mut r), Some(true));
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn mpints_are_minimal_and_positive() {
        let enc = |n: &[u8]| {
            let mut v = Vec::new();
            put_mpint(&mut v, n);
            v
        };
        assert_eq!(enc(&[0, 0]), [0, 0, 0, 0]);
        assert_eq!(enc(&[0, 0x7f, 1]), [0, 0, 0, 2, 0x7f, 1]);
        assert_eq!(enc(&[0x80, 1]), [0, 0, 0, 3, 0, 0x80, 1]);
    }

    #[test]
    fn framed_packets_read_back_and_are_aligned() {
        for len in 0..40 {
            let payload = vec![7u8; len];
            let p = frame(&payload, 8, true, 99);
            assert_eq!(p.len() % 8, 0);
            assert_eq!(plain_packet(&p), Packet::Whole(&payload[..], p.len()));
            assert_eq!(plain_packet(&p[..p.len() - 1]), Packet::Partial);
            let p = frame(&payload, 16, false, 99);
            assert_eq!((p.len() - 4) % 16, 0);
            assert!(p.get(4).is_some_and(|&pad| pad >= 4));
        }
    }

    #[test]
    fn impossible_lengths_and_padding_are_refused() {
        assert_eq!(plain_packet(&[0, 0, 0, 1, 4]), Packet::Bad);
        assert_eq!(plain_packet(&[0xff, 0xff, 0xff, 0xfc]), Packet::Bad);
        // Padding longer than the packet.
        assert_eq!(
            plain_packet(&[0, 0, 0, 12, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Packet::Bad
        );
    }
}
