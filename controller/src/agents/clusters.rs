//! Building and tearing down a networked cluster through the agents: its segment on every
//! host that runs a member, then each member VM defined and started on its host. A build
//! that fails removes what it created; neither starts while a member's host has no agent.

use std::collections::BTreeSet;

use straddle_model::topology::VmId;
use straddle_proto::{ListVmsRequest, VmRef, VmSpec};

use super::network::{lock, Network};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Failed(String),
}

/// The guest image and size of a build.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub kernel: String,
    pub initrd: String,
    pub cmdline: String,
    pub vcpus: u32,
}

/// Whole MiB holding `bytes` (positive and finite: the topology checked it).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn mib(bytes: f64) -> u32 {
    (bytes / 1048576.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

fn status(s: tonic::Status) -> String {
    format!("{}: {}", s.code(), s.message())
}

impl Network {
    /// The cluster's members with the host each is placed on, every host with an agent.
    fn members(&self, cluster: &str) -> Result<Vec<(VmId, String)>, ClusterError> {
        let topo = &self.plane.topo;
        if !topo.clusters.iter().any(|c| c.name == cluster) {
            return Err(ClusterError::Invalid(format!(
                "cluster = {cluster:?}: not a networked cluster of the topology (one with an id and a vni)"
            )));
        }
        let vm_host = self.plane.read(|st| st.vm_host.clone());
        let registered: BTreeSet<String> = self.agents.endpoints().into_iter().map(|(h, ..)| h).collect();
        let mut out = Vec::new();
        for (v, vm) in topo.vms.iter().enumerate().filter(|(_, vm)| vm.cluster == cluster && vm.node > 0) {
            let host = topo.hosts[vm_host[v]].name.clone();
            if !registered.contains(&host) {
                return Err(ClusterError::Precondition(format!(
                    "host {host:?} (of VM {:?}) has no agent registered: nothing was done",
                    vm.name
                )));
            }
            out.push((v, host));
        }
        Ok(out)
    }

    /// Builds `cluster`: returns "<vm> on <host>" per member.
    pub async fn build_cluster(&self, cluster: &str, image: &Image) -> Result<Vec<String>, ClusterError> {
        let members = self.members(cluster)?;
        let topo = self.plane.topo.clone();
        let c = topo.clusters.iter().find(|c| c.name == cluster).cloned().expect("checked");
        let now = self.plane.clock.now();
        for (v, host) in &members {
            let h = topo.host(host).expect("a topology host");
            lock(&self.staged).insert(*v, (h, now));
        }
        let pushed = self.push().await;
        for (_, host) in &members {
            if let Some(Err(e)) = pushed.get(host) {
                return Err(ClusterError::Failed(format!("the agent of {host:?} did not build the segment of {cluster:?}: {e}")));
            }
        }
        let mut created: Vec<(String, String)> = Vec::new();
        let mut out = Vec::new();
        for (v, host) in &members {
            let vm = &topo.vms[*v];
            let spec = VmSpec {
                name: vm.name.clone(),
                cluster: cluster.to_string(),
                cluster_id: c.id,
                vni: c.vni,
                home_site: u32::try_from(vm.home_site).unwrap_or(u32::MAX),
                node: vm.node,
                memory_mib: mib(vm.memory_bytes),
                vcpus: image.vcpus.max(1),
                kernel: image.kernel.clone(),
                initrd: image.initrd.clone(),
                cmdline: image.cmdline.clone(),
            };
            match self.build_one(host, spec).await {
                Ok(new) => {
                    if new {
                        created.push((vm.name.clone(), host.clone()));
                    }
                    out.push(format!("{} on {host}", vm.name));
                }
                Err(e) => {
                    for (name, h) in &created {
                        if let Err(e) = self.remove_one(h, name).await {
                            tracing::error!(vm = %name, host = %h, "could not remove after a failed build: {e}");
                        }
                    }
                    return Err(ClusterError::Failed(format!("VM {:?} on {host:?}: {e}; the VMs this build created are removed", vm.name)));
                }
            }
        }
        {
            let mut absent = lock(&self.plane.absent);
            for (v, _) in &members {
                absent.remove(v);
            }
        }
        self.push().await;
        tracing::info!(cluster, vms = out.len(), "cluster built");
        Ok(out)
    }

    /// Defines and starts one VM; whether it was not there before.
    async fn build_one(&self, host: &str, spec: VmSpec) -> Result<bool, String> {
        let mut a = self.agent(host).ok_or_else(|| format!("no agent on {host:?}"))??;
        let name = spec.name.clone();
        let had = a.list_vms(self.authed(ListVmsRequest {})?).await.map_err(status)?.into_inner().vms.iter().any(|v| v.name == name);
        a.define_vm(self.authed(spec)?).await.map_err(status)?;
        if let Err(e) = a.start_vm(self.authed(VmRef { name: name.clone() })?).await {
            if !had {
                let _ = a.remove_vm(self.authed(VmRef { name })?).await;
            }
            return Err(status(e));
        }
        Ok(!had)
    }

    async fn remove_one(&self, host: &str, name: &str) -> Result<(), String> {
        let mut a = self.agent(host).ok_or_else(|| format!("no agent on {host:?}"))??;
        a.remove_vm(self.authed(VmRef { name: name.to_string() })?).await.map_err(status)?;
        Ok(())
    }

    /// Stops and removes `cluster`'s VMs; its segments go with them.
    pub async fn tear_down_cluster(&self, cluster: &str) -> Result<Vec<String>, ClusterError> {
        let members = self.members(cluster)?;
        let mut out = Vec::new();
        for (v, host) in &members {
            let name = self.plane.topo.vms[*v].name.clone();
            self.remove_one(host, &name).await.map_err(|e| ClusterError::Failed(format!("VM {name:?} on {host:?}: {e}")))?;
            lock(&self.plane.absent).insert(*v);
            lock(&self.staged).remove(v);
            out.push(format!("{name} on {host}"));
        }
        self.push().await;
        tracing::info!(cluster, vms = out.len(), "cluster torn down");
        Ok(out)
    }
}
