//! Redis up to `AUTH`: RESP arrays and inline commands, checked the way
//! Redis checks them (unknown command, then arity, then authentication), so
//! that every answer is the one a real server gives. With a password
//! required (the default) everything but `AUTH`, `HELLO … AUTH` and `QUIT`
//! gets `-NOAUTH`; an open server answers `PING` and `INFO`. Passwords
//! tried are recorded.

use super::line::{next_line, Line};
use super::{Context, Login, Logins, Out, Step};
use crate::profile::Profile;

/// Most arguments read from one command (more are counted, not kept).
const MAX_ARGS: usize = 8;
/// Longest argument accepted (bulk strings past it close the connection,
/// as `proto-max-bulk-len` would at a larger size).
const MAX_ARG: usize = 512;

/// A Redis connection before authentication.
#[derive(Debug, Default)]
pub struct Redis {
    failures: u8,
}

/// One parsed command: the first [`MAX_ARGS`] arguments and the count.
struct Command<'a> {
    args: heapless::Vec<&'a [u8], MAX_ARGS>,
    count: usize,
}

enum Parsed<'a> {
    Command(Command<'a>, usize),
    Partial,
    Invalid(&'static str),
}

/// Parses a RESP array of bulk strings, or an inline command line.
fn parse(input: &[u8]) -> Parsed<'_> {
    if input.first() != Some(&b'*') {
        return match next_line(input, false) {
            Line::Complete(line, used) => {
                let mut c = Command {
                    args: heapless::Vec::new(),
                    count: 0,
                };
                for w in line.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                    let _ = c.args.push(w);
                    c.count += 1;
                }
                Parsed::Command(c, used)
            }
            Line::Partial => Parsed::Partial,
            Line::TooLong(_) => Parsed::Invalid("-ERR Protocol error: too big inline request\r\n"),
        };
    }
    let mut pos = 0;
    let Some(n) = header(input, &mut pos, b'*') else {
        return partial_or(
            input,
            pos,
            "-ERR Protocol error: invalid multibulk length\r\n",
        );
    };
    if n > 1024 {
        return Parsed::Invalid("-ERR Protocol error: invalid multibulk length\r\n");
    }
    let mut c = Command {
        args: heapless::Vec::new(),
        count: n,
    };
    for _ in 0..n {
        let Some(len) = header(input, &mut pos, b'$') else {
            return partial_or(input, pos, "-ERR Protocol error: invalid bulk length\r\n");
        };
        if len > MAX_ARG {
            return Parsed::Invalid("-ERR Protocol error: invalid bulk length\r\n");
        }
        let Some(arg) = input.get(pos..pos + len) else {
            return Parsed::Partial;
        };
        match input.get(pos + len..pos + len + 2) {
            Some(b"\r\n") => {}
            Some(_) => return Parsed::Invalid("-ERR Protocol error: expected '\\r\\n'\r\n"),
            None => return Parsed::Partial,
        }
        let _ = c.args.push(arg);
        pos += len + 2;
    }
    Parsed::Command(c, pos)
}

/// Reads `<kind><decimal>\r\n` at `*pos`; `None` if incomplete or invalid
/// (told apart by [`partial_or`]).
fn header(input: &[u8], pos: &mut usize, kind: u8) -> Option<usize> {
    let rest = input.get(*pos..)?;
    if rest.first() != Some(&kind) {
        return None;
    }
    let end = rest.iter().take(16).position(|&b| b == b'\r')?;
    if rest.get(end + 1) != Some(&b'\n') {
        return None;
    }
    let digits = rest.get(1..end)?;
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    *pos += end + 2;
    Some(n)
}

/// Whether a failed [`header`] at `pos` only needs more bytes.
fn partial_or<'a>(input: &'a [u8], pos: usize, error: &'static str) -> Parsed<'a> {
    let rest = input.get(pos..).unwrap_or_default();
    let complete_line = rest.iter().take(16).any(|&b| b == b'\n');
    if !complete_line && rest.len() < 16 {
        Parsed::Partial
    } else {
        Parsed::Invalid(error)
    }
}

/// Redis's arity of a command (negative: at least that many), or `None`
/// for a command it does not know.
fn arity(name: &[u8]) -> Option<i32> {
    let mut lower = [0u8; 16];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(match lower.get(..name.len()).unwrap_or_default() {
        b"get" | b"keys" | b"echo" | b"select" | b"type" | b"ttl" | b"incr" | b"decr" => 2,
        b"dbsize" | b"save" | b"bgsave" | b"time" | b"lastsave" => 1,
        b"set" | b"eval" | b"evalsha" => -3,
        b"slaveof" | b"replicaof" => 3,
        b"ping" | b"info" | b"quit" | b"hello" | b"command" | b"flushall" | b"flushdb"
        | b"role" => -1,
        b"auth" | b"config" | b"client" | b"del" | b"exists" | b"module" | b"scan" | b"acl"
        | b"debug" | b"script" | b"cluster" => -2,
        _ => return None,
    })
}

/// What we may show of an argument in an error: printable ASCII except
/// quotes, at most 128 bytes (Redis cuts there too).
fn shown(arg: &[u8], out: &mut Out) {
    let safe: Vec<u8> = arg
        .iter()
        .take(128)
        .map(|&b| {
            if (b' '..=b'~').contains(&b) && b != b'\'' && b != b'`' {
                b
            } else {
                b'?'
            }
        })
        .collect();
    out.push(&safe);
}

fn version(profile: Profile) -> &'static str {
    if profile == Profile::WindowsWorkstation {
        "3.0.504"
    } else {
        "7.0.15"
    }
}

impl Redis {
    /// Answers one command.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let (c, used) = match parse(input) {
            Parsed::Command(c, used) => (c, used),
            Parsed::Partial => return (0, Step::More),
            Parsed::Invalid(e) => {
                out.text(e);
                return (input.len(), Step::Close);
            }
        };
        let Some(&name) = c.args.first() else {
            return (used, Step::More);
        };
        let Some(arity) = arity(name) else {
            out.text("-ERR unknown command '");
            shown(name, out);
            out.text("', with args beginning with: ");
            for arg in c.args.iter().skip(1) {
                out.text("'");
                shown(arg, out);
                out.text("' ");
            }
            out.text("\r\n");
            return (used, Step::More);
        };
        let argc = i32::try_from(c.count).unwrap_or(i32::MAX);
        if (arity > 0 && argc != arity) || argc < -arity {
            out.text("-ERR wrong number of arguments for '");
            shown(&name.to_ascii_lowercase(), out);
            out.text("' command\r\n");
            return (used, Step::More);
        }
        let lower = name.to_ascii_lowercase();
        let win = cx.profile == Profile::WindowsWorkstation;
        let step = match (lower.as_slice(), cx.redis_open) {
            (b"quit", _) => {
                out.text("+OK\r\n");
                Step::Close
            }
            (b"auth", _) | (b"hello", _) => self.auth(&c, win, out, logins),
            (b"ping", true) => {
                out.text("+PONG\r\n");
                Step::More
            }
            (b"info", true) => {
                let body = format!(
                    "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\ntcp_port:{}\r\n",
                    version(cx.profile),
                    if win { "Windows" } else { "Linux 6.1.0-28-amd64 x86_64" },
                    cx.port
                );
                out.text(&format!("${}\r\n{body}\r\n", body.len()));
                Step::More
            }
            (b"config" | b"set", true) => {
                out.text("+OK\r\n");
                Step::More
            }
            (b"keys", true) => {
                out.text("*0\r\n");
                Step::More
            }
            (b"get", true) => {
                out.text("$-1\r\n");
                Step::More
            }
            (_, true) => {
                out.text("-ERR operation not permitted\r\n");
                Step::More
            }
            (_, false) => {
                out.text("-NOAUTH Authentication required.\r\n");
                Step::More
            }
        };
        (used, step)
    }

    /// `AUTH [user] password` or `HELLO ver AUTH user password`.
    fn auth(&mut self, c: &Command<'_>, win: bool, out: &mut Out, logins: &mut Logins<'_>) -> Step {
        let args = &c.args;
        let (user, password) = if args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(b"hello"))
        {
            let at = args.iter().position(|a| a.eq_ignore_ascii_case(b"auth"));
            match at {
                Some(i) => (args.get(i + 1).copied(), args.get(i + 2).copied()),
                None => {
                    out.text("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n");
                    return Step::More;
                }
            }
        } else if c.count >= 3 {
            (args.get(1).copied(), args.get(2).copied())
        } else {
            (None, args.get(1).copied())
        };
        logins.add(
            Login::new("redis", user.unwrap_or_default())
                .with("password", password.unwrap_or_default()),
        );
        self.failures = self.failures.saturating_add(1);
        out.text(if win {
            "-ERR invalid password\r\n"
        } else {
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        });
        Step::More
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run};
    use super::*;

    #[test]
    fn nmaps_http_probe_gets_the_arity_error_of_a_real_server() {
        let (out, _, _) = run(
            &cx(6379, Profile::LinuxServer),
            &[b"GET / HTTP/1.0\r\n\r\n"],
        );
        assert_eq!(out, "-ERR wrong number of arguments for 'get' command\r\n");
    }

    #[test]
    fn a_password_is_required_and_recorded() {
        let (out, logins, _) = run(
            &cx(6379, Profile::LinuxServer),
            &[
                b"*1\r\n$4\r\nPING\r\n",
                b"*2\r\n$4\r\nAUTH\r\n$6\r\nfoobar\r\n",
                b"AUTH admin s3cret\r\n",
            ],
        );
        assert_eq!(
            out,
            "-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(logins.len(), 2);
        assert_eq!(
            (logins[0].username.as_str(), logins[0].field("password")),
            ("", Some("foobar"))
        );
        assert_eq!(
            (logins[1].username.as_str(), logins[1].field("password")),
            ("admin", Some("s3cret"))
        );
    }

    #[test]
    fn an_open_server_answers_ping_and_info() {
        let mut c = cx(6379, Profile::LinuxServer);
        c.redis_open = true;
        let (out, _, _) = run(&c, &[b"*1\r\n$4\r\ninfo\r\n", b"PING\r\n"]);
        assert!(out.starts_with("$"), "{out}");
        assert!(
            out.contains("\r\n# Server\r\nredis_version:7.0.15\r\n"),
            "{out}"
        );
        assert!(out.ends_with("+PONG\r\n"));
        let len: usize = out[1..out.find('\r').unwrap()].parse().unwrap();
        let body_start = out.find('\n').unwrap() + 1;
        assert_eq!(&out[body_start + len..body_start + len + 2], "\r\n");
    }

    #[test]
    fn unknown_commands_are_named_without_control_characters() {
        let (out, _, _) = run(
            &cx(6379, Profile::LinuxServer),
            &[b"*2\r\n$3\r\nFOO\r\n$6\r\na\r\n'`b\r\n"],
        );
        assert_eq!(
            out,
            "-ERR unknown command 'FOO', with args beginning with: 'a????b' \r\n"
        );
    }

    #[test]
    fn split_and_malformed_requests() {
        let (out, _, step) = run(
            &cx(6379, Profile::LinuxServer),
            &[b"*2\r\n$4\r\nAU", b"TH\r\n$1\r\nx\r\n"],
        );
        assert!(out.starts_with("-WRONGPASS"), "{out}");
        assert_eq!(step, Step::More);
        let (out, _, step) = run(&cx(6379, Profile::LinuxServer), &[b"*1\r\n$99999\r\n"]);
        assert_eq!(
            (out.as_str(), step),
            ("-ERR Protocol error: invalid bulk length\r\n", Step::Close)
        );
        let (out, _, step) = run(&cx(6379, Profile::LinuxServer), &[b"*x\r\n"]);
        assert_eq!(step, Step::Close, "{out}");
    }
}
