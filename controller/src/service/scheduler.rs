//! Schedulers submit jobs and scenarios, and cancel jobs.

use std::sync::Arc;
use std::time::Duration;

use straddle_proto::scheduler_server::Scheduler;
use straddle_proto::{CancelJobRequest, CancelJobResponse, JobSpec, ScenarioSpec, SubmitJobResponse, SubmitScenarioResponse};
use tonic::{Request, Response, Status};

use crate::control::{ControlPlane, PlaneError, Scenario};

pub struct SchedulerService {
    pub plane: Option<Arc<ControlPlane>>,
}

impl SchedulerService {
    fn plane(&self) -> Result<&Arc<ControlPlane>, Status> {
        self.plane.as_ref().ok_or_else(|| PlaneError::NoTopology.into())
    }
}

#[tonic::async_trait]
impl Scheduler for SchedulerService {
    async fn submit_job(&self, req: Request<JobSpec>) -> Result<Response<SubmitJobResponse>, Status> {
        let spec = req.into_inner();
        self.plane()?.submit(&spec).map_err(|e| {
            tracing::warn!(job = %spec.job, "refused job: {e}");
            Status::from(e)
        })?;
        Ok(Response::new(SubmitJobResponse { job: spec.job }))
    }

    async fn submit_scenario(&self, req: Request<ScenarioSpec>) -> Result<Response<SubmitScenarioResponse>, Status> {
        let spec = req.into_inner();
        let plane = self.plane()?.clone();
        let scenario = Scenario::parse(&spec.yaml, &plane.topo).map_err(|e| {
            tracing::warn!(scenario = %spec.name, "refused scenario: {e}");
            Status::from(e)
        })?;
        let jobs: Vec<String> = scenario.jobs.iter().map(|j| j.job.clone()).collect();
        for j in scenario.jobs {
            let plane = plane.clone();
            let name = scenario.name.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(j.arrival_s)).await;
                if let Err(e) = plane.submit(&j.spec()) {
                    tracing::warn!(scenario = %name, job = %j.job, "scenario job not admitted at its arrival: {e}");
                }
            });
        }
        tracing::info!(scenario = %spec.name, jobs = jobs.len(), "scenario accepted");
        Ok(Response::new(SubmitScenarioResponse { name: spec.name, jobs }))
    }

    async fn cancel_job(&self, req: Request<CancelJobRequest>) -> Result<Response<CancelJobResponse>, Status> {
        let job = req.into_inner().job;
        self.plane()?.cancel(&job)?;
        Ok(Response::new(CancelJobResponse { job }))
    }
}
