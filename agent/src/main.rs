//! `honeybee-agent`: parses flags, loads the config, runs the agent until a
//! signal.

use std::process::ExitCode;

use honeybee_agent::cli::{self, Action};
use honeybee_agent::{agent, config};
use honeybee_process::{logging, signals};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before the console's stop events are taken: under the Service Control
    // Manager stop requests come from it, not from a console.
    if args.first().map(String::as_str) == Some("service") {
        return service(&args[1..]);
    }
    // SIGHUP keeps its default: the agent has nothing to reload.
    let signals = match signals::block(false) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("honeybee-agent: blocking signals: {e}");
            return ExitCode::from(1);
        }
    };
    let config = match cli::parse(&args) {
        Ok(Action::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Action::Version) => {
            println!("honeybee-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        #[cfg(unix)]
        Ok(Action::PotstoreList(dir)) => return potstore_list(&dir),
        // The potstore is Full mode's catalogue.
        #[cfg(not(unix))]
        Ok(Action::PotstoreList(_)) => {
            eprintln!(
                "honeybee-agent: {}",
                honeybee_agent::platform::FULL_MODE_UNSUPPORTED
            );
            return ExitCode::from(2);
        }
        Ok(Action::PrintConfig(config)) => {
            print!("{}", config.to_toml());
            return ExitCode::SUCCESS;
        }
        Ok(Action::Run(config)) => config,
        Err(e) => {
            eprintln!("honeybee-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = honeybee_agent::state::check_state_dir(&config.state_dir) {
        eprintln!("honeybee-agent: {e}");
        return ExitCode::from(2);
    }
    let mut config = config;
    logging::init(config.log_format);
    match config.resolve_enrollment_token(std::env::var(config::TOKEN_ENV).ok()) {
        Ok(warnings) => warnings.iter().for_each(|w| log::warn!("{w}")),
        Err(e) => {
            log::error!("{e}");
            eprintln!("honeybee-agent: {e}");
            return ExitCode::from(2);
        }
    }
    let (tx, rx) = async_channel::bounded(1);
    let stop = move |sig| {
        log::info!("{sig}: stopping");
        let _ = tx.try_send(());
        tx.close();
    };
    if let Err(e) = signals::on_signal(signals, || {}, stop) {
        eprintln!("honeybee-agent: starting the signal thread: {e}");
        return ExitCode::from(1);
    }
    match agent::run(*config, rx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("honeybee-agent: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `honeybee-agent service …` (Windows only).
fn service(args: &[String]) -> ExitCode {
    use honeybee_agent::service;
    let command = match service::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("honeybee-agent: {e}");
            return ExitCode::from(2);
        }
    };
    #[cfg(windows)]
    return service::main(command);
    #[cfg(not(windows))]
    {
        let _ = command;
        eprintln!("honeybee-agent: {}", service::WINDOWS_ONLY);
        ExitCode::from(2)
    }
}

/// Prints the catalogue: one pot a line.
#[cfg(unix)]
fn potstore_list(dir: &std::path::Path) -> ExitCode {
    match honeybee_agent::potstore::Catalogue::load(dir) {
        Ok(c) => {
            println!(
                "{:<16} {:<16} {:<8} {:<14} {:<22} DESCRIPTION",
                "ID", "TYPE", "VERSION", "PROTOCOLS", "PORTS"
            );
            for p in &c.pots {
                let ports: Vec<String> = p.ports.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{:<16} {:<16} {:<8} {:<14} {:<22} {}",
                    p.id,
                    p.pot_type,
                    p.version,
                    p.protocols.join(","),
                    ports.join(","),
                    p.description
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("honeybee-agent: {e}");
            ExitCode::from(1)
        }
    }
}
