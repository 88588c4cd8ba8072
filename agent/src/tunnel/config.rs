//! The encrypted tunnel between site gateways, as configured: WireGuard's model (a key
//! pair per gateway, each peer's public key, endpoint and inner address), checked whole
//! with errors naming the field. The MTU arithmetic is here: inside the tunnel, the
//! underlay's MTU less WireGuard's overhead; the segments over it lose VXLAN's on top.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

/// Bytes WireGuard over IPv4 adds to a packet: outer IPv4 (20), UDP (8), its data header
/// (16) and the AEAD tag (16).
pub const WIREGUARD_OVERHEAD: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    /// Its public key (base64, as `wg` prints it).
    pub public_key: String,
    /// Where its tunnel listens on the underlay.
    pub endpoint: SocketAddr,
    /// Its inner address (its segments' tunnel endpoint).
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelConfig {
    /// The TUN device's name.
    #[serde(default = "default_device")]
    pub device: String,
    /// This gateway's inner address and prefix, e.g. `10.255.0.1/24`.
    pub address: String,
    /// The UDP address it listens on (the underlay).
    pub listen: SocketAddr,
    /// A file holding this gateway's private key (base64).
    pub private_key_file: PathBuf,
    #[serde(default = "default_mtu")]
    pub underlay_mtu: u32,
    pub peers: Vec<PeerConfig>,
}

fn default_device() -> String {
    "stun0".into()
}

fn default_mtu() -> u32 {
    1500
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value}: {why}")]
pub struct ConfigError {
    pub field: String,
    pub value: String,
    pub why: String,
}

fn bad(field: impl Into<String>, value: impl ToString, why: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), value: value.to_string(), why: why.into() }
}

/// A 32-byte key from base64.
pub fn key(field: &str, text: &str) -> Result<[u8; 32], ConfigError> {
    let b = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| bad(field, "(hidden)", "not base64"))?;
    <[u8; 32]>::try_from(b.as_slice()).map_err(|_| bad(field, "(hidden)", format!("{} bytes, not 32", b.len())))
}

pub fn encode(k: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// A checked configuration: the inner address split, each peer's key decoded.
#[derive(Debug, Clone)]
pub struct Checked {
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The TUN device's MTU.
    pub mtu: u32,
    pub peers: Vec<(PeerConfig, [u8; 32])>,
}

impl TunnelConfig {
    pub fn check(&self) -> Result<Checked, ConfigError> {
        if self.device.is_empty()
            || self.device.len() > 15
            || !self.device.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("device", format!("{:?}", self.device), "1 to 15 letters, digits, '-' or '_'"));
        }
        let (a, p) = self.address.split_once('/').ok_or_else(|| bad("address", &self.address, "ADDRESS/PREFIX"))?;
        let address: Ipv4Addr = a.parse().map_err(|_| bad("address", &self.address, "not an IPv4 address"))?;
        let prefix: u8 =
            p.parse().ok().filter(|p| (8..=30).contains(p)).ok_or_else(|| bad("address", &self.address, "a prefix from 8 to 30"))?;
        if !(576 + WIREGUARD_OVERHEAD..=65535).contains(&self.underlay_mtu) {
            return Err(bad("underlay_mtu", self.underlay_mtu, format!("from {} to 65535", 576 + WIREGUARD_OVERHEAD)));
        }
        if self.peers.is_empty() {
            return Err(bad("peers", "[]", "at least one"));
        }
        let mask = u32::MAX << (32 - prefix);
        let mut peers = Vec::new();
        for (i, p) in self.peers.iter().enumerate() {
            let k = key(&format!("peers[{i}].public_key"), &p.public_key)?;
            if p.address == address || u32::from(p.address) & mask != u32::from(address) & mask {
                return Err(bad(format!("peers[{i}].address"), p.address, format!("another address inside {}", self.address)));
            }
            if let Some(j) =
                self.peers[..i].iter().position(|q| q.address == p.address || q.endpoint == p.endpoint || q.public_key == p.public_key)
            {
                return Err(bad(format!("peers[{i}]"), &p.name, format!("shares its address, endpoint or key with peers[{j}]")));
            }
            peers.push((p.clone(), k));
        }
        Ok(Checked { address, prefix, mtu: self.underlay_mtu - WIREGUARD_OVERHEAD, peers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TunnelConfig {
        TunnelConfig {
            device: "stun0".into(),
            address: "10.255.0.1/24".into(),
            listen: "192.0.2.1:51820".parse().unwrap(),
            private_key_file: "/nonexistent".into(),
            underlay_mtu: 1500,
            peers: vec![PeerConfig {
                name: "b".into(),
                public_key: encode(&[7; 32]),
                endpoint: "192.0.2.2:51820".parse().unwrap(),
                address: "10.255.0.2".parse().unwrap(),
            }],
        }
    }

    #[test]
    fn the_mtu_inside_leaves_room_for_wireguard_and_vxlan() {
        let c = cfg().check().unwrap();
        assert_eq!((c.address, c.prefix, c.mtu), ("10.255.0.1".parse().unwrap(), 24, 1440));
        // A segment carried over it: 1440 - 50 = 1390 bytes per frame.
        assert_eq!(c.mtu - crate::net::fabric::VXLAN_OVERHEAD, 1390);
        assert_eq!(c.peers[0].1, [7; 32]);
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let field = |f: &dyn Fn(&mut TunnelConfig)| {
            let mut c = cfg();
            f(&mut c);
            c.check().unwrap_err().field
        };
        assert_eq!(field(&|c| c.address = "10.255.0.1".into()), "address");
        assert_eq!(field(&|c| c.address = "10.255.0.1/31".into()), "address");
        assert_eq!(field(&|c| c.underlay_mtu = 600), "underlay_mtu");
        assert_eq!(field(&|c| c.peers[0].public_key = "short".into()), "peers[0].public_key");
        assert_eq!(field(&|c| c.peers[0].address = "10.254.0.2".parse().unwrap()), "peers[0].address");
        assert_eq!(field(&|c| c.peers.push(c.peers[0].clone())), "peers[1]");
        assert_eq!(field(&|c| c.device = "a-name-far-too-long".into()), "device");
    }
}
