//! The agent's side of the controller's registry: register (again after every lost
//! connection, with backoff), then stream the host's and its VMs' usage at the pace the
//! controller asked for. The controller being away never stops the host's data path: the
//! network and the VMs stay as they are.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use straddle_proto::agent_registry_client::AgentRegistryClient;
use straddle_proto::{HostInfo, Usage};
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::usage;
use crate::vm::libvirt::{self, Counters, Domains};

pub struct Registration {
    pub controller: String,
    pub token: String,
    pub info: HostInfo,
    pub domains: Option<Domains>,
}

fn read(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// One host sample: CPU counters now, and the VMs' counters.
struct Sample {
    cpu: usage::CpuTimes,
    vms: Vec<(String, Counters)>,
    at: Instant,
}

async fn sample(domains: &Option<Domains>) -> Sample {
    let cpu = read("/proc/stat").ok().and_then(|t| usage::parse_stat(&t).ok()).unwrap_or_default();
    let vms = match domains {
        Some(d) => d.counters().await.unwrap_or_else(|e| {
            tracing::warn!("VM usage not sampled: {e}");
            Vec::new()
        }),
        None => Vec::new(),
    };
    Sample { cpu, vms, at: Instant::now() }
}

fn report(host: &str, before: &Sample, after: &Sample) -> Option<Usage> {
    let unix_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let mut u = usage::report(host, unix_ms, before.cpu, after.cpu, &read("/proc/meminfo").ok()?, &read("/proc/net/dev").ok()?).ok()?;
    u.vms = libvirt::usage(&before.vms, &after.vms, after.at.duration_since(before.at).as_secs_f64());
    Some(u)
}

impl Registration {
    /// Registers and reports until the process ends.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.session().await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(e) => tracing::warn!(controller = %self.controller, "not registered: {e}; again in {backoff:?}"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    async fn session(&self) -> Result<(), String> {
        let ch = Endpoint::from_shared(self.controller.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let bearer: MetadataValue<_> =
            format!("Bearer {}", self.token).parse().map_err(|_| "the fabric token is not valid ASCII".to_string())?;
        let mut client = AgentRegistryClient::with_interceptor(ch, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        });
        let ack = client.register(self.info.clone()).await.map_err(|s| format!("{}: {}", s.code(), s.message()))?.into_inner();
        let every = Duration::from_millis(u64::from(ack.heartbeat_ms.clamp(100, 60_000)));
        tracing::info!(controller = %self.controller, ?every, "registered");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (host, domains) = (self.info.host.clone(), self.domains.clone());
        let sampler = tokio::spawn(async move {
            let mut before = sample(&domains).await;
            loop {
                tokio::time::sleep(every).await;
                let after = sample(&domains).await;
                if let Some(u) = report(&host, &before, &after) {
                    if tx.send(u).await.is_err() {
                        return;
                    }
                }
                before = after;
            }
        });
        let r = client.report_usage(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
        sampler.abort();
        r.map(|_| ()).map_err(|s| format!("usage stream ended: {}: {}", s.code(), s.message()))
    }
}
