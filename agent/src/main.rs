//! `straddle-agent`: the per-host daemon (`serve`), and tools for a host by hand: its usage,
//! its share of the clusters' L2 segments from a fabric file.

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
    /// The daemon: serves the controller's requests (networks, VMs) to callers with the
    /// fabric token, registers with the controller and streams usage.
    Serve {
        /// This host's name in the controller's topology.
        #[arg(long, env = "STRADDLE_HOST")]
        host: String,
        #[arg(long, default_value = "")]
        site: String,
        /// Where the controller reaches this agent (loopback by default).
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: std::net::SocketAddr,
        /// The URL the controller dials, when not `http://<listen>` (NAT, a proxy).
        #[arg(long)]
        advertise: Option<String>,
        /// This host's underlay address: the segments' tunnel endpoint.
        #[arg(long)]
        vtep: String,
        /// The controller to register with (e.g. http://10.0.0.1:50051).
        #[arg(long)]
        controller: Option<String>,
        /// A file holding the fabric token (else STRADDLE_FABRIC_TOKEN).
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
        /// The host's libvirt daemon (no VMs without one).
        #[arg(long)]
        libvirt_uri: Option<String>,
        /// `qemu` (software emulation) or `kvm`.
        #[arg(long, default_value = "qemu")]
        domain_type: String,
        /// Where VM consoles are written.
        #[arg(long, default_value = "/var/lib/straddle-agent")]
        state_dir: std::path::PathBuf,
    },
    /// The encrypted tunnel between site gateways (WireGuard in user space).
    Tunnel {
        #[command(subcommand)]
        cmd: TunnelCmd,
    },
    /// The virtual clusters' L2 segments on this host.
    Net {
        #[command(subcommand)]
        cmd: net_cmd::NetCmd,
    },
}

#[derive(Subcommand)]
enum TunnelCmd {
    /// Bring the tunnel up from a configuration file (JSON) and carry traffic until killed.
    Up {
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Make a key pair: the private key goes to a new file (mode 0600), the public key is
    /// printed.
    Keygen {
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve { host, site, listen, advertise, vtep, controller, token_file, libvirt_uri, domain_type, state_dir } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
                .init();
            let token = match token_file {
                Some(p) => read(&p.to_string_lossy())?,
                None => std::env::var("STRADDLE_FABRIC_TOKEN").context("no fabric token: give --token-file or STRADDLE_FABRIC_TOKEN")?,
            };
            if !["qemu", "kvm"].contains(&domain_type.as_str()) {
                anyhow::bail!("--domain-type {domain_type:?}: qemu or kvm");
            }
            let domains = libvirt_uri.map(|uri| straddle_agent::vm::libvirt::Domains { uri, domain_type, dir: state_dir });
            let cfg = straddle_agent::daemon::Config { host, site, listen, advertise, vtep, controller, token, domains };
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(straddle_agent::daemon::run(cfg))
        }
        Cmd::Net { cmd } => net_cmd::run(cmd),
        Cmd::Tunnel { cmd: TunnelCmd::Up { config } } => {
            tracing_subscriber::fmt().with_writer(std::io::stderr).init();
            let text = read(&config.to_string_lossy())?;
            let cfg: straddle_agent::tunnel::config::TunnelConfig =
                serde_json::from_str(&text).with_context(|| format!("{}: not a tunnel configuration", config.display()))?;
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(straddle_agent::tunnel::up(&cfg))
        }
        Cmd::Tunnel { cmd: TunnelCmd::Keygen { out } } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let (private, public) = straddle_agent::tunnel::keygen()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| format!("cannot make {}", out.display()))?;
            writeln!(f, "{private}")?;
            println!("{public}");
            Ok(())
        }
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
