//! Settings read from `STRADDLE_*` environment variables (documented in the README).

use std::time::Duration;

/// Everything the shim can be told from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STRADDLE_CONTROLLER`: the controller's gRPC address (`http://host:port`). Unset:
    /// the shim counts but ships nothing.
    pub controller: Option<String>,
    /// `STRADDLE_INTERVAL_MS`: how often the reporter ships changes (default 1000).
    pub interval: Duration,
    /// `STRADDLE_FLUSH_TIMEOUT_MS`: the most the final flush may hold up `MPI_Finalize` or
    /// exit (default 1000).
    pub flush_timeout: Duration,
    /// `STRADDLE_CONNECT_TIMEOUT_MS`: bound on connecting and on the controller's first
    /// answer (default 1000).
    pub connect_timeout: Duration,
    /// `STRADDLE_COUNT_PROC_NULL=1`: benchmarks only — sends to `MPI_PROC_NULL` take the
    /// full counting path into a slot of their own that is never reported.
    pub count_proc_null: bool,
    /// `STRADDLE_DISABLE=1`: the shim passes every call through and counts nothing.
    pub disabled: bool,
    /// `STRADDLE_VERBOSE=1`: the reporter thread says on stderr when it attaches, loses
    /// the controller, and receives a site map.
    pub verbose: bool,
}

fn env_ms(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default);
    Duration::from_millis(ms)
}

fn env_flag(name: &str) -> bool {
    matches!(
        std::env::var(name).ok().as_deref().map(str::trim),
        Some("1") | Some("true") | Some("yes") | Some("on")
    )
}

impl Config {
    pub fn from_env() -> Config {
        let controller = std::env::var("STRADDLE_CONTROLLER")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.contains("://") {
                    s
                } else {
                    format!("http://{s}")
                }
            });
        Config {
            controller,
            interval: env_ms("STRADDLE_INTERVAL_MS", 1000).max(Duration::from_millis(10)),
            flush_timeout: env_ms("STRADDLE_FLUSH_TIMEOUT_MS", 1000),
            connect_timeout: env_ms("STRADDLE_CONNECT_TIMEOUT_MS", 1000),
            count_proc_null: env_flag("STRADDLE_COUNT_PROC_NULL"),
            disabled: env_flag("STRADDLE_DISABLE"),
            verbose: env_flag("STRADDLE_VERBOSE"),
        }
    }
}
