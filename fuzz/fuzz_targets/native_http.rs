//! The `native-http` pot (a WordPress login page), sans I/O: the request
//! head is found (`head_end`) and read (`parse_head`) within the `REQUEST`
//! bytes the session reads, the body is what follows, and the answer is
//! built (`answer`); the `native-banner` pot's record of first bytes
//! (`banner_input`) is checked on the same input.
//!
//! Promises checked: no panic; the target and User-Agent stay within `LINE`
//! characters; a response is one well-formed HTTP/1.1 message whose
//! `Content-Length` is its body's length; a user name echoed into the page
//! is HTML-escaped; the login
//! recorded is the form's `log` and `pwd`.
#![no_main]

use honeybee_extension::native::{
    answer, banner_input, head_end, parse_form, parse_head, LINE, REQUEST,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let banner = banner_input(data);
    assert!(banner.chars().count() <= LINE);
    assert!(!banner
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));

    let buf = data.get(..REQUEST).unwrap_or(data);
    let Some(end) = head_end(buf) else {
        return;
    };
    assert!(end <= buf.len());
    let Some(mut req) = parse_head(buf.get(..end).unwrap_or_default()) else {
        return;
    };
    assert!(req.path.chars().count() <= LINE);
    assert!(req.user_agent.chars().count() <= LINE);
    // The session reads up to REQUEST bytes: whatever follows the head.
    req.body = buf.get(end..).unwrap_or_default().to_vec();

    let a = answer(&req);
    let (head, body) = a
        .response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {:?}", a.response));
    assert!(head.starts_with("HTTP/1.1 "), "{head:?}");
    let length = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse::<usize>().ok());
    assert_eq!(length, Some(body.len()), "Content-Length is not the body's");
    if let Some((user, password)) = &a.login {
        let form = parse_form(&req.body);
        assert_eq!(form.get("log").map(String::as_str).unwrap_or(""), user);
        assert_eq!(form.get("pwd").map(String::as_str).unwrap_or(""), password);
        assert!(password.chars().count() <= LINE);
        // The user name is echoed escaped: it cannot add markup.
        let escaped = user
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(
            body.contains(&format!("for the username <strong>{escaped}</strong>")),
            "user name not echoed escaped"
        );
    }
});
