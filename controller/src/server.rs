//! Serves the controller's gRPC services on one listener.

use std::net::SocketAddr;
use std::sync::Arc;

use straddle_proto::telemetry_server::TelemetryServer;
use straddle_proto::traffic_server::TrafficServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::registry::Registry;
use crate::service::{telemetry::TelemetryService, traffic::TrafficService};

/// A bound, not yet serving controller.
pub struct Controller {
    pub registry: Arc<Registry>,
    listener: TcpListener,
}

impl Controller {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Controller> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Controller { registry: Arc::new(Registry::default()), listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let registry = self.registry.clone();
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(TelemetryServer::new(TelemetryService { registry: registry.clone() }))
            .add_service(TrafficServer::new(TrafficService { registry }))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
            .await
    }
}
