//! The world the planner reasons about: sites joined by WAN links (a petgraph graph),
//! hosts with VM capacity, VMs (memory, dirty rate, host), virtual clusters and jobs
//! (rank → VM). Loaded from a documented YAML file (see `docs/topology.md`).

use std::collections::HashMap;

use petgraph::algo::dijkstra;
use petgraph::graph::{NodeIndex, UnGraph};
use serde::{Deserialize, Serialize};

pub type SiteId = usize;
pub type HostId = usize;
pub type VmId = usize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyConfig {
    pub sites: Vec<SiteConfig>,
    #[serde(default)]
    pub links: Vec<LinkConfig>,
    #[serde(default)]
    pub vms: Vec<VmConfig>,
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub name: String,
    pub hosts: Vec<HostConfig>,
    /// Most migrations into or out of this site at once.
    #[serde(default = "default_site_migrations")]
    pub max_concurrent_migrations: u32,
}

fn default_site_migrations() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub name: String,
    pub vm_capacity: u32,
    #[serde(default)]
    pub memory_gib: f64,
    /// libvirt URI of the host's daemon (the libvirt hypervisor backend uses it).
    #[serde(default)]
    pub libvirt_uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub between: [String; 2],
    pub bandwidth_mbit: f64,
    pub latency_ms: f64,
    /// Most migrations crossing this link at once.
    #[serde(default = "default_link_migrations")]
    pub max_concurrent_migrations: u32,
}

fn default_link_migrations() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    pub name: String,
    pub host: String,
    pub memory_mib: f64,
    /// Bytes per second the guest dirties while running (pre-copy model input).
    #[serde(default)]
    pub dirty_mib_per_s: f64,
    #[serde(default)]
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
}

/// A refused configuration: the field and the value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot parse the topology: {0}")]
    Parse(String),
    #[error("{field}: {value:?} is defined twice")]
    Duplicate { field: String, value: String },
    #[error("{field}: unknown {what} {value:?}")]
    Unknown { field: String, what: &'static str, value: String },
    #[error("{field}: {value} is not allowed ({why})")]
    Invalid { field: String, value: String, why: &'static str },
    #[error("host {host} holds {vms} VMs but has capacity {capacity}")]
    OverCapacity { host: String, vms: u32, capacity: u32 },
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub hosts: Vec<HostId>,
    pub max_concurrent_migrations: u32,
    node: NodeIndex,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub bandwidth_bps: f64,
    pub latency_s: f64,
    pub max_concurrent_migrations: u32,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub site: SiteId,
    pub vm_capacity: u32,
    pub libvirt_uri: String,
}

#[derive(Debug, Clone)]
pub struct Vm {
    pub name: String,
    pub host: HostId,
    pub memory_bytes: f64,
    pub dirty_bps: f64,
    pub cluster: String,
}

/// The path between two sites: the bottleneck bandwidth and the summed latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathInfo {
    pub bandwidth_bps: f64,
    pub latency_s: f64,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub sites: Vec<Site>,
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
    graph: UnGraph<SiteId, Link>,
    /// paths[a][b], precomputed (latency-shortest, bottleneck bandwidth along it).
    paths: Vec<Vec<Option<PathInfo>>>,
    vm_index: HashMap<String, VmId>,
    host_index: HashMap<String, HostId>,
    site_index: HashMap<String, SiteId>,
}

impl Topology {
    pub fn from_yaml(text: &str) -> Result<Topology, ConfigError> {
        let cfg: TopologyConfig = serde_norway::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Topology::from_config(&cfg)
    }

    pub fn from_config(cfg: &TopologyConfig) -> Result<Topology, ConfigError> {
        let mut graph = UnGraph::new_undirected();
        let mut sites = Vec::new();
        let mut hosts = Vec::new();
        let mut site_index = HashMap::new();
        let mut host_index = HashMap::new();
        if cfg.sites.is_empty() {
            return Err(ConfigError::Invalid { field: "sites".into(), value: "[]".into(), why: "at least one site" });
        }
        for (si, s) in cfg.sites.iter().enumerate() {
            if site_index.insert(s.name.clone(), si).is_some() {
                return Err(ConfigError::Duplicate { field: format!("sites[{si}].name"), value: s.name.clone() });
            }
            let node = graph.add_node(si);
            let mut ids = Vec::new();
            for (hi, h) in s.hosts.iter().enumerate() {
                let id = hosts.len();
                if host_index.insert(h.name.clone(), id).is_some() {
                    return Err(ConfigError::Duplicate { field: format!("sites[{si}].hosts[{hi}].name"), value: h.name.clone() });
                }
                hosts.push(Host { name: h.name.clone(), site: si, vm_capacity: h.vm_capacity, libvirt_uri: h.libvirt_uri.clone() });
                ids.push(id);
            }
            sites.push(Site { name: s.name.clone(), hosts: ids, max_concurrent_migrations: s.max_concurrent_migrations, node });
        }
        for (li, l) in cfg.links.iter().enumerate() {
            let end = |k: usize| {
                site_index.get(&l.between[k]).copied().ok_or_else(|| ConfigError::Unknown {
                    field: format!("links[{li}].between[{k}]"),
                    what: "site",
                    value: l.between[k].clone(),
                })
            };
            let (a, b) = (end(0)?, end(1)?);
            if a == b {
                return Err(ConfigError::Invalid {
                    field: format!("links[{li}].between"),
                    value: l.between[0].clone(),
                    why: "a link joins two different sites",
                });
            }
            if !(l.bandwidth_mbit > 0.0) {
                return Err(ConfigError::Invalid {
                    field: format!("links[{li}].bandwidth_mbit"),
                    value: l.bandwidth_mbit.to_string(),
                    why: "must be positive",
                });
            }
            if !(l.latency_ms >= 0.0) {
                return Err(ConfigError::Invalid {
                    field: format!("links[{li}].latency_ms"),
                    value: l.latency_ms.to_string(),
                    why: "must not be negative",
                });
            }
            graph.add_edge(
                sites[a].node,
                sites[b].node,
                Link {
                    bandwidth_bps: l.bandwidth_mbit * 1e6 / 8.0,
                    latency_s: l.latency_ms / 1e3,
                    max_concurrent_migrations: l.max_concurrent_migrations,
                },
            );
        }
        let mut vms = Vec::new();
        let mut vm_index = HashMap::new();
        let mut load = vec![0u32; hosts.len()];
        for (vi, v) in cfg.vms.iter().enumerate() {
            let host = *host_index.get(&v.host).ok_or_else(|| ConfigError::Unknown {
                field: format!("vms[{vi}].host"),
                what: "host",
                value: v.host.clone(),
            })?;
            if vm_index.insert(v.name.clone(), vi).is_some() {
                return Err(ConfigError::Duplicate { field: format!("vms[{vi}].name"), value: v.name.clone() });
            }
            if !(v.memory_mib > 0.0) {
                return Err(ConfigError::Invalid {
                    field: format!("vms[{vi}].memory_mib"),
                    value: v.memory_mib.to_string(),
                    why: "must be positive",
                });
            }
            load[host] += 1;
            vms.push(Vm {
                name: v.name.clone(),
                host,
                memory_bytes: v.memory_mib * 1048576.0,
                dirty_bps: v.dirty_mib_per_s * 1048576.0,
                cluster: v.cluster.clone(),
            });
        }
        for (h, &n) in load.iter().enumerate() {
            if n > hosts[h].vm_capacity {
                return Err(ConfigError::OverCapacity { host: hosts[h].name.clone(), vms: n, capacity: hosts[h].vm_capacity });
            }
        }
        let mut t = Topology { sites, hosts, vms, graph, paths: vec![], vm_index, host_index, site_index };
        t.paths = t.compute_paths();
        Ok(t)
    }

    fn compute_paths(&self) -> Vec<Vec<Option<PathInfo>>> {
        let n = self.sites.len();
        (0..n)
            .map(|a| {
                let lat: HashMap<NodeIndex, f64> =
                    dijkstra(&self.graph, self.sites[a].node, None, |e| e.weight().latency_s).into_iter().collect();
                (0..n)
                    .map(|b| {
                        if a == b {
                            return Some(PathInfo { bandwidth_bps: f64::INFINITY, latency_s: 0.0 });
                        }
                        let l = *lat.get(&self.sites[b].node)?;
                        Some(PathInfo { bandwidth_bps: self.bottleneck(a, b, &lat), latency_s: l })
                    })
                    .collect()
            })
            .collect()
    }

    /// Bottleneck bandwidth along the latency-shortest path from `a` to `b`.
    fn bottleneck(&self, a: SiteId, b: SiteId, lat: &HashMap<NodeIndex, f64>) -> f64 {
        let mut bw = f64::INFINITY;
        let mut at = self.sites[b].node;
        let start = self.sites[a].node;
        while at != start {
            // The predecessor on a shortest path: a neighbour whose distance plus the edge is ours.
            let here = lat[&at];
            let mut next = None;
            for e in self.graph.edges(at) {
                let other = if e.source() == at { e.target() } else { e.source() };
                if let Some(&d) = lat.get(&other) {
                    if (d + e.weight().latency_s - here).abs() < 1e-12 && d < here + 1e-12 && other != at {
                        next = Some((other, e.weight().bandwidth_bps));
                        break;
                    }
                }
            }
            match next {
                Some((o, b)) => {
                    bw = bw.min(b);
                    at = o;
                }
                None => break,
            }
        }
        bw
    }

    pub fn path(&self, a: SiteId, b: SiteId) -> Option<PathInfo> {
        self.paths[a][b]
    }

    /// The direct link between two sites, if any.
    pub fn link(&self, a: SiteId, b: SiteId) -> Option<Link> {
        self.graph.find_edge(self.sites[a].node, self.sites[b].node).map(|e| self.graph[e])
    }

    pub fn site_of_host(&self, h: HostId) -> SiteId {
        self.hosts[h].site
    }

    pub fn site_of_vm(&self, v: VmId) -> SiteId {
        self.hosts[self.vms[v].host].site
    }

    pub fn vm(&self, name: &str) -> Option<VmId> {
        self.vm_index.get(name).copied()
    }

    pub fn host(&self, name: &str) -> Option<HostId> {
        self.host_index.get(name).copied()
    }

    pub fn site(&self, name: &str) -> Option<SiteId> {
        self.site_index.get(name).copied()
    }

    /// Free VM slots per site given a VM → host assignment.
    pub fn free_slots(&self, vm_host: &[HostId]) -> Vec<i64> {
        let mut free: Vec<i64> = vec![0; self.sites.len()];
        for h in &self.hosts {
            free[h.site] += h.vm_capacity as i64;
        }
        for &h in vm_host {
            free[self.hosts[h].site] -= 1;
        }
        free
    }
}

use petgraph::visit::EdgeRef;

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
sites:
  - name: A
    hosts: [{name: a1, vm_capacity: 4}, {name: a2, vm_capacity: 4}]
  - name: B
    hosts: [{name: b1, vm_capacity: 2}]
  - name: C
    hosts: [{name: c1, vm_capacity: 2}]
links:
  - {between: [A, B], bandwidth_mbit: 1000, latency_ms: 5}
  - {between: [B, C], bandwidth_mbit: 100, latency_ms: 10}
vms:
  - {name: v1, host: a1, memory_mib: 1024, dirty_mib_per_s: 10}
  - {name: v2, host: b1, memory_mib: 512}
"#;

    #[test]
    fn loads_and_routes_through_the_graph() {
        let t = Topology::from_yaml(YAML).unwrap();
        assert_eq!(t.sites.len(), 3);
        assert_eq!(t.site_of_vm(t.vm("v2").unwrap()), t.site("B").unwrap());
        let ac = t.path(0, 2).unwrap();
        assert!((ac.latency_s - 0.015).abs() < 1e-9);
        assert_eq!(ac.bandwidth_bps, 100e6 / 8.0);
        assert!(t.link(0, 2).is_none());
        assert_eq!(t.free_slots(&[0, 2]), vec![7, 1, 2]);
    }

    #[test]
    fn bad_files_name_the_field() {
        let e = Topology::from_yaml(&YAML.replace("host: b1", "host: zz")).unwrap_err();
        assert_eq!(e.to_string(), "vms[1].host: unknown host \"zz\"");
        let e = Topology::from_yaml(&YAML.replace("[A, B]", "[A, Q]")).unwrap_err();
        assert_eq!(e.to_string(), "links[0].between[1]: unknown site \"Q\"");
        let e = Topology::from_yaml(&YAML.replace("bandwidth_mbit: 100,", "bandwidth_mbit: 0,")).unwrap_err();
        assert!(e.to_string().starts_with("links[1].bandwidth_mbit: 0"), "{e}");
        let e = Topology::from_yaml(&YAML.replace("name: b1, vm_capacity: 2", "name: b1, vm_capacity: 0")).unwrap_err();
        assert_eq!(e, ConfigError::OverCapacity { host: "b1".into(), vms: 1, capacity: 0 });
        let e = Topology::from_yaml("sites: [{name: A, hosts: []}]\nbogus: 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Topology::from_yaml(&YAML.replace("name: a2", "name: a1")).unwrap_err();
        assert_eq!(e.to_string(), "sites[0].hosts[1].name: \"a1\" is defined twice");
    }
}
