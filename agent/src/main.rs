//! `straddle-agent`: the per-host daemon. Today it reports the host's resource usage and
//! builds the host's share of the clusters' L2 segments from a fabric file.

mod net_cmd;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use straddle_agent::usage;

#[derive(Parser)]
#[command(name = "straddle-agent", version, about = "The straddle per-host agent")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print this host's resource usage as JSON, sampled over an interval.
    Usage {
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Keep printing one report per interval.
        #[arg(long)]
        watch: bool,
        /// Host name to report (default: the hostname).
        #[arg(long, env = "STRADDLE_HOST")]
        host: Option<String>,
    },
    /// The virtual clusters' L2 segments on this host.
    Net {
        #[command(subcommand)]
        cmd: net_cmd::NetCmd,
    },
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Net { cmd } => net_cmd::run(cmd),
        Cmd::Usage { interval_ms, watch, host } => {
            let host = match host {
                Some(h) => h,
                None => read("/proc/sys/kernel/hostname")?.trim().to_string(),
            };
            let mut before = usage::parse_stat(&read("/proc/stat")?)?;
            loop {
                std::thread::sleep(Duration::from_millis(interval_ms));
                let after = usage::parse_stat(&read("/proc/stat")?)?;
                let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
                let u = usage::report(&host, now, before, after, &read("/proc/meminfo")?, &read("/proc/net/dev")?)?;
                println!(
                    "{}",
                    serde_json::json!({
                        "host": u.host,
                        "unix_ms": u.unix_ms,
                        "cpu_utilisation": u.cpu_utilisation,
                        "memory_used_bytes": u.memory_used_bytes,
                        "net_rx_bytes": u.net_rx_bytes,
                        "net_tx_bytes": u.net_tx_bytes,
                    })
                );
                if !watch {
                    return Ok(());
                }
                before = after;
            }
        }
    }
}
