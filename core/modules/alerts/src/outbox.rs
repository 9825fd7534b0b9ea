//! One channel's alerts waiting to go out, on disk: one file per alert
//! (`<number>.json`, written to a temporary name, then renamed), so a
//! restart of the module or the core loses none. Files are not synced one
//! by one (a thousand fsyncs a second is more than most disks do): the
//! state directory syncs the file system before it saves a cursor
//! ([`crate::state::StateDir::save`]), so after a machine crash the cursor
//! never points past an alert that was lost. At most `max` wait; beyond,
//! the oldest is dropped and counted.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::alert::Alert;

/// A channel's outbox.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    queue: VecDeque<u64>,
    next: u64,
    max: usize,
}

impl Outbox {
    /// Opens (creating, mode 0700) `dir` and finds what waits in it.
    pub fn open(dir: &Path, max: usize) -> Result<Outbox, String> {
        create_private_dir(dir)?;
        let mut queue: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| format!("reading outbox {}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (n, ext) = name.split_once('.')?;
                if ext == "tmp" {
                    let _ = fs::remove_file(e.path());
                    return None;
                }
                (ext == "json").then(|| n.parse().ok()).flatten()
            })
            .collect();
        queue.sort_unstable();
        let next = queue.last().map_or(1, |n| n + 1);
        Ok(Outbox {
            dir: dir.to_path_buf(),
            queue: queue.into(),
            next,
            max,
        })
    }

    fn path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n:020}.json"))
    }

    /// Adds `alert` durably. Returns how many old alerts were dropped to
    /// make room (0 or 1).
    pub fn push(&mut self, alert: &Alert) -> Result<u64, String> {
        let n = self.next;
        let tmp = self.dir.join(format!("{n:020}.tmp"));
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        let written = File::create(&tmp).and_then(|mut f| f.write_all(&body));
        written
            .and_then(|_| fs::rename(&tmp, self.path(n)))
            .map_err(|e| format!("writing outbox {}: {e}", self.dir.display()))?;
        self.next += 1;
        self.queue.push_back(n);
        let mut dropped = 0;
        while self.queue.len() > self.max {
            if let Some(old) = self.queue.pop_front() {
                let _ = fs::remove_file(self.path(old));
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// The oldest waiting alert and its number, if any (unreadable files
    /// are removed).
    pub fn front(&mut self) -> Option<(u64, Alert)> {
        while let Some(&n) = self.queue.front() {
            let parsed = fs::read(self.path(n))
                .ok()
                .and_then(|b| serde_json::from_slice::<Alert>(&b).ok());
            match parsed {
                Some(a) => return Some((n, a)),
                None => {
                    log::warn!("outbox {}: dropping unreadable {n}", self.dir.display());
                    self.remove(n);
                }
            }
        }
        None
    }

    /// Removes alert `n` if it is still the oldest (after it was delivered
    /// or given up; the bound may have dropped it meanwhile).
    pub fn remove(&mut self, n: u64) {
        if self.queue.front() == Some(&n) {
            self.queue.pop_front();
            let _ = fs::remove_file(self.path(n));
        }
    }

    /// Alerts waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Creates `dir` (and parents) with mode 0700 for the last part; refuses a
/// symlink in its place.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!(
                "{} is a symlink; refusing to use it",
                dir.display()
            ))
        }
        Ok(m) if m.is_dir() => {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            return Ok(());
        }
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(_) => {}
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

    fn alert(i: u32) -> Alert {
        Alert {
            id: format!("r/{i}"),
            rule: "r".into(),
            severity: Severity::High,
            time: "t".into(),
            title: format!("alert {i}"),
            fields: vec![],
            digest: None,
            ecs: serde_json::Value::Null,
        }
    }

    #[test]
    fn alerts_survive_a_reopen_in_order_and_the_bound_drops_the_oldest() {
        let dir = std::env::temp_dir().join(format!("hb-outbox-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut o = Outbox::open(&dir, 3).unwrap();
        for i in 1..=4 {
            let dropped = o.push(&alert(i)).unwrap();
            assert_eq!(dropped, u64::from(i == 4));
        }
        drop(o);
        let mut o = Outbox::open(&dir, 3).unwrap();
        assert_eq!(o.len(), 3);
        let (n, a) = o.front().unwrap();
        assert_eq!(a.id, "r/2");
        o.remove(n + 1);
        assert_eq!(o.len(), 3, "only the oldest is removed");
        o.remove(n);
        assert_eq!(o.front().unwrap().1.id, "r/3");
        o.push(&alert(5)).unwrap();
        let o2 = Outbox::open(&dir, 3).unwrap();
        assert_eq!(o2.len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }
}
