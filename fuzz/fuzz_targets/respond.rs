//! Extension responders: a whole client side of a conversation, cut into
//! reads, against the responder of one port and profile. Checks that every
//! answer fits its cap, logins stay bounded and printable, the dialogue
//! never moves backwards, and text protocols never send back a control
//! character the client sent (nothing attacker-made is reflected raw).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use honeybee_extension::profile::PROFILES;
use honeybee_extension::respond::{
    Context, Dialogue, HostKey, Identity, Out, Step, MAX_CREDENTIAL, MAX_LOGINS, MAX_REPLY,
};
use libfuzzer_sys::fuzz_target;

/// One certificate for the whole run (making one takes a key generation).
fn identity() -> &'static Identity {
    static ID: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
    ID.get_or_init(|| Identity::new("WS01", 1_796_665_800).expect("TLS identity"))
}

/// One SSH host key for the whole run.
fn host_key() -> &'static HostKey {
    static KEY: std::sync::OnceLock<HostKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| HostKey::new().expect("SSH host key"))
}

/// One port of every responder.
const PORTS: [u16; 17] = [21, 22, 23, 25, 80, 110, 139, 143, 445, 1433, 3128, 3306, 3389, 5900, 5985, 6379, 8443];
/// Ports whose answers are text built from templates.
const TEXT: [u16; 9] = [21, 23, 25, 80, 110, 143, 3128, 5985, 6379];

fuzz_target!(|data: &[u8]| {
    let [port, profile, flags, rest @ ..] = data else {
        return;
    };
    let port = PORTS[usize::from(*port) % PORTS.len()];
    let cx = Context {
        profile: PROFILES[usize::from(*profile) % PROFILES.len()],
        port,
        banner: (flags & 1 != 0).then_some("Custom Product 1.0"),
        peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        now: 1_796_665_800 + u64::from(*flags),
        seed: u64::from(*profile) << 32 | u64::from(*flags),
        host_id: 0x4057_1d00_0000_0001,
        redis_open: flags & 2 != 0,
        tls: (flags & 4 != 0).then(identity),
        ssh_key: (flags & 8 != 0).then(host_key),
    };
    let mut d = Dialogue::new(&cx);
    let mut out = Out::new();
    let refused = d.greet(&cx, &mut out) == Step::Close;
    assert!(out.bytes().len() <= MAX_REPLY);
    if refused {
        return;
    }
    // The client's bytes arrive in pieces: each piece is a length byte
    // (0 counts as 1) and that many bytes; the last one may be short.
    let mut all = Vec::new();
    let mut messages = 0;
    let mut pieces = Vec::new();
    let mut tail = rest;
    while let [len, more @ ..] = tail {
        let n = usize::from(*len).max(1).min(more.len());
        let (piece, after) = more.split_at(n);
        pieces.push(piece);
        tail = after;
    }
    for chunk in pieces.into_iter().filter(|c| !c.is_empty()) {
        all.extend_from_slice(chunk);
        out.clear();
        let step = d.input(&cx, &all, &mut out);
        assert!(out.bytes().len() <= MAX_REPLY);
        assert!(d.messages() >= messages);
        messages = d.messages();
        if TEXT.contains(&port) && all.contains(&0x1b) {
            assert!(!out.bytes().contains(&0x1b), "ESC reflected on {port}: {:?}", String::from_utf8_lossy(out.bytes()));
        }
        if step != Step::More {
            break;
        }
    }
    assert!(d.logins().len() <= MAX_LOGINS);
    for login in d.logins() {
        assert!(login.username.len() <= MAX_CREDENTIAL);
        assert!(!login.username.chars().any(char::is_control));
        assert!(login.fields.len() <= 4);
        for (_, v) in &login.fields {
            assert!(v.len() <= MAX_CREDENTIAL);
            assert!(!v.chars().any(char::is_control));
        }
    }
});
