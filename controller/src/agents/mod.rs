//! The per-host agents as the controller sees and drives them.
//!
//! - `registry`: who registered (checked against the topology) and their last usage.
//! - `fabric`: the fabric the agents build, from clusters, placement and registrations.
//! - `network`: pushes it to the agents when it changes; stages a migration's destination.
//! - `hypervisor`: any hypervisor, with the destination's segment built before a move.
//! - `clusters`: a networked cluster's VMs built and torn down through the agents.

pub mod clusters;
pub mod fabric;
pub mod hypervisor;
pub mod network;
pub mod registry;

pub use network::Network;
pub use registry::Agents;
