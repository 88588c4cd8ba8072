//! The fabric the agents build, from what the controller knows (pure): the networked
//! clusters, the registered hosts' tunnel endpoints, each member VM where the placement
//! says it runs (the forwarding entries follow it, as l2population does), and the hosts a
//! migration is about to bring a cluster to (their segment is built before the VM comes).
//! A VM that runs nowhere (not built yet, or removed) is no member: a cluster without
//! members leaves no segment behind.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use straddle_model::topology::{HostId, Topology, VmId};
use straddle_proto::{ClusterNet, FabricSpec, HostVtep, MemberAt};

/// `vteps`: registered host → its tunnel endpoint; `staged`: VMs on their way to a host;
/// `absent`: VMs no host runs.
pub fn fabric(
    topo: &Topology,
    vm_host: &[HostId],
    vteps: &BTreeMap<String, String>,
    staged: &[(VmId, HostId)],
    absent: &HashSet<VmId>,
) -> FabricSpec {
    let registered = |h: HostId| vteps.contains_key(&topo.hosts[h].name);
    let clusters = topo
        .clusters
        .iter()
        .map(|c| {
            let hosts: BTreeSet<String> = staged
                .iter()
                .filter(|(v, h)| topo.vms[*v].cluster == c.name && registered(*h))
                .map(|(_, h)| topo.hosts[*h].name.clone())
                .collect();
            ClusterNet { name: c.name.clone(), id: c.id, vni: c.vni, hosts: hosts.into_iter().collect() }
        })
        .collect();
    let members = topo
        .vms
        .iter()
        .enumerate()
        .filter(|(v, vm)| {
            vm.node > 0 && !absent.contains(v) && topo.clusters.iter().any(|c| c.name == vm.cluster) && registered(vm_host[*v])
        })
        .map(|(v, vm)| MemberAt {
            cluster: vm.cluster.clone(),
            home_site: u32::try_from(vm.home_site).unwrap_or(u32::MAX),
            node: vm.node,
            host: topo.hosts[vm_host[v]].name.clone(),
        })
        .collect();
    FabricSpec {
        clusters,
        hosts: vteps.iter().map(|(name, vtep)| HostVtep { name: name.clone(), vtep: vtep.clone() }).collect(),
        members,
        underlay_mtu: 0,
    }
}

/// Whether `vm` belongs to a cluster the controller builds a network for.
pub fn networked(topo: &Topology, vm: VmId) -> bool {
    let v = &topo.vms[vm];
    v.node > 0 && topo.clusters.iter().any(|c| c.name == v.cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        Topology::from_yaml(
            "sites:\n  - name: a\n    hosts: [{name: h1, vm_capacity: 4}]\n  - name: b\n    hosts: [{name: h2, vm_capacity: 4}, {name: h3, vm_capacity: 4}]\n\
             links:\n  - {between: [a, b], bandwidth_mbit: 100, latency_ms: 10}\n\
             clusters: [{name: red, id: 1, vni: 101}, {name: plain}]\n\
             vms:\n  - {name: r1, host: h1, memory_mib: 64, cluster: red, node: 1}\n  - {name: r2, host: h2, memory_mib: 64, cluster: red, node: 1}\n  - {name: p, host: h2, memory_mib: 64, cluster: plain}\n",
        )
        .unwrap()
    }

    #[test]
    fn members_follow_the_placement_and_staging_adds_the_destination() {
        let t = topo();
        let vteps: BTreeMap<String, String> =
            [("h1", "192.0.2.1"), ("h2", "192.0.2.2"), ("h3", "192.0.2.3")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let none = HashSet::new();
        let f = fabric(&t, &[0, 1, 1], &vteps, &[], &none);
        assert_eq!(f.clusters.len(), 1, "only networked clusters");
        let at: Vec<(&str, u32, &str)> = f.members.iter().map(|m| (m.cluster.as_str(), m.home_site, m.host.as_str())).collect();
        assert_eq!(at, [("red", 0, "h1"), ("red", 1, "h2")]);
        // r2 on its way to h3: h3 carries red before it arrives; once moved, its entry says h3.
        let f = fabric(&t, &[0, 1, 1], &vteps, &[(1, 2)], &none);
        assert_eq!(f.clusters[0].hosts, ["h3"]);
        let f = fabric(&t, &[0, 2, 1], &vteps, &[], &none);
        assert_eq!(f.members[1].host, "h3");
        assert_eq!(f.members[1].home_site, 1, "its home stays its home");
        // A host without an agent carries nothing.
        let only_h1: BTreeMap<String, String> = [("h1".to_string(), "192.0.2.1".to_string())].into();
        let f = fabric(&t, &[0, 1, 1], &only_h1, &[(1, 2)], &none);
        assert_eq!((f.members.len(), f.clusters[0].hosts.len()), (1, 0));
        assert!(networked(&t, 0) && !networked(&t, 2));
        // r1 and r2 removed: no member, no segment anywhere.
        let f = fabric(&t, &[0, 1, 1], &vteps, &[], &[0, 1].into());
        assert!(f.members.is_empty() && f.clusters[0].hosts.is_empty());
    }
}
