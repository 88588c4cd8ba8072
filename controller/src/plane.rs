//! The control plane's state: the topology, where every VM runs, the jobs schedulers
//! submitted (rank → VM), and what operators set (pins, drains). Submitting a job publishes
//! its first site map (epoch 1); every applied placement change publishes the next.
//!
//! Every change is validated whole, made durable, and only then applied in memory and
//! published: a change the store refuses leaves nothing behind. Changes queue on one async
//! lock (so two cannot interleave between check and apply) while readers take a short
//! snapshot and never wait on the disk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use straddle_model::migration_learnt::Learnt;
use straddle_model::topology::{HostId, SiteId, Topology, VmId};

use crate::clock::{Clock, Time};
use crate::observe::{Registry, RegistryError};
use crate::records::{JobSpec, SiteMap};
use crate::scenario::Scenario;
use crate::state::{Arrival, Snapshot, Store, StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error("job: must not be empty")]
    EmptyJob,
    #[error("job: {len}-byte name, longer than {max} bytes")]
    JobNameTooLong { len: usize, max: usize },
    #[error("job {0:?} already exists")]
    Exists(String),
    #[error("job {0:?} is unknown")]
    UnknownJob(String),
    #[error("world_size {world} does not match rank_vms ({ranks} entries)")]
    WorldSize { world: u32, ranks: usize },
    #[error("world_size {world} exceeds the largest job this controller accepts ({max} ranks)")]
    WorldTooLarge { world: u32, max: u32 },
    #[error("rank_vms[{rank}]: unknown VM {vm:?}")]
    UnknownVm { rank: usize, vm: String },
    #[error("rank_vms[{rank}]: VM {vm:?} already runs job {other:?}")]
    VmTaken { rank: usize, vm: String, other: String },
    #[error("job {0:?} is waiting for its arrival in a scenario")]
    Arriving(String),
    #[error("rank_vms[{rank}]: VM {vm:?} is kept for job {other:?}, which arrives later in a scenario")]
    VmReserved { rank: usize, vm: String, other: String },
    #[error("vm: unknown VM {0:?}")]
    UnknownVmName(String),
    #[error("site: unknown site {0:?}")]
    UnknownSite(String),
    #[error("scenario: {0}")]
    Scenario(String),
    #[error("no topology loaded: start the controller with --topology FILE")]
    NoTopology,
    #[error("the change was not made: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Registry(#[from] RegistryError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobEntry {
    pub spec: JobSpec,
    pub rank_vm: Vec<VmId>,
}

impl JobEntry {
    /// Its distinct VMs, in first-rank order.
    pub fn vms(&self) -> Vec<VmId> {
        let mut seen = HashSet::new();
        self.rank_vm.iter().copied().filter(|v| seen.insert(*v)).collect()
    }
}

/// What the plane holds, as a reader sees it.
#[derive(Debug, Clone)]
pub struct PlaneState {
    pub vm_host: Vec<HostId>,
    pub jobs: BTreeMap<String, JobEntry>,
    pub pinned: HashSet<VmId>,
    pub drained: HashSet<SiteId>,
    /// The placement epoch: one more with every applied change of a VM's host.
    pub epoch: u64,
    /// Per VM: the placement epoch of its last move, and the decision that moved it.
    pub vm_changed: HashMap<VmId, (u64, Option<u64>)>,
    /// Jobs cancelled since the start, and when (for listings).
    pub cancelled: HashMap<String, Time>,
    /// Scenario jobs waiting for their arrival (their names and VMs are kept for them).
    pub arrivals: BTreeMap<String, Arrival>,
}

impl PlaneState {
    /// The job a VM serves.
    pub fn job_of(&self, vm: VmId) -> Option<&str> {
        self.jobs.iter().find(|(_, j)| j.rank_vm.contains(&vm)).map(|(n, _)| n.as_str())
    }
}

pub struct ControlPlane {
    pub topo: Arc<Topology>,
    pub registry: Arc<Registry>,
    pub store: Store,
    pub clock: Clock,
    state: RwLock<PlaneState>,
    writer: tokio::sync::Mutex<()>,
    /// Wakes the arrivals task when the set of arrivals changes.
    arrived: tokio::sync::Notify,
    /// What finished migrations and measured dirty rates taught the estimate (relearnt
    /// after a restart).
    pub learnt: std::sync::Mutex<Learnt>,
    /// VMs of the topology that no answering host runs (destroyed or stopped outside the
    /// controller): the planner leaves them where they were placed.
    pub absent: std::sync::Mutex<HashSet<VmId>>,
    /// Each host's CPU utilisation as its agent last reported it, and when.
    host_usage: std::sync::Mutex<HashMap<HostId, (f64, Time)>>,
}

/// A host's reported usage older than this is not known any more.
pub const USAGE_FRESH: Duration = Duration::from_secs(30);

/// Longest job name.
pub const MAX_JOB_NAME: usize = crate::observe::registry::MAX_JOB_NAME;

impl ControlPlane {
    pub fn new(topo: Arc<Topology>, registry: Arc<Registry>, store: Store) -> ControlPlane {
        let vm_host = topo.vms.iter().map(|v| v.host).collect();
        ControlPlane {
            clock: registry.clock.clone(),
            topo,
            registry,
            store,
            state: RwLock::new(PlaneState {
                vm_host,
                jobs: BTreeMap::new(),
                pinned: HashSet::new(),
                drained: HashSet::new(),
                epoch: 1,
                vm_changed: HashMap::new(),
                cancelled: HashMap::new(),
                arrivals: BTreeMap::new(),
            }),
            writer: tokio::sync::Mutex::new(()),
            arrived: tokio::sync::Notify::new(),
            learnt: std::sync::Mutex::new(Learnt::default()),
            absent: std::sync::Mutex::new(HashSet::new()),
            host_usage: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Keeps host `host`'s reported CPU utilisation.
    pub fn host_reported(&self, host: HostId, cpu: f64, now: Time) {
        self.host_usage.lock().unwrap_or_else(|p| p.into_inner()).insert(host, (cpu, now));
    }

    /// Every host's CPU utilisation reported within `USAGE_FRESH` (`NaN`: not known).
    pub fn host_cpu(&self, now: Time) -> Vec<f64> {
        let g = self.host_usage.lock().unwrap_or_else(|p| p.into_inner());
        (0..self.topo.hosts.len()).map(|h| g.get(&h).filter(|(_, at)| now.since(*at) < USAGE_FRESH).map_or(f64::NAN, |(c, _)| *c)).collect()
    }

    /// A snapshot of the state.
    pub fn view(&self) -> PlaneState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `f` on the state without copying it.
    pub fn read<T>(&self, f: impl FnOnce(&PlaneState) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write_state<T>(&self, f: impl FnOnce(&mut PlaneState) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(|p| p.into_inner()))
    }

    /// Brings back what the store kept: placements, jobs, their maps at their epochs, pins
    /// and drains. Anything that names what the topology lacks, or disagrees with the rest,
    /// refuses the start with the table and key: the state is damaged or belongs to another
    /// topology.
    pub fn restore(&self, snap: &Snapshot) -> Result<(), StoreError> {
        let damaged = |table: &'static str, key: &str, why: String| StoreError::Damaged { table, key: key.to_string(), why };
        let mut st = self.view();
        for (vm, host) in &snap.placements {
            let v = self.topo.vm(vm).ok_or_else(|| damaged("placements", vm, "the topology has no such VM".into()))?;
            let h = self.topo.host(host).ok_or_else(|| damaged("placements", vm, format!("the topology has no host {host:?}")))?;
            st.vm_host[v] = h;
        }
        let mut load = vec![0u32; self.topo.hosts.len()];
        for &h in &st.vm_host {
            load[h] += 1;
        }
        if let Some(h) = (0..load.len()).find(|&h| load[h] > self.topo.hosts[h].vm_capacity) {
            let host = &self.topo.hosts[h];
            return Err(damaged("placements", &host.name, format!("{} VMs on a host of capacity {}", load[h], host.vm_capacity)));
        }
        let sites: Vec<String> = self.topo.sites.iter().map(|s| s.name.clone()).collect();
        let mut maps = Vec::new();
        for (name, spec) in &snap.jobs {
            let entry = self.check(spec, &st).map_err(|e| damaged("jobs", name, e.to_string()))?;
            let rank_site = self.rank_sites(&st, &entry.rank_vm);
            let map = match snap.site_maps.get(name) {
                Some(m) if m.sites == sites && m.rank_site != rank_site => {
                    return Err(damaged("site_maps", name, format!("epoch {} disagrees with the kept placements", m.epoch)))
                }
                Some(m) if m.sites == sites => m.clone(),
                // The topology's sites changed: the next epoch says where ranks are now.
                Some(m) => SiteMap { job: name.clone(), epoch: m.epoch + 1, rank_site, sites: sites.clone() },
                None => return Err(damaged("site_maps", name, "a kept job has no site map".into())),
            };
            st.jobs.insert(name.clone(), entry);
            maps.push((spec.world_size, map));
        }
        if let Some(j) = snap.site_maps.keys().find(|j| !snap.jobs.contains_key(*j)) {
            return Err(damaged("site_maps", j, "a site map of a job that is not kept".into()));
        }
        for (name, a) in &snap.arrivals {
            if a.spec.job != *name {
                return Err(damaged("arrivals", name, format!("the record names job {:?}", a.spec.job)));
            }
            for (rank, vm) in a.spec.rank_vms.iter().enumerate() {
                if self.topo.vm(vm).is_none() {
                    return Err(damaged("arrivals", name, format!("rank_vms[{rank}]: the topology has no VM {vm:?}")));
                }
            }
            st.arrivals.insert(name.clone(), a.clone());
        }
        st.pinned = snap
            .pinned
            .iter()
            .map(|n| self.topo.vm(n).ok_or_else(|| damaged("pins", n, "the topology has no such VM".into())))
            .collect::<Result<_, _>>()?;
        st.drained = snap
            .drained
            .iter()
            .map(|n| self.topo.site(n).ok_or_else(|| damaged("drains", n, "the topology has no such site".into())))
            .collect::<Result<_, _>>()?;
        for (world, map) in maps {
            self.registry.restore(&map.job, world);
            self.registry.site_maps.publish(map);
        }
        tracing::info!(jobs = st.jobs.len(), moved_vms = snap.placements.len(), "state restored");
        self.write_state(|s| *s = st);
        Ok(())
    }

    fn rank_sites(&self, st: &PlaneState, rank_vm: &[VmId]) -> Vec<u32> {
        rank_vm.iter().map(|&v| u32::try_from(self.topo.site_of_host(st.vm_host[v])).unwrap_or(u32::MAX)).collect()
    }

    fn site_names(&self) -> Vec<String> {
        self.topo.sites.iter().map(|s| s.name.clone()).collect()
    }

    /// Checks a job against the topology and the jobs already admitted.
    fn check(&self, spec: &JobSpec, st: &PlaneState) -> Result<JobEntry, PlaneError> {
        self.check_as(spec, st, None)
    }

    /// `check`, for the arrival of scenario job `arriving` (its own reservation aside).
    fn check_as(&self, spec: &JobSpec, st: &PlaneState, arriving: Option<&str>) -> Result<JobEntry, PlaneError> {
        if spec.job.trim().is_empty() {
            return Err(PlaneError::EmptyJob);
        }
        if spec.job.len() > MAX_JOB_NAME {
            return Err(PlaneError::JobNameTooLong { len: spec.job.len(), max: MAX_JOB_NAME });
        }
        if spec.world_size as usize != spec.rank_vms.len() || spec.world_size == 0 {
            return Err(PlaneError::WorldSize { world: spec.world_size, ranks: spec.rank_vms.len() });
        }
        let max = self.registry.limits.max_world_size;
        if spec.world_size > max {
            return Err(PlaneError::WorldTooLarge { world: spec.world_size, max });
        }
        if st.jobs.contains_key(&spec.job) {
            return Err(PlaneError::Exists(spec.job.clone()));
        }
        if st.arrivals.contains_key(&spec.job) && arriving != Some(spec.job.as_str()) {
            return Err(PlaneError::Arriving(spec.job.clone()));
        }
        let mut rank_vm = Vec::with_capacity(spec.rank_vms.len());
        for (rank, name) in spec.rank_vms.iter().enumerate() {
            let vm = self.topo.vm(name).ok_or_else(|| PlaneError::UnknownVm { rank, vm: name.clone() })?;
            if let Some(other) = st.job_of(vm) {
                return Err(PlaneError::VmTaken { rank, vm: name.clone(), other: other.to_string() });
            }
            if let Some(other) = st.arrivals.values().find(|a| a.spec.job != spec.job && a.spec.rank_vms.contains(name)) {
                return Err(PlaneError::VmReserved { rank, vm: name.clone(), other: other.spec.job.clone() });
            }
            rank_vm.push(vm);
        }
        Ok(JobEntry { spec: spec.clone(), rank_vm })
    }

    /// Validates a job whole against the state as it is, without admitting it.
    pub fn validate(&self, spec: &JobSpec) -> Result<(), PlaneError> {
        self.read(|st| self.check(spec, st)).map(|_| ())
    }

    /// Validates a job completely, keeps it, then admits it and publishes its first site
    /// map (the ranks' counts start afresh). Returns that map and the credential its ranks
    /// present (kept only as a digest).
    pub async fn submit(&self, spec: &JobSpec) -> Result<(SiteMap, String), PlaneError> {
        let (token, kept) = crate::credential::issue().map_err(|e| PlaneError::Store(StoreError::Io(Box::new(e))))?;
        let spec = JobSpec { credential: kept, ..spec.clone() };
        Ok((self.admit(&spec, vec![], None).await?, token))
    }

    /// The digest of the credential `job`'s ranks present (admitted or arriving jobs).
    pub fn credential(&self, job: &str) -> Option<[u8; 32]> {
        self.read(|st| {
            let spec = st.jobs.get(job).map(|j| &j.spec).or_else(|| st.arrivals.get(job).map(|a| &a.spec))?;
            crate::credential::unhex(&spec.credential)
        })
    }

    async fn admit(&self, spec: &JobSpec, extra: Vec<Write>, arriving: Option<&str>) -> Result<SiteMap, PlaneError> {
        let _w = self.writer.lock().await;
        let (entry, map) = self.read(|st| -> Result<_, PlaneError> {
            let entry = self.check_as(spec, st, arriving)?;
            let map = self.registry.site_maps.next(&spec.job, self.site_names(), self.rank_sites(st, &entry.rank_vm));
            Ok((entry, map))
        })?;
        let mut writes = vec![Write::Job(spec.clone()), Write::SiteMap(map.clone())];
        writes.extend(extra);
        self.store.commit(writes).await?;
        self.registry.submitted(&spec.job, spec.world_size)?;
        self.write_state(|st| {
            st.cancelled.remove(&spec.job);
            if arriving.is_some() {
                st.arrivals.remove(&spec.job);
            }
            st.jobs.insert(spec.job.clone(), entry);
        });
        self.registry.site_maps.publish(map.clone());
        tracing::info!(job = %spec.job, ranks = spec.world_size, epoch = map.epoch, "job submitted");
        Ok(map)
    }

    /// Cancels a job: it leaves the plan and its map is forgotten.
    pub async fn cancel(&self, job: &str) -> Result<(), PlaneError> {
        let _w = self.writer.lock().await;
        if !self.read(|st| st.jobs.contains_key(job)) {
            return Err(PlaneError::UnknownJob(job.to_string()));
        }
        self.store.commit(vec![Write::RemoveJob(job.to_string()), Write::RemoveSiteMap(job.to_string())]).await?;
        let now = self.clock.now();
        self.write_state(|st| {
            st.jobs.remove(job);
            st.cancelled.insert(job.to_string(), now);
        });
        tracing::info!(%job, "job cancelled");
        Ok(())
    }

    /// Pins or unpins a VM.
    pub async fn set_pinned(&self, vm: &str, pinned: bool) -> Result<(), PlaneError> {
        let v = self.topo.vm(vm).ok_or_else(|| PlaneError::UnknownVmName(vm.to_string()))?;
        let _w = self.writer.lock().await;
        self.store.commit(vec![Write::Pin { vm: vm.to_string(), pinned }]).await?;
        self.write_state(|st| if pinned { st.pinned.insert(v) } else { st.pinned.remove(&v) });
        Ok(())
    }

    /// Drains or reopens a site.
    pub async fn set_drained(&self, site: &str, drained: bool) -> Result<(), PlaneError> {
        let s = self.topo.site(site).ok_or_else(|| PlaneError::UnknownSite(site.to_string()))?;
        let _w = self.writer.lock().await;
        self.store.commit(vec![Write::Drain { site: site.to_string(), drained }]).await?;
        self.write_state(|st| if drained { st.drained.insert(s) } else { st.drained.remove(&s) });
        Ok(())
    }

    /// `vm` now runs on `host` (moved by `decision`, or observed): the placement, the new
    /// site maps of the jobs it serves and `extra` writes are kept together, then applied
    /// and the maps pushed. Returns (job, epoch) for every map that changed.
    pub async fn moved(&self, vm: VmId, host: HostId, decision: Option<u64>, extra: Vec<Write>) -> Result<Vec<(String, u64)>, PlaneError> {
        let _w = self.writer.lock().await;
        let maps: Vec<SiteMap> = self.read(|st| {
            let mut after = st.vm_host.clone();
            after[vm] = host;
            st.jobs
                .iter()
                .filter(|(_, j)| j.rank_vm.contains(&vm))
                .map(|(n, j)| self.registry.site_maps.next(n, self.site_names(), self.rank_sites_of(&after, &j.rank_vm)))
                .collect()
        });
        let mut writes = vec![Write::Placement { vm: self.topo.vms[vm].name.clone(), host: self.topo.hosts[host].name.clone() }];
        writes.extend(maps.iter().cloned().map(Write::SiteMap));
        writes.extend(extra);
        self.store.commit(writes).await?;
        self.write_state(|st| {
            st.vm_host[vm] = host;
            st.epoch += 1;
            st.vm_changed.insert(vm, (st.epoch, decision));
        });
        let out = maps.iter().map(|m| (m.job.clone(), m.epoch)).collect();
        for m in maps {
            self.registry.site_maps.publish(m);
        }
        Ok(out)
    }

    /// Accepts a scenario whole: every job is checked against what runs, what is kept for
    /// other arrivals and the rest of the scenario, then every arrival is kept before the
    /// answer. Returns the jobs' names and the credentials their ranks will present.
    pub async fn accept(&self, scenario: &Scenario) -> Result<Vec<(String, String)>, PlaneError> {
        let _w = self.writer.lock().await;
        let now_ms = self.clock.unix_ms();
        let arrivals = self.read(|st| -> Result<Vec<(Arrival, String)>, PlaneError> {
            let mut st = st.clone();
            let mut out = Vec::new();
            for (i, j) in scenario.jobs.iter().enumerate() {
                let (token, kept) = crate::credential::issue().map_err(|e| PlaneError::Store(StoreError::Io(Box::new(e))))?;
                let spec = JobSpec { credential: kept, ..j.spec() };
                self.check(&spec, &st).map_err(|e| PlaneError::Scenario(format!("jobs[{i}] ({}): {e}", j.job)))?;
                // Parsing checked the arrival is finite, from 0 to 7 days: the clamped
                // milliseconds fit a u64 exactly.
                #[allow(clippy::cast_possible_truncation)]
                let delay_ms = (j.arrival_s * 1e3).round().clamp(0.0, 1e12) as u64;
                let a = Arrival { spec, scenario: scenario.name.clone(), at_unix_ms: now_ms.saturating_add(delay_ms) };
                st.arrivals.insert(a.spec.job.clone(), a.clone());
                out.push((a, token));
            }
            Ok(out)
        })?;
        self.store.commit(arrivals.iter().map(|(a, _)| Write::Arrival(a.clone())).collect()).await?;
        let names = arrivals.iter().map(|(a, t)| (a.spec.job.clone(), t.clone())).collect();
        self.write_state(|st| {
            for (a, _) in arrivals {
                st.arrivals.insert(a.spec.job.clone(), a);
            }
        });
        self.arrived.notify_one();
        Ok(names)
    }

    /// Admits scenario jobs as they arrive, until the task is dropped. A job whose
    /// admission the store refuses is tried again.
    pub async fn run_arrivals(self: Arc<Self>) {
        loop {
            let next = self.read(|st| st.arrivals.values().map(|a| (a.at_unix_ms, a.spec.job.clone())).min());
            let Some((at, job)) = next else {
                self.arrived.notified().await;
                continue;
            };
            let wait = std::time::Duration::from_millis(at.saturating_sub(self.clock.unix_ms()));
            if !wait.is_zero() {
                tokio::select! {
                    _ = self.clock.sleep(wait) => {}
                    _ = self.arrived.notified() => continue,
                }
            }
            let Some(a) = self.read(|st| st.arrivals.get(&job).cloned()) else { continue };
            match self.admit(&a.spec, vec![Write::RemoveArrival(job.clone())], Some(&job)).await {
                Ok(map) => tracing::info!(scenario = %a.scenario, %job, epoch = map.epoch, "scenario job arrived"),
                Err(PlaneError::Store(e)) => {
                    tracing::error!(%job, "scenario job could not be admitted yet ({e}); trying again");
                    self.clock.sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => {
                    // Accepting the scenario kept its names and VMs: this cannot happen
                    // unless the state was changed behind the controller's back.
                    tracing::error!(%job, "scenario job refused at its arrival: {e}");
                    let _ = self.store.commit(vec![Write::RemoveArrival(job.clone())]).await;
                    self.write_state(|st| st.arrivals.remove(&job));
                }
            }
        }
    }

    fn rank_sites_of(&self, vm_host: &[HostId], rank_vm: &[VmId]) -> Vec<u32> {
        rank_vm.iter().map(|&v| u32::try_from(self.topo.site_of_host(vm_host[v])).unwrap_or(u32::MAX)).collect()
    }
}

#[cfg(test)]
mod tests;
