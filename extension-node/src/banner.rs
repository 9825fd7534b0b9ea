//! The fixed first bytes of the services that speak first and whose
//! greeting is all we need to get right: SSH, Telnet, MySQL, VNC, rsync.
//!
//! A client that connects to such a port and hears nothing gives up, or
//! learns that nothing real is listening. [`banner`] returns the bytes a
//! common real server sends, chosen by a [`Profile`] so that one machine
//! tells one consistent story; the responders of [`crate::respond`] send
//! them and carry the dialogue on (FTP, SMTP, POP3 and IMAP greet from their
//! own tables). The banners are static byte strings, so sending one costs
//! no allocation whatever the connection rate. [`service_name`] names the
//! service usually found on a port, for events, for choosing a responder,
//! and for probes whose bytes say nothing by themselves.

pub use crate::profile::Profile;

// Telnet option negotiation bytes (RFC 854/855).
const IAC: u8 = 0xff;
const WILL: u8 = 0xfb;
const DO: u8 = 0xfd;

/// Debian's telnetd first asks for terminal type, speed, X display and
/// environment (DO TTYPE, DO TSPEED, DO XDISPLOC, DO NEW-ENVIRON), then
/// prints /etc/issue.net and the login prompt.
const TELNET_LINUX: &[u8] = &[
    IAC, DO, 24, IAC, DO, 32, IAC, DO, 35, IAC, DO, 39, b'\r', b'\n', b'D', b'e', b'b', b'i', b'a',
    b'n', b' ', b'G', b'N', b'U', b'/', b'L', b'i', b'n', b'u', b'x', b' ', b'1', b'2', b'\r',
    b'\n', b'd', b'e', b'b', b'i', b'a', b'n', b' ', b'l', b'o', b'g', b'i', b'n', b':', b' ',
];

/// Microsoft Telnet Server negotiates (DO AUTHENTICATION, WILL ECHO, WILL
/// SUPPRESS-GO-AHEAD, DO NEW-ENVIRON, DO NAWS, DO/WILL BINARY) and greets
/// with its well-known welcome line.
const TELNET_WINDOWS: &[u8] = &[
    IAC, DO, 37, IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 39, IAC, DO, 31, IAC, DO, 0, IAC, WILL, 0,
    b'W', b'e', b'l', b'c', b'o', b'm', b'e', b' ', b't', b'o', b' ', b'M', b'i', b'c', b'r', b'o',
    b's', b'o', b'f', b't', b' ', b'T', b'e', b'l', b'n', b'e', b't', b' ', b'S', b'e', b'r', b'v',
    b'i', b'c', b'e', b' ', b'\r', b'\n', b'\n', b'\r', b'l', b'o', b'g', b'i', b'n', b':', b' ',
];

/// BusyBox telnetd (OpenWrt and most home routers) negotiates DO ECHO,
/// DO NAWS, WILL ECHO, WILL SUPPRESS-GO-AHEAD, then /bin/login prompts.
const TELNET_BUSYBOX: &[u8] =
    b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03\r\nOpenWrt login: ";

/// HP JetDirect's telnet configuration console asks for the admin password.
const TELNET_JETDIRECT: &[u8] = b"\r\nHP JetDirect\r\n\r\nPassword: ";

/// A MySQL 8.0.36 protocol-10 greeting (Initial Handshake Packet).
///
/// Layout: 3-byte little-endian payload length (74) and sequence 0, then
/// protocol 10, the NUL-terminated version, a connection id, the first 8
/// salt bytes and a filler, the lower capability flags, character set 255
/// (utf8mb4_0900_ai_ci, the 8.0 default), status AUTOCOMMIT, the upper
/// capability flags, the salt length (21), 10 reserved zero bytes, the last
/// 12 salt bytes and a NUL, and the auth plugin name.
///
/// The capabilities are those of a stock 8.0 server (0xdfff_f7ff) except
/// CLIENT_SSL: a client offered TLS would switch to it before naming its
/// user, and the user name is what we want to see.
const MYSQL_LINUX: &[u8] = b"\x4a\x00\x00\x00\
\x0a8.0.36\x00\
\x2b\x00\x00\x00\
;Y4)Jn@c\x00\
\xff\xf7\xff\x02\x00\xff\xdf\
\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
R5sp3w&U!^hQ\x00\
mysql_native_password\x00";

/// The same greeting as [`MYSQL_LINUX`] with another connection id and salt,
/// as a second, unrelated server would send.
const MYSQL_WINDOWS: &[u8] = b"\x4a\x00\x00\x00\
\x0a8.0.36\x00\
\x0e\x00\x00\x00\
x%2Lq:7j\x00\
\xff\xf7\xff\x02\x00\xff\xdf\
\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
Ze8+tH1{oP6s\x00\
mysql_native_password\x00";

/// The bytes to send first on `port` for the banner-only services (SSH,
/// Telnet, MySQL, VNC, rsync), or `None` where another responder greets
/// (see [`crate::respond`]) or the client speaks first.
pub fn banner(port: u16, profile: Profile) -> Option<&'static [u8]> {
    use Profile::{LinuxServer as L, Nas as N, Printer as P, Router as R, WindowsWorkstation as W};
    let b: &'static [u8] = match (port, profile) {
        (22 | 2222, L) => b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        (22 | 2222, W) => b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n",
        (22 | 2222, N) => b"SSH-2.0-OpenSSH_8.2p1\r\n",
        (22 | 2222, R | P) => b"SSH-2.0-dropbear_2022.83\r\n",
        (23 | 2323, L) => TELNET_LINUX,
        (23 | 2323, W) => TELNET_WINDOWS,
        (23 | 2323, R) => TELNET_BUSYBOX,
        (23 | 2323, N) => TELNET_LINUX,
        (23 | 2323, P) => TELNET_JETDIRECT,
        (3306, L | N | R | P) => MYSQL_LINUX,
        (3306, W) => MYSQL_WINDOWS,
        // RFB 3.8 is what current RealVNC, TigerVNC and TightVNC all offer.
        (5900..=5905, _) => b"RFB 003.008\n",
        // Debian 12's rsync daemon (and Synology's); rare on Windows, so silent there.
        (873, L | N | R | P) => b"@RSYNCD: 31.0 sha512 sha256 sha1 md5 md4\n",
        _ => return None,
    };
    Some(b)
}

/// The service usually found on `port` ("ssh", "http", "smb", …), or
/// `"unknown"`. Covers the ports scanners probe most, TCP and UDP.
pub fn service_name(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        22 | 2222 => "ssh",
        23 | 2323 => "telnet",
        25 | 587 => "smtp",
        53 => "dns",
        69 => "tftp",
        80 | 81 | 5000 | 8000 | 8008 | 8080 | 8081 | 8888 => "http",
        88 => "kerberos",
        102 => "s7",
        110 => "pop3",
        111 => "rpcbind",
        123 => "ntp",
        135 => "msrpc",
        137 => "netbios-ns",
        138 => "netbios-dgm",
        139 => "netbios-ssn",
        143 => "imap",
        161 => "snmp",
        389 => "ldap",
        443 | 8443 => "https",
        445 => "smb",
        465 => "smtps",
        502 => "modbus",
        515 => "printer",
        631 => "ipp",
        636 => "ldaps",
        873 => "rsync",
        993 => "imaps",
        995 => "pop3s",
        1080 => "socks",
        1433 => "mssql",
        1521 => "oracle",
        1723 => "pptp",
        1883 => "mqtt",
        1900 => "ssdp",
        2049 => "nfs",
        2375 => "docker",
        2376 => "docker-tls",
        3128 => "http-proxy",
        3306 => "mysql",
        3389 => "rdp",
        5060 => "sip",
        5432 => "postgresql",
        5900..=5905 => "vnc",
        5985 => "winrm",
        5986 => "winrm-tls",
        6379 => "redis",
        6443 => "kubernetes",
        9100 => "jetdirect",
        9200 => "elasticsearch",
        10250 => "kubelet",
        11211 => "memcached",
        27017 => "mongodb",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::profile::PROFILES;

    fn get(port: u16, p: Profile) -> &'static [u8] {
        banner(port, p).unwrap_or_else(|| panic!("no banner for {port} {p}"))
    }

    #[test]
    fn ssh_banners_are_rfc4253_version_lines() {
        for p in PROFILES {
            for port in [22, 2222] {
                let b = get(port, p);
                assert!(b.starts_with(b"SSH-2.0-"));
                assert!(b.ends_with(b"\r\n"));
                // RFC 4253 4.2: at most 255 characters including CR LF,
                // printable US-ASCII, a single line.
                assert!(b.len() <= 255);
                let line = &b[..b.len() - 2];
                assert!(line.iter().all(|c| (0x20..0x7f).contains(c)), "{p}");
            }
        }
        assert_ne!(
            get(22, Profile::LinuxServer),
            get(22, Profile::WindowsWorkstation)
        );
        assert!(std::str::from_utf8(get(22, Profile::WindowsWorkstation))
            .unwrap()
            .contains("for_Windows"));
    }

    /// Walks telnet commands: every IAC must start a complete 3-byte
    /// option negotiation, and the text after them ends in a prompt.
    #[test]
    fn telnet_banners_negotiate_then_prompt() {
        for p in PROFILES {
            for port in [23, 2323] {
                let b = get(port, p);
                let mut i = 0;
                let mut options = 0;
                while b[i] == IAC {
                    assert!((0xfb..=0xfe).contains(&b[i + 1]), "{p}: verb at {i}");
                    i += 3;
                    options += 1;
                }
                let text = &b[i..];
                assert!(!text.contains(&IAC));
                if p == Profile::Printer {
                    assert!(text.ends_with(b"Password: "), "{p}");
                } else {
                    assert!(options >= 4, "{p}");
                    assert!(text.ends_with(b"login: "), "{p}");
                }
            }
        }
        assert_ne!(
            get(23, Profile::LinuxServer),
            get(23, Profile::WindowsWorkstation)
        );
    }

    /// Decodes the greeting as a MySQL client does and checks every field.
    #[test]
    fn mysql_greeting_is_a_well_formed_protocol_10_packet() {
        for p in PROFILES {
            let b = get(3306, p);
            let len = usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
            assert_eq!(len + 4, b.len(), "{p}: length header");
            assert_eq!(b[3], 0, "{p}: sequence id");
            let body = &b[4..];
            assert_eq!(body[0], 10, "{p}: protocol version");
            let nul = body.iter().position(|&c| c == 0).unwrap();
            assert_eq!(&body[1..nul], b"8.0.36");
            let mut r = &body[nul + 1..];
            let conn_id = u32::from_le_bytes(r[..4].try_into().unwrap());
            assert_ne!(conn_id, 0);
            r = &r[4..];
            let salt1 = &r[..8];
            assert_eq!(r[8], 0, "{p}: filler");
            r = &r[9..];
            let caps_lo = u16::from_le_bytes([r[0], r[1]]);
            let charset = r[2];
            let status = u16::from_le_bytes([r[3], r[4]]);
            let caps_hi = u16::from_le_bytes([r[5], r[6]]);
            let caps = u32::from(caps_lo) | u32::from(caps_hi) << 16;
            let salt_len = r[7];
            assert!(r[8..18].iter().all(|&c| c == 0), "{p}: reserved");
            r = &r[18..];
            assert_eq!(charset, 255);
            assert_eq!(status, 0x0002, "{p}: SERVER_STATUS_AUTOCOMMIT");
            const PROTOCOL_41: u32 = 0x200;
            const SSL: u32 = 0x800;
            const SECURE_CONNECTION: u32 = 0x8000;
            const PLUGIN_AUTH: u32 = 0x8_0000;
            assert_eq!(caps & PROTOCOL_41, PROTOCOL_41);
            assert_eq!(caps & SECURE_CONNECTION, SECURE_CONNECTION);
            assert_eq!(caps & PLUGIN_AUTH, PLUGIN_AUTH);
            assert_eq!(caps & SSL, 0, "{p}: TLS must not be offered");
            assert_eq!(salt_len, 21);
            // Part 2 is max(13, salt_len - 8) bytes: 12 salt bytes and a NUL.
            let salt2 = &r[..12];
            assert_eq!(r[12], 0);
            r = &r[13..];
            assert_eq!(r, b"mysql_native_password\0");
            // Real servers draw salt bytes without NUL, so clients may
            // treat it as a C string.
            assert!(salt1.iter().chain(salt2).all(|&c| c != 0));
        }
        assert_ne!(
            get(3306, Profile::LinuxServer),
            get(3306, Profile::WindowsWorkstation)
        );
    }

    /// PyMySQL 1.2.4 accepted exactly these bytes as a server greeting and
    /// answered with its login (the capture in the fingerprint tests).
    #[test]
    fn mysql_linux_greeting_is_the_one_a_real_client_accepted() {
        let accepted = "4a0000000a382e302e3336002b0000003b5934294a6e406300fff7ff0200ffdf\
            15000000000000000000005235737033772655215e6851006d7973716c5f6e6174\
            6976655f70617373776f726400";
        let hex: String = get(3306, Profile::LinuxServer)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, accepted.replace(' ', ""));
    }

    #[test]
    fn vnc_speaks_rfb_3_8_on_every_display() {
        for p in PROFILES {
            for port in 5900..=5905 {
                assert_eq!(banner(port, p), Some(&b"RFB 003.008\n"[..]));
                assert_eq!(service_name(port), "vnc");
            }
        }
        assert_eq!(banner(5906, Profile::LinuxServer), None);
    }

    #[test]
    fn client_first_and_unknown_ports_stay_silent() {
        for p in PROFILES {
            for port in [
                0, 1, 21, 25, 53, 80, 110, 135, 139, 143, 443, 445, 465, 993, 995, 1433, 1521,
                2375, 3389, 5432, 6379, 6443, 8080, 8443, 9200, 11211, 27017, 12345, 65535,
            ] {
                assert_eq!(banner(port, p), None, "{port} {p}");
            }
        }
    }

    #[test]
    fn every_speak_first_port_has_a_service_name() {
        for p in PROFILES {
            for port in 0..=u16::MAX {
                if banner(port, p).is_some() {
                    assert_ne!(service_name(port), "unknown", "{port}");
                }
            }
        }
    }

    #[test]
    fn service_names_of_common_ports() {
        let cases = [
            (21, "ftp"),
            (22, "ssh"),
            (23, "telnet"),
            (25, "smtp"),
            (80, "http"),
            (110, "pop3"),
            (135, "msrpc"),
            (139, "netbios-ssn"),
            (143, "imap"),
            (161, "snmp"),
            (443, "https"),
            (445, "smb"),
            (1433, "mssql"),
            (1521, "oracle"),
            (1900, "ssdp"),
            (2375, "docker"),
            (3306, "mysql"),
            (3389, "rdp"),
            (5432, "postgresql"),
            (5901, "vnc"),
            (6379, "redis"),
            (6443, "kubernetes"),
            (8080, "http"),
            (9200, "elasticsearch"),
            (11211, "memcached"),
            (27017, "mongodb"),
            (123, "ntp"),
            (4444, "unknown"),
            (0, "unknown"),
        ];
        for (port, name) in cases {
            assert_eq!(service_name(port), name, "{port}");
        }
    }
}
