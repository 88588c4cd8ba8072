//! Addresses that tell the site (the source paper's scheme): a virtual cluster node's MAC,
//! IPv4 address and hostname encode its cluster, its home site and its node number, so
//! anyone reading a frame or a log line knows where the node was built; none of them
//! changes when the VM migrates to another site (its home stays its home).
//!
//! - MAC `02:53:00:CC:SS:NN`: locally administered unicast (`02`), `53` for straddle, then
//!   cluster, site and node.
//! - IPv4 `10.CC.SS.NN` in the cluster's `10.CC.0.0/16`.
//! - hostname `<cluster>-s<SS>-n<NN>`.

use std::fmt;
use std::net::Ipv4Addr;

/// One node of a virtual cluster, by the numbers its addresses carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// 1..=250 (the second octet of `10.0.0.0/8`, leaving room for infrastructure).
    pub cluster: u8,
    /// The home site, 0..=255.
    pub site: u8,
    /// 1..=254 within the site (0 and 255 are the subnet's own).
    pub node: u8,
}

/// A number out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value}: {why}")]
pub struct AddressError {
    pub field: &'static str,
    pub value: String,
    pub why: &'static str,
}

pub const MAX_CLUSTER: u8 = 250;

impl NodeId {
    /// Checks the numbers.
    pub fn new(cluster: u32, site: u32, node: u32) -> Result<NodeId, AddressError> {
        let err = |field, value: u32, why| AddressError { field, value: value.to_string(), why };
        let cluster =
            u8::try_from(cluster).ok().filter(|c| (1..=MAX_CLUSTER).contains(c)).ok_or(err("cluster", cluster, "from 1 to 250"))?;
        let site = u8::try_from(site).map_err(|_| err("site", site, "from 0 to 255"))?;
        let node = u8::try_from(node).ok().filter(|n| (1..=254).contains(n)).ok_or(err("node", node, "from 1 to 254"))?;
        Ok(NodeId { cluster, site, node })
    }

    pub fn mac(self) -> Mac {
        Mac([0x02, 0x53, 0x00, self.cluster, self.site, self.node])
    }

    pub fn ipv4(self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.cluster, self.site, self.node)
    }

    pub fn hostname(self, cluster_name: &str) -> String {
        format!("{cluster_name}-s{}-n{}", self.site, self.node)
    }

    /// The node a straddle MAC names (`None` for any other MAC).
    pub fn from_mac(m: Mac) -> Option<NodeId> {
        let [a, b, c, cluster, site, node] = m.0;
        ((a, b, c) == (0x02, 0x53, 0x00)).then_some(())?;
        NodeId::new(cluster.into(), site.into(), node.into()).ok()
    }
}

/// A cluster's subnet: `10.CC.0.0/16`.
pub fn cluster_subnet(cluster: u8) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(10, cluster, 0, 0), 16)
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The all-zeros address: in a VXLAN device's forwarding table, where broadcast and
    /// unknown destinations go.
    pub const ZERO: Mac = Mac([0; 6]);

    pub fn parse(s: &str) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_cluster_site_and_node() {
        let n = NodeId::new(7, 1, 12).unwrap();
        assert_eq!(n.mac().to_string(), "02:53:00:07:01:0c");
        assert_eq!(n.ipv4(), Ipv4Addr::new(10, 7, 1, 12));
        assert_eq!(n.hostname("lab"), "lab-s1-n12");
        assert_eq!(NodeId::from_mac(n.mac()), Some(n));
        assert_eq!(NodeId::from_mac(Mac::parse("52:54:00:07:01:0c").unwrap()), None);
        assert_eq!(Mac::parse(&n.mac().to_string()), Some(n.mac()));
        assert_eq!(cluster_subnet(7), (Ipv4Addr::new(10, 7, 0, 0), 16));
    }

    #[test]
    fn numbers_out_of_range_are_named() {
        assert_eq!(NodeId::new(0, 0, 1).unwrap_err().to_string(), "cluster = 0: from 1 to 250");
        assert_eq!(NodeId::new(251, 0, 1).unwrap_err().field, "cluster");
        assert_eq!(NodeId::new(1, 256, 1).unwrap_err().to_string(), "site = 256: from 0 to 255");
        assert_eq!(NodeId::new(1, 0, 255).unwrap_err().to_string(), "node = 255: from 1 to 254");
        assert_eq!(Mac::parse("02:53:00:07:01"), None);
        assert_eq!(Mac::parse("02:53:00:07:01:0c:00"), None);
        assert_eq!(Mac::parse("02:53:00:07:01:zz"), None);
    }
}
