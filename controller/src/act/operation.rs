//! The pure rules of a migration operation (as TiKV PD's operators have them): the checked
//! state machine, when one is stale, when one may start under the per-site and per-link
//! limits, and how long it may run.

use std::collections::HashMap;
use std::time::Duration;

use straddle_model::topology::{HostId, SiteId, Topology, VmId};

use crate::plane::PlaneState;
use crate::records::{OpState, Operation};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("operation {id}: {from:?} cannot become {to:?}")]
pub struct BadTransition {
    pub id: u64,
    pub from: OpState,
    pub to: OpState,
}

/// Moves `op` to `next`, appending `why` to its detail; refuses transitions the state
/// machine does not have (created → running → succeeded/failed/cancelled/timed out;
/// created → cancelled/timed out/stale/failed).
pub fn transition(op: &mut Operation, next: OpState, why: &str) -> Result<(), BadTransition> {
    if !op.state.may_become(next) {
        return Err(BadTransition { id: op.id, from: op.state, to: next });
    }
    op.state = next;
    if !why.is_empty() {
        if !op.detail.is_empty() {
            op.detail.push_str("; ");
        }
        op.detail.push_str(why);
    }
    Ok(())
}

/// Where an operation moves its VM, resolved against the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub vm: VmId,
    pub from: HostId,
    pub to: HostId,
}

/// Why an operation may no longer run: the placement it was planned against changed.
pub fn stale(op: &Operation, r: Route, st: &PlaneState, topo: &Topology) -> Option<String> {
    let Some(job) = st.jobs.get(&op.job) else {
        return Some(format!("job {} is no longer admitted", op.job));
    };
    if st.vm_host[r.vm] != r.from {
        return Some(format!("{} is on {} now, not {}", op.vm, topo.hosts[st.vm_host[r.vm]].name, op.from_host));
    }
    for w in job.vms() {
        if let Some(&(epoch, by)) = st.vm_changed.get(&w) {
            if epoch > op.planned_epoch && by != Some(op.decision) {
                return Some(format!(
                    "{} of job {} moved (placement epoch {epoch}) after the plan (epoch {})",
                    topo.vms[w].name, op.job, op.planned_epoch
                ));
            }
        }
    }
    if st.pinned.contains(&r.vm) {
        return Some(format!("{} was pinned after the plan", op.vm));
    }
    let to_site = topo.site_of_host(r.to);
    if st.drained.contains(&to_site) {
        return Some(format!("site {} was drained after the plan", topo.sites[to_site].name));
    }
    None
}

/// Migrations running now, by where they cross.
#[derive(Debug, Default, Clone)]
pub struct Running {
    pub per_site: HashMap<SiteId, u32>,
    pub per_link: HashMap<(SiteId, SiteId), u32>,
    /// VMs arriving on each host.
    pub arriving: HashMap<HostId, u32>,
}

impl Running {
    pub fn add(&mut self, r: Route, topo: &Topology, n: i64) {
        let (a, b) = (topo.site_of_host(r.from), topo.site_of_host(r.to));
        let bump = |m: &mut u32| *m = u32::try_from((i64::from(*m) + n).max(0)).unwrap_or(0);
        bump(self.per_site.entry(a).or_default());
        if b != a {
            bump(self.per_site.entry(b).or_default());
            bump(self.per_link.entry((a.min(b), a.max(b))).or_default());
        }
        bump(self.arriving.entry(r.to).or_default());
    }
}

/// Why an operation must wait for now (a limit is full), or `None` when it may start.
pub fn must_wait(r: Route, running: &Running, st: &PlaneState, topo: &Topology) -> Option<String> {
    let (a, b) = (topo.site_of_host(r.from), topo.site_of_host(r.to));
    for s in [a, b] {
        let now = running.per_site.get(&s).copied().unwrap_or(0);
        let max = topo.sites[s].max_concurrent_migrations;
        if now >= max {
            return Some(format!("site {} runs {now} of its {max} migrations at once", topo.sites[s].name));
        }
    }
    if a != b {
        // A direct link has its own limit; a path over several links takes one at a time.
        let max = topo.link(a, b).map_or(1, |l| l.max_concurrent_migrations);
        let now = running.per_link.get(&(a.min(b), a.max(b))).copied().unwrap_or(0);
        if now >= max {
            return Some(format!("the link {} - {} carries {now} of its {max} migrations at once", topo.sites[a].name, topo.sites[b].name));
        }
    }
    let on_host = u32::try_from(st.vm_host.iter().filter(|&&h| h == r.to).count()).unwrap_or(u32::MAX);
    let arriving = running.arriving.get(&r.to).copied().unwrap_or(0);
    let cap = topo.hosts[r.to].vm_capacity;
    if on_host + arriving >= cap {
        return Some(format!("host {} is full ({on_host} VMs, {arriving} arriving, capacity {cap})", topo.hosts[r.to].name));
    }
    None
}

/// How long a started migration may run: `factor` × its predicted time, at least `min`.
pub fn run_budget(predicted_s: f64, factor: f64, min: Duration) -> Duration {
    let scaled = predicted_s * factor;
    if scaled.is_finite() && scaled > min.as_secs_f64() {
        Duration::from_secs_f64(scaled.min(86_400.0))
    } else {
        min
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(state: OpState) -> Operation {
        Operation {
            id: 1,
            decision: 5,
            job: "cg".into(),
            vm: "v1".into(),
            from_host: "b1".into(),
            to_host: "a1".into(),
            planned_epoch: 3,
            wave: 0,
            state,
            created_unix_ms: 0,
            deadline_unix_ms: 0,
            predicted_seconds: 4.0,
            detail: String::new(),
            stats: None,
        }
    }

    #[test]
    fn the_state_machine_has_only_its_transitions() {
        let mut o = op(OpState::Created);
        transition(&mut o, OpState::Running, "started").unwrap();
        transition(&mut o, OpState::Succeeded, "done").unwrap();
        assert_eq!(o.detail, "started; done");
        assert_eq!(transition(&mut o, OpState::Running, ""), Err(BadTransition { id: 1, from: OpState::Succeeded, to: OpState::Running }));
        let mut o = op(OpState::Created);
        transition(&mut o, OpState::Stale, "moved").unwrap();
        assert!(transition(&mut op(OpState::Running), OpState::Stale, "").is_err(), "a running migration is never stale");
        for s in [OpState::Succeeded, OpState::Failed, OpState::Cancelled, OpState::TimedOut, OpState::Stale] {
            assert!(s.is_final() && !OpState::Created.is_final());
        }
    }

    fn topo() -> Topology {
        Topology::from_yaml(
            "sites:\n  - {name: A, max_concurrent_migrations: 1, hosts: [{name: a1, vm_capacity: 2}]}\n  - {name: B, hosts: [{name: b1, vm_capacity: 4}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 1000, latency_ms: 5}\n\
             vms:\n  - {name: v0, host: a1, memory_mib: 512}\n  - {name: v1, host: b1, memory_mib: 512}\n  - {name: v2, host: b1, memory_mib: 512}\n",
        )
        .unwrap()
    }

    fn state(t: &Topology) -> PlaneState {
        let mut jobs = std::collections::BTreeMap::new();
        let spec =
            crate::records::JobSpec { job: "cg".into(), world_size: 2, rank_vms: vec!["v0".into(), "v1".into()], ..Default::default() };
        jobs.insert("cg".into(), crate::plane::JobEntry { spec, rank_vm: vec![0, 1] });
        PlaneState {
            vm_host: t.vms.iter().map(|v| v.host).collect(),
            jobs,
            pinned: Default::default(),
            drained: Default::default(),
            epoch: 3,
            vm_changed: Default::default(),
            cancelled: Default::default(),
            arrivals: Default::default(),
        }
    }

    #[test]
    fn stale_when_the_placement_it_saw_changed() {
        let t = topo();
        let r = Route { vm: 1, from: 1, to: 0 };
        let mut st = state(&t);
        assert_eq!(stale(&op(OpState::Created), r, &st, &t), None);
        // Its own decision moved another VM of the job: not stale.
        st.vm_changed.insert(0, (4, Some(5)));
        assert_eq!(stale(&op(OpState::Created), r, &st, &t), None);
        st.vm_changed.insert(0, (5, None));
        assert!(stale(&op(OpState::Created), r, &st, &t).unwrap().contains("v0 of job cg moved"));
        let mut st = state(&t);
        st.vm_host[1] = 0;
        assert!(stale(&op(OpState::Created), r, &st, &t).unwrap().contains("v1 is on a1 now"));
        let mut st = state(&t);
        st.pinned.insert(1);
        assert!(stale(&op(OpState::Created), r, &st, &t).is_some());
        let mut st = state(&t);
        st.jobs.clear();
        assert!(stale(&op(OpState::Created), r, &st, &t).unwrap().contains("no longer admitted"));
    }

    #[test]
    fn limits_hold_migrations_back() {
        let t = topo();
        let st = state(&t);
        let r = Route { vm: 1, from: 1, to: 0 };
        let mut running = Running::default();
        assert_eq!(must_wait(r, &running, &st, &t), None);
        running.add(Route { vm: 2, from: 1, to: 0 }, &t, 1);
        assert!(must_wait(r, &running, &st, &t).unwrap().contains("site A runs 1 of its 1"));
        running.add(Route { vm: 2, from: 1, to: 0 }, &t, -1);
        assert_eq!(running.per_site[&0], 0);
        // a1 holds v0 and has room for one more; with one arriving it is full.
        let mut running = Running::default();
        running.arriving.insert(0, 1);
        assert!(must_wait(r, &running, &st, &t).unwrap().contains("host a1 is full"));
        assert_eq!(run_budget(10.0, 3.0, Duration::from_secs(60)), Duration::from_secs(60));
        assert_eq!(run_budget(100.0, 3.0, Duration::from_secs(60)), Duration::from_secs(300));
        assert_eq!(run_budget(f64::INFINITY, 3.0, Duration::from_secs(60)), Duration::from_secs(60));
    }
}
