//! Network-intensive jobs onto one site (making room by spreading compute-intensive VMs
//! where needed), and drained sites emptied.

use std::collections::HashSet;

use super::{JobDecision, State};
use crate::classify::Class;
use crate::migration::MigrationEstimate;
use crate::topology::{HostId, SiteId, VmId};

/// Tries to bring network job `j` onto one site; returns its decision.
pub(super) fn consolidate(st: &mut State, j: usize, allow_make_room: bool) -> JobDecision {
    let input = st.input;
    let topo = input.topo;
    let job = &input.jobs[j];
    let vms = job.vms();
    let before = job.slowdown(topo, &st.vm_host);
    let sites: HashSet<SiteId> = vms.iter().map(|&v| topo.site_of_host(st.vm_host[v])).collect();
    let on_drained = vms.iter().any(|&v| input.drained.contains(&topo.site_of_host(st.vm_host[v])));
    let mut d = JobDecision {
        job: job.id.clone(),
        class: job.class,
        target_site: None,
        slowdown_before: before,
        slowdown_after: before,
        gain_s: 0.0,
        cost_s: 0.0,
        reason: String::new(),
    };
    if sites.len() == 1 && !on_drained {
        d.target_site = sites.iter().next().copied();
        d.reason = format!("network-intensive and already on one site ({})", topo.sites[d.target_site.unwrap()].name);
        return d;
    }
    let stuck: HashSet<SiteId> = vms.iter().filter(|&&v| !st.movable(v)).map(|&v| topo.site_of_host(st.vm_host[v])).collect();
    if stuck.len() > 1 {
        d.reason = "network-intensive but pinned or cooling VMs hold it on several sites; left as is".into();
        return d;
    }
    let candidates: Vec<SiteId> = match stuck.iter().next() {
        Some(&s) => vec![s],
        None => (0..topo.sites.len()).filter(|s| !input.drained.contains(s)).collect(),
    };
    // Cheapest reachable site with room: gain is the whole slowdown (one site costs none).
    let gain = before * st.cfg.horizon_s;
    // (site, cost, the moves there with their estimate and cost)
    type Choice = (SiteId, f64, Vec<(VmId, MigrationEstimate, f64)>);
    let mut best: Option<Choice> = None;
    let mut short_of_room: Vec<(SiteId, i64)> = Vec::new();
    for &s in &candidates {
        let away: Vec<VmId> = vms.iter().copied().filter(|&v| topo.site_of_host(st.vm_host[v]) != s).collect();
        let mut moves = Vec::new();
        let mut cost = 0.0;
        let mut ok = true;
        for &v in &away {
            match st.move_cost(v, s) {
                Some((e, c)) => {
                    cost += c;
                    moves.push((v, e, c));
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let free = st.site_free(s);
        if free < away.len() as i64 {
            short_of_room.push((s, away.len() as i64 - free));
            continue;
        }
        if best.as_ref().is_none_or(|b| cost < b.1) {
            best = Some((s, cost, moves));
        }
    }
    if best.is_none() && allow_make_room {
        // Make room on the site that lacks the fewest slots by spreading compute-intensive
        // VMs from it to sites with room.
        short_of_room.sort_by_key(|&(s, lack)| (lack, s));
        for &(s, lack) in &short_of_room {
            if let Some(extra_cost) = make_room(st, s, lack, j) {
                let away: Vec<VmId> = vms.iter().copied().filter(|&v| topo.site_of_host(st.vm_host[v]) != s).collect();
                let moves: Vec<_> = away.iter().filter_map(|&v| st.move_cost(v, s).map(|(e, c)| (v, e, c))).collect();
                let cost = moves.iter().map(|m| m.2).sum::<f64>() + extra_cost;
                best = Some((s, cost, moves));
                break;
            }
        }
    }
    let Some((s, cost, moves)) = best else {
        d.reason = "network-intensive and spread, but no site can take all its VMs (capacity, drained sites, or migrations that would not converge)".into();
        return d;
    };
    if gain <= cost && !on_drained {
        d.target_site = None;
        d.cost_s = cost;
        d.gain_s = gain;
        d.reason = format!(
            "network-intensive and spread; consolidating on {} would save {:.1} job-s over {:.0} s but cost {:.1} job-s of migration: not worth it",
            topo.sites[s].name, gain, st.cfg.horizon_s, cost
        );
        return d;
    }
    for (v, _, _) in &moves {
        let h = st.pick_host(s).expect("room was checked");
        st.relocate(*v, h);
    }
    d.target_site = Some(s);
    d.slowdown_after = job.slowdown(topo, &st.vm_host);
    d.gain_s = (before - d.slowdown_after) * st.cfg.horizon_s;
    d.cost_s = cost;
    d.reason = format!(
        "network-intensive: spanning {} sites adds {:.1}% to its run; moving {} VM(s) to {} saves {:.1} job-s over {:.0} s for {:.1} job-s of migration",
        sites.len(),
        before * 100.0,
        moves.len(),
        topo.sites[s].name,
        d.gain_s,
        st.cfg.horizon_s,
        cost
    );
    d
}

/// Moves `lack` compute-intensive VMs off site `s` (not of job `except`) to other sites
/// with room; returns the cost (migrations plus their jobs' added slowdown), or None.
fn make_room(st: &mut State, s: SiteId, lack: i64, except: usize) -> Option<f64> {
    let input = st.input;
    let topo = input.topo;
    let on_site: HashSet<HostId> = topo.sites[s].hosts.iter().copied().collect();
    let victims: Vec<VmId> = (0..st.vm_host.len())
        .filter(|&v| on_site.contains(&st.vm_host[v]))
        .filter(|v| st.movable(*v))
        .filter(|v| st.vm_job.get(v).is_none_or(|&j| j != except && input.jobs[j].class == Class::Compute))
        .take(usize::try_from(lack).unwrap_or(0))
        .collect();
    if (victims.len() as i64) < lack {
        return None;
    }
    let snapshot: Vec<HostId> = st.vm_host.clone();
    let free_snapshot = st.host_free.clone();
    let touched: HashSet<usize> = victims.iter().filter_map(|v| st.vm_job.get(v).copied()).collect();
    let before: f64 = touched.iter().map(|&j| input.jobs[j].slowdown(topo, &st.vm_host)).sum();
    let mut cost = 0.0;
    for v in victims {
        let dest = (0..topo.sites.len())
            .filter(|&d| d != s && st.site_free(d) > 0)
            .filter_map(|d| st.move_cost(v, d).map(|(_, c)| (d, c)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((d, c)) = dest else {
            st.vm_host = snapshot;
            st.host_free = free_snapshot;
            return None;
        };
        let h = st.pick_host(d).expect("room was checked");
        st.relocate(v, h);
        cost += c;
    }
    let after: f64 = touched.iter().map(|&j| input.jobs[j].slowdown(topo, &st.vm_host)).sum();
    Some(cost + (after - before).max(0.0) * st.cfg.horizon_s)
}

/// VMs still on drained sites go to the site with most room (the job's own sites first);
/// pinned VMs stay, cooling ones leave once their cooldown is over.
pub(super) fn evacuate(st: &mut State) -> usize {
    let input = st.input;
    let topo = input.topo;
    let mut moved = 0;
    for v in 0..st.vm_host.len() {
        let s = topo.site_of_host(st.vm_host[v]);
        if !input.drained.contains(&s) || !st.movable(v) {
            continue;
        }
        let own: HashSet<SiteId> =
            st.vm_job.get(&v).map(|&j| input.jobs[j].vms().iter().map(|&w| topo.site_of_host(st.vm_host[w])).collect()).unwrap_or_default();
        let dest = (0..topo.sites.len())
            .filter(|&d| st.site_free(d) > 0 && st.move_cost(v, d).is_some())
            .max_by_key(|&d| (own.contains(&d), st.site_free(d)));
        if let Some(d) = dest {
            let h = st.pick_host(d).expect("room was checked");
            st.relocate(v, h);
            moved += 1;
        }
    }
    moved
}
