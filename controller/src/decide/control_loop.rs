//! The control loop, one round per tick: observe (traffic, placement, operations in flight)
//! → classify → plan (pure) → submit operations to the executor → record decisions with
//! their reasons. It never runs a migration itself; an operator's approval enqueues.
//!
//! Its semantics, as operators expect them:
//! - a job is unclassified until every rank has reported and its traffic covers a window;
//!   its first class needs no dwell;
//! - a finished job (every rank has left) keeps its last class and leaves the plan;
//! - dry-run and approve record one proposal per distinct plan, not one per tick;
//! - a new run of a job name starts from no class.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use straddle_model::classify::{classify, Class, ClassState, Policy};
use straddle_model::plan::{plan, Move, PlanConfig, PlanInput, PlanJob};
use straddle_model::topology::{HostId, Topology, VmId};

use super::log::{add_detail, DecisionLog};
use super::PlannerMode;
use crate::act::Executor;
use crate::clock::Clock;
use crate::observe::registry::lock;
use crate::plane::ControlPlane;
use crate::records::{Decision, DecisionKind, DecisionState, MigrationRecord, Operation};
use crate::state::{StoreError, Write};

#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub policy: Policy,
    pub plan: PlanConfig,
    /// Traffic rates are taken over this many trailing seconds.
    pub window_secs: u64,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig { policy: Policy::default(), plan: PlanConfig::default(), window_secs: 10 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("decision {0} is not waiting for approval")]
    NotPending(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Exec(#[from] crate::act::ExecError),
}

/// What the loop knows of a job's class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// The run of the job this is about.
    pub run: u64,
    pub state: ClassState,
    pub finished: bool,
}

/// A plan waiting for an operator.
#[derive(Debug, Clone)]
struct Pending {
    job: String,
    moves: Vec<Move>,
    planned_epoch: u64,
}

/// The migrations of one proposal, for "is this the same plan as last time".
type Key = Vec<(VmId, HostId)>;

pub struct ControlLoop {
    pub plane: Arc<ControlPlane>,
    pub executor: Arc<Executor>,
    pub log: Arc<DecisionLog>,
    pub clock: Clock,
    pub cfg: LoopConfig,
    mode: Mutex<PlannerMode>,
    classes: Mutex<HashMap<String, Judged>>,
    /// The last proposal recorded per job (dry-run and approve), and its decision.
    proposals: Mutex<HashMap<String, (Key, u64)>>,
    pending: Mutex<HashMap<u64, Pending>>,
    #[cfg(test)]
    pub fail_next_tick: std::sync::atomic::AtomicBool,
}

fn lock_m<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(moves: &[Move]) -> Key {
    let mut k: Key = moves.iter().map(|m| (m.vm, m.to)).collect();
    k.sort_unstable();
    k
}

impl ControlLoop {
    pub fn new(executor: Arc<Executor>, cfg: LoopConfig, mode: PlannerMode) -> ControlLoop {
        ControlLoop {
            plane: executor.plane.clone(),
            log: executor.log.clone(),
            clock: executor.clock.clone(),
            executor,
            cfg,
            mode: Mutex::new(mode),
            classes: Mutex::new(HashMap::new()),
            proposals: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            #[cfg(test)]
            fail_next_tick: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn mode(&self) -> PlannerMode {
        *lock_m(&self.mode)
    }

    /// Sets the mode, kept before it takes effect.
    pub async fn set_mode(&self, m: PlannerMode) -> Result<(), StoreError> {
        self.plane.store.commit(vec![Write::Setting { key: "mode".into(), value: m.word().into() }]).await?;
        *lock_m(&self.mode) = m;
        lock_m(&self.proposals).clear();
        Ok(())
    }

    /// Each job's class as last judged (absent: not classified yet), and whether its run
    /// is over.
    pub fn classes(&self) -> HashMap<String, (Class, bool)> {
        lock_m(&self.classes).iter().map(|(j, s)| (j.clone(), (s.state.class, s.finished))).collect()
    }

    /// Runs a round every `every` until the task is dropped.
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if let Err(e) = self.tick().await {
                tracing::error!("a round of the decision loop failed: {e}");
            }
        }
    }

    /// One round; returns the ids of the decisions it recorded.
    pub async fn tick(&self) -> Result<Vec<u64>, StoreError> {
        #[cfg(test)]
        if self.fail_next_tick.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("injected failure of the decision loop");
        }
        let now = self.clock.now();
        let topo = self.plane.topo.clone();
        let st = self.plane.view();
        let flight = self.executor.in_flight();
        // The planner sees VMs in flight where they are going, and leaves them there.
        let mut vm_host = st.vm_host.clone();
        let mut pinned: HashSet<VmId> = st.pinned.clone();
        for (&v, &h) in &flight.targets {
            vm_host[v] = h;
            pinned.insert(v);
        }
        pinned.extend(self.plane.absent.lock().unwrap_or_else(|p| p.into_inner()).iter().copied());
        let learnt = self.plane.learnt.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut recorded = Vec::new();
        let mut jobs = Vec::new();
        for (name, entry) in &st.jobs {
            let Some(shared) = self.plane.registry.get(name) else { continue };
            let (run, finished, profile) = {
                let t = lock(&shared);
                let ready = t.has_window(now, self.cfg.window_secs);
                (t.run, t.finished(), (ready && !t.finished()).then(|| t.profile(now, self.cfg.window_secs)))
            };
            let prev = {
                let mut c = lock_m(&self.classes);
                if c.get(name).is_some_and(|j| j.run != run) {
                    c.remove(name);
                }
                if finished {
                    if let Some(j) = c.get_mut(name) {
                        j.finished = true;
                    }
                }
                c.get(name).copied()
            };
            let Some(profile) = profile else {
                // Unclassified (no window of traffic yet) or finished: out of the plan. A
                // running job's VMs stay where they are meanwhile.
                if !finished {
                    pinned.extend(entry.rank_vm.iter().copied());
                }
                continue;
            };
            let home = majority_site(&topo, &vm_host, &entry.rank_vm);
            let (v, state) = classify(&self.cfg.policy, &topo, &profile, home, prev.map(|p| p.state), now);
            lock_m(&self.classes).insert(name.clone(), Judged { run, state, finished: false });
            if v.changed {
                let mut d = Decision::new(name, DecisionKind::Classification, Some(v.class), v.reason.clone(), DecisionState::Applied);
                d.detail = format!(
                    "classified: model slowdown {:.4} ({:?}), paper rate {:.0} B/s ({:?})",
                    v.model_slowdown, v.model_says, v.paper_rate, v.paper_says
                );
                recorded.push(self.log.record(d).await?.id);
            }
            jobs.push(PlanJob { id: name.clone(), class: v.class, rank_vm: entry.rank_vm.clone(), profile });
        }
        let input = PlanInput {
            topo: &topo,
            vm_host: &vm_host,
            jobs: &jobs,
            pinned: &pinned,
            drained: &st.drained,
            cooling: &flight.cooling,
            learnt: &learnt,
            host_cpu: &self.plane.host_cpu(now),
        };
        let p = plan(&input, &self.cfg.plan);
        let mode = self.mode();
        let mut proposed_now = HashSet::new();
        for d in &p.decisions {
            let Some(job) = jobs.iter().find(|j| j.id == d.job) else { continue };
            let moves: Vec<Move> = p.moves.iter().filter(|m| job.rank_vm.contains(&m.vm)).cloned().collect();
            if moves.is_empty() {
                continue;
            }
            let k = key(&moves);
            proposed_now.insert(d.job.clone());
            let same = lock_m(&self.proposals).get(&d.job).is_some_and(|(old, _)| *old == k);
            if same && mode != PlannerMode::Automatic {
                continue;
            }
            let state = match mode {
                PlannerMode::DryRun => DecisionState::Proposed,
                PlannerMode::Approve => DecisionState::PendingApproval,
                PlannerMode::Automatic => DecisionState::Applying,
            };
            let mut dec = Decision::new(&d.job, DecisionKind::Migration, Some(d.class), d.reason.clone(), state);
            dec.predicted_gain_secs = d.gain_s - d.cost_s;
            dec.migrations = moves.iter().map(|m| migration_record(&topo, m)).collect();
            dec.detail = format!("slowdown {:.4} -> {:.4}; mode {}", d.slowdown_before, d.slowdown_after, mode.word());
            let id = match mode {
                PlannerMode::Automatic => {
                    let first = self.log.operation_ids(moves.len() as u64).await?;
                    let ops = self.operations(first, 0, &d.job, &moves, st.epoch);
                    let dec = self
                        .log
                        .record_with(dec, |dec, id| {
                            for (m, o) in dec.migrations.iter_mut().zip(&ops) {
                                m.operation = o.id;
                            }
                            ops.iter().map(|o| Write::Operation(Operation { decision: id, ..o.clone() })).collect()
                        })
                        .await?;
                    let ops: Vec<Operation> = ops.into_iter().map(|o| Operation { decision: dec.id, ..o }).collect();
                    if let Err(e) = self.executor.adopt(ops) {
                        tracing::error!(decision = dec.id, "operations not taken: {e}");
                    }
                    dec.id
                }
                _ => {
                    let superseded = lock_m(&self.proposals).get(&d.job).map(|(_, id)| *id);
                    let dec = self.log.record(dec).await?;
                    if mode == PlannerMode::Approve {
                        if let Some(old) = superseded.filter(|old| lock_m(&self.pending).remove(old).is_some()) {
                            self.reject(old, &format!("superseded by decision {}", dec.id)).await?;
                        }
                        lock_m(&self.pending).insert(dec.id, Pending { job: d.job.clone(), moves, planned_epoch: st.epoch });
                    }
                    lock_m(&self.proposals).insert(d.job.clone(), (k, dec.id));
                    dec.id
                }
            };
            recorded.push(id);
        }
        // A job whose plan went away: its next proposal is new again; an approval it still
        // waits for is withdrawn.
        let gone: Vec<(String, u64)> = {
            let mut p = lock_m(&self.proposals);
            let gone = p.iter().filter(|(j, _)| !proposed_now.contains(*j)).map(|(j, (_, id))| (j.clone(), *id)).collect();
            p.retain(|j, _| proposed_now.contains(j));
            gone
        };
        for (_, id) in gone {
            if lock_m(&self.pending).remove(&id).is_some() {
                self.reject(id, "withdrawn: the planner no longer proposes it").await?;
            }
        }
        Ok(recorded)
    }

    fn operations(&self, first_id: u64, decision: u64, job: &str, moves: &[Move], epoch: u64) -> Vec<Operation> {
        moves.iter().zip(first_id..).map(|(m, id)| self.executor.operation(id, decision, job, m, epoch)).collect()
    }

    async fn reject(&self, id: u64, why: &str) -> Result<(), StoreError> {
        self.log
            .update(id, |d| {
                d.state = DecisionState::Rejected;
                add_detail(d, why);
            })
            .await?;
        Ok(())
    }

    /// An operator approves (or rejects) a pending plan: its operations are queued and the
    /// call returns; the executor runs them.
    pub async fn approve(&self, id: u64, yes: bool) -> Result<Decision, LoopError> {
        let Some(p) = lock_m(&self.pending).remove(&id) else { return Err(LoopError::NotPending(id)) };
        lock_m(&self.proposals).retain(|_, (_, d)| *d != id);
        if !yes {
            self.reject(id, "rejected by an operator").await?;
            return self.log.get(id).ok_or(LoopError::NotPending(id));
        }
        let first = self.log.operation_ids(p.moves.len() as u64).await?;
        let ops = self.operations(first, id, &p.job, &p.moves, p.planned_epoch);
        if let Err(e) = self.executor.check_free(&ops) {
            lock_m(&self.pending).insert(id, p);
            return Err(e.into());
        }
        let d = self
            .log
            .update_with(id, |d| {
                d.state = DecisionState::Applying;
                add_detail(d, "approved by an operator");
                for (m, o) in d.migrations.iter_mut().zip(&ops) {
                    m.operation = o.id;
                }
                ops.iter().cloned().map(Write::Operation).collect()
            })
            .await?
            .ok_or(LoopError::NotPending(id))?;
        self.executor.adopt(ops)?;
        Ok(d)
    }
}

fn migration_record(topo: &Topology, m: &Move) -> MigrationRecord {
    MigrationRecord {
        vm: topo.vms[m.vm].name.clone(),
        from_host: topo.hosts[m.from].name.clone(),
        to_host: topo.hosts[m.to].name.clone(),
        from_site: topo.sites[topo.site_of_host(m.from)].name.clone(),
        to_site: topo.sites[topo.site_of_host(m.to)].name.clone(),
        predicted_seconds: m.estimate.total_s,
        predicted_downtime_ms: m.estimate.downtime_s * 1e3,
        operation: 0,
        outcome: None,
        actual: None,
    }
}

fn majority_site(topo: &Topology, vm_host: &[HostId], vms: &[VmId]) -> usize {
    let mut count = vec![0; topo.sites.len()];
    for &v in vms {
        count[topo.site_of_host(vm_host[v])] += 1;
    }
    (0..count.len()).max_by_key(|&s| (count[s], std::cmp::Reverse(s))).unwrap_or(0)
}

#[cfg(test)]
mod tests;
