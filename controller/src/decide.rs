//! The decision loop: observe (traffic, placement) → classify → plan (pure) → act
//! (migrate through the hypervisor, wave by wave) → record (a decision with its reason,
//! predicted gain and outcome) → push (a new site-map epoch). Modes: automatic, dry-run
//! (record only), approve (record, wait for an operator).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use straddle_proto::{Decision, DecisionState, JobClass, Migration, PlannerMode};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::classify::{classify, Class, ClassState, JobProfile, Policy};
use crate::control::ControlPlane;
use crate::hypervisor::{Hypervisor, MigrationRequest};
use crate::plan::{plan, Move, PlanConfig, PlanInput, PlanJob};
use crate::registry::unix_ms;
use crate::topology::VmId;

#[derive(Debug, Clone)]
pub struct DeciderConfig {
    pub policy: Policy,
    pub plan: PlanConfig,
    /// A VM that migrated stays put at least this long.
    pub cooldown: Duration,
    /// Traffic rates are taken over this many trailing seconds.
    pub window_secs: u64,
    pub migration_timeout: Duration,
}

impl Default for DeciderConfig {
    fn default() -> Self {
        DeciderConfig {
            policy: Policy::default(),
            plan: PlanConfig::default(),
            cooldown: Duration::from_secs(300),
            window_secs: 10,
            migration_timeout: Duration::from_secs(120),
        }
    }
}

/// Every decision, in order, and a feed of new ones and their state changes; each change
/// is kept in the store before it is announced.
pub struct DecisionLog {
    all: Mutex<Vec<Decision>>,
    feed: broadcast::Sender<Decision>,
    store: Option<Arc<crate::store::Store>>,
}

impl Default for DecisionLog {
    fn default() -> Self {
        DecisionLog::new(None, vec![])
    }
}

impl DecisionLog {
    pub fn new(store: Option<Arc<crate::store::Store>>, restored: Vec<Decision>) -> DecisionLog {
        DecisionLog { all: Mutex::new(restored), feed: broadcast::channel(1024).0, store }
    }

    fn keep(&self, d: &Decision) {
        if let Some(s) = &self.store {
            if let Err(e) = s.put_decision(d) {
                tracing::error!("could not keep decision {}: {e}", d.id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Decision>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new decision; returns its id (from 1).
    pub fn record(&self, mut d: Decision) -> u64 {
        let mut all = self.lock();
        d.id = all.len() as u64 + 1;
        d.unix_ms = unix_ms();
        self.keep(&d);
        all.push(d.clone());
        let _ = self.feed.send(d.clone());
        d.id
    }

    pub fn update(&self, id: u64, state: DecisionState, detail: String) -> Option<Decision> {
        let mut all = self.lock();
        let d = all.get_mut(id.checked_sub(1)? as usize)?;
        d.state = state as i32;
        if !detail.is_empty() {
            if !d.detail.is_empty() {
                d.detail.push_str("; ");
            }
            d.detail.push_str(&detail);
        }
        let d = d.clone();
        self.keep(&d);
        let _ = self.feed.send(d.clone());
        Some(d)
    }

    pub fn get(&self, id: u64) -> Option<Decision> {
        self.lock().get(id.checked_sub(1)? as usize).cloned()
    }

    pub fn snapshot(&self) -> Vec<Decision> {
        self.lock().clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Decision> {
        self.feed.subscribe()
    }
}

pub struct Decider {
    pub plane: Arc<ControlPlane>,
    pub hypervisor: Arc<dyn Hypervisor>,
    pub cfg: DeciderConfig,
    pub log: DecisionLog,
    mode: Mutex<PlannerMode>,
    classes: Mutex<HashMap<String, ClassState>>,
    last_moved: Mutex<HashMap<VmId, Instant>>,
    /// Plans waiting for an operator (approve mode): decision id → moves.
    pending: Mutex<HashMap<u64, Vec<Move>>>,
}

fn job_class(c: Class) -> JobClass {
    match c {
        Class::Network => JobClass::NetworkIntensive,
        Class::Compute => JobClass::ComputeIntensive,
    }
}

impl Decider {
    pub fn new(plane: Arc<ControlPlane>, hypervisor: Arc<dyn Hypervisor>, cfg: DeciderConfig, mode: PlannerMode) -> Decider {
        Self::restored(plane, hypervisor, cfg, mode, vec![])
    }

    /// A decider over decisions kept from before a restart. Plans that were being applied
    /// when the controller stopped are settled from the placements the store kept (a
    /// migration either completed — its placement was kept — or did not happen); plans
    /// that waited for approval expired.
    pub fn restored(
        plane: Arc<ControlPlane>,
        hypervisor: Arc<dyn Hypervisor>,
        cfg: DeciderConfig,
        mode: PlannerMode,
        decisions: Vec<Decision>,
    ) -> Decider {
        let store = plane.store.clone();
        let interrupted: Vec<Decision> = decisions
            .iter()
            .filter(|d| d.state == DecisionState::Applying as i32 || d.state == DecisionState::PendingApproval as i32)
            .cloned()
            .collect();
        let d = Decider {
            log: DecisionLog::new(store, decisions),
            plane,
            hypervisor,
            cfg,
            mode: Mutex::new(mode),
            classes: Mutex::new(HashMap::new()),
            last_moved: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        };
        for x in interrupted {
            if x.state == DecisionState::PendingApproval as i32 {
                d.log.update(
                    x.id,
                    DecisionState::Rejected,
                    "the plan expired with a controller restart; the planner proposes again".into(),
                );
                continue;
            }
            let (vm_host, topo) = (d.plane.state.lock().unwrap_or_else(|p| p.into_inner()).vm_host.clone(), &d.plane.topo);
            let done =
                x.migrations.iter().filter(|m| topo.vm(&m.vm).zip(topo.host(&m.to_host)).is_some_and(|(v, h)| vm_host[v] == h)).count();
            let (state, why) = if done == x.migrations.len() {
                (DecisionState::Applied, format!("all {done} migrations had completed when the controller restarted"))
            } else {
                (
                    DecisionState::Failed,
                    format!(
                        "interrupted by a controller restart: {done} of {} migrations had completed; the rest did not happen and those VMs stayed where they were",
                        x.migrations.len()
                    ),
                )
            };
            d.log.update(x.id, state, why);
        }
        d
    }

    pub fn mode(&self) -> PlannerMode {
        *self.mode.lock().unwrap()
    }

    pub fn set_mode(&self, m: PlannerMode) {
        *self.mode.lock().unwrap() = m;
        if let Some(s) = &self.plane.store {
            if let Err(e) = s.put_meta("mode", m.as_str_name()) {
                tracing::error!("could not keep the mode: {e}");
            }
        }
    }

    /// A job's traffic: point-to-point and one-sided rates over the window, and the
    /// collectives it calls (modelled per algorithm under each candidate placement).
    fn profile(&self, job: &str) -> Option<JobProfile> {
        let reg = &self.plane.registry;
        let now = reg.now_secs();
        reg.with_job(job, |j| {
            let m = j.rate(now, self.cfg.window_secs);
            JobProfile { bytes: m.bytes, messages: m.messages, collectives: j.collective_uses(now) }
        })
        .ok()
    }

    /// One round of the loop; returns the ids of the decisions it recorded.
    pub async fn tick(&self) -> Vec<u64> {
        let now = Instant::now();
        let topo = &self.plane.topo;
        let (vm_host, jobs_spec, pinned, drained) = {
            let st = self.plane.state.lock().unwrap_or_else(|p| p.into_inner());
            (st.vm_host.clone(), st.jobs.clone(), st.pinned.clone(), st.drained.clone())
        };
        let mut recorded = Vec::new();
        let mut jobs = Vec::new();
        for (name, spec) in &jobs_spec {
            let Some(profile) = self.profile(name) else { continue };
            if profile.ranks() != spec.rank_vm.len() {
                continue;
            }
            let home = majority_site(topo, &vm_host, &spec.rank_vm);
            let prev = self.classes.lock().unwrap().get(name).copied();
            let (v, st) = classify(&self.cfg.policy, topo, &profile, home, prev, now);
            self.classes.lock().unwrap().insert(name.clone(), st);
            if v.changed {
                recorded.push(self.log.record(Decision {
                    job: name.clone(),
                    class: job_class(v.class) as i32,
                    reason: v.reason.clone(),
                    state: DecisionState::Applied as i32,
                    detail: format!(
                        "classified: model slowdown {:.4} ({:?}), paper rate {:.0} B/s ({:?})",
                        v.model_slowdown, v.model_says, v.paper_rate, v.paper_says
                    ),
                    ..Default::default()
                }));
            }
            jobs.push(PlanJob { id: name.clone(), class: v.class, rank_vm: spec.rank_vm.clone(), profile });
        }
        let cooling: HashSet<VmId> =
            self.last_moved.lock().unwrap().iter().filter(|(_, &t)| now.duration_since(t) < self.cfg.cooldown).map(|(&v, _)| v).collect();
        let input = PlanInput { topo, vm_host: &vm_host, jobs: &jobs, pinned: &pinned, drained: &drained, cooling: &cooling };
        let p = plan(&input, &self.cfg.plan);
        if p.moves.is_empty() {
            return recorded;
        }
        let mode = self.mode();
        // One decision per job whose VMs move.
        for d in &p.decisions {
            let moves: Vec<Move> = p
                .moves
                .iter()
                .filter(|m| jobs.iter().find(|j| j.id == d.job).is_some_and(|j| j.rank_vm.contains(&m.vm)))
                .cloned()
                .collect();
            if moves.is_empty() {
                continue;
            }
            let state = match mode {
                PlannerMode::DryRun => DecisionState::Proposed,
                PlannerMode::Approve => DecisionState::PendingApproval,
                _ => DecisionState::Applying,
            };
            let id = self.log.record(Decision {
                job: d.job.clone(),
                class: job_class(d.class) as i32,
                reason: d.reason.clone(),
                predicted_gain_secs: d.gain_s - d.cost_s,
                migrations: moves.iter().map(|m| self.migration(m)).collect(),
                state: state as i32,
                detail: format!("slowdown {:.4} -> {:.4}; mode {:?}", d.slowdown_before, d.slowdown_after, mode),
                ..Default::default()
            });
            recorded.push(id);
            match mode {
                PlannerMode::DryRun => {}
                PlannerMode::Approve => {
                    self.pending.lock().unwrap().insert(id, moves);
                }
                _ => self.apply(id, moves).await,
            }
        }
        recorded
    }

    fn migration(&self, m: &Move) -> Migration {
        let topo = &self.plane.topo;
        Migration {
            vm: topo.vms[m.vm].name.clone(),
            from_host: topo.hosts[m.from].name.clone(),
            to_host: topo.hosts[m.to].name.clone(),
            from_site: topo.sites[topo.site_of_host(m.from)].name.clone(),
            to_site: topo.sites[topo.site_of_host(m.to)].name.clone(),
            predicted_seconds: m.estimate.total_s,
            predicted_downtime_ms: m.estimate.downtime_s * 1e3,
        }
    }

    /// An operator approves (or rejects) a pending plan.
    pub async fn approve(&self, id: u64, yes: bool) -> Result<Decision, String> {
        let moves = self.pending.lock().unwrap().remove(&id).ok_or_else(|| format!("decision {id} is not waiting for approval"))?;
        if !yes {
            return self
                .log
                .update(id, DecisionState::Rejected, "rejected by an operator".into())
                .ok_or_else(|| format!("no decision {id}"));
        }
        self.apply(id, moves).await;
        self.log.get(id).ok_or_else(|| format!("no decision {id}"))
    }

    /// Executes moves wave by wave; a failed migration leaves its VM (and the site map)
    /// where it was and the decision says what happened.
    async fn apply(&self, id: u64, mut moves: Vec<Move>) {
        self.log.update(id, DecisionState::Applying, String::new());
        moves.sort_by_key(|m| m.wave);
        let topo = &self.plane.topo;
        let mut failures = Vec::new();
        let mut done = Vec::new();
        let waves: Vec<u32> = {
            let mut w: Vec<u32> = moves.iter().map(|m| m.wave).collect();
            w.dedup();
            w
        };
        for w in waves {
            let batch: Vec<&Move> = moves.iter().filter(|m| m.wave == w).collect();
            let results = join_all(
                batch
                    .iter()
                    .map(|m| {
                        let (a, b) = (topo.site_of_host(m.from), topo.site_of_host(m.to));
                        let bw = if a == b { 10e9 / 8.0 } else { topo.path(a, b).map(|p| p.bandwidth_bps).unwrap_or(1.0) };
                        let req = MigrationRequest {
                            vm: topo.vms[m.vm].name.clone(),
                            from_host: topo.hosts[m.from].name.clone(),
                            to_host: topo.hosts[m.to].name.clone(),
                            bandwidth_bps: bw,
                            timeout: self.cfg.migration_timeout,
                        };
                        let hv = self.hypervisor.clone();
                        Box::pin(async move {
                            let r = hv.migrate(&req).await;
                            (req, r)
                        })
                    })
                    .collect(),
            )
            .await;
            for (m, (req, r)) in batch.iter().zip(results) {
                match r {
                    Ok(out) => {
                        self.last_moved.lock().unwrap().insert(m.vm, Instant::now());
                        let epochs = self.plane.moved(m.vm, m.to);
                        done.push(format!(
                            "{} {} -> {} in {:.1} s (downtime {:.0} ms){}",
                            req.vm,
                            req.from_host,
                            req.to_host,
                            out.total_s,
                            out.downtime_s * 1e3,
                            epochs.iter().map(|(j, e)| format!(", {j} epoch {e}")).collect::<String>()
                        ));
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        let (state, detail) = if failures.is_empty() {
            (DecisionState::Applied, format!("applied: {}", done.join("; ")))
        } else {
            (
                DecisionState::Failed,
                format!("failed: {}; done: {}", failures.join("; "), if done.is_empty() { "nothing".into() } else { done.join("; ") }),
            )
        };
        self.log.update(id, state, detail);
    }

    /// Runs the loop every `every` until the task is dropped.
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            self.tick().await;
        }
    }
}

/// Awaits all futures together (the migrations of one wave run at once).
async fn join_all<F: std::future::Future + Unpin>(mut fs: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut results: Vec<Option<F::Output>> = (0..fs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in fs.iter_mut().enumerate() {
            if results[i].is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => results[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future finished")).collect()
}

fn majority_site(topo: &crate::topology::Topology, vm_host: &[usize], vms: &[VmId]) -> usize {
    let mut count = vec![0; topo.sites.len()];
    for &v in vms {
        count[topo.site_of_host(vm_host[v])] += 1;
    }
    (0..count.len()).max_by_key(|&s| (count[s], std::cmp::Reverse(s))).unwrap_or(0)
}
