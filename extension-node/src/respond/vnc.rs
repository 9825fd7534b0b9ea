//! VNC (RFB 3.3–3.8) up to the password: version, the "VNC
//! Authentication" security type, a fresh 16-byte challenge, and the
//! client's DES response recorded (with the challenge it answers, so the
//! password can be checked against a word list offline), then "failed".

use super::{Context, Login, Logins, Out, Step};

/// Where the RFB handshake is.
#[derive(Debug, Default)]
pub struct Vnc {
    state: State,
    /// The client's minor version (3, 7 or 8).
    minor: u8,
    challenge: [u8; 16],
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Version,
    SecurityType,
    Response,
    Done,
}

/// `RFB 003.008\n`.
pub fn greet(out: &mut Out) {
    out.push(b"RFB 003.008\n");
}

fn challenge(seed: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    let (a, b) = c.split_at_mut(8);
    a.copy_from_slice(&seed.to_le_bytes());
    b.copy_from_slice(
        &seed
            .rotate_left(29)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .to_le_bytes(),
    );
    c
}

impl Vnc {
    /// Takes the client's version, its security type, its response.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        match self.state {
            State::Version => {
                let Some(v) = input.get(..12) else {
                    return (0, Step::More);
                };
                let minor = match v {
                    b"RFB 003.003\n" => 3,
                    b"RFB 003.007\n" => 7,
                    b"RFB 003.008\n" => 8,
                    // Other minors are treated as 3.3 (RFC 6143 7.1.1);
                    // anything else is not a VNC client.
                    _ if v.starts_with(b"RFB 003.") => 3,
                    _ => return (input.len(), Step::Close),
                };
                self.minor = minor;
                self.challenge = challenge(cx.seed);
                if minor == 3 {
                    // 3.3: the server picks the type (2, VNC auth).
                    out.push(&2u32.to_be_bytes());
                    out.push(&self.challenge);
                    self.state = State::Response;
                } else {
                    out.push(&[1, 2]);
                    self.state = State::SecurityType;
                }
                (12, Step::More)
            }
            State::SecurityType => {
                let Some(&t) = input.first() else {
                    return (0, Step::More);
                };
                if t != 2 {
                    self.fail(out, "Authentication failure");
                    return (1, Step::Close);
                }
                out.push(&self.challenge);
                self.state = State::Response;
                (1, Step::More)
            }
            State::Response => {
                let Some(response) = input.get(..16) else {
                    return (0, Step::More);
                };
                logins.add(
                    Login::new("vnc", b"")
                        .with_hex("response", response)
                        .with_hex("challenge", &self.challenge),
                );
                self.fail(out, "Authentication failed");
                (16, Step::Close)
            }
            State::Done => (input.len(), Step::Close),
        }
    }

    /// SecurityResult "failed", with a reason from 3.8 on.
    fn fail(&mut self, out: &mut Out, reason: &str) {
        self.state = State::Done;
        out.push(&1u32.to_be_bytes());
        if self.minor >= 8 {
            out.push(&u32::try_from(reason.len()).unwrap_or(0).to_be_bytes());
            out.text(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run_bytes};
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn rfb_3_8_challenge_response_is_recorded() {
        let c = cx(5900, Profile::LinuxServer);
        let (out, logins, step) = run_bytes(&c, &[b"RFB 003.008\n", &[2], &[0xab; 16]]);
        assert_eq!(step, Step::Close);
        assert_eq!(&out[..12], b"RFB 003.008\n");
        assert_eq!(&out[12..14], &[1, 2]);
        let ch = &out[14..30];
        assert_eq!(&out[30..34], &[0, 0, 0, 1]);
        assert!(out.ends_with(b"Authentication failed"));
        assert_eq!(logins[0].field("response"), Some("ab".repeat(16).as_str()));
        let hex: String = ch.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(logins[0].field("challenge"), Some(hex.as_str()));
    }

    #[test]
    fn rfb_3_3_gets_the_type_and_challenge_at_once() {
        let (out, logins, _) = run_bytes(&cx(5901, Profile::Nas), &[b"RFB 003.003\n", &[1; 16]]);
        assert_eq!(&out[12..16], &[0, 0, 0, 2]);
        assert_eq!(out.len(), 12 + 4 + 16 + 4);
        assert_eq!(logins.len(), 1);
    }

    #[test]
    fn other_clients_are_closed() {
        let (_, logins, step) = run_bytes(
            &cx(5900, Profile::LinuxServer),
            &[b"GET / HTTP/1.0\r\n\r\n"],
        );
        assert!(logins.is_empty());
        assert_eq!(step, Step::Close);
        let (_, _, step) = run_bytes(&cx(5900, Profile::LinuxServer), &[b"RFB 003.008\n\x01"]);
        assert_eq!(step, Step::Close);
    }
}
