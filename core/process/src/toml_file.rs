//! Config files: read with a size cap, parsed from TOML with errors that
//! name the file and the line ("reading config /etc/honeybee/agent.toml:
//! line 3: invalid type …").

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

/// The largest config file read; a config is a few kilobytes, and a file
/// of gigabytes (a mistake, or a hostile `/dev/zero`) must not be read
/// whole into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads and parses `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = read(path)?;
    parse(&text).map_err(|e| format!("reading config {}: {e}", path.display()))
}

/// Reads `path` as text, at most [`MAX_CONFIG_BYTES`].
pub fn read(path: &Path) -> Result<String, String> {
    let fail = |e: String| format!("reading config {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(format!(
            "larger than {} KiB; is it the right file?",
            MAX_CONFIG_BYTES / 1024
        )));
    }
    Ok(text)
}

/// Parses TOML text; an error names the line it is on.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_string();
        match e.span() {
            Some(span) => format!("line {}: {message}", line_of(text, span.start)),
            None => message,
        }
    })
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    before.matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        port: u16,
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse::<Sample>("\n\nport = \"x\"\n").unwrap_err();
        assert!(e.starts_with("line 3: "), "{e}");
        let e = parse::<Sample>("port = 1\nhost = 2\n").unwrap_err();
        assert!(e.starts_with("line 2: ") && e.contains("host"), "{e}");
        assert_eq!(parse::<Sample>("port = 7").unwrap(), Sample { port: 7 });
    }

    #[test]
    fn files_name_themselves_and_huge_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("hb-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.toml");
        let e = load::<Sample>(&missing).unwrap_err();
        assert!(
            e.starts_with(&format!("reading config {}: ", missing.display())),
            "{e}"
        );
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "port = 70000\n").unwrap();
        let e = load::<Sample>(&bad).unwrap_err();
        assert!(
            e.starts_with(&format!("reading config {}: line 1: ", bad.display())),
            "{e}"
        );
        let huge = dir.join("huge.toml");
        std::fs::write(&huge, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
        let e = load::<Sample>(&huge).unwrap_err();
        assert!(e.contains("larger than 1024 KiB"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
