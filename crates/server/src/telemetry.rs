//! Logs: text or JSON on stderr, and daily files in `data_dir/logs` when the "enable
//! logging" setting is on.

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Keeps the log file writer alive; drop it at exit to flush.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the process's logger. Only the first call in a process takes effect.
pub fn init(config: &LogConfig, log_dir: Option<&Path>) -> LogGuard {
    let filter = || EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = match config.format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
    };
    let (file, guard) = match log_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::daily(dir, "twofold.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = fmt::layer()
                .json()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter())
                .boxed();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    LogGuard(guard)
}
