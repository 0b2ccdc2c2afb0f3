//! The daemon's logger: to stderr in the foreground, to the vault's
//! encrypted log in the background. fuser's own records are kept at warning
//! level and above (its debug output would contain file names).

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::vault::logfile::LogFile;

enum Sink {
    Stderr,
    File(LogFile),
}

struct Logger {
    sink: Sink,
    level: log::LevelFilter,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        if m.target().starts_with("quire") {
            m.level() <= self.level
        } else {
            m.level() <= log::Level::Warn
        }
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) || noise(r) {
            return;
        }
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let line = format!(
            "{} {:5} {}",
            super::runtime::format_time(secs),
            r.level(),
            r.args()
        );
        match &self.sink {
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            Sink::File(f) => {
                let _ = f.append(&line);
            }
        }
    }

    fn flush(&self) {}
}

/// fuser's warnings that say nothing to a user (issue 10.8): operations
/// Quire leaves unimplemented on purpose (ioctl, poll, …, answered ENOSYS
/// as the kernel expects), and the EINVAL of its own unmount attempt after
/// `fusermount3 -u` already unmounted.
fn noise(r: &log::Record<'_>) -> bool {
    if r.target().starts_with("quire") || r.level() < log::Level::Warn {
        return false;
    }
    let m = r.args().to_string();
    m.contains("Not Implemented")
        || m.contains("not implemented")
        || m.starts_with("Failed to umount filesystem")
}

fn level() -> log::LevelFilter {
    match std::env::var("QUIRE_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("error") => log::LevelFilter::Error,
        _ => log::LevelFilter::Info,
    }
}

fn install(sink: Sink) {
    let level = level();
    let l = Logger { sink, level };
    if LOGGER.set(l).is_ok() {
        let _ = log::set_logger(LOGGER.get().unwrap());
        // fuser's per-request debug records are then skipped at the call site.
        log::set_max_level(level.max(log::LevelFilter::Warn));
    }
}

/// Logs to stderr.
pub fn to_stderr() {
    install(Sink::Stderr);
}

/// Logs to the vault's encrypted log.
pub fn to_file(f: LogFile) {
    install(Sink::File(f));
}
