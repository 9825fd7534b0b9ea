//! The packet ciphers once the keys are exchanged: chacha20-poly1305 as
//! OpenSSH defines it (PROTOCOL.chacha20poly1305) and AES-GCM (RFC 5647),
//! both from ring. Only AEAD ciphers are offered, so no MAC is ever run
//! separately.

use ring::aead::chacha20_poly1305_openssh::{self as chacha, OpeningKey, SealingKey};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, NONCE_LEN};

use super::wire::{frame, payload, MAX_PACKET};

/// Bytes of the authentication tag after each packet.
const TAG: usize = 16;

/// A cipher both sides support, in our order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `chacha20-poly1305@openssh.com`.
    ChaCha20Poly1305,
    /// `aes128-gcm@openssh.com`.
    Aes128Gcm,
    /// `aes256-gcm@openssh.com`.
    Aes256Gcm,
}

impl Algorithm {
    /// Every cipher, as offered.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::ChaCha20Poly1305,
        Algorithm::Aes128Gcm,
        Algorithm::Aes256Gcm,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static [u8] {
        match self {
            Algorithm::ChaCha20Poly1305 => b"chacha20-poly1305@openssh.com",
            Algorithm::Aes128Gcm => b"aes128-gcm@openssh.com",
            Algorithm::Aes256Gcm => b"aes256-gcm@openssh.com",
        }
    }

    /// The cipher named `name`.
    pub fn named(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Key bytes to derive.
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::ChaCha20Poly1305 => chacha::KEY_LEN,
            Algorithm::Aes128Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }

    /// IV bytes to derive (none for chacha20-poly1305: the sequence
    /// number is its nonce).
    pub fn iv_len(self) -> usize {
        match self {
            Algorithm::ChaCha20Poly1305 => 0,
            Algorithm::Aes128Gcm | Algorithm::Aes256Gcm => NONCE_LEN,
        }
    }

    fn block(self) -> usize {
        match self {
            Algorithm::ChaCha20Poly1305 => 8,
            Algorithm::Aes128Gcm | Algorithm::Aes256Gcm => 16,
        }
    }
}

/// AES-GCM's key and its nonce: a fixed part and a counter of packets
/// (RFC 5647 §7.1).
struct Gcm {
    key: LessSafeKey,
    nonce: [u8; NONCE_LEN],
}

impl Gcm {
    fn new(alg: Algorithm, key: &[u8], iv: &[u8]) -> Option<Gcm> {
        let aead = if alg == Algorithm::Aes128Gcm {
            &AES_128_GCM
        } else {
            &AES_256_GCM
        };
        Some(Gcm {
            key: LessSafeKey::new(UnboundKey::new(aead, key).ok()?),
            nonce: iv.try_into().ok()?,
        })
    }

    /// This packet's nonce; the counter moves on for the next.
    fn next_nonce(&mut self) -> Nonce {
        let nonce = Nonce::assume_unique_for_key(self.nonce);
        if let Some(counter) = self.nonce.get_mut(4..) {
            let mut c = [0u8; 8];
            c.copy_from_slice(counter);
            counter.copy_from_slice(&u64::from_be_bytes(c).wrapping_add(1).to_be_bytes());
        }
        nonce
    }
}

enum SealKey {
    ChaCha(SealingKey),
    Gcm(Box<Gcm>),
}

/// Encrypts our packets.
pub struct Sealer {
    alg: Algorithm,
    key: SealKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({:?})", self.alg)
    }
}

impl Sealer {
    /// A sealer of `alg` with the derived `key` and `iv`.
    pub fn new(alg: Algorithm, key: &[u8], iv: &[u8]) -> Option<Sealer> {
        let key = match alg {
            Algorithm::ChaCha20Poly1305 => SealKey::ChaCha(SealingKey::new(key.try_into().ok()?)),
            _ => SealKey::Gcm(Box::new(Gcm::new(alg, key, iv)?)),
        };
        Some(Sealer { alg, key })
    }

    /// The encrypted packet of `payload`, sequence number `seq`, padded
    /// from `fill`.
    pub fn seal(&mut self, seq: u32, payload: &[u8], fill: u64) -> Vec<u8> {
        let mut p = frame(payload, self.alg.block(), false, fill);
        let mut tag = [0u8; TAG];
        match &mut self.key {
            SealKey::ChaCha(k) => k.seal_in_place(seq, &mut p, &mut tag),
            SealKey::Gcm(g) => {
                let nonce = g.next_nonce();
                let (len, body) = p.split_at_mut(4);
                let Ok(t) = g
                    .key
                    .seal_in_place_separate_tag(nonce, Aad::from(&*len), body)
                else {
                    return Vec::new();
                };
                tag.copy_from_slice(t.as_ref());
            }
        }
        p.extend_from_slice(&tag);
        p
    }
}

enum OpenKey {
    ChaCha(OpeningKey),
    Gcm(Box<Gcm>),
}

/// Decrypts the client's packets.
pub struct Opener {
    key: OpenKey,
    block: usize,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

/// What the start of the encrypted stream holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// A packet's payload, and the bytes it took.
    Whole(Vec<u8>, usize),
    /// Not all of it yet.
    Partial,
    /// A forged or corrupted packet, or an impossible length.
    Bad,
}

impl Opener {
    /// An opener of `alg` with the derived `key` and `iv`.
    pub fn new(alg: Algorithm, key: &[u8], iv: &[u8]) -> Option<Opener> {
        let key = match alg {
            Algorithm::ChaCha20Poly1305 => OpenKey::ChaCha(OpeningKey::new(key.try_into().ok()?)),
            _ => OpenKey::Gcm(Box::new(Gcm::new(alg, key, iv)?)),
        };
        Some(Opener {
            key,
            block: alg.block(),
        })
    }

    /// The first packet of `input`, sequence number `seq`, checked and
    /// decrypted.
    pub fn open(&mut self, seq: u32, input: &[u8]) -> Opened {
        let Some(head) = input.get(..4).and_then(|h| <[u8; 4]>::try_from(h).ok()) else {
            return Opened::Partial;
        };
        let len = match &self.key {
            OpenKey::ChaCha(k) => k.decrypt_packet_length(seq, head),
            OpenKey::Gcm(_) => head,
        };
        let Ok(len) = usize::try_from(u32::from_be_bytes(len)) else {
            return Opened::Bad;
        };
        if !(5..=MAX_PACKET).contains(&len) || len % self.block != 0 {
            return Opened::Bad;
        }
        let total = 4 + len + TAG;
        let Some(packet) = input.get(..total) else {
            return Opened::Partial;
        };
        let (sealed, tag) = packet.split_at(4 + len);
        let plain = match &mut self.key {
            OpenKey::ChaCha(k) => {
                let Ok(tag) = <[u8; TAG]>::try_from(tag) else {
                    return Opened::Bad;
                };
                let mut buf = sealed.to_vec();
                k.open_in_place(seq, &mut buf, &tag)
                    .ok()
                    .and_then(payload)
                    .map(<[u8]>::to_vec)
            }
            OpenKey::Gcm(g) => {
                let nonce = g.next_nonce();
                let mut buf = packet.get(4..).unwrap_or_default().to_vec();
                g.key
                    .open_in_place(nonce, Aad::from(head), &mut buf)
                    .ok()
                    .and_then(|body| payload(body))
                    .map(<[u8]>::to_vec)
            }
        };
        match plain {
            Some(p) => Opened::Whole(p, total),
            None => Opened::Bad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(alg: Algorithm) -> (Sealer, Opener) {
        let key = vec![0x42; alg.key_len()];
        let iv = vec![7; alg.iv_len()];
        (
            Sealer::new(alg, &key, &iv).unwrap(),
            Opener::new(alg, &key, &iv).unwrap(),
        )
    }

    #[test]
    fn sealed_packets_open_in_order() {
        for alg in Algorithm::ALL {
            let (mut s, mut o) = pair(alg);
            for seq in 3..8u32 {
                let payload = vec![seq as u8; seq as usize * 5];
                let p = s.seal(seq, &payload, 1);
                assert_eq!(o.open(seq, &p[..p.len() - 1]), Opened::Partial, "{alg:?}");
                assert_eq!(o.open(seq, &p), Opened::Whole(payload, p.len()), "{alg:?}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_or_wrong_sequence_number_is_refused() {
        for alg in Algorithm::ALL {
            let (mut s, mut o) = pair(alg);
            let mut p = s.seal(3, b"\x05\0\0\0\x0cssh-userauth", 1);
            let mut q = p.clone();
            if let Some(b) = p.get_mut(9) {
                *b ^= 1;
            }
            assert_eq!(o.open(3, &p), Opened::Bad, "{alg:?}");
            let (_, mut o) = pair(alg);
            if alg == Algorithm::ChaCha20Poly1305 {
                assert_eq!(o.open(4, &q), Opened::Bad);
            }
            if let Some(b) = q.last_mut() {
                *b ^= 0x80;
            }
            assert_eq!(o.open(3, &q), Opened::Bad, "{alg:?}");
        }
    }
}
