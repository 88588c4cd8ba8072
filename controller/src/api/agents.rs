//! The agents' registry as a gRPC service: agents register (checked against the topology)
//! and stream their usage. Callers present the fabric token; a controller started without
//! one takes no agents.

use std::sync::Arc;

use straddle_proto::agent_registry_server::AgentRegistry;
use straddle_proto::{HostInfo, Registered, Usage, UsageAck};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::agents::Agents;
use crate::clock::Clock;
use crate::plane::{ControlPlane, PlaneError};
use crate::state::Write;

/// Most VMs one usage report may list.
pub const MAX_VMS_PER_REPORT: usize = 10_000;

pub struct AgentRegistryService {
    pub agents: Arc<Agents>,
    pub plane: Option<Arc<ControlPlane>>,
    pub clock: Clock,
    pub heartbeat_ms: u32,
}

#[tonic::async_trait]
impl AgentRegistry for AgentRegistryService {
    async fn register(&self, req: Request<HostInfo>) -> Result<Response<Registered>, Status> {
        let plane = self.plane.as_ref().ok_or_else(|| Status::from(PlaneError::NoTopology))?;
        let info = req.into_inner();
        let (host, kept) =
            (info.host.clone(), Write::Setting { key: format!("agent/{}", info.host), value: format!("{} {}", info.vtep, info.agent_url) });
        self.agents.register(&plane.topo, info, self.clock.now()).map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Kept: a restarted controller's first fabric must not drop hosts whose agents have
        // not registered with it yet (their VMs run on all the same).
        plane.store.commit(vec![kept]).await.map_err(|e| Status::unavailable(format!("the registration was not kept: {e}")))?;
        tracing::info!(host = %host, "agent registered");
        Ok(Response::new(Registered { heartbeat_ms: self.heartbeat_ms }))
    }

    async fn report_usage(&self, req: Request<Streaming<Usage>>) -> Result<Response<UsageAck>, Status> {
        let mut s = req.into_inner();
        while let Some(u) = s.next().await {
            let u = u?;
            if u.vms.len() > MAX_VMS_PER_REPORT {
                return Err(Status::invalid_argument(format!("vms: {} VMs in one report (at most {MAX_VMS_PER_REPORT})", u.vms.len())));
            }
            if !(u.cpu_utilisation.is_finite() && (0.0..=1.0).contains(&u.cpu_utilisation)) {
                return Err(Status::invalid_argument(format!("cpu_utilisation = {}: from 0 to 1", u.cpu_utilisation)));
            }
            let (host, cpu) = (u.host.clone(), u.cpu_utilisation);
            self.agents.report(u, self.clock.now()).map_err(|e| Status::invalid_argument(e.to_string()))?;
            // The planner places VMs on the least busy host of a site.
            if let Some(plane) = &self.plane {
                if let Some(h) = plane.topo.host(&host) {
                    plane.host_reported(h, cpu, self.clock.now());
                }
            }
        }
        Ok(Response::new(UsageAck {}))
    }
}
