//! Microsoft SQL Server (TDS) up to the login: the pre-login answer of SQL
//! Server 2019 without encryption, so that a client sends its LOGIN7 in
//! clear; user and password (TDS merely obfuscates it) are recorded and the
//! login fails with error 18456, as a real server's would.

use super::{Context, Login, Logins, Out, Step};
use crate::reader::Reader;

const PRELOGIN: u8 = 0x12;
const LOGIN7: u8 = 0x10;
const TABULAR: u8 = 0x04;

/// Largest TDS packet read.
const MAX_PACKET: usize = 4000;

/// A TDS connection.
#[derive(Debug, Default)]
pub struct Mssql {
    prelogin_done: bool,
}

/// SQL Server 2019 RTM (15.0.2000): VERSION, ENCRYPTION = NOT_SUP,
/// INSTOPT, THREADID, then the values.
const PRELOGIN_RESPONSE: &[u8] = b"\x04\x01\x00\x25\x00\x00\x01\x00\
\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x01\x03\x00\x1d\x00\x00\xff\
\x0f\x00\x07\xd0\x00\x00\x02\x00";

impl Mssql {
    /// Answers PRELOGIN, then reads LOGIN7.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let mut r = Reader::new(input);
        let (Some(kind), Some(_status), Some(len)) = (r.u8(), r.u8(), r.u16be()) else {
            return (0, Step::More);
        };
        let len = usize::from(len);
        if !(8..=MAX_PACKET).contains(&len) || !matches!(kind, PRELOGIN | LOGIN7) {
            return (input.len(), Step::Close);
        }
        let Some(packet) = input.get(..len) else {
            return (0, Step::More);
        };
        let payload = packet.get(8..).unwrap_or_default();
        match kind {
            PRELOGIN if !self.prelogin_done => {
                self.prelogin_done = true;
                out.push(PRELOGIN_RESPONSE);
                (len, Step::More)
            }
            LOGIN7 => {
                let user = login7(payload).map(|(user, password)| {
                    let name = String::from_utf8_lossy(&user).into_owned();
                    logins.add(Login::new("mssql", &user).with("password", &password));
                    name
                });
                login_failed(cx, user.as_deref().unwrap_or(""), out);
                (len, Step::Close)
            }
            _ => (input.len(), Step::Close),
        }
    }
}

/// User name and password of a LOGIN7 body (strings are UTF-16LE at
/// offsets from the body's start; the password's bytes are nibble-swapped
/// and XORed with 0xA5).
fn login7(body: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let field = |at: usize| -> Option<&[u8]> {
        let mut r = Reader::new(body.get(at..)?);
        let offset = usize::from(r.u16le()?);
        let chars = usize::from(r.u16le()?);
        body.get(offset..offset.checked_add(chars.checked_mul(2)?)?)
    };
    let user = utf16(field(40)?);
    let password: Vec<u8> = field(44)?
        .iter()
        .map(|&b| {
            let x = b ^ 0xa5;
            x.rotate_left(4)
        })
        .collect();
    Some((user, utf16(&password)))
}

/// UTF-16LE to UTF-8 (unpaired surrogates become U+FFFD).
fn utf16(bytes: &[u8]) -> Vec<u8> {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect::<String>()
        .into_bytes()
}

/// ERROR 18456 "Login failed for user '…'." and DONE (error), as a
/// tabular result.
fn login_failed(cx: &Context<'_>, user: &str, out: &mut Out) {
    let shown: String = user
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.\\@ ".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    let message = format!("Login failed for user '{shown}'.");
    let server = match cx.profile {
        crate::profile::Profile::WindowsWorkstation => "WS01",
        _ => "SQL01",
    };
    let mut token = Vec::new();
    token.extend_from_slice(&18456u32.to_le_bytes());
    token.push(1); // state
    token.push(14); // class
    us_varchar(&message, &mut token, true);
    us_varchar(server, &mut token, false);
    us_varchar("", &mut token, false);
    token.extend_from_slice(&1u32.to_le_bytes()); // line number
    let mut body = vec![0xaa];
    body.extend_from_slice(&u16::try_from(token.len()).unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&token);
    // DONE: status DONE_ERROR, current command 0, row count 0.
    body.extend_from_slice(&[0xfd, 0x02, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    let len = u16::try_from(body.len() + 8).unwrap_or(0).to_be_bytes();
    out.push(&[TABULAR, 0x01]);
    out.push(&len);
    out.push(&[0, 0, 1, 0]);
    out.push(&body);
}

/// A B_VARCHAR (`wide`: US_VARCHAR with a 2-byte length) in UTF-16LE.
fn us_varchar(s: &str, out: &mut Vec<u8>, wide: bool) {
    let units: Vec<u16> = s.encode_utf16().collect();
    if wide {
        out.extend_from_slice(&u16::try_from(units.len()).unwrap_or(0).to_le_bytes());
    } else {
        out.push(u8::try_from(units.len()).unwrap_or(0));
    }
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run_bytes};
    use super::*;
    use crate::profile::Profile;

    /// nmap's ms-sql-s probe.
    const NMAP_PRELOGIN: &[u8] = b"\x12\x01\x00\x34\x00\x00\x00\x00\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x0c\x03\x00\x28\x00\x04\xff\x08\x00\x01\x55\x00\x00\x00\x4d\x53\x53\x51\x4c\x53\x65\x72\x76\x65\x72\x00\x48\x0f\x00\x00";

    fn login7_packet(user: &str, password: &str) -> Vec<u8> {
        let enc = |s: &str, obfuscate: bool| -> Vec<u8> {
            s.encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .map(|b| {
                    if obfuscate {
                        b.rotate_left(4) ^ 0xa5
                    } else {
                        b
                    }
                })
                .collect()
        };
        let mut body = vec![0u8; 94];
        let (u, p) = (enc(user, false), enc(password, true));
        let mut at = 94u16;
        body[40..42].copy_from_slice(&at.to_le_bytes());
        body[42..44].copy_from_slice(&(user.encode_utf16().count() as u16).to_le_bytes());
        at += u.len() as u16;
        body[44..46].copy_from_slice(&at.to_le_bytes());
        body[46..48].copy_from_slice(&(password.encode_utf16().count() as u16).to_le_bytes());
        body.extend_from_slice(&u);
        body.extend_from_slice(&p);
        let mut packet = vec![LOGIN7, 1];
        packet.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
        packet.extend_from_slice(&[0, 0, 1, 0]);
        packet.extend_from_slice(&body);
        packet
    }

    #[test]
    fn prelogin_then_login7_is_recorded_and_fails() {
        let c = cx(1433, Profile::WindowsWorkstation);
        let (out, logins, step) =
            run_bytes(&c, &[NMAP_PRELOGIN, &login7_packet("sa", "Passw0rd!")]);
        assert!(out.starts_with(PRELOGIN_RESPONSE));
        assert_eq!(step, Step::Close);
        assert_eq!(
            (logins[0].protocol, logins[0].username.as_str()),
            ("mssql", "sa")
        );
        assert_eq!(logins[0].field("password"), Some("Passw0rd!"));
        let rest = &out[PRELOGIN_RESPONSE.len()..];
        assert_eq!(rest[0], TABULAR);
        assert_eq!(
            usize::from(u16::from_be_bytes([rest[2], rest[3]])),
            rest.len()
        );
        let text: Vec<u8> = "Login failed for user 'sa'."
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(rest.windows(text.len()).any(|w| w == text));
    }

    #[test]
    fn bad_offsets_and_other_packets_close_without_a_login() {
        let mut bad = login7_packet("u", "p");
        bad[8 + 40] = 0xff;
        bad[8 + 41] = 0xff;
        let (_, logins, step) = run_bytes(&cx(1433, Profile::WindowsWorkstation), &[&bad]);
        assert!(logins.is_empty());
        assert_eq!(step, Step::Close);
        let (_, _, step) = run_bytes(
            &cx(1433, Profile::WindowsWorkstation),
            &[b"GET / HTTP/1.0\r\n\r\n"],
        );
        assert_eq!(step, Step::Close);
        let (_, _, step) = run_bytes(
            &cx(1433, Profile::WindowsWorkstation),
            &[b"\x12\x01\x00\x34\x00"],
        );
        assert_eq!(step, Step::More);
    }
}
