//! Finding the unprivileged user the agent hands work to: pots in Full
//! mode, the whole agent in Extension mode once its ports are bound.
//!
//! Local users (/etc/passwd) are looked up first: going through NSS loads
//! shared libraries that then stay resident (~0.7 MB) for the agent's life.

use nix::unistd::{geteuid, User};

/// A uid/gid to run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// `name`, else `nobody` with a warning; never root. `Ok(None)` when the
/// agent is not root (it keeps its own user).
pub fn pot_user(name: &str) -> Result<Option<RunAs>, String> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let local = |n: &str| local_user(&passwd, n);
    let nss = |n: &str| {
        User::from_name(n)
            .ok()
            .flatten()
            .filter(|u| !u.uid.is_root())
            .map(|u| RunAs {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            })
    };
    if let Some(who) = local(name).or_else(|| nss(name)) {
        return Ok(Some(who));
    }
    if let Some(who) = local("nobody").or_else(|| nss("nobody")) {
        log::warn!("user {name:?} does not exist: using nobody");
        return Ok(Some(who));
    }
    Err(format!(
        "refusing to run as root: neither user {name:?} nor nobody exists"
    ))
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
