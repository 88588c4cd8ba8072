//! Thin gRPC services over the domain: each converts domain errors to `tonic::Status` in
//! one place (`RegistryError`'s `From`).

pub mod operator;
pub mod scheduler;
pub mod telemetry;
pub mod traffic;
