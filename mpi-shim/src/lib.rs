//! The core of the straddle MPI shim, shared by the MPICH and Open MPI builds.
//!
//! The thin `cdylib`s (`mpich/`, `openmpi/`) own everything that depends on the MPI ABI —
//! the PMPI entry points, handle types, communicator translation — and call into this crate
//! to count. Nothing here calls MPI.
//!
//! `regroup` holds the pure part of site-aware collectives (grouping, leaders, routes,
//! epoch agreement); the cdylibs run the collectives themselves through PMPI
//! (`abi/sites/`).
//!
//! Hot-path rule: counting does no allocation, takes no lock and makes no syscall. It is a
//! relaxed atomic add into tables sized once at start.

pub mod collectives;
pub mod comms;
pub mod config;
pub mod counters;
pub mod identity;
pub mod persistent;
pub mod regroup;
pub mod reporter;
pub mod state;

pub use state::{shim, Shim};
