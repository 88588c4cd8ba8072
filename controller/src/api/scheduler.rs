//! Schedulers submit jobs and scenarios, and cancel jobs.

use std::sync::Arc;

use straddle_proto::scheduler_server::Scheduler;
use straddle_proto::{CancelJobRequest, CancelJobResponse, JobSpec, ScenarioSpec, SubmitJobResponse, SubmitScenarioResponse};
use tonic::{Request, Response, Status};

use super::convert;
use crate::plane::{ControlPlane, PlaneError};
use crate::scenario::Scenario;

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
        let spec = convert::job_spec(req.into_inner());
        let (_, token) = self.plane()?.submit(&spec).await.map_err(|e| {
            tracing::warn!(job = %spec.job.chars().take(64).collect::<String>(), "refused job: {e}");
            Status::from(e)
        })?;
        Ok(Response::new(SubmitJobResponse { job: spec.job, job_token: token }))
    }

    async fn submit_scenario(&self, req: Request<ScenarioSpec>) -> Result<Response<SubmitScenarioResponse>, Status> {
        let spec = req.into_inner();
        let plane = self.plane()?;
        let scenario = Scenario::parse(&spec.yaml, &plane.topo).map_err(|e| {
            tracing::warn!(scenario = %spec.name.chars().take(64).collect::<String>(), "refused scenario: {e}");
            Status::invalid_argument(e.to_string())
        })?;
        let jobs = plane.accept(&scenario).await.map_err(|e| {
            tracing::warn!(scenario = %spec.name.chars().take(64).collect::<String>(), "refused scenario: {e}");
            Status::from(e)
        })?;
        tracing::info!(scenario = %scenario.name, jobs = jobs.len(), "scenario accepted");
        let job_tokens = jobs.iter().cloned().collect();
        Ok(Response::new(SubmitScenarioResponse { name: spec.name, jobs: jobs.into_iter().map(|(j, _)| j).collect(), job_tokens }))
    }

    async fn cancel_job(&self, req: Request<CancelJobRequest>) -> Result<Response<CancelJobResponse>, Status> {
        let job = req.into_inner().job;
        self.plane()?.cancel(&job).await?;
        Ok(Response::new(CancelJobResponse { job }))
    }
}
