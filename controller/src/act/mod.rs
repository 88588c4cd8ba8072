//! Act: operations that migrate VMs (the pure rules in `operation`), the executor that owns
//! and runs them, and the settling of what a restart interrupted.

pub mod executor;
pub mod operation;
pub mod reconcile;

pub use executor::{ExecConfig, ExecError, Executor, InFlight};
