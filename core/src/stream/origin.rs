//! Which web pages may open the live stream's WebSocket. Browsers send an
//! `Origin` header with every WebSocket handshake and let any page connect
//! anywhere; without this check a page on any site, opened by an operator
//! whose browser can reach the core, could read the live stream with a
//! token it got elsewhere or probe the port. Only the dashboard's own
//! origin — the host the browser used for this port, on the API port — is
//! accepted. Clients that are not browsers send no `Origin` and are judged
//! by their token alone.

use async_tungstenite::tungstenite::http::HeaderMap;

/// `Ok` when the handshake may go on; `Err(origin)` names a foreign page.
pub fn check(headers: &HeaderMap, api_port: u16) -> Result<(), String> {
    let Some(origin) = headers.get("origin") else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let host = headers
        .get("host")
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default();
    if allowed(&origin, &host, api_port) {
        Ok(())
    } else {
        Err(origin)
    }
}

/// Whether a page of `origin` may connect, the browser having reached this
/// port as `host` (the `Host` header).
pub fn allowed(origin: &str, host: &str, api_port: u16) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let (origin_host, origin_port) = split_host_port(rest, default_port);
    let (stream_host, _) = split_host_port(host, 0);
    !origin_host.is_empty()
        && origin_host.eq_ignore_ascii_case(stream_host)
        && origin_port == Some(api_port)
}

/// `host` and its port from `host[:port]` or `[v6]:port`; a missing port is
/// `default`, an unreadable one `None`.
fn split_host_port(text: &str, default: u16) -> (&str, Option<u16>) {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return ("", None),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        None => Some(default),
        Some(p) => p.parse().ok(),
    };
    (host, port)
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_the_dashboard_origin_is_allowed() {
        assert!(allowed("http://127.0.0.1:9002", "127.0.0.1:9003", 9002));
        assert!(allowed(
            "http://Core.Example.org:9002",
            "core.example.org:9003",
            9002
        ));
        assert!(allowed("http://[::1]:9002", "[::1]:9003", 9002));
        assert!(allowed("https://core:443", "core:9003", 443));
        assert!(allowed("https://core", "core:9003", 443));
    }

    #[test]
    fn other_pages_are_refused() {
        assert!(!allowed("http://evil.example:9002", "127.0.0.1:9003", 9002));
        assert!(!allowed("http://127.0.0.1:8080", "127.0.0.1:9003", 9002));
        assert!(!allowed("null", "127.0.0.1:9003", 9002));
        assert!(!allowed("file://", "127.0.0.1:9003", 9002));
        assert!(!allowed("http://127.0.0.1:9002", "", 9002));
        assert!(!allowed(
            "http://127.0.0.1.evil:9002",
            "127.0.0.1:9003",
            9002
        ));
        assert!(!allowed(
            "http://127.0.0.1:notaport",
            "127.0.0.1:9003",
            9002
        ));
    }
}
