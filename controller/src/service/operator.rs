//! Operators watch decisions live, ask why, list placements, and override: pin a VM,
//! drain a site, switch the planner's mode, approve a pending plan.

use std::pin::Pin;
use std::sync::Arc;

use straddle_proto::operator_server::Operator;
use straddle_proto::{
    ApproveRequest, Decision, DrainRequest, ExplainRequest, ListPlacementsRequest, ListPlacementsResponse, OperatorAck, PinRequest,
    Placement, PlannerMode, SetModeRequest, WatchDecisionsRequest,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::decide::Decider;

pub struct OperatorService {
    pub decider: Option<Arc<Decider>>,
}

impl OperatorService {
    fn decider(&self) -> Result<&Arc<Decider>, Status> {
        self.decider.as_ref().ok_or_else(|| Status::failed_precondition("no topology loaded: start the controller with --topology FILE"))
    }
}

type DecisionStream = Pin<Box<dyn Stream<Item = Result<Decision, Status>> + Send>>;

#[tonic::async_trait]
impl Operator for OperatorService {
    type WatchDecisionsStream = DecisionStream;

    async fn watch_decisions(&self, req: Request<WatchDecisionsRequest>) -> Result<Response<DecisionStream>, Status> {
        let job = req.into_inner().job;
        let d = self.decider()?.clone();
        // Subscribe before taking the backlog, so nothing falls between them.
        let mut live = d.log.subscribe();
        let backlog = d.log.snapshot();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            for x in backlog.into_iter().filter(|x| job.is_empty() || x.job == job) {
                if tx.send(Ok(x)).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(x) if job.is_empty() || x.job == job => {
                        if tx.send(Ok(x)).await.is_err() {
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

    async fn explain(&self, req: Request<ExplainRequest>) -> Result<Response<Decision>, Status> {
        let id = req.into_inner().decision_id;
        self.decider()?.log.get(id).map(Response::new).ok_or_else(|| Status::not_found(format!("no decision {id}")))
    }

    async fn list_placements(&self, req: Request<ListPlacementsRequest>) -> Result<Response<ListPlacementsResponse>, Status> {
        let want = req.into_inner().job;
        let d = self.decider()?;
        let topo = &d.plane.topo;
        let st = d.plane.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut placements = Vec::new();
        for (v, vm) in topo.vms.iter().enumerate() {
            let job = st.jobs.iter().find(|(_, j)| j.rank_vm.contains(&v));
            if !want.is_empty() && job.map(|(n, _)| n.as_str()) != Some(want.as_str()) {
                continue;
            }
            let h = st.vm_host[v];
            placements.push(Placement {
                vm: vm.name.clone(),
                host: topo.hosts[h].name.clone(),
                site: topo.sites[topo.site_of_host(h)].name.clone(),
                job: job.map(|(n, _)| n.clone()).unwrap_or_default(),
                ranks: job
                    .map(|(_, j)| j.rank_vm.iter().enumerate().filter(|(_, &x)| x == v).map(|(r, _)| r as u32).collect())
                    .unwrap_or_default(),
                pinned: st.pinned.contains(&v),
            });
        }
        Ok(Response::new(ListPlacementsResponse { placements }))
    }

    async fn pin(&self, req: Request<PinRequest>) -> Result<Response<OperatorAck>, Status> {
        let r = req.into_inner();
        let d = self.decider()?;
        let v = d.plane.topo.vm(&r.vm).ok_or_else(|| Status::not_found(format!("vm: unknown VM {:?}", r.vm)))?;
        d.plane.set_pinned(v, r.pinned)?;
        tracing::info!(vm = %r.vm, pinned = r.pinned, "operator pin");
        Ok(Response::new(OperatorAck { message: format!("{} {}", r.vm, if r.pinned { "pinned" } else { "unpinned" }) }))
    }

    async fn drain(&self, req: Request<DrainRequest>) -> Result<Response<OperatorAck>, Status> {
        let r = req.into_inner();
        let d = self.decider()?;
        let s = d.plane.topo.site(&r.site).ok_or_else(|| Status::not_found(format!("site: unknown site {:?}", r.site)))?;
        d.plane.set_drained(s, r.drain)?;
        tracing::info!(site = %r.site, drain = r.drain, "operator drain");
        Ok(Response::new(OperatorAck { message: format!("{} {}", r.site, if r.drain { "draining" } else { "open" }) }))
    }

    async fn set_mode(&self, req: Request<SetModeRequest>) -> Result<Response<OperatorAck>, Status> {
        let mode = PlannerMode::try_from(req.into_inner().mode).unwrap_or(PlannerMode::Unspecified);
        if mode == PlannerMode::Unspecified {
            return Err(Status::invalid_argument("mode: must be automatic, dry-run or approve"));
        }
        self.decider()?.set_mode(mode);
        tracing::info!(?mode, "operator mode");
        Ok(Response::new(OperatorAck { message: format!("mode {mode:?}") }))
    }

    async fn approve(&self, req: Request<ApproveRequest>) -> Result<Response<OperatorAck>, Status> {
        let r = req.into_inner();
        let d = self.decider()?.approve(r.decision_id, r.approve).await.map_err(Status::failed_precondition)?;
        Ok(Response::new(OperatorAck {
            message: format!("decision {} {:?}", d.id, straddle_proto::DecisionState::try_from(d.state).unwrap_or_default()),
        }))
    }
}
