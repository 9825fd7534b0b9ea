//! SMB on 445 (direct TCP) and 139 (NetBIOS session service) up to the
//! NTLM authentication, answered as the profile's file server: Windows 10
//! (`WS01`) for the Windows workstation, Samba 4 (`FILESERVER`, or
//! `DISKSTATION` on the NAS) for the rest.
//!
//! - A NetBIOS Session Request (port 139) gets a Positive Session Response.
//! - An SMB1 NEGOTIATE offering only SMB1 dialects (nmap's `SMBProgNeg`
//!   probe, old tools) gets the SMB1 answer that nmap names "Microsoft
//!   Windows 7 - 10 microsoft-ds" or "Samba smbd 3.X - 4.X", workgroup and
//!   host name included. One that also offers "SMB 2.???" or "SMB 2.002"
//!   (Windows, smbclient, impacket) gets an SMB2 NEGOTIATE answer instead.
//! - An SMB2 NEGOTIATE gets dialect 3.0.2 (or the highest of 2.0.2, 2.1,
//!   3.0 offered; 3.1.1 with its negotiate contexts when that is all the
//!   client speaks) and a SPNEGO hint that offers NTLMSSP only.
//! - SESSION_SETUP: an NTLMSSP NEGOTIATE gets a CHALLENGE (more processing
//!   required); the AUTHENTICATE that follows is recorded as a [`Login`]
//!   (see [`ntlm::record`] for the fields and how to crack them) and refused with
//!   STATUS_LOGON_FAILURE, then the connection closes.
//!
//! Anything else (TLS, HTTP, other SMB commands, malformed frames, frames
//! larger than [`MAX_FRAME`]) closes the connection. Answers are built
//! from fixed templates; of the client's bytes only its message and
//! process ids are echoed, as the protocol requires.

use super::der::der;
use super::ntlm::{self, host, len16, server_challenge, utf16, Host};
use super::{mix, Context, Logins, Out, Step};
use crate::reader::Reader;

/// Largest NetBIOS frame read: a Windows AUTHENTICATE message is under
/// 1 KB, and the whole conversation must fit the tripwire's read buffer.
const MAX_FRAME: usize = 4000;
/// Most dialects looked at in one NEGOTIATE.
const MAX_DIALECTS: u16 = 64;

/// NetBIOS session message types (RFC 1002 4.3.1).
const SESSION_MESSAGE: u8 = 0x00;
const SESSION_REQUEST: u8 = 0x81;
const SESSION_KEEPALIVE: u8 = 0x85;

const SMB1_MAGIC: &[u8] = b"\xffSMB";
const SMB2_MAGIC: &[u8] = b"\xfeSMB";
const SMB1_NEGOTIATE: u8 = 0x72;
const SMB2_NEGOTIATE: u16 = 0;
const SMB2_SESSION_SETUP: u16 = 1;

const STATUS_SUCCESS: u32 = 0;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xc000_0016;
const STATUS_LOGON_FAILURE: u32 = 0xc000_006d;

/// SMB2 dialect revisions.
const SMB_2_002: u16 = 0x0202;
const SMB_2_1: u16 = 0x0210;
const SMB_3_0: u16 = 0x0300;
const SMB_3_0_2: u16 = 0x0302;
const SMB_3_1_1: u16 = 0x0311;
/// The "SMB 2.???" answer to an SMB1 NEGOTIATE: the client then sends an
/// SMB2 NEGOTIATE with its real dialect list.
const SMB_2_WILDCARD: u16 = 0x02ff;

/// The NTLMSSP mechanism, 1.3.6.1.4.1.311.2.2.10, DER-encoded.
const OID_NTLMSSP: &[u8] = b"\x06\x0a\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a";
/// SPNEGO, 1.3.6.1.5.5.2, DER-encoded.
const OID_SPNEGO: &[u8] = b"\x06\x06\x2b\x06\x01\x05\x05\x02";

/// Seconds from 1601 (FILETIME's epoch) to 1970.
const FILETIME_UNIX_EPOCH: u64 = 11_644_473_600;

/// An SMB connection.
#[derive(Debug, Default)]
pub struct Smb {
    /// Frames read so far: a session request is only accepted first.
    frames: u8,
    /// An NTLM CHALLENGE went out, so an AUTHENTICATE answers it.
    challenged: bool,
}

impl Smb {
    /// Reads one NetBIOS frame and answers it.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        // Decide on the first byte, so that TLS or HTTP closes at once.
        match input.first() {
            None => return (0, Step::More),
            Some(&SESSION_MESSAGE | &SESSION_KEEPALIVE) => {}
            Some(&SESSION_REQUEST) if self.frames == 0 => {}
            Some(_) => return (input.len(), Step::Close),
        }
        let mut r = Reader::new(input);
        let (Some(kind), Some(len)) = (r.u8(), r.u24be()) else {
            return (0, Step::More);
        };
        if len > MAX_FRAME {
            return (input.len(), Step::Close);
        }
        let used = len + 4;
        let Some(body) = r.take(len) else {
            return (0, Step::More);
        };
        self.frames = self.frames.saturating_add(1);
        let step = match kind {
            SESSION_REQUEST => {
                out.push(b"\x82\x00\x00\x00");
                Step::More
            }
            SESSION_KEEPALIVE => Step::More,
            _ => self.message(cx, body, out, logins),
        };
        (used, step)
    }

    /// Answers one SMB message.
    fn message(
        &mut self,
        cx: &Context<'_>,
        msg: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> Step {
        match msg.get(..4) {
            Some(SMB1_MAGIC) => smb1(cx, msg, out),
            Some(SMB2_MAGIC) => self.smb2(cx, msg, out, logins),
            _ => Step::Close,
        }
    }

    /// Answers an SMB2 NEGOTIATE or SESSION_SETUP.
    fn smb2(
        &mut self,
        cx: &Context<'_>,
        msg: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> Step {
        let mut r = Reader::new(msg);
        let Some(header) = r.take(64) else {
            return Step::Close;
        };
        let mut h = Reader::new(header);
        let (Some(_), Some(size), Some(_), Some(_), Some(command)) =
            (h.take(4), h.u16le(), h.u16le(), h.u32le(), h.u16le())
        else {
            return Step::Close;
        };
        let message_id = header.get(24..32).unwrap_or(&[0; 8]);
        if size != 64 {
            return Step::Close;
        }
        let body = r.rest;
        match command {
            SMB2_NEGOTIATE => match choose_dialect(body) {
                Some(dialect) => {
                    frame(out, &smb2_negotiate(cx, dialect, message_id));
                    Step::More
                }
                None => Step::Close,
            },
            SMB2_SESSION_SETUP => self.session_setup(cx, msg, body, message_id, out, logins),
            _ => Step::Close,
        }
    }

    /// Answers an SMB2 SESSION_SETUP: a CHALLENGE to a NEGOTIATE, a refusal
    /// to the rest (after recording an AUTHENTICATE).
    fn session_setup(
        &mut self,
        cx: &Context<'_>,
        msg: &[u8],
        body: &[u8],
        message_id: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> Step {
        let blob = security_buffer(msg, body).unwrap_or_default();
        let spnego = matches!(blob.first(), Some(0x60 | 0xa1));
        match ntlm::message(blob) {
            Some((1, m)) if !self.challenged => {
                self.challenged = true;
                let challenge = ntlm::challenge(cx, ntlm::negotiate_flags(m));
                let token = if spnego {
                    neg_token_resp(&challenge)
                } else {
                    challenge
                };
                let mut m = smb2_header(
                    SMB2_SESSION_SETUP,
                    STATUS_MORE_PROCESSING_REQUIRED,
                    message_id,
                    session_id(cx.seed),
                );
                // StructureSize 9, SessionFlags, SecurityBufferOffset (the
                // 64-byte header and 8 bytes of body), length.
                m.extend_from_slice(&[9, 0, 0, 0, 72, 0]);
                m.extend_from_slice(&len16(&token));
                m.extend_from_slice(&token);
                frame(out, &m);
                Step::More
            }
            Some((3, m)) if self.challenged => {
                if let Some(login) = ntlm::record("smb", cx, m) {
                    logins.add(login);
                }
                logon_failure(cx, message_id, out);
                Step::Close
            }
            _ => {
                logon_failure(cx, message_id, out);
                Step::Close
            }
        }
    }
}

/// Answers an SMB1 NEGOTIATE (the only SMB1 command answered).
fn smb1(cx: &Context<'_>, msg: &[u8], out: &mut Out) -> Step {
    let mut r = Reader::new(msg);
    let Some(header) = r.take(32) else {
        return Step::Close;
    };
    if header.get(4) != Some(&SMB1_NEGOTIATE) {
        return Step::Close;
    }
    let (Some(0), Some(count)) = (r.u8(), r.u16le()) else {
        return Step::Close;
    };
    let offer = Offer::read(r.take_up_to(usize::from(count)));
    let host = host(cx.profile);
    if offer.smb2_wildcard {
        frame(out, &smb2_negotiate(cx, SMB_2_WILDCARD, &[0; 8]));
    } else if offer.smb2_002 {
        frame(out, &smb2_negotiate(cx, SMB_2_002, &[0; 8]));
    } else if let Some(index) = offer.nt1(host.windows) {
        frame(out, &smb1_negotiate(cx, &host, header, index));
    } else {
        return Step::Close;
    }
    Step::More
}

/// What an SMB1 NEGOTIATE offers, among the dialects we answer.
#[derive(Debug, Default)]
struct Offer {
    nt_lm_012: Option<u16>,
    nt_lanman_10: Option<u16>,
    smb2_002: bool,
    smb2_wildcard: bool,
}

impl Offer {
    /// Reads the dialect list (each a 0x02 byte and a NUL-terminated
    /// name), up to [`MAX_DIALECTS`] of them.
    fn read(bytes: &[u8]) -> Offer {
        let mut offer = Offer::default();
        let mut r = Reader::new(bytes);
        for i in 0..MAX_DIALECTS {
            if r.u8() != Some(0x02) {
                break;
            }
            let Some(name) = r.cstr() else {
                break;
            };
            match name {
                b"NT LM 0.12" => _ = offer.nt_lm_012.get_or_insert(i),
                b"NT LANMAN 1.0" => _ = offer.nt_lanman_10.get_or_insert(i),
                b"SMB 2.002" => offer.smb2_002 = true,
                b"SMB 2.???" => offer.smb2_wildcard = true,
                _ => {}
            }
        }
        offer
    }

    /// The index of the NT LM 0.12 dialect to select. Samba takes "NT
    /// LANMAN 1.0" (the same dialect under its older name) when offered,
    /// which is what nmap's Samba fingerprint expects.
    fn nt1(&self, windows: bool) -> Option<u16> {
        if windows {
            self.nt_lm_012.or(self.nt_lanman_10)
        } else {
            self.nt_lanman_10.or(self.nt_lm_012)
        }
    }
}

/// The SMB1 NEGOTIATE answer selecting NT LM 0.12 with user-level security,
/// challenge/response and no extended security (what Windows and Samba
/// answer to a client that did not ask for extended security): the
/// 8-byte challenge, then the workgroup and the host name in UTF-16.
fn smb1_negotiate(cx: &Context<'_>, host: &Host, request: &[u8], dialect: u16) -> Vec<u8> {
    let pid = request.get(26..28).unwrap_or(&[0; 2]);
    let mid = request.get(30..32).unwrap_or(&[0; 2]);
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(SMB1_MAGIC);
    m.push(SMB1_NEGOTIATE);
    m.extend_from_slice(&STATUS_SUCCESS.to_le_bytes());
    // Flags: reply, case-insensitive paths; Flags2: long names, NT status.
    m.extend_from_slice(&[0x88, 0x01, 0x40]);
    // PID high, security features, reserved, TID.
    m.extend_from_slice(&[0; 14]);
    m.extend_from_slice(pid);
    m.extend_from_slice(&[0, 0]); // UID
    m.extend_from_slice(mid);
    m.push(17); // word count
    m.extend_from_slice(&dialect.to_le_bytes());
    m.push(0x03); // user-level security, encrypted passwords
    let (max_mpx, max_buffer, capabilities): (u16, u32, u32) = if host.windows {
        (10, 4356, 0x0001_e3fc)
    } else {
        (50, 16644, 0x0080_f3fd)
    };
    m.extend_from_slice(&max_mpx.to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // max VCs
    m.extend_from_slice(&max_buffer.to_le_bytes());
    m.extend_from_slice(&65536u32.to_le_bytes()); // max raw
    m.extend_from_slice(&0u32.to_le_bytes()); // session key
    m.extend_from_slice(&capabilities.to_le_bytes());
    m.extend_from_slice(&filetime(cx.now));
    m.extend_from_slice(&0u16.to_le_bytes()); // time zone: UTC
    m.push(8); // challenge length
    let mut bytes = server_challenge(cx.seed).to_vec();
    utf16z(host.workgroup, &mut bytes);
    utf16z(host.name, &mut bytes);
    m.extend_from_slice(&len16(&bytes));
    m.extend_from_slice(&bytes);
    m
}

/// The dialect to answer an SMB2 NEGOTIATE body with: the highest of 2.0.2
/// to 3.0.2 offered, else 3.1.1, else none.
fn choose_dialect(body: &[u8]) -> Option<u16> {
    let mut r = Reader::new(body);
    let (Some(36), Some(count)) = (r.u16le(), r.u16le()) else {
        return None;
    };
    let mut d = Reader::new(body.get(36..)?);
    let mut best = None;
    let mut only_311 = false;
    for _ in 0..count.min(MAX_DIALECTS) {
        match d.u16le()? {
            v @ (SMB_2_002 | SMB_2_1 | SMB_3_0 | SMB_3_0_2) => best = best.max(Some(v)),
            SMB_3_1_1 => only_311 = true,
            _ => {}
        }
    }
    best.or(only_311.then_some(SMB_3_1_1))
}

/// The SMB2 NEGOTIATE answer for `dialect`, with the SPNEGO hint.
fn smb2_negotiate(cx: &Context<'_>, dialect: u16, message_id: &[u8]) -> Vec<u8> {
    let host = host(cx.profile);
    let token = neg_token_init();
    let mut m = smb2_header(SMB2_NEGOTIATE, STATUS_SUCCESS, message_id, 0);
    let contexts = if dialect == SMB_3_1_1 { 2u16 } else { 0 };
    let capabilities: u32 = match dialect {
        SMB_2_002 => 0x01,              // DFS
        _ if dialect < SMB_3_0 => 0x07, // DFS, leasing, large MTU
        _ if host.windows => 0x2f,      // and multichannel, directory leasing
        _ => 0x07,
    };
    let max_size: u32 = if dialect == SMB_2_002 {
        65536
    } else {
        8_388_608
    };
    m.extend_from_slice(&65u16.to_le_bytes()); // structure size
    m.extend_from_slice(&1u16.to_le_bytes()); // signing enabled, not required
    m.extend_from_slice(&dialect.to_le_bytes());
    m.extend_from_slice(&contexts.to_le_bytes());
    m.extend_from_slice(&server_guid(cx.host_id));
    m.extend_from_slice(&capabilities.to_le_bytes());
    for _ in 0..3 {
        m.extend_from_slice(&max_size.to_le_bytes()); // transact, read, write
    }
    m.extend_from_slice(&filetime(cx.now));
    m.extend_from_slice(&[0; 8]); // server start time
    m.extend_from_slice(&128u16.to_le_bytes()); // security buffer offset
    m.extend_from_slice(&len16(&token));
    let context_offset = if contexts > 0 {
        (128 + token.len()).next_multiple_of(8)
    } else {
        0
    };
    m.extend_from_slice(&u32::try_from(context_offset).unwrap_or(0).to_le_bytes());
    m.extend_from_slice(&token);
    if contexts > 0 {
        m.resize(context_offset, 0);
        negotiate_contexts(cx.seed, &mut m);
    }
    m
}

/// SMB 3.1.1's negotiate contexts: preauth integrity with SHA-512 and a
/// salt, then encryption with "no common cipher" (0), which spares reading
/// the client's list and is a valid answer (MS-SMB2 3.3.5.4).
fn negotiate_contexts(seed: u64, m: &mut Vec<u8>) {
    // Type 1, data length 38, reserved; 1 algorithm, 32-byte salt, SHA-512.
    m.extend_from_slice(&[1, 0, 38, 0, 0, 0, 0, 0, 1, 0, 32, 0, 1, 0]);
    for i in 0..4u64 {
        m.extend_from_slice(&mix(seed ^ (0x5a17 + i)).to_le_bytes());
    }
    // Pad to 8, then type 2, data length 4: one cipher, none.
    m.resize(m.len().next_multiple_of(8), 0);
    m.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
}

/// A 64-byte SMB2 response header (sync, one credit granted).
fn smb2_header(command: u16, status: u32, message_id: &[u8], session: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(512);
    h.extend_from_slice(SMB2_MAGIC);
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // credit charge
    h.extend_from_slice(&status.to_le_bytes());
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // credits granted
    h.extend_from_slice(&1u32.to_le_bytes()); // flags: server to redirector
    h.extend_from_slice(&0u32.to_le_bytes()); // next command
    let mut id = [0u8; 8];
    if let Some(src) = message_id.get(..8) {
        id.copy_from_slice(src);
    }
    h.extend_from_slice(&id);
    h.extend_from_slice(&0xfeffu32.to_le_bytes()); // process id
    h.extend_from_slice(&0u32.to_le_bytes()); // tree id
    h.extend_from_slice(&session.to_le_bytes());
    h.extend_from_slice(&[0; 16]); // signature
    h
}

/// The refusal of a SESSION_SETUP: STATUS_LOGON_FAILURE and the 9-byte
/// SMB2 error body.
fn logon_failure(cx: &Context<'_>, message_id: &[u8], out: &mut Out) {
    let mut m = smb2_header(
        SMB2_SESSION_SETUP,
        STATUS_LOGON_FAILURE,
        message_id,
        session_id(cx.seed),
    );
    m.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    frame(out, &m);
}

/// The security buffer of an SMB2 SESSION_SETUP request (its offset counts
/// from the start of the SMB2 header `msg`).
fn security_buffer<'a>(msg: &'a [u8], body: &[u8]) -> Option<&'a [u8]> {
    let mut r = Reader::new(body);
    if r.u16le()? != 25 {
        return None;
    }
    r.take(10)?; // flags, security mode, capabilities, channel
    let offset = usize::from(r.u16le()?);
    let len = usize::from(r.u16le()?);
    msg.get(offset..offset.checked_add(len)?)
}

/// SPNEGO NegTokenInit offering NTLMSSP, as the NEGOTIATE answer's hint.
fn neg_token_init() -> Vec<u8> {
    let mut mechs = Vec::new();
    der(0x30, OID_NTLMSSP, &mut mechs);
    let mut mech_types = Vec::new();
    der(0xa0, &mechs, &mut mech_types);
    let mut seq = Vec::new();
    der(0x30, &mech_types, &mut seq);
    let mut init = Vec::new();
    der(0xa0, &seq, &mut init);
    let mut inner = OID_SPNEGO.to_vec();
    inner.extend_from_slice(&init);
    let mut token = Vec::new();
    der(0x60, &inner, &mut token);
    token
}

/// SPNEGO NegTokenResp: accept-incomplete, NTLMSSP, and `ntlm`.
fn neg_token_resp(ntlm: &[u8]) -> Vec<u8> {
    let mut seq = vec![0xa0, 0x03, 0x0a, 0x01, 0x01]; // negState
    der(0xa1, OID_NTLMSSP, &mut seq); // supportedMech
    let mut octets = Vec::new();
    der(0x04, ntlm, &mut octets);
    der(0xa2, &octets, &mut seq); // responseToken
    let mut body = Vec::new();
    der(0x30, &seq, &mut body);
    let mut token = Vec::new();
    der(0xa1, &body, &mut token);
    token
}

/// Frames `msg` in a NetBIOS session message.
fn frame(out: &mut Out, msg: &[u8]) {
    let [_, a, b, c] = u32::try_from(msg.len()).unwrap_or(0).to_be_bytes();
    out.push(&[SESSION_MESSAGE, a, b, c]);
    out.push(msg);
}

fn utf16z(s: &str, out: &mut Vec<u8>) {
    utf16(s, out);
    out.extend_from_slice(&[0, 0]);
}

/// `now` (Unix seconds) as a FILETIME (100 ns since 1601).
fn filetime(now: u64) -> [u8; 8] {
    now.saturating_add(FILETIME_UNIX_EPOCH)
        .saturating_mul(10_000_000)
        .to_le_bytes()
}

/// The server GUID: one per server, the same on every connection.
fn server_guid(seed: u64) -> [u8; 16] {
    let mut g = [0u8; 16];
    let (a, b) = g.split_at_mut(8);
    a.copy_from_slice(&mix(seed ^ 0x6775_6964).to_le_bytes());
    b.copy_from_slice(&mix(seed ^ 0x6775_6965).to_le_bytes());
    g
}

/// The session id given to the client (never 0, which means "none").
fn session_id(seed: u64) -> u64 {
    mix(seed ^ 0x5e55) | 1
}

#[cfg(test)]
mod tests {
    use super::super::ntlm::{find, NTLMSSP, NTLM_UNICODE};
    use super::super::tests::{cx, run_bytes};
    use super::*;
    use crate::profile::Profile;

    /// nmap 7.93's SMBProgNeg probe (SMB1 dialects only).
    const NMAP: &[u8] = b"\0\0\0\xa4\xff\x53\x4d\x42\x72\0\0\0\0\x08\x01\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\x06\0\0\x01\0\0\x81\0\x02PC NETWORK PROGRAM 1.0\0\x02MICROSOFT NETWORKS 1.03\0\x02MICROSOFT NETWORKS 3.0\0\x02LANMAN1.0\0\x02LM1.2X002\0\x02Samba\0\x02NT LANMAN 1.0\0\x02NT LM 0.12\0";

    /// impacket 0.13.1 `SMBConnection('WS01', '127.0.0.1').login('alice', 'Secret123', 'CORP')` against this responder (Windows profile, the test context's seed and time): an SMB1 NEGOTIATE offering SMB 2, the SMB2 NEGOTIATE, the NTLMSSP NEGOTIATE and AUTHENTICATE (in SPNEGO).
    const IMPACKET: [&str; 4] = [
        concat!(
            "00000045ff534d4272000000001801c8000000000000000000000000ffff00000000000000220002",
            "4e54204c4d20302e31320002534d4220322e3030320002534d4220322e3f3f3f00",
        ),
        concat!(
            "000000acfe534d424000010000000000000000000000000000000000010000000000000000000000",
            "00000000000000000000000000000000000000000000000000000000240005000100000040000000",
            "5a497078777365796761486c58554d50700000000200000002021002000302031103ffff01002600",
            "00000000010020000100675a58574c7946646a4b7a7479586c5a4b456677736d5a72775464415959",
            "784fffff020004000000000001000100",
        ),
        concat!(
            "0000009afe534d424000010000000000010000000000000000000000020000000000000000000000",
            "00000000000000000000000000000000000000000000000000000000190000010000000000000000",
            "580042000000000000000000604006062b0601050502a0363034a00e300c060a2b06010401823702",
            "020aa22204204e544c4d5353500001000000050288a000000000000000000000000000000000",
        ),
        concat!(
            "00000150fe534d424000010000000000010000000000000000000000020000000000000000000000",
            "000000001baa50e17b9da98900000000000000000000000000000000190000010000000000000000",
            "5800f8000000000000000000a181f53081f2a281ef0481ec4e544c4d535350000300000018001800",
            "52000000820082006a00000008000800400000000a000a0048000000000000005200000000000000",
            "ec000000050288a043004f005200500061006c0069006300650081b76bb62d1a140cf9978f8e7426",
            "15d14b3071727232534df9eb8417d4b9ad0fb5550a6ec4f668e70101000000000000806a06ae7386",
            "dd014b3071727232534d000000000200080057005300300031000100080057005300300031000400",
            "080057005300300031000300080057005300300031000900120063006900660073002f0057005300",
            "3000310007000800806a06ae7386dd0100000000",
        ),
    ];

    /// Samba 4.17's `smbclient -L //127.0.0.1 -U bob%Hunter2 -p 139` against this responder (NAS profile, the test context's seed and time): the NetBIOS session request, the SMB2 NEGOTIATE (with 3.1.1 contexts), the NTLMSSP NEGOTIATE and AUTHENTICATE.
    const SMBCLIENT_139: [&str; 4] = [
        concat!(
            "8100004420444244434448434f4441434f4441434f44424341434143414341434143414341002046",
            "47454e4341434143414341434143414341434143414341434143414341414100",
        ),
        concat!(
            "000000e2fe534d42400000000000000000001f000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000024000500010000007f000000",
            "0bd6493d53f92540b2c3a73322e2d762700000000400000002021002000302031103000001002600",
            "00000000010020000100fb1637edb0332aeb22d5603138c62f3d42ac68f4415436f501d73a2a47c1",
            "5876000002000a000000000004000200010004000300000000000000080008000000000003000200",
            "0100000005001200000000003100320037002e0030002e0030002e003100",
        ),
        concat!(
            "000000a2fe534d424000010000000000010000200000000000000000010000000000000000000000",
            "00000000000000000000000000000000000000000000000000000000190000010100000000000000",
            "58004a000000000000000000604806062b0601050502a03e303ca00e300c060a2b06010401823702",
            "020aa22a04284e544c4d535350000100000015820862000000002800000000000000280000000601",
            "00000000000f",
        ),
        concat!(
            "000001eefe534d424000010000000000010000200000000000000000020000000000000000000000",
            "000000001baa50e17b9da98900000000000000000000000000000000190000010100000000000000",
            "580096010000000000000000a18201923082018ea282018a048201864e544c4d5353500003000000",
            "1800180058000000ea00ea0070000000120012005a010000060006006c0100000400040072010000",
            "100010007601000015820862060100000000000f9b5d431708df347979a41c388e61790300000000",
            "0000000000000000000000000000000000000000197232424b06401ce271280995f862ac01010000",
            "000000009aef3eae7386dd018709c4a7853da14600000000020016004400490053004b0053005400",
            "4100540049004f004e00010016004400490053004b00530054004100540049004f004e0004000000",
            "030016006400690073006b00730074006100740069006f006e000800300030000000000000000000",
            "000000000000aa1978cffec7d2d8457c24c4bd2f30dc2237fb09bd8f7821ee25285dc8174dee0a00",
            "10000000000000000000000000000000000009001c0063006900660073002f003100320037002e00",
            "30002e0030002e0031000000000057004f0052004b00470052004f005500500062006f0062005600",
            "4d00574a99c0774985b1bfa78f9cae656b00",
        ),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn frames(hex: &[&str]) -> Vec<Vec<u8>> {
        hex.iter().map(|h| unhex(h)).collect()
    }

    /// The NetBIOS frames of `out` (our own, well-formed answers).
    fn split(mut out: &[u8]) -> Vec<&[u8]> {
        let mut v = Vec::new();
        while out.len() >= 4 {
            let len = usize::from(out[1]) << 16 | usize::from(out[2]) << 8 | usize::from(out[3]);
            let end = (4 + len).min(out.len());
            v.push(&out[..end]);
            out = &out[end..];
        }
        v
    }

    fn utf16z(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        super::utf16z(s, &mut v);
        v
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        find(hay, needle).is_some()
    }

    /// An SMB2 SESSION_SETUP request carrying `blob`.
    fn session_setup(blob: &[u8]) -> Vec<u8> {
        let mut m = smb2_header(SMB2_SESSION_SETUP, 0, &[2, 0, 0, 0, 0, 0, 0, 0], 0);
        m[0] = 0xfe;
        m.extend_from_slice(&[25, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 88, 0]);
        m.extend_from_slice(&(blob.len() as u16).to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(blob);
        let mut f = vec![0, 0, 0, 0];
        f[2..4].copy_from_slice(&(m.len() as u16).to_be_bytes());
        f.extend_from_slice(&m);
        f
    }

    /// An SMB2 NEGOTIATE request offering `dialects`.
    fn negotiate(dialects: &[u16]) -> Vec<u8> {
        let mut m = smb2_header(SMB2_NEGOTIATE, 0, &[0; 8], 0);
        m.extend_from_slice(&36u16.to_le_bytes());
        m.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
        m.extend_from_slice(&[0; 32]);
        for d in dialects {
            m.extend_from_slice(&d.to_le_bytes());
        }
        let mut f = vec![0, 0];
        f.extend_from_slice(&(m.len() as u16).to_be_bytes());
        f.extend_from_slice(&m);
        f
    }

    #[test]
    fn nmap_names_the_windows_workstation() {
        let (out, logins, step) = run_bytes(&cx(445, Profile::WindowsWorkstation), &[NMAP]);
        assert_eq!(step, Step::More);
        assert!(logins.is_empty());
        // The head of nmap's "Microsoft Windows 7 - 10 microsoft-ds" match,
        // then `.{21}`, then the workgroup and host.
        let head: &[u8] = b"\xffSMBr\0\0\0\0\x88\x01@\0\0\0\0\0\0\0\0\0\0\0\0\0\0@\x06\0\0\x01\0\x11\x07\0\x03\n\0\x01\0\x04\x11\0\0\0\0\x01\0\0\0\0\0\xfc\xe3\x01\0";
        assert_eq!(&out[..3], b"\0\0\0");
        assert_eq!(usize::from(out[3]), out.len() - 4);
        assert_eq!(&out[4..4 + head.len()], head);
        let tail = [utf16z("WORKGROUP"), utf16z("WS01")].concat();
        assert_eq!(&out[4 + head.len() + 21..], &tail[..]);
        // The 21 bytes hold the challenge, which the byte count covers.
        assert_eq!(
            &out[4 + head.len() + 13..][..8],
            &server_challenge(cx(445, Profile::WindowsWorkstation).seed)
        );
    }

    #[test]
    fn nmap_names_samba_on_linux_and_the_nas() {
        for (profile, port, name) in [
            (Profile::LinuxServer, 445, "FILESERVER"),
            (Profile::Nas, 139, "DISKSTATION"),
            (Profile::Router, 445, "FILESERVER"),
        ] {
            let (out, _, step) = run_bytes(&cx(port, profile), &[NMAP]);
            assert_eq!(step, Step::More);
            // nmap: `\x88..\0\0[-\w. ]*\0+@\x06\0\0\x01\0\x11\x06\0.{42}(.*)\0\0(.*)\0\0$`
            assert_eq!(&out[4..13], b"\xffSMBr\0\0\0\0");
            assert_eq!(out[13], 0x88);
            assert_eq!(&out[16..30], &[0; 14]);
            assert_eq!(&out[30..39], b"@\x06\0\0\x01\0\x11\x06\0");
            let tail = [utf16z("WORKGROUP"), utf16z(name)].concat();
            assert_eq!(&out[39 + 42..], &tail[..]);
        }
    }

    #[test]
    fn port_139_answers_the_session_request_then_smb() {
        let request = unhex(SMBCLIENT_139[0]);
        let (out, _, step) = run_bytes(&cx(139, Profile::Nas), &[&request, NMAP]);
        assert_eq!(step, Step::More);
        assert_eq!(&out[..4], b"\x82\0\0\0");
        assert_eq!(&out[8..13], b"\xffSMBr");
        // Only as the first frame.
        let (_, _, step) = run_bytes(&cx(139, Profile::Nas), &[NMAP, &request]);
        assert_eq!(step, Step::Close);
    }

    #[test]
    fn impacket_login_is_recorded_and_refused() {
        let c = cx(445, Profile::WindowsWorkstation);
        let f = frames(&IMPACKET);
        let chunks: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        let (out, logins, step) = run_bytes(&c, &chunks);
        assert_eq!(step, Step::Close);
        let answers = split(&out);
        assert_eq!(answers.len(), 4);
        // SMB1 NEGOTIATE offering "SMB 2.???": the SMB2 wildcard answer.
        assert_eq!(&answers[0][4..8], SMB2_MAGIC);
        assert_eq!(&answers[0][4 + 68..4 + 70], &SMB_2_WILDCARD.to_le_bytes());
        // SMB2 NEGOTIATE: 3.0.2 and the NTLMSSP hint.
        assert_eq!(&answers[1][4 + 68..4 + 70], &SMB_3_0_2.to_le_bytes());
        assert!(contains(answers[1], OID_NTLMSSP));
        // NTLMSSP NEGOTIATE: more processing, our challenge in SPNEGO.
        assert_eq!(
            &answers[2][12..16],
            &STATUS_MORE_PROCESSING_REQUIRED.to_le_bytes()
        );
        assert_eq!(answers[2][4 + 72], 0xa1);
        assert!(contains(answers[2], &server_challenge(c.seed)));
        assert!(contains(answers[2], &utf16z("WS01")[..8]));
        // AUTHENTICATE: refused.
        assert_eq!(&answers[3][12..16], &STATUS_LOGON_FAILURE.to_le_bytes());
        assert_eq!(logins.len(), 1);
        let l = &logins[0];
        assert_eq!((l.protocol, l.username.as_str()), ("smb", "alice"));
        assert_eq!(l.field("domain"), Some("CORP"));
        assert_eq!(l.field("workstation"), Some(""));
        assert_eq!(l.field("challenge"), Some("ae57a84004bb844e"));
        // `alice::CORP:ae57a84004bb844e:81b76bb62d1a140cf9978f8e742615d1:4b3071727232534d`
        // is "Secret123" (checked with impacket's NTOWFv2 and HMAC-MD5).
        assert_eq!(
            l.field("lmv2"),
            Some("81b76bb62d1a140cf9978f8e742615d14b3071727232534d")
        );
    }

    #[test]
    fn smbclient_on_139_is_recorded_with_its_ntproofstr() {
        let c = cx(139, Profile::Nas);
        let f = frames(&SMBCLIENT_139);
        let chunks: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
        let (out, logins, step) = run_bytes(&c, &chunks);
        assert_eq!(step, Step::Close);
        let answers = split(&out);
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0], b"\x82\0\0\0");
        assert_eq!(&answers[1][4 + 68..4 + 70], &SMB_3_0_2.to_le_bytes());
        assert!(contains(answers[2], &utf16z("DISKSTATION")[..22]));
        assert_eq!(&answers[3][12..16], &STATUS_LOGON_FAILURE.to_le_bytes());
        let l = &logins[0];
        assert_eq!(l.username, "bob");
        assert_eq!(l.field("domain"), Some("WORKGROUP"));
        assert_eq!(l.field("workstation"), Some("VM"));
        // Samba sends no LMv2 (zeros).
        assert_eq!(l.field("lmv2"), None);
        assert_eq!(
            l.field("ntproofstr"),
            Some("197232424b06401ce271280995f862ac")
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_answers() {
        for (hex, profile) in [
            (&IMPACKET, Profile::WindowsWorkstation),
            (&SMBCLIENT_139, Profile::Nas),
        ] {
            let c = cx(445, profile);
            let all: Vec<u8> = frames(hex).concat();
            let whole = run_bytes(&c, &[&all]);
            let bytes: Vec<&[u8]> = all.chunks(1).collect();
            assert_eq!(run_bytes(&c, &bytes), whole);
        }
    }

    #[test]
    fn truncated_and_corrupted_captures_wait_or_close() {
        for hex in [&IMPACKET, &SMBCLIENT_139] {
            let all: Vec<u8> = frames(hex).concat();
            for profile in [Profile::WindowsWorkstation, Profile::LinuxServer] {
                let c = cx(445, profile);
                for n in 0..all.len() {
                    let (_, _, step) = run_bytes(&c, &[&all[..n]]);
                    assert_ne!(step, Step::Linger, "cut at {n}");
                }
                for i in 0..all.len() {
                    for x in [0x01, 0x80, 0xff] {
                        let mut bad = all.clone();
                        bad[i] ^= x;
                        run_bytes(&c, &[&bad]);
                    }
                }
            }
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let len = (next() % 300) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Mostly plausible frames, so the parsers past the framing run.
            if b.len() >= 8 && next() % 4 != 0 {
                b[0] = 0;
                b[1] = 0;
                let n = (b.len() - 4) as u16;
                b[2..4].copy_from_slice(&n.to_be_bytes());
                b[4..8].copy_from_slice(if next() % 2 == 0 {
                    SMB2_MAGIC
                } else {
                    SMB1_MAGIC
                });
            }
            run_bytes(&cx(445, Profile::WindowsWorkstation), &[&b]);
        }
    }

    #[test]
    fn tls_http_oversized_and_other_commands_close() {
        let c = cx(445, Profile::WindowsWorkstation);
        for input in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"\0\0\x10\0",
            b"\0\0\0\x08NOTSMB!!",
            b"\0\0\0\x20\xffSMB\x73\0\0\0\0\x18\x01\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ] {
            let (out, logins, step) = run_bytes(&c, &[input]);
            assert_eq!((out.as_slice(), step), (&b""[..], Step::Close), "{input:?}");
            assert!(logins.is_empty());
        }
        assert_eq!(run_bytes(&c, &[b"\0\0\0"]).2, Step::More);
        assert_eq!(run_bytes(&c, &[&NMAP[..100]]).2, Step::More);
    }

    #[test]
    fn smb2_dialects_are_chosen_and_311_gets_its_contexts() {
        let c = cx(445, Profile::LinuxServer);
        let dialect = |out: &[u8]| u16::from_le_bytes([out[4 + 68], out[4 + 69]]);
        let (out, _, step) = run_bytes(&c, &[&negotiate(&[0x0202, 0x0210, 0x0311])]);
        assert_eq!((dialect(&out), step), (SMB_2_1, Step::More));
        let (out, _, _) = run_bytes(&c, &[&negotiate(&[0x0311])]);
        assert_eq!(dialect(&out), SMB_3_1_1);
        assert_eq!(u16::from_le_bytes([out[4 + 70], out[4 + 71]]), 2);
        let at = u32::from_le_bytes(out[4 + 124..4 + 128].try_into().unwrap()) as usize;
        assert_eq!(at % 8, 0);
        assert_eq!(&out[4 + at..4 + at + 4], &[1, 0, 38, 0]);
        let (out, _, step) = run_bytes(&c, &[&negotiate(&[0x0100, 0x0400])]);
        assert_eq!((out.as_slice(), step), (&b""[..], Step::Close));
    }

    #[test]
    fn the_server_guid_is_the_same_on_every_connection_to_one_agent() {
        let guid = |seed, host_id| {
            let c = Context {
                seed,
                host_id,
                ..cx(445, Profile::WindowsWorkstation)
            };
            let (out, _, _) = run_bytes(&c, &[&negotiate(&[0x0202, 0x0210])]);
            out[4 + 72..4 + 88].to_vec()
        };
        assert_eq!(guid(1, 7), guid(2, 7), "another connection, same server");
        assert_ne!(guid(1, 7), guid(1, 8), "another agent");
    }

    /// A minimal AUTHENTICATE: every field empty, or `user` as the user.
    fn authenticate(user: &str) -> Vec<u8> {
        let mut name = Vec::new();
        utf16(user, &mut name);
        let mut m = NTLMSSP.to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        for i in 0..6 {
            let len = if i == 3 { name.len() as u16 } else { 0 };
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&64u32.to_le_bytes());
        }
        m.extend_from_slice(&NTLM_UNICODE.to_le_bytes());
        m.extend_from_slice(&name);
        m
    }

    #[test]
    fn raw_ntlmssp_and_null_sessions() {
        let c = cx(445, Profile::WindowsWorkstation);
        let mut hello = NTLMSSP.to_vec();
        hello.extend_from_slice(&[1, 0, 0, 0, 0x05, 0x02, 0x88, 0xa0]);
        // Without SPNEGO, the challenge comes back without SPNEGO too.
        let (out, logins, step) = run_bytes(
            &c,
            &[&session_setup(&hello), &session_setup(&authenticate(""))],
        );
        let answers = split(&out);
        assert_eq!(&answers[0][4 + 72..4 + 80], NTLMSSP);
        assert_eq!(&answers[1][12..16], &STATUS_LOGON_FAILURE.to_le_bytes());
        assert_eq!(step, Step::Close);
        assert!(logins.is_empty(), "a null session is not a login");
        // A user without responses is recorded, with an empty proof.
        let (_, logins, _) = run_bytes(
            &c,
            &[&session_setup(&hello), &session_setup(&authenticate("eve"))],
        );
        assert_eq!(logins[0].username, "eve");
        assert_eq!(logins[0].field("ntproofstr"), Some(""));
        // An AUTHENTICATE before any CHALLENGE is refused unrecorded.
        let (out, logins, step) = run_bytes(&c, &[&session_setup(&authenticate("eve"))]);
        assert_eq!(&out[12..16], &STATUS_LOGON_FAILURE.to_le_bytes());
        assert!(logins.is_empty());
        assert_eq!(step, Step::Close);
    }
}
