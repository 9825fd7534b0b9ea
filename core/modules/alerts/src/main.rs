//! `honeybee-alerts`: flags, config, then [`honeybee_alerts::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use honeybee_alerts::config;
use honeybee_alerts::run::{self, Setup};
use honeybee_alerts::secret::Secret;

const USAGE: &str = "\
honeybee-alerts — tells people when a HoneyBee tripwire is touched: webhooks, Slack, Teams, syslog, email, ECS files

USAGE:
    honeybee-alerts --config FILE [OPTIONS]
    honeybee-alerts --check-config FILE | --version | --help

OPTIONS:
    --config FILE          the rules and channels (configs/alerts.toml)
    --check-config FILE    check FILE (and read its secrets), print a summary, exit 0 or 2
    --stream HOST:PORT     the core's stream port (default: HONEYBEE_STREAM_ADDR, then `stream`)
    --api HOST:PORT        the core's REST API, for node names and reports (HONEYBEE_API_ADDR, `api`)
    --api-token-file FILE  the API token (default: HONEYBEE_API_TOKEN, `api_token_file`)
    --state-dir DIR        cursor, windows and outboxes (default: `state_dir`, else ./alerts-state)
    --name NAME            the name it registers with on the stream (default alerts)

As a core module ([[modules]] in core.toml) the addresses and the token come
from the core's environment. Flags override the environment, which
overrides the config file. Exit status 2: a bad flag, config or secret.";

#[derive(Default)]
struct Flags {
    config: Option<PathBuf>,
    check: Option<PathBuf>,
    stream: Option<String>,
    api: Option<String>,
    token_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    name: Option<String>,
}

fn flags() -> Result<Flags, String> {
    let mut f = Flags::default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut args = honeybee_process::flags::Args::new(&argv);
    while let Some((a, inline)) = args.next() {
        let mut inline = Some(inline);
        let mut value = || args.value(a, inline.take().flatten());
        match a {
            "--config" => f.config = Some(value()?.into()),
            "--check-config" => f.check = Some(value()?.into()),
            "--stream" => f.stream = Some(value()?),
            "--api" => f.api = Some(value()?),
            "--api-token-file" => f.token_file = Some(value()?.into()),
            "--state-dir" => f.state_dir = Some(value()?.into()),
            "--name" => f.name = Some(value()?),
            "--version" => {
                println!("honeybee-alerts {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(f)
}

fn main() -> ExitCode {
    let signals = match honeybee_process::signals::block(false) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("honeybee-alerts: blocking signals: {e}");
            return ExitCode::from(1);
        }
    };
    honeybee_process::logging::init(honeybee_process::logging::LogFormat::Text);
    let f = match flags() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("honeybee-alerts: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &f.check {
        return match config::load(path).and_then(|c| {
            for ch in &c.channels {
                ch.open()
                    .map_err(|e| format!("channel {:?}: {e}", ch.common.name))?;
            }
            Ok(c)
        }) {
            Ok(c) => {
                println!(
                    "{}: ok ({} channels, {} rules)",
                    path.display(),
                    c.channels.len(),
                    c.rules.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("honeybee-alerts: {e}");
                ExitCode::from(2)
            }
        };
    }
    match setup(&f) {
        Ok((config, setup)) => {
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = stop.clone();
            let on_stop = move |sig| {
                log::info!("{sig}: stopping");
                watcher.store(true, Ordering::Relaxed);
            };
            if let Err(e) = honeybee_process::signals::on_signal(signals, || {}, on_stop) {
                eprintln!("honeybee-alerts: starting the signal thread: {e}");
                return ExitCode::from(1);
            }
            match run::run(config, setup, stop) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("honeybee-alerts: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Err(e) => {
            eprintln!("honeybee-alerts: {e}");
            ExitCode::from(2)
        }
    }
}

fn setup(f: &Flags) -> Result<(config::Config, Setup), String> {
    let path = f.config.as_ref().ok_or("--config FILE is required")?;
    let config = config::load(path)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let stream = f
        .stream
        .clone()
        .or_else(|| env("HONEYBEE_STREAM_ADDR"))
        .or_else(|| config.stream.clone())
        .ok_or(
            "no stream address: --stream HOST:PORT, HONEYBEE_STREAM_ADDR or `stream` in the config",
        )?;
    let api = f
        .api
        .clone()
        .or_else(|| env("HONEYBEE_API_ADDR"))
        .or_else(|| config.api.clone());
    let token_file = f
        .token_file
        .clone()
        .or_else(|| config.api_token_file.clone());
    let token = match (&token_file, env("HONEYBEE_API_TOKEN")) {
        (Some(p), _) => std::fs::read_to_string(p)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("reading the API token file {}: {e}", p.display()))?,
        (None, Some(t)) => t,
        (None, None) => {
            return Err("no API token: --api-token-file FILE or HONEYBEE_API_TOKEN".into())
        }
    };
    if token.is_empty() {
        return Err("the API token is empty".into());
    }
    let state_dir = f
        .state_dir
        .clone()
        .or_else(|| config.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from("alerts-state"));
    let name = f.name.clone().unwrap_or_else(|| "alerts".into());
    if !config::valid_name(&name) {
        return Err(format!("--name {name:?}: 1 to 64 of A-Z a-z 0-9 _ - ."));
    }
    Ok((
        config,
        Setup {
            stream,
            api,
            token: Secret::new(token),
            state_dir,
            name,
        },
    ))
}
