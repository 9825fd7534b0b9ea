//! What one node may make the core keep: fixed bounds on the text a node
//! sends about itself and its pots, applied before anything is held in
//! memory, stored, or served by the API. Over a bound, text is cut at a
//! character boundary and marked, so an operator sees that it was cut.

/// Pots the core tracks per node; updates for more are ignored and logged.
pub const MAX_POTS_PER_NODE: usize = 64;
/// Bytes of a pot's status message, and of a NodeEvent's message or
/// description.
pub const MAX_MESSAGE: usize = 2048;
/// Bytes of a pot's `details` as JSON. Logs (`{"lines": [...]}`, the
/// answer to GetPotLogs) keep their newest lines that fit; other larger
/// details are replaced by a note saying how large they were.
pub const MAX_DETAILS: usize = 64 * 1024;
/// Bytes of an identifier or a short field: pot id and type, node name,
/// address, agent version, one capability.
pub const MAX_NAME: usize = 256;
/// Capabilities kept per node.
pub const MAX_CAPABILITIES: usize = 32;

/// `text` cut to at most `max` bytes at a character boundary, with a
/// trailing `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + MARK.len());
    out.push_str(text.get(..end).unwrap_or_default());
    out.push_str(MARK);
    out
}

/// Details as stored: the JSON text, the newest log lines that fit, or a
/// note when it is over [`MAX_DETAILS`].
pub fn details(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.len() <= MAX_DETAILS {
        return text;
    }
    if let Some(lines) = value.get("lines").and_then(|l| l.as_array()) {
        // Newest last: keep the tail that fits, each line clipped.
        let mut kept: Vec<serde_json::Value> = Vec::new();
        let mut size = 64;
        for line in lines.iter().rev() {
            let line = match line.as_str() {
                Some(s) => serde_json::Value::String(clip(s, MAX_MESSAGE)),
                None => continue,
            };
            size += line.to_string().len() + 1;
            if size > MAX_DETAILS {
                break;
            }
            kept.push(line);
        }
        kept.reverse();
        return serde_json::json!({ "lines": kept, "truncated": true }).to_string();
    }
    serde_json::json!({ "truncated": true, "bytes": text.len() }).to_string()
}

/// Capabilities as kept: at most [`MAX_CAPABILITIES`], each clipped.
pub fn capabilities(list: &[String]) -> Vec<String> {
    list.iter()
        .take(MAX_CAPABILITIES)
        .map(|c| clip(c, MAX_NAME))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("abc", 3), "abc");
        let cut = clip("ééééé", 6);
        assert!(cut.len() <= 6, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(clip(&"x".repeat(10_000), MAX_MESSAGE).len(), MAX_MESSAGE);
        assert_eq!(clip("abcdef", 0), "…");
    }

    #[test]
    fn large_details_become_a_note() {
        let small = serde_json::json!({"port": 22});
        assert_eq!(details(&small), small.to_string());
        let big = serde_json::json!({"blob": "x".repeat(MAX_DETAILS)});
        let note: serde_json::Value = serde_json::from_str(&details(&big)).unwrap();
        assert_eq!(note["truncated"], true);
        assert!(note["bytes"].as_u64().unwrap() > MAX_DETAILS as u64);
    }

    #[test]
    fn long_logs_keep_their_newest_lines() {
        let lines: Vec<String> = (0..200)
            .map(|i| format!("{i:03} {}", "l".repeat(1000)))
            .collect();
        let stored = details(&serde_json::json!({ "lines": lines }));
        assert!(stored.len() <= MAX_DETAILS, "{}", stored.len());
        let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
        let kept = v["lines"].as_array().unwrap();
        assert!(kept.len() > 50 && kept.len() < 200, "{}", kept.len());
        assert!(kept.last().unwrap().as_str().unwrap().starts_with("199 "));
        assert_eq!(v["truncated"], true);
    }

    #[test]
    fn capabilities_are_bounded() {
        let many: Vec<String> = (0..100).map(|i| format!("cap{i}")).collect();
        assert_eq!(capabilities(&many).len(), MAX_CAPABILITIES);
    }
}
