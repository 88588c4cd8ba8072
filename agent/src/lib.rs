//! The straddle agent: one daemon per host.
//!
//! - `usage`: the host's resource usage from `/proc`, as the `Usage` report of the contract.
//! - `net`: the virtual clusters' L2 segments — addressing, the fabric, the desired kernel
//!   state of a host and the plan that reaches it.
//! - `vm`: the clusters' VMs through libvirt.
//! - `daemon`: the gRPC service the controller commands, registration and heartbeats.
//! - `tunnel`: the encrypted tunnel between site gateways (WireGuard in user space).

pub mod daemon;
pub mod net;
pub mod tunnel;
pub mod usage;
pub mod vm;
