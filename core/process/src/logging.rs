//! Log lines on stderr, as text for people or JSON for machines; the level
//! comes from `HONEYBEE_LOG` (error, warn, info, debug, trace; info when
//! unset or not one of those).

use std::io::Write;

use honeybee_proto::time::now_rfc3339;
use log::{Level, LevelFilter, Log, Metadata, Record};
use serde::{Deserialize, Serialize};

/// The variable that sets the level.
pub const LEVEL_ENV: &str = "HONEYBEE_LOG";

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `2026-11-26T10:00:00Z INFO  uplink: registered as node 42`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

struct Logger {
    format: LogFormat,
    level: LevelFilter,
    /// Where lines go instead of stderr: a Windows service has no console.
    out: Option<std::sync::Mutex<Box<dyn Write + Send>>>,
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
        let line = line(
            self.format,
            &now_rfc3339(),
            r.level(),
            r.target(),
            &r.args().to_string(),
        );
        match &self.out {
            Some(out) => {
                if let Ok(mut out) = out.lock() {
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.flush();
                }
            }
            None => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// One log line, newline included.
fn line(format: LogFormat, time: &str, level: Level, target: &str, message: &str) -> String {
    match format {
        LogFormat::Text => format!("{time} {level:<5} {target}: {message}\n"),
        LogFormat::Json => {
            let mut s = serde_json::json!({
                "time": time,
                "level": level_name(level),
                "target": target,
                "message": message,
            })
            .to_string();
            s.push('\n');
            s
        }
    }
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

/// The level a `HONEYBEE_LOG` value asks for; info for none or nonsense.
pub fn level(value: Option<&str>) -> LevelFilter {
    value
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info)
}

/// Installs the logger at the level of `HONEYBEE_LOG`. A second call does
/// nothing.
pub fn init(format: LogFormat) {
    install(format, None);
}

/// Like [`init`], but each line goes to `out` (written whole, then
/// flushed) instead of stderr: for a program without a console, such as
/// the agent as a Windows service writing its log file.
pub fn init_to(format: LogFormat, out: Box<dyn Write + Send>) {
    install(format, Some(std::sync::Mutex::new(out)));
}

fn install(format: LogFormat, out: Option<std::sync::Mutex<Box<dyn Write + Send>>>) {
    let level = level(std::env::var(LEVEL_ENV).ok().as_deref());
    if log::set_boxed_logger(Box::new(Logger { format, level, out })).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_the_environment_value() {
        assert_eq!(level(None), LevelFilter::Info);
        assert_eq!(level(Some("debug")), LevelFilter::Debug);
        assert_eq!(level(Some(" WARN ")), LevelFilter::Warn);
        assert_eq!(level(Some("loud")), LevelFilter::Info);
    }

    #[test]
    fn text_and_json_lines() {
        let t = line(LogFormat::Text, "T", Level::Warn, "uplink", "lost");
        assert_eq!(t, "T WARN  uplink: lost\n");
        let j = line(LogFormat::Json, "T", Level::Info, "x", "a \"quoted\"\nline");
        let v: serde_json::Value = serde_json::from_str(j.trim_end()).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["message"], "a \"quoted\"\nline");
        assert_eq!(j.matches('\n').count(), 1, "one line per record: {j}");
    }
}
