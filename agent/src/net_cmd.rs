//! `straddle-agent net …`: the host's share of a fabric, ensured, shown or torn down.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use straddle_agent::net::fabric::Fabric;
use straddle_agent::net::kernel::{features, Kernel};
use straddle_agent::net::plan::plan;
use straddle_agent::net::state::{desired, HostState};

#[derive(Subcommand)]
pub enum NetCmd {
    /// Make this host's bridges, VXLAN devices and forwarding entries what the fabric says
    /// (a JSON file); prints each change made (nothing when all is in place).
    Ensure {
        #[arg(long)]
        fabric: PathBuf,
        /// This host's name in the fabric.
        #[arg(long, env = "STRADDLE_HOST")]
        host: String,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove every bridge, VXLAN device and forwarding entry of the agent's on this host.
    Down,
    /// Print what of the agent's exists on this host.
    Show,
}

fn load(path: &PathBuf) -> Result<Fabric> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let f: Fabric = serde_json::from_str(&text).with_context(|| format!("{}: not a fabric", path.display()))?;
    f.check().with_context(|| format!("{}", path.display()))?;
    Ok(f)
}

pub fn run(cmd: NetCmd) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let k = Kernel::connect()?;
        match cmd {
            NetCmd::Ensure { fabric, host, dry_run } => {
                let f = load(&fabric)?;
                let Some(want) = desired(&f, &host) else { bail!("host {host:?} is not in {}", fabric.display()) };
                let have = features(&k).await;
                let missing = have.missing();
                if !missing.is_empty() {
                    bail!("this kernel cannot build the segments: {}", missing.join("; "));
                }
                if let Some(why) = &have.vlan {
                    eprintln!("note: this kernel has no 802.1q VLAN links ({why}); the segments are VXLAN inside sites too");
                }
                let actions = if dry_run { plan(&k.read().await?, &want) } else { k.ensure(&want).await? };
                for a in &actions {
                    println!("{a:?}");
                }
            }
            NetCmd::Down => {
                for a in k.ensure(&HostState::default()).await? {
                    println!("{a:?}");
                }
            }
            NetCmd::Show => {
                let s = k.read().await?;
                for (name, l) in &s.links {
                    println!("{name} {}", l.describe());
                    for e in s.fdb.get(name).into_iter().flatten() {
                        println!("  {} -> {}", e.mac, e.dst);
                    }
                }
            }
        }
        Ok(())
    })
}
