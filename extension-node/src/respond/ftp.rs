//! FTP up to the login (RFC 959): greeting, `USER`, `PASS`, the commands
//! clients send before logging in (`FEAT`, `SYST`, `AUTH`, `HELP`), and
//! every password refused the way the profile's server refuses it.

use super::line::{command, next_line, Line};
use super::{failed, Context, Login, Logins, Out, Step};
use crate::profile::Profile;

/// What a connection remembers: the last `USER` (cut) and the failures.
#[derive(Debug, Default)]
pub struct Ftp {
    user: heapless::Vec<u8, 64>,
    has_user: bool,
    failures: u8,
}

struct Replies {
    greeting: &'static str,
    user: &'static str,
    denied: &'static str,
    no_user: &'static str,
    login_first: &'static str,
    syst: &'static str,
    feat: &'static str,
    auth: &'static str,
    unknown: &'static str,
}

const VSFTPD: Replies = Replies {
    greeting: "(vsFTPd 3.0.3)",
    user: "331 Please specify the password.\r\n",
    denied: "530 Login incorrect.\r\n",
    no_user: "503 Login with USER first.\r\n",
    login_first: "530 Please login with USER and PASS.\r\n",
    syst: "530 Please login with USER and PASS.\r\n",
    feat: "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n211 End\r\n",
    auth: "530 Please login with USER and PASS.\r\n",
    unknown: "530 Please login with USER and PASS.\r\n",
};

const IIS: Replies = Replies {
    greeting: "Microsoft FTP Service",
    user: "331 Password required\r\n",
    denied: "530 User cannot log in.\r\n",
    no_user: "503 Login with USER first.\r\n",
    login_first: "530 Please login with USER and PASS.\r\n",
    syst: "215 Windows_NT\r\n",
    feat: "211-Extended features supported:\r\n LANG EN*\r\n UTF8\r\n AUTH TLS;TLS-C;SSL;TLS-P;\r\n PBSZ\r\n PROT C;P;\r\n CCC\r\n HOST\r\n SIZE\r\n MDTM\r\n REST STREAM\r\n211 END\r\n",
    auth: "534 Local policy on server does not allow TLS secure connections.\r\n",
    unknown: "500 Command not understood.\r\n",
};

const SYNOLOGY: Replies = Replies {
    greeting: "DiskStation FTP server ready.",
    user: "331 Password required for user.\r\n",
    denied: "530 Login incorrect.\r\n",
    no_user: "503 Login with USER first.\r\n",
    login_first: "530 Please login with USER and PASS.\r\n",
    syst: "215 UNIX Type: L8\r\n",
    feat: "211-Extensions supported:\r\n EPRT\r\n EPSV\r\n MDTM\r\n SIZE\r\n REST STREAM\r\n UTF8\r\n211 End.\r\n",
    auth: "504 AUTH TLS not supported.\r\n",
    unknown: "530 Please login with USER and PASS.\r\n",
};

const JETDIRECT: Replies = Replies {
    greeting: "JD FTP Server Ready",
    user: "331 Username Ok, send identity (email address) as password.\r\n",
    denied: "530 Login incorrect.\r\n",
    no_user: "503 Bad sequence of commands.\r\n",
    login_first: "530 Not logged in.\r\n",
    syst: "215 UNIX Type: L8\r\n",
    feat: "500 'FEAT': command not understood.\r\n",
    auth: "500 'AUTH': command not understood.\r\n",
    unknown: "530 Not logged in.\r\n",
};

fn replies(profile: Profile) -> &'static Replies {
    match profile {
        Profile::LinuxServer | Profile::Router => &VSFTPD,
        Profile::WindowsWorkstation => &IIS,
        Profile::Nas => &SYNOLOGY,
        Profile::Printer => &JETDIRECT,
    }
}

/// `220 <product>`: the operator's banner or the profile's.
pub fn greet(cx: &Context<'_>, out: &mut Out) {
    out.text("220 ");
    out.text(cx.banner.unwrap_or(replies(cx.profile).greeting));
    out.text("\r\n");
}

impl Ftp {
    /// Answers one command line.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let r = replies(cx.profile);
        let (line, used) = match next_line(input, false) {
            Line::Complete(l, n) => (l, n),
            Line::Partial => return (0, Step::More),
            Line::TooLong(n) => {
                out.text("500 Input line too long.\r\n");
                return (n, Step::More);
            }
        };
        let mut buf = [0; 16];
        let (cmd, arg) = command(line, &mut buf);
        let step = match cmd {
            b"" => Step::More,
            b"USER" => {
                self.user.clear();
                let _ = self.user.extend_from_slice(arg.get(..64).unwrap_or(arg));
                self.has_user = true;
                out.text(r.user);
                Step::More
            }
            b"PASS" if !self.has_user => {
                out.text(r.no_user);
                Step::More
            }
            b"PASS" => {
                logins.add(Login::new("ftp", &self.user).with("password", arg));
                self.has_user = false;
                out.text(r.denied);
                failed(&mut self.failures)
            }
            b"QUIT" => {
                out.text("221 Goodbye.\r\n");
                Step::Close
            }
            b"SYST" => {
                out.text(r.syst);
                Step::More
            }
            b"FEAT" => {
                out.text(r.feat);
                Step::More
            }
            b"AUTH" => {
                out.text(r.auth);
                Step::More
            }
            b"NOOP" => {
                out.text("200 NOOP ok.\r\n");
                Step::More
            }
            b"OPTS" | b"HELP" | b"PWD" | b"CWD" | b"LIST" | b"NLST" | b"RETR" | b"STOR"
            | b"PASV" | b"EPSV" | b"PORT" | b"TYPE" | b"SIZE" | b"MKD" | b"DELE" => {
                out.text(r.login_first);
                Step::More
            }
            _ => {
                out.text(r.unknown);
                Step::More
            }
        };
        (used, step)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run};
    use super::*;

    #[test]
    fn a_login_is_recorded_and_refused() {
        let (out, logins, step) = run(
            &cx(21, Profile::LinuxServer),
            &[b"USER admin\r\n", b"PASS hunter2\r\n"],
        );
        assert!(out.starts_with("220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n530 Login incorrect.\r\n"), "{out}");
        assert_eq!(step, Step::More);
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].protocol, "ftp");
        assert_eq!(logins[0].username, "admin");
        assert_eq!(logins[0].field("password"), Some("hunter2"));
    }

    #[test]
    fn three_failures_end_the_connection() {
        let lines: &[&[u8]] =
            &[b"USER a\r\nPASS 1\r\nUSER b\r\nPASS 2\r\nUSER c\r\nPASS 3\r\nUSER d\r\nPASS 4\r\n"];
        let (_, logins, step) = run(&cx(21, Profile::WindowsWorkstation), lines);
        assert_eq!(step, Step::Close);
        assert_eq!(logins.len(), 3);
        assert_eq!(logins[2].username, "c");
    }

    #[test]
    fn a_password_before_a_user_and_other_commands_are_refused_without_echo() {
        let (out, logins, _) = run(
            &cx(21, Profile::WindowsWorkstation),
            &[b"PASS x\r\n", b"SYST\r\n", b"RETR /etc/<script>\r\n"],
        );
        assert!(logins.is_empty());
        assert!(
            out.contains("503 Login with USER first.\r\n215 Windows_NT\r\n530 Please login"),
            "{out}"
        );
        assert!(!out.contains("script"));
    }

    #[test]
    fn the_banner_override_replaces_the_product() {
        let mut c = cx(21, Profile::LinuxServer);
        c.banner = Some("ProFTPD 1.3.8 Server (Debian)");
        let (out, _, _) = run(&c, &[]);
        assert_eq!(out, "220 ProFTPD 1.3.8 Server (Debian)\r\n");
    }

    #[test]
    fn a_split_command_waits_for_its_end() {
        let (out, logins, _) = run(
            &cx(21, Profile::LinuxServer),
            &[b"USER ro", b"ot\r\nPA", b"SS toor\r\n"],
        );
        assert_eq!(logins[0].username, "root");
        assert_eq!(logins[0].field("password"), Some("toor"));
        assert_eq!(out.matches("\r\n").count(), 3, "{out}");
    }
}
