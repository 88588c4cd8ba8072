//! The agents that registered, with their last usage. An agent registers again after every
//! restart; what it says is checked against the topology (its host and site, a tunnel
//! endpoint no other host has) before it counts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use straddle_model::time::Time;
use straddle_model::topology::Topology;
use straddle_proto::{HostInfo, Usage};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub info: HostInfo,
    pub registered: Time,
    pub seen: Time,
    pub usage: Option<Usage>,
    /// The last push of the fabric to it: changes made, or why it failed.
    pub pushed: Option<Result<usize, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value:?}: {why}")]
pub struct RegisterError {
    pub field: &'static str,
    pub value: String,
    pub why: String,
}

pub struct Agents {
    inner: Mutex<BTreeMap<String, AgentEntry>>,
    /// One more with every registration (the network pushes the fabric then).
    changed: watch::Sender<u64>,
}

impl Default for Agents {
    fn default() -> Self {
        Agents { inner: Mutex::new(BTreeMap::new()), changed: watch::channel(0).0 }
    }
}

fn bad(field: &'static str, value: &str, why: impl Into<String>) -> RegisterError {
    RegisterError { field, value: value.into(), why: why.into() }
}

impl Agents {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AgentEntry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks and keeps a registration (replacing the host's earlier one).
    pub fn register(&self, topo: &Topology, info: HostInfo, now: Time) -> Result<(), RegisterError> {
        let h = topo.host(&info.host).ok_or_else(|| bad("host", &info.host, "not a host of the topology"))?;
        let site = &topo.sites[topo.hosts[h].site].name;
        if !info.site.is_empty() && &info.site != site {
            return Err(bad("site", &info.site, format!("host {:?} is in site {site:?}", info.host)));
        }
        let vtep: Ipv4Addr = info.vtep.parse().map_err(|_| bad("vtep", &info.vtep, "not an IPv4 address"))?;
        if vtep.is_unspecified() || vtep.is_broadcast() || vtep.is_multicast() {
            return Err(bad("vtep", &info.vtep, "not a host's address"));
        }
        if !(info.agent_url.starts_with("http://") || info.agent_url.starts_with("https://")) {
            return Err(bad("agent_url", &info.agent_url, "an http:// or https:// URL"));
        }
        let mut g = self.lock();
        if let Some((other, _)) = g.iter().find(|(n, e)| **n != info.host && e.info.vtep == info.vtep) {
            return Err(bad("vtep", &info.vtep, format!("host {other:?} registered it")));
        }
        g.insert(info.host.clone(), AgentEntry { info, registered: now, seen: now, usage: None, pushed: None });
        drop(g);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The registrations a store kept (`agent/<host>` → `<vtep> <url>`), as at their time;
    /// ones the topology no longer has are skipped (said). Answers how many were restored.
    pub fn restore(&self, topo: &Topology, settings: &BTreeMap<String, String>, now: Time) -> usize {
        let mut n = 0;
        for (host, v) in settings.iter().filter_map(|(k, v)| Some((k.strip_prefix("agent/")?, v))) {
            let Some((vtep, url)) = v.split_once(' ') else { continue };
            let info = HostInfo { host: host.into(), vtep: vtep.into(), agent_url: url.into(), ..Default::default() };
            match self.register(topo, info, now) {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(host, "a kept registration is not restored: {e}"),
            }
        }
        n
    }

    /// Keeps a usage report of a registered host.
    pub fn report(&self, u: Usage, now: Time) -> Result<(), RegisterError> {
        let mut g = self.lock();
        let e = g.get_mut(&u.host).ok_or_else(|| bad("host", &u.host, "not registered: register first"))?;
        e.seen = now;
        e.usage = Some(u);
        Ok(())
    }

    pub fn pushed(&self, host: &str, r: Result<usize, String>) {
        if let Some(e) = self.lock().get_mut(host) {
            e.pushed = Some(r);
        }
    }

    pub fn list(&self) -> Vec<AgentEntry> {
        self.lock().values().cloned().collect()
    }

    /// (host, tunnel endpoint, agent URL) of every registered agent.
    pub fn endpoints(&self) -> Vec<(String, String, String)> {
        self.lock().values().map(|e| (e.info.host.clone(), e.info.vtep.clone(), e.info.agent_url.clone())).collect()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        Topology::from_yaml("sites:\n  - name: a\n    hosts: [{name: h1, vm_capacity: 4}, {name: h2, vm_capacity: 4}]\n").unwrap()
    }

    fn info(host: &str, vtep: &str) -> HostInfo {
        HostInfo { host: host.into(), site: "a".into(), vtep: vtep.into(), agent_url: "http://127.0.0.1:7070".into(), ..Default::default() }
    }

    #[test]
    fn registrations_are_checked_against_the_topology() {
        let (a, t, now) = (Agents::default(), topo(), Time::ZERO);
        let rx = a.subscribe();
        a.register(&t, info("h1", "192.0.2.1"), now).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(a.register(&t, info("h9", "192.0.2.9"), now).unwrap_err().field, "host");
        assert_eq!(a.register(&t, info("h2", "192.0.2.1"), now).unwrap_err().field, "vtep", "h1 has it");
        assert_eq!(a.register(&t, info("h2", "x"), now).unwrap_err().field, "vtep");
        let mut wrong = info("h2", "192.0.2.2");
        wrong.site = "b".into();
        assert_eq!(a.register(&t, wrong, now).unwrap_err().field, "site");
        // Again after a restart, with the same endpoint: fine.
        a.register(&t, info("h1", "192.0.2.1"), now).unwrap();
        assert_eq!(a.endpoints().len(), 1);
        assert!(a.report(Usage { host: "h2".into(), ..Default::default() }, now).is_err());
        a.report(Usage { host: "h1".into(), cpu_utilisation: 0.5, ..Default::default() }, now).unwrap();
        assert_eq!(a.list()[0].usage.as_ref().unwrap().cpu_utilisation, 0.5);
        // What a store kept comes back; what the topology lacks does not.
        let kept: BTreeMap<String, String> = [
            ("agent/h1".to_string(), "192.0.2.1 http://192.0.2.1:7070".to_string()),
            ("agent/h9".to_string(), "192.0.2.9 http://192.0.2.9:7070".to_string()),
            ("mode".to_string(), "automatic".to_string()),
        ]
        .into();
        let b = Agents::default();
        assert_eq!(b.restore(&t, &kept, now), 1);
        assert_eq!(b.endpoints(), [("h1".to_string(), "192.0.2.1".to_string(), "http://192.0.2.1:7070".to_string())]);
    }
}
