//! What finished migrations and measured dirty rates teach the estimate. The pre-copy model
//! (`migration`) starts from the topology's declared figures; once a migration between two
//! sites has completed, the bandwidth it actually got and its fixed cost (the handshake,
//! the destination's start, the switch-over: libvirt's total time less the copy) replace
//! the declared link, and what a VM actually sent over that path (QEMU skips zero pages, so
//! an idle guest sends far less than its memory) replaces its memory size. A dirty rate
//! measured on the running VM replaces the declared one. Each figure is an exponentially
//! weighted mean of what was seen, so one odd run moves it half way, not all the way.
//!
//! Estimates are only ever made before the migration they predict: a run is scored with
//! what earlier runs taught, never with itself.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::migration::{self, MigrationEstimate, MAX_DOWNTIME_S, MAX_ROUNDS};
use crate::topology::{HostId, SiteId, Topology, VmId};

/// Weight of the newest observation in a mean.
const NEWEST: f64 = 0.5;

fn blend(old: Option<f64>, new: f64) -> f64 {
    match old {
        Some(o) => o + NEWEST * (new - o),
        None => new,
    }
}

/// What one site pair taught.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PathFigures {
    /// Bytes per second migrations got over it.
    pub bandwidth_bps: f64,
    /// Seconds of a migration that are not copying: total less bytes / bandwidth.
    pub fixed_s: f64,
    pub runs: u32,
}

/// What one VM's migrations over one site pair taught.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VmFigures {
    pub sent_bytes: f64,
    pub downtime_s: f64,
    pub runs: u32,
}

/// One completed migration as the hypervisor reported it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub vm: VmId,
    pub from: SiteId,
    pub to: SiteId,
    pub total_s: f64,
    pub downtime_s: f64,
    pub transferred_bytes: f64,
    /// The copy's own bandwidth (0: not reported; then bytes over total time).
    pub bandwidth_bps: f64,
    /// The dirty rate seen during the copy (0: not reported).
    pub dirty_bps: f64,
}

/// The learnt figures, keyed by site pair (unordered: a path carries both ways alike) and
/// by VM.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Learnt {
    paths: BTreeMap<(SiteId, SiteId), PathFigures>,
    vms: BTreeMap<(VmId, SiteId, SiteId), VmFigures>,
    dirty: BTreeMap<VmId, f64>,
}

fn pair(a: SiteId, b: SiteId) -> (SiteId, SiteId) {
    (a.min(b), a.max(b))
}

impl Learnt {
    /// Takes in a completed migration. Figures that are not finite or not positive where
    /// they must be are ignored (a report without them teaches nothing).
    pub fn learn(&mut self, o: &Observed) {
        if !(o.total_s.is_finite() && o.total_s > 0.0 && o.transferred_bytes.is_finite() && o.transferred_bytes > 0.0) {
            return;
        }
        let bw = if o.bandwidth_bps.is_finite() && o.bandwidth_bps > 0.0 { o.bandwidth_bps } else { o.transferred_bytes / o.total_s };
        let fixed = (o.total_s - o.transferred_bytes / bw).max(0.0);
        let k = pair(o.from, o.to);
        let p = self.paths.get(&k);
        let next = PathFigures {
            bandwidth_bps: blend(p.map(|p| p.bandwidth_bps), bw),
            fixed_s: blend(p.map(|p| p.fixed_s), fixed),
            runs: p.map_or(0, |p| p.runs) + 1,
        };
        self.paths.insert(k, next);
        let vk = (o.vm, k.0, k.1);
        let v = self.vms.get(&vk);
        let downtime = if o.downtime_s.is_finite() { o.downtime_s.max(0.0) } else { 0.0 };
        let next = VmFigures {
            sent_bytes: blend(v.map(|v| v.sent_bytes), o.transferred_bytes),
            downtime_s: blend(v.map(|v| v.downtime_s), downtime),
            runs: v.map_or(0, |v| v.runs) + 1,
        };
        self.vms.insert(vk, next);
        if o.dirty_bps.is_finite() && o.dirty_bps > 0.0 {
            self.measured_dirty(o.vm, o.dirty_bps);
        }
    }

    /// A dirty rate measured on the running VM (bytes per second).
    pub fn measured_dirty(&mut self, vm: VmId, bps: f64) {
        if bps.is_finite() && bps >= 0.0 {
            let old = self.dirty.get(&vm).copied();
            self.dirty.insert(vm, blend(old, bps));
        }
    }

    /// The VM's dirty rate: measured where there is a measurement, declared otherwise.
    pub fn dirty_bps(&self, topo: &Topology, vm: VmId) -> f64 {
        self.dirty.get(&vm).copied().unwrap_or(topo.vms[vm].dirty_bps)
    }

    /// Whether the VM's dirty rate was measured.
    pub fn dirty_measured(&self, vm: VmId) -> Option<f64> {
        self.dirty.get(&vm).copied()
    }

    pub fn path(&self, a: SiteId, b: SiteId) -> Option<PathFigures> {
        self.paths.get(&pair(a, b)).copied()
    }

    pub fn vm(&self, vm: VmId, a: SiteId, b: SiteId) -> Option<VmFigures> {
        let k = pair(a, b);
        self.vms.get(&(vm, k.0, k.1)).copied()
    }

    /// The predicted migration of `vm` from host `from` to host `to`: the pre-copy model at
    /// the learnt bandwidth (declared until one is learnt) with the measured dirty rate,
    /// plus the path's learnt fixed cost; the bytes this VM sent over this path last time
    /// replace the model's where known (and the guest is not dirtying faster than the path
    /// carries). `None` when the two hosts' sites are not joined.
    pub fn estimate(&self, topo: &Topology, vm: VmId, from: HostId, to: HostId) -> Option<MigrationEstimate> {
        let (a, b) = (topo.site_of_host(from), topo.site_of_host(to));
        let declared = migration::bandwidth(topo, a, b)?;
        let path = self.path(a, b);
        let bw = path.map_or(declared, |p| p.bandwidth_bps);
        let memory = topo.vms[vm].memory_bytes;
        let mut e = migration::precopy(memory, self.dirty_bps(topo, vm), bw, MAX_DOWNTIME_S, MAX_ROUNDS);
        if let Some(v) = self.vm(vm, a, b).filter(|_| e.converges) {
            e.transferred_bytes = v.sent_bytes;
            e.downtime_s = v.downtime_s;
            e.total_s = v.sent_bytes / bw.max(1.0);
        }
        e.total_s += path.map_or(0.0, |p| p.fixed_s);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    fn topo() -> Topology {
        Topology::from_yaml(
            "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 2}]}\n  - {name: B, hosts: [{name: b1, vm_capacity: 2}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 100, latency_ms: 5}\n\
             vms:\n  - {name: v, host: a1, memory_mib: 256}\n  - {name: w, host: a1, memory_mib: 256}\n",
        )
        .unwrap()
    }

    fn run(total_s: f64, sent: f64, bw: f64) -> Observed {
        Observed { vm: 0, from: 0, to: 1, total_s, downtime_s: 0.05, transferred_bytes: sent, bandwidth_bps: bw, dirty_bps: 0.0 }
    }

    #[test]
    fn nothing_learnt_is_the_declared_model() {
        let t = topo();
        assert_eq!(Learnt::default().estimate(&t, 0, 0, 1), migration::estimate(&t, 0, 0, 1));
    }

    #[test]
    fn a_completed_run_teaches_bandwidth_fixed_cost_and_bytes() {
        let t = topo();
        let mut l = Learnt::default();
        // 40 MiB at 50 MiB/s (0.8 s of copying) in 1.3 s: 0.5 s fixed.
        l.learn(&run(1.3, 40.0 * MIB, 50.0 * MIB));
        let e = l.estimate(&t, 0, 0, 1).unwrap();
        assert!((e.total_s - 1.3).abs() < 1e-9, "{e:?}");
        assert_eq!(e.transferred_bytes, 40.0 * MIB);
        // The other VM over the same path gets the path's bandwidth and fixed cost but
        // the model's bytes (its whole memory: nothing learnt of it).
        let w = l.estimate(&t, 1, 0, 1).unwrap();
        assert!((w.total_s - (256.0 / 50.0 + 0.5)).abs() < 1e-9, "{w:?}");
        // Either way over the path.
        assert_eq!(l.estimate(&t, 0, 1, 0).map(|e| e.total_s), Some(e.total_s));
    }

    #[test]
    fn means_move_half_way_and_bad_reports_teach_nothing() {
        let mut l = Learnt::default();
        l.learn(&run(2.0, 100.0 * MIB, 100.0 * MIB));
        l.learn(&run(4.0, 100.0 * MIB, 50.0 * MIB));
        let p = l.path(1, 0).unwrap();
        assert_eq!((p.bandwidth_bps, p.runs), (75.0 * MIB, 2));
        l.learn(&run(f64::NAN, 1.0, 1.0));
        l.learn(&run(1.0, 0.0, 1.0));
        assert_eq!(l.path(0, 1).unwrap().runs, 2);
        // Without the copy's bandwidth, bytes over the total time stand in.
        let mut m = Learnt::default();
        m.learn(&run(2.0, 100.0 * MIB, 0.0));
        assert_eq!(m.path(0, 1).unwrap().bandwidth_bps, 50.0 * MIB);
        assert_eq!(m.path(0, 1).unwrap().fixed_s, 0.0);
    }

    #[test]
    fn a_measured_dirty_rate_replaces_the_declared_one() {
        let t = topo();
        let mut l = Learnt::default();
        assert_eq!(l.dirty_bps(&t, 0), 0.0);
        // 20 MiB/s over 100 Mbit/s (12.5 MB/s): pre-copy cannot converge.
        l.measured_dirty(0, 20.0 * MIB);
        assert_eq!(l.dirty_measured(0), Some(20.0 * MIB));
        assert!(!l.estimate(&t, 0, 0, 1).unwrap().converges);
        // A VM that cannot converge keeps the model's figures even after a learnt run.
        l.learn(&run(1.3, 40.0 * MIB, 50.0 * MIB));
        l.measured_dirty(0, 100.0 * MIB);
        let e = l.estimate(&t, 0, 0, 1).unwrap();
        assert!(!e.converges && e.transferred_bytes > 40.0 * MIB, "{e:?}");
    }
}
