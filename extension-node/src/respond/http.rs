//! HTTP up to the login: the profile's server (IIS, Apache, nginx on a
//! NAS, a router's or a printer's embedded server, a Squid proxy) answers
//! requests with its real headers, a login page or a `401`/`407` asking
//! for Basic credentials, `robots.txt` and a `404` for the rest. Basic
//! credentials (`Authorization`, `Proxy-Authorization`) and login forms
//! posted back (`application/x-www-form-urlencoded`) are recorded.
//!
//! Answers are fixed templates: the request's path, headers and body are
//! never copied into them.

use super::base64;
use super::line::word;
use super::{Context, Login, Logins, Out, Step};
use crate::profile::Profile;

/// Requests answered on one connection before it is closed.
const MAX_REQUESTS: u8 = 8;
/// Largest request body read (a login form).
const MAX_BODY: usize = 2048;

/// One HTTP connection.
#[derive(Debug)]
pub struct Http {
    site: &'static Site,
    requests: u8,
}

/// Which real server a site imitates: its `Server` header and header order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Apache,
    Iis,
    HttpApi,
    Nginx,
    Squid,
    /// A TP-Link home router's httpd: Basic before anything else.
    TpLink,
    /// An HP printer's Embedded Web Server: HTTP/1.1 only.
    Hp,
}

/// What `/` is.
#[derive(Debug, Clone, Copy)]
enum Root {
    /// `401` with `WWW-Authenticate: Basic`.
    Basic,
    /// A login form posting back to the site.
    Page(&'static str),
    /// `404` (WinRM's listener).
    NotFound,
    /// Every request gets `407` (an authenticating proxy).
    Proxy,
}

/// A web server as one profile shows it.
#[derive(Debug)]
pub struct Site {
    flavor: Flavor,
    server: &'static str,
    root: Root,
    realm: &'static str,
    robots: Option<&'static str>,
}

const IIS: Site = Site {
    flavor: Flavor::Iis,
    server: "Microsoft-IIS/10.0",
    root: Root::Basic,
    realm: "WS01",
    robots: None,
};
const WINRM: Site = Site {
    flavor: Flavor::HttpApi,
    server: "Microsoft-HTTPAPI/2.0",
    root: Root::NotFound,
    realm: "WSMAN",
    robots: None,
};
const APACHE: Site = Site {
    flavor: Flavor::Apache,
    server: "Apache/2.4.62 (Debian)",
    root: Root::Basic,
    realm: "Restricted Area",
    robots: Some("User-agent: *\nDisallow: /\n"),
};
const SQUID: Site = Site {
    flavor: Flavor::Squid,
    server: "squid/5.7",
    root: Root::Proxy,
    realm: "Squid proxy-caching web server",
    robots: None,
};
const ROUTER: Site = Site {
    flavor: Flavor::TpLink,
    server: "Router",
    root: Root::Basic,
    realm: "TP-LINK Wireless N Router WR841N",
    robots: None,
};
const NAS: Site = Site {
    flavor: Flavor::Nginx,
    server: "nginx",
    root: Root::Page(NAS_PAGE),
    realm: "DiskStation",
    robots: Some("User-agent: *\nDisallow: /\n"),
};
const PRINTER: Site = Site {
    flavor: Flavor::Hp,
    server: "HP HTTP Server; HP LaserJet Pro M404n - W1A52A; Serial Number: PHBQB41837; Built: Thu Mar 02, 2023 10:25:01AM {FDP1CN2309AR, ASIC id 0x00340104}",
    root: Root::Page(PRINTER_PAGE),
    realm: "HP LaserJet",
    robots: Some("User-agent: *\nDisallow: /\n"),
};

const NAS_PAGE: &str = "<!DOCTYPE html>\n<html class=\"img-no-dd\"><head><meta charset=\"utf-8\"><title>Synology DiskStation</title></head>\n<body><div id=\"sds-login\"><form method=\"post\" action=\"/webapi/auth.cgi\">\n<input name=\"account\" type=\"text\" placeholder=\"Username\"><br>\n<input name=\"passwd\" type=\"password\" placeholder=\"Password\"><br>\n<input type=\"submit\" value=\"Sign In\"></form></div></body></html>\n";
const PRINTER_PAGE: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>HP LaserJet Pro M404n</title></head>\n<body><h1>HP LaserJet Pro M404n</h1><p>Embedded Web Server</p>\n<form method=\"post\" action=\"/hp/device/SignIn\">\n<label>User <input name=\"username\" type=\"text\" value=\"admin\"></label><br>\n<label>Password <input name=\"password\" type=\"password\"></label><br>\n<input type=\"submit\" value=\"Sign In\"></form></body></html>\n";

const IIS_401: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>\r\n<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>\r\n</head>\r\n<body>\r\n<div id=\"header\"><h1>Server Error</h1></div>\r\n<div id=\"content\">\r\n <div class=\"content-container\"><fieldset>\r\n  <h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>\r\n  <h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3>\r\n </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n";
const IIS_404: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>\r\n<title>404 - File or directory not found.</title>\r\n</head>\r\n<body>\r\n<div id=\"header\"><h1>Server Error</h1></div>\r\n<div id=\"content\">\r\n <div class=\"content-container\"><fieldset>\r\n  <h2>404 - File or directory not found.</h2>\r\n  <h3>The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.</h3>\r\n </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n";
const HTTPAPI_404: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n<HTML><HEAD><TITLE>Not Found</TITLE>\r\n<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n<BODY><h2>Not Found</h2>\r\n<hr><p>HTTP Error 404. The requested resource is not found.</p>\r\n</BODY></HTML>\r\n";
const APACHE_401: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>401 Unauthorized</title>\n</head><body>\n<h1>Unauthorized</h1>\n<p>This server could not verify that you\nare authorized to access the document\nrequested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\nbrowser doesn't understand how to supply\nthe credentials required.</p>\n<hr>\n<address>Apache/2.4.62 (Debian) Server at localhost Port 80</address>\n</body></html>\n";
const APACHE_404: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n<hr>\n<address>Apache/2.4.62 (Debian) Server at localhost Port 80</address>\n</body></html>\n";
const APACHE_400: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>400 Bad Request</title>\n</head><body>\n<h1>Bad Request</h1>\n<p>Your browser sent a request that this server could not understand.<br />\n</p>\n<hr>\n<address>Apache/2.4.62 (Debian) Server at localhost Port 80</address>\n</body></html>\n";
const NGINX_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
const SQUID_407: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n<html><head>\n<meta type=\"copyright\" content=\"Copyright (C) 1996-2023 The Squid Software Foundation and contributors\">\n<meta http-equiv=\"Content-Type\" CONTENT=\"text/html; charset=utf-8\">\n<title>ERROR: Cache Access Denied</title>\n</head><body id=\"ERR_CACHE_ACCESS_DENIED\">\n<div id=\"titles\">\n<h1>ERROR</h1>\n<h2>Cache Access Denied.</h2>\n</div>\n<hr>\n<div id=\"content\">\n<p>Sorry, you are not currently allowed to request the URL from this cache until you have authenticated yourself.</p>\n<p>Please contact the <a href=\"mailto:webmaster?subject=CacheErrorInfo%20-%20ERR_CACHE_ACCESS_DENIED\">cache administrator</a> if you have difficulties authenticating yourself.</p>\n<br>\n</div>\n<hr>\n<div id=\"footer\">\n<p>Generated by proxy (squid/5.7)</p>\n<!-- ERR_CACHE_ACCESS_DENIED -->\n</div>\n</body></html>\n";
const EMBEDDED_404: &str =
    "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>\n";
const TPLINK_401: &str = "<HTML><HEAD><TITLE>401 Unauthorized</TITLE></HEAD>\n<BODY BGCOLOR=\"#cc9999\"><H4>401 Unauthorized</H4>\nAuthorization required.\n</BODY></HTML>\n";
const SQUID_400: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n<html><head>\n<meta type=\"copyright\" content=\"Copyright (C) 1996-2023 The Squid Software Foundation and contributors\">\n<meta http-equiv=\"Content-Type\" CONTENT=\"text/html; charset=utf-8\">\n<title>ERROR: The requested URL could not be retrieved</title>\n</head><body id=\"ERR_INVALID_URL\">\n<div id=\"titles\">\n<h1>ERROR</h1>\n<h2>The requested URL could not be retrieved</h2>\n</div>\n<hr>\n<div id=\"content\">\n<p>The following error was encountered while trying to retrieve the URL: <a href=\"/\">/</a></p>\n<blockquote id=\"error\">\n<p><b>Invalid URL</b></p>\n</blockquote>\n<p>Some aspect of the requested URL is incorrect.</p>\n</div>\n<hr>\n<div id=\"footer\">\n<p>Generated by proxy (squid/5.7)</p>\n<!-- ERR_INVALID_URL -->\n</div>\n</body></html>\n";
const LOGIN_FAILED: &str = "<html><head><meta http-equiv=\"refresh\" content=\"3;url=/\"><title>Login failed</title></head><body><p>Invalid username or password.</p></body></html>\n";
const NAS_FAILED: &str = "{\"error\":{\"code\":400},\"success\":false}";

/// The site a profile serves on `port`.
fn site(profile: Profile, port: u16) -> &'static Site {
    match (profile, port) {
        (Profile::WindowsWorkstation, 5985) => &WINRM,
        (Profile::WindowsWorkstation, _) => &IIS,
        (Profile::LinuxServer, 3128 | 8080) => &SQUID,
        (Profile::LinuxServer, _) => &APACHE,
        (_, 3128) => &SQUID,
        (Profile::Router, _) => &ROUTER,
        (Profile::Nas, _) => &NAS,
        (Profile::Printer, _) => &PRINTER,
    }
}

/// The parts of a request we look at.
struct Request<'a> {
    method: &'a [u8],
    path: &'a [u8],
    http10: bool,
    close: bool,
    keep_alive: bool,
    authorization: Option<&'a [u8]>,
    proxy_authorization: Option<&'a [u8]>,
    form: bool,
    body: &'a [u8],
}

enum Parsed<'a> {
    Request(Request<'a>, usize),
    Partial,
    Bad,
}

fn header_end(input: &[u8]) -> Option<(usize, usize)> {
    let crlf = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = input
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse(input: &[u8]) -> Parsed<'_> {
    let Some((head_len, body_start)) = header_end(input) else {
        return if input.len() >= crate::config::MAX_READ
            || (!input.is_empty()
                && !input
                    .iter()
                    .take(16)
                    .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r' || *b == b'\n'))
        {
            Parsed::Bad
        } else {
            Parsed::Partial
        };
    };
    let head = input.get(..head_len).unwrap_or_default();
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, rest) = word(request_line);
    let (path, rest) = word(rest);
    let (version, _) = word(rest);
    if method.is_empty()
        || !method.iter().all(u8::is_ascii_uppercase)
        || !version.starts_with(b"HTTP/1.")
    {
        return Parsed::Bad;
    }
    let mut r = Request {
        method,
        path,
        http10: version == b"HTTP/1.0",
        close: false,
        keep_alive: false,
        authorization: None,
        proxy_authorization: None,
        form: false,
        body: &[],
    };
    let mut content_length = 0usize;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        match name.to_ascii_lowercase().as_slice() {
            b"authorization" => r.authorization = Some(value),
            b"proxy-authorization" => r.proxy_authorization = Some(value),
            b"connection" => {
                r.close = value.eq_ignore_ascii_case(b"close");
                r.keep_alive = value.eq_ignore_ascii_case(b"keep-alive");
            }
            b"content-type" => {
                r.form = value.len() >= 33
                    && value.get(..33).is_some_and(|v| {
                        v.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
                    });
            }
            b"content-length" => {
                let Some(n) = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                else {
                    return Parsed::Bad;
                };
                content_length = n;
            }
            _ => {}
        }
    }
    if content_length > MAX_BODY {
        return Parsed::Bad;
    }
    let Some(body) = input.get(body_start..body_start + content_length) else {
        return Parsed::Partial;
    };
    r.body = body;
    Parsed::Request(r, body_start + content_length)
}

/// `Basic <base64 user:password>` as a login.
fn basic(protocol: &'static str, value: &[u8]) -> Option<Login> {
    let (scheme, token) = word(value);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::decode::<512>(token)?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (user, password) = decoded.split_at(colon);
    Some(Login::new(protocol, user).with("password", password.get(1..).unwrap_or_default()))
}

/// A login form's user and password fields, percent-decoded.
fn form_login(body: &[u8]) -> Option<Login> {
    let mut user: Option<Vec<u8>> = None;
    let mut password: Option<Vec<u8>> = None;
    for pair in body.split(|&b| b == b'&').take(32) {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = percent_decode(kv.next().unwrap_or_default());
        let value = percent_decode(kv.next().unwrap_or_default());
        match key.to_ascii_lowercase().as_slice() {
            b"username" | b"user" | b"login" | b"account" | b"email" | b"usr" | b"name"
            | b"uname" => {
                user.get_or_insert(value);
            }
            b"password" | b"passwd" | b"pass" | b"pwd" | b"pw" => {
                password.get_or_insert(value);
            }
            _ => {}
        }
    }
    let password = password?;
    Some(Login::new("http", &user.unwrap_or_default()).with("password", &password))
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len().min(256));
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if out.len() >= 256 {
            break;
        }
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b,
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// An IMF-fixdate (`Mon, 07 Dec 2026 17:30:00 GMT`) of Unix seconds.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, hour, minute, second) = civil(secs);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS.get((secs / 86_400 % 7) as usize).unwrap_or(&"Thu"),
        day,
        MONTHS
            .get(month.saturating_sub(1) as usize)
            .unwrap_or(&"Jan"),
        year,
        hour,
        minute,
        second
    )
}

/// Year, month, day, hour, minute, second (UTC) of Unix seconds (Howard
/// Hinnant's civil-from-days).
pub fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// One response: status, the headers of the site's flavor, the body.
struct Response<'a> {
    status: &'static str,
    content_type: &'static str,
    body: &'a str,
    authenticate: Option<&'static str>,
    head: bool,
    keep_alive: bool,
}

impl Http {
    /// The site of the profile and port.
    pub fn new(cx: &Context<'_>) -> Http {
        Http {
            site: site(cx.profile, cx.port),
            requests: 0,
        }
    }

    /// Answers one request.
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let (req, used) = match parse(input) {
            Parsed::Request(r, used) => (r, used),
            Parsed::Partial => return (0, Step::More),
            Parsed::Bad => {
                self.write(
                    cx,
                    out,
                    &Response {
                        status: "400 Bad Request",
                        content_type: "text/html; charset=iso-8859-1",
                        body: self.bad_request_body(),
                        authenticate: None,
                        head: false,
                        keep_alive: false,
                    },
                );
                return (input.len(), Step::Close);
            }
        };
        self.requests = self.requests.saturating_add(1);
        let site = self.site;
        let proxy = matches!(site.root, Root::Proxy);
        if let Some(login) = req
            .proxy_authorization
            .filter(|_| proxy)
            .and_then(|v| basic("http-proxy", v))
        {
            logins.add(login);
        }
        if let Some(login) = req.authorization.and_then(|v| basic("http", v)) {
            logins.add(login);
        }
        let posted = if req.method == b"POST" && req.form {
            form_login(req.body)
        } else {
            None
        };
        let posted_login = posted.is_some();
        if let Some(login) = posted {
            logins.add(login);
        }
        // TP-Link's httpd and Squid's errors close; so does the EWS on 1.0.
        let closes = matches!(site.flavor, Flavor::TpLink | Flavor::Squid)
            || (site.flavor == Flavor::Hp && req.http10);
        let keep_alive = self.requests < MAX_REQUESTS
            && !req.close
            && !closes
            && (!req.http10 || req.keep_alive);
        let head = req.method == b"HEAD";
        let not_found = match site.flavor {
            Flavor::Iis => IIS_404,
            Flavor::HttpApi => HTTPAPI_404,
            Flavor::Apache => APACHE_404,
            Flavor::Nginx => NGINX_404,
            Flavor::Squid | Flavor::TpLink | Flavor::Hp => EMBEDDED_404,
        };
        let unauthorized = match site.flavor {
            Flavor::Iis => IIS_401,
            Flavor::Apache => APACHE_401,
            Flavor::TpLink => TPLINK_401,
            _ => "<html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>\n",
        };
        let html = "text/html";
        let r = |status, content_type, body, authenticate| Response {
            status,
            content_type,
            body,
            authenticate,
            head,
            keep_alive,
        };
        let path = req.path.split(|&b| b == b'?').next().unwrap_or_default();
        let absolute = path.starts_with(b"http://") || path.starts_with(b"https://");
        let response = match (site.root, path) {
            // A proxy is asked for other sites; a path alone is not a URL
            // it can fetch.
            (Root::Proxy, _) if absolute || req.method == b"CONNECT" => r(
                "407 Proxy Authentication Required",
                "text/html;charset=utf-8",
                SQUID_407,
                Some("Proxy-Authenticate"),
            ),
            (Root::Proxy, _) => r(
                "400 Bad Request",
                "text/html;charset=utf-8",
                SQUID_400,
                None,
            ),
            // The EWS speaks HTTP/1.1 only.
            _ if site.flavor == Flavor::Hp && req.http10 => {
                r("505 HTTP Version Not Supported", "", "", None)
            }
            (_, b"/robots.txt") => match site.robots {
                Some(text) => r("200 OK", "text/plain", text, None),
                None => r("404 Not Found", html, not_found, None),
            },
            (_, b"/favicon.ico") => r("404 Not Found", html, not_found, None),
            (Root::Page(_), _) if posted_login => {
                if site.flavor == Flavor::Nginx {
                    r(
                        "200 OK",
                        "application/json; charset=\"UTF-8\"",
                        NAS_FAILED,
                        None,
                    )
                } else {
                    r("200 OK", html, LOGIN_FAILED, None)
                }
            }
            (Root::Page(page), b"/" | b"/index.html" | b"/login.html" | b"/login") => {
                r("200 OK", html, page, None)
            }
            (Root::Page(_), _) => r("404 Not Found", html, not_found, None),
            (Root::NotFound, _) if req.authorization.is_some() || req.method == b"POST" => {
                r("401 ", html, "", Some("WWW-Authenticate"))
            }
            (Root::NotFound, _) => r(
                "404 Not Found",
                "text/html; charset=us-ascii",
                not_found,
                None,
            ),
            (Root::Basic, _) if site.flavor == Flavor::TpLink => {
                r("401 N/A", html, unauthorized, Some("WWW-Authenticate"))
            }
            (Root::Basic, _) => r(
                "401 Unauthorized",
                html,
                unauthorized,
                Some("WWW-Authenticate"),
            ),
        };
        self.write(cx, out, &response);
        (
            used,
            if response.keep_alive {
                Step::More
            } else {
                Step::Close
            },
        )
    }

    fn bad_request_body(&self) -> &'static str {
        match self.site.flavor {
            Flavor::Apache => APACHE_400,
            _ => "<html><head><title>400 Bad Request</title></head><body><h1>400 Bad Request</h1></body></html>\n",
        }
    }

    /// The status line, the flavor's headers in its order, the body.
    fn write(&self, cx: &Context<'_>, out: &mut Out, r: &Response<'_>) {
        let site = self.site;
        let server = cx.banner.unwrap_or(site.server);
        let date = http_date(cx.now);
        let length = r.body.len();
        let status = if r.status == "401 " {
            "401 Unauthorized"
        } else {
            r.status
        };
        out.text(&format!("HTTP/1.1 {status}\r\n"));
        let auth = |out: &mut Out| {
            if let Some(h) = r.authenticate {
                if site.flavor == Flavor::HttpApi {
                    out.text(&format!(
                        "{h}: Negotiate\r\n{h}: Basic realm=\"{}\"\r\n",
                        site.realm
                    ));
                } else {
                    out.text(&format!("{h}: Basic realm=\"{}\"\r\n", site.realm));
                }
            }
        };
        match site.flavor {
            Flavor::Iis | Flavor::HttpApi => {
                out.text(&format!(
                    "Content-Type: {}\r\nServer: {server}\r\n",
                    r.content_type
                ));
                auth(out);
                if site.flavor == Flavor::Iis {
                    out.text("X-Powered-By: ASP.NET\r\n");
                }
                out.text(&format!("Date: {date}\r\nContent-Length: {length}\r\n"));
            }
            Flavor::Apache => {
                out.text(&format!("Date: {date}\r\nServer: {server}\r\n"));
                auth(out);
                out.text(&format!("Content-Length: {length}\r\n"));
                if r.keep_alive {
                    out.text("Keep-Alive: timeout=5, max=100\r\n");
                }
                out.text(&format!(
                    "Connection: {}\r\nContent-Type: {}\r\n",
                    if r.keep_alive { "Keep-Alive" } else { "close" },
                    r.content_type
                ));
            }
            Flavor::Squid => {
                let error = if r.authenticate.is_some() {
                    "ERR_CACHE_ACCESS_DENIED"
                } else {
                    "ERR_INVALID_URL"
                };
                out.text(&format!("Server: {server}\r\nMime-Version: 1.0\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {length}\r\nX-Squid-Error: {error} 0\r\nVary: Accept-Language\r\nContent-Language: en\r\n", r.content_type));
                auth(out);
                out.text(&format!("X-Cache: MISS from proxy\r\nX-Cache-Lookup: NONE from proxy:{}\r\nVia: 1.1 proxy (squid/5.7)\r\n", cx.port));
            }
            Flavor::TpLink => {
                // This order, no length, always closed: a match line of
                // scanners checks it.
                out.text(&format!(
                    "Server: {server}\r\nConnection: close\r\nContent-Type: text/html\r\n"
                ));
                auth(out);
                out.text("\r\n");
                if !r.head {
                    out.text(r.body);
                }
                return;
            }
            Flavor::Hp if r.status.starts_with("505") => {
                out.text(&format!("Server: {server}\r\n\r\n"));
                return;
            }
            Flavor::Nginx | Flavor::Hp => {
                out.text(&format!("Server: {server}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {length}\r\n", r.content_type));
                auth(out);
            }
        }
        if !matches!(site.flavor, Flavor::Apache) {
            out.text(if r.keep_alive {
                "Connection: keep-alive\r\n"
            } else {
                "Connection: close\r\n"
            });
        }
        out.text("\r\n");
        if !r.head {
            out.text(r.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run};
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_796_665_800), "Mon, 07 Dec 2026 17:50:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn iis_asks_for_basic_credentials_and_records_them() {
        let (out, logins, step) = run(
            &cx(80, Profile::WindowsWorkstation),
            &[
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46UEBzc3cwcmQ=\r\n\r\n",
            ],
        );
        assert!(out.starts_with("HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html\r\nServer: Microsoft-IIS/10.0\r\nWWW-Authenticate: Basic realm=\"WS01\"\r\n"), "{out}");
        assert_eq!(step, Step::More);
        assert_eq!(logins.len(), 1);
        assert_eq!(
            (logins[0].protocol, logins[0].username.as_str()),
            ("http", "admin")
        );
        assert_eq!(logins[0].field("password"), Some("P@ssw0rd"));
        // Content-Length is the body's.
        let first = &out[..out.find("</html>\r\n").unwrap() + 9];
        let (head, body) = first.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
    }

    #[test]
    fn squid_refuses_a_plain_path_with_400() {
        let (out, logins, _) = run(
            &cx(8080, Profile::LinuxServer),
            &[b"GET / HTTP/1.0\r\n\r\n"],
        );
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\nServer: squid/5.7\r\n"),
            "{out}"
        );
        assert!(out.contains("X-Squid-Error: ERR_INVALID_URL 0\r\n"));
        assert!(logins.is_empty());
    }

    #[test]
    fn squid_answers_407_and_records_proxy_credentials() {
        let (out, logins, _) = run(
            &cx(3128, Profile::LinuxServer),
            &[b"CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n"],
        );
        assert!(
            out.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\nServer: squid/5.7\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Proxy-Authenticate: Basic realm=\"Squid proxy-caching web server\"\r\n")
        );
        assert_eq!(
            (logins[0].protocol, logins[0].username.as_str()),
            ("http-proxy", "u")
        );
        assert!(!out.contains("example.com"));
    }

    #[test]
    fn printer_login_form_is_recorded_and_http_1_0_gets_505() {
        let body = b"username=admin&password=p%40ss+word";
        let req = format!("POST /hp/device/SignIn HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", body.len());
        let (out, logins, _) = run(
            &cx(80, Profile::Printer),
            &[b"GET / HTTP/1.1\r\n\r\n", req.as_bytes(), body],
        );
        assert!(out.contains("<title>HP LaserJet Pro M404n</title>"));
        assert!(out.contains("Invalid username or password"));
        assert_eq!(logins[0].username, "admin");
        assert_eq!(logins[0].field("password"), Some("p@ss word"));
        let (out, _, step) = run(&cx(631, Profile::Printer), &[b"GET / HTTP/1.0\r\n\r\n"]);
        assert!(out.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\nServer: HP HTTP Server; HP LaserJet Pro M404n - W1A52A; Serial Number: PHBQB41837;"), "{out}");
        assert!(out.ends_with("}\r\n\r\n"));
        assert_eq!(step, Step::Close);
    }

    #[test]
    fn the_router_asks_for_basic_in_tp_links_header_order() {
        let (out, logins, step) = run(
            &cx(8080, Profile::Router),
            &[b"GET / HTTP/1.1\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n"],
        );
        assert!(out.starts_with("HTTP/1.1 401 N/A\r\nServer: Router\r\nConnection: close\r\nContent-Type: text/html\r\nWWW-Authenticate: Basic realm=\"TP-LINK Wireless N Router WR841N\"\r\n\r\n<HTML>"), "{out}");
        assert_eq!(step, Step::Close);
        assert_eq!(
            (logins[0].username.as_str(), logins[0].field("password")),
            ("admin", Some("admin"))
        );
    }

    #[test]
    fn http_1_0_closes_and_head_has_no_body() {
        let (out, _, step) = run(&cx(80, Profile::LinuxServer), &[b"HEAD / HTTP/1.0\r\n\r\n"]);
        assert_eq!(step, Step::Close);
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(out.contains("Server: Apache/2.4.62 (Debian)\r\n"));
    }

    #[test]
    fn garbage_and_oversized_requests_get_400_and_close() {
        for input in [
            &b"\x16\x03\x01\x02\x00"[..],
            b"OPTIONS / RTSP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
        ] {
            let (out, _, step) = run(&cx(80, Profile::LinuxServer), &[input]);
            assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
            assert_eq!(step, Step::Close);
        }
    }

    #[test]
    fn the_override_replaces_the_server_header() {
        let mut c = cx(80, Profile::LinuxServer);
        c.banner = Some("nginx/1.22.1");
        let (out, _, _) = run(&c, &[b"GET / HTTP/1.1\r\n\r\n"]);
        assert!(out.contains("\r\nServer: nginx/1.22.1\r\n"));
    }
}
