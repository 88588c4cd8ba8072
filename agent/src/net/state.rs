//! A host's share of the fabric as kernel objects — what should exist (`desired`) and
//! what does (read back through netlink) share this shape, so that planning is a pure
//! difference. Only objects named with straddle's prefixes are ever read or touched: the
//! host's own links and bridges are not the agent's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::addressing::Mac;
use super::fabric::{Fabric, VXLAN_PORT};

/// Prefix of a cluster's bridge (`sbr<vni>`) and of its VXLAN device (`svx<vni>`); both fit
/// the kernel's 15-byte names for any 24-bit VNI.
pub const BRIDGE_PREFIX: &str = "sbr";
pub const VXLAN_PREFIX: &str = "svx";

pub fn bridge_name(vni: u32) -> String {
    format!("{BRIDGE_PREFIX}{vni}")
}

pub fn vxlan_name(vni: u32) -> String {
    format!("{VXLAN_PREFIX}{vni}")
}

/// Whether a link name is one of the agent's.
pub fn ours(name: &str) -> bool {
    [BRIDGE_PREFIX, VXLAN_PREFIX]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Bridge,
    /// A VXLAN device: its VNI, the local tunnel address and the UDP port; no learning
    /// (forwarding entries come from placements).
    Vxlan {
        vni: u32,
        local: Ipv4Addr,
        port: u16,
    },
    /// Anything else found under one of the agent's names (rebuilt when wanted).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub kind: Kind,
    pub mtu: u32,
    pub master: Option<String>,
    pub up: bool,
}

impl Link {
    /// One line: `<kind> mtu <m> master <bridge> up|down` (after its name).
    pub fn describe(&self) -> String {
        format!("{:?} mtu {} master {} {}", self.kind, self.mtu, self.master.as_deref().unwrap_or("-"), if self.up { "up" } else { "down" })
    }
}

/// A forwarding entry of a VXLAN device: frames to `mac` go to the tunnel endpoint `dst`
/// (`Mac::ZERO`: broadcast and unknown destinations, one entry per remote host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fdb {
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostState {
    pub links: BTreeMap<String, Link>,
    /// Per VXLAN device, its forwarding entries with a remote destination.
    pub fdb: BTreeMap<String, BTreeSet<Fdb>>,
}

/// What `host` should have: per cluster it carries, a bridge and a VXLAN device enslaved
/// to it, both at the segment's MTU; on the VXLAN device one flooding entry per other host
/// carrying the cluster (broadcasts reach only those, as with Neutron's l2population) and
/// one entry per member running on another host. `None` when the fabric lacks the host.
pub fn desired(fabric: &Fabric, host: &str) -> Option<HostState> {
    let me = fabric.host(host)?;
    let mtu = fabric.segment_mtu();
    let mut out = HostState::default();
    for c in &fabric.clusters {
        let carriers = fabric.carriers(c);
        if !carriers.contains(host) {
            continue;
        }
        let (br, vx) = (bridge_name(c.vni), vxlan_name(c.vni));
        out.links.insert(br.clone(), Link { kind: Kind::Bridge, mtu, master: None, up: true });
        out.links.insert(
            vx.clone(),
            Link { kind: Kind::Vxlan { vni: c.vni, local: me.vtep, port: VXLAN_PORT }, mtu, master: Some(br), up: true },
        );
        let mut fdb = BTreeSet::new();
        for other in carriers.iter().filter(|&&h| h != host) {
            if let Some(h) = fabric.host(other) {
                fdb.insert(Fdb { mac: Mac::ZERO, dst: h.vtep });
            }
        }
        for m in fabric.members.iter().filter(|m| m.cluster == c.name && m.host != host) {
            if let (Some(h), Some(mac)) = (fabric.host(&m.host), Mac::parse(&m.mac)) {
                fdb.insert(Fdb { mac, dst: h.vtep });
            }
        }
        out.fdb.insert(vx, fdb);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::fabric::tests::fabric;
    use super::*;

    #[test]
    fn each_host_gets_its_clusters_and_only_their_entries() {
        let f = fabric();
        let h1 = desired(&f, "h1").unwrap();
        assert_eq!(h1.links.keys().collect::<Vec<_>>(), ["sbr101", "sbr102", "svx101", "svx102"]);
        let vx = &h1.links["svx101"];
        assert_eq!(vx.kind, Kind::Vxlan { vni: 101, local: "192.0.2.1".parse().unwrap(), port: 4789 });
        assert_eq!((vx.mtu, vx.master.as_deref()), (1450, Some("sbr101")));
        let dst = |s: &str| -> Ipv4Addr { s.parse().unwrap() };
        // red: flood to h2, and h2's member there; nothing for h1's own member.
        assert_eq!(
            h1.fdb["svx101"],
            BTreeSet::from([
                Fdb { mac: Mac::ZERO, dst: dst("192.0.2.2") },
                Fdb { mac: Mac::parse("02:53:00:01:01:01").unwrap(), dst: dst("192.0.2.2") }
            ])
        );
        // blue is carried by h3 (listed) without members there.
        assert_eq!(h1.fdb["svx102"], BTreeSet::from([Fdb { mac: Mac::ZERO, dst: dst("192.0.2.3") }]));
        let h3 = desired(&f, "h3").unwrap();
        assert_eq!(h3.links.keys().collect::<Vec<_>>(), ["sbr102", "svx102"]);
        assert_eq!(h3.fdb["svx102"].len(), 2);
        assert!(desired(&f, "h9").is_none());
    }

    #[test]
    fn only_straddle_names_are_ours() {
        assert!(ours("sbr101") && ours("svx16777215"));
        assert!(!ours("sbr") && !ours("br0") && !ours("svxa") && !ours("eth0"));
        assert!(vxlan_name(16_777_215).len() <= 15);
    }
}
