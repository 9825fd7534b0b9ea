//! Comparing secrets (API token, enrollment token, TOTP codes) so that
//! neither the content nor the length of the expected value leaks through
//! timing: both sides are hashed to a fixed length first, then compared
//! with `subtle`'s constant-time equality.

use ring::digest::{digest, SHA256};
use subtle::ConstantTimeEq;

/// Whether `given` equals `expected`, in time independent of both.
pub fn equal(given: &[u8], expected: &[u8]) -> bool {
    let a = digest(&SHA256, given);
    let b = digest(&SHA256, expected);
    a.as_ref().ct_eq(b.as_ref()).into()
}

#[cfg(test)]
mod tests {
    use super::equal;

    #[test]
    fn equal_only_when_equal() {
        assert!(equal(b"token", b"token"));
        assert!(!equal(b"token", b"tokem"));
        assert!(!equal(b"token", b"token2"));
        assert!(!equal(b"", b"token"));
        assert!(equal(b"", b""));
    }
}
