//! The world the planner reasons about: sites joined by WAN links (a petgraph graph),
//! hosts with VM capacity, VMs (memory, dirty rate, host), virtual clusters and jobs
//! (rank → VM). Loaded from a documented YAML file (see `docs/topology.md`).

use std::collections::HashMap;

use petgraph::algo::dijkstra;
use petgraph::graph::{NodeIndex, UnGraph};
use serde::{Deserialize, Serialize};

use crate::clusters::check_clusters;
pub use crate::clusters::ClusterNet;

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
    /// libvirt URI of the host's daemon, as the controller reaches it (the libvirt
    /// hypervisor backend uses it).
    #[serde(default)]
    pub libvirt_uri: String,
    /// The same daemon as another host's daemon reaches it, for peer-to-peer migration
    /// (e.g. `qemu+tcp://10.0.1.2/system`); default: `libvirt_uri`.
    #[serde(default)]
    pub peer_uri: String,
    /// The address migration data is sent to on this host (QEMU's listening side), e.g.
    /// `10.0.1.2` or `10.0.1.2:49152`; default: the host of `peer_uri`.
    #[serde(default)]
    pub migration_address: String,
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
    /// Its node number in a networked cluster (1..=254, unique per cluster and home site):
    /// with the cluster's id and its home site (its first host's site) it makes the VM's
    /// MAC, address and hostname.
    #[serde(default)]
    pub node: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// The cluster's number in its addresses (1..=250; 0: the controller builds no network
    /// for it).
    #[serde(default)]
    pub id: u32,
    /// Its VXLAN segment's identifier (1..=16777215, one per cluster).
    #[serde(default)]
    pub vni: u32,
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
    #[error("links: no path joins sites {a:?} and {b:?} (every site must be reachable)")]
    Disconnected { a: String, b: String },
}

/// Longest name of a site, host or VM.
pub const MAX_NAME_LEN: usize = 128;
/// A link's bandwidth, from 1 kbit/s to 10 Tbit/s: outside, the model's rates and times
/// stop being numbers (a denormal bandwidth makes every transfer take forever).
pub const MIN_BANDWIDTH_MBIT: f64 = 0.001;
pub const MAX_BANDWIDTH_MBIT: f64 = 1e7;
/// A link's one-way latency, up to a minute.
pub const MAX_LATENCY_MS: f64 = 60_000.0;

fn invalid(field: &str, value: &str, why: &'static str) -> ConfigError {
    ConfigError::Invalid { field: field.to_string(), value: value.to_string(), why }
}

/// Names are non-empty, short, and printable without quoting surprises.
fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return Err(invalid(field, &format!("{name:?}"), "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(field, &format!("{}...", &name[..name.floor_char_boundary(32)]), "longer than 128 bytes"));
    }
    if name.chars().any(|c| c.is_control() || c == ',') {
        return Err(invalid(field, &format!("{name:?}"), "no control characters or commas"));
    }
    Ok(())
}

/// `scheme:` then the rest, as libvirt URIs are (`qemu:///system`, `qemu+tcp://h/system`).
/// The host part of a URI such as `qemu+tcp://10.0.1.2/system` (empty for a local one).
fn uri_host(uri: &str) -> String {
    let Some((_, rest)) = uri.split_once("://") else { return String::new() };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    // No port: QEMU's migration port is not libvirt's.
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_string(),
        None => host.split(':').next().unwrap_or("").to_string(),
    }
}

fn looks_like_uri(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
                && !rest.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
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
    /// How other hosts' daemons reach this one (`libvirt_uri` unless set).
    pub peer_uri: String,
    /// Where migration data to this host goes (empty: libvirt's choice).
    pub migration_address: String,
}

#[derive(Debug, Clone)]
pub struct Vm {
    pub name: String,
    pub host: HostId,
    pub memory_bytes: f64,
    pub dirty_bps: f64,
    pub cluster: String,
    /// Its node number in its networked cluster (0: not networked).
    pub node: u32,
    /// The site of its first host: where its addresses say it was built.
    pub home_site: SiteId,
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
    /// The virtual clusters the controller builds networks for.
    pub clusters: Vec<ClusterNet>,
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
            return Err(invalid("sites", "[]", "at least one site"));
        }
        for (si, s) in cfg.sites.iter().enumerate() {
            check_name(&format!("sites[{si}].name"), &s.name)?;
            if site_index.insert(s.name.clone(), si).is_some() {
                return Err(ConfigError::Duplicate { field: format!("sites[{si}].name"), value: s.name.clone() });
            }
            if s.max_concurrent_migrations == 0 {
                return Err(invalid(&format!("sites[{si}].max_concurrent_migrations"), "0", "at least one migration at a time"));
            }
            if s.hosts.is_empty() {
                return Err(invalid(&format!("sites[{si}].hosts"), "[]", "a site needs at least one host"));
            }
            let node = graph.add_node(si);
            let mut ids = Vec::new();
            for (hi, h) in s.hosts.iter().enumerate() {
                let field = format!("sites[{si}].hosts[{hi}]");
                check_name(&format!("{field}.name"), &h.name)?;
                let id = hosts.len();
                if host_index.insert(h.name.clone(), id).is_some() {
                    return Err(ConfigError::Duplicate { field: format!("{field}.name"), value: h.name.clone() });
                }
                if !(h.memory_gib.is_finite() && h.memory_gib >= 0.0) {
                    return Err(invalid(&format!("{field}.memory_gib"), &h.memory_gib.to_string(), "a finite, non-negative size"));
                }
                if !h.libvirt_uri.is_empty() && !looks_like_uri(&h.libvirt_uri) {
                    return Err(invalid(&format!("{field}.libvirt_uri"), &h.libvirt_uri, "a libvirt URI such as qemu:///system"));
                }
                if !h.peer_uri.is_empty() && !looks_like_uri(&h.peer_uri) {
                    return Err(invalid(&format!("{field}.peer_uri"), &h.peer_uri, "a libvirt URI such as qemu+tcp://10.0.1.2/system"));
                }
                if h.migration_address.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
                    return Err(invalid(&format!("{field}.migration_address"), &h.migration_address, "an address, or address:port"));
                }
                let peer_uri = if h.peer_uri.is_empty() { h.libvirt_uri.clone() } else { h.peer_uri.clone() };
                let migration_address = if h.migration_address.is_empty() { uri_host(&peer_uri) } else { h.migration_address.clone() };
                hosts.push(Host {
                    name: h.name.clone(),
                    site: si,
                    vm_capacity: h.vm_capacity,
                    libvirt_uri: h.libvirt_uri.clone(),
                    peer_uri,
                    migration_address,
                });
                ids.push(id);
            }
            sites.push(Site { name: s.name.clone(), hosts: ids, max_concurrent_migrations: s.max_concurrent_migrations, node });
        }
        let mut joined = std::collections::HashSet::new();
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
                return Err(invalid(&format!("links[{li}].between"), &l.between[0], "a link joins two different sites"));
            }
            if !joined.insert((a.min(b), a.max(b))) {
                return Err(ConfigError::Duplicate {
                    field: format!("links[{li}].between"),
                    value: format!("{} - {}", l.between[0], l.between[1]),
                });
            }
            if !(MIN_BANDWIDTH_MBIT..=MAX_BANDWIDTH_MBIT).contains(&l.bandwidth_mbit) {
                return Err(invalid(
                    &format!("links[{li}].bandwidth_mbit"),
                    &l.bandwidth_mbit.to_string(),
                    "must be from 0.001 to 10,000,000 Mbit/s",
                ));
            }
            if !(0.0..=MAX_LATENCY_MS).contains(&l.latency_ms) {
                return Err(invalid(&format!("links[{li}].latency_ms"), &l.latency_ms.to_string(), "must be from 0 to 60,000 ms"));
            }
            if l.max_concurrent_migrations == 0 {
                return Err(invalid(&format!("links[{li}].max_concurrent_migrations"), "0", "at least one migration at a time"));
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
            check_name(&format!("vms[{vi}].name"), &v.name)?;
            let host = *host_index.get(&v.host).ok_or_else(|| ConfigError::Unknown {
                field: format!("vms[{vi}].host"),
                what: "host",
                value: v.host.clone(),
            })?;
            if vm_index.insert(v.name.clone(), vi).is_some() {
                return Err(ConfigError::Duplicate { field: format!("vms[{vi}].name"), value: v.name.clone() });
            }
            if !(v.memory_mib.is_finite() && v.memory_mib > 0.0) {
                return Err(invalid(&format!("vms[{vi}].memory_mib"), &v.memory_mib.to_string(), "must be positive and finite"));
            }
            if !(v.dirty_mib_per_s.is_finite() && v.dirty_mib_per_s >= 0.0) {
                return Err(invalid(
                    &format!("vms[{vi}].dirty_mib_per_s"),
                    &v.dirty_mib_per_s.to_string(),
                    "must be finite and not negative",
                ));
            }
            load[host] += 1;
            vms.push(Vm {
                name: v.name.clone(),
                host,
                memory_bytes: v.memory_mib * 1048576.0,
                dirty_bps: v.dirty_mib_per_s * 1048576.0,
                cluster: v.cluster.clone(),
                node: v.node,
                home_site: hosts[host].site,
            });
        }
        let clusters = check_clusters(cfg, &vms)?;
        for (h, &n) in load.iter().enumerate() {
            if n > hosts[h].vm_capacity {
                return Err(ConfigError::OverCapacity { host: hosts[h].name.clone(), vms: n, capacity: hosts[h].vm_capacity });
            }
        }
        let mut t = Topology { sites, hosts, vms, clusters, graph, paths: vec![], vm_index, host_index, site_index };
        t.paths = t.compute_paths();
        if let Some(b) = (1..t.sites.len()).find(|&b| t.paths[0][b].is_none()) {
            return Err(ConfigError::Disconnected { a: t.sites[0].name.clone(), b: t.sites[b].name.clone() });
        }
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

    /// Every value an outsider could get wrong is refused at load, naming the field: a
    /// zero migration limit once hung the planner, NaN and infinities poisoned predictions.
    #[test]
    fn values_that_would_break_the_planner_are_refused() {
        let cases: [(&str, &str, &str); 16] = [
            ("latency_ms: 5}", "latency_ms: 5, max_concurrent_migrations: 0}", "links[0].max_concurrent_migrations: 0"),
            ("  - name: C\n", "  - name: C\n    max_concurrent_migrations: 0\n", "sites[2].max_concurrent_migrations: 0"),
            ("latency_ms: 5}", "latency_ms: .inf}", "links[0].latency_ms: inf"),
            ("latency_ms: 5}", "latency_ms: .nan}", "links[0].latency_ms: NaN"),
            ("bandwidth_mbit: 1000", "bandwidth_mbit: .inf", "links[0].bandwidth_mbit: inf"),
            ("bandwidth_mbit: 1000", "bandwidth_mbit: 1e-300", "links[0].bandwidth_mbit: 0.000"),
            ("latency_ms: 5}", "latency_ms: 1e300}", "links[0].latency_ms: 1000"),
            ("memory_mib: 512}", "memory_mib: .inf}", "vms[1].memory_mib: inf"),
            ("dirty_mib_per_s: 10}", "dirty_mib_per_s: -3}", "vms[0].dirty_mib_per_s: -3"),
            ("dirty_mib_per_s: 10}", "dirty_mib_per_s: .nan}", "vms[0].dirty_mib_per_s: NaN"),
            (
                "{between: [B, C], bandwidth_mbit: 100, latency_ms: 10}",
                "{between: [B, A], bandwidth_mbit: 100, latency_ms: 10}",
                "links[1].between: \"B - A\" is defined twice",
            ),
            ("name: B", "name: \"\"", "sites[1].name: \"\" is not allowed (must not be empty)"),
            ("name: v2", "name: \" \"", "vms[1].name"),
            ("  - {between: [B, C], bandwidth_mbit: 100, latency_ms: 10}\n", "", "no path joins sites \"A\" and \"C\""),
            ("{name: c1, vm_capacity: 2}", "{name: c1, vm_capacity: 2, libvirt_uri: \"not a uri\"}", "sites[2].hosts[0].libvirt_uri"),
            ("hosts: [{name: c1, vm_capacity: 2}]", "hosts: []", "sites[2].hosts: [] is not allowed"),
        ];
        for (from, to, want) in cases {
            let y = YAML.replace(from, to);
            assert_ne!(y, YAML, "case {want}: the replacement must apply");
            let e = Topology::from_yaml(&y).expect_err(want).to_string();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
        let long = "x".repeat(200);
        let e = Topology::from_yaml(&YAML.replace("name: v2", &format!("name: {long}"))).unwrap_err().to_string();
        assert!(e.starts_with("vms[1].name") && e.len() < 120, "{e}");
        let ok =
            YAML.replace("{name: c1, vm_capacity: 2}", "{name: c1, vm_capacity: 2, libvirt_uri: \"qemu+unix:///system?socket=/run/s\"}");
        assert!(Topology::from_yaml(&ok).is_ok());
    }
}
