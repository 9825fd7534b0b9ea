//! NTLM (MS-NLMP) as a server that lets no one in, for SMB's
//! SESSION_SETUP and Remote Desktop's CredSSP: the client's NEGOTIATE gets
//! a CHALLENGE naming the profile's host, and its AUTHENTICATE becomes a
//! [`Login`] with what cracks the password offline (see [`record`]).

use super::{Context, Login};
use crate::profile::Profile;
use crate::reader::Reader;

pub(super) const NTLMSSP: &[u8] = b"NTLMSSP\0";

/// NTLMSSP negotiate flags (MS-NLMP 2.2.2.5).
pub(super) const NTLM_UNICODE: u32 = 0x0000_0001;
const NTLM_REQUEST_TARGET: u32 = 0x0000_0004;
const NTLM_SIGN: u32 = 0x0000_0010;
const NTLM_SEAL: u32 = 0x0000_0020;
const NTLM_NTLM: u32 = 0x0000_0200;
const NTLM_ALWAYS_SIGN: u32 = 0x0000_8000;
const NTLM_TARGET_TYPE_SERVER: u32 = 0x0002_0000;
const NTLM_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NTLM_TARGET_INFO: u32 = 0x0080_0000;
const NTLM_VERSION: u32 = 0x0200_0000;
const NTLM_128: u32 = 0x2000_0000;
const NTLM_KEY_EXCH: u32 = 0x4000_0000;
const NTLM_56: u32 = 0x8000_0000;

/// Who the server says it is.
pub(super) struct Host {
    /// NetBIOS workgroup, shown in the SMB1 negotiate answer.
    pub(super) workgroup: &'static str,
    /// NetBIOS computer name.
    pub(super) name: &'static str,
    /// DNS computer name.
    pub(super) dns: &'static str,
    /// Windows 10 rather than Samba 4.
    pub(super) windows: bool,
}

/// Who the profile's Windows or Samba host says it is.
pub(super) fn host(profile: Profile) -> Host {
    match profile {
        Profile::WindowsWorkstation => Host {
            workgroup: "WORKGROUP",
            name: "WS01",
            dns: "WS01",
            windows: true,
        },
        Profile::Nas => Host {
            workgroup: "WORKGROUP",
            name: "DISKSTATION",
            dns: "diskstation",
            windows: false,
        },
        Profile::LinuxServer | Profile::Router | Profile::Printer => Host {
            workgroup: "WORKGROUP",
            name: "FILESERVER",
            dns: "fileserver",
            windows: false,
        },
    }
}

/// The NTLMSSP CHALLENGE: the target (the host's name: a workgroup
/// machine's accounts are its own), this connection's challenge, and the
/// target info pairs. There is deliberately no MsvAvTimestamp pair:
/// with one, clients replace their LMv2 response by zeros (MS-NLMP
/// 3.1.5.1.2), and LMv2 is the part of an NTLMv2 answer short enough to
/// record whole (see [`record`]).
pub(super) fn challenge(cx: &Context<'_>, client_flags: u32) -> Vec<u8> {
    let host = host(cx.profile);
    let mut target = Vec::with_capacity(32);
    utf16(host.name, &mut target);
    let mut info = Vec::with_capacity(128);
    av_pair(2, host.name, &mut info); // NetBIOS domain
    av_pair(1, host.name, &mut info); // NetBIOS computer
    av_pair(4, if host.windows { host.dns } else { "" }, &mut info); // DNS domain
    av_pair(3, host.dns, &mut info); // DNS computer
    info.extend_from_slice(&[0, 0, 0, 0]); // end of list
    let flags = NTLM_UNICODE
        | NTLM_REQUEST_TARGET
        | NTLM_NTLM
        | NTLM_ALWAYS_SIGN
        | NTLM_TARGET_TYPE_SERVER
        | NTLM_EXTENDED_SESSIONSECURITY
        | NTLM_TARGET_INFO
        | NTLM_VERSION
        | client_flags & (NTLM_SIGN | NTLM_SEAL | NTLM_128 | NTLM_KEY_EXCH | NTLM_56);
    // Fixed part: signature, type, target name, flags, challenge,
    // reserved, target info, version.
    const FIXED: usize = 56;
    let mut m = Vec::with_capacity(FIXED + target.len() + info.len());
    m.extend_from_slice(NTLMSSP);
    m.extend_from_slice(&2u32.to_le_bytes());
    security_field(&target, FIXED, &mut m);
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge(cx.seed));
    m.extend_from_slice(&[0; 8]);
    security_field(&info, FIXED + target.len(), &mut m);
    // Windows 10 build 19041 or Samba's 6.1; NTLM revision 15.
    m.extend_from_slice(if host.windows {
        &[10, 0, 0x61, 0x4a, 0, 0, 0, 15]
    } else {
        &[6, 1, 0, 0, 0, 0, 0, 15]
    });
    m.extend_from_slice(&target);
    m.extend_from_slice(&info);
    m
}

/// The `protocol` login an NTLMSSP AUTHENTICATE message `m` tried, or `None` for an
/// anonymous (null session) or malformed one.
///
/// Fields (at most four, each at most 128 characters):
/// - `domain`, `workstation`: as the client sent them;
/// - `challenge`: this connection's server challenge, 16 hex digits;
/// - one of:
///   - `lmv2` (NTLMv2 clients): the 24-byte LMv2 response, 48 hex digits.
///     It is keyed like the NTLMv2 response, by the password's NT hash,
///     the user and the domain, so it cracks offline as hashcat mode 5600
///     (NetNTLMv2): `user::domain:challenge:lmv2[0..32]:lmv2[32..48]`;
///   - `ntproofstr` (NTLMv2 clients that sent no LMv2, all zeros): the
///     first 16 bytes of the NTLMv2 response, 32 hex digits. This only
///     identifies the attempt: cracking needs the rest of the response
///     (its blob, usually 150 to 400 bytes), which does not fit a field;
///   - `netntlm` (NTLMv1 clients): `lm:nt`, the two 24-byte responses in
///     hex, for hashcat mode 5500:
///     `user::domain:lm:nt:challenge`.
pub(super) fn record(protocol: &'static str, cx: &Context<'_>, m: &[u8]) -> Option<Login> {
    let field = |at: usize| -> Option<&[u8]> {
        let mut r = Reader::new(m.get(at..)?);
        let len = usize::from(r.u16le()?);
        r.u16le()?;
        let offset = usize::try_from(r.u32le()?).ok()?;
        m.get(offset..offset.checked_add(len)?)
    };
    let (lm, nt) = (field(12)?, field(20)?);
    let (domain, user, workstation) = (field(28)?, field(36)?, field(44)?);
    if user.is_empty() && nt.is_empty() {
        return None;
    }
    // Flags follow the session key field; OEM strings without Unicode.
    let flags = Reader::new(m.get(60..).unwrap_or_default())
        .u32le()
        .unwrap_or(NTLM_UNICODE);
    let text = |b: &[u8]| text(b, flags & NTLM_UNICODE != 0);
    let login = Login::new(protocol, &text(user))
        .with("domain", &text(domain))
        .with("workstation", &text(workstation))
        .with_hex("challenge", &server_challenge(cx.seed));
    Some(if nt.len() == 24 {
        login.with("netntlm", format!("{}:{}", hex(lm), hex(nt)).as_bytes())
    } else if lm.len() == 24 && lm.iter().any(|&b| b != 0) {
        login.with_hex("lmv2", lm)
    } else {
        login.with_hex("ntproofstr", nt.get(..16).unwrap_or(nt))
    })
}

/// A string of an NTLM message (UTF-16LE or OEM), cut to what a credential
/// field keeps.
fn text(bytes: &[u8], unicode: bool) -> Vec<u8> {
    let bytes = bytes.get(..2 * super::MAX_CREDENTIAL).unwrap_or(bytes);
    if !unicode {
        return bytes.to_vec();
    }
    let units = bytes
        .chunks_exact(2)
        .filter_map(|c| <[u8; 2]>::try_from(c).ok())
        .map(u16::from_le_bytes);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect::<String>()
        .into_bytes()
}

/// Appends an NTLM AV pair holding `value` in UTF-16LE.
fn av_pair(id: u16, value: &str, out: &mut Vec<u8>) {
    let mut v = Vec::new();
    utf16(value, &mut v);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&len16(&v));
    out.extend_from_slice(&v);
}

/// Appends an NTLM security buffer field: length, maximum length, offset.
fn security_field(payload: &[u8], offset: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&len16(payload));
    out.extend_from_slice(&len16(payload));
    out.extend_from_slice(&u32::try_from(offset).unwrap_or(0).to_le_bytes());
}

/// The length of one of our templates as a little-endian u16.
pub(super) fn len16(bytes: &[u8]) -> [u8; 2] {
    u16::try_from(bytes.len()).unwrap_or(0).to_le_bytes()
}

pub(super) fn utf16(s: &str, out: &mut Vec<u8>) {
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where `needle` first occurs in `hay`.
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// This connection's NTLM (and SMB1) challenge.
pub(super) fn server_challenge(seed: u64) -> [u8; 8] {
    super::mix(seed).to_le_bytes()
}

/// The NTLMSSP message inside a security token (raw, or wrapped in
/// SPNEGO): its type (1 NEGOTIATE, 3 AUTHENTICATE) and its bytes.
pub(super) fn message(token: &[u8]) -> Option<(u32, &[u8])> {
    let m = token.get(find(token, NTLMSSP)?..)?;
    Some((Reader::new(m.get(8..)?).u32le()?, m))
}

/// The negotiate flags of a NEGOTIATE message.
pub(super) fn negotiate_flags(m: &[u8]) -> u32 {
    Reader::new(m.get(12..).unwrap_or_default())
        .u32le()
        .unwrap_or(0)
}
