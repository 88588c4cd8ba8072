//! Operator queries over traffic: one job's matrices, the list of jobs with their class and
//! state.

use std::sync::Arc;

use straddle_proto::traffic_server::Traffic;
use straddle_proto::{JobState, JobSummary, ListJobsRequest, ListJobsResponse, TrafficMatrix, TrafficRequest};
use tonic::{Request, Response, Status};

use super::auth::Auth;
use super::convert;
use crate::decide::ControlLoop;
use crate::observe::registry::lock;
use crate::observe::Registry;
use crate::plane::ControlPlane;

pub struct TrafficService {
    pub registry: Arc<Registry>,
    pub plane: Option<Arc<ControlPlane>>,
    pub control: Option<Arc<ControlLoop>>,
    pub auth: Auth,
}

#[tonic::async_trait]
impl Traffic for TrafficService {
    async fn get_traffic(&self, req: Request<TrafficRequest>) -> Result<Response<TrafficMatrix>, Status> {
        let r = req.get_ref().clone();
        self.auth.job(req.metadata(), &r.job)?;
        if u64::from(r.rate_window_secs) > straddle_model::traffic::MAX_WINDOW_SECS {
            return Err(Status::invalid_argument(format!(
                "rate_window_secs {} exceeds the kept window of {} s",
                r.rate_window_secs,
                straddle_model::traffic::MAX_WINDOW_SECS
            )));
        }
        let now = self.registry.clock.now();
        let m = self
            .registry
            .with_job(&r.job, |j| convert::traffic(j, now, r.rate_window_secs, r.max_pairs))
            .ok_or_else(|| Status::not_found(format!("job: unknown job {:?}", r.job)))?;
        Ok(Response::new(m))
    }

    async fn list_jobs(&self, req: Request<ListJobsRequest>) -> Result<Response<ListJobsResponse>, Status> {
        self.auth.operator(req.metadata())?;
        let classes = self.control.as_ref().map(|c| c.classes()).unwrap_or_default();
        let (submitted, cancelled) = match &self.plane {
            Some(p) => p.read(|st| {
                (
                    st.jobs.keys().cloned().collect::<std::collections::HashSet<_>>(),
                    st.cancelled.keys().cloned().collect::<std::collections::HashSet<_>>(),
                )
            }),
            None => Default::default(),
        };
        let jobs = self
            .registry
            .jobs()
            .iter()
            .map(|j| {
                let j = lock(j);
                let m = j.cumulative();
                let attached = j.attached_ranks();
                let any_seen = j.ranks.iter().any(|r| r.hello_seen);
                let state = if cancelled.contains(&j.job) && !submitted.contains(&j.job) {
                    JobState::Cancelled
                } else if attached > 0 {
                    JobState::Running
                } else if j.finished() {
                    JobState::Finished
                } else if any_seen {
                    JobState::Running
                } else {
                    JobState::Submitted
                };
                JobSummary {
                    job: j.job.clone(),
                    world_size: j.world_size,
                    attached_ranks: attached,
                    total_bytes: straddle_model::whole(m.total_bytes()),
                    total_messages: straddle_model::whole(m.total_messages()),
                    state: state as i32,
                    class: convert::class(classes.get(&j.job).map(|c| c.0)) as i32,
                }
            })
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }
}
