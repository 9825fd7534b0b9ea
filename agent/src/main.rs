//! `honeybee-agent`: parses flags, loads the config, runs the agent until a
//! signal.

use std::process::ExitCode;

use honeybee_agent::cli::{self, Action};
use honeybee_agent::{agent, logging, shutdown};

fn main() -> ExitCode {
    let signals = match shutdown::block_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("honeybee-agent: blocking signals: {e}");
            return ExitCode::from(1);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match cli::parse(&args) {
        Ok(Action::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Action::Version) => {
            println!("honeybee-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
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
    logging::init(config.log_format);
    let (tx, rx) = async_channel::bounded(1);
    if let Err(e) = shutdown::on_signal(signals, tx) {
        eprintln!("honeybee-agent: starting the signal thread: {e}");
        return ExitCode::from(1);
    }
    match agent::run(*config, rx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("honeybee-agent: {e}");
            ExitCode::from(1)
        }
    }
}
