//! The MPI library's collective algorithms as rounds of messages, written once. The
//! planner predicts a collective's WAN traffic under a candidate placement from them
//! (`straddle-model`), the shim decides where running a call site-aware pays ([`pays`]),
//! and the collectives benchmark holds its measurements against them. A round is the
//! messages that travel at once; a message is (from, to, bytes) in communicator ranks.
//!
//! - [`op`]: the blocking collectives, and the algorithms MPICH runs them with.
//! - [`size`]: how big one call is: its message or vector, and the per-rank block.
//! - [`library`]: each algorithm's rounds, and the one MPICH picks by default.
//! - [`leaders`]: what crosses sites when the shim runs a call site-aware.
//! - [`crossing`]: what a call's rounds move between sites.
//! - [`pays`]: whether running a call site-aware beats the library's algorithm.

pub mod crossing;
pub mod leaders;
pub mod library;
pub mod op;
pub mod pays;
pub mod size;

pub use crossing::{cross_site, crossing, library_crossing, CrossSite, Crossing};
pub use leaders::leaders;
pub use library::{default_alg, rounds, visit};
pub use op::{Alg, Op};
pub use pays::pays;
pub use size::Size;

/// One message: from, to (communicator ranks), bytes.
pub type Msg = (usize, usize, f64);
/// Messages by round.
pub type Rounds = Vec<Vec<Msg>>;

#[cfg(test)]
mod tests;
