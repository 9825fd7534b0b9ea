//! Secrets in the config (SMTP passwords, webhook URLs, HMAC keys): given
//! inline, or better read from a file or an environment variable so the
//! config file can be shared. Never printed: `Debug` shows `<redacted>`.

use std::fmt;

use serde::Deserialize;

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself; the caller must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Wraps a value.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from: `{ value = "…" }`, `{ file = "/etc/…" }` or
/// `{ env = "NAME" }`; a bare string is the value. `Debug` shows where,
/// never an inline value.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretSource {
    /// Inline.
    Value(String),
    /// Read from somewhere.
    From(SecretFrom),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Value(_) => f.write_str("<redacted>"),
            SecretSource::From(from) => match (&from.file, &from.env) {
                (Some(p), _) => write!(f, "{{ file = {p:?} }}"),
                (None, Some(e)) => write!(f, "{{ env = {e:?} }}"),
                _ => f.write_str("<redacted>"),
            },
        }
    }
}

/// The table form of [`SecretSource`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretFrom {
    /// Inline value.
    #[serde(default)]
    pub value: Option<String>,
    /// A file whose content (trailing newline removed) is the secret.
    #[serde(default)]
    pub file: Option<String>,
    /// An environment variable.
    #[serde(default)]
    pub env: Option<String>,
}

impl SecretSource {
    /// Reads the secret; the error names where it looked (never the value).
    pub fn load(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Value(v) => Ok(Secret(v.clone())),
            SecretSource::From(f) => match (&f.value, &f.file, &f.env) {
                (Some(v), None, None) => Ok(Secret(v.clone())),
                (None, Some(path), None) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("reading secret file {path}: {e}"))?;
                    Ok(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
                }
                (None, None, Some(name)) => std::env::var(name)
                    .map(Secret)
                    .map_err(|_| format!("environment variable {name} is not set")),
                _ => Err("a secret takes exactly one of value, file or env".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        let inline = SecretSource::Value("hunter2".into());
        assert_eq!(format!("{inline:?}"), "<redacted>");
        let table = SecretSource::From(SecretFrom {
            value: Some("hunter2".into()),
            file: None,
            env: None,
        });
        assert!(!format!("{table:?}").contains("hunter2"));
        let file = SecretSource::From(SecretFrom {
            value: None,
            file: Some("/etc/pw".into()),
            env: None,
        });
        assert_eq!(format!("{file:?}"), "{ file = \"/etc/pw\" }");
    }

    #[test]
    fn secrets_come_from_values_files_and_the_environment() {
        let dir = std::env::temp_dir().join(format!("hb-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let from_file: SecretSource = toml::from_str::<toml::Table>(&format!(
            "s = {{ file = {:?} }}",
            file.display().to_string()
        ))
        .unwrap()["s"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(from_file.load().unwrap().expose(), "s3cret");
        let inline: SecretSource = toml::Value::String("v".into()).try_into().unwrap();
        assert_eq!(inline.load().unwrap().expose(), "v");
        let missing = SecretSource::From(SecretFrom {
            value: None,
            file: None,
            env: Some("HB_NO_SUCH_VAR_X".into()),
        });
        assert!(missing.load().unwrap_err().contains("HB_NO_SUCH_VAR_X"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
