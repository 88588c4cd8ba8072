//! One flat L2 segment per virtual cluster across hosts and sites.
//!
//! - `addressing`: MACs, IPv4 addresses and hostnames that tell cluster, home site, node.
//! - `fabric`: the clusters (a VNI each), the hosts (their tunnel endpoints), the members
//!   and where they run; checked whole.
//! - `state`: a host's share as kernel objects (bridges, VXLAN devices, forwarding
//!   entries), desired from the fabric or read back from the kernel.
//! - `plan`: the ordered changes from what exists to what should, pure and idempotent.
//! - `kernel`: reading and changing the host's network through netlink.

pub mod addressing;
pub mod fabric;
pub mod kernel;
pub mod plan;
pub mod state;
