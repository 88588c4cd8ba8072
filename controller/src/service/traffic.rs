//! Operator queries over traffic: one job's matrices, the list of jobs.

use std::sync::Arc;

use straddle_proto::traffic_server::Traffic;
use straddle_proto::{
    CollectiveSummary, CommunicatorSummary, JobState, JobSummary, ListJobsRequest, ListJobsResponse, RankInfo, TrafficMatrix,
    TrafficRequest,
};
use tonic::{Request, Response, Status};

use crate::registry::Registry;
use crate::traffic::JobTraffic;

pub struct TrafficService {
    pub registry: Arc<Registry>,
}

/// The wire form of one job's traffic (cumulative, or rates over `window` seconds).
pub fn matrix(j: &JobTraffic, now_secs: u64, window: u32) -> TrafficMatrix {
    let m = if window == 0 { j.cumulative() } else { j.rate(now_secs, window as u64) };
    let flat = |a: &ndarray::Array2<f64>| a.iter().copied().collect::<Vec<f64>>();
    TrafficMatrix {
        job: j.job.clone(),
        world_size: j.world_size,
        rate: window != 0,
        window_secs: window as f64,
        bytes: flat(&m.bytes),
        messages: flat(&m.messages),
        rma_bytes: flat(&m.rma_bytes),
        rma_operations: flat(&m.rma_operations),
        ranks: j
            .ranks
            .iter()
            .enumerate()
            .map(|(i, r)| RankInfo {
                rank: i as u32,
                node: r.node.clone(),
                attached: r.attached > 0,
                reports: r.reports,
                last_report_unix_ms: r.last_report_ms,
                dropped_records: r.dropped,
                regrouped_cross_site_bytes: r.regrouped,
            })
            .collect(),
        communicators: j
            .communicators
            .iter()
            .map(|(&(rank, _), c)| CommunicatorSummary { reporter_rank: rank, info: Some(c.clone()) })
            .collect(),
        collectives: j.collectives.iter().map(|(k, c)| CollectiveSummary { rank: k.0, traffic: Some(c.clone()) }).collect(),
    }
}

#[tonic::async_trait]
impl Traffic for TrafficService {
    async fn get_traffic(&self, req: Request<TrafficRequest>) -> Result<Response<TrafficMatrix>, Status> {
        let r = req.into_inner();
        if r.rate_window_secs as u64 > crate::traffic::MAX_WINDOW_SECS {
            return Err(Status::invalid_argument(format!(
                "rate_window_secs {} exceeds the kept window of {} s",
                r.rate_window_secs,
                crate::traffic::MAX_WINDOW_SECS
            )));
        }
        let now = self.registry.now_secs();
        let m = self.registry.with_job(&r.job, |j| matrix(j, now, r.rate_window_secs))?;
        Ok(Response::new(m))
    }

    async fn list_jobs(&self, _: Request<ListJobsRequest>) -> Result<Response<ListJobsResponse>, Status> {
        let jobs = self
            .registry
            .jobs()
            .iter()
            .map(|j| {
                let j = j.lock().unwrap_or_else(|p| p.into_inner());
                let m = j.cumulative();
                let attached = j.attached_ranks();
                JobSummary {
                    job: j.job.clone(),
                    world_size: j.world_size,
                    attached_ranks: attached,
                    total_bytes: m.bytes.sum() as u64,
                    total_messages: m.messages.sum() as u64,
                    state: if attached > 0 { JobState::Running } else { JobState::Finished } as i32,
                    class: 0,
                }
            })
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }
}
