//! What the module keeps on disk in its state directory, so a restart of
//! the module or the core neither misses nor repeats alerts:
//! - `state.json`: the stream cursor (the last event handled) and the
//!   engine's memory (windows, ceilings, sources seen, statuses), written
//!   atomically, mode 0600;
//! - `alerted.log`: the ids of the latest alerts queued, one per line, so
//!   events replayed after a crash (those after the saved cursor) do not
//!   alert twice;
//! - `outbox/<channel>/`: alerts waiting per channel ([`crate::outbox`]).

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Memory;

/// Alert ids remembered for de-duplication.
const REMEMBERED: usize = 4096;

/// The saved state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    /// The last event handled.
    pub cursor: Option<String>,
    /// The engine's memory.
    pub memory: Memory,
}

/// The state directory.
pub struct StateDir {
    dir: PathBuf,
    recent: HashSet<String>,
    order: VecDeque<String>,
    log: File,
    logged: usize,
}

impl StateDir {
    /// Opens (creating, 0700) `dir`; also what was saved in it.
    pub fn open(dir: &Path) -> Result<(StateDir, Saved), String> {
        crate::outbox::create_private_dir(dir)?;
        let saved = match fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                log::warn!(
                    "{}: unreadable ({e}); starting afresh",
                    dir.join("state.json").display()
                );
                Saved::default()
            }),
            Err(_) => Saved::default(),
        };
        let log_path = dir.join("alerted.log");
        let mut order = VecDeque::new();
        if let Ok(f) = File::open(&log_path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if order.len() >= REMEMBERED {
                    order.pop_front();
                }
                order.push_back(line);
            }
        }
        let log = open_private(&log_path, true)?;
        let recent = order.iter().cloned().collect();
        let logged = order.len();
        Ok((
            StateDir {
                dir: dir.to_path_buf(),
                recent,
                order,
                log,
                logged,
            },
            saved,
        ))
    }

    /// Where channel `name`'s outbox lives.
    pub fn outbox(&self, name: &str) -> PathBuf {
        self.dir.join("outbox").join(name)
    }

    /// Whether an alert with this id was queued recently; if not, it is
    /// remembered now.
    pub fn first_time(&mut self, id: &str) -> Result<bool, String> {
        if self.recent.contains(id) {
            return Ok(false);
        }
        if self.order.len() >= REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
        self.recent.insert(id.to_string());
        self.order.push_back(id.to_string());
        writeln!(self.log, "{id}").map_err(|e| format!("writing alerted.log: {e}"))?;
        self.logged += 1;
        if self.logged > 2 * REMEMBERED {
            self.compact()?;
        }
        Ok(true)
    }

    fn compact(&mut self) -> Result<(), String> {
        let tmp = self.dir.join("alerted.log.tmp");
        let mut f = open_private(&tmp, false)?;
        for id in &self.order {
            writeln!(f, "{id}").map_err(|e| e.to_string())?;
        }
        f.sync_data().map_err(|e| e.to_string())?;
        fs::rename(&tmp, self.dir.join("alerted.log")).map_err(|e| e.to_string())?;
        self.log = open_private(&self.dir.join("alerted.log"), true)?;
        self.logged = self.order.len();
        Ok(())
    }

    /// Saves `saved` atomically, after syncing the file system so every
    /// alert queued before it (the outboxes, `alerted.log`) is on disk.
    pub fn save(&self, saved: &Saved) -> Result<(), String> {
        sync_file_system(&self.dir);
        let tmp = self.dir.join("state.json.tmp");
        let f = open_private(&tmp, false)?;
        // Streamed: the whole state is never held twice in memory.
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer(&mut w, saved).map_err(|e| format!("saving state: {e}"))?;
        let f = w.into_inner().map_err(|e| format!("saving state: {e}"))?;
        f.sync_data()
            .and_then(|_| fs::rename(&tmp, self.dir.join("state.json")))
            .map_err(|e| format!("saving {}: {e}", self.dir.join("state.json").display()))
    }
}

fn sync_file_system(dir: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(d) = File::open(dir) {
        // SAFETY: syncfs takes any open descriptor of the file system.
        if unsafe { nix::libc::syncfs(d.as_raw_fd()) } != 0 {
            log::warn!(
                "syncing {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

fn open_private(path: &Path, append: bool) -> Result<File, String> {
    let mut o = OpenOptions::new();
    o.create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}
