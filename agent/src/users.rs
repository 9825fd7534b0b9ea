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

/// The pot user when `full.pot_user` is unset and the agent is root.
pub const DEFAULT_POT_USER: &str = "honeybee-pot";

/// The group of the core and the Extension agent, which may read their
/// configs: a pot must never have it.
const SERVICE_GROUP: &str = "honeybee";

/// Why a non-root agent with no `full.pot_user` starts no pot.
pub const NOT_ROOT: &str = "this agent is not root and full.pot_user is not set: its pots \
     would run as the agent's own user; run the agent as root (pots then run as \
     honeybee-pot) or set full.pot_user to a dedicated user it may switch to";

/// Who pots run as, never root nor the agent's own user:
/// - `configured` (`full.pot_user`): that user, which must be in /etc/passwd;
///   a non-root agent needs CAP_SETUID/CAP_SETGID, else the start fails.
/// - unset, as root: [`DEFAULT_POT_USER`], else `nobody` with a warning.
/// - unset, not root: refused ([`NOT_ROOT`]).
///
/// The user's primary group must not be root's nor `honeybee` (the group
/// that may read the core's and Extension agent's configs): pots get no
/// supplementary groups, so the primary group is all they have.
pub fn pots_run_as(configured: Option<&str>) -> Result<RunAs, String> {
    let me = geteuid();
    if configured.is_none() && !me.is_root() {
        return Err(NOT_ROOT.into());
    }
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    let who = match configured {
        Some(name) => local_user(&passwd, name).ok_or_else(|| {
            format!("full.pot_user {name:?} is not a non-root user in /etc/passwd")
        })?,
        None => match local_user(&passwd, DEFAULT_POT_USER) {
            Some(who) => who,
            None => {
                log::warn!("user {DEFAULT_POT_USER:?} is not in /etc/passwd: pots run as nobody");
                local_user(&passwd, "nobody").ok_or_else(|| {
                    format!(
                        "refusing to run pots as root: neither {DEFAULT_POT_USER:?} nor nobody \
                         is in /etc/passwd"
                    )
                })?
            }
        },
    };
    if who.uid == me.as_raw() {
        return Err(format!(
            "the pot user (uid {}) is the agent's own user; set full.pot_user to a dedicated user",
            who.uid
        ));
    }
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    if who.gid == 0 || group_id(&group, SERVICE_GROUP) == Some(who.gid) {
        return Err(format!(
            "the pot user's primary group (gid {}) is root's or {SERVICE_GROUP:?}: \
             give the pot user a group of its own",
            who.gid
        ));
    }
    Ok(who)
}

/// `name`'s gid in /etc/group text.
fn group_id(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        f.nth(1)?.parse().ok()
    })
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

    #[test]
    fn group_ids_are_read_from_group() {
        let group = "root:x:0:\nhoneybee:x:998:\nhoneybee-pot:x:997:\n";
        assert_eq!(group_id(group, "honeybee"), Some(998));
        assert_eq!(group_id(group, "honeybee-pot"), Some(997));
        assert_eq!(group_id(group, "nobody"), None);
    }
}
