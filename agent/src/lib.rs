//! The straddle agent: one daemon per host.
//!
//! - `usage`: the host's resource usage from `/proc`, as the `Usage` report of the contract.

pub mod usage;
