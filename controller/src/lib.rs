//! The straddle controller.
//!
//! - `traffic`: a job's rank × rank matrices from shim reports (pure).
//! - `topology`: sites, WAN links (petgraph), hosts, VMs, loaded from YAML.
//! - `collmodel`: collectives as site-pair traffic, per algorithm.
//! - `classify`: predicted slowdown, network- or compute-intensive, with hysteresis.
//! - `hypervisor`: the Hypervisor trait, the pre-copy model and the simulated backend.
//! - `plan`: target placements and the migrations that reach them (pure).
//! - `decide`: the loop observe → classify → plan → migrate → record → push epochs.
//! - `registry`: the jobs, shared by the services.
//! - `epoch`: site-map epochs pushed to the ranks.
//! - `control`: jobs submitted by schedulers, placements, scenarios.
//! - `service`: gRPC services (telemetry from shims, traffic queries).
//! - `server`: binds and serves them.
//! - `store`: durable state (redb).
//! - `render`: the operator's table and JSON.

pub mod classify;
pub mod collmodel;
pub mod control;
pub mod decide;
pub mod epoch;
pub mod hypervisor;
pub mod plan;
pub mod registry;
pub mod render;
pub mod server;
pub mod service;
pub mod store;
pub mod topology;
pub mod traffic;
