//! Extension-mode settings, as the agent's `[extension]` config section.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ports::{format_ports, parse_ports, PortList, DEFAULT_TCP, DEFAULT_UDP};
use crate::profile::Profile;
use crate::respond::{check_banner, Banners};
use crate::scan::ScanConfig;

/// `[extension]` in the agent config; every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtensionConfig {
    /// TCP ports and ranges, e.g. `"21-23,80,445"`.
    pub ports: String,
    /// UDP ports and ranges.
    pub udp_ports: String,
    /// Addresses to listen on; `0.0.0.0` and `::` mean every address.
    pub bind: Vec<String>,
    /// Which machine the ports imitate: `linux-server`,
    /// `windows-workstation`, `router`, `nas` or `printer`.
    pub profile: String,
    /// Banner overrides by port: `{ "21" = "ProFTPD 1.3.8 Server", "80" =
    /// "nginx/1.22.1" }` replaces the product the profile shows there (the
    /// FTP/SMTP/POP3/IMAP greeting text, the SSH version line, the HTTP
    /// `Server` header, the MySQL version, the Telnet pre-login line).
    pub banners: BTreeMap<String, String>,
    /// Redis answers `PING`/`INFO` like an open server instead of asking
    /// for a password (`-NOAUTH`).
    pub redis_open: bool,
    /// Most bytes read from one connection.
    pub max_read: usize,
    /// How long a connection may stay silent (before its first bytes, and
    /// between two messages of a dialogue), in ms.
    pub read_timeout_ms: u64,
    /// Distinct ports one source touches within `scan_window_secs` that make
    /// an `extension.portscan`.
    pub scan_ports: u16,
    /// The scan window.
    pub scan_window_secs: u64,
    /// Connections from one source within `flood_window_secs` after which
    /// they are summarised as `extension.flood` instead of one event each.
    pub flood_connections: u32,
    /// The flood window.
    pub flood_window_secs: u64,
    /// How often ports that were in use are tried again, in seconds.
    pub retry_secs: u64,
    /// When started as root: the user to become once the ports are bound
    /// (`nobody` with a warning when it does not exist).
    pub user: String,
}

impl Default for ExtensionConfig {
    fn default() -> Self {
        let scan = ScanConfig::default();
        ExtensionConfig {
            ports: format_ports(DEFAULT_TCP),
            udp_ports: format_ports(DEFAULT_UDP),
            bind: vec!["0.0.0.0".into(), "::".into()],
            profile: "linux-server".into(),
            banners: BTreeMap::new(),
            redis_open: false,
            max_read: MAX_READ,
            read_timeout_ms: 10_000,
            scan_ports: scan.scan_ports,
            scan_window_secs: scan.scan_window.as_secs(),
            flood_connections: scan.flood_connections,
            flood_window_secs: scan.flood_window.as_secs(),
            retry_secs: 60,
            user: "honeybee".into(),
        }
    }
}

/// The settings checked and parsed, ready to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// TCP ports.
    pub tcp: PortList,
    /// UDP ports.
    pub udp: PortList,
    /// Listen addresses.
    pub bind: Vec<IpAddr>,
    /// Which machine the ports imitate.
    pub profile: Profile,
    /// Banner overrides by port.
    pub banners: Banners,
    /// Redis without a password.
    pub redis_open: bool,
    /// Most bytes read per connection.
    pub max_read: usize,
    /// First-bytes timeout.
    pub read_timeout: Duration,
    /// Scan and flood detection.
    pub scan: ScanConfig,
    /// Port retry interval.
    pub retry: Duration,
    /// Where the SSH host key is kept across restarts (the agent puts it
    /// in its state directory); `None`: a new key each run.
    pub ssh_host_key: Option<std::path::PathBuf>,
}

/// The most bytes a connection is read for, whatever the config says.
pub const MAX_READ: usize = 4096;

impl ExtensionConfig {
    /// Checks every value; errors name the setting.
    pub fn settings(&self) -> Result<Settings, String> {
        let tcp = parse_ports(&self.ports).map_err(|e| format!("extension.ports: {e}"))?;
        let udp = parse_ports(&self.udp_ports).map_err(|e| format!("extension.udp_ports: {e}"))?;
        if tcp.is_empty() && udp.is_empty() {
            return Err("extension.ports: no port to listen on".into());
        }
        let mut bind = Vec::new();
        for a in &self.bind {
            bind.push(
                a.parse::<IpAddr>()
                    .map_err(|_| format!("extension.bind: {a:?} is not an IP address"))?,
            );
        }
        if bind.is_empty() {
            return Err("extension.bind: no address".into());
        }
        let profile = self.profile.parse::<Profile>().map_err(|_| {
            format!(
                "extension.profile: {:?}: expected {}",
                self.profile,
                Profile::NAMES
            )
        })?;
        let mut banners = Banners::new();
        for (port, text) in &self.banners {
            let number = port
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("extension.banners: {port:?} is not a port number"))?;
            check_banner(text).map_err(|e| format!("extension.banners.{port}: {e}"))?;
            banners.insert(number, text.clone());
        }
        if !(16..=MAX_READ).contains(&self.max_read) {
            return Err(format!("extension.max_read: 16 to {MAX_READ} bytes"));
        }
        if !(100..=60_000).contains(&self.read_timeout_ms) {
            return Err("extension.read_timeout_ms: 100 to 60000".into());
        }
        if self.scan_ports < 2 || self.scan_window_secs == 0 {
            return Err("extension.scan_ports: at least 2 ports within at least 1 s".into());
        }
        if self.flood_connections < 2 || self.flood_window_secs == 0 {
            return Err(
                "extension.flood_connections: at least 2 connections within at least 1 s".into(),
            );
        }
        if self.retry_secs == 0 {
            return Err("extension.retry_secs: at least 1".into());
        }
        Ok(Settings {
            tcp,
            udp,
            bind,
            profile,
            banners,
            redis_open: self.redis_open,
            max_read: self.max_read,
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            scan: ScanConfig {
                scan_ports: self.scan_ports,
                scan_window: Duration::from_secs(self.scan_window_secs),
                flood_connections: self.flood_connections,
                flood_window: Duration::from_secs(self.flood_window_secs),
            },
            retry: Duration::from_secs(self.retry_secs),
            ssh_host_key: None,
        })
    }
}
