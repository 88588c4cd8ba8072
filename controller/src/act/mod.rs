//! Act: operations that migrate VMs (the pure rules in `operation`), the executor that owns
//! and runs them, the settling of what a restart interrupted, and discovery (at start and
//! periodically) of what a real hypervisor runs.

pub mod discovery;
pub mod executor;
pub mod inventory;
pub mod operation;
pub mod reconcile;

pub use executor::{ExecConfig, ExecError, Executor, InFlight};
