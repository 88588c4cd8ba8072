//! The planner (pure): from the jobs' classes and traffic, the topology and the current
//! placement, a target placement and the migrations that reach it. Network-intensive jobs
//! go onto one site — the one cheapest to reach — when the predicted gain over the horizon
//! beats the migrations' cost (pre-copy model); compute-intensive jobs may stay spread and
//! give way (spread further) to make room. Pinned VMs never move, drained sites empty, VMs
//! in their cooldown stay put, and migrations are grouped into waves that respect per-site
//! and per-link limits. Every job gets a decision with its reason, gain and cost.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::classify::{predict, Class, JobProfile};
use crate::migration::{self, MigrationEstimate};
use crate::migration_learnt::Learnt;
use crate::topology::{HostId, SiteId, Topology, VmId};

mod baseline;
mod consolidate;
mod improve;
#[cfg(test)]
mod tests;
mod waves;

pub use baseline::greedy_first_fit;
use consolidate::{consolidate, evacuate};
use improve::improve;
use waves::waves;

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
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig { horizon_s: 600.0, migration_drag: 0.05 }
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
    /// What earlier migrations and measured dirty rates taught the estimate.
    pub learnt: &'a Learnt,
    /// Each host's CPU utilisation (0..1) as its agent last reported it (empty, or `NaN`
    /// for a host: not known). Among hosts with room in a site, the least busy takes a VM.
    pub host_cpu: &'a [f64],
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

pub(crate) struct State<'a> {
    input: &'a PlanInput<'a>,
    cfg: &'a PlanConfig,
    vm_host: Vec<HostId>,
    host_free: Vec<i64>,
    vm_job: HashMap<VmId, usize>,
}

/// Host `h`'s reported CPU utilisation in thousandths (unknown: 0, as idle).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn busy_permille(cpu: &[f64], h: HostId) -> u32 {
    cpu.get(h).filter(|c| c.is_finite()).map_or(0, |c| (c.clamp(0.0, 1.0) * 1000.0).round() as u32)
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
        // Any host of the site: the estimate depends on the sites only.
        let to = *topo.sites[to_site].hosts.first()?;
        let e = self.input.learnt.estimate(topo, v, self.vm_host[v], to)?;
        if !e.converges {
            return None;
        }
        Some((e, migration::job_cost(&e, self.cfg.migration_drag)))
    }

    /// The host of `s` with the most room.
    fn pick_host(&self, s: SiteId) -> Option<HostId> {
        self.input.topo.sites[s]
            .hosts
            .iter()
            .copied()
            .filter(|&h| self.host_free[h] > 0)
            .max_by_key(|&h| (self.host_free[h], std::cmp::Reverse(busy_permille(self.input.host_cpu, h)), std::cmp::Reverse(h)))
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

fn finish(input: &PlanInput, cfg: &PlanConfig, vm_host: Vec<HostId>, decisions: Vec<JobDecision>) -> Plan {
    let topo = input.topo;
    let mut moves = Vec::new();
    for (v, (&from, &to)) in input.vm_host.iter().zip(vm_host.iter()).enumerate() {
        if from != to {
            // Every site reaches every other (the topology checks it at load).
            let e = input.learnt.estimate(topo, v, from, to).expect("sites are connected");
            moves.push(Move { vm: v, from, to, wave: 0, estimate: e, cost_s: migration::job_cost(&e, cfg.migration_drag) });
        }
    }
    waves(topo, &mut moves);
    let objective_before = objective(input, cfg, input.vm_host, &[]);
    let objective_after = objective(input, cfg, &vm_host, &moves);
    Plan { moves, decisions, vm_host_after: vm_host, objective_before, objective_after }
}

/// The planner: greedy consolidation in order of what spanning costs each job.
pub fn plan(input: &PlanInput, cfg: &PlanConfig) -> Plan {
    plan_searching(input, cfg, &mut || true)
}

/// The planner, then local search over the network jobs' target sites until
/// `out_of_time()` says stop (the caller owns the clock).
pub fn plan_searching(input: &PlanInput, cfg: &PlanConfig, out_of_time: &mut dyn FnMut() -> bool) -> Plan {
    let mut st = State::new(input, cfg);
    let before = slowdowns(input, input.vm_host);
    let mut order: Vec<usize> = (0..input.jobs.len()).filter(|&j| input.jobs[j].class == Class::Network).collect();
    order.sort_by(|&a, &b| before[b].total_cmp(&before[a]).then(a.cmp(&b)));
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
    let vm_host = improve(input, cfg, st.vm_host.clone(), out_of_time);
    finish(input, cfg, vm_host, decisions.into_iter().map(|d| d.expect("every job decided")).collect())
}

#[cfg(test)]
fn finish_moves(input: &PlanInput, cfg: &PlanConfig, vm_host: &[HostId]) -> Vec<Move> {
    finish(input, cfg, vm_host.to_vec(), vec![]).moves
}
