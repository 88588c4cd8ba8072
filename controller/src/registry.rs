//! All jobs the controller knows, shared by the gRPC services.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use straddle_proto::{Hello, Report};

use crate::traffic::{JobTraffic, TrafficError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown job {0:?}")]
    UnknownJob(String),
    #[error(transparent)]
    Traffic(#[from] TrafficError),
}

impl From<RegistryError> for tonic::Status {
    fn from(e: RegistryError) -> tonic::Status {
        match &e {
            RegistryError::UnknownJob(_) => tonic::Status::not_found(e.to_string()),
            RegistryError::Traffic(TrafficError::WorldSizeMismatch { .. }) => tonic::Status::failed_precondition(e.to_string()),
            RegistryError::Traffic(TrafficError::RankOutsideJob { .. }) => tonic::Status::out_of_range(e.to_string()),
            RegistryError::Traffic(_) => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

pub type SharedJob = Arc<Mutex<JobTraffic>>;

pub struct Registry {
    jobs: RwLock<BTreeMap<String, SharedJob>>,
    /// Only ranks of jobs a scheduler submitted may attach (otherwise any job is observed).
    pub submitted_only: std::sync::atomic::AtomicBool,
    start: Instant,
    /// Where each job's ranks run, pushed to them.
    pub site_maps: crate::epoch::SiteMaps,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            jobs: RwLock::new(BTreeMap::new()),
            submitted_only: Default::default(),
            start: Instant::now(),
            site_maps: Default::default(),
        }
    }
}

fn lock(j: &SharedJob) -> std::sync::MutexGuard<'_, JobTraffic> {
    j.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Registry {
    /// Seconds since the controller started: the clock of rate windows.
    pub fn now_secs(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// A rank attaches: its job is created by the first rank that names it.
    pub fn attach(&self, h: &Hello) -> Result<SharedJob, RegistryError> {
        if h.job.trim().is_empty() {
            return Err(TrafficError::EmptyJob.into());
        }
        if h.world_size == 0 {
            return Err(TrafficError::EmptyWorld.into());
        }
        if self.submitted_only.load(std::sync::atomic::Ordering::Relaxed) && self.get(&h.job).is_err() {
            return Err(RegistryError::UnknownJob(h.job.clone()));
        }
        let job = {
            let mut jobs = self.jobs.write().unwrap_or_else(|p| p.into_inner());
            jobs.entry(h.job.clone()).or_insert_with(|| Arc::new(Mutex::new(JobTraffic::new(&h.job, h.world_size)))).clone()
        };
        lock(&job).attach(h)?;
        Ok(job)
    }

    /// The job `job` of `world` ranks, created if new (a scheduler submitted it).
    pub fn ensure_job(&self, job: &str, world: u32) -> Result<SharedJob, RegistryError> {
        if world == 0 {
            return Err(TrafficError::EmptyWorld.into());
        }
        let mut jobs = self.jobs.write().unwrap_or_else(|p| p.into_inner());
        let j = jobs.entry(job.to_string()).or_insert_with(|| Arc::new(Mutex::new(JobTraffic::new(job, world)))).clone();
        let have = lock(&j).world_size;
        if have != world {
            return Err(TrafficError::WorldSizeMismatch { job: job.to_string(), expected: have, got: world }.into());
        }
        Ok(j)
    }

    pub fn apply(&self, job: &SharedJob, rank: u32, r: &Report) -> Result<(), RegistryError> {
        let now = self.now_secs();
        lock(job).apply(rank, r, now, unix_ms())?;
        Ok(())
    }

    pub fn detach(&self, job: &SharedJob, rank: u32) {
        lock(job).detach(rank);
    }

    pub fn get(&self, job: &str) -> Result<SharedJob, RegistryError> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).get(job).cloned().ok_or_else(|| RegistryError::UnknownJob(job.to_string()))
    }

    /// Runs `f` on a consistent view of one job.
    pub fn with_job<T>(&self, job: &str, f: impl FnOnce(&JobTraffic) -> T) -> Result<T, RegistryError> {
        let j = self.get(job)?;
        let g = lock(&j);
        Ok(f(&g))
    }

    pub fn jobs(&self) -> Vec<SharedJob> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}
