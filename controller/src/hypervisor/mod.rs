//! The hypervisor behind a small trait, as cloud-hypervisor keeps its backends: hosts
//! named with their URIs, a migration that reports progress and can be cancelled, an
//! inventory, typed errors. The planner and the executor never know which backend runs:
//! `sim` is the simulated one (pre-copy on the controller's clock), `libvirt` the real one.

use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::records::MigrationStats;

pub mod libvirt;
pub mod sim;

pub use libvirt::LibvirtHypervisor;
pub use sim::SimHypervisor;

/// A host as the hypervisor reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostRef {
    pub name: String,
    /// The host's libvirt URI as the controller reaches it (empty for the simulated backend).
    pub uri: String,
    /// The same daemon as other hosts' daemons reach it (peer-to-peer migration).
    pub peer_uri: String,
    /// Where migration data to this host goes (`addr` or `addr:port`; empty: libvirt's choice).
    pub migration_address: String,
}

impl HostRef {
    /// The topology's host `h`.
    pub fn of(h: &straddle_model::topology::Host) -> HostRef {
        HostRef {
            name: h.name.clone(),
            uri: h.libvirt_uri.clone(),
            peer_uri: h.peer_uri.clone(),
            migration_address: h.migration_address.clone(),
        }
    }
}

/// One live migration to start.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRequest {
    /// The executor's operation id.
    pub op: u64,
    pub vm: String,
    pub from: HostRef,
    pub to: HostRef,
    /// Bytes per second the model expects the path to carry (what the simulator moves).
    pub link_bytes_per_s: f64,
    /// Most bytes per second the migration may use (`None`: no cap).
    pub max_bytes_per_s: Option<f64>,
    /// Longest pause of the guest allowed at switch-over.
    pub max_downtime: Duration,
}

/// Where a running migration is.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrationPhase {
    Starting,
    Precopy { pass: u32, transferred_bytes: f64, remaining_bytes: f64, dirty_bytes_per_s: f64, bandwidth_bytes_per_s: f64 },
    Completed(MigrationStats),
    Failed(String),
    Cancelled,
}

/// A VM a host runs.
#[derive(Debug, Clone, PartialEq)]
pub struct VmStatus {
    pub name: String,
    pub running: bool,
    pub memory_bytes: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HypervisorError {
    #[error("unknown VM {0:?}")]
    UnknownVm(String),
    #[error("VM {vm:?} is on {actual:?}, not {expected:?}")]
    WrongHost { vm: String, expected: String, actual: String },
    #[error("host {host:?} is unreachable: {why}")]
    Unreachable { host: String, why: String },
    #[error("migration of {vm:?} failed: {why}; the VM stays on {host:?}")]
    MigrationFailed { vm: String, host: String, why: String },
    #[error("migration of {vm:?} was cancelled; the VM stays on {host:?}")]
    Cancelled { vm: String, host: String },
    #[error("host {host:?} has {free_mib} MiB of memory free and {vm:?} needs {need_mib} MiB: not migrated, the VM stays where it was")]
    NoRoom { host: String, vm: String, need_mib: u64, free_mib: u64 },
    #[error("{host}: {why}")]
    Backend { host: String, why: String },
}

/// A started migration: its progress, a way to cancel it, and its end.
pub struct MigrationHandle {
    pub progress: watch::Receiver<MigrationPhase>,
    cancel: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<Result<MigrationStats, HypervisorError>>,
}

impl MigrationHandle {
    /// A handle and the backend's ends: progress to publish, a cancel request to watch, the
    /// result to send.
    pub fn new() -> (MigrationHandle, MigrationDriver) {
        let (ptx, prx) = watch::channel(MigrationPhase::Starting);
        let (ctx, crx) = oneshot::channel();
        let (dtx, drx) = oneshot::channel();
        (MigrationHandle { progress: prx, cancel: Some(ctx), done: drx }, MigrationDriver { progress: ptx, cancel: crx, done: dtx })
    }

    /// Asks the backend to abort; the result then says whether it did (a migration that
    /// already switched over completes).
    pub fn cancel(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
    }

    /// The migration's end.
    pub async fn finish(&mut self) -> Result<MigrationStats, HypervisorError> {
        match (&mut self.done).await {
            Ok(r) => r,
            Err(_) => Err(HypervisorError::Backend { host: String::new(), why: "the migration's driver went away".into() }),
        }
    }
}

/// The backend's side of a migration.
pub struct MigrationDriver {
    pub progress: watch::Sender<MigrationPhase>,
    pub cancel: oneshot::Receiver<()>,
    pub done: oneshot::Sender<Result<MigrationStats, HypervisorError>>,
}

/// What the controller needs from a hypervisor.
#[async_trait::async_trait]
pub trait Hypervisor: Send + Sync {
    /// The VMs a host runs.
    async fn inventory(&self, host: &HostRef) -> Result<Vec<VmStatus>, HypervisorError>;
    /// Starts a live migration; on failure or cancel the VM keeps running where it was.
    async fn start_migration(&self, req: MigrationRequest) -> Result<MigrationHandle, HypervisorError>;

    /// After a controller restart, the end of a migration of `vm` from `from` to `to` that
    /// the previous run started and no longer watches: one still in progress is aborted
    /// (nobody steers it now), what a failed one left on the other host is removed, and the
    /// answer is the host that runs the VM (`None`: neither does, or neither answers).
    async fn resolve(&self, vm: &str, from: &HostRef, to: &HostRef) -> Option<String> {
        locate(self, &[from.clone(), to.clone()], vm).await
    }

    /// Dirty rates (bytes per second) measured now on the VMs `host` runs, for those it can
    /// measure; a backend that cannot measure answers none.
    async fn dirty_rates(&self, _host: &HostRef) -> Result<Vec<(String, f64)>, HypervisorError> {
        Ok(Vec::new())
    }
}

/// Which of `hosts` runs `vm`, by their inventories (hosts that do not answer are skipped).
pub async fn locate<H: Hypervisor + ?Sized>(hv: &H, hosts: &[HostRef], vm: &str) -> Option<String> {
    for h in hosts {
        if let Ok(vms) = hv.inventory(h).await {
            if vms.iter().any(|v| v.name == vm && v.running) {
                return Some(h.name.clone());
            }
        }
    }
    None
}
