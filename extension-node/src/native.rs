//! Native pots: small interactive honeypots compiled into the agent, for
//! devices that cannot run Python or PHP. `native-telnet` shows a login
//! prompt and a fake BusyBox shell, `native-http` a WordPress-style login
//! page, `native-banner` a configurable banner. They are bounded exactly like
//! Extension mode: a fixed number of sessions at once, fixed-size buffers,
//! short timeouts, a few commands per session.
//!
//! The protocol handling is sans-I/O: [`take_line`] (telnet lines),
//! [`head_end`], [`parse_head`] and [`answer`] (HTTP), [`shell_output`] and
//! [`banner_input`] are pure functions over the bytes read, so they are unit
//! tested and fuzzed without sockets; the session tasks only read, call
//! them, and write.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::{LocalExecutor, Task};
use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use serde_json::{Map, Value};

use crate::bind;
use crate::tripwire::{Sink, MAX_IN_FLIGHT};

/// Longest line read in a session (username, password, a command), and the
/// most bytes a session buffers while waiting for a line.
pub const LINE: usize = 256;
/// Commands recorded per telnet session before it is closed.
pub const COMMANDS: usize = 8;
/// A session ends after this long, whatever happens.
const SESSION: Duration = Duration::from_secs(60);
/// Waiting for one line.
const IDLE: Duration = Duration::from_secs(20);
/// Most bytes of an HTTP request read (head and body).
pub const REQUEST: usize = 8192;

/// Which native pot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Telnet login and fake shell.
    Telnet,
    /// WordPress-style HTTP login.
    Http,
    /// A banner on any port.
    Banner,
}

impl Kind {
    /// The pot type (`native-telnet`, …), or `None` for another type.
    pub fn from_type(t: &str) -> Option<Kind> {
        match t {
            "native-telnet" => Some(Kind::Telnet),
            "native-http" => Some(Kind::Http),
            "native-banner" => Some(Kind::Banner),
            _ => None,
        }
    }

    /// The config key of its port and the default port.
    pub fn port_key(self) -> (&'static str, u16) {
        match self {
            Kind::Telnet => ("telnet_port", 2323),
            Kind::Http => ("http_port", 8081),
            Kind::Banner => ("port", 2121),
        }
    }

    /// Name, version, protocols and ports, for `GetPotInfo`.
    pub fn info(self) -> Value {
        let (key, port) = self.port_key();
        let (name, protocol) = match self {
            Kind::Telnet => ("Native Telnet", "telnet"),
            Kind::Http => ("Native HTTP login", "http"),
            Kind::Banner => ("Native banner", "tcp"),
        };
        serde_json::json!({"name": name, "version": env!("CARGO_PKG_VERSION"),
            "type": format!("native-{}", match self { Kind::Telnet => "telnet", Kind::Http => "http", Kind::Banner => "banner" }),
            "protocols": [protocol], "ports": {key: port}})
    }
}

/// A running native pot; dropping it closes its port.
pub struct Handle {
    accept: Option<Task<()>>,
    stopped: Rc<Cell<bool>>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl Handle {
    /// Stops the pot and returns once its port is free again. Dropping the
    /// handle stops it too, but the listener then closes only when the
    /// executor next runs, so a pot started again at once on the same port
    /// (RestartPot, InstallPot over a running pot) would find it in use.
    pub async fn stop(mut self) {
        self.stopped.set(true);
        if let Some(accept) = self.accept.take() {
            accept.cancel().await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Sessions in progress see this and end at their next step.
        self.stopped.set(true);
    }
}

struct Pot {
    kind: Kind,
    port: u16,
    hostname: String,
    banner: String,
    sink: Rc<dyn Sink>,
    in_flight: Cell<usize>,
    stopped: Rc<Cell<bool>>,
}

/// Binds the pot's port (config `<kind>_port`, `listen_addr`) and serves it.
pub fn start(
    ex: &Rc<LocalExecutor<'static>>,
    kind: Kind,
    config: &BTreeMap<String, String>,
    sink: Rc<dyn Sink>,
) -> Result<Handle, String> {
    let (key, default) = kind.port_key();
    let port = match config.get(key) {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("config {key} {p:?} is not a port"))?,
        None => default,
    };
    let addr: IpAddr = config
        .get("listen_addr")
        .map(String::as_str)
        .unwrap_or("0.0.0.0")
        .parse()
        .map_err(|_| "config listen_addr is not an IP address".to_string())?;
    let mut listeners = bind::tcp(port, &[addr])
        .map_err(|why| format!("port {port} on {addr}: {}", why.as_str()))?;
    let listener = listeners.pop().ok_or("no socket")?;
    let stopped = Rc::new(Cell::new(false));
    let pot = Rc::new(Pot {
        kind,
        port,
        hostname: config
            .get("hostname")
            .cloned()
            .unwrap_or_else(|| "router".into()),
        banner: config
            .get("banner")
            .cloned()
            .unwrap_or_else(|| "220 FTP server ready.".into()),
        sink,
        in_flight: Cell::new(0),
        stopped: stopped.clone(),
    });
    let ex2 = ex.clone();
    let accept = ex.spawn(async move { pot.accept_loop(ex2, listener).await });
    Ok(Handle {
        accept: Some(accept),
        stopped,
        addr: SocketAddr::new(addr, port),
    })
}

impl Pot {
    async fn accept_loop(
        self: Rc<Self>,
        ex: Rc<LocalExecutor<'static>>,
        listener: Async<TcpListener>,
    ) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                Timer::after(Duration::from_millis(100)).await;
                continue;
            };
            if self.in_flight.get() >= MAX_IN_FLIGHT {
                continue; // closed unread: a fixed number of sessions
            }
            self.in_flight.set(self.in_flight.get() + 1);
            let me = self.clone();
            ex.spawn(async move {
                let deadline = Instant::now() + SESSION;
                let session = Session {
                    stream,
                    peer,
                    id: session_id(),
                    buf: Vec::with_capacity(LINE),
                    deadline,
                };
                let _ = future::or(me.serve(session), async {
                    Timer::at(deadline).await;
                })
                .await;
                me.in_flight.set(me.in_flight.get() - 1);
            })
            .detach();
        }
    }

    fn event(&self, event_type: &'static str, s: &Session, fields: &[(&str, Value)]) {
        let mut d = Map::new();
        d.insert("src_ip".into(), s.peer.ip().to_string().into());
        d.insert("src_port".into(), s.peer.port().into());
        d.insert("dst_port".into(), self.port.into());
        d.insert("session".into(), s.id.clone().into());
        for (k, v) in fields {
            d.insert((*k).into(), v.clone());
        }
        self.sink.event(event_type, d);
    }

    async fn serve(&self, mut s: Session) {
        match self.kind {
            Kind::Telnet => self.telnet(&mut s).await,
            Kind::Http => self.http(&mut s).await,
            Kind::Banner => self.banner(&mut s).await,
        }
    }

    async fn telnet(&self, s: &mut Session) {
        let greeting = format!("\r\n{} login: ", self.hostname);
        if s.write(greeting.as_bytes()).await.is_err() {
            return;
        }
        let Some(user) = s.line().await else { return };
        if s.write(b"Password: ").await.is_err() {
            return;
        }
        let Some(password) = s.line().await else {
            return;
        };
        self.event(
            "native.telnet.login",
            s,
            &[
                ("username", user.clone().into()),
                ("password", password.into()),
                ("protocol", "telnet".into()),
            ],
        );
        let banner = format!(
            "\r\n\r\nBusyBox v1.31.1 () built-in shell (ash)\r\n\r\n{}@{}:~# ",
            user, self.hostname
        );
        if s.write(banner.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..COMMANDS {
            if self.stopped.get() {
                return;
            }
            let Some(cmd) = s.line().await else { return };
            if cmd.is_empty() {
                let _ = s.write(b"# ").await;
                continue;
            }
            self.event(
                "native.telnet.command",
                s,
                &[
                    ("username", user.clone().into()),
                    ("input", cmd.clone().into()),
                    ("protocol", "telnet".into()),
                ],
            );
            if matches!(cmd.as_str(), "exit" | "logout" | "quit") {
                return;
            }
            let out = shell_output(&cmd, &self.hostname);
            if s.write(format!("{out}{user}@{}:~# ", self.hostname).as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    async fn http(&self, s: &mut Session) {
        let Some(req) = s.request().await else { return };
        let answer = answer(&req);
        if let Some((user, password)) = answer.login {
            self.event(
                "native.http.login",
                s,
                &[
                    ("username", user.into()),
                    ("password", password.into()),
                    ("user_agent", req.user_agent.clone().into()),
                    ("url", req.path.clone().into()),
                    ("protocol", "http".into()),
                ],
            );
        }
        let _ = s.write(answer.response.as_bytes()).await;
    }

    async fn banner(&self, s: &mut Session) {
        let line = format!("{}\r\n", self.banner);
        let _ = s.write(line.as_bytes()).await;
        let first = s.some_bytes().await;
        self.event(
            "native.banner.connection",
            s,
            &[
                ("input", banner_input(&first).into()),
                ("bytes", first.len().into()),
            ],
        );
    }
}

struct Session {
    stream: Async<TcpStream>,
    peer: SocketAddr,
    /// The connection's id in every event of it (`data.session`).
    id: String,
    buf: Vec<u8>,
    deadline: Instant,
}

/// A connection's id: 12 hex digits, random like Cowrie's (a counter
/// mixed with the time when the system has no randomness to give).
fn session_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mixed = (t ^ n.rotate_left(40)).to_le_bytes();
        b.copy_from_slice(mixed.get(..6).unwrap_or(&[0; 6]));
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An HTTP request as the native HTTP pot reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The request line's first word, as sent.
    pub method: String,
    /// The request target, at most [`LINE`] characters.
    pub path: String,
    /// `User-Agent`, trimmed, at most [`LINE`] characters.
    pub user_agent: String,
    /// `Content-Length` (0 when missing or not a number).
    pub content_length: usize,
    /// The body bytes that arrived, at most [`REQUEST`] with the head.
    pub body: Vec<u8>,
}

impl Request {
    fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// What the HTTP pot answers to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The whole response, head and body.
    pub response: String,
    /// The user name and password of a login attempt, to record.
    pub login: Option<(String, String)>,
}

impl Session {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    async fn read_more(&mut self, cap: usize) -> bool {
        let mut chunk = [0u8; 512];
        let room = cap.saturating_sub(self.buf.len()).min(chunk.len());
        if room == 0 {
            return false;
        }
        let wait = (Instant::now() + IDLE).min(self.deadline);
        let Some(part) = chunk.get_mut(..room) else {
            return false;
        };
        let n = future::or(async { self.stream.read(part).await.ok() }, async {
            Timer::at(wait).await;
            None
        })
        .await;
        match n {
            Some(0) | None => false,
            Some(n) => {
                self.buf
                    .extend_from_slice(part.get(..n).unwrap_or_default());
                true
            }
        }
    }

    /// One line of text, telnet negotiation removed, at most [`LINE`] bytes.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(line) = take_line(&mut self.buf) {
                return Some(line);
            }
            if !self.read_more(LINE).await {
                return None;
            }
        }
    }

    async fn some_bytes(&mut self) -> Vec<u8> {
        let _ = self.read_more(LINE).await;
        std::mem::take(&mut self.buf)
    }

    async fn request(&mut self) -> Option<Request> {
        let end = loop {
            if let Some(end) = head_end(&self.buf) {
                break end;
            }
            if !self.read_more(REQUEST).await {
                return None;
            }
        };
        let mut req = parse_head(self.buf.get(..end)?)?;
        let want = end.saturating_add(req.content_length).min(REQUEST);
        while self.buf.len() < want {
            if !self.read_more(REQUEST).await {
                break;
            }
        }
        req.body = self.buf.get(end..).unwrap_or_default().to_vec();
        Some(req)
    }
}

/// Takes one line of a telnet session out of `buf`: telnet negotiation
/// removed, ended by CR, LF or NUL (a CR LF or CR NUL pair counts once), or
/// the whole buffer once it holds [`LINE`] bytes without an end. Control
/// characters are dropped. `None` while more bytes are needed.
pub fn take_line(buf: &mut Vec<u8>) -> Option<String> {
    strip_telnet(buf);
    if let Some(end) = buf.iter().position(|&b| b == b'\n' || b == b'\r' || b == 0) {
        let line: Vec<u8> = buf.drain(..=end).collect();
        // A CR LF or CR NUL pair: drop the second half too.
        if matches!(buf.first(), Some(b'\n') | Some(0)) {
            buf.remove(0);
        }
        let text = String::from_utf8_lossy(line.get(..end).unwrap_or_default());
        return Some(text.chars().filter(|c| !c.is_control()).collect());
    }
    if buf.len() >= LINE {
        let line: Vec<u8> = std::mem::take(buf);
        return Some(
            String::from_utf8_lossy(&line)
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
        );
    }
    None
}

/// Where an HTTP request head ends (just past its `\r\n\r\n`), once it has.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Reads a complete request head (the bytes up to [`head_end`]); the body
/// is left empty. `None` when the request line has no method and target.
pub fn parse_head(head: &[u8]) -> Option<Request> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path: String = first.next()?.chars().take(LINE).collect();
    let mut user_agent = String::new();
    let mut content_length = 0usize;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "user-agent" => user_agent = v.trim().chars().take(LINE).collect(),
            "content-length" => content_length = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    Some(Request {
        method,
        path,
        user_agent,
        content_length,
        body: Vec::new(),
    })
}

/// The HTTP pot's answer: a WordPress login page (echoing a failed user
/// name, escaped), a redirect for `/wp-admin`, or a 404.
pub fn answer(req: &Request) -> Answer {
    let mut login = None;
    let response = match (req.method.as_str(), req.path_only()) {
        ("POST", "/wp-login.php") => {
            let form = parse_form(&req.body);
            let user = form.get("log").cloned().unwrap_or_default();
            let password = form.get("pwd").cloned().unwrap_or_default();
            let page = page(200, &login_page(Some(&user)));
            login = Some((user, password));
            page
        }
        (_, "/" | "/wp-login.php") => page(200, &login_page(None)),
        (_, p) if p.starts_with("/wp-admin") => {
            "HTTP/1.1 302 Found\r\nLocation: /wp-login.php?redirect_to=%2Fwp-admin%2F&reauth=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        }
        _ => page(404, "<html><head><title>Page not found</title></head><body><h1>Not Found</h1></body></html>"),
    };
    Answer { response, login }
}

/// What the banner pot records of a client's first bytes: text with control
/// characters other than CR, LF and tab replaced, at most [`LINE`]
/// characters, trimmed.
pub fn banner_input(first: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(first)
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .take(LINE)
        .collect();
    text.trim().to_string()
}

/// Removes telnet IAC sequences (option negotiation) from `buf`.
fn strip_telnet(buf: &mut Vec<u8>) {
    let mut out = Vec::with_capacity(buf.len());
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        if b == 0xff {
            match buf.get(i + 1) {
                Some(0xfb..=0xfe) if buf.get(i + 2).is_some() => i += 3,
                Some(0xfb..=0xfe) | None => break, // incomplete: wait for the rest
                Some(0xff) => {
                    out.push(0xff);
                    i += 2;
                }
                Some(_) => i += 2,
            }
            continue;
        }
        out.push(b);
        i += 1;
    }
    let rest = buf.get(i..).unwrap_or_default().to_vec();
    out.extend(rest);
    *buf = out;
}

/// The fake BusyBox shell's output for one command line typed on `host`.
pub fn shell_output(cmd: &str, host: &str) -> String {
    let word = cmd.split_whitespace().next().unwrap_or("");
    match word {
        "uname" => format!(
            "Linux {host} 4.14.180 #1 SMP PREEMPT Tue Mar 2 12:00:00 UTC 2021 armv7l GNU/Linux\r\n"
        ),
        "whoami" => "root\r\n".into(),
        "id" => "uid=0(root) gid=0(root) groups=0(root)\r\n".into(),
        "pwd" => "/root\r\n".into(),
        "ls" => "\r\n".into(),
        "cd" | "echo" | "export" | "wget" | "curl" | "chmod" | "rm" | "cat" => {
            if word == "echo" {
                format!("{}\r\n", cmd.get(5..).unwrap_or(""))
            } else {
                String::new()
            }
        }
        _ => format!("-sh: {word}: not found\r\n"),
    }
}

/// An `application/x-www-form-urlencoded` body: at most 32 pairs, values cut
/// to [`LINE`] characters, escapes that do not decode kept as written.
pub fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .take(32)
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((url_decode(k), url_decode(v).chars().take(LINE).collect()))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn login_page(failed_user: Option<&str>) -> String {
    let error = failed_user
        .map(|u| {
            format!(
                "<div id=\"login_error\"><strong>Error:</strong> The password you entered for the username <strong>{}</strong> is incorrect. <a href=\"/wp-login.php?action=lostpassword\">Lost your password?</a></div>",
                html_escape(u)
            )
        })
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html lang=\"en-US\"><head><meta charset=\"UTF-8\"><title>Log In &lsaquo; WordPress</title></head>\
<body class=\"login wp-core-ui\"><div id=\"login\"><h1><a href=\"https://wordpress.org/\">Powered by WordPress</a></h1>{error}\
<form name=\"loginform\" id=\"loginform\" action=\"/wp-login.php\" method=\"post\">\
<p><label for=\"user_login\">Username or Email Address</label><input type=\"text\" name=\"log\" id=\"user_login\" size=\"20\"></p>\
<p><label for=\"user_pass\">Password</label><input type=\"password\" name=\"pwd\" id=\"user_pass\" size=\"20\"></p>\
<p class=\"submit\"><input type=\"submit\" name=\"wp-submit\" id=\"wp-submit\" value=\"Log In\"></p></form>\
<p id=\"nav\"><a href=\"/wp-login.php?action=lostpassword\">Lost your password?</a></p></div></body></html>"
    )
}

fn page(status: u16, body: &str) -> String {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: Apache/2.4.57 (Debian)\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnet_negotiation_is_stripped_even_when_cut() {
        let mut b = vec![
            0xff, 0xfd, 0x01, b'r', b'o', 0xff, 0xff, b'o', b't', 0xff, 0xfb,
        ];
        strip_telnet(&mut b);
        assert_eq!(b, vec![b'r', b'o', 0xff, b'o', b't', 0xff, 0xfb]);
    }

    #[test]
    fn forms_decode_and_are_bounded() {
        let f = parse_form(b"log=admin&pwd=p%40ss+word&x=%zz");
        assert_eq!(f.get("log").map(String::as_str), Some("admin"));
        assert_eq!(f.get("pwd").map(String::as_str), Some("p@ss word"));
        assert_eq!(f.get("x").map(String::as_str), Some("%zz"));
        let long = format!("pwd={}", "a".repeat(5000));
        assert_eq!(parse_form(long.as_bytes())["pwd"].len(), LINE);
    }

    #[test]
    fn the_login_page_escapes_what_it_echoes() {
        let p = login_page(Some("<script>"));
        assert!(p.contains("&lt;script&gt;") && !p.contains("<script>"));
        assert!(p.contains("name=\"log\"") && p.contains("name=\"pwd\""));
    }

    #[test]
    fn lines_end_at_cr_lf_or_nul_and_a_full_buffer_is_one_line() {
        let mut b = b"\xff\xfb\x18root\r\0pass\r\nls".to_vec();
        assert_eq!(take_line(&mut b).as_deref(), Some("root"));
        assert_eq!(take_line(&mut b).as_deref(), Some("pass"));
        assert_eq!(take_line(&mut b), None, "an unfinished line waits");
        assert_eq!(b, b"ls");
        let mut b = vec![b'a'; LINE];
        assert_eq!(take_line(&mut b).map(|l| l.len()), Some(LINE));
        assert!(b.is_empty());
    }

    #[test]
    fn a_login_post_is_answered_and_recorded() {
        let raw = b"POST /wp-login.php?x=1 HTTP/1.1\r\nUser-Agent:  zgrab \r\nContent-Length: 17\r\n\r\nlog=<b>&pwd=a%40b";
        let end = head_end(raw).unwrap();
        let mut req = parse_head(&raw[..end]).unwrap();
        assert_eq!(
            (
                req.method.as_str(),
                req.path.as_str(),
                req.user_agent.as_str()
            ),
            ("POST", "/wp-login.php?x=1", "zgrab")
        );
        assert_eq!(req.content_length, 17);
        req.body = raw[end..].to_vec();
        let a = answer(&req);
        assert_eq!(a.login, Some(("<b>".into(), "a@b".into())));
        assert!(a.response.contains("<strong>&lt;b&gt;</strong>"));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(parse_head(b"\r\n\r\n"), None);
    }

    #[test]
    fn kinds_and_ports() {
        assert_eq!(Kind::from_type("native-telnet"), Some(Kind::Telnet));
        assert_eq!(Kind::from_type("cowrie"), None);
        assert_eq!(Kind::Http.port_key(), ("http_port", 8081));
        assert_eq!(Kind::Telnet.info()["type"], "native-telnet");
    }
}
