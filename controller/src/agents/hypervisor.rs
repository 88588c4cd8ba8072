//! Any hypervisor, with the cluster's network built on a migration's destination first:
//! a VM never arrives where its segment is not.

use std::sync::Arc;

use crate::hypervisor::{HostRef, Hypervisor, HypervisorError, MigrationHandle, MigrationRequest, VmStatus};

use super::network::Network;

pub struct Networked {
    pub inner: Arc<dyn Hypervisor>,
    pub net: Arc<Network>,
}

#[async_trait::async_trait]
impl Hypervisor for Networked {
    async fn inventory(&self, host: &HostRef) -> Result<Vec<VmStatus>, HypervisorError> {
        self.inner.inventory(host).await
    }

    async fn start_migration(&self, req: MigrationRequest) -> Result<MigrationHandle, HypervisorError> {
        self.net.prepare(&req.vm, &req.to.name).await.map_err(|why| HypervisorError::Backend { host: req.to.name.clone(), why })?;
        self.inner.start_migration(req).await
    }

    async fn resolve(&self, vm: &str, from: &HostRef, to: &HostRef) -> Option<String> {
        self.inner.resolve(vm, from, to).await
    }

    async fn dirty_rates(&self, host: &HostRef) -> Result<Vec<(String, f64)>, HypervisorError> {
        self.inner.dirty_rates(host).await
    }
}
