//! `honeybee-agent service install|uninstall|start|stop`: the agent as a
//! Windows service (Extension mode, for office workstations).
//!
//! The Service Control Manager (SCM) starts `honeybee-agent.exe service
//! run` as `NT AUTHORITY\LocalService`, which reads
//! `%ProgramData%\HoneyBee\agent.toml`, keeps its state in
//! `%ProgramData%\HoneyBee\state` and logs to
//! `%ProgramData%\HoneyBee\logs\agent.log` ([`RotatingFile`]: 1 MiB, two
//! older files kept). `install` also limits the folder to SYSTEM,
//! Administrators and the service account and allows the agent through
//! Windows Firewall; `prepare` and `cleanup` are those two steps alone, for
//! the MSI, which registers the service itself. The Windows calls are in
//! `service/windows.rs`; what is here is plain and tested everywhere.
//! Anywhere else `service` is refused with exit status 2.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cli::{self, Action};
use crate::config::{Config, Mode};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::main;

/// The service's name in the SCM (`sc query HoneyBeeAgent`).
pub const SERVICE_NAME: &str = "HoneyBeeAgent";
/// The inbound Windows Firewall rule `install`/`prepare` add.
pub const FIREWALL_RULE: &str = "HoneyBee agent";
/// The log file's size at which it is rotated.
pub const LOG_MAX_BYTES: u64 = 1024 * 1024;
/// Older log files kept (`agent.log.1`, `agent.log.2`).
pub const LOG_KEEP: usize = 2;
/// The service-specific exit code (ServiceSpecificExitCode) for a missing
/// or unusable config: the same 2 a console start gives it.
pub const EXIT_CONFIG: u32 = 2;

/// The refusal on other systems.
pub const WINDOWS_ONLY: &str =
    "`service` is only on Windows; on Linux use the packages' systemd unit (honeybee-agent.service)";

/// The usage line.
pub const USAGE: &str = "usage: honeybee-agent service install | uninstall | start | stop \
                         (prepare | cleanup | run: for the MSI and the Service Control Manager)";

/// What `honeybee-agent service …` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Prepare, then register the service (automatic start, LocalService).
    Install,
    /// Stop and delete the service, then clean up.
    Uninstall,
    /// Ask the SCM to start it, and wait until it runs or stops.
    Start,
    /// Ask the SCM to stop it, and wait until it has.
    Stop,
    /// `%ProgramData%\HoneyBee` with its folders and access lists, and the
    /// firewall rule (what the MSI runs after copying the files).
    Prepare,
    /// Removes the firewall rule (the MSI's uninstall step); state, config
    /// and logs stay.
    Cleanup,
    /// Run under the SCM: the service dispatcher.
    Run,
}

/// Parses the arguments after `service`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let [word] = args else {
        return Err(USAGE.into());
    };
    Ok(match word.as_str() {
        "install" => Command::Install,
        "uninstall" => Command::Uninstall,
        "start" => Command::Start,
        "stop" => Command::Stop,
        "prepare" => Command::Prepare,
        "cleanup" => Command::Cleanup,
        "run" => Command::Run,
        other => return Err(format!("unknown service command {other:?}; {USAGE}")),
    })
}

/// `%ProgramData%\HoneyBee` (`C:\ProgramData\HoneyBee` when the variable
/// is missing, as it never is for a service).
pub fn data_dir(program_data: Option<std::ffi::OsString>) -> PathBuf {
    program_data
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("HoneyBee")
}

/// The service's config: `DATA_DIR/agent.toml`, in Extension mode, its
/// state dir `DATA_DIR/state` unless the file names another. An error
/// names the file and says what to do: the service writes it to its log
/// and stops with [`EXIT_CONFIG`].
pub fn load_config(data_dir: &Path) -> Result<Config, String> {
    let path = data_dir.join("agent.toml");
    if !path.is_file() {
        return Err(format!(
            "no config at {}: put one there (the MSI installs a commented one; see \
             configs/agent-windows.toml) and start the service again",
            path.display()
        ));
    }
    let args = ["--config".to_string(), path.to_string_lossy().into_owned()];
    let mut config = match cli::parse(&args) {
        Ok(Action::Run(c)) => *c,
        Ok(_) => return Err(format!("{}: not a config to run", path.display())),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if config.mode != Mode::Extension {
        return Err(format!(
            "{}: mode must be \"extension\" (Full mode needs Unix)",
            path.display()
        ));
    }
    // The default is relative to the working directory, which for a
    // service is System32.
    if config.state_dir == crate::platform::default_state_dir() {
        config.state_dir = data_dir.join("state");
    }
    Ok(config)
}

/// Whether `incoming` more bytes on a file of `current` bytes go to a new
/// file first: when they would take it past `limit`. An empty file takes
/// them anyway, so a line longer than the limit is written, not lost.
pub fn needs_rotation(current: u64, incoming: u64, limit: u64) -> bool {
    current > 0 && current.saturating_add(incoming) > limit
}

/// A log file that never grows much past `limit`: before a write that
/// would take it past, `F` becomes `F.1`, `F.1` becomes `F.2` and so on up
/// to `keep`, and the oldest goes.
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    limit: u64,
    keep: usize,
}

impl RotatingFile {
    /// Opens (appends to) `path`, creating its folder.
    pub fn open(path: PathBuf, limit: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            file: Some(file),
            size,
            limit,
            keep,
        })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        // Closed first: Windows does not rename an open file.
        self.file = None;
        if self.keep == 0 {
            let _ = fs::remove_file(&self.path);
        } else {
            let _ = fs::remove_file(self.numbered(self.keep));
            for n in (1..self.keep).rev() {
                let from = self.numbered(n);
                if from.exists() {
                    fs::rename(&from, self.numbered(n + 1))?;
                }
            }
            fs::rename(&self.path, self.numbered(1))?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if needs_rotation(self.size, buf.len() as u64, self.limit) || self.file.is_none() {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("log file not open"));
        };
        file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands() {
        for (line, want) in [
            ("install", Command::Install),
            ("uninstall", Command::Uninstall),
            ("start", Command::Start),
            ("stop", Command::Stop),
            ("prepare", Command::Prepare),
            ("cleanup", Command::Cleanup),
            ("run", Command::Run),
        ] {
            assert_eq!(parse(&args(line)), Ok(want), "{line}");
        }
        for line in ["", "restart", "install now", "--help"] {
            let e = parse(&args(line)).unwrap_err();
            assert!(e.contains("usage: honeybee-agent service"), "{line:?}: {e}");
        }
    }

    #[test]
    fn rotation_decision() {
        assert!(!needs_rotation(0, 10, 100));
        assert!(
            !needs_rotation(0, 500, 100),
            "an empty file takes a long line"
        );
        assert!(!needs_rotation(90, 10, 100), "exactly the limit is fine");
        assert!(needs_rotation(91, 10, 100));
        assert!(needs_rotation(u64::MAX, 1, 100));
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn temp(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "honeybee-agent-{name}-{}-{}",
            std::process::id(),
            honeybee_proto::time::now_rfc3339().replace(':', "")
        ));
        let _ = fs::remove_dir_all(&d);
        Dir(d)
    }

    #[test]
    fn rotating_file_keeps_two_older_files() {
        let dir = temp("rotate");
        let log = dir.0.join("logs/agent.log");
        let mut f = RotatingFile::open(log.clone(), 10, 2).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            f.write_all(line.as_bytes()).unwrap();
        }
        drop(f);
        let read = |p: &str| fs::read_to_string(dir.0.join(p)).unwrap();
        assert_eq!(read("logs/agent.log"), "dddddd\n");
        assert_eq!(read("logs/agent.log.1"), "cccccc\n");
        assert_eq!(read("logs/agent.log.2"), "bbbbbb\n");
        assert!(!dir.0.join("logs/agent.log.3").exists(), "only two kept");
        // Reopened, it counts what is already there.
        let mut f = RotatingFile::open(log, 10, 2).unwrap();
        f.write_all(b"eeeeee\n").unwrap();
        drop(f);
        assert_eq!(read("logs/agent.log"), "eeeeee\n");
        assert_eq!(read("logs/agent.log.1"), "dddddd\n");
    }

    #[test]
    fn service_config() {
        let dir = temp("svc-config");
        fs::create_dir_all(&dir.0).unwrap();
        let e = load_config(&dir.0).unwrap_err();
        assert!(
            e.contains("no config at") && e.contains("agent.toml"),
            "{e}"
        );
        fs::write(dir.0.join("agent.toml"), "mode = \"full\"\n").unwrap();
        let e = load_config(&dir.0).unwrap_err();
        assert!(e.contains("extension"), "{e}");
        fs::write(
            dir.0.join("agent.toml"),
            "mode = \"extension\"\nbogus = 1\n",
        )
        .unwrap();
        assert!(load_config(&dir.0).is_err());
        fs::write(dir.0.join("agent.toml"), "mode = \"extension\"\n").unwrap();
        let c = load_config(&dir.0).unwrap();
        assert_eq!(c.state_dir, dir.0.join("state"));
        let own = dir.0.join("elsewhere");
        fs::write(
            dir.0.join("agent.toml"),
            format!(
                "mode = \"extension\"\nstate_dir = {:?}\n",
                own.display().to_string()
            ),
        )
        .unwrap();
        assert_eq!(load_config(&dir.0).unwrap().state_dir, own);
    }

    #[test]
    fn data_dir_from_the_environment() {
        assert_eq!(
            data_dir(Some("D:\\Data".into())),
            PathBuf::from("D:\\Data").join("HoneyBee")
        );
        assert_eq!(
            data_dir(None),
            PathBuf::from(r"C:\ProgramData").join("HoneyBee")
        );
    }
}
