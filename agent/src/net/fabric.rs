//! The fabric: which virtual clusters exist (each a VXLAN segment with its own VNI), which
//! hosts carry each segment, and where each cluster member (a VM, by its MAC) runs. It is
//! what the controller knows; each agent derives its own host's share from it (`desired`).
//! Checked whole before anything is built: a bad fabric builds nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::Deserialize;

use super::addressing::{Mac, MAX_CLUSTER};

/// VXLAN's own UDP port (IANA), set explicitly on every device: Linux's default is 8472.
pub const VXLAN_PORT: u16 = 4789;
/// Bytes VXLAN over IPv4 adds to a frame: outer IPv4 (20), UDP (8), VXLAN (8) and the
/// inner Ethernet header (14) carried as payload.
pub const VXLAN_OVERHEAD: u32 = 50;
/// Largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    /// The cluster's number in its addresses (`10.<id>.0.0/16`, MACs `02:53:00:<id>:…`).
    pub id: u8,
    pub vni: u32,
    /// Hosts that carry the segment even without a member yet (a migration's destination
    /// gets the segment before the VM arrives).
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub name: String,
    /// The host's address on the underlay: the VXLAN tunnel endpoint.
    pub vtep: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub cluster: String,
    pub mac: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    #[serde(default)]
    pub members: Vec<Member>,
    /// MTU of the underlay between VTEPs; the segments get this less VXLAN's overhead.
    #[serde(default = "default_mtu")]
    pub underlay_mtu: u32,
}

fn default_mtu() -> u32 {
    1500
}

/// What is wrong with a fabric, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value}: {why}")]
pub struct FabricError {
    pub field: String,
    pub value: String,
    pub why: String,
}

fn bad(field: impl Into<String>, value: impl ToString, why: impl Into<String>) -> FabricError {
    FabricError { field: field.into(), value: value.to_string(), why: why.into() }
}

impl Fabric {
    /// Checks everything: unique names, VNIs, cluster numbers (address ranges), VTEPs and
    /// MACs; members and segment hosts that name known clusters and hosts; an underlay
    /// MTU that leaves a usable segment.
    pub fn check(&self) -> Result<(), FabricError> {
        if !(576 + VXLAN_OVERHEAD..=65535).contains(&self.underlay_mtu) {
            return Err(bad("underlay_mtu", self.underlay_mtu, format!("from {} to 65535", 576 + VXLAN_OVERHEAD)));
        }
        let mut hosts = BTreeSet::new();
        let mut vteps = BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.name.is_empty() || !hosts.insert(h.name.as_str()) {
                return Err(bad(format!("hosts[{i}].name"), format!("{:?}", h.name), "empty or named twice"));
            }
            if let Some(other) = vteps.insert(h.vtep, &h.name) {
                return Err(bad(format!("hosts[{i}].vtep"), h.vtep, format!("also host {other:?}'s")));
            }
        }
        let mut names = BTreeSet::new();
        let mut vnis: BTreeMap<u32, &str> = BTreeMap::new();
        let mut ids: BTreeMap<u8, &str> = BTreeMap::new();
        for (i, c) in self.clusters.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > 32 || !c.name.chars().all(|x| x.is_ascii_alphanumeric() || x == '-') {
                return Err(bad(format!("clusters[{i}].name"), format!("{:?}", c.name), "1 to 32 letters, digits or dashes"));
            }
            if !names.insert(c.name.as_str()) {
                return Err(bad(format!("clusters[{i}].name"), format!("{:?}", c.name), "named twice"));
            }
            if !(1..=MAX_VNI).contains(&c.vni) {
                return Err(bad(format!("clusters[{i}].vni"), c.vni, format!("from 1 to {MAX_VNI}")));
            }
            if let Some(other) = vnis.insert(c.vni, &c.name) {
                return Err(bad(format!("clusters[{i}].vni"), c.vni, format!("cluster {other:?} has it already")));
            }
            if !(1..=MAX_CLUSTER).contains(&c.id) {
                return Err(bad(format!("clusters[{i}].id"), c.id, format!("from 1 to {MAX_CLUSTER}")));
            }
            if let Some(other) = ids.insert(c.id, &c.name) {
                return Err(bad(
                    format!("clusters[{i}].id"),
                    c.id,
                    format!("its addresses 10.{}.0.0/16 overlap cluster {other:?}'s", c.id),
                ));
            }
            for (k, h) in c.hosts.iter().enumerate() {
                if !hosts.contains(h.as_str()) {
                    return Err(bad(format!("clusters[{i}].hosts[{k}]"), format!("{h:?}"), "no such host"));
                }
            }
        }
        let mut macs = BTreeSet::new();
        for (i, m) in self.members.iter().enumerate() {
            if !names.contains(m.cluster.as_str()) {
                return Err(bad(format!("members[{i}].cluster"), format!("{:?}", m.cluster), "no such cluster"));
            }
            if !hosts.contains(m.host.as_str()) {
                return Err(bad(format!("members[{i}].host"), format!("{:?}", m.host), "no such host"));
            }
            let mac = Mac::parse(&m.mac).ok_or_else(|| bad(format!("members[{i}].mac"), format!("{:?}", m.mac), "not a MAC address"))?;
            if mac.0[0] & 1 == 1 || mac == Mac::ZERO {
                return Err(bad(format!("members[{i}].mac"), &m.mac, "not a unicast address"));
            }
            if !macs.insert(mac) {
                return Err(bad(format!("members[{i}].mac"), &m.mac, "two members share it"));
            }
        }
        Ok(())
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The hosts that carry cluster `c`'s segment: those listed, and those running members.
    pub fn carriers<'a>(&'a self, c: &'a Cluster) -> BTreeSet<&'a str> {
        let mut out: BTreeSet<&str> = c.hosts.iter().map(String::as_str).collect();
        out.extend(self.members.iter().filter(|m| m.cluster == c.name).map(|m| m.host.as_str()));
        out
    }

    /// The segments' MTU.
    pub fn segment_mtu(&self) -> u32 {
        self.underlay_mtu - VXLAN_OVERHEAD
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn fabric() -> Fabric {
        serde_json::from_str(
            r#"{
              "clusters": [{"name": "red", "id": 1, "vni": 101}, {"name": "blue", "id": 2, "vni": 102, "hosts": ["h3"]}],
              "hosts": [{"name": "h1", "vtep": "192.0.2.1"}, {"name": "h2", "vtep": "192.0.2.2"}, {"name": "h3", "vtep": "192.0.2.3"}],
              "members": [
                {"cluster": "red", "mac": "02:53:00:01:00:01", "host": "h1"},
                {"cluster": "red", "mac": "02:53:00:01:01:01", "host": "h2"},
                {"cluster": "blue", "mac": "02:53:00:02:00:01", "host": "h1"}
              ]
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn a_good_fabric_passes_and_carriers_follow_members() {
        let f = fabric();
        f.check().unwrap();
        assert_eq!(f.carriers(&f.clusters[0]), BTreeSet::from(["h1", "h2"]));
        assert_eq!(f.carriers(&f.clusters[1]), BTreeSet::from(["h1", "h3"]));
        assert_eq!(f.segment_mtu(), 1450);
    }

    #[test]
    fn bad_fabrics_are_refused_naming_the_field() {
        type Change = fn(&mut Fabric);
        let cases: Vec<(Change, &str)> = vec![
            (|f| f.clusters[1].vni = 101, "clusters[1].vni = 101: cluster \"red\" has it already"),
            (|f| f.clusters[1].id = 1, "clusters[1].id = 1: its addresses 10.1.0.0/16 overlap cluster \"red\"'s"),
            (|f| f.clusters[0].vni = 0, "clusters[0].vni = 0: from 1 to 16777215"),
            (|f| f.clusters[0].vni = 1 << 24, "clusters[0].vni = 16777216: from 1 to 16777215"),
            (|f| f.members[0].cluster = "green".into(), "members[0].cluster = \"green\": no such cluster"),
            (|f| f.members[0].host = "h9".into(), "members[0].host = \"h9\": no such host"),
            (|f| f.members[1].mac = "02:53:00:01:00:01".into(), "members[1].mac = 02:53:00:01:00:01: two members share it"),
            (|f| f.members[1].mac = "ff:ff:ff:ff:ff:ff".into(), "members[1].mac = ff:ff:ff:ff:ff:ff: not a unicast address"),
            (|f| f.members[1].mac = "nope".into(), "members[1].mac = \"nope\": not a MAC address"),
            (|f| f.hosts[1].vtep = "192.0.2.1".parse().unwrap(), "hosts[1].vtep = 192.0.2.1: also host \"h1\"'s"),
            (|f| f.clusters[1].hosts.push("h7".into()), "clusters[1].hosts[1] = \"h7\": no such host"),
            (|f| f.clusters[0].name = "a b".into(), "clusters[0].name = \"a b\": 1 to 32 letters, digits or dashes"),
            (|f| f.underlay_mtu = 600, "underlay_mtu = 600: from 626 to 65535"),
        ];
        for (change, want) in cases {
            let mut f = fabric();
            change(&mut f);
            assert_eq!(f.check().unwrap_err().to_string(), want);
        }
    }
}
