//! Telnet up to the login: the profile's option negotiation and prompt
//! (see [`crate::banner`]), then user name and password, refused. Option
//! negotiation from the client (RFC 854/855) is skipped byte by byte, so a
//! sequence split across reads is handled.

use super::{failed, Context, Login, Logins, Out, Step};
use crate::profile::Profile;

const IAC: u8 = 0xff;
const SB: u8 = 250;
const SE: u8 = 240;

/// Longest user name or password line kept; the rest of a longer line is
/// dropped.
const MAX_FIELD: usize = 128;

/// Where the client is in the login dialogue.
#[derive(Debug, Default)]
pub struct Telnet {
    /// The line being typed.
    line: heapless::Vec<u8, MAX_FIELD>,
    user: heapless::Vec<u8, MAX_FIELD>,
    awaiting_password: bool,
    failures: u8,
    option: Negotiation,
    /// A CR ended the last line: a LF or NUL right after it belongs to it.
    after_cr: bool,
    /// The prompt after the negotiation was sent.
    prompted: bool,
}

/// Where the byte stream is within a Telnet command.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Negotiation {
    #[default]
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: one option byte follows.
    Option,
    /// Inside IAC SB … IAC SE.
    Sub,
    /// After IAC inside a subnegotiation.
    SubIac,
}

struct Prompts {
    /// What the server prints once the client answered its negotiation
    /// (empty where the prompt came with the greeting).
    prelude: &'static str,
    login: &'static str,
    password: &'static str,
    incorrect: &'static str,
    /// Whether the console asks only for a password (JetDirect).
    password_only: bool,
}

fn prompts(profile: Profile) -> Prompts {
    match profile {
        Profile::LinuxServer | Profile::Nas => Prompts {
            prelude: "\r\nDebian GNU/Linux 12\r\ndebian login: ",
            login: "debian login: ",
            password: "Password: ",
            incorrect: "\r\nLogin incorrect\r\n",
            password_only: false,
        },
        Profile::WindowsWorkstation => Prompts {
            prelude: "Welcome to Microsoft Telnet Service \r\n\n\rlogin: ",
            login: "login: ",
            password: "password: ",
            incorrect: "\r\nLogin Failed\r\n\r\n",
            password_only: false,
        },
        Profile::Router => Prompts {
            prelude: "",
            login: "TL-WR841N login: ",
            password: "Password: ",
            incorrect: "\r\nLogin incorrect\r\n",
            password_only: false,
        },
        Profile::Printer => Prompts {
            prelude: "",
            login: "Password: ",
            password: "Password: ",
            incorrect: "\r\nInvalid password.\r\n\r\n",
            password_only: true,
        },
    }
}

/// The profile's negotiation, and its prompt where it comes at once; an
/// override replaces the text before the prompt (the `/etc/issue.net`
/// line), which then comes once the client answered.
pub fn greet(cx: &Context<'_>, out: &mut Out) {
    let Some(b) = crate::banner::banner(cx.port, cx.profile) else {
        return;
    };
    match cx.banner {
        None => out.push(b),
        Some(_) => out.push(b.get(..negotiation_len(b)).unwrap_or_default()),
    }
}

/// What follows the negotiation once the client said something.
fn prelude(cx: &Context<'_>, out: &mut Out) {
    let p = prompts(cx.profile);
    match cx.banner {
        Some(text) => {
            out.text("\r\n");
            out.text(text);
            out.text("\r\n");
            out.text(p.login);
        }
        None => out.text(p.prelude),
    }
}

/// The bytes of IAC commands a banner starts with.
fn negotiation_len(b: &[u8]) -> usize {
    let mut i = 0;
    while b.get(i) == Some(&IAC) {
        i += 3;
    }
    i.min(b.len())
}

impl Telnet {
    /// Takes bytes until a line ends (or all of them), answering each line.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        if !self.prompted {
            self.prompted = true;
            prelude(cx, out);
        }
        for (i, &b) in input.iter().enumerate() {
            if !self.data(b) {
                continue;
            }
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' | 0 if after_cr => {}
                b'\r' | b'\n' | 0 => return (i + 1, self.line_end(cx, out, logins)),
                _ => {
                    // Past MAX_FIELD the rest of the line is dropped.
                    let _ = self.line.push(b);
                }
            }
        }
        (input.len(), Step::More)
    }

    /// Feeds one byte through the negotiation state; true when it is data.
    fn data(&mut self, b: u8) -> bool {
        use Negotiation::*;
        let (next, data) = match (self.option, b) {
            (Data, IAC) => (Command, false),
            (Data, _) => (Data, true),
            (Command, IAC) => (Data, true), // IAC IAC: a literal 0xff
            (Command, 251..=254) => (Option, false),
            (Command, SB) => (Sub, false),
            (Command, _) => (Data, false),
            (Option, _) => (Data, false),
            (Sub, IAC) => (SubIac, false),
            (Sub, _) => (Sub, false),
            (SubIac, SE) => (Data, false),
            (SubIac, _) => (Sub, false),
        };
        self.option = next;
        data
    }

    fn line_end(&mut self, cx: &Context<'_>, out: &mut Out, logins: &mut Logins<'_>) -> Step {
        let p = prompts(cx.profile);
        let line = std::mem::take(&mut self.line);
        if p.password_only || self.awaiting_password {
            let user = if p.password_only {
                &[][..]
            } else {
                &self.user[..]
            };
            logins.add(Login::new("telnet", user).with("password", &line));
            self.awaiting_password = false;
            out.text(p.incorrect);
            if failed(&mut self.failures) == Step::Close {
                return Step::Close;
            }
            out.text(p.login);
        } else if line.is_empty() {
            // An empty line at the login prompt: ask again, as login does.
            out.text("\r\n");
            out.text(p.login);
        } else {
            // The server echoes what is typed at the login prompt (it
            // negotiated WILL ECHO); only printable ASCII goes back.
            let shown: Vec<u8> = line
                .iter()
                .copied()
                .filter(|c| (b' '..=b'~').contains(c))
                .collect();
            out.push(&shown);
            out.text("\r\n");
            out.text(p.password);
            self.user = line;
            self.awaiting_password = true;
        }
        Step::More
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run};
    use super::*;

    #[test]
    fn user_and_password_are_recorded_through_negotiation() {
        let (out, logins, step) = run(
            &cx(23, Profile::LinuxServer),
            &[
                b"\xff\xfb\x18\xff\xfa\x18\x00xterm\xff\xf0ro",
                b"ot\r\0",
                b"\xff\xfd\x01admin\r\n",
            ],
        );
        assert_eq!(step, Step::More);
        assert_eq!(logins.len(), 1, "{out}");
        assert_eq!(logins[0].protocol, "telnet");
        assert_eq!(logins[0].username, "root");
        assert_eq!(logins[0].field("password"), Some("admin"));
        assert!(
            out.ends_with("root\r\nPassword: \r\nLogin incorrect\r\ndebian login: "),
            "{out:?}"
        );
    }

    #[test]
    fn the_printer_asks_only_for_a_password() {
        let (_, logins, _) = run(&cx(23, Profile::Printer), &[b"1234\r\n"]);
        assert_eq!(logins[0].username, "");
        assert_eq!(logins[0].field("password"), Some("1234"));
    }

    #[test]
    fn three_failures_close_and_a_long_line_is_cut() {
        let mut long = b"x".repeat(1000);
        long.extend_from_slice(b"\r\n");
        let (_, logins, step) = run(
            &cx(23, Profile::Router),
            &[&long, b"p1\r\n", b"u2\r\np2\r\nu3\r\np3\r\n"],
        );
        assert_eq!(step, Step::Close);
        assert_eq!(logins.len(), 3);
        assert_eq!(logins[0].username.len(), MAX_FIELD);
    }

    #[test]
    fn the_echo_keeps_only_printable_ascii() {
        let (out, _, _) = run(&cx(23, Profile::WindowsWorkstation), &[b"a\x1b[2Jb\r\n"]);
        assert!(out.contains("a[2Jb\r\npassword: "), "{out:?}");
        assert!(!out.contains('\x1b'));
    }
}

#[cfg(test)]
mod greeting_tests {
    use super::super::tests::{cx, run};
    use super::*;

    #[test]
    fn an_override_replaces_the_issue_line_after_the_negotiation() {
        let mut c = cx(23, Profile::LinuxServer);
        c.banner = Some("Ubuntu 22.04.4 LTS");
        let (out, _, _) = run(&c, &[b"\xff\xfc\x18"]);
        assert!(
            out.ends_with("\r\nUbuntu 22.04.4 LTS\r\ndebian login: "),
            "{out:?}"
        );
        let (out, _, _) = run(&cx(23, Profile::Router), &[]);
        assert!(out.ends_with("TL-WR841N login: "), "{out:?}");
    }
}
