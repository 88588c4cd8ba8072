//! The composition root: builds the controller's parts from its configuration, settles what
//! a restart interrupted, and serves the gRPC services on one listener with its tasks
//! (decision loop, executor, scenario arrivals, the janitor) supervised.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use straddle_model::topology::Topology;
use straddle_model::traffic::Limits;
use straddle_proto::agent_registry_server::AgentRegistryServer;
use straddle_proto::operator_server::OperatorServer;
use straddle_proto::scheduler_server::SchedulerServer;
use straddle_proto::telemetry_server::TelemetryServer;
use straddle_proto::traffic_server::TrafficServer;
use tokio::net::TcpListener;
use tonic::{Request, Status};

use super::agents::AgentRegistryService;
use super::auth::Auth;
use super::listener::{incoming, ConnLimits};
use super::operator::OperatorService;
use super::scheduler::SchedulerService;
use super::telemetry::TelemetryService;
use super::traffic::TrafficService;
use crate::act::{discovery, reconcile, ExecConfig, Executor};
use crate::agents::hypervisor::Networked;
use crate::agents::{Agents, Network};
use crate::clock::Clock;
use crate::decide::{ControlLoop, DecisionLog, LoopConfig, PlannerMode};
use crate::health::{supervise, Health};
use crate::hypervisor::{Hypervisor, SimHypervisor};
use crate::observe::Registry;
use crate::plane::ControlPlane;
use crate::records::Operation;
use crate::state::{redb::RedbStore, Store, StoreError};

/// Streams one connection may hold open: a generator or agent multiplexing many ranks
/// fits; one connection cannot open unbounded streams.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 4096;

/// Everything the controller is configured with.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub control: LoopConfig,
    pub exec: ExecConfig,
    /// The planner's mode; `None` keeps the one stored (automatic the first time).
    pub mode: Option<PlannerMode>,
    pub decide_every: Duration,
    /// How often a real hypervisor is asked what it runs (and the VMs' dirty rates).
    pub discover_every: Duration,
    pub limits: Limits,
    pub max_jobs: usize,
    /// Jobs no scheduler owns are forgotten after this long without a rank.
    pub forget_after: Duration,
    /// Ranks of jobs nobody submitted may attach (and are observed).
    pub open: bool,
    pub connections: ConnLimits,
    /// Serve TLS with this certificate and key (PEM); with `client_ca`, callers must show
    /// a certificate it signed (mutual TLS).
    pub tls: Option<TlsFiles>,
    /// The token the controller and its agents share: agents register with it and the
    /// controller commands them with it. Without one, no agent is taken.
    pub fabric_token: Option<String>,
    /// How often agents report usage.
    pub agent_heartbeat: Duration,
    /// The MTU between the agents' tunnel endpoints (0: 1500; 1440 over the encrypted tunnel).
    pub underlay_mtu: u32,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub client_ca: Option<std::path::PathBuf>,
}

impl TlsFiles {
    fn config(&self) -> Result<tonic::transport::ServerTlsConfig, StartError> {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| StartError::Tls(format!("{}: {e}", p.display())));
        let mut c =
            tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(ca) = &self.client_ca {
            c = c.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        Ok(c)
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            control: LoopConfig::default(),
            exec: ExecConfig::default(),
            mode: None,
            decide_every: Duration::from_secs(5),
            discover_every: Duration::from_secs(10),
            limits: Limits::default(),
            max_jobs: 10_000,
            forget_after: Duration::from_secs(3600),
            open: true,
            connections: ConnLimits::default(),
            tls: None,
            fabric_token: None,
            agent_heartbeat: Duration::from_secs(2),
            underlay_mtu: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("hypervisor: {0}")]
    Inventory(String),
    #[error(transparent)]
    Serve(#[from] tonic::transport::Error),
}

/// A bound, not yet serving controller.
pub struct Controller {
    pub registry: Arc<Registry>,
    pub plane: Option<Arc<ControlPlane>>,
    pub control: Option<Arc<ControlLoop>>,
    pub health: Arc<Health>,
    pub clock: Clock,
    pub agents: Arc<Agents>,
    /// Drives the agents (with a fabric token and a topology).
    pub network: Option<Arc<Network>>,
    cfg: ControllerConfig,
    /// A real hypervisor runs the VMs (discovery then asks it periodically).
    real: bool,
    token: Option<String>,
    listener: TcpListener,
}

impl Controller {
    pub async fn bind(addr: SocketAddr, cfg: ControllerConfig) -> Result<Controller, StartError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
        let clock = Clock::new();
        let registry = Arc::new(Registry::new(clock.clone(), cfg.limits, cfg.max_jobs));
        registry.set_open(cfg.open);
        Ok(Controller {
            registry,
            plane: None,
            control: None,
            health: Arc::new(Health::default()),
            clock,
            agents: Arc::new(Agents::default()),
            network: None,
            cfg,
            real: false,
            token: None,
            listener,
        })
    }

    /// Places jobs over `topo` (without one, the scheduler and operator APIs refuse),
    /// keeping state in `state` (restored when the file exists), migrating through
    /// `hypervisor` (a simulated one holding the topology's VMs when `None`). Operations a
    /// restart interrupted are settled from what the hypervisor reports.
    pub async fn with_topology(
        mut self,
        topo: Topology,
        state: Option<&Path>,
        hypervisor: Option<Arc<dyn Hypervisor>>,
    ) -> Result<Self, StartError> {
        let store = match state {
            Some(p) => Store::new(Arc::new(RedbStore::open(p)?)),
            None => Store::memory(),
        };
        let snap = store.load()?;
        let plane = Arc::new(ControlPlane::new(Arc::new(topo), self.registry.clone(), store.clone()));
        plane.restore(&snap)?;
        let stored_mode = snap.settings.get("mode").and_then(|m| PlannerMode::from_word(m));
        let mode = match (self.cfg.mode, stored_mode) {
            (Some(m), _) => m,
            (None, Some(m)) => m,
            (None, None) => PlannerMode::Automatic,
        };
        if self.cfg.mode.is_some_and(|m| Some(m) != stored_mode) && stored_mode.is_some() {
            tracing::info!(mode = mode.word(), "--mode given: it replaces the stored mode");
        }
        let real = hypervisor.is_some();
        let hv = hypervisor.unwrap_or_else(|| {
            let sim = SimHypervisor::new();
            let st = plane.view();
            for (v, vm) in plane.topo.vms.iter().enumerate() {
                sim.add_vm(&vm.name, &plane.topo.hosts[st.vm_host[v]].name, vm.memory_bytes, vm.dirty_bps);
            }
            Arc::new(sim)
        });
        let restored = self.agents.restore(&plane.topo, &snap.settings, self.clock.now());
        if restored > 0 {
            tracing::info!(agents = restored, "agent registrations restored");
        }
        // With agents, a migration's destination gets the cluster's segment first.
        let network =
            self.cfg.fabric_token.clone().map(|t| Arc::new(Network::new(self.agents.clone(), plane.clone(), t, self.cfg.underlay_mtu)));
        let hv: Arc<dyn Hypervisor> = match &network {
            Some(net) => Arc::new(Networked { inner: hv, net: net.clone() }),
            None => hv,
        };
        let log = Arc::new(DecisionLog::new(store.clone(), self.clock.clone(), snap.decisions.clone()));
        let exec = Arc::new(Executor::new(plane.clone(), hv.clone(), log.clone(), self.cfg.exec.clone()));
        if let Some(net) = &network {
            net.watch_operations(&exec);
        }
        self.network = network;
        // Migrations the last run left in flight first: the VM is wherever they took it.
        let settled = reconcile::settle(&exec, &snap.operations).await;
        if settled != reconcile::Settled::default() {
            tracing::info!(?settled, "operations a restart interrupted are settled");
        }
        if real {
            discovery::at_start(hv.as_ref(), &plane, &log, self.cfg.fabric_token.is_some()).await.map_err(StartError::Inventory)?;
        }
        self.real = real;
        let control = Arc::new(ControlLoop::new(exec, self.cfg.control.clone(), mode));
        control.set_mode(mode).await?;
        self.plane = Some(plane);
        self.control = Some(control);
        Ok(self)
    }

    /// Operations the store kept (for tests and tools).
    pub fn kept_operations(&self) -> BTreeMap<u64, Operation> {
        self.plane.as_ref().and_then(|p| p.store.load().ok()).map(|s| s.operations).unwrap_or_default()
    }

    /// Secures the controller: operators and schedulers present `authorization: Bearer
    /// <token>`, ranks their job's credential; jobs nobody submitted are refused.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        if self.token.is_some() {
            self.registry.set_open(false);
        }
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Starts the supervised tasks (without serving gRPC).
    pub fn start_tasks(&self) {
        if let Some(c) = &self.control {
            let (c1, c2, every) = (c.clone(), c.clone(), self.cfg.decide_every);
            supervise("decision loop", self.health.clone(), move || c1.clone().run(every));
            supervise("executor", self.health.clone(), move || c2.executor.clone().run());
            let p = c.plane.clone();
            supervise("scenario arrivals", self.health.clone(), move || p.clone().run_arrivals());
            if self.real {
                let (e, every) = (c.executor.clone(), self.cfg.discover_every);
                supervise("discovery", self.health.clone(), move || discovery::run(e.clone(), every));
            }
        }
        if let Some(net) = &self.network {
            let net = net.clone();
            supervise("agents' network", self.health.clone(), move || net.clone().run());
        }
        let (reg, plane, idle) = (self.registry.clone(), self.plane.clone(), self.cfg.forget_after);
        supervise("janitor", self.health.clone(), move || {
            let (reg, plane) = (reg.clone(), plane.clone());
            async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    let keep = |j: &str| plane.as_ref().is_some_and(|p| p.read(|st| st.jobs.contains_key(j)));
                    let gone = reg.forget_idle(idle, &keep);
                    if !gone.is_empty() {
                        tracing::info!(jobs = gone.len(), "forgot idle jobs");
                    }
                }
            }
        });
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), StartError> {
        self.start_tasks();
        let auth = Auth::new(self.token.as_deref(), self.plane.clone());
        let (a1, a2) = (auth.clone(), auth.clone());
        let check = move |req: Request<()>| -> Result<Request<()>, Status> {
            a1.operator(req.metadata()).inspect_err(|_| tracing::warn!("refused a scheduler call without a valid token"))?;
            Ok(req)
        };
        let check_op = move |req: Request<()>| -> Result<Request<()>, Status> {
            a2.operator(req.metadata()).inspect_err(|_| tracing::warn!("refused an operator call without a valid token"))?;
            Ok(req)
        };
        // Agents present the fabric token, compared as the operator's is; without one, none
        // is taken (an `Auth` without a token would let everyone in).
        let fabric = self.cfg.fabric_token.as_deref().map(|t| Auth::new(Some(t), None));
        let check_agent = move |req: Request<()>| -> Result<Request<()>, Status> {
            match &fabric {
                Some(a) if a.is_operator(super::auth::bearer(req.metadata())) => Ok(req),
                None => Err(Status::unauthenticated("this controller takes no agents: it was started without a fabric token")),
                Some(_) => {
                    tracing::warn!("refused an agent call without the fabric token");
                    Err(Status::unauthenticated("the fabric token is required (authorization: Bearer ...)"))
                }
            }
        };
        let (incoming, _stats) = incoming(self.listener, self.cfg.connections, self.clock.clone());
        let mut builder = tonic::transport::Server::builder();
        if let Some(t) = &self.cfg.tls {
            builder = builder.tls_config(t.config()?).map_err(|e| StartError::Tls(e.to_string()))?;
        }
        builder
            // Live streams answer pings, so the accept loop sees them talk; a call may not
            // hold a worker forever; a connection may not open unbounded streams.
            .http2_keepalive_interval(Some(Duration::from_secs(20)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .timeout(Duration::from_secs(60))
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .add_service(TelemetryServer::new(TelemetryService { registry: self.registry.clone(), auth: auth.clone() }))
            .add_service(TrafficServer::new(TrafficService {
                registry: self.registry.clone(),
                plane: self.plane.clone(),
                control: self.control.clone(),
                auth: auth.clone(),
            }))
            .add_service(SchedulerServer::with_interceptor(
                SchedulerService { plane: self.plane.clone(), network: self.network.clone() },
                check,
            ))
            .add_service(OperatorServer::with_interceptor(
                OperatorService {
                    control: self.control.clone(),
                    health: self.health.clone(),
                    agents: self.agents.clone(),
                    clock: self.clock.clone(),
                },
                check_op,
            ))
            .add_service(AgentRegistryServer::with_interceptor(
                AgentRegistryService {
                    agents: self.agents.clone(),
                    plane: self.plane.clone(),
                    clock: self.clock.clone(),
                    heartbeat_ms: u32::try_from(self.cfg.agent_heartbeat.as_millis()).unwrap_or(u32::MAX),
                },
                check_agent,
            ))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }
}
