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
    /// `STRADDLE_REGROUP`: run collectives site-aware under the newest site map (the
    /// controller's, else `STRADDLE_SITE_MAP`). Default: on when there is a controller or
    /// a static map; `0` keeps every collective the library's own. Every rank of a job
    /// must see the same setting.
    pub regroup: bool,
    /// `STRADDLE_REGROUP=always`: run every collective site-aware that can be, even where
    /// the library's own algorithm would cross the WAN as little (tests, comparisons).
    pub regroup_always: bool,
    /// `STRADDLE_AGREE_EVERY`: every how many collectives on a communicator its ranks
    /// agree on the map to use (default 16; applied as many collectives later).
    pub agree_every: u64,
    /// `STRADDLE_SITE_MAP=0,0,1,1`: the site of every world rank, until the controller
    /// pushes a map.
    pub site_map: Option<Vec<u32>>,
    /// `STRADDLE_SITE_EPOCH`: the epoch of that static map (default 0). Each site's leader
    /// rotates with the epoch, so a static map can put it anywhere in its site.
    pub site_epoch: u64,
    /// `STRADDLE_JOB_TOKEN` (or the file `STRADDLE_JOB_TOKEN_FILE` names): the job's
    /// credential, which a secured controller asks of every rank's stream.
    pub job_token: Option<String>,
    /// `STRADDLE_CA_CERT`: the CA that signed an `https://` controller's certificate (PEM).
    pub ca_cert: Option<std::path::PathBuf>,
}

fn env_ms(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(default);
    Duration::from_millis(ms)
}

fn env_flag(name: &str) -> bool {
    matches!(std::env::var(name).ok().as_deref().map(str::trim), Some("1") | Some("true") | Some("yes") | Some("on"))
}

impl Config {
    pub fn from_env() -> Config {
        let job_token = std::env::var("STRADDLE_JOB_TOKEN")
            .ok()
            .or_else(|| std::env::var("STRADDLE_JOB_TOKEN_FILE").ok().and_then(|p| std::fs::read_to_string(p.trim()).ok()))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let ca_cert =
            std::env::var("STRADDLE_CA_CERT").ok().map(|p| std::path::PathBuf::from(p.trim())).filter(|p| !p.as_os_str().is_empty());
        let controller = std::env::var("STRADDLE_CONTROLLER").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).map(|s| {
            if s.contains("://") {
                s
            } else {
                format!("http://{s}")
            }
        });
        let mut c = Config {
            controller,
            job_token,
            ca_cert,
            interval: env_ms("STRADDLE_INTERVAL_MS", 1000).max(Duration::from_millis(10)),
            flush_timeout: env_ms("STRADDLE_FLUSH_TIMEOUT_MS", 1000),
            connect_timeout: env_ms("STRADDLE_CONNECT_TIMEOUT_MS", 1000),
            count_proc_null: env_flag("STRADDLE_COUNT_PROC_NULL"),
            disabled: env_flag("STRADDLE_DISABLE"),
            verbose: env_flag("STRADDLE_VERBOSE"),
            regroup: false,
            regroup_always: false,
            agree_every: std::env::var("STRADDLE_AGREE_EVERY").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(16).max(1),
            site_map: std::env::var("STRADDLE_SITE_MAP").ok().and_then(|v| parse_site_map(&v)),
            site_epoch: std::env::var("STRADDLE_SITE_EPOCH").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0),
        };
        let setting = std::env::var("STRADDLE_REGROUP").ok();
        c.regroup_always = setting.as_deref().map(str::trim) == Some("always");
        c.regroup = match setting.as_deref().map(str::trim) {
            Some("0") | Some("false") | Some("no") | Some("off") => false,
            Some(v) if !v.is_empty() => true,
            _ => c.controller.is_some() || c.site_map.is_some(),
        };
        c
    }
}

/// `0,0,1,1` → [0, 0, 1, 1]; anything else is no map.
pub fn parse_site_map(v: &str) -> Option<Vec<u32>> {
    let m: Vec<u32> = v.split(',').map(|x| x.trim().parse().ok()).collect::<Option<_>>()?;
    (!m.is_empty()).then_some(m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn site_maps_parse_or_are_refused() {
        assert_eq!(super::parse_site_map("0, 1,0,2"), Some(vec![0, 1, 0, 2]));
        assert_eq!(super::parse_site_map("0,x"), None);
        assert_eq!(super::parse_site_map(""), None);
    }
}
