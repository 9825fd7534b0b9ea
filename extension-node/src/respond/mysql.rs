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

fn version(profile: Profile) -> &'static str {
    match profile {
        Profile::Nas => "5.5.5-10.3.32-MariaDB",
        _ => "8.0.36",
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
    pub fn greet(&mut self, cx: &Context<'_>, out: &mut Out) {
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
        assert_eq!(&g1[4..12], b"\x0a8.0.36\0");
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
