//! MySQL up to the login: a protocol-10 greeting with a fresh salt and
//! connection id per connection (a fixed salt would give the tripwire
//! away), then the client's HandshakeResponse41 — user, scrambled password,
//! database, auth plugin — recorded, and `ERROR 1045 Access denied`.

use super::{Context, Login, Logins, Out, Step};
use crate::fingerprint::lenenc;
use crate::profile::Profile;
use crate::reader::Reader;

const CONNECT_WITH_DB: u32 = 0x8;
const PROTOCOL_41: u32 = 0x200;
const SECURE_CONNECTION: u32 = 0x8000;
const PLUGIN_AUTH: u32 = 0x8_0000;
const PLUGIN_AUTH_LENENC: u32 = 0x20_0000;

/// A MySQL connection: the salt it was greeted with.
#[derive(Debug, Default)]
pub struct Mysql {
    salt: [u8; 20],
    done: bool,
}

/// Debian 12 ships MariaDB 10.11 (which announces itself with the 5.5.5-
/// prefix old clients need); a Windows machine runs MySQL 8.0.
fn version(profile: Profile) -> &'static str {
    match profile {
        Profile::WindowsWorkstation => "8.0.36",
        _ => "5.5.5-10.11.6-MariaDB-0+deb12u1",
    }
}

/// 20 salt bytes from `seed`, printable and never NUL, as servers draw them.
fn salt(seed: u64) -> [u8; 20] {
    let mut x = seed | 1;
    let mut s = [0u8; 20];
    for b in &mut s {
        // xorshift64: cheap, and unpredictable enough with a random seed.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = 0x21 + (x % 94) as u8;
    }
    s
}

impl Mysql {
    /// The Initial Handshake Packet (see [`crate::banner`] for its layout),
    /// the version being the operator's override or the profile's.
    pub fn greet(&mut self, cx: &Context<'_>, out: &mut Out) -> Step {
        if cx.profile == Profile::Nas && cx.banner.is_none() {
            // A NAS's MariaDB lets only its own host in, and says so.
            self.done = true;
            let message = format!(
                "Host '{}' is not allowed to connect to this MariaDB server",
                cx.peer
            );
            let mut p = vec![0xff];
            p.extend_from_slice(&1130u16.to_le_bytes());
            p.extend_from_slice(message.as_bytes());
            packet(0, &p, out);
            return Step::Close;
        }
        self.salt = salt(cx.seed);
        let version = cx.banner.unwrap_or(version(cx.profile));
        let mut p = Vec::with_capacity(96);
        p.push(10);
        p.extend_from_slice(version.as_bytes());
        p.push(0);
        let conn_id = u32::try_from(cx.seed >> 40 & 0xffff).unwrap_or(1) + 8;
        p.extend_from_slice(&conn_id.to_le_bytes());
        p.extend_from_slice(self.salt.get(..8).unwrap_or_default());
        p.push(0);
        // A stock 8.0 server's capabilities without CLIENT_SSL, so that the
        // user name comes in clear.
        p.extend_from_slice(&[0xff, 0xf7, 0xff, 0x02, 0x00, 0xff, 0xdf, 21]);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(self.salt.get(8..).unwrap_or_default());
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        packet(0, &p, out);
        Step::More
    }

    /// Reads the HandshakeResponse41, records it, refuses it.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let mut r = Reader::new(input);
        let (Some(len), Some(seq)) = (r.u24le(), r.u8()) else {
            return (0, Step::More);
        };
        if self.done || len > 4000 {
            return (input.len(), Step::Close);
        }
        let Some(payload) = r.take(len) else {
            return (0, Step::More);
        };
        self.done = true;
        let Some(response) = handshake_response(payload) else {
            // Not a login (an SSLRequest we did not offer, or garbage):
            // what a server says to a bad handshake.
            error(seq.wrapping_add(1), 1043, "08S01", "Bad handshake", out);
            return (len + 4, Step::Close);
        };
        let mut login = Login::new("mysql", response.user);
        if !response.auth.is_empty() {
            login = login
                .with_hex("password_hash", response.auth)
                .with_hex("challenge", &self.salt);
        }
        login = login.with("auth_plugin", response.plugin);
        if !response.database.is_empty() {
            login = login.with("database", response.database);
        }
        logins.add(login);
        let user: String = response
            .user
            .iter()
            .take(32)
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"_-.@".contains(&b) {
                    char::from(b)
                } else {
                    '?'
                }
            })
            .collect();
        let using = if response.auth.is_empty() {
            "NO"
        } else {
            "YES"
        };
        let message = format!(
            "Access denied for user '{user}'@'{}' (using password: {using})",
            cx.peer
        );
        error(seq.wrapping_add(1), 1045, "28000", &message, out);
        (len + 4, Step::Close)
    }
}

/// What a HandshakeResponse41 says.
struct Response<'a> {
    user: &'a [u8],
    auth: &'a [u8],
    database: &'a [u8],
    plugin: &'a [u8],
}

fn handshake_response(payload: &[u8]) -> Option<Response<'_>> {
    let mut p = Reader::new(payload);
    let caps = p.u32le()?;
    if caps & PROTOCOL_41 == 0 {
        return None;
    }
    p.take(28)?; // max packet size, character set, filler
    let user = p.cstr()?;
    let auth_len = if caps & PLUGIN_AUTH_LENENC != 0 {
        lenenc(&mut p)?
    } else if caps & SECURE_CONNECTION != 0 {
        usize::from(p.u8()?)
    } else {
        let a = p.cstr()?;
        a.len()
    };
    let auth = if caps & (PLUGIN_AUTH_LENENC | SECURE_CONNECTION) != 0 {
        p.take(auth_len)?
    } else {
        &[]
    };
    let database = if caps & CONNECT_WITH_DB != 0 {
        p.cstr().unwrap_or_default()
    } else {
        &[]
    };
    let plugin = if caps & PLUGIN_AUTH != 0 {
        p.cstr().unwrap_or_default()
    } else {
        &[]
    };
    Some(Response {
        user,
        auth,
        database,
        plugin,
    })
}

fn packet(seq: u8, payload: &[u8], out: &mut Out) {
    let len = u32::try_from(payload.len()).unwrap_or(0).to_le_bytes();
    out.push(len.get(..3).unwrap_or_default());
    out.push(&[seq]);
    out.push(payload);
}

fn error(seq: u8, code: u16, state: &str, message: &str, out: &mut Out) {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(message.as_bytes());
    packet(seq, &p, out);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run_bytes};
    use super::*;

    /// PyMySQL 1.2.4 answering our greeting:
    /// `pymysql.connect(user='root', password='toor', database='wordpress')`
    /// (the capture of the fingerprint tests).
    const PYMYSQL: &str = "900000010da23a00ffffff002d00000000000000000000000000000000000000\
        00000000726f6f740014c6bf9f6247f022b21a3ca0a2dd794024420fd796776f\
        72647072657373006d7973716c5f6e61746976655f70617373776f726400350c\
        5f636c69656e745f6e616d650770796d7973716c0f5f636c69656e745f766572\
        73696f6e05312e322e34045f7069640434373737";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_greeting_is_fresh_per_connection_and_well_formed() {
        let mut a = cx(3306, Profile::LinuxServer);
        let (g1, _, _) = run_bytes(&a, &[]);
        a.seed = 99;
        let (g2, _, _) = run_bytes(&a, &[]);
        assert_ne!(g1, g2);
        assert_eq!(g1.len(), g2.len());
        let len = usize::from(g1[0]) | usize::from(g1[1]) << 8;
        assert_eq!(len + 4, g1.len());
        assert_eq!(&g1[4..37], b"\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        assert!(g1.ends_with(b"mysql_native_password\0"));
    }

    #[test]
    fn a_login_is_recorded_and_denied_with_a_sanitised_user() {
        let (out, logins, step) = run_bytes(&cx(3306, Profile::LinuxServer), &[&unhex(PYMYSQL)]);
        assert_eq!(step, Step::Close);
        assert_eq!(logins.len(), 1);
        let l = &logins[0];
        assert_eq!((l.protocol, l.username.as_str()), ("mysql", "root"));
        assert_eq!(
            l.field("password_hash"),
            Some("c6bf9f6247f022b21a3ca0a2dd794024420fd796")
        );
        assert_eq!(l.field("challenge").map(str::len), Some(40));
        assert_eq!(l.field("database"), Some("wordpress"));
        assert_eq!(l.field("auth_plugin"), Some("mysql_native_password"));
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("#28000Access denied for user 'root'@'127.0.0.1' (using password: YES)"),
            "{text}"
        );
    }

    #[test]
    fn garbage_and_oversized_packets_close() {
        let (out, logins, step) =
            run_bytes(&cx(3306, Profile::LinuxServer), &[b"\x05\0\0\x01hello"]);
        assert!(logins.is_empty());
        assert_eq!(step, Step::Close);
        assert!(String::from_utf8_lossy(&out).contains("Bad handshake"));
        let (_, _, step) = run_bytes(&cx(3306, Profile::LinuxServer), &[b"\xff\xff\xff\x01"]);
        assert_eq!(step, Step::Close);
        let (_, _, step) = run_bytes(&cx(3306, Profile::LinuxServer), &[b"\x40\0\0\x01abc"]);
        assert_eq!(step, Step::More);
    }
}

#[cfg(test)]
mod greeting_tests {
    use super::super::tests::{cx, run_bytes};
    use super::*;

    /// Decodes the greeting as a MySQL client does and checks every field.
    #[test]
    fn the_greeting_is_a_well_formed_protocol_10_packet() {
        let (b, _, _) = run_bytes(&cx(3306, Profile::WindowsWorkstation), &[]);
        let len = usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
        assert_eq!(len + 4, b.len(), "length header");
        assert_eq!(b[3], 0, "sequence id");
        let body = &b[4..];
        assert_eq!(body[0], 10, "protocol version");
        let nul = body.iter().position(|&c| c == 0).unwrap();
        assert_eq!(&body[1..nul], b"8.0.36");
        let mut r = &body[nul + 1..];
        assert_ne!(u32::from_le_bytes(r[..4].try_into().unwrap()), 0);
        r = &r[4..];
        let salt1 = &r[..8];
        assert_eq!(r[8], 0, "filler");
        r = &r[9..];
        let caps = u32::from(u16::from_le_bytes([r[0], r[1]]))
            | u32::from(u16::from_le_bytes([r[5], r[6]])) << 16;
        assert_eq!(r[2], 255, "utf8mb4");
        assert_eq!(
            u16::from_le_bytes([r[3], r[4]]),
            2,
            "SERVER_STATUS_AUTOCOMMIT"
        );
        assert_eq!(
            caps & (PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH),
            PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
        );
        assert_eq!(caps & 0x800, 0, "TLS must not be offered");
        assert_eq!(r[7], 21, "salt length");
        assert!(r[8..18].iter().all(|&c| c == 0), "reserved");
        r = &r[18..];
        let salt2 = &r[..12];
        assert_eq!(r[12], 0);
        assert_eq!(&r[13..], b"mysql_native_password\0");
        // Real servers draw salt bytes without NUL, so clients may treat it
        // as a C string.
        assert!(salt1.iter().chain(salt2).all(|&c| c != 0));
    }

    #[test]
    fn the_nas_refuses_other_hosts_at_once() {
        let (b, _, step) = run_bytes(&cx(3306, Profile::Nas), &[]);
        assert_eq!(step, Step::Close);
        assert_eq!(&b[3..6], b"\0\xff\x6a");
        assert!(b.ends_with(b"Host '127.0.0.1' is not allowed to connect to this MariaDB server"));
        assert_eq!(usize::from(b[0]) + 4, b.len());
    }
}
