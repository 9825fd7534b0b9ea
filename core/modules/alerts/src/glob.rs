//! Shell-style globs for event types, pot types and node names: `*` any
//! run of characters, `?` one character; everything else literal.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative with one backtrack point: linear for `*` patterns, so a
    // hostile event type cannot make matching expensive.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(matches("extension.*", "extension.connection"));
        assert!(!matches("extension.*", "cowrie.login.failed"));
        assert!(matches("*.login.success", "cowrie.login.success"));
        assert!(matches("office-??", "office-12"));
        assert!(!matches("office-??", "office-123"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(!matches("abc", "abcd"));
    }

    #[test]
    fn a_hostile_text_is_matched_quickly() {
        let text = "a".repeat(100_000);
        assert!(!matches("*a*a*a*a*b", &text));
    }
}
