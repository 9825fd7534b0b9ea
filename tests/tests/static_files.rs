//! The dashboard's static files: only the embedded ones are served; no path
//! reaches the file system (issue: path traversal, encoded forms too).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use honeybee_tests::Core;

/// Sends the request line as given (clients would normalise it) and returns
/// the status code and the body.
fn raw(core: &Core, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(core.api_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[test]
fn only_embedded_files_are_served() {
    let core = Core::start();
    let (status, page) = raw(&core, "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<!doctype html>") || page.contains("<!DOCTYPE html>"),
        "{page}"
    );
    for target in [
        "/ui/../../../../etc/passwd",
        "/ui/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/ui/..\\..\\..\\etc\\passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/ui/%252e%252e/etc/passwd",
        "/ui/./app.js/../../../etc/passwd",
        "/ui/",
        "/ui/nonexistent.js",
        "//etc/passwd",
    ] {
        let (status, body) = raw(&core, target);
        assert!(!body.contains("root:x:0:0"), "{target} leaked /etc/passwd");
        assert!(
            status == 404 || status == 400 || status == 401,
            "{target}: status {status}"
        );
    }
}
