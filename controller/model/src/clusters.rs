//! The virtual clusters the controller builds networks for: a number each (its addresses'
//! second octet), a VXLAN segment each, and every member VM's node number. Checked with
//! the rest of the topology; the agents derive MACs and addresses from these numbers.

use std::collections::{HashMap, HashSet};

use crate::topology::{ConfigError, SiteId, TopologyConfig, Vm};

/// A networked virtual cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNet {
    pub name: String,
    pub id: u32,
    pub vni: u32,
}

const MAX_ID: u32 = 250;
const MAX_VNI: u32 = (1 << 24) - 1;

fn invalid(field: String, value: impl ToString, why: &'static str) -> ConfigError {
    ConfigError::Invalid { field, value: value.to_string(), why }
}

/// The networked clusters of `cfg` (those with an id), after checking their numbers and
/// their members' node numbers.
pub(crate) fn check_clusters(cfg: &TopologyConfig, vms: &[Vm]) -> Result<Vec<ClusterNet>, ConfigError> {
    let mut names = HashSet::new();
    let (mut ids, mut vnis) = (HashMap::new(), HashMap::new());
    let mut out = Vec::new();
    for (i, c) in cfg.clusters.iter().enumerate() {
        if c.name.trim().is_empty() {
            return Err(invalid(format!("clusters[{i}].name"), format!("{:?}", c.name), "must not be empty"));
        }
        if !names.insert(c.name.as_str()) {
            return Err(ConfigError::Duplicate { field: format!("clusters[{i}].name"), value: c.name.clone() });
        }
        if c.id == 0 && c.vni == 0 {
            continue;
        }
        if !(1..=MAX_ID).contains(&c.id) {
            return Err(invalid(format!("clusters[{i}].id"), c.id, "from 1 to 250 (its addresses' 10.<id>.0.0/16)"));
        }
        if !(1..=MAX_VNI).contains(&c.vni) {
            return Err(invalid(format!("clusters[{i}].vni"), c.vni, "from 1 to 16777215"));
        }
        if ids.insert(c.id, i).is_some() {
            return Err(invalid(format!("clusters[{i}].id"), c.id, "another cluster has it: their address ranges would overlap"));
        }
        if vnis.insert(c.vni, i).is_some() {
            return Err(invalid(format!("clusters[{i}].vni"), c.vni, "another cluster's segment has it"));
        }
        out.push(ClusterNet { name: c.name.clone(), id: c.id, vni: c.vni });
    }
    let mut taken: HashSet<(&str, SiteId, u32)> = HashSet::new();
    for (i, v) in vms.iter().enumerate() {
        if !out.iter().any(|c| c.name == v.cluster) {
            continue;
        }
        if !(1..=254).contains(&v.node) {
            return Err(invalid(format!("vms[{i}].node"), v.node, "from 1 to 254 in a networked cluster"));
        }
        if !taken.insert((&v.cluster, v.home_site, v.node)) {
            return Err(invalid(format!("vms[{i}].node"), v.node, "another VM of its cluster built on its site has it"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::topology::{ConfigError, Topology};

    const BASE: &str = "sites:\n  - name: a\n    hosts: [{name: h1, vm_capacity: 4}]\n  - name: b\n    hosts: [{name: h2, vm_capacity: 4}]\nlinks:\n  - {between: [a, b], bandwidth_mbit: 100, latency_ms: 10}\n";

    fn topo(rest: &str) -> Result<Topology, ConfigError> {
        Topology::from_yaml(&format!("{BASE}{rest}"))
    }

    #[test]
    fn networked_clusters_and_their_nodes() {
        let t = topo("clusters: [{name: red, id: 1, vni: 101}, {name: plain}]\nvms:\n  - {name: r1, host: h1, memory_mib: 64, cluster: red, node: 1}\n  - {name: r2, host: h2, memory_mib: 64, cluster: red, node: 1}\n  - {name: p, host: h2, memory_mib: 64, cluster: plain}\n").unwrap();
        assert_eq!(t.clusters.len(), 1);
        assert_eq!((t.vms[1].node, t.vms[1].home_site), (1, 1), "node 1 twice is fine on two sites");
    }

    #[test]
    fn bad_numbers_name_the_field() {
        let field = |r: Result<Topology, ConfigError>| match r.unwrap_err() {
            ConfigError::Invalid { field, .. } | ConfigError::Duplicate { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(field(topo("clusters: [{name: red, id: 251, vni: 1}]\n")), "clusters[0].id");
        assert_eq!(field(topo("clusters: [{name: red, id: 1, vni: 0}]\n")), "clusters[0].vni");
        assert_eq!(field(topo("clusters: [{name: red, id: 1, vni: 5}, {name: blue, id: 1, vni: 6}]\n")), "clusters[1].id");
        assert_eq!(field(topo("clusters: [{name: red, id: 1, vni: 5}, {name: blue, id: 2, vni: 5}]\n")), "clusters[1].vni");
        assert_eq!(field(topo("clusters: [{name: red}, {name: red}]\n")), "clusters[1].name");
        assert_eq!(
            field(topo("clusters: [{name: red, id: 1, vni: 5}]\nvms:\n  - {name: r1, host: h1, memory_mib: 64, cluster: red}\n")),
            "vms[0].node"
        );
        assert_eq!(
            field(topo("clusters: [{name: red, id: 1, vni: 5}]\nvms:\n  - {name: r1, host: h1, memory_mib: 64, cluster: red, node: 3}\n  - {name: r2, host: h1, memory_mib: 64, cluster: red, node: 3}\n")),
            "vms[1].node"
        );
    }
}
