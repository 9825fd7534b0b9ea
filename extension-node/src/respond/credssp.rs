//! Remote Desktop's Network Level Authentication (CredSSP, MS-CSSP) up to
//! the password. Inside the TLS session that follows the Connection
//! Confirm, the client's first TSRequest carries an NTLM NEGOTIATE, which
//! gets the CHALLENGE of the profile's host; the next carries the
//! AUTHENTICATE, which is recorded as an `rdp` login (the fields of
//! [`ntlm::record`]: offline-crackable, as hashcat mode 5600) and refused
//! with STATUS_LOGON_FAILURE, as Windows refuses a wrong password; then
//! the connection closes.
//!
//! A client that speaks anything but CredSSP there (standard RDP after a
//! TLS-only negotiation) is read for a moment and closed, as before.

use super::der::{self, der, element, Read};
use super::ntlm;
use super::{Context, Logins, Out, Step};

/// Largest TSRequest waited for: an AUTHENTICATE with its public key
/// proof is under 1 KiB.
const MAX_TS_REQUEST: usize = 3072;
/// The CredSSP version Windows 10 answers with.
const VERSION: u8 = 6;
/// `STATUS_LOGON_FAILURE`, as a DER INTEGER (negative in 32 bits).
const LOGON_FAILURE: &[u8] = &[0xc0, 0x00, 0x00, 0x6d];

/// One CredSSP exchange.
#[derive(Debug, Default)]
pub struct CredSsp {
    challenged: bool,
}

impl CredSsp {
    /// Takes the client's next TSRequest.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let (content, used) = match der::read(input) {
            Read::Whole(0x30, content, used) => (content, used),
            Read::Partial if input.len() < MAX_TS_REQUEST && input.first() == Some(&0x30) => {
                return (0, Step::More)
            }
            _ => return (input.len(), Step::Linger),
        };
        let (version, token) = ts_request(content);
        match token.and_then(ntlm::message) {
            Some((1, m)) if !self.challenged => {
                self.challenged = true;
                let challenge = ntlm::challenge(cx, ntlm::negotiate_flags(m));
                out.push(&reply(Some(&challenge), None));
                (used, Step::More)
            }
            Some((3, m)) if self.challenged => {
                if let Some(login) = ntlm::record("rdp", cx, m) {
                    logins.add(login);
                }
                // Version 3 and later carry the error; older clients see
                // the session end.
                if version >= 3 {
                    out.push(&reply(None, Some(LOGON_FAILURE)));
                }
                (used, Step::Close)
            }
            _ => (used, Step::Close),
        }
    }
}

/// The version and the first negotiation token of a TSRequest's content.
fn ts_request(content: &[u8]) -> (u32, Option<&[u8]>) {
    let mut version = 0;
    let mut token = None;
    for (tag, field) in der::children(content) {
        match tag {
            0xa0 => {
                if let Some((0x02, int)) = der::children(field).next() {
                    version = int.iter().take(4).fold(0u32, |a, &b| a << 8 | u32::from(b));
                }
            }
            // negoTokens: SEQUENCE OF SEQUENCE { [0] OCTET STRING }.
            0xa1 => {
                token = der::children(field)
                    .next()
                    .and_then(|(_, items)| der::children(items).next())
                    .and_then(|(_, item)| der::children(item).next())
                    .and_then(|(_, octets)| der::children(octets).next())
                    .map(|(_, bytes)| bytes);
            }
            _ => {}
        }
    }
    (version, token)
}

/// Our TSRequest: a negotiation token, or an error code.
fn reply(token: Option<&[u8]>, error: Option<&[u8]>) -> Vec<u8> {
    let mut body = element(0xa0, &element(0x02, &[VERSION]));
    if let Some(token) = token {
        let item = element(0x30, &element(0xa0, &element(0x04, token)));
        der(0xa1, &element(0x30, &item), &mut body);
    }
    if let Some(code) = error {
        der(0xa4, &element(0x02, code), &mut body);
    }
    element(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use crate::respond::tests::cx;
    use crate::respond::{Login, MAX_LOGINS};

    /// A client TSRequest of `version` with `token`.
    fn request(version: u8, token: &[u8]) -> Vec<u8> {
        let mut body = element(0xa0, &element(0x02, &[version]));
        let item = element(0x30, &element(0xa0, &element(0x04, token)));
        der(0xa1, &element(0x30, &item), &mut body);
        element(0x30, &body)
    }

    /// FreeRDP's NEGOTIATE (flags of NTLMv2 with signing and sealing).
    const NEGOTIATE: &[u8] = b"NTLMSSP\0\x01\0\0\0\xb7\x82\x08\xe2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

    /// An AUTHENTICATE by `user` of `domain` with a 24-byte LMv2 response.
    fn authenticate(domain: &str, user: &str) -> Vec<u8> {
        let utf16 = |s: &str| {
            s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        let (d, u, lm) = (utf16(domain), utf16(user), [0x5a; 24]);
        let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
        let mut at = 64u32;
        let mut payload = Vec::new();
        for field in [&lm[..], &[], &d, &u, &[], &[]] {
            m.extend_from_slice(&(field.len() as u16).to_le_bytes());
            m.extend_from_slice(&(field.len() as u16).to_le_bytes());
            m.extend_from_slice(&at.to_le_bytes());
            at += field.len() as u32;
            payload.extend_from_slice(field);
        }
        m.extend_from_slice(&1u32.to_le_bytes()); // unicode
        m.extend_from_slice(&payload);
        m
    }

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Login>, Step) {
        let c = cx(3389, Profile::WindowsWorkstation);
        let mut s = CredSsp::default();
        let (mut all, mut heard, mut list) = (Vec::new(), Vec::new(), Vec::new());
        let mut step = Step::More;
        for chunk in chunks {
            all.extend_from_slice(chunk);
            let mut out = Out::new();
            let mut logins = Logins { list: &mut list };
            let (used, st) = s.input(&c, &all, &mut out, &mut logins);
            all.drain(..used);
            heard.extend_from_slice(out.bytes());
            step = st;
        }
        (heard, list, step)
    }

    #[test]
    fn an_nla_login_is_challenged_recorded_and_refused() {
        let neg = request(6, NEGOTIATE);
        let auth = request(6, &authenticate("CORP", "alice"));
        let (heard, logins, step) = run(&[&neg[..3], &neg[3..], &auth]);
        assert_eq!(step, Step::Close);
        let challenge = ntlm::challenge(&cx(3389, Profile::WindowsWorkstation), 0xe208_82b7);
        assert!(
            heard.windows(challenge.len()).any(|w| w == challenge),
            "the CHALLENGE"
        );
        assert!(heard.ends_with(&reply(None, Some(LOGON_FAILURE))));
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].protocol, "rdp");
        assert_eq!(logins[0].username, "alice");
        assert_eq!(logins[0].field("domain"), Some("CORP"));
        assert_eq!(logins[0].field("lmv2"), Some("5a".repeat(24).as_str()));
        assert!(logins.len() <= MAX_LOGINS);
    }

    #[test]
    fn truncated_corrupted_and_random_requests_wait_or_end() {
        let neg = request(6, NEGOTIATE);
        let auth = request(6, &authenticate("CORP", "alice"));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for end in 0..auth.len() {
            inputs.push([&neg[..], &auth[..end]].concat());
            let mut flipped = [&neg[..], &auth[..]].concat();
            if let Some(b) = flipped.get_mut(end + neg.len()) {
                *b ^= 0x41;
            }
            inputs.push(flipped);
        }
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 600) as usize;
            let mut v = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
            v.extend((0..len).map(|i| (x >> (i % 56)) as u8));
            inputs.push(v);
        }
        for input in &inputs {
            let (heard, logins, _) = run(&[input]);
            assert!(heard.len() <= crate::respond::MAX_REPLY);
            assert!(logins.len() <= 1);
        }
    }

    #[test]
    fn old_clients_get_no_error_field_and_others_are_closed() {
        let (heard, logins, _) = run(&[
            &request(2, NEGOTIATE),
            &request(2, &authenticate("", "bob")),
        ]);
        assert_eq!(logins.len(), 1);
        assert!(!heard.ends_with(&reply(None, Some(LOGON_FAILURE))));
        // An AUTHENTICATE without a CHALLENGE, garbage, standard RDP.
        assert_eq!(run(&[&request(6, &authenticate("", "x"))]).2, Step::Close);
        assert_eq!(run(&[&[0x30, 0x80, 0, 0]]).2, Step::Linger);
        assert_eq!(run(&[b"\x03\x00\x01\x2c\x02\xf0\x80"]).2, Step::Linger);
        // A TSRequest that never ends is not waited for past its cap.
        let mut long = vec![0x30, 0x82, 0x7f, 0xff];
        long.resize(MAX_TS_REQUEST, 0);
        assert_eq!(run(&[&long]).2, Step::Linger);
    }
}
