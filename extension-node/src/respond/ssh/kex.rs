//! Key exchange (RFC 4253 §7–8, RFC 8731): our `KEXINIT`, the choice of
//! algorithms from the client's, curve25519-sha256 with an ed25519 host
//! key, and the keys derived from it.

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::digest::{self, SHA256};
use ring::rand::SystemRandom;

use super::cipher::{Algorithm, Opener, Sealer};
use super::wire::{boolean, names, put_mpint, put_string, put_u32, string, Reader};
use super::HostKey;

/// `SSH_MSG_KEXINIT`.
pub const KEXINIT: u8 = 20;
/// `SSH_MSG_KEX_ECDH_REPLY`.
const KEX_ECDH_REPLY: u8 = 31;

const KEX: &[&[u8]] = &[b"curve25519-sha256", b"curve25519-sha256@libssh.org"];
/// OpenSSH's answer to the Terrapin attack (CVE-2023-48795): after each
/// `NEWKEYS` the sequence numbers start again from zero.
const STRICT_SERVER: &[u8] = b"kex-strict-s-v00@openssh.com";
const STRICT_CLIENT: &[u8] = b"kex-strict-c-v00@openssh.com";
const HOST_KEY: &[u8] = b"ssh-ed25519";
/// OpenSSH's default MACs: listed because clients expect a list, never
/// used, since every cipher offered is AEAD.
const MACS: &[u8] = b"umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
/// `zlib@openssh.com` starts only after a successful login, which never
/// comes, so offering it as OpenSSH does costs nothing.
const COMPRESSION: &[u8] = b"none,zlib@openssh.com";

/// Our `KEXINIT` payload, fixed by the connection's `cookie` (so that it
/// can be made again for the exchange hash instead of kept); `strict`:
/// whether we offer strict key exchange.
pub fn kexinit(cookie: [u8; 16], strict: bool) -> Vec<u8> {
    let mut p = vec![KEXINIT];
    p.extend_from_slice(&cookie);
    let mut kex = KEX.join(&b","[..]);
    if strict {
        kex.push(b',');
        kex.extend_from_slice(STRICT_SERVER);
    }
    put_string(&mut p, &kex);
    put_string(&mut p, HOST_KEY);
    let ciphers = Algorithm::ALL.map(Algorithm::name).join(&b","[..]);
    for list in [&ciphers[..], &ciphers, MACS, MACS, COMPRESSION, COMPRESSION] {
        put_string(&mut p, list);
    }
    put_string(&mut p, b"");
    put_string(&mut p, b"");
    p.push(0);
    put_u32(&mut p, 0);
    p
}

/// What the two `KEXINIT`s agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Client to server.
    pub cipher_in: Algorithm,
    /// Server to client.
    pub cipher_out: Algorithm,
    /// Both sides asked for strict key exchange.
    pub strict: bool,
    /// The client sent a guessed key exchange packet that guessed wrong:
    /// its next packet is to be ignored (RFC 4253 §7.1).
    pub wrong_guess: bool,
}

/// Why no agreement: OpenSSH's words for it.
pub type Refusal = &'static str;

/// Reads the client's `KEXINIT` payload and chooses, as RFC 4253 §7.1
/// says: the first of the client's names that we support.
pub fn agree(client: &[u8], strict_offered: bool) -> Result<Agreed, Refusal> {
    let mut r = Reader::new(client);
    let malformed = "invalid KEXINIT";
    if r.u8() != Some(KEXINIT) || r.take(16).is_none() {
        return Err(malformed);
    }
    let mut lists = [&[][..]; 10];
    for list in &mut lists {
        *list = string(&mut r).ok_or(malformed)?;
    }
    let guessed = boolean(&mut r).ok_or(malformed)?;
    r.u32be().ok_or(malformed)?;
    let [kex, host, c_in, c_out, _, _, z_in, z_out, _, _] = lists;
    let first_kex = names(kex).next();
    if !names(kex).any(|n| KEX.contains(&n)) {
        return Err("no matching key exchange method found");
    }
    let first_host = names(host).next();
    if !names(host).any(|n| n == HOST_KEY) {
        return Err("no matching host key type found");
    }
    let cipher = |list| {
        names(list)
            .find_map(Algorithm::named)
            .ok_or("no matching cipher found")
    };
    let (cipher_in, cipher_out) = (cipher(c_in)?, cipher(c_out)?);
    for z in [z_in, z_out] {
        if !names(z).any(|n| names(COMPRESSION).any(|ours| ours == n)) {
            return Err("no matching compression method found");
        }
    }
    let chosen_kex = names(kex).find(|n| KEX.contains(n));
    Ok(Agreed {
        cipher_in,
        cipher_out,
        strict: strict_offered && names(kex).any(|n| n == STRICT_CLIENT),
        wrong_guess: guessed && (first_kex != chosen_kex || first_host != Some(HOST_KEY)),
    })
}

/// The exchange hash under construction: the parts known before the
/// client's key share, hashed as they arrive so that nothing is kept.
#[derive(Clone)]
pub struct Exchange {
    hash: digest::Context,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange")
    }
}

/// The keys of both directions, ready to switch on.
#[derive(Debug)]
pub struct Keys {
    /// Client to server.
    pub opener: Opener,
    /// Server to client.
    pub sealer: Sealer,
}

impl Exchange {
    /// Starts with both identification lines (without their line ends).
    pub fn new(client_version: &[u8], server_version: &[u8]) -> Exchange {
        let mut hash = digest::Context::new(&SHA256);
        for part in [client_version, server_version] {
            hash_string(&mut hash, part);
        }
        Exchange { hash }
    }

    /// Adds both `KEXINIT` payloads.
    pub fn kexinits(&mut self, client: &[u8], server: &[u8]) {
        hash_string(&mut self.hash, client);
        hash_string(&mut self.hash, server);
    }

    /// Answers the client's `SSH_MSG_KEX_ECDH_INIT` payload: our reply
    /// payload and the keys, or `None` for a key share that is not one.
    pub fn reply(self, init: &[u8], host: &HostKey, agreed: &Agreed) -> Option<(Vec<u8>, Keys)> {
        let mut r = Reader::new(init);
        r.u8()?;
        let q_c = string(&mut r)?;
        if q_c.len() != 32 {
            return None;
        }
        let rng = SystemRandom::new();
        let ours = EphemeralPrivateKey::generate(&X25519, &rng).ok()?;
        let q_s = ours.compute_public_key().ok()?;
        let mut k = Vec::with_capacity(37);
        agreement::agree_ephemeral(ours, &UnparsedPublicKey::new(&X25519, q_c), |secret| {
            put_mpint(&mut k, secret)
        })
        .ok()?;
        let k_s = host.blob();
        let mut hash = self.hash;
        for part in [&k_s[..], q_c, q_s.as_ref()] {
            hash_string(&mut hash, part);
        }
        hash.update(&k);
        let h = hash.finish();
        let h = h.as_ref();

        let mut p = vec![KEX_ECDH_REPLY];
        put_string(&mut p, &k_s);
        put_string(&mut p, q_s.as_ref());
        put_string(&mut p, &host.sign(h));
        // The first exchange's hash is the session id.
        let derive = |letter: u8, len: usize| derive(&k, h, letter, h, len);
        let (c_in, c_out) = (agreed.cipher_in, agreed.cipher_out);
        let keys = Keys {
            opener: Opener::new(
                c_in,
                &derive(b'C', c_in.key_len()),
                &derive(b'A', c_in.iv_len()),
            )?,
            sealer: Sealer::new(
                c_out,
                &derive(b'D', c_out.key_len()),
                &derive(b'B', c_out.iv_len()),
            )?,
        };
        Some((p, keys))
    }
}

/// Hashes `s` as an SSH `string`.
fn hash_string(hash: &mut digest::Context, s: &[u8]) {
    hash.update(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    hash.update(s);
}

/// `HASH(K || H || letter || session_id)`, extended with
/// `HASH(K || H || so far)` to `len` bytes (RFC 4253 §7.2).
pub(super) fn derive(k: &[u8], h: &[u8], letter: u8, session_id: &[u8], len: usize) -> Vec<u8> {
    let mut ctx = digest::Context::new(&SHA256);
    ctx.update(k);
    ctx.update(h);
    ctx.update(&[letter]);
    ctx.update(session_id);
    let mut key = ctx.finish().as_ref().to_vec();
    while key.len() < len {
        let mut ctx = digest::Context::new(&SHA256);
        ctx.update(k);
        ctx.update(h);
        ctx.update(&key);
        key.extend_from_slice(ctx.finish().as_ref());
    }
    key.truncate(len);
    key
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A client `KEXINIT` with these ten name-lists.
    pub fn client_kexinit(lists: [&[u8]; 10], guess: bool) -> Vec<u8> {
        let mut p = vec![KEXINIT];
        p.extend_from_slice(&[9; 16]);
        for list in lists {
            put_string(&mut p, list);
        }
        p.push(u8::from(guess));
        put_u32(&mut p, 0);
        p
    }

    /// OpenSSH 9.2's client `KEXINIT` lists (from a capture).
    pub fn openssh_client_kexinit(guess: bool) -> Vec<u8> {
        client_kexinit(
            [
                b"sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha256,ext-info-c,kex-strict-c-v00@openssh.com",
                b"ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,ssh-ed25519,rsa-sha2-512",
                b"chacha20-poly1305@openssh.com,aes128-ctr,aes128-gcm@openssh.com",
                b"chacha20-poly1305@openssh.com,aes128-ctr,aes128-gcm@openssh.com",
                b"umac-64-etm@openssh.com,hmac-sha2-256",
                b"umac-64-etm@openssh.com,hmac-sha2-256",
                b"none,zlib@openssh.com,zlib",
                b"none,zlib@openssh.com,zlib",
                b"",
                b"",
            ],
            guess,
        )
    }

    #[test]
    fn the_clients_first_supported_choice_wins() {
        let a = agree(&openssh_client_kexinit(false), true).unwrap();
        assert_eq!(a.cipher_in, Algorithm::ChaCha20Poly1305);
        assert!(a.strict && !a.wrong_guess);
        assert!(!agree(&openssh_client_kexinit(false), false).unwrap().strict);
        // sntrup761 was guessed; we chose curve25519.
        assert!(
            agree(&openssh_client_kexinit(true), true)
                .unwrap()
                .wrong_guess
        );
    }

    #[test]
    fn our_kexinit_reads_back_as_one_we_agree_with() {
        let ours = kexinit([1; 16], true);
        let a = agree(&ours, true).unwrap();
        assert_eq!(a.cipher_out, Algorithm::ChaCha20Poly1305);
        assert!(!a.strict, "the server marker is not the client's");
    }

    #[test]
    fn no_common_algorithm_is_refused_with_openssh_words() {
        let p = client_kexinit(
            [
                b"diffie-hellman-group1-sha1",
                b"ssh-rsa",
                b"aes128-cbc",
                b"aes128-cbc",
                b"hmac-md5",
                b"hmac-md5",
                b"none",
                b"none",
                b"",
                b"",
            ],
            false,
        );
        assert_eq!(
            agree(&p, true),
            Err("no matching key exchange method found")
        );
        assert_eq!(agree(&p[..30], true), Err("invalid KEXINIT"));
    }

    #[test]
    fn keys_extend_past_one_hash() {
        let k = derive(b"k", b"h", b'C', b"sid", 64);
        assert_eq!(k[..16], derive(b"k", b"h", b'C', b"sid", 16)[..]);
        let mut ctx = digest::Context::new(&SHA256);
        ctx.update(b"kh");
        ctx.update(&k[..32]);
        assert_eq!(&k[32..], ctx.finish().as_ref());
    }
}
