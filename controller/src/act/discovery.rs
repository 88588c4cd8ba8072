//! Discovery: what the hypervisor runs against what the controller believes, at start and
//! then periodically. A VM running on another host than placed (moved by hand, or started
//! again elsewhere) is adopted where it runs, with an observed decision, and its jobs'
//! site maps follow; a VM no answering host runs (destroyed or stopped by hand) is recorded
//! once and left out of the planner's moves until it runs again. Each round also measures
//! the VMs' dirty rates where the hypervisor can, for the estimate.
//!
//! A VM with a migration in flight is the executor's: discovery never judges it, and it
//! only acts on a VM whose placement did not change while the hosts were asked (a migration
//! that ended meanwhile would otherwise look like a move by hand).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use straddle_model::topology::VmId;

use super::executor::Executor;
use super::inventory::{survey, Survey};
use crate::decide::log::DecisionLog;
use crate::hypervisor::{HostRef, Hypervisor};
use crate::plane::ControlPlane;
use crate::records::{Decision, DecisionKind, DecisionState};

/// At start: refuses (the reason) when VMs of the topology run on no answering host —
/// but with agents (`builds`), a networked cluster's VMs that run nowhere are not built
/// yet: they are absent until they run; adopts VMs found elsewhere.
pub async fn at_start(hv: &dyn Hypervisor, plane: &Arc<ControlPlane>, log: &DecisionLog, builds: bool) -> Result<(), String> {
    let mut found = survey(hv, plane).await;
    if builds {
        let topo = &plane.topo;
        let unbuilt: Vec<VmId> =
            found.missing.iter().filter_map(|n| topo.vm(n)).filter(|&v| crate::agents::fabric::networked(topo, v)).collect();
        if !unbuilt.is_empty() {
            tracing::info!(vms = unbuilt.len(), "VMs of networked clusters run nowhere: not built yet (straddle cluster build)");
        }
        found.missing.retain(|n| !topo.vm(n).is_some_and(|v| unbuilt.contains(&v)));
        plane.absent.lock().unwrap_or_else(|p| p.into_inner()).extend(unbuilt);
    }
    for (h, why) in &found.unreachable {
        tracing::warn!(host = %h, "the hypervisor does not answer ({why}); its VMs are taken as placed");
    }
    let hosts: Vec<HostRef> = plane.topo.hosts.iter().map(HostRef::of).collect();
    if let Some(r) = found.refusal(&hosts) {
        return Err(r);
    }
    for (vm, placed, runs) in &found.elsewhere {
        adopt(plane, log, vm, placed, runs).await?;
    }
    Ok(())
}

/// Keeps `vm` on `runs`, where the hypervisor runs it, with an observed decision.
async fn adopt(plane: &ControlPlane, log: &DecisionLog, vm: &str, placed: &str, runs: &str) -> Result<(), String> {
    let (Some(v), Some(h)) = (plane.topo.vm(vm), plane.topo.host(runs)) else { return Ok(()) };
    let why = format!("{vm} runs on {runs}, not on {placed} as kept: moved outside the controller");
    tracing::warn!("{why}; adopting where it runs");
    let epochs = plane.moved(v, h, None, vec![]).await.map_err(|e| format!("{vm}: {e}"))?;
    let jobs: Vec<String> = epochs.iter().map(|(j, e)| format!("{j} epoch {e}")).collect();
    let job = epochs.first().map(|(j, _)| j.clone()).unwrap_or_default();
    let mut d = Decision::new(&job, DecisionKind::Observed, None, why, DecisionState::Applied);
    d.detail = if jobs.is_empty() { "placement adopted".into() } else { format!("placement adopted; {}", jobs.join(", ")) };
    log.record(d).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Records that `vm` runs again (or no longer runs), once per change.
async fn observe_presence(plane: &ControlPlane, log: &DecisionLog, vm: VmId, present: bool) {
    let name = &plane.topo.vms[vm].name;
    let changed = {
        let mut absent = plane.absent.lock().unwrap_or_else(|p| p.into_inner());
        if present {
            absent.remove(&vm)
        } else {
            absent.insert(vm)
        }
    };
    if !changed {
        return;
    }
    let placed = plane.read(|st| plane.topo.hosts[st.vm_host[vm]].name.clone());
    let why = if present {
        format!("{name} runs again on {placed}: the planner may move it again")
    } else {
        format!("{name} runs on no host that answers (placed on {placed}): destroyed or stopped outside the controller; it is not moved until it runs again")
    };
    tracing::warn!("{why}");
    let job = plane.read(|st| st.jobs.iter().find(|(_, j)| j.rank_vm.contains(&vm)).map(|(n, _)| n.clone())).unwrap_or_default();
    if let Err(e) = log.record(Decision::new(&job, DecisionKind::Observed, None, why, DecisionState::Applied)).await {
        tracing::error!("could not record an observed change: {e}");
    }
}

/// One round: survey, adopt, note absences and returns, measure dirty rates.
pub async fn round(exec: &Executor) {
    let plane = &exec.plane;
    let before = plane.read(|st| st.vm_host.clone());
    let found: Survey = survey(exec.hypervisor.as_ref(), plane).await;
    let after = plane.read(|st| st.vm_host.clone());
    let settled = |v: VmId| before[v] == after[v] && !exec.busy(v);
    for (vm, placed, runs) in &found.elsewhere {
        let Some(v) = plane.topo.vm(vm) else { continue };
        if !settled(v) {
            continue;
        }
        if let Err(e) = adopt(plane, &exec.log, vm, placed, runs).await {
            tracing::error!("could not adopt {vm} where it runs: {e}");
        }
    }
    let missing: HashSet<VmId> = found.missing.iter().filter_map(|n| plane.topo.vm(n)).collect();
    let unreachable: HashSet<&str> = found.unreachable.iter().map(|(h, _)| h.as_str()).collect();
    for (v, &h) in after.iter().enumerate() {
        if missing.contains(&v) {
            if settled(v) {
                observe_presence(plane, &exec.log, v, false).await;
            }
        } else if !unreachable.contains(plane.topo.hosts[h].name.as_str()) {
            observe_presence(plane, &exec.log, v, true).await;
        }
    }
    for h in &plane.topo.hosts {
        if unreachable.contains(h.name.as_str()) {
            continue;
        }
        match exec.hypervisor.dirty_rates(&HostRef::of(h)).await {
            Ok(rates) => {
                let mut learnt = plane.learnt.lock().unwrap_or_else(|p| p.into_inner());
                for (vm, bps) in rates {
                    if let Some(v) = plane.topo.vm(&vm) {
                        if learnt.dirty_measured(v).is_none() {
                            tracing::info!(vm = %vm, host = %h.name, "dirty rate measured: {:.2} MiB/s", bps / 1048576.0);
                        }
                        learnt.measured_dirty(v, bps);
                    }
                }
            }
            Err(e) => tracing::debug!(host = %h.name, "no dirty rates: {e}"),
        }
    }
}

/// Discovery every `every`, until the task is dropped.
pub async fn run(exec: Arc<Executor>, every: Duration) {
    loop {
        exec.plane.clock.sleep(every).await;
        round(&exec).await;
    }
}
