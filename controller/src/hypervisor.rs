//! The hypervisor behind a small trait: the planner and executor never know which one runs.
//! `SimHypervisor` models pre-copy live migration (memory, dirty rate, bandwidth); the
//! libvirt backend sits beside it in its own module.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// What a pre-copy migration is predicted to take.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MigrationEstimate {
    pub total_s: f64,
    pub downtime_s: f64,
    pub transferred_bytes: f64,
    pub rounds: u32,
    /// False when the guest dirties memory at least as fast as the link carries it: plain
    /// pre-copy would never finish.
    pub converges: bool,
}

/// Pre-copy: round 0 copies all memory; each next round copies what was dirtied during the
/// previous one; stop-and-copy once a round fits in `max_downtime_s` (or after
/// `max_rounds`).
pub fn precopy(memory_bytes: f64, dirty_bps: f64, bandwidth_bps: f64, max_downtime_s: f64, max_rounds: u32) -> MigrationEstimate {
    let bw = bandwidth_bps.max(1.0);
    let mut to_send = memory_bytes;
    let mut total = 0.0;
    let mut transferred = 0.0;
    let mut rounds = 0;
    while rounds < max_rounds && to_send / bw > max_downtime_s {
        let t = to_send / bw;
        total += t;
        transferred += to_send;
        to_send = (dirty_bps * t).min(memory_bytes);
        rounds += 1;
        if dirty_bps >= bw {
            break;
        }
    }
    let downtime = to_send / bw;
    MigrationEstimate {
        total_s: total + downtime,
        downtime_s: downtime,
        transferred_bytes: transferred + to_send,
        rounds: rounds + 1,
        converges: dirty_bps < bw,
    }
}

/// Defaults of the model: libvirt's default max downtime is 300 ms; 30 pre-copy rounds.
pub const MAX_DOWNTIME_S: f64 = 0.3;
pub const MAX_ROUNDS: u32 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRequest {
    pub vm: String,
    pub from_host: String,
    pub to_host: String,
    pub bandwidth_bps: f64,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationOutcome {
    pub total_s: f64,
    pub downtime_s: f64,
    pub transferred_bytes: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HypervisorError {
    #[error("unknown VM {0:?}")]
    UnknownVm(String),
    #[error("VM {vm:?} is on {actual:?}, not {expected:?}")]
    WrongHost { vm: String, expected: String, actual: String },
    #[error("migration of {vm:?} would take {needed_s:.1} s, over its {timeout_s:.1} s timeout; aborted, the VM stays on {host:?}")]
    Timeout { vm: String, needed_s: f64, timeout_s: f64, host: String },
    #[error("migration of {vm:?} does not converge (dirty rate at or above bandwidth); aborted, the VM stays on {host:?}")]
    NoConvergence { vm: String, host: String },
    #[error("host {0:?} is unreachable")]
    Unreachable(String),
    #[error("{0}")]
    Backend(String),
}

/// What the controller needs from a hypervisor.
#[tonic::async_trait]
pub trait Hypervisor: Send + Sync {
    /// Where a VM runs now.
    async fn locate(&self, vm: &str) -> Result<String, HypervisorError>;
    /// Live-migrates a VM; on failure it keeps running where it was.
    async fn migrate(&self, req: &MigrationRequest) -> Result<MigrationOutcome, HypervisorError>;
}

/// A simulated hypervisor: VMs on hosts, migrations timed by the pre-copy model (on tokio's
/// clock, so paused-time tests run instantly).
pub struct SimHypervisor {
    vms: Mutex<HashMap<String, SimVm>>,
    unreachable: Mutex<Vec<String>>,
}

#[derive(Debug, Clone)]
struct SimVm {
    host: String,
    memory_bytes: f64,
    dirty_bps: f64,
}

impl SimHypervisor {
    pub fn new() -> SimHypervisor {
        SimHypervisor { vms: Mutex::new(HashMap::new()), unreachable: Mutex::new(vec![]) }
    }

    pub fn add_vm(&self, name: &str, host: &str, memory_bytes: f64, dirty_bps: f64) {
        self.vms.lock().unwrap().insert(name.into(), SimVm { host: host.into(), memory_bytes, dirty_bps });
    }

    /// Makes a host unreachable (a cut link, a dead daemon) or reachable again.
    pub fn set_unreachable(&self, host: &str, down: bool) {
        let mut u = self.unreachable.lock().unwrap();
        u.retain(|h| h != host);
        if down {
            u.push(host.into());
        }
    }
}

impl Default for SimHypervisor {
    fn default() -> Self {
        Self::new()
    }
}

#[tonic::async_trait]
impl Hypervisor for SimHypervisor {
    async fn locate(&self, vm: &str) -> Result<String, HypervisorError> {
        self.vms.lock().unwrap().get(vm).map(|v| v.host.clone()).ok_or_else(|| HypervisorError::UnknownVm(vm.into()))
    }

    async fn migrate(&self, req: &MigrationRequest) -> Result<MigrationOutcome, HypervisorError> {
        let vm = self.vms.lock().unwrap().get(&req.vm).cloned().ok_or_else(|| HypervisorError::UnknownVm(req.vm.clone()))?;
        if vm.host != req.from_host {
            return Err(HypervisorError::WrongHost { vm: req.vm.clone(), expected: req.from_host.clone(), actual: vm.host });
        }
        if self.unreachable.lock().unwrap().contains(&req.to_host) {
            return Err(HypervisorError::Unreachable(req.to_host.clone()));
        }
        let est = precopy(vm.memory_bytes, vm.dirty_bps, req.bandwidth_bps, MAX_DOWNTIME_S, MAX_ROUNDS);
        if !est.converges {
            tokio::time::sleep(req.timeout.min(Duration::from_secs_f64(est.total_s))).await;
            return Err(HypervisorError::NoConvergence { vm: req.vm.clone(), host: vm.host });
        }
        if est.total_s > req.timeout.as_secs_f64() {
            tokio::time::sleep(req.timeout).await;
            return Err(HypervisorError::Timeout {
                vm: req.vm.clone(),
                needed_s: est.total_s,
                timeout_s: req.timeout.as_secs_f64(),
                host: vm.host,
            });
        }
        tokio::time::sleep(Duration::from_secs_f64(est.total_s)).await;
        self.vms.lock().unwrap().get_mut(&req.vm).expect("checked above").host = req.to_host.clone();
        Ok(MigrationOutcome { total_s: est.total_s, downtime_s: est.downtime_s, transferred_bytes: est.transferred_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MBIT: f64 = 1e6 / 8.0;

    #[test]
    fn idle_guest_copies_memory_once() {
        let e = precopy(GIB, 0.0, 1000.0 * MBIT, 0.3, 30);
        assert!((e.total_s - GIB / (1000.0 * MBIT)).abs() < 1e-6, "{e:?}");
        assert_eq!(e.downtime_s, 0.0);
        assert!(e.converges);
    }

    #[test]
    fn dirtying_guest_needs_more_rounds_and_may_not_converge() {
        let fast = precopy(GIB, 10.0 * 1048576.0, 1000.0 * MBIT, 0.3, 30);
        assert!(fast.rounds > 1 && fast.downtime_s <= 0.3 && fast.converges, "{fast:?}");
        assert!(fast.transferred_bytes > GIB);
        let slow = precopy(256.0 * 1048576.0, 32.0 * 1048576.0, 100.0 * MBIT, 0.3, 30);
        assert!(!slow.converges, "32 MB/s dirty over 100 Mbit/s: {slow:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn sim_migrates_on_tokio_time_and_fails_safe() {
        let h = SimHypervisor::new();
        h.add_vm("v", "a1", GIB, 0.0);
        let req = MigrationRequest {
            vm: "v".into(),
            from_host: "a1".into(),
            to_host: "b1".into(),
            bandwidth_bps: 1000.0 * MBIT,
            timeout: Duration::from_secs(60),
        };
        let t = tokio::time::Instant::now();
        let out = h.migrate(&req).await.unwrap();
        assert!((t.elapsed().as_secs_f64() - out.total_s).abs() < 0.01);
        assert_eq!(h.locate("v").await.unwrap(), "b1");
        // Too slow for its timeout: aborted, VM stays.
        let slow = MigrationRequest {
            from_host: "b1".into(),
            to_host: "a1".into(),
            bandwidth_bps: 1.0 * MBIT,
            timeout: Duration::from_secs(10),
            ..req.clone()
        };
        assert!(matches!(h.migrate(&slow).await, Err(HypervisorError::Timeout { .. })));
        assert_eq!(h.locate("v").await.unwrap(), "b1");
        h.set_unreachable("a1", true);
        let back = MigrationRequest { from_host: "b1".into(), to_host: "a1".into(), ..req };
        assert_eq!(h.migrate(&back).await, Err(HypervisorError::Unreachable("a1".into())));
        assert_eq!(h.locate("v").await.unwrap(), "b1");
    }
}
