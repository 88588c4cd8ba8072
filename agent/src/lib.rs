//! The straddle agent: one daemon per host.
//!
//! - `usage`: the host's resource usage from `/proc`, as the `Usage` report of the contract.
//! - `net`: the virtual clusters' L2 segments — addressing, the fabric, the desired kernel
//!   state of a host and the plan that reaches it.

pub mod net;
pub mod usage;
