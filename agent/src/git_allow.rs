//! Which git repositories a Full agent installs pots from.
//!
//! `InstallPot` with a `git_url` clones a repository and runs its `install`
//! and `start`: whoever can send commands to the node (the core, anyone with
//! the API token, a `BroadcastCommand` to the whole fleet) would run code on
//! it. So git installs are off unless the agent's own config lists URL
//! prefixes (`full.git_allow`, `--git-allow PREFIX`); the core cannot change
//! that list.
//!
//! Matching compares parsed URLs, never raw strings: the scheme and the
//! authority (`[user@]host[:port]`, host case-insensitive) must be equal, and
//! the path must equal the prefix's path or continue it after a `/`. So the
//! prefix `https://git.example.org/pots/` does not let in
//! `https://git.example.org/pots.evil/x`, `https://git.example.org.evil/pots/x`
//! or `https://git.example.org@evil.example/pots/x`. URLs that could be read
//! two ways (`.`/`..` segments, `//`, percent-encoded `.` `/` `\`, `?`, a
//! backslash, white space) are refused rather than normalised.
//!
//! Pinning: a prefix or a `git_url` may end with `#COMMIT` (40 or 64 hex
//! digits). The agent then checks out exactly that commit and refuses the
//! install if it cannot. A pin in the allow list wins: a command asking for
//! another commit under a pinned prefix is refused. When several prefixes
//! match, the longest decides.

use std::fmt;

/// Schemes git may use for a pot; `ext::`, `fd::` and scp-like
/// `host:path` forms have no `://` and are refused.
const SCHEMES: [&str; 5] = ["https", "http", "ssh", "git", "file"];

/// Why an install from git is refused when the allow list is empty.
pub const DISABLED: &str = "git installs are disabled on this agent; allow the URL with \
     full.git_allow in agent.toml (or --git-allow PREFIX)";

/// A URL split into the parts the allow list compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RepoUrl {
    scheme: String,
    authority: String,
    /// Without trailing `/`; empty for the root.
    path: String,
}

impl RepoUrl {
    fn parse(text: &str) -> Result<RepoUrl, String> {
        let bad = |why: &str| Err(format!("{text:?}: {why}"));
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '\\' | '?' | '#'))
        {
            return bad("contains white space, a control character, '\\', '?' or '#'");
        }
        let lower = text.to_ascii_lowercase();
        if ["%2e", "%2f", "%5c", "%00"]
            .iter()
            .any(|p| lower.contains(p))
        {
            return bad("contains a percent-encoded '.', '/', '\\' or NUL");
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return bad("expected scheme://host/path");
        };
        let scheme = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return bad("the scheme must be one of https, http, ssh, git, file");
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = authority.to_ascii_lowercase();
        if scheme == "file" && !authority.is_empty() {
            return bad("a file:// URL has no host (file:///path)");
        }
        if scheme != "file" && authority.is_empty() {
            return bad("no host");
        }
        let path = path.trim_end_matches('/');
        // The first element is the empty string before the leading '/'.
        for segment in path.split('/').skip(1) {
            if segment.is_empty() || segment == "." || segment == ".." {
                return bad("the path has an empty, '.' or '..' segment");
            }
        }
        Ok(RepoUrl {
            scheme,
            authority,
            path: path.to_string(),
        })
    }

    /// Whether `self` is `prefix` or below it, at a `/` boundary.
    fn is_under(&self, prefix: &RepoUrl) -> bool {
        self.scheme == prefix.scheme
            && self.authority == prefix.authority
            && (self.path == prefix.path
                || self
                    .path
                    .strip_prefix(&prefix.path)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// `text` without a trailing `#COMMIT`, and the commit (lower case).
fn split_commit(text: &str) -> Result<(&str, Option<String>), String> {
    let Some((url, commit)) = text.rsplit_once('#') else {
        return Ok((text, None));
    };
    let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex || !(commit.len() == 40 || commit.len() == 64) {
        return Err(format!(
            "{text:?}: the commit after '#' must be 40 (or 64) hex digits"
        ));
    }
    Ok((url, Some(commit.to_ascii_lowercase())))
}

#[derive(Debug, Clone)]
struct Entry {
    text: String,
    url: RepoUrl,
    commit: Option<String>,
}

/// The parsed `full.git_allow` list.
#[derive(Debug, Clone, Default)]
pub struct GitAllow {
    entries: Vec<Entry>,
}

/// What an allowed `git_url` installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The URL handed to git (the command's, without `#COMMIT`).
    pub url: String,
    /// The exact commit to check out, when pinned.
    pub commit: Option<String>,
}

/// A refused URL, or a bad allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRefused(pub String);

impl fmt::Display for GitRefused {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl GitAllow {
    /// Parses the allow list; an entry that is not `scheme://host/path[#COMMIT]`
    /// is an error naming it.
    pub fn new(list: &[String]) -> Result<GitAllow, GitRefused> {
        let mut entries = Vec::with_capacity(list.len());
        for text in list {
            let context = |e: String| GitRefused(format!("full.git_allow entry {e}"));
            let (url, commit) = split_commit(text).map_err(context)?;
            let url = RepoUrl::parse(url).map_err(context)?;
            entries.push(Entry {
                text: text.clone(),
                url,
                commit,
            });
        }
        Ok(GitAllow { entries })
    }

    /// Whether `git_url` (with an optional `#COMMIT`) may be installed, and
    /// what exactly; the error says why not.
    pub fn check(&self, git_url: &str) -> Result<GitSource, GitRefused> {
        if self.entries.is_empty() {
            return Err(GitRefused(DISABLED.into()));
        }
        let (url, wanted) =
            split_commit(git_url).map_err(|e| GitRefused(format!("git_url {e}")))?;
        let parsed = RepoUrl::parse(url).map_err(|e| GitRefused(format!("git_url {e}")))?;
        let entry = self
            .entries
            .iter()
            .filter(|e| parsed.is_under(&e.url))
            .max_by_key(|e| e.url.path.len())
            .ok_or_else(|| {
                GitRefused(format!(
                    "git_url {url:?} is not under any prefix of full.git_allow on this agent"
                ))
            })?;
        let commit = match (&entry.commit, wanted) {
            (Some(pin), Some(asked)) if *pin != asked => {
                return Err(GitRefused(format!(
                    "full.git_allow entry {:?} pins commit {pin}; the command asked for {asked}",
                    entry.text
                )))
            }
            (Some(pin), _) => Some(pin.clone()),
            (None, asked) => asked,
        };
        Ok(GitSource {
            url: url.to_string(),
            commit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "0123456789abcdef0123456789abcdef01234567";
    const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn allow(list: &[&str]) -> GitAllow {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        GitAllow::new(&list).unwrap()
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let e = GitAllow::default()
            .check("https://example.org/p.git")
            .unwrap_err();
        assert_eq!(e.0, DISABLED);
    }

    #[test]
    fn prefixes_match_at_a_slash_boundary_only() {
        let a = allow(&["https://git.example.org/pots/", "file:///srv/repos"]);
        for good in [
            "https://git.example.org/pots/cowrie.git",
            "HTTPS://Git.Example.ORG/pots/a/b",
            "https://git.example.org/pots",
            "file:///srv/repos/x.git",
        ] {
            let s = a.check(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(s.url, good);
            assert_eq!(s.commit, None);
        }
        for bad in [
            "https://git.example.org/pots.evil/x",
            "https://git.example.org.evil/pots/x",
            "https://git.example.org@evil.example/pots/x",
            "https://evil.example/git.example.org/pots/x",
            "https://git.example.org:8443/pots/x",
            "http://git.example.org/pots/x",
            "https://git.example.org/pots/../secret/x",
            "https://git.example.org/pots/%2e%2e/secret",
            "https://git.example.org/pots//x",
            "https://git.example.org/pots/x?y",
            "https://git.example.org/potsx",
            "https://git.example.org/",
            "file:///srv/repos-evil/x.git",
            "file:///srv/x.git",
            "ext::sh -c touch% /tmp/p",
            "git.example.org:pots/x",
            "/srv/repos/x.git",
        ] {
            assert!(a.check(bad).is_err(), "{bad} was allowed");
        }
    }

    #[test]
    fn host_only_prefix_allows_the_whole_host() {
        let a = allow(&["https://git.example.org"]);
        assert!(a.check("https://git.example.org/any/repo.git").is_ok());
        assert!(a.check("https://git.example.org.evil/any").is_err());
    }

    #[test]
    fn pins_from_the_list_win_and_commands_may_pin() {
        let a = allow(&[
            "https://git.example.org/pots/",
            &format!("https://git.example.org/pots/cowrie.git#{C1}"),
        ]);
        let s = a.check("https://git.example.org/pots/cowrie.git").unwrap();
        assert_eq!(s.commit.as_deref(), Some(C1));
        let s = a
            .check(&format!("https://git.example.org/pots/cowrie.git#{C1}"))
            .unwrap();
        assert_eq!(
            (s.url.as_str(), s.commit.as_deref()),
            ("https://git.example.org/pots/cowrie.git", Some(C1))
        );
        let e = a
            .check(&format!("https://git.example.org/pots/cowrie.git#{C2}"))
            .unwrap_err();
        assert!(e.0.contains("pins commit"), "{e}");
        let s = a
            .check(&format!(
                "https://git.example.org/pots/other.git#{}",
                C2.to_uppercase()
            ))
            .unwrap();
        assert_eq!(s.commit.as_deref(), Some(C2));
        assert!(a.check("https://git.example.org/pots/o.git#abc").is_err());
    }

    #[test]
    fn bad_entries_are_refused_with_their_text() {
        for bad in [
            "git.example.org/pots",
            "ftp://x/y",
            "https:///y",
            "https://x/#12",
        ] {
            let e = GitAllow::new(&[bad.to_string()]).unwrap_err();
            assert!(e.0.contains("full.git_allow entry"), "{bad}: {e}");
        }
    }
}
