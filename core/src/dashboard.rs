//! The web dashboard: static files embedded in the binary, served at `/`.
//! Only the files listed here exist; any other path is a 404, so no path
//! can reach the file system. `/ui/config.json` tells the page which port
//! the live stream (PROTOCOL.md §7, WebSocket) listens on.

use serde_json::json;
use tiny_http::Response;

use crate::api::{error, header, json_reply, Reply};

/// `(URL path, content type, contents)` of every dashboard file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../dashboard/index.html"),
    ),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/ui/app.js"),
    ),
    (
        "/ui/style.css",
        "text/css; charset=utf-8",
        include_str!("../dashboard/ui/style.css"),
    ),
];

/// The page's security policy: scripts and styles only from the files
/// above (no inline code), WebSocket to the stream port.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'none'";

/// The file for `path` (without the query string), or a 404;
/// `stream_port` is the port `/ui/config.json` reports.
pub fn serve(path: &str, stream_port: u16) -> Reply {
    if path == "/ui/config.json" {
        return json_reply(200, &json!({ "stream_port": stream_port }))
            .with_header(header("Cache-Control", "no-cache"));
    }
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => Response::from_data(body.as_bytes().to_vec())
            .with_header(header("Content-Type", content_type))
            .with_header(header("Cache-Control", "no-cache"))
            .with_header(header("Content-Security-Policy", CSP))
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
        assert_eq!(serve("/", 9003).status_code().0, 200);
        assert_eq!(serve("/ui/app.js", 9003).status_code().0, 200);
        assert_eq!(serve("/ui/style.css", 9003).status_code().0, 200);
        assert_eq!(serve("/ui/config.json", 9003).status_code().0, 200);
        assert_eq!(serve("/ui/../Cargo.toml", 9003).status_code().0, 404);
        assert_eq!(serve("/ui/", 9003).status_code().0, 404);
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
