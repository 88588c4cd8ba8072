//! Serves the controller's gRPC services on one listener.

use std::net::SocketAddr;
use std::sync::Arc;

use straddle_proto::operator_server::OperatorServer;
use straddle_proto::scheduler_server::SchedulerServer;
use straddle_proto::telemetry_server::TelemetryServer;
use straddle_proto::traffic_server::TrafficServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Status};

use crate::control::ControlPlane;
use crate::decide::{Decider, DeciderConfig};
use crate::hypervisor::{Hypervisor, SimHypervisor};
use crate::registry::Registry;
use crate::service::{operator::OperatorService, scheduler::SchedulerService, telemetry::TelemetryService, traffic::TrafficService};
use crate::topology::Topology;

/// A bound, not yet serving controller.
pub struct Controller {
    pub registry: Arc<Registry>,
    pub plane: Option<Arc<ControlPlane>>,
    pub decider: Option<Arc<Decider>>,
    decide_every: std::time::Duration,
    token: Option<String>,
    snapshot: Option<crate::store::Snapshot>,
    listener: TcpListener,
}

impl Controller {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Controller> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Controller {
            registry: Arc::new(Registry::default()),
            plane: None,
            decider: None,
            decide_every: std::time::Duration::from_secs(5),
            token: None,
            snapshot: None,
            listener,
        })
    }

    /// Places jobs over this topology (without one, the scheduler API refuses jobs),
    /// keeping state in `state` (a redb file; restored from it when it exists).
    pub fn with_topology(mut self, topo: Topology, state: Option<&std::path::Path>) -> Result<Self, crate::store::StoreError> {
        let store = match state {
            Some(p) => Some(Arc::new(crate::store::Store::open(p)?)),
            None => None,
        };
        let snapshot = match &store {
            Some(s) => s.load()?,
            None => Default::default(),
        };
        let plane = ControlPlane::with_store(topo, self.registry.clone(), store);
        plane.restore(&snapshot);
        self.plane = Some(Arc::new(plane));
        self.snapshot = Some(snapshot);
        Ok(self)
    }

    /// Runs the decision loop every `every` over the topology's VMs on `hypervisor` (a
    /// simulated one, seeded with the topology's VMs, when `None`).
    pub fn with_decider(
        mut self,
        cfg: DeciderConfig,
        mode: straddle_proto::PlannerMode,
        every: std::time::Duration,
        hypervisor: Option<Arc<dyn Hypervisor>>,
    ) -> Self {
        if let Some(plane) = &self.plane {
            let hv = hypervisor.unwrap_or_else(|| {
                let sim = SimHypervisor::new();
                let st = plane.state.lock().unwrap_or_else(|p| p.into_inner());
                for (v, vm) in plane.topo.vms.iter().enumerate() {
                    sim.add_vm(&vm.name, &plane.topo.hosts[st.vm_host[v]].name, vm.memory_bytes, vm.dirty_bps);
                }
                Arc::new(sim)
            });
            let snap = self.snapshot.take().unwrap_or_default();
            let mode = snap
                .meta
                .get("mode")
                .and_then(|m| straddle_proto::PlannerMode::from_str_name(m))
                .filter(|m| *m != straddle_proto::PlannerMode::Unspecified)
                .unwrap_or(mode);
            self.decider = Some(Arc::new(Decider::restored(plane.clone(), hv, cfg, mode, snap.decisions)));
            self.decide_every = every;
        }
        self
    }

    /// Callers that can change placement must present `authorization: Bearer <token>`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let registry = self.registry.clone();
        let token = self.token.clone();
        let check = move |req: Request<()>| -> Result<Request<()>, Status> {
            let Some(want) = &token else { return Ok(req) };
            let got = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            if got.is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes())) {
                Ok(req)
            } else {
                tracing::warn!("refused a scheduler call without a valid token");
                Err(Status::unauthenticated("a valid bearer token is required to change placement"))
            }
        };
        if let Some(d) = &self.decider {
            tokio::spawn(d.clone().run(self.decide_every));
        }
        let check_op = check.clone();
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(TelemetryServer::new(TelemetryService { registry: registry.clone() }))
            .add_service(TrafficServer::new(TrafficService { registry }))
            .add_service(SchedulerServer::with_interceptor(SchedulerService { plane: self.plane.clone() }, check))
            .add_service(OperatorServer::with_interceptor(OperatorService { decider: self.decider.clone() }, check_op))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
            .await
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
