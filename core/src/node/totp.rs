//! Node TOTP keys and the check of a node's code, with the parameters of
//! [`honeybee_proto::totp`] (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1
//! step).

use honeybee_proto::totp::{DIGITS, SKEW_STEPS, STEP_SECONDS};
use totp_rs::{Algorithm, Secret, TOTP};

pub use honeybee_proto::totp::{step_at, KEY_BYTES};

/// A fresh random key.
pub fn generate_key() -> std::io::Result<Vec<u8>> {
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(key)
}

/// The key as the node receives it: base32, no padding.
pub fn encode_key(key: &[u8]) -> String {
    match Secret::Raw(key.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => String::new(),
    }
}

/// The step `code` was generated for, if it is valid within ±1 step of
/// `unix_secs`. The caller refuses steps it has already accepted.
pub fn verify(key: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECONDS, key.to_vec());
    let now = step_at(unix_secs);
    let mut found = None;
    // Check every step in the window every time, so that timing says
    // nothing about which matched.
    for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
        let expected = totp.generate(step * STEP_SECONDS);
        if crate::secret::equal(code.as_bytes(), expected.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 key "12345678901234567890"; 8 digits there,
    // the last 6 here.
    #[test]
    fn rfc6238_vectors() {
        let key = b"12345678901234567890";
        assert_eq!(verify(key, "287082", 59), Some(1));
        assert_eq!(verify(key, "081804", 1_111_111_109), Some(37_037_036));
        assert_eq!(verify(key, "050471", 1_111_111_111), Some(37_037_037));
    }

    #[test]
    fn skew_is_one_step() {
        let key = generate_key().unwrap();
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, key.clone());
        let t = 1_800_000_000u64;
        let s = step_at(t);
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let step = (s as i64 + offset) as u64;
            let code = totp.generate(step * 30);
            let got = verify(&key, &code, t);
            if ok {
                assert_eq!(got, Some(step), "offset {offset}");
            } else {
                // A code of another step may collide by chance (1e-6); only the
                // step must never be reported as the far one.
                assert_ne!(got, Some(step), "offset {offset}");
            }
        }
        assert_eq!(verify(&key, "abcdef", t), None);
        assert_eq!(verify(&key, "1234567", t), None);
    }

    #[test]
    fn key_is_32_base32_chars() {
        let k = encode_key(&generate_key().unwrap());
        assert_eq!(k.len(), 32);
        assert!(k
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    }
}
