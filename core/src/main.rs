//! `honeybee-core`: parses flags, loads the config, runs the server until a
//! signal.

use std::process::ExitCode;

use honeybee_core::cli::{self, Action};
use honeybee_core::geo::Enricher;
use honeybee_core::server::Core;
use honeybee_core::shutdown;

/// Longest a shutdown may take before the process exits anyway.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_millis(4500);

fn init_logging() {
    let level = std::env::var("HONEYBEE_LOG")
        .ok()
        .and_then(|l| l.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level)
        .with_module_level("rustls", log::LevelFilter::Warn)
        .init();
}

fn main() -> ExitCode {
    let signals = match shutdown::block_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("honeybee-core: blocking signals: {e}");
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
            println!("honeybee-core {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Action::PrintConfig(config)) => {
            print!("{}", config.to_toml());
            return ExitCode::SUCCESS;
        }
        Ok(Action::Run(config)) => config,
        Err(e) => {
            eprintln!("honeybee-core: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    raise_fd_limit();
    let mut config = config;
    match config.read_secret_files() {
        Ok(warnings) => warnings.iter().for_each(|w| log::warn!("{w}")),
        Err(e) => {
            eprintln!("honeybee-core: {e}");
            return ExitCode::from(2);
        }
    }
    for w in cli::secret_flag_warnings(&args) {
        log::warn!("{w}");
    }
    // The enrichment databases are read before anything is bound: a file
    // that is missing, truncated or of the wrong kind is a bad setting.
    let enricher =
        match Enricher::open(config.enrichment.geoip_path(), config.enrichment.asn_path()) {
            Ok(e) => std::sync::Arc::new(e),
            Err(e) => {
                log::error!("{e}");
                eprintln!("honeybee-core: {e}");
                return ExitCode::from(2);
            }
        };
    let (tx, rx) = std::sync::mpsc::channel();
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stopping.clone();
    let reloading = enricher.clone();
    let on_hangup = move || {
        if reloading.active() {
            log::info!("SIGHUP: reading the enrichment databases again");
            reloading.reload(true);
        } else {
            log::info!("SIGHUP: no enrichment databases configured; nothing to reload");
        }
    };
    if let Err(e) = shutdown::on_signal(signals, on_hangup, move |sig| {
        log::info!("{sig}: shutting down");
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tx.send(());
    }) {
        eprintln!("honeybee-core: starting the signal thread: {e}");
        return ExitCode::from(1);
    }
    let stop = || stopping.load(std::sync::atomic::Ordering::Relaxed);
    let core = match Core::start_with(&config, &stop, enricher) {
        Ok(core) => core,
        // Asked to stop while it waited for its database: a clean stop.
        Err(e) if stop() => {
            log::info!("stopped before starting: {e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            log::error!("{e}");
            eprintln!("honeybee-core: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = rx.recv();
    let watchdog = shutdown::Watchdog::arm(SHUTDOWN_LIMIT);
    core.stop();
    drop(watchdog);
    ExitCode::SUCCESS
}

/// Each node is a file descriptor: lift the soft limit to the hard one.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("raising the open-file limit to {hard}: {e}");
            }
        }
    }
}
