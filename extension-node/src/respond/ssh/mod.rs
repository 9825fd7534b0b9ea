//! SSH up to the password: the identification lines, a real key exchange
//! (curve25519-sha256, an ed25519 host key, chacha20-poly1305 or AES-GCM,
//! all from ring), the `ssh-userauth` service, and every `password`
//! request recorded and refused, as OpenSSH refuses them — until
//! `MaxAuthTries`, six, when it hangs up.
//!
//! Nothing past authentication exists: no login ever succeeds, so no
//! channel, compression or re-keying is needed. Each step reads one whole
//! packet from the tripwire's buffer (whose cap bounds the whole
//! conversation), and the state kept between packets is the running
//! exchange hash and the two cipher states.

mod cipher;
mod kex;
mod wire;

use honeybee_process::private_files;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::line::{next_line, Line};
use super::{mix, Context, Login, Logins, Out, Step};
use cipher::{Opened, Opener, Sealer};
use kex::{Agreed, Exchange};
use wire::{boolean, plain_packet, put_string, put_u32, string, Packet, Reader};

const DISCONNECT: u8 = 1;
const IGNORE: u8 = 2;
const UNIMPLEMENTED: u8 = 3;
const DEBUG: u8 = 4;
const SERVICE_REQUEST: u8 = 5;
const SERVICE_ACCEPT: u8 = 6;
const NEWKEYS: u8 = 21;
const KEX_ECDH_INIT: u8 = 30;
const USERAUTH_REQUEST: u8 = 50;
const USERAUTH_FAILURE: u8 = 51;

/// Largest host key file read (ring's ed25519 PKCS#8 is 83 bytes).
const MAX_KEY_FILE: u64 = 1024;

/// OpenSSH's `MaxAuthTries` default.
const MAX_AUTH_TRIES: u8 = 6;
/// `SSH_DISCONNECT_PROTOCOL_ERROR`, also used for too many failures.
const PROTOCOL_ERROR: u32 = 2;

/// The server's ed25519 host key, one for every connection (made at the
/// first SSH connection, as the TLS certificate is).
pub struct HostKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostKey")
    }
}

impl HostKey {
    /// A fresh key.
    pub fn new() -> Result<HostKey, String> {
        HostKey::generate().map(|(key, _)| key)
    }

    /// A fresh key, and its PKCS#8 document to keep it by.
    pub fn generate() -> Result<(HostKey, Vec<u8>), String> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| "generating the SSH host key".to_string())?;
        let key = HostKey::from_pkcs8(pkcs8.as_ref())?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    /// The key of a PKCS#8 document made by [`HostKey::generate`].
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<HostKey, String> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| format!("not an ed25519 PKCS#8 key ({e})"))?;
        Ok(HostKey { pair })
    }

    /// The key kept in `path`, or a new one written there (0600, atomically)
    /// when there is none. A file that is a symbolic link, larger than a
    /// key, or not a key is left alone and a new key serves this run.
    pub fn load_or_create(path: &std::path::Path) -> Result<HostKey, String> {
        match private_files::read_secret_bytes(path, MAX_KEY_FILE) {
            Ok(bytes) => HostKey::from_pkcs8(&bytes)
                .map_err(|e| format!("SSH host key {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, pkcs8) = HostKey::generate()?;
                private_files::write_private(path, &pkcs8)
                    .map_err(|e| format!("writing the SSH host key {}: {e}", path.display()))?;
                Ok(key)
            }
            Err(e) => Err(format!("reading the SSH host key {}: {e}", path.display())),
        }
    }

    /// The public key as SSH sends it (`K_S`).
    pub fn blob(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(51);
        put_string(&mut b, b"ssh-ed25519");
        put_string(&mut b, self.pair.public_key().as_ref());
        b
    }

    /// The signature of the exchange hash `h`, as SSH sends it.
    fn sign(&self, h: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(83);
        put_string(&mut b, b"ssh-ed25519");
        put_string(&mut b, self.pair.sign(h).as_ref());
        b
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Version,
    KexInit,
    EcdhInit,
    NewKeys,
    Service,
    Auth,
}

/// One SSH connection.
#[derive(Debug)]
pub struct Ssh {
    phase: Phase,
    exchange: Option<Exchange>,
    agreed: Option<Agreed>,
    /// The client's cipher, waiting for its `NEWKEYS`.
    pending: Option<Opener>,
    opener: Option<Opener>,
    sealer: Option<Sealer>,
    seq_in: u32,
    seq_out: u32,
    tries: u8,
    /// The connection's seed: our `KEXINIT` cookie.
    seed: u64,
    /// Where the next padding comes from.
    fill: u64,
}

impl Ssh {
    /// A connection that has been sent our identification line.
    pub fn new(cx: &Context<'_>) -> Ssh {
        Ssh {
            phase: Phase::Version,
            exchange: None,
            agreed: None,
            pending: None,
            opener: None,
            sealer: None,
            seq_in: 0,
            seq_out: 0,
            tries: 0,
            seed: cx.seed,
            fill: cx.seed,
        }
    }

    /// Takes the client's identification line or its next packet.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        if self.phase == Phase::Version {
            return self.version(cx, input, out);
        }
        let (payload, used) = match self.next_packet(input) {
            Opened::Whole(p, used) => (p, used),
            Opened::Partial => return (0, Step::More),
            Opened::Bad => return (input.len(), Step::Close),
        };
        self.seq_in = self.seq_in.wrapping_add(1);
        let step = match payload.first().copied() {
            Some(DISCONNECT) | None => Step::Close,
            Some(IGNORE | DEBUG | UNIMPLEMENTED) => Step::More,
            Some(kind) => self.message(cx, kind, &payload, out, logins),
        };
        (used, step)
    }

    fn next_packet(&mut self, input: &[u8]) -> Opened {
        match &mut self.opener {
            Some(o) => o.open(self.seq_in, input),
            None => match plain_packet(input) {
                Packet::Whole(p, used) => Opened::Whole(p.to_vec(), used),
                Packet::Partial => Opened::Partial,
                Packet::Bad => Opened::Bad,
            },
        }
    }

    /// The client's `SSH-2.0-…` line: ours is sent already, our `KEXINIT`
    /// follows it, as sshd sends it once it has heard the client.
    fn version(&mut self, cx: &Context<'_>, input: &[u8], out: &mut Out) -> (usize, Step) {
        let (line, used) = match next_line(input, false) {
            Line::Complete(line, used) => (line, used),
            Line::Partial => return (0, Step::More),
            Line::TooLong(n) => return (n, Step::Close),
        };
        if !(line.starts_with(b"SSH-2.0-") || line.starts_with(b"SSH-1.99-")) {
            // sshd's own words to a client that is not SSH 2.
            out.text(if line.starts_with(b"SSH-") {
                "Protocol major versions differ.\r\n"
            } else {
                "Invalid SSH identification string.\r\n"
            });
            return (used, Step::Close);
        }
        let ours = server_version(cx);
        self.exchange = Some(Exchange::new(line, &ours));
        let payload = kex::kexinit(self.cookie(), strict_offered(&ours));
        self.send(&payload, out);
        self.phase = Phase::KexInit;
        (used, Step::More)
    }

    fn cookie(&self) -> [u8; 16] {
        let mut c = [0u8; 16];
        let (a, b) = c.split_at_mut(8);
        a.copy_from_slice(&mix(self.seed).to_le_bytes());
        b.copy_from_slice(&mix(self.seed ^ 0x00c0_0c1e).to_le_bytes());
        c
    }

    /// One message of the key exchange or of authentication.
    fn message(
        &mut self,
        cx: &Context<'_>,
        kind: u8,
        payload: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> Step {
        match (self.phase, kind) {
            (Phase::KexInit, kex::KEXINIT) => self.kexinit(cx, payload, out),
            (Phase::EcdhInit, _) if self.agreed.is_some_and(|a| a.wrong_guess) => {
                // The client's guessed packet for a method we did not pick.
                if let Some(a) = &mut self.agreed {
                    a.wrong_guess = false;
                }
                Step::More
            }
            (Phase::EcdhInit, KEX_ECDH_INIT) => self.ecdh(cx, payload, out),
            (Phase::NewKeys, NEWKEYS) => {
                self.opener = self.pending.take();
                if self.agreed.is_some_and(|a| a.strict) {
                    self.seq_in = 0;
                }
                self.phase = Phase::Service;
                Step::More
            }
            (Phase::Service, SERVICE_REQUEST) => {
                let mut r = Reader::new(payload.get(1..).unwrap_or_default());
                if string(&mut r) != Some(b"ssh-userauth") {
                    return self.disconnect(PROTOCOL_ERROR, "bad service request", out);
                }
                let mut p = vec![SERVICE_ACCEPT];
                put_string(&mut p, b"ssh-userauth");
                self.send(&p, out);
                self.phase = Phase::Auth;
                Step::More
            }
            (Phase::Auth, USERAUTH_REQUEST) => self.userauth(payload, out, logins),
            // A message out of place ends the connection, as in sshd.
            _ => Step::Close,
        }
    }

    fn kexinit(&mut self, cx: &Context<'_>, client: &[u8], out: &mut Out) -> Step {
        let ours = server_version(cx);
        let strict = strict_offered(&ours);
        match kex::agree(client, strict) {
            Ok(agreed) => {
                let ours = kex::kexinit(self.cookie(), strict);
                if let Some(x) = &mut self.exchange {
                    x.kexinits(client, &ours);
                }
                self.agreed = Some(agreed);
                self.phase = Phase::EcdhInit;
                Step::More
            }
            // sshd says why and hangs up.
            Err(why) => self.disconnect(3, why, out),
        }
    }

    fn ecdh(&mut self, cx: &Context<'_>, init: &[u8], out: &mut Out) -> Step {
        let (Some(x), Some(agreed), Some(host)) = (self.exchange.take(), self.agreed, cx.ssh_key)
        else {
            return Step::Close;
        };
        let Some((reply, keys)) = x.reply(init, host, &agreed) else {
            return Step::Close;
        };
        self.send(&reply, out);
        self.send(&[NEWKEYS], out);
        self.sealer = Some(keys.sealer);
        if agreed.strict {
            self.seq_out = 0;
        }
        self.pending = Some(keys.opener);
        self.phase = Phase::NewKeys;
        Step::More
    }

    /// A `USERAUTH_REQUEST`: a password is recorded; every method fails.
    fn userauth(&mut self, payload: &[u8], out: &mut Out, logins: &mut Logins<'_>) -> Step {
        let mut r = Reader::new(payload.get(1..).unwrap_or_default());
        let (Some(user), Some(_service), Some(method)) =
            (string(&mut r), string(&mut r), string(&mut r))
        else {
            return self.disconnect(PROTOCOL_ERROR, "bad userauth request", out);
        };
        match method {
            b"password" => {
                let (Some(_change), Some(password)) = (boolean(&mut r), string(&mut r)) else {
                    return self.disconnect(PROTOCOL_ERROR, "bad userauth request", out);
                };
                logins.add(Login::new("ssh", user).with("password", password));
                self.tries = self.tries.saturating_add(1);
            }
            b"publickey" => self.tries = self.tries.saturating_add(1),
            _ => {}
        }
        if self.tries >= MAX_AUTH_TRIES {
            return self.disconnect(PROTOCOL_ERROR, "Too many authentication failures", out);
        }
        let mut p = vec![USERAUTH_FAILURE];
        put_string(&mut p, b"publickey,password");
        p.push(0);
        self.send(&p, out);
        Step::More
    }

    /// Sends `SSH_MSG_DISCONNECT` and hangs up.
    fn disconnect(&mut self, reason: u32, why: &str, out: &mut Out) -> Step {
        let mut p = vec![DISCONNECT];
        put_u32(&mut p, reason);
        put_string(&mut p, why.as_bytes());
        put_string(&mut p, b"");
        self.send(&p, out);
        Step::Close
    }

    /// Sends one packet, encrypted once the keys are on.
    fn send(&mut self, payload: &[u8], out: &mut Out) {
        self.fill = self
            .fill
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .wrapping_add(0x1405_7b7e_f767_814f);
        let packet = match &mut self.sealer {
            Some(s) => s.seal(self.seq_out, payload, self.fill),
            None => wire::frame(payload, 8, true, self.fill),
        };
        out.push(&packet);
        self.seq_out = self.seq_out.wrapping_add(1);
    }
}

/// Our identification line without its line end (`V_S`).
fn server_version(cx: &Context<'_>) -> Vec<u8> {
    match (cx.banner, crate::banner::banner(cx.port, cx.profile)) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(b)) => b.strip_suffix(b"\r\n").unwrap_or(b).to_vec(),
        (None, None) => b"SSH-2.0-OpenSSH_9.2p1".to_vec(),
    }
}

/// Whether the server we imitate has OpenSSH's strict key exchange
/// (OpenSSH 9.x as patched in 2023; not dropbear 2022, not OpenSSH 8).
fn strict_offered(version: &[u8]) -> bool {
    version.windows(9).any(|w| w == b"OpenSSH_9")
}

#[cfg(test)]
pub(super) mod tests {
    use super::cipher::Algorithm;
    use super::kex::tests::{client_kexinit, openssh_client_kexinit};
    use super::*;
    use crate::profile::Profile;
    use crate::respond::tests::cx;
    use crate::respond::{Dialogue, Login, MAX_LOGINS};
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, X25519};
    use ring::digest::{Context as Hash, SHA256};
    use ring::signature::{UnparsedPublicKey as Verifier, ED25519};

    fn host_key() -> &'static HostKey {
        static KEY: std::sync::OnceLock<HostKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| HostKey::new().unwrap())
    }

    /// The client side, written from RFC 4253 and the test's own reading
    /// of the server's answers: it checks the host key's signature itself.
    struct Client {
        server: Dialogue,
        cx: Context<'static>,
        sent: Vec<u8>,
        /// Server bytes not yet read.
        heard: Vec<u8>,
        sealer: Option<Sealer>,
        opener: Option<Opener>,
        seq_out: u32,
        seq_in: u32,
        step: Step,
    }

    impl Client {
        fn new(profile: Profile) -> Client {
            let mut cx = cx(22, profile);
            cx.ssh_key = Some(host_key());
            let mut server = Dialogue::new(&cx);
            let mut out = Out::new();
            server.greet(&cx, &mut out);
            Client {
                server,
                cx,
                sent: Vec::new(),
                heard: out.bytes().to_vec(),
                sealer: None,
                opener: None,
                seq_out: 0,
                seq_in: 0,
                step: Step::More,
            }
        }

        fn raw(&mut self, bytes: &[u8]) {
            self.sent.extend_from_slice(bytes);
            let mut out = Out::new();
            self.step = self.server.input(&self.cx, &self.sent, &mut out);
            self.heard.extend_from_slice(out.bytes());
        }

        fn send(&mut self, payload: &[u8]) {
            let packet = match &mut self.sealer {
                Some(s) => s.seal(self.seq_out, payload, 5),
                None => wire::frame(payload, 8, true, 5),
            };
            self.seq_out += 1;
            self.raw(&packet);
        }

        /// The next payload the server sent.
        fn hear(&mut self) -> Vec<u8> {
            let got = match &mut self.opener {
                Some(o) => o.open(self.seq_in, &self.heard),
                None => match plain_packet(&self.heard) {
                    Packet::Whole(p, n) => Opened::Whole(p.to_vec(), n),
                    _ => Opened::Bad,
                },
            };
            let Opened::Whole(p, n) = got else {
                panic!("no packet in {:?}", self.heard);
            };
            self.heard.drain(..n);
            self.seq_in += 1;
            p
        }

        fn line(&mut self) -> String {
            let end = self.heard.iter().position(|&b| b == b'\n').unwrap();
            let line: Vec<u8> = self.heard.drain(..=end).collect();
            String::from_utf8(line).unwrap()
        }

        /// Version, key exchange, `ssh-userauth`: returns our `V_C`.
        fn handshake(&mut self, strict_client: bool) {
            let v_c = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3";
            let v_s = self.line();
            self.raw(&[&v_c[..], b"\r\n"].concat());
            let i_s = self.hear();
            let mut i_c = openssh_client_kexinit(false);
            if !strict_client {
                let at = i_c
                    .windows(29)
                    .position(|w| w == b",kex-strict-c-v00@openssh.com");
                i_c.drain(at.unwrap()..at.unwrap() + 29);
                i_c[1..5].copy_from_slice(&[0, 0, 0, 0]);
                let len = u32::from_be_bytes(i_c[17..21].try_into().unwrap()) - 29;
                i_c[17..21].copy_from_slice(&len.to_be_bytes());
            }
            self.send(&i_c);
            let rng = ring::rand::SystemRandom::new();
            let ours = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
            let q_c = ours.compute_public_key().unwrap();
            let mut init = vec![KEX_ECDH_INIT];
            put_string(&mut init, q_c.as_ref());
            self.send(&init);
            let reply = self.hear();
            let mut r = Reader::new(&reply[1..]);
            let (k_s, q_s, sig) = (
                string(&mut r).unwrap(),
                string(&mut r).unwrap(),
                string(&mut r).unwrap(),
            );
            assert_eq!(k_s, host_key().blob());
            let mut k = Vec::new();
            agree_ephemeral(ours, &UnparsedPublicKey::new(&X25519, q_s), |s| {
                wire::put_mpint(&mut k, s)
            })
            .unwrap();
            let mut h = Hash::new(&SHA256);
            for part in [
                &v_c[..],
                v_s.trim_end().as_bytes(),
                &i_c,
                &i_s,
                k_s,
                q_c.as_ref(),
                q_s,
            ] {
                h.update(&(part.len() as u32).to_be_bytes());
                h.update(part);
            }
            h.update(&k);
            let h = h.finish();
            let mut s = Reader::new(sig);
            assert_eq!(string(&mut s), Some(&b"ssh-ed25519"[..]));
            let host = Verifier::new(&ED25519, &k_s[19..]);
            host.verify(h.as_ref(), string(&mut s).unwrap())
                .expect("host key signature");
            assert_eq!(self.hear(), [NEWKEYS]);
            self.send(&[NEWKEYS]);
            let strict = strict_client && strict_offered(v_s.trim_end().as_bytes());
            if strict {
                (self.seq_in, self.seq_out) = (0, 0);
            }
            let alg = Algorithm::ChaCha20Poly1305;
            let key = |c| kex::derive(&k, h.as_ref(), c, h.as_ref(), alg.key_len());
            self.sealer = Sealer::new(alg, &key(b'C'), &[]);
            self.opener = Opener::new(alg, &key(b'D'), &[]);
            let mut req = vec![SERVICE_REQUEST];
            put_string(&mut req, b"ssh-userauth");
            self.send(&req);
            assert_eq!(
                self.hear(),
                [&[SERVICE_ACCEPT, 0, 0, 0, 12][..], b"ssh-userauth"].concat()
            );
        }

        fn password(&mut self, user: &[u8], password: &[u8]) {
            let mut p = vec![USERAUTH_REQUEST];
            for s in [user, b"ssh-connection", b"password"] {
                put_string(&mut p, s);
            }
            p.push(0);
            put_string(&mut p, password);
            self.send(&p);
        }
    }

    /// What an OpenSSH client sends before it hears the server's key:
    /// its version line, `KEXINIT` and `KEX_ECDH_INIT`.
    pub fn client_hello() -> Vec<u8> {
        let mut v = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec();
        v.extend(wire::frame(&openssh_client_kexinit(false), 8, true, 1));
        let mut init = vec![KEX_ECDH_INIT];
        put_string(&mut init, &[9; 32]);
        v.extend(wire::frame(&init, 8, true, 2));
        v
    }

    fn failure() -> Vec<u8> {
        [
            &[USERAUTH_FAILURE, 0, 0, 0, 18][..],
            b"publickey,password",
            &[0],
        ]
        .concat()
    }

    #[test]
    fn a_client_logs_in_over_a_real_key_exchange_and_each_password_is_recorded() {
        for (profile, strict) in [
            (Profile::LinuxServer, true),
            (Profile::Router, true),
            (Profile::LinuxServer, false),
        ] {
            let mut c = Client::new(profile);
            c.handshake(strict);
            let mut none = vec![USERAUTH_REQUEST];
            for s in [&b"root"[..], b"ssh-connection", b"none"] {
                put_string(&mut none, s);
            }
            c.send(&none);
            assert_eq!(c.hear(), failure());
            c.send(&[IGNORE, 0, 0, 0, 0]);
            for pw in [&b"123456"[..], b"admin", b"p\x1b[2Jw", b"4", b"5"] {
                c.password(b"root", pw);
                assert_eq!(c.hear(), failure());
                assert_eq!(c.step, Step::More);
            }
            let logins = c.server.logins().to_vec();
            assert_eq!(logins.len(), MAX_LOGINS);
            assert_eq!(
                logins[0],
                Login::new("ssh", b"root").with("password", b"123456")
            );
            assert_eq!(
                logins[2].field("password"),
                Some("p\u{fffd}[2Jw"),
                "escape made harmless"
            );
            // The sixth failure is the last, as with OpenSSH's MaxAuthTries.
            c.password(b"root", b"6");
            let bye = c.hear();
            assert_eq!(bye[0], DISCONNECT);
            assert!(String::from_utf8_lossy(&bye).contains("Too many authentication failures"));
            assert_eq!(c.step, Step::Close);
        }
    }

    #[test]
    fn a_tampered_packet_after_the_key_exchange_ends_the_connection() {
        let mut c = Client::new(Profile::LinuxServer);
        c.handshake(true);
        let mut packet = c
            .sealer
            .as_mut()
            .unwrap()
            .seal(c.seq_out, b"\x32\0\0\0\x01a", 1);
        packet[8] ^= 4;
        c.raw(&packet);
        assert_eq!(c.step, Step::Close);
        assert!(c.heard.is_empty(), "nothing answered to a forged packet");
    }

    #[test]
    fn other_clients_hear_what_sshd_says_to_them() {
        let mut c = Client::new(Profile::LinuxServer);
        c.line();
        c.raw(b"GET / HTTP/1.0\r\n");
        assert_eq!(
            String::from_utf8_lossy(&c.heard),
            "Invalid SSH identification string.\r\n"
        );
        assert_eq!(c.step, Step::Close);
        let mut c = Client::new(Profile::LinuxServer);
        c.line();
        c.raw(b"SSH-1.5-old\r\n");
        assert_eq!(
            String::from_utf8_lossy(&c.heard),
            "Protocol major versions differ.\r\n"
        );
    }

    #[test]
    fn a_client_with_nothing_in_common_is_told_why() {
        let mut c = Client::new(Profile::Router);
        c.line();
        c.raw(b"SSH-2.0-old\r\n");
        c.hear();
        let p = client_kexinit(
            [
                b"curve25519-sha256",
                b"ssh-ed25519",
                b"aes128-cbc",
                b"aes128-cbc",
                b"",
                b"",
                b"none",
                b"none",
                b"",
                b"",
            ],
            false,
        );
        c.send(&p);
        let bye = c.hear();
        assert_eq!(bye[0], DISCONNECT);
        assert!(String::from_utf8_lossy(&bye).contains("no matching cipher found"));
        assert_eq!(c.step, Step::Close);
    }

    #[test]
    fn a_wrong_guess_is_skipped_and_messages_out_of_place_end_the_connection() {
        let mut c = Client::new(Profile::Router);
        c.line();
        c.raw(b"SSH-2.0-x\r\n");
        c.hear();
        c.send(&openssh_client_kexinit(true));
        // The guessed sntrup761 packet: ignored, no answer.
        c.send(&[KEX_ECDH_INIT, 0, 0, 0, 1, 0]);
        assert!(c.heard.is_empty() && c.step == Step::More);
        // A login before the key exchange is over.
        c.password(b"root", b"x");
        assert_eq!(c.step, Step::Close);
        assert!(c.server.logins().is_empty());
    }

    #[test]
    fn bad_lengths_and_keys_are_refused_and_short_input_waits() {
        let mut c = Client::new(Profile::LinuxServer);
        c.line();
        c.raw(b"SSH-2.0-x\r\n");
        c.hear();
        c.raw(&[0, 0, 0x40]);
        assert_eq!((c.step, c.heard.len()), (Step::More, 0));
        c.raw(&[0, 0]);
        assert_eq!(c.step, Step::Close, "a 16 KiB packet");
        let mut c = Client::new(Profile::LinuxServer);
        c.line();
        c.raw(b"SSH-2.0-x\r\n");
        c.hear();
        c.send(&openssh_client_kexinit(false));
        c.send(&[KEX_ECDH_INIT, 0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(c.step, Step::Close, "a key share of 3 bytes");
        // The all-zero point gives an all-zero secret: refused by ring.
        let mut c = Client::new(Profile::LinuxServer);
        c.line();
        c.raw(b"SSH-2.0-x\r\n");
        c.hear();
        c.send(&openssh_client_kexinit(false));
        let mut init = vec![KEX_ECDH_INIT];
        put_string(&mut init, &[0; 32]);
        c.send(&init);
        assert_eq!(c.step, Step::Close);
    }

    #[test]
    fn without_a_host_key_only_the_banner_is_sent() {
        let c = cx(22, Profile::LinuxServer);
        let (out, _, step) = crate::respond::tests::run(&c, &[b"SSH-2.0-x\r\n"]);
        assert_eq!(out, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        assert_eq!(step, Step::Linger);
    }
}

#[cfg(all(test, unix))]
mod key_file_tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hb-ssh-key-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_host_key_is_made_once_kept_0600_and_the_same_after_a_restart() {
        let d = dir("kept");
        let path = d.join("ssh_host_ed25519_key");
        let first = HostKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = HostKey::load_or_create(&path).unwrap();
        assert_eq!(first.blob(), again.blob());
        assert_ne!(first.blob(), HostKey::new().unwrap().blob());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_planted_link_a_huge_file_or_garbage_is_refused_and_left_alone() {
        let d = dir("hostile");
        let path = d.join("ssh_host_ed25519_key");
        let target = d.join("elsewhere");
        std::fs::write(&target, b"precious").unwrap();
        symlink(&target, &path).unwrap();
        let e = HostKey::load_or_create(&path).unwrap_err();
        assert!(e.contains("link"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, vec![b'x'; 1 << 20]).unwrap();
        let e = HostKey::load_or_create(&path).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        std::fs::write(&path, b"not a key").unwrap();
        let e = HostKey::load_or_create(&path).unwrap_err();
        assert!(e.contains("not an ed25519 PKCS#8 key"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
