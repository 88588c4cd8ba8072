//! The jobs whose ranks report, shared by the services. A job is created by its scheduler's
//! submit, or (in open mode) by the first rank that names it. A job name used again after
//! every rank of the previous run has left starts a new run with new counts; jobs nobody
//! submitted are forgotten once idle for a while.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use straddle_model::traffic::{JobTraffic, Limits, RankHello, RankReport, TrafficError};

use crate::clock::Clock;
use crate::observe::SiteMaps;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("hello.job: unknown job {0:?} (this controller only accepts ranks of submitted jobs)")]
    UnknownJob(String),
    #[error("hello.job: {len}-byte job name, longer than {max} bytes")]
    JobNameTooLong { len: usize, max: usize },
    #[error("hello.job: the controller already tracks {max} jobs; try again when some have finished")]
    TooManyJobs { max: usize },
    #[error(transparent)]
    Traffic(#[from] TrafficError),
}

pub type SharedJob = Arc<Mutex<JobTraffic>>;

/// Longest job name.
pub const MAX_JOB_NAME: usize = 256;

pub struct Registry {
    jobs: RwLock<BTreeMap<String, SharedJob>>,
    /// Ranks of jobs no scheduler submitted may attach (and are observed).
    open: AtomicBool,
    pub limits: Limits,
    pub max_jobs: usize,
    pub clock: Clock,
    /// Where each job's ranks run, pushed to them.
    pub site_maps: SiteMaps,
}

pub(crate) fn lock(j: &SharedJob) -> std::sync::MutexGuard<'_, JobTraffic> {
    j.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(clock: Clock, limits: Limits, max_jobs: usize) -> Registry {
        Registry {
            jobs: RwLock::new(BTreeMap::new()),
            open: AtomicBool::new(true),
            limits,
            max_jobs,
            clock,
            site_maps: SiteMaps::default(),
        }
    }

    /// Whether ranks of jobs nobody submitted may attach.
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Relaxed);
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    fn check_name(job: &str) -> Result<(), RegistryError> {
        if job.trim().is_empty() {
            return Err(TrafficError::EmptyJob.into());
        }
        if job.len() > MAX_JOB_NAME {
            return Err(RegistryError::JobNameTooLong { len: job.len(), max: MAX_JOB_NAME });
        }
        Ok(())
    }

    /// A rank attaches. The job is created by the first rank that names it (open mode), and
    /// a rank of a new run of a finished job starts the new run's counts.
    pub fn attach(&self, h: &RankHello) -> Result<SharedJob, RegistryError> {
        Self::check_name(&h.job)?;
        JobTraffic::check_world(h.world_size, &self.limits)?;
        let now = self.clock.now();
        let existing = self.jobs.read().unwrap_or_else(|p| p.into_inner()).get(&h.job).cloned();
        let job = match existing {
            Some(j) => j,
            None => {
                if !self.is_open() {
                    return Err(RegistryError::UnknownJob(h.job.clone()));
                }
                let mut jobs = self.jobs.write().unwrap_or_else(|p| p.into_inner());
                if !jobs.contains_key(&h.job) && jobs.len() >= self.max_jobs {
                    return Err(RegistryError::TooManyJobs { max: self.max_jobs });
                }
                jobs.entry(h.job.clone())
                    .or_insert_with(|| Arc::new(Mutex::new(JobTraffic::new(&h.job, h.world_size, self.limits))))
                    .clone()
            }
        };
        {
            let mut g = lock(&job);
            let rank_known = (h.rank as usize) < g.ranks.len();
            let new_process = rank_known && g.ranks[h.rank as usize].incarnation != h.incarnation;
            if g.finished() && new_process {
                // Every rank of the last run has left and a new process says hello: a new
                // run of the job name, with its own counts.
                let run = g.run + 1;
                let world = if self.is_open() { h.world_size } else { g.world_size };
                *g = JobTraffic::new(&h.job, world, self.limits);
                g.run = run;
                tracing::info!(job = %h.job, run, "a new run of the job starts new counts");
            }
            g.attach(h)?;
            g.last_activity = now;
        }
        Ok(job)
    }

    /// A scheduler submitted `job` of `world` ranks: its counts start afresh (a new run when
    /// the name was seen before).
    pub fn submitted(&self, job: &str, world: u32) -> Result<SharedJob, RegistryError> {
        Self::check_name(job)?;
        JobTraffic::check_world(world, &self.limits)?;
        let mut jobs = self.jobs.write().unwrap_or_else(|p| p.into_inner());
        let run = jobs.get(job).map_or(1, |j| lock(j).run + 1);
        let mut t = JobTraffic::new(job, world, self.limits);
        t.run = run;
        t.last_activity = self.clock.now();
        let shared = Arc::new(Mutex::new(t));
        jobs.insert(job.to_string(), shared.clone());
        Ok(shared)
    }

    /// Brings back a submitted job after a restart (no counts were kept).
    pub fn restore(&self, job: &str, world: u32) {
        let mut jobs = self.jobs.write().unwrap_or_else(|p| p.into_inner());
        jobs.entry(job.to_string()).or_insert_with(|| Arc::new(Mutex::new(JobTraffic::new(job, world, self.limits))));
    }

    pub fn apply(&self, job: &SharedJob, rank: u32, r: &RankReport) -> Result<(), RegistryError> {
        let now = self.clock.now();
        let mut g = lock(job);
        g.apply(rank, r, now, self.clock.unix_ms())?;
        g.last_activity = now;
        Ok(())
    }

    pub fn detach(&self, job: &SharedJob, rank: u32) {
        let mut g = lock(job);
        g.detach(rank);
        g.last_activity = self.clock.now();
    }

    pub fn get(&self, job: &str) -> Option<SharedJob> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).get(job).cloned()
    }

    /// Runs `f` on a consistent view of one job.
    pub fn with_job<T>(&self, job: &str, f: impl FnOnce(&JobTraffic) -> T) -> Option<T> {
        let j = self.get(job)?;
        let g = lock(&j);
        Some(f(&g))
    }

    pub fn jobs(&self) -> Vec<SharedJob> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets a job and its site map.
    pub fn forget(&self, job: &str) {
        self.jobs.write().unwrap_or_else(|p| p.into_inner()).remove(job);
        self.site_maps.remove(job);
    }

    /// Forgets jobs with no rank attached and no activity for `idle`, except `keep`
    /// (submitted jobs the control plane still owns); returns their names.
    pub fn forget_idle(&self, idle: Duration, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
        let now = self.clock.now();
        let gone: Vec<String> = self
            .jobs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(name, j)| {
                let g = lock(j);
                !keep(name) && g.attached_ranks() == 0 && now.since(g.last_activity) >= idle
            })
            .map(|(n, _)| n.clone())
            .collect();
        for j in &gone {
            self.forget(j);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use straddle_model::traffic::peer;

    fn hello(job: &str, rank: u32, world: u32, inc: u64) -> RankHello {
        RankHello { job: job.into(), rank, world_size: world, node: "n".into(), incarnation: inc }
    }

    fn report(seq: u64, bytes: u64) -> RankReport {
        RankReport { seq, peers: vec![peer(1, bytes, 1)], ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_job_name_starts_a_new_run_with_new_counts() {
        let r = Registry::new(Clock::new(), Limits::default(), 100);
        let j = r.attach(&hello("cg", 0, 2, 11)).unwrap();
        let k = r.attach(&hello("cg", 1, 2, 12)).unwrap();
        r.apply(&j, 0, &report(1, 500)).unwrap();
        // A rank restarting while its job runs keeps the run (its old counts archived).
        r.detach(&j, 0);
        let j = r.attach(&hello("cg", 0, 2, 13)).unwrap();
        r.apply(&j, 0, &report(1, 100)).unwrap();
        assert_eq!(r.with_job("cg", |t| (t.run, t.cumulative().total_bytes())).unwrap(), (1, 600.0));
        r.detach(&j, 0);
        r.detach(&k, 1);
        // Everyone left; a new process under the same name is a new run.
        let j = r.attach(&hello("cg", 0, 2, 21)).unwrap();
        r.apply(&j, 0, &report(1, 7)).unwrap();
        assert_eq!(r.with_job("cg", |t| (t.run, t.cumulative().total_bytes())).unwrap(), (2, 7.0));
        // A reconnect of the same process (all streams dropped at once) is not a new run.
        r.detach(&j, 0);
        let j = r.attach(&hello("cg", 0, 2, 21)).unwrap();
        r.apply(&j, 0, &report(1, 9)).unwrap();
        assert_eq!(r.with_job("cg", |t| (t.run, t.cumulative().total_bytes())).unwrap(), (2, 9.0));
    }

    #[tokio::test(start_paused = true)]
    async fn limits_and_closed_mode_refuse_with_the_field() {
        let r = Registry::new(Clock::new(), Limits::default(), 1);
        assert_eq!(r.attach(&hello("", 0, 1, 1)).err(), Some(RegistryError::Traffic(TrafficError::EmptyJob)));
        let long = "x".repeat(MAX_JOB_NAME + 1);
        assert!(matches!(r.attach(&hello(&long, 0, 1, 1)), Err(RegistryError::JobNameTooLong { .. })));
        assert!(matches!(r.attach(&hello("big", 0, 1 << 20, 1)), Err(RegistryError::Traffic(TrafficError::WorldTooLarge { .. }))));
        assert!(matches!(r.attach(&hello("big", 0, u32::MAX, 1)), Err(RegistryError::Traffic(TrafficError::WorldTooLarge { .. }))));
        r.attach(&hello("a", 0, 1, 1)).unwrap();
        assert_eq!(r.attach(&hello("b", 0, 1, 1)).err(), Some(RegistryError::TooManyJobs { max: 1 }));
        r.set_open(false);
        r.forget("a");
        assert_eq!(r.attach(&hello("c", 0, 1, 1)).err(), Some(RegistryError::UnknownJob("c".into())));
        r.submitted("c", 1).unwrap();
        assert!(r.attach(&hello("c", 0, 1, 1)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_jobs_are_forgotten_unless_kept() {
        let r = Registry::new(Clock::new(), Limits::default(), 100);
        let j = r.attach(&hello("old", 0, 1, 1)).unwrap();
        r.detach(&j, 0);
        r.submitted("kept", 1).unwrap();
        tokio::time::advance(Duration::from_secs(600)).await;
        let live = r.attach(&hello("live", 0, 1, 1)).unwrap();
        let gone = r.forget_idle(Duration::from_secs(300), &|n| n == "kept");
        assert_eq!(gone, vec!["old".to_string()]);
        assert!(r.get("kept").is_some() && r.get("live").is_some());
        drop(live);
    }
}
