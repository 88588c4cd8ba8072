//! The gRPC edge: thin services over the domain (shims' telemetry, traffic queries,
//! schedulers, operators, agents), the conversions and error statuses in one module, and the
//! server that binds them.

pub mod agents;
pub mod auth;
pub mod convert;
pub mod listener;
pub mod operator;
pub mod scheduler;
pub mod server;
pub mod telemetry;
pub mod traffic;
