//! Finding the unprivileged user the agent hands work to: pots in Full
//! mode, the whole agent in Extension mode once its ports are bound.
//!
//! Only local users (/etc/passwd) are looked up: going through NSS loads
//! shared libraries that then stay resident (~0.6 MB) for the agent's life.

use nix::unistd::geteuid;

/// A uid/gid to run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// `name`, else `nobody` with a warning; never root. `Ok(None)` when the
/// agent is not root (it keeps its own user). Only local users count: the
/// packages create `honeybee` in /etc/passwd, and NSS would keep its
/// modules (~0.6 MB) resident for the agent's life.
pub fn pot_user(name: &str) -> Result<Option<RunAs>, String> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    if let Some(who) = local_user(&passwd, name) {
        return Ok(Some(who));
    }
    if let Some(who) = local_user(&passwd, "nobody") {
        log::warn!("user {name:?} is not in /etc/passwd: using nobody");
        return Ok(Some(who));
    }
    Err(format!(
        "refusing to run as root: neither user {name:?} nor nobody is in /etc/passwd"
    ))
}

/// The user this process runs as, for messages: `name (uid N)`, or
/// `uid N` when /etc/passwd does not name it.
pub fn current_user() -> String {
    let uid = geteuid().as_raw();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        });
    match name {
        Some(n) => format!("user {n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// `name`'s uid and gid in /etc/passwd text, unless it is root.
pub fn local_user(passwd: &str, name: &str) -> Option<RunAs> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let uid: u32 = f.nth(1)?.parse().ok()?;
        let gid: u32 = f.next()?.parse().ok()?;
        (uid != 0).then_some(RunAs { uid, gid })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_users_are_read_from_passwd_and_root_never() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\nbad:x:notanumber:1::/:\ntoor:x:0:0::/:\n";
        let who = local_user(passwd, "nobody").unwrap();
        assert_eq!((who.uid, who.gid), (65534, 65534));
        assert!(local_user(passwd, "root").is_none());
        assert!(
            local_user(passwd, "toor").is_none(),
            "uid 0 under another name"
        );
        assert!(local_user(passwd, "bad").is_none());
        assert!(local_user(passwd, "honeybee").is_none());
    }
}
