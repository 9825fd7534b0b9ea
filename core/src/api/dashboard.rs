//! The web dashboard: static files embedded in the binary, served at `/`.
//! Only the files listed here exist; any other path is a 404, so no path
//! can reach the file system. `/ui/config.json` tells the page which port
//! the live stream (docs/protocol.md §7, WebSocket) listens on.

use serde_json::json;
use tiny_http::Response;

use crate::api::{error, header, json_reply, Reply};

/// `(URL path, content type, contents)` of every dashboard file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../dashboard/index.html"),
    ),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../dashboard/ui/app.js"),
    ),
    (
        "/ui/style.css",
        "text/css; charset=utf-8",
        include_str!("../../dashboard/ui/style.css"),
    ),
    // The world map's countries (core/dashboard/tools/make-world.mjs).
    (
        "/ui/world.json",
        "application/json",
        include_str!("../../dashboard/ui/world.json"),
    ),
];

/// The page's security policy: scripts and styles only from the files
/// above (no inline code), WebSocket only to the stream port of the host
/// the page came from.
fn csp(host: Option<&str>, stream_port: u16) -> String {
    let connect = match host.map(host_only).filter(|h| plain_host(h)) {
        Some(h) => format!("'self' ws://{h}:{stream_port} wss://{h}:{stream_port}"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'self'; connect-src {connect}; img-src 'self' data:; \
         style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'none'"
    )
}

/// The host of a `Host` header, without its port.
fn host_only(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Whether `h` is safe to put in a policy: a name, an IPv4 or a bracketed IPv6.
fn plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
}

/// The file for `path` (without the query string), or a 404;
/// `stream_port` is the port `/ui/config.json` reports, `host` the request's
/// `Host` header.
pub fn serve(path: &str, host: Option<&str>, stream_port: u16) -> Reply {
    if path == "/ui/config.json" {
        return json_reply(200, &json!({ "stream_port": stream_port }))
            .with_header(header("Cache-Control", "no-cache"));
    }
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => Response::from_data(body.as_bytes().to_vec())
            .with_header(header("Content-Type", content_type))
            .with_header(header("Cache-Control", "no-cache"))
            .with_header(header("Content-Security-Policy", &csp(host, stream_port)))
            .with_header(header("X-Content-Type-Options", "nosniff"))
            .with_header(header("X-Frame-Options", "DENY"))
            .with_header(header("Referrer-Policy", "no-referrer"))
            .boxed(),
        None => error(404, format!("no route for {path}")),
    }
}

/// Whether `path` is served by the dashboard (no token needed: the page
/// asks for the token and sends it with every API call).
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_files_exist() {
        assert_eq!(serve("/", None, 9003).status_code().0, 200);
        assert_eq!(serve("/ui/app.js", None, 9003).status_code().0, 200);
        assert_eq!(serve("/ui/style.css", None, 9003).status_code().0, 200);
        assert_eq!(serve("/ui/world.json", None, 9003).status_code().0, 200);
        assert_eq!(serve("/ui/config.json", None, 9003).status_code().0, 200);
        assert_eq!(serve("/ui/../Cargo.toml", None, 9003).status_code().0, 404);
        assert_eq!(serve("/ui/", None, 9003).status_code().0, 404);
    }

    #[test]
    fn the_policy_allows_only_this_hosts_stream_port() {
        let p = csp(Some("core.example.org:9002"), 9003);
        assert!(
            p.contains(
                "connect-src 'self' ws://core.example.org:9003 wss://core.example.org:9003;"
            ),
            "{p}"
        );
        assert!(!p.contains("ws: ") && !p.contains("wss: "), "{p}");
        let p = csp(Some("[::1]:9002"), 9003);
        assert!(p.contains("ws://[::1]:9003"), "{p}");
        // A Host header that could inject into the policy is not used.
        let p = csp(Some("x; script-src *"), 9003);
        assert!(p.contains("connect-src 'self';") && !p.contains('*'), "{p}");
        assert!(csp(None, 9003).contains("connect-src 'self';"));
    }

    #[test]
    fn pages_have_no_inline_code() {
        // The CSP forbids inline scripts and styles: the page must not need them.
        let html = FILES[0].2;
        assert!(!html.contains("<script>"), "inline script in index.html");
        assert!(!html.contains("<style"), "inline style in index.html");
        assert!(!html.contains(" style="), "style attribute in index.html");
        let handler = html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(0);
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "event handler attribute in index.html");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
