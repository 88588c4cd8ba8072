//! A virtual cluster's VMs on this host.
//!
//! - `domain`: a node's domain XML from its spec, and what the agent reads back (pure).
//! - `libvirt`: define, start, stop, remove, list and sample them through libvirt.

pub mod domain;
pub mod libvirt;
