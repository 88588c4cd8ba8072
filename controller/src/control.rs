//! The control plane's state: the topology, where every VM runs, the jobs schedulers
//! submitted (rank → VM), and what operators set (pins, drains). Submitting a job publishes
//! its first site map (epoch 1); every applied placement change publishes the next.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use straddle_proto::JobSpec;

use crate::registry::{Registry, RegistryError};
use crate::store::{Snapshot, Store};
use crate::topology::{HostId, SiteId, Topology, VmId};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlaneError {
    #[error("job: must not be empty")]
    EmptyJob,
    #[error("job {0:?} already exists")]
    Exists(String),
    #[error("job {0:?} is unknown")]
    UnknownJob(String),
    #[error("world_size {world} does not match rank_vms ({ranks} entries)")]
    WorldSize { world: u32, ranks: usize },
    #[error("rank_vms[{rank}]: unknown VM {vm:?}")]
    UnknownVm { rank: usize, vm: String },
    #[error("rank_vms[{rank}]: VM {vm:?} already runs job {other:?}")]
    VmTaken { rank: usize, vm: String, other: String },
    #[error("scenario: {0}")]
    Scenario(String),
    #[error("no topology loaded: start the controller with --topology FILE")]
    NoTopology,
    #[error("{0}")]
    Store(String),
}

impl From<PlaneError> for tonic::Status {
    fn from(e: PlaneError) -> tonic::Status {
        match &e {
            PlaneError::Exists(_) => tonic::Status::already_exists(e.to_string()),
            PlaneError::UnknownJob(_) => tonic::Status::not_found(e.to_string()),
            PlaneError::NoTopology => tonic::Status::failed_precondition(e.to_string()),
            PlaneError::Store(_) => tonic::Status::unavailable(e.to_string()),
            _ => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobEntry {
    pub rank_vm: Vec<VmId>,
    pub cluster: String,
}

pub struct PlaneState {
    pub vm_host: Vec<HostId>,
    pub jobs: BTreeMap<String, JobEntry>,
    pub pinned: HashSet<VmId>,
    pub drained: HashSet<SiteId>,
}

pub struct ControlPlane {
    pub topo: Topology,
    pub registry: Arc<Registry>,
    pub state: Mutex<PlaneState>,
    /// Where acknowledged changes are kept (none: in memory only).
    pub store: Option<Arc<Store>>,
}

impl ControlPlane {
    pub fn new(topo: Topology, registry: Arc<Registry>) -> ControlPlane {
        Self::with_store(topo, registry, None)
    }

    pub fn with_store(topo: Topology, registry: Arc<Registry>, store: Option<Arc<Store>>) -> ControlPlane {
        let vm_host = topo.vms.iter().map(|v| v.host).collect();
        ControlPlane {
            topo,
            registry,
            state: Mutex::new(PlaneState { vm_host, jobs: BTreeMap::new(), pinned: HashSet::new(), drained: HashSet::new() }),
            store,
        }
    }

    /// Brings back what the store kept: placements, jobs, their maps at their epochs,
    /// pins and drains. Entries naming VMs, hosts or sites the topology no longer has are
    /// skipped with a warning.
    pub fn restore(&self, snap: &Snapshot) {
        let mut st = self.lock();
        for (vm, host) in &snap.placements {
            match (self.topo.vm(vm), self.topo.host(host)) {
                (Some(v), Some(h)) => st.vm_host[v] = h,
                _ => tracing::warn!(%vm, %host, "stored placement names an unknown VM or host; ignored"),
            }
        }
        for spec in &snap.jobs {
            let vms: Option<Vec<VmId>> = spec.rank_vms.iter().map(|n| self.topo.vm(n)).collect();
            match vms {
                Some(rank_vm) => {
                    let _ = self.registry.ensure_job(&spec.job, spec.world_size);
                    st.jobs.insert(spec.job.clone(), JobEntry { rank_vm, cluster: spec.cluster.clone() });
                }
                None => tracing::warn!(job = %spec.job, "stored job names unknown VMs; ignored"),
            }
        }
        for m in &snap.site_maps {
            if st.jobs.contains_key(&m.job) {
                self.registry.site_maps.restore(m.clone());
            }
        }
        let names = |key: &str| {
            snap.meta.get(key).map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>()).unwrap_or_default()
        };
        st.pinned = names("pinned").iter().filter_map(|n| self.topo.vm(n)).collect();
        st.drained = names("drained").iter().filter_map(|n| self.topo.site(n)).collect();
        tracing::info!(jobs = st.jobs.len(), moved_vms = snap.placements.len(), "state restored");
    }

    fn persist(&self, f: impl FnOnce(&Store) -> Result<(), crate::store::StoreError>) -> Result<(), PlaneError> {
        match &self.store {
            Some(s) => f(s).map_err(|e| PlaneError::Store(e.to_string())),
            None => Ok(()),
        }
    }

    /// Pins or unpins a VM (kept across restarts).
    pub fn set_pinned(&self, vm: VmId, pinned: bool) -> Result<(), PlaneError> {
        let mut st = self.lock();
        if pinned {
            st.pinned.insert(vm);
        } else {
            st.pinned.remove(&vm);
        }
        let list: Vec<&str> = st.pinned.iter().map(|&v| self.topo.vms[v].name.as_str()).collect();
        self.persist(|s| s.put_meta("pinned", &list.join(",")))
    }

    /// Drains or reopens a site (kept across restarts).
    pub fn set_drained(&self, site: SiteId, drained: bool) -> Result<(), PlaneError> {
        let mut st = self.lock();
        if drained {
            st.drained.insert(site);
        } else {
            st.drained.remove(&site);
        }
        let list: Vec<&str> = st.drained.iter().map(|&s| self.topo.sites[s].name.as_str()).collect();
        self.persist(|s| s.put_meta("drained", &list.join(",")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates a job completely, then admits it and publishes its first site map.
    pub fn submit(&self, spec: &JobSpec) -> Result<u64, PlaneError> {
        if spec.job.trim().is_empty() {
            return Err(PlaneError::EmptyJob);
        }
        if spec.world_size as usize != spec.rank_vms.len() || spec.world_size == 0 {
            return Err(PlaneError::WorldSize { world: spec.world_size, ranks: spec.rank_vms.len() });
        }
        let mut st = self.lock();
        if st.jobs.contains_key(&spec.job) {
            return Err(PlaneError::Exists(spec.job.clone()));
        }
        let mut rank_vm = Vec::with_capacity(spec.rank_vms.len());
        for (rank, name) in spec.rank_vms.iter().enumerate() {
            let vm = self.topo.vm(name).ok_or_else(|| PlaneError::UnknownVm { rank, vm: name.clone() })?;
            if let Some((other, _)) = st.jobs.iter().find(|(_, j)| j.rank_vm.contains(&vm)) {
                return Err(PlaneError::VmTaken { rank, vm: name.clone(), other: other.clone() });
            }
            rank_vm.push(vm);
        }
        self.registry.ensure_job(&spec.job, spec.world_size).map_err(|e| match e {
            RegistryError::Traffic(t) => PlaneError::Scenario(t.to_string()),
            other => PlaneError::Scenario(other.to_string()),
        })?;
        st.jobs.insert(spec.job.clone(), JobEntry { rank_vm, cluster: spec.cluster.clone() });
        let epoch = self.publish_locked(&st, &spec.job);
        // Acknowledged only once it is durable.
        let map = self.registry.site_maps.current(&spec.job);
        if let Err(e) = self.persist(|s| s.put_job(spec, map.as_ref())) {
            st.jobs.remove(&spec.job);
            return Err(e);
        }
        tracing::info!(job = %spec.job, ranks = spec.world_size, epoch, "job submitted");
        Ok(epoch)
    }

    pub fn cancel(&self, job: &str) -> Result<(), PlaneError> {
        let mut st = self.lock();
        st.jobs.remove(job).ok_or_else(|| PlaneError::UnknownJob(job.to_string()))?;
        self.persist(|s| s.remove_job(job))
    }

    /// Publishes `job`'s current rank → site map; returns its epoch.
    fn publish_locked(&self, st: &PlaneState, job: &str) -> u64 {
        let entry = &st.jobs[job];
        let sites: Vec<String> = self.topo.sites.iter().map(|s| s.name.clone()).collect();
        let rank_site: Vec<u32> = entry.rank_vm.iter().map(|&v| self.topo.site_of_host(st.vm_host[v]) as u32).collect();
        self.registry.site_maps.publish(job, sites, rank_site)
    }

    /// Records that `vm` now runs on `host` and publishes new maps for the jobs it serves;
    /// the placement and the maps are kept together.
    pub fn moved(&self, vm: VmId, host: HostId) -> Vec<(String, u64)> {
        let mut st = self.lock();
        st.vm_host[vm] = host;
        let jobs: Vec<String> = st.jobs.iter().filter(|(_, j)| j.rank_vm.contains(&vm)).map(|(n, _)| n.clone()).collect();
        let out: Vec<(String, u64)> = jobs.into_iter().map(|j| (j.clone(), self.publish_locked(&st, &j))).collect();
        let maps: Vec<_> = out.iter().filter_map(|(j, _)| self.registry.site_maps.current(j)).collect();
        if let Err(e) = self.persist(|s| s.put_move(&self.topo.vms[vm].name, &self.topo.hosts[host].name, &maps)) {
            tracing::error!("could not keep the move of {}: {e}", self.topo.vms[vm].name);
        }
        out
    }
}

/// A scheduler's scenario: jobs arriving over time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub jobs: Vec<ScenarioJob>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioJob {
    pub job: String,
    /// Seconds after the scenario is submitted.
    #[serde(default)]
    pub arrival_s: f64,
    pub rank_vms: Vec<String>,
    #[serde(default)]
    pub cluster: String,
    /// What the job does (for the simulator); kept as given.
    #[serde(default)]
    pub workload: Option<serde_norway::Value>,
}

impl Scenario {
    /// Parses and checks a scenario against the topology; nothing is submitted if any part
    /// is wrong.
    pub fn parse(yaml: &str, topo: &Topology) -> Result<Scenario, PlaneError> {
        let s: Scenario = serde_norway::from_str(yaml).map_err(|e| PlaneError::Scenario(e.to_string()))?;
        let mut names = HashSet::new();
        let mut vms = HashSet::new();
        for (i, j) in s.jobs.iter().enumerate() {
            if j.job.trim().is_empty() {
                return Err(PlaneError::Scenario(format!("jobs[{i}].job: must not be empty")));
            }
            if !names.insert(j.job.clone()) {
                return Err(PlaneError::Scenario(format!("jobs[{i}].job: {:?} appears twice", j.job)));
            }
            if !(j.arrival_s >= 0.0) {
                return Err(PlaneError::Scenario(format!("jobs[{i}].arrival_s: {} is not a time from now", j.arrival_s)));
            }
            if j.rank_vms.is_empty() {
                return Err(PlaneError::Scenario(format!("jobs[{i}].rank_vms: a job needs at least one rank")));
            }
            for (r, v) in j.rank_vms.iter().enumerate() {
                if topo.vm(v).is_none() {
                    return Err(PlaneError::Scenario(format!("jobs[{i}].rank_vms[{r}]: unknown VM {v:?}")));
                }
                // Jobs that overlap in time may not share VMs; a scenario runs them in
                // sequence only if they say so by arrival, which we cannot know: refuse.
                if !vms.insert((v.clone(), j.job.clone())) {
                    return Err(PlaneError::Scenario(format!("jobs[{i}].rank_vms[{r}]: VM {v:?} listed twice")));
                }
            }
        }
        Ok(s)
    }
}

impl ScenarioJob {
    pub fn spec(&self) -> JobSpec {
        JobSpec {
            job: self.job.clone(),
            world_size: self.rank_vms.len() as u32,
            cluster: self.cluster.clone(),
            rank_vms: self.rank_vms.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane() -> ControlPlane {
        let t = Topology::from_yaml(
            "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 4}]}\n  - {name: B, hosts: [{name: b1, vm_capacity: 4}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 1000, latency_ms: 5}\n\
             vms:\n  - {name: v0, host: a1, memory_mib: 512}\n  - {name: v1, host: b1, memory_mib: 512}\n  - {name: v2, host: b1, memory_mib: 512}\n",
        )
        .unwrap();
        ControlPlane::new(t, Arc::new(Registry::default()))
    }

    fn spec(job: &str, vms: &[&str]) -> JobSpec {
        JobSpec {
            job: job.into(),
            world_size: vms.len() as u32,
            cluster: String::new(),
            rank_vms: vms.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn submit_publishes_epoch_one_and_moves_bump_it() {
        let p = plane();
        assert_eq!(p.submit(&spec("cg", &["v0", "v1"])).unwrap(), 1);
        let m = p.registry.site_maps.current("cg").unwrap();
        assert_eq!((m.epoch, m.rank_site.clone(), m.sites.clone()), (1, vec![0, 1], vec!["A".to_string(), "B".to_string()]));
        assert_eq!(p.moved(1, 0), vec![("cg".to_string(), 2)]);
        assert_eq!(p.registry.site_maps.current("cg").unwrap().rank_site, vec![0, 0]);
        assert!(p.moved(2, 0).is_empty(), "v2 serves no job");
    }

    #[test]
    fn bad_jobs_are_refused_whole() {
        let p = plane();
        assert_eq!(p.submit(&spec("x", &["v0", "nope"])), Err(PlaneError::UnknownVm { rank: 1, vm: "nope".into() }));
        assert!(p.registry.get("x").is_err(), "nothing half-applied");
        p.submit(&spec("a", &["v0"])).unwrap();
        assert_eq!(p.submit(&spec("a", &["v1"])), Err(PlaneError::Exists("a".into())));
        assert!(matches!(p.submit(&spec("b", &["v1", "v0"])), Err(PlaneError::VmTaken { rank: 1, .. })));
        let mut s = spec("c", &["v1"]);
        s.world_size = 3;
        assert_eq!(p.submit(&s), Err(PlaneError::WorldSize { world: 3, ranks: 1 }));
        assert_eq!(p.cancel("zz"), Err(PlaneError::UnknownJob("zz".into())));
    }

    #[test]
    fn scenarios_are_checked_before_anything_is_submitted() {
        let p = plane();
        let ok = "name: s\njobs:\n  - {job: ep, arrival_s: 0, rank_vms: [v0], workload: {kind: ep, duration_s: 100}}\n  - {job: lu, arrival_s: 30, rank_vms: [v1, v2]}\n";
        let s = Scenario::parse(ok, &p.topo).unwrap();
        assert_eq!(s.jobs.len(), 2);
        let e = Scenario::parse(&ok.replace("[v1, v2]", "[v1, v9]"), &p.topo).unwrap_err();
        assert_eq!(e.to_string(), "scenario: jobs[1].rank_vms[1]: unknown VM \"v9\"");
        let e = Scenario::parse(&ok.replace("arrival_s: 30", "arrival_s: -1"), &p.topo).unwrap_err();
        assert!(e.to_string().contains("jobs[1].arrival_s"), "{e}");
        let e = Scenario::parse("name: s\njobs: 5\n", &p.topo).unwrap_err();
        assert!(e.to_string().starts_with("scenario: jobs"), "{e}");
    }
}
