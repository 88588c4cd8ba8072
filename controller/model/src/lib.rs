//! straddle's model of the world, pure: no I/O, no async runtime, no wire types. Time is
//! passed in; the controller and the simulator drive it with their one clock.
//!
//! - `time`: a point on the controller's clock.
//! - `topology`: sites joined by WAN links (petgraph), hosts, VMs; loaded from YAML.
//! - `clusters`: the virtual clusters with networks: their numbers and their nodes'.
//! - `collective`: the collective operations and how a rank called them.
//! - `traffic`: a job's rank × rank counters from shim reports, rates over a window.
//! - `collmodel`: collectives as site-pair traffic, from the one model of the algorithms
//!   (`straddle-collectives`): the library's and the shim's site-aware runs.
//! - `migration`: what a live migration costs (pre-copy) between two hosts.
//! - `migration_learnt`: what finished migrations and measured dirty rates teach it.
//! - `migration_policy`: how a running migration is steered from its measured progress.
//! - `classify`: predicted slowdown, network- or compute-intensive, with hysteresis.
//! - `plan`: target placements and the migrations that reach them.

pub mod classify;
pub mod clusters;
pub mod collective;
pub mod collmodel;
pub mod migration;
pub mod migration_learnt;
pub mod migration_policy;
pub mod plan;
pub mod time;
pub mod topology;
pub mod traffic;

/// A non-negative count kept as `f64` (sums, rates) as a whole number: the fraction goes,
/// negative and NaN become 0, and values past `u64::MAX` stop there (Rust's float-to-int
/// conversion saturates).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn whole(v: f64) -> u64 {
    v as u64
}
