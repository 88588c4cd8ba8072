//! The controller drives the agents: it keeps every registered agent's share of the fabric
//! what the placement says — pushed when a VM moves, when an agent (re)registers, and every
//! few seconds besides (an agent's ensure is idempotent: a push that finds everything in
//! place changes nothing) — and builds a cluster's segment on a migration's destination
//! before the VM goes there.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use straddle_model::time::Time;
use straddle_model::topology::{HostId, VmId};
use straddle_proto::agent_client::AgentClient;
use straddle_proto::FabricSpec;
use tonic::transport::{Channel, Endpoint};

use super::fabric::{fabric, networked};
use super::registry::Agents;
use crate::act::Executor;
use crate::plane::ControlPlane;

/// How often the fabric is pushed when nothing changed.
pub const RESYNC: Duration = Duration::from_secs(10);
/// Longest a host carries a cluster for a VM that does not come.
pub const STAGED_FOR: Duration = Duration::from_secs(600);

pub struct Network {
    pub agents: Arc<Agents>,
    pub(super) plane: Arc<ControlPlane>,
    token: String,
    /// The MTU between tunnel endpoints (0: 1500); the segments get 50 bytes less.
    underlay_mtu: u32,
    /// VMs on their way to a host — a migration's destination, a cluster being built —
    /// and when they were staged; until they run there, the migration ends, or `STAGED_FOR`.
    pub(super) staged: Mutex<HashMap<VmId, (HostId, Time)>>,
    executor: OnceLock<Weak<Executor>>,
    channels: Mutex<HashMap<String, Channel>>,
    /// Pushes go out one at a time, so an older fabric never lands after a newer one.
    one: tokio::sync::Mutex<()>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Network {
    pub fn new(agents: Arc<Agents>, plane: Arc<ControlPlane>, token: String, underlay_mtu: u32) -> Network {
        Network {
            agents,
            plane,
            token,
            underlay_mtu,
            staged: Mutex::new(HashMap::new()),
            executor: OnceLock::new(),
            channels: Mutex::new(HashMap::new()),
            one: tokio::sync::Mutex::new(()),
        }
    }

    /// The executor whose operations keep destinations staged.
    pub fn watch_operations(&self, exec: &Arc<Executor>) {
        let _ = self.executor.set(Arc::downgrade(exec));
    }

    /// The fabric as it should be now.
    pub fn current(&self) -> FabricSpec {
        let vm_host = self.plane.read(|st| st.vm_host.clone());
        let absent = lock(&self.plane.absent).clone();
        let exec = self.executor.get().and_then(Weak::upgrade);
        let now = self.plane.clock.now();
        let staged: Vec<(VmId, HostId)> = {
            let mut s = lock(&self.staged);
            s.retain(|v, (h, at)| {
                let arrived = vm_host[*v] == *h && !absent.contains(v);
                let failed = vm_host[*v] != *h && exec.as_ref().is_some_and(|e| !e.busy(*v));
                !arrived && !failed && now.since(*at) < STAGED_FOR
            });
            s.iter().map(|(v, (h, _))| (*v, *h)).collect()
        };
        let vteps: BTreeMap<String, String> = self.agents.endpoints().into_iter().map(|(h, v, _)| (h, v)).collect();
        let mut f = fabric(&self.plane.topo, &vm_host, &vteps, &staged, &absent);
        f.underlay_mtu = self.underlay_mtu;
        f
    }

    pub(super) fn channel(&self, url: &str) -> Result<Channel, String> {
        if let Some(c) = lock(&self.channels).get(url) {
            return Ok(c.clone());
        }
        let c = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url}: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        lock(&self.channels).insert(url.to_string(), c.clone());
        Ok(c)
    }

    /// Pushes the current fabric to every registered agent; the answer per host.
    pub async fn push(&self) -> BTreeMap<String, Result<Vec<String>, String>> {
        let _one = self.one.lock().await;
        let f = self.current();
        let mut calls = tokio::task::JoinSet::new();
        for (host, _, url) in self.agents.endpoints() {
            let (f, token) = (f.clone(), self.token.clone());
            let ch = self.channel(&url);
            calls.spawn(async move {
                let r = match ch {
                    Ok(ch) => ensure(ch, &token, f).await,
                    Err(e) => Err(e),
                };
                (host, r)
            });
        }
        let mut out = BTreeMap::new();
        while let Some(Ok((host, r))) = calls.join_next().await {
            match &r {
                Ok(c) if !c.is_empty() => tracing::info!(host = %host, changes = c.len(), "agent brought its network in line"),
                Ok(_) => {}
                Err(e) => tracing::warn!(host = %host, "agent did not take the fabric: {e}"),
            }
            self.agents.pushed(&host, r.as_ref().map(Vec::len).map_err(Clone::clone));
            out.insert(host, r);
        }
        out
    }

    /// Before `vm` migrates to `to`: the destination's agent builds the cluster's segment
    /// (and every other agent floods to it). An error says why the migration must not start.
    pub async fn prepare(&self, vm: &str, to: &str) -> Result<(), String> {
        let topo = &self.plane.topo;
        let (Some(v), Some(h)) = (topo.vm(vm), topo.host(to)) else { return Ok(()) };
        if !networked(topo, v) {
            return Ok(());
        }
        if !self.agents.endpoints().iter().any(|(n, ..)| n == to) {
            return Err(format!(
                "no agent of host {to:?} is registered: the segment of cluster {:?} cannot be built there",
                topo.vms[v].cluster
            ));
        }
        lock(&self.staged).insert(v, (h, self.plane.clock.now()));
        match self.push().await.remove(to) {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(format!("the agent of {to:?} did not build the segment of cluster {:?}: {e}", topo.vms[v].cluster)),
            None => Err(format!("the agent of {to:?} went away")),
        }
    }

    /// Pushes whenever the placement or the registrations change, and every `RESYNC`.
    pub async fn run(self: Arc<Self>) {
        let mut registered = self.agents.subscribe();
        let mut last: Option<(u64, u64)> = None;
        let mut since = self.plane.clock.now();
        loop {
            tokio::select! {
                _ = registered.changed() => {}
                _ = self.plane.clock.sleep(Duration::from_millis(100)) => {}
            }
            let key = (self.plane.read(|st| st.epoch), *registered.borrow_and_update());
            let now = self.plane.clock.now();
            if last != Some(key) || now.since(since) >= RESYNC {
                last = Some(key);
                since = now;
                self.push().await;
            }
        }
    }
}

impl Network {
    /// `msg` with the fabric token.
    pub(super) fn authed<T>(&self, msg: T) -> Result<tonic::Request<T>, String> {
        authed(&self.token, msg)
    }

    /// A client of `host`'s agent (`None`: none registered).
    pub(super) fn agent(&self, host: &str) -> Option<Result<AgentClient<Channel>, String>> {
        let (_, _, url) = self.agents.endpoints().into_iter().find(|(h, ..)| h == host)?;
        Some(self.channel(&url).map(AgentClient::new))
    }
}

/// `msg` presenting `token` (`authorization: Bearer`).
fn authed<T>(token: &str, msg: T) -> Result<tonic::Request<T>, String> {
    let mut req = tonic::Request::new(msg);
    let bearer = format!("Bearer {token}").parse().map_err(|_| "the fabric token is not valid ASCII".to_string())?;
    req.metadata_mut().insert("authorization", bearer);
    Ok(req)
}

/// One agent's ensure of `f`, authenticated with the fabric token.
async fn ensure(ch: Channel, token: &str, f: FabricSpec) -> Result<Vec<String>, String> {
    let r = AgentClient::new(ch).ensure_fabric(authed(token, f)?).await;
    r.map(|r| r.into_inner().changes).map_err(|s| format!("{}: {}", s.code(), s.message()))
}
