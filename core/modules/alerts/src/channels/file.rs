//! ECS JSON lines in a file, for Filebeat, Vector or Fluent Bit to ship:
//! one object per alert (the event in the Elastic Common Schema with
//! `event.kind = "alert"`, `event.severity`, `rule.name` and the alert
//! under `honeybee.alert`), rotated by size (`path` → `path.1` → … →
//! `path.<keep>`). The file is opened without following symlinks and
//! created 0640.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::alert::Alert;
use crate::channels::{Channel, Common};

/// The keys of a file channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to append to.
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes (default 100 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (default 5).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_keep() -> u32 {
    5
}

struct FileChannel {
    cfg: FileConfig,
    file: Option<(File, u64)>,
}

/// Checks the config; the file is opened on the first alert.
pub fn open(_common: &Common, cfg: &FileConfig) -> Result<Box<dyn Channel>, String> {
    if cfg.max_bytes < 4096 {
        return Err("max_bytes: at least 4096".into());
    }
    if cfg.keep > 1000 {
        return Err("keep: at most 1000".into());
    }
    Ok(Box::new(FileChannel {
        cfg: cfg.clone(),
        file: None,
    }))
}

/// The line written for `alert` (without the newline).
pub fn document(alert: &Alert) -> Value {
    let mut doc = match &alert.ecs {
        Value::Object(m) => Value::Object(m.clone()),
        _ => {
            json!({"@timestamp": alert.time, "ecs": {"version": honeybee_proto::ecs::ECS_VERSION}})
        }
    };
    if doc.get("event").is_none_or(|e| !e.is_object()) {
        doc["event"] = json!({});
    }
    doc["event"]["kind"] = json!("alert");
    doc["event"]["severity"] = json!(alert.severity.cef());
    doc["event"]["created"] = json!(alert.time);
    doc["rule"] = json!({"name": alert.rule});
    doc["message"] = json!(alert.title);
    let alert_part = json!({
        "id": alert.id,
        "severity": alert.severity.name(),
        "title": alert.title,
        "digest": alert.digest,
    });
    match doc.get_mut("honeybee").and_then(Value::as_object_mut) {
        Some(h) => {
            h.insert("alert".into(), alert_part);
        }
        None => doc["honeybee"] = json!({"alert": alert_part}),
    }
    doc
}

impl FileChannel {
    fn file(&mut self, adding: u64) -> Result<&mut (File, u64), String> {
        let path = &self.cfg.path;
        let full = self
            .file
            .as_ref()
            .is_some_and(|(_, len)| len + adding > self.cfg.max_bytes);
        if full {
            self.file = None;
            rotate(path, self.cfg.keep).map_err(|e| format!("rotating {}: {e}", path.display()))?;
        }
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| format!("opening {}: {e}", path.display()))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some((f, len));
            if len > 0 && len + adding > self.cfg.max_bytes {
                return self.file(adding);
            }
        }
        self.file
            .as_mut()
            .ok_or_else(|| "file not open".to_string())
    }
}

fn rotate(path: &std::path::Path, keep: u32) -> std::io::Result<()> {
    let numbered = |i: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(numbered(keep));
    for i in (1..keep).rev() {
        let _ = std::fs::rename(numbered(i), numbered(i + 1));
    }
    std::fs::rename(path, numbered(1))
}

impl Channel for FileChannel {
    fn send(&mut self, alert: &Alert) -> Result<(), String> {
        let mut line = serde_json::to_vec(&document(alert)).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let path = self.cfg.path.display().to_string();
        let (f, len) = self.file(line.len() as u64)?;
        let written = f.write_all(&line).and_then(|_| f.flush());
        if let Err(e) = written {
            self.file = None;
            return Err(format!("writing {path}: {e}"));
        }
        *len += line.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;
    use std::time::Duration;

    fn alert(i: usize) -> Alert {
        Alert {
            id: format!("r/{i}"),
            rule: "r".into(),
            severity: Severity::High,
            time: "2026-12-07T03:00:00Z".into(),
            title: format!("alert {i} {}", "x".repeat(900)),
            fields: vec![],
            digest: None,
            ecs: serde_json::json!({"@timestamp": "2026-12-07T03:00:00Z", "event": {"action": "extension.connection"}}),
        }
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("hb-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.json");
        let common = Common {
            name: "ecs".into(),
            timeout: Duration::from_secs(1),
        };
        let cfg = FileConfig {
            path: path.clone(),
            max_bytes: 8192,
            keep: 2,
        };
        let mut ch = open(&common, &cfg).unwrap();
        for i in 0..40 {
            ch.send(&alert(i)).unwrap();
        }
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        assert!(current.len() <= 8192, "{} bytes", current.len());
        assert!(
            current.contains("\"r/39\""),
            "the newest is in the live file"
        );
        let one = dir.join("alerts.json.1");
        let two = dir.join("alerts.json.2");
        assert!(!read(&one).is_empty() && !read(&two).is_empty());
        assert!(!dir.join("alerts.json.3").exists(), "keep = 2");
        for line in current.lines().chain(read(&one).lines()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["event"]["kind"], "alert");
            assert_eq!(v["event"]["action"], "extension.connection");
            assert_eq!(v["rule"]["name"], "r");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_in_place_of_the_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("hb-file-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("passwd");
        std::fs::write(&target, "root:x:0:0\n").unwrap();
        let path = dir.join("alerts.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let common = Common {
            name: "ecs".into(),
            timeout: Duration::from_secs(1),
        };
        let mut ch = open(
            &common,
            &FileConfig {
                path,
                max_bytes: 8192,
                keep: 1,
            },
        )
        .unwrap();
        assert!(ch.send(&alert(1)).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0:0\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
