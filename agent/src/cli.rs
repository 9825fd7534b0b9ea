//! Command-line flags. Flags override the config file, which overrides the
//! embedded defaults.

use std::path::PathBuf;

use crate::config::{Config, ConfigError, Mode};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the agent with this config.
    Run(Box<Config>),
    /// Print the effective config as TOML.
    PrintConfig(Box<Config>),
    /// Print the version.
    Version,
    /// Print the help.
    Help,
    /// Print the pot catalogue of this potstore directory.
    PotstoreList(PathBuf),
}

/// The `--help` text.
pub const HELP: &str = "\
honeybee-agent — the HoneyBee edge agent

USAGE:
    honeybee-agent full [OPTIONS] [--potstore DIR] [--event-port N]
    honeybee-agent extension [OPTIONS] [--ports LIST] [--udp-ports LIST] [--bind ADDRS] [--profile P]
    honeybee-agent potstore list [--potstore DIR]
    honeybee-agent service install | uninstall | start | stop     (Windows only)
    honeybee-agent --version | --help

MODES:
    full        supervise honeypots from the potstore and forward their events
    extension   quiet tripwires on the ports nobody on this machine uses

OPTIONS (each overrides the config file, which overrides the defaults):
    --config FILE               TOML config (see configs/agent-full.toml)
    --core HOST:PORT            the core's node port [127.0.0.1:9001]
    --state-dir DIR             node id, TOTP key, spool, pots
                                [/var/lib/honeybee as root, else ./honeybee-agent-state]
    --name NAME                 the name the core shows [hostname]
    --enrollment-token-file F   file whose first line is the enrollment token, presented
                                at first registration (mode 0600; world-readable refused)
    --enrollment-token T        the token itself; visible to every local user in
                                /proc/PID/cmdline: prefer the file or the environment
    --tls                       TLS 1.3 towards the core
    --ca PEM                    CA of the core's certificate
    --server-name NAME          name in the core's certificate [host of --core]
    --client-cert PEM --client-key PEM   client certificate for mTLS
    --heartbeat-interval SECS   [30]
    --log-format text|json      log lines on stderr [text]
    --print-config              print the effective config as TOML and exit

FULL MODE:
    --potstore DIR              the pot catalogue [/usr/share/honeybee/potstore]
    --event-port N              loopback port pots send events to [9100]; each connection
                                opens with {\"token\": \"$HONEYBEE_POT_TOKEN\"}, the secret
                                the agent gives each pot start (potstore/README.md)
    --git-allow PREFIX          allow InstallPot git_url under this URL prefix
                                (scheme://host/path[#COMMIT]; repeatable, adds to
                                full.git_allow) [none: git installs are off]

EXTENSION MODE:
    --ports LIST                TCP ports and ranges, e.g. 21-23,80,445,3389,5900-5905
                                [~45 ports scanners probe most]
    --udp-ports LIST            UDP ports [123,161,1900]
    --bind ADDRS                comma-separated listen addresses [0.0.0.0,::]
    --profile P                 the machine imitated: linux-server | windows-workstation |
                                router | nas | printer [linux-server]
    A port something else uses is skipped (and tried again every minute);
    started as root, the agent binds, then becomes extension.user [honeybee].

ENVIRONMENT:
    HONEYBEE_LOG                error | warn | info | debug | trace [info]
    HONEYBEE_ENROLLMENT_TOKEN   the enrollment token, when neither flag gives one
                                (over the config file's enrollment_token)

WINDOWS SERVICE (HoneyBeeAgent, as NT AUTHORITY\\LocalService):
    service install             create %ProgramData%\\HoneyBee (SYSTEM, Administrators and
                                the service only), allow the agent in Windows Firewall,
                                register the service (automatic start); as Administrator
    service uninstall           stop and delete it, remove the firewall rule (config,
                                state and logs stay)
    service start | stop        through the Service Control Manager
    The service reads %ProgramData%\\HoneyBee\\agent.toml (Extension mode), keeps its
    state in ...\\state and logs to ...\\logs\\agent.log (1 MiB, 2 older files kept).

SIGNALS:
    SIGTERM, SIGINT             report Stopped to the core, stop pots, exit 0

FILES:
    STATE_DIR/identity.json     node id and TOTP key (0600)
    STATE_DIR/spool/            events not yet acknowledged by the core
    STATE_DIR/pots/             installed pots and their working dirs
";

const VALUE_FLAGS: [&str; 19] = [
    "--core",
    "--state-dir",
    "--name",
    "--enrollment-token",
    "--enrollment-token-file",
    "--ca",
    "--server-name",
    "--client-cert",
    "--client-key",
    "--heartbeat-interval",
    "--log-format",
    "--potstore",
    "--event-port",
    "--git-allow",
    "--config",
    "--ports",
    "--udp-ports",
    "--bind",
    "--profile",
];
const FULL_ONLY: [&str; 3] = ["--potstore", "--event-port", "--git-allow"];
const EXTENSION_ONLY: [&str; 4] = ["--ports", "--udp-ports", "--bind", "--profile"];

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Action, ConfigError> {
    if args.first().map(String::as_str) == Some("potstore") {
        return potstore_command(args.get(1..).unwrap_or_default());
    }
    let mut mode: Option<Mode> = None;
    let mut config_file: Option<PathBuf> = None;
    let mut sets: Vec<(String, String)> = Vec::new();
    let mut tls = false;
    let mut print = false;
    let mut it = honeybee_process::flags::Args::new(args);
    while let Some((flag, inline)) = it.next() {
        match flag {
            "--help" | "-h" => return Ok(Action::Help),
            "--version" | "-V" => return Ok(Action::Version),
            "--print-config" => print = true,
            "--tls" => tls = true,
            "full" if mode.is_none() => mode = Some(Mode::Full),
            "extension" if mode.is_none() => mode = Some(Mode::Extension),
            f if VALUE_FLAGS.contains(&f) => {
                let value = it.value(f, inline).map_err(ConfigError)?;
                if f == "--config" {
                    config_file = Some(PathBuf::from(value));
                } else {
                    sets.push((f.to_string(), value));
                }
            }
            other => {
                return Err(ConfigError(format!(
                    "unknown argument {other:?} (see --help)"
                )))
            }
        }
    }
    let mut config = match &config_file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    match mode {
        Some(m) => config.mode = m,
        None if config_file.is_none() => {
            return Err(ConfigError(
                "say which mode: honeybee-agent full | extension (see --help)".into(),
            ))
        }
        None => {}
    }
    for (flag, value) in &sets {
        if config.mode == Mode::Extension && FULL_ONLY.contains(&flag.as_str()) {
            return Err(ConfigError(format!("{flag} is for full mode")));
        }
        if config.mode == Mode::Full && EXTENSION_ONLY.contains(&flag.as_str()) {
            return Err(ConfigError(format!("{flag} is for extension mode")));
        }
        config.set_flag(flag, value)?;
    }
    if tls {
        config.tls.enabled = true;
    }
    config.validate()?;
    Ok(if print {
        Action::PrintConfig(Box::new(config))
    } else {
        Action::Run(Box::new(config))
    })
}

/// `potstore list [--potstore DIR]`.
fn potstore_command(args: &[String]) -> Result<Action, ConfigError> {
    let mut dir = crate::config::FullConfig::default().potstore;
    let mut it = honeybee_process::flags::Args::new(args);
    match it.next().map(|(a, _)| a) {
        Some("list") => {}
        _ => {
            return Err(ConfigError(
                "usage: honeybee-agent potstore list [--potstore DIR]".into(),
            ))
        }
    }
    while let Some((a, inline)) = it.next() {
        match a {
            "--potstore" => dir = PathBuf::from(it.value(a, inline).map_err(ConfigError)?),
            _ => return Err(ConfigError(format!("unknown argument {a:?} (see --help)"))),
        }
    }
    Ok(Action::PotstoreList(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn mode_and_flags() {
        let Ok(Action::Run(c)) = parse(&args("full --core 10.0.0.1:9001 --tls --event-port=9200"))
        else {
            panic!()
        };
        assert_eq!(c.mode, Mode::Full);
        assert_eq!(c.core, "10.0.0.1:9001");
        assert!(c.tls.enabled);
        assert_eq!(c.full.event_port, 9200);
        assert!(matches!(
            parse(&args("extension --print-config")),
            Ok(Action::PrintConfig(c)) if c.mode == Mode::Extension
        ));
    }

    #[test]
    fn refusals_say_why() {
        for (line, why) in [
            ("", "mode"),
            ("full --bogus", "unknown argument"),
            ("full --core", "needs a value"),
            ("extension --event-port 9100", "full mode"),
            ("full --heartbeat-interval 0", "heartbeat_interval"),
            ("full --client-cert a.pem", "client_key"),
        ] {
            let e = parse(&args(line)).unwrap_err();
            assert!(e.0.contains(why), "{line:?}: {e}");
        }
    }
}
