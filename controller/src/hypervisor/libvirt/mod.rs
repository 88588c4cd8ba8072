//! The libvirt backend of the hypervisor: one connection per host from the topology's
//! URIs (`conn`), live peer-to-peer migrations steered by measured progress (`migrate`),
//! and the two calls the `virt` crate lacks (`raw`). The controller drives each host's
//! libvirt daemon directly rather than through the site's agent: a migration needs both
//! daemons and one view of its progress and its abort, and the daemons already speak a
//! remote protocol with TLS and keepalive; the agents build what runs under the VMs.

mod conn;
mod migrate;
mod raw;

use std::sync::Arc;

pub use migrate::Settings;

use super::{HostRef, Hypervisor, HypervisorError, MigrationHandle, MigrationRequest, VmStatus};
use conn::{backend, Pool};

/// VMs and migrations through libvirt.
pub struct LibvirtHypervisor {
    pool: Arc<Pool>,
    settings: Settings,
}

impl LibvirtHypervisor {
    pub fn new(settings: Settings) -> LibvirtHypervisor {
        LibvirtHypervisor { pool: Arc::new(Pool::new()), settings }
    }
}

/// Runs a blocking libvirt call off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, HypervisorError> + Send + 'static) -> Result<T, HypervisorError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(HypervisorError::Backend { host: String::new(), why: format!("a libvirt call failed: {e}") }))
}

#[async_trait::async_trait]
impl Hypervisor for LibvirtHypervisor {
    async fn inventory(&self, host: &HostRef) -> Result<Vec<VmStatus>, HypervisorError> {
        let (pool, host) = (self.pool.clone(), host.clone());
        blocking(move || {
            let c = pool.connect(&host)?;
            let doms = c.list_all_domains(0).map_err(|e| backend(&host.name, &e))?;
            let mut out = Vec::with_capacity(doms.len());
            for d in doms {
                // A domain that vanished between the listing and these calls is skipped.
                let (Ok(name), Ok(info)) = (d.name(), d.info()) else { continue };
                out.push(VmStatus { name, running: migrate::runs_here(&d), memory_bytes: info.max_mem as f64 * 1024.0 });
            }
            Ok(out)
        })
        .await
    }

    async fn resolve(&self, vm: &str, from: &HostRef, to: &HostRef) -> Option<String> {
        let (pool, vm, from, to) = (self.pool.clone(), vm.to_string(), from.clone(), to.clone());
        blocking(move || Ok(migrate::resolve(&pool, &vm, &from, &to))).await.ok().flatten()
    }

    async fn dirty_rates(&self, host: &HostRef) -> Result<Vec<(String, f64)>, HypervisorError> {
        let (pool, host) = (self.pool.clone(), host.clone());
        blocking(move || migrate::dirty_rates(&pool, &host)).await
    }

    async fn start_migration(&self, req: MigrationRequest) -> Result<MigrationHandle, HypervisorError> {
        let (pool, settings) = (self.pool.clone(), self.settings.clone());
        blocking(move || {
            let prepared = migrate::prepare(&pool, req)?;
            let (handle, driver) = MigrationHandle::new();
            migrate::spawn(pool, settings, prepared, driver)?;
            Ok(handle)
        })
        .await
    }
}
