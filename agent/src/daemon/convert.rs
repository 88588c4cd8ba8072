//! The contract's messages to the agent's own types, refusing what does not fit with the
//! field and the value.

use straddle_proto::{FabricSpec, VmSpec};

use crate::net::addressing::NodeId;
use crate::net::fabric::{Cluster, Fabric, FabricError, Host, Member};
use crate::vm::domain::{NodeVm, SpecError};

fn bad(field: String, value: impl ToString, why: &str) -> FabricError {
    FabricError { field, value: value.to_string(), why: why.into() }
}

/// A fabric from the controller, checked whole.
pub fn fabric(spec: &FabricSpec) -> Result<Fabric, FabricError> {
    let clusters = spec
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = u8::try_from(c.id).map_err(|_| bad(format!("clusters[{i}].id"), c.id, "from 1 to 250"))?;
            Ok(Cluster { name: c.name.clone(), id, vni: c.vni, hosts: c.hosts.clone() })
        })
        .collect::<Result<_, FabricError>>()?;
    let hosts = spec
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let vtep = h.vtep.parse().map_err(|_| bad(format!("hosts[{i}].vtep"), format!("{:?}", h.vtep), "not an IPv4 address"))?;
            Ok(Host { name: h.name.clone(), vtep })
        })
        .collect::<Result<_, FabricError>>()?;
    let members = spec
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let c = spec
                .clusters
                .iter()
                .find(|c| c.name == m.cluster)
                .ok_or_else(|| bad(format!("members[{i}].cluster"), format!("{:?}", m.cluster), "no such cluster"))?;
            let id = NodeId::new(c.id, m.home_site, m.node).map_err(|e| bad(format!("members[{i}].{}", e.field), e.value, e.why))?;
            Ok(Member { cluster: m.cluster.clone(), mac: id.mac().to_string(), host: m.host.clone() })
        })
        .collect::<Result<_, FabricError>>()?;
    let f = Fabric { clusters, hosts, members, underlay_mtu: if spec.underlay_mtu == 0 { 1500 } else { spec.underlay_mtu } };
    f.check()?;
    Ok(f)
}

/// A VM spec, checked.
pub fn node_vm(s: &VmSpec) -> Result<NodeVm, SpecError> {
    NodeVm::new(&s.name, &s.cluster, s.cluster_id, s.vni, s.home_site, s.node, s.memory_mib, s.vcpus, &s.kernel, &s.initrd, &s.cmdline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use straddle_proto::{ClusterNet, HostVtep, MemberAt};

    fn spec() -> FabricSpec {
        FabricSpec {
            clusters: vec![ClusterNet { name: "red".into(), id: 1, vni: 101, hosts: vec![] }],
            hosts: vec![HostVtep { name: "h1".into(), vtep: "192.0.2.1".into() }],
            members: vec![MemberAt { cluster: "red".into(), home_site: 0, node: 1, host: "h1".into() }],
            underlay_mtu: 0,
        }
    }

    #[test]
    fn a_good_fabric_converts_and_bad_fields_are_named() {
        let f = fabric(&spec()).unwrap();
        assert_eq!((f.underlay_mtu, f.clusters[0].id, f.members[0].mac.as_str()), (1500, 1, "02:53:00:01:00:01"));
        let mut s = spec();
        s.members[0].node = 0;
        assert_eq!(fabric(&s).unwrap_err().field, "members[0].node");
        let mut s = spec();
        s.clusters[0].id = 300;
        assert_eq!(fabric(&s).unwrap_err().field, "clusters[0].id");
        let mut s = spec();
        s.hosts[0].vtep = "nowhere".into();
        assert_eq!(fabric(&s).unwrap_err().field, "hosts[0].vtep");
        let mut s = spec();
        s.members[0].cluster = "blue".into();
        assert!(fabric(&s).unwrap_err().to_string().contains("blue"));
    }
}
