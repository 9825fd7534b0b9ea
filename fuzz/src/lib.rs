//! Checks shared by HoneyBee's fuzz targets (`fuzz_targets/`): what every
//! Extension fingerprint must satisfy, whatever bytes it was made from.
//!
//! The targets themselves are one file each; see README.md for the list and
//! how to run them.

use honeybee_extension::fingerprint::{fingerprint, MAX_FIELD, MAX_FIELDS, MAX_JA3};

/// Fingerprints `first` as sent to `port` and checks its bounds: a protocol
/// name, at most [`MAX_FIELDS`] fields, each name once, each value within
/// [`MAX_FIELD`] ([`MAX_JA3`] for `ja3`) bytes, no control characters (the
/// values end up in log lines), the same result twice (pure), and the JSON
/// form holding exactly these fields.
pub fn check_fingerprint(port: u16, first: &[u8]) {
    let f = fingerprint(port, first);
    assert!(!f.protocol.is_empty());
    assert!(f.fields.len() <= MAX_FIELDS, "{f:?}");
    for (i, (k, v)) in f.fields.iter().enumerate() {
        let max = if *k == "ja3" { MAX_JA3 } else { MAX_FIELD };
        assert!(v.len() <= max, "{k}: {} bytes", v.len());
        assert!(!v.is_empty(), "{k} is empty");
        assert!(!v.chars().any(char::is_control), "{k}: {v:?}");
        assert!(
            !f.fields.iter().skip(i + 1).any(|(k2, _)| k2 == k),
            "{k} twice: {f:?}"
        );
        assert_eq!(f.field(k), Some(v.as_str()));
    }
    let json = f.to_json();
    assert_eq!(json.len(), f.fields.len() + 1, "{f:?}");
    assert_eq!(fingerprint(port, first), f, "not deterministic");
}
