//! The agent's gRPC service: what the controller asks of a host. Every call is
//! authenticated (the interceptor in `mod.rs`), checked whole before anything changes, and
//! idempotent.

use std::sync::Arc;

use straddle_proto::agent_server::Agent;
use straddle_proto::{
    AgentAck, EnsureResult, FabricSpec, ListVmsRequest, ListVmsResponse, ShowRequest, ShowResponse, VmRef, VmSpec, VmState,
};
use tonic::{Request, Response, Status};

use super::convert;
use crate::net::kernel::Kernel;
use crate::net::state::desired;
use crate::vm::libvirt::{Domains, VmError};

pub struct AgentService {
    pub host: String,
    pub kernel: Arc<Kernel>,
    /// `None`: this agent runs no VMs (no libvirt URI configured).
    pub domains: Option<Domains>,
    /// What the fabric cannot do without and this kernel lacks (bridges, VXLAN).
    pub missing: Vec<String>,
    /// What it lacks that the fabric does without (802.1q), said with every ensure.
    pub notes: Vec<String>,
    /// One change of the host's network at a time.
    pub net: tokio::sync::Mutex<()>,
}

fn vm_status(e: VmError) -> Status {
    match e {
        VmError::Unknown(_) => Status::not_found(e.to_string()),
        VmError::NotOurs(_) | VmError::Differs { .. } => Status::failed_precondition(e.to_string()),
        VmError::Libvirt { .. } => Status::unavailable(e.to_string()),
    }
}

impl AgentService {
    fn domains(&self) -> Result<&Domains, Status> {
        self.domains
            .as_ref()
            .ok_or_else(|| Status::failed_precondition(format!("the agent of {} runs no VMs: started without --libvirt-uri", self.host)))
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn ensure_fabric(&self, req: Request<FabricSpec>) -> Result<Response<EnsureResult>, Status> {
        let f = convert::fabric(req.get_ref()).map_err(|e| Status::invalid_argument(format!("fabric: {e}")))?;
        let Some(want) = desired(&f, &self.host) else {
            return Err(Status::invalid_argument(format!("fabric: hosts: this host {:?} is not among them", self.host)));
        };
        if !self.missing.is_empty() && !want.links.is_empty() {
            return Err(Status::failed_precondition(format!(
                "host {}: this kernel cannot build the segments ({}): nothing was changed",
                self.host,
                self.missing.join("; ")
            )));
        }
        let _one = self.net.lock().await;
        let done = self.kernel.ensure(&want).await.map_err(|e| Status::internal(format!("host {}: {e}", self.host)))?;
        let changes: Vec<String> = done.iter().map(|a| format!("{a:?}")).collect();
        if changes.is_empty() {
            tracing::debug!("fabric in place: nothing to change");
        } else {
            tracing::info!(changes = changes.len(), "fabric ensured: {}", changes.join(", "));
        }
        Ok(Response::new(EnsureResult { changes, notes: self.notes.clone() }))
    }

    async fn show(&self, _: Request<ShowRequest>) -> Result<Response<ShowResponse>, Status> {
        let s = self.kernel.read().await.map_err(|e| Status::internal(e.to_string()))?;
        let links = s.links.iter().map(|(name, l)| format!("{name} {}", l.describe())).collect();
        let fdb = s.fdb.iter().flat_map(|(dev, es)| es.iter().map(move |e| format!("{dev} {} -> {}", e.mac, e.dst))).collect();
        Ok(Response::new(ShowResponse { links, fdb }))
    }

    async fn define_vm(&self, req: Request<VmSpec>) -> Result<Response<VmState>, Status> {
        let vm = convert::node_vm(req.get_ref()).map_err(|e| Status::invalid_argument(format!("vm: {e}")))?;
        let st = self.domains()?.define(vm).await.map_err(vm_status)?;
        tracing::info!(vm = %st.name, mac = %st.mac, bridge = %st.bridge, "VM defined");
        Ok(Response::new(st))
    }

    async fn start_vm(&self, req: Request<VmRef>) -> Result<Response<VmState>, Status> {
        let d = self.domains()?;
        let name = &req.get_ref().name;
        let st = d.list().await.map_err(vm_status)?.into_iter().find(|v| &v.name == name);
        let st = st.ok_or_else(|| vm_status(VmError::Unknown(name.clone())))?;
        if !st.running {
            let links = self.kernel.read().await.map_err(|e| Status::internal(e.to_string()))?.links;
            if !links.contains_key(&st.bridge) {
                return Err(Status::failed_precondition(format!(
                    "VM {name:?}: its cluster's bridge {} is not on host {}: ensure the fabric first",
                    st.bridge, self.host
                )));
            }
        }
        let st = d.start(name).await.map_err(vm_status)?;
        tracing::info!(vm = %name, "VM running");
        Ok(Response::new(st))
    }

    async fn stop_vm(&self, req: Request<VmRef>) -> Result<Response<VmState>, Status> {
        let st = self.domains()?.stop(&req.get_ref().name).await.map_err(vm_status)?;
        tracing::info!(vm = %st.name, "VM stopped");
        Ok(Response::new(st))
    }

    async fn remove_vm(&self, req: Request<VmRef>) -> Result<Response<AgentAck>, Status> {
        let name = &req.get_ref().name;
        self.domains()?.remove(name).await.map_err(vm_status)?;
        tracing::info!(vm = %name, "VM removed");
        Ok(Response::new(AgentAck { message: format!("{name} is not on {}", self.host) }))
    }

    async fn list_vms(&self, _: Request<ListVmsRequest>) -> Result<Response<ListVmsResponse>, Status> {
        let vms = match &self.domains {
            Some(d) => d.list().await.map_err(vm_status)?,
            None => Vec::new(),
        };
        Ok(Response::new(ListVmsResponse { vms }))
    }
}
