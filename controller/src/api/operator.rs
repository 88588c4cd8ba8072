//! Operators watch decisions live, ask why, list placements and operations, check health,
//! and override: pin a VM, drain a site, switch the planner's mode, approve a pending plan.

use std::pin::Pin;
use std::sync::Arc;

use straddle_proto as pb;
use straddle_proto::operator_server::Operator;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert;
use crate::agents::Agents;
use crate::clock::Clock;
use crate::decide::ControlLoop;
use crate::health::{Health, Status as TaskStatus};
use crate::plane::PlaneError;

pub struct OperatorService {
    pub control: Option<Arc<ControlLoop>>,
    pub health: Arc<Health>,
    pub agents: Arc<Agents>,
    pub clock: Clock,
}

impl OperatorService {
    fn control(&self) -> Result<&Arc<ControlLoop>, Status> {
        self.control.as_ref().ok_or_else(|| PlaneError::NoTopology.into())
    }
}

type DecisionStream = Pin<Box<dyn Stream<Item = Result<pb::Decision, Status>> + Send>>;

#[tonic::async_trait]
impl Operator for OperatorService {
    type WatchDecisionsStream = DecisionStream;

    async fn watch_decisions(&self, req: Request<pb::WatchDecisionsRequest>) -> Result<Response<DecisionStream>, Status> {
        let job = req.into_inner().job;
        let c = self.control()?.clone();
        // Subscribe before taking the backlog, so nothing falls between them.
        let mut live = c.log.subscribe();
        let backlog = c.log.snapshot();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            for x in backlog.into_iter().filter(|x| job.is_empty() || x.job == job) {
                if tx.send(Ok(convert::decision(&x))).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(x) if job.is_empty() || x.job == job => {
                        if tx.send(Ok(convert::decision(&x))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx.send(Err(Status::data_loss(format!("watcher fell {n} decisions behind; watch again")))).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn explain(&self, req: Request<pb::ExplainRequest>) -> Result<Response<pb::Decision>, Status> {
        let id = req.into_inner().decision_id;
        self.control()?
            .log
            .get(id)
            .map(|d| Response::new(convert::decision(&d)))
            .ok_or_else(|| Status::not_found(format!("decision_id: no decision {id}")))
    }

    async fn list_placements(&self, req: Request<pb::ListPlacementsRequest>) -> Result<Response<pb::ListPlacementsResponse>, Status> {
        let want = req.into_inner().job;
        let c = self.control()?;
        let topo = &c.plane.topo;
        let placements = c.plane.read(|st| {
            let mut out = Vec::new();
            for (v, vm) in topo.vms.iter().enumerate() {
                let job = st.jobs.iter().find(|(_, j)| j.rank_vm.contains(&v));
                if !want.is_empty() && job.map(|(n, _)| n.as_str()) != Some(want.as_str()) {
                    continue;
                }
                let h = st.vm_host[v];
                out.push(pb::Placement {
                    vm: vm.name.clone(),
                    host: topo.hosts[h].name.clone(),
                    site: topo.sites[topo.site_of_host(h)].name.clone(),
                    job: job.map(|(n, _)| n.clone()).unwrap_or_default(),
                    ranks: job
                        .map(|(_, j)| j.rank_vm.iter().zip(0u32..).filter(|(&x, _)| x == v).map(|(_, r)| r).collect())
                        .unwrap_or_default(),
                    pinned: st.pinned.contains(&v),
                });
            }
            out
        });
        Ok(Response::new(pb::ListPlacementsResponse { placements }))
    }

    async fn pin(&self, req: Request<pb::PinRequest>) -> Result<Response<pb::OperatorAck>, Status> {
        let r = req.into_inner();
        self.control()?.plane.set_pinned(&r.vm, r.pinned).await?;
        tracing::info!(vm = %r.vm, pinned = r.pinned, "operator pin");
        Ok(Response::new(pb::OperatorAck { message: format!("{} {}", r.vm, if r.pinned { "pinned" } else { "unpinned" }) }))
    }

    async fn drain(&self, req: Request<pb::DrainRequest>) -> Result<Response<pb::OperatorAck>, Status> {
        let r = req.into_inner();
        let c = self.control()?;
        c.plane.set_drained(&r.site, r.drain).await?;
        c.executor.nudge();
        tracing::info!(site = %r.site, drain = r.drain, "operator drain");
        Ok(Response::new(pb::OperatorAck { message: format!("{} {}", r.site, if r.drain { "draining" } else { "open" }) }))
    }

    async fn set_mode(&self, req: Request<pb::SetModeRequest>) -> Result<Response<pb::OperatorAck>, Status> {
        let v = req.into_inner().mode;
        let mode =
            convert::mode_from_pb(v).ok_or_else(|| Status::invalid_argument(format!("mode: {v} is not automatic, dry-run or approve")))?;
        self.control()?.set_mode(mode).await?;
        tracing::info!(mode = mode.word(), "operator mode");
        Ok(Response::new(pb::OperatorAck { message: format!("mode {}", mode.word()) }))
    }

    async fn approve(&self, req: Request<pb::ApproveRequest>) -> Result<Response<pb::OperatorAck>, Status> {
        let r = req.into_inner();
        let d = self.control()?.approve(r.decision_id, r.approve).await?;
        let what = if r.approve { "approved: its migrations are queued" } else { "rejected" };
        Ok(Response::new(pb::OperatorAck { message: format!("decision {} {what}", d.id) }))
    }

    async fn list_operations(&self, _: Request<pb::ListOperationsRequest>) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let ops = self.control()?.executor.operations();
        Ok(Response::new(pb::ListOperationsResponse { operations: ops.iter().map(convert::operation).collect() }))
    }

    async fn health(&self, _: Request<pb::HealthRequest>) -> Result<Response<pb::HealthResponse>, Status> {
        let components = self
            .health
            .components()
            .into_iter()
            .map(|c| {
                let (state, reason) = match c.status {
                    TaskStatus::Running => ("running", c.last_death.clone().unwrap_or_default()),
                    TaskStatus::Restarting { reason, .. } => ("restarting", reason),
                    TaskStatus::Stopped { reason } => ("stopped", reason),
                };
                pb::ComponentHealth { name: c.name, state: state.into(), reason, deaths: c.deaths }
            })
            .collect();
        Ok(Response::new(pb::HealthResponse { healthy: self.health.healthy(), components }))
    }

    async fn list_agents(&self, _: Request<pb::ListAgentsRequest>) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let now = self.clock.now();
        let agents = self
            .agents
            .list()
            .into_iter()
            .map(|e| pb::AgentStatus {
                host: e.info.host,
                site: e.info.site,
                agent_url: e.info.agent_url,
                vtep: e.info.vtep,
                notes: e.info.notes,
                seen_secs_ago: now.since(e.seen).as_secs_f64(),
                usage: e.usage,
                fabric: match e.pushed {
                    None => "not pushed yet".into(),
                    Some(Ok(0)) => "in place".into(),
                    Some(Ok(n)) => format!("{n} changes"),
                    Some(Err(why)) => why,
                },
            })
            .collect();
        Ok(Response::new(pb::ListAgentsResponse { agents }))
    }
}
