//! The executor owns every migration the loop decides: at most one operation per VM,
//! admitted in order under the per-site and per-link limits and the destination's room,
//! each with a deadline, cancelled (not run) when stale. Every transition is kept in the
//! store before it takes effect; a success is kept together with the VM's new placement
//! and its jobs' new site maps. When a decision's last operation ends, the decision says
//! what happened.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use straddle_model::migration_learnt::Observed;
use straddle_model::topology::{HostId, SiteId, Topology, VmId};
use tokio::sync::Notify;

use super::operation::{must_wait, run_budget, stale, transition, Route, Running};
use crate::clock::{Clock, Time};
use crate::decide::log::{add_detail, DecisionLog};
use crate::hypervisor::{HostRef, Hypervisor, HypervisorError, MigrationHandle, MigrationPhase, MigrationRequest};
use crate::plane::ControlPlane;
use crate::records::{DecisionState, MigrationStats, OpState, Operation};
use crate::state::{StoreError, Write};

#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// How long an operation may wait for a migration slot before it times out.
    pub queue_timeout: Duration,
    /// A started migration may run `timeout_factor` × its predicted time, at least this.
    pub min_migration_timeout: Duration,
    pub timeout_factor: f64,
    /// Longest pause of a guest at switch-over.
    pub max_downtime: Duration,
    /// A VM that migrated stays put at least this long (the planner sees it as cooling).
    pub cooldown: Duration,
    /// A VM whose migration failed is not planned again for this long.
    pub retry_after: Duration,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            queue_timeout: Duration::from_secs(600),
            min_migration_timeout: Duration::from_secs(120),
            timeout_factor: 3.0,
            max_downtime: Duration::from_millis(300),
            cooldown: Duration::from_secs(300),
            retry_after: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("vm {vm:?} already has operation {op} in flight")]
    Busy { vm: String, op: u64 },
    #[error("unknown VM {0:?} or host in an operation")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An operation in flight.
#[derive(Debug, Clone)]
struct Live {
    op: Operation,
    route: Route,
    /// When its current state must end.
    deadline: Time,
}

#[derive(Default)]
struct Inner {
    live: BTreeMap<u64, Live>,
    by_vm: HashMap<VmId, u64>,
    running: Running,
    /// Final operations of decisions that still have some in flight.
    ended: HashMap<u64, Vec<Operation>>,
    last_moved: HashMap<VmId, Time>,
    last_failed: HashMap<VmId, Time>,
}

pub struct Executor {
    pub plane: Arc<ControlPlane>,
    pub hypervisor: Arc<dyn Hypervisor>,
    pub log: Arc<DecisionLog>,
    pub clock: Clock,
    pub cfg: ExecConfig,
    inner: Mutex<Inner>,
    wake: Notify,
}

/// What the planner must treat as settled: VMs with an operation in flight go where it
/// takes them, and stay there (pinned).
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    pub targets: HashMap<VmId, HostId>,
    pub cooling: HashSet<VmId>,
}

impl Executor {
    pub fn new(plane: Arc<ControlPlane>, hypervisor: Arc<dyn Hypervisor>, log: Arc<DecisionLog>, cfg: ExecConfig) -> Executor {
        Executor { clock: plane.clock.clone(), plane, hypervisor, log, cfg, inner: Mutex::new(Inner::default()), wake: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, op: &Operation) -> Result<Route, ExecError> {
        let t = &self.plane.topo;
        let vm = t.vm(&op.vm).ok_or_else(|| ExecError::Unknown(op.vm.clone()))?;
        let from = t.host(&op.from_host).ok_or_else(|| ExecError::Unknown(op.from_host.clone()))?;
        let to = t.host(&op.to_host).ok_or_else(|| ExecError::Unknown(op.to_host.clone()))?;
        Ok(Route { vm, from, to })
    }

    /// VMs in flight and VMs cooling down after a move, for the next plan.
    pub fn in_flight(&self) -> InFlight {
        let now = self.clock.now();
        let g = self.lock();
        InFlight {
            targets: g.live.values().map(|l| (l.route.vm, l.route.to)).collect(),
            cooling: g
                .last_moved
                .iter()
                .filter(|(_, &t)| now.since(t) < self.cfg.cooldown)
                .chain(g.last_failed.iter().filter(|(_, &t)| now.since(t) < self.cfg.retry_after))
                .map(|(&v, _)| v)
                .collect(),
        }
    }

    /// Whether `vm` has an operation in flight.
    pub fn busy(&self, vm: VmId) -> bool {
        self.lock().by_vm.contains_key(&vm)
    }

    /// The operations in flight, oldest first.
    pub fn operations(&self) -> Vec<Operation> {
        self.lock().live.values().map(|l| l.op.clone()).collect()
    }

    /// Checks that none of `ops`' VMs has an operation in flight.
    pub fn check_free(&self, ops: &[Operation]) -> Result<(), ExecError> {
        let g = self.lock();
        for o in ops {
            let r = self.route(o)?;
            if let Some(&id) = g.by_vm.get(&r.vm) {
                return Err(ExecError::Busy { vm: o.vm.clone(), op: id });
            }
        }
        Ok(())
    }

    /// Takes over operations already kept in the store (in state Created).
    pub fn adopt(&self, ops: Vec<Operation>) -> Result<(), ExecError> {
        let now = self.clock.now();
        let mut g = self.lock();
        for op in &ops {
            let r = self.route(op)?;
            if let Some(&id) = g.by_vm.get(&r.vm) {
                return Err(ExecError::Busy { vm: op.vm.clone(), op: id });
            }
        }
        for op in ops {
            let route = self.route(&op)?;
            g.by_vm.insert(route.vm, op.id);
            g.live.insert(op.id, Live { op, route, deadline: now + self.cfg.queue_timeout });
        }
        drop(g);
        self.wake.notify_one();
        Ok(())
    }

    /// A new operation for a planned move (kept by the caller together with its decision).
    pub fn operation(&self, id: u64, decision: u64, job: &str, m: &straddle_model::plan::Move, planned_epoch: u64) -> Operation {
        let t = &self.plane.topo;
        let (vm, from, to, wave, predicted_s) = (&t.vms[m.vm].name, &t.hosts[m.from].name, &t.hosts[m.to].name, m.wave, m.estimate.total_s);
        let now_ms = self.clock.unix_ms();
        Operation {
            id,
            decision,
            job: job.to_string(),
            vm: vm.to_string(),
            from_host: from.to_string(),
            to_host: to.to_string(),
            planned_epoch,
            wave,
            state: OpState::Created,
            created_unix_ms: now_ms,
            deadline_unix_ms: now_ms.saturating_add(u64::try_from(self.cfg.queue_timeout.as_millis()).unwrap_or(u64::MAX)),
            predicted_seconds: predicted_s,
            detail: String::new(),
            stats: None,
        }
    }

    /// Runs until the task is dropped: admit, start, watch deadlines.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.step().await;
            let next = self.lock().live.values().filter(|l| l.op.state == OpState::Created).map(|l| l.deadline).min();
            let wait =
                next.map_or(Duration::from_secs(1), |t| t.since(self.clock.now())).clamp(Duration::from_millis(1), Duration::from_secs(1));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.clock.sleep(wait) => {}
            }
        }
    }

    /// One pass over the waiting operations, in order (decision, wave, id).
    pub async fn step(self: &Arc<Self>) {
        let mut waiting: Vec<Live> = self.lock().live.values().filter(|l| l.op.state == OpState::Created).cloned().collect();
        waiting.sort_by_key(|l| (l.op.decision, l.op.wave, l.op.id));
        for l in waiting {
            let now = self.clock.now();
            let st = self.plane.view();
            if now >= l.deadline {
                let why = {
                    let g = self.lock();
                    must_wait(l.route, &g.running, &st, &self.plane.topo).unwrap_or_else(|| "no slot".into())
                };
                let secs = self.cfg.queue_timeout.as_secs();
                self.end(l.op.id, OpState::TimedOut, &format!("waited {secs} s to start ({why})"), None).await;
                continue;
            }
            if let Some(why) = stale(&l.op, l.route, &st, &self.plane.topo) {
                self.end(l.op.id, OpState::Stale, &format!("stale, not run: {why}"), None).await;
                continue;
            }
            // An earlier wave of the same decision still waiting or running holds it back.
            let earlier = self.lock().live.values().any(|o| o.op.decision == l.op.decision && o.op.wave < l.op.wave);
            if earlier {
                continue;
            }
            let admitted = {
                let mut g = self.lock();
                if must_wait(l.route, &g.running, &st, &self.plane.topo).is_some() {
                    false
                } else {
                    g.running.add(l.route, &self.plane.topo, 1);
                    true
                }
            };
            if admitted {
                self.start(l).await;
            }
        }
    }

    async fn start(self: &Arc<Self>, l: Live) {
        let budget = run_budget(l.op.predicted_seconds, self.cfg.timeout_factor, self.cfg.min_migration_timeout);
        let mut op = l.op.clone();
        let _ = transition(&mut op, OpState::Running, "");
        op.deadline_unix_ms = self.clock.unix_ms().saturating_add(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX));
        if let Err(e) = self.plane.store.commit(vec![Write::Operation(op.clone())]).await {
            // Not kept as running: it has not started; try again on the next pass.
            tracing::error!(op = op.id, "could not keep the start of an operation: {e}");
            self.lock().running.add(l.route, &self.plane.topo, -1);
            return;
        }
        let deadline = self.clock.now() + budget;
        if let Some(x) = self.lock().live.get_mut(&op.id) {
            x.op = op.clone();
            x.deadline = deadline;
        }
        let t = &self.plane.topo;
        let host = |h: HostId| HostRef::of(&t.hosts[h]);
        let (a, b) = (t.site_of_host(l.route.from), t.site_of_host(l.route.to));
        let link = straddle_model::migration::bandwidth(t, a, b).unwrap_or(1.0);
        let req = MigrationRequest {
            op: op.id,
            vm: op.vm.clone(),
            from: host(l.route.from),
            to: host(l.route.to),
            link_bytes_per_s: link,
            max_bytes_per_s: share(t, a, b, link),
            max_downtime: self.cfg.max_downtime,
        };
        tracing::info!(op = op.id, vm = %op.vm, from = %op.from_host, to = %op.to_host, "migration started");
        match self.hypervisor.start_migration(req).await {
            Ok(handle) => {
                let me = self.clone();
                tokio::spawn(async move { me.watch(op.id, handle, deadline).await });
            }
            Err(e) => self.end(op.id, OpState::Failed, &format!("did not start: {e}"), None).await,
        }
    }

    /// Waits for a migration's end or its deadline (then cancels it).
    async fn watch(self: Arc<Self>, id: u64, mut h: MigrationHandle, deadline: Time) {
        let r = tokio::select! {
            r = h.finish() => r,
            _ = self.clock.sleep_until(deadline) => {
                h.cancel();
                let pass = match &*h.progress.borrow() {
                    MigrationPhase::Precopy { pass, remaining_bytes, .. } => format!(" in pre-copy pass {pass} with {:.0} MiB to send", remaining_bytes / 1048576.0),
                    _ => String::new(),
                };
                match h.finish().await {
                    Ok(stats) => Ok(stats),
                    Err(HypervisorError::Cancelled { vm, host }) => {
                        return self.end(id, OpState::TimedOut, &format!("over its deadline{pass}: aborted, {vm} stays on {host}"), None).await;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match r {
            Ok(stats) => self.succeeded(id, stats).await,
            Err(HypervisorError::Cancelled { vm, host }) => {
                self.end(id, OpState::Cancelled, &format!("cancelled: {vm} stays on {host}"), None).await
            }
            Err(e) => self.end(id, OpState::Failed, &e.to_string(), None).await,
        }
    }

    /// The VM runs on its destination: keep that with the operation's success, retrying
    /// while the store refuses (the VM has moved whatever the disk says).
    async fn succeeded(self: &Arc<Self>, id: u64, stats: MigrationStats) {
        let Some(l) = self.lock().live.get(&id).cloned() else { return };
        let mut op = l.op.clone();
        let mut what = format!("{} -> {} in {:.1} s (downtime {:.0} ms)", op.from_host, op.to_host, stats.total_s, stats.downtime_s * 1e3);
        if stats.passes > 0 {
            const MIB: f64 = 1048576.0;
            what.push_str(&format!(
                ", {} passes, {:.1} MiB sent at {:.1} MiB/s, guest dirtying {:.1} MiB/s",
                stats.passes,
                stats.transferred_bytes / MIB,
                stats.bandwidth_bytes_per_s / MIB,
                stats.dirty_bytes_per_s / MIB
            ));
        }
        what.push_str(&format!(" (estimated {:.1} s)", op.predicted_seconds));
        let _ = transition(&mut op, OpState::Succeeded, &what);
        op.stats = Some(stats);
        let t = &self.plane.topo;
        self.plane.learnt.lock().unwrap_or_else(|p| p.into_inner()).learn(&Observed {
            vm: l.route.vm,
            from: t.site_of_host(l.route.from),
            to: t.site_of_host(l.route.to),
            total_s: stats.total_s,
            downtime_s: stats.downtime_s,
            transferred_bytes: stats.transferred_bytes,
            bandwidth_bps: stats.bandwidth_bytes_per_s,
            dirty_bps: stats.dirty_bytes_per_s,
        });
        let mut delay = Duration::from_millis(200);
        let epochs = loop {
            match self.plane.moved(l.route.vm, l.route.to, Some(op.decision), vec![Write::Operation(op.clone())]).await {
                Ok(e) => break e,
                Err(e) => {
                    tracing::error!(op = id, "the migration completed but could not be kept ({e}); retrying");
                    self.clock.sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        };
        for (j, e) in &epochs {
            op.detail.push_str(&format!(", {j} epoch {e}"));
        }
        tracing::info!(op = id, vm = %op.vm, to = %op.to_host, "migration succeeded");
        self.lock().last_moved.insert(l.route.vm, self.clock.now());
        self.finish(op, l.route, true).await;
    }

    /// Ends an operation in a final state other than success (kept first).
    async fn end(self: &Arc<Self>, id: u64, state: OpState, why: &str, stats: Option<MigrationStats>) {
        let Some(l) = self.lock().live.get(&id).cloned() else { return };
        let was_running = l.op.state == OpState::Running;
        let mut op = l.op.clone();
        if let Err(e) = transition(&mut op, state, why) {
            tracing::error!("{e}");
            return;
        }
        op.stats = stats;
        let mut delay = Duration::from_millis(200);
        while let Err(e) = self.plane.store.commit(vec![Write::Operation(op.clone())]).await {
            tracing::error!(op = id, "could not keep the end of an operation ({e}); retrying");
            self.clock.sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        tracing::warn!(op = id, vm = %op.vm, state = ?state, "migration did not happen: {why}");
        if matches!(state, OpState::Failed | OpState::TimedOut) {
            self.lock().last_failed.insert(l.route.vm, self.clock.now());
        }
        self.finish(op, l.route, was_running).await;
    }

    /// Forgets a final operation, frees its slot, and settles its decision when it was the
    /// last one in flight.
    async fn finish(self: &Arc<Self>, op: Operation, route: Route, was_running: bool) {
        let decision = op.decision;
        let done = {
            let mut g = self.lock();
            g.live.remove(&op.id);
            g.by_vm.remove(&route.vm);
            if was_running {
                g.running.add(route, &self.plane.topo, -1);
            }
            g.ended.entry(decision).or_default().push(op);
            if g.live.values().any(|l| l.op.decision == decision) {
                None
            } else {
                g.ended.remove(&decision)
            }
        };
        self.wake.notify_one();
        if let Some(ops) = done {
            self.settle(decision, ops).await;
        }
    }

    async fn settle(&self, decision: u64, ops: Vec<Operation>) {
        let ok: Vec<&Operation> = ops.iter().filter(|o| o.state == OpState::Succeeded).collect();
        let state = if ok.len() == ops.len() { DecisionState::Applied } else { DecisionState::Failed };
        let mut parts: Vec<String> = ops.iter().map(|o| format!("#{} {} {}: {}", o.id, o.vm, o.state.word(), o.detail)).collect();
        parts.sort();
        let summary = match state {
            DecisionState::Applied => format!("applied: {}", parts.join("; ")),
            _ => format!("failed: {} of {} migrations happened; {}", ok.len(), ops.len(), parts.join("; ")),
        };
        if let Err(e) = self
            .log
            .update(decision, |d| {
                d.state = state;
                add_detail(d, &summary);
                for o in &ops {
                    if let Some(m) = d.migrations.iter_mut().find(|m| m.operation == o.id || (m.operation == 0 && m.vm == o.vm)) {
                        m.outcome = Some(o.state);
                        m.actual = o.stats;
                    }
                }
            })
            .await
        {
            tracing::error!(decision, "could not keep the outcome of a decision: {e}");
        }
    }

    /// Wakes the executor (a change elsewhere may have freed a slot).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }
}

/// The most a migration between sites `a` and `b` may use: its share of the path when as
/// many run as the link admits (`None` inside a site: the LAN is not planned).
fn share(t: &Topology, a: SiteId, b: SiteId, path_bytes_per_s: f64) -> Option<f64> {
    if a == b {
        return None;
    }
    let most = t.link(a, b).map_or(1, |l| l.max_concurrent_migrations.max(1));
    Some(path_bytes_per_s / f64::from(most))
}
