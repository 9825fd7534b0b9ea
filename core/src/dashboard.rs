//! The web dashboard: static files embedded in the binary, served at `/`.
//! Only the files listed here exist; any other path is a 404, so no path
//! can reach the file system.

use tiny_http::Response;

use crate::api::{error, header, Reply};

/// `(URL path, content type, contents)` of every dashboard file.
const FILES: &[(&str, &str, &str)] = &[(
    "/",
    "text/html; charset=utf-8",
    include_str!("../dashboard/index.html"),
)];

/// The file for `path` (without the query string), or a 404.
pub fn serve(path: &str) -> Reply {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => Response::from_data(body.as_bytes().to_vec())
            .with_header(header("Content-Type", content_type))
            .with_header(header("Cache-Control", "no-cache"))
            .with_header(header(
                "Content-Security-Policy",
                "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'",
            ))
            .boxed(),
        None => error(404, format!("no route for {path}")),
    }
}

/// Whether `path` is served by the dashboard (no token needed: the page
/// asks for the token and sends it with every API call).
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}
