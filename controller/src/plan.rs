//! The planner (pure): from the jobs' classes and traffic, the topology and the current
//! placement, a target placement and the migrations that reach it. Network-intensive jobs
//! go onto one site — the one cheapest to reach — when the predicted gain over the horizon
//! beats the migrations' cost (pre-copy model); compute-intensive jobs may stay spread and
//! give way (spread further) to make room. Pinned VMs never move, drained sites empty, VMs
//! in their cooldown stay put, and migrations are grouped into waves that respect per-site
//! and per-link limits. Every job gets a decision with its reason, gain and cost.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::classify::{predict, Class, JobProfile};
use crate::hypervisor::{precopy, MigrationEstimate, MAX_DOWNTIME_S, MAX_ROUNDS};
use crate::topology::{HostId, SiteId, Topology, VmId};

/// A job as the planner sees it.
#[derive(Debug, Clone)]
pub struct PlanJob {
    pub id: String,
    pub class: Class,
    /// The VM of every rank.
    pub rank_vm: Vec<VmId>,
    pub profile: JobProfile,
}

impl PlanJob {
    /// Its distinct VMs, in first-rank order.
    pub fn vms(&self) -> Vec<VmId> {
        let mut seen = HashSet::new();
        self.rank_vm.iter().copied().filter(|v| seen.insert(*v)).collect()
    }

    /// Predicted slowdown with VMs where `vm_host` puts them.
    pub fn slowdown(&self, topo: &Topology, vm_host: &[HostId]) -> f64 {
        let site: Vec<SiteId> = self.rank_vm.iter().map(|&v| topo.site_of_host(vm_host[v])).collect();
        predict(&self.profile, &site, topo).slowdown
    }
}

#[derive(Debug, Clone)]
pub struct PlanConfig {
    /// How long the gain of a better placement is counted (remaining run time expected).
    pub horizon_s: f64,
    /// Share of a job's speed lost while one of its VMs migrates (besides the downtime).
    pub migration_drag: f64,
    /// Time for improving the first plan by local search (`None`: greedy only).
    pub budget: Option<Duration>,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig { horizon_s: 600.0, migration_drag: 0.05, budget: None }
    }
}

pub struct PlanInput<'a> {
    pub topo: &'a Topology,
    pub vm_host: &'a [HostId],
    pub jobs: &'a [PlanJob],
    pub pinned: &'a HashSet<VmId>,
    pub drained: &'a HashSet<SiteId>,
    /// VMs migrated within their cooldown: they stay (no ping-pong).
    pub cooling: &'a HashSet<VmId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    pub vm: VmId,
    pub from: HostId,
    pub to: HostId,
    /// Migrations of one wave run together; wave k+1 starts when wave k is done.
    pub wave: u32,
    pub estimate: MigrationEstimate,
    /// Job-seconds this migration is predicted to cost.
    pub cost_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobDecision {
    pub job: String,
    pub class: Class,
    pub target_site: Option<SiteId>,
    pub slowdown_before: f64,
    pub slowdown_after: f64,
    /// Job-seconds saved over the horizon, and what the migrations cost.
    pub gain_s: f64,
    pub cost_s: f64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub moves: Vec<Move>,
    pub decisions: Vec<JobDecision>,
    pub vm_host_after: Vec<HostId>,
    /// Σ slowdown × horizon (+ migration cost for `after`), in job-seconds.
    pub objective_before: f64,
    pub objective_after: f64,
}

struct State<'a> {
    input: &'a PlanInput<'a>,
    cfg: &'a PlanConfig,
    vm_host: Vec<HostId>,
    host_free: Vec<i64>,
    vm_job: HashMap<VmId, usize>,
}

impl<'a> State<'a> {
    fn new(input: &'a PlanInput<'a>, cfg: &'a PlanConfig) -> State<'a> {
        let topo = input.topo;
        let mut host_free: Vec<i64> = topo.hosts.iter().map(|h| h.vm_capacity as i64).collect();
        for &h in input.vm_host {
            host_free[h] -= 1;
        }
        let mut vm_job = HashMap::new();
        for (j, job) in input.jobs.iter().enumerate() {
            for &v in &job.rank_vm {
                vm_job.insert(v, j);
            }
        }
        State { input, cfg, vm_host: input.vm_host.to_vec(), host_free, vm_job }
    }

    fn site_free(&self, s: SiteId) -> i64 {
        if self.input.drained.contains(&s) {
            return 0;
        }
        self.input.topo.sites[s].hosts.iter().map(|&h| self.host_free[h].max(0)).sum()
    }

    fn movable(&self, v: VmId) -> bool {
        !self.input.pinned.contains(&v) && !self.input.cooling.contains(&v)
    }

    fn move_cost(&self, v: VmId, to_site: SiteId) -> Option<(MigrationEstimate, f64)> {
        let topo = self.input.topo;
        let from = topo.site_of_host(self.vm_host[v]);
        let bw = if from == to_site {
            // Inside a site: the LAN, modelled as 10 Gbit/s.
            10e9 / 8.0
        } else {
            topo.path(from, to_site)?.bandwidth_bps
        };
        let vm = &topo.vms[v];
        let e = precopy(vm.memory_bytes, vm.dirty_bps, bw, MAX_DOWNTIME_S, MAX_ROUNDS);
        if !e.converges {
            return None;
        }
        Some((e, e.downtime_s + e.total_s * self.cfg.migration_drag))
    }

    /// The host of `s` with the most room.
    fn pick_host(&self, s: SiteId) -> Option<HostId> {
        self.input.topo.sites[s]
            .hosts
            .iter()
            .copied()
            .filter(|&h| self.host_free[h] > 0)
            .max_by_key(|&h| (self.host_free[h], std::cmp::Reverse(h)))
    }

    fn relocate(&mut self, v: VmId, to: HostId) {
        self.host_free[self.vm_host[v]] += 1;
        self.host_free[to] -= 1;
        self.vm_host[v] = to;
    }
}

fn slowdowns(input: &PlanInput, vm_host: &[HostId]) -> Vec<f64> {
    input.jobs.iter().map(|j| j.slowdown(input.topo, vm_host)).collect()
}

/// Σ slowdown × horizon over every job, plus the migrations' cost.
pub fn objective(input: &PlanInput, cfg: &PlanConfig, vm_host: &[HostId], moves: &[Move]) -> f64 {
    slowdowns(input, vm_host).iter().sum::<f64>() * cfg.horizon_s + moves.iter().map(|m| m.cost_s).sum::<f64>()
}

/// Tries to bring network job `j` onto one site; returns its decision.
fn consolidate(st: &mut State, j: usize, allow_make_room: bool) -> JobDecision {
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
    let mut best: Option<(SiteId, f64, Vec<(VmId, MigrationEstimate, f64)>)> = None;
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
        .take(lack as usize)
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
            .min_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
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
fn evacuate(st: &mut State) -> usize {
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

/// Groups moves into waves within per-site and per-link limits of concurrent migrations.
fn waves(topo: &Topology, moves: &mut [Move]) {
    let mut per_wave_site: Vec<HashMap<SiteId, u32>> = Vec::new();
    let mut per_wave_link: Vec<HashMap<(SiteId, SiteId), u32>> = Vec::new();
    for m in moves.iter_mut() {
        let (a, b) = (topo.site_of_host(m.from), topo.site_of_host(m.to));
        let link = (a.min(b), a.max(b));
        let link_limit = if a == b { u32::MAX } else { topo.link(a, b).map(|l| l.max_concurrent_migrations).unwrap_or(1) };
        let mut w = 0;
        loop {
            if per_wave_site.len() <= w {
                per_wave_site.push(HashMap::new());
                per_wave_link.push(HashMap::new());
            }
            let sa = per_wave_site[w].get(&a).copied().unwrap_or(0);
            let sb = per_wave_site[w].get(&b).copied().unwrap_or(0);
            let l = per_wave_link[w].get(&link).copied().unwrap_or(0);
            if sa < topo.sites[a].max_concurrent_migrations.max(1) && sb < topo.sites[b].max_concurrent_migrations.max(1) && l < link_limit
            {
                *per_wave_site[w].entry(a).or_default() += 1;
                if b != a {
                    *per_wave_site[w].entry(b).or_default() += 1;
                }
                *per_wave_link[w].entry(link).or_default() += 1;
                m.wave = w as u32;
                break;
            }
            w += 1;
        }
    }
}

fn finish(input: &PlanInput, cfg: &PlanConfig, vm_host: Vec<HostId>, decisions: Vec<JobDecision>) -> Plan {
    let topo = input.topo;
    let mut moves = Vec::new();
    for (v, (&from, &to)) in input.vm_host.iter().zip(vm_host.iter()).enumerate() {
        if from != to {
            let to_site = topo.site_of_host(to);
            let bw = if topo.site_of_host(from) == to_site {
                10e9 / 8.0
            } else {
                topo.path(topo.site_of_host(from), to_site).map(|p| p.bandwidth_bps).unwrap_or(1.0)
            };
            let vm = &topo.vms[v];
            let e = precopy(vm.memory_bytes, vm.dirty_bps, bw, MAX_DOWNTIME_S, MAX_ROUNDS);
            moves.push(Move { vm: v, from, to, wave: 0, estimate: e, cost_s: e.downtime_s + e.total_s * cfg.migration_drag });
        }
    }
    waves(topo, &mut moves);
    let objective_before = objective(input, cfg, input.vm_host, &[]);
    let objective_after = objective(input, cfg, &vm_host, &moves);
    Plan { moves, decisions, vm_host_after: vm_host, objective_before, objective_after }
}

/// The planner: greedy consolidation in order of what spanning costs each job, then (with
/// a budget) local search over the network jobs' target sites.
pub fn plan(input: &PlanInput, cfg: &PlanConfig) -> Plan {
    let start = Instant::now();
    let mut st = State::new(input, cfg);
    let before = slowdowns(input, input.vm_host);
    let mut order: Vec<usize> = (0..input.jobs.len()).filter(|&j| input.jobs[j].class == Class::Network).collect();
    order.sort_by(|&a, &b| before[b].partial_cmp(&before[a]).unwrap().then(a.cmp(&b)));
    let mut decisions: Vec<Option<JobDecision>> = vec![None; input.jobs.len()];
    for &j in &order {
        decisions[j] = Some(consolidate(&mut st, j, true));
    }
    evacuate(&mut st);
    for (j, job) in input.jobs.iter().enumerate() {
        if decisions[j].is_none() {
            let s = job.slowdown(input.topo, &st.vm_host);
            decisions[j] = Some(JobDecision {
                job: job.id.clone(),
                class: job.class,
                target_site: None,
                slowdown_before: before[j],
                slowdown_after: s,
                gain_s: 0.0,
                cost_s: 0.0,
                reason: format!("compute-intensive: may span sites ({:.1}% predicted slowdown)", s * 100.0),
            });
        }
    }
    let mut vm_host = st.vm_host.clone();
    if let Some(budget) = cfg.budget {
        vm_host = improve(input, cfg, vm_host, start + budget);
    }
    finish(input, cfg, vm_host, decisions.into_iter().map(|d| d.expect("every job decided")).collect())
}

/// One job's share of the objective: its slowdown over the horizon plus the cost of moving
/// its VMs from where they were at the start.
fn job_cost(input: &PlanInput, cfg: &PlanConfig, job: &PlanJob, vm_host: &[HostId]) -> f64 {
    let topo = input.topo;
    let mut c = job.slowdown(topo, vm_host) * cfg.horizon_s;
    for v in job.vms() {
        let (from, to) = (input.vm_host[v], vm_host[v]);
        if from != to {
            let (a, b) = (topo.site_of_host(from), topo.site_of_host(to));
            let bw = if a == b { 10e9 / 8.0 } else { topo.path(a, b).map(|p| p.bandwidth_bps).unwrap_or(1.0) };
            let vm = &topo.vms[v];
            let e = precopy(vm.memory_bytes, vm.dirty_bps, bw, MAX_DOWNTIME_S, MAX_ROUNDS);
            c += if e.converges { e.downtime_s + e.total_s * cfg.migration_drag } else { f64::INFINITY };
        }
    }
    c
}

/// Local search until `deadline`: move a network job wholesale to another site (or back
/// where it started) when that lowers its share of the objective; jobs share no VMs, so
/// the change is local to the job.
fn improve(input: &PlanInput, cfg: &PlanConfig, mut vm_host: Vec<HostId>, deadline: Instant) -> Vec<HostId> {
    let topo = input.topo;
    let mut free: Vec<i64> = topo.hosts.iter().map(|h| h.vm_capacity as i64).collect();
    for &h in &vm_host {
        free[h] -= 1;
    }
    let mut improved = true;
    while improved && Instant::now() < deadline {
        improved = false;
        for job in input.jobs.iter() {
            if job.class != Class::Network || Instant::now() >= deadline {
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

#[cfg(test)]
fn finish_moves(input: &PlanInput, cfg: &PlanConfig, vm_host: &[HostId]) -> Vec<Move> {
    finish(input, cfg, vm_host.to_vec(), vec![]).moves
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Sites A, B, C (C far and thin) with `cap` slots per host, two hosts each.
    fn topo(cap: u32, vms: &[(&str, &str, f64)]) -> Topology {
        let mut y = format!(
            "sites:\n  - {{name: A, max_concurrent_migrations: 1, hosts: [{{name: a1, vm_capacity: {cap}}}, {{name: a2, vm_capacity: {cap}}}]}}\n\
             \x20 - {{name: B, hosts: [{{name: b1, vm_capacity: {cap}}}, {{name: b2, vm_capacity: {cap}}}]}}\n\
             \x20 - {{name: C, hosts: [{{name: c1, vm_capacity: {cap}}}, {{name: c2, vm_capacity: {cap}}}]}}\n\
             links:\n  - {{between: [A, B], bandwidth_mbit: 1000, latency_ms: 5, max_concurrent_migrations: 2}}\n\
             \x20 - {{between: [B, C], bandwidth_mbit: 100, latency_ms: 20}}\n  - {{between: [A, C], bandwidth_mbit: 100, latency_ms: 20}}\nvms:\n"
        );
        for (name, host, mib) in vms {
            y.push_str(&format!("  - {{name: {name}, host: {host}, memory_mib: {mib}}}\n"));
        }
        Topology::from_yaml(&y).unwrap()
    }

    /// Ring neighbours exchange `rate` bytes/s in messages of 64 KiB.
    fn ring(n: usize, rate: f64) -> JobProfile {
        let mut bytes = Array2::zeros((n, n));
        let mut messages = Array2::zeros((n, n));
        for i in 0..n {
            bytes[[i, (i + 1) % n]] = rate;
            messages[[i, (i + 1) % n]] = rate / 65536.0;
        }
        JobProfile { bytes, messages, collectives: vec![] }
    }

    fn job(id: &str, class: Class, vms: &[VmId], rate: f64) -> PlanJob {
        PlanJob { id: id.into(), class, rank_vm: vms.to_vec(), profile: ring(vms.len(), rate) }
    }

    fn hosts(t: &Topology) -> Vec<HostId> {
        t.vms.iter().map(|v| v.host).collect()
    }

    fn run(t: &Topology, jobs: &[PlanJob], pinned: &[VmId], drained: &[SiteId], cooling: &[VmId]) -> Plan {
        let vm_host = hosts(t);
        let (p, d, c): (HashSet<_>, HashSet<_>, HashSet<_>) =
            (pinned.iter().copied().collect(), drained.iter().copied().collect(), cooling.iter().copied().collect());
        let input = PlanInput { topo: t, vm_host: &vm_host, jobs, pinned: &p, drained: &d, cooling: &c };
        plan(&input, &PlanConfig::default())
    }

    #[test]
    fn network_job_goes_where_it_is_cheapest_to_gather() {
        // Three VMs on A, one on B: moving the one is cheapest.
        let t = topo(4, &[("v0", "a1", 512.0), ("v1", "a1", 512.0), ("v2", "a2", 512.0), ("v3", "b1", 512.0)]);
        let p = run(&t, &[job("cg", Class::Network, &[0, 1, 2, 3], 5e6)], &[], &[], &[]);
        assert_eq!(p.moves.len(), 1, "{p:#?}");
        assert_eq!((p.moves[0].vm, t.site_of_host(p.moves[0].to)), (3, 0));
        let d = &p.decisions[0];
        assert_eq!(d.target_site, Some(0));
        assert_eq!(d.slowdown_after, 0.0);
        assert!(d.gain_s > d.cost_s && d.reason.contains("moving 1 VM(s) to A"), "{}", d.reason);
        assert!(p.objective_after < p.objective_before);
    }

    #[test]
    fn not_worth_it_when_migration_costs_more_than_it_saves() {
        // A trickle of traffic, 32 GiB guests over a 100 Mbit/s link.
        let t = topo(4, &[("v0", "a1", 32768.0), ("v1", "c1", 32768.0)]);
        let p = run(&t, &[job("ep", Class::Network, &[0, 1], 1e3)], &[], &[], &[]);
        assert!(p.moves.is_empty());
        assert!(p.decisions[0].reason.contains("not worth it"), "{}", p.decisions[0].reason);
    }

    #[test]
    fn compute_jobs_stay_spread_and_make_room() {
        // B is full of a compute job; the network job must gather on B (its pinned VM).
        let t = topo(2, &[("n0", "a1", 256.0), ("n1", "b1", 256.0), ("c0", "b1", 256.0), ("c1", "b2", 256.0), ("c2", "b2", 256.0)]);
        let jobs = [job("net", Class::Network, &[0, 1], 20e6), job("cpu", Class::Compute, &[2, 3, 4], 1e3)];
        let p = run(&t, &jobs, &[1], &[], &[]);
        let site = |v: VmId| t.site_of_host(p.vm_host_after[v]);
        assert_eq!((site(0), site(1)), (1, 1), "{p:#?}");
        assert!(p.decisions[1].reason.starts_with("compute-intensive"));
        assert!([2, 3, 4].iter().any(|&v| site(v) != 1), "a compute VM made room");
        // Never over capacity.
        let mut load = vec![0; t.hosts.len()];
        for &h in &p.vm_host_after {
            load[h] += 1;
        }
        assert!(load.iter().zip(&t.hosts).all(|(l, h)| *l <= h.vm_capacity));
    }

    #[test]
    fn pinned_and_cooling_vms_stay_and_drained_sites_empty() {
        let t = topo(4, &[("v0", "a1", 256.0), ("v1", "b1", 256.0), ("w0", "c1", 256.0)]);
        let jobs = [job("net", Class::Network, &[0, 1], 20e6), job("cpu", Class::Compute, &[2], 0.0)];
        // v1 pinned on B: the job gathers on B.
        let p = run(&t, &jobs, &[1], &[], &[]);
        assert_eq!(t.site_of_host(p.vm_host_after[0]), 1);
        // Both ends cooling: nothing moves, and the reason says why.
        let p = run(&t, &jobs, &[], &[], &[0, 1]);
        assert!(p.moves.is_empty());
        assert!(p.decisions[0].reason.contains("pinned or cooling"), "{}", p.decisions[0].reason);
        // C drained: w0 leaves it.
        let p = run(&t, &jobs, &[], &[2], &[]);
        assert_ne!(t.site_of_host(p.vm_host_after[2]), 2);
    }

    #[test]
    fn waves_respect_site_and_link_limits() {
        // Four VMs from B to A: A takes one migration at a time.
        let t = topo(
            8,
            &[
                ("a", "a1", 256.0),
                ("b", "a1", 256.0),
                ("c", "a1", 256.0),
                ("d", "a2", 256.0),
                ("e", "a2", 256.0),
                ("w", "b1", 256.0),
                ("x", "b1", 256.0),
                ("y", "b2", 256.0),
            ],
        );
        let p = run(&t, &[job("net", Class::Network, &[0, 1, 2, 3, 4, 5, 6, 7], 50e6)], &[], &[], &[]);
        assert_eq!(p.moves.len(), 3);
        let waves: HashSet<u32> = p.moves.iter().map(|m| m.wave).collect();
        assert_eq!(waves.len(), 3, "site A allows one at a time: {:?}", p.moves);
    }

    /// Exhaustive search over every network job's target site (small instances only).
    fn exact(input: &PlanInput, cfg: &PlanConfig) -> f64 {
        let topo = input.topo;
        let net: Vec<usize> = (0..input.jobs.len()).filter(|&j| input.jobs[j].class == Class::Network).collect();
        let n = topo.sites.len();
        let mut best = objective(input, cfg, input.vm_host, &[]);
        for code in 0..(n + 1).pow(net.len() as u32) {
            let mut vm_host = input.vm_host.to_vec();
            let mut free: Vec<i64> = topo.hosts.iter().map(|h| h.vm_capacity as i64).collect();
            for &h in &vm_host {
                free[h] -= 1;
            }
            let mut c = code;
            let mut ok = true;
            for &j in &net {
                let choice = c % (n + 1);
                c /= n + 1;
                if choice == n {
                    continue; // leave as is
                }
                for v in input.jobs[j].vms() {
                    if topo.site_of_host(vm_host[v]) == choice {
                        continue;
                    }
                    match topo.sites[choice].hosts.iter().copied().filter(|&h| free[h] > 0).max_by_key(|&h| free[h]) {
                        Some(h) => {
                            free[vm_host[v]] += 1;
                            free[h] -= 1;
                            vm_host[v] = h;
                        }
                        None => ok = false,
                    }
                }
            }
            if ok {
                let moves = finish_moves(input, cfg, &vm_host);
                best = best.min(objective(input, cfg, &vm_host, &moves));
            }
        }
        best
    }

    #[test]
    fn within_5_percent_of_exact_and_better_than_first_fit_on_small_instances() {
        let mut rng = 7u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut worse_than_exact = 0.0f64;
        let (mut ours, mut ff) = (0.0, 0.0);
        for _ in 0..20 {
            let mut vms = Vec::new();
            let hosts = ["a1", "a2", "b1", "b2", "c1", "c2"];
            let off = next() as usize % 6;
            for i in 0..12 {
                vms.push((format!("v{i}"), hosts[(i * 5 + off) % 6], 256.0 + (next() % 4096) as f64));
            }
            let spec: Vec<(&str, &str, f64)> = vms.iter().map(|(n, h, m)| (n.as_str(), *h, *m)).collect();
            let t = topo(3, &spec);
            let jobs: Vec<PlanJob> = (0..4)
                .map(|j| {
                    let class = if next() % 3 == 0 { Class::Compute } else { Class::Network };
                    job(&format!("j{j}"), class, &[3 * j, 3 * j + 1, 3 * j + 2], (next() % 50) as f64 * 1e6)
                })
                .collect();
            let vm_host = hosts_of(&t);
            let none = HashSet::new();
            let input = PlanInput { topo: &t, vm_host: &vm_host, jobs: &jobs, pinned: &none, drained: &none, cooling: &none };
            let cfg = PlanConfig::default();
            let p = plan(&input, &cfg);
            let best = exact(&input, &cfg);
            let g = greedy_first_fit(&input, &cfg);
            assert!(p.objective_after <= p.objective_before + 1e-9);
            worse_than_exact = worse_than_exact.max((p.objective_after - best) / best.max(1.0));
            ours += p.objective_after;
            ff += g.objective_after;
        }
        eprintln!("worst gap to exact {:.2}%, planner {ours:.1} vs first-fit {ff:.1} job-s", worse_than_exact * 100.0);
        assert!(worse_than_exact <= 0.05, "planner is {:.1}% above the exact optimum", worse_than_exact * 100.0);
        assert!(ours < ff, "planner {ours:.1} vs first-fit {ff:.1}");
    }

    fn hosts_of(t: &Topology) -> Vec<HostId> {
        hosts(t)
    }

    /// Runs 10 minutes of traffic that flips every 20 s between two jobs and an operator
    /// who drains and undrains site A every 40 s; returns the migration times of every VM.
    async fn flapping(cooldown: Duration, policy: crate::classify::Policy) -> Vec<Vec<tokio::time::Instant>> {
        use crate::classify::{classify, ClassState};
        let t = topo(
            4,
            &[
                ("x0", "a1", 256.0),
                ("x1", "a2", 256.0),
                ("x2", "b1", 256.0),
                ("x3", "b2", 256.0),
                ("y0", "a1", 256.0),
                ("y1", "b1", 256.0),
                ("y2", "a2", 256.0),
                ("y3", "b2", 256.0),
                ("z0", "c1", 256.0),
            ],
        );
        let mut vm_host = hosts(&t);
        let mut moved: Vec<Vec<tokio::time::Instant>> = vec![vec![]; t.vms.len()];
        let mut states: Vec<Option<ClassState>> = vec![None; 3];
        let start = tokio::time::Instant::now();
        for step in 0..120 {
            let now = tokio::time::Instant::now();
            let secs = (now - start).as_secs();
            let x_heavy = (secs / 20) % 2 == 0;
            let rates = [if x_heavy { 50e6 } else { 1e3 }, if x_heavy { 1e3 } else { 50e6 }, 0.0];
            let members: [&[VmId]; 3] = [&[0, 1, 2, 3], &[4, 5, 6, 7], &[8]];
            let mut jobs = Vec::new();
            for j in 0..3 {
                let mut pj = job(["x", "y", "z"][j], Class::Compute, members[j], rates[j]);
                let home = t.site_of_host(vm_host[members[j][0]]);
                let (v, st) = classify(&policy, &t, &pj.profile, home, states[j], now);
                states[j] = Some(st);
                pj.class = v.class;
                jobs.push(pj);
            }
            let drained: HashSet<SiteId> = if (secs / 40) % 2 == 1 { [0].into() } else { HashSet::new() };
            let cooling: HashSet<VmId> = (0..t.vms.len()).filter(|&v| moved[v].last().is_some_and(|&m| now - m < cooldown)).collect();
            let none = HashSet::new();
            let input = PlanInput { topo: &t, vm_host: &vm_host, jobs: &jobs, pinned: &none, drained: &drained, cooling: &cooling };
            let p = plan(&input, &PlanConfig::default());
            for m in &p.moves {
                moved[m.vm].push(now);
            }
            vm_host = p.vm_host_after;
            let _ = step;
            tokio::time::advance(Duration::from_secs(5)).await;
        }
        moved
    }

    fn most_in_window(moved: &[Vec<tokio::time::Instant>], window: Duration) -> usize {
        moved
            .iter()
            .map(|ts| ts.iter().map(|&a| ts.iter().filter(|&&b| b >= a && b - a < window).count()).max().unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn flapping_moves_each_vm_at_most_once_per_cooldown() {
        use crate::classify::Policy;
        let cooldown = Duration::from_secs(300);
        // Without cooldown or dwell the same pattern moves VMs back and forth.
        let loose = flapping(Duration::ZERO, Policy { min_dwell: Duration::ZERO, ..Policy::default() }).await;
        assert!(most_in_window(&loose, cooldown) > 1, "the pattern does provoke ping-pong: {loose:?}");
        let held = flapping(cooldown, Policy::default()).await;
        assert!(held.iter().map(|m| m.len()).sum::<usize>() > 0, "some VMs did move");
        assert_eq!(most_in_window(&held, cooldown), 1, "{held:?}");
    }
}
