//! SMTP, POP3 and IMAP up to the login: greetings, capabilities, `AUTH
//! LOGIN`/`AUTH PLAIN` (RFC 4954, base64), `USER`/`PASS` and `LOGIN`, each
//! refused the way Postfix/Dovecot or Microsoft's servers refuse it.

use super::base64;
use super::line::{command, next_line, word, Line};
use super::{failed, Context, Login, Logins, Out, Step};
use crate::profile::Profile;

/// Longest decoded SASL value.
const MAX_SASL: usize = 384;

/// A SASL exchange in progress (`AUTH LOGIN` asks for the user, then the
/// password; `AUTH PLAIN` for one blob).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    #[default]
    None,
    LoginUser,
    LoginPassword,
    Plain,
}

/// The user of an `AUTH LOGIN`, or of a POP3 `USER`, between two lines.
type User = heapless::Vec<u8, 128>;

fn set_user(user: &mut User, value: &[u8]) {
    user.clear();
    let _ = user.extend_from_slice(value.get(..user.capacity()).unwrap_or(value));
}

/// Decodes an `AUTH PLAIN` blob (`authzid NUL user NUL password`) into a
/// login; `None` if it is not base64 with two NULs.
fn plain(protocol: &'static str, b64: &[u8]) -> Option<Login> {
    let blob = base64::decode::<MAX_SASL>(b64)?;
    let mut parts = blob.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    Some(Login::new(protocol, user).with("password", password))
}

fn microsoft(profile: Profile) -> bool {
    profile == Profile::WindowsWorkstation
}

/// Splits the next line off `input`; `Err` carries what to return for a
/// partial or over-long line.
fn line<'a>(
    input: &'a [u8],
    out: &mut Out,
    too_long: &str,
) -> Result<(&'a [u8], usize), (usize, Step)> {
    match next_line(input, false) {
        Line::Complete(l, n) => Ok((l, n)),
        Line::Partial => Err((0, Step::More)),
        Line::TooLong(n) => {
            out.text(too_long);
            Err((n, Step::More))
        }
    }
}

// ---- SMTP ----

/// An SMTP session before authentication.
#[derive(Debug, Default)]
pub struct Smtp {
    sasl: Sasl,
    user: User,
    failures: u8,
}

fn smtp_host(profile: Profile) -> &'static str {
    match profile {
        Profile::WindowsWorkstation => "ws01.example.lan",
        Profile::Nas => "DiskStation",
        _ => "mail.example.lan",
    }
}

/// `220 <host> ESMTP …`, or `220 <override>`.
pub fn smtp_greet(cx: &Context<'_>, out: &mut Out) {
    out.text("220 ");
    match cx.banner {
        Some(text) => out.text(text),
        None => {
            out.text(smtp_host(cx.profile));
            out.text(if microsoft(cx.profile) {
                " Microsoft ESMTP MAIL Service ready"
            } else if cx.profile == Profile::LinuxServer {
                " ESMTP Postfix (Debian/GNU)"
            } else {
                " ESMTP Postfix"
            });
        }
    }
    out.text("\r\n");
}

impl Smtp {
    /// Answers one line.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let ms = microsoft(cx.profile);
        let (line, used) = match line(input, out, "500 5.5.0 Error: line too long\r\n") {
            Ok(l) => l,
            Err(r) => return r,
        };
        let denied = if ms {
            "535 5.7.3 Authentication unsuccessful\r\n"
        } else {
            "535 5.7.8 Error: authentication failed: authentication failure\r\n"
        };
        if self.sasl != Sasl::None {
            let step = self.sasl_line(line, denied, out, logins);
            return (used, step);
        }
        let mut buf = [0; 16];
        let (cmd, arg) = command(line, &mut buf);
        let host = smtp_host(cx.profile);
        let step = match cmd {
            b"" => Step::More,
            b"EHLO" => {
                if ms {
                    out.text(&format!("250-{host} Hello [{}]\r\n", cx.peer));
                    out.text("250-AUTH=LOGIN\r\n250-AUTH LOGIN PLAIN\r\n250-SIZE 2097152\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 OK\r\n");
                } else {
                    out.text(&format!("250-{host}\r\n"));
                    out.text("250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
                }
                Step::More
            }
            b"HELO" => {
                out.text(&format!("250 {host}\r\n"));
                Step::More
            }
            b"AUTH" => {
                let (mechanism, initial) = word(arg);
                if mechanism.eq_ignore_ascii_case(b"LOGIN") {
                    if initial.is_empty() {
                        self.sasl = Sasl::LoginUser;
                        out.text("334 VXNlcm5hbWU6\r\n");
                    } else {
                        self.sasl = Sasl::LoginUser;
                        return (used, self.sasl_line(initial, denied, out, logins));
                    }
                } else if mechanism.eq_ignore_ascii_case(b"PLAIN") {
                    self.sasl = Sasl::Plain;
                    if initial.is_empty() {
                        out.text("334 \r\n");
                    } else {
                        return (used, self.sasl_line(initial, denied, out, logins));
                    }
                } else {
                    out.text(if ms {
                        "504 5.7.4 Unrecognized authentication type\r\n"
                    } else {
                        "535 5.7.8 Error: authentication failed: Invalid authentication mechanism\r\n"
                    });
                }
                Step::More
            }
            b"STARTTLS" => {
                out.text("454 4.7.0 TLS not available due to local problem\r\n");
                Step::More
            }
            b"MAIL" => {
                out.text(if ms {
                    "250 2.1.0 Sender OK\r\n"
                } else {
                    "250 2.1.0 Ok\r\n"
                });
                Step::More
            }
            b"RCPT" => {
                out.text(if ms {
                    "550 5.7.1 Unable to relay\r\n"
                } else {
                    "554 5.7.1 Relay access denied\r\n"
                });
                Step::More
            }
            b"DATA" => {
                out.text(if ms {
                    "503 5.5.2 Need rcpt command\r\n"
                } else {
                    "554 5.5.1 Error: no valid recipients\r\n"
                });
                Step::More
            }
            b"RSET" | b"NOOP" => {
                out.text(if ms {
                    "250 2.0.0 OK\r\n"
                } else {
                    "250 2.0.0 Ok\r\n"
                });
                Step::More
            }
            b"VRFY" => {
                out.text(if ms {
                    "252 2.1.5 Cannot VRFY user\r\n"
                } else {
                    "252 2.0.0 Send some mail, I'll try my best\r\n"
                });
                Step::More
            }
            b"QUIT" => {
                out.text(if ms {
                    "221 2.0.0 Service closing transmission channel\r\n"
                } else {
                    "221 2.0.0 Bye\r\n"
                });
                Step::Close
            }
            _ => {
                out.text(if ms {
                    "500 5.3.3 Unrecognized command\r\n"
                } else {
                    "502 5.5.2 Error: command not recognized\r\n"
                });
                Step::More
            }
        };
        (used, step)
    }

    /// A line of an `AUTH` exchange.
    fn sasl_line(
        &mut self,
        line: &[u8],
        denied: &str,
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> Step {
        if line == b"*" {
            self.sasl = Sasl::None;
            out.text("501 5.7.0 Authentication aborted\r\n");
            return Step::More;
        }
        let decoded = base64::decode::<MAX_SASL>(line);
        let login = match (self.sasl, decoded) {
            (_, None) => {
                self.sasl = Sasl::None;
                out.text("501 5.5.2 Cannot decode response\r\n");
                return Step::More;
            }
            (Sasl::LoginUser, Some(user)) => {
                set_user(&mut self.user, &user);
                self.sasl = Sasl::LoginPassword;
                out.text("334 UGFzc3dvcmQ6\r\n");
                return Step::More;
            }
            (Sasl::LoginPassword, Some(password)) => {
                Some(Login::new("smtp", &self.user).with("password", &password))
            }
            (_, Some(_)) => plain("smtp", line),
        };
        self.sasl = Sasl::None;
        if let Some(login) = login {
            logins.add(login);
        }
        out.text(denied);
        failed(&mut self.failures)
    }
}

// ---- POP3 ----

/// A POP3 session in the AUTHORIZATION state.
#[derive(Debug, Default)]
pub struct Pop3 {
    user: User,
    has_user: bool,
    plain: bool,
    failures: u8,
}

/// `+OK <product> ready.`
pub fn pop3_greet(cx: &Context<'_>, out: &mut Out) {
    out.text("+OK ");
    out.text(cx.banner.unwrap_or(match cx.profile {
        Profile::WindowsWorkstation => "The Microsoft Exchange POP3 service is ready.",
        Profile::LinuxServer => "Dovecot (Debian) ready.",
        _ => "Dovecot ready.",
    }));
    out.text("\r\n");
}

impl Pop3 {
    /// Answers one line.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let ms = microsoft(cx.profile);
        let (line, used) = match line(input, out, "-ERR Input line too long.\r\n") {
            Ok(l) => l,
            Err(r) => return r,
        };
        let denied = if ms {
            "-ERR Logon failure: unknown user name or bad password.\r\n"
        } else {
            "-ERR [AUTH] Authentication failed.\r\n"
        };
        let mut login = None;
        if self.plain {
            self.plain = false;
            login = Some(plain("pop3", line));
        }
        let mut buf = [0; 16];
        let (cmd, arg) = command(line, &mut buf);
        if login.is_none() {
            match cmd {
                // Dovecot answers an empty line too (scanners send them).
                b"" => out.text(if ms { "-ERR Protocol error.\r\n" } else { "-ERR Unknown command.\r\n" }),
                b"USER" => {
                    set_user(&mut self.user, arg);
                    self.has_user = true;
                    out.text("+OK\r\n");
                }
                b"PASS" if !self.has_user => out.text("-ERR No username given.\r\n"),
                b"PASS" => {
                    self.has_user = false;
                    login = Some(Some(Login::new("pop3", &self.user).with("password", arg)));
                }
                b"AUTH" => {
                    let (mechanism, initial) = word(arg);
                    if !mechanism.eq_ignore_ascii_case(b"PLAIN") {
                        out.text("-ERR Unsupported authentication mechanism.\r\n");
                    } else if initial.is_empty() {
                        self.plain = true;
                        out.text("+ \r\n");
                    } else {
                        login = Some(plain("pop3", initial));
                    }
                }
                b"CAPA" => out.text(if ms {
                    "+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\nUSER\r\n.\r\n"
                } else {
                    "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
                }),
                b"NOOP" => out.text("+OK\r\n"),
                b"QUIT" => {
                    out.text(if ms {
                        "+OK Microsoft Exchange Server POP3 server signing off.\r\n"
                    } else {
                        "+OK Logging out.\r\n"
                    });
                    return (used, Step::Close);
                }
                _ => out.text(if ms { "-ERR Protocol error.\r\n" } else { "-ERR Unknown command.\r\n" }),
            }
        }
        let Some(login) = login else {
            return (used, Step::More);
        };
        if let Some(login) = login {
            logins.add(login);
        }
        out.text(denied);
        (used, failed(&mut self.failures))
    }
}

// ---- IMAP ----

/// An IMAP session in the not-authenticated state.
#[derive(Debug, Default)]
pub struct Imap {
    /// The tag of an `AUTHENTICATE PLAIN` waiting for its blob.
    plain_tag: Option<heapless::String<16>>,
    failures: u8,
}

/// A tag we may repeat back: 1 to 16 letters, digits or dots.
fn tag(word: &[u8]) -> Option<heapless::String<16>> {
    if word.is_empty()
        || word.len() > 16
        || !word.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'.')
    {
        return None;
    }
    let mut t = heapless::String::new();
    for &b in word {
        t.push(char::from(b)).ok()?;
    }
    Some(t)
}

/// An IMAP astring: a quoted string (with `\"` and `\\` escapes) or an atom.
fn astring(s: &[u8]) -> (heapless::Vec<u8, 128>, &[u8]) {
    let s = super::line::trim_start(s);
    let mut v = heapless::Vec::new();
    if let Some(rest) = s.strip_prefix(b"\"") {
        let mut escaped = false;
        for (i, &b) in rest.iter().enumerate() {
            match (escaped, b) {
                (false, b'\\') => escaped = true,
                (false, b'"') => return (v, rest.get(i + 1..).unwrap_or_default()),
                _ => {
                    escaped = false;
                    let _ = v.push(b);
                }
            }
        }
        (v, &[])
    } else {
        let (w, rest) = word(s);
        let _ = v.extend_from_slice(w.get(..128).unwrap_or(w));
        (v, rest)
    }
}

/// `* OK … ready.`
pub fn imap_greet(cx: &Context<'_>, out: &mut Out) {
    out.text("* OK ");
    out.text(cx.banner.unwrap_or(match cx.profile {
        Profile::WindowsWorkstation => "The Microsoft Exchange IMAP4 service is ready.",
        Profile::LinuxServer => "[CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.",
        _ => "[CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.",
    }));
    out.text("\r\n");
}

impl Imap {
    /// Answers one tagged command line.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let ms = microsoft(cx.profile);
        let (line, used) = match line(
            input,
            out,
            "* BAD Error in IMAP command: Too long argument.\r\n",
        ) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let denied = if ms {
            " NO LOGIN failed.\r\n"
        } else {
            " NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        };
        if let Some(t) = self.plain_tag.take() {
            if let Some(login) = plain("imap", line) {
                logins.add(login);
            }
            out.text(&t);
            out.text(denied);
            return (used, failed(&mut self.failures));
        }
        let (t, rest) = word(line);
        if t.is_empty() {
            out.text("* BAD Error in IMAP command received by server.\r\n");
            return (used, Step::More);
        }
        let Some(t) = tag(t) else {
            out.text("* BAD Error in IMAP command received by server.\r\n");
            return (used, Step::More);
        };
        let mut buf = [0; 16];
        let (cmd, arg) = command(rest, &mut buf);
        let ok = |out: &mut Out, text: &str| {
            out.text(&t);
            out.text(" OK ");
            out.text(text);
            out.text("\r\n");
        };
        match cmd {
            b"CAPABILITY" => {
                if ms {
                    out.text("* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN UIDPLUS MOVE ID CHILDREN IDLE NAMESPACE LITERAL+\r\n");
                    ok(out, "CAPABILITY completed.");
                } else {
                    out.text("* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN\r\n");
                    ok(
                        out,
                        "Pre-login capabilities listed, post-login capabilities have more.",
                    );
                }
            }
            b"LOGIN" => {
                let (user, rest) = astring(arg);
                let (password, _) = astring(rest);
                logins.add(Login::new("imap", &user).with("password", &password));
                out.text(&t);
                out.text(denied);
                return (used, failed(&mut self.failures));
            }
            b"AUTHENTICATE" => {
                let (mechanism, initial) = word(arg);
                if !mechanism.eq_ignore_ascii_case(b"PLAIN") {
                    out.text(&t);
                    out.text(" NO Unsupported authentication mechanism.\r\n");
                } else if initial.is_empty() {
                    self.plain_tag = Some(t);
                    out.text("+ \r\n");
                } else {
                    if let Some(login) = plain("imap", initial) {
                        logins.add(login);
                    }
                    out.text(&t);
                    out.text(denied);
                    return (used, failed(&mut self.failures));
                }
            }
            b"NOOP" => ok(out, "NOOP completed."),
            b"ID" => {
                out.text(if ms {
                    "* ID NIL\r\n"
                } else {
                    "* ID (\"name\" \"Dovecot\")\r\n"
                });
                ok(out, "ID completed.");
            }
            b"LOGOUT" => {
                out.text("* BYE Logging out\r\n");
                ok(out, "Logout completed.");
                return (used, Step::Close);
            }
            _ => {
                out.text(&t);
                out.text(" BAD Error in IMAP command received by server.\r\n");
            }
        }
        (used, Step::More)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run};
    use super::*;

    #[test]
    fn smtp_auth_login_is_decoded_and_refused() {
        let (out, logins, _) = run(
            &cx(25, Profile::LinuxServer),
            &[
                b"EHLO x\r\n",
                b"AUTH LOGIN\r\n",
                b"YWRtaW4=\r\n",
                b"c2VjcmV0\r\n",
            ],
        );
        assert!(
            out.starts_with(
                "220 mail.example.lan ESMTP Postfix (Debian/GNU)\r\n250-mail.example.lan\r\n"
            ),
            "{out}"
        );
        assert!(out.contains("250-AUTH PLAIN LOGIN\r\n"));
        assert!(out.ends_with("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5.7.8 Error: authentication failed: authentication failure\r\n"), "{out}");
        assert_eq!(logins.len(), 1);
        assert_eq!(
            (logins[0].protocol, logins[0].username.as_str()),
            ("smtp", "admin")
        );
        assert_eq!(logins[0].field("password"), Some("secret"));
    }

    #[test]
    fn smtp_auth_plain_with_and_without_initial_response() {
        let (_, logins, _) = run(
            &cx(587, Profile::WindowsWorkstation),
            &[b"AUTH PLAIN AHUxAHAx\r\nAUTH PLAIN\r\nAHUyAHAy\r\n"],
        );
        assert_eq!(logins.len(), 2);
        assert_eq!(
            (logins[0].username.as_str(), logins[0].field("password")),
            ("u1", Some("p1"))
        );
        assert_eq!(
            (logins[1].username.as_str(), logins[1].field("password")),
            ("u2", Some("p2"))
        );
    }

    #[test]
    fn smtp_bad_base64_and_cancel_reset_the_exchange() {
        let (out, logins, _) = run(
            &cx(25, Profile::LinuxServer),
            &[b"AUTH LOGIN\r\n*\r\nAUTH LOGIN\r\n!!!\r\nQUIT\r\n"],
        );
        assert!(logins.is_empty());
        assert!(out.contains("501 5.7.0 Authentication aborted\r\n"));
        assert!(out.contains("501 5.5.2 Cannot decode response\r\n"));
        assert!(out.ends_with("221 2.0.0 Bye\r\n"));
    }

    #[test]
    fn pop3_user_pass_and_auth_plain() {
        let (out, logins, step) = run(
            &cx(110, Profile::LinuxServer),
            &[b"CAPA\r\nUSER bob\r\nPASS pw\r\nAUTH PLAIN\r\nAGFsaWNlAHB3Mg==\r\nQUIT\r\n"],
        );
        assert!(
            out.starts_with("+OK Dovecot (Debian) ready.\r\n+OK\r\nCAPA\r\n"),
            "{out}"
        );
        assert_eq!(step, Step::Close);
        assert_eq!(logins.len(), 2);
        assert_eq!(
            (logins[0].username.as_str(), logins[0].field("password")),
            ("bob", Some("pw"))
        );
        assert_eq!(
            (logins[1].username.as_str(), logins[1].field("password")),
            ("alice", Some("pw2"))
        );
    }

    #[test]
    fn imap_login_with_quoted_strings_and_tags_filtered() {
        let (out, logins, _) = run(
            &cx(143, Profile::LinuxServer),
            &[
                b"a1 CAPABILITY\r\n",
                b"a2 LOGIN \"jo \\\"x\\\"\" \"p w\"\r\n",
                b"<script> LOGIN u p\r\n",
            ],
        );
        assert!(out.contains("a1 OK Pre-login"), "{out}");
        assert!(out.contains("a2 NO [AUTHENTICATIONFAILED]"), "{out}");
        assert!(
            out.ends_with("* BAD Error in IMAP command received by server.\r\n"),
            "{out}"
        );
        assert!(!out.contains("script"));
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].username, "jo \"x\"");
        assert_eq!(logins[0].field("password"), Some("p w"));
    }

    #[test]
    fn imap_authenticate_plain_and_logout() {
        let (out, logins, step) = run(
            &cx(143, Profile::WindowsWorkstation),
            &[
                b"1 AUTHENTICATE PLAIN\r\n",
                b"AHUAcA==\r\n",
                b"2 LOGOUT\r\n",
            ],
        );
        assert_eq!(step, Step::Close);
        assert_eq!(logins[0].username, "u");
        assert!(out.contains("+ \r\n1 NO LOGIN failed.\r\n* BYE"), "{out}");
    }
}

#[cfg(test)]
mod scanner_tests {
    use super::super::tests::{cx, run};
    use super::*;

    /// nmap's GenericLines probe on 110 and GetRequest on 143: Dovecot's
    /// answers to them are how scanners name it.
    #[test]
    fn dovecot_answers_blank_lines_and_http_like_a_real_one() {
        let (out, _, _) = run(&cx(110, Profile::LinuxServer), &[b"\r\n\r\n"]);
        assert!(
            out.ends_with("ready.\r\n-ERR Unknown command.\r\n-ERR Unknown command.\r\n"),
            "{out}"
        );
        let (out, _, _) = run(&cx(143, Profile::LinuxServer), &[b"GET / HTTP/1.0\r\n\r\n"]);
        assert!(
            out.ends_with("ready.\r\nGET BAD Error in IMAP command received by server.\r\n* BAD Error in IMAP command received by server.\r\n"),
            "{out}"
        );
    }
}
