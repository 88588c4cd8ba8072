//! `straddle-agent serve`: the daemon. It serves the controller's requests (the host's
//! share of the fabric, the cluster VMs) on an address of its own, loopback by default,
//! to callers with the fabric token only; registers with the controller and streams the
//! host's usage. It keeps no state of its own: a restarted agent reads the kernel and
//! libvirt, and the controller's next ensure finds everything in place.
//!
//! - `auth`: the fabric token.
//! - `convert`: the contract's messages to the agent's types, checked.
//! - `service`: the gRPC service.
//! - `register`: registration and usage heartbeats.

pub mod auth;
pub mod convert;
pub mod register;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use straddle_proto::agent_server::AgentServer;
use tonic::{Request, Status};

use crate::net::kernel::{features, Kernel};
use crate::vm::libvirt::Domains;

pub struct Config {
    pub host: String,
    pub site: String,
    pub listen: SocketAddr,
    /// The address the controller dials (default: `http://<listen>`).
    pub advertise: Option<String>,
    pub vtep: String,
    pub controller: Option<String>,
    pub token: String,
    pub domains: Option<Domains>,
}

/// Serves until the process ends. Prints `straddle-agent listening on ADDR` first.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let token = auth::Token::new(&cfg.token).ok_or_else(|| anyhow::anyhow!("the fabric token is empty: an agent never runs open"))?;
    let kernel = Arc::new(Kernel::connect()?);
    let have = features(&kernel).await;
    let missing = have.missing();
    let mut notes = Vec::new();
    if let Some(why) = &have.vlan {
        notes.push(format!("no 802.1q VLAN links on this kernel ({why}): the segments are VXLAN inside sites too"));
    }
    for n in missing.iter().chain(&notes) {
        tracing::warn!("{n}");
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    println!("straddle-agent listening on {addr}");
    if let Some(url) = &cfg.controller {
        let cpus = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
        let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| crate::usage::parse_meminfo(&t).ok()).map_or(0, |m| m.0);
        let reg = register::Registration {
            controller: url.clone(),
            token: cfg.token.trim().to_string(),
            info: straddle_proto::HostInfo {
                host: cfg.host.clone(),
                site: cfg.site.clone(),
                cpus,
                memory_bytes: memory,
                agent_url: cfg.advertise.clone().unwrap_or_else(|| format!("http://{addr}")),
                vtep: cfg.vtep.clone(),
                notes: missing.iter().chain(&notes).cloned().collect(),
            },
            domains: cfg.domains.clone(),
        };
        tokio::spawn(reg.run());
    }
    let service = service::AgentService { host: cfg.host, kernel, domains: cfg.domains, missing, notes, net: tokio::sync::Mutex::new(()) };
    let check = move |req: Request<()>| -> Result<Request<()>, Status> {
        token.admits(req.metadata()).inspect_err(|_| tracing::warn!("refused a call without the fabric token"))?;
        Ok(req)
    };
    tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_secs(120))
        .add_service(AgentServer::with_interceptor(service, check))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
