//! A simulated hypervisor: VMs on hosts, migrations that run pass by pass as the pre-copy
//! model says (on tokio's clock, so paused-time tests run instantly), report progress,
//! honour cancel, and fail if either end becomes unreachable mid-way. A guest that dirties
//! memory as fast as the link carries it never converges: the migration runs until it is
//! cancelled, as a real pre-copy does.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use straddle_model::migration::MAX_ROUNDS;

use super::{HostRef, Hypervisor, HypervisorError, MigrationHandle, MigrationPhase, MigrationRequest, VmStatus};
use crate::records::MigrationStats;

#[derive(Debug, Clone)]
struct SimVm {
    host: String,
    memory_bytes: f64,
    dirty_bps: f64,
}

#[derive(Default)]
struct Inner {
    vms: Mutex<HashMap<String, SimVm>>,
    unreachable: Mutex<HashSet<String>>,
    /// VMs migrating now (a second migration of one VM is refused).
    migrating: Mutex<HashSet<String>>,
    started: AtomicU64,
}

#[derive(Default, Clone)]
pub struct SimHypervisor {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimHypervisor {
    pub fn new() -> SimHypervisor {
        SimHypervisor::default()
    }

    pub fn add_vm(&self, name: &str, host: &str, memory_bytes: f64, dirty_bps: f64) {
        lock(&self.inner.vms).insert(name.into(), SimVm { host: host.into(), memory_bytes, dirty_bps });
    }

    /// Makes a host unreachable (a cut link, a dead daemon) or reachable again.
    pub fn set_unreachable(&self, host: &str, down: bool) {
        let mut u = lock(&self.inner.unreachable);
        if down {
            u.insert(host.into());
        } else {
            u.remove(host);
        }
    }

    /// Where a VM runs now.
    pub fn host_of(&self, vm: &str) -> Option<String> {
        lock(&self.inner.vms).get(vm).map(|v| v.host.clone())
    }

    /// Moves a VM by hand (as an operator with virsh would).
    pub fn put(&self, vm: &str, host: &str) {
        if let Some(v) = lock(&self.inner.vms).get_mut(vm) {
            v.host = host.into();
        }
    }

    /// Migrations started so far.
    pub fn migrations_started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    fn down(&self, host: &str) -> bool {
        lock(&self.inner.unreachable).contains(host)
    }
}

#[async_trait::async_trait]
impl Hypervisor for SimHypervisor {
    async fn inventory(&self, host: &HostRef) -> Result<Vec<VmStatus>, HypervisorError> {
        if self.down(&host.name) {
            return Err(HypervisorError::Unreachable { host: host.name.clone(), why: "no answer".into() });
        }
        let vms = lock(&self.inner.vms);
        let mut out: Vec<VmStatus> = vms
            .iter()
            .filter(|(_, v)| v.host == host.name)
            .map(|(n, v)| VmStatus { name: n.clone(), running: true, memory_bytes: v.memory_bytes })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn start_migration(&self, req: MigrationRequest) -> Result<MigrationHandle, HypervisorError> {
        let vm = lock(&self.inner.vms).get(&req.vm).cloned().ok_or_else(|| HypervisorError::UnknownVm(req.vm.clone()))?;
        if vm.host != req.from.name {
            return Err(HypervisorError::WrongHost { vm: req.vm.clone(), expected: req.from.name.clone(), actual: vm.host });
        }
        for h in [&req.from.name, &req.to.name] {
            if self.down(h) {
                return Err(HypervisorError::Unreachable { host: h.clone(), why: "no answer".into() });
            }
        }
        if !lock(&self.inner.migrating).insert(req.vm.clone()) {
            return Err(HypervisorError::MigrationFailed {
                vm: req.vm.clone(),
                host: vm.host,
                why: "a migration of it is already running".into(),
            });
        }
        self.inner.started.fetch_add(1, Ordering::Relaxed);
        let (handle, driver) = MigrationHandle::new();
        let me = self.clone();
        tokio::spawn(async move {
            let r = me.run(&req, &vm, driver.progress.clone(), driver.cancel).await;
            lock(&me.inner.migrating).remove(&req.vm);
            let phase = match &r {
                Ok(s) => MigrationPhase::Completed(*s),
                Err(HypervisorError::Cancelled { .. }) => MigrationPhase::Cancelled,
                Err(e) => MigrationPhase::Failed(e.to_string()),
            };
            driver.progress.send_replace(phase);
            let _ = driver.done.send(r);
        });
        Ok(handle)
    }
}

impl SimHypervisor {
    /// Pre-copy pass by pass: pass 0 sends all memory, each next pass what was dirtied
    /// during the previous one, then the guest pauses for the rest (the downtime).
    async fn run(
        &self,
        req: &MigrationRequest,
        vm: &SimVm,
        progress: tokio::sync::watch::Sender<MigrationPhase>,
        mut cancel: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<MigrationStats, HypervisorError> {
        let bw = req.max_bytes_per_s.map_or(req.link_bytes_per_s, |cap| cap.min(req.link_bytes_per_s)).max(1.0);
        let max_down = req.max_downtime.as_secs_f64();
        let (mut to_send, mut transferred, mut elapsed) = (vm.memory_bytes, 0.0, 0.0);
        let mut pass = 0u32;
        let fail = |why: &str| HypervisorError::MigrationFailed { vm: req.vm.clone(), host: req.from.name.clone(), why: why.into() };
        loop {
            let t = to_send / bw;
            if t <= max_down || (pass >= MAX_ROUNDS && vm.dirty_bps < bw) {
                break;
            }
            progress.send_replace(MigrationPhase::Precopy {
                pass,
                transferred_bytes: transferred,
                remaining_bytes: to_send,
                dirty_bytes_per_s: vm.dirty_bps,
                bandwidth_bytes_per_s: bw,
            });
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(t)) => {}
                _ = &mut cancel => return Err(HypervisorError::Cancelled { vm: req.vm.clone(), host: req.from.name.clone() }),
            }
            if self.down(&req.to.name) || self.down(&req.from.name) {
                return Err(fail("the link to the destination broke"));
            }
            elapsed += t;
            transferred += to_send;
            // A guest dirtying as fast as the link carries never gets below the downtime.
            to_send = (vm.dirty_bps * t).min(vm.memory_bytes);
            pass += 1;
        }
        // Stop and copy: past this point the migration completes.
        let downtime = to_send / bw;
        tokio::time::sleep(Duration::from_secs_f64(downtime)).await;
        if self.down(&req.to.name) {
            return Err(fail("the destination went away at switch-over"));
        }
        if let Some(v) = lock(&self.inner.vms).get_mut(&req.vm) {
            v.host = req.to.name.clone();
        }
        Ok(MigrationStats {
            total_s: elapsed + downtime,
            downtime_s: downtime,
            transferred_bytes: transferred + to_send,
            ..MigrationStats::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MBIT: f64 = 1e6 / 8.0;

    fn host(n: &str) -> HostRef {
        HostRef { name: n.into(), ..HostRef::default() }
    }

    fn req(vm: &str, from: &str, to: &str, bw: f64) -> MigrationRequest {
        MigrationRequest {
            op: 1,
            vm: vm.into(),
            from: host(from),
            to: host(to),
            link_bytes_per_s: bw,
            max_bytes_per_s: None,
            max_downtime: Duration::from_millis(300),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn migrates_on_tokio_time_with_progress() {
        let h = SimHypervisor::new();
        h.add_vm("v", "a1", GIB, 0.0);
        let t = tokio::time::Instant::now();
        let mut m = h.start_migration(req("v", "a1", "b1", 1000.0 * MBIT)).await.unwrap();
        let out = m.finish().await.unwrap();
        assert!((t.elapsed().as_secs_f64() - out.total_s).abs() < 0.01, "{out:?}");
        assert!((out.total_s - GIB / (1000.0 * MBIT)).abs() < 0.01);
        assert_eq!(h.host_of("v").as_deref(), Some("b1"));
        assert!(matches!(*m.progress.borrow(), MigrationPhase::Completed(_)));
        assert_eq!(h.inventory(&host("b1")).await.unwrap()[0].name, "v");
        assert!(h.inventory(&host("a1")).await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_unreachable_and_non_convergence_leave_the_vm_where_it_was() {
        let h = SimHypervisor::new();
        h.add_vm("v", "a1", GIB, 0.0);
        h.add_vm("hot", "a1", 256.0 * 1048576.0, 32.0 * 1048576.0);
        let mut m = h.start_migration(req("v", "a1", "b1", 10.0 * MBIT)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(matches!(*m.progress.borrow(), MigrationPhase::Precopy { pass: 0, .. }));
        assert!(h.start_migration(req("v", "a1", "b1", MBIT)).await.is_err(), "one migration per VM");
        m.cancel();
        assert!(matches!(m.finish().await, Err(HypervisorError::Cancelled { .. })));
        assert_eq!(h.host_of("v").as_deref(), Some("a1"));
        // The destination dies mid-way.
        let mut m = h.start_migration(req("v", "a1", "b1", 100.0 * MBIT)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        h.set_unreachable("b1", true);
        assert!(matches!(m.finish().await, Err(HypervisorError::MigrationFailed { .. })));
        assert_eq!(h.host_of("v").as_deref(), Some("a1"));
        assert!(matches!(h.start_migration(req("v", "a1", "b1", MBIT)).await, Err(HypervisorError::Unreachable { .. })));
        h.set_unreachable("b1", false);
        // 32 MiB/s dirty over 100 Mbit/s never converges: it runs until cancelled.
        let mut m = h.start_migration(req("hot", "a1", "b1", 100.0 * MBIT)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(matches!(*m.progress.borrow(), MigrationPhase::Precopy { .. }), "still copying after 10 min");
        m.cancel();
        assert!(m.finish().await.is_err());
        assert_eq!(h.host_of("hot").as_deref(), Some("a1"));
        assert_eq!(h.migrations_started(), 3);
    }
}
