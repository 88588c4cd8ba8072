//! The baseline the planner is compared with: greedy first fit.

use std::collections::HashSet;

use super::{evacuate, finish, Plan, PlanConfig, PlanInput, State};
use crate::classify::Class;
use crate::topology::{SiteId, VmId};

/// The baseline: every network job, in the given order, onto the first site with room;
/// no cost model, no making room.
pub fn greedy_first_fit(input: &PlanInput, cfg: &PlanConfig) -> Plan {
    let topo = input.topo;
    let mut st = State::new(input, cfg);
    for job in input.jobs.iter() {
        if job.class != Class::Network {
            continue;
        }
        let vms = job.vms();
        let sites: HashSet<SiteId> = vms.iter().map(|&v| topo.site_of_host(st.vm_host[v])).collect();
        if sites.len() <= 1 || vms.iter().any(|&v| !st.movable(v)) {
            continue;
        }
        for s in 0..topo.sites.len() {
            let away: Vec<VmId> = vms.iter().copied().filter(|&v| topo.site_of_host(st.vm_host[v]) != s).collect();
            if st.site_free(s) >= away.len() as i64 && away.iter().all(|&v| st.move_cost(v, s).is_some()) {
                for v in away {
                    let h = st.pick_host(s).expect("room was checked");
                    st.relocate(v, h);
                }
                break;
            }
        }
    }
    evacuate(&mut st);
    let vm_host = st.vm_host.clone();
    finish(input, cfg, vm_host, vec![])
}
