//! Log lines on stderr, as text for people or JSON for machines
//! (`--log-format`); the level comes from `HONEYBEE_LOG`.

use std::io::Write;

use honeybee_proto::time::now_rfc3339;
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::LogFormat;

struct Logger {
    format: LogFormat,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        // rustls is chatty at info about every handshake.
        let floor = if m.target().starts_with("rustls") {
            LevelFilter::Warn
        } else {
            self.level
        };
        m.level() <= floor
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = match self.format {
            LogFormat::Text => format!(
                "{} {:<5} {}: {}\n",
                now_rfc3339(),
                r.level(),
                r.target(),
                r.args()
            ),
            LogFormat::Json => {
                let mut s = serde_json::json!({
                    "time": now_rfc3339(),
                    "level": level_name(r.level()),
                    "target": r.target(),
                    "message": r.args().to_string(),
                })
                .to_string();
                s.push('\n');
                s
            }
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// Installs the logger; the level is `HONEYBEE_LOG` or info.
pub fn init(format: LogFormat) {
    let level = std::env::var("HONEYBEE_LOG")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_boxed_logger(Box::new(Logger { format, level })).is_ok() {
        log::set_max_level(level);
    }
}
