//! A scheduler's scenario: jobs arriving over time, parsed and checked against the
//! topology whole (the control plane then checks it against what runs and keeps every
//! arrival before it answers).

use std::collections::HashSet;

use serde::Deserialize;
use straddle_model::topology::Topology;

use crate::records::JobSpec;

/// The latest arrival a scenario may ask for.
pub const MAX_ARRIVAL_S: f64 = 7.0 * 86_400.0;

/// Most jobs in one scenario.
pub const MAX_JOBS: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("scenario: {0}")]
pub struct ScenarioError(pub String);

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
    pub fn parse(yaml: &str, topo: &Topology) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_norway::from_str(yaml).map_err(|e| ScenarioError(e.to_string()))?;
        if s.jobs.len() > MAX_JOBS {
            return Err(ScenarioError(format!("jobs: {} jobs, more than {MAX_JOBS}", s.jobs.len())));
        }
        let mut names = HashSet::new();
        // VM → the job of this scenario that runs on it.
        let mut vms: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for (i, j) in s.jobs.iter().enumerate() {
            if j.job.trim().is_empty() {
                return Err(ScenarioError(format!("jobs[{i}].job: must not be empty")));
            }
            if !names.insert(j.job.clone()) {
                return Err(ScenarioError(format!("jobs[{i}].job: {:?} appears twice", j.job)));
            }
            if !(j.arrival_s.is_finite() && (0.0..=MAX_ARRIVAL_S).contains(&j.arrival_s)) {
                return Err(ScenarioError(format!("jobs[{i}].arrival_s: {} is not a time from now within 7 days", j.arrival_s)));
            }
            if j.job.len() > crate::plane::MAX_JOB_NAME {
                return Err(ScenarioError(format!(
                    "jobs[{i}].job: {}-byte name, longer than {} bytes",
                    j.job.len(),
                    crate::plane::MAX_JOB_NAME
                )));
            }
            if j.rank_vms.is_empty() {
                return Err(ScenarioError(format!("jobs[{i}].rank_vms: a job needs at least one rank")));
            }
            for (r, v) in j.rank_vms.iter().enumerate() {
                if topo.vm(v).is_none() {
                    return Err(ScenarioError(format!("jobs[{i}].rank_vms[{r}]: unknown VM {v:?}")));
                }
                // Several ranks of one job may share a VM (as on any node). Two jobs may not:
                // how long each runs is not known, so they may overlap.
                if let Some(other) = vms.insert(v.as_str(), j.job.as_str()).filter(|o| *o != j.job) {
                    return Err(ScenarioError(format!("jobs[{i}].rank_vms[{r}]: VM {v:?} is also in job {other:?} of this scenario")));
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
            world_size: u32::try_from(self.rank_vms.len()).unwrap_or(u32::MAX),
            cluster: self.cluster.clone(),
            rank_vms: self.rank_vms.clone(),
            credential: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        Topology::from_yaml(
            "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 4}]}\n  - {name: B, hosts: [{name: b1, vm_capacity: 4}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 1000, latency_ms: 5}\n\
             vms:\n  - {name: v0, host: a1, memory_mib: 512}\n  - {name: v1, host: b1, memory_mib: 512}\n  - {name: v2, host: b1, memory_mib: 512}\n",
        )
        .unwrap()
    }

    #[test]
    fn scenarios_are_checked_whole() {
        let t = topo();
        let ok = "name: s\njobs:\n  - {job: ep, arrival_s: 0, rank_vms: [v0], workload: {kind: ep, duration_s: 100}}\n  - {job: lu, arrival_s: 30, rank_vms: [v1, v2]}\n";
        let s = Scenario::parse(ok, &t).unwrap();
        assert_eq!(s.jobs.len(), 2);
        let e = Scenario::parse(&ok.replace("[v1, v2]", "[v1, v9]"), &t).unwrap_err();
        assert_eq!(e.to_string(), "scenario: jobs[1].rank_vms[1]: unknown VM \"v9\"");
        for bad in ["-1", ".inf", ".nan", "1e20"] {
            let e = Scenario::parse(&ok.replace("arrival_s: 30", &format!("arrival_s: {bad}")), &t).unwrap_err();
            assert!(e.to_string().contains("jobs[1].arrival_s"), "{bad}: {e}");
        }
        let e = Scenario::parse("name: s\njobs: 5\n", &t).unwrap_err();
        assert!(e.to_string().starts_with("scenario: jobs"), "{e}");
        // Two jobs of one scenario may not share a VM; ranks of one job may.
        let e = Scenario::parse(&ok.replace("[v1, v2]", "[v1, v0]"), &t).unwrap_err();
        assert!(e.to_string().contains("VM \"v0\" is also in job \"ep\""), "{e}");
        assert!(Scenario::parse(&ok.replace("[v1, v2]", "[v1, v1]"), &t).is_ok());
    }
}
