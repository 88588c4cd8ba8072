//! What a live migration costs: the pre-copy model, and the one rule for the bandwidth a
//! migration between two hosts gets. The planner, the executor and the simulated
//! hypervisor all ask here, so they agree (an unreachable site is "cannot", never a
//! trickle).

use serde::Serialize;

use crate::topology::{HostId, SiteId, Topology, VmId};

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

/// Defaults of the model: libvirt's default max downtime is 300 ms; 30 pre-copy rounds.
pub const MAX_DOWNTIME_S: f64 = 0.3;
pub const MAX_ROUNDS: u32 = 30;

/// Inside a site migrations cross the LAN, modelled as 10 Gbit/s.
pub const LAN_BYTES_PER_S: f64 = 10e9 / 8.0;

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

/// Bytes per second a migration from site `a` to site `b` gets: the LAN inside a site, the
/// bottleneck of the WAN path between sites; `None` when no path joins them.
pub fn bandwidth(topo: &Topology, a: SiteId, b: SiteId) -> Option<f64> {
    if a == b {
        return Some(LAN_BYTES_PER_S);
    }
    topo.path(a, b).map(|p| p.bandwidth_bps)
}

/// The predicted migration of `vm` from host `from` to host `to`, by the topology's memory
/// and dirty rate; `None` when the two hosts' sites are not joined.
pub fn estimate(topo: &Topology, vm: VmId, from: HostId, to: HostId) -> Option<MigrationEstimate> {
    let bw = bandwidth(topo, topo.site_of_host(from), topo.site_of_host(to))?;
    let v = &topo.vms[vm];
    Some(precopy(v.memory_bytes, v.dirty_bps, bw, MAX_DOWNTIME_S, MAX_ROUNDS))
}

/// Job-seconds a migration costs its job: the downtime, plus `drag` of its speed for as
/// long as it runs.
pub fn job_cost(e: &MigrationEstimate, drag: f64) -> f64 {
    e.downtime_s + e.total_s * drag
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

    #[test]
    fn one_bandwidth_rule_and_unjoined_sites_cannot_migrate() {
        let t = Topology::from_yaml(
            "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 2}, {name: a2, vm_capacity: 2}]}\n\
             \x20 - {name: B, hosts: [{name: b1, vm_capacity: 2}]}\n  - {name: C, hosts: [{name: c1, vm_capacity: 2}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 100, latency_ms: 5}\n\
             vms:\n  - {name: v, host: a1, memory_mib: 100}\n",
        );
        // C joins nothing: the topology refuses it (every site must be reachable).
        assert!(t.is_err());
        let t = Topology::from_yaml(
            "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 2}, {name: a2, vm_capacity: 2}]}\n\
             \x20 - {name: B, hosts: [{name: b1, vm_capacity: 2}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 100, latency_ms: 5}\n\
             vms:\n  - {name: v, host: a1, memory_mib: 100}\n",
        )
        .unwrap();
        assert_eq!(bandwidth(&t, 0, 0), Some(LAN_BYTES_PER_S));
        assert_eq!(bandwidth(&t, 0, 1), Some(100.0 * MBIT));
        let lan = estimate(&t, 0, 0, 1).unwrap();
        let wan = estimate(&t, 0, 0, 2).unwrap();
        assert!(wan.total_s > 50.0 * lan.total_s, "{lan:?} {wan:?}");
        assert!((job_cost(&wan, 0.05) - wan.total_s * 0.05).abs() < 1e-9);
    }
}
