//! Serves the controller's gRPC services on one listener.

use std::net::SocketAddr;
use std::sync::Arc;

use straddle_proto::scheduler_server::SchedulerServer;
use straddle_proto::telemetry_server::TelemetryServer;
use straddle_proto::traffic_server::TrafficServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Status};

use crate::control::ControlPlane;
use crate::registry::Registry;
use crate::service::{scheduler::SchedulerService, telemetry::TelemetryService, traffic::TrafficService};
use crate::topology::Topology;

/// A bound, not yet serving controller.
pub struct Controller {
    pub registry: Arc<Registry>,
    pub plane: Option<Arc<ControlPlane>>,
    token: Option<String>,
    listener: TcpListener,
}

impl Controller {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Controller> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Controller { registry: Arc::new(Registry::default()), plane: None, token: None, listener })
    }

    /// Places jobs over this topology (without one, the scheduler API refuses jobs).
    pub fn with_topology(mut self, topo: Topology) -> Self {
        self.plane = Some(Arc::new(ControlPlane::new(topo, self.registry.clone())));
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
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(TelemetryServer::new(TelemetryService { registry: registry.clone() }))
            .add_service(TrafficServer::new(TrafficService { registry }))
            .add_service(SchedulerServer::with_interceptor(SchedulerService { plane: self.plane.clone() }, check))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
            .await
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
