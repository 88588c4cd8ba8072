//! Act: operations that migrate VMs (the pure rules in `operation`), the executor that owns
//! and runs them, the settling of what a restart interrupted, and the survey at start of
//! what a real hypervisor runs.

pub mod executor;
pub mod inventory;
pub mod operation;
pub mod reconcile;

pub use executor::{ExecConfig, ExecError, Executor, InFlight};
