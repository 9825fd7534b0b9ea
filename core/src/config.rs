//! The core's settings: embedded defaults, the TOML file, and flag overrides.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::modules::ModuleConfig;

/// Who may register for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enrollment {
    /// Anyone who can reach port 9001.
    Open,
    /// Nodes that present `enrollment_token`.
    Token,
    /// Nodes an operator approved through the API.
    Approve,
}

impl Enrollment {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Enrollment::Open => "open",
            Enrollment::Token => "token",
            Enrollment::Approve => "approve",
        }
    }

    /// Parses `open`, `token` or `approve`.
    pub fn parse(s: &str) -> Option<Enrollment> {
        match s {
            "open" => Some(Enrollment::Open),
            "token" => Some(Enrollment::Token),
            "approve" => Some(Enrollment::Approve),
            _ => None,
        }
    }
}

/// TLS for port 9001.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain (PEM). TLS is on when this and `key` are set.
    pub cert: String,
    /// Server private key (PEM).
    pub key: String,
    /// CA (PEM) that signs node client certificates; set to require mTLS.
    pub client_ca: String,
}

impl TlsConfig {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty()
    }
}

/// Where the core keeps nodes and events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user@host:port/db?sslmode=…` shared by several cores;
    /// empty: SQLite in `data_dir`. Also `HONEYBEE_POSTGRES`, which keeps
    /// a password off the command line.
    pub postgres: String,
}

/// Enrichment of stored events from MaxMind-format databases (`[enrichment]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichmentConfig {
    /// A country or city database (GeoLite2-City, GeoLite2-Country,
    /// DB-IP City/Country Lite); empty: none.
    pub geoip: String,
    /// An ASN database (GeoLite2-ASN, DB-IP ASN Lite); empty: none.
    pub asn: String,
}

impl EnrichmentConfig {
    /// The country or city database, when one is named.
    pub fn geoip_path(&self) -> Option<&Path> {
        (!self.geoip.trim().is_empty()).then(|| Path::new(self.geoip.trim()))
    }

    /// The ASN database, when one is named.
    pub fn asn_path(&self) -> Option<&Path> {
        (!self.asn.trim().is_empty()).then(|| Path::new(self.asn.trim()))
    }
}

/// The environment variable that names the PostgreSQL server.
pub const POSTGRES_ENV: &str = "HONEYBEE_POSTGRES";

/// Every setting of the core. See `configs/core.toml` for the commented file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address all three ports bind to.
    pub bind: String,
    /// Nodes (Protocol v2).
    pub node_port: u16,
    /// REST API, metrics, dashboard.
    pub api_port: u16,
    /// Live stream and modules.
    pub stream_port: u16,
    /// Where the database and the generated API token live.
    pub data_dir: PathBuf,
    /// First-registration policy.
    pub enrollment: Enrollment,
    /// Token for `enrollment = "token"`.
    pub enrollment_token: String,
    /// Bearer token for the API; generated when empty.
    pub api_token: String,
    /// File holding `enrollment_token` (first line); read at start.
    pub enrollment_token_file: String,
    /// File holding `api_token` (first line); read at start.
    pub api_token_file: String,
    /// Seconds between node heartbeats; 3 missed make a node Unknown.
    pub heartbeat_interval: u64,
    /// Seconds a new connection has to send `NodeRegistration`.
    pub registration_timeout: u64,
    /// Longest accepted line.
    pub max_message_bytes: usize,
    /// Most nodes the core will know.
    pub max_nodes: usize,
    /// Most unregistered connections at once.
    pub max_pending_connections: usize,
    /// Most unregistered connections from one source address.
    pub max_pending_per_source: usize,
    /// New connections per second per source address (burst: twice this).
    pub connect_rate_per_source: u32,
    /// Load balancers (CIDR blocks or addresses) whose connections start
    /// with a PROXY protocol header naming the real client; empty: no
    /// header is ever read. See [`crate::trusted_proxies`].
    pub trusted_proxies: Vec<String>,
    /// Failed TOTP checks that lock a node id ...
    pub lockout_failures: u32,
    /// ... within this many seconds.
    pub lockout_window: u64,
    /// First lockout in seconds; doubles with each lockout.
    pub lockout_base: u64,
    /// Longest lockout in seconds.
    pub lockout_max: u64,
    /// Days attack events are kept; 0 keeps them forever.
    pub retention_days: u64,
    /// Most attack events kept (the oldest go first); 0 is no cap.
    pub max_events: u64,
    /// Seconds between two runs of retention (`retention_days`,
    /// `max_events`, `max_database_mb`) while the core runs; it also runs
    /// at start.
    pub retention_interval: u64,
    /// Most megabytes the database may use (the oldest events go first);
    /// 0 is no cap. Counted in pages in use, checked with retention.
    pub max_database_mb: u64,
    /// Whether `POST /api/v1/modules` may add modules (programs the core
    /// runs) at run time. Off: the API token alone must not be enough to run
    /// a program on the core's machine.
    pub modules_api_add: bool,
    /// This core's name in logs, metrics and the fleet view; empty: the host
    /// name and the node port (`host:9001`).
    pub core_name: String,
    /// TLS on port 9001.
    pub tls: TlsConfig,
    /// Where state is kept (`[store]`): the embedded SQLite unless a
    /// PostgreSQL server is named.
    pub store: StoreConfig,
    /// Country, city and ASN of each event's source (`[enrichment]`).
    pub enrichment: EnrichmentConfig,
    /// Extension modules the core runs (`[[modules]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            node_port: 9001,
            api_port: 9002,
            stream_port: 9003,
            data_dir: PathBuf::from("./honeybee-data"),
            enrollment: Enrollment::Open,
            enrollment_token: String::new(),
            api_token: String::new(),
            enrollment_token_file: String::new(),
            api_token_file: String::new(),
            heartbeat_interval: 30,
            registration_timeout: 10,
            max_message_bytes: honeybee_proto::DEFAULT_MAX_MESSAGE_BYTES,
            max_nodes: 100_000,
            max_pending_connections: 1024,
            max_pending_per_source: 32,
            connect_rate_per_source: 200,
            trusted_proxies: Vec::new(),
            lockout_failures: 5,
            lockout_window: 300,
            lockout_base: 60,
            lockout_max: 3600,
            retention_days: 90,
            max_events: 10_000_000,
            retention_interval: 60,
            max_database_mb: 4096,
            modules_api_add: false,
            core_name: String::new(),
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            enrichment: EnrichmentConfig::default(),
            modules: Vec::new(),
        }
    }
}

// The tokens are secrets: never in logs.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut shown = self.clone();
        for value in shown.modules.iter_mut().flat_map(|m| m.env.values_mut()) {
            *value = "<redacted>".into();
        }
        f.write_str(&shown.to_toml())
    }
}

/// Environment variables that carry the tokens, so that they need not sit
/// on a command line (readable by every local user in /proc/PID/cmdline).
pub const TOKEN_ENV: [(&str, &str); 2] = [
    ("HONEYBEE_API_TOKEN", "api_token"),
    ("HONEYBEE_ENROLLMENT_TOKEN", "enrollment_token"),
];

impl Config {
    /// Sets `api_token` or `enrollment_token` by name.
    pub fn set_secret(&mut self, field: &str, value: String) {
        match field {
            "api_token" => self.api_token = value,
            _ => self.enrollment_token = value,
        }
    }

    /// Reads the `*_token_file` settings into the tokens. Returns warnings
    /// to log (files other users may read).
    pub fn read_secret_files(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for (file, field) in [
            (self.api_token_file.clone(), "api_token"),
            (self.enrollment_token_file.clone(), "enrollment_token"),
        ] {
            if file.is_empty() {
                continue;
            }
            let (token, warning) = read_secret_file(Path::new(&file))?;
            warnings.extend(warning);
            self.set_secret(field, token);
        }
        Ok(warnings)
    }
}

/// The first line of a secret file, and a warning when other users may
/// read it.
pub fn read_secret_file(path: &Path) -> Result<(String, Option<String>), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("reading secret file {}: {e}", path.display())))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(ConfigError(format!(
            "secret file {} is empty",
            path.display()
        )));
    }
    let warning = std::fs::metadata(path)
        .ok()
        .filter(|m| m.permissions().mode() & 0o077 != 0)
        .map(|m| {
            format!(
                "secret file {} is readable by other users (mode {:o}); chmod 600 it",
                path.display(),
                m.permissions().mode() & 0o777
            )
        });
    Ok((token, warning))
}

/// A setting that makes no sense, with where it came from.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads a TOML file; keys it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        honeybee_process::toml_file::load(path).map_err(ConfigError)
    }

    /// Parses TOML text; errors name the line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        honeybee_process::toml_file::parse(text)
    }

    /// The settings as TOML, for `--print-config`. Secrets are left out: a
    /// printed config lands in terminals, tickets and files (`--print-config
    /// > core.toml`), and a token printed there would be a token leaked.
    /// The database password shows as `<redacted>`.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store.postgres = crate::store::postgres::url::redact(&self.store.postgres);
        let mut notes = String::new();
        for (name, secret) in [
            ("api_token", &mut shown.api_token),
            ("enrollment_token", &mut shown.enrollment_token),
        ] {
            if !secret.is_empty() {
                secret.clear();
                notes.push_str(&format!(
                    "# {name} is set but not shown: put it in {name}_file (mode 0600)\n"
                ));
            }
        }
        match toml::to_string(&shown) {
            Ok(text) => notes + &text,
            Err(e) => format!("# cannot print config: {e}\n"),
        }
    }

    /// Checks the settings that would otherwise fail later or silently.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.bind.parse::<IpAddr>().is_err() {
            return err(format!("bind: `{}` is not an IP address", self.bind));
        }
        crate::trusted_proxies::TrustedProxies::parse(&self.trusted_proxies)?;
        if self.enrollment == Enrollment::Token
            && self.enrollment_token.is_empty()
            && self.enrollment_token_file.is_empty()
        {
            return err(
                "enrollment = \"token\" needs enrollment_token (or enrollment_token_file, \
                 HONEYBEE_ENROLLMENT_TOKEN)"
                    .into(),
            );
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            return err("tls: cert and key must be given together".into());
        }
        if !self.tls.client_ca.is_empty() && !self.tls.enabled() {
            return err("tls: client_ca needs cert and key".into());
        }
        if self.heartbeat_interval == 0 {
            return err("heartbeat_interval must be at least 1 second".into());
        }
        if !(1..=86_400).contains(&self.retention_interval) {
            return err("retention_interval must be 1 to 86400 seconds".into());
        }
        if self.registration_timeout == 0 {
            return err("registration_timeout must be at least 1 second".into());
        }
        if self.max_message_bytes < 1024 {
            return err("max_message_bytes must be at least 1024".into());
        }
        if self.max_pending_connections == 0 || self.max_pending_per_source == 0 {
            return err(
                "max_pending_connections and max_pending_per_source must be at least 1".into(),
            );
        }
        if self.connect_rate_per_source == 0 {
            return err("connect_rate_per_source must be at least 1".into());
        }
        if self.lockout_failures == 0 || self.lockout_base == 0 {
            return err("lockout_failures and lockout_base must be at least 1".into());
        }
        crate::modules::validate_all(&self.modules).map_err(ConfigError)?;
        if let Some(url) = self.postgres()? {
            // A CA file that cannot be read fails now, not at first connect.
            crate::store::postgres::tls::connector(&url)
                .map_err(|e| ConfigError(format!("store.postgres: {e}")))?;
        }
        if self.core_name.len() > 128 || self.core_name.chars().any(char::is_control) {
            return err("core_name: at most 128 characters, no control characters".into());
        }
        Ok(())
    }

    /// The PostgreSQL server, when one is configured.
    pub fn postgres(&self) -> Result<Option<crate::store::postgres::url::PgUrl>, ConfigError> {
        if self.store.postgres.trim().is_empty() {
            return Ok(None);
        }
        crate::store::postgres::url::PgUrl::parse(self.store.postgres.trim())
            .map(Some)
            .map_err(|e| ConfigError(format!("store.postgres: {e}")))
    }

    /// `core_name`, or the host name and node port when it is empty.
    pub fn effective_core_name(&self) -> String {
        if !self.core_name.is_empty() {
            return self.core_name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "core".into());
        format!("{host}:{}", self.node_port)
    }

    /// Whether the core binds beyond loopback.
    pub fn binds_beyond_loopback(&self) -> bool {
        self.bind
            .parse::<IpAddr>()
            .map(|ip| !ip.is_loopback())
            .unwrap_or(true)
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("honeybee.db")
    }

    /// The generated API token file.
    pub fn api_token_path(&self) -> PathBuf {
        self.data_dir.join("api-token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_matches_the_defaults() {
        let text = include_str!("../../configs/core.toml");
        let parsed = Config::from_toml(text).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn printed_config_reads_back() {
        let c = Config::default();
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }

    /// Found by the `config_core` fuzz campaign: a token set inline is not
    /// printed (a note says where it belongs), so the printed config loads
    /// without it and prints the same, minus the note.
    #[test]
    fn inline_tokens_are_never_printed_and_the_rest_prints_back_the_same() {
        let text = "bind = \"::\"\nenrollment = \"token\"\nenrollment_token = \"x\"\n[store]\n";
        let printed = Config::from_toml(text).unwrap().to_toml();
        assert!(printed.starts_with("# enrollment_token is set but not shown"));
        assert!(!printed.contains("\"x\""), "{printed}");
        let again = Config::from_toml(&printed).unwrap();
        assert!(again.enrollment_token.is_empty());
        let note_end = printed.find('\n').map_or(0, |i| i + 1);
        assert_eq!(again.to_toml(), printed[note_end..]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Config::from_toml("bind = \"127.0.0.1\"\nnode_port = \"x\"\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = Config::from_toml("\n\nnot_a_key = 1\n").unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("not_a_key"), "{e}");
    }

    #[test]
    fn modules_read_back_and_hide_env_values() {
        let text = "bind = \"127.0.0.1\"\n[tls]\ncert = \"\"\n\n[[modules]]\nname = \"csv\"\ncommand = \"python3\"\nargs = [\"m.py\"]\nenv = { SECRET = \"s3cret-env\" }\n";
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.modules.len(), 1);
        assert!(c.modules[0].autostart);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(c.validate().is_ok());
        let e = Config::from_toml("[[modules]]\nname = \"x\"\ncommand = \"y\"\nbogus = 1\n");
        assert!(e.is_err());
        let mut twice = c.clone();
        twice.modules.push(c.modules[0].clone());
        assert!(twice.validate().is_err());
    }

    #[test]
    fn trusted_proxies_are_checked_and_read_back() {
        let c = Config::from_toml("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert!(c.validate().is_ok());
        assert!(
            c.to_toml().contains("trusted_proxies = ["),
            "{}",
            c.to_toml()
        );
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert!(Config::default().to_toml().contains("trusted_proxies = []"));
        let bad = Config::from_toml("trusted_proxies = [\"10.0.0.0/33\"]\n").unwrap();
        let e = bad.validate().unwrap_err().0;
        assert!(e.starts_with("trusted_proxies: `10.0.0.0/33`"), "{e}");
    }

    #[test]
    fn debug_hides_tokens() {
        let c = Config {
            api_token: "s3cret-api".into(),
            enrollment_token: "s3cret-enroll".into(),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn validate_catches_half_tls_and_missing_token() {
        let mut c = Config::default();
        c.tls.cert = "x.pem".into();
        assert!(c.validate().is_err());
        let c = Config {
            enrollment: Enrollment::Token,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }
}
