//! Remote Desktop up to TLS: the client's X.224 Connection Request (with
//! its `mstshash` cookie, the user name it will log in as) is answered with
//! the Connection Confirm of a Windows 10 host that requires Network Level
//! Authentication; TLS follows (the responder's TLS layer), and inside it
//! CredSSP up to the password (see `credssp`).

use super::{Context, Login, Logins, Out, Step};
use crate::reader::Reader;

/// Largest TPKT read.
const MAX_TPKT: usize = 1024;

/// An RDP connection.
#[derive(Debug, Default)]
pub struct Rdp {
    confirmed: bool,
}

const PROTOCOL_SSL: u32 = 1;
const PROTOCOL_HYBRID: u32 = 2;

impl Rdp {
    /// Whether the Connection Confirm went out (TLS follows).
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// Answers the Connection Request.
    pub fn input(
        &mut self,
        _cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        if self.confirmed {
            // TLS from here on: read it for the fingerprint, then close.
            return (input.len(), Step::Linger);
        }
        let mut r = Reader::new(input);
        let (Some(version), Some(_), Some(len)) = (r.u8(), r.u8(), r.u16be()) else {
            return (0, Step::More);
        };
        let len = usize::from(len);
        if version != 3 || !(11..=MAX_TPKT).contains(&len) {
            return (input.len(), Step::Close);
        }
        let Some(tpkt) = input.get(..len) else {
            return (0, Step::More);
        };
        // X.224: length indicator, CR code 0xE0, dst-ref, src-ref, class.
        let Some(x224) = tpkt.get(4..) else {
            return (input.len(), Step::Close);
        };
        if x224.get(1).map(|c| c & 0xf0) != Some(0xe0) {
            return (input.len(), Step::Close);
        }
        let data = x224.get(7..).unwrap_or_default();
        let (cookie, rest) = cookie(data);
        if let Some(user) = cookie {
            logins.add(Login::new("rdp", user));
        }
        let requested = neg_request(rest);
        self.confirmed = true;
        out.push(b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00");
        match requested {
            Some(p) if p & PROTOCOL_HYBRID != 0 => {
                out.push(b"\x02\x1f\x08\x00");
                out.push(&PROTOCOL_HYBRID.to_le_bytes());
                (len, Step::More)
            }
            Some(p) if p & PROTOCOL_SSL != 0 => {
                out.push(b"\x02\x1f\x08\x00");
                out.push(&PROTOCOL_SSL.to_le_bytes());
                (len, Step::More)
            }
            // Standard RDP security only: NLA is required
            // (HYBRID_REQUIRED_BY_SERVER).
            _ => {
                out.push(b"\x03\x00\x08\x00\x05\x00\x00\x00");
                (len, Step::Close)
            }
        }
    }
}

/// The `Cookie: mstshash=<user>\r\n` at the start of the CR's data, and
/// what follows it.
fn cookie(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(rest) = data.strip_prefix(b"Cookie: mstshash=") else {
        return (None, data);
    };
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(end) => (rest.get(..end), rest.get(end + 2..).unwrap_or_default()),
        None => (None, &[]),
    }
}

/// The requested protocols of an RDP_NEG_REQ.
fn neg_request(data: &[u8]) -> Option<u32> {
    let mut r = Reader::new(data);
    if r.u8()? != 1 {
        return None;
    }
    r.u8()?;
    if r.u16le()? != 8 {
        return None;
    }
    r.u32le()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run_bytes};
    use super::*;
    use crate::profile::Profile;

    /// nmap's TerminalServerCookie probe.
    const NMAP: &[u8] = b"\x03\0\0*%\xe0\0\0\0\0\0Cookie: mstshash=nmap\r\n\x01\0\x08\0\x03\0\0\0";

    #[test]
    fn nmap_gets_windows_10s_confirm_and_the_cookie_is_recorded() {
        let (out, logins, step) = run_bytes(&cx(3389, Profile::WindowsWorkstation), &[NMAP]);
        assert_eq!(
            out,
            b"\x03\0\0\x13\x0e\xd0\0\0\x124\0\x02\x1f\x08\0\x02\0\0\0"
        );
        assert_eq!(step, Step::More);
        assert_eq!(
            (logins[0].protocol, logins[0].username.as_str()),
            ("rdp", "nmap")
        );
        let (_, _, step) = run_bytes(
            &cx(3389, Profile::WindowsWorkstation),
            &[NMAP, b"\x16\x03\x01\x00\x05hello"],
        );
        assert_eq!(step, Step::Linger);
    }

    #[test]
    fn standard_security_is_refused_and_garbage_closed() {
        let (out, logins, step) = run_bytes(
            &cx(3389, Profile::WindowsWorkstation),
            &[b"\x03\0\0\x0b\x06\xe0\0\0\0\0\0"],
        );
        assert!(logins.is_empty());
        assert_eq!(step, Step::Close);
        assert!(out.ends_with(b"\x03\x00\x08\x00\x05\x00\x00\x00"));
        let (_, _, step) = run_bytes(&cx(3389, Profile::WindowsWorkstation), &[b"\x03\0\xff\xff"]);
        assert_eq!(step, Step::Close);
        let (_, _, step) = run_bytes(
            &cx(3389, Profile::WindowsWorkstation),
            &[b"\x03\0\0\x20\x06"],
        );
        assert_eq!(step, Step::More);
    }
}
