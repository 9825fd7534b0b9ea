//! The agent's settings: embedded defaults, then the TOML config file, then
//! command-line flags. Every value is checked here, once, so that the parts
//! that run never meet a bad one.

use std::fmt;
use std::path::{Path, PathBuf};

use honeybee_extension::config::ExtensionConfig;
use serde::{Deserialize, Serialize};

/// Which job the agent does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Supervises pots and forwards their events.
    Full,
    /// Quiet tripwires on unused ports.
    Extension,
}

pub use honeybee_process::logging::LogFormat;

/// TLS towards the core.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// TLS 1.3 on the uplink.
    pub enabled: bool,
    /// PEM file of the CA that signed the core's certificate.
    pub ca: Option<PathBuf>,
    /// Name the core's certificate must carry (SNI); the host of `core` when unset.
    pub server_name: Option<String>,
    /// PEM client certificate, for a core that requires one.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
}

/// Bounds of the event spool (docs/protocol.md §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Most unacknowledged events held in memory for sending.
    pub memory_events: usize,
    /// Most bytes of unacknowledged events on disk; beyond it the oldest
    /// are dropped, counted and reported as a NodeEvent Alarm.
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            memory_events: 1024,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Full mode: the pot supervisor and its event socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FullConfig {
    /// The pot catalogue.
    pub potstore: PathBuf,
    /// Loopback port pots send their events to.
    pub event_port: u16,
    /// Most lines per second one event-socket connection may send; a faster
    /// sender is slowed down (its socket is read less often), never dropped.
    pub event_rate: u32,
    /// The dedicated user pots run as. Unset: `honeybee-pot` when the
    /// agent is root (`nobody`, with a warning, if that user does not
    /// exist), and no pots at all when it is not root, since they would run
    /// as the agent's own user. Set: that user, which must exist; a non-root
    /// agent needs CAP_SETUID/CAP_SETGID to switch to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pot_user: Option<String>,
    /// URL prefixes `InstallPot` may clone pots from (`scheme://host/path`,
    /// optionally `#COMMIT` to pin one commit); empty, the default, turns
    /// git installs off. See [`crate::git_allow`].
    pub git_allow: Vec<String>,
    /// Seconds between SIGTERM and SIGKILL when a pot stops.
    pub stop_grace_secs: u64,
}

impl Default for FullConfig {
    fn default() -> Self {
        FullConfig {
            potstore: PathBuf::from("/usr/share/honeybee/potstore"),
            event_port: 9100,
            event_rate: 50_000,
            pot_user: None,
            git_allow: Vec::new(),
            stop_grace_secs: 5,
        }
    }
}

/// Everything the agent runs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `full` or `extension`.
    pub mode: Mode,
    /// The core's node port, `HOST:PORT`.
    pub core: String,
    /// Node id, TOTP key, event spool, installed pots.
    pub state_dir: PathBuf,
    /// The name the core shows.
    pub name: String,
    /// Presented at first registration when the core requires one. Prefer
    /// `enrollment_token_file` or `HONEYBEE_ENROLLMENT_TOKEN`: as a flag it
    /// is readable by every local user in /proc/PID/cmdline.
    pub enrollment_token: Option<String>,
    /// A file holding the enrollment token (its first line; mode 0600 or
    /// 0640: a file others can read is refused).
    pub enrollment_token_file: Option<PathBuf>,
    /// Whether `enrollment_token` came from the command line.
    #[serde(skip)]
    pub enrollment_token_from_flag: bool,
    /// Seconds between heartbeats.
    pub heartbeat_interval: u64,
    /// `text` or `json`, on stderr.
    pub log_format: LogFormat,
    /// TLS towards the core.
    pub tls: Tls,
    /// Spool bounds.
    pub spool: SpoolConfig,
    /// Full mode.
    pub full: FullConfig,
    /// Extension mode.
    pub extension: ExtensionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Full,
            core: "127.0.0.1:9001".into(),
            state_dir: default_state_dir(),
            name: default_name(),
            enrollment_token: None,
            enrollment_token_file: None,
            enrollment_token_from_flag: false,
            heartbeat_interval: 30,
            log_format: LogFormat::Text,
            tls: Tls::default(),
            spool: SpoolConfig::default(),
            full: FullConfig::default(),
            extension: ExtensionConfig::default(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    crate::platform::default_state_dir()
}

fn default_name() -> String {
    crate::platform::hostname().unwrap_or_else(|| "honeybee-agent".into())
}

/// A setting that cannot be used, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads `path` over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        honeybee_process::toml_file::load(path).map_err(ConfigError)
    }

    /// Parses TOML text over the defaults; errors name the line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        honeybee_process::toml_file::parse(text)
    }

    /// The effective config as TOML.
    ///
    /// The enrollment token is left out (a printed config lands in
    /// terminals and files); a note says it is set.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        let note = match shown.enrollment_token.take() {
            Some(t) if !t.is_empty() => {
                "# enrollment_token is set but not shown: put it in enrollment_token_file (mode 0600)\n"
            }
            _ => "",
        };
        match toml::to_string(&shown) {
            Ok(text) => format!("{note}{text}"),
            Err(e) => format!("# cannot print the config: {e}\n"),
        }
    }

    /// Sets one setting from a command-line flag (`--event-port` → `full.event_port`).
    pub fn set_flag(&mut self, flag: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |what: &str| ConfigError(format!("{flag} {value:?}: {what}"));
        let path = || Some(PathBuf::from(value));
        match flag {
            "--core" => self.core = value.into(),
            "--state-dir" => self.state_dir = value.into(),
            "--name" => self.name = value.into(),
            "--enrollment-token" => {
                self.enrollment_token = Some(value.into());
                self.enrollment_token_from_flag = true;
            }
            "--enrollment-token-file" => self.enrollment_token_file = path(),
            "--ca" => self.tls.ca = path(),
            "--server-name" => self.tls.server_name = Some(value.into()),
            "--client-cert" => self.tls.client_cert = path(),
            "--client-key" => self.tls.client_key = path(),
            "--heartbeat-interval" => {
                self.heartbeat_interval = value.parse().map_err(|_| bad("not a number"))?
            }
            "--log-format" => {
                self.log_format = match value {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(bad("expected text or json")),
                }
            }
            "--potstore" => self.full.potstore = value.into(),
            // Repeatable: each flag adds a prefix to the config file's list.
            "--git-allow" => self.full.git_allow.push(value.into()),
            "--ports" => self.extension.ports = value.into(),
            "--udp-ports" => self.extension.udp_ports = value.into(),
            "--bind" => {
                self.extension.bind = value.split(',').map(|a| a.trim().to_string()).collect()
            }
            "--profile" => self.extension.profile = value.into(),
            "--event-port" => {
                self.full.event_port = value.parse().map_err(|_| bad("not a port"))?
            }
            _ => return Err(ConfigError(format!("unknown option {flag}"))),
        }
        Ok(())
    }

    /// Refuses settings that cannot work, saying which and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if core_host_port(&self.core).is_none() {
            return bad("core", "expected HOST:PORT, e.g. 127.0.0.1:9001");
        }
        if self.name.trim().is_empty() || self.name.len() > 255 {
            return bad("name", "1 to 255 characters");
        }
        if !(1..=3600).contains(&self.heartbeat_interval) {
            return bad("heartbeat_interval", "1 to 3600 seconds");
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return bad("tls.client_cert", "client_cert and client_key go together");
        }
        if self.spool.memory_events == 0 || self.spool.memory_events > 1_000_000 {
            return bad("spool.memory_events", "1 to 1000000");
        }
        if self.spool.max_bytes < 4096 {
            return bad("spool.max_bytes", "at least 4096");
        }
        if self.full.event_port == 0 {
            return bad("full.event_port", "1 to 65535");
        }
        if self.full.event_rate == 0 {
            return bad("full.event_rate", "at least 1 line per second");
        }
        if self
            .full
            .pot_user
            .as_deref()
            .is_some_and(|u| u.is_empty() || u == "root" || u.contains([':', '\n', '\0']))
        {
            return bad("full.pot_user", "a user name other than root");
        }
        crate::git_allow::GitAllow::new(&self.full.git_allow).map_err(|e| ConfigError(e.0))?;
        self.extension.settings().map_err(ConfigError)?;
        Ok(())
    }
}

/// The environment variable an enrollment token may come from.
pub const TOKEN_ENV: &str = "HONEYBEE_ENROLLMENT_TOKEN";
/// The longest token file read.
const MAX_TOKEN_FILE: u64 = 4096;

impl Config {
    /// Settles `enrollment_token` from, first to last: `--enrollment-token`,
    /// `--enrollment-token-file` (or the config's `enrollment_token_file`),
    /// `env_token` (the value of [`TOKEN_ENV`]), the config's
    /// `enrollment_token`. Returns the warnings to log (never the token).
    pub fn resolve_enrollment_token(
        &mut self,
        env_token: Option<String>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if self.enrollment_token_from_flag {
            warnings.push(format!(
                "--enrollment-token is readable by every local user in /proc/{}/cmdline; \
                 use --enrollment-token-file or {TOKEN_ENV} instead",
                std::process::id()
            ));
            return Ok(warnings);
        }
        if let Some(path) = self.enrollment_token_file.clone() {
            let (token, warning) = read_token_file(&path)?;
            warnings.extend(warning);
            self.enrollment_token = Some(token);
            return Ok(warnings);
        }
        if let Some(token) = env_token.filter(|t| !t.trim().is_empty()) {
            self.enrollment_token = Some(token.trim().to_string());
        }
        Ok(warnings)
    }
}

/// The token in `path` (its first line, trimmed) and a warning if the
/// file's group may read it; refused if others may read it or it is empty.
fn read_token_file(path: &Path) -> Result<(String, Option<String>), ConfigError> {
    use std::io::Read;
    let bad = |why: String| ConfigError(format!("enrollment token file {}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    let warning = crate::platform::check_secret_access(&meta)
        .map_err(bad)?
        .map(|w| format!("enrollment token file {}: {w}", path.display()));
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(bad("empty; its first line is the token".into()));
    }
    Ok((token.to_string(), warning))
}

/// `HOST:PORT` split; the host may be a name, an IPv4 or a bracketed IPv6.
pub fn core_host_port(core: &str) -> Option<(String, u16)> {
    let (host, port) = core.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configs_parse_and_validate() {
        for (name, text) in [
            (
                "agent-full.toml",
                include_str!("../../configs/agent-full.toml"),
            ),
            (
                "agent-extension.toml",
                include_str!("../../configs/agent-extension.toml"),
            ),
            (
                "agent-windows.toml",
                include_str!("../../configs/agent-windows.toml"),
            ),
        ] {
            let c = Config::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_windows_config_is_the_workstation_profile() {
        let c = Config::from_toml(include_str!("../../configs/agent-windows.toml")).unwrap();
        assert_eq!(c.mode, Mode::Extension);
        assert_eq!(c.extension.profile, "windows-workstation");
        let ports = honeybee_extension::ports::parse_ports(&c.extension.ports).unwrap();
        for p in [21, 22, 23, 445, 1433, 3306, 3389, 5900, 6379, 8080, 9200] {
            assert!(ports.contains(&p), "{p} watched");
        }
        // Always held by Windows: listing them would only add skips.
        for p in [135, 139] {
            assert!(!ports.contains(&p), "{p} not listed");
        }
        // The service decides its state dir (%ProgramData%), not the file.
        assert_eq!(c.state_dir, crate::platform::default_state_dir());
    }

    #[test]
    fn errors_name_the_line_and_the_setting() {
        let e = Config::from_toml("core = \"a:1\"\nheartbeat_interval = \"x\"\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = Config::from_toml("no_such_key = 1\n").unwrap_err();
        assert!(e.contains("no_such_key"), "{e}");
        let c = Config {
            core: "nohost".into(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().0.starts_with("core:"));
    }

    #[test]
    fn the_enrollment_token_comes_from_flag_file_env_or_config_in_that_order() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("hb-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\nignored\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = || Some("from-env".to_string());

        let mut c = Config::from_toml("enrollment_token = \"from-config\"\n").unwrap();
        assert!(c.resolve_enrollment_token(None).unwrap().is_empty());
        assert_eq!(c.enrollment_token.as_deref(), Some("from-config"));
        assert!(c.resolve_enrollment_token(env()).unwrap().is_empty());
        assert_eq!(c.enrollment_token.as_deref(), Some("from-env"));

        c.set_flag("--enrollment-token-file", file.to_str().unwrap())
            .unwrap();
        assert!(c.resolve_enrollment_token(env()).unwrap().is_empty());
        assert_eq!(c.enrollment_token.as_deref(), Some("from-file"));

        c.set_flag("--enrollment-token", "from-flag").unwrap();
        let w = c.resolve_enrollment_token(env()).unwrap();
        assert_eq!(c.enrollment_token.as_deref(), Some("from-flag"));
        assert!(w.len() == 1 && w[0].contains("cmdline"), "{w:?}");
        assert!(!w[0].contains("from-flag"), "the warning holds the token");

        let mut c = Config::default();
        c.set_flag("--enrollment-token-file", file.to_str().unwrap())
            .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let w = c.resolve_enrollment_token(None).unwrap();
        assert!(w.len() == 1 && w[0].contains("group"), "{w:?}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = c.resolve_enrollment_token(None).unwrap_err().0;
        assert!(e.contains("every local user") && e.contains("644"), "{e}");
        std::fs::write(&file, "\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(c
            .resolve_enrollment_token(None)
            .unwrap_err()
            .0
            .contains("empty"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flags_override_and_print_config_round_trips() {
        let mut c = Config::from_toml("[full]\nevent_port = 9200\n").unwrap();
        c.set_flag("--event-port", "9300").unwrap();
        c.set_flag("--core", "[::1]:9001").unwrap();
        assert_eq!(c.full.event_port, 9300);
        assert_eq!(core_host_port(&c.core), Some(("::1".into(), 9001)));
        assert!(c.set_flag("--event-port", "x").is_err());
        c.set_flag("--git-allow", "https://git.example.org/pots/")
            .unwrap();
        c.set_flag("--git-allow", "file:///srv/pots/").unwrap();
        assert_eq!(
            c.full.git_allow,
            ["https://git.example.org/pots/", "file:///srv/pots/"]
        );
        c.validate().unwrap();
        c.set_flag("--git-allow", "https://git.example.org.evil")
            .unwrap();
        c.validate().unwrap();
        c.set_flag("--git-allow", "git.example.org:pots").unwrap();
        assert!(c.validate().unwrap_err().0.contains("full.git_allow"));
        c.full.git_allow.pop();
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }
}
