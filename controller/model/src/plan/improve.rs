//! Local search after the greedy plan: move a network job wholesale to another site (or
//! back where it started) while that lowers its share of the objective.

use super::{PlanConfig, PlanInput, PlanJob};
use crate::classify::Class;
use crate::migration;
use crate::topology::{HostId, SiteId, VmId};

/// One job's share of the objective: its slowdown over the horizon plus the cost of moving
/// its VMs from where they were at the start.
fn job_cost(input: &PlanInput, cfg: &PlanConfig, job: &PlanJob, vm_host: &[HostId]) -> f64 {
    let topo = input.topo;
    let mut c = job.slowdown(topo, vm_host) * cfg.horizon_s;
    for v in job.vms() {
        let (from, to) = (input.vm_host[v], vm_host[v]);
        if from != to {
            c += match input.learnt.estimate(topo, v, from, to) {
                Some(e) if e.converges => migration::job_cost(&e, cfg.migration_drag),
                _ => f64::INFINITY,
            };
        }
    }
    c
}

/// Local search until `out_of_time()`: move a network job wholesale to another site (or back
/// where it started) when that lowers its share of the objective; jobs share no VMs, so
/// the change is local to the job.
pub(super) fn improve(input: &PlanInput, cfg: &PlanConfig, mut vm_host: Vec<HostId>, out_of_time: &mut dyn FnMut() -> bool) -> Vec<HostId> {
    let topo = input.topo;
    let mut free: Vec<i64> = topo.hosts.iter().map(|h| h.vm_capacity as i64).collect();
    for &h in &vm_host {
        free[h] -= 1;
    }
    let mut improved = true;
    while improved && !out_of_time() {
        improved = false;
        for job in input.jobs.iter() {
            if job.class != Class::Network || out_of_time() {
                continue;
            }
            let vms = job.vms();
            let mut current = job_cost(input, cfg, job, &vm_host);
            // Candidates: every site wholesale, and each VM back where it started.
            let mut targets: Vec<Option<SiteId>> = (0..topo.sites.len()).map(Some).collect();
            targets.push(None);
            for target in targets {
                let mut trial_free = free.clone();
                let mut trial: Vec<(VmId, HostId)> = Vec::new();
                let mut ok = true;
                for &v in &vms {
                    let want_site = match target {
                        Some(s) => s,
                        None => topo.site_of_host(input.vm_host[v]),
                    };
                    if topo.site_of_host(vm_host[v]) == want_site {
                        continue;
                    }
                    if input.pinned.contains(&v) || input.cooling.contains(&v) || input.drained.contains(&want_site) {
                        ok = false;
                        break;
                    }
                    let h = if target.is_none() && trial_free[input.vm_host[v]] > 0 {
                        Some(input.vm_host[v])
                    } else {
                        topo.sites[want_site].hosts.iter().copied().filter(|&h| trial_free[h] > 0).max_by_key(|&h| trial_free[h])
                    };
                    match h {
                        Some(h) => {
                            trial_free[vm_host[v]] += 1;
                            trial_free[h] -= 1;
                            trial.push((v, h));
                        }
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok || trial.is_empty() {
                    continue;
                }
                let undo: Vec<(VmId, HostId)> = trial.iter().map(|&(v, _)| (v, vm_host[v])).collect();
                for &(v, h) in &trial {
                    vm_host[v] = h;
                }
                let c = job_cost(input, cfg, job, &vm_host);
                if c < current - 1e-9 {
                    current = c;
                    free = trial_free;
                    improved = true;
                } else {
                    for (v, h) in undo {
                        vm_host[v] = h;
                    }
                }
            }
        }
    }
    vm_host
}
