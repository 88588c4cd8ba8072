//! Schedulers submit jobs and scenarios, and cancel jobs.

use std::sync::Arc;

use straddle_proto::scheduler_server::Scheduler;
use straddle_proto::{
    BuildClusterRequest, BuildClusterResponse, CancelJobRequest, CancelJobResponse, JobSpec, ScenarioSpec, SubmitJobResponse,
    SubmitScenarioResponse, TearDownClusterRequest, TearDownClusterResponse,
};
use tonic::{Request, Response, Status};

use super::convert;
use crate::agents::clusters::{ClusterError, Image};
use crate::agents::Network;
use crate::plane::{ControlPlane, PlaneError};
use crate::scenario::Scenario;

pub struct SchedulerService {
    pub plane: Option<Arc<ControlPlane>>,
    /// The agents (with a fabric token): clusters are built through them.
    pub network: Option<Arc<Network>>,
}

impl SchedulerService {
    fn plane(&self) -> Result<&Arc<ControlPlane>, Status> {
        self.plane.as_ref().ok_or_else(|| PlaneError::NoTopology.into())
    }

    fn network(&self) -> Result<&Arc<Network>, Status> {
        self.plane()?;
        self.network.as_ref().ok_or_else(|| Status::failed_precondition("this controller drives no agents: start it with a fabric token"))
    }
}

fn cluster_status(e: ClusterError) -> Status {
    match e {
        ClusterError::Invalid(m) => Status::invalid_argument(m),
        ClusterError::Precondition(m) => Status::failed_precondition(m),
        ClusterError::Failed(m) => Status::unavailable(m),
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

    async fn build_cluster(&self, req: Request<BuildClusterRequest>) -> Result<Response<BuildClusterResponse>, Status> {
        let r = req.into_inner();
        for (field, path) in [("kernel", &r.kernel), ("initrd", &r.initrd)] {
            if !path.starts_with('/') {
                return Err(Status::invalid_argument(format!("{field} = {path:?}: an absolute path on the hosts")));
            }
        }
        if r.vcpus > 64 {
            return Err(Status::invalid_argument(format!("vcpus = {}: at most 64", r.vcpus)));
        }
        let image = Image { kernel: r.kernel, initrd: r.initrd, cmdline: r.cmdline, vcpus: r.vcpus };
        let vms = self.network()?.build_cluster(&r.cluster, &image).await.map_err(cluster_status)?;
        Ok(Response::new(BuildClusterResponse { vms }))
    }

    async fn tear_down_cluster(&self, req: Request<TearDownClusterRequest>) -> Result<Response<TearDownClusterResponse>, Status> {
        let r = req.into_inner();
        let vms = self.network()?.tear_down_cluster(&r.cluster).await.map_err(cluster_status)?;
        Ok(Response::new(TearDownClusterResponse { vms }))
    }

    async fn cancel_job(&self, req: Request<CancelJobRequest>) -> Result<Response<CancelJobResponse>, Status> {
        let job = req.into_inner().job;
        self.plane()?.cancel(&job).await?;
        Ok(Response::new(CancelJobResponse { job }))
    }
}
