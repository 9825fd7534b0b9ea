//! The fixed first bytes of the services that speak first and whose
//! greeting is all we need to get right: SSH, Telnet, VNC, rsync.
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
/// environment (DO TTYPE, DO TSPEED, DO XDISPLOC, DO NEW-ENVIRON) and waits
/// for the client's answers before it prints /etc/issue.net and the login
/// prompt (see [`crate::respond`]'s Telnet responder).
const TELNET_LINUX: &[u8] = &[IAC, DO, 24, IAC, DO, 32, IAC, DO, 35, IAC, DO, 39];

/// Microsoft Telnet Server negotiates (DO AUTHENTICATION, WILL ECHO, WILL
/// SUPPRESS-GO-AHEAD, DO NEW-ENVIRON, DO NAWS, DO/WILL BINARY) and greets
/// once the client answered.
const TELNET_WINDOWS: &[u8] = &[
    IAC, DO, 37, IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 39, IAC, DO, 31, IAC, DO, 0, IAC, WILL, 0,
];

/// BusyBox telnetd (on a TP-Link TL-WR841N, as on most home routers)
/// negotiates DO ECHO, DO NAWS, WILL ECHO, WILL SUPPRESS-GO-AHEAD, then
/// /bin/login prompts with the host name.
const TELNET_BUSYBOX: &[u8] = b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03TL-WR841N login: ";

/// HP JetDirect's telnet configuration console refuses to echo (WONT ECHO)
/// and asks for the admin password.
const TELNET_JETDIRECT: &[u8] = b"\xff\xfc\x01\r\nHP JetDirect\r\n\r\nPassword: ";

/// The bytes to send first on `port` for the banner-only services (SSH,
/// Telnet, VNC, rsync), or `None` where another responder greets
/// (see [`crate::respond`]) or the client speaks first.
pub fn banner(port: u16, profile: Profile) -> Option<&'static [u8]> {
    use Profile::{LinuxServer as L, Nas as N, Printer as P, Router as R, WindowsWorkstation as W};
    let b: &'static [u8] = match (port, profile) {
        (22 | 2222, L) => b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        (22 | 2222, W) => b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n",
        (22 | 2222, N) => b"SSH-2.0-OpenSSH_8.2\r\n",
        (22 | 2222, R | P) => b"SSH-2.0-dropbear_2022.83\r\n",
        (23 | 2323, L) => TELNET_LINUX,
        (23 | 2323, W) => TELNET_WINDOWS,
        (23 | 2323, R) => TELNET_BUSYBOX,
        (23 | 2323, N) => TELNET_LINUX,
        (23 | 2323, P) => TELNET_JETDIRECT,
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
        443 | 5001 | 8443 => "https",
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
                while b.get(i) == Some(&IAC) {
                    assert!((0xfb..=0xfe).contains(&b[i + 1]), "{p}: verb at {i}");
                    i += 3;
                    options += 1;
                }
                let text = &b[i..];
                assert!(!text.contains(&IAC));
                match p {
                    Profile::Printer => assert!(text.ends_with(b"Password: "), "{p}"),
                    // Debian's and Microsoft's servers prompt once the
                    // client answered.
                    Profile::LinuxServer | Profile::Nas | Profile::WindowsWorkstation => {
                        assert!(options >= 4 && text.is_empty(), "{p}")
                    }
                    _ => {
                        assert!(options >= 4, "{p}");
                        assert!(text.ends_with(b"login: "), "{p}");
                    }
                }
            }
        }
        assert_ne!(
            get(23, Profile::LinuxServer),
            get(23, Profile::WindowsWorkstation)
        );
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
