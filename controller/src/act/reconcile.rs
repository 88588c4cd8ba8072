//! After a restart, operations the store kept in flight are settled from what the
//! hypervisor reports, never guessed: a migration that ran is where its VM now runs (the
//! move is kept if the crash came before it was), one that never started is cancelled, and
//! every decision left applying is closed with what happened.

use std::collections::BTreeMap;

use super::executor::Executor;
use super::operation::transition;
use crate::decide::log::add_detail;
use crate::hypervisor::HostRef;
use crate::records::{DecisionState, OpState, Operation};
use crate::state::Write;

/// What reconciling found, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub completed: usize,
    pub failed: usize,
    pub cancelled: usize,
}

/// Settles every operation left in flight by the previous run.
pub async fn settle(exec: &Executor, kept: &BTreeMap<u64, Operation>) -> Settled {
    let topo = &exec.plane.topo;
    let mut out = Settled::default();
    let mut touched: BTreeMap<u64, Vec<Operation>> = BTreeMap::new();
    for op in kept.values().filter(|o| !o.state.is_final()) {
        let mut op = op.clone();
        let (Some(from), Some(to)) = (topo.host(&op.from_host), topo.host(&op.to_host)) else { continue };
        let now_at = match op.state {
            OpState::Running => exec.hypervisor.resolve(&op.vm, &HostRef::of(&topo.hosts[from]), &HostRef::of(&topo.hosts[to])).await,
            _ => None,
        };
        match (op.state, now_at.as_deref()) {
            (OpState::Running, Some(h)) if h == op.to_host => {
                let _ = transition(&mut op, OpState::Succeeded, "the controller restarted while it ran; the VM runs on its destination");
                let (Some(v), Some(to)) = (topo.vm(&op.vm), topo.host(&op.to_host)) else { continue };
                let already = exec.plane.read(|st| st.vm_host[v] == to);
                let r = if already {
                    exec.plane.store.commit(vec![Write::Operation(op.clone())]).await.map(|_| ())
                } else {
                    exec.plane.moved(v, to, Some(op.decision), vec![Write::Operation(op.clone())]).await.map(|_| ()).map_err(|e| match e {
                        crate::plane::PlaneError::Store(s) => s,
                        other => crate::state::StoreError::Io(other.to_string().into()),
                    })
                };
                if let Err(e) = r {
                    tracing::error!(op = op.id, "could not keep a settled operation: {e}");
                    continue;
                }
                out.completed += 1;
            }
            (OpState::Running, at) => {
                let why = match at {
                    Some(h) => format!("interrupted by a controller restart; the VM stayed on {h}"),
                    None => "interrupted by a controller restart; no host reports the VM".to_string(),
                };
                let _ = transition(&mut op, OpState::Failed, &why);
                if exec.plane.store.commit(vec![Write::Operation(op.clone())]).await.is_err() {
                    continue;
                }
                out.failed += 1;
            }
            _ => {
                let _ = transition(&mut op, OpState::Cancelled, "the controller restarted before it ran");
                if exec.plane.store.commit(vec![Write::Operation(op.clone())]).await.is_err() {
                    continue;
                }
                out.cancelled += 1;
            }
        }
        touched.entry(op.decision).or_default().push(op);
    }
    // Close every decision left applying, from all of its operations.
    for d in exec.log.snapshot().into_iter().filter(|d| d.state == DecisionState::Applying) {
        let mut ops: Vec<Operation> = kept.values().filter(|o| o.decision == d.id).cloned().collect();
        for o in touched.remove(&d.id).unwrap_or_default() {
            if let Some(x) = ops.iter_mut().find(|x| x.id == o.id) {
                *x = o;
            }
        }
        let done = ops.iter().filter(|o| o.state == OpState::Succeeded).count();
        let (state, why) = if !ops.is_empty() && done == ops.len() {
            (DecisionState::Applied, format!("all {done} migrations had completed when the controller restarted"))
        } else {
            (
                DecisionState::Failed,
                format!(
                    "interrupted by a controller restart: {done} of {} migrations had completed; the rest did not happen and those VMs stayed where they were",
                    ops.len()
                ),
            )
        };
        let _ = exec
            .log
            .update(d.id, |d| {
                d.state = state;
                add_detail(d, &why);
            })
            .await;
    }
    for d in exec.log.snapshot().into_iter().filter(|d| d.state == DecisionState::PendingApproval) {
        let _ = exec
            .log
            .update(d.id, |d| {
                d.state = DecisionState::Rejected;
                add_detail(d, "the plan expired with a controller restart; the planner proposes again");
            })
            .await;
    }
    out
}
