//! Command-line flags. Flags override the config file, which overrides the
//! embedded defaults.

use std::path::PathBuf;

use crate::config::{Config, ConfigError, Enrollment};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the server with this config.
    Run(Box<Config>),
    /// Print the effective config as TOML.
    PrintConfig(Box<Config>),
    /// Print the version.
    Version,
    /// Print the help.
    Help,
}

/// The `--help` text.
pub const HELP: &str = "\
honeybee-core — the HoneyBee server: nodes on 9001, REST API on 9002, live stream on 9003

USAGE:
    honeybee-core [OPTIONS]
    honeybee-core --print-config | --version | --help

OPTIONS (each overrides the config file, which overrides the defaults):
    --config FILE               TOML config file (see configs/core.toml)
    --data-dir DIR              database and generated API token [./honeybee-data]
    --bind ADDR                 address for all ports [127.0.0.1]
    --node-port N               Protocol v2 nodes [9001]
    --api-port N                REST API, /health, /metrics [9002]
    --stream-port N             WebSocket and module stream [9003]
    --trusted-proxy CIDR        a load balancer whose connections start with a PROXY
                                protocol header naming the client (repeatable; replaces
                                trusted_proxies of the file) [none]
    --enrollment POLICY         open | token | approve [open]
    --enrollment-token-file F   file whose first line is the token nodes must present
                                with --enrollment token (or HONEYBEE_ENROLLMENT_TOKEN)
    --api-token-file F          file whose first line is the API bearer token (or
                                HONEYBEE_API_TOKEN) [generated into DATA_DIR/api-token]
    --enrollment-token T, --api-token T
                                the same on the command line: visible to every local
                                user in /proc; a warning is logged
    --tls-cert PEM --tls-key PEM  TLS 1.3 on the node port
    --client-ca PEM             require node client certificates signed by this CA
    --heartbeat-interval SECS   expected node heartbeat; 3 missed = Unknown [30]
    --postgres URL              keep state in PostgreSQL, shared by several cores:
                                postgres://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=CA.pem
                                (or HONEYBEE_POSTGRES, which keeps a password out of ps)
                                [SQLite in DATA_DIR]
    --geoip FILE                a MaxMind-format country or city database (GeoLite2-City,
                                GeoLite2-Country, DB-IP Lite): each stored event gets the
                                country and city of its source [none]
    --asn FILE                  a MaxMind-format ASN database (GeoLite2-ASN, DB-IP ASN Lite):
                                each stored event gets its source's AS number and name [none]
    --core-name NAME            this core in logs, metrics and the fleet view [HOST:NODE_PORT]
    --print-config              print the effective config as TOML and exit
    --version                   print the version and exit
    --help                      print this help and exit

ENVIRONMENT:
    HONEYBEE_LOG                error | warn | info | debug | trace [info]
    HONEYBEE_API_TOKEN          the API token (over the config file, under flags)
    HONEYBEE_ENROLLMENT_TOKEN   the enrollment token (likewise)
    HONEYBEE_POSTGRES           the PostgreSQL URL (likewise)

SIGNALS:
    SIGTERM, SIGINT             stop accepting, finish writes, exit 0
    SIGHUP                      read the --geoip and --asn files again (they are also
                                read again within 10 s of a change); a file that cannot
                                be read then is logged and the database kept
";

/// Warnings about how the arguments pass secrets.
pub fn secret_flag_warnings(args: &[String]) -> Vec<String> {
    let mut warnings: Vec<String> = ["--api-token", "--enrollment-token"]
        .into_iter()
        .filter(|flag| {
            args.iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        })
        .map(|flag| {
            format!(
                "{flag} puts a secret on the command line, where every local user can read it \
                 (/proc/PID/cmdline); use {flag}-file or HONEYBEE_{}",
                flag.trim_start_matches("--")
                    .replace('-', "_")
                    .to_uppercase()
            )
        })
        .collect();
    let postgres_values = args
        .iter()
        .zip(args.iter().skip(1))
        .filter(|(flag, _)| *flag == "--postgres")
        .map(|(_, v)| v.as_str())
        .chain(args.iter().filter_map(|a| a.strip_prefix("--postgres=")));
    if postgres_values
        .into_iter()
        .any(|v| crate::store::postgres::url::redact(v) != v)
    {
        warnings.push(
            "--postgres carries a password on the command line, where every local user can \
             read it (/proc/PID/cmdline); use HONEYBEE_POSTGRES or a password-less URL"
                .into(),
        );
    }
    warnings
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Action, ConfigError> {
    let mut config_file: Option<PathBuf> = None;
    let mut sets: Vec<(String, String)> = Vec::new();
    let mut print = false;
    let mut it = honeybee_process::flags::Args::new(args);
    while let Some((flag, inline)) = it.next() {
        match flag {
            "--help" | "-h" => return Ok(Action::Help),
            "--version" | "-V" => return Ok(Action::Version),
            "--print-config" => print = true,
            "--config"
            | "--data-dir"
            | "--bind"
            | "--node-port"
            | "--api-port"
            | "--stream-port"
            | "--trusted-proxy"
            | "--enrollment"
            | "--enrollment-token"
            | "--api-token"
            | "--enrollment-token-file"
            | "--api-token-file"
            | "--tls-cert"
            | "--tls-key"
            | "--client-ca"
            | "--heartbeat-interval"
            | "--postgres"
            | "--geoip"
            | "--asn"
            | "--core-name" => {
                let value = it.value(flag, inline).map_err(ConfigError)?;
                if flag == "--config" {
                    config_file = Some(PathBuf::from(value));
                } else {
                    sets.push((flag.to_string(), value));
                }
            }
            other => {
                return Err(ConfigError(format!(
                    "unknown argument `{other}` (see --help)"
                )))
            }
        }
    }
    let mut config = match &config_file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    // Repeated flags make one list, which replaces the file's.
    if sets.iter().any(|(flag, _)| flag == "--trusted-proxy") {
        config.trusted_proxies.clear();
    }
    // Precedence: flags, then the environment, then the config file.
    for (var, field) in crate::config::TOKEN_ENV {
        if let Some(value) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            config.set_secret(field, value.trim().to_string());
        }
    }
    if let Some(url) = std::env::var(crate::config::POSTGRES_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        config.store.postgres = url.trim().to_string();
    }
    for (flag, value) in sets {
        apply(&mut config, &flag, &value)?;
    }
    config.validate()?;
    Ok(if print {
        Action::PrintConfig(Box::new(config))
    } else {
        Action::Run(Box::new(config))
    })
}

fn apply(c: &mut Config, flag: &str, value: &str) -> Result<(), ConfigError> {
    let number = |v: &str| -> Result<u64, ConfigError> {
        v.parse()
            .map_err(|_| ConfigError(format!("{flag}: `{v}` is not a number")))
    };
    let port = |v: &str| -> Result<u16, ConfigError> {
        v.parse()
            .map_err(|_| ConfigError(format!("{flag}: `{v}` is not a port (0-65535)")))
    };
    match flag {
        "--data-dir" => c.data_dir = PathBuf::from(value),
        "--bind" => c.bind = value.to_string(),
        "--node-port" => c.node_port = port(value)?,
        "--api-port" => c.api_port = port(value)?,
        "--stream-port" => c.stream_port = port(value)?,
        "--trusted-proxy" => {
            crate::trusted_proxies::Cidr::parse(value)
                .map_err(|e| ConfigError(format!("--trusted-proxy: {e}")))?;
            c.trusted_proxies.push(value.to_string());
        }
        "--enrollment" => {
            c.enrollment = Enrollment::parse(value).ok_or_else(|| {
                ConfigError(format!(
                    "--enrollment: `{value}` is not one of open, token, approve"
                ))
            })?
        }
        // A token given as a value is the most explicit: it beats a file.
        "--enrollment-token" => {
            c.enrollment_token = value.to_string();
            c.enrollment_token_file.clear();
        }
        "--api-token" => {
            c.api_token = value.to_string();
            c.api_token_file.clear();
        }
        "--enrollment-token-file" => c.enrollment_token_file = value.to_string(),
        "--api-token-file" => c.api_token_file = value.to_string(),
        "--tls-cert" => c.tls.cert = value.to_string(),
        "--tls-key" => c.tls.key = value.to_string(),
        "--client-ca" => c.tls.client_ca = value.to_string(),
        "--heartbeat-interval" => c.heartbeat_interval = number(value)?,
        "--postgres" => c.store.postgres = value.to_string(),
        "--core-name" => c.core_name = value.to_string(),
        "--geoip" => c.enrichment.geoip = value.to_string(),
        "--asn" => c.enrichment.asn = value.to_string(),
        _ => return Err(ConfigError(format!("unknown argument `{flag}`"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_override_defaults() {
        let Action::Run(c) = parse(&args(
            "--node-port 7001 --api-port=7002 --enrollment approve --heartbeat-interval 5",
        ))
        .unwrap() else {
            panic!("expected run")
        };
        assert_eq!(
            (c.node_port, c.api_port, c.heartbeat_interval),
            (7001, 7002, 5)
        );
        assert_eq!(c.enrollment, Enrollment::Approve);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("hb-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("core.toml");
        std::fs::write(&file, "node_port = 6001\napi_port = 6002\n").unwrap();
        let a = args(&format!("--config {} --node-port 5001", file.display()));
        let Action::PrintConfig(c) = parse(&[a, args("--print-config")].concat()).unwrap() else {
            panic!("expected print")
        };
        assert_eq!((c.node_port, c.api_port), (5001, 6002));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_input_is_named() {
        let e = parse(&args("--node-port 99999")).unwrap_err().0;
        assert!(e.contains("--node-port") && e.contains("99999"), "{e}");
        let e = parse(&args("--frobnicate")).unwrap_err().0;
        assert!(e.contains("--frobnicate"), "{e}");
        let e = parse(&args("--enrollment maybe")).unwrap_err().0;
        assert!(e.contains("maybe"), "{e}");
        let e = parse(&args("--api-token")).unwrap_err().0;
        assert!(e.contains("needs a value"), "{e}");
        let e = parse(&args("--enrollment token")).unwrap_err().0;
        assert!(e.contains("enrollment_token"), "{e}");
        let e = parse(&args(
            "--trusted-proxy 10.0.0.0/8 --trusted-proxy 10.1.0.0/33",
        ))
        .unwrap_err()
        .0;
        assert!(e.starts_with("--trusted-proxy: `10.1.0.0/33`"), "{e}");
    }

    #[test]
    fn trusted_proxy_flags_replace_the_files_list() {
        let dir = std::env::temp_dir().join(format!("hb-cli-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("core.toml");
        std::fs::write(&file, "trusted_proxies = [\"192.0.2.0/24\"]\n").unwrap();
        let from_file = args(&format!("--config {} --print-config", file.display()));
        let Action::PrintConfig(c) = parse(&from_file).unwrap() else {
            panic!("expected print")
        };
        assert_eq!(c.trusted_proxies, ["192.0.2.0/24"]);
        let flags = [
            from_file,
            args("--trusted-proxy 127.0.0.2/32 --trusted-proxy=::1"),
        ]
        .concat();
        let Action::PrintConfig(c) = parse(&flags).unwrap() else {
            panic!("expected print")
        };
        assert_eq!(c.trusted_proxies, ["127.0.0.2/32", "::1"]);
        assert!(c.to_toml().contains("trusted_proxies = ["));
        std::fs::remove_dir_all(&dir).ok();
    }
}
