//! The straddle controller.
//!
//! - `traffic`: a job's rank × rank matrices from shim reports (pure).
//! - `registry`: the jobs, shared by the services.
//! - `service`: gRPC services (telemetry from shims, traffic queries).
//! - `server`: binds and serves them.
//! - `render`: the operator's table and JSON.

pub mod registry;
pub mod render;
pub mod server;
pub mod service;
pub mod traffic;
