//! The encrypted tunnel between site gateways (`straddle-agent tunnel up`): WireGuard's
//! protocol in user space (boringtun), as the kernel here has neither WireGuard nor GRE.
//! Its TUN device carries the gateways' inner addresses; the segments' VXLAN endpoints
//! are those addresses, so every frame between sites crosses encrypted. A process of its
//! own, like wireguard-go: the agent daemon dying or restarting does not touch it.
//!
//! - `config`: keys, peers, the MTU arithmetic, checked whole.
//! - `tun`: the TUN device.
//! - `run`: the data path and the protocol's timers.

pub mod config;
pub mod run;
pub mod tun;

use std::net::UdpSocket;

use anyhow::Context;

use crate::net::kernel::Kernel;
use config::TunnelConfig;

/// Brings the tunnel up and runs it until it fails. Prints one line once it carries traffic.
pub async fn up(cfg: &TunnelConfig) -> anyhow::Result<()> {
    let c = cfg.check()?;
    let private = config::key(
        "private_key_file",
        &std::fs::read_to_string(&cfg.private_key_file)
            .with_context(|| format!("private_key_file = {}", cfg.private_key_file.display()))?,
    )?;
    let sock = UdpSocket::bind(cfg.listen).with_context(|| format!("listen = {}", cfg.listen))?;
    let tun = tun::open(&cfg.device).with_context(|| format!("device = {}: cannot open a TUN device", cfg.device))?;
    Kernel::connect()?.configure(&cfg.device, c.address, c.prefix, c.mtu).await?;
    println!("straddle-agent tunnel up on {} {}/{} mtu {} ({} peers)", cfg.device, c.address, c.prefix, c.mtu, c.peers.len());
    let t = run::Tunnel::new(&c, private, sock, tun);
    let e = tokio::task::spawn_blocking(move || t.run()).await?;
    Err(anyhow::anyhow!("the tunnel stopped: {e}"))
}

/// A new private key (from the kernel's randomness) and its public key, base64.
pub fn keygen() -> std::io::Result<(String, String)> {
    use std::io::Read;
    let mut k = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    let secret = boringtun::x25519::StaticSecret::from(k);
    let public = boringtun::x25519::PublicKey::from(&secret);
    Ok((config::encode(&secret.to_bytes()), config::encode(public.as_bytes())))
}
