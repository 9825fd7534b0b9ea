//! Which kind of machine the tripwires imitate: one profile picks the
//! products, versions and banners of every port, so that one machine tells
//! one consistent story (a Windows workstation does not run vsftpd).

use std::fmt;
use std::str::FromStr;

/// A kind of machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// A Debian 12 server: OpenSSH, vsftpd, Postfix, Dovecot, Apache,
    /// MySQL, Redis, Samba, Squid.
    #[default]
    LinuxServer,
    /// A Windows 10/11 workstation: OpenSSH for Windows, IIS, Microsoft
    /// FTP/SMTP, SMB, Remote Desktop, SQL Server.
    WindowsWorkstation,
    /// A home or small-office router: Dropbear, BusyBox telnetd, a web
    /// management page.
    Router,
    /// A Synology-style NAS: DSM's web login, FTP, SMB, rsync, MariaDB.
    Nas,
    /// An HP-style network printer: JetDirect FTP and Telnet, an embedded
    /// web server, raw printing.
    Printer,
}

/// Every profile, in the order of [`Profile::NAMES`].
pub const PROFILES: [Profile; 5] = [
    Profile::LinuxServer,
    Profile::WindowsWorkstation,
    Profile::Router,
    Profile::Nas,
    Profile::Printer,
];

impl Profile {
    /// The accepted names, for error messages and help.
    pub const NAMES: &'static str = "linux-server, windows-workstation, router, nas or printer";

    /// The profile's name in configs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::LinuxServer => "linux-server",
            Profile::WindowsWorkstation => "windows-workstation",
            Profile::Router => "router",
            Profile::Nas => "nas",
            Profile::Printer => "printer",
        }
    }

    /// The machine's name where a protocol shows it (TLS certificates).
    pub fn host_name(self) -> &'static str {
        match self {
            Profile::LinuxServer => "srv01",
            Profile::WindowsWorkstation => "WS01",
            Profile::Router => "TL-WR841N",
            Profile::Nas => "DiskStation",
            Profile::Printer => "NPI3A5F21",
        }
    }

    /// The TCP ports where this profile's products answer believably (its
    /// default port list); other ports are still watched when configured.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Profile::LinuxServer => &[
                21, 22, 23, 25, 80, 110, 143, 443, 445, 3128, 3306, 5900, 6379, 8080,
            ],
            // No telnet or mail server: Windows 10/11 ship none.
            Profile::WindowsWorkstation => &[
                21, 22, 80, 443, 445, 1433, 3306, 3389, 5900, 5985, 6379, 8080, 8443,
            ],
            Profile::Router => &[21, 22, 23, 80, 8080],
            Profile::Nas => &[21, 22, 80, 139, 445, 3306, 5000, 5001],
            Profile::Printer => &[21, 23, 80, 443, 515, 631, 9100],
        }
    }
}

impl FromStr for Profile {
    /// Says which name was rejected and which are accepted.
    type Err = String;

    /// Accepts the names of [`Profile::as_str`] (ASCII case and surrounding
    /// blanks ignored, since configs are typed by hand).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        PROFILES
            .into_iter()
            .find(|p| s.eq_ignore_ascii_case(p.as_str()))
            .ok_or_else(|| format!("unknown profile {s:?}: expected {}", Profile::NAMES))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_round_trip() {
        for p in PROFILES {
            assert_eq!(p.as_str().parse::<Profile>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
            assert!(Profile::NAMES.contains(p.as_str()));
        }
        assert_eq!(
            " Windows-Workstation ".parse::<Profile>(),
            Ok(Profile::WindowsWorkstation)
        );
        let err = "linux".parse::<Profile>().unwrap_err();
        assert!(
            err.contains("\"linux\"") && err.contains("linux-server"),
            "{err}"
        );
        assert!("".parse::<Profile>().is_err());
        assert_eq!(Profile::default(), Profile::LinuxServer);
    }

    #[test]
    fn profile_ports_are_sorted_and_distinct() {
        for p in PROFILES {
            let ports = p.ports();
            assert!(!ports.is_empty());
            assert!(ports.windows(2).all(|w| w[0] < w[1]), "{p}: {ports:?}");
        }
    }
}
